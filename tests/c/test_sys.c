/* px.sys at the C level: the interrupt trap's flag and self-pipe, which
 * other C modules (px.exec, px.fs) read through px_sys.h. */
#include <poll.h>
#include <signal.h>

#include "px_sys.h"
#include "pxtest.h"

int main(void) {
  lua_State *L = pxtest_state();
  CHECK(px_sys_interrupt_fd() == -1);
  CHECK(px_sys_interrupted() == 0);
  CHECK_LUA(L, "sys = require 'px.sys'; return sys.interrupted() == nil and sys.trap_interrupt()");
  CHECK(px_sys_interrupt_fd() >= 0);
  raise(SIGTERM); /* the first one is caught */
  CHECK(px_sys_interrupted() == SIGTERM);
  struct pollfd p = {px_sys_interrupt_fd(), POLLIN, 0};
  CHECK(poll(&p, 1, 0) == 1 && (p.revents & POLLIN));
  CHECK_LUA(L, "return sys.interrupted() == 'SIGTERM'");
  /* trapping again is harmless and keeps the same pipe */
  int fd = px_sys_interrupt_fd();
  CHECK_LUA(L, "return sys.trap_interrupt()");
  CHECK(px_sys_interrupt_fd() == fd);
  CHECK_LUA(L, "return not pcall(sys.sleep, 0/0) and not pcall(sys.isatty, {})");
  lua_close(L);
  return pxtest_done("test_sys");
}
