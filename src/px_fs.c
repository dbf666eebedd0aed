/*
 * px.fs: files, done safely.
 *
 *   read(path)                         -> data | nil, msg
 *   write(path, data, {mode=, uid=, gid=, backup=}) -> true | nil, msg
 *       always atomic: a temp file in the same directory, fsync, rename,
 *       fsync of the directory; a reader sees the old or the new file,
 *       never a part. An existing file keeps its mode and owner unless
 *       given; a symlink is written through (its target is replaced, the
 *       link stays). backup = "SUFFIX" keeps the previous file as
 *       path..SUFFIX (a hard link made before the rename).
 *   stat(path, {follow=true})          -> {type, size, mode, uid, gid, mtime} | nil, msg
 *   exists(path)                       -> boolean
 *   list(path)                         -> {names...} sorted | nil, msg
 *   mkdir(path, {mode=, parents=true}) -> true | nil, msg
 *   remove(path)                       -> true | nil, msg (absent is fine)
 *   sha256(data), sha256_file(path)    -> hex | nil, msg
 *   flock(path, {mode="exclusive"|"shared", timeout_ms=}) -> lock | nil, msg
 *       timeout_ms: 0 (default) tries once, < 0 waits without limit (an
 *       interrupt trapped by px.sys ends the wait).
 *       lock:write(text) replaces the lock file's content (who holds it);
 *       lock:unlock(), <close> and __gc release it.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lua.h>

#include "px_sys.h"

#define LOCK_MT "px.fs.lock"
#define FD_MT "px.fs.fd"

/* An fd owned by a userdata, so a Lua error (out of memory while a file is
 * read) cannot leak it. */
static int fdbox_gc(lua_State *L) {
  int *fd = lua_touserdata(L, 1);
  if (*fd >= 0) {
    close(*fd);
    *fd = -1;
  }
  return 0;
}

static int *fdbox_new(lua_State *L) {
  int *fd = lua_newuserdatauv(L, sizeof *fd, 0);
  *fd = -1;
  luaL_setmetatable(L, FD_MT);
  return fd;
}

static int fail(lua_State *L, const char *what, int err) {
  lua_pushnil(L);
  lua_pushfstring(L, "%s: %s", what, strerror(err));
  return 2;
}

/* Rejects option keys not in names (a typo must not pass silently). */
static void check_opts(lua_State *L, int idx, const char *const *names) {
  if (lua_isnoneornil(L, idx)) return;
  luaL_checktype(L, idx, LUA_TTABLE);
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    lua_pop(L, 1);
    int ok = 0;
    if (lua_type(L, -1) == LUA_TSTRING)
      for (int i = 0; names[i]; i++)
        if (strcmp(lua_tostring(L, -1), names[i]) == 0) ok = 1;
    if (!ok) luaL_argerror(L, idx, lua_pushfstring(L, "unknown option '%s'", luaL_tolstring(L, -1, NULL)));
  }
}

static lua_Integer opt_int(lua_State *L, int idx, const char *k, lua_Integer def) {
  if (lua_isnoneornil(L, idx)) return def;
  lua_getfield(L, idx, k);
  lua_Integer v = def;
  if (!lua_isnil(L, -1)) {
    if (lua_type(L, -1) == LUA_TSTRING) { /* "0644" */
      char *end;
      const char *s = lua_tostring(L, -1);
      v = strtol(s, &end, 8);
      if (*s == '\0' || *end != '\0') luaL_error(L, "bad option '%s' (octal string or integer expected)", k);
    } else {
      int ok;
      v = lua_tointegerx(L, -1, &ok);
      if (!ok) luaL_error(L, "bad option '%s' (integer expected)", k);
    }
  }
  lua_pop(L, 1);
  return v;
}

/* ---- read / write ------------------------------------------------------- */

static int fs_read(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  int *fd = fdbox_new(L);
  *fd = open(path, O_RDONLY | O_CLOEXEC);
  if (*fd < 0) return fail(L, path, errno);
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  for (;;) {
    char *p = luaL_prepbuffsize(&b, 65536);
    ssize_t n = read(*fd, p, 65536);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return fail(L, path, errno); /* the box closes fd */
    if (n == 0) break;
    luaL_addsize(&b, (size_t)n);
  }
  luaL_pushresult(&b);
  close(*fd);
  *fd = -1;
  return 1;
}

static int write_all(int fd, const char *p, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) return -1;
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

static void split_dir(const char *path, char *dir, size_t len) {
  const char *slash = strrchr(path, '/');
  if (!slash) snprintf(dir, len, ".");
  else if (slash == path) snprintf(dir, len, "/");
  else snprintf(dir, len, "%.*s", (int)(slash - path), path);
}

static const char *const write_opts[] = {"mode", "uid", "gid", "backup", NULL};

static lua_Integer opt_ranged(lua_State *L, int idx, const char *k, lua_Integer max) {
  lua_Integer v = opt_int(L, idx, k, -1);
  if (v < -1 || v > max) luaL_error(L, "bad option '%s' (out of range)", k);
  return v;
}

static int fs_write(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  size_t len;
  const char *data = luaL_checklstring(L, 2, &len);
  check_opts(L, 3, write_opts);
  lua_Integer mode = opt_ranged(L, 3, "mode", 07777);
  lua_Integer uid = opt_ranged(L, 3, "uid", 0x7fffffff);
  lua_Integer gid = opt_ranged(L, 3, "gid", 0x7fffffff);
  const char *backup = NULL;
  if (!lua_isnoneornil(L, 3)) {
    lua_getfield(L, 3, "backup");
    if (!lua_isnil(L, -1)) {
      if (lua_type(L, -1) != LUA_TSTRING || lua_rawlen(L, -1) == 0 || strchr(lua_tostring(L, -1), '/'))
        luaL_error(L, "bad option 'backup' (a suffix such as \".bak\" expected)");
      backup = lua_tostring(L, -1); /* stays on the stack */
    }
  }
  const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
  if (*base == '\0') return luaL_argerror(L, 1, "names a directory");
  if (strlen(path) > PATH_MAX - 64) return fail(L, path, ENAMETOOLONG);

  /* Write through a symlink: replacing the link by a file would break
   * setups that point config files elsewhere (resolv.conf ...). */
  char target[PATH_MAX];
  struct stat lst;
  if (lstat(path, &lst) == 0 && S_ISLNK(lst.st_mode)) {
    if (realpath(path, target) == NULL) return fail(L, path, errno);
    path = target;
    base = strrchr(path, '/') + 1;
  }
  char dir[PATH_MAX], tmp[PATH_MAX + 64];
  split_dir(path, dir, sizeof dir);
  snprintf(tmp, sizeof tmp, "%s/.%s.pxtmp.XXXXXX", dir, base);

  struct stat old;
  int had_old = stat(path, &old) == 0;
  if (had_old && !S_ISREG(old.st_mode)) return fail(L, path, S_ISDIR(old.st_mode) ? EISDIR : EINVAL);
  int fd = mkostemp(tmp, O_CLOEXEC);
  if (fd < 0) return fail(L, path, errno);
  /* Keep the old file's mode and owner unless told otherwise. */
  mode_t m = mode >= 0 ? (mode_t)mode : had_old ? (old.st_mode & 07777) : 0644;
  uid_t u = uid >= 0 ? (uid_t)uid : had_old ? old.st_uid : (uid_t)-1;
  gid_t g = gid >= 0 ? (gid_t)gid : had_old ? old.st_gid : (gid_t)-1;
  struct stat cur;
  int e = 0;
  if (write_all(fd, data, len) != 0 || fstat(fd, &cur) != 0) e = errno;
  /* chown before chmod: chown clears set-user/group-ID bits. */
  if (!e && ((u != (uid_t)-1 && u != cur.st_uid) || (g != (gid_t)-1 && g != cur.st_gid)) && fchown(fd, u, g) != 0)
    e = errno;
  if (!e && (fchmod(fd, m) != 0 || fsync(fd) != 0)) e = errno;
  if (close(fd) != 0 && !e) e = errno;
  if (!e && backup && had_old) {
    char bak[PATH_MAX + 256];
    snprintf(bak, sizeof bak, "%s%s", path, backup);
    if (unlink(bak) != 0 && errno != ENOENT) e = errno;
    else if (link(path, bak) != 0) e = errno;
  }
  if (!e && rename(tmp, path) != 0) e = errno;
  if (e) {
    unlink(tmp);
    return fail(L, path, e);
  }
  int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    fsync(dfd);
    close(dfd);
  }
  lua_pushboolean(L, 1);
  return 1;
}

/* ---- metadata ----------------------------------------------------------- */

static const char *type_name(mode_t m) {
  if (S_ISREG(m)) return "file";
  if (S_ISDIR(m)) return "dir";
  if (S_ISLNK(m)) return "link";
  if (S_ISCHR(m)) return "char";
  if (S_ISBLK(m)) return "block";
  if (S_ISFIFO(m)) return "fifo";
  if (S_ISSOCK(m)) return "socket";
  return "other";
}

static const char *const stat_opts[] = {"follow", NULL};

static int fs_stat(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  check_opts(L, 2, stat_opts);
  int follow = 1;
  if (!lua_isnoneornil(L, 2)) {
    lua_getfield(L, 2, "follow");
    if (!lua_isnil(L, -1)) follow = lua_toboolean(L, -1);
    lua_pop(L, 1);
  }
  struct stat st;
  if ((follow ? stat(path, &st) : lstat(path, &st)) != 0) return fail(L, path, errno);
  lua_createtable(L, 0, 7);
  lua_pushstring(L, type_name(st.st_mode));
  lua_setfield(L, -2, "type");
  lua_pushinteger(L, (lua_Integer)st.st_size);
  lua_setfield(L, -2, "size");
  lua_pushinteger(L, st.st_mode & 07777);
  lua_setfield(L, -2, "mode");
  lua_pushinteger(L, st.st_uid);
  lua_setfield(L, -2, "uid");
  lua_pushinteger(L, st.st_gid);
  lua_setfield(L, -2, "gid");
  lua_pushnumber(L, (double)st.st_mtim.tv_sec + (double)st.st_mtim.tv_nsec / 1e9);
  lua_setfield(L, -2, "mtime");
  lua_pushinteger(L, (lua_Integer)st.st_ino);
  lua_setfield(L, -2, "ino");
  return 1;
}

static int fs_exists(lua_State *L) {
  struct stat st;
  lua_pushboolean(L, stat(luaL_checkstring(L, 1), &st) == 0);
  return 1;
}

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The DIR* lives in a userdata so a Lua error while listing cannot leak it. */
static int dir_gc(lua_State *L) {
  DIR **d = lua_touserdata(L, 1);
  if (*d) {
    closedir(*d);
    *d = NULL;
  }
  return 0;
}

static int fs_list(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  DIR **d = lua_newuserdatauv(L, sizeof *d, 0);
  *d = NULL;
  luaL_setmetatable(L, "px.fs.dir");
  *d = opendir(path);
  if (!*d) return fail(L, path, errno);
  lua_newtable(L);
  int t = lua_gettop(L), n = 0;
  struct dirent *de;
  while ((de = readdir(*d)) != NULL) {
    if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0) continue;
    lua_pushstring(L, de->d_name);
    lua_rawseti(L, t, ++n);
  }
  closedir(*d);
  *d = NULL;
  const char **names = lua_newuserdatauv(L, sizeof *names * (size_t)(n ? n : 1), 0);
  for (int i = 0; i < n; i++) {
    lua_rawgeti(L, t, i + 1);
    names[i] = lua_tostring(L, -1); /* anchored in t */
    lua_pop(L, 1);
  }
  qsort(names, (size_t)n, sizeof *names, cmp_str);
  lua_createtable(L, n, 0);
  for (int i = 0; i < n; i++) {
    lua_pushstring(L, names[i]);
    lua_rawseti(L, -2, i + 1);
  }
  return 1;
}

static const char *const mkdir_opts[] = {"mode", "parents", NULL};

static int fs_mkdir(lua_State *L) {
  size_t len;
  const char *path = luaL_checklstring(L, 1, &len);
  check_opts(L, 2, mkdir_opts);
  mode_t mode = (mode_t)opt_int(L, 2, "mode", 0755);
  int parents = 1;
  if (!lua_isnoneornil(L, 2)) {
    lua_getfield(L, 2, "parents");
    if (!lua_isnil(L, -1)) parents = lua_toboolean(L, -1);
    lua_pop(L, 1);
  }
  char buf[4096];
  if (len == 0 || len >= sizeof buf) return luaL_argerror(L, 1, "empty or too long");
  memcpy(buf, path, len + 1);
  if (parents) {
    for (char *p = buf + 1; *p; p++) {
      if (*p != '/') continue;
      *p = '\0';
      if (mkdir(buf, mode) != 0 && errno != EEXIST) return fail(L, buf, errno);
      *p = '/';
    }
  }
  if (mkdir(buf, mode) != 0) {
    struct stat st;
    if (!(errno == EEXIST && parents && stat(buf, &st) == 0 && S_ISDIR(st.st_mode))) return fail(L, path, errno);
  }
  lua_pushboolean(L, 1);
  return 1;
}

static int fs_remove(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  if (remove(path) != 0 && errno != ENOENT) return fail(L, path, errno);
  lua_pushboolean(L, 1);
  return 1;
}

/* ---- SHA-256 (FIPS 180-4) ------------------------------------------------ */

struct sha256 {
  uint32_t h[8];
  uint64_t len;
  unsigned char buf[64];
  size_t n;
};

static const uint32_t K[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};

#define ROR(x, n) (((x) >> (n)) | ((x) << (32 - (n))))

static void sha_block(struct sha256 *s, const unsigned char *p) {
  uint32_t w[64], a, b, c, d, e, f, g, h;
  for (int i = 0; i < 16; i++)
    w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 | (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
  for (int i = 16; i < 64; i++) {
    uint32_t s0 = ROR(w[i - 15], 7) ^ ROR(w[i - 15], 18) ^ (w[i - 15] >> 3);
    uint32_t s1 = ROR(w[i - 2], 17) ^ ROR(w[i - 2], 19) ^ (w[i - 2] >> 10);
    w[i] = w[i - 16] + s0 + w[i - 7] + s1;
  }
  a = s->h[0], b = s->h[1], c = s->h[2], d = s->h[3], e = s->h[4], f = s->h[5], g = s->h[6], h = s->h[7];
  for (int i = 0; i < 64; i++) {
    uint32_t t1 = h + (ROR(e, 6) ^ ROR(e, 11) ^ ROR(e, 25)) + ((e & f) ^ (~e & g)) + K[i] + w[i];
    uint32_t t2 = (ROR(a, 2) ^ ROR(a, 13) ^ ROR(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
    h = g, g = f, f = e, e = d + t1, d = c, c = b, b = a, a = t1 + t2;
  }
  s->h[0] += a, s->h[1] += b, s->h[2] += c, s->h[3] += d, s->h[4] += e, s->h[5] += f, s->h[6] += g, s->h[7] += h;
}

static void sha_init(struct sha256 *s) {
  static const uint32_t iv[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
  memcpy(s->h, iv, sizeof iv);
  s->len = 0;
  s->n = 0;
}

static void sha_update(struct sha256 *s, const unsigned char *p, size_t n) {
  s->len += n;
  while (n > 0) {
    size_t take = 64 - s->n < n ? 64 - s->n : n;
    memcpy(s->buf + s->n, p, take);
    s->n += take;
    p += take;
    n -= take;
    if (s->n == 64) {
      sha_block(s, s->buf);
      s->n = 0;
    }
  }
}

static void sha_hex(struct sha256 *s, char out[65]) {
  uint64_t bits = s->len * 8;
  unsigned char pad = 0x80, zero = 0, lenb[8];
  sha_update(s, &pad, 1);
  while (s->n != 56) sha_update(s, &zero, 1);
  for (int i = 0; i < 8; i++) lenb[i] = (unsigned char)(bits >> (56 - 8 * i));
  sha_update(s, lenb, 8);
  for (int i = 0; i < 8; i++) snprintf(out + 8 * i, 9, "%08x", s->h[i]);
}

static int fs_sha256(lua_State *L) {
  size_t n;
  const char *p = luaL_checklstring(L, 1, &n);
  struct sha256 s;
  char hex[65];
  sha_init(&s);
  sha_update(&s, (const unsigned char *)p, n);
  sha_hex(&s, hex);
  lua_pushstring(L, hex);
  return 1;
}

static int fs_sha256_file(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return fail(L, path, errno);
  struct sha256 s;
  unsigned char buf[65536];
  char hex[65];
  sha_init(&s);
  for (;;) {
    ssize_t r = read(fd, buf, sizeof buf);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) {
      int e = errno;
      close(fd);
      return fail(L, path, e);
    }
    if (r == 0) break;
    sha_update(&s, buf, (size_t)r);
  }
  close(fd);
  sha_hex(&s, hex);
  lua_pushstring(L, hex);
  return 1;
}

/* ---- locks -------------------------------------------------------------- */

struct lock {
  int fd;
};

static const char *const flock_opts[] = {"mode", "timeout_ms", NULL};

static int fs_flock(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  check_opts(L, 2, flock_opts);
  int shared = 0;
  if (!lua_isnoneornil(L, 2)) {
    lua_getfield(L, 2, "mode");
    const char *m = lua_tostring(L, -1);
    if (m && strcmp(m, "shared") == 0) shared = 1;
    else if (!lua_isnil(L, -1) && !(m && strcmp(m, "exclusive") == 0))
      luaL_error(L, "bad option 'mode' (\"exclusive\" or \"shared\" expected)");
    lua_pop(L, 1);
  }
  lua_Integer timeout = opt_int(L, 2, "timeout_ms", 0);
  struct lock *lk = lua_newuserdatauv(L, sizeof *lk, 0);
  lk->fd = -1;
  luaL_setmetatable(L, LOCK_MT);
  lk->fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (lk->fd < 0 && errno == EACCES && shared) lk->fd = open(path, O_RDONLY | O_CLOEXEC);
  if (lk->fd < 0) return fail(L, path, errno);
  struct timespec t0, now;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  long delay_ms = 2;
  for (;;) {
    if (flock(lk->fd, (shared ? LOCK_SH : LOCK_EX) | LOCK_NB) == 0) return 1;
    if (errno != EWOULDBLOCK && errno != EINTR) {
      int e = errno;
      close(lk->fd);
      lk->fd = -1;
      return fail(L, path, e);
    }
    clock_gettime(CLOCK_MONOTONIC, &now);
    long elapsed = (long)(now.tv_sec - t0.tv_sec) * 1000 + (now.tv_nsec - t0.tv_nsec) / 1000000;
    int interrupted = timeout < 0 && px_sys_interrupted();
    if ((timeout >= 0 && elapsed >= timeout) || interrupted) {
      close(lk->fd);
      lk->fd = -1;
      lua_pushnil(L);
      if (interrupted) lua_pushfstring(L, "%s: interrupted while waiting for the lock", path);
      else lua_pushfstring(L, "%s: locked by another process (waited %d ms)", path, (int)timeout);
      lua_pushstring(L, interrupted ? "interrupted" : "busy"); /* for callers that branch on it */
      return 3;
    }
    long d = delay_ms;
    if (timeout >= 0 && timeout - elapsed < d) d = timeout - elapsed;
    struct timespec ts = {d / 1000, (d % 1000) * 1000000};
    nanosleep(&ts, NULL);
    if (delay_ms < 50) delay_ms *= 2;
  }
}

static struct lock *check_lock(lua_State *L) {
  return luaL_checkudata(L, 1, LOCK_MT);
}

static int lock_write(lua_State *L) {
  struct lock *lk = check_lock(L);
  size_t n;
  const char *text = luaL_checklstring(L, 2, &n);
  if (lk->fd < 0) return luaL_error(L, "lock already released");
  if (ftruncate(lk->fd, 0) != 0 || pwrite(lk->fd, text, n, 0) != (ssize_t)n) return fail(L, "lock file", errno);
  lua_pushboolean(L, 1);
  return 1;
}

static int lock_unlock(lua_State *L) {
  struct lock *lk = check_lock(L);
  if (lk->fd >= 0) {
    close(lk->fd); /* closing the only fd releases the flock */
    lk->fd = -1;
  }
  return 0;
}

static int lock_tostring(lua_State *L) {
  struct lock *lk = check_lock(L);
  lua_pushstring(L, lk->fd >= 0 ? "px.fs lock (held)" : "px.fs lock (released)");
  return 1;
}

static const luaL_Reg lock_methods[] = {{"write", lock_write}, {"unlock", lock_unlock}, {NULL, NULL}};

static const luaL_Reg funcs[] = {
    {"read", fs_read},     {"write", fs_write},   {"stat", fs_stat},       {"exists", fs_exists},
    {"list", fs_list},     {"mkdir", fs_mkdir},   {"remove", fs_remove},   {"sha256", fs_sha256},
    {"sha256_file", fs_sha256_file},              {"flock", fs_flock},     {NULL, NULL},
};

int luaopen_px_fs(lua_State *L) {
  if (luaL_newmetatable(L, LOCK_MT)) {
    luaL_newlib(L, lock_methods);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, lock_unlock);
    lua_setfield(L, -2, "__gc");
    lua_pushcfunction(L, lock_unlock);
    lua_setfield(L, -2, "__close");
    lua_pushcfunction(L, lock_tostring);
    lua_setfield(L, -2, "__tostring");
  }
  lua_pop(L, 1);
  if (luaL_newmetatable(L, FD_MT)) {
    lua_pushcfunction(L, fdbox_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_pop(L, 1);
  if (luaL_newmetatable(L, "px.fs.dir")) {
    lua_pushcfunction(L, dir_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_pop(L, 1);
  luaL_newlib(L, funcs);
  return 1;
}
