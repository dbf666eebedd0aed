/* px.log at the C level: a property test of redaction. Random secrets over
 * a small alphabet, random text: after scrub() no secret occurs anywhere. */
#include "pxtest.h"

int main(void) {
  lua_State *L = pxtest_state();
  CHECK_LUA(L,
            "local log = require 'px.log'\n"
            "math.randomseed(777)\n"
            "local function word(n)\n"
            "  local t = {}\n"
            "  for i = 1, n do local k = math.random(1, 3); t[i] = ('xyz'):sub(k, k) end\n"
            "  return table.concat(t)\n"
            "end\n"
            "local secrets = {}\n"
            "for i = 1, 12 do secrets[i] = word(math.random(3, 6)); log.redact(secrets[i]) end\n"
            "for i = 1, 3000 do\n"
            "  local text = word(math.random(0, 60))\n"
            "  local out = log.scrub(text)\n"
            "  for _, s in ipairs(secrets) do\n"
            "    if out:find(s, 1, true) then return false end\n"
            "  end\n"
            "  -- what is not masked is kept, in order\n"
            "  if (out:gsub('%(secret%)', '')) ~= (out:gsub('%(secret%)', '')):gsub('[^xyz]', '') then return false end\n"
            "end\n"
            "return true");
  lua_close(L);
  return pxtest_done("test_log");
}
