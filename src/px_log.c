/*
 * px.log: levelled human output on stderr, JSON lines to a file, and
 * redaction of registered secrets from both.
 *
 *   set_level("debug"|"info"|"warn"|"error"|"quiet"), level() -> name
 *   debug(msg [, fields]) info(...) warn(...) error(...)
 *   event(fields)              -> JSON line only (the engine's events)
 *   open(path) -> true | nil, msg;  close()   the JSON lines file
 *   redact(secret)             -> registers a secret (never printed again)
 *   scrub(text)                -> text with every registered secret replaced
 *   set_color(true|false|nil)  -> force colour on/off, nil = auto (tty, NO_COLOR)
 *   capture(true|false)        -> keep human lines in memory instead of stderr
 *   captured()                 -> the captured text (and clears it)
 *
 * Secrets are replaced by "(secret)". JSON lines carry ts (epoch seconds),
 * level, msg and the fields, encoded by px.json.canonical.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lua.h>

enum { LV_DEBUG, LV_INFO, LV_WARN, LV_ERROR, LV_QUIET };
static const char *const level_names[] = {"debug", "info", "warn", "error", "quiet", NULL};

#define MASK "(secret)"
#define MAX_SECRETS 4096

/* Process-wide: one log per process, as stderr is. */
static int cur_level = LV_INFO;
static int color_mode = -1; /* -1 auto */
static FILE *json_out = NULL;
static char **secrets = NULL;
static size_t *secret_lens = NULL;
static int nsecrets = 0, secrets_cap = 0;
static int capturing = 0;
static char *cap_buf = NULL;
static size_t cap_len = 0, cap_cap = 0;

static int use_color(void) {
  if (color_mode >= 0) return color_mode;
  const char *nc = getenv("NO_COLOR");
  return isatty(2) && !(nc && *nc);
}

/* Pushes text with every secret replaced. All occurrences of all secrets
 * are marked first, then each run of marked bytes becomes one MASK, so
 * overlapping or adjacent secrets ("abcd" and "cdef" in "abcdef") leave
 * no piece of either visible. */
static const char *push_scrubbed(lua_State *L, const char *s, size_t len, size_t *outlen) {
  if (nsecrets == 0 || len == 0) {
    lua_pushlstring(L, s, len);
    return lua_tolstring(L, -1, outlen);
  }
  unsigned char *mark = lua_newuserdatauv(L, len, 0);
  memset(mark, 0, len);
  int any = 0;
  for (size_t i = 0; i < len; i++)
    for (int k = 0; k < nsecrets; k++) {
      size_t n = secret_lens[k];
      if (n <= len - i && s[i] == secrets[k][0] && memcmp(s + i, secrets[k], n) == 0) {
        memset(mark + i, 1, n);
        any = 1;
      }
    }
  if (!any) {
    lua_pop(L, 1);
    lua_pushlstring(L, s, len);
    return lua_tolstring(L, -1, outlen);
  }
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  size_t i = 0;
  while (i < len) {
    if (mark[i]) {
      luaL_addstring(&b, MASK);
      while (i < len && mark[i]) i++;
    } else {
      size_t j = i;
      while (j < len && !mark[j]) j++;
      luaL_addlstring(&b, s + i, j - i);
      i = j;
    }
  }
  luaL_pushresult(&b);
  lua_remove(L, -2); /* the marks */
  return lua_tolstring(L, -1, outlen);
}

static void capture_add(const char *s, size_t n) {
  if (cap_len + n + 1 > cap_cap) {
    size_t nc = cap_cap ? cap_cap : 1024;
    while (nc < cap_len + n + 1) nc *= 2;
    char *p = realloc(cap_buf, nc);
    if (!p) return;
    cap_buf = p;
    cap_cap = nc;
  }
  memcpy(cap_buf + cap_len, s, n);
  cap_len += n;
}

static void write_human(int level, const char *msg, size_t len) {
  static const char *const prefix[] = {"debug: ", "", "warning: ", "error: "};
  static const char *const colors[] = {"\033[2m", "", "\033[33m", "\033[31m"};
  if (capturing) {
    capture_add(prefix[level], strlen(prefix[level]));
    capture_add(msg, len);
    capture_add("\n", 1);
    return;
  }
  int c = use_color() && level != LV_INFO;
  fprintf(stderr, "%s%s%.*s%s\n", c ? colors[level] : "", prefix[level], (int)len, msg, c ? "\033[0m" : "");
  fflush(stderr);
}

/* Encodes {ts, level, msg, ...fields} with px.json.canonical and writes it. */
static void write_json(lua_State *L, const char *level, const char *msg, int fields) {
  if (!json_out) return;
  lua_newtable(L);
  int t = lua_gettop(L);
  if (fields) {
    lua_pushnil(L);
    while (lua_next(L, fields)) {
      lua_pushvalue(L, -2);
      lua_insert(L, -2);
      lua_rawset(L, t);
    }
  }
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  lua_pushnumber(L, (double)ts.tv_sec + (double)(ts.tv_nsec / 1000000) / 1e3);
  lua_setfield(L, t, "ts");
  if (level) {
    lua_pushstring(L, level);
    lua_setfield(L, t, "level");
  }
  if (msg) {
    lua_pushstring(L, msg);
    lua_setfield(L, t, "msg");
  }
  lua_getglobal(L, "require");
  lua_pushliteral(L, "px.json");
  lua_call(L, 1, 1);
  lua_getfield(L, -1, "canonical");
  lua_pushvalue(L, t);
  lua_call(L, 1, 1);
  size_t n;
  const char *line = lua_tolstring(L, -1, &n);
  line = push_scrubbed(L, line, n, &n);
  fwrite(line, 1, n, json_out);
  fputc('\n', json_out);
  fflush(json_out);
  lua_settop(L, t - 1);
}

static int log_at(lua_State *L, int level) {
  size_t len;
  const char *msg = luaL_checklstring(L, 1, &len);
  int fields = 0;
  if (!lua_isnoneornil(L, 2)) {
    luaL_checktype(L, 2, LUA_TTABLE);
    fields = 2;
  }
  lua_settop(L, 2);
  const char *clean = push_scrubbed(L, msg, len, &len);
  if (level >= cur_level) write_human(level, clean, len);
  write_json(L, level_names[level], msg, fields);
  return 0;
}

static int log_debug(lua_State *L) { return log_at(L, LV_DEBUG); }
static int log_info(lua_State *L) { return log_at(L, LV_INFO); }
static int log_warn(lua_State *L) { return log_at(L, LV_WARN); }
static int log_error(lua_State *L) { return log_at(L, LV_ERROR); }

static int log_event(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  write_json(L, NULL, NULL, 1);
  return 0;
}

static int log_set_level(lua_State *L) {
  cur_level = luaL_checkoption(L, 1, NULL, level_names);
  return 0;
}

static int log_level(lua_State *L) {
  lua_pushstring(L, level_names[cur_level]);
  return 1;
}

static int log_open(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  FILE *f = fopen(path, "ae");
  if (!f) {
    lua_pushnil(L);
    lua_pushfstring(L, "%s: cannot open the JSON log: %s", path, strerror(errno));
    return 2;
  }
  if (json_out) fclose(json_out);
  json_out = f;
  lua_pushboolean(L, 1);
  return 1;
}

static int log_close(lua_State *L) {
  if (json_out) fclose(json_out);
  json_out = NULL;
  return 0;
}

static int add_secret(lua_State *L, const char *s, size_t n) {
  for (int k = 0; k < nsecrets; k++)
    if (secret_lens[k] == n && memcmp(secrets[k], s, n) == 0) return 0;
  if (nsecrets == MAX_SECRETS) return luaL_error(L, "too many secrets registered (%d)", MAX_SECRETS);
  if (nsecrets == secrets_cap) {
    int ncap = secrets_cap ? secrets_cap * 2 : 16;
    char **ns = realloc(secrets, sizeof *ns * (size_t)ncap);
    if (!ns) return luaL_error(L, "out of memory");
    secrets = ns;
    size_t *nl = realloc(secret_lens, sizeof *nl * (size_t)ncap);
    if (!nl) return luaL_error(L, "out of memory");
    secret_lens = nl;
    secrets_cap = ncap;
  }
  char *copy = malloc(n);
  if (!copy) return luaL_error(L, "out of memory");
  memcpy(copy, s, n);
  secrets[nsecrets] = copy;
  secret_lens[nsecrets] = n;
  nsecrets++;
  return 0;
}

/* redact(secret): also registers the secret as px.json writes it inside a
 * string (quotes, backslashes and control bytes escaped), so a JSON log
 * line cannot carry it in escaped form. */
static int log_redact(lua_State *L) {
  size_t n;
  const char *s = luaL_checklstring(L, 1, &n);
  if (n == 0) return 0;
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    switch (c) {
      case '"': luaL_addstring(&b, "\\\""); break;
      case '\\': luaL_addstring(&b, "\\\\"); break;
      case '\n': luaL_addstring(&b, "\\n"); break;
      case '\r': luaL_addstring(&b, "\\r"); break;
      case '\t': luaL_addstring(&b, "\\t"); break;
      case '\b': luaL_addstring(&b, "\\b"); break;
      case '\f': luaL_addstring(&b, "\\f"); break;
      default:
        if (c < 0x20 || c == 0x7f) {
          char u[8];
          snprintf(u, sizeof u, "\\u%04x", c);
          luaL_addstring(&b, u);
        } else {
          luaL_addchar(&b, (char)c);
        }
    }
  }
  luaL_pushresult(&b);
  size_t en;
  const char *esc = lua_tolstring(L, -1, &en);
  add_secret(L, s, n);
  if (en != n || memcmp(esc, s, n) != 0) add_secret(L, esc, en);
  return 0;
}

static int log_scrub(lua_State *L) {
  size_t n;
  const char *s = luaL_checklstring(L, 1, &n);
  push_scrubbed(L, s, n, &n);
  return 1;
}

static int log_set_color(lua_State *L) {
  color_mode = lua_isnoneornil(L, 1) ? -1 : lua_toboolean(L, 1);
  return 0;
}

static int log_capture(lua_State *L) {
  capturing = lua_toboolean(L, 1);
  return 0;
}

static int log_captured(lua_State *L) {
  lua_pushlstring(L, cap_buf ? cap_buf : "", cap_len);
  cap_len = 0;
  return 1;
}

static const luaL_Reg funcs[] = {
    {"debug", log_debug},       {"info", log_info},         {"warn", log_warn},
    {"error", log_error},       {"event", log_event},       {"set_level", log_set_level},
    {"level", log_level},       {"open", log_open},         {"close", log_close},
    {"redact", log_redact},     {"scrub", log_scrub},       {"set_color", log_set_color},
    {"capture", log_capture},   {"captured", log_captured}, {NULL, NULL},
};

int luaopen_px_log(lua_State *L) {
  luaL_newlib(L, funcs);
  return 1;
}
