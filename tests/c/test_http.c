/* px.http at the C level: the waitable contract (struct px_waitable first,
 * __px_waitable in the metatable, ops driving a request to completion),
 * option errors, and __gc stopping a request that is still running. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "pxtest.h"
#include "px_wait.h"

/* A socket that listens but never accepts: connections complete in the
 * kernel backlog and requests then wait for an answer that never comes. */
static int silent_listener(int *port) {
  int s = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t len = sizeof a;
  if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof a) != 0 || listen(s, 16) != 0 ||
      getsockname(s, (struct sockaddr *)&a, &len) != 0)
    return -1;
  *port = ntohs(a.sin_port);
  return s;
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(void) {
  lua_State *L = pxtest_state();

  /* Wrong use raises. */
  CHECK_LUA(L, "return not pcall(require('px.http').request, {url='http://127.0.0.1/', nope=1})");
  CHECK_LUA(L, "return not pcall(require('px.http').start, {url='file:///etc/passwd'})");
  CHECK_LUA(L, "return not pcall(require('px.http').request, 'http://127.0.0.1/')");

  /* Drive a started request through its waitable ops, as wait_any does. */
  int port, ls = silent_listener(&port);
  CHECK(ls >= 0);
  int closed_port = port; /* reuse after closing: nothing listens there */
  close(ls);
  lua_getglobal(L, "require");
  lua_pushliteral(L, "px.http");
  lua_call(L, 1, 1);
  lua_getfield(L, -1, "start");
  lua_createtable(L, 0, 1);
  lua_pushfstring(L, "http://127.0.0.1:%d/x", closed_port);
  lua_setfield(L, -2, "url");
  lua_call(L, 1, 1);
  CHECK(lua_type(L, -1) == LUA_TUSERDATA);
  CHECK(lua_getmetatable(L, -1));
  lua_getfield(L, -1, "__px_waitable");
  CHECK(lua_toboolean(L, -1));
  lua_pop(L, 2);
  struct px_waitable *w = lua_touserdata(L, -1);
  CHECK(w != NULL && w->ops != NULL && w->ops->fill && w->ops->step && w->ops->finished);
  int rounds = 0;
  while (w && !w->ops->finished(w) && rounds < 100) {
    struct pollfd fds[PX_WAIT_MAX_FDS];
    int64_t deadline = -1;
    int n = w->ops->fill(w, fds, PX_WAIT_MAX_FDS, &deadline);
    CHECK(n == 1);
    poll(fds, (nfds_t)n, 1000);
    w->ops->step(w, fds, n, px_wait_now_ms());
    rounds++;
  }
  CHECK(w && w->ops->finished(w));
  struct pollfd none[1];
  int64_t dl = -1;
  CHECK(w && w->ops->fill(w, none, 1, &dl) == 0); /* finished: nothing to poll */
  lua_setglobal(L, "h");
  CHECK_LUA(L, "local r, e = h:result(); return r == nil and e:find(': Connection refused$') ~= nil");
  CHECK_LUA(L, "h:close(); h:close(); return select(2, h:result()):find(': closed$') ~= nil");

  /* A request still waiting when the state closes: __gc cancels it at once. */
  ls = silent_listener(&port);
  CHECK(ls >= 0);
  char code[256];
  snprintf(code, sizeof code,
           "H = require('px.http').start{url='http://127.0.0.1:%d/', timeout_ms=30000}\n"
           "return H:wait(200) == nil and not H:done()", port);
  CHECK_LUA(L, code);
  double t0 = now_s();
  lua_close(L);
  CHECK(now_s() - t0 < 1.0);
  close(ls);
  return pxtest_done("test_http");
}
