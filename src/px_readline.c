/*
 * px.readline: line editing and history for the REPL, through libedit.
 *
 *   readline(prompt)        -> line | nil at end of input (Ctrl-D)
 *   add_history(line)       -> nothing; blank lines are not kept
 *   load_history(path)      -> true | nil, msg
 *   save_history(path)      -> true | nil, msg   (keeps the last 1000)
 *   set_completer(fn | nil) -> fn(word, line) returns a list of candidates
 *                              that replace word (Tab); nil turns it off
 *
 * libedit keeps one editor and one history per process, so this module is
 * process-wide state, as the terminal is.
 */
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <editline/readline.h>

#include <lauxlib.h>
#include <lua.h>

#define HISTORY_MAX 1000
#define LINE_MT "px.readline.line"

/* The Lua state inside readline(); its completer is in its registry, so
 * it runs only while readline() is active, on that state. */
static lua_State *active_L = NULL;
#define COMPLETER_KEY "px.readline.completer"

/* Candidates from the last completer call, handed out by next_candidate(). */
static char **cands = NULL;
static size_t ncands = 0, cand_next = 0;

static void free_cands(void) {
  for (size_t i = 0; i < ncands; i++) free(cands[i]);
  free(cands);
  cands = NULL;
  ncands = cand_next = 0;
}

static char *next_candidate(const char *text, int state) {
  (void)text;
  if (state == 0) cand_next = 0;
  if (cand_next >= ncands) return NULL;
  char *c = cands[cand_next];
  cands[cand_next++] = NULL; /* libedit frees what we return */
  return c;
}

/* Runs the Lua completer (protected: an error must not unwind through
 * libedit) and collects its string results. */
static int call_completer(lua_State *L) {
  const char *word = lua_tostring(L, 1);
  lua_getfield(L, LUA_REGISTRYINDEX, COMPLETER_KEY);
  lua_pushstring(L, word);
  lua_pushstring(L, rl_line_buffer ? rl_line_buffer : "");
  lua_call(L, 2, 1);
  if (!lua_istable(L, -1)) return 0;
  size_t n = (size_t)lua_rawlen(L, -1);
  cands = calloc(n ? n : 1, sizeof *cands);
  if (cands == NULL) return 0;
  for (size_t i = 0; i < n; i++) {
    lua_rawgeti(L, -1, (lua_Integer)i + 1);
    const char *s = lua_tostring(L, -1);
    if (s && (cands[ncands] = strdup(s)) != NULL) ncands++;
    lua_pop(L, 1);
  }
  return 0;
}

static char **attempt_completion(const char *text, int start, int end) {
  (void)start;
  (void)end;
  rl_attempted_completion_over = 1; /* no fallback to file names */
  free_cands();
  lua_State *L = active_L;
  if (L == NULL || !lua_checkstack(L, 4)) return NULL;
  int top = lua_gettop(L);
  if (lua_getfield(L, LUA_REGISTRYINDEX, COMPLETER_KEY) != LUA_TFUNCTION) {
    lua_settop(L, top);
    return NULL;
  }
  lua_settop(L, top);
  lua_pushcfunction(L, call_completer);
  lua_pushstring(L, text);
  lua_pcall(L, 1, 0, 0); /* a failing completer just offers nothing */
  lua_settop(L, top);
  if (ncands == 0) return NULL;
  return rl_completion_matches(text, next_candidate);
}

static void setup(void) {
  static int done = 0;
  if (done) return;
  done = 1;
  rl_readline_name = "phoenix";
  using_history();
  stifle_history(HISTORY_MAX);
  rl_attempted_completion_function = attempt_completion;
  /* Lua names: "string.format", "t:method" are one word. */
  rl_basic_word_break_characters = " \t\n\"\\'`@$><=;|&{}()[],+-*/%^#~";
  rl_completion_append_character = '\0';
}

/* The line libedit allocated, owned by a userdata until it is a Lua
 * string, so running out of memory in between leaks nothing. */
static int line_gc(lua_State *L) {
  char **p = lua_touserdata(L, 1);
  free(*p);
  *p = NULL;
  return 0;
}

/* readline(prompt) -> line | nil */
static int rl_readline(lua_State *L) {
  const char *prompt = luaL_optstring(L, 1, "> ");
  setup();
  char **box = lua_newuserdatauv(L, sizeof *box, 0);
  *box = NULL;
  luaL_setmetatable(L, LINE_MT);
  active_L = L;
  *box = readline(prompt);
  active_L = NULL;
  free_cands();
  if (*box == NULL) {
    lua_pushnil(L);
    return 1;
  }
  lua_pushstring(L, *box);
  free(*box);
  *box = NULL;
  return 1;
}

static int is_blank(const char *s) {
  for (; *s; s++)
    if (*s != ' ' && *s != '\t' && *s != '\n' && *s != '\r') return 0;
  return 1;
}

static int rl_add_history(lua_State *L) {
  const char *line = luaL_checkstring(L, 1);
  setup();
  if (!is_blank(line)) add_history(line);
  return 0;
}

static int push_result(lua_State *L, int err, const char *path, const char *what) {
  if (err == 0) {
    lua_pushboolean(L, 1);
    return 1;
  }
  lua_pushnil(L);
  lua_pushfstring(L, "%s: cannot %s the history: %s", path, what, strerror(err > 0 ? err : EINVAL));
  return 2;
}

static int rl_load_history(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  setup();
  errno = 0;
  FILE *f = fopen(path, "r"); /* libedit's own errors are vague: check first */
  if (f == NULL) return push_result(L, errno, path, "read");
  fclose(f);
  return push_result(L, read_history(path), path, "read");
}

static int rl_save_history(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  setup();
  /* History can hold what was typed (passwords too): owner-only. */
  int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return push_result(L, errno, path, "write");
  close(fd);
  return push_result(L, write_history(path), path, "write");
}

static int rl_set_completer(lua_State *L) {
  if (!lua_isnoneornil(L, 1)) luaL_checktype(L, 1, LUA_TFUNCTION);
  setup();
  lua_settop(L, 1);
  lua_setfield(L, LUA_REGISTRYINDEX, COMPLETER_KEY);
  return 0;
}

static const luaL_Reg funcs[] = {
    {"readline", rl_readline},         {"add_history", rl_add_history}, {"load_history", rl_load_history},
    {"save_history", rl_save_history}, {"set_completer", rl_set_completer}, {NULL, NULL},
};

int luaopen_px_readline(lua_State *L) {
  if (luaL_newmetatable(L, LINE_MT)) {
    lua_pushcfunction(L, line_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_pop(L, 1);
  luaL_newlib(L, funcs);
  return 1;
}
