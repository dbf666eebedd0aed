/* Fuzzes px.pve.parse_config / write_config. The first byte picks the
 * kind and strict mode. A config that parses must write, and what it
 * writes must read back to the same text (the canonical form is stable). */
#include "fuzz_pve_common.h"

static const char *HELPERS =
    "function check(s, mode)\n"
    "  local kind, strict = mode:match('^(%a+)(.*)$')\n"
    "  local c = pve.parse_config(s, kind, {strict = strict == '!'})\n"
    "  if not c then return true end\n"
    "  local out = pve.write_config(c, kind)\n"
    "  if not out then return true end\n"
    "  local c2 = assert(pve.parse_config(out, kind))\n"
    "  return pve.write_config(c2, kind) == out\n"
    "end\n";

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size) {
  static const char *const modes[] = {"lxc", "qemu", "lxc!", "qemu!"};
  if (size < 1) return 0;
  lua_State *L = fuzz_state(HELPERS);
  fuzz_call(L, "check", (const char *)data + 1, size - 1, modes[data[0] % 4]);
  return 0;
}
