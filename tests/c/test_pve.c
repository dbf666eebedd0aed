/* px.pve from C: the module's contract (results, nil+msg, raising on wrong
 * use) and robustness on arbitrary bytes, run under ASan in build-asan.
 * The fixture-driven cases live in tests/lua/pve_spec.lua. */
#include "pxtest.h"

static const char *PRELUDE = "pve = require 'px.pve'\n";

/* Random input: bytes from a config-ish alphabet plus any byte, NUL included. */
static void random_input(unsigned *seed, char *buf, size_t *len, size_t max) {
  static const char alpha[] = "[]#:=,;%!\n\t abcdelmnoprstuvwxz0123456789-_./PENDING{}\"\\";
  size_t n = (size_t)(rand_r(seed) % (int)max);
  for (size_t i = 0; i < n; i++) {
    int r = rand_r(seed);
    buf[i] = (r % 8 == 0) ? (char)(r >> 8) : alpha[(size_t)(r >> 4) % (sizeof alpha - 1)];
  }
  *len = n;
}

/* Calls pve[fn](input, extra...) protected; a raised error is a failure. */
static int call_protected(lua_State *L, const char *fn, const char *s, size_t n, const char *arg2) {
  int top = lua_gettop(L);
  lua_getglobal(L, "pve");
  lua_getfield(L, -1, fn);
  lua_pushlstring(L, s, n);
  int nargs = 1;
  if (arg2) {
    lua_pushstring(L, arg2);
    nargs = 2;
  }
  int ok = lua_pcall(L, nargs, 2, 0) == LUA_OK;
  if (!ok) fprintf(stderr, "%s raised: %s\n", fn, lua_tostring(L, -1));
  lua_settop(L, top);
  return ok;
}

static void test_config(lua_State *L) {
  CHECK_LUA(L, "local c = assert(pve.parse_config('#a%3Ab\\ncores: 2\\nmemory: 512\\n', 'lxc'))\n"
               "return c.description == 'a:b\\n' and c.main.cores == '2' and #c.warnings == 0");
  CHECK_LUA(L, "local t = 'cores: 1\\n\\n[PENDING]\\ncores: 2\\ndelete: !numa,tags\\n\\n[special:cloudinit]\\n"
               "name: x\\n\\n[snap]\\ncores: 1\\nsnaptime: 1\\n'\n"
               "local c = assert(pve.parse_config(t, 'qemu'))\n"
               "return c.delete[1].key == 'numa' and c.delete[1].force and not c.delete[2].force\n"
               "  and pve.write_config(c, 'qemu') == 'cores: 1\\n\\n[PENDING]\\ncores: 2\\ndelete: !numa,tags\\n\\n"
               "[snap]\\ncores: 1\\nsnaptime: 1\\n'");
  CHECK_LUA(L, "local c, e = pve.parse_config('numa: sure\\n', 'qemu', {strict = true})\n"
               "return c == nil and e == \"line 1: unable to parse value of 'numa' - type check ('boolean') failed - got 'sure'\"");
  CHECK_LUA(L, "local c = pve.parse_config('[x y]\\ncores: 2\\n', 'qemu')\n"
               "return next(c.main) == nil and c.warnings[1] == \"line 1: skipping unknown section: 'x y'\"");
  CHECK_LUA(L, "return not pcall(pve.parse_config, 'x', 'kvm') and not pcall(pve.parse_config, 'x', 'lxc', {x = 1})"
               " and not pcall(pve.parse_config, {}, 'lxc') and not pcall(pve.write_config, 'x', 'lxc')");
  CHECK_LUA(L, "local s, e = pve.write_config({main = {['x:y'] = '1'}}, 'lxc') return s == nil and e == \"invalid key 'x:y'\"");
  CHECK_LUA(L, "local s, e = pve.write_config({main = {}, pending = 5}, 'lxc') return s == nil and e == 'pending must be a table'");
}

static void test_prop(lua_State *L) {
  CHECK_LUA(L, "local t = assert(pve.parse_prop('virtio=BC:24:11:2C:69:EC,bridge=vnet0,firewall=1', 'qemu-net'))\n"
               "return t.model == 'virtio' and t.macaddr == 'BC:24:11:2C:69:EC' and t.firewall == true\n"
               "  and pve.format_prop(t, 'qemu-net') == 'virtio=BC:24:11:2C:69:EC,bridge=vnet0,firewall=1'");
  CHECK_LUA(L, "local t, e = pve.parse_prop('local:1,bogus=1', 'qemu-scsi')\n"
               "return t == nil and e == 'invalid key in comma-separated list property: bogus'");
  CHECK_LUA(L, "return pve.format_prop({volume = 'local:1', mp = '/m', size = 1073741824, backup = false}, 'lxc-mp')"
               " == 'local:1,mp=/m,backup=0,size=1G'");
  CHECK_LUA(L, "return not pcall(pve.parse_prop, 'a', 'nope') and not pcall(pve.format_prop, 'a', 'lxc-net')");
  CHECK_LUA(L, "return pve.parse_size('4G') == 4294967296 and pve.format_size(4294967296) == '4G'"
               " and pve.parse_size('4.5X') == nil and not pcall(pve.format_size, -1)");
}

static void test_outputs(lua_State *L) {
  CHECK_LUA(L, "local r = assert(pve.parse_pvesm_status('Name Type Status Total (KiB) Used (KiB) Available (KiB) %\\n"
               "local dir active 100 40 60 40.00%\\noff nfs disabled 0 0 0 N/A\\n'))\n"
               "return #r == 2 and r[1].total == 100 and r[1].percent == 40.0 and r[2].percent == nil and not r[2].enabled");
  CHECK_LUA(L, "local r = assert(pve.parse_zfs_get('tank\\tused\\t123\\t-\\ntank/a\\tatime\\toff\\tinherited from tank\\n'))\n"
               "return #r == 2 and r[2].source == 'inherited' and r[2].inherited_from == 'tank'");
  CHECK_LUA(L, "local r, e = pve.parse_zfs_list('tank\\t1\\n', {'name', 'used', 'avail'})\n"
               "return r == nil and e == 'line 1: expected 3 fields, got 2'");
  CHECK_LUA(L, "local r = assert(pve.parse_listsnapshot('`-> a  2020-01-01 00:00:00     first\\n `-> current   You are here!\\n'))\n"
               "return r[1].time == '2020-01-01 00:00:00' and r[1].description == 'first' and r[2].current and r[2].parent == 'a'");
  CHECK_LUA(L, "local r = assert(pve.parse_pvesh_json('{\"data\":[{\"vmid\":\"100\",\"cpu\":\"0.5\",\"name\":\"100\"}]}'))\n"
               "return r[1].vmid == 100 and math.type(r[1].vmid) == 'integer' and r[1].cpu == 0.5 and r[1].name == '100'");
  CHECK_LUA(L, "local r, e = pve.parse_pvesh_json('[{\"a\":1}') return r == nil and e == \"line 1: expected ',' or ']'\"");
}

/* Every entry point on many random inputs: no crash, no raise, and a
 * parsed config or property string always writes back. */
static void test_random(lua_State *L) {
  static const char *const outs[] = {"parse_pvesm_status", "parse_zpool_status", "parse_listsnapshot",
                                     "parse_pvesh_json", "decode_text", "encode_text", "parse_tags", "parse_size"};
  static const char *const fmts[] = {"lxc-net", "lxc-mp", "lxc-features", "qemu-net", "qemu-scsi",
                                     "qemu-hostpci", "qemu-boot", "startup"};
  unsigned seed = 7;
  char buf[512];
  size_t n;
  int failures = 0;
  int loaded = luaL_dostring(L, "function roundtrip(s, kind)\n"
                   "  local c = pve.parse_config(s, kind)\n"
                   "  if not c then return true end\n"
                   "  local out = pve.write_config(c, kind)\n"
                   "  if not out then return true end\n"
                   "  local c2 = assert(pve.parse_config(out, kind))\n"
                   "  return pve.write_config(c2, kind) == out\n"
                   "end\n"
                   "function proptrip(s, f)\n"
                   "  local t = pve.parse_prop(s, f)\n"
                   "  return t == nil or type(pve.format_prop(t, f)) == 'string'\n"
                   "end");
  CHECK(loaded == LUA_OK);
  for (int round = 0; round < 3000; round++) {
    random_input(&seed, buf, &n, sizeof buf);
    for (size_t i = 0; i < sizeof outs / sizeof outs[0]; i++)
      if (!call_protected(L, outs[i], buf, n, NULL)) failures++;
    for (int kind = 0; kind < 2; kind++) {
      lua_getglobal(L, "roundtrip");
      lua_pushlstring(L, buf, n);
      lua_pushstring(L, kind ? "qemu" : "lxc");
      if (lua_pcall(L, 2, 1, 0) != LUA_OK || !lua_toboolean(L, -1)) {
        fprintf(stderr, "config round trip failed: %s\n", lua_tostring(L, -1));
        failures++;
      }
      lua_pop(L, 1);
    }
    lua_getglobal(L, "proptrip");
    lua_pushlstring(L, buf, n);
    lua_pushstring(L, fmts[round % (int)(sizeof fmts / sizeof fmts[0])]);
    if (lua_pcall(L, 2, 1, 0) != LUA_OK || !lua_toboolean(L, -1)) failures++;
    lua_pop(L, 1);
  }
  CHECK(failures == 0);
  CHECK(lua_gettop(L) == 0);
}

int main(void) {
  lua_State *L = pxtest_state();
  CHECK(luaL_dostring(L, PRELUDE) == LUA_OK);
  test_config(L);
  test_prop(L);
  test_outputs(L);
  test_random(L);
  lua_close(L);
  return pxtest_done("test_pve");
}
