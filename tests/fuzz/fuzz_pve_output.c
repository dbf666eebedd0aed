/* Fuzzes the px.pve CLI-output parsers; the first byte picks one. They
 * must return rows or nil + "line N: ..." and never raise. */
#include "fuzz_pve_common.h"

static const char *HELPERS =
    "function check(s, fn)\n"
    "  local r, err\n"
    "  if fn == 'parse_zfs_list' or fn == 'parse_zfs_get' then\n"
    "    r, err = pve[fn](s, {'name', 'used', 'value'})\n"
    "    if r == nil then assert(err:match('^line %d+: ')) end\n"
    "  end\n"
    "  r, err = pve[fn](s)\n"
    "  if fn == 'decode_text' or fn == 'parse_tags' then return true end\n"
    "  return type(r) == 'table' or (r == nil and err:match('^line %d+: ') ~= nil)\n"
    "end\n";

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size) {
  static const char *const fns[] = {"parse_pvesm_status", "parse_zfs_get", "parse_zfs_list", "parse_zpool_status",
                                    "parse_listsnapshot", "parse_pvesh_json", "decode_text", "parse_tags"};
  if (size < 1) return 0;
  lua_State *L = fuzz_state(HELPERS);
  fuzz_call(L, "check", (const char *)data + 1, size - 1, fns[data[0] % (sizeof fns / sizeof fns[0])]);
  return 0;
}
