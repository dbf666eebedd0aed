/* px.fs at the C level: no fd leaks on any path, locks released by __gc. */
#include <dirent.h>
#include <stdlib.h>

#include "pxtest.h"

static int count_fds(void) {
  DIR *d = opendir("/proc/self/fd");
  int n = 0;
  if (!d) return -1;
  while (readdir(d)) n++;
  closedir(d);
  return n;
}

int main(void) {
  char dir[] = "/tmp/pxtest.XXXXXX";
  if (!mkdtemp(dir)) return 1;
  lua_State *L = pxtest_state();
  lua_pushstring(L, dir);
  lua_setglobal(L, "dir");
  CHECK_LUA(L, "fs = require 'px.fs'; return true");
  int fds0 = count_fds();
  CHECK_LUA(L,
            "for i = 1, 20 do\n"
            "  assert(fs.write(dir .. '/f', string.rep('x', 100000)))\n"
            "  assert(fs.read(dir .. '/f'))\n"
            "  assert(fs.read(dir .. '/missing') == nil)\n"
            "  assert(fs.read(dir) == nil)           -- open works, read fails\n"
            "  assert(fs.write(dir .. '/no/f', 'x') == nil)\n"
            "  assert(fs.list(dir)); assert(fs.list(dir .. '/missing') == nil)\n"
            "  assert(fs.sha256_file(dir .. '/f'))\n"
            "  assert(not pcall(fs.write, dir .. '/f', 'x', { bogus = 1 }))\n"
            "  local l = assert(fs.flock(dir .. '/lock'))\n"
            "  assert(fs.flock(dir .. '/lock', { timeout_ms = 5 }) == nil)\n"
            "  l:unlock(); l:unlock()\n"
            "  local g = assert(fs.flock(dir .. '/lock'))  -- left to the collector\n"
            "end\n"
            "collectgarbage(); collectgarbage()\n"
            "return fs.flock(dir .. '/lock') ~= nil");
  lua_gc(L, LUA_GCCOLLECT);
  CHECK(count_fds() == fds0);
  /* A lock held at lua_close is released with the state. */
  CHECK_LUA(L, "held = assert(fs.flock(dir .. '/lock2')); return true");
  lua_close(L);
  CHECK(count_fds() == fds0);
  L = pxtest_state();
  lua_pushstring(L, dir);
  lua_setglobal(L, "dir");
  CHECK_LUA(L, "local fs = require 'px.fs'; return fs.flock(dir .. '/lock2') ~= nil");
  lua_close(L);
  char cmd[64];
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir); /* our own mkdtemp name */
  CHECK(system(cmd) == 0);
  return pxtest_done("test_fs");
}
