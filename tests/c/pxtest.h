/* A minimal test harness for tests/c: CHECK records failures, run() drives
 * a Lua chunk inside a state that has the px.* modules preloaded. */
#ifndef PXTEST_H
#define PXTEST_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

static int pxtest_failures = 0;
static int pxtest_checks = 0;

#define CHECK(cond)                                                        \
  do {                                                                     \
    pxtest_checks++;                                                       \
    if (!(cond)) {                                                         \
      pxtest_failures++;                                                   \
      fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
    }                                                                      \
  } while (0)

#define PX_MODULE(name) int luaopen_px_##name(lua_State *L);
#include "px_modules_all.h"
#undef PX_MODULE

static lua_State *pxtest_state(void) {
  lua_State *L = luaL_newstate();
  luaL_openlibs(L);
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
#define PX_MODULE(name)                    \
  lua_pushcfunction(L, luaopen_px_##name); \
  lua_setfield(L, -2, "px." #name);
#include "px_modules_all.h"
#undef PX_MODULE
  lua_pop(L, 1);
  return L;
}

/* Runs code; a Lua error or a false first result is a failure. */
#define CHECK_LUA(L, code)                                                         \
  do {                                                                             \
    pxtest_checks++;                                                               \
    if (luaL_loadstring((L), (code)) != LUA_OK || lua_pcall((L), 0, 1, 0) != LUA_OK) { \
      pxtest_failures++;                                                           \
      fprintf(stderr, "%s:%d: Lua error: %s\n", __FILE__, __LINE__, lua_tostring((L), -1)); \
    } else if (!lua_toboolean((L), -1)) {                                          \
      pxtest_failures++;                                                           \
      fprintf(stderr, "%s:%d: Lua check returned false: %s\n", __FILE__, __LINE__, (code)); \
    }                                                                              \
    lua_settop((L), 0);                                                            \
  } while (0)

static int pxtest_done(const char *name) {
  fprintf(stderr, "%s: %d checks, %d failed\n", name, pxtest_checks, pxtest_failures);
  return pxtest_failures ? 1 : 0;
}

#endif
