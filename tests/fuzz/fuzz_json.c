/* libFuzzer target for px.json: decode any bytes; whatever decodes must
 * survive canonical() -> decode() -> canonical() unchanged. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

int luaopen_px_json(lua_State *L);

static const char check[] =
    "local json, text = ...\n"
    "local v, err = json.decode(text)\n"
    "if v == nil then assert(err:match('^line %d+, column %d+: '), err) return end\n"
    "local ok, c = pcall(json.canonical, v)\n"
    "if not ok then return end -- e.g. two keys written alike cannot be encoded\n"
    "local w, werr = json.decode(c)\n"
    "assert(werr == nil, werr) -- false and null decode to falsy values\n"
    "local c2 = json.canonical(w)\n"
    "assert(c == c2, 'canonical form is not stable')\n";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static lua_State *L = NULL;
  if (L == NULL) {
    L = luaL_newstate();
    luaL_openlibs(L);
    luaL_requiref(L, "px.json", luaopen_px_json, 0);
    lua_setglobal(L, "json");
  }
  if (luaL_loadstring(L, check) != LUA_OK) abort();
  lua_getglobal(L, "json");
  lua_pushlstring(L, (const char *)data, size);
  if (lua_pcall(L, 2, 0, 0) != LUA_OK) abort(); /* a failed assertion is a finding */
  lua_settop(L, 0);
  return 0;
}
