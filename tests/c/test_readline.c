/* px.readline at the C level: lines from a non-terminal stdin, history
 * saved and loaded, no leak of libedit's line buffers (ASan). */
#include <stdlib.h>
#include <unistd.h>

#include "pxtest.h"

int main(void) {
  int p[2];
  if (pipe(p) != 0) return 1;
  const char input[] = "first line\nsecond\n";
  if (write(p[1], input, sizeof input - 1) != (ssize_t)(sizeof input - 1)) return 1;
  close(p[1]);
  dup2(p[0], 0);
  close(p[0]);
  char dir[] = "/tmp/pxtest.XXXXXX";
  if (!mkdtemp(dir)) return 1;
  lua_State *L = pxtest_state();
  lua_pushstring(L, dir);
  lua_setglobal(L, "dir");
  CHECK_LUA(L, "rl = require 'px.readline'; return true");
  CHECK_LUA(L, "return rl.readline('> ') == 'first line'");
  CHECK_LUA(L, "return rl.readline() == 'second'");
  CHECK_LUA(L, "return rl.readline('> ') == nil");
  CHECK_LUA(L,
            "rl.add_history('alpha = 1'); rl.add_history('beta()')\n"
            "assert(rl.save_history(dir .. '/h'))\n"
            "assert(rl.load_history(dir .. '/h'))\n"
            "local text = assert(io.open(dir .. '/h')):read('a')\n"
            "return text:find('beta()', 1, true) ~= nil");
  CHECK_LUA(L, "return not pcall(rl.readline, {}) and not pcall(rl.add_history)");
  lua_close(L);
  char cmd[64];
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  CHECK(system(cmd) == 0);
  return pxtest_done("test_readline");
}
