/* Shared by the px.pve fuzz targets: one Lua state with the px modules
 * preloaded and px.pve loaded as the global "pve". */
#ifndef FUZZ_PVE_COMMON_H
#define FUZZ_PVE_COMMON_H

#include <stdio.h>
#include <stdlib.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#define PX_MODULE(name) int luaopen_px_##name(lua_State *L);
#include "px_modules.h"
#undef PX_MODULE

static lua_State *fuzz_state(const char *helpers) {
  static lua_State *L;
  if (L) return L;
  L = luaL_newstate();
  luaL_openlibs(L);
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
#define PX_MODULE(name)                    \
  lua_pushcfunction(L, luaopen_px_##name); \
  lua_setfield(L, -2, "px." #name);
#include "px_modules.h"
#undef PX_MODULE
  lua_pop(L, 1);
  if (luaL_dostring(L, "pve = require 'px.pve'") != LUA_OK || luaL_dostring(L, helpers) != LUA_OK) {
    fprintf(stderr, "fuzz setup: %s\n", lua_tostring(L, -1));
    abort();
  }
  return L;
}

/* Calls the global function fn(data, arg); a raised error or a false
 * result is a bug, so the fuzzer stops on it. */
static void fuzz_call(lua_State *L, const char *fn, const char *data, size_t n, const char *arg) {
  lua_getglobal(L, fn);
  lua_pushlstring(L, data, n);
  lua_pushstring(L, arg);
  if (lua_pcall(L, 2, 1, 0) != LUA_OK || !lua_toboolean(L, -1)) {
    fprintf(stderr, "%s(%s) failed: %s\n", fn, arg, lua_tostring(L, -1));
    abort();
  }
  lua_settop(L, 0);
}

#endif
