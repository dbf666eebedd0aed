/*
 * px.sys: small operating-system facts and the interrupt trap.
 *
 * The trap turns the first SIGINT/SIGTERM into a flag plus a byte on a
 * self-pipe, so the scheduler can stop starting work and let running steps
 * finish; a second signal gets the default action (the user insists).
 * Whenever such a signal does end phoenix, the process groups of its
 * children (registered by px.exec) get the same signal first: they run in
 * groups of their own, and would otherwise outlive it.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lua.h>

#include "px_sys.h"

extern char **environ;

static int trap_pipe[2] = {-1, -1};
static volatile sig_atomic_t caught_signal = 0;

int px_sys_interrupt_fd(void) { return trap_pipe[0]; }
int px_sys_interrupted(void) { return caught_signal; }

/* Live child process groups (px.exec). Plain int stores are atomic here;
 * the handler only reads. A slot holds a pgid or 0. */
#define MAX_GROUPS 4096
static volatile int groups[MAX_GROUPS];

void px_sys_track_group(int pgid) {
  for (int i = 0; i < MAX_GROUPS; i++)
    if (groups[i] == 0) {
      groups[i] = pgid;
      return;
    }
}

void px_sys_untrack_group(int pgid) {
  for (int i = 0; i < MAX_GROUPS; i++)
    if (groups[i] == pgid) {
      groups[i] = 0;
      return;
    }
}

/* phoenix is about to die of sig: its children get it too, as they would
 * if they shared its terminal's foreground group. Async-signal-safe. */
static void die_with_children(int sig) {
  for (int i = 0; i < MAX_GROUPS; i++)
    if (groups[i] > 0) kill(-groups[i], sig);
  signal(sig, SIG_DFL);
  raise(sig); /* delivered when the handler returns */
}

static void on_fatal(int sig) {
  int saved = errno;
  die_with_children(sig);
  errno = saved;
}

void px_sys_guard_groups(void) {
  static const int sigs[] = {SIGINT, SIGTERM, SIGHUP};
  for (size_t i = 0; i < sizeof sigs / sizeof *sigs; i++) {
    struct sigaction old;
    if (sigaction(sigs[i], NULL, &old) != 0 || old.sa_handler != SIG_DFL || (old.sa_flags & SA_SIGINFO)) continue;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_fatal;
    sigemptyset(&sa.sa_mask);
    sigaction(sigs[i], &sa, NULL);
  }
}

static void on_signal(int sig) {
  int saved = errno;
  if (caught_signal) die_with_children(sig);
  caught_signal = sig;
  if (trap_pipe[1] >= 0) {
    ssize_t r = write(trap_pipe[1], "!", 1);
    (void)r;
  }
  errno = saved;
}

static int push_errno(lua_State *L, const char *what) {
  int e = errno;
  lua_pushnil(L);
  lua_pushfstring(L, "%s: %s", what, strerror(e));
  return 2;
}

static double clock_seconds(clockid_t id) {
  struct timespec ts;
  clock_gettime(id, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* monotonic() -> seconds (float), for durations and deadlines. */
static int sys_monotonic(lua_State *L) {
  lua_pushnumber(L, clock_seconds(CLOCK_MONOTONIC));
  return 1;
}

/* time() -> seconds since the epoch (float). */
static int sys_time(lua_State *L) {
  lua_pushnumber(L, clock_seconds(CLOCK_REALTIME));
  return 1;
}

/* sleep(seconds): blocking; coroutines should use the scheduler's sleep. */
static int sys_sleep(lua_State *L) {
  double s = luaL_checknumber(L, 1);
  luaL_argcheck(L, s >= 0 && s <= 1e9, 1, "must be between 0 and 1e9 seconds");
  struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR && !caught_signal) {
  }
  return 0;
}

static int sys_getenv(lua_State *L) {
  const char *v = getenv(luaL_checkstring(L, 1));
  if (v) lua_pushstring(L, v);
  else lua_pushnil(L);
  return 1;
}

/* environ() -> {NAME = value, ...} of this process. */
static int sys_environ(lua_State *L) {
  lua_newtable(L);
  for (char **e = environ; e && *e; e++) {
    const char *eq = strchr(*e, '=');
    if (!eq) continue;
    lua_pushlstring(L, *e, (size_t)(eq - *e));
    lua_pushstring(L, eq + 1);
    lua_rawset(L, -3);
  }
  return 1;
}

static int sys_pid(lua_State *L) {
  lua_pushinteger(L, getpid());
  return 1;
}

static int sys_uid(lua_State *L) {
  lua_pushinteger(L, geteuid());
  return 1;
}

static int sys_hostname(lua_State *L) {
  char buf[HOST_NAME_MAX + 1];
  if (gethostname(buf, sizeof buf) != 0) return push_errno(L, "gethostname");
  buf[HOST_NAME_MAX] = '\0';
  lua_pushstring(L, buf);
  return 1;
}

/* isatty(fd | "stdin" | "stdout" | "stderr") -> boolean */
static int sys_isatty(lua_State *L) {
  int fd;
  if (lua_type(L, 1) == LUA_TSTRING) {
    static const char *const names[] = {"stdin", "stdout", "stderr", NULL};
    fd = luaL_checkoption(L, 1, NULL, names);
  } else {
    fd = (int)luaL_checkinteger(L, 1);
  }
  lua_pushboolean(L, isatty(fd));
  return 1;
}

/* process_alive(pid) -> boolean (exists, whoever owns it). */
static int sys_process_alive(lua_State *L) {
  lua_Integer pid = luaL_checkinteger(L, 1);
  luaL_argcheck(L, pid > 0 && pid <= INT_MAX, 1, "not a process id");
  lua_pushboolean(L, kill((pid_t)pid, 0) == 0 || errno == EPERM);
  return 1;
}

static int sys_realpath(lua_State *L) {
  const char *p = luaL_checkstring(L, 1);
  char buf[PATH_MAX];
  if (!realpath(p, buf)) return push_errno(L, p);
  lua_pushstring(L, buf);
  return 1;
}

/* trap_interrupt(): catch the first SIGINT/SIGTERM (see the file comment). */
static int sys_trap_interrupt(lua_State *L) {
  if (trap_pipe[0] < 0 && pipe2(trap_pipe, O_CLOEXEC | O_NONBLOCK) != 0)
    return push_errno(L, "pipe");
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  lua_pushboolean(L, 1);
  return 1;
}

/* interrupted() -> "SIGINT" | "SIGTERM" | nil */
static int sys_interrupted(lua_State *L) {
  int s = caught_signal;
  if (s == 0) lua_pushnil(L);
  else lua_pushstring(L, s == SIGINT ? "SIGINT" : s == SIGTERM ? "SIGTERM" : "signal");
  return 1;
}

static const luaL_Reg funcs[] = {
    {"monotonic", sys_monotonic},
    {"time", sys_time},
    {"sleep", sys_sleep},
    {"getenv", sys_getenv},
    {"environ", sys_environ},
    {"pid", sys_pid},
    {"uid", sys_uid},
    {"hostname", sys_hostname},
    {"isatty", sys_isatty},
    {"process_alive", sys_process_alive},
    {"realpath", sys_realpath},
    {"trap_interrupt", sys_trap_interrupt},
    {"interrupted", sys_interrupted},
    {NULL, NULL},
};

int luaopen_px_sys(lua_State *L) {
  luaL_newlib(L, funcs);
  return 1;
}
