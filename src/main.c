/*
 * phoenix: one Lua 5.4 VM running the engine in lua/phoenix.
 *
 * main() finds the Lua tree, preloads the C primitives (px.<name>), checks
 * that the Lua side is the same version as this binary and then runs
 * phoenix.main under a traceback handler. Nothing below main() exits.
 */
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include "lua-cjson.h"
#include "px_config.h"

#define PX_MODULE(name) int luaopen_px_##name(lua_State *L);
#include "px_modules.h"
#undef PX_MODULE

#define EXIT_USAGE 2
#define EXIT_INTERNAL 70

static int is_file(const char *path) {
  struct stat st;
  return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

static int has_main(const char *lua_dir) {
  char path[PATH_MAX];
  if (snprintf(path, sizeof path, "%s/phoenix/main.lua", lua_dir) >= (int)sizeof path) return 0;
  return is_file(path);
}

/*
 * The share directory holds lua/, recipes/, schemas/ and etc/. Run from the
 * build tree it is the source tree; installed it is <prefix>/share/phoenix,
 * found relative to the executable so an installed tree can be moved.
 */
/* Loadable modules (px.http, px.git): <build>/lib in the build tree,
 * <prefix>/lib/phoenix installed, next to the binary either way. */
static void find_libdir(const char *exe, char *out, size_t len) {
  char dirbuf[PATH_MAX], bin_real[PATH_MAX];
  snprintf(dirbuf, sizeof dirbuf, "%s", exe);
  const char *dir = dirname(dirbuf);
  if (realpath(PX_BINARY_DIR, bin_real) && strcmp(bin_real, dir) == 0) snprintf(out, len, "%s/lib", PX_BINARY_DIR);
  else snprintf(out, len, "%s/../%s", dir, PX_LIB_REL);
}

static int find_home(char *home, size_t len, char *exe, size_t exelen) {
  const char *env = getenv("PHOENIX_HOME");
  ssize_t n = readlink("/proc/self/exe", exe, exelen - 1);
  if (n < 0) return -1;
  exe[n] = '\0';
  if (env && *env) {
    snprintf(home, len, "%s", env);
    return 0;
  }
  char dirbuf[PATH_MAX], bin_real[PATH_MAX];
  snprintf(dirbuf, sizeof dirbuf, "%s", exe);
  const char *dir = dirname(dirbuf);
  if (realpath(PX_BINARY_DIR, bin_real) && strcmp(bin_real, dir) == 0) {
    snprintf(home, len, "%s", PX_SOURCE_DIR);
    return 0;
  }
  char cand[PATH_MAX + 64];
  snprintf(cand, sizeof cand, "%s/../%s", dir, PX_SHARE_REL);
  if (realpath(cand, home)) {
    char lua_dir[PATH_MAX + 8];
    snprintf(lua_dir, sizeof lua_dir, "%s/lua", home);
    if (has_main(lua_dir)) return 0;
  }
  return -1;
}

static int traceback(lua_State *L) {
  const char *msg = lua_tostring(L, 1);
  if (msg == NULL) {
    if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING) return 1;
    msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
  }
  luaL_traceback(L, L, msg, 1);
  return 1;
}

static void preload(lua_State *L) {
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
#define PX_MODULE(name)                          \
  lua_pushcfunction(L, luaopen_px_##name);       \
  lua_setfield(L, -2, "px." #name);
#include "px_modules.h"
#undef PX_MODULE
  /* lua-cjson is linked in statically: no dependency on a system cjson.so. */
  lua_pushcfunction(L, luaopen_cjson);
  lua_setfield(L, -2, "cjson");
  lua_pop(L, 1);
}

/* package.path: our tree first, then Lua's defaults (busted, penlight ...). */
static void set_paths(lua_State *L, const char *lua_dir, const char *lib_dir) {
  lua_getglobal(L, "package");
  lua_getfield(L, -1, "path");
  const char *old = lua_tostring(L, -1);
  lua_pushfstring(L, "%s/?.lua;%s/?/init.lua;%s", lua_dir, lua_dir, old ? old : "");
  lua_setfield(L, -3, "path");
  lua_pop(L, 1);
  lua_getfield(L, -1, "cpath");
  old = lua_tostring(L, -1);
  lua_pushfstring(L, "%s/?.so;%s", lib_dir, old ? old : "");
  lua_setfield(L, -3, "cpath");
  lua_pop(L, 2);
}

/* package.loaded.px: facts about this binary the Lua side needs. */
static void set_px(lua_State *L, const char *home, const char *lua_dir, const char *exe) {
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
  lua_createtable(L, 0, 4);
  lua_pushstring(L, PX_VERSION);
  lua_setfield(L, -2, "version");
  lua_pushstring(L, home);
  lua_setfield(L, -2, "home");
  lua_pushstring(L, lua_dir);
  lua_setfield(L, -2, "lua_dir");
  lua_pushstring(L, exe);
  lua_setfield(L, -2, "exe");
  lua_setfield(L, -2, "px");
  lua_pop(L, 1);
}

/* The Lua side states its version in phoenix.version; both must agree. */
static int side_version(lua_State *L) {
  lua_getglobal(L, "require");
  lua_pushliteral(L, "phoenix.version");
  lua_call(L, 1, 1);
  return 1;
}

/* Runs in protected mode: phoenix.main.main(args). */
static int run(lua_State *L) {
  int argc = (int)lua_tointeger(L, 1);
  char **argv = (char **)lua_touserdata(L, 2);
  lua_getglobal(L, "require");
  lua_pushliteral(L, "phoenix.main");
  lua_call(L, 1, 1);
  lua_getfield(L, -1, "main");
  lua_createtable(L, argc, 0);
  for (int i = 0; i < argc; i++) {
    lua_pushstring(L, argv[i]);
    lua_rawseti(L, -2, i + 1);
  }
  lua_call(L, 1, 1);
  return 1;
}

int main(int argc, char **argv) {
  char home[PATH_MAX], exe[PATH_MAX], lua_dir[PATH_MAX + 8];
  const char *lua_dir_opt = NULL;

  /* --lua-dir is the one option C handles: it decides what Lua runs. */
  int first = 1;
  if (argc > 2 && strcmp(argv[1], "--lua-dir") == 0) {
    lua_dir_opt = argv[2];
    first = 3;
  } else if (argc > 1 && strncmp(argv[1], "--lua-dir=", 10) == 0) {
    lua_dir_opt = argv[1] + 10;
    first = 2;
  }

  if (find_home(home, sizeof home, exe, sizeof exe) != 0) {
    if (lua_dir_opt == NULL) {
      fprintf(stderr, "phoenix: cannot find the phoenix Lua files (set PHOENIX_HOME or use --lua-dir DIR)\n");
      return EXIT_USAGE;
    }
    snprintf(home, sizeof home, "%s/..", lua_dir_opt);
  }
  snprintf(lua_dir, sizeof lua_dir, "%s", lua_dir_opt ? lua_dir_opt : home);
  if (!lua_dir_opt) strncat(lua_dir, "/lua", sizeof lua_dir - strlen(lua_dir) - 1);
  if (!has_main(lua_dir)) {
    fprintf(stderr, "phoenix: %s/phoenix/main.lua not found (check --lua-dir and PHOENIX_HOME)\n", lua_dir);
    return EXIT_USAGE;
  }

  /* A write to a closed pipe must be an EPIPE error, not a dead process. */
  signal(SIGPIPE, SIG_IGN);

  lua_State *L = luaL_newstate();
  if (L == NULL) {
    fprintf(stderr, "phoenix: cannot create the Lua state: out of memory\n");
    return EXIT_INTERNAL;
  }
  luaL_openlibs(L);
  preload(L);
  char lib_dir[PATH_MAX + 64];
  find_libdir(exe, lib_dir, sizeof lib_dir);
  set_paths(L, lua_dir, lib_dir);
  set_px(L, home, lua_dir, exe);

  lua_pushcfunction(L, side_version);
  if (lua_pcall(L, 0, 1, 0) != LUA_OK || lua_type(L, -1) != LUA_TSTRING ||
      strcmp(lua_tostring(L, -1), PX_VERSION) != 0) {
    fprintf(stderr, "phoenix: the Lua files in %s are version %s but this binary is %s\n", lua_dir,
            lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "(unreadable)", PX_VERSION);
    lua_close(L);
    return EXIT_USAGE;
  }
  lua_pop(L, 1);

  lua_pushcfunction(L, traceback);
  lua_pushcfunction(L, run);
  lua_pushinteger(L, argc - first);
  lua_pushlightuserdata(L, argv + first);
  int status = lua_pcall(L, 2, 1, 1);
  int code;
  if (status != LUA_OK) {
    fprintf(stderr, "phoenix: internal error: %s\n", lua_tostring(L, -1));
    code = EXIT_INTERNAL;
  } else if (lua_isinteger(L, -1)) {
    code = (int)lua_tointeger(L, -1);
  } else {
    code = lua_toboolean(L, -1) || lua_isnil(L, -1) ? 0 : 1;
  }
  fflush(stdout);
  lua_close(L);
  return code;
}
