/*
 * px.schema at the C boundary: argument checks, idempotent close/gc, and
 * no leak when a Lua error (here: an allocation failure injected by a
 * failing allocator) interrupts compile, validate or decode half way.
 * Run under ASan (build-asan) LeakSanitizer checks the last point.
 */
#include "pxtest.h"

static const char *SCHEMA =
    "{\"type\":\"object\",\"required\":[\"lxc_configs\"],\"properties\":{\"lxc_configs\":{\"type\":\"object\","
    "\"propertyNames\":{\"pattern\":\"^[1-9][0-9]{2,8}$\"},\"additionalProperties\":{\"$ref\":\"#/$defs/ct\"}}},"
    "\"additionalProperties\":false,\"$defs\":{\"ct\":{\"type\":\"object\",\"required\":[\"name\"],"
    "\"properties\":{\"name\":{\"type\":\"string\",\"format\":\"hostname\"},\"ip\":{\"anyOf\":[{\"const\":\"dhcp\"},"
    "{\"type\":\"string\",\"format\":\"ipv4-cidr\"}]},\"features\":{\"type\":\"array\",\"items\":{\"type\":\"string\"},"
    "\"default\":[]},\"mac\":{\"type\":\"string\",\"format\":\"mac\"}},\"additionalProperties\":false}}}";

static const char *DOC =
    "{\"lxc_configs\":{\"101\":{\"name\":\"web\",\"ip\":\"10.0.0.5/24\",\"features\":[\"a\",\"b\"]},"
    "\"102\":{\"name\":\"bad_name\",\"ip\":\"10.0.0.300/24\",\"zz\":1},\"1x\":{\"name\":\"x\"},"
    "\"103\":{\"name\":\"db\",\"mac\":\"01:00:5E:00:00:01\"}},\"extra\":[1,2,{\"a\":null}]}";

/* An allocator that fails every allocation after `budget` of them (0 = never fails). */
static long budget = 0;
static int failing = 0;
static void *failing_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
  (void)ud;
  (void)osize;
  if (nsize == 0) {
    free(ptr);
    return NULL;
  }
  if (failing || (budget > 0 && --budget == 0)) {
    failing = 1;
    return NULL;
  }
  return realloc(ptr, nsize);
}

static int preload(lua_State *L) {
  luaL_openlibs(L);
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
#define PX_MODULE(name)                    \
  lua_pushcfunction(L, luaopen_px_##name); \
  lua_setfield(L, -2, "px." #name);
#include "px_modules.h"
#undef PX_MODULE
  lua_pop(L, 1);
  return 0;
}

/* The whole path under an allocator that fails at the n-th allocation. */
static int run_with_budget(long n) {
  budget = 0;
  lua_State *L = lua_newstate(failing_alloc, NULL);
  if (!L) return -1;
  lua_pushcfunction(L, preload);
  if (lua_pcall(L, 0, 0, 0) != LUA_OK) {
    lua_close(L);
    return -1;
  }
  lua_pushstring(L, SCHEMA);
  lua_setglobal(L, "SCHEMA");
  lua_pushstring(L, DOC);
  lua_setglobal(L, "DOC");
  const char *code =
      "local s = require 'px.schema'\n"
      "local c = assert(s.compile(SCHEMA))\n"
      "local r = c:validate(DOC, {value = true, order = true, unknown = 'warning'})\n"
      "assert(#r.errors == 4, #r.errors)\n"
      "assert(s.decode(DOC, {order = true}))\n"
      "return true";
  if (luaL_loadstring(L, code) != LUA_OK) {
    lua_close(L);
    return -1;
  }
  budget = n;
  int st = lua_pcall(L, 0, 1, 0);
  budget = 0;
  failing = 0;
  int ok = st == LUA_OK && lua_toboolean(L, -1);
  lua_close(L);
  return ok;
}

int main(void) {
  lua_State *L = pxtest_state();
  lua_pushstring(L, SCHEMA);
  lua_setglobal(L, "SCHEMA");
  lua_pushstring(L, DOC);
  lua_setglobal(L, "DOC");

  /* every error is collected, in document order, with the right keywords */
  CHECK_LUA(L,
            "local s = require 'px.schema'\n"
            "local r = assert(s.compile(SCHEMA)):validate(DOC)\n"
            "local got = {}\n"
            "for _, e in ipairs(r.errors) do got[#got + 1] = e.pointer .. ' ' .. e.keyword end\n"
            "local want = {'/lxc_configs/102/name format', '/lxc_configs/102/ip anyOf',\n"
            "  '/lxc_configs/102/zz additionalProperties', '/lxc_configs/1x pattern',\n"
            "  '/lxc_configs/103/mac format', '/extra additionalProperties'}\n"
            "return table.concat(got, ',') == table.concat(want, ',') or error(table.concat(got, ','))");

  /* defaults only for absent properties, as JSON values (an array stays an array) */
  CHECK_LUA(L,
            "local s, json = require 'px.schema', require 'px.json'\n"
            "local r = s.compile(SCHEMA):validate(DOC)\n"
            "local p = {}\n"
            "for _, d in ipairs(r.defaults) do p[#p + 1] = d.pointer; assert(json.is_array(d.value)) end\n"
            "return table.concat(p, ',') == '/lxc_configs/102/features,/lxc_configs/1x/features,/lxc_configs/103/features'"
            " or error(table.concat(p, ','))");

  /* wrong use raises; expected failures return nil, msg */
  CHECK_LUA(L, "local s = require 'px.schema'; return not pcall(s.compile)");
  CHECK_LUA(L, "local s = require 'px.schema'; return not pcall(s.compile, '{}', {bogus = true})");
  CHECK_LUA(L, "local s = require 'px.schema'; local c = s.compile('{}'); return not pcall(c.validate, c)");
  CHECK_LUA(L, "local s = require 'px.schema'; return not pcall(s.compile('{}').validate, {}, '1')");
  CHECK_LUA(L, "local s = require 'px.schema'; local c, e = s.compile('{'); return c == nil and e:find('line 1', 1, true)");
  CHECK_LUA(L, "local s = require 'px.schema'; local ok, e = s.match('(', 'x'); return ok == nil and type(e) == 'string'");

  /* close is idempotent and gc after close is safe */
  CHECK_LUA(L,
            "local s = require 'px.schema'\n"
            "local c = s.compile(SCHEMA); c:close(); c:close()\n"
            "local ok = pcall(c.validate, c, '{}')\n"
            "c = nil; collectgarbage(); collectgarbage()\n"
            "return not ok");

  /* a big document: 2000 containers, all errors found */
  CHECK_LUA(L,
            "local s = require 'px.schema'\n"
            "local parts = {}\n"
            "for i = 1, 2000 do parts[#parts + 1] = string.format('\"%d\":{\"name\":\"ct%s%d\",\"ip\":\"10.%d.%d.1/16\"}', 1000 + i, i % 10 == 0 and '_' or '-', i, i // 256, i % 256) end\n"
            "local text = '{\"lxc_configs\":{' .. table.concat(parts, ',') .. '}}'\n"
            "local r = s.compile(SCHEMA):validate(text)\n"
            "return #r.errors == 200 or error(#r.errors)");

  /* deep nesting is refused, not a stack overflow */
  CHECK_LUA(L,
            "local s = require 'px.schema'\n"
            "local r = s.compile('{}'):validate(string.rep('[', 100000))\n"
            "return not r.valid and r.errors[1].message:find('nesting too deep', 1, true)");

  /* allocation failures at every point leak nothing and never crash */
  int completed = 0, failed = 0;
  for (long n = 1; n < 20000; n += (n < 2000 ? 1 : 37)) {
    int r = run_with_budget(n);
    if (r == 1) {
      completed++;
      if (completed > 3) break; /* the budget is now past the whole run */
    } else {
      failed++;
    }
  }
  fprintf(stderr, "allocation failure runs: %d failed cleanly, %d completed\n", failed, completed);
  CHECK(failed > 100);
  CHECK(completed > 0);

  lua_close(L);
  return pxtest_done("test_schema");
}
