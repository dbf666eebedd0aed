/*
 * px.exec: run programs from an argv list, never through a shell.
 *
 *   run{argv=, env=, inherit_env=, cwd=, stdin=, timeout_ms=, max_output=,
 *       kill_grace_ms=, stdout=, stderr=}          -> result | nil, msg
 *   spawn{...same...}                              -> handle | nil, msg
 *   wait_any(handles, timeout_ms)                  -> {indices}, interrupted
 *
 * Each child runs in its own process group so a timeout can TERM (then KILL)
 * everything it started; output is captured through non-blocking pipes up
 * to a cap. A handle is a waitable (px_wait.h), so the scheduler can wait on
 * many processes (and HTTP requests) in one poll(2).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <pthread.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lua.h>

#include "px_sys.h"
#include "px_wait.h"

#define HANDLE_MT "px.exec.handle"
#define DEFAULT_MAX_OUTPUT (16u << 20)
#define DEFAULT_KILL_GRACE_MS 2000
#define DRAIN_MS 200 /* after exit, how long a grandchild may hold our pipes */
#define DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

extern char **environ;

enum { OUT_CAPTURE, OUT_INHERIT, OUT_NULL };

struct capture {
  int fd;
  char *buf;
  size_t len, cap, max;
  int truncated;
};

struct handle {
  struct px_waitable w; /* must be first: see px_wait.h */
  pid_t pid;
  int pidfd;
  int reaped;
  int status;
  int stdin_fd;
  const char *stdin_data; /* anchored in the handle's user value */
  size_t stdin_len, stdin_off;
  struct capture out, err;
  int64_t start_ms, timeout_ms, grace_ms, term_at, reaped_at;
  int timed_out, killed;
  double start_exact, duration_ms;
};

int64_t px_wait_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static double now_exact_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void close_fd(int *fd) {
  if (*fd >= 0) {
    close(*fd);
    *fd = -1;
  }
}

/* ---- the process as a waitable ---------------------------------------- */

static void reap(struct handle *h, int block) {
  if (h->reaped) return;
  pid_t r;
  do {
    r = waitpid(h->pid, &h->status, block ? 0 : WNOHANG);
  } while (r < 0 && errno == EINTR);
  if (r == h->pid || (r < 0 && errno == ECHILD)) {
    h->reaped = 1;
    px_sys_untrack_group(h->pid);
    h->reaped_at = px_wait_now_ms();
    h->duration_ms = now_exact_ms() - h->start_exact;
    if (r < 0) h->status = -1; /* someone else reaped it: exit status unknown */
    close_fd(&h->pidfd);
    close_fd(&h->stdin_fd);
    /* After a timeout the leader had its grace period; members of its group
     * still running (a grandchild that ignores TERM) are killed now, while
     * the group id cannot have been reused, so nothing is left behind. */
    if (h->timed_out && !h->killed && h->pid > 0) {
      kill(-h->pid, SIGKILL);
      h->killed = 1;
    }
  }
}

static void signal_group(struct handle *h, int sig) {
  if (!h->reaped && kill(-h->pid, sig) != 0) kill(h->pid, sig);
}

static void drain(struct capture *c) {
  char tmp[65536];
  for (;;) {
    ssize_t n = read(c->fd, tmp, sizeof tmp);
    if (n > 0) {
      size_t room = c->max > c->len ? c->max - c->len : 0;
      size_t take = (size_t)n < room ? (size_t)n : room;
      if (take < (size_t)n) c->truncated = 1;
      if (take > 0) {
        if (c->len + take > c->cap) {
          size_t ncap = c->cap ? c->cap : 4096;
          while (ncap < c->len + take) ncap *= 2;
          char *nb = realloc(c->buf, ncap);
          if (nb == NULL) { /* keep what we have, flag the loss */
            c->truncated = 1;
            continue;
          }
          c->buf = nb;
          c->cap = ncap;
        }
        memcpy(c->buf + c->len, tmp, take);
        c->len += take;
      }
      continue;
    }
    if (n == 0 || (errno != EAGAIN && errno != EINTR)) close_fd(&c->fd);
    if (n < 0 && errno == EINTR) continue;
    return;
  }
}

/* write(2) to a pipe whose reader is gone raises SIGPIPE. phoenix ignores
 * it (main.c), but this module may run in any host (the C tests), so the
 * signal is blocked around the write and a pending one is consumed. */
static ssize_t write_nosigpipe(int fd, const void *p, size_t n) {
  sigset_t pipe_set, old;
  sigemptyset(&pipe_set);
  sigaddset(&pipe_set, SIGPIPE);
  int was_pending = 0;
  sigset_t pending;
  if (sigpending(&pending) == 0) was_pending = sigismember(&pending, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
  ssize_t r = write(fd, p, n);
  int e = errno;
  if (r < 0 && e == EPIPE && !was_pending) {
    struct timespec zero = {0, 0};
    while (sigtimedwait(&pipe_set, NULL, &zero) < 0 && errno == EINTR) {
    }
  }
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  errno = e;
  return r;
}

static void feed_stdin(struct handle *h) {
  while (h->stdin_fd >= 0 && h->stdin_off < h->stdin_len) {
    ssize_t n = write_nosigpipe(h->stdin_fd, h->stdin_data + h->stdin_off, h->stdin_len - h->stdin_off);
    if (n > 0) {
      h->stdin_off += (size_t)n;
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else {
      if (n == 0 || errno != EAGAIN) close_fd(&h->stdin_fd); /* EPIPE: it stopped reading */
      return;
    }
  }
  if (h->stdin_off >= h->stdin_len) close_fd(&h->stdin_fd);
}

static int exec_fill(struct px_waitable *w, struct pollfd *fds, int max, int64_t *deadline) {
  struct handle *h = (struct handle *)w;
  int n = 0;
#define ADD(f, ev)                        \
  if ((f) >= 0 && n < max) {              \
    fds[n].fd = (f);                      \
    fds[n].events = (ev);                 \
    fds[n].revents = 0;                   \
    n++;                                  \
  }
  ADD(h->stdin_fd, POLLOUT);
  ADD(h->out.fd, POLLIN);
  ADD(h->err.fd, POLLIN);
  ADD(h->pidfd, POLLIN);
#undef ADD
  int64_t dl = -1;
  if (!h->reaped) {
    if (h->pidfd < 0) dl = px_wait_now_ms() + 5; /* no pidfd: poll for the exit */
    if (h->timeout_ms > 0 && !h->timed_out) {
      int64_t t = h->start_ms + h->timeout_ms;
      if (dl < 0 || t < dl) dl = t;
    } else if (h->timed_out && !h->killed) {
      int64_t t = h->term_at + h->grace_ms;
      if (dl < 0 || t < dl) dl = t;
    }
  } else if (h->out.fd >= 0 || h->err.fd >= 0) {
    dl = h->reaped_at + DRAIN_MS;
  }
  if (dl >= 0 && (*deadline < 0 || dl < *deadline)) *deadline = dl;
  return n;
}

static void exec_step(struct px_waitable *w, const struct pollfd *fds, int n, int64_t now) {
  struct handle *h = (struct handle *)w;
  int exited = h->pidfd < 0; /* without a pidfd, try waitpid every time */
  for (int i = 0; i < n; i++) {
    if (!fds[i].revents) continue;
    if (fds[i].fd == h->stdin_fd) feed_stdin(h);
    else if (fds[i].fd == h->out.fd) drain(&h->out);
    else if (fds[i].fd == h->err.fd) drain(&h->err);
    else if (fds[i].fd == h->pidfd) exited = 1;
  }
  /* Many handles wait together: only the ones whose pidfd fired cost a
   * waitpid(2). */
  if (!h->reaped && exited) reap(h, 0);
  if (!h->reaped) {
    if (h->timeout_ms > 0 && !h->timed_out && now >= h->start_ms + h->timeout_ms) {
      h->timed_out = 1;
      h->term_at = now;
      signal_group(h, SIGTERM);
    } else if (h->timed_out && !h->killed && now >= h->term_at + h->grace_ms) {
      h->killed = 1;
      signal_group(h, SIGKILL);
    }
  } else if (now >= h->reaped_at + DRAIN_MS) {
    /* A daemon it left behind holds the pipes: keep what we have. */
    if (h->out.fd >= 0) drain(&h->out);
    if (h->err.fd >= 0) drain(&h->err);
    close_fd(&h->out.fd);
    close_fd(&h->err.fd);
  }
}

static int exec_finished(struct px_waitable *w) {
  struct handle *h = (struct handle *)w;
  return h->reaped && h->out.fd < 0 && h->err.fd < 0;
}

static const struct px_waitable_ops exec_ops = {exec_fill, exec_step, exec_finished};

/* ---- waiting ------------------------------------------------------------ */

/* Poll until one of ws is finished, the deadline passes (-1: none) or an
 * interrupt arrives. Returns 1 if interrupted. */
static int wait_set(struct px_waitable **ws, int nw, int64_t deadline) {
  int maxfds = nw * PX_WAIT_MAX_FDS + 1;
  struct pollfd stackfds[4 * PX_WAIT_MAX_FDS + 1];
  struct pollfd *fds = maxfds <= (int)(sizeof stackfds / sizeof *stackfds)
                           ? stackfds
                           : malloc(sizeof *fds * (size_t)maxfds);
  int counts[64];
  int *cnt = nw <= 64 ? counts : malloc(sizeof *cnt * (size_t)nw);
  int interrupted = 0;
  if (fds == NULL || cnt == NULL) abort(); /* tiny allocations: out of memory */
  for (;;) {
    /* Something already finished: one non-blocking pass still moves the
     * others along (drains pipes, reaps), so a caller that keeps finished
     * handles in its list cannot starve the rest. */
    int ready = 0;
    for (int i = 0; i < nw; i++)
      if (ws[i]->ops->finished(ws[i])) ready = 1;
    int64_t dl = deadline;
    int nfds = 0;
    for (int i = 0; i < nw; i++) {
      cnt[i] = ws[i]->ops->fill(ws[i], fds + nfds, PX_WAIT_MAX_FDS, &dl);
      nfds += cnt[i];
    }
    int ifd = px_sys_interrupt_fd();
    if (ifd >= 0) {
      fds[nfds].fd = ifd;
      fds[nfds].events = POLLIN;
      fds[nfds].revents = 0;
    }
    int64_t now = px_wait_now_ms();
    int ms = ready ? 0 : dl < 0 ? -1 : (dl > now ? (int)(dl - now) : 0);
    int r = poll(fds, (nfds_t)(nfds + (ifd >= 0)), ms);
    if (r < 0 && errno != EINTR) abort(); /* EFAULT/EINVAL: our bug */
    now = px_wait_now_ms();
    int off = 0;
    for (int i = 0; i < nw; i++) {
      ws[i]->ops->step(ws[i], fds + off, cnt[i], now);
      off += cnt[i];
    }
    if (ifd >= 0 && r > 0 && (fds[nfds].revents & POLLIN)) {
      char b[64];
      while (read(ifd, b, sizeof b) > 0) {
      }
      interrupted = 1;
      goto out;
    }
    if (ready) goto out;
    for (int i = 0; i < nw; i++)
      if (ws[i]->ops->finished(ws[i])) goto out;
    if (deadline >= 0 && now >= deadline) goto out;
  }
out:
  if (fds != stackfds) free(fds);
  if (cnt != counts) free(cnt);
  return interrupted;
}

/* ---- results ------------------------------------------------------------ */

static void push_signal_name(lua_State *L, int sig) {
  const char *abbrev = sigabbrev_np(sig);
  if (abbrev) lua_pushfstring(L, "SIG%s", abbrev);
  else lua_pushfstring(L, "signal %d", sig);
}

static void push_result(lua_State *L, struct handle *h) {
  lua_createtable(L, 0, 9);
  int code, known = h->status != -1;
  if (h->timed_out) code = 124;
  else if (known && WIFEXITED(h->status)) code = WEXITSTATUS(h->status);
  else if (known && WIFSIGNALED(h->status)) code = 128 + WTERMSIG(h->status);
  else code = -1;
  lua_pushinteger(L, code);
  lua_setfield(L, -2, "code");
  if (known && WIFSIGNALED(h->status)) {
    push_signal_name(L, WTERMSIG(h->status));
    lua_setfield(L, -2, "signal");
  }
  lua_pushlstring(L, h->out.buf ? h->out.buf : "", h->out.len);
  lua_setfield(L, -2, "stdout");
  lua_pushlstring(L, h->err.buf ? h->err.buf : "", h->err.len);
  lua_setfield(L, -2, "stderr");
  lua_pushboolean(L, h->timed_out);
  lua_setfield(L, -2, "timed_out");
  lua_pushboolean(L, h->out.truncated);
  lua_setfield(L, -2, "stdout_truncated");
  lua_pushboolean(L, h->err.truncated);
  lua_setfield(L, -2, "stderr_truncated");
  lua_pushnumber(L, h->duration_ms);
  lua_setfield(L, -2, "duration_ms");
  lua_pushinteger(L, h->pid);
  lua_setfield(L, -2, "pid");
}

/* ---- spawning ----------------------------------------------------------- */

struct spec {
  const char **argv;
  const char **envp;
  const char *cwd;
  const char *path; /* PATH used to find argv[0] */
  const char *stdin_data;
  size_t stdin_len;
  int has_stdin;
  lua_Integer timeout_ms, max_output, grace_ms;
  int out_mode, err_mode;
};

static const char *const option_names[] = {
    "argv", "env", "inherit_env", "cwd", "stdin", "timeout_ms", "max_output",
    "kill_grace_ms", "stdout", "stderr", NULL};

static int check_known_options(lua_State *L, int idx) {
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    lua_pop(L, 1);
    int ok = 0;
    if (lua_type(L, -1) == LUA_TSTRING) {
      const char *k = lua_tostring(L, -1);
      for (int i = 0; option_names[i]; i++)
        if (strcmp(k, option_names[i]) == 0) ok = 1;
    }
    if (!ok) {
      lua_pushvalue(L, -1);
      return luaL_argerror(L, idx, lua_pushfstring(L, "unknown option '%s'", luaL_tolstring(L, -1, NULL)));
    }
  }
  return 0;
}

/* A string or an integer from t[k]; the converted value is kept in anchor. */
static const char *arg_string(lua_State *L, int anchor, int *slot) {
  int t = lua_type(L, -1);
  if (t == LUA_TNUMBER && lua_isinteger(L, -1)) {
    lua_pushstring(L, lua_tostring(L, -1));
    lua_remove(L, -2);
  } else if (t != LUA_TSTRING) {
    return NULL;
  }
  const char *s = lua_tostring(L, -1);
  lua_rawseti(L, anchor, ++*slot);
  return s;
}

static int get_mode(lua_State *L, int opts, const char *field) {
  static const char *const modes[] = {"capture", "inherit", "null", NULL};
  lua_getfield(L, opts, field);
  int m = OUT_CAPTURE;
  if (!lua_isnil(L, -1)) {
    const char *v = lua_tostring(L, -1);
    for (m = 0; v && modes[m] && strcmp(v, modes[m]) != 0; m++) {
    }
    if (v == NULL || modes[m] == NULL)
      luaL_error(L, "bad option '%s' (\"capture\", \"inherit\" or \"null\" expected)", field);
  }
  lua_pop(L, 1);
  return m;
}

static lua_Integer get_int(lua_State *L, int opts, const char *field, lua_Integer def, lua_Integer min) {
  lua_getfield(L, opts, field);
  lua_Integer v = def;
  if (!lua_isnil(L, -1)) {
    int ok;
    v = lua_tointegerx(L, -1, &ok);
    if (!ok || v < min) luaL_error(L, "bad option '%s' (integer >= %d expected)", field, (int)min);
  }
  lua_pop(L, 1);
  return v;
}

/* Reads the options table at idx into s. All Lua errors happen here, before
 * anything is allocated outside the GC. Leaves an anchor table on the stack
 * holding every string s points to. */
static void read_spec(lua_State *L, int idx, struct spec *s) {
  memset(s, 0, sizeof *s);
  luaL_checktype(L, idx, LUA_TTABLE);
  check_known_options(L, idx);
  lua_newtable(L);
  int anchor = lua_gettop(L), slot = 0;

  lua_getfield(L, idx, "argv");
  if (lua_type(L, -1) != LUA_TTABLE) luaL_error(L, "bad option 'argv' (list of strings expected)");
  lua_Integer argc = (lua_Integer)lua_rawlen(L, -1);
  if (argc < 1) luaL_error(L, "bad option 'argv' (must not be empty)");
  s->argv = lua_newuserdatauv(L, sizeof(char *) * (size_t)(argc + 1), 0);
  lua_rawseti(L, anchor, ++slot);
  for (lua_Integer i = 1; i <= argc; i++) {
    lua_rawgeti(L, -1, i);
    s->argv[i - 1] = arg_string(L, anchor, &slot);
    if (s->argv[i - 1] == NULL) luaL_error(L, "bad option 'argv' (item %d is not a string)", (int)i);
  }
  s->argv[argc] = NULL;
  if (s->argv[0][0] == '\0') luaL_error(L, "bad option 'argv' (empty program name)");
  lua_pop(L, 1);

  /* Environment: exact when env= is given; inherited only when asked;
   * otherwise a minimal PATH + LC_ALL=C so tool output parses the same. */
  lua_getfield(L, idx, "inherit_env");
  int inherit = lua_toboolean(L, -1);
  lua_pop(L, 1);
  lua_getfield(L, idx, "env");
  int has_env = !lua_isnil(L, -1);
  if (has_env && !lua_istable(L, -1)) luaL_error(L, "bad option 'env' (table expected)");
  size_t nenv = 0;
  if (inherit)
    for (char **e = environ; e && *e; e++) nenv++;
  if (has_env) {
    lua_pushnil(L);
    while (lua_next(L, -2)) {
      nenv++;
      lua_pop(L, 1);
    }
  }
  s->envp = lua_newuserdatauv(L, sizeof(char *) * (nenv + 3), 0);
  lua_rawseti(L, anchor, ++slot);
  size_t ne = 0;
  if (inherit)
    for (char **e = environ; e && *e; e++) {
      if (has_env) { /* skip names env= overrides */
        const char *eq = strchr(*e, '=');
        if (eq) {
          lua_pushlstring(L, *e, (size_t)(eq - *e));
          lua_rawget(L, -2);
          int over = !lua_isnil(L, -1);
          lua_pop(L, 1);
          if (over) continue;
        }
      }
      s->envp[ne++] = *e;
    }
  if (has_env) {
    lua_pushnil(L);
    while (lua_next(L, -2)) {
      if (lua_type(L, -2) != LUA_TSTRING || (lua_type(L, -1) != LUA_TSTRING && lua_type(L, -1) != LUA_TNUMBER))
        luaL_error(L, "bad option 'env' (string keys and string values expected)");
      const char *k = lua_tostring(L, -2);
      if (*k == '\0' || strchr(k, '=')) luaL_error(L, "bad option 'env' (invalid name '%s')", k);
      lua_pushfstring(L, "%s=%s", k, lua_tostring(L, -1));
      const char *kv = lua_tostring(L, -1);
      lua_rawseti(L, anchor, ++slot);
      s->envp[ne++] = kv;
      if (strcmp(k, "PATH") == 0) s->path = kv + 5;
      lua_pop(L, 1);
    }
  }
  if (!has_env && !inherit) {
    const char *p = getenv("PATH");
    lua_pushfstring(L, "PATH=%s", p && *p ? p : DEFAULT_PATH);
    s->envp[ne++] = lua_tostring(L, -1);
    lua_rawseti(L, anchor, ++slot);
    s->envp[ne++] = "LC_ALL=C";
  }
  s->envp[ne] = NULL;
  lua_pop(L, 1);
  if (s->path == NULL) s->path = getenv("PATH");
  if (s->path == NULL || !*s->path) s->path = DEFAULT_PATH;

  lua_getfield(L, idx, "cwd");
  if (!lua_isnil(L, -1)) {
    if (lua_type(L, -1) != LUA_TSTRING) luaL_error(L, "bad option 'cwd' (string expected)");
    s->cwd = arg_string(L, anchor, &slot);
  } else {
    lua_pop(L, 1);
  }

  lua_getfield(L, idx, "stdin");
  if (!lua_isnil(L, -1)) {
    if (lua_type(L, -1) != LUA_TSTRING) luaL_error(L, "bad option 'stdin' (string expected)");
    s->stdin_data = lua_tolstring(L, -1, &s->stdin_len);
    s->has_stdin = 1;
    lua_rawseti(L, anchor, ++slot);
  } else {
    lua_pop(L, 1);
  }

  s->timeout_ms = get_int(L, idx, "timeout_ms", 0, 0);
  s->max_output = get_int(L, idx, "max_output", DEFAULT_MAX_OUTPUT, 0);
  s->grace_ms = get_int(L, idx, "kill_grace_ms", DEFAULT_KILL_GRACE_MS, 0);
  s->out_mode = get_mode(L, idx, "stdout");
  s->err_mode = get_mode(L, idx, "stderr");
}

/* Finds argv[0] on PATH before forking, so a missing program is an
 * ordinary nil, msg instead of a child that exits 127. */
static int resolve(const char *prog, const char *path, char *out, size_t outlen) {
  if (strchr(prog, '/')) {
    struct stat st;
    if (stat(prog, &st) != 0) return errno;
    if (S_ISDIR(st.st_mode)) return EISDIR;
    snprintf(out, outlen, "%s", prog);
    return access(prog, X_OK) == 0 ? 0 : errno;
  }
  int found_noexec = 0;
  const char *p = path;
  while (*p) {
    const char *colon = strchr(p, ':');
    size_t dl = colon ? (size_t)(colon - p) : strlen(p);
    if (dl == 0) snprintf(out, outlen, "./%s", prog);
    else snprintf(out, outlen, "%.*s/%s", (int)dl, p, prog);
    struct stat st;
    if (access(out, X_OK) == 0 && stat(out, &st) == 0 && S_ISREG(st.st_mode)) return 0;
    if (errno == EACCES) found_noexec = 1;
    p += dl + (colon ? 1 : 0);
    if (!colon) break;
  }
  return found_noexec ? EACCES : ENOENT;
}

static void close_pipes(int fds[][2], int n) {
  for (int i = 0; i < n; i++) {
    close_fd(&fds[i][0]);
    close_fd(&fds[i][1]);
  }
}

/* Starts the process described by s into h. posix_spawn (a vfork in glibc)
 * costs about a third less than fork+exec here and reports exec failures as
 * its return value. On failure writes a message to msg and returns 0. */
static int start(struct handle *h, const struct spec *s, char *msg, size_t msglen) {
  char prog[4096];
  int e = resolve(s->argv[0], s->path, prog, sizeof prog);
  if (e != 0) {
    snprintf(msg, msglen, "%s: %s", s->argv[0], strerror(e));
    return 0;
  }
  if (s->cwd) {
    struct stat st;
    int ce = stat(s->cwd, &st) != 0 ? errno : !S_ISDIR(st.st_mode) ? ENOTDIR : 0;
    if (ce != 0) {
      snprintf(msg, msglen, "%s: cwd %s: %s", s->argv[0], s->cwd, strerror(ce));
      return 0;
    }
  }
  int p[3][2] = {{-1, -1}, {-1, -1}, {-1, -1}}; /* stdin, stdout, stderr */
  int ok = 1;
  if (s->has_stdin) ok = pipe2(p[0], O_CLOEXEC) == 0;
  if (ok && s->out_mode == OUT_CAPTURE) ok = pipe2(p[1], O_CLOEXEC) == 0;
  if (ok && s->err_mode == OUT_CAPTURE) ok = pipe2(p[2], O_CLOEXEC) == 0;
  if (!ok) {
    snprintf(msg, msglen, "%s: cannot create pipes: %s", s->argv[0], strerror(errno));
    close_pipes(p, 3);
    return 0;
  }

  posix_spawn_file_actions_t fa;
  posix_spawnattr_t attr;
  posix_spawn_file_actions_init(&fa);
  posix_spawnattr_init(&attr);
  if (s->has_stdin) posix_spawn_file_actions_adddup2(&fa, p[0][0], 0);
  else posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  if (s->out_mode == OUT_CAPTURE) posix_spawn_file_actions_adddup2(&fa, p[1][1], 1);
  else if (s->out_mode == OUT_NULL) posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
  if (s->err_mode == OUT_CAPTURE) posix_spawn_file_actions_adddup2(&fa, p[2][1], 2);
  else if (s->err_mode == OUT_NULL) posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
  if (s->cwd) posix_spawn_file_actions_addchdir_np(&fa, s->cwd);
  /* fds other libraries opened without O_CLOEXEC must not leak in. */
  posix_spawn_file_actions_addclosefrom_np(&fa, 3);
  /* Its own process group, so a timeout signals everything it started;
   * default dispositions for what we ignore (SIGPIPE) or trap. */
  sigset_t def, none;
  sigemptyset(&def);
  sigaddset(&def, SIGPIPE);
  sigaddset(&def, SIGINT);
  sigaddset(&def, SIGTERM);
  sigaddset(&def, SIGQUIT);
  sigaddset(&def, SIGHUP);
  sigemptyset(&none);
  posix_spawnattr_setpgroup(&attr, 0);
  posix_spawnattr_setsigdefault(&attr, &def);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);

  h->start_ms = px_wait_now_ms();
  h->start_exact = now_exact_ms();
  pid_t pid;
  e = posix_spawn(&pid, prog, &fa, &attr, (char *const *)s->argv, (char *const *)s->envp);
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  if (e != 0) {
    snprintf(msg, msglen, "%s: %s", s->argv[0], strerror(e));
    close_pipes(p, 3);
    return 0;
  }
  close_fd(&p[0][0]);
  close_fd(&p[1][1]);
  close_fd(&p[2][1]);
  h->pid = pid;
  px_sys_track_group(pid);
  h->pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
  if (h->pidfd >= 0) fcntl(h->pidfd, F_SETFD, FD_CLOEXEC);
  h->stdin_fd = p[0][1];
  h->out.fd = p[1][0];
  h->err.fd = p[2][0];
  if (h->stdin_fd >= 0) fcntl(h->stdin_fd, F_SETFL, O_NONBLOCK);
  if (h->out.fd >= 0) fcntl(h->out.fd, F_SETFL, O_NONBLOCK);
  if (h->err.fd >= 0) fcntl(h->err.fd, F_SETFL, O_NONBLOCK);
  feed_stdin(h);
  return 1;
}

static struct handle *new_handle(lua_State *L, const struct spec *s) {
  struct handle *h = lua_newuserdatauv(L, sizeof *h, 1);
  memset(h, 0, sizeof *h);
  h->w.ops = &exec_ops;
  h->pid = -1;
  h->reaped = 1; /* nothing to reap until start() succeeds */
  h->pidfd = h->stdin_fd = h->out.fd = h->err.fd = -1;
  h->out.max = h->err.max = (size_t)s->max_output;
  h->timeout_ms = s->timeout_ms;
  h->grace_ms = s->grace_ms;
  h->stdin_data = s->stdin_data;
  h->stdin_len = s->stdin_len;
  luaL_setmetatable(L, HANDLE_MT);
  return h;
}

/* spawn(opts) -> handle | nil, msg */
static int exec_spawn(lua_State *L) {
  struct spec s;
  read_spec(L, 1, &s);
  int anchor = lua_gettop(L);
  struct handle *h = new_handle(L, &s);
  lua_pushvalue(L, anchor); /* keeps stdin's bytes alive with the handle */
  lua_setiuservalue(L, -2, 1);
  char msg[512];
  h->reaped = 0;
  if (!start(h, &s, msg, sizeof msg)) {
    h->reaped = 1;
    lua_pushnil(L);
    lua_pushstring(L, msg);
    return 2;
  }
  return 1;
}

/* run(opts) -> result | nil, msg */
static int exec_run(lua_State *L) {
  int n = exec_spawn(L);
  if (n == 2) return 2;
  struct handle *h = lua_touserdata(L, -1);
  struct px_waitable *w = &h->w;
  wait_set(&w, 1, -1);
  while (!exec_finished(w)) wait_set(&w, 1, -1); /* an interrupt does not stop run() */
  push_result(L, h);
  return 1;
}

static struct handle *check_handle(lua_State *L) {
  return luaL_checkudata(L, 1, HANDLE_MT);
}

/* h:wait([timeout_ms]) -> result | nil, "timeout" */
static int handle_wait(lua_State *L) {
  struct handle *h = check_handle(L);
  lua_Integer t = luaL_optinteger(L, 2, -1);
  struct px_waitable *w = &h->w;
  int64_t deadline = t < 0 ? -1 : px_wait_now_ms() + t;
  while (!exec_finished(w)) {
    wait_set(&w, 1, deadline);
    if (deadline >= 0 && px_wait_now_ms() >= deadline && !exec_finished(w)) {
      lua_pushnil(L);
      lua_pushliteral(L, "timeout");
      return 2;
    }
  }
  push_result(L, h);
  return 1;
}

/* h:done() -> boolean, after moving any pending I/O along. */
static int handle_done(lua_State *L) {
  struct handle *h = check_handle(L);
  struct px_waitable *w = &h->w;
  if (!exec_finished(w)) wait_set(&w, 1, px_wait_now_ms());
  lua_pushboolean(L, exec_finished(w));
  return 1;
}

/* h:result() -> result | nil when still running */
static int handle_result(lua_State *L) {
  struct handle *h = check_handle(L);
  if (!exec_finished(&h->w)) return 0;
  push_result(L, h);
  return 1;
}

static const char *const signal_names[] = {"TERM", "KILL", "INT", "HUP", "QUIT", "USR1", "USR2", "STOP", "CONT", NULL};
static const int signal_numbers[] = {SIGTERM, SIGKILL, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGSTOP, SIGCONT};

/* h:kill(["TERM"|"KILL"|...]) -> true; signals the whole process group. */
static int handle_kill(lua_State *L) {
  struct handle *h = check_handle(L);
  int sig = signal_numbers[luaL_checkoption(L, 2, "TERM", signal_names)];
  signal_group(h, sig);
  lua_pushboolean(L, 1);
  return 1;
}

static int handle_gc(lua_State *L) {
  struct handle *h = check_handle(L);
  if (!h->reaped) {
    signal_group(h, SIGKILL);
    reap(h, 1);
  }
  close_fd(&h->pidfd);
  close_fd(&h->stdin_fd);
  close_fd(&h->out.fd);
  close_fd(&h->err.fd);
  free(h->out.buf);
  free(h->err.buf);
  h->out.buf = h->err.buf = NULL;
  h->out.len = h->err.len = 0;
  return 0;
}

static int handle_index(lua_State *L) {
  struct handle *h = check_handle(L);
  const char *k = luaL_checkstring(L, 2);
  if (strcmp(k, "pid") == 0) {
    lua_pushinteger(L, h->pid);
    return 1;
  }
  luaL_getmetatable(L, HANDLE_MT);
  lua_getfield(L, -1, "methods");
  lua_getfield(L, -1, k);
  return 1;
}

static int handle_tostring(lua_State *L) {
  struct handle *h = check_handle(L);
  lua_pushfstring(L, "px.exec handle (pid %d, %s)", (int)h->pid, exec_finished(&h->w) ? "finished" : "running");
  return 1;
}

/* wait_any(handles, timeout_ms) -> {finished indices}, interrupted
 * handles: a list of waitables. timeout_ms nil or < 0: no limit. */
static int exec_wait_any(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_Integer t = luaL_optinteger(L, 2, -1);
  int n = (int)lua_rawlen(L, 1);
  struct px_waitable **ws = lua_newuserdatauv(L, sizeof *ws * (size_t)(n ? n : 1), 0);
  for (int i = 0; i < n; i++) {
    lua_rawgeti(L, 1, i + 1);
    int ok = lua_getmetatable(L, -1);
    if (ok) {
      lua_getfield(L, -1, "__px_waitable");
      ok = lua_toboolean(L, -1);
      lua_pop(L, 2);
    }
    if (!ok) luaL_error(L, "bad argument #1 to 'wait_any' (item %d is not a waitable handle)", i + 1);
    ws[i] = lua_touserdata(L, -1);
    lua_pop(L, 1);
  }
  int interrupted = 0;
  if (n > 0) interrupted = wait_set(ws, n, t < 0 ? -1 : px_wait_now_ms() + t);
  else if (t > 0) interrupted = wait_set(ws, 0, px_wait_now_ms() + t);
  lua_newtable(L);
  int k = 0;
  for (int i = 0; i < n; i++)
    if (ws[i]->ops->finished(ws[i])) {
      lua_pushinteger(L, i + 1);
      lua_rawseti(L, -2, ++k);
    }
  lua_pushboolean(L, interrupted);
  return 2;
}

static const luaL_Reg handle_methods[] = {
    {"wait", handle_wait}, {"done", handle_done}, {"result", handle_result}, {"kill", handle_kill},
    {"close", handle_gc}, {NULL, NULL},
};

static const luaL_Reg funcs[] = {
    {"run", exec_run}, {"spawn", exec_spawn}, {"wait_any", exec_wait_any}, {NULL, NULL},
};

int luaopen_px_exec(lua_State *L) {
  px_sys_guard_groups(); /* a signal that kills phoenix reaches its children */
  if (luaL_newmetatable(L, HANDLE_MT)) {
    luaL_newlib(L, handle_methods);
    lua_setfield(L, -2, "methods");
    lua_pushcfunction(L, handle_index);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, handle_gc);
    lua_setfield(L, -2, "__gc");
    lua_pushcfunction(L, handle_gc);
    lua_setfield(L, -2, "__close");
    lua_pushcfunction(L, handle_tostring);
    lua_setfield(L, -2, "__tostring");
    lua_pushboolean(L, 1);
    lua_setfield(L, -2, "__px_waitable");
  }
  lua_pop(L, 1);
  luaL_newlib(L, funcs);
  return 1;
}
