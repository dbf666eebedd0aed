/*
 * px.json: lua-cjson for decode/encode, plus a canonical encoder.
 *
 *   decode(text)                  -> value | nil, "line L, column C: msg"
 *   encode(value)                 -> text (cjson's order)
 *   canonical(value, {pretty=})   -> text: keys sorted bytewise, integers
 *                                    as integers, floats in the shortest
 *                                    form that reads back exactly.
 *   null, array_mt, array(t), is_array(t)
 *
 * Debian's lua-cjson (2.1.0) decodes [] and {} alike to an empty table;
 * tables built as arrays can be marked with array() so canonical() writes
 * an empty one as []. px.schema validates the JSON text itself, where the
 * two are distinct.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>

#include "lua-cjson.h"

#define MAX_DEPTH 500

/* upvalue 1 of decode/encode: the cjson module table */
static int json_decode(lua_State *L) {
  size_t len;
  const char *text = luaL_checklstring(L, 1, &len);
  lua_getfield(L, lua_upvalueindex(1), "decode");
  lua_pushvalue(L, 1);
  if (lua_pcall(L, 1, 1, 0) == LUA_OK) return 1;
  /* cjson: "... at character N"; turn N into line and column. */
  const char *msg = lua_tostring(L, -1);
  const char *at = msg ? strstr(msg, " at character ") : NULL;
  if (at) {
    long ch = strtol(at + 14, NULL, 10);
    if (ch < 1) ch = 1;
    long line = 1, col = 1;
    for (long i = 0; i < ch - 1 && (size_t)i < len; i++) {
      if (text[i] == '\n') {
        line++;
        col = 1;
      } else {
        col++;
      }
    }
    lua_pushnil(L);
    lua_pushfstring(L, "line %d, column %d: %s", (int)line, (int)col, lua_pushlstring(L, msg, (size_t)(at - msg)));
    lua_remove(L, -2);
    return 2;
  }
  lua_pushnil(L);
  lua_insert(L, -2);
  return 2;
}

static int json_encode(lua_State *L) {
  luaL_checkany(L, 1);
  lua_getfield(L, lua_upvalueindex(1), "encode");
  lua_pushvalue(L, 1);
  lua_call(L, 1, 1); /* unencodable values are a programmer error: raise */
  return 1;
}

/* ---- canonical encoding ---------------------------------------------- */

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
    if (np == NULL) luaL_error(L, "canonical: out of memory");
    b->p = np;
    b->cap = ncap;
  }
  memcpy(b->p + b->len, s, n);
  b->len += n;
}

static void sb_addc(lua_State *L, struct strbuf *b, char ch) { sb_addl(L, b, &ch, 1); }
static void sb_adds(lua_State *L, struct strbuf *b, const char *s) { sb_addl(L, b, s, strlen(s)); }

static void strbuf_free(struct strbuf *b) {
  free(b->p);
  b->p = NULL;
  b->len = b->cap = 0;
}

static int strbuf_gc(lua_State *L) {
  struct strbuf *b = lua_touserdata(L, 1);
  free(b->p);
  b->p = NULL;
  b->len = b->cap = 0;
  return 0;
}

struct canon {
  lua_State *L;
  struct strbuf *b;
  int pretty;
  int array_mt; /* stack index of json.array_mt */
  int null_idx; /* stack index of json.null */
};

static void put_indent(struct canon *c, int depth) {
  if (!c->pretty) return;
  sb_addc(c->L, c->b, '\n');
  for (int i = 0; i < depth; i++) sb_addl(c->L, c->b, "  ", 2);
}

static void put_string(struct canon *c, const char *s, size_t len) {
  sb_addc(c->L, c->b, '"');
  for (size_t i = 0; i < len; i++) {
    unsigned char ch = (unsigned char)s[i];
    switch (ch) {
      case '"': sb_addl(c->L, c->b, "\\\"", 2); break;
      case '\\': sb_addl(c->L, c->b, "\\\\", 2); break;
      case '\n': sb_addl(c->L, c->b, "\\n", 2); break;
      case '\r': sb_addl(c->L, c->b, "\\r", 2); break;
      case '\t': sb_addl(c->L, c->b, "\\t", 2); break;
      case '\b': sb_addl(c->L, c->b, "\\b", 2); break;
      case '\f': sb_addl(c->L, c->b, "\\f", 2); break;
      default:
        if (ch < 0x20 || ch == 0x7f) {
          char esc[8];
          snprintf(esc, sizeof esc, "\\u%04x", ch);
          sb_adds(c->L, c->b, esc);
        } else {
          sb_addc(c->L, c->b, (char)ch);
        }
    }
  }
  sb_addc(c->L, c->b, '"');
}

static void put_number(struct canon *c, int idx) {
  char buf[64];
  if (lua_isinteger(c->L, idx)) {
    snprintf(buf, sizeof buf, LUA_INTEGER_FMT, lua_tointeger(c->L, idx));
  } else {
    double d = lua_tonumber(c->L, idx);
    if (!isfinite(d)) luaL_error(c->L, "canonical: cannot encode %s", isnan(d) ? "NaN" : "infinity");
    if (d == floor(d) && fabs(d) < 9007199254740992.0) {
      snprintf(buf, sizeof buf, "%.0f", d);
    } else {
      for (int prec = 15; prec <= 17; prec++) {
        snprintf(buf, sizeof buf, "%.*g", prec, d);
        if (strtod(buf, NULL) == d) break;
      }
    }
  }
  sb_adds(c->L, c->b, buf);
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

static int cmp_keys(const void *a, const void *b) {
  const char *const *x = a, *const *y = b;
  return strcmp(*x, *y);
}

static void put_value(struct canon *c, int idx, int depth);

static void put_table(struct canon *c, int idx, int depth) {
  lua_State *L = c->L;
  if (depth > MAX_DEPTH) luaL_error(L, "canonical: nesting deeper than %d (a cycle?)", MAX_DEPTH);
  luaL_checkstack(L, 8, "canonical: nesting too deep");
  int is_arr = 0;
  lua_Integer n = 0;
  if (lua_getmetatable(L, idx)) {
    is_arr = lua_rawequal(L, -1, c->array_mt);
    lua_pop(L, 1);
  }
  if (is_arr) {
    n = (lua_Integer)lua_rawlen(L, idx);
  } else {
    is_arr = is_sequence(L, idx, &n);
  }
  if (is_arr) {
    sb_addc(c->L, c->b, '[');
    for (lua_Integer i = 1; i <= n; i++) {
      if (i > 1) sb_addc(c->L, c->b, ',');
      put_indent(c, depth + 1);
      lua_rawgeti(L, idx, i);
      put_value(c, lua_gettop(L), depth + 1);
      lua_pop(L, 1);
    }
    if (n > 0) put_indent(c, depth);
    sb_addc(c->L, c->b, ']');
    return;
  }
  /* object: gather keys as strings, sort, emit */
  size_t nkeys = 0;
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    lua_pop(L, 1);
    int kt = lua_type(L, -1);
    if (kt != LUA_TSTRING && kt != LUA_TNUMBER)
      luaL_error(L, "canonical: table key of type %s cannot be encoded", lua_typename(L, kt));
    nkeys++;
  }
  if (nkeys == 0) {
    sb_addl(c->L, c->b, "{}", 2);
    return;
  }
  const char **keys = lua_newuserdatauv(L, sizeof *keys * nkeys, 0);
  int keys_idx = lua_gettop(L);
  /* keytab[i] = key string, anchored while we emit */
  lua_createtable(L, (int)nkeys, 0);
  int keytab = lua_gettop(L);
  size_t k = 0;
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    lua_pop(L, 1);
    lua_pushvalue(L, -1);
    const char *s = lua_tostring(L, -1); /* converts the copy, not the key */
    lua_rawseti(L, keytab, (lua_Integer)++k);
    keys[k - 1] = s;
  }
  qsort(keys, nkeys, sizeof *keys, cmp_keys);
  sb_addc(c->L, c->b, '{');
  for (size_t i = 0; i < nkeys; i++) {
    if (i > 0) sb_addc(c->L, c->b, ',');
    put_indent(c, depth + 1);
    put_string(c, keys[i], strlen(keys[i]));
    sb_addc(c->L, c->b, ':');
    if (c->pretty) sb_addc(c->L, c->b, ' ');
    lua_pushstring(L, keys[i]);
    lua_rawget(L, idx);
    if (lua_isnil(L, -1)) { /* the key was a number */
      lua_pop(L, 1);
      lua_pushnumber(L, strtod(keys[i], NULL));
      if (lua_tointeger(L, -1) == strtod(keys[i], NULL)) {
        lua_Integer ik = lua_tointeger(L, -1);
        lua_pop(L, 1);
        lua_pushinteger(L, ik);
      }
      lua_rawget(L, idx);
    }
    put_value(c, lua_gettop(L), depth + 1);
    lua_pop(L, 1);
  }
  put_indent(c, depth);
  sb_addc(c->L, c->b, '}');
  lua_settop(L, keys_idx - 1); /* keys, keytab */
}

static void put_value(struct canon *c, int idx, int depth) {
  lua_State *L = c->L;
  switch (lua_type(L, idx)) {
    case LUA_TNIL: sb_addl(c->L, c->b, "null", 4); break;
    case LUA_TBOOLEAN:
      if (lua_toboolean(L, idx)) sb_addl(c->L, c->b, "true", 4);
      else sb_addl(c->L, c->b, "false", 5);
      break;
    case LUA_TNUMBER: put_number(c, idx); break;
    case LUA_TSTRING: {
      size_t len;
      const char *s = lua_tolstring(L, idx, &len);
      put_string(c, s, len);
      break;
    }
    case LUA_TTABLE: put_table(c, idx, depth); break;
    case LUA_TLIGHTUSERDATA:
      if (lua_rawequal(L, idx, c->null_idx)) {
        sb_addl(c->L, c->b, "null", 4);
        break;
      }
      /* fallthrough */
    default: luaL_error(L, "canonical: cannot encode a %s value", luaL_typename(L, idx));
  }
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
        return luaL_argerror(L, 2, "unknown option (only 'pretty')");
    }
    lua_getfield(L, 2, "pretty");
    pretty = lua_toboolean(L, -1);
    lua_pop(L, 1);
  }
  lua_settop(L, 1);
  lua_pushvalue(L, lua_upvalueindex(2)); /* 2: array_mt */
  lua_pushvalue(L, lua_upvalueindex(3)); /* 3: null */
  struct strbuf *b = lua_newuserdatauv(L, sizeof *b, 0); /* 4 */
  memset(b, 0, sizeof *b);
  lua_pushvalue(L, lua_upvalueindex(4)); /* its metatable: __gc frees */
  lua_setmetatable(L, 4);
  struct canon c = {L, b, pretty, 2, 3};
  put_value(&c, 1, 0);
  lua_pushlstring(L, b->p ? b->p : "", b->len);
  strbuf_free(b);
  return 1;
}

static int json_array(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 1);
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_setmetatable(L, 1);
  return 1;
}

static int json_is_array(lua_State *L) {
  int r = 0;
  if (lua_type(L, 1) == LUA_TTABLE && lua_getmetatable(L, 1)) r = lua_rawequal(L, -1, lua_upvalueindex(1));
  lua_pushboolean(L, r);
  return 1;
}

int luaopen_px_json(lua_State *L) {
  luaopen_cjson(L); /* linked in statically: Debian's lua-cjson 2.1.0 */
  int cj = lua_gettop(L);
  lua_getfield(L, cj, "decode_invalid_numbers"); /* no NaN/Infinity/hex */
  lua_pushboolean(L, 0);
  lua_call(L, 1, 0);
  /* cjson 2.1.0 has no array_mt: arrays we build are marked with ours. */
  lua_newtable(L);
  int amt = lua_gettop(L);
  lua_pushliteral(L, "px.json.array");
  lua_setfield(L, amt, "__name");

  lua_newtable(L);
  lua_pushvalue(L, cj);
  lua_pushcclosure(L, json_decode, 1);
  lua_setfield(L, -2, "decode");
  lua_pushvalue(L, cj);
  lua_pushcclosure(L, json_encode, 1);
  lua_setfield(L, -2, "encode");
  lua_pushvalue(L, cj);
  lua_pushvalue(L, amt);
  lua_getfield(L, cj, "null");
  lua_createtable(L, 0, 1);
  lua_pushcfunction(L, strbuf_gc);
  lua_setfield(L, -2, "__gc");
  lua_pushcclosure(L, json_canonical, 4);
  lua_setfield(L, -2, "canonical");
  lua_pushvalue(L, amt);
  lua_setfield(L, -2, "array_mt");
  lua_pushvalue(L, amt);
  lua_pushcclosure(L, json_array, 1);
  lua_setfield(L, -2, "array");
  lua_pushvalue(L, amt);
  lua_pushcclosure(L, json_is_array, 1);
  lua_setfield(L, -2, "is_array");
  lua_getfield(L, cj, "null");
  lua_setfield(L, -2, "null");
  return 1;
}
