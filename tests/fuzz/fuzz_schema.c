/*
 * libFuzzer target for px.schema: the JSON parser, the schema compiler,
 * the regex engine and the validator.
 *
 * Input: SCHEMA '\0' INSTANCE. Without a NUL byte the whole input is an
 * instance checked against a fixed schema that uses every keyword. Each
 * input also goes through decode() and, when it looks like one, match().
 * A fresh Lua state per input: LeakSanitizer then sees every allocation.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

int luaopen_px_json(lua_State *L);
int luaopen_px_schema(lua_State *L);

static const char fixed_schema[] =
    "{\"$defs\":{\"id\":{\"type\":\"integer\",\"minimum\":100,\"maximum\":999999999},"
    "\"name\":{\"type\":\"string\",\"format\":\"hostname\",\"x-error\":\"bad name\"},"
    "\"node\":{\"type\":\"object\",\"properties\":{\"kids\":{\"type\":\"array\",\"items\":{\"$ref\":\"#/$defs/node\"}}}}},"
    "\"type\":\"object\",\"propertyNames\":{\"pattern\":\"^[a-z_][a-z0-9_]*$\"},"
    "\"properties\":{\"id\":{\"$ref\":\"#/$defs/id\"},\"name\":{\"$ref\":\"#/$defs/name\"},"
    "\"ip\":{\"anyOf\":[{\"const\":\"dhcp\"},{\"type\":\"string\",\"format\":\"ipv4-cidr\"}]},"
    "\"mac\":{\"type\":\"string\",\"format\":\"mac\"},\"gw\":{\"format\":\"ipv4\"},"
    "\"tags\":{\"type\":\"array\",\"uniqueItems\":true,\"minItems\":1,\"maxItems\":8,"
    "\"prefixItems\":[{\"enum\":[\"a\",\"b\",1,null]}],\"items\":{\"type\":\"string\",\"maxLength\":12}},"
    "\"n\":{\"type\":\"number\",\"exclusiveMinimum\":0,\"multipleOf\":0.5},"
    "\"snap\":{\"type\":\"string\",\"pattern\":\"^[a-z][a-z0-9_-]{0,39}$\",\"not\":{\"enum\":[\"current\",\"vzdump\"]}},"
    "\"tree\":{\"$ref\":\"#/$defs/node\"},"
    "\"one\":{\"oneOf\":[{\"type\":\"string\"},{\"type\":\"object\",\"required\":[\"x\"]},{\"type\":\"object\",\"x-warning\":\"w\"}]},"
    "\"cond\":{\"if\":{\"properties\":{\"k\":{\"const\":\"vm\"}}},\"then\":{\"required\":[\"vmid\"]},\"else\":{\"maxProperties\":3}},"
    "\"d\":{\"default\":{\"x\":[]}}},"
    "\"patternProperties\":{\"^x-\":true,\"(a|b)*c\\\\d{2,4}\":{\"type\":\"boolean\"}},"
    "\"additionalProperties\":false,\"required\":[\"id\"]}";

static void run(lua_State *L, const char *schema, size_t slen, const char *inst, size_t ilen) {
  lua_settop(L, 0);
  lua_getglobal(L, "S");
  lua_getfield(L, -1, "compile");
  lua_pushlstring(L, schema, slen);
  if (lua_pcall(L, 1, 2, 0) != LUA_OK || lua_isnil(L, -2)) return;
  lua_pop(L, 1);
  int c = lua_gettop(L);
  for (int mode = 0; mode < 2; mode++) {
    lua_getfield(L, c, "validate");
    lua_pushvalue(L, c);
    lua_pushlstring(L, inst, ilen);
    lua_createtable(L, 0, 4);
    lua_pushstring(L, mode ? "warning" : "error");
    lua_setfield(L, -2, "unknown");
    lua_pushboolean(L, mode);
    lua_setfield(L, -2, "value");
    lua_pushboolean(L, mode);
    lua_setfield(L, -2, "order");
    lua_pushinteger(L, 100000);
    lua_setfield(L, -2, "max_steps");
    if (lua_pcall(L, 3, 1, 0) != LUA_OK) __builtin_trap(); /* validate never raises on bad input */
    lua_pop(L, 1);
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  lua_State *L = luaL_newstate();
  luaL_openlibs(L);
  luaL_requiref(L, "px.json", luaopen_px_json, 0);
  luaL_requiref(L, "px.schema", luaopen_px_schema, 0);
  lua_setglobal(L, "S");
  lua_settop(L, 0);
  const char *text = (const char *)data;
  const char *nul = memchr(text, 0, size);
  if (nul) {
    run(L, text, (size_t)(nul - text), nul + 1, size - (size_t)(nul - text) - 1);
  } else {
    run(L, fixed_schema, sizeof fixed_schema - 1, text, size);
    /* decode and match see the same bytes */
    lua_settop(L, 0);
    lua_getglobal(L, "S");
    lua_getfield(L, 1, "decode");
    lua_pushlstring(L, text, size);
    lua_createtable(L, 0, 1);
    lua_pushboolean(L, 1);
    lua_setfield(L, -2, "order");
    if (lua_pcall(L, 2, 2, 0) != LUA_OK) __builtin_trap();
    if (size < 200) {
      size_t half = size / 2;
      lua_settop(L, 1);
      lua_getfield(L, 1, "match");
      lua_pushlstring(L, text, half);
      lua_pushlstring(L, text + half, size - half);
      if (lua_pcall(L, 2, 2, 0) != LUA_OK) __builtin_trap();
    }
  }
  lua_close(L);
  return 0;
}
