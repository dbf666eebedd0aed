/* Fuzzes px.pve.parse_prop / format_prop. The first byte picks the
 * format. A parsed property string must format, and the formatted text
 * must parse back to the same table (format_prop's output is canonical). */
#include "fuzz_pve_common.h"

static const char *HELPERS =
    "local function same(a, b)\n"
    "  if type(a) ~= type(b) then return false end\n"
    "  if type(a) ~= 'table' then return a == b end\n"
    "  for k, v in pairs(a) do if not same(v, b[k]) then return false end end\n"
    "  for k in pairs(b) do if a[k] == nil then return false end end\n"
    "  return true\n"
    "end\n"
    "function check(s, fmt)\n"
    "  local t = pve.parse_prop(s, fmt)\n"
    "  if not t then return true end\n"
    "  local out = assert(pve.format_prop(t, fmt))\n"
    "  local t2 = assert(pve.parse_prop(out, fmt))\n"
    "  return same(t, t2) and pve.format_prop(t2, fmt) == out\n"
    "end\n";

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size) {
  static const char *const fmts[] = {"lxc-net", "lxc-mp", "lxc-rootfs", "lxc-features", "lxc-dev", "lxc-unused",
                                     "startup", "qemu-net", "qemu-hostpci", "qemu-ide", "qemu-sata", "qemu-scsi",
                                     "qemu-virtio", "qemu-efidisk", "qemu-tpmstate", "qemu-ipconfig",
                                     "qemu-agent", "qemu-boot", "qemu-unused", "qemu-vga", "qemu-memory"};
  if (size < 1) return 0;
  lua_State *L = fuzz_state(HELPERS);
  fuzz_call(L, "check", (const char *)data + 1, size - 1, fmts[data[0] % (sizeof fmts / sizeof fmts[0])]);
  return 0;
}
