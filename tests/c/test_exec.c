/* px.exec at the C level: no fd or zombie leaks, SIGPIPE not ignored by the
 * host, handles reaped by close/__gc/lua_close, interrupt wake-up. */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "pxtest.h"

static int count_fds(void) {
  DIR *d = opendir("/proc/self/fd");
  int n = 0;
  if (!d) return -1;
  while (readdir(d)) n++;
  closedir(d);
  return n;
}

static lua_Integer global_int(lua_State *L, const char *name) {
  lua_getglobal(L, name);
  lua_Integer v = lua_tointeger(L, -1);
  lua_pop(L, 1);
  return v;
}

int main(void) {
  /* phoenix ignores SIGPIPE; px.exec must not rely on that. */
  signal(SIGPIPE, SIG_DFL);
  lua_State *L = pxtest_state();
  CHECK_LUA(L, "exec = require 'px.exec'; sys = require 'px.sys'; return true");
  int fds0 = count_fds();

  /* A child that never reads a large stdin: EPIPE, not a dead test. */
  CHECK_LUA(L,
            "local big = string.rep('x', 1 << 20)\n"
            "for i = 1, 20 do\n"
            "  local r = assert(exec.run{ argv = { 'true' }, stdin = big })\n"
            "  if r.code ~= 0 then return false end\n"
            "end\n"
            "local r = assert(exec.run{ argv = { 'head', '-c', '10' }, stdin = big })\n"
            "return r.stdout == 'xxxxxxxxxx'");

  /* Failures and wrong use leave nothing open. */
  CHECK_LUA(L,
            "for i = 1, 20 do\n"
            "  assert(exec.run{ argv = { 'px-missing-program' } } == nil)\n"
            "  assert(exec.run{ argv = { 'true' }, cwd = '/nonexistent' } == nil)\n"
            "  assert(not pcall(exec.run, { argv = { 'true' }, bogus = 1 }))\n"
            "  assert(not pcall(exec.spawn, { argv = { 'true', {} } }))\n"
            "end\n"
            "return true");
  CHECK(count_fds() == fds0);

  /* Handles: waited, closed twice, dropped while running, collected. */
  CHECK_LUA(L,
            "for i = 1, 10 do\n"
            "  local a = assert(exec.spawn{ argv = { 'true' }, stdin = 'x' })\n"
            "  a:wait()\n"
            "  local b = assert(exec.spawn{ argv = { 'sleep', '30' } })\n"
            "  b:close(); b:close()\n"
            "  if not b:done() then return false end\n"
            "  local c = assert(exec.spawn{ argv = { 'sleep', '30' } })\n"
            "end\n"
            "collectgarbage(); collectgarbage()\n"
            "return true");
  CHECK(count_fds() == fds0);
  errno = 0;
  CHECK(waitpid(-1, NULL, WNOHANG) == -1 && errno == ECHILD); /* no zombie of ours */

  /* Someone else reaps the child: the handle ends with code -1, no hang. */
  CHECK_LUA(L, "h = assert(exec.spawn{ argv = { 'sh', '-c', 'exit 3' } }); pid = h.pid; return true");
  int st;
  CHECK(waitpid((pid_t)global_int(L, "pid"), &st, 0) > 0);
  CHECK_LUA(L, "local r = h:wait(); h = nil; return r.code == -1 and r.signal == nil");

  /* An interrupt wakes wait_any long before its timeout. */
  CHECK_LUA(L, "return sys.trap_interrupt()");
  pid_t killer = fork();
  if (killer == 0) {
    struct timespec ts = {0, 150 * 1000000};
    nanosleep(&ts, NULL);
    kill(getppid(), SIGINT);
    _exit(0);
  }
  CHECK_LUA(L,
            "local h <close> = assert(exec.spawn{ argv = { 'sleep', '10' } })\n"
            "local t0 = sys.monotonic()\n"
            "local done, interrupted = exec.wait_any({ h }, 8000)\n"
            "return #done == 0 and interrupted == true and sys.monotonic() - t0 < 3\n"
            "  and sys.interrupted() == 'SIGINT'");
  CHECK(waitpid(killer, &st, 0) == killer);
  /* run() itself goes on through an interrupt: the step finishes. */
  CHECK_LUA(L, "local r = assert(exec.run{ argv = { 'echo', 'ok' } }); return r.stdout == 'ok\\n'");

  /* lua_close() kills and reaps what is still running. */
  CHECK_LUA(L, "keep = assert(exec.spawn{ argv = { 'sleep', '30' } }); kpid = keep.pid; return true");
  pid_t kpid = (pid_t)global_int(L, "kpid");
  CHECK(kill(kpid, 0) == 0);
  lua_close(L);
  errno = 0;
  CHECK(kill(kpid, 0) == -1 && errno == ESRCH);
  CHECK(count_fds() == fds0 + 2); /* only the interrupt self-pipe (process-wide) stays */
  return pxtest_done("test_exec");
}
