/*
 * px.gpu: what the host offers for GPU passthrough, from sysfs and procfs.
 *
 *   scan{root="/", all=false}  -> facts | nil, msg
 *   device(root, address)      -> device | nil, msg     (any PCI device)
 *   iommu_group(root, n)       -> {address, ...} | nil, msg
 *
 * facts = { devices = {device...}, iommu_enabled, iommu_cmdline, cmdline,
 *           nvidia_devices = {"/dev/nvidia0", ..., "/dev/nvidiactl", ...},
 *           nvidia_gpus = {0, 1, ...}, driver_version, vfio_modules = {...},
 *           problems = {"<path>: what is wrong", ...} }
 * device = { address, vendor, device, class (hex, no 0x), kind, driver,
 *            iommu_group, vendor_name }
 *
 * Every path is read under root, so tests point it at a fake tree. Files
 * that do not parse become entries in problems (that device is left out);
 * only a missing PCI device directory makes scan() fail.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lua.h>

#define NAMES_MT "px.gpu.names"
#define PCI_DIR "sys/bus/pci/devices"
#define GROUPS_DIR "sys/kernel/iommu_groups"
#define SMALL_FILE 8192

/* ---- directory listings (a userdata owns the names until freed) ---------- */

struct names {
  char **v;
  size_t n, cap;
};

static void names_free(struct names *ns) {
  for (size_t i = 0; i < ns->n; i++) free(ns->v[i]);
  free(ns->v);
  memset(ns, 0, sizeof *ns);
}

static int names_gc(lua_State *L) {
  names_free(luaL_checkudata(L, 1, NAMES_MT));
  return 0;
}

static int by_name(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Pushes a names userdata with the entries of dir, sorted. Returns 0 or an
 * errno (the userdata is pushed either way). */
static int list_dir(lua_State *L, const char *dir) {
  struct names *ns = lua_newuserdatauv(L, sizeof *ns, 0);
  memset(ns, 0, sizeof *ns);
  luaL_setmetatable(L, NAMES_MT);
  DIR *d = opendir(dir);
  if (d == NULL) return errno;
  struct dirent *de;
  int err = 0;
  while ((de = readdir(d)) != NULL) {
    if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0) continue;
    if (ns->n == ns->cap) {
      size_t nc = ns->cap ? ns->cap * 2 : 32;
      char **nv = realloc(ns->v, nc * sizeof *nv);
      if (nv == NULL) {
        err = ENOMEM;
        break;
      }
      ns->v = nv;
      ns->cap = nc;
    }
    if ((ns->v[ns->n] = strdup(de->d_name)) == NULL) {
      err = ENOMEM;
      break;
    }
    ns->n++;
  }
  closedir(d);
  if (ns->n > 1) qsort(ns->v, ns->n, sizeof *ns->v, by_name);
  return err;
}

/* ---- small helpers ------------------------------------------------------- */

/* root + "/" + a [+ "/" + b [+ "/" + c]], with root "/" adding nothing. */
static void join(char *out, size_t len, const char *root, const char *a, const char *b, const char *c) {
  size_t rl = strlen(root);
  while (rl > 0 && root[rl - 1] == '/') rl--;
  snprintf(out, len, "%.*s/%s%s%s%s%s", (int)rl, root, a, b ? "/" : "", b ? b : "", c ? "/" : "", c ? c : "");
}

/* Reads a small file into buf (NUL-terminated, trailing whitespace cut).
 * Returns 0 or an errno. */
static int read_small(const char *path, char *buf, size_t len) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return errno;
  size_t got = 0;
  while (got < len - 1) {
    ssize_t n = read(fd, buf + got, len - 1 - got);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int e = errno;
      close(fd);
      return e;
    }
    if (n == 0) break;
    got += (size_t)n;
  }
  close(fd);
  buf[got] = '\0';
  while (got > 0 && isspace((unsigned char)buf[got - 1])) buf[--got] = '\0';
  return 0;
}

static void add_problem(lua_State *L, int problems, const char *fmt, const char *path, const char *what) {
  lua_pushfstring(L, fmt, path, what);
  lua_rawseti(L, problems, (lua_Integer)lua_rawlen(L, problems) + 1);
}

/* "0x10de" -> "10de" in out when it has exactly digits hex digits. */
static int parse_hex_id(const char *s, int digits, char *out) {
  if (strncmp(s, "0x", 2) == 0 || strncmp(s, "0X", 2) == 0) s += 2;
  if ((int)strlen(s) != digits) return 0;
  for (int i = 0; i < digits; i++) {
    if (!isxdigit((unsigned char)s[i])) return 0;
    out[i] = (char)tolower((unsigned char)s[i]);
  }
  out[digits] = '\0';
  return 1;
}

/* Is name a PCI address "dddd:bb:dd.f"? */
static int is_pci_address(const char *a) {
  static const char pat[] = "xxxx:xx:xx.x";
  if (strlen(a) != sizeof pat - 1) return 0;
  for (size_t i = 0; i < sizeof pat - 1; i++)
    if (pat[i] == 'x' ? !isxdigit((unsigned char)a[i]) : a[i] != pat[i]) return 0;
  return 1;
}

static const char *vendor_name(const char *id) {
  static const char *const v[][2] = {
      {"10de", "NVIDIA"}, {"1002", "AMD"}, {"8086", "Intel"}, {"1af4", "Red Hat (virtio)"},
      {"1a03", "ASPEED"}, {"102b", "Matrox"}, {"1b36", "Red Hat (QEMU)"}, {"1234", "QEMU"}, {NULL, NULL},
  };
  for (int i = 0; v[i][0]; i++)
    if (strcmp(v[i][0], id) == 0) return v[i][1];
  return NULL;
}

static const char *kind_of(const char *cls) {
  if (strncmp(cls, "03", 2) == 0) return "display";
  if (strncmp(cls, "0403", 4) == 0) return "audio";
  if (strncmp(cls, "06", 2) == 0) return "bridge";
  if (strncmp(cls, "0c03", 4) == 0) return "usb";
  return "other";
}

/* The last path component of symlink path, in out. Returns 0, ENOENT when
 * absent, EINVAL when not a symlink, or another errno. */
static int link_base(const char *path, char *out, size_t len) {
  char target[PATH_MAX];
  ssize_t n = readlink(path, target, sizeof target - 1);
  if (n < 0) return errno;
  target[n] = '\0';
  while (n > 1 && target[n - 1] == '/') target[--n] = '\0';
  const char *slash = strrchr(target, '/');
  const char *base = slash ? slash + 1 : target;
  size_t bl = strlen(base);
  if (bl >= len) return ENAMETOOLONG;
  memcpy(out, base, bl + 1);
  return 0;
}

/* ---- devices ------------------------------------------------------------- */

/* Pushes the device table for address (under root), or records why it is
 * malformed in problems and pushes nothing. Returns 1 when pushed. */
static int push_device(lua_State *L, const char *root, const char *address, int problems) {
  char path[PATH_MAX], buf[SMALL_FILE];
  char vendor[5], device[5], cls[7];
  struct {
    const char *file;
    int digits;
    char *out;
  } ids[] = {{"vendor", 4, vendor}, {"device", 4, device}, {"class", 6, cls}};
  for (int i = 0; i < 3; i++) {
    join(path, sizeof path, root, PCI_DIR, address, ids[i].file);
    int e = read_small(path, buf, sizeof buf);
    if (e != 0) {
      add_problem(L, problems, "%s: %s", path, strerror(e));
      return 0;
    }
    if (!parse_hex_id(buf, ids[i].digits, ids[i].out)) {
      lua_pushfstring(L, "expected a %d-digit hex id such as 0x%s, got '%s'", ids[i].digits,
                      ids[i].digits == 4 ? "10de" : "030000", buf);
      add_problem(L, problems, "%s: %s", path, lua_tostring(L, -1));
      lua_pop(L, 1);
      return 0;
    }
  }
  lua_createtable(L, 0, 8);
  lua_pushstring(L, address);
  lua_setfield(L, -2, "address");
  lua_pushstring(L, vendor);
  lua_setfield(L, -2, "vendor");
  lua_pushstring(L, device);
  lua_setfield(L, -2, "device");
  lua_pushstring(L, cls);
  lua_setfield(L, -2, "class");
  lua_pushstring(L, kind_of(cls));
  lua_setfield(L, -2, "kind");
  const char *vn = vendor_name(vendor);
  if (vn) {
    lua_pushstring(L, vn);
    lua_setfield(L, -2, "vendor_name");
  }
  char base[NAME_MAX + 1];
  join(path, sizeof path, root, PCI_DIR, address, "driver");
  int e = link_base(path, base, sizeof base);
  if (e == 0) {
    lua_pushstring(L, base);
    lua_setfield(L, -2, "driver");
  } else if (e != ENOENT) {
    add_problem(L, problems, "%s: %s", path, e == EINVAL ? "not a symlink to a driver" : strerror(e));
  }
  join(path, sizeof path, root, PCI_DIR, address, "iommu_group");
  e = link_base(path, base, sizeof base);
  if (e == 0) {
    char *end;
    long g = strtol(base, &end, 10);
    if (*base && *end == '\0' && g >= 0) {
      lua_pushinteger(L, g);
      lua_setfield(L, -2, "iommu_group");
    } else {
      add_problem(L, problems, "%s: expected a link to an IOMMU group number, got '%s'", path, base);
    }
  } else if (e != ENOENT) {
    add_problem(L, problems, "%s: %s", path, e == EINVAL ? "not a symlink to an IOMMU group" : strerror(e));
  }
  return 1;
}

/* "01:00.0" -> "0000:01:00.0"; raises on anything else that is not an address. */
static const char *check_address(lua_State *L, int arg, char *out) {
  const char *a = luaL_checkstring(L, arg);
  if (strlen(a) == 7) {
    snprintf(out, 13, "0000:%s", a);
  } else {
    snprintf(out, 13, "%s", a);
  }
  for (char *p = out; *p; p++) *p = (char)tolower((unsigned char)*p);
  if (!is_pci_address(out)) luaL_argerror(L, arg, "PCI address expected (0000:01:00.0 or 01:00.0)");
  return out;
}

/* ---- scan ---------------------------------------------------------------- */

static int is_nvidia_node(const char *name, long *num) {
  if (strncmp(name, "nvidia", 6) != 0) return 0;
  char *end;
  if (isdigit((unsigned char)name[6])) {
    *num = strtol(name + 6, &end, 10);
    if (*end == '\0') return 2;
  }
  return 1;
}

/* Numbered nodes (nvidia0, nvidia1, nvidia10) in number order, then the rest. */
static int by_nvidia_node(const void *a, const void *b) {
  const char *x = *(char *const *)a, *y = *(char *const *)b;
  long nx = 0, ny = 0;
  int kx = is_nvidia_node(x, &nx), ky = is_nvidia_node(y, &ny);
  if (kx == 2 && ky == 2) return nx < ny ? -1 : nx > ny;
  if (kx == 2 || ky == 2) return kx == 2 ? -1 : 1;
  return strcmp(x, y);
}

static void scan_nvidia_nodes(lua_State *L, const char *root, int facts) {
  char path[PATH_MAX];
  join(path, sizeof path, root, "dev", NULL, NULL);
  list_dir(L, path); /* no /dev: no nodes */
  struct names *ns = lua_touserdata(L, -1);
  /* Keep only nvidia* that are not directories (nvidia-caps/ holds MIG nodes). */
  size_t k = 0;
  for (size_t i = 0; i < ns->n; i++) {
    long num;
    struct stat st;
    join(path, sizeof path, root, "dev", ns->v[i], NULL);
    if (is_nvidia_node(ns->v[i], &num) && stat(path, &st) == 0 && !S_ISDIR(st.st_mode)) ns->v[k++] = ns->v[i];
    else free(ns->v[i]);
  }
  ns->n = k;
  if (k > 1) qsort(ns->v, k, sizeof *ns->v, by_nvidia_node);
  lua_newtable(L);
  lua_newtable(L);
  int gpus = 0;
  for (size_t i = 0; i < ns->n; i++) {
    long num;
    lua_pushfstring(L, "/dev/%s", ns->v[i]);
    lua_rawseti(L, -3, (lua_Integer)i + 1);
    if (is_nvidia_node(ns->v[i], &num) == 2) {
      lua_pushinteger(L, num);
      lua_rawseti(L, -2, ++gpus);
    }
  }
  lua_setfield(L, facts, "nvidia_gpus");
  lua_setfield(L, facts, "nvidia_devices");
  names_free(ns);
  lua_pop(L, 1);
}

static void scan_cmdline(lua_State *L, const char *root, int facts) {
  char path[PATH_MAX], buf[SMALL_FILE];
  join(path, sizeof path, root, "proc", "cmdline", NULL);
  int on = 0;
  if (read_small(path, buf, sizeof buf) == 0) {
    lua_pushstring(L, buf);
    lua_setfield(L, facts, "cmdline");
    char *save = NULL;
    for (char *tok = strtok_r(buf, " \t\n", &save); tok; tok = strtok_r(NULL, " \t\n", &save))
      if (strcmp(tok, "intel_iommu=on") == 0 || strcmp(tok, "amd_iommu=on") == 0 || strcmp(tok, "iommu=pt") == 0)
        on = 1;
  }
  lua_pushboolean(L, on);
  lua_setfield(L, facts, "iommu_cmdline");
}

static void scan_driver_version(lua_State *L, const char *root, int facts, int problems) {
  char path[PATH_MAX], buf[SMALL_FILE];
  join(path, sizeof path, root, "proc", "driver/nvidia/version", NULL);
  int e = read_small(path, buf, sizeof buf);
  if (e == ENOENT) return;
  if (e != 0) {
    add_problem(L, problems, "%s: %s", path, strerror(e));
    return;
  }
  /* "NVRM version: NVIDIA UNIX x86_64 Kernel Module  580.76.05  Wed ..." */
  char *line = strstr(buf, "NVRM version:");
  if (line) {
    char *eol = strchr(line, '\n');
    if (eol) *eol = '\0';
    char *save = NULL;
    for (char *tok = strtok_r(line + 13, " \t", &save); tok; tok = strtok_r(NULL, " \t", &save)) {
      int dots = 0, ok = isdigit((unsigned char)tok[0]);
      for (char *p = tok; ok && *p; p++) {
        if (*p == '.') dots++;
        else if (!isdigit((unsigned char)*p)) ok = 0;
      }
      if (ok && dots >= 1 && tok[strlen(tok) - 1] != '.') {
        lua_pushstring(L, tok);
        lua_setfield(L, facts, "driver_version");
        return;
      }
    }
  }
  add_problem(L, problems, "%s: %s", path, "no 'NVRM version: ... <version>' line");
}

static void names_add(struct names *ns, const char *s, size_t n) {
  if (ns->n == ns->cap) {
    size_t nc = ns->cap ? ns->cap * 2 : 16;
    char **nv = realloc(ns->v, nc * sizeof *nv);
    if (nv == NULL) return;
    ns->v = nv;
    ns->cap = nc;
  }
  if ((ns->v[ns->n] = strndup(s, n)) != NULL) ns->n++;
}

/* vfio* modules, loaded (/proc/modules) or built in (/sys/module only). */
static void scan_vfio(lua_State *L, const char *root, int facts) {
  char path[PATH_MAX], buf[SMALL_FILE * 8];
  struct names *ns = lua_newuserdatauv(L, sizeof *ns, 0);
  memset(ns, 0, sizeof *ns);
  luaL_setmetatable(L, NAMES_MT);
  join(path, sizeof path, root, "proc", "modules", NULL);
  if (read_small(path, buf, sizeof buf) == 0) {
    char *save = NULL;
    for (char *line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
      size_t n = strcspn(line, " \t");
      if (n >= 4 && strncmp(line, "vfio", 4) == 0) names_add(ns, line, n);
    }
  }
  join(path, sizeof path, root, "sys", "module", NULL);
  list_dir(L, path);
  struct names *sys = lua_touserdata(L, -1);
  for (size_t i = 0; i < sys->n; i++)
    if (strncmp(sys->v[i], "vfio", 4) == 0) names_add(ns, sys->v[i], strlen(sys->v[i]));
  names_free(sys);
  lua_pop(L, 1);
  if (ns->n > 1) qsort(ns->v, ns->n, sizeof *ns->v, by_name);
  lua_newtable(L);
  int k = 0;
  for (size_t i = 0; i < ns->n; i++) {
    if (i > 0 && strcmp(ns->v[i], ns->v[i - 1]) == 0) continue;
    lua_pushstring(L, ns->v[i]);
    lua_rawseti(L, -2, ++k);
  }
  lua_setfield(L, facts, "vfio_modules");
  names_free(ns);
  lua_pop(L, 1);
}

static const char *const scan_options[] = {"root", "all", NULL};

/* scan{root=, all=} */
static int gpu_scan(lua_State *L) {
  if (lua_isnoneornil(L, 1)) {
    lua_settop(L, 0);
    lua_newtable(L);
  }
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_pushnil(L);
  while (lua_next(L, 1)) {
    lua_pop(L, 1);
    int ok = 0;
    if (lua_type(L, -1) == LUA_TSTRING)
      for (int i = 0; scan_options[i]; i++)
        if (strcmp(lua_tostring(L, -1), scan_options[i]) == 0) ok = 1;
    if (!ok) {
      lua_pushvalue(L, -1);
      return luaL_argerror(L, 1, lua_pushfstring(L, "unknown option '%s'", luaL_tolstring(L, -1, NULL)));
    }
  }
  lua_getfield(L, 1, "root");
  if (!lua_isnil(L, -1) && lua_type(L, -1) != LUA_TSTRING) return luaL_error(L, "bad option 'root' (string expected)");
  const char *root = lua_isnil(L, -1) ? "/" : lua_tostring(L, -1);
  lua_getfield(L, 1, "all");
  if (!lua_isnil(L, -1) && !lua_isboolean(L, -1)) return luaL_error(L, "bad option 'all' (boolean expected)");
  int all = lua_toboolean(L, -1);
  lua_pop(L, 1);

  char path[PATH_MAX];
  join(path, sizeof path, root, PCI_DIR, NULL, NULL);
  int e = list_dir(L, path);
  if (e != 0) {
    lua_pushnil(L);
    lua_pushfstring(L, "%s: %s", path, strerror(e));
    return 2;
  }
  int pci = lua_gettop(L);
  struct names *ns = lua_touserdata(L, pci);

  lua_newtable(L);
  int facts = lua_gettop(L);
  lua_newtable(L);
  int problems = lua_gettop(L);
  lua_newtable(L);
  int devices = lua_gettop(L);
  /* Which slots (dddd:bb:dd) hold a display controller: their other
   * functions (HDMI audio, USB-C) go through passthrough with them. */
  lua_newtable(L);
  int slots = lua_gettop(L);
  lua_newtable(L);
  int found = lua_gettop(L); /* address -> device table, all devices */
  for (size_t i = 0; i < ns->n; i++) {
    const char *a = ns->v[i];
    if (!is_pci_address(a)) {
      join(path, sizeof path, root, PCI_DIR, a, NULL);
      add_problem(L, problems, "%s: %s", path, "not a PCI address (dddd:bb:dd.f)");
      continue;
    }
    if (!push_device(L, root, a, problems)) continue;
    lua_getfield(L, -1, "kind");
    if (strcmp(lua_tostring(L, -1), "display") == 0) {
      lua_pushlstring(L, a, 10);
      lua_pushboolean(L, 1);
      lua_rawset(L, slots);
    }
    lua_pop(L, 1);
    lua_setfield(L, found, a);
  }
  int k = 0;
  for (size_t i = 0; i < ns->n; i++) {
    if (lua_getfield(L, found, ns->v[i]) == LUA_TNIL) {
      lua_pop(L, 1);
      continue;
    }
    lua_pushlstring(L, ns->v[i], 10);
    int keep = all || lua_rawget(L, slots) != LUA_TNIL;
    lua_pop(L, 1);
    if (keep) lua_rawseti(L, devices, ++k);
    else lua_pop(L, 1);
  }
  lua_pop(L, 2);
  names_free(ns);
  lua_setfield(L, facts, "devices");

  join(path, sizeof path, root, GROUPS_DIR, NULL, NULL);
  list_dir(L, path);
  ns = lua_touserdata(L, -1);
  lua_pushboolean(L, ns->n > 0);
  lua_setfield(L, facts, "iommu_enabled");
  names_free(ns);
  lua_pop(L, 1);

  scan_cmdline(L, root, facts);
  scan_nvidia_nodes(L, root, facts);
  scan_driver_version(L, root, facts, problems);
  scan_vfio(L, root, facts);
  lua_pushvalue(L, problems);
  lua_setfield(L, facts, "problems");
  lua_pushvalue(L, facts);
  return 1;
}

/* device(root, address) -> device | nil, msg */
static int gpu_device(lua_State *L) {
  const char *root = luaL_checkstring(L, 1);
  char addr[13];
  check_address(L, 2, addr);
  char path[PATH_MAX];
  join(path, sizeof path, root, PCI_DIR, addr, NULL);
  struct stat st;
  if (stat(path, &st) != 0) {
    lua_pushnil(L);
    lua_pushfstring(L, "%s: no such PCI device", path);
    return 2;
  }
  lua_newtable(L);
  int problems = lua_gettop(L);
  if (!push_device(L, root, addr, problems)) {
    lua_pushnil(L);
    lua_rawgeti(L, problems, 1);
    return 2;
  }
  if (lua_rawlen(L, problems) > 0) { /* a bad driver/iommu_group link */
    lua_pushnil(L);
    lua_rawgeti(L, problems, 1);
    return 2;
  }
  return 1;
}

/* iommu_group(root, n) -> {addresses...} | nil, msg */
static int gpu_iommu_group(lua_State *L) {
  const char *root = luaL_checkstring(L, 1);
  lua_Integer n = luaL_checkinteger(L, 2);
  luaL_argcheck(L, n >= 0, 2, "IOMMU group number >= 0 expected");
  char num[32], path[PATH_MAX];
  snprintf(num, sizeof num, "%lld", (long long)n);
  join(path, sizeof path, root, GROUPS_DIR, num, "devices");
  int e = list_dir(L, path);
  if (e != 0) {
    lua_pushnil(L);
    lua_pushfstring(L, "%s: %s", path, e == ENOENT ? "no such IOMMU group" : strerror(e));
    return 2;
  }
  struct names *ns = lua_touserdata(L, -1);
  lua_createtable(L, (int)ns->n, 0);
  for (size_t i = 0; i < ns->n; i++) {
    lua_pushstring(L, ns->v[i]);
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
  names_free(ns);
  return 1;
}

static const luaL_Reg funcs[] = {
    {"scan", gpu_scan}, {"device", gpu_device}, {"iommu_group", gpu_iommu_group}, {NULL, NULL},
};

int luaopen_px_gpu(lua_State *L) {
  if (luaL_newmetatable(L, NAMES_MT)) {
    lua_pushcfunction(L, names_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_pop(L, 1);
  luaL_newlib(L, funcs);
  return 1;
}
