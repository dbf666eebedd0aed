/*
 * px.schema: JSON Schema (draft 2020-12 subset) validation of JSON *text*.
 *
 *   compile(schema_text [, {strict=, name=}])  -> compiled | nil, msg
 *   compiled:validate(text [, {unknown=, value=, order=, max_steps=}]) -> result
 *   compiled:validate_file(path [, opts])      -> result | nil, "path: msg" (I/O)
 *       (opts.text = true: result.text holds the document's bytes)
 *   decode(text [, {order=}])                  -> value [, order] | nil, msg
 *   decode_file(path [, {order=}])             -> same, the file mmap'ed: no Lua string
 *       order = true (key order of every object) or n (objects at depth <= n)
 *   match(pattern, subject)                    -> boolean | nil, msg
 *   check_format(name, s)                      -> true | false, msg
 *
 * The text is parsed by our own JSON parser into a DOM (Debian's lua-cjson
 * 2.1.0 cannot tell [] from {}; the DOM also carries line and column of
 * every value). Schemas compile once: $ref (local JSON pointers only) is
 * resolved at compile time, patterns are compiled, and a $ref cycle that
 * never descends into the instance is a compile error.
 *
 * Regex dialect (pattern, patternProperties): an ECMA-262 subset matched
 * by a Pike VM (linear time, no backtracking): literals, ., [...] classes
 * with ranges and negation, \d \D \w \W \s \S \b \B, \t \n \r \f \v \0
 * \xHH \uHHHH, escaped punctuation, groups ( ) (?: ) (?<name> ), |, * + ?
 * {n} {n,} {n,m} (lazy forms accepted, same result), ^ $ (input start and
 * end). Lookaround and back-references are compile errors. Matching works
 * on code points and, as JSON Schema says, searches: an unanchored pattern
 * matches anywhere in the string.
 *
 * Extension keywords: "x-error": "text" replaces every error a failing
 * subschema produces by one error with that text; "x-warning": "text"
 * reports a warning wherever that subschema applies; "x-collect": "name"
 * lists the pointer of every instance that subschema accepts (result
 * .collected: how the loader finds secret references without a walk). validate{unknown=
 * "warning"} turns failures of `additionalProperties: false` into warnings
 * (and they then do not fail the instance).
 *
 * Everything allocated lives in userdata (arenas, vectors) freed by __gc,
 * so a Lua error in the middle leaks nothing.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lua.h>

int luaopen_px_json(lua_State *L);

#define COMPILED_MT "px.schema.compiled"
#define VCTX_MT "px.schema.vctx"
#define DOC_MT "px.schema.doc"
#define MAX_JSON_DEPTH 512
#define MAX_RX_DEPTH 100
#define MAX_RX_PROG 10000
#define MAX_RX_COUNT 1000
#define MAX_RX_LEN 4096
#define MAX_SCHEMA_DEPTH 1000
#define MAX_V_DEPTH 2000
#define DEFAULT_MAX_STEPS 20000000L

/* ---- arena ------------------------------------------------------------ */

struct chunk {
  struct chunk *next;
  size_t used, cap;
  max_align_t data[];
};

struct arena {
  struct chunk *head;
};

static void *arena_alloc(struct arena *a, size_t n) {
  n = (n + 15) & ~(size_t)15;
  if (!a->head || a->head->cap - a->head->used < n) {
    size_t cap = n > 65536 ? n : 65536;
    struct chunk *c = malloc(sizeof *c + cap);
    if (!c) return NULL;
    c->next = a->head;
    c->used = 0;
    c->cap = cap;
    a->head = c;
  }
  void *p = (char *)a->head->data + a->head->used;
  a->head->used += n;
  return p;
}

static void arena_free(struct arena *a) {
  struct chunk *c = a->head;
  while (c) {
    struct chunk *next = c->next;
    free(c);
    c = next;
  }
  a->head = NULL;
}

/* ---- files: mapped, not copied into a Lua string ------------------------- */

/* A file's bytes: mmap'ed (MAP_POPULATE: one call, no fault per page) or,
 * where mapping fails, read into a malloc'ed buffer. */
struct filemap {
  void *map;
  size_t len;
  char *buf;
};

static void filemap_release(struct filemap *f) {
  if (f->map) munmap(f->map, f->len);
  free(f->buf);
  f->map = NULL;
  f->buf = NULL;
}

/* NULL on success (text/len set), else a message (errno text). */
static const char *filemap_open(struct filemap *f, const char *path, const char **text, size_t *len) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return strerror(errno);
  struct stat st;
  if (fstat(fd, &st) != 0) {
    int e = errno;
    close(fd);
    return strerror(e);
  }
  if (!S_ISREG(st.st_mode)) {
    close(fd);
    return "not a regular file";
  }
  size_t size = (size_t)st.st_size;
  *text = "";
  *len = 0;
  if (size == 0) {
    close(fd);
    return NULL;
  }
  void *m = mmap(NULL, size, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, 0);
  if (m != MAP_FAILED) {
    close(fd);
    f->map = m;
    f->len = size;
    *text = m;
    *len = size;
    return NULL;
  }
  f->buf = malloc(size);
  if (!f->buf) {
    close(fd);
    return "out of memory";
  }
  size_t got = 0;
  while (got < size) {
    ssize_t n = read(fd, f->buf + got, size - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      int e = n < 0 ? errno : EIO;
      close(fd);
      return strerror(e);
    }
    got += (size_t)n;
  }
  close(fd);
  *text = f->buf;
  *len = size;
  return NULL;
}

/* ---- JSON DOM ----------------------------------------------------------- */

enum { J_NULL, J_BOOL, J_NUM, J_STR, J_ARR, J_OBJ };

struct jnode;
struct jmember {
  const char *key;
  size_t klen;
  struct jnode *val;
};

struct jnode {
  unsigned char type, boolean, isint;
  int line, col;
  union {
    struct {
      double d;
      long long i;
    } num;
    struct {
      const char *s;
      size_t len;
    } str;
    struct {
      size_t n;
      void *p; /* struct jnode ** or struct jmember * */
    } list;
  } u;
  void *aux; /* the compiler's memo */
};

#define ITEMS(n) ((struct jnode **)(n)->u.list.p)
#define MEMBERS(n) ((struct jmember *)(n)->u.list.p)

static const char *const type_names[] = {"null", "boolean", "number", "string", "array", "object"};

struct parser {
  const char *s, *end, *p;
  int line;
  const char *line_start;
  struct arena *a;
  /* scratch stack for children while a container is being parsed */
  void **stk;
  size_t sn, scap;
  char err[160];
  int oom;
};

static int perr(struct parser *ps, const char *msg) {
  if (ps->err[0] == '\0')
    snprintf(ps->err, sizeof ps->err, "line %d, column %d: %s", ps->line, (int)(ps->p - ps->line_start) + 1, msg);
  return -1;
}

static int oom(struct parser *ps) {
  ps->oom = 1;
  return perr(ps, "out of memory");
}

static void skip_ws(struct parser *ps) {
  while (ps->p < ps->end) {
    char c = *ps->p;
    if (c == '\n') {
      ps->line++;
      ps->line_start = ps->p + 1;
    } else if (c != ' ' && c != '\t' && c != '\r') {
      break;
    }
    ps->p++;
  }
}

static int stk_push(struct parser *ps, void *x) {
  if (ps->sn == ps->scap) {
    size_t ncap = ps->scap ? ps->scap * 2 : 64;
    void **n = realloc(ps->stk, ncap * sizeof *n);
    if (!n) return -1;
    ps->stk = n;
    ps->scap = ncap;
  }
  ps->stk[ps->sn++] = x;
  return 0;
}

/* Length of a well-formed UTF-8 sequence at p (0 when malformed). */
static int utf8_len(const unsigned char *p, const unsigned char *end) {
  unsigned c = p[0];
  if (c < 0x80) return 1;
  int n;
  unsigned min;
  if ((c & 0xE0) == 0xC0) {
    n = 2;
    min = 0x80;
    c &= 0x1F;
  } else if ((c & 0xF0) == 0xE0) {
    n = 3;
    min = 0x800;
    c &= 0x0F;
  } else if ((c & 0xF8) == 0xF0) {
    n = 4;
    min = 0x10000;
    c &= 0x07;
  } else {
    return 0;
  }
  if (end - p < n) return 0;
  for (int i = 1; i < n; i++) {
    if ((p[i] & 0xC0) != 0x80) return 0;
    c = (c << 6) | (p[i] & 0x3F);
  }
  if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF)) return 0;
  return n;
}

/* Decodes one code point; malformed bytes decode as themselves (len 1). */
static unsigned utf8_decode(const unsigned char *p, const unsigned char *end, int *len) {
  int n = utf8_len(p, end);
  if (n <= 1) {
    *len = 1;
    return p[0];
  }
  unsigned c = p[0] & (n == 2 ? 0x1F : n == 3 ? 0x0F : 0x07);
  for (int i = 1; i < n; i++) c = (c << 6) | (p[i] & 0x3F);
  *len = n;
  return c;
}

static char *utf8_put(char *o, unsigned c) {
  if (c < 0x80) {
    *o++ = (char)c;
  } else if (c < 0x800) {
    *o++ = (char)(0xC0 | (c >> 6));
    *o++ = (char)(0x80 | (c & 0x3F));
  } else if (c < 0x10000) {
    *o++ = (char)(0xE0 | (c >> 12));
    *o++ = (char)(0x80 | ((c >> 6) & 0x3F));
    *o++ = (char)(0x80 | (c & 0x3F));
  } else {
    *o++ = (char)(0xF0 | (c >> 18));
    *o++ = (char)(0x80 | ((c >> 12) & 0x3F));
    *o++ = (char)(0x80 | ((c >> 6) & 0x3F));
    *o++ = (char)(0x80 | (c & 0x3F));
  }
  return o;
}

static int hex4(const char *p, unsigned *out) {
  unsigned v = 0;
  for (int i = 0; i < 4; i++) {
    char c = p[i];
    v <<= 4;
    if (c >= '0' && c <= '9') v |= (unsigned)(c - '0');
    else if (c >= 'a' && c <= 'f') v |= (unsigned)(c - 'a' + 10);
    else if (c >= 'A' && c <= 'F') v |= (unsigned)(c - 'A' + 10);
    else return -1;
  }
  *out = v;
  return 0;
}

/* Parses a string at ps->p (on the quote) into arena memory. */
static int parse_string(struct parser *ps, const char **out, size_t *outlen) {
  const char *start = ++ps->p;
  size_t rawlen = 0;
  int escapes = 0;
  while (1) {
    if (ps->p >= ps->end) return perr(ps, "unterminated string");
    unsigned char c = (unsigned char)*ps->p;
    if (c == '"') break;
    if (c < 0x20) return perr(ps, c == '\n' ? "unterminated string (newline inside)" : "control character in string");
    if (c == '\\') {
      escapes = 1;
      ps->p += 2;
      rawlen += 2;
      continue;
    }
    if (c >= 0x80) {
      int n = utf8_len((const unsigned char *)ps->p, (const unsigned char *)ps->end);
      if (!n) return perr(ps, "invalid UTF-8 in string");
      ps->p += n;
      rawlen += (size_t)n;
      continue;
    }
    ps->p++;
    rawlen++;
  }
  if (ps->p > ps->end) return perr(ps, "unterminated string");
  char *buf = arena_alloc(ps->a, rawlen + 1);
  if (!buf) return oom(ps);
  if (!escapes) {
    memcpy(buf, start, rawlen);
    buf[rawlen] = '\0';
    *out = buf;
    *outlen = rawlen;
    ps->p++;
    return 0;
  }
  char *o = buf;
  const char *q = start;
  while (q < ps->p) {
    if (*q != '\\') {
      *o++ = *q++;
      continue;
    }
    q++;
    switch (*q) {
      case '"': *o++ = '"'; break;
      case '\\': *o++ = '\\'; break;
      case '/': *o++ = '/'; break;
      case 'b': *o++ = '\b'; break;
      case 'f': *o++ = '\f'; break;
      case 'n': *o++ = '\n'; break;
      case 'r': *o++ = '\r'; break;
      case 't': *o++ = '\t'; break;
      case 'u': {
        unsigned cp;
        if (ps->p - q < 5 || hex4(q + 1, &cp) != 0) {
          ps->p = q - 1;
          return perr(ps, "bad \\u escape");
        }
        q += 4;
        if (cp >= 0xD800 && cp <= 0xDBFF) {
          unsigned lo;
          if (ps->p - q >= 7 && q[1] == '\\' && q[2] == 'u' && hex4(q + 3, &lo) == 0 && lo >= 0xDC00 &&
              lo <= 0xDFFF) {
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            q += 6;
          } else {
            ps->p = q - 5;
            return perr(ps, "lone surrogate in \\u escape");
          }
        } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
          ps->p = q - 5;
          return perr(ps, "lone surrogate in \\u escape");
        }
        o = utf8_put(o, cp);
        break;
      }
      default:
        ps->p = q - 1;
        return perr(ps, "bad escape in string");
    }
    q++;
  }
  *o = '\0';
  *out = buf;
  *outlen = (size_t)(o - buf);
  ps->p++;
  return 0;
}

static int parse_number(struct parser *ps, struct jnode *n) {
  const char *s = ps->p;
  const char *p = s;
  int isint = 1;
  if (p < ps->end && *p == '-') p++;
  if (p >= ps->end || *p < '0' || *p > '9') return perr(ps, "bad number");
  if (*p == '0') {
    p++;
  } else {
    while (p < ps->end && *p >= '0' && *p <= '9') p++;
  }
  if (p < ps->end && *p == '.') {
    isint = 0;
    p++;
    if (p >= ps->end || *p < '0' || *p > '9') {
      ps->p = p;
      return perr(ps, "bad number: digit expected after '.'");
    }
    while (p < ps->end && *p >= '0' && *p <= '9') p++;
  }
  if (p < ps->end && (*p == 'e' || *p == 'E')) {
    isint = 0;
    p++;
    if (p < ps->end && (*p == '+' || *p == '-')) p++;
    if (p >= ps->end || *p < '0' || *p > '9') {
      ps->p = p;
      return perr(ps, "bad number: digit expected in exponent");
    }
    while (p < ps->end && *p >= '0' && *p <= '9') p++;
  }
  size_t len = (size_t)(p - s);
  char tmp[64];
  char *buf = tmp;
  if (len >= sizeof tmp) {
    buf = arena_alloc(ps->a, len + 1);
    if (!buf) return oom(ps);
  }
  memcpy(buf, s, len);
  buf[len] = '\0';
  double d = strtod(buf, NULL);
  if (!isfinite(d)) return perr(ps, "number out of range");
  n->type = J_NUM;
  n->u.num.d = d;
  n->isint = 0;
  if (isint && len <= 19) {
    char *endp;
    long long v = strtoll(buf, &endp, 10);
    /* strtoll saturates on overflow; only an exact round trip is an integer */
    if (!(v == LLONG_MAX || v == LLONG_MIN)) {
      n->u.num.i = v;
      n->isint = 1;
    }
  }
  ps->p = p;
  return 0;
}

static int lit(struct parser *ps, const char *word) {
  size_t n = strlen(word);
  if ((size_t)(ps->end - ps->p) < n || memcmp(ps->p, word, n) != 0) return -1;
  ps->p += n;
  return 0;
}

static struct jnode *parse_value(struct parser *ps, int depth);

static struct jnode *new_node(struct parser *ps) {
  struct jnode *n = arena_alloc(ps->a, sizeof *n);
  if (!n) {
    oom(ps);
    return NULL;
  }
  memset(n, 0, sizeof *n);
  n->line = ps->line;
  n->col = (int)(ps->p - ps->line_start) + 1;
  return n;
}

static struct jnode *parse_array(struct parser *ps, struct jnode *n, int depth) {
  size_t base = ps->sn;
  ps->p++;
  skip_ws(ps);
  if (ps->p < ps->end && *ps->p == ']') {
    ps->p++;
  } else {
    while (1) {
      struct jnode *v = parse_value(ps, depth + 1);
      if (!v) return NULL;
      if (stk_push(ps, v) != 0) {
        oom(ps);
        return NULL;
      }
      skip_ws(ps);
      if (ps->p < ps->end && *ps->p == ',') {
        ps->p++;
        skip_ws(ps);
        continue;
      }
      if (ps->p < ps->end && *ps->p == ']') {
        ps->p++;
        break;
      }
      perr(ps, "expected ',' or ']' in array");
      return NULL;
    }
  }
  size_t cnt = ps->sn - base;
  struct jnode **items = cnt ? arena_alloc(ps->a, cnt * sizeof *items) : NULL;
  if (cnt && !items) {
    oom(ps);
    return NULL;
  }
  for (size_t i = 0; i < cnt; i++) items[i] = ps->stk[base + i];
  ps->sn = base;
  n->type = J_ARR;
  n->u.list.n = cnt;
  n->u.list.p = items;
  return n;
}

static struct jnode *parse_object(struct parser *ps, struct jnode *n, int depth) {
  size_t base = ps->sn;
  ps->p++;
  skip_ws(ps);
  if (ps->p < ps->end && *ps->p == '}') {
    ps->p++;
  } else {
    while (1) {
      if (ps->p >= ps->end || *ps->p != '"') {
        perr(ps, "expected a string key in object");
        return NULL;
      }
      const char *key;
      size_t klen;
      if (parse_string(ps, &key, &klen) != 0) return NULL;
      skip_ws(ps);
      if (ps->p >= ps->end || *ps->p != ':') {
        perr(ps, "expected ':' after object key");
        return NULL;
      }
      ps->p++;
      skip_ws(ps);
      struct jnode *v = parse_value(ps, depth + 1);
      if (!v) return NULL;
      if (stk_push(ps, (void *)key) != 0 || stk_push(ps, (void *)(uintptr_t)klen) != 0 || stk_push(ps, v) != 0) {
        oom(ps);
        return NULL;
      }
      skip_ws(ps);
      if (ps->p < ps->end && *ps->p == ',') {
        ps->p++;
        skip_ws(ps);
        continue;
      }
      if (ps->p < ps->end && *ps->p == '}') {
        ps->p++;
        break;
      }
      perr(ps, "expected ',' or '}' in object");
      return NULL;
    }
  }
  size_t cnt = (ps->sn - base) / 3;
  struct jmember *m = cnt ? arena_alloc(ps->a, cnt * sizeof *m) : NULL;
  if (cnt && !m) {
    oom(ps);
    return NULL;
  }
  for (size_t i = 0; i < cnt; i++) {
    m[i].key = ps->stk[base + 3 * i];
    m[i].klen = (size_t)(uintptr_t)ps->stk[base + 3 * i + 1];
    m[i].val = ps->stk[base + 3 * i + 2];
  }
  ps->sn = base;
  n->type = J_OBJ;
  n->u.list.n = cnt;
  n->u.list.p = m;
  return n;
}

static struct jnode *parse_value(struct parser *ps, int depth) {
  if (depth > MAX_JSON_DEPTH) {
    perr(ps, "nesting too deep");
    return NULL;
  }
  skip_ws(ps);
  if (ps->p >= ps->end) {
    perr(ps, "unexpected end of text");
    return NULL;
  }
  struct jnode *n = new_node(ps);
  if (!n) return NULL;
  switch (*ps->p) {
    case '{': return parse_object(ps, n, depth);
    case '[': return parse_array(ps, n, depth);
    case '"':
      if (parse_string(ps, &n->u.str.s, &n->u.str.len) != 0) return NULL;
      n->type = J_STR;
      return n;
    case 't':
      if (lit(ps, "true") != 0) break;
      n->type = J_BOOL;
      n->boolean = 1;
      return n;
    case 'f':
      if (lit(ps, "false") != 0) break;
      n->type = J_BOOL;
      return n;
    case 'n':
      if (lit(ps, "null") != 0) break;
      n->type = J_NULL;
      return n;
    default:
      if (*ps->p == '-' || (*ps->p >= '0' && *ps->p <= '9')) {
        if (parse_number(ps, n) != 0) return NULL;
        return n;
      }
  }
  perr(ps, "unexpected character");
  return NULL;
}

/* Parses text into arena a. NULL with err filled on failure. */
static struct jnode *json_parse(struct arena *a, const char *s, size_t len, char *err, size_t errlen, int *is_oom) {
  struct parser ps;
  memset(&ps, 0, sizeof ps);
  ps.s = ps.p = ps.line_start = s;
  ps.end = s + len;
  ps.line = 1;
  ps.a = a;
  if (len >= 3 && memcmp(s, "\xEF\xBB\xBF", 3) == 0) ps.p = ps.line_start = s + 3;
  struct jnode *root = parse_value(&ps, 0);
  if (root) {
    skip_ws(&ps);
    if (ps.p < ps.end) {
      perr(&ps, "unexpected text after the JSON value");
      root = NULL;
    }
  }
  free(ps.stk);
  if (!root) {
    snprintf(err, errlen, "%s", ps.err);
    if (is_oom) *is_oom = ps.oom;
  }
  return root;
}

/* ---- regex: ECMA subset, Pike VM ----------------------------------------- */

enum { RX_CHAR, RX_ANY, RX_CLASS, RX_SPLIT, RX_JMP, RX_MATCH, RX_BOL, RX_EOL, RX_WORDB, RX_NWORDB };

struct rx_inst {
  unsigned char op;
  int x, y;
  unsigned c;
};

struct rx_range {
  unsigned lo, hi;
};

struct rx_class {
  struct rx_range *r;
  int n, neg;
};

/* Results for short subjects, by content: site files repeat the same
 * values (bridges, protocols, options) thousands of times. */
#define RX_MEMO 64
#define RX_MEMO_LEN 48
struct rx_memo {
  uint32_t hash;
  unsigned char len, result; /* result: 0 empty, 1 no match, 2 match */
  char s[RX_MEMO_LEN];
};

struct regex {
  struct rx_memo *memo;
  struct rx_inst *prog;
  int n;
  struct rx_class *cls;
  int ncls;
  int anchored; /* starts with ^ outside any alternation: threads start at 0 only */
  /* matching scratch, sized to the program */
  int *clist, *nlist, *stack;
  unsigned *mark;
  unsigned gen;
};

enum { N_EMPTY, N_CHAR, N_ANY, N_CLASS, N_CAT, N_ALT, N_REP, N_BOL, N_EOL, N_WORDB, N_NWORDB };

struct rnode {
  int type;
  unsigned c;
  int cls, min, max; /* max -1: unbounded */
  struct rnode *a, *b;
};

struct rxp {
  const unsigned char *p, *end, *start;
  struct arena *tmp;
  struct rx_class *cls;
  int ncls, capcls;
  char err[120];
  int depth;
};

static int rx_err(struct rxp *r, const char *msg) {
  if (!r->err[0]) snprintf(r->err, sizeof r->err, "%s at offset %d", msg, (int)(r->p - r->start));
  return -1;
}

static struct rnode *rx_node(struct rxp *r, int type) {
  struct rnode *n = arena_alloc(r->tmp, sizeof *n);
  if (!n) {
    rx_err(r, "out of memory");
    return NULL;
  }
  memset(n, 0, sizeof *n);
  n->type = type;
  return n;
}

/* Growable range list while a class is being parsed. */
struct rangebuf {
  struct rx_range *r;
  int n, cap;
};

static int rb_add(struct rangebuf *b, unsigned lo, unsigned hi) {
  if (b->n == b->cap) {
    int ncap = b->cap ? b->cap * 2 : 8;
    struct rx_range *nr = realloc(b->r, (size_t)ncap * sizeof *nr);
    if (!nr) return -1;
    b->r = nr;
    b->cap = ncap;
  }
  b->r[b->n].lo = lo;
  b->r[b->n].hi = hi;
  b->n++;
  return 0;
}

static const struct rx_range rx_digit[] = {{'0', '9'}};
static const struct rx_range rx_word[] = {{'0', '9'}, {'A', 'Z'}, {'_', '_'}, {'a', 'z'}};
static const struct rx_range rx_space[] = {{9, 13},         {' ', ' '},       {0xA0, 0xA0},     {0x1680, 0x1680},
                                           {0x2000, 0x200A}, {0x2028, 0x2029}, {0x202F, 0x202F}, {0x205F, 0x205F},
                                           {0x3000, 0x3000}, {0xFEFF, 0xFEFF}};

/* Adds a predefined set (or its complement) to b. */
static int rb_add_set(struct rangebuf *b, const struct rx_range *set, int n, int negate) {
  if (!negate) {
    for (int i = 0; i < n; i++)
      if (rb_add(b, set[i].lo, set[i].hi) != 0) return -1;
    return 0;
  }
  unsigned next = 0;
  for (int i = 0; i < n; i++) {
    if (set[i].lo > next && rb_add(b, next, set[i].lo - 1) != 0) return -1;
    next = set[i].hi + 1;
  }
  return next <= 0x10FFFF ? rb_add(b, next, 0x10FFFF) : 0;
}

static int rx_hexn(struct rxp *r, int n, unsigned *out) {
  unsigned v = 0;
  for (int i = 0; i < n; i++) {
    if (r->p >= r->end) return -1;
    unsigned char c = *r->p;
    v <<= 4;
    if (c >= '0' && c <= '9') v |= c - '0';
    else if (c >= 'a' && c <= 'f') v |= c - 'a' + 10;
    else if (c >= 'A' && c <= 'F') v |= c - 'A' + 10;
    else return -1;
    r->p++;
  }
  *out = v;
  return 0;
}

/*
 * Parses the escape after a backslash (r->p is past the '\').
 * Returns 0 with *cp set for a character, 1..3 with *set and *neg for a class
 * escape (d, w, s), 4 for \b, 5 for \B; -1 on error.
 */
static int rx_escape(struct rxp *r, int in_class, unsigned *cp, const struct rx_range **set, int *nset, int *neg) {
  if (r->p >= r->end) return rx_err(r, "trailing backslash");
  unsigned char c = *r->p++;
  switch (c) {
    case 'd': case 'D': *set = rx_digit; *nset = 1; *neg = c == 'D'; return 1;
    case 'w': case 'W': *set = rx_word; *nset = 4; *neg = c == 'W'; return 2;
    case 's': case 'S': *set = rx_space; *nset = 10; *neg = c == 'S'; return 3;
    case 'b':
      if (in_class) {
        *cp = '\b';
        return 0;
      }
      return 4;
    case 'B':
      if (in_class) return rx_err(r, "\\B inside a class");
      return 5;
    case 't': *cp = '\t'; return 0;
    case 'n': *cp = '\n'; return 0;
    case 'r': *cp = '\r'; return 0;
    case 'f': *cp = '\f'; return 0;
    case 'v': *cp = '\v'; return 0;
    case '0':
      if (r->p < r->end && *r->p >= '0' && *r->p <= '9') return rx_err(r, "octal escapes are not supported");
      *cp = 0;
      return 0;
    case 'x':
      if (rx_hexn(r, 2, cp) != 0) return rx_err(r, "bad \\x escape");
      return 0;
    case 'u': {
      if (rx_hexn(r, 4, cp) != 0) return rx_err(r, "bad \\u escape");
      unsigned lo;
      if (*cp >= 0xD800 && *cp <= 0xDBFF && r->end - r->p >= 6 && r->p[0] == '\\' && r->p[1] == 'u') {
        const unsigned char *save = r->p;
        r->p += 2;
        if (rx_hexn(r, 4, &lo) == 0 && lo >= 0xDC00 && lo <= 0xDFFF) {
          *cp = 0x10000 + ((*cp - 0xD800) << 10) + (lo - 0xDC00);
        } else {
          r->p = save;
        }
      }
      return 0;
    }
    case 'c':
      if (r->p < r->end && ((*r->p >= 'a' && *r->p <= 'z') || (*r->p >= 'A' && *r->p <= 'Z'))) {
        *cp = *r->p++ % 32;
        return 0;
      }
      return rx_err(r, "bad \\c escape");
    default:
      if (c >= '1' && c <= '9') return rx_err(r, "back-references are not supported");
      if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) {
        r->p--;
        return rx_err(r, "unknown escape");
      }
      if (c >= 0x80) {
        int len;
        r->p--;
        *cp = utf8_decode(r->p, r->end, &len);
        r->p += len;
        return 0;
      }
      *cp = c; /* escaped punctuation: itself */
      return 0;
  }
}

static int rx_add_class(struct rxp *r, struct rangebuf *b, int neg) {
  if (r->ncls == r->capcls) {
    int ncap = r->capcls ? r->capcls * 2 : 4;
    struct rx_class *nc = realloc(r->cls, (size_t)ncap * sizeof *nc);
    if (!nc) return rx_err(r, "out of memory");
    r->cls = nc;
    r->capcls = ncap;
  }
  r->cls[r->ncls].r = b->r;
  r->cls[r->ncls].n = b->n;
  r->cls[r->ncls].neg = neg;
  b->r = NULL; /* owned by the class list now */
  return r->ncls++;
}

static struct rnode *rx_class_from_set(struct rxp *r, const struct rx_range *set, int nset, int neg) {
  struct rangebuf b = {0};
  if (rb_add_set(&b, set, nset, 0) != 0) {
    free(b.r);
    rx_err(r, "out of memory");
    return NULL;
  }
  int idx = rx_add_class(r, &b, neg);
  if (idx < 0) {
    free(b.r);
    return NULL;
  }
  struct rnode *n = rx_node(r, N_CLASS);
  if (n) n->cls = idx;
  return n;
}

static struct rnode *rx_parse_class(struct rxp *r) {
  struct rangebuf b = {0};
  int neg = 0;
  r->p++; /* '[' */
  if (r->p < r->end && *r->p == '^') {
    neg = 1;
    r->p++;
  }
  while (1) {
    if (r->p >= r->end) {
      rx_err(r, "missing ] in class");
      goto fail;
    }
    if (*r->p == ']') {
      r->p++;
      break;
    }
    unsigned lo, hi;
    const struct rx_range *set;
    int nset, sneg, k;
    if (*r->p == '\\') {
      r->p++;
      k = rx_escape(r, 1, &lo, &set, &nset, &sneg);
      if (k < 0) goto fail;
      if (k > 0) {
        if (rb_add_set(&b, set, nset, sneg) != 0) goto nomem;
        if (r->p + 1 < r->end && *r->p == '-' && r->p[1] != ']') {
          rx_err(r, "class escape used in a range");
          goto fail;
        }
        continue;
      }
    } else {
      int len;
      lo = utf8_decode(r->p, r->end, &len);
      r->p += len;
    }
    hi = lo;
    if (r->p + 1 < r->end && *r->p == '-' && r->p[1] != ']') {
      r->p++;
      if (*r->p == '\\') {
        r->p++;
        k = rx_escape(r, 1, &hi, &set, &nset, &sneg);
        if (k < 0) goto fail;
        if (k > 0) {
          rx_err(r, "class escape used in a range");
          goto fail;
        }
      } else {
        int len;
        hi = utf8_decode(r->p, r->end, &len);
        r->p += len;
      }
      if (hi < lo) {
        rx_err(r, "range out of order in class");
        goto fail;
      }
    }
    if (rb_add(&b, lo, hi) != 0) goto nomem;
  }
  {
    int idx = rx_add_class(r, &b, neg);
    if (idx < 0) goto fail;
    struct rnode *n = rx_node(r, N_CLASS);
    if (n) n->cls = idx;
    return n;
  }
nomem:
  rx_err(r, "out of memory");
fail:
  free(b.r);
  return NULL;
}

static struct rnode *rx_parse_alt(struct rxp *r);

/* {n}, {n,}, {n,m}: 1 and bounds set when it is a quantifier, 0 when '{' is a literal. */
static int rx_braces(struct rxp *r, int *min, int *max) {
  const unsigned char *p = r->p + 1;
  long a = 0, b;
  int digits = 0;
  while (p < r->end && *p >= '0' && *p <= '9') {
    if (a <= 100000) a = a * 10 + (*p - '0');
    p++;
    digits++;
  }
  if (!digits) return 0;
  b = a;
  if (p < r->end && *p == ',') {
    p++;
    b = -1;
    int d2 = 0;
    long v = 0;
    while (p < r->end && *p >= '0' && *p <= '9') {
      if (v <= 100000) v = v * 10 + (*p - '0');
      p++;
      d2++;
    }
    if (d2) b = v;
  }
  if (p >= r->end || *p != '}') return 0;
  r->p = p + 1;
  *min = (int)(a > 100001 ? 100001 : a);
  *max = b < 0 ? -1 : (int)(b > 100001 ? 100001 : b);
  return 1;
}

static struct rnode *rx_parse_atom(struct rxp *r) {
  unsigned char c = *r->p;
  struct rnode *n;
  switch (c) {
    case '(': {
      if (++r->depth > MAX_RX_DEPTH) {
        rx_err(r, "pattern nests too deeply");
        return NULL;
      }
      r->p++;
      if (r->p < r->end && *r->p == '?') {
        if (r->end - r->p >= 2 && r->p[1] == ':') {
          r->p += 2;
        } else if (r->end - r->p >= 3 && r->p[1] == '<' && r->p[2] != '=' && r->p[2] != '!') {
          r->p += 2;
          while (r->p < r->end && *r->p != '>') r->p++;
          if (r->p >= r->end) {
            rx_err(r, "unterminated group name");
            return NULL;
          }
          r->p++;
        } else {
          rx_err(r, "lookaround is not supported");
          return NULL;
        }
      }
      n = rx_parse_alt(r);
      if (!n) return NULL;
      if (r->p >= r->end || *r->p != ')') {
        rx_err(r, "missing )");
        return NULL;
      }
      r->p++;
      r->depth--;
      return n;
    }
    case '[': return rx_parse_class(r);
    case '.': r->p++; return rx_node(r, N_ANY);
    case '^': r->p++; return rx_node(r, N_BOL);
    case '$': r->p++; return rx_node(r, N_EOL);
    case '*': case '+': case '?':
      rx_err(r, "nothing to repeat");
      return NULL;
    case '{': {
      int mn, mx;
      const unsigned char *save = r->p;
      if (rx_braces(r, &mn, &mx)) {
        r->p = save;
        rx_err(r, "nothing to repeat");
        return NULL;
      }
      r->p++;
      n = rx_node(r, N_CHAR);
      if (n) n->c = '{';
      return n;
    }
    case '\\': {
      unsigned cp;
      const struct rx_range *set;
      int nset, neg;
      r->p++;
      int k = rx_escape(r, 0, &cp, &set, &nset, &neg);
      if (k < 0) return NULL;
      if (k == 4) return rx_node(r, N_WORDB);
      if (k == 5) return rx_node(r, N_NWORDB);
      if (k > 0) return rx_class_from_set(r, set, nset, neg);
      n = rx_node(r, N_CHAR);
      if (n) n->c = cp;
      return n;
    }
    default: {
      int len;
      unsigned cp = utf8_decode(r->p, r->end, &len);
      r->p += len;
      n = rx_node(r, N_CHAR);
      if (n) n->c = cp;
      return n;
    }
  }
}

/* One atom and at most one quantifier (ECMA: "a**" is a syntax error). */
static struct rnode *rx_parse_repeat(struct rxp *r) {
  struct rnode *atom = rx_parse_atom(r);
  if (!atom || r->p >= r->end) return atom;
  int mn, mx;
  unsigned char c = *r->p;
  if (c == '*') {
    mn = 0, mx = -1;
    r->p++;
  } else if (c == '+') {
    mn = 1, mx = -1;
    r->p++;
  } else if (c == '?') {
    mn = 0, mx = 1;
    r->p++;
  } else if (c == '{') {
    if (!rx_braces(r, &mn, &mx)) return atom; /* a literal '{' follows */
    if (mx >= 0 && mx < mn) return rx_err(r, "numbers out of order in {}"), NULL;
    if (mn > MAX_RX_COUNT || mx > MAX_RX_COUNT) return rx_err(r, "repetition count too large"), NULL;
  } else {
    return atom;
  }
  if (r->p < r->end && *r->p == '?') r->p++; /* lazy: same answer for a yes/no match */
  if (atom->type == N_BOL || atom->type == N_EOL || atom->type == N_WORDB || atom->type == N_NWORDB)
    return rx_err(r, "nothing to repeat"), NULL;
  if (r->p < r->end) {
    int a, b;
    const unsigned char *save = r->p;
    if (*r->p == '*' || *r->p == '+' || *r->p == '?' || (*r->p == '{' && rx_braces(r, &a, &b))) {
      r->p = save;
      return rx_err(r, "nothing to repeat"), NULL;
    }
  }
  struct rnode *rep = rx_node(r, N_REP);
  if (!rep) return NULL;
  rep->a = atom;
  rep->min = mn;
  rep->max = mx;
  return rep;
}

static struct rnode *rx_parse_cat(struct rxp *r) {
  struct rnode *left = NULL;
  while (r->p < r->end && *r->p != '|' && *r->p != ')') {
    struct rnode *n = rx_parse_repeat(r);
    if (!n) return NULL;
    if (!left) {
      left = n;
    } else {
      struct rnode *cat = rx_node(r, N_CAT);
      if (!cat) return NULL;
      cat->a = left;
      cat->b = n;
      left = cat;
    }
  }
  return left ? left : rx_node(r, N_EMPTY);
}

static struct rnode *rx_parse_alt(struct rxp *r) {
  struct rnode *left = rx_parse_cat(r);
  if (!left) return NULL;
  while (r->p < r->end && *r->p == '|') {
    r->p++;
    struct rnode *right = rx_parse_cat(r);
    if (!right) return NULL;
    struct rnode *alt = rx_node(r, N_ALT);
    if (!alt) return NULL;
    alt->a = left;
    alt->b = right;
    left = alt;
  }
  return left;
}

/* Program size of a node, saturating at MAX_RX_PROG + 1. */
static long rx_size(const struct rnode *n) {
  long s, a;
  switch (n->type) {
    case N_EMPTY: return 0;
    case N_CAT: s = rx_size(n->a) + rx_size(n->b); break;
    case N_ALT: s = rx_size(n->a) + rx_size(n->b) + 2; break;
    case N_REP:
      a = rx_size(n->a);
      s = a * n->min;
      if (n->max < 0) s += a + 2;
      else s += (long)(n->max - n->min) * (a + 1);
      break;
    default: return 1;
  }
  return s > MAX_RX_PROG ? MAX_RX_PROG + 1 : s;
}

static void rx_emit(struct regex *re, const struct rnode *n) {
  struct rx_inst *I = re->prog;
  switch (n->type) {
    case N_EMPTY: return;
    case N_CHAR: I[re->n].op = RX_CHAR; I[re->n++].c = n->c; return;
    case N_ANY: I[re->n++].op = RX_ANY; return;
    case N_CLASS: I[re->n].op = RX_CLASS; I[re->n++].x = n->cls; return;
    case N_BOL: I[re->n++].op = RX_BOL; return;
    case N_EOL: I[re->n++].op = RX_EOL; return;
    case N_WORDB: I[re->n++].op = RX_WORDB; return;
    case N_NWORDB: I[re->n++].op = RX_NWORDB; return;
    case N_CAT:
      rx_emit(re, n->a);
      rx_emit(re, n->b);
      return;
    case N_ALT: {
      int split = re->n++;
      I[split].op = RX_SPLIT;
      I[split].x = re->n;
      rx_emit(re, n->a);
      int jmp = re->n++;
      I[jmp].op = RX_JMP;
      I[split].y = re->n;
      rx_emit(re, n->b);
      I[jmp].x = re->n;
      return;
    }
    case N_REP: {
      for (int i = 0; i < n->min; i++) rx_emit(re, n->a);
      if (n->max < 0) {
        int split = re->n++;
        I[split].op = RX_SPLIT;
        I[split].x = re->n;
        rx_emit(re, n->a);
        I[re->n].op = RX_JMP;
        I[re->n++].x = split;
        I[split].y = re->n;
      } else {
        int first = re->n, count = n->max - n->min;
        /* every optional copy may skip straight to the end */
        for (int i = 0; i < count; i++) {
          int split = re->n++;
          I[split].op = RX_SPLIT;
          I[split].x = re->n;
          I[split].y = -1;
          rx_emit(re, n->a);
        }
        for (int pc = first; pc < re->n; pc++)
          if (I[pc].op == RX_SPLIT && I[pc].y == -1) I[pc].y = re->n;
      }
      return;
    }
  }
}

static void regex_free(struct regex *re) {
  if (!re) return;
  for (int i = 0; i < re->ncls; i++) free(re->cls[i].r);
  free(re->cls);
  free(re->prog);
  free(re->clist);
  free(re->nlist);
  free(re->stack);
  free(re->mark);
  free(re->memo);
  free(re);
}

/* Compiles a pattern; NULL with err set on failure. */
static struct regex *regex_compile(const char *pat, size_t len, char *err, size_t errlen) {
  if (len > MAX_RX_LEN) {
    snprintf(err, errlen, "pattern too long (more than %d bytes)", MAX_RX_LEN);
    return NULL;
  }
  struct arena tmp = {0};
  struct rxp r;
  memset(&r, 0, sizeof r);
  r.p = r.start = (const unsigned char *)pat;
  r.end = r.p + len;
  r.tmp = &tmp;
  struct regex *re = NULL;
  struct rnode *root = rx_parse_alt(&r);
  if (root && r.p < r.end) {
    rx_err(&r, "unmatched )");
    root = NULL;
  }
  if (root) {
    long size = rx_size(root) + 1;
    if (size > MAX_RX_PROG) {
      snprintf(r.err, sizeof r.err, "pattern too complex (more than %d steps)", MAX_RX_PROG);
    } else {
      re = calloc(1, sizeof *re);
      size_t cap = (size_t)size;
      if (re) {
        re->prog = calloc(cap, sizeof *re->prog);
        re->clist = malloc(cap * sizeof(int));
        re->nlist = malloc(cap * sizeof(int));
        re->stack = malloc((2 * cap + 2) * sizeof(int));
        re->mark = calloc(cap, sizeof(unsigned));
        re->memo = calloc(RX_MEMO, sizeof *re->memo);
      }
      if (!re || !re->prog || !re->clist || !re->nlist || !re->stack || !re->mark || !re->memo) {
        snprintf(r.err, sizeof r.err, "out of memory");
        if (re) {
          re->cls = r.cls;
          re->ncls = r.ncls;
          r.cls = NULL;
          r.ncls = 0;
        }
        regex_free(re);
        re = NULL;
      } else {
        re->cls = r.cls;
        re->ncls = r.ncls;
        r.cls = NULL;
        r.ncls = 0;
        rx_emit(re, root);
        re->prog[re->n++].op = RX_MATCH;
        const struct rnode *first = root;
        while (first->type == N_CAT) first = first->a;
        re->anchored = first->type == N_BOL;
      }
    }
  }
  if (!re) {
    for (int i = 0; i < r.ncls; i++) free(r.cls[i].r);
    free(r.cls);
    snprintf(err, errlen, "%s", r.err[0] ? r.err : "bad pattern");
  }
  arena_free(&tmp);
  return re;
}

static int is_word(long c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static int class_has(const struct rx_class *k, unsigned c) {
  int in = 0;
  for (int i = 0; i < k->n; i++)
    if (c >= k->r[i].lo && c <= k->r[i].hi) {
      in = 1;
      break;
    }
  return in != k->neg;
}

/* Follows epsilon edges from pc; adds consuming states to list. 1 on MATCH. */
static int rx_add(struct regex *re, int *list, int *ln, int pc0, long prev, long cur) {
  int sp = 0;
  re->stack[sp++] = pc0;
  while (sp > 0) {
    int pc = re->stack[--sp];
    if (re->mark[pc] == re->gen) continue;
    re->mark[pc] = re->gen;
    const struct rx_inst *in = &re->prog[pc];
    switch (in->op) {
      case RX_MATCH: return 1;
      case RX_JMP: re->stack[sp++] = in->x; break;
      case RX_SPLIT:
        re->stack[sp++] = in->y;
        re->stack[sp++] = in->x;
        break;
      case RX_BOL:
        if (prev < 0) re->stack[sp++] = pc + 1;
        break;
      case RX_EOL:
        if (cur < 0) re->stack[sp++] = pc + 1;
        break;
      case RX_WORDB:
        if (is_word(prev) != is_word(cur)) re->stack[sp++] = pc + 1;
        break;
      case RX_NWORDB:
        if (is_word(prev) == is_word(cur)) re->stack[sp++] = pc + 1;
        break;
      default: list[(*ln)++] = pc;
    }
  }
  return 0;
}

static void rx_newgen(struct regex *re) {
  if (++re->gen == 0) { /* wrapped: old marks could collide */
    memset(re->mark, 0, (size_t)re->n * sizeof *re->mark);
    re->gen = 1;
  }
}

static int regex_run(struct regex *re, const char *s, size_t len);

/* Unanchored search: 1 when the pattern matches somewhere in s. */
static int regex_search(struct regex *re, const char *s, size_t len) {
  if (len > RX_MEMO_LEN) return regex_run(re, s, len);
  uint32_t h = 2166136261u;
  for (size_t i = 0; i < len; i++) h = (h ^ (unsigned char)s[i]) * 16777619u;
  struct rx_memo *m = &re->memo[h % RX_MEMO];
  if (m->result && m->hash == h && m->len == len && memcmp(m->s, s, len) == 0) return m->result == 2;
  int r = regex_run(re, s, len);
  m->hash = h;
  m->len = (unsigned char)len;
  m->result = r ? 2 : 1;
  memcpy(m->s, s, len);
  return r;
}

static int regex_run(struct regex *re, const char *s, size_t len) {
  const unsigned char *p = (const unsigned char *)s, *end = p + len;
  int cn = 0, nn, clen = 0;
  long prev = -1, cur = p < end ? (long)utf8_decode(p, end, &clen) : -1;
  rx_newgen(re);
  if (rx_add(re, re->clist, &cn, 0, prev, cur)) return 1;
  while (p < end) {
    const unsigned char *np = p + clen;
    int nlen = 0;
    long next = np < end ? (long)utf8_decode(np, end, &nlen) : -1;
    rx_newgen(re);
    nn = 0;
    for (int i = 0; i < cn; i++) {
      const struct rx_inst *in = &re->prog[re->clist[i]];
      int ok;
      switch (in->op) {
        case RX_CHAR: ok = (unsigned long)cur == in->c; break;
        case RX_ANY: ok = cur != '\n' && cur != '\r' && cur != 0x2028 && cur != 0x2029; break;
        case RX_CLASS: ok = class_has(&re->cls[in->x], (unsigned)cur); break;
        default: ok = 0;
      }
      if (ok && rx_add(re, re->nlist, &nn, re->clist[i] + 1, cur, next)) return 1;
    }
    if (!re->anchored && rx_add(re, re->nlist, &nn, 0, cur, next)) return 1;
    if (nn == 0 && re->anchored) return 0; /* no thread left and none can start */
    int *t = re->clist;
    re->clist = re->nlist;
    re->nlist = t;
    cn = nn;
    p = np;
    clen = nlen;
    prev = cur;
    cur = next;
  }
  return 0;
}

/* ---- formats ------------------------------------------------------------ */

enum { F_NONE, F_IPV4, F_IPV4_CIDR, F_MAC, F_HOSTNAME };
static const char *const format_names[] = {"", "ipv4", "ipv4-cidr", "mac", "hostname", NULL};

/* Parses a decimal 0..max without leading zeros; returns chars used or 0. */
static size_t dec_part(const char *s, size_t len, unsigned max) {
  size_t i = 0;
  unsigned v = 0;
  while (i < len && s[i] >= '0' && s[i] <= '9' && i < 4) v = v * 10 + (unsigned)(s[i++] - '0');
  if (i == 0 || (i > 1 && s[0] == '0') || v > max) return 0;
  return i;
}

static size_t ipv4_prefix(const char *s, size_t len) {
  size_t pos = 0;
  for (int k = 0; k < 4; k++) {
    if (k > 0) {
      if (pos >= len || s[pos] != '.') return 0;
      pos++;
    }
    size_t n = dec_part(s + pos, len - pos, 255);
    if (!n) return 0;
    pos += n;
  }
  return pos;
}

static int hexd(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static int hexv(char c) { return c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10; }

/* NULL when s is in the format, else a message. */
static const char *format_check(int fmt, const char *s, size_t len) {
  switch (fmt) {
    case F_IPV4:
      return ipv4_prefix(s, len) == len && len ? NULL : "not an IPv4 address (a.b.c.d)";
    case F_IPV4_CIDR: {
      size_t n = ipv4_prefix(s, len);
      if (!n || n + 1 >= len || s[n] != '/' || dec_part(s + n + 1, len - n - 1, 32) != len - n - 1)
        return "not an IPv4 address with prefix length (a.b.c.d/n, n <= 32)";
      return NULL;
    }
    case F_MAC:
      if (len != 17) return "not a MAC address (xx:xx:xx:xx:xx:xx)";
      for (size_t i = 0; i < 17; i++) {
        if (i % 3 == 2 ? s[i] != ':' : !hexd(s[i])) return "not a MAC address (xx:xx:xx:xx:xx:xx)";
      }
      if (hexv(s[1]) & 1) return "a multicast MAC address (the first byte must be even)";
      return NULL;
    case F_HOSTNAME: {
      if (len == 0 || len > 253) return "not a host name (1 to 253 characters)";
      size_t lab = 0;
      for (size_t i = 0; i <= len; i++) {
        if (i == len || s[i] == '.') {
          if (lab == 0 || lab > 63) return "not a host name (labels of 1 to 63 characters separated by dots)";
          if (s[i - 1] == '-' || s[i - lab] == '-') return "not a host name (a label starts or ends with '-')";
          lab = 0;
        } else if ((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= '0' && s[i] <= '9') ||
                   s[i] == '-') {
          lab++;
        } else {
          return "not a host name (letters, digits, '-' and '.')";
        }
      }
      return NULL;
    }
  }
  return NULL;
}

/* ---- compiled schemas ----------------------------------------------------- */

enum { T_NULL = 1, T_BOOL = 2, T_NUM = 4, T_STR = 8, T_ARR = 16, T_OBJ = 32, T_INT = 64 };

struct sch;
struct sprop {
  const char *name;
  size_t len;
  struct sch *s;
};
struct spat {
  struct regex *re;
  struct sch *s;
};

enum { NF_MIN = 1, NF_MAX = 2, NF_XMIN = 4, NF_XMAX = 8, NF_MULT = 16 };

struct sch {
  const char *path;
  signed char boolean; /* -1: an object schema */
  unsigned char color; /* cycle check */
  unsigned types;
  struct jnode *enum_, *const_, *dflt;
  int has_const;
  struct sprop *props;
  size_t nprops;
  struct spat *pprops;
  size_t npprops;
  struct sch *additional, *propnames;
  struct jnode *required;
  long long min_props, max_props;
  struct sch **prefix;
  size_t nprefix;
  struct sch *items;
  long long min_items, max_items;
  int unique;
  unsigned numflags;
  double minimum, maximum, xmin, xmax, mult;
  long long min_len, max_len;
  struct regex *pattern;
  const char *pattern_src;
  int format;
  struct sch **all, **any, **one;
  size_t nall, nany, none;
  struct sch *not_, *if_, *then_, *else_, *ref;
  const char *x_error, *x_warning, *x_collect;
  struct sch *next_all; /* list of every compiled schema */
};

struct compiled {
  struct arena a;
  struct jnode *root;
  struct sch *top, *all;
  struct regex **rx;
  size_t nrx, caprx;
  int closed;
};

struct cctx {
  struct compiled *c;
  int strict, depth;
  char err[300];
};

static int cerr(struct cctx *cc, const char *path, const char *fmt, ...) {
  if (cc->err[0]) return -1;
  char msg[200];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  snprintf(cc->err, sizeof cc->err, "%s: %s", path, msg);
  return -1;
}

static char *astrdup(struct arena *a, const char *s, size_t n) {
  char *p = arena_alloc(a, n + 1);
  if (p) {
    memcpy(p, s, n);
    p[n] = '\0';
  }
  return p;
}

/* path + "/" + escaped(key) in arena memory */
static const char *path_join(struct arena *a, const char *path, const char *key, size_t klen) {
  size_t pl = strlen(path), extra = 0;
  for (size_t i = 0; i < klen; i++)
    if (key[i] == '~' || key[i] == '/') extra++;
  char *p = arena_alloc(a, pl + klen + extra + 2);
  if (!p) return NULL;
  memcpy(p, path, pl);
  char *o = p + pl;
  *o++ = '/';
  for (size_t i = 0; i < klen; i++) {
    if (key[i] == '~') {
      *o++ = '~';
      *o++ = '0';
    } else if (key[i] == '/') {
      *o++ = '~';
      *o++ = '1';
    } else {
      *o++ = key[i];
    }
  }
  *o = '\0';
  return p;
}

static const char *path_index(struct arena *a, const char *path, size_t i) {
  char buf[32];
  int n = snprintf(buf, sizeof buf, "%zu", i);
  return path_join(a, path, buf, (size_t)n);
}

static struct jnode *obj_get(const struct jnode *o, const char *key, size_t klen) {
  if (o->type != J_OBJ) return NULL;
  struct jmember *m = MEMBERS(o);
  for (size_t i = 0; i < o->u.list.n; i++)
    if (m[i].klen == klen && memcmp(m[i].key, key, klen) == 0) return m[i].val;
  return NULL;
}

static struct sch *compile_node(struct cctx *cc, struct jnode *n, const char *path);

static int nonneg_int(struct cctx *cc, const char *path, const char *kw, struct jnode *v, long long *out) {
  if (v->type != J_NUM || v->u.num.d < 0 || v->u.num.d != floor(v->u.num.d) || v->u.num.d > 9e15)
    return cerr(cc, path, "%s must be a non-negative integer", kw);
  *out = (long long)v->u.num.d;
  return 0;
}

static int schema_list(struct cctx *cc, const char *path, const char *kw, struct jnode *v, struct sch ***out,
                       size_t *n) {
  if (v->type != J_ARR || v->u.list.n == 0) return cerr(cc, path, "%s must be a non-empty array of schemas", kw);
  const char *kp = path_join(&cc->c->a, path, kw, strlen(kw));
  struct sch **list = arena_alloc(&cc->c->a, v->u.list.n * sizeof *list);
  if (!kp || !list) return cerr(cc, path, "out of memory");
  for (size_t i = 0; i < v->u.list.n; i++) {
    list[i] = compile_node(cc, ITEMS(v)[i], path_index(&cc->c->a, kp, i));
    if (!list[i]) return -1;
  }
  *out = list;
  *n = v->u.list.n;
  return 0;
}

static struct sch *sub(struct cctx *cc, const char *path, const char *kw, struct jnode *v) {
  const char *kp = path_join(&cc->c->a, path, kw, strlen(kw));
  if (!kp) {
    cerr(cc, path, "out of memory");
    return NULL;
  }
  return compile_node(cc, v, kp);
}

static int type_bit(const char *s, size_t len) {
  static const char *const names[] = {"null", "boolean", "number", "string", "array", "object", "integer"};
  for (int i = 0; i < 7; i++)
    if (strlen(names[i]) == len && memcmp(names[i], s, len) == 0) return 1 << i;
  return 0;
}

static int cmp_prop(const void *a, const void *b) {
  const struct sprop *x = a, *y = b;
  size_t n = x->len < y->len ? x->len : y->len;
  int c = memcmp(x->name, y->name, n);
  return c ? c : (x->len < y->len ? -1 : x->len > y->len);
}

static int add_regex(struct cctx *cc, const char *path, const char *src, size_t len, struct regex **out) {
  char err[160];
  struct compiled *c = cc->c;
  if (c->nrx == c->caprx) {
    size_t ncap = c->caprx ? c->caprx * 2 : 16;
    struct regex **n = realloc(c->rx, ncap * sizeof *n);
    if (!n) return cerr(cc, path, "out of memory");
    c->rx = n;
    c->caprx = ncap;
  }
  struct regex *re = regex_compile(src, len, err, sizeof err);
  if (!re) return cerr(cc, path, "bad pattern \"%s\": %s", src, err);
  c->rx[c->nrx++] = re;
  *out = re;
  return 0;
}

/* Resolves a local $ref ("#" or "#/json/pointer", URI-escaped) in the schema document. */
static struct jnode *resolve_ref(struct cctx *cc, const char *path, const char *ref, size_t len) {
  if (len == 0 || ref[0] != '#') {
    cerr(cc, path, "$ref \"%s\": only local references (#/...) are supported", ref);
    return NULL;
  }
  struct jnode *n = cc->c->root;
  size_t i = 1;
  if (i < len && ref[i] != '/') {
    cerr(cc, path, "$ref \"%s\": anchors are not supported, use a JSON pointer", ref);
    return NULL;
  }
  char tok[256];
  while (i < len) {
    i++; /* '/' */
    size_t t = 0;
    while (i < len && ref[i] != '/') {
      char ch = ref[i++];
      if (ch == '%' && i + 1 < len && hexd(ref[i]) && hexd(ref[i + 1])) {
        ch = (char)(hexv(ref[i]) * 16 + hexv(ref[i + 1]));
        i += 2;
      } else if (ch == '~' && i < len && (ref[i] == '0' || ref[i] == '1')) {
        ch = ref[i++] == '0' ? '~' : '/';
      }
      if (t >= sizeof tok - 1) {
        cerr(cc, path, "$ref \"%s\": pointer token too long", ref);
        return NULL;
      }
      tok[t++] = ch;
    }
    tok[t] = '\0';
    if (n->type == J_OBJ) {
      n = obj_get(n, tok, t);
    } else if (n->type == J_ARR) {
      char *e;
      unsigned long idx = strtoul(tok, &e, 10);
      n = (t > 0 && *e == '\0' && idx < n->u.list.n) ? ITEMS(n)[idx] : NULL;
    } else {
      n = NULL;
    }
    if (!n) {
      cerr(cc, path, "$ref \"%s\" points to nothing", ref);
      return NULL;
    }
  }
  return n;
}

static const char *const annotations[] = {"$schema", "$id", "$comment", "$defs", "definitions", "title",
                                          "description", "examples", "deprecated", "readOnly", "writeOnly",
                                          "$anchor", NULL};

static int compile_keyword(struct cctx *cc, struct sch *s, const char *path, const char *kw, struct jnode *v) {
  struct arena *a = &cc->c->a;
#define IS(name) (strcmp(kw, name) == 0)
  if (IS("type")) {
    if (v->type == J_STR) {
      s->types = (unsigned)type_bit(v->u.str.s, v->u.str.len);
      if (!s->types) return cerr(cc, path, "unknown type \"%s\"", v->u.str.s);
    } else if (v->type == J_ARR && v->u.list.n > 0) {
      for (size_t i = 0; i < v->u.list.n; i++) {
        struct jnode *t = ITEMS(v)[i];
        int b = t->type == J_STR ? type_bit(t->u.str.s, t->u.str.len) : 0;
        if (!b) return cerr(cc, path, "type must name JSON types");
        s->types |= (unsigned)b;
      }
    } else {
      return cerr(cc, path, "type must be a string or an array of strings");
    }
  } else if (IS("enum")) {
    if (v->type != J_ARR) return cerr(cc, path, "enum must be an array");
    s->enum_ = v;
  } else if (IS("const")) {
    s->const_ = v;
    s->has_const = 1;
  } else if (IS("default")) {
    s->dflt = v;
  } else if (IS("properties")) {
    if (v->type != J_OBJ) return cerr(cc, path, "properties must be an object");
    const char *kp = path_join(a, path, kw, strlen(kw));
    s->nprops = v->u.list.n;
    s->props = arena_alloc(a, (s->nprops ? s->nprops : 1) * sizeof *s->props);
    if (!kp || !s->props) return cerr(cc, path, "out of memory");
    for (size_t i = 0; i < s->nprops; i++) {
      struct jmember *m = &MEMBERS(v)[i];
      s->props[i].name = m->key;
      s->props[i].len = m->klen;
      s->props[i].s = compile_node(cc, m->val, path_join(a, kp, m->key, m->klen));
      if (!s->props[i].s) return -1;
    }
    qsort(s->props, s->nprops, sizeof *s->props, cmp_prop);
  } else if (IS("patternProperties")) {
    if (v->type != J_OBJ) return cerr(cc, path, "patternProperties must be an object");
    const char *kp = path_join(a, path, kw, strlen(kw));
    s->npprops = v->u.list.n;
    s->pprops = arena_alloc(a, (s->npprops ? s->npprops : 1) * sizeof *s->pprops);
    if (!kp || !s->pprops) return cerr(cc, path, "out of memory");
    for (size_t i = 0; i < s->npprops; i++) {
      struct jmember *m = &MEMBERS(v)[i];
      if (add_regex(cc, kp, m->key, m->klen, &s->pprops[i].re) != 0) return -1;
      s->pprops[i].s = compile_node(cc, m->val, path_join(a, kp, m->key, m->klen));
      if (!s->pprops[i].s) return -1;
    }
  } else if (IS("additionalProperties")) {
    if (!(s->additional = sub(cc, path, kw, v))) return -1;
  } else if (IS("propertyNames")) {
    if (!(s->propnames = sub(cc, path, kw, v))) return -1;
  } else if (IS("required")) {
    if (v->type != J_ARR) return cerr(cc, path, "required must be an array of strings");
    for (size_t i = 0; i < v->u.list.n; i++)
      if (ITEMS(v)[i]->type != J_STR) return cerr(cc, path, "required must be an array of strings");
    s->required = v;
  } else if (IS("minProperties")) {
    return nonneg_int(cc, path, kw, v, &s->min_props);
  } else if (IS("maxProperties")) {
    return nonneg_int(cc, path, kw, v, &s->max_props);
  } else if (IS("items")) {
    if (v->type == J_ARR) return cerr(cc, path, "items must be a schema (use prefixItems for a tuple)");
    if (!(s->items = sub(cc, path, kw, v))) return -1;
  } else if (IS("prefixItems")) {
    return schema_list(cc, path, kw, v, &s->prefix, &s->nprefix);
  } else if (IS("minItems")) {
    return nonneg_int(cc, path, kw, v, &s->min_items);
  } else if (IS("maxItems")) {
    return nonneg_int(cc, path, kw, v, &s->max_items);
  } else if (IS("uniqueItems")) {
    if (v->type != J_BOOL) return cerr(cc, path, "uniqueItems must be a boolean");
    s->unique = v->boolean;
  } else if (IS("minimum") || IS("maximum") || IS("exclusiveMinimum") || IS("exclusiveMaximum") ||
             IS("multipleOf")) {
    if (v->type != J_NUM) return cerr(cc, path, "%s must be a number", kw);
    double d = v->u.num.d;
    if (IS("minimum")) s->minimum = d, s->numflags |= NF_MIN;
    else if (IS("maximum")) s->maximum = d, s->numflags |= NF_MAX;
    else if (IS("exclusiveMinimum")) s->xmin = d, s->numflags |= NF_XMIN;
    else if (IS("exclusiveMaximum")) s->xmax = d, s->numflags |= NF_XMAX;
    else {
      if (d <= 0) return cerr(cc, path, "multipleOf must be greater than 0");
      s->mult = d, s->numflags |= NF_MULT;
    }
  } else if (IS("minLength")) {
    return nonneg_int(cc, path, kw, v, &s->min_len);
  } else if (IS("maxLength")) {
    return nonneg_int(cc, path, kw, v, &s->max_len);
  } else if (IS("pattern")) {
    if (v->type != J_STR) return cerr(cc, path, "pattern must be a string");
    s->pattern_src = v->u.str.s;
    return add_regex(cc, path, v->u.str.s, v->u.str.len, &s->pattern);
  } else if (IS("format")) {
    if (v->type != J_STR) return cerr(cc, path, "format must be a string");
    for (int i = 1; format_names[i]; i++)
      if (strcmp(format_names[i], v->u.str.s) == 0) s->format = i;
    if (!s->format && cc->strict) return cerr(cc, path, "unknown format \"%s\"", v->u.str.s);
  } else if (IS("allOf")) {
    return schema_list(cc, path, kw, v, &s->all, &s->nall);
  } else if (IS("anyOf")) {
    return schema_list(cc, path, kw, v, &s->any, &s->nany);
  } else if (IS("oneOf")) {
    return schema_list(cc, path, kw, v, &s->one, &s->none);
  } else if (IS("not")) {
    if (!(s->not_ = sub(cc, path, kw, v))) return -1;
  } else if (IS("if")) {
    if (!(s->if_ = sub(cc, path, kw, v))) return -1;
  } else if (IS("then")) {
    if (!(s->then_ = sub(cc, path, kw, v))) return -1;
  } else if (IS("else")) {
    if (!(s->else_ = sub(cc, path, kw, v))) return -1;
  } else if (IS("$ref")) {
    if (v->type != J_STR) return cerr(cc, path, "$ref must be a string");
    struct jnode *t = resolve_ref(cc, path, v->u.str.s, v->u.str.len);
    if (!t) return -1;
    if (!(s->ref = compile_node(cc, t, astrdup(a, v->u.str.s, v->u.str.len)))) return -1;
  } else if (IS("x-error") || IS("x-warning") || IS("x-collect")) {
    if (v->type != J_STR) return cerr(cc, path, "%s must be a string", kw);
    if (IS("x-error")) s->x_error = v->u.str.s;
    else if (IS("x-warning")) s->x_warning = v->u.str.s;
    else s->x_collect = v->u.str.s;
  } else {
    for (int i = 0; annotations[i]; i++)
      if (IS(annotations[i])) return 0;
    if (cc->strict) return cerr(cc, path, "unknown keyword \"%s\"", kw);
  }
#undef IS
  return cc->err[0] ? -1 : 0;
}

static struct sch *compile_node_in(struct cctx *cc, struct jnode *n, const char *path);

/* Depth-limited: a chain of $refs to $refs must not exhaust the C stack. */
static struct sch *compile_node(struct cctx *cc, struct jnode *n, const char *path) {
  if (n->aux) return n->aux;
  if (++cc->depth > MAX_SCHEMA_DEPTH) {
    cerr(cc, path ? path : "#", "schema nests too deeply (more than %d levels)", MAX_SCHEMA_DEPTH);
    cc->depth--;
    return NULL;
  }
  struct sch *s = compile_node_in(cc, n, path);
  cc->depth--;
  return s;
}

static struct sch *compile_node_in(struct cctx *cc, struct jnode *n, const char *path) {
  if (!path) {
    cerr(cc, "#", "out of memory");
    return NULL;
  }
  struct sch *s = arena_alloc(&cc->c->a, sizeof *s);
  if (!s) {
    cerr(cc, path, "out of memory");
    return NULL;
  }
  memset(s, 0, sizeof *s);
  s->path = path;
  s->min_props = s->max_props = s->min_items = s->max_items = s->min_len = s->max_len = -1;
  s->next_all = cc->c->all;
  cc->c->all = s;
  n->aux = s;
  if (n->type == J_BOOL) {
    s->boolean = (signed char)n->boolean;
    return s;
  }
  s->boolean = -1;
  if (n->type != J_OBJ) {
    cerr(cc, path, "a schema must be an object or a boolean");
    return NULL;
  }
  for (size_t i = 0; i < n->u.list.n; i++) {
    struct jmember *m = &MEMBERS(n)[i];
    if (compile_keyword(cc, s, path, m->key, m->val) != 0) return NULL;
  }
  return s;
}

/* In-place edges (same instance): a cycle through them never ends. */
static int check_cycles(struct cctx *cc, struct sch *s) {
  if (s->color == 2) return 0;
  if (s->color == 1) return cerr(cc, s->path, "$ref cycle that never descends into the instance");
  if (cc->depth > MAX_SCHEMA_DEPTH) return cerr(cc, s->path, "schema nests too deeply");
  s->color = 1;
  struct sch *one[] = {s->ref, s->not_, s->if_, s->then_, s->else_};
  int r = 0;
  cc->depth++;
  for (size_t i = 0; r == 0 && i < 5; i++)
    if (one[i]) r = check_cycles(cc, one[i]);
  for (size_t i = 0; r == 0 && i < s->nall; i++) r = check_cycles(cc, s->all[i]);
  for (size_t i = 0; r == 0 && i < s->nany; i++) r = check_cycles(cc, s->any[i]);
  for (size_t i = 0; r == 0 && i < s->none; i++) r = check_cycles(cc, s->one[i]);
  cc->depth--;
  s->color = 2;
  return r;
}

static void compiled_release(struct compiled *c) {
  for (size_t i = 0; i < c->nrx; i++) regex_free(c->rx[i]);
  free(c->rx);
  c->rx = NULL;
  c->nrx = c->caprx = 0;
  arena_free(&c->a);
  c->top = NULL;
  c->closed = 1;
}

/* ---- validation ------------------------------------------------------------ */

struct issue {
  char *ptr, *msg;
  const char *kw, *spath;
  int line, col;
  int typeish; /* the value has the wrong JSON type for this (sub)schema */
};

struct ivec {
  struct issue *v;
  size_t n, cap;
};

struct dflt {
  char *ptr;
  struct jnode *val;
  const struct jnode *obj; /* the object missing the property (its aux marks it) */
  const char *key;
  size_t klen;
};

struct coll {
  char *ptr;
  const char *name;
};

struct seg {
  const char *key;
  size_t klen;
  size_t idx;
};

struct branch {
  size_t start, n;
  int rejected;
};

struct vctx {
  lua_State *L;
  struct filemap fm; /* validate_file: the document's bytes */
  struct ivec park; /* errors of failed anyOf/oneOf branches, LIFO */
  struct branch *br;
  size_t nbr, capbr;
  struct arena doc; /* the instance DOM */
  struct ivec errs, warns;
  struct dflt *defs;
  size_t ndefs, capdefs;
  struct coll *colls;
  size_t ncolls, capcolls;
  struct seg path[MAX_JSON_DEPTH + 8];
  int depth, vdepth;
  int unknown_warn, aborted, too_deep;
  long steps, max_steps;
  /* fails counts every error found; silent > 0 while evaluating what only
   * needs a yes/no (not, if, a first pass over anyOf/oneOf branches):
   * errors are then counted, not formatted */
  long fails;
  int silent;
};

static void ivec_truncate(struct ivec *v, size_t n) {
  while (v->n > n) {
    v->n--;
    free(v->v[v->n].ptr);
    free(v->v[v->n].msg);
  }
}

static void defs_truncate(struct vctx *c, size_t n) {
  while (c->ndefs > n) free(c->defs[--c->ndefs].ptr);
}

static void colls_truncate(struct vctx *c, size_t n) {
  while (c->ncolls > n) free(c->colls[--c->ncolls].ptr);
}

static void vctx_release(struct vctx *c) {
  ivec_truncate(&c->errs, 0);
  ivec_truncate(&c->warns, 0);
  ivec_truncate(&c->park, 0);
  free(c->errs.v);
  free(c->warns.v);
  free(c->park.v);
  c->errs.v = c->warns.v = c->park.v = NULL;
  c->errs.cap = c->warns.cap = c->park.cap = 0;
  free(c->br);
  c->br = NULL;
  c->nbr = c->capbr = 0;
  defs_truncate(c, 0);
  free(c->defs);
  c->defs = NULL;
  c->capdefs = 0;
  colls_truncate(c, 0);
  free(c->colls);
  c->colls = NULL;
  c->capcolls = 0;
  filemap_release(&c->fm);
  arena_free(&c->doc);
}

static int vctx_gc(lua_State *L) {
  vctx_release(luaL_checkudata(L, 1, VCTX_MT));
  return 0;
}

static void *xrealloc(struct vctx *c, void *p, size_t n) {
  void *q = realloc(p, n);
  if (!q) luaL_error(c->L, "px.schema: out of memory");
  return q;
}

/* The current instance pointer, rendered. */
static char *render_path(struct vctx *c, const char *extra, size_t elen) {
  size_t len = 1;
  for (int i = 0; i < c->depth; i++) len += 1 + (c->path[i].key ? 2 * c->path[i].klen : 20);
  len += extra ? 1 + 2 * elen : 0;
  char *p = xrealloc(c, NULL, len), *o = p;
  for (int i = 0; i <= c->depth; i++) {
    const char *k;
    size_t kl;
    char num[24];
    if (i == c->depth) {
      if (!extra) break;
      k = extra;
      kl = elen;
    } else if (c->path[i].key) {
      k = c->path[i].key;
      kl = c->path[i].klen;
    } else {
      size_t v = c->path[i].idx, j = sizeof num;
      do {
        num[--j] = (char)('0' + v % 10);
        v /= 10;
      } while (v);
      k = num + j;
      kl = sizeof num - j;
    }
    *o++ = '/';
    for (size_t j = 0; j < kl; j++) {
      if (k[j] == '~') *o++ = '~', *o++ = '0';
      else if (k[j] == '/') *o++ = '~', *o++ = '1';
      else *o++ = k[j];
    }
  }
  *o = '\0';
  return p;
}

static void add_issue(struct vctx *c, struct ivec *v, const struct sch *s, const struct jnode *in, const char *kw,
                      const char *extra, size_t elen, const char *fmt, ...) {
  if (v == &c->errs) {
    c->fails++;
    if (c->silent) return;
  }
  char buf[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  if (v->n == v->cap) {
    size_t ncap = v->cap ? v->cap * 2 : 16;
    v->v = xrealloc(c, v->v, ncap * sizeof *v->v);
    v->cap = ncap;
  }
  struct issue *is = &v->v[v->n];
  memset(is, 0, sizeof *is);
  is->ptr = render_path(c, extra, elen);
  size_t ml = strlen(buf);
  is->msg = malloc(ml + 1);
  if (!is->msg) {
    free(is->ptr);
    luaL_error(c->L, "px.schema: out of memory");
  }
  memcpy(is->msg, buf, ml + 1);
  is->kw = kw;
  is->spath = s ? s->path : "";
  is->line = in ? in->line : 0;
  is->col = in ? in->col : 0;
  v->n++;
}

#define ERR(c, s, in, kw, ...) add_issue((c), &(c)->errs, (s), (in), (kw), NULL, 0, __VA_ARGS__)

static unsigned node_types(const struct jnode *n) {
  switch (n->type) {
    case J_NULL: return T_NULL;
    case J_BOOL: return T_BOOL;
    case J_NUM: return T_NUM | (n->u.num.d == floor(n->u.num.d) ? T_INT : 0);
    case J_STR: return T_STR;
    case J_ARR: return T_ARR;
    default: return T_OBJ;
  }
}

static void types_text(unsigned t, char *buf, size_t len) {
  static const char *const names[] = {"null", "boolean", "number", "string", "array", "object", "integer"};
  buf[0] = '\0';
  int first = 1;
  if ((t & T_INT) && (t & T_NUM)) t &= ~(unsigned)T_INT;
  for (int i = 0; i < 7; i++) {
    if (!(t & (1u << i))) continue;
    size_t used = strlen(buf);
    snprintf(buf + used, len - used, "%s%s", first ? "" : " or ", names[i]);
    first = 0;
  }
}

static const char *node_type_name(const struct jnode *n) {
  if (n->type == J_NUM) return n->u.num.d == floor(n->u.num.d) ? "integer" : "number";
  return type_names[n->type];
}

static int json_equal(const struct jnode *a, const struct jnode *b) {
  if (a->type != b->type) return 0;
  switch (a->type) {
    case J_NULL: return 1;
    case J_BOOL: return a->boolean == b->boolean;
    case J_NUM: return a->u.num.d == b->u.num.d;
    case J_STR: return a->u.str.len == b->u.str.len && memcmp(a->u.str.s, b->u.str.s, a->u.str.len) == 0;
    case J_ARR:
      if (a->u.list.n != b->u.list.n) return 0;
      for (size_t i = 0; i < a->u.list.n; i++)
        if (!json_equal(ITEMS(a)[i], ITEMS(b)[i])) return 0;
      return 1;
    default:
      if (a->u.list.n != b->u.list.n) return 0;
      for (size_t i = 0; i < a->u.list.n; i++) {
        struct jmember *m = &MEMBERS(a)[i];
        struct jnode *o = obj_get(b, m->key, m->klen);
        if (!o || !json_equal(m->val, o)) return 0;
      }
      return 1;
  }
}

/* A short rendering of a value for messages. */
static void value_text(const struct jnode *n, char *buf, size_t len) {
  switch (n->type) {
    case J_STR: {
      /* at most 40 bytes, cut on a character boundary, control characters shown as '?' */
      size_t cut = n->u.str.len, o = 0;
      int more = 0;
      if (cut > 40) {
        cut = 37;
        while (cut > 0 && ((unsigned char)n->u.str.s[cut] & 0xC0) == 0x80) cut--;
        more = 1;
      }
      if (len < cut + 8) {
        if (len) buf[0] = '\0';
        return;
      }
      buf[o++] = '"';
      for (size_t i = 0; i < cut; i++) {
        unsigned char ch = (unsigned char)n->u.str.s[i];
        buf[o++] = ch < 0x20 || ch == 0x7f ? '?' : (char)ch;
      }
      if (more) buf[o++] = '.', buf[o++] = '.', buf[o++] = '.';
      buf[o++] = '"';
      buf[o] = '\0';
      return;
    }
    case J_NUM:
      if (n->isint) snprintf(buf, len, "%lld", n->u.num.i);
      else snprintf(buf, len, "%.17g", n->u.num.d);
      return;
    case J_BOOL: snprintf(buf, len, "%s", n->boolean ? "true" : "false"); return;
    case J_NULL: snprintf(buf, len, "null"); return;
    case J_ARR: snprintf(buf, len, "[...]"); return;
    default: snprintf(buf, len, "{...}"); return;
  }
}

static size_t utf8_count(const char *s, size_t len) {
  size_t n = 0;
  for (size_t i = 0; i < len; i++)
    if (((unsigned char)s[i] & 0xC0) != 0x80) n++;
  return n;
}

static int v_node(struct vctx *c, const struct sch *s, const struct jnode *in);

static void push_key(struct vctx *c, const char *k, size_t kl) {
  c->path[c->depth].key = k;
  c->path[c->depth].klen = kl;
  c->depth++;
}

static void push_idx(struct vctx *c, size_t i) {
  c->path[c->depth].key = NULL;
  c->path[c->depth].idx = i;
  c->depth++;
}

static const struct sprop *find_prop(const struct sch *s, const char *k, size_t kl) {
  size_t lo = 0, hi = s->nprops;
  struct sprop key = {k, kl, NULL};
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    int r = cmp_prop(&key, &s->props[mid]);
    if (r == 0) return &s->props[mid];
    if (r < 0) hi = mid;
    else lo = mid + 1;
  }
  return NULL;
}

static void v_object(struct vctx *c, const struct sch *s, const struct jnode *in) {
  struct jmember *m = MEMBERS(in);
  size_t n = in->u.list.n;
  int has_obj_kw = s->nprops || s->npprops || s->additional || s->propnames;
  for (size_t i = 0; has_obj_kw && i < n; i++) {
    push_key(c, m[i].key, m[i].klen);
    int matched = 0;
    const struct sprop *p = find_prop(s, m[i].key, m[i].klen);
    if (p) {
      matched = 1;
      v_node(c, p->s, m[i].val);
    }
    for (size_t k = 0; k < s->npprops; k++) {
      if (regex_search(s->pprops[k].re, m[i].key, m[i].klen)) {
        matched = 1;
        v_node(c, s->pprops[k].s, m[i].val);
      }
    }
    if (!matched && s->additional) {
      if (s->additional->boolean == 0) {
        struct ivec *v = c->unknown_warn ? &c->warns : &c->errs;
        add_issue(c, v, s, m[i].val, "additionalProperties", NULL, 0,
                  c->unknown_warn ? "unknown field \"%s\" (phoenix does not use it)" : "unknown field \"%s\"",
                  m[i].key);
      } else {
        v_node(c, s->additional, m[i].val);
      }
    }
    if (s->propnames) {
      struct jnode key;
      memset(&key, 0, sizeof key);
      key.type = J_STR;
      key.u.str.s = m[i].key;
      key.u.str.len = m[i].klen;
      key.line = m[i].val->line;
      key.col = m[i].val->col;
      v_node(c, s->propnames, &key);
    }
    c->depth--;
  }
  if (s->required) {
    for (size_t r = 0; r < s->required->u.list.n; r++) {
      struct jnode *k = ITEMS(s->required)[r];
      if (!obj_get(in, k->u.str.s, k->u.str.len))
        ERR(c, s, in, "required", "missing required field \"%s\"", k->u.str.s);
    }
  }
  if (s->min_props >= 0 && (long long)n < s->min_props)
    ERR(c, s, in, "minProperties", "must have at least %lld fields", s->min_props);
  if (s->max_props >= 0 && (long long)n > s->max_props)
    ERR(c, s, in, "maxProperties", "must have at most %lld fields", s->max_props);
  for (size_t k = 0; k < s->nprops; k++) {
    const struct sch *ps = s->props[k].s;
    if (ps->dflt && !obj_get(in, s->props[k].name, s->props[k].len)) {
      if (c->ndefs == c->capdefs) {
        size_t ncap = c->capdefs ? c->capdefs * 2 : 32;
        c->defs = xrealloc(c, c->defs, ncap * sizeof *c->defs);
        c->capdefs = ncap;
      }
      c->defs[c->ndefs].val = ps->dflt;
      c->defs[c->ndefs].ptr = NULL;
      c->defs[c->ndefs].obj = in;
      c->defs[c->ndefs].key = s->props[k].name;
      c->defs[c->ndefs].klen = s->props[k].len;
      ((struct jnode *)in)->aux = (void *)1; /* instance DOM: aux is free; the value's table gets mapped */
      c->ndefs++;
      c->defs[c->ndefs - 1].ptr = render_path(c, s->props[k].name, s->props[k].len);
    }
  }
}

static void v_array(struct vctx *c, const struct sch *s, const struct jnode *in) {
  size_t n = in->u.list.n;
  for (size_t i = 0; i < n; i++) {
    const struct sch *is = i < s->nprefix ? s->prefix[i] : s->items;
    if (!is) continue;
    push_idx(c, i);
    v_node(c, is, ITEMS(in)[i]);
    c->depth--;
  }
  if (s->min_items >= 0 && (long long)n < s->min_items)
    ERR(c, s, in, "minItems", "must have at least %lld item%s", s->min_items, s->min_items == 1 ? "" : "s");
  if (s->max_items >= 0 && (long long)n > s->max_items)
    ERR(c, s, in, "maxItems", "must have at most %lld item%s", s->max_items, s->max_items == 1 ? "" : "s");
  if (s->unique) {
    for (size_t i = 1; i < n; i++) {
      for (size_t j = 0; j < i; j++) {
        if (json_equal(ITEMS(in)[i], ITEMS(in)[j])) {
          push_idx(c, i);
          ERR(c, s, ITEMS(in)[i], "uniqueItems", "duplicate item (same as item %zu)", j);
          c->depth--;
          break;
        }
      }
    }
  }
}

static void v_number(struct vctx *c, const struct sch *s, const struct jnode *in) {
  double d = in->u.num.d;
  char v[64];
  if (!s->numflags) return;
  value_text(in, v, sizeof v);
  if ((s->numflags & NF_MIN) && d < s->minimum) ERR(c, s, in, "minimum", "%s is less than the minimum %.17g", v, s->minimum);
  if ((s->numflags & NF_MAX) && d > s->maximum) ERR(c, s, in, "maximum", "%s is more than the maximum %.17g", v, s->maximum);
  if ((s->numflags & NF_XMIN) && d <= s->xmin) ERR(c, s, in, "exclusiveMinimum", "%s must be more than %.17g", v, s->xmin);
  if ((s->numflags & NF_XMAX) && d >= s->xmax) ERR(c, s, in, "exclusiveMaximum", "%s must be less than %.17g", v, s->xmax);
  if (s->numflags & NF_MULT) {
    double q = d / s->mult;
    if (!isfinite(q) || fabs(q - nearbyint(q)) > 1e-9) ERR(c, s, in, "multipleOf", "%s is not a multiple of %.17g", v, s->mult);
  }
}

static void v_string(struct vctx *c, const struct sch *s, const struct jnode *in) {
  char v[64];
  if (s->min_len >= 0 || s->max_len >= 0) {
    long long len = (long long)utf8_count(in->u.str.s, in->u.str.len);
    if (s->min_len >= 0 && len < s->min_len)
      ERR(c, s, in, "minLength", "must be at least %lld character%s long", s->min_len, s->min_len == 1 ? "" : "s");
    if (s->max_len >= 0 && len > s->max_len)
      ERR(c, s, in, "maxLength", "must be at most %lld character%s long", s->max_len, s->max_len == 1 ? "" : "s");
  }
  if (s->pattern && !regex_search(s->pattern, in->u.str.s, in->u.str.len)) {
    value_text(in, v, sizeof v);
    ERR(c, s, in, "pattern", "%s does not match the pattern %s", v, s->pattern_src);
  }
  if (s->format) {
    const char *msg = format_check(s->format, in->u.str.s, in->u.str.len);
    if (msg) {
      value_text(in, v, sizeof v);
      ERR(c, s, in, "format", "%s: %s", v, msg);
    }
  }
}

struct mark {
  size_t e, w, d, k;
};

static struct mark get_mark(struct vctx *c) {
  struct mark m = {c->errs.n, c->warns.n, c->ndefs, c->ncolls};
  return m;
}

static void reset_to(struct vctx *c, struct mark m) {
  ivec_truncate(&c->errs, m.e);
  ivec_truncate(&c->warns, m.w);
  defs_truncate(c, m.d);
  colls_truncate(c, m.k);
}

/* The types a schema accepts when that is all it checks first (for anyOf messages). */
static unsigned sch_types(const struct sch *s) {
  for (int i = 0; s && i < 16; i++) {
    if (s->types) return s->types;
    s = s->ref;
  }
  return 0;
}

static void ivec_reserve(struct vctx *c, struct ivec *v, size_t extra) {
  if (v->n + extra <= v->cap) return;
  size_t ncap = v->cap ? v->cap * 2 : 16;
  while (ncap < v->n + extra) ncap *= 2;
  v->v = xrealloc(c, v->v, ncap * sizeof *v->v);
  v->cap = ncap;
}

/*
 * anyOf / oneOf. A failing branch's errors are parked (c->park, a LIFO
 * owned by the context, so a raise leaks nothing); if no branch passes,
 * the one branch whose type fits keeps its own errors (the usual case: a
 * field that is "a string or an object"), otherwise one summary error.
 */
static int v_choice(struct vctx *c, const struct sch *s, const struct jnode *in, struct sch **list, size_t n,
                    int exactly_one) {
  struct mark start = get_mark(c);
  size_t passed = 0, first_pass = 0, second_pass = 0;
  /* first pass: yes/no only; most documents pass here and no message is made */
  long f0 = c->fails;
  c->silent++;
  for (size_t i = 0; i < n; i++) {
    struct mark m = get_mark(c);
    long f = c->fails;
    if (v_node(c, list[i], in) && c->fails == f) {
      if (passed == 0) first_pass = i;
      else if (passed == 1) second_pass = i;
      passed++;
    } else {
      reset_to(c, m);
    }
  }
  c->silent--;
  c->fails = f0;
  if (passed == 1 || (passed > 1 && !exactly_one)) return 1;
  if (passed > 1) {
    reset_to(c, start);
    ERR(c, s, in, "oneOf", "matches more than one of the allowed forms (%zu and %zu)", first_pass + 1, second_pass + 1);
    return 0;
  }
  if (c->silent) {
    ERR(c, s, in, exactly_one ? "oneOf" : "anyOf", "matches none of the allowed forms");
    return 0;
  }
  /* second pass, no branch passes: collect the branches' errors for the message */
  reset_to(c, start);
  size_t pbase = c->park.n, bbase = c->nbr;
  if (c->nbr + n > c->capbr) {
    size_t ncap = c->capbr ? c->capbr * 2 : 16;
    while (ncap < c->nbr + n) ncap *= 2;
    c->br = xrealloc(c, c->br, ncap * sizeof *c->br);
    c->capbr = ncap;
  }
  c->nbr += n;
  for (size_t i = 0; i < n; i++) {
    struct mark m = get_mark(c);
    long f = c->fails;
    int ok = v_node(c, list[i], in) && c->fails == f;
    struct branch *b = &c->br[bbase + i];
    b->start = c->park.n;
    b->n = 0;
    b->rejected = 0;
    if (ok) {
      if (passed == 0) first_pass = i;
      else if (passed == 1) second_pass = i;
      passed++;
      continue;
    }
    size_t cnt = c->errs.n - m.e;
    ivec_reserve(c, &c->park, cnt);
    b = &c->br[bbase + i];
    memcpy(c->park.v + c->park.n, c->errs.v + m.e, cnt * sizeof *c->park.v);
    c->park.n += cnt;
    c->errs.n = m.e;
    b->n = cnt;
    if (cnt > 0 && c->park.v[b->start].typeish) {
      char *here = render_path(c, NULL, 0);
      c->br[bbase + i].rejected = strcmp(here, c->park.v[b->start].ptr) == 0;
      free(here);
    }
    reset_to(c, m);
  }
  int ok;
  if (passed == 1 || (passed > 1 && !exactly_one)) {
    ok = 1;
  } else if (passed > 1) {
    reset_to(c, start);
    ERR(c, s, in, "oneOf", "matches more than one of the allowed forms (%zu and %zu)", first_pass + 1,
        second_pass + 1);
    ok = 0;
  } else {
    size_t fits = 0, which = 0;
    for (size_t i = 0; i < n; i++)
      if (!c->br[bbase + i].rejected) fits++, which = i;
    if (fits == 1 && c->br[bbase + which].n > 0) {
      struct branch b = c->br[bbase + which];
      ivec_reserve(c, &c->errs, b.n);
      for (size_t k = 0; k < b.n; k++) {
        c->errs.v[c->errs.n++] = c->park.v[b.start + k];
        c->park.v[b.start + k].ptr = c->park.v[b.start + k].msg = NULL; /* moved */
      }
    } else if (fits == 0) {
      unsigned t = 0;
      for (size_t i = 0; i < n; i++) t |= sch_types(list[i]);
      char want[96];
      types_text(t, want, sizeof want);
      ERR(c, s, in, "type", "expected %s, got %s", want, node_type_name(in));
    } else {
      char msg[400];
      size_t used = 0;
      char *here = render_path(c, NULL, 0);
      size_t hl = strlen(here);
      msg[0] = '\0';
      for (size_t i = 0; i < n && used < sizeof msg - 8; i++) {
        const struct branch *b = &c->br[bbase + i];
        if (b->rejected || b->n == 0) continue;
        const struct issue *e = &c->park.v[b->start];
        const char *rel = strncmp(e->ptr, here, hl) == 0 ? e->ptr + hl : e->ptr;
        int w = snprintf(msg + used, sizeof msg - used, "%s%s%s%s", used ? "; or " : "", rel, *rel ? ": " : "",
                         e->msg);
        if (w < 0) break;
        used += (size_t)w;
      }
      free(here);
      ERR(c, s, in, exactly_one ? "oneOf" : "anyOf", "matches none of the allowed forms: %s", msg);
    }
    ok = 0;
  }
  ivec_truncate(&c->park, pbase);
  c->nbr = bbase;
  return ok;
}

static int v_node(struct vctx *c, const struct sch *s, const struct jnode *in) {
  if (c->aborted) return 1;
  if (++c->steps > c->max_steps) {
    c->aborted = 1;
    return 1;
  }
  if (s->boolean == 1) return 1;
  if (s->boolean == 0) {
    ERR(c, s, in, "false", "not allowed here");
    return 0;
  }
  if (++c->vdepth > MAX_V_DEPTH) {
    c->aborted = c->too_deep = 1;
    c->vdepth--;
    return 1;
  }
  size_t mark = c->errs.n;
  long fmark = c->fails;
  if (s->x_warning) add_issue(c, &c->warns, s, in, "x-warning", NULL, 0, "%s", s->x_warning);
  if (s->ref) v_node(c, s->ref, in);
  int type_ok = 1;
  if (s->types) {
    unsigned have = node_types(in);
    if (!(have & s->types)) {
      char want[96];
      types_text(s->types, want, sizeof want);
      ERR(c, s, in, "type", "expected %s, got %s", want, node_type_name(in));
      if (!c->silent) c->errs.v[c->errs.n - 1].typeish = 1;
      type_ok = 0;
    }
  }
  if (type_ok && s->enum_) {
    size_t k;
    for (k = 0; k < s->enum_->u.list.n; k++)
      if (json_equal(in, ITEMS(s->enum_)[k])) break;
    if (k == s->enum_->u.list.n) {
      char list[300], v[64];
      size_t used = 0;
      list[0] = '\0';
      for (k = 0; k < s->enum_->u.list.n && used < 250; k++) {
        value_text(ITEMS(s->enum_)[k], v, sizeof v);
        int w = snprintf(list + used, sizeof list - used, "%s%s", k ? ", " : "", v);
        if (w < 0) break;
        used += (size_t)w;
      }
      if (k < s->enum_->u.list.n) snprintf(list + used, sizeof list - used, ", ...");
      value_text(in, v, sizeof v);
      ERR(c, s, in, "enum", "%s is not one of %s", v, list);
      int same_type = 0;
      for (k = 0; k < s->enum_->u.list.n; k++)
        if (ITEMS(s->enum_)[k]->type == in->type) same_type = 1;
      if (!c->silent) c->errs.v[c->errs.n - 1].typeish = !same_type;
    }
  }
  if (type_ok && s->has_const && !json_equal(in, s->const_)) {
    char v[64];
    value_text(s->const_, v, sizeof v);
    ERR(c, s, in, "const", "must be %s", v);
    if (!c->silent) c->errs.v[c->errs.n - 1].typeish = s->const_->type != in->type;
  }
  switch (in->type) {
    case J_OBJ: v_object(c, s, in); break;
    case J_ARR: v_array(c, s, in); break;
    case J_NUM: v_number(c, s, in); break;
    case J_STR: v_string(c, s, in); break;
    default: break;
  }
  for (size_t i = 0; i < s->nall; i++) v_node(c, s->all[i], in);
  if (s->nany) v_choice(c, s, in, s->any, s->nany, 0);
  if (s->none) v_choice(c, s, in, s->one, s->none, 1);
  if (s->not_) {
    struct mark m = get_mark(c);
    long f = c->fails;
    c->silent++;
    int passed = v_node(c, s->not_, in) && c->fails == f;
    c->silent--;
    c->fails = f;
    reset_to(c, m);
    if (passed) ERR(c, s, in, "not", "matches a form that is not allowed here");
  }
  if (s->if_ && (s->then_ || s->else_)) {
    struct mark m = get_mark(c);
    long f = c->fails;
    c->silent++;
    int passed = v_node(c, s->if_, in) && c->fails == f;
    c->silent--;
    c->fails = f;
    reset_to(c, m);
    if (passed && s->then_) v_node(c, s->then_, in);
    if (!passed && s->else_) v_node(c, s->else_, in);
  }
  int valid = c->fails == fmark;
  if (valid && s->x_collect) {
    if (c->ncolls == c->capcolls) {
      size_t ncap = c->capcolls ? c->capcolls * 2 : 16;
      c->colls = xrealloc(c, c->colls, ncap * sizeof *c->colls);
      c->capcolls = ncap;
    }
    c->colls[c->ncolls].ptr = NULL;
    c->colls[c->ncolls].name = s->x_collect;
    c->ncolls++;
    c->colls[c->ncolls - 1].ptr = render_path(c, NULL, 0);
  }
  if (!valid && s->x_error) {
    const char *kw = "x-error";
    if (!c->silent && c->errs.n > mark) {
      kw = c->errs.v[mark].kw;
      ivec_truncate(&c->errs, mark);
    }
    ERR(c, s, in, kw, "%s", s->x_error);
  }
  c->vdepth--;
  return valid;
}

/* Duplicate keys: cjson (and every consumer) keeps only the last. */
static int cmp_member_ptr(const void *a, const void *b) {
  const struct jmember *x = *(const struct jmember *const *)a, *y = *(const struct jmember *const *)b;
  size_t n = x->klen < y->klen ? x->klen : y->klen;
  int r = memcmp(x->key, y->key, n);
  if (r) return r;
  if (x->klen != y->klen) return x->klen < y->klen ? -1 : 1;
  return x < y ? -1 : x > y;
}

static void check_dups(struct vctx *c, const struct jnode *n) {
  if (n->type == J_ARR) {
    for (size_t i = 0; i < n->u.list.n; i++) {
      push_idx(c, i);
      check_dups(c, ITEMS(n)[i]);
      c->depth--;
    }
    return;
  }
  if (n->type != J_OBJ) return;
  struct jmember *m = MEMBERS(n);
  size_t cnt = n->u.list.n;
  if (cnt > 1 && cnt <= 16) { /* small objects: pairwise, in document order */
    for (size_t i = 1; i < cnt; i++) {
      for (size_t j = 0; j < i; j++) {
        if (m[i].klen == m[j].klen && memcmp(m[i].key, m[j].key, m[i].klen) == 0) {
          add_issue(c, &c->errs, NULL, m[i].val, "json", m[i].key, m[i].klen,
                    "duplicate key \"%s\" (the one on line %d is ignored)", m[i].key, m[j].val->line);
          break;
        }
      }
    }
  } else if (cnt > 16) {
    struct jmember **sorted = arena_alloc(&c->doc, cnt * sizeof *sorted);
    if (!sorted) luaL_error(c->L, "px.schema: out of memory");
    for (size_t i = 0; i < cnt; i++) sorted[i] = &m[i];
    qsort(sorted, cnt, sizeof *sorted, cmp_member_ptr);
    for (size_t i = 1; i < cnt; i++) {
      if (sorted[i]->klen == sorted[i - 1]->klen && memcmp(sorted[i]->key, sorted[i - 1]->key, sorted[i]->klen) == 0) {
        struct jmember *later = sorted[i];
        add_issue(c, &c->errs, NULL, later->val, "json", later->key, later->klen,
                  "duplicate key \"%s\" (the one on line %d is ignored)", later->key, sorted[i - 1]->val->line);
      }
    }
  }
  for (size_t i = 0; i < cnt; i++) {
    push_key(c, m[i].key, m[i].klen);
    check_dups(c, m[i].val);
    c->depth--;
  }
}

/* ---- Lua conversion ----------------------------------------------------------- */

/* upvalues of the functions that build Lua values: 1 = px.json.array_mt, 2 = px.json.null */
/* How values are built: stack indices of px.json.array_mt, px.json.null,
 * the order table (0: none) and the object map (0: none: objects marked
 * by a default are mapped jnode -> table so defaults can name their
 * parent table); key order is kept for objects at depth <= maxdepth. */
struct conv {
  int amt, nul, order, objmap, maxdepth;
};

static void push_value_c(lua_State *L, const struct jnode *n, const struct conv *cv, int depth) {
  luaL_checkstack(L, 6, "px.schema: nesting too deep");
  switch (n->type) {
    case J_NULL: lua_pushvalue(L, cv->nul); return;
    case J_BOOL: lua_pushboolean(L, n->boolean); return;
    case J_NUM:
      if (n->isint) lua_pushinteger(L, (lua_Integer)n->u.num.i);
      else lua_pushnumber(L, n->u.num.d);
      return;
    case J_STR: lua_pushlstring(L, n->u.str.s, n->u.str.len); return;
    case J_ARR:
      lua_createtable(L, (int)n->u.list.n, 0);
      for (size_t i = 0; i < n->u.list.n; i++) {
        push_value_c(L, ITEMS(n)[i], cv, depth + 1);
        lua_rawseti(L, -2, (lua_Integer)i + 1);
      }
      lua_pushvalue(L, cv->amt);
      lua_setmetatable(L, -2);
      return;
    default: {
      struct jmember *m = MEMBERS(n);
      lua_createtable(L, 0, (int)n->u.list.n);
      for (size_t i = 0; i < n->u.list.n; i++) {
        lua_pushlstring(L, m[i].key, m[i].klen);
        push_value_c(L, m[i].val, cv, depth + 1);
        lua_rawset(L, -3);
      }
      if (cv->order && depth <= cv->maxdepth) {
        lua_pushvalue(L, -1);
        lua_createtable(L, (int)n->u.list.n, 0);
        for (size_t i = 0; i < n->u.list.n; i++) {
          lua_pushlstring(L, m[i].key, m[i].klen);
          lua_rawseti(L, -2, (lua_Integer)i + 1);
        }
        lua_rawset(L, cv->order);
      }
      if (cv->objmap && n->aux) {
        lua_pushlightuserdata(L, (void *)n);
        lua_pushvalue(L, -2);
        lua_rawset(L, cv->objmap);
      }
      return;
    }
  }
}

static void push_value(lua_State *L, const struct jnode *n, int amt, int nul) {
  struct conv cv = {amt, nul, 0, 0, 0};
  push_value_c(L, n, &cv, 0);
}

static void push_issues(lua_State *L, const struct ivec *v) {
  lua_createtable(L, (int)v->n, 0);
  for (size_t i = 0; i < v->n; i++) {
    const struct issue *is = &v->v[i];
    lua_createtable(L, 0, 6);
    lua_pushstring(L, is->ptr);
    lua_setfield(L, -2, "pointer");
    lua_pushstring(L, is->kw);
    lua_setfield(L, -2, "keyword");
    lua_pushstring(L, is->msg);
    lua_setfield(L, -2, "message");
    lua_pushinteger(L, is->line);
    lua_setfield(L, -2, "line");
    lua_pushinteger(L, is->col);
    lua_setfield(L, -2, "column");
    lua_pushstring(L, is->spath);
    lua_setfield(L, -2, "schema");
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_setmetatable(L, -2);
}

static int issue_cmp(const void *a, const void *b) {
  const struct issue *x = a, *y = b;
  if (x->line != y->line) return x->line < y->line ? -1 : 1;
  if (x->col != y->col) return x->col < y->col ? -1 : 1;
  return 0;
}

/* Stable sort by position (qsort is not stable: sort an index). */
static void sort_issues(struct vctx *c, struct ivec *v) {
  if (v->n < 2) return;
  size_t n = v->n;
  size_t *idx = xrealloc(c, NULL, n * sizeof *idx);
  struct issue *tmp = malloc(n * sizeof *tmp);
  if (!tmp) {
    free(idx);
    luaL_error(c->L, "px.schema: out of memory");
  }
  for (size_t i = 0; i < n; i++) idx[i] = i;
  /* insertion sort on runs is fine for the sizes involved; use merge for large n */
  for (size_t width = 1; width < n; width *= 2) {
    for (size_t lo = 0; lo < n; lo += 2 * width) {
      size_t mid = lo + width < n ? lo + width : n, hi = lo + 2 * width < n ? lo + 2 * width : n;
      size_t i = lo, j = mid, k = lo;
      size_t *out = (size_t *)tmp; /* reuse tmp as index scratch: n * sizeof(issue) >= n * sizeof(size_t) */
      while (i < mid && j < hi) out[k++] = issue_cmp(&v->v[idx[j]], &v->v[idx[i]]) < 0 ? idx[j++] : idx[i++];
      while (i < mid) out[k++] = idx[i++];
      while (j < hi) out[k++] = idx[j++];
      memcpy(idx + lo, out + lo, (hi - lo) * sizeof *idx);
    }
  }
  for (size_t i = 0; i < n; i++) tmp[i] = v->v[idx[i]];
  memcpy(v->v, tmp, n * sizeof *tmp);
  free(tmp);
  free(idx);
}

/* ---- Lua API ----------------------------------------------------------------- */

static void check_opts(lua_State *L, int idx, const char *const *known) {
  if (lua_isnoneornil(L, idx)) return;
  luaL_checktype(L, idx, LUA_TTABLE);
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    int ok = 0;
    if (lua_type(L, -2) == LUA_TSTRING)
      for (int i = 0; known[i]; i++)
        if (strcmp(lua_tostring(L, -2), known[i]) == 0) ok = 1;
    if (!ok) {
      lua_pushvalue(L, -2);
      const char *k = luaL_tolstring(L, -1, NULL);
      luaL_argerror(L, idx, lua_pushfstring(L, "unknown option '%s'", k));
    }
    lua_pop(L, 1);
  }
}

/* order = true (every object) | n (objects at depth <= n) | false/nil: -1 none */
static int opt_order(lua_State *L, int idx) {
  if (lua_isnoneornil(L, idx)) return -1;
  lua_getfield(L, idx, "order");
  int r = -1;
  if (lua_isboolean(L, -1)) r = lua_toboolean(L, -1) ? (1 << 30) : -1;
  else if (lua_isinteger(L, -1) && lua_tointeger(L, -1) >= 0 && lua_tointeger(L, -1) < (1 << 30)) r = (int)lua_tointeger(L, -1);
  else if (!lua_isnil(L, -1)) luaL_argerror(L, idx, "option 'order' must be a boolean or a depth (integer >= 0)");
  lua_pop(L, 1);
  return r;
}

static int opt_bool(lua_State *L, int idx, const char *name) {
  if (lua_isnoneornil(L, idx)) return 0;
  lua_getfield(L, idx, name);
  int t = lua_type(L, -1);
  if (t != LUA_TNIL && t != LUA_TBOOLEAN) luaL_argerror(L, idx, lua_pushfstring(L, "option '%s' must be a boolean", name));
  int v = lua_toboolean(L, -1);
  lua_pop(L, 1);
  return v;
}

static int compiled_gc(lua_State *L) {
  struct compiled *c = luaL_checkudata(L, 1, COMPILED_MT);
  if (!c->closed) compiled_release(c);
  return 0;
}

static int s_compile(lua_State *L) {
  static const char *const known[] = {"strict", "name", NULL};
  size_t len;
  const char *text = luaL_checklstring(L, 1, &len);
  check_opts(L, 2, known);
  int strict = opt_bool(L, 2, "strict");
  const char *name = "schema";
  if (!lua_isnoneornil(L, 2)) {
    lua_getfield(L, 2, "name");
    if (!lua_isnil(L, -1)) {
      if (lua_type(L, -1) != LUA_TSTRING) luaL_argerror(L, 2, "option 'name' must be a string");
      name = lua_tostring(L, -1);
    }
    /* left on the stack: keeps name alive */
  }
  struct compiled *c = lua_newuserdatauv(L, sizeof *c, 0);
  memset(c, 0, sizeof *c);
  luaL_setmetatable(L, COMPILED_MT);
  char err[200];
  int is_oom = 0;
  c->root = json_parse(&c->a, text, len, err, sizeof err, &is_oom);
  if (!c->root) {
    compiled_release(c);
    if (is_oom) return luaL_error(L, "px.schema: out of memory");
    lua_pushnil(L);
    lua_pushfstring(L, "%s: %s", name, err);
    return 2;
  }
  struct cctx cc;
  memset(&cc, 0, sizeof cc);
  cc.c = c;
  cc.strict = strict;
  c->top = compile_node(&cc, c->root, "#");
  if (c->top && !cc.err[0]) {
    for (struct sch *s = c->all; s; s = s->next_all)
      if (check_cycles(&cc, s) != 0) break;
  }
  if (!c->top || cc.err[0]) {
    compiled_release(c);
    lua_pushnil(L);
    lua_pushfstring(L, "%s: %s", name, cc.err[0] ? cc.err : "cannot compile");
    return 2;
  }
  return 1;
}

static void push_result(lua_State *L, struct vctx *c, const struct jnode *root, int want_value, int order_depth,
                        int valid) {
  int amt = lua_upvalueindex(1), nul = lua_upvalueindex(2);
  lua_createtable(L, 0, 8);
  int res = lua_gettop(L);
  lua_pushboolean(L, valid);
  lua_setfield(L, res, "valid");
  push_issues(L, &c->errs);
  lua_setfield(L, res, "errors");
  push_issues(L, &c->warns);
  lua_setfield(L, res, "warnings");
  int objmap = 0;
  if (root && want_value) {
    lua_newtable(L);
    objmap = lua_gettop(L);
    int order = 0;
    if (order_depth >= 0) {
      lua_newtable(L);
      order = lua_gettop(L);
    }
    struct conv cv = {amt, nul, order, objmap, order_depth};
    push_value_c(L, root, &cv, 0);
    lua_setfield(L, res, "value");
    if (order) lua_setfield(L, res, "order");
  }
  lua_createtable(L, (int)c->ndefs, 0);
  for (size_t i = 0; i < c->ndefs; i++) {
    lua_createtable(L, 0, 4);
    lua_pushstring(L, c->defs[i].ptr);
    lua_setfield(L, -2, "pointer");
    push_value(L, c->defs[i].val, amt, nul);
    lua_setfield(L, -2, "value");
    if (objmap) {
      lua_pushlightuserdata(L, (void *)c->defs[i].obj);
      lua_rawget(L, objmap);
      lua_setfield(L, -2, "parent");
      lua_pushlstring(L, c->defs[i].key, c->defs[i].klen);
      lua_setfield(L, -2, "key");
    }
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
  lua_pushvalue(L, amt);
  lua_setmetatable(L, -2);
  lua_setfield(L, res, "defaults");
  lua_createtable(L, (int)c->ncolls, 0);
  for (size_t i = 0; i < c->ncolls; i++) {
    lua_createtable(L, 0, 2);
    lua_pushstring(L, c->colls[i].ptr);
    lua_setfield(L, -2, "pointer");
    lua_pushstring(L, c->colls[i].name);
    lua_setfield(L, -2, "name");
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
  lua_pushvalue(L, amt);
  lua_setmetatable(L, -2);
  lua_setfield(L, res, "collected");
  if (objmap) lua_remove(L, objmap);
}

/* validate(text, opts) and validate_file(path, opts): the same but for where the bytes come from. */
static int validate_impl(lua_State *L, int is_file) {
  static const char *const known[] = {"unknown", "value", "order", "max_steps", "text", NULL};
  struct compiled *cs = luaL_checkudata(L, 1, COMPILED_MT);
  size_t len;
  const char *text = luaL_checklstring(L, 2, &len);
  check_opts(L, 3, known);
  if (cs->closed) return luaL_error(L, "px.schema: validate on a closed schema");
  int unknown_warn = 0, want_value = opt_bool(L, 3, "value"), order_depth = opt_order(L, 3);
  int want_text = opt_bool(L, 3, "text");
  long max_steps = DEFAULT_MAX_STEPS;
  if (!lua_isnoneornil(L, 3)) {
    lua_getfield(L, 3, "unknown");
    if (!lua_isnil(L, -1)) {
      const char *u = lua_tostring(L, -1);
      if (lua_type(L, -1) != LUA_TSTRING || (strcmp(u, "error") != 0 && strcmp(u, "warning") != 0))
        luaL_argerror(L, 3, "option 'unknown' must be \"error\" or \"warning\"");
      unknown_warn = strcmp(u, "warning") == 0;
    }
    lua_getfield(L, 3, "max_steps");
    if (!lua_isnil(L, -1)) {
      if (!lua_isinteger(L, -1) || lua_tointeger(L, -1) < 1)
        luaL_argerror(L, 3, "option 'max_steps' must be a positive integer");
      max_steps = (long)lua_tointeger(L, -1);
    }
    lua_pop(L, 2);
  }
  struct vctx *c = lua_newuserdatauv(L, sizeof *c, 0);
  memset(c, 0, sizeof *c);
  luaL_setmetatable(L, VCTX_MT);
  c->L = L;
  c->unknown_warn = unknown_warn;
  c->max_steps = max_steps;
  if (is_file) {
    const char *path = text;
    const char *ferr = filemap_open(&c->fm, path, &text, &len);
    if (ferr) {
      lua_pushnil(L);
      lua_pushfstring(L, "%s: %s", path, ferr);
      return 2;
    }
  }
  char err[200];
  int is_oom = 0;
  struct jnode *root = json_parse(&c->doc, text, len, err, sizeof err, &is_oom);
  if (!root) {
    if (is_oom) return luaL_error(L, "px.schema: out of memory");
    int line = 0, col = 0;
    sscanf(err, "line %d, column %d", &line, &col);
    struct jnode at;
    memset(&at, 0, sizeof at);
    at.line = line;
    at.col = col;
    add_issue(c, &c->errs, NULL, &at, "json", NULL, 0, "%s", err);
    push_result(L, c, NULL, 0, -1, 0);
    vctx_release(c);
    return 1;
  }
  check_dups(c, root);
  v_node(c, cs->top, root);
  if (c->aborted) {
    add_issue(c, &c->errs, NULL, root, "limit", NULL, 0,
              c->too_deep ? "validation stopped: the schema nests too deeply for this document"
                          : "validation stopped after %ld steps (schema too complex for this document)",
              c->max_steps);
  }
  sort_issues(c, &c->errs);
  sort_issues(c, &c->warns);
  push_result(L, c, root, want_value, order_depth, c->errs.n == 0);
  if (want_text) {
    lua_pushlstring(L, text, len);
    lua_setfield(L, -2, "text");
  }
  vctx_release(c);
  return 1;
}

static int s_validate(lua_State *L) { return validate_impl(L, 0); }
static int s_validate_file(lua_State *L) { return validate_impl(L, 1); }

static int s_close(lua_State *L) {
  struct compiled *c = luaL_checkudata(L, 1, COMPILED_MT);
  if (!c->closed) compiled_release(c);
  return 0;
}

struct docud {
  struct arena a;
  struct filemap fm;
};

static int doc_gc(lua_State *L) {
  struct docud *d = luaL_checkudata(L, 1, DOC_MT);
  arena_free(&d->a);
  filemap_release(&d->fm);
  return 0;
}

static int decode_impl(lua_State *L, int is_file) {
  static const char *const known[] = {"order", NULL};
  size_t len;
  const char *text = luaL_checklstring(L, 1, &len);
  check_opts(L, 2, known);
  int order_depth = opt_order(L, 2);
  struct docud *d = lua_newuserdatauv(L, sizeof *d, 0);
  memset(d, 0, sizeof *d);
  luaL_setmetatable(L, DOC_MT);
  if (is_file) {
    const char *path = text;
    const char *ferr = filemap_open(&d->fm, path, &text, &len);
    if (ferr) {
      lua_pushnil(L);
      lua_pushfstring(L, "%s: %s", path, ferr);
      return 2;
    }
  }
  char err[200];
  int is_oom = 0;
  struct jnode *root = json_parse(&d->a, text, len, err, sizeof err, &is_oom);
  if (!root) {
    arena_free(&d->a);
    filemap_release(&d->fm);
    if (is_oom) return luaL_error(L, "px.schema: out of memory");
    lua_pushnil(L);
    lua_pushstring(L, err);
    return 2;
  }
  int order = 0;
  if (order_depth >= 0) {
    lua_newtable(L);
    order = lua_gettop(L);
  }
  struct conv cv = {lua_upvalueindex(1), lua_upvalueindex(2), order, 0, order_depth};
  push_value_c(L, root, &cv, 0);
  arena_free(&d->a);
  filemap_release(&d->fm);
  if (order) {
    lua_pushvalue(L, order);
    return 2;
  }
  return 1;
}

static int s_decode(lua_State *L) { return decode_impl(L, 0); }
static int s_decode_file(lua_State *L) { return decode_impl(L, 1); }

static int s_match(lua_State *L) {
  size_t plen, slen;
  const char *pat = luaL_checklstring(L, 1, &plen);
  const char *s = luaL_checklstring(L, 2, &slen);
  char err[160];
  struct regex *re = regex_compile(pat, plen, err, sizeof err);
  if (!re) {
    lua_pushnil(L);
    lua_pushfstring(L, "bad pattern \"%s\": %s", pat, err);
    return 2;
  }
  int r = regex_search(re, s, slen);
  regex_free(re);
  lua_pushboolean(L, r);
  return 1;
}

static int s_check_format(lua_State *L) {
  const char *name = luaL_checkstring(L, 1);
  size_t len;
  const char *s = luaL_checklstring(L, 2, &len);
  int fmt = 0;
  for (int i = 1; format_names[i]; i++)
    if (strcmp(format_names[i], name) == 0) fmt = i;
  if (!fmt) return luaL_argerror(L, 1, lua_pushfstring(L, "unknown format '%s'", name));
  const char *msg = format_check(fmt, s, len);
  lua_pushboolean(L, msg == NULL);
  if (!msg) return 1;
  lua_pushstring(L, msg);
  return 2;
}

int luaopen_px_schema(lua_State *L) {
  luaL_requiref(L, "px.json", luaopen_px_json, 0);
  int json = lua_gettop(L);
  lua_getfield(L, json, "array_mt");
  lua_getfield(L, json, "null");
  int amt = json + 1, nul = json + 2;

  if (luaL_newmetatable(L, VCTX_MT)) {
    lua_pushcfunction(L, vctx_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_pop(L, 1);
  if (luaL_newmetatable(L, DOC_MT)) {
    lua_pushcfunction(L, doc_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_pop(L, 1);
  if (luaL_newmetatable(L, COMPILED_MT)) {
    lua_pushcfunction(L, compiled_gc);
    lua_setfield(L, -2, "__gc");
    lua_pushcfunction(L, s_close);
    lua_setfield(L, -2, "__close");
    lua_newtable(L);
    lua_pushvalue(L, amt);
    lua_pushvalue(L, nul);
    lua_pushcclosure(L, s_validate, 2);
    lua_setfield(L, -2, "validate");
    lua_pushvalue(L, amt);
    lua_pushvalue(L, nul);
    lua_pushcclosure(L, s_validate_file, 2);
    lua_setfield(L, -2, "validate_file");
    lua_pushcfunction(L, s_close);
    lua_setfield(L, -2, "close");
    lua_setfield(L, -2, "__index");
  }
  lua_pop(L, 1);

  lua_newtable(L);
  lua_pushcfunction(L, s_compile);
  lua_setfield(L, -2, "compile");
  lua_pushvalue(L, amt);
  lua_pushvalue(L, nul);
  lua_pushcclosure(L, s_decode, 2);
  lua_setfield(L, -2, "decode");
  lua_pushvalue(L, amt);
  lua_pushvalue(L, nul);
  lua_pushcclosure(L, s_decode_file, 2);
  lua_setfield(L, -2, "decode_file");
  lua_pushcfunction(L, s_match);
  lua_setfield(L, -2, "match");
  lua_pushcfunction(L, s_check_format);
  lua_setfield(L, -2, "check_format");
  return 1;
}
