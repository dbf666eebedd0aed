/*
 * px.json: JSON text <-> Lua values, exactly.
 *
 *   decode(text)                  -> value | nil, "line L, column C: msg"
 *   encode(value)                 -> compact text (keys sorted)
 *   canonical(value, {pretty=})   -> text: keys sorted bytewise, integers
 *                                    as integers, floats in the shortest
 *                                    form that reads back exactly.
 *   null, array_mt, array(t), is_array(t)
 *
 * Why not lua-cjson's decode/encode: Debian's 2.1.0 decodes every number as
 * a float (so 101 comes back as 101.0 and tostring gives "101.0"), encodes
 * with 14 significant digits (123456789012345 -> "1.2345678901234e+14") and
 * cannot tell [] from {}. This decoder keeps integers exact up to 64 bits,
 * marks every decoded array with array_mt (so [] re-encodes as []) and
 * reports errors by line and column. cjson stays linked for require "cjson";
 * json.null is its null, so values from either side mix.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>

#include "lua-cjson.h"

#define MAX_DEPTH 1000

/* Upvalues shared by the functions below. */
#define UV_ARRAY_MT 1
#define UV_NULL 2
#define UV_STRBUF_MT 3

/* ---- decoding ------------------------------------------------------------ */

struct dec {
  lua_State *L;
  const char *start, *p, *end;
  int depth;
};

/* Raises "line L, column C: msg" for the position at; decode() catches it. */
static void dec_fail(struct dec *d, const char *at, const char *fmt, const char *arg) {
  int line = 1, col = 1;
  for (const char *q = d->start; q < at && q < d->end; q++) {
    if (*q == '\n') {
      line++;
      col = 1;
    } else {
      col++;
    }
  }
  lua_pushfstring(d->L, "line %d, column %d: ", line, col);
  lua_pushfstring(d->L, fmt, arg);
  lua_concat(d->L, 2);
  lua_error(d->L);
}

/* Names what was found at p, for messages: "'}'", "end of text". */
static const char *found(struct dec *d, char *buf, size_t len) {
  if (d->p >= d->end) return "end of text";
  unsigned char c = (unsigned char)*d->p;
  if (c >= 0x20 && c < 0x7f) snprintf(buf, len, "'%c'", c);
  else snprintf(buf, len, "byte 0x%02x", c);
  return buf;
}

static void skip_ws(struct dec *d) {
  while (d->p < d->end && (*d->p == ' ' || *d->p == '\t' || *d->p == '\n' || *d->p == '\r')) d->p++;
}

static int hex4(const char *p) {
  int v = 0;
  for (int i = 0; i < 4; i++) {
    char c = p[i];
    v <<= 4;
    if (c >= '0' && c <= '9') v |= c - '0';
    else if (c >= 'a' && c <= 'f') v |= c - 'a' + 10;
    else if (c >= 'A' && c <= 'F') v |= c - 'A' + 10;
    else return -1;
  }
  return v;
}

static void add_utf8(luaL_Buffer *b, unsigned long cp) {
  char u[4];
  int n;
  if (cp < 0x80) {
    u[0] = (char)cp;
    n = 1;
  } else if (cp < 0x800) {
    u[0] = (char)(0xc0 | (cp >> 6));
    u[1] = (char)(0x80 | (cp & 0x3f));
    n = 2;
  } else if (cp < 0x10000) {
    u[0] = (char)(0xe0 | (cp >> 12));
    u[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
    u[2] = (char)(0x80 | (cp & 0x3f));
    n = 3;
  } else {
    u[0] = (char)(0xf0 | (cp >> 18));
    u[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
    u[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
    u[3] = (char)(0x80 | (cp & 0x3f));
    n = 4;
  }
  luaL_addlstring(b, u, (size_t)n);
}

/* At the opening quote; pushes the string. */
static void dec_string(struct dec *d) {
  const char *open = d->p++;
  luaL_Buffer b;
  luaL_buffinit(d->L, &b);
  for (;;) {
    const char *run = d->p;
    while (d->p < d->end && *d->p != '"' && *d->p != '\\' && (unsigned char)*d->p >= 0x20) d->p++;
    luaL_addlstring(&b, run, (size_t)(d->p - run));
    if (d->p >= d->end) dec_fail(d, open, "unterminated string%s", "");
    char c = *d->p;
    if (c == '"') {
      d->p++;
      break;
    }
    if (c != '\\') dec_fail(d, d->p, "control character in a string (escape it)%s", "");
    const char *esc = d->p++;
    if (d->p >= d->end) dec_fail(d, open, "unterminated string%s", "");
    switch (*d->p++) {
      case '"': luaL_addchar(&b, '"'); break;
      case '\\': luaL_addchar(&b, '\\'); break;
      case '/': luaL_addchar(&b, '/'); break;
      case 'b': luaL_addchar(&b, '\b'); break;
      case 'f': luaL_addchar(&b, '\f'); break;
      case 'n': luaL_addchar(&b, '\n'); break;
      case 'r': luaL_addchar(&b, '\r'); break;
      case 't': luaL_addchar(&b, '\t'); break;
      case 'u': {
        int hi = d->end - d->p >= 4 ? hex4(d->p) : -1;
        if (hi < 0) dec_fail(d, esc, "invalid \\u escape (4 hex digits expected)%s", "");
        d->p += 4;
        unsigned long cp = (unsigned long)hi;
        if (hi >= 0xdc00 && hi <= 0xdfff) dec_fail(d, esc, "lone low surrogate in \\u escape%s", "");
        if (hi >= 0xd800 && hi <= 0xdbff) {
          int lo = d->end - d->p >= 6 && d->p[0] == '\\' && d->p[1] == 'u' ? hex4(d->p + 2) : -1;
          if (lo < 0xdc00 || lo > 0xdfff) dec_fail(d, esc, "high surrogate without a low one in \\u escape%s", "");
          d->p += 6;
          cp = 0x10000 + (((unsigned long)hi - 0xd800) << 10) + ((unsigned long)lo - 0xdc00);
        }
        add_utf8(&b, cp);
        break;
      }
      default: dec_fail(d, esc, "invalid escape in a string%s", "");
    }
  }
  luaL_pushresult(&b);
}

static int is_digit(char c) { return c >= '0' && c <= '9'; }

/* JSON's number grammar, then Lua's own conversion: integers stay integers
 * (beyond 64 bits they become floats), the rest are floats. */
static void dec_number(struct dec *d) {
  const char *s = d->p, *q = d->p;
  if (q < d->end && *q == '-') q++;
  if (q >= d->end || !is_digit(*q)) dec_fail(d, s, "invalid number%s", "");
  if (*q == '0') {
    q++;
    if (q < d->end && is_digit(*q)) dec_fail(d, s, "invalid number (leading zero)%s", "");
  } else {
    while (q < d->end && is_digit(*q)) q++;
  }
  if (q < d->end && *q == '.') {
    q++;
    if (q >= d->end || !is_digit(*q)) dec_fail(d, s, "invalid number (digit expected after '.')%s", "");
    while (q < d->end && is_digit(*q)) q++;
  }
  if (q < d->end && (*q == 'e' || *q == 'E')) {
    q++;
    if (q < d->end && (*q == '+' || *q == '-')) q++;
    if (q >= d->end || !is_digit(*q)) dec_fail(d, s, "invalid number (digit expected in exponent)%s", "");
    while (q < d->end && is_digit(*q)) q++;
  }
  char buf[128];
  size_t n = (size_t)(q - s);
  if (n >= sizeof buf) dec_fail(d, s, "number too long (over 127 characters)%s", "");
  memcpy(buf, s, n);
  buf[n] = '\0';
  if (lua_stringtonumber(d->L, buf) == 0) dec_fail(d, s, "invalid number%s", "");
  if (lua_isnumber(d->L, -1) && !lua_isinteger(d->L, -1) && !isfinite(lua_tonumber(d->L, -1)))
    dec_fail(d, s, "number out of range%s", "");
  d->p = q;
}

static int match_word(struct dec *d, const char *w, size_t n) {
  if ((size_t)(d->end - d->p) >= n && memcmp(d->p, w, n) == 0) {
    d->p += n;
    return 1;
  }
  return 0;
}

static void dec_value(struct dec *d);

static void dec_array(struct dec *d) {
  lua_State *L = d->L;
  d->p++;
  lua_newtable(L);
  lua_pushvalue(L, lua_upvalueindex(UV_ARRAY_MT));
  lua_setmetatable(L, -2);
  lua_Integer n = 0;
  skip_ws(d);
  if (d->p < d->end && *d->p == ']') {
    d->p++;
    return;
  }
  for (;;) {
    dec_value(d);
    lua_rawseti(L, -2, ++n);
    skip_ws(d);
    if (d->p < d->end && *d->p == ',') {
      d->p++;
      skip_ws(d);
      if (d->p < d->end && *d->p == ']') dec_fail(d, d->p, "trailing comma in an array%s", "");
      continue;
    }
    if (d->p < d->end && *d->p == ']') {
      d->p++;
      return;
    }
    char fb[16];
    dec_fail(d, d->p, "expected ',' or ']' after an array item, found %s", found(d, fb, sizeof fb));
  }
}

static void dec_object(struct dec *d) {
  lua_State *L = d->L;
  d->p++;
  lua_newtable(L);
  skip_ws(d);
  if (d->p < d->end && *d->p == '}') {
    d->p++;
    return;
  }
  for (;;) {
    char fb[16];
    if (d->p >= d->end || *d->p != '"') {
      if (d->p < d->end && *d->p == '}') dec_fail(d, d->p, "trailing comma in an object%s", "");
      dec_fail(d, d->p, "expected a string key, found %s", found(d, fb, sizeof fb));
    }
    dec_string(d);
    skip_ws(d);
    if (d->p >= d->end || *d->p != ':')
      dec_fail(d, d->p, "expected ':' after an object key, found %s", found(d, fb, sizeof fb));
    d->p++;
    dec_value(d);
    lua_rawset(L, -3); /* duplicate keys: the last one wins */
    skip_ws(d);
    if (d->p < d->end && *d->p == ',') {
      d->p++;
      skip_ws(d);
      continue;
    }
    if (d->p < d->end && *d->p == '}') {
      d->p++;
      return;
    }
    dec_fail(d, d->p, "expected ',' or '}' after an object member, found %s", found(d, fb, sizeof fb));
  }
}

static void dec_value(struct dec *d) {
  lua_State *L = d->L;
  skip_ws(d);
  if (d->p >= d->end) dec_fail(d, d->p, "unexpected end of text (a value was expected)%s", "");
  char c = *d->p;
  if (c == '{' || c == '[') {
    if (++d->depth > MAX_DEPTH) dec_fail(d, d->p, "nesting deeper than %s levels", "1000");
    luaL_checkstack(L, 4, "JSON nesting");
    if (c == '{') dec_object(d);
    else dec_array(d);
    d->depth--;
  } else if (c == '"') {
    dec_string(d);
  } else if (c == '-' || is_digit(c)) {
    dec_number(d);
  } else if (match_word(d, "true", 4)) {
    lua_pushboolean(L, 1);
  } else if (match_word(d, "false", 5)) {
    lua_pushboolean(L, 0);
  } else if (match_word(d, "null", 4)) {
    lua_pushvalue(L, lua_upvalueindex(UV_NULL));
  } else {
    char fb[16];
    dec_fail(d, d->p, "expected a value, found %s", found(d, fb, sizeof fb));
  }
}

/* Protected part of decode: the upvalues are decode's own. */
static int decode_protected(lua_State *L) {
  size_t len;
  const char *text = lua_tolstring(L, 1, &len);
  struct dec d = {L, text, text, text + len, 0};
  if (len >= 3 && memcmp(text, "\xef\xbb\xbf", 3) == 0) d.p += 3; /* a UTF-8 BOM */
  dec_value(&d);
  skip_ws(&d);
  if (d.p < d.end) {
    char fb[16];
    dec_fail(&d, d.p, "unexpected %s after the value", found(&d, fb, sizeof fb));
  }
  return 1;
}

/* decode(text) -> value | nil, "line L, column C: message" */
static int json_decode(lua_State *L) {
  luaL_checkstring(L, 1);
  lua_settop(L, 1);
  lua_pushvalue(L, lua_upvalueindex(UV_ARRAY_MT));
  lua_pushvalue(L, lua_upvalueindex(UV_NULL));
  lua_pushvalue(L, lua_upvalueindex(UV_STRBUF_MT));
  lua_pushcclosure(L, decode_protected, 3);
  lua_insert(L, 1);
  if (lua_pcall(L, 1, 1, 0) == LUA_OK) return 1;
  lua_pushnil(L);
  lua_insert(L, -2);
  return 2;
}

/* ---- encoding ------------------------------------------------------------- */

/* Output grows in C memory owned by a userdata (freed by __gc), so a Lua
 * error in the middle of the walk leaks nothing and the stack stays free
 * for temporaries. */
struct strbuf {
  char *p;
  size_t len, cap;
};

static void sb_addl(lua_State *L, struct strbuf *b, const char *s, size_t n) {
  if (b->len + n > b->cap) {
    size_t ncap = b->cap ? b->cap : 256;
    while (ncap < b->len + n) ncap *= 2;
    char *np = realloc(b->p, ncap);
    if (np == NULL) luaL_error(L, "json: out of memory");
    b->p = np;
    b->cap = ncap;
  }
  memcpy(b->p + b->len, s, n);
  b->len += n;
}

static void sb_addc(lua_State *L, struct strbuf *b, char ch) { sb_addl(L, b, &ch, 1); }

static int strbuf_gc(lua_State *L) {
  struct strbuf *b = lua_touserdata(L, 1);
  free(b->p);
  b->p = NULL;
  b->len = b->cap = 0;
  return 0;
}

struct enc {
  lua_State *L;
  struct strbuf *b;
  int pretty;
  int array_mt; /* stack index of json.array_mt */
  int null_idx; /* stack index of json.null */
};

static void put_indent(struct enc *c, int depth) {
  if (!c->pretty) return;
  sb_addc(c->L, c->b, '\n');
  for (int i = 0; i < depth; i++) sb_addl(c->L, c->b, "  ", 2);
}

static void put_string(struct enc *c, const char *s, size_t len) {
  sb_addc(c->L, c->b, '"');
  size_t run = 0;
  for (size_t i = 0; i < len; i++) {
    unsigned char ch = (unsigned char)s[i];
    const char *esc = NULL;
    char ubuf[8];
    switch (ch) {
      case '"': esc = "\\\""; break;
      case '\\': esc = "\\\\"; break;
      case '\n': esc = "\\n"; break;
      case '\r': esc = "\\r"; break;
      case '\t': esc = "\\t"; break;
      case '\b': esc = "\\b"; break;
      case '\f': esc = "\\f"; break;
      default:
        if (ch < 0x20 || ch == 0x7f) {
          snprintf(ubuf, sizeof ubuf, "\\u%04x", ch);
          esc = ubuf;
        }
    }
    if (esc) {
      sb_addl(c->L, c->b, s + run, i - run);
      sb_addl(c->L, c->b, esc, strlen(esc));
      run = i + 1;
    }
  }
  sb_addl(c->L, c->b, s + run, len - run);
  sb_addc(c->L, c->b, '"');
}

/* The text of the number at idx: integers exactly; integer-valued floats
 * below 2^53 without a fraction ("3", never "3.0"; -0.0 is "0"); other
 * floats in the shortest %g form that reads back to the same double. */
static void number_text(lua_State *L, int idx, char *buf, size_t len) {
  if (lua_isinteger(L, idx)) {
    snprintf(buf, len, LUA_INTEGER_FMT, lua_tointeger(L, idx));
    return;
  }
  double d = lua_tonumber(L, idx);
  if (!isfinite(d)) luaL_error(L, "json: cannot encode %s", isnan(d) ? "NaN" : "infinity");
  if (d == floor(d) && fabs(d) < 9007199254740992.0) {
    snprintf(buf, len, "%.0f", d == 0 ? 0.0 : d);
    return;
  }
  for (int prec = 15; prec <= 17; prec++) {
    snprintf(buf, len, "%.*g", prec, d);
    if (strtod(buf, NULL) == d) break;
  }
}

static int is_sequence(lua_State *L, int idx, lua_Integer *n) {
  lua_Integer count = 0, max = 0;
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    lua_pop(L, 1);
    if (!lua_isinteger(L, -1) || lua_tointeger(L, -1) < 1) {
      lua_pop(L, 1);
      return 0;
    }
    lua_Integer k = lua_tointeger(L, -1);
    if (k > max) max = k;
    count++;
  }
  *n = count;
  return count > 0 && max == count;
}

struct key {
  const char *s;
  size_t len;
  lua_Integer slot; /* where the original key sits in the key table */
};

static int cmp_keys(const void *a, const void *b) {
  const struct key *x = a, *y = b;
  size_t n = x->len < y->len ? x->len : y->len;
  int r = memcmp(x->s, y->s, n);
  if (r != 0) return r;
  return x->len < y->len ? -1 : x->len > y->len;
}

static void put_value(struct enc *c, int idx, int depth);

static void put_table(struct enc *c, int idx, int depth) {
  lua_State *L = c->L;
  if (depth >= MAX_DEPTH) luaL_error(L, "json: nesting deeper than %d levels (a cycle?)", MAX_DEPTH);
  luaL_checkstack(L, 8, "json: nesting too deep");
  int is_arr = 0;
  lua_Integer n = 0;
  if (lua_getmetatable(L, idx)) {
    is_arr = lua_rawequal(L, -1, c->array_mt);
    lua_pop(L, 1);
  }
  if (is_arr) n = (lua_Integer)lua_rawlen(L, idx);
  else is_arr = is_sequence(L, idx, &n);
  if (is_arr) {
    sb_addc(L, c->b, '[');
    for (lua_Integer i = 1; i <= n; i++) {
      if (i > 1) sb_addc(L, c->b, ',');
      put_indent(c, depth + 1);
      lua_rawgeti(L, idx, i);
      put_value(c, lua_gettop(L), depth + 1);
      lua_pop(L, 1);
    }
    if (n > 0) put_indent(c, depth);
    sb_addc(L, c->b, ']');
    return;
  }
  /* An object: every key as text (numbers as number_text gives them),
   * sorted bytewise; two keys with the same text cannot both be written. */
  size_t nkeys = 0;
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    lua_pop(L, 1);
    int kt = lua_type(L, -1);
    if (kt != LUA_TSTRING && kt != LUA_TNUMBER)
      luaL_error(L, "json: a table key of type %s cannot be encoded", lua_typename(L, kt));
    nkeys++;
  }
  if (nkeys == 0) {
    sb_addl(L, c->b, "{}", 2);
    return;
  }
  int base = lua_gettop(L);
  struct key *keys = lua_newuserdatauv(L, sizeof *keys * nkeys, 0);
  lua_createtable(L, (int)nkeys, 0); /* base+2: original keys */
  lua_createtable(L, (int)nkeys, 0); /* base+3: their texts (anchors) */
  size_t k = 0;
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    lua_pop(L, 1);
    lua_pushvalue(L, -1);
    lua_rawseti(L, base + 2, (lua_Integer)(k + 1));
    if (lua_type(L, -1) == LUA_TNUMBER) {
      char buf[64];
      number_text(L, -1, buf, sizeof buf);
      lua_pushstring(L, buf);
    } else {
      lua_pushvalue(L, -1);
    }
    keys[k].s = lua_tolstring(L, -1, &keys[k].len);
    keys[k].slot = (lua_Integer)(k + 1);
    lua_rawseti(L, base + 3, (lua_Integer)(k + 1));
    k++;
  }
  qsort(keys, nkeys, sizeof *keys, cmp_keys);
  for (size_t i = 1; i < nkeys; i++)
    if (cmp_keys(&keys[i - 1], &keys[i]) == 0)
      luaL_error(L, "json: two table keys are both written as \"%s\"", keys[i].s);
  sb_addc(L, c->b, '{');
  for (size_t i = 0; i < nkeys; i++) {
    if (i > 0) sb_addc(L, c->b, ',');
    put_indent(c, depth + 1);
    put_string(c, keys[i].s, keys[i].len);
    sb_addc(L, c->b, ':');
    if (c->pretty) sb_addc(L, c->b, ' ');
    lua_rawgeti(L, base + 2, keys[i].slot);
    lua_rawget(L, idx);
    put_value(c, lua_gettop(L), depth + 1);
    lua_pop(L, 1);
  }
  put_indent(c, depth);
  sb_addc(L, c->b, '}');
  lua_settop(L, base);
}

static void put_value(struct enc *c, int idx, int depth) {
  lua_State *L = c->L;
  switch (lua_type(L, idx)) {
    case LUA_TNIL: sb_addl(L, c->b, "null", 4); break;
    case LUA_TBOOLEAN:
      if (lua_toboolean(L, idx)) sb_addl(L, c->b, "true", 4);
      else sb_addl(L, c->b, "false", 5);
      break;
    case LUA_TNUMBER: {
      char buf[64];
      number_text(L, idx, buf, sizeof buf);
      sb_addl(L, c->b, buf, strlen(buf));
      break;
    }
    case LUA_TSTRING: {
      size_t len;
      const char *s = lua_tolstring(L, idx, &len);
      put_string(c, s, len);
      break;
    }
    case LUA_TTABLE: put_table(c, idx, depth); break;
    case LUA_TLIGHTUSERDATA:
      if (lua_rawequal(L, idx, c->null_idx)) {
        sb_addl(L, c->b, "null", 4);
        break;
      }
      /* fallthrough */
    default: luaL_error(L, "json: cannot encode a %s value", luaL_typename(L, idx));
  }
}

static int encode_with(lua_State *L, int pretty) {
  lua_settop(L, 1);
  lua_pushvalue(L, lua_upvalueindex(UV_ARRAY_MT)); /* 2 */
  lua_pushvalue(L, lua_upvalueindex(UV_NULL));     /* 3 */
  struct strbuf *b = lua_newuserdatauv(L, sizeof *b, 0); /* 4 */
  memset(b, 0, sizeof *b);
  lua_pushvalue(L, lua_upvalueindex(UV_STRBUF_MT));
  lua_setmetatable(L, 4);
  struct enc c = {L, b, pretty, 2, 3};
  put_value(&c, 1, 0);
  lua_pushlstring(L, b->p ? b->p : "", b->len);
  free(b->p);
  b->p = NULL;
  return 1;
}

/* encode(value) -> compact JSON; unencodable values are wrong use: raise. */
static int json_encode(lua_State *L) {
  luaL_checkany(L, 1);
  return encode_with(L, 0);
}

static int json_canonical(lua_State *L) {
  luaL_checkany(L, 1);
  int pretty = 0;
  if (!lua_isnoneornil(L, 2)) {
    luaL_checktype(L, 2, LUA_TTABLE);
    lua_pushnil(L);
    while (lua_next(L, 2)) {
      lua_pop(L, 1);
      if (lua_type(L, -1) != LUA_TSTRING || strcmp(lua_tostring(L, -1), "pretty") != 0)
        return luaL_argerror(L, 2, lua_pushfstring(L, "unknown option '%s'", luaL_tolstring(L, -1, NULL)));
    }
    lua_getfield(L, 2, "pretty");
    pretty = lua_toboolean(L, -1);
    lua_pop(L, 1);
  }
  return encode_with(L, pretty);
}

static int json_array(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 1);
  lua_pushvalue(L, lua_upvalueindex(UV_ARRAY_MT));
  lua_setmetatable(L, 1);
  return 1;
}

static int json_is_array(lua_State *L) {
  int r = 0;
  if (lua_type(L, 1) == LUA_TTABLE && lua_getmetatable(L, 1))
    r = lua_rawequal(L, -1, lua_upvalueindex(UV_ARRAY_MT));
  lua_pushboolean(L, r);
  return 1;
}

static const luaL_Reg funcs[] = {
    {"decode", json_decode}, {"encode", json_encode},     {"canonical", json_canonical},
    {"array", json_array},   {"is_array", json_is_array}, {NULL, NULL},
};

int luaopen_px_json(lua_State *L) {
  luaopen_cjson(L); /* for its null, so px.json.null == cjson.null */
  int cj = lua_gettop(L);
  lua_newtable(L); /* the array marker */
  lua_pushliteral(L, "px.json.array");
  lua_setfield(L, -2, "__name");
  int amt = lua_gettop(L);
  lua_newtable(L);
  int lib = lua_gettop(L);
  lua_pushvalue(L, amt);
  lua_getfield(L, cj, "null");
  lua_createtable(L, 0, 1); /* the output buffer's metatable */
  lua_pushcfunction(L, strbuf_gc);
  lua_setfield(L, -2, "__gc");
  luaL_setfuncs(L, funcs, 3);
  lua_pushvalue(L, amt);
  lua_setfield(L, lib, "array_mt");
  lua_getfield(L, cj, "null");
  lua_setfield(L, lib, "null");
  return 1;
}
