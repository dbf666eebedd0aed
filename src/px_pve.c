/*
 * px.pve: Proxmox VE guest config files, property strings and CLI output.
 *
 *   parse_config(text, kind [, {strict=}])     -> cfg | nil, "line N: msg"
 *   write_config(cfg, kind)                       -> text | nil, msg
 *   parse_prop(str, format) / format_prop(t, format), format_of(key, kind)
 *   parse_size / format_size, encode_text / decode_text, parse_tags /
 *   format_tags, check_snapname
 *   parse_pvesm_status, parse_zfs_get, parse_zfs_list, parse_zpool_status,
 *   parse_listsnapshot, parse_pvesh_json          -> rows | nil, "line N: msg"
 *
 * The config rules follow qemu-server's parse_vm_config/write_vm_config and
 * pve-container's parse_pct_config/write_pct_config; property strings follow
 * PVE::JSONSchema's parse_property_string/print_property_string. Option and
 * sub-key tables come from pve-docs' api-viewer data (option-formats.json)
 * plus the upstream sources for what that data leaves out (which sub-keys
 * are required, minimum/maximum). docs/api/pve.md describes the shapes.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>

#define KIND_LXC 0
#define KIND_QEMU 1

/* ------------------------------------------------------------------ */
/* small string helpers                                                 */

static int is_ws(int c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }
static int is_word(int c) { return isalnum((unsigned char)c) || c == '_'; }
static int is_digit(int c) { return c >= '0' && c <= '9'; }
static int is_lower(int c) { return c >= 'a' && c <= 'z'; }

static int streq_n(const char *s, size_t n, const char *lit) {
  size_t l = strlen(lit);
  return n == l && memcmp(s, lit, l) == 0;
}

static int strieq_n(const char *s, size_t n, const char *lit) {
  size_t l = strlen(lit);
  if (n != l) return 0;
  for (size_t i = 0; i < n; i++)
    if (tolower((unsigned char)s[i]) != tolower((unsigned char)lit[i])) return 0;
  return 1;
}

static int all_ws(const char *s, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (!is_ws(s[i])) return 0;
  return 1;
}

/* Trims both ends in place (pointer + length). */
static void trim(const char **s, size_t *n) {
  while (*n && is_ws((*s)[0])) (*s)++, (*n)--;
  while (*n && is_ws((*s)[*n - 1])) (*n)--;
}

/* Perl truthiness of a string: "" and "0" are false. */
static int perl_true(const char *s, size_t n) { return n > 0 && !(n == 1 && s[0] == '0'); }

/* Perl's `:\s*(.+?)\s*$` after the colon: NULL when it does not match.
 * An all-blank tail matches with its last character as the value. */
static const char *lazy_value(const char *s, size_t n, size_t *vn) {
  if (n == 0) return NULL;
  if (all_ws(s, n)) {
    *vn = 1;
    return s + n - 1;
  }
  trim(&s, &n);
  *vn = n;
  return s;
}

/* "^\d+$" */
static int all_digits(const char *s, size_t n) {
  if (n == 0) return 0;
  for (size_t i = 0; i < n; i++)
    if (!is_digit(s[i])) return 0;
  return 1;
}

static int parse_bool_word(const char *s, size_t n) {
  if (streq_n(s, n, "1") || strieq_n(s, n, "on") || strieq_n(s, n, "yes") || strieq_n(s, n, "true")) return 1;
  if (streq_n(s, n, "0") || strieq_n(s, n, "off") || strieq_n(s, n, "no") || strieq_n(s, n, "false")) return 0;
  return -1;
}

/* "^[+-]?\d+$" as a 64-bit integer; 0 on overflow or mismatch. */
static int parse_int(const char *s, size_t n, long long *out) {
  size_t i = 0;
  int neg = 0;
  if (n && (s[0] == '+' || s[0] == '-')) neg = s[0] == '-', i = 1;
  if (i >= n) return 0;
  unsigned long long v = 0;
  for (; i < n; i++) {
    if (!is_digit(s[i])) return 0;
    unsigned d = (unsigned)(s[i] - '0');
    if (v > (ULLONG_MAX - d) / 10) return 0;
    v = v * 10 + d;
  }
  if (neg) {
    if (v > (unsigned long long)LLONG_MAX + 1ULL) return 0;
    *out = v == (unsigned long long)LLONG_MAX + 1ULL ? LLONG_MIN : -(long long)v;
  } else {
    if (v > (unsigned long long)LLONG_MAX) return 0;
    *out = (long long)v;
  }
  return 1;
}

/* JSONSchema's is_number: ^[+-]?(\d+\.\d+|\d+\.|\.\d+|\d+)([eE][+-]?\d+)?$ */
static int is_number_text(const char *s, size_t n) {
  size_t i = 0, a = 0, b = 0;
  if (i < n && (s[i] == '+' || s[i] == '-')) i++;
  while (i < n && is_digit(s[i])) i++, a++;
  if (i < n && s[i] == '.') {
    i++;
    while (i < n && is_digit(s[i])) i++, b++;
  }
  if (a + b == 0) return 0;
  if (i < n && (s[i] == 'e' || s[i] == 'E')) {
    size_t e = 0;
    i++;
    if (i < n && (s[i] == '+' || s[i] == '-')) i++;
    while (i < n && is_digit(s[i])) i++, e++;
    if (!e) return 0;
  }
  return i == n;
}

static double text_to_double(const char *s, size_t n) {
  char tmp[64];
  if (n >= sizeof tmp) n = sizeof tmp - 1;
  memcpy(tmp, s, n);
  tmp[n] = 0;
  return strtod(tmp, NULL);
}

/* ------------------------------------------------------------------ */
/* description text: PVE::Tools::encode_text / decode_text              */

static const char HEXU[] = "0123456789ABCDEF";

static void encode_text_buf(luaL_Buffer *b, const char *s, size_t n) {
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c < 0x20 || c >= 0x7f || c == ':' || c == '%') {
      luaL_addchar(b, '%');
      luaL_addchar(b, HEXU[c >> 4]);
      luaL_addchar(b, HEXU[c & 15]);
    } else {
      luaL_addchar(b, (char)c);
    }
  }
}

static int hexval(int c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

static void decode_text_buf(luaL_Buffer *b, const char *s, size_t n) {
  for (size_t i = 0; i < n; i++) {
    int h = -1, l = -1;
    if (s[i] == '%' && i + 2 < n) {
      h = hexval(s[i + 1]);
      l = hexval(s[i + 2]);
    }
    if (h >= 0 && l >= 0) {
      luaL_addchar(b, (char)(h * 16 + l));
      i += 2;
    } else {
      luaL_addchar(b, s[i]);
    }
  }
}

static int l_encode_text(lua_State *L) {
  size_t n;
  const char *s = luaL_checklstring(L, 1, &n);
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  encode_text_buf(&b, s, n);
  luaL_pushresult(&b);
  return 1;
}

static int l_decode_text(lua_State *L) {
  size_t n;
  const char *s = luaL_checklstring(L, 1, &n);
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  decode_text_buf(&b, s, n);
  luaL_pushresult(&b);
  return 1;
}

/* ------------------------------------------------------------------ */
/* sizes: PVE::JSONSchema::parse_size / format_size                     */

/* ^(\d+(\.\d+)?)([KMGT])?$ -> bytes; 0 when malformed or too large. */
static int parse_size_text(const char *s, size_t n, long long *out) {
  size_t i = 0;
  while (i < n && is_digit(s[i])) i++;
  if (i == 0) return 0;
  size_t ipart = i, frac0 = 0, frac1 = 0;
  if (i < n && s[i] == '.') {
    frac0 = ++i;
    while (i < n && is_digit(s[i])) i++;
    frac1 = i;
    if (frac1 == frac0) return 0;
  }
  int shift = 0;
  if (i < n) {
    switch (s[i]) {
      case 'K': shift = 10; break;
      case 'M': shift = 20; break;
      case 'G': shift = 30; break;
      case 'T': shift = 40; break;
      default: return 0;
    }
    i++;
  }
  if (i != n) return 0;
  if (!frac0) {
    long long v;
    if (!parse_int(s, ipart, &v)) return 0;
    if (v > (LLONG_MAX >> shift)) return 0;
    *out = v << shift;
    return 1;
  }
  double d = text_to_double(s, frac1) * (double)(1LL << shift);
  if (!(d < 9.2e18)) return 0;
  *out = (long long)d;
  return 1;
}

static void push_format_size(lua_State *L, long long size) {
  static const char units[] = "KMGT";
  if (size <= 0) {
    lua_pushfstring(L, "%I", (lua_Integer)size);
    return;
  }
  long long v = size;
  int u = -1;
  while (u < 3 && v % 1024 == 0) v /= 1024, u++;
  if (u < 0)
    lua_pushfstring(L, "%I", (lua_Integer)v);
  else
    lua_pushfstring(L, "%I%c", (lua_Integer)v, units[u]);
}

static int l_parse_size(lua_State *L) {
  size_t n;
  const char *s = luaL_checklstring(L, 1, &n);
  long long v;
  if (!parse_size_text(s, n, &v)) {
    lua_pushnil(L);
    lua_pushfstring(L, "value '%s' is not a valid disk size", s);
    return 2;
  }
  lua_pushinteger(L, (lua_Integer)v);
  return 1;
}

static int l_format_size(lua_State *L) {
  lua_Integer v = luaL_checkinteger(L, 1);
  luaL_argcheck(L, v >= 0, 1, "size must not be negative");
  push_format_size(L, (long long)v);
  return 1;
}

/* ------------------------------------------------------------------ */
/* tags (pve-tag-list) and snapshot names                               */

/* [a-z0-9_][a-z0-9_\-\+\.]*, case-insensitive */
static int valid_tag(const char *s, size_t n) {
  if (n == 0 || !(is_word(s[0]))) return 0;
  for (size_t i = 1; i < n; i++)
    if (!(is_word(s[i]) || s[i] == '-' || s[i] == '+' || s[i] == '.')) return 0;
  return 1;
}

static int is_tag_sep(int c) { return c == ',' || c == ';' || c == ' '; }

/* Checks a whole tag list; returns 0 and the bad tag's span on failure. */
static int valid_tag_list(const char *s, size_t n, const char **bad, size_t *badn) {
  size_t i = 0;
  int any = 0;
  while (i < n) {
    while (i < n && is_tag_sep(s[i])) i++;
    size_t j = i;
    while (j < n && !is_tag_sep(s[j])) j++;
    if (j > i) {
      any = 1;
      if (!valid_tag(s + i, j - i)) {
        *bad = s + i;
        *badn = j - i;
        return 0;
      }
    }
    i = j;
  }
  if (!any) {
    *bad = s;
    *badn = n;
    return 0;
  }
  return 1;
}

static int l_parse_tags(lua_State *L) {
  size_t n;
  const char *s = luaL_checklstring(L, 1, &n);
  const char *bad;
  size_t badn;
  if (n > 0 && !all_ws(s, n) && !valid_tag_list(s, n, &bad, &badn)) {
    lua_pushnil(L);
    lua_pushfstring(L, "invalid tag '%s'", lua_pushlstring(L, bad, badn));
    return 2;
  }
  lua_newtable(L);
  lua_Integer k = 0;
  size_t i = 0;
  while (i < n) {
    while (i < n && is_tag_sep(s[i])) i++;
    size_t j = i;
    while (j < n && !is_tag_sep(s[j])) j++;
    if (j > i) {
      lua_pushlstring(L, s + i, j - i);
      lua_rawseti(L, -2, ++k);
    }
    i = j;
  }
  return 1;
}

/* Joins tags with ';' as Proxmox stores them (unique, in the given order). */
static int l_format_tags(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_Integer n = (lua_Integer)lua_rawlen(L, 1);
  lua_newtable(L); /* seen */
  int seen = lua_gettop(L);
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  int first = 1;
  for (lua_Integer i = 1; i <= n; i++) {
    lua_rawgeti(L, 1, i);
    size_t tn;
    const char *t = lua_tolstring(L, -1, &tn);
    if (lua_type(L, -1) != LUA_TSTRING || !valid_tag(t, tn)) {
      return luaL_error(L, "format_tags: element %d is not a valid tag", (int)i);
    }
    lua_pushvalue(L, -1);
    if (lua_rawget(L, seen) != LUA_TNIL) {
      lua_pop(L, 2);
      continue;
    }
    lua_pop(L, 1);
    lua_pushvalue(L, -1);
    lua_pushboolean(L, 1);
    lua_rawset(L, seen);
    if (!first) { /* the tag is on top: buffer calls other than addvalue need the buffer there */
      lua_pushliteral(L, ";");
      lua_insert(L, -2);
      lua_concat(L, 2);
    }
    first = 0;
    luaL_addvalue(&b); /* pops the tag */
  }
  luaL_pushresult(&b);
  return 1;
}

/* Snapshot names: pve-configid syntax, at most 40 characters, not a
 * reserved name ('current'; 'pending' for VMs, any case; 'vzdump' is
 * taken by backups of CTs). */
static const char *snapname_problem(const char *s, size_t n, int kind) {
  if (n < 2 || !isalpha((unsigned char)s[0])) return "invalid snapshot name";
  for (size_t i = 1; i < n; i++)
    if (!(isalnum((unsigned char)s[i]) || s[i] == '_' || s[i] == '-')) return "invalid snapshot name";
  if (n > 40) return "snapshot name is longer than 40 characters";
  if (streq_n(s, n, "current")) return "snapshot name 'current' is reserved";
  if (kind == KIND_QEMU && strieq_n(s, n, "pending")) return "snapshot name 'pending' is reserved";
  if (kind == KIND_LXC && streq_n(s, n, "vzdump")) return "snapshot name 'vzdump' is reserved for backups";
  return NULL;
}

static int check_kind(lua_State *L, int idx) {
  static const char *const kinds[] = {"lxc", "qemu", NULL};
  return luaL_checkoption(L, idx, NULL, kinds);
}

static int l_check_snapname(lua_State *L) {
  size_t n;
  const char *s = luaL_checklstring(L, 1, &n);
  int kind = check_kind(L, 2);
  const char *p = snapname_problem(s, n, kind);
  if (p) {
    lua_pushnil(L);
    lua_pushstring(L, p);
    return 2;
  }
  lua_pushboolean(L, 1);
  return 1;
}

/* ------------------------------------------------------------------ */
/* value checks used by property-string formats (NULL = valid)          */

typedef const char *(*vcheck)(const char *s, size_t n);

#define BAD_PATTERN "value does not match the regex pattern"

static int copy_z(char *dst, size_t cap, const char *s, size_t n) {
  if (n >= cap || memchr(s, 0, n)) return 0;
  memcpy(dst, s, n);
  dst[n] = 0;
  return 1;
}

static int ip_ok(int af, const char *s, size_t n) {
  char tmp[64];
  unsigned char out[16];
  return copy_z(tmp, sizeof tmp, s, n) && inet_pton(af, tmp, out) == 1;
}

/* ADDR/PREFIX */
static int cidr_ok(int af, const char *s, size_t n) {
  const char *slash = memchr(s, '/', n);
  if (!slash) return 0;
  size_t an = (size_t)(slash - s), pn = n - an - 1;
  long long p;
  if (!all_digits(slash + 1, pn) || pn > 3 || !parse_int(slash + 1, pn, &p)) return 0;
  if (p > (af == AF_INET ? 32 : 128)) return 0;
  return ip_ok(af, s, an);
}

static const char *v_ipv4(const char *s, size_t n) {
  return ip_ok(AF_INET, s, n) ? NULL : "invalid format - value does not look like a valid IPv4 address";
}
static const char *v_ipv6(const char *s, size_t n) {
  return ip_ok(AF_INET6, s, n) ? NULL : "invalid format - value does not look like a valid IPv6 address";
}
static const char *v_ipv4cfg_lxc(const char *s, size_t n) {
  if (streq_n(s, n, "dhcp") || streq_n(s, n, "manual") || cidr_ok(AF_INET, s, n)) return NULL;
  return "invalid format - value does not look like a valid IPv4 network configuration";
}
static const char *v_ipv6cfg_lxc(const char *s, size_t n) {
  if (streq_n(s, n, "auto") || streq_n(s, n, "dhcp") || streq_n(s, n, "manual") || cidr_ok(AF_INET6, s, n))
    return NULL;
  return "invalid format - value does not look like a valid IPv6 network configuration";
}
static const char *v_ipv4cfg_qemu(const char *s, size_t n) {
  if (streq_n(s, n, "dhcp") || cidr_ok(AF_INET, s, n)) return NULL;
  return "invalid format - value does not look like a valid IPv4 network configuration";
}
static const char *v_ipv6cfg_qemu(const char *s, size_t n) {
  if (streq_n(s, n, "dhcp") || streq_n(s, n, "auto") || cidr_ok(AF_INET6, s, n)) return NULL;
  return "invalid format - value does not look like a valid IPv6 network configuration";
}

/* [-_.\w\d]+ */
static const char *v_bridge(const char *s, size_t n) {
  if (n == 0) return BAD_PATTERN;
  for (size_t i = 0; i < n; i++)
    if (!(is_word(s[i]) || s[i] == '-' || s[i] == '.')) return BAD_PATTERN;
  return NULL;
}

static const char *v_digits(const char *s, size_t n) { return all_digits(s, n) ? NULL : BAD_PATTERN; }

/* \d+(?:-\d+)? */
static const char *v_trunk_range(const char *s, size_t n) {
  const char *dash = memchr(s, '-', n);
  if (!dash) return v_digits(s, n);
  size_t a = (size_t)(dash - s);
  return all_digits(s, a) && all_digits(dash + 1, n - a - 1) ? NULL : BAD_PATTERN;
}

static const char *v_mountopt(const char *s, size_t n) {
  static const char *const opts[] = {"discard", "lazytime", "noatime", "nodev", "noexec", "nosuid", NULL};
  for (int i = 0; opts[i]; i++)
    if (streq_n(s, n, opts[i])) return NULL;
  return BAD_PATTERN;
}

/* one element of [a-zA-Z0-9_; ]+ split on ';' */
static const char *v_fstype(const char *s, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (!(is_word(s[i]) || s[i] == ' ')) return BAD_PATTERN;
  return NULL;
}

/* 0[0-7]{3} */
static const char *v_mode(const char *s, size_t n) {
  if (n != 4 || s[0] != '0') return BAD_PATTERN;
  for (size_t i = 1; i < 4; i++)
    if (s[i] < '0' || s[i] > '7') return BAD_PATTERN;
  return NULL;
}

/* unicast MAC: XX:XX:XX:XX:XX:XX with the group bit clear */
static const char *v_mac(const char *s, size_t n) {
  static const char *msg = "invalid format - value does not look like a valid unicast MAC address";
  if (n != 17) return msg;
  for (size_t i = 0; i < 17; i++) {
    if (i % 3 == 2) {
      if (s[i] != ':') return msg;
    } else if (hexval(s[i]) < 0) {
      return msg;
    }
  }
  if (hexval(s[1]) & 1) return msg;
  return NULL;
}

/* pve-lxc-mp-string: no /./, /../, trailing /. or /.., leading ../ */
static const char *v_mp_string(const char *s, size_t n) {
  static const char *msg = "invalid format - path contains illegal character sequences";
  if (n == 0) return msg;
  if (n >= 3 && memcmp(s, "../", 3) == 0) return msg;
  for (size_t i = 0; i < n; i++) {
    if (s[i] != '/' || i + 1 >= n || s[i + 1] != '.') continue;
    size_t j = i + 2;
    if (j < n && s[j] == '.') j++;
    if (j == n || s[j] == '/') return msg;
  }
  return NULL;
}

/* pve-lxc-dev-string: /dev/..., no /./ or /../ components */
static const char *v_dev_string(const char *s, size_t n) {
  static const char *msg = "invalid format - not a valid device path";
  if (n < 6 || memcmp(s, "/dev/", 5) != 0) return msg;
  for (size_t i = 0; i < n; i++) {
    if (s[i] != '/' || i + 1 >= n || s[i + 1] != '.') continue;
    size_t j = i + 2;
    if (j < n && s[j] == '.') j++;
    if (j == n || s[j] == '/') return msg;
  }
  return NULL;
}

/* pve-volume-id: ^([a-z][a-z0-9\-\_\.]*[a-z0-9]):(.+)$ */
static int volid_ok(const char *s, size_t n) {
  const char *colon = memchr(s, ':', n);
  if (!colon) return 0;
  size_t sn = (size_t)(colon - s);
  if (sn < 2 || !is_lower(s[0])) return 0;
  for (size_t i = 1; i < sn; i++)
    if (!(is_lower(s[i]) || is_digit(s[i]) || s[i] == '-' || s[i] == '_' || s[i] == '.')) return 0;
  if (!(is_lower(s[sn - 1]) || is_digit(s[sn - 1]))) return 0;
  return n - sn - 1 > 0;
}

static const char *v_volid(const char *s, size_t n) {
  return volid_ok(s, n) ? NULL : "invalid format - unable to parse volume ID";
}
static const char *v_volid_or_qmpath(const char *s, size_t n) {
  if (streq_n(s, n, "none") || streq_n(s, n, "cdrom") || (n && s[0] == '/') || volid_ok(s, n)) return NULL;
  return "invalid format - unable to parse volume ID";
}
static const char *v_volid_or_abspath(const char *s, size_t n) {
  if ((n && s[0] == '/') || volid_ok(s, n)) return NULL;
  return "invalid format - unable to parse volume ID";
}

/* urlencoded: [-%a-zA-Z0-9_.!~*'()]* */
static const char *v_urlencoded(const char *s, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (!(isalnum((unsigned char)s[i]) || strchr("-%_.!~*'()", s[i]))) return "invalid format - invalid urlencoded string";
  return NULL;
}

static const char *v_wwn(const char *s, size_t n) {
  if (n != 18 || s[0] != '0' || s[1] != 'x') return BAD_PATTERN;
  for (size_t i = 2; i < n; i++)
    if (hexval(s[i]) < 0) return BAD_PATTERN;
  return NULL;
}

static const char *vendor_like(const char *s, size_t n, size_t max) {
  if (n > max) return BAD_PATTERN;
  for (size_t i = 0; i < n; i++)
    if (!(isalnum((unsigned char)s[i]) || s[i] == '-' || s[i] == '_' || is_ws(s[i]))) return BAD_PATTERN;
  return NULL;
}
static const char *v_vendor(const char *s, size_t n) { return vendor_like(s, n, 8); }
static const char *v_product(const char *s, size_t n) { return vendor_like(s, n, 16); }

/* pve-configid: ^[a-z][a-z0-9_-]+$ (any case) */
static const char *v_configid(const char *s, size_t n) {
  if (n < 2 || !isalpha((unsigned char)s[0])) return "invalid format - invalid configuration ID";
  for (size_t i = 1; i < n; i++)
    if (!(isalnum((unsigned char)s[i]) || s[i] == '_' || s[i] == '-')) return "invalid format - invalid configuration ID";
  return NULL;
}

/* PCI id: (?:[a-f0-9]{4,}:)?[a-f0-9]{2}:[a-f0-9]{2}(?:\.[a-f0-9])? */
static const char *v_pci_id(const char *s, size_t n) {
  static const char *msg = "invalid format - not a valid PCI id";
  size_t i = 0, k = 0;
  const char *c1 = memchr(s, ':', n);
  if (!c1) return msg;
  if (memchr(c1 + 1, ':', n - (size_t)(c1 + 1 - s))) { /* domain present */
    for (; s + i < c1; i++)
      if (hexval(s[i]) < 0) return msg;
    if (i < 4) return msg;
    i++;
  }
  for (k = 0; k < 2; k++, i++)
    if (i >= n || hexval(s[i]) < 0) return msg;
  if (i >= n || s[i++] != ':') return msg;
  for (k = 0; k < 2; k++, i++)
    if (i >= n || hexval(s[i]) < 0) return msg;
  if (i == n) return NULL;
  if (s[i] != '.' || i + 2 != n || hexval(s[i + 1]) < 0) return msg;
  return NULL;
}

/* 0x followed by 4 hex digits (vendor-id, device-id ...) */
static const char *v_hexid(const char *s, size_t n) {
  if (n != 6 || s[0] != '0' || s[1] != 'x') return BAD_PATTERN;
  for (size_t i = 2; i < 6; i++)
    if (hexval(s[i]) < 0) return BAD_PATTERN;
  return NULL;
}

/* [acdn]{1,4} */
static const char *v_boot_legacy(const char *s, size_t n) {
  if (n < 1 || n > 4) return BAD_PATTERN;
  for (size_t i = 0; i < n; i++)
    if (!strchr("acdn", s[i]) || !s[i]) return BAD_PATTERN;
  return NULL;
}

/* one boot device: a disk, netN, hostpciN or usbN */
static const char *v_boot_dev(const char *s, size_t n) {
  static const char *const bases[] = {"ide", "sata", "scsi", "virtio", "efidisk", "tpmstate", "net", "hostpci", "usb", NULL};
  size_t i = 0;
  while (i < n && is_lower(s[i])) i++;
  if (i == 0 || i == n || !all_digits(s + i, n - i)) return "invalid format - invalid boot device";
  for (int b = 0; bases[b]; b++)
    if (streq_n(s, i, bases[b])) return NULL;
  return "invalid format - invalid boot device";
}

/* ------------------------------------------------------------------ */
/* property-string formats                                              */

enum { T_STR, T_BOOL, T_INT, T_NUM, T_ALIAS };
enum {
  F_DEFKEY = 1,  /* a bare value goes to this key */
  F_REQ = 2,     /* not optional */
  F_LIST = 4,    /* ';'-separated list, a Lua list */
  F_SIZE = 8,    /* disk-size: 4G, 707456K; a byte count formats as such */
  F_NAMEDDEF = 16 /* default key, but format_prop writes key=value */
};
#define NOMIN LLONG_MIN
#define NOMAX LLONG_MAX

struct subkey {
  const char *name;
  unsigned char nlen, type, flags;
  const char *alias;    /* T_ALIAS: the key this one stands for */
  const char *keyalias; /* T_ALIAS: key that stores this key's own name */
  const char *const *enums;
  vcheck check; /* applied to each element of a list */
  long long min, max;
};

#define K(name, type, flags, enums, check, min, max) \
  {name, sizeof(name) - 1, type, flags, NULL, NULL, enums, check, min, max}
#define A(name, target) {name, sizeof(name) - 1, T_ALIAS, 0, target, NULL, NULL, NULL, NOMIN, NOMAX}
#define KA(name, target, ka) {name, sizeof(name) - 1, T_ALIAS, 0, target, ka, NULL, NULL, NOMIN, NOMAX}

/* Generated from option-formats.json (pve-docs e5010dce); required keys
 * and limits from pve-container / qemu-server. Keys sorted bytewise. */
static const char *const EN_VETH[] = {"veth", NULL};
static const char *const EN_NIC[] = {"e1000", "e1000-82540em", "e1000-82544gc", "e1000-82545em", "e1000e", "i82551", "i82557b", "i82559er", "ne2k_isa", "ne2k_pci", "pcnet", "rtl8139", "virtio", "vmxnet3", NULL};
static const char *const EN_AIO[] = {"native", "threads", "io_uring", NULL};
static const char *const EN_CACHE[] = {"none", "writethrough", "writeback", "unsafe", "directsync", NULL};
static const char *const EN_DISCARD[] = {"ignore", "on", NULL};
static const char *const EN_DISKFMT[] = {"raw", "qcow", "qed", "qcow2", "vmdk", "cloop", NULL};
static const char *const EN_MEDIA[] = {"cdrom", "disk", NULL};
static const char *const EN_RERROR[] = {"ignore", "report", "stop", NULL};
static const char *const EN_WERROR[] = {"enospc", "ignore", "report", "stop", NULL};
static const char *const EN_EFITYPE[] = {"2m", "4m", NULL};
static const char *const EN_MSCERT[] = {"2011", "2023", "2023w", "2023k", NULL};
static const char *const EN_TPMFMT[] = {"raw", "qcow2", "vmdk", NULL};
static const char *const EN_TPMVER[] = {"v1.2", "v2.0", NULL};
static const char *const EN_AGENTTYPE[] = {"virtio", "isa", NULL};
static const char *const EN_CLIPBOARD[] = {"vnc", NULL};
static const char *const EN_VGA[] = {"cirrus", "qxl", "qxl2", "qxl3", "qxl4", "none", "serial0", "serial1", "serial2", "serial3", "std", "virtio", "virtio-gl", "vmware", NULL};
static const struct subkey lxc_net_keys[] = {
    K("bridge", T_STR, 0, NULL, v_bridge, NOMIN, NOMAX),
    K("firewall", T_BOOL, 0, NULL, NULL, NOMIN, NOMAX),
    K("gw", T_STR, 0, NULL, v_ipv4, NOMIN, NOMAX),
    K("gw6", T_STR, 0, NULL, v_ipv6, NOMIN, NOMAX),
    K("host-managed", T_BOOL, 0, NULL, NULL, NOMIN, NOMAX),
    K("hwaddr", T_STR, 0, NULL, v_mac, NOMIN, NOMAX),
    K("ip", T_STR, 0, NULL, v_ipv4cfg_lxc, NOMIN, NOMAX),
    K("ip6", T_STR, 0, NULL, v_ipv6cfg_lxc, NOMIN, NOMAX),
    K("link_down", T_BOOL, 0, NULL, NULL, NOMIN, NOMAX),
    K("mtu", T_INT, 0, NULL, NULL, 64, 65535),
    K("name", T_STR, F_REQ, NULL, v_bridge, NOMIN, NOMAX),
    K("rate", T_NUM, 0, NULL, NULL, 0, NOMAX),
    K("tag", T_INT, 0, NULL, NULL, 1, 4094),
    K("trunks", T_STR, F_LIST, NULL, v_digits, NOMIN, NOMAX),
    K("type", T_STR, 0, EN_VETH, NULL, NOMIN, NOMAX),
};
static const struct subkey lxc_mp_keys[] = {
    K("acl", T_BOOL, 0, NULL, NULL, NOMIN, NOMAX),
    K("backup", T_BOOL, 0, NULL, NULL, NOMIN, NOMAX),
    K("keepattrs", T_BOOL, 0, NULL, NULL, NOMIN, NOMAX),
    K("mountoptions", T_STR, F_LIST, NULL, v_mountopt, NOMIN, NOMAX),
    K("mp", T_STR, F_REQ, NULL, v_mp_string, NOMIN, NOMAX),
    K("quota", T_BOOL, 0, NULL, NULL, NOMIN, NOMAX),
    K("replicate", T_BOOL, 0, NULL, NULL, NOMIN, NOMAX),
    K("ro", T_BOOL, 0, NULL, NULL, NOMIN, NOMAX),
    K("shared", T_BOOL, 0, NULL, NULL, NOMIN, NOMAX),
    K("size", T_STR, F_SIZE, NULL, NULL, NOMIN, NOMAX),
    K("volume", T_STR, F_DEFKEY|F_REQ, NULL, v_mp_string, NOMIN, NOMAX),
};
static const struct subkey lxc_rootfs_keys[] = {
    K("acl", T_BOOL, 0, NULL, NULL, NOMIN, NOMAX),
    K("mountoptions", T_STR, F_LIST, NULL, v_mountopt, NOMIN, NOMAX),
    K("quota", T_BOOL, 0, NULL, NULL, NOMIN, NOMAX),
    K("replicate", T_BOOL, 0, NULL, NULL, NOMIN, NOMAX),
    K("ro", T_BOOL, 0, NULL, NULL, NOMIN, NOMAX),
    K("shared", T_BOOL, 0, NULL, NULL, NOMIN, NOMAX),
    K("size", T_STR, F_SIZE, NULL, NULL, NOMIN, NOMAX),
    K("volume", T_STR, F_DEFKEY|F_REQ, NULL, v_mp_string, NOMIN, NOMAX),
};
static const struct subkey lxc_features_keys[] = {
    K("force_rw_sys", T_BOOL, 0, NULL, NULL, NOMIN, NOMAX),
    K("fuse", T_BOOL, 0, NULL, NULL, NOMIN, NOMAX),
    K("keyctl", T_BOOL, 0, NULL, NULL, NOMIN, NOMAX),
    K("mknod", T_BOOL, 0, NULL, NULL, NOMIN, NOMAX),
    K("mount", T_STR, F_LIST, NULL, v_fstype, NOMIN, NOMAX),
    K("nesting", T_BOOL, 0, NULL, NULL, NOMIN, NOMAX),
};
static const struct subkey lxc_dev_keys[] = {
    K("deny-write", T_BOOL, 0, NULL, NULL, NOMIN, NOMAX),
    K("gid", T_INT, 0, NULL, NULL, 0, NOMAX),
    K("mode", T_STR, 0, NULL, v_mode, NOMIN, NOMAX),
    K("path", T_STR, F_DEFKEY, NULL, v_dev_string, NOMIN, NOMAX),
    K("uid", T_INT, 0, NULL, NULL, 0, NOMAX),
};
static const struct subkey lxc_unused_keys[] = {
    K("volume", T_STR, F_DEFKEY|F_REQ, NULL, v_volid, NOMIN, NOMAX),
};
static const struct subkey qemu_net_keys[] = {
    K("bridge", T_STR, 0, NULL, v_bridge, NOMIN, NOMAX),
    KA("e1000", "macaddr", "model"),
    KA("e1000-82540em", "macaddr", "model"),
    KA("e1000-82544gc", "macaddr", "model"),
    KA("e1000-82545em", "macaddr", "model"),
    KA("e1000e", "macaddr", "model"),
    K("firewall", T_BOOL, 0, NULL, NULL, NOMIN, NOMAX),
    KA("i82551", "macaddr", "model"),
    KA("i82557b", "macaddr", "model"),
    KA("i82559er", "macaddr", "model"),
    K("link_down", T_BOOL, 0, NULL, NULL, NOMIN, NOMAX),
    K("macaddr", T_STR, 0, NULL, v_mac, NOMIN, NOMAX),
    K("model", T_STR, F_DEFKEY|F_REQ, EN_NIC, NULL, NOMIN, NOMAX),
    K("mtu", T_INT, 0, NULL, NULL, 1, 65520),
    KA("ne2k_isa", "macaddr", "model"),
    KA("ne2k_pci", "macaddr", "model"),
    KA("pcnet", "macaddr", "model"),
    K("queues", T_INT, 0, NULL, NULL, 0, 64),
    K("rate", T_NUM, 0, NULL, NULL, 0, NOMAX),
    KA("rtl8139", "macaddr", "model"),
    K("tag", T_INT, 0, NULL, NULL, 1, 4094),
    K("trunks", T_STR, F_LIST, NULL, v_trunk_range, NOMIN, NOMAX),
    KA("virtio", "macaddr", "model"),
    KA("vmxnet3", "macaddr", "model"),
};
static const struct subkey qemu_ide_keys[] = {
    K("aio", T_STR, 0, EN_AIO, NULL, NOMIN, NOMAX),
    K("backup", T_BOOL, 0, NULL, NULL, NOMIN, NOMAX),
    K("bps", T_INT, 0, NULL, NULL, NOMIN, NOMAX),
    K("bps_max_length", T_INT, 0, NULL, NULL, NOMIN, NOMAX),
    K("bps_rd", T_INT, 0, NULL, NULL, NOMIN, NOMAX),
    A("bps_rd_length", "bps_rd_max_length"),
    K("bps_rd_max_length", T_INT, 0, NULL, NULL, NOMIN, NOMAX),
    K("bps_wr", T_INT, 0, NULL, NULL, NOMIN, NOMAX),
    A("bps_wr_length", "bps_wr_max_length"),
    K("bps_wr_max_length", T_INT, 0, NULL, NULL, NOMIN, NOMAX),
    K("cache", T_STR, 0, EN_CACHE, NULL, NOMIN, NOMAX),
    K("detect_zeroes", T_BOOL, 0, NULL, NULL, NOMIN, NOMAX),
    K("discard", T_STR, 0, EN_DISCARD, NULL, NOMIN, NOMAX),
    K("file", T_STR, F_DEFKEY|F_REQ, NULL, v_volid_or_qmpath, NOMIN, NOMAX),
    K("format", T_STR, 0, EN_DISKFMT, NULL, NOMIN, NOMAX),
    K("import-from", T_STR, 0, NULL, v_volid_or_abspath, NOMIN, NOMAX),
    K("iops", T_INT, 0, NULL, NULL, NOMIN, NOMAX),
    K("iops_max", T_INT, 0, NULL, NULL, NOMIN, NOMAX),
    K("iops_max_length", T_INT, 0, NULL, NULL, NOMIN, NOMAX),
    K("iops_rd", T_INT, 0, NULL, NULL, NOMIN, NOMAX),
    A("iops_rd_length", "iops_rd_max_length"),
    K("iops_rd_max", T_INT, 0, NULL, NULL, NOMIN, NOMAX),
    K("iops_rd_max_length", T_INT, 0, NULL, NULL, NOMIN, NOMAX),
    K("iops_wr", T_INT, 0, NULL, NULL, NOMIN, NOMAX),
    A("iops_wr_length", "iops_wr_max_length"),
    K("iops_wr_max", T_INT, 0, NULL, NULL, NOMIN, NOMAX),
    K("iops_wr_max_length", T_INT, 0, NULL, NULL, NOMIN, NOMAX),
    K("mbps", T_NUM, 0, NULL, NULL, NOMIN, NOMAX),
    K("mbps_max", T_NUM, 0, NULL, NULL, NOMIN, NOMAX),
    K("mbps_rd", T_NUM, 0, NULL, NULL, NOMIN, NOMAX),
    K("mbps_rd_max", T_NUM, 0, NULL, NULL, NOMIN, NOMAX),
    K("mbps_wr", T_NUM, 0, NULL, NULL, NOMIN, NOMAX),
    K("mbps_wr_max", T_NUM, 0, NULL, NULL, NOMIN, NOMAX),
    K("media", T_STR, 0, EN_MEDIA, NULL, NOMIN, NOMAX),
    K("model", T_STR, 0, NULL, v_urlencoded, NOMIN, NOMAX),
    K("replicate", T_BOOL, 0, NULL, NULL, NOMIN, NOMAX),
    K("rerror", T_STR, 0, EN_RERROR, NULL, NOMIN, NOMAX),
    K("serial", T_STR, 0, NULL, v_urlencoded, NOMIN, NOMAX),
    K("shared", T_BOOL, 0, NULL, NULL, NOMIN, NOMAX),
    K("size", T_STR, F_SIZE, NULL, NULL, NOMIN, NOMAX),
    K("snapshot", T_BOOL, 0, NULL, NULL, NOMIN, NOMAX),
    K("ssd", T_BOOL, 0, NULL, NULL, NOMIN, NOMAX),
    A("volume", "file"),
    K("werror", T_STR, 0, EN_WERROR, NULL, NOMIN, NOMAX),
    K("wwn", T_STR, 0, NULL, v_wwn, NOMIN, NOMAX),
};
static const struct subkey qemu_sata_keys[] = {
    K("aio", T_STR, 0, EN_AIO, NULL, NOMIN, NOMAX),
    K("backup", T_BOOL, 0, NULL, NULL, NOMIN, NOMAX),
    K("bps", T_INT, 0, NULL, NULL, NOMIN, NOMAX),
    K("bps_max_length", T_INT, 0, NULL, NULL, NOMIN, NOMAX),
    K("bps_rd", T_INT, 0, NULL, NULL, NOMIN, NOMAX),
    A("bps_rd_length", "bps_rd_max_length"),
    K("bps_rd_max_length", T_INT, 0, NULL, NULL, NOMIN, NOMAX),
    K("bps_wr", T_INT, 0, NULL, NULL, NOMIN, NOMAX),
    A("bps_wr_length", "bps_wr_max_length"),
    K("bps_wr_max_length", T_INT, 0, NULL, NULL, NOMIN, NOMAX),
    K("cache", T_STR, 0, EN_CACHE, NULL, NOMIN, NOMAX),
    K("detect_zeroes", T_BOOL, 0, NULL, NULL, NOMIN, NOMAX),
    K("discard", T_STR, 0, EN_DISCARD, NULL, NOMIN, NOMAX),
    K("file", T_STR, F_DEFKEY|F_REQ, NULL, v_volid_or_qmpath, NOMIN, NOMAX),
    K("format", T_STR, 0, EN_DISKFMT, NULL, NOMIN, NOMAX),
    K("import-from", T_STR, 0, NULL, v_volid_or_abspath, NOMIN, NOMAX),
    K("iops", T_INT, 0, NULL, NULL, NOMIN, NOMAX),
    K("iops_max", T_INT, 0, NULL, NULL, NOMIN, NOMAX),
    K("iops_max_length", T_INT, 0, NULL, NULL, NOMIN, NOMAX),
    K("iops_rd", T_INT, 0, NULL, NULL, NOMIN, NOMAX),
    A("iops_rd_length", "iops_rd_max_length"),
    K("iops_rd_max", T_INT, 0, NULL, NULL, NOMIN, NOMAX),
    K("iops_rd_max_length", T_INT, 0, NULL, NULL, NOMIN, NOMAX),
    K("iops_wr", T_INT, 0, NULL, NULL, NOMIN, NOMAX),
    A("iops_wr_length", "iops_wr_max_length"),
    K("iops_wr_max", T_INT, 0, NULL, NULL, NOMIN, NOMAX),
    K("iops_wr_max_length", T_INT, 0, NULL, NULL, NOMIN, NOMAX),
    K("mbps", T_NUM, 0, NULL, NULL, NOMIN, NOMAX),
    K("mbps_max", T_NUM, 0, NULL, NULL, NOMIN, NOMAX),
    K("mbps_rd", T_NUM, 0, NULL, NULL, NOMIN, NOMAX),
    K("mbps_rd_max", T_NUM, 0, NULL, NULL, NOMIN, NOMAX),
    K("mbps_wr", T_NUM, 0, NULL, NULL, NOMIN, NOMAX),
    K("mbps_wr_max", T_NUM, 0, NULL, NULL, NOMIN, NOMAX),
    K("media", T_STR, 0, EN_MEDIA, NULL, NOMIN, NOMAX),
    K("replicate", T_BOOL, 0, NULL, NULL, NOMIN, NOMAX),
    K("rerror", T_STR, 0, EN_RERROR, NULL, NOMIN, NOMAX),
    K("serial", T_STR, 0, NULL, v_urlencoded, NOMIN, NOMAX),
    K("shared", T_BOOL, 0, NULL, NULL, NOMIN, NOMAX),
    K("size", T_STR, F_SIZE, NULL, NULL, NOMIN, NOMAX),
    K("snapshot", T_BOOL, 0, NULL, NULL, NOMIN, NOMAX),
    K("ssd", T_BOOL, 0, NULL, NULL, NOMIN, NOMAX),
    A("volume", "file"),
    K("werror", T_STR, 0, EN_WERROR, NULL, NOMIN, NOMAX),
    K("wwn", T_STR, 0, NULL, v_wwn, NOMIN, NOMAX),
};
static const struct subkey qemu_scsi_keys[] = {
    K("aio", T_STR, 0, EN_AIO, NULL, NOMIN, NOMAX),
    K("backup", T_BOOL, 0, NULL, NULL, NOMIN, NOMAX),
    K("bps", T_INT, 0, NULL, NULL, NOMIN, NOMAX),
    K("bps_max_length", T_INT, 0, NULL, NULL, NOMIN, NOMAX),
    K("bps_rd", T_INT, 0, NULL, NULL, NOMIN, NOMAX),
    A("bps_rd_length", "bps_rd_max_length"),
    K("bps_rd_max_length", T_INT, 0, NULL, NULL, NOMIN, NOMAX),
    K("bps_wr", T_INT, 0, NULL, NULL, NOMIN, NOMAX),
    A("bps_wr_length", "bps_wr_max_length"),
    K("bps_wr_max_length", T_INT, 0, NULL, NULL, NOMIN, NOMAX),
    K("cache", T_STR, 0, EN_CACHE, NULL, NOMIN, NOMAX),
    K("detect_zeroes", T_BOOL, 0, NULL, NULL, NOMIN, NOMAX),
    K("discard", T_STR, 0, EN_DISCARD, NULL, NOMIN, NOMAX),
    K("file", T_STR, F_DEFKEY|F_REQ, NULL, v_volid_or_qmpath, NOMIN, NOMAX),
    K("format", T_STR, 0, EN_DISKFMT, NULL, NOMIN, NOMAX),
    K("import-from", T_STR, 0, NULL, v_volid_or_abspath, NOMIN, NOMAX),
    K("iops", T_INT, 0, NULL, NULL, NOMIN, NOMAX),
    K("iops_max", T_INT, 0, NULL, NULL, NOMIN, NOMAX),
    K("iops_max_length", T_INT, 0, NULL, NULL, NOMIN, NOMAX),
    K("iops_rd", T_INT, 0, NULL, NULL, NOMIN, NOMAX),
    A("iops_rd_length", "iops_rd_max_length"),
    K("iops_rd_max", T_INT, 0, NULL, NULL, NOMIN, NOMAX),
    K("iops_rd_max_length", T_INT, 0, NULL, NULL, NOMIN, NOMAX),
    K("iops_wr", T_INT, 0, NULL, NULL, NOMIN, NOMAX),
    A("iops_wr_length", "iops_wr_max_length"),
    K("iops_wr_max", T_INT, 0, NULL, NULL, NOMIN, NOMAX),
    K("iops_wr_max_length", T_INT, 0, NULL, NULL, NOMIN, NOMAX),
    K("iothread", T_BOOL, 0, NULL, NULL, NOMIN, NOMAX),
    K("mbps", T_NUM, 0, NULL, NULL, NOMIN, NOMAX),
    K("mbps_max", T_NUM, 0, NULL, NULL, NOMIN, NOMAX),
    K("mbps_rd", T_NUM, 0, NULL, NULL, NOMIN, NOMAX),
    K("mbps_rd_max", T_NUM, 0, NULL, NULL, NOMIN, NOMAX),
    K("mbps_wr", T_NUM, 0, NULL, NULL, NOMIN, NOMAX),
    K("mbps_wr_max", T_NUM, 0, NULL, NULL, NOMIN, NOMAX),
    K("media", T_STR, 0, EN_MEDIA, NULL, NOMIN, NOMAX),
    K("product", T_STR, 0, NULL, v_product, NOMIN, NOMAX),
    K("queues", T_INT, 0, NULL, NULL, NOMIN, NOMAX),
    K("replicate", T_BOOL, 0, NULL, NULL, NOMIN, NOMAX),
    K("rerror", T_STR, 0, EN_RERROR, NULL, NOMIN, NOMAX),
    K("ro", T_BOOL, 0, NULL, NULL, NOMIN, NOMAX),
    K("scsiblock", T_BOOL, 0, NULL, NULL, NOMIN, NOMAX),
    K("serial", T_STR, 0, NULL, v_urlencoded, NOMIN, NOMAX),
    K("shared", T_BOOL, 0, NULL, NULL, NOMIN, NOMAX),
    K("size", T_STR, F_SIZE, NULL, NULL, NOMIN, NOMAX),
    K("snapshot", T_BOOL, 0, NULL, NULL, NOMIN, NOMAX),
    K("ssd", T_BOOL, 0, NULL, NULL, NOMIN, NOMAX),
    K("vendor", T_STR, 0, NULL, v_vendor, NOMIN, NOMAX),
    A("volume", "file"),
    K("werror", T_STR, 0, EN_WERROR, NULL, NOMIN, NOMAX),
    K("wwn", T_STR, 0, NULL, v_wwn, NOMIN, NOMAX),
};
static const struct subkey qemu_virtio_keys[] = {
    K("aio", T_STR, 0, EN_AIO, NULL, NOMIN, NOMAX),
    K("backup", T_BOOL, 0, NULL, NULL, NOMIN, NOMAX),
    K("bps", T_INT, 0, NULL, NULL, NOMIN, NOMAX),
    K("bps_max_length", T_INT, 0, NULL, NULL, NOMIN, NOMAX),
    K("bps_rd", T_INT, 0, NULL, NULL, NOMIN, NOMAX),
    A("bps_rd_length", "bps_rd_max_length"),
    K("bps_rd_max_length", T_INT, 0, NULL, NULL, NOMIN, NOMAX),
    K("bps_wr", T_INT, 0, NULL, NULL, NOMIN, NOMAX),
    A("bps_wr_length", "bps_wr_max_length"),
    K("bps_wr_max_length", T_INT, 0, NULL, NULL, NOMIN, NOMAX),
    K("cache", T_STR, 0, EN_CACHE, NULL, NOMIN, NOMAX),
    K("detect_zeroes", T_BOOL, 0, NULL, NULL, NOMIN, NOMAX),
    K("discard", T_STR, 0, EN_DISCARD, NULL, NOMIN, NOMAX),
    K("file", T_STR, F_DEFKEY|F_REQ, NULL, v_volid_or_qmpath, NOMIN, NOMAX),
    K("format", T_STR, 0, EN_DISKFMT, NULL, NOMIN, NOMAX),
    K("import-from", T_STR, 0, NULL, v_volid_or_abspath, NOMIN, NOMAX),
    K("iops", T_INT, 0, NULL, NULL, NOMIN, NOMAX),
    K("iops_max", T_INT, 0, NULL, NULL, NOMIN, NOMAX),
    K("iops_max_length", T_INT, 0, NULL, NULL, NOMIN, NOMAX),
    K("iops_rd", T_INT, 0, NULL, NULL, NOMIN, NOMAX),
    A("iops_rd_length", "iops_rd_max_length"),
    K("iops_rd_max", T_INT, 0, NULL, NULL, NOMIN, NOMAX),
    K("iops_rd_max_length", T_INT, 0, NULL, NULL, NOMIN, NOMAX),
    K("iops_wr", T_INT, 0, NULL, NULL, NOMIN, NOMAX),
    A("iops_wr_length", "iops_wr_max_length"),
    K("iops_wr_max", T_INT, 0, NULL, NULL, NOMIN, NOMAX),
    K("iops_wr_max_length", T_INT, 0, NULL, NULL, NOMIN, NOMAX),
    K("iothread", T_BOOL, 0, NULL, NULL, NOMIN, NOMAX),
    K("mbps", T_NUM, 0, NULL, NULL, NOMIN, NOMAX),
    K("mbps_max", T_NUM, 0, NULL, NULL, NOMIN, NOMAX),
    K("mbps_rd", T_NUM, 0, NULL, NULL, NOMIN, NOMAX),
    K("mbps_rd_max", T_NUM, 0, NULL, NULL, NOMIN, NOMAX),
    K("mbps_wr", T_NUM, 0, NULL, NULL, NOMIN, NOMAX),
    K("mbps_wr_max", T_NUM, 0, NULL, NULL, NOMIN, NOMAX),
    K("media", T_STR, 0, EN_MEDIA, NULL, NOMIN, NOMAX),
    K("replicate", T_BOOL, 0, NULL, NULL, NOMIN, NOMAX),
    K("rerror", T_STR, 0, EN_RERROR, NULL, NOMIN, NOMAX),
    K("ro", T_BOOL, 0, NULL, NULL, NOMIN, NOMAX),
    K("serial", T_STR, 0, NULL, v_urlencoded, NOMIN, NOMAX),
    K("shared", T_BOOL, 0, NULL, NULL, NOMIN, NOMAX),
    K("size", T_STR, F_SIZE, NULL, NULL, NOMIN, NOMAX),
    K("snapshot", T_BOOL, 0, NULL, NULL, NOMIN, NOMAX),
    A("volume", "file"),
    K("werror", T_STR, 0, EN_WERROR, NULL, NOMIN, NOMAX),
};
static const struct subkey qemu_efidisk_keys[] = {
    K("efitype", T_STR, 0, EN_EFITYPE, NULL, NOMIN, NOMAX),
    K("file", T_STR, F_DEFKEY|F_REQ, NULL, v_volid_or_qmpath, NOMIN, NOMAX),
    K("format", T_STR, 0, EN_DISKFMT, NULL, NOMIN, NOMAX),
    K("import-from", T_STR, 0, NULL, v_volid_or_abspath, NOMIN, NOMAX),
    K("ms-cert", T_STR, 0, EN_MSCERT, NULL, NOMIN, NOMAX),
    K("pre-enrolled-keys", T_BOOL, 0, NULL, NULL, NOMIN, NOMAX),
    K("size", T_STR, F_SIZE, NULL, NULL, NOMIN, NOMAX),
    A("volume", "file"),
};
static const struct subkey qemu_tpmstate_keys[] = {
    K("file", T_STR, F_DEFKEY|F_REQ, NULL, v_volid_or_qmpath, NOMIN, NOMAX),
    K("format", T_STR, 0, EN_TPMFMT, NULL, NOMIN, NOMAX),
    K("import-from", T_STR, 0, NULL, v_volid_or_abspath, NOMIN, NOMAX),
    K("size", T_STR, F_SIZE, NULL, NULL, NOMIN, NOMAX),
    K("version", T_STR, 0, EN_TPMVER, NULL, NOMIN, NOMAX),
    A("volume", "file"),
};
static const struct subkey qemu_agent_keys[] = {
    K("enabled", T_BOOL, F_DEFKEY, NULL, NULL, NOMIN, NOMAX),
    K("freeze-fs", T_BOOL, 0, NULL, NULL, NOMIN, NOMAX),
    A("freeze-fs-on-backup", "freeze-fs"),
    K("fstrim_cloned_disks", T_BOOL, 0, NULL, NULL, NOMIN, NOMAX),
    A("guest-fsfreeze", "freeze-fs"),
    K("type", T_STR, 0, EN_AGENTTYPE, NULL, NOMIN, NOMAX),
};
static const struct subkey qemu_unused_keys[] = {
    K("file", T_STR, F_DEFKEY|F_REQ, NULL, v_volid, NOMIN, NOMAX),
    A("volume", "file"),
};
static const struct subkey qemu_vga_keys[] = {
    K("clipboard", T_STR, 0, EN_CLIPBOARD, NULL, NOMIN, NOMAX),
    K("memory", T_INT, 0, NULL, NULL, 4, 512),
    K("type", T_STR, F_DEFKEY, EN_VGA, NULL, NOMIN, NOMAX),
};
static const struct subkey qemu_memory_keys[] = {
    K("current", T_INT, F_DEFKEY, NULL, NULL, 16, NOMAX),
};
static const char *const EN_DRIVER[] = {"vfio", "keep", NULL};
static const struct subkey qemu_hostpci_keys[] = {
    K("device-id", T_STR, 0, NULL, v_hexid, NOMIN, NOMAX),
    K("driver", T_STR, 0, EN_DRIVER, NULL, NOMIN, NOMAX),
    K("host", T_STR, F_DEFKEY | F_LIST, NULL, v_pci_id, NOMIN, NOMAX),
    K("legacy-igd", T_BOOL, 0, NULL, NULL, NOMIN, NOMAX),
    K("mapping", T_STR, 0, NULL, v_configid, NOMIN, NOMAX),
    K("mdev", T_STR, 0, NULL, NULL, NOMIN, NOMAX),
    K("pcie", T_BOOL, 0, NULL, NULL, NOMIN, NOMAX),
    K("rombar", T_BOOL, 0, NULL, NULL, NOMIN, NOMAX),
    K("romfile", T_STR, 0, NULL, NULL, NOMIN, NOMAX),
    K("sub-device-id", T_STR, 0, NULL, v_hexid, NOMIN, NOMAX),
    K("sub-vendor-id", T_STR, 0, NULL, v_hexid, NOMIN, NOMAX),
    K("vendor-id", T_STR, 0, NULL, v_hexid, NOMIN, NOMAX),
    K("x-vga", T_BOOL, 0, NULL, NULL, NOMIN, NOMAX),
};
static const struct subkey qemu_ipconfig_keys[] = {
    K("gw", T_STR, 0, NULL, v_ipv4, NOMIN, NOMAX),
    K("gw6", T_STR, 0, NULL, v_ipv6, NOMIN, NOMAX),
    K("ip", T_STR, 0, NULL, v_ipv4cfg_qemu, NOMIN, NOMAX),
    K("ip6", T_STR, 0, NULL, v_ipv6cfg_qemu, NOMIN, NOMAX),
};
static const struct subkey qemu_boot_keys[] = {
    K("legacy", T_STR, F_DEFKEY, NULL, v_boot_legacy, NOMIN, NOMAX),
    K("order", T_STR, F_LIST, NULL, v_boot_dev, NOMIN, NOMAX),
};
static const struct subkey startup_keys[] = {
    K("down", T_INT, 0, NULL, NULL, 0, NOMAX),
    K("order", T_INT, F_DEFKEY | F_NAMEDDEF, NULL, NULL, 0, NOMAX),
    K("up", T_INT, 0, NULL, NULL, 0, NOMAX),
};

struct propfmt {
  const char *name;
  const struct subkey *keys;
  size_t n;
};

#define FMT(name, keys) {name, keys, sizeof(keys) / sizeof(keys[0])}
static const struct propfmt FORMATS[] = {
    FMT("lxc-dev", lxc_dev_keys),
    FMT("lxc-features", lxc_features_keys),
    FMT("lxc-mp", lxc_mp_keys),
    FMT("lxc-net", lxc_net_keys),
    FMT("lxc-rootfs", lxc_rootfs_keys),
    FMT("lxc-unused", lxc_unused_keys),
    FMT("qemu-agent", qemu_agent_keys),
    FMT("qemu-boot", qemu_boot_keys),
    FMT("qemu-efidisk", qemu_efidisk_keys),
    FMT("qemu-hostpci", qemu_hostpci_keys),
    FMT("qemu-ide", qemu_ide_keys),
    FMT("qemu-ipconfig", qemu_ipconfig_keys),
    FMT("qemu-memory", qemu_memory_keys),
    FMT("qemu-net", qemu_net_keys),
    FMT("qemu-sata", qemu_sata_keys),
    FMT("qemu-scsi", qemu_scsi_keys),
    FMT("qemu-tpmstate", qemu_tpmstate_keys),
    FMT("qemu-unused", qemu_unused_keys),
    FMT("qemu-vga", qemu_vga_keys),
    FMT("qemu-virtio", qemu_virtio_keys),
    FMT("startup", startup_keys),
};
#define NFORMATS (sizeof(FORMATS) / sizeof(FORMATS[0]))
#define MAX_SUBKEYS 96

static const struct propfmt *find_format(const char *name) {
  size_t lo = 0, hi = NFORMATS;
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    int c = strcmp(name, FORMATS[mid].name);
    if (c == 0) return &FORMATS[mid];
    if (c < 0)
      hi = mid;
    else
      lo = mid + 1;
  }
  return NULL;
}

static int find_subkey(const struct propfmt *f, const char *s, size_t n) {
  size_t lo = 0, hi = f->n;
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    const char *k = f->keys[mid].name;
    size_t kn = f->keys[mid].nlen;
    int c = memcmp(s, k, n < kn ? n : kn);
    if (c == 0) c = n < kn ? -1 : n > kn ? 1 : 0;
    if (c == 0) return (int)mid;
    if (c < 0)
      hi = mid;
    else
      lo = mid + 1;
  }
  return -1;
}

static int find_subkey_z(const struct propfmt *f, const char *s) { return find_subkey(f, s, strlen(s)); }

static int default_key(const struct propfmt *f) {
  for (size_t i = 0; i < f->n; i++)
    if (f->keys[i].flags & F_DEFKEY) return (int)i;
  return -1;
}

/* An error message, built in a fixed buffer (no allocation to leak). */
struct err {
  char msg[320];
};

static int fail(struct err *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(struct err *e, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(e->msg, sizeof e->msg, fmt, ap);
  va_end(ap);
  return 0;
}

#define SHOWN 80 /* longest piece of input quoted in a message */
#define SHOW(n) (int)((n) > SHOWN ? SHOWN : (n))

static const char *enum_join(const char *const *e, char *buf, size_t cap) {
  size_t at = 0;
  buf[0] = 0;
  for (int i = 0; e[i]; i++) {
    int w = snprintf(buf + at, cap - at, "%s%s", i ? ", " : "", e[i]);
    if (w < 0 || (size_t)w >= cap - at) break;
    at += (size_t)w;
  }
  return buf;
}

/* Checks one string element against a string sub-key's enum and check. */
static int check_str(const struct subkey *k, const char *v, size_t vn, struct err *e) {
  if (memchr(v, ',', vn)) return fail(e, "%s: illegal value with commas", k->name);
  if (memchr(v, '\n', vn) || memchr(v, '\r', vn)) return fail(e, "%s: value contains a line feed", k->name);
  if (k->enums) {
    int found = 0;
    for (int i = 0; k->enums[i] && !found; i++) found = streq_n(v, vn, k->enums[i]);
    if (!found) {
      char list[200];
      return fail(e, "%s: value '%.*s' does not have a value in the enumeration '%s'", k->name, SHOW(vn), v,
                  enum_join(k->enums, list, sizeof list));
    }
  }
  if (k->flags & F_SIZE) {
    long long b;
    if (!parse_size_text(v, vn, &b))
      return fail(e, "%s: invalid format - value '%.*s' is not a valid disk size", k->name, SHOW(vn), v);
  }
  if (k->check) {
    const char *p = k->check(v, vn);
    if (p) return fail(e, "%s: %s", k->name, p);
  }
  return 1;
}

static int check_range(const struct subkey *k, double v, struct err *e) {
  if (k->min != NOMIN && v < (double)k->min) return fail(e, "%s: value must have a minimum value of %lld", k->name, k->min);
  if (k->max != NOMAX && v > (double)k->max) return fail(e, "%s: value must have a maximum value of %lld", k->name, k->max);
  return 1;
}

/* Converts one sub-key's text to its Lua value (pushed) or fails. */
/* Checks one sub-key's text and, when push is set, pushes its Lua value. */
static int push_subvalue(lua_State *L, const struct subkey *k, const char *v, size_t vn, int push, struct err *e) {
  switch (k->type) {
    case T_BOOL: {
      int b = parse_bool_word(v, vn);
      if (b < 0) return fail(e, "%s: type check ('boolean') failed - got '%.*s'", k->name, SHOW(vn), v);
      if (push) lua_pushboolean(L, b);
      return 1;
    }
    case T_INT: {
      long long i;
      if (!parse_int(v, vn, &i)) return fail(e, "%s: type check ('integer') failed - got '%.*s'", k->name, SHOW(vn), v);
      if (!check_range(k, (double)i, e)) return 0;
      if (push) lua_pushinteger(L, (lua_Integer)i);
      return 1;
    }
    case T_NUM: {
      if (!is_number_text(v, vn) || vn > 60)
        return fail(e, "%s: type check ('number') failed - got '%.*s'", k->name, SHOW(vn), v);
      double d = text_to_double(v, vn);
      if (!isfinite(d)) return fail(e, "%s: type check ('number') failed - got '%.*s'", k->name, SHOW(vn), v);
      if (!check_range(k, d, e)) return 0;
      long long i;
      if (!push)
        return 1;
      else if (parse_int(v, vn, &i))
        lua_pushinteger(L, (lua_Integer)i);
      else
        lua_pushnumber(L, (lua_Number)d);
      return 1;
    }
    default:
      break;
  }
  if (!(k->flags & F_LIST)) {
    if (!check_str(k, v, vn, e)) return 0;
    if (push) lua_pushlstring(L, v, vn);
    return 1;
  }
  if (push) lua_newtable(L);
  lua_Integer idx = 0;
  size_t i = 0;
  for (;;) {
    const char *semi = memchr(v + i, ';', vn - i);
    size_t j = semi ? (size_t)(semi - v) : vn;
    if (!check_str(k, v + i, j - i, e)) {
      if (push) lua_pop(L, 1);
      return 0;
    }
    if (push && (j > i || k->check != v_fstype)) { /* fstype lists tolerate empty items */
      lua_pushlstring(L, v + i, j - i);
      lua_rawseti(L, -2, ++idx);
    }
    if (!semi) break;
    i = j + 1;
  }
  return 1;
}

/* parse_property_string: with build, a new table on the stack; without,
 * only the checks (nothing pushed). 0 and e filled when it fails. */
static int prop_scan(lua_State *L, const struct propfmt *f, const char *s, size_t n, int build, struct err *e) {
  unsigned char set[MAX_SUBKEYS] = {0};
  int dk = default_key(f), dk_used = 0;
  int res = lua_gettop(L) + 1;
  if (build) lua_createtable(L, 0, 8);
  size_t i = 0;
  while (i <= n) {
    const char *comma = memchr(s + i, ',', n - i);
    size_t j = comma ? (size_t)(comma - s) : n;
    const char *part = s + i;
    size_t pn = j - i;
    i = j + 1;
    if (all_ws(part, pn)) {
      if (!comma) break;
      continue;
    }
    const char *eq = memchr(part, '=', pn);
    int ki;
    const char *v;
    size_t vn;
    if (eq) {
      size_t kn = (size_t)(eq - part);
      v = eq + 1;
      vn = pn - kn - 1;
      if (kn == 0 || vn == 0) goto missing;
      ki = find_subkey(f, part, kn);
      if (ki < 0) {
        fail(e, "invalid key in comma-separated list property: %.*s", SHOW(kn), part);
        goto bad;
      }
      const struct subkey *k = &f->keys[ki];
      if (k->type == T_ALIAS) {
        if (k->keyalias) {
          int ka = find_subkey_z(f, k->keyalias);
          if (set[ka]) {
            fail(e, "key alias '%s' is already defined", k->keyalias);
            goto bad;
          }
          set[ka] = 1;
          if (build) {
            lua_pushlstring(L, part, kn);
            lua_setfield(L, res, k->keyalias);
          }
        }
        ki = find_subkey_z(f, k->alias);
      }
    } else {
      if (dk < 0) {
        fail(e, "value without key, but schema does not define a default key");
        goto bad;
      }
      if (dk_used || set[dk]) {
        fail(e, "duplicate key in comma-separated list property: %s", f->keys[dk].name);
        goto bad;
      }
      dk_used = 1;
      ki = dk;
      v = part;
      vn = pn;
    }
    if (set[ki]) {
      fail(e, "duplicate key in comma-separated list property: %s", f->keys[ki].name);
      goto bad;
    }
    set[ki] = 1;
    if (!push_subvalue(L, &f->keys[ki], v, vn, build, e)) goto bad;
    if (!build)
      ;
    else if (lua_istable(L, -1) && lua_rawlen(L, -1) == 0)
      lua_pop(L, 1); /* "mount=;" lists nothing */
    else
      lua_setfield(L, res, f->keys[ki].name);
    if (!comma) break;
    continue;
  missing:
    fail(e, "missing key in comma-separated list property");
    goto bad;
  }
  for (size_t k = 0; k < f->n; k++)
    if ((f->keys[k].flags & F_REQ) && !set[k]) {
      fail(e, "%s: property is missing and it is not optional", f->keys[k].name);
      goto bad;
    }
  return 1;
bad:
  lua_settop(L, res - 1);
  return 0;
}

static int prop_parse(lua_State *L, const struct propfmt *f, const char *s, size_t n, struct err *e) {
  return prop_scan(L, f, s, n, 1, e);
}

static int prop_check(lua_State *L, const struct propfmt *f, const char *s, size_t n, struct err *e) {
  return prop_scan(L, f, s, n, 0, e);
}

/* Pushes the text of a number the way Perl would print it. */
static void push_number_text(lua_State *L, lua_Number d) {
  char buf[64];
  if (d == floor(d) && fabs(d) < 9007199254740992.0) {
    snprintf(buf, sizeof buf, "%.0f", d);
  } else {
    snprintf(buf, sizeof buf, "%.15g", d);
    if (strtod(buf, NULL) != d) snprintf(buf, sizeof buf, "%.17g", d);
  }
  lua_pushstring(L, buf);
}

static int text_bool(lua_State *L, const struct subkey *k, int idx, struct err *e) {
  int t = lua_type(L, idx), b = -1;
  if (t == LUA_TBOOLEAN) {
    b = lua_toboolean(L, idx);
  } else if (lua_isinteger(L, idx) && (lua_tointeger(L, idx) == 0 || lua_tointeger(L, idx) == 1)) {
    b = (int)lua_tointeger(L, idx);
  } else if (t == LUA_TSTRING) {
    size_t n;
    const char *s = lua_tolstring(L, idx, &n);
    b = parse_bool_word(s, n);
  }
  if (b < 0) return fail(e, "%s: type check ('boolean') failed", k->name);
  lua_pushstring(L, b ? "1" : "0");
  return 1;
}

static int text_int(lua_State *L, const struct subkey *k, int idx, struct err *e) {
  long long i;
  int t = lua_type(L, idx), isnum = 0;
  if (t == LUA_TNUMBER) {
    i = (long long)lua_tointegerx(L, idx, &isnum);
    if (!isnum) return fail(e, "%s: type check ('integer') failed", k->name);
  } else if (t == LUA_TSTRING) {
    size_t n;
    const char *s = lua_tolstring(L, idx, &n);
    if (!parse_int(s, n, &i)) return fail(e, "%s: type check ('integer') failed - got '%.*s'", k->name, SHOW(n), s);
  } else {
    return fail(e, "%s: type check ('integer') failed", k->name);
  }
  if (!check_range(k, (double)i, e)) return 0;
  lua_pushfstring(L, "%I", (lua_Integer)i);
  return 1;
}

static int text_num(lua_State *L, const struct subkey *k, int idx, struct err *e) {
  if (lua_type(L, idx) == LUA_TNUMBER) {
    lua_Number d = lua_tonumber(L, idx);
    if (!isfinite(d)) return fail(e, "%s: type check ('number') failed", k->name);
    if (!check_range(k, d, e)) return 0;
    if (lua_isinteger(L, idx))
      lua_pushfstring(L, "%I", lua_tointeger(L, idx));
    else
      push_number_text(L, d);
    return 1;
  }
  size_t n;
  const char *s = lua_type(L, idx) == LUA_TSTRING ? lua_tolstring(L, idx, &n) : NULL;
  if (!s || !is_number_text(s, n) || n > 60) return fail(e, "%s: type check ('number') failed", k->name);
  if (!check_range(k, text_to_double(s, n), e)) return 0;
  lua_pushvalue(L, idx);
  return 1;
}

/* A Lua list joined with ';', each element checked. */
static int text_list(lua_State *L, const struct subkey *k, int idx, struct err *e) {
  lua_Integer n = (lua_Integer)lua_rawlen(L, idx);
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  for (lua_Integer i = 1; i <= n; i++) {
    lua_rawgeti(L, idx, i);
    size_t en;
    const char *el = lua_type(L, -1) == LUA_TSTRING || lua_type(L, -1) == LUA_TNUMBER ? lua_tolstring(L, -1, &en) : NULL;
    int ok = 0;
    if (!el)
      fail(e, "%s: list element %d is not a string", k->name, (int)i);
    else if (memchr(el, ';', en))
      fail(e, "%s: list element %d contains ';'", k->name, (int)i);
    else
      ok = check_str(k, el, en, e);
    if (!ok) {
      lua_pop(L, 1);
      luaL_pushresult(&b);
      lua_pop(L, 1);
      return 0;
    }
    if (i > 1) { /* the element sits on top: add the separator below it */
      lua_pushliteral(L, ";");
      lua_insert(L, -2);
      lua_concat(L, 2);
    }
    luaL_addvalue(&b);
  }
  luaL_pushresult(&b);
  return 1;
}

/* A string value (or a ';' list given as text), checked. */
static int text_str(lua_State *L, const struct subkey *k, int idx, struct err *e) {
  int t = lua_type(L, idx);
  if (t != LUA_TSTRING && t != LUA_TNUMBER) return fail(e, "%s: expected a string", k->name);
  size_t n;
  const char *s = lua_tolstring(L, idx, &n);
  if (k->flags & F_LIST) {
    size_t i = 0;
    for (;;) {
      const char *semi = memchr(s + i, ';', n - i);
      size_t j = semi ? (size_t)(semi - s) : n;
      if (!check_str(k, s + i, j - i, e)) return 0;
      if (!semi) break;
      i = j + 1;
    }
  } else if (!check_str(k, s, n, e)) {
    return 0;
  }
  lua_pushlstring(L, s, n);
  return 1;
}

/* The text of the Lua value at idx for sub-key k, pushed; or fails. */
static int push_subtext(lua_State *L, const struct subkey *k, int idx, struct err *e) {
  int isint = 0;
  switch (k->type) {
    case T_BOOL: return text_bool(L, k, idx, e);
    case T_INT: return text_int(L, k, idx, e);
    case T_NUM: return text_num(L, k, idx, e);
    default: break;
  }
  lua_Integer b = lua_type(L, idx) == LUA_TNUMBER ? lua_tointegerx(L, idx, &isint) : 0;
  if ((k->flags & F_SIZE) && isint) {
    if (b < 0) return fail(e, "%s: size must not be negative", k->name);
    push_format_size(L, (long long)b);
    return 1;
  }
  if ((k->flags & F_LIST) && lua_type(L, idx) == LUA_TTABLE) return text_list(L, k, idx, e);
  return text_str(L, k, idx, e);
}

/* The key whose value combines with key ki ("virtio=MAC"), or -1. */
static int combine_key(const struct propfmt *f, int ki) {
  for (size_t i = 0; i < f->n; i++)
    if (f->keys[i].keyalias && strcmp(f->keys[i].keyalias, f->keys[ki].name) == 0)
      return find_subkey_z(f, f->keys[i].alias);
  return -1;
}

/* print_property_string: the table at t to text (pushed), or fails.
 * Order: default key, required keys, the rest; each group sorted. */
static int prop_format(lua_State *L, const struct propfmt *f, int t, struct err *e) {
  unsigned char set[MAX_SUBKEYS] = {0}, done[MAX_SUBKEYS] = {0};
  int top = lua_gettop(L);
  lua_createtable(L, (int)f->n, 0); /* texts by sub-key index */
  int texts = lua_gettop(L);
  lua_pushnil(L);
  while (lua_next(L, t)) {
    if (lua_type(L, -2) != LUA_TSTRING) {
      fail(e, "invalid key (not a string)");
      goto bad;
    }
    size_t kn;
    const char *key = lua_tolstring(L, -2, &kn);
    int ki = find_subkey(f, key, kn);
    if (ki < 0 || f->keys[ki].type == T_ALIAS) {
      fail(e, "invalid key '%.*s'", SHOW(kn), key);
      goto bad;
    }
    if ((f->keys[ki].flags & F_LIST) && lua_type(L, -1) == LUA_TTABLE && lua_rawlen(L, -1) == 0) {
      lua_pop(L, 1); /* an empty list is no value */
      continue;
    }
    if (!push_subtext(L, &f->keys[ki], lua_gettop(L), e)) goto bad;
    lua_rawseti(L, texts, ki + 1);
    set[ki] = 1;
    lua_pop(L, 1);
  }
  for (size_t k = 0; k < f->n; k++)
    if ((f->keys[k].flags & F_REQ) && !set[k]) {
      fail(e, "%s: property is missing and it is not optional", f->keys[k].name);
      goto bad;
    }
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  int first = 1, dk = default_key(f);
  for (int pass = 0; pass < 3; pass++) {
    for (size_t k = 0; k < f->n; k++) {
      int isdef = (int)k == dk;
      if (pass == 0 && !isdef) continue;
      if (pass == 1 && !(f->keys[k].flags & F_REQ)) continue;
      if (!set[k] || done[k]) continue;
      done[k] = 1;
      if (!first) luaL_addchar(&b, ',');
      first = 0;
      int ck = combine_key(f, (int)k);
      lua_rawgeti(L, texts, (lua_Integer)k + 1);
      if (ck >= 0 && set[ck]) {
        luaL_addvalue(&b);
        luaL_addchar(&b, '=');
        lua_rawgeti(L, texts, ck + 1);
        done[ck] = 1;
      } else if (!isdef || (f->keys[k].flags & F_NAMEDDEF) || memchr(lua_tostring(L, -1), '=', lua_rawlen(L, -1))) {
        /* a bare default value holding '=' would read back as key=value */
        lua_pushfstring(L, "%s=", f->keys[k].name);
        lua_insert(L, -2);
        lua_concat(L, 2);
      }
      luaL_addvalue(&b);
    }
  }
  luaL_pushresult(&b);
  lua_replace(L, texts);
  lua_settop(L, texts);
  return 1;
bad:
  lua_settop(L, top);
  return 0;
}

static const struct propfmt *check_format_arg(lua_State *L, int idx) {
  const char *name = luaL_checkstring(L, idx);
  const struct propfmt *f = find_format(name);
  if (!f) luaL_argerror(L, idx, lua_pushfstring(L, "unknown property-string format '%s'", name));
  return f;
}

static int l_parse_prop(lua_State *L) {
  size_t n;
  const char *s = luaL_checklstring(L, 1, &n);
  const struct propfmt *f = check_format_arg(L, 2);
  struct err e;
  if (prop_parse(L, f, s, n, &e)) return 1;
  lua_pushnil(L);
  lua_pushstring(L, e.msg);
  return 2;
}

static int l_format_prop(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  const struct propfmt *f = check_format_arg(L, 2);
  struct err e;
  if (prop_format(L, f, 1, &e)) return 1;
  lua_pushnil(L);
  lua_pushstring(L, e.msg);
  return 2;
}

/* ------------------------------------------------------------------ */
/* config options: what check_type knows about each key                 */

enum { V_NONE, V_PROP, V_DRIVE, V_STARTUP, V_TAGS, V_CONFIGID, V_VOLID };

struct optdesc {
  const char *base; /* key without its index */
  unsigned char blen;
  int lo, hi; /* index range; hi < 0: the key has no index */
  unsigned char type, v;
  const char *fmt; /* property-string format for V_PROP / V_DRIVE */
};

#define O(b, t) {b, sizeof(b) - 1, 0, -1, t, V_NONE, NULL}
#define OV(b, t, v) {b, sizeof(b) - 1, 0, -1, t, v, NULL}
#define OP(b, f) {b, sizeof(b) - 1, 0, -1, T_STR, V_PROP, f}
#define OD(b, f) {b, sizeof(b) - 1, 0, -1, T_STR, V_DRIVE, f}
#define ON(b, lo, hi, t) {b, sizeof(b) - 1, lo, hi, t, V_NONE, NULL}
#define ONP(b, lo, hi, f) {b, sizeof(b) - 1, lo, hi, T_STR, V_PROP, f}
#define OND(b, lo, hi, f) {b, sizeof(b) - 1, lo, hi, T_STR, V_DRIVE, f}

/* pve-container's $confdesc (sorted by base) */
static const struct optdesc LXC_OPTS[] = {
    O("arch", T_STR),
    O("cmode", T_STR),
    O("console", T_BOOL),
    O("cores", T_INT),
    O("cpulimit", T_NUM),
    O("cpuunits", T_INT),
    O("debug", T_BOOL),
    O("description", T_STR),
    ONP("dev", 0, 255, "lxc-dev"),
    O("entrypoint", T_STR),
    O("env", T_STR),
    OP("features", "lxc-features"),
    OV("hookscript", T_STR, V_VOLID),
    O("hostname", T_STR),
    O("ipmanagehost", T_BOOL),
    O("lock", T_STR),
    O("memory", T_INT),
    ONP("mp", 0, 255, "lxc-mp"),
    O("nameserver", T_STR),
    ONP("net", 0, 31, "lxc-net"),
    O("onboot", T_BOOL),
    O("ostype", T_STR),
    OV("parent", T_STR, V_CONFIGID),
    O("protection", T_BOOL),
    OP("rootfs", "lxc-rootfs"),
    O("searchdomain", T_STR),
    O("snaptime", T_INT),
    OV("startup", T_STR, V_STARTUP),
    O("swap", T_INT),
    OV("tags", T_STR, V_TAGS),
    O("template", T_BOOL),
    O("timezone", T_STR),
    O("tty", T_INT),
    O("unprivileged", T_BOOL),
    ONP("unused", 0, 255, "lxc-unused"),
};

/* qemu-server's $confdesc (sorted by base) */
static const struct optdesc QEMU_OPTS[] = {
    O("acpi", T_BOOL),
    O("affinity", T_STR),
    OP("agent", "qemu-agent"),
    O("allow-ksm", T_BOOL),
    O("amd-sev", T_STR),
    O("arch", T_STR),
    O("args", T_STR),
    ON("audio", 0, 0, T_STR),
    O("autostart", T_BOOL),
    O("balloon", T_INT),
    O("bios", T_STR),
    OP("boot", "qemu-boot"),
    O("bootdisk", T_STR),
    OD("cdrom", "qemu-ide"),
    O("cicustom", T_STR),
    O("cipassword", T_STR),
    O("citype", T_STR),
    O("ciupgrade", T_BOOL),
    O("ciuser", T_STR),
    O("cores", T_INT),
    O("cpu", T_STR),
    O("cpulimit", T_NUM),
    O("cpuunits", T_INT),
    O("description", T_STR),
    ONP("efidisk", 0, 0, "qemu-efidisk"),
    O("freeze", T_BOOL),
    OV("hookscript", T_STR, V_VOLID),
    ONP("hostpci", 0, 15, "qemu-hostpci"),
    O("hotplug", T_STR),
    O("hugepages", T_STR),
    OND("ide", 0, 3, "qemu-ide"),
    O("intel-tdx", T_STR),
    ONP("ipconfig", 0, 31, "qemu-ipconfig"),
    O("ivshmem", T_STR),
    O("keephugepages", T_BOOL),
    O("keyboard", T_STR),
    O("kvm", T_BOOL),
    O("localtime", T_BOOL),
    O("lock", T_STR),
    O("machine", T_STR),
    OP("memory", "qemu-memory"),
    O("meta", T_STR),
    O("migrate_downtime", T_NUM),
    O("migrate_speed", T_INT),
    O("name", T_STR),
    O("nameserver", T_STR),
    ONP("net", 0, 31, "qemu-net"),
    O("numa", T_BOOL),
    ON("numa", 0, 7, T_STR),
    O("onboot", T_BOOL),
    O("ostype", T_STR),
    ON("parallel", 0, 2, T_STR),
    OV("parent", T_STR, V_CONFIGID),
    O("protection", T_BOOL),
    O("reboot", T_BOOL),
    ON("rng", 0, 0, T_STR),
    O("runningcpu", T_STR),
    O("runningmachine", T_STR),
    OND("sata", 0, 5, "qemu-sata"),
    OND("scsi", 0, 30, "qemu-scsi"),
    O("scsihw", T_STR),
    O("searchdomain", T_STR),
    ON("serial", 0, 3, T_STR),
    O("shares", T_INT),
    ON("smbios", 1, 1, T_STR),
    O("smp", T_INT),
    O("snaptime", T_INT),
    O("sockets", T_INT),
    O("spice_enhancements", T_STR),
    O("sshkeys", T_STR),
    O("startdate", T_STR),
    OV("startup", T_STR, V_STARTUP),
    O("tablet", T_BOOL),
    OV("tags", T_STR, V_TAGS),
    O("tdf", T_BOOL),
    O("template", T_BOOL),
    ONP("tpmstate", 0, 0, "qemu-tpmstate"),
    ONP("unused", 0, 255, "qemu-unused"),
    ON("usb", 0, 13, T_STR),
    O("vcpus", T_INT),
    OP("vga", "qemu-vga"),
    OND("virtio", 0, 15, "qemu-virtio"),
    ON("virtiofs", 0, 9, T_STR),
    O("vmgenid", T_STR),
    OV("vmstate", T_STR, V_VOLID),
    O("vmstatestorage", T_STR),
    O("watchdog", T_STR),
};

/* the [special:fleecing] section's schema */
static const struct optdesc FLEECING_OPTS[] = {
    O("fleecing-images", T_STR),
};

struct schema {
  const struct optdesc *opts;
  size_t n;
};
static const struct schema LXC_SCHEMA = {LXC_OPTS, sizeof LXC_OPTS / sizeof LXC_OPTS[0]};
static const struct schema QEMU_SCHEMA = {QEMU_OPTS, sizeof QEMU_OPTS / sizeof QEMU_OPTS[0]};
static const struct schema FLEECING_SCHEMA = {FLEECING_OPTS, 1};

/* Finds key (base + optional canonical index) in a schema. */
static const struct optdesc *find_opt(const struct schema *sc, const char *k, size_t n) {
  size_t b = n;
  while (b > 0 && is_digit(k[b - 1])) b--;
  int indexed = b < n;
  long long idx = -1;
  if (indexed) {
    if (n - b > 1 && k[b] == '0') return NULL; /* net00 is not net0 */
    if (n - b > 4 || !parse_int(k + b, n - b, &idx)) return NULL;
  }
  size_t lo = 0, hi = sc->n;
  while (lo < hi) { /* first entry whose base >= the key's base */
    size_t mid = (lo + hi) / 2;
    const struct optdesc *m = &sc->opts[mid];
    int c = (unsigned char)m->base[0] - (unsigned char)k[0];
    if (c == 0) {
      size_t ml = m->blen;
      c = memcmp(m->base, k, ml < b ? ml : b);
      if (c == 0) c = ml < b ? -1 : ml > b ? 1 : 0;
    }
    if (c < 0)
      lo = mid + 1;
    else
      hi = mid;
  }
  for (size_t i = lo; i < sc->n && sc->opts[i].blen == b && memcmp(k, sc->opts[i].base, b) == 0; i++) {
    const struct optdesc *o = &sc->opts[i];
    if (!indexed && o->hi < 0) return o;
    if (indexed && o->hi >= 0 && idx >= o->lo && idx <= o->hi) return o;
  }
  return NULL;
}

/* ------------------------------------------------------------------ */
/* check_type: validate and normalise one option value                  */

/* Pushes the normalised value of key, or fails with upstream's wording. */
static int check_type(lua_State *L, int kind, const struct schema *sc, const char *k, size_t kn, const char *v,
                      size_t vn, struct err *e) {
  const struct optdesc *o = find_opt(sc, k, kn);
  if (!o) return fail(e, "unknown setting '%.*s'", SHOW(kn), k);
  if (memchr(v, '\n', vn) || memchr(v, '\r', vn)) return fail(e, "property contains a line feed");
  switch (o->type) {
    case T_BOOL: {
      int b = parse_bool_word(v, vn);
      if (b < 0) return fail(e, "type check ('boolean') failed - got '%.*s'", SHOW(vn), v);
      lua_pushstring(L, b ? "1" : "0");
      return 1;
    }
    case T_INT: {
      if (!all_digits(v, vn)) return fail(e, "type check ('integer') failed - got '%.*s'", SHOW(vn), v);
      while (vn > 1 && v[0] == '0') v++, vn--; /* Perl's int() */
      lua_pushlstring(L, v, vn);
      return 1;
    }
    case T_NUM: {
      const char *dot = memchr(v, '.', vn);
      size_t a = dot ? (size_t)(dot - v) : vn;
      if (!all_digits(v, a) || (dot && !all_digits(dot + 1, vn - a - 1)))
        return fail(e, "type check ('number') failed - got '%.*s'", SHOW(vn), v);
      lua_pushlstring(L, v, vn);
      return 1;
    }
    default:
      break;
  }
  const char *bad;
  size_t badn;
  struct err sub;
  switch (o->v) {
    case V_PROP:
    case V_DRIVE:
      if (!prop_check(L, find_format(o->fmt), v, vn, &sub)) return fail(e, "%s", sub.msg);
      break;
    case V_STARTUP:
      if (!prop_check(L, find_format("startup"), v, vn, &sub)) return fail(e, "unable to parse startup options");
      break;
    case V_TAGS:
      if (!valid_tag_list(v, vn, &bad, &badn)) return fail(e, "invalid tag '%.*s'", SHOW(badn), bad);
      break;
    case V_CONFIGID:
      if (v_configid(v, vn)) return fail(e, "invalid configuration ID '%.*s'", SHOW(vn), v);
      break;
    case V_VOLID:
      if (!volid_ok(v, vn)) return fail(e, "unable to parse volume ID '%.*s'", SHOW(vn), v);
      break;
    default:
      /* qemu strips one pair of surrounding double quotes from plain strings */
      if (kind == KIND_QEMU && vn >= 2 && v[0] == '"' && v[vn - 1] == '"') v++, vn -= 2;
      break;
  }
  lua_pushlstring(L, v, vn);
  return 1;
}

/* The drive's file (pushed) from its value, or nothing and 0. */
static int push_drive_file(lua_State *L, const char *fmt, const char *v, size_t vn) {
  struct err e;
  if (!prop_parse(L, find_format(fmt), v, vn, &e)) return 0;
  lua_getfield(L, -1, "file");
  lua_remove(L, -2);
  if (lua_type(L, -1) == LUA_TSTRING) return 1;
  lua_pop(L, 1);
  return 0;
}

/* Is a valid property string already what prop_format would write?
 * (default key bare and first, then required keys, then the rest, each
 * sorted; booleans 1/0; integers and sizes in canonical form) */
static int prop_is_canonical(const struct propfmt *f, const char *s, size_t n) {
  int dk = default_key(f), last = -1, first = 1;
  size_t i = 0;
  while (i < n) {
    const char *comma = memchr(s + i, ',', n - i);
    size_t j = comma ? (size_t)(comma - s) : n;
    const char *part = s + i, *eq = memchr(part, '=', j - i);
    if (j == i || (comma && j + 1 == n)) return 0;
    i = j + 1;
    int ki, rank;
    const char *v;
    size_t vn;
    if (!eq) {
      if (!first || dk < 0 || (f->keys[dk].flags & F_NAMEDDEF)) return 0;
      ki = dk;
      v = part;
      vn = (size_t)(s + j - part);
    } else {
      ki = find_subkey(f, part, (size_t)(eq - part));
      if (ki < 0 || f->keys[ki].type == T_ALIAS || (ki == dk && !(f->keys[dk].flags & F_NAMEDDEF))) return 0;
      v = eq + 1;
      vn = (size_t)(s + j - v);
    }
    first = 0;
    const struct subkey *k = &f->keys[ki];
    rank = ki == dk ? 0 : (k->flags & F_REQ) ? 1 : 2;
    if (rank * MAX_SUBKEYS + ki <= last) return 0;
    last = rank * MAX_SUBKEYS + ki;
    long long x;
    char buf[32];
    if (k->type == T_BOOL && !streq_n(v, vn, "0") && !streq_n(v, vn, "1")) return 0;
    if (k->type == T_INT || k->type == T_NUM || (k->flags & F_SIZE)) {
      int ok = (k->flags & F_SIZE) ? parse_size_text(v, vn, &x) : parse_int(v, vn, &x);
      if (!ok) return 0;
      if (k->flags & F_SIZE) {
        static const char units[] = "KMGT";
        int u = -1;
        while (u < 3 && x > 0 && x % 1024 == 0) x /= 1024, u++;
        snprintf(buf, sizeof buf, u < 0 ? "%lld" : "%lld%c", x, u < 0 ? 0 : units[u]);
      } else {
        snprintf(buf, sizeof buf, "%lld", x);
      }
      if (!streq_n(v, vn, buf)) return 0;
    }
  }
  return 1;
}

/* qemu-server rewrites disk values on load: parse_drive + print_drive
 * (keys in canonical order, sizes as 4G). filename_to_volume_id refuses
 * a path outside /dev (volume IDs, none and cdrom pass). */
static int canonical_drive(lua_State *L, const char *fmt, struct err *e) {
  int val = lua_gettop(L);
  size_t vn;
  const char *v = lua_tolstring(L, val, &vn);
  const struct propfmt *f = find_format(fmt);
  if ((vn == 0 || v[0] != '/' || (vn > 5 && memcmp(v, "/dev/", 5) == 0)) && prop_is_canonical(f, v, vn) &&
      prop_check(L, f, v, vn, e))
    return 1; /* as Proxmox writes it: nothing to rewrite */
  if (!prop_parse(L, f, v, vn, e)) return 0;
  int t = lua_gettop(L);
  if (lua_getfield(L, t, "size") == LUA_TSTRING) {
    long long b = 0;
    size_t sn;
    const char *s = lua_tolstring(L, -1, &sn);
    parse_size_text(s, sn, &b); /* already validated */
    lua_pushinteger(L, (lua_Integer)b);
    lua_setfield(L, t, "size");
  }
  lua_pop(L, 1);
  lua_getfield(L, t, "file");
  size_t fn;
  const char *file = lua_tolstring(L, -1, &fn);
  int ok = file[0] != '/' || (fn > 5 && memcmp(file, "/dev/", 5) == 0);
  lua_pop(L, 1);
  if (!ok || !prop_format(L, f, t, e)) {
    lua_settop(L, val);
    return fail(e, "unable to parse drive file");
  }
  lua_replace(L, val);
  lua_settop(L, val);
  return 1;
}

/* ------------------------------------------------------------------ */
/* parse_config                                                         */

enum { S_MAIN, S_PENDING, S_SPECIAL, S_SNAPSHOT };

struct cparse {
  lua_State *L;
  int kind, strict;
  int res, warns, conf, main, descr; /* stack slots */
  int stype, skip, cloudinit, fleecing, pending_seen;
  long line;
  struct err e;
};

/* Upstream's $handle_error: strict -> stop with the message; otherwise
 * a warning. Returns 0 when parsing must stop. */
static int handle_error(struct cparse *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int handle_error(struct cparse *p, const char *fmt, ...) {
  char msg[300];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  if (p->strict) {
    snprintf(p->e.msg, sizeof p->e.msg, "line %ld: %s", p->line, msg);
    return 0;
  }
  lua_pushfstring(p->L, "line %d: %s", (int)p->line, msg);
  lua_rawseti(p->L, p->warns, (lua_Integer)lua_rawlen(p->L, p->warns) + 1);
  return 1;
}

static void warn_only(struct cparse *p, const char *fmt, const char *a, const char *b) {
  lua_pushfstring(p->L, "line %d: ", (int)p->line);
  lua_pushfstring(p->L, fmt, a, b);
  lua_concat(p->L, 2);
  lua_rawseti(p->L, p->warns, (lua_Integer)lua_rawlen(p->L, p->warns) + 1);
}

/* A new section table {main = {}, lxc = {}} on the stack. */
static void new_section(lua_State *L) {
  lua_createtable(L, 0, 4);
  lua_createtable(L, 0, 32); /* no rehashing for a typical guest */
  lua_setfield(L, -2, "main");
  lua_newtable(L);
  lua_setfield(L, -2, "lxc");
}

/* Stores the accumulated description in the current section: qemu keeps
 * a defined one with trailing blanks cut, lxc a non-empty one as is. */
static void finish_description(struct cparse *p) {
  lua_State *L = p->L;
  if (lua_isnil(L, p->descr)) return;
  size_t n;
  const char *d = lua_tolstring(L, p->descr, &n);
  if (p->kind == KIND_QEMU) {
    while (n && is_ws(d[n - 1])) n--;
    lua_pushlstring(L, d, n);
    lua_setfield(L, p->conf, "description");
  } else if (perl_true(d, n)) {
    lua_pushvalue(L, p->descr);
    lua_setfield(L, p->conf, "description");
  }
  lua_pushnil(L);
  lua_replace(L, p->descr);
}

static void append_descr(struct cparse *p, const char *s, size_t n, int newline) {
  lua_State *L = p->L;
  luaL_Buffer b;
  int had = !lua_isnil(L, p->descr);
  if (had) lua_pushvalue(L, p->descr);
  luaL_buffinit(L, &b);
  decode_text_buf(&b, s, n);
  if (newline) luaL_addchar(&b, '\n');
  luaL_pushresult(&b);
  if (had) lua_concat(L, 2);
  lua_replace(L, p->descr);
}

/* Makes a fresh section the current one; field is "pending" or the name
 * within "special"/"snapshots". Flags a duplicate. */
static int enter_section(struct cparse *p, int stype, const char *group, const char *name, size_t nn) {
  lua_State *L = p->L;
  finish_description(p);
  p->skip = 0;
  p->stype = stype;
  new_section(L);
  lua_replace(L, p->conf);
  lua_getfield(L, p->res, group ? group : "pending");
  int dup;
  if (group) {
    lua_pushlstring(L, name, nn);
    lua_pushvalue(L, -1);
    dup = lua_rawget(L, -3) != LUA_TNIL;
    lua_pop(L, 1);
    lua_pushvalue(L, p->conf);
    lua_rawset(L, -3);
    lua_pop(L, 1);
  } else {
    lua_pop(L, 1);
    dup = p->pending_seen;
    p->pending_seen = 1;
    lua_pushvalue(L, p->conf);
    lua_setfield(L, p->res, "pending");
  }
  lua_getfield(L, p->conf, "main");
  lua_replace(L, p->main);
  if (!dup) return 1;
  if (stype == S_PENDING) return handle_error(p, "duplicate section: pending");
  if (stype == S_SPECIAL) return handle_error(p, "duplicate special section: %.*s", SHOW(nn), name);
  return handle_error(p, "duplicate snapshot section: %.*s", SHOW(nn), name);
}

/* "[...]" followed by blanks only: the inside, else NULL. */
static const char *section_header(const char *s, size_t n, size_t *in) {
  if (n < 2 || s[0] != '[') return NULL;
  const char *close = memchr(s, ']', n);
  if (!close || !all_ws(close + 1, n - (size_t)(close + 1 - s))) return NULL;
  *in = (size_t)(close - s - 1);
  return s + 1;
}

/* [a-z][a-z0-9_\-]+, any case */
static int snapshot_name(const char *s, size_t n) {
  if (n < 2 || !isalpha((unsigned char)s[0])) return 0;
  for (size_t i = 1; i < n; i++)
    if (!(isalnum((unsigned char)s[i]) || s[i] == '_' || s[i] == '-')) return 0;
  return 1;
}

/* Handles a section header line; 1 if it was one (result in *ok). */
static int header_line(struct cparse *p, const char *s, size_t n, int *ok) {
  size_t in;
  const char *name = section_header(s, n, &in);
  *ok = 1;
  if (!name) return 0;
  if (p->kind == KIND_QEMU ? strieq_n(name, in, "PENDING") : strieq_n(name, in, "pve:pending")) {
    *ok = enter_section(p, S_PENDING, NULL, NULL, 0);
    return 1;
  }
  if (p->kind == KIND_QEMU && in > 8 && strieq_n(name, 8, "special:")) {
    const char *sn = name + 8;
    size_t snn = in - 8;
    int ci = strieq_n(sn, snn, "cloudinit"), fl = strieq_n(sn, snn, "fleecing");
    if (ci || fl) {
      *ok = enter_section(p, S_SPECIAL, "special", sn, snn);
      p->cloudinit = ci;
      p->fleecing = fl;
      return 1;
    }
  }
  if (snapshot_name(name, in)) {
    *ok = enter_section(p, S_SNAPSHOT, "snapshots", name, in);
    if (*ok && streq_n(name, in, "current"))
      *ok = handle_error(p, "snapshot name 'current' is reserved");
    return 1;
  }
  if (p->kind == KIND_LXC) return 0; /* pve-container: "unable to parse config" */
  finish_description(p);
  p->skip = 1;
  *ok = handle_error(p, "skipping unknown section: '%.*s'", SHOW(in), name);
  return 1;
}

/* pve-container's is_valid_lxc_conf_key */
static const char *const LXC_RAW_KEYS[] = {
    "lxc.apparmor.profile", "lxc.apparmor.allow_incomplete", "lxc.apparmor.allow_nesting", "lxc.apparmor.raw",
    "lxc.selinux.context", "lxc.include", "lxc.arch", "lxc.uts.name", "lxc.signal.halt", "lxc.signal.reboot",
    "lxc.signal.stop", "lxc.init.cmd", "lxc.init.cwd", "lxc.pty.max", "lxc.console.logfile", "lxc.console.path",
    "lxc.tty.max", "lxc.devtty.dir", "lxc.hook.autodev", "lxc.autodev", "lxc.kmsg", "lxc.mount.fstab",
    "lxc.mount.entry", "lxc.mount.auto", "lxc.rootfs.mount", "lxc.cap.drop", "lxc.cap.keep", "lxc.seccomp.profile",
    "lxc.seccomp.notify.proxy", "lxc.seccomp.notify.cookie", "lxc.idmap", "lxc.hook.pre-start", "lxc.hook.pre-mount",
    "lxc.hook.mount", "lxc.hook.start", "lxc.hook.stop", "lxc.hook.post-stop", "lxc.hook.clone", "lxc.hook.destroy",
    "lxc.hook.version", "lxc.log.level", "lxc.log.file", "lxc.start.auto", "lxc.start.delay", "lxc.start.order",
    "lxc.group", "lxc.environment", "lxc.environment.runtime", "lxc.environment.hooks", "lxc.sysctl.fs.mqueue",
    "lxc.sysctl.kernel.msgmax", "lxc.sysctl.kernel.msgmnb", "lxc.sysctl.kernel.msgmni", "lxc.sysctl.kernel.sem",
    "lxc.sysctl.kernel.shmall", "lxc.sysctl.kernel.shmmax", "lxc.sysctl.kernel.shmmni",
    "lxc.sysctl.kernel.shm_rmid_forced", NULL};

static const char *const LXC_RAW_REFUSED[][2] = {
    {"lxc.rootfs.path", "lxc.rootfs.path is auto generated from rootfs"},
    {"lxc.rootfs.options", "lxc.rootfs.options is not supported, please use mount point options in the \"rootfs\" key"},
    {NULL, NULL}};

static const char *const LXC_RAW_DEPRECATED[][2] = {
    {"lxc.aa_profile", "lxc.apparmor.profile"}, {"lxc.aa_allow_incomplete", "lxc.apparmor.allow_incomplete"},
    {"lxc.console", "lxc.console.path"}, {"lxc.devttydir", "lxc.tty.dir"}, {"lxc.haltsignal", "lxc.signal.halt"},
    {"lxc.rebootsignal", "lxc.signal.reboot"}, {"lxc.stopsignal", "lxc.signal.stop"}, {"lxc.id_map", "lxc.idmap"},
    {"lxc.init_cmd", "lxc.init.cmd"}, {"lxc.loglevel", "lxc.log.level"}, {"lxc.logfile", "lxc.log.file"},
    {"lxc.mount", "lxc.mount.fstab"}, {"lxc.network.type", "lxc.net.INDEX.type"},
    {"lxc.network.flags", "lxc.net.INDEX.flags"}, {"lxc.network.link", "lxc.net.INDEX.link"},
    {"lxc.network.mtu", "lxc.net.INDEX.mtu"}, {"lxc.network.name", "lxc.net.INDEX.name"},
    {"lxc.network.hwaddr", "lxc.net.INDEX.hwaddr"}, {"lxc.network.ipv4", "lxc.net.INDEX.ipv4.address"},
    {"lxc.network.ipv4.gateway", "lxc.net.INDEX.ipv4.gateway"}, {"lxc.network.ipv6", "lxc.net.INDEX.ipv6.address"},
    {"lxc.network.ipv6.gateway", "lxc.net.INDEX.ipv6.gateway"}, {"lxc.network.script.up", "lxc.net.INDEX.script.up"},
    {"lxc.network.script.down", "lxc.net.INDEX.script.down"}, {"lxc.pts", "lxc.pty.max"},
    {"lxc.se_context", "lxc.selinux.context"}, {"lxc.seccomp", "lxc.seccomp.profile"}, {"lxc.tty", "lxc.tty.max"},
    {"lxc.utsname", "lxc.uts.name"}, {NULL, NULL}};

static int has_prefix(const char *s, size_t n, const char *pre) {
  size_t l = strlen(pre);
  return n >= l && memcmp(s, pre, l) == 0;
}

static int is_lxc_key_char(int c) { return is_lower(c) || is_digit(c) || c == '_' || c == '-' || c == '.'; }

/* ^(lxc\.[a-z0-9_\-\.]+)(:|\s*=)\s*(.*?)\s*$ */
static int lxc_raw_match(const char *s, size_t n, size_t *kn, const char **v, size_t *vn) {
  if (!has_prefix(s, n, "lxc.")) return 0;
  size_t i = 4;
  while (i < n && is_lxc_key_char(s[i])) i++;
  if (i == 4) return 0;
  *kn = i;
  if (i < n && s[i] == ':') {
    i++;
  } else {
    while (i < n && is_ws(s[i])) i++;
    if (i >= n || s[i] != '=') return 0;
    i++;
  }
  *v = s + i;
  *vn = n - i;
  trim(v, vn);
  return 1;
}

/* Adds {key, value} to the section's raw lxc list, or reports why not. */
static int lxc_raw_line(struct cparse *p, const char *s, size_t n, size_t kn, const char *v, size_t vn) {
  lua_State *L = p->L;
  int valid = 0;
  if (has_prefix(s, kn, "lxc.limit.")) {
    lua_pushlstring(L, s, kn);
    warn_only(p, "%s: lxc.limit.* was renamed to lxc.prlimit.*", lua_tostring(L, -1), NULL);
    lua_pop(L, 1);
    valid = 1;
  }
  for (int i = 0; !valid && LXC_RAW_DEPRECATED[i][0]; i++)
    if (streq_n(s, kn, LXC_RAW_DEPRECATED[i][0])) {
      warn_only(p, "%s is deprecated and was renamed to %s", LXC_RAW_DEPRECATED[i][0], LXC_RAW_DEPRECATED[i][1]);
      valid = 1;
    }
  for (int i = 0; !valid && LXC_RAW_KEYS[i]; i++) valid = streq_n(s, kn, LXC_RAW_KEYS[i]);
  for (int i = 0; !valid && LXC_RAW_REFUSED[i][0]; i++)
    if (streq_n(s, kn, LXC_RAW_REFUSED[i][0])) return handle_error(p, "%s: %s", LXC_RAW_REFUSED[i][0], LXC_RAW_REFUSED[i][1]);
  if (!valid)
    valid = has_prefix(s, kn, "lxc.cgroup.") || has_prefix(s, kn, "lxc.cgroup2.") || has_prefix(s, kn, "lxc.prlimit.") ||
            has_prefix(s, kn, "lxc.net.");
  if (!valid) return handle_error(p, "unable to parse config: %.*s", SHOW(n), s);
  lua_getfield(L, p->conf, "lxc");
  lua_createtable(L, 2, 0);
  lua_pushlstring(L, s, kn);
  lua_rawseti(L, -2, 1);
  lua_pushlstring(L, v, vn);
  lua_rawseti(L, -2, 2);
  lua_rawseti(L, -2, (lua_Integer)lua_rawlen(L, -2) + 1);
  lua_pop(L, 1);
  return 1;
}

/* "k1,!k2" (split on [,; ]) -> {{key=, force=}, ...}, first position wins */
static void push_delete_list(lua_State *L, const char *s, size_t n) {
  lua_newtable(L);
  int list = lua_gettop(L);
  lua_newtable(L);
  int pos = lua_gettop(L);
  size_t i = 0;
  while (i < n) {
    while (i < n && (is_tag_sep(s[i]) || is_ws(s[i]))) i++;
    size_t j = i;
    while (j < n && !(is_tag_sep(s[j]) || is_ws(s[j]))) j++;
    if (j == i) break;
    int force = s[i] == '!';
    const char *k = s + i + force;
    size_t kn = j - i - (size_t)force;
    i = j;
    lua_pushlstring(L, k, kn);
    if (lua_rawget(L, pos) == LUA_TNUMBER) { /* again: the later flag wins */
      lua_rawget(L, list);
      lua_pushboolean(L, force);
      lua_setfield(L, -2, "force");
      lua_pop(L, 1);
      continue;
    }
    lua_pop(L, 1);
    lua_createtable(L, 0, 2);
    lua_pushlstring(L, k, kn);
    lua_setfield(L, -2, "key");
    lua_pushboolean(L, force);
    lua_setfield(L, -2, "force");
    lua_Integer at = (lua_Integer)lua_rawlen(L, list) + 1;
    lua_rawseti(L, list, at);
    lua_pushlstring(L, k, kn);
    lua_pushinteger(L, at);
    lua_rawset(L, pos);
  }
  lua_pop(L, 1);
}

/* ^[a-z][a-z_\-]*\d*: (qemu) or without '-' (lxc): the key's length. */
static size_t key_match(const char *s, size_t n, int kind) {
  size_t i = 0;
  if (n == 0 || !is_lower(s[0])) return 0;
  i = 1;
  while (i < n && (is_lower(s[i]) || s[i] == '_' || (kind == KIND_QEMU && s[i] == '-'))) i++;
  while (i < n && is_digit(s[i])) i++;
  return i < n && s[i] == ':' ? i : 0;
}

/* m/snapstate:\s*(prepare|delete)\s*$/ anywhere in the line */
/* The whole of s is an option name as key_match accepts it. */
static int name_ok(const char *s, size_t n, int kind) {
  size_t i = 1;
  if (n == 0 || !is_lower(s[0])) return 0;
  while (i < n && (is_lower(s[i]) || s[i] == '_' || (kind == KIND_QEMU && s[i] == '-'))) i++;
  while (i < n && is_digit(s[i])) i++;
  return i == n;
}

static const char *snapstate_match(const char *s, size_t n) {
  for (size_t i = 0; i + 10 <= n; i++) {
    if (memcmp(s + i, "snapstate:", 10) != 0) continue;
    const char *v = s + i + 10;
    size_t vn = n - i - 10;
    trim(&v, &vn);
    if (streq_n(v, vn, "prepare")) return "prepare";
    if (streq_n(v, vn, "delete")) return "delete";
  }
  return NULL;
}

/* main[k] = the value on top (popped) */
static void set_value(struct cparse *p, const char *k, size_t kn) {
  lua_State *L = p->L;
  lua_pushlstring(L, k, kn);
  lua_insert(L, -2);
  lua_rawset(L, p->main);
}

/* A key: value line. The value is on the stack top. */
static int key_line(struct cparse *p, const char *k, size_t kn, const char *v, size_t vn) {
  lua_State *L = p->L;
  lua_pushlstring(L, k, kn);
  int dup = lua_rawget(L, p->main) != LUA_TNIL;
  lua_pop(L, 1);
  if (dup && !handle_error(p, "duplicate key '%.*s'", SHOW(kn), k)) return 0;
  if (p->stype == S_SPECIAL && p->cloudinit) { /* informative only: not checked */
    lua_pushlstring(L, v, vn);
    set_value(p, k, kn);
    return 1;
  }
  const struct schema *sc =
      p->kind == KIND_LXC ? &LXC_SCHEMA : (p->stype == S_SPECIAL && p->fleecing) ? &FLEECING_SCHEMA : &QEMU_SCHEMA;
  struct err e;
  if (!check_type(L, p->kind, sc, k, kn, v, vn, &e)) {
    if (!handle_error(p, "unable to parse value of '%.*s' - %s", SHOW(kn), k, e.msg)) return 0;
    if (p->kind == KIND_QEMU) return 1;
    lua_pushlstring(L, v, vn); /* pve-container keeps it anyway */
    set_value(p, k, kn);
    return 1;
  }
  if (p->kind == KIND_QEMU) {
    if (streq_n(k, kn, "cdrom")) k = "ide2", kn = 4;
    const struct optdesc *o = find_opt(sc, k, kn);
    if (o && o->v == V_DRIVE && !canonical_drive(L, o->fmt, &e)) {
      lua_pop(L, 1);
      return handle_error(p, "unable to parse value of '%.*s'", SHOW(kn), k);
    }
  }
  set_value(p, k, kn);
  return 1;
}

static int config_line(struct cparse *p, const char *s, size_t n) {
  lua_State *L = p->L;
  int ok;
  if (all_ws(s, n)) return 1;
  if (header_line(p, s, n, &ok)) return ok;
  if (p->skip) return 1;
  if (s[0] == '#') {
    append_descr(p, s + 1, n - 1, 1);
    return 1;
  }
  size_t kn, vn;
  const char *v;
  if (p->kind == KIND_LXC && lxc_raw_match(s, n, &kn, &v, &vn)) return lxc_raw_line(p, s, n, kn, v, vn);
  if (has_prefix(s, n, "description:")) { /* the legacy form; a blank one is ignored */
    v = s + 12;
    vn = n - 12;
    trim(&v, &vn);
    if (vn) append_descr(p, v, vn, 0);
    return 1;
  }
  const char *st = snapstate_match(s, n);
  if (st) {
    lua_pushstring(L, st);
    lua_setfield(L, p->main, "snapstate");
    return 1;
  }
  if (p->kind == KIND_QEMU && has_prefix(s, n, "args:")) {
    v = s + 5;
    vn = n - 5;
    trim(&v, &vn);
    if (vn) {
      lua_pushlstring(L, v, vn);
      set_value(p, "args", 4);
      return 1;
    }
  }
  if (has_prefix(s, n, "delete:")) {
    v = s + 7;
    vn = n - 7;
    trim(&v, &vn);
    if (vn) {
      if (p->stype != S_PENDING)
        return handle_error(p, "property 'delete' is only allowed in %s",
                            p->kind == KIND_QEMU ? "[PENDING]" : "[pve:pending]");
      push_delete_list(L, v, vn);
      lua_setfield(L, p->res, "delete");
      return 1;
    }
  }
  kn = key_match(s, n, p->kind);
  if (kn && (v = lazy_value(s + kn + 1, n - kn - 1, &vn))) return key_line(p, s, kn, v, vn);
  return handle_error(p, "unable to parse config: %.*s", SHOW(n), s);
}

static void check_opts(lua_State *L, int idx, const char *const *allowed) {
  if (lua_isnoneornil(L, idx)) return;
  luaL_checktype(L, idx, LUA_TTABLE);
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    int known = 0;
    if (lua_type(L, -2) == LUA_TSTRING)
      for (int i = 0; allowed[i] && !known; i++) known = strcmp(lua_tostring(L, -2), allowed[i]) == 0;
    if (!known) {
      lua_pushvalue(L, -2);
      luaL_argerror(L, idx, lua_pushfstring(L, "unknown option '%s'", luaL_tolstring(L, -1, NULL)));
    }
    lua_pop(L, 1);
  }
}

static int l_parse_config(lua_State *L) {
  static const char *const allowed[] = {"strict", NULL};
  size_t n;
  const char *text = luaL_checklstring(L, 1, &n);
  struct cparse p;
  memset(&p, 0, sizeof p);
  p.L = L;
  p.kind = check_kind(L, 2);
  check_opts(L, 3, allowed);
  if (lua_istable(L, 3)) {
    lua_getfield(L, 3, "strict");
    p.strict = lua_toboolean(L, -1);
    lua_pop(L, 1);
  }
  lua_settop(L, 3);
  new_section(L);
  p.res = lua_gettop(L);
  new_section(L);
  lua_setfield(L, p.res, "pending");
  lua_newtable(L);
  lua_setfield(L, p.res, "delete");
  lua_newtable(L);
  lua_setfield(L, p.res, "special");
  lua_newtable(L);
  lua_setfield(L, p.res, "snapshots");
  lua_newtable(L);
  p.warns = lua_gettop(L);
  lua_pushvalue(L, p.warns);
  lua_setfield(L, p.res, "warnings");
  lua_pushvalue(L, p.res);
  p.conf = lua_gettop(L);
  lua_getfield(L, p.res, "main");
  p.main = lua_gettop(L);
  lua_pushnil(L);
  p.descr = lua_gettop(L);
  p.stype = S_MAIN;
  size_t i = 0;
  while (i < n) {
    const char *nl = memchr(text + i, '\n', n - i);
    size_t j = nl ? (size_t)(nl - text) : n;
    p.line++;
    if (!config_line(&p, text + i, j - i)) {
      lua_pushnil(L);
      lua_pushstring(L, p.e.msg);
      return 2;
    }
    i = j + 1;
  }
  finish_description(&p);
  lua_getfield(L, p.res, "main");
  lua_pushnil(L);
  lua_setfield(L, -2, "snapstate");
  lua_settop(L, p.res);
  return 1;
}

/* ------------------------------------------------------------------ */
/* write_config                                                         */

enum { R_MAIN, R_PENDING, R_SPECIAL, R_SNAPSHOT };

struct wctx {
  lua_State *L;
  int kind;
  int out; /* list of output pieces */
  struct err e;
};

static void emit(struct wctx *w) { /* pops the string on top into the output */
  lua_rawseti(w->L, w->out, (lua_Integer)lua_rawlen(w->L, w->out) + 1);
}

static void emit_lit(struct wctx *w, const char *s) {
  lua_pushstring(w->L, s);
  emit(w);
}

struct keyref {
  const char *s;
  size_t n;
};

static int keyref_cmp(const void *a, const void *b) {
  const struct keyref *x = a, *y = b;
  int c = memcmp(x->s, y->s, x->n < y->n ? x->n : y->n);
  if (c) return c;
  return x->n < y->n ? -1 : x->n > y->n;
}

/* A new list of the string keys of the table at t, sorted bytewise. */
static void push_sorted_keys(lua_State *L, int t) {
  size_t count = 0;
  lua_pushnil(L);
  while (lua_next(L, t)) {
    lua_pop(L, 1);
    count++;
  }
  struct keyref *refs = lua_newuserdatauv(L, (count ? count : 1) * sizeof *refs, 0);
  size_t k = 0;
  lua_pushnil(L);
  while (lua_next(L, t)) {
    lua_pop(L, 1);
    if (lua_type(L, -1) == LUA_TSTRING && k < count) {
      refs[k].s = lua_tolstring(L, -1, &refs[k].n); /* kept alive by the table */
      k++;
    }
  }
  qsort(refs, k, sizeof *refs, keyref_cmp);
  lua_createtable(L, (int)k, 0);
  for (size_t i = 0; i < k; i++) {
    lua_pushlstring(L, refs[i].s, refs[i].n);
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
  lua_remove(L, -2);
}

/* A table field that must be nil or a table: pushes it (or an empty one). */
static int get_table(struct wctx *w, int t, const char *field, const char *where) {
  int ty = lua_getfield(w->L, t, field);
  if (ty == LUA_TNIL) {
    lua_pop(w->L, 1);
    lua_newtable(w->L);
    return 1;
  }
  if (ty != LUA_TTABLE) return fail(&w->e, "%s%s must be a table", where, field);
  return 1;
}

/* The text of a value given as string, integer, number or boolean. */
static int push_value_text(lua_State *L, int idx) {
  switch (lua_type(L, idx)) {
    case LUA_TSTRING:
      lua_pushvalue(L, idx);
      return 1;
    case LUA_TBOOLEAN:
      lua_pushstring(L, lua_toboolean(L, idx) ? "1" : "0");
      return 1;
    case LUA_TNUMBER:
      if (lua_isinteger(L, idx))
        lua_pushfstring(L, "%I", lua_tointeger(L, idx));
      else
        push_number_text(L, lua_tonumber(L, idx));
      return 1;
    default:
      return 0;
  }
}

/* Collects a section's key -> text table (pushed), checked like
 * write_vm_config / write_pct_config do. */
static int collect_values(struct wctx *w, int sec, int role, const char *where) {
  lua_State *L = w->L;
  if (!get_table(w, sec, "main", where)) return 0;
  int main = lua_gettop(L);
  lua_newtable(L);
  int kv = lua_gettop(L);
  lua_pushnil(L);
  while (lua_next(L, main)) {
    size_t kn, vn;
    const char *k = lua_type(L, -2) == LUA_TSTRING ? lua_tolstring(L, -2, &kn) : NULL;
    if (!k || !name_ok(k, kn, w->kind))
      return fail(&w->e, "%sinvalid key '%s'", where, k ? k : "(not a string)");
    if (streq_n(k, kn, "digest") || (role == R_MAIN && streq_n(k, kn, "snapstate"))) {
      lua_pop(L, 1);
      continue;
    }
    if (streq_n(k, kn, "description")) return fail(&w->e, "%sthe description goes in the 'description' field", where);
    if (!push_value_text(L, -1)) return fail(&w->e, "%svalue of '%s' must be a string, number or boolean", where, k);
    const char *v = lua_tolstring(L, -1, &vn);
    if (memchr(v, '\n', vn) || memchr(v, '\r', vn))
      return fail(&w->e, "%sdetected invalid newline inside property '%s'", where, k);
    if (vn == 0) return fail(&w->e, "%sempty value for '%s'", where, k);
    if (w->kind == KIND_QEMU && role != R_SPECIAL) {
      if (!check_type(L, w->kind, &QEMU_SCHEMA, k, kn, v, vn, &w->e)) {
        char msg[sizeof w->e.msg];
        snprintf(msg, sizeof msg, "%s", w->e.msg);
        return fail(&w->e, "%sunable to parse value of '%s' - %s", where, k, msg);
      }
      lua_remove(L, -2);
    }
    lua_pushvalue(L, -3);
    lua_insert(L, -2);
    lua_rawset(L, kv); /* kv[k] = text */
    lua_pop(L, 1);
  }
  lua_remove(L, main);
  return 1;
}

/* qemu's write_vm_config: cdrom becomes ide2, smp becomes sockets. */
static int qemu_main_fixups(struct wctx *w, int kv) {
  lua_State *L = w->L;
  if (lua_getfield(L, kv, "cdrom") != LUA_TNIL) {
    if (lua_getfield(L, kv, "ide2") != LUA_TNIL) return fail(&w->e, "option ide2 conflicts with cdrom");
    lua_pop(L, 1);
    lua_setfield(L, kv, "ide2");
    lua_pushnil(L);
    lua_setfield(L, kv, "cdrom");
  } else {
    lua_pop(L, 1);
  }
  int sockets = lua_getfield(L, kv, "sockets") != LUA_TNIL && perl_true(lua_tostring(L, -1), lua_rawlen(L, -1));
  lua_pop(L, 1);
  if (sockets) {
    lua_pushnil(L);
    lua_setfield(L, kv, "smp");
  } else if (lua_getfield(L, kv, "smp") != LUA_TNIL && perl_true(lua_tostring(L, -1), lua_rawlen(L, -1))) {
    lua_setfield(L, kv, "sockets");
    lua_pushnil(L);
    lua_setfield(L, kv, "cores");
    lua_pushnil(L);
    lua_setfield(L, kv, "smp");
  } else {
    lua_pop(L, 1);
  }
  return 1;
}

/* Adds the volumes a section's values use to the set at used. */
static void add_used_volumes(struct wctx *w, int kv, int used) {
  lua_State *L = w->L;
  lua_pushnil(L);
  while (lua_next(L, kv)) {
    size_t kn, vn;
    const char *k = lua_tolstring(L, -2, &kn);
    const char *v = lua_tolstring(L, -1, &vn);
    const char *fmt = NULL;
    if (w->kind == KIND_QEMU) {
      const struct optdesc *o = find_opt(&QEMU_SCHEMA, k, kn);
      if (o && (o->v == V_DRIVE || (o->fmt && (strcmp(o->fmt, "qemu-efidisk") == 0 || strcmp(o->fmt, "qemu-tpmstate") == 0))))
        fmt = o->fmt;
      if (fmt && strcmp(k, "cdrom") != 0 && push_drive_file(L, fmt, v, vn)) {
        lua_pushboolean(L, 1);
        lua_rawset(L, used);
      }
    } else if (streq_n(k, kn, "rootfs") || (kn > 2 && k[0] == 'm' && k[1] == 'p' && all_digits(k + 2, kn - 2))) {
      struct err e;
      if (prop_parse(L, find_format(kn == 6 && k[0] == 'r' ? "lxc-rootfs" : "lxc-mp"), v, vn, &e)) {
        lua_getfield(L, -1, "volume");
        lua_remove(L, -2);
        if (lua_tostring(L, -1)[0] != '/') { /* bind mounts and devices are not volumes */
          lua_pushboolean(L, 1);
          lua_rawset(L, used);
        } else {
          lua_pop(L, 1);
        }
      }
    }
    lua_pop(L, 1);
  }
}

/* Drops unusedN entries whose volume is in use again. */
static void drop_reused(lua_State *L, int kv, int used) {
  lua_newtable(L);
  int drop = lua_gettop(L);
  lua_pushnil(L);
  while (lua_next(L, kv)) {
    if (has_prefix(lua_tostring(L, -2), lua_rawlen(L, -2), "unused") && lua_rawget(L, used) != LUA_TNIL) {
      lua_pushvalue(L, -2);
      lua_rawseti(L, drop, (lua_Integer)lua_rawlen(L, drop) + 1);
    }
    lua_pop(L, 1);
  }
  for (lua_Integer i = 1; i <= (lua_Integer)lua_rawlen(L, drop); i++) {
    lua_rawgeti(L, drop, i);
    lua_pushnil(L);
    lua_rawset(L, kv);
  }
  lua_pop(L, 1);
}

/* split(/\n/, $descr): one '#'-line per piece, trailing empties dropped */
static void emit_description(struct wctx *w, const char *d, size_t n) {
  lua_State *L = w->L;
  while (n && d[n - 1] == '\n') n--;
  size_t i = 0;
  while (i < n) {
    const char *nl = memchr(d + i, '\n', n - i);
    size_t j = nl ? (size_t)(nl - d) : n;
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    luaL_addchar(&b, '#');
    encode_text_buf(&b, d + i, j - i);
    luaL_addchar(&b, '\n');
    luaL_pushresult(&b);
    emit(w);
    i = j + 1;
  }
}

/* ^lxc\.[a-z0-9_\-\.]+$ */
static int lxc_raw_key_ok(const char *k, size_t n) {
  if (!has_prefix(k, n, "lxc.") || n == 4) return 0;
  for (size_t i = 4; i < n; i++)
    if (!is_lxc_key_char(k[i])) return 0;
  return 1;
}

/* Writes one section: description lines, sorted keys, raw lxc lines. */
static int emit_section(struct wctx *w, int sec, int kv, int role, const char *where) {
  lua_State *L = w->L;
  int ty = lua_getfield(L, sec, "description");
  if (ty != LUA_TNIL && ty != LUA_TSTRING) return fail(&w->e, "%sdescription must be a string", where);
  if (ty == LUA_TSTRING) {
    size_t dn;
    const char *d = lua_tolstring(L, -1, &dn);
    if (perl_true(d, dn))
      emit_description(w, d, dn);
    else if (w->kind == KIND_QEMU && role == R_PENDING)
      emit_lit(w, "#\n");
  }
  lua_pop(L, 1);
  push_sorted_keys(L, kv);
  int keys = lua_gettop(L);
  for (lua_Integer i = 1; i <= (lua_Integer)lua_rawlen(L, keys); i++) {
    lua_rawgeti(L, keys, i);
    lua_pushliteral(L, ": ");
    lua_pushvalue(L, -2);
    lua_rawget(L, kv);
    lua_pushliteral(L, "\n");
    lua_concat(L, 4); /* values may hold NUL bytes: no %s */
    emit(w);
  }
  lua_pop(L, 1);
  if (!get_table(w, sec, "lxc", where)) return 0;
  int raw = lua_gettop(L);
  lua_Integer nraw = (lua_Integer)lua_rawlen(L, raw);
  if (nraw && w->kind != KIND_LXC) return fail(&w->e, "%sraw lxc entries are only valid for containers", where);
  for (lua_Integer i = 1; i <= nraw; i++) {
    if (lua_rawgeti(L, raw, i) != LUA_TTABLE) return fail(&w->e, "%slxc[%d] must be a {key, value} pair", where, (int)i);
    lua_rawgeti(L, -1, 1);
    lua_rawgeti(L, -2, 2);
    size_t kn, vn;
    const char *k = lua_type(L, -2) == LUA_TSTRING ? lua_tolstring(L, -2, &kn) : NULL;
    if (!k || !lxc_raw_key_ok(k, kn)) return fail(&w->e, "%slxc[%d]: invalid raw lxc key", where, (int)i);
    if (lua_isnil(L, -1)) {
      lua_pop(L, 1);
      lua_pushliteral(L, "");
    }
    if (!push_value_text(L, -1)) return fail(&w->e, "%slxc[%d]: value must be a string", where, (int)i);
    const char *v = lua_tolstring(L, -1, &vn);
    if (memchr(v, '\n', vn) || memchr(v, '\r', vn)) return fail(&w->e, "%slxc[%d]: value contains a newline", where, (int)i);
    lua_pushlstring(L, k, kn);
    lua_pushliteral(L, ": ");
    lua_pushlstring(L, v, vn);
    lua_pushliteral(L, "\n");
    lua_concat(L, 4);
    emit(w);
    lua_pop(L, 4);
  }
  lua_pop(L, 1);
  return 1;
}

/* The pending 'delete' list as "k1,!k2" (pushed), or nothing and 0. */
static int push_delete_text(struct wctx *w, int list) {
  lua_State *L = w->L;
  lua_Integer n = (lua_Integer)lua_rawlen(L, list);
  if (n == 0) return 0;
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  for (lua_Integer i = 1; i <= n; i++) {
    int force = 0;
    if (lua_rawgeti(L, list, i) == LUA_TTABLE) {
      lua_getfield(L, -1, "force");
      force = lua_toboolean(L, -1);
      lua_getfield(L, -2, "key");
      lua_remove(L, -2);
      lua_remove(L, -2);
    }
    size_t kn = 0;
    const char *k = lua_type(L, -1) == LUA_TSTRING ? lua_tolstring(L, -1, &kn) : NULL;
    if (!k || !name_ok(k, kn, w->kind)) {
      lua_pop(L, 1);
      luaL_pushresult(&b);
      lua_pop(L, 1);
      fail(&w->e, "delete[%d] must be an option name or {key=, force=}", (int)i);
      return -1;
    }
    if (i > 1 || force) {
      lua_pushstring(L, i > 1 ? (force ? ",!" : ",") : "!");
      lua_insert(L, -2);
      lua_concat(L, 2);
    }
    luaL_addvalue(&b);
  }
  luaL_pushresult(&b);
  return 1;
}

/* PVE::QemuConfig->has_cloudinit: a disk whose file is a cloudinit image */
static int has_cloudinit(struct wctx *w, int kv) {
  lua_State *L = w->L;
  int found = 0;
  lua_pushnil(L);
  while (!found && lua_next(L, kv)) {
    size_t kn, vn;
    const char *k = lua_tolstring(L, -2, &kn);
    const char *v = lua_tolstring(L, -1, &vn);
    const struct optdesc *o = find_opt(&QEMU_SCHEMA, k, kn);
    if (o && o->fmt && (o->v == V_DRIVE || strcmp(o->fmt, "qemu-efidisk") == 0 || strcmp(o->fmt, "qemu-tpmstate") == 0) &&
        strcmp(k, "cdrom") != 0 && push_drive_file(L, o->fmt, v, vn)) {
      size_t fn;
      const char *f = lua_tolstring(L, -1, &fn);
      /* [:/](?:vm-\d+-)?cloudinit(?:\.(raw|qcow|qed|qcow2|vmdk|cloop))?$ */
      static const char *const ext[] = {"", ".raw", ".qcow", ".qed", ".qcow2", ".vmdk", ".cloop", NULL};
      for (int e = 0; ext[e] && !found; e++) {
        size_t en = strlen(ext[e]) + 9;
        if (fn <= en || memcmp(f + fn - en, "cloudinit", 9) != 0 || memcmp(f + fn - en + 9, ext[e], en - 9) != 0) continue;
        size_t at = fn - en; /* start of "cloudinit" */
        if (f[at - 1] == ':' || f[at - 1] == '/') found = 1;
        else if (f[at - 1] == '-') { /* vm-\d+- */
          size_t d = at - 1;
          while (d > 0 && is_digit(f[d - 1])) d--;
          found = d < at - 1 && d >= 4 && memcmp(f + d - 3, "vm-", 3) == 0 && (f[d - 4] == ':' || f[d - 4] == '/');
        }
      }
      lua_pop(L, 1);
    }
    lua_pop(L, 1);
  }
  if (found) lua_pop(L, 1); /* the key left by the early stop */
  return found;
}

/* Is there anything to write in the pending section? */
static int pending_nonempty(lua_State *L, int kind_qemu, int sec, int kv, int has_delete) {
  int top = lua_gettop(L);
  int any = has_delete;
  if (!any) {
    lua_pushnil(L);
    any = lua_next(L, kv) != 0;
  }
  if (!any && lua_getfield(L, sec, "description") == LUA_TSTRING) {
    /* pve-container: a description that makes no '#' line would leave an
     * empty section that reads back as none; it does not count */
    size_t dn;
    const char *d = lua_tolstring(L, -1, &dn);
    any = lua_type(L, -1) == LUA_TSTRING && (kind_qemu || (perl_true(d, dn) && strspn(d, "\n") < dn));
  }
  if (!any) any = lua_getfield(L, sec, "lxc") == LUA_TTABLE && lua_rawlen(L, -1) > 0;
  lua_settop(L, top);
  return any;
}

/* Writes the named sections of group (sorted by name) after the main one. */
static int emit_group(struct wctx *w, int tbl, const char *group, int main_kv) {
  lua_State *L = w->L;
  char where[120];
  if (!get_table(w, tbl, group, "")) return 0;
  int g = lua_gettop(L);
  push_sorted_keys(L, g);
  int names = lua_gettop(L);
  lua_Integer count = 0;
  lua_pushnil(L);
  while (lua_next(L, g)) {
    lua_pop(L, 1);
    count++;
  }
  if (count != (lua_Integer)lua_rawlen(L, names)) return fail(&w->e, "%s: section names must be strings", group);
  int special = strcmp(group, "special") == 0;
  if (special && count && w->kind != KIND_QEMU) return fail(&w->e, "special sections are only valid for VMs");
  for (lua_Integer i = 1; i <= count; i++) {
    lua_rawgeti(L, names, i);
    size_t nn;
    const char *name = lua_tolstring(L, -1, &nn);
    snprintf(where, sizeof where, "%s '%.*s': ", special ? "special section" : "snapshot", SHOW(nn), name);
    if (special) {
      if (!streq_n(name, nn, "cloudinit") && !streq_n(name, nn, "fleecing"))
        return fail(&w->e, "unknown special section '%.*s'", SHOW(nn), name);
    } else if (!snapshot_name(name, nn)) {
      return fail(&w->e, "invalid snapshot name '%.*s'", SHOW(nn), name);
    } else if (w->kind == KIND_QEMU && strieq_n(name, nn, "pending")) {
      return fail(&w->e, "snapshot name '%.*s' is forbidden", SHOW(nn), name);
    }
    if (lua_rawget(L, g) != LUA_TTABLE) return fail(&w->e, "%smust be a table", where);
    int sec = lua_gettop(L);
    if (!collect_values(w, sec, special ? R_SPECIAL : R_SNAPSHOT, where)) return 0;
    int kv = lua_gettop(L);
    if (!(special && streq_n(name, nn, "cloudinit") && !has_cloudinit(w, main_kv))) {
      lua_pushfstring(L, special ? "\n[special:%s]\n" : "\n[%s]\n", name);
      emit(w);
      if (!emit_section(w, sec, kv, special ? R_SPECIAL : R_SNAPSHOT, where)) return 0;
    }
    lua_settop(L, names);
  }
  lua_settop(L, g - 1);
  return 1;
}

static int write_all(struct wctx *w, int tbl) {
  lua_State *L = w->L;
  if (!collect_values(w, tbl, R_MAIN, "")) return 0;
  int main_kv = lua_gettop(L);
  if (w->kind == KIND_QEMU && !qemu_main_fixups(w, main_kv)) return 0;
  int ty = lua_getfield(L, tbl, "pending");
  if (ty == LUA_TNIL) {
    lua_pop(L, 1);
    new_section(L);
  } else if (ty != LUA_TTABLE) {
    return fail(&w->e, "pending must be a table");
  }
  int pend = lua_gettop(L);
  const char *pwhere = w->kind == KIND_QEMU ? "[PENDING]: " : "[pve:pending]: ";
  if (!collect_values(w, pend, R_PENDING, pwhere)) return 0;
  int pend_kv = lua_gettop(L);
  if (!get_table(w, tbl, "delete", "")) return 0;
  int del = push_delete_text(w, lua_gettop(L));
  if (del < 0) return 0;
  if (del) lua_setfield(L, pend_kv, "delete");
  /* unusedN entries go when their volume is in use again */
  lua_newtable(L);
  int used = lua_gettop(L);
  add_used_volumes(w, main_kv, used);
  if (w->kind == KIND_QEMU) add_used_volumes(w, pend_kv, used);
  drop_reused(L, main_kv, used);
  if (!emit_section(w, tbl, main_kv, R_MAIN, "")) return 0;
  if (pending_nonempty(L, w->kind == KIND_QEMU, pend, pend_kv, del)) {
    emit_lit(w, w->kind == KIND_QEMU ? "\n[PENDING]\n" : "\n[pve:pending]\n");
    if (!emit_section(w, pend, pend_kv, R_PENDING, pwhere)) return 0;
  }
  if (!emit_group(w, tbl, "special", main_kv)) return 0;
  return emit_group(w, tbl, "snapshots", main_kv);
}

static int l_write_config(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  struct wctx w;
  w.L = L;
  w.kind = check_kind(L, 2);
  lua_settop(L, 2);
  lua_newtable(L);
  w.out = lua_gettop(L);
  if (!write_all(&w, 1)) {
    lua_pushnil(L);
    lua_pushstring(L, w.e.msg);
    return 2;
  }
  lua_settop(L, w.out);
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  lua_Integer n = (lua_Integer)lua_rawlen(L, w.out);
  for (lua_Integer i = 1; i <= n; i++) {
    lua_rawgeti(L, w.out, i);
    luaL_addvalue(&b);
  }
  luaL_pushresult(&b);
  return 1;
}

static int l_format_of(lua_State *L) {
  size_t n;
  const char *k = luaL_checklstring(L, 1, &n);
  int kind = check_kind(L, 2);
  const struct optdesc *o = find_opt(kind == KIND_LXC ? &LXC_SCHEMA : &QEMU_SCHEMA, k, n);
  if (o && (o->v == V_PROP || o->v == V_DRIVE))
    lua_pushstring(L, o->fmt);
  else if (o && o->v == V_STARTUP)
    lua_pushliteral(L, "startup");
  else
    lua_pushnil(L);
  return 1;
}

/* ------------------------------------------------------------------ */
/* CLI output: shared helpers                                           */

/* Iterates lines: *line gets the next one (without '\n'); 0 at the end. */
struct lines {
  const char *s;
  size_t n, at;
  long no;
};

static int next_line(struct lines *it, const char **line, size_t *len) {
  if (it->at >= it->n) return 0;
  const char *start = it->s + it->at;
  const char *nl = memchr(start, '\n', it->n - it->at);
  size_t l = nl ? (size_t)(nl - start) : it->n - it->at;
  it->at += l + 1;
  it->no++;
  if (l && start[l - 1] == '\r') l--;
  *line = start;
  *len = l;
  return 1;
}

/* nil, "line N: msg" */
static int line_error(lua_State *L, long no, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int line_error(lua_State *L, long no, const char *fmt, ...) {
  char msg[300];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  lua_pushnil(L);
  lua_pushfstring(L, "line %d: %s", (int)no, msg);
  return 2;
}

/* Splits on runs of blanks: up to max tokens, returns the count. */
static int split_ws(const char *s, size_t n, const char **tok, size_t *tn, int max) {
  int c = 0;
  size_t i = 0;
  while (i < n) {
    while (i < n && is_ws(s[i])) i++;
    if (i >= n) break;
    size_t j = i;
    while (j < n && !is_ws(s[j])) j++;
    if (c < max) {
      tok[c] = s + i;
      tn[c] = j - i;
    }
    c++;
    i = j;
  }
  return c;
}

static void append_row(lua_State *L, int list) { lua_rawseti(L, list, (lua_Integer)lua_rawlen(L, list) + 1); }

static void set_str(lua_State *L, int t, const char *k, const char *s, size_t n) {
  lua_pushlstring(L, s, n);
  lua_setfield(L, t, k);
}

/* digits -> integer, else the text */
static void push_count(lua_State *L, const char *s, size_t n) {
  long long v;
  if (all_digits(s, n) && parse_int(s, n, &v))
    lua_pushinteger(L, (lua_Integer)v);
  else
    lua_pushlstring(L, s, n);
}

/* ------------------------------------------------------------------ */
/* pvesm status                                                          */

static int l_parse_pvesm_status(lua_State *L) {
  size_t n;
  const char *text = luaL_checklstring(L, 1, &n);
  struct lines it = {text, n, 0, 0};
  const char *line;
  size_t len;
  lua_newtable(L);
  int rows = lua_gettop(L);
  while (next_line(&it, &line, &len)) {
    const char *tok[8];
    size_t tn[8];
    int c = split_ws(line, len, tok, tn, 8);
    if (c == 0) continue;
    if (c >= 3 && streq_n(tok[0], tn[0], "Name") && streq_n(tok[1], tn[1], "Type") && streq_n(tok[2], tn[2], "Status"))
      continue;
    if (c != 7) return line_error(L, it.no, "expected 7 columns, got %d", c);
    int active = streq_n(tok[2], tn[2], "active"), disabled = streq_n(tok[2], tn[2], "disabled");
    if (!active && !disabled && !streq_n(tok[2], tn[2], "inactive"))
      return line_error(L, it.no, "unknown status '%.*s'", SHOW(tn[2]), tok[2]);
    lua_createtable(L, 0, 9);
    int row = lua_gettop(L);
    set_str(L, row, "name", tok[0], tn[0]);
    set_str(L, row, "type", tok[1], tn[1]);
    set_str(L, row, "status", tok[2], tn[2]);
    static const char *const cols[] = {"total", "used", "available"};
    for (int k = 0; k < 3; k++) {
      long long v;
      if (!all_digits(tok[3 + k], tn[3 + k]) || !parse_int(tok[3 + k], tn[3 + k], &v))
        return line_error(L, it.no, "%s is not a number: '%.*s'", cols[k], SHOW(tn[3 + k]), tok[3 + k]);
      lua_pushinteger(L, (lua_Integer)v);
      lua_setfield(L, row, cols[k]);
    }
    const char *pc = tok[6];
    size_t pn = tn[6];
    if (!streq_n(pc, pn, "N/A")) {
      if (pn < 2 || pc[pn - 1] != '%' || !is_number_text(pc, pn - 1) || pc[0] == '-' || pc[0] == '+')
        return line_error(L, it.no, "bad percentage '%.*s'", SHOW(pn), pc);
      lua_pushnumber(L, text_to_double(pc, pn - 1));
      lua_setfield(L, row, "percent");
    }
    lua_pushboolean(L, active);
    lua_setfield(L, row, "active");
    lua_pushboolean(L, !disabled);
    lua_setfield(L, row, "enabled");
    append_row(L, rows);
  }
  return 1;
}

/* ------------------------------------------------------------------ */
/* zfs get / zfs list                                                    */

/* Column names from a list argument (strings) into a new table; count. */
static int column_list(lua_State *L, int idx) {
  luaL_checktype(L, idx, LUA_TTABLE);
  int n = (int)lua_rawlen(L, idx);
  luaL_argcheck(L, n > 0 && n <= 64, idx, "expected a list of 1 to 64 column names");
  for (int i = 1; i <= n; i++) {
    if (lua_rawgeti(L, idx, i) != LUA_TSTRING) luaL_argerror(L, idx, "column names must be strings");
    lua_pop(L, 1);
  }
  return n;
}

/* Splits a line on tabs into exactly ncols fields; -1 when the count differs. */
static int split_tabs(const char *s, size_t n, const char **f, size_t *fn, int ncols) {
  int c = 0;
  size_t i = 0;
  for (;;) {
    const char *tab = memchr(s + i, '\t', n - i);
    size_t j = tab ? (size_t)(tab - s) : n;
    if (c < ncols) {
      f[c] = s + i;
      fn[c] = j - i;
    }
    c++;
    if (!tab) break;
    i = j + 1;
  }
  return c;
}

static int is_numeric_zfs_column(const char *k) {
  static const char *const cols[] = {"used", "avail", "available", "refer", "referenced", "volsize", "quota",
                                     "refquota", "reservation", "refreservation", "written", "logicalused",
                                     "logicalreferenced", "usedbysnapshots", "usedbydataset", "usedbychildren",
                                     "usedbyrefreservation", "creation", "size", "alloc", "free", "createtxg",
                                     "volblocksize", "recordsize", "filesystem_count", "snapshot_count", NULL};
  for (int i = 0; cols[i]; i++)
    if (strcmp(k, cols[i]) == 0) return 1;
  return 0;
}

/* "inherited from X" becomes source = "inherited", inherited_from = X */
static void set_source(lua_State *L, int row, const char *s, size_t n) {
  if (n > 15 && memcmp(s, "inherited from ", 15) == 0) {
    set_str(L, row, "source", "inherited", 9);
    set_str(L, row, "inherited_from", s + 15, n - 15);
  } else {
    set_str(L, row, "source", s, n);
  }
}

static int l_parse_zfs_get(lua_State *L) {
  size_t n;
  const char *text = luaL_checklstring(L, 1, &n);
  int ncols = 4;
  if (!lua_isnoneornil(L, 2))
    ncols = column_list(L, 2);
  else {
    lua_settop(L, 1);
    lua_createtable(L, 4, 0);
    static const char *const def[] = {"name", "property", "value", "source"};
    for (int i = 0; i < 4; i++) {
      lua_pushstring(L, def[i]);
      lua_rawseti(L, 2, i + 1);
    }
  }
  lua_settop(L, 2);
  lua_newtable(L);
  int rows = 3;
  struct lines it = {text, n, 0, 0};
  const char *line, *f[64];
  size_t len, fn[64];
  while (next_line(&it, &line, &len)) {
    if (len == 0) continue;
    int c = split_tabs(line, len, f, fn, ncols);
    if (c != ncols) return line_error(L, it.no, "expected %d tab-separated fields, got %d", ncols, c);
    lua_createtable(L, 0, ncols + 1);
    for (int k = 0; k < ncols; k++) {
      lua_rawgeti(L, 2, k + 1);
      const char *col = lua_tostring(L, -1);
      if (strcmp(col, "source") == 0)
        set_source(L, rows + 1, f[k], fn[k]);
      else
        set_str(L, rows + 1, col, f[k], fn[k]);
      lua_pop(L, 1);
    }
    append_row(L, rows);
  }
  return 1;
}

static int l_parse_zfs_list(lua_State *L) {
  size_t n;
  const char *text = luaL_checklstring(L, 1, &n);
  int header = lua_isnoneornil(L, 2), ncols = header ? 0 : column_list(L, 2);
  lua_settop(L, 2);
  lua_newtable(L);
  int rows = 3;
  struct lines it = {text, n, 0, 0};
  const char *line, *f[64];
  size_t len, fn[64];
  while (next_line(&it, &line, &len)) {
    if (all_ws(line, len)) continue;
    int c;
    if (header && ncols == 0) { /* without -H: the first line names the columns */
      c = split_ws(line, len, f, fn, 64);
      if (c > 64) return line_error(L, it.no, "too many columns");
      lua_createtable(L, c, 0);
      for (int k = 0; k < c; k++) {
        luaL_Buffer b;
        luaL_buffinit(L, &b);
        for (size_t x = 0; x < fn[k]; x++) luaL_addchar(&b, (char)tolower((unsigned char)f[k][x]));
        luaL_pushresult(&b);
        lua_rawseti(L, -2, k + 1);
      }
      lua_replace(L, 2);
      ncols = c;
      continue;
    }
    c = header ? split_ws(line, len, f, fn, 64) : split_tabs(line, len, f, fn, ncols);
    if (c != ncols) return line_error(L, it.no, "expected %d fields, got %d", ncols, c);
    lua_createtable(L, 0, ncols);
    for (int k = 0; k < ncols; k++) {
      lua_rawgeti(L, 2, k + 1);
      const char *col = lua_tostring(L, -1);
      if (is_numeric_zfs_column(col))
        push_count(L, f[k], fn[k]);
      else
        lua_pushlstring(L, f[k], fn[k]);
      lua_setfield(L, rows + 1, col);
      lua_pop(L, 1);
    }
    append_row(L, rows);
  }
  return 1;
}

/* ------------------------------------------------------------------ */
/* zpool status                                                          */

static const char *const ZPOOL_FIELDS[] = {"pool", "id", "state", "status", "action", "see", "scan",
                                           "scrub", "remove", "checkpoint", "config", "errors", NULL};

/* "  key: value" with a known key: the key's name, value in v/vn. */
static const char *zpool_field(const char *s, size_t n, const char **v, size_t *vn) {
  size_t i = 0;
  while (i < n && s[i] == ' ') i++;
  size_t k = i;
  while (i < n && is_lower(s[i])) i++;
  if (i == k || i >= n || s[i] != ':' || (i + 1 < n && !is_ws(s[i + 1]))) return NULL;
  for (int f = 0; ZPOOL_FIELDS[f]; f++)
    if (streq_n(s + k, i - k, ZPOOL_FIELDS[f])) {
      *v = s + i + 1;
      *vn = n - i - 1;
      trim(v, vn);
      return ZPOOL_FIELDS[f];
    }
  return NULL;
}

/* leading blanks as columns, tabs to the next multiple of 8 */
static size_t indent_cols(const char *s, size_t n, size_t *skip) {
  size_t col = 0, i = 0;
  for (; i < n && (s[i] == ' ' || s[i] == '\t'); i++) col = s[i] == ' ' ? col + 1 : (col / 8 + 1) * 8;
  *skip = i;
  return col;
}

/* READ/WRITE/CKSUM: 0, 12, 1.2K */
static int is_err_count(const char *s, size_t n) {
  if (n && strchr("KMGTPE", s[n - 1]) && s[n - 1]) n--;
  return n && is_number_text(s, n) && is_digit(s[0]);
}

struct zst {
  lua_State *L;
  int pools, pool, parents; /* stack slots; pool 0 = none yet */
  int mode;                 /* 0 fields, 1 config, 2 errors */
  long base;                /* indent of the NAME header, -1 before it */
  const char *last;         /* field that continuation lines extend */
};

static void zpool_new(struct zst *z) {
  lua_State *L = z->L;
  lua_settop(L, z->parents);
  lua_createtable(L, 0, 10);
  lua_newtable(L);
  lua_setfield(L, -2, "config");
  lua_pushvalue(L, -1);
  append_row(L, z->pools);
  z->pool = lua_gettop(L);
  lua_newtable(L);
  lua_replace(L, z->parents);
  z->mode = 0;
  z->base = -1;
  z->last = NULL;
}

/* Appends text to a pool field, joined by sep. */
static void zpool_extend(struct zst *z, const char *field, const char *sep, const char *s, size_t n) {
  lua_State *L = z->L;
  if (lua_getfield(L, z->pool, field) == LUA_TSTRING && lua_rawlen(L, -1) > 0) {
    lua_pushstring(L, sep);
    lua_pushlstring(L, s, n);
    lua_concat(L, 3);
  } else {
    lua_pop(L, 1);
    lua_pushlstring(L, s, n);
  }
  lua_setfield(L, z->pool, field);
}

static int zpool_is_header(const char *s, size_t n) {
  const char *tok[3];
  size_t tn[3];
  int c = split_ws(s, n, tok, tn, 3);
  return c >= 2 && streq_n(tok[0], tn[0], "NAME") && streq_n(tok[1], tn[1], "STATE");
}

/* One row of the config tree; 0 and a message on a malformed row. */
static int zpool_row(struct zst *z, const char *s, size_t n, char *err, size_t errn) {
  lua_State *L = z->L;
  size_t skip, ind = indent_cols(s, n, &skip);
  if ((long)ind < z->base) return snprintf(err, errn, "config row indented less than its header"), 0;
  long depth = ((long)ind - z->base) / 2;
  const char *tok[5];
  size_t tn[5];
  int c = split_ws(s, n, tok, tn, 5);
  lua_createtable(L, 0, 8);
  int row = lua_gettop(L);
  set_str(L, row, "name", tok[0], tn[0]);
  lua_pushinteger(L, depth);
  lua_setfield(L, row, "depth");
  if (depth > 0 && lua_rawgeti(L, z->parents, depth) == LUA_TSTRING)
    lua_setfield(L, row, "parent");
  else if (depth > 0)
    lua_pop(L, 1);
  lua_getfield(L, row, "name");
  lua_rawseti(L, z->parents, depth + 1);
  for (lua_Integer d = depth + 2; d <= (lua_Integer)lua_rawlen(L, z->parents); d++) { /* forget deeper levels */
    lua_pushnil(L);
    lua_rawseti(L, z->parents, d);
  }
  const char *rest = NULL;
  if (c >= 2) {
    set_str(L, row, "state", tok[1], tn[1]);
    rest = tok[1] + tn[1];
  }
  if (c >= 5 && is_err_count(tok[2], tn[2]) && is_err_count(tok[3], tn[3]) && is_err_count(tok[4], tn[4])) {
    static const char *const cnt[] = {"read", "write", "cksum"};
    for (int k = 0; k < 3; k++) {
      push_count(L, tok[2 + k], tn[2 + k]);
      lua_setfield(L, row, cnt[k]);
    }
    rest = tok[4] + tn[4];
  } else if (c >= 3 && is_err_count(tok[2], tn[2])) {
    return snprintf(err, errn, "incomplete error counters"), 0;
  }
  if (rest) {
    size_t rn = n - (size_t)(rest - s);
    trim(&rest, &rn);
    if (rn) set_str(L, row, "note", rest, rn);
  }
  lua_getfield(L, z->pool, "config");
  lua_pushvalue(L, row);
  append_row(L, lua_gettop(L) - 1);
  lua_settop(L, row - 1);
  if (depth == 0 && lua_getfield(L, z->pool, "name") == LUA_TNIL) { /* a paste without "pool:" */
    lua_pop(L, 1);
    set_str(L, z->pool, "name", tok[0], tn[0]);
  } else if (depth == 0) {
    lua_pop(L, 1);
  }
  return 1;
}

static int zpool_line(struct zst *z, const char *s, size_t n, char *err, size_t errn) {
  lua_State *L = z->L;
  const char *v;
  size_t vn;
  if (all_ws(s, n)) {
    if (z->mode == 0) z->last = NULL;
    return 1;
  }
  const char *f = zpool_field(s, n, &v, &vn);
  /* inside the config tree only "errors:" and a next "pool:" end it */
  if (f && (z->mode != 1 || strcmp(f, "errors") == 0 || strcmp(f, "pool") == 0)) {
    if (strcmp(f, "pool") == 0 || !z->pool) zpool_new(z);
    if (strcmp(f, "config") == 0) {
      z->mode = 1;
      return 1;
    }
    if (strcmp(f, "errors") == 0) z->mode = 2;
    if (strcmp(f, "scrub") == 0) f = "scan"; /* older releases */
    set_str(L, z->pool, strcmp(f, "pool") == 0 ? "name" : f, v, vn);
    z->last = f;
    return 1;
  }
  if (streq_n(s, n, "no pools available")) return 1;
  if (zpool_is_header(s, n)) {
    if (!z->pool) zpool_new(z);
    size_t skip;
    z->mode = 1;
    z->base = (long)indent_cols(s, n, &skip);
    return 1;
  }
  if (z->pool && z->mode == 1 && z->base >= 0) return zpool_row(z, s, n, err, errn);
  if (z->pool && z->mode != 1 && is_ws(s[0]) && z->last) {
    const char *t = s;
    size_t tn = n;
    trim(&t, &tn);
    zpool_extend(z, z->last, z->mode == 2 ? "\n" : " ", t, tn);
    return 1;
  }
  snprintf(err, errn, "unexpected line: %.*s", SHOW(n), s);
  return 0;
}

static int l_parse_zpool_status(lua_State *L) {
  size_t n;
  const char *text = luaL_checklstring(L, 1, &n);
  lua_settop(L, 1);
  struct zst z = {L, 2, 0, 3, 0, -1, NULL};
  lua_newtable(L); /* 2: pools */
  lua_newtable(L); /* 3: names by depth */
  struct lines it = {text, n, 0, 0};
  const char *line;
  size_t len;
  char err[200];
  while (next_line(&it, &line, &len)) {
    if (!zpool_line(&z, line, len, err, sizeof err)) return line_error(L, it.no, "%s", err);
  }
  lua_settop(L, 2);
  return 1;
}

/* ------------------------------------------------------------------ */
/* pct/qm listsnapshot                                                   */

/* YYYY-MM-DD HH:MM:SS */
static int is_timestamp(const char *s, size_t n) {
  static const char pat[] = "dddd-dd-dd dd:dd:dd";
  if (n < 19) return 0;
  for (int i = 0; i < 19; i++)
    if (pat[i] == 'd' ? !is_digit(s[i]) : s[i] != pat[i]) return 0;
  return n == 19 || is_ws(s[19]);
}

static int l_parse_listsnapshot(lua_State *L) {
  size_t n;
  const char *text = luaL_checklstring(L, 1, &n);
  lua_settop(L, 1);
  lua_newtable(L); /* 2: rows */
  lua_newtable(L); /* 3: names by depth */
  struct lines it = {text, n, 0, 0};
  const char *s;
  size_t len;
  while (next_line(&it, &s, &len)) {
    if (all_ws(s, len)) continue;
    size_t d = 0;
    while (d < len && s[d] == ' ') d++;
    if (len - d < 5 || memcmp(s + d, "`-> ", 4) != 0 || is_ws(s[d + 4]))
      return line_error(L, it.no, "expected \"`-> name ...\"");
    const char *name = s + d + 4, *rest;
    size_t nn = 0;
    while (d + 4 + nn < len && !is_ws(name[nn])) nn++;
    rest = name + nn;
    size_t rn = len - (size_t)(rest - s);
    trim(&rest, &rn);
    lua_createtable(L, 0, 6);
    set_str(L, 4, "name", name, nn);
    lua_pushinteger(L, (lua_Integer)d);
    lua_setfield(L, 4, "depth");
    if (d > 0 && lua_rawgeti(L, 3, (lua_Integer)d) == LUA_TSTRING)
      lua_setfield(L, 4, "parent");
    else if (d > 0)
      lua_pop(L, 1);
    lua_pushlstring(L, name, nn);
    lua_rawseti(L, 3, (lua_Integer)d + 1);
    if (is_timestamp(rest, rn)) {
      set_str(L, 4, "time", rest, 19);
      rest += 19;
      rn -= 19;
      trim(&rest, &rn);
    }
    set_str(L, 4, "description", rest, rn);
    lua_pushboolean(L, streq_n(name, nn, "current") && streq_n(rest, rn, "You are here!"));
    lua_setfield(L, 4, "current");
    append_row(L, 2);
  }
  lua_settop(L, 2);
  return 1;
}

/* ------------------------------------------------------------------ */
/* pvesh ... --output-format json                                        */

#define JSON_MAX_DEPTH 200

struct jp {
  lua_State *L;
  const char *s;
  size_t n, i;
  int depth, array_mt, null; /* stack slots of px.json's array_mt and null */
  char err[160];
};

static void j_ws(struct jp *p) {
  while (p->i < p->n && (p->s[p->i] == ' ' || p->s[p->i] == '\t' || p->s[p->i] == '\n' || p->s[p->i] == '\r')) p->i++;
}

static int j_fail(struct jp *p, const char *msg) {
  snprintf(p->err, sizeof p->err, "%s", msg);
  return 0;
}

static void utf8_put(luaL_Buffer *b, unsigned long c) {
  if (c < 0x80) {
    luaL_addchar(b, (char)c);
  } else if (c < 0x800) {
    luaL_addchar(b, (char)(0xC0 | (c >> 6)));
    luaL_addchar(b, (char)(0x80 | (c & 0x3F)));
  } else if (c < 0x10000) {
    luaL_addchar(b, (char)(0xE0 | (c >> 12)));
    luaL_addchar(b, (char)(0x80 | ((c >> 6) & 0x3F)));
    luaL_addchar(b, (char)(0x80 | (c & 0x3F)));
  } else {
    luaL_addchar(b, (char)(0xF0 | (c >> 18)));
    luaL_addchar(b, (char)(0x80 | ((c >> 12) & 0x3F)));
    luaL_addchar(b, (char)(0x80 | ((c >> 6) & 0x3F)));
    luaL_addchar(b, (char)(0x80 | (c & 0x3F)));
  }
}

static long j_hex4(struct jp *p) {
  if (p->n - p->i < 4) return -1;
  long v = 0;
  for (int k = 0; k < 4; k++) {
    int h = hexval(p->s[p->i + (size_t)k]);
    if (h < 0) return -1;
    v = v * 16 + h;
  }
  p->i += 4;
  return v;
}

/* A JSON string (p->i at the opening quote), pushed. */
static int j_string(struct jp *p) {
  luaL_Buffer b;
  luaL_buffinit(p->L, &b);
  p->i++;
  for (;;) {
    if (p->i >= p->n) {
      luaL_pushresult(&b);
      lua_pop(p->L, 1);
      return j_fail(p, "unterminated string");
    }
    unsigned char c = (unsigned char)p->s[p->i++];
    if (c == '"') break;
    if (c < 0x20) {
      luaL_pushresult(&b);
      lua_pop(p->L, 1);
      return j_fail(p, "control character in string");
    }
    if (c != '\\') {
      luaL_addchar(&b, (char)c);
      continue;
    }
    char e = p->i < p->n ? p->s[p->i++] : 0;
    const char *simple = strchr("\"\\/bfnrt", e);
    if (e && simple) {
      static const char out[] = "\"\\/\b\f\n\r\t";
      luaL_addchar(&b, out[simple - "\"\\/bfnrt"]);
      continue;
    }
    long u = e == 'u' ? j_hex4(p) : -1;
    if (u >= 0xD800 && u <= 0xDBFF && p->n - p->i >= 6 && p->s[p->i] == '\\' && p->s[p->i + 1] == 'u') {
      size_t save = p->i;
      p->i += 2;
      long lo = j_hex4(p);
      if (lo >= 0xDC00 && lo <= 0xDFFF)
        u = 0x10000 + ((u - 0xD800) << 10) + (lo - 0xDC00);
      else
        p->i = save;
    }
    if (u < 0) {
      luaL_pushresult(&b);
      lua_pop(p->L, 1);
      return j_fail(p, "invalid escape in string");
    }
    utf8_put(&b, (unsigned long)u);
  }
  luaL_pushresult(&b);
  return 1;
}

static int j_number(struct jp *p) {
  size_t st = p->i, i = p->i;
  int isint = 1;
  if (i < p->n && p->s[i] == '-') i++;
  if (i < p->n && p->s[i] == '0')
    i++;
  else if (i < p->n && p->s[i] >= '1' && p->s[i] <= '9')
    while (i < p->n && is_digit(p->s[i])) i++;
  else
    return j_fail(p, "invalid number");
  if (i < p->n && p->s[i] == '.') {
    isint = 0;
    i++;
    if (i >= p->n || !is_digit(p->s[i])) return j_fail(p, "invalid number");
    while (i < p->n && is_digit(p->s[i])) i++;
  }
  if (i < p->n && (p->s[i] == 'e' || p->s[i] == 'E')) {
    isint = 0;
    i++;
    if (i < p->n && (p->s[i] == '+' || p->s[i] == '-')) i++;
    if (i >= p->n || !is_digit(p->s[i])) return j_fail(p, "invalid number");
    while (i < p->n && is_digit(p->s[i])) i++;
  }
  p->i = i;
  long long v;
  if (isint && parse_int(p->s + st, i - st, &v)) {
    lua_pushinteger(p->L, (lua_Integer)v);
    return 1;
  }
  lua_pushlstring(p->L, p->s + st, i - st); /* strtod needs a terminated copy */
  lua_pushnumber(p->L, (lua_Number)strtod(lua_tostring(p->L, -1), NULL));
  lua_remove(p->L, -2);
  return 1;
}

static int j_value(struct jp *p);

static int j_container(struct jp *p, int obj) {
  lua_State *L = p->L;
  if (++p->depth > JSON_MAX_DEPTH) return j_fail(p, "nesting too deep");
  if (!lua_checkstack(L, 8)) return j_fail(p, "nesting too deep");
  lua_newtable(L);
  int t = lua_gettop(L);
  if (!obj) {
    lua_pushvalue(L, p->array_mt);
    lua_setmetatable(L, t);
  }
  p->i++;
  j_ws(p);
  lua_Integer k = 0;
  if (p->i < p->n && p->s[p->i] == (obj ? '}' : ']')) {
    p->i++;
    p->depth--;
    return 1;
  }
  for (;;) {
    if (obj) {
      j_ws(p);
      if (p->i >= p->n || p->s[p->i] != '"') return j_fail(p, "expected a string key");
      if (!j_string(p)) return 0;
      j_ws(p);
      if (p->i >= p->n || p->s[p->i] != ':') return j_fail(p, "expected ':'");
      p->i++;
    }
    if (!j_value(p)) return 0;
    if (obj)
      lua_rawset(L, t);
    else
      lua_rawseti(L, t, ++k);
    j_ws(p);
    if (p->i < p->n && p->s[p->i] == ',') {
      p->i++;
      continue;
    }
    if (p->i < p->n && p->s[p->i] == (obj ? '}' : ']')) {
      p->i++;
      p->depth--;
      return 1;
    }
    return j_fail(p, obj ? "expected ',' or '}'" : "expected ',' or ']'");
  }
}

static int j_literal(struct jp *p, const char *lit) {
  size_t l = strlen(lit);
  if (p->n - p->i < l || memcmp(p->s + p->i, lit, l) != 0) return j_fail(p, "invalid literal");
  p->i += l;
  return 1;
}

static int j_value(struct jp *p) {
  j_ws(p);
  if (p->i >= p->n) return j_fail(p, "unexpected end of input");
  char c = p->s[p->i];
  switch (c) {
    case '{': return j_container(p, 1);
    case '[': return j_container(p, 0);
    case '"': return j_string(p);
    case 't':
      if (!j_literal(p, "true")) return 0;
      lua_pushboolean(p->L, 1);
      return 1;
    case 'f':
      if (!j_literal(p, "false")) return 0;
      lua_pushboolean(p->L, 0);
      return 1;
    case 'n':
      if (!j_literal(p, "null")) return 0;
      lua_pushvalue(p->L, p->null);
      return 1;
    default:
      if (c == '-' || is_digit(c)) return j_number(p);
      return j_fail(p, "unexpected character");
  }
}

/* Fields Proxmox sometimes sends as strings; turned into numbers. */
static const char *const NUMERIC_FIELDS[] = {
    "vmid", "maxmem", "mem", "cpu", "maxcpu", "uptime", "template", "disk", "maxdisk", "netin", "netout",
    "diskread", "diskwrite", "maxswap", "swap", "pid", "total", "used", "avail", "active", "enabled",
    "shared", "memhost", "snaptime", NULL};

static void normalise_row(lua_State *L, int row) {
  for (int f = 0; NUMERIC_FIELDS[f]; f++) {
    if (lua_getfield(L, row, NUMERIC_FIELDS[f]) == LUA_TSTRING) {
      size_t n;
      const char *s = lua_tolstring(L, -1, &n);
      const char *t = s;
      size_t tn = n;
      trim(&t, &tn);
      long long v;
      if (parse_int(t, tn, &v)) {
        lua_pushinteger(L, (lua_Integer)v);
        lua_setfield(L, row, NUMERIC_FIELDS[f]);
      } else if (is_number_text(t, tn) && tn < 60) {
        lua_pushnumber(L, (lua_Number)text_to_double(t, tn));
        lua_setfield(L, row, NUMERIC_FIELDS[f]);
      }
    }
    lua_pop(L, 1);
  }
}

static int l_parse_pvesh_json(lua_State *L) {
  size_t n;
  const char *text = luaL_checklstring(L, 1, &n);
  lua_settop(L, 1);
  lua_pushvalue(L, lua_upvalueindex(1)); /* 2: array_mt */
  lua_pushvalue(L, lua_upvalueindex(2)); /* 3: null */
  struct jp p = {L, text, n, 0, 0, 2, 3, {0}};
  if (!j_value(&p)) goto bad;
  j_ws(&p);
  if (p.i < p.n) {
    j_fail(&p, "trailing characters after the value");
    goto bad;
  }
  int v = lua_gettop(L);
  if (lua_type(L, v) == LUA_TTABLE && !lua_getmetatable(L, v) && lua_getfield(L, v, "data") != LUA_TNIL) {
    lua_replace(L, v); /* the HTTP API's {"data": ...} */
  } else {
    lua_settop(L, v);
  }
  if (lua_type(L, v) != LUA_TTABLE) {
    snprintf(p.err, sizeof p.err, "expected an array or an object");
    p.i = 0;
    goto bad;
  }
  if (lua_getmetatable(L, v)) {
    lua_pop(L, 1);
    lua_Integer rn = (lua_Integer)lua_rawlen(L, v);
    for (lua_Integer i = 1; i <= rn; i++) {
      if (lua_rawgeti(L, v, i) == LUA_TTABLE) normalise_row(L, lua_gettop(L));
      lua_pop(L, 1);
    }
  } else {
    normalise_row(L, v);
  }
  lua_settop(L, v);
  return 1;
bad : {
  long line = 1;
  for (size_t i = 0; i < p.i && i < n; i++) line += text[i] == '\n';
  lua_settop(L, 3);
  return line_error(L, line, "%s", p.err);
}
}
/* ------------------------------------------------------------------ */

int luaopen_px_pve(lua_State *L) {
  /* the format tables must stay sorted: find_subkey and the write order rely on it */
  for (size_t f = 0; f < NFORMATS; f++) {
    if (FORMATS[f].n > MAX_SUBKEYS) return luaL_error(L, "px.pve: format %s has too many keys", FORMATS[f].name);
    for (size_t i = 1; i < FORMATS[f].n; i++)
      if (strcmp(FORMATS[f].keys[i - 1].name, FORMATS[f].keys[i].name) >= 0)
        return luaL_error(L, "px.pve: format %s is not sorted at %s", FORMATS[f].name, FORMATS[f].keys[i].name);
  }
  for (size_t i = 1; i < NFORMATS; i++)
    if (strcmp(FORMATS[i - 1].name, FORMATS[i].name) >= 0) return luaL_error(L, "px.pve: FORMATS is not sorted");
  const struct schema *schemas[] = {&LXC_SCHEMA, &QEMU_SCHEMA};
  for (int sc = 0; sc < 2; sc++)
    for (size_t i = 1; i < schemas[sc]->n; i++)
      if (strcmp(schemas[sc]->opts[i - 1].base, schemas[sc]->opts[i].base) > 0)
        return luaL_error(L, "px.pve: option table not sorted at %s", schemas[sc]->opts[i].base);
  static const luaL_Reg fns[] = {
      {"parse_config", l_parse_config},
      {"write_config", l_write_config},
      {"parse_prop", l_parse_prop},
      {"format_prop", l_format_prop},
      {"format_of", l_format_of},
      {"parse_size", l_parse_size},
      {"format_size", l_format_size},
      {"encode_text", l_encode_text},
      {"decode_text", l_decode_text},
      {"parse_tags", l_parse_tags},
      {"format_tags", l_format_tags},
      {"check_snapname", l_check_snapname},
      {"parse_pvesm_status", l_parse_pvesm_status},
      {"parse_zfs_get", l_parse_zfs_get},
      {"parse_zfs_list", l_parse_zfs_list},
      {"parse_zpool_status", l_parse_zpool_status},
      {"parse_listsnapshot", l_parse_listsnapshot},
      {NULL, NULL},
  };
  luaL_newlib(L, fns);
  /* JSON arrays carry px.json's array marker; null is px.json.null */
  lua_getglobal(L, "require");
  lua_pushliteral(L, "px.json");
  lua_call(L, 1, 1);
  lua_getfield(L, -1, "array_mt");
  lua_getfield(L, -2, "null");
  lua_pushcclosure(L, l_parse_pvesh_json, 2);
  lua_setfield(L, -3, "parse_pvesh_json");
  lua_pop(L, 1);
  return 1;
}
