/* px.json at the C level: a property test over many generated documents
 * (decode never crashes; canonical(decode(x)) is a fixed point) and the
 * error paths under the sanitizers. */
#include "pxtest.h"

int main(void) {
  lua_State *L = pxtest_state();
  CHECK_LUA(L, "json = require 'px.json'; return true");
  /* Random documents from a small grammar, then random mutations of them. */
  CHECK_LUA(L,
            "math.randomseed(12345)\n"
            "local atoms = { '0', '-1', '1.5', '1e3', '123456789012345678', 'true', 'false', 'null',\n"
            "  '\"\"', '\"a\\\\nb\"', '\"\\\\u00e9\"', '\"\\\\ud83d\\\\ude00\"', '[]', '{}' }\n"
            "local function gen(d)\n"
            "  local r = math.random(1, d > 4 and 1 or 3)\n"
            "  if r == 1 then return atoms[math.random(#atoms)] end\n"
            "  local parts = {}\n"
            "  for i = 1, math.random(0, 4) do\n"
            "    if r == 2 then parts[i] = gen(d + 1)\n"
            "    else parts[i] = string.format('%q', 'k' .. math.random(1, 6)) .. ':' .. gen(d + 1) end\n"
            "  end\n"
            "  if r == 2 then return '[' .. table.concat(parts, ',') .. ']' end\n"
            "  return '{' .. table.concat(parts, ',') .. '}'\n"
            "end\n"
            "local chars = '[]{}:,\"\\\\0123456789.eE+-tfnul \\n\\1\\255'\n"
            "local decoded, failed = 0, 0\n"
            "for i = 1, 4000 do\n"
            "  local text = gen(0)\n"
            "  local v = json.decode(text)\n"
            "  if v == nil then return false end\n"
            "  local c = json.canonical(v)\n"
            "  if json.canonical(json.decode(c)) ~= c then return false end\n"
            "  for m = 1, 3 do\n"
            "    local p = math.random(1, #text + 1)\n"
            "    local k = math.random(1, #chars)\n"
            "    text = text:sub(1, p - 1) .. chars:sub(k, k) .. text:sub(p + math.random(0, 1))\n"
            "  end\n"
            "  local w, err = json.decode(text)\n"
            "  if w == nil then\n"
            "    failed = failed + 1\n"
            "    if not err:match('^line %d+, column %d+: ') then return false end\n"
            "  else\n"
            "    decoded = decoded + 1\n"
            "    local c2 = json.canonical(w)\n"
            "    if json.canonical(json.decode(c2)) ~= c2 then return false end\n"
            "  end\n"
            "end\n"
            "return decoded > 100 and failed > 100");
  /* Errors raised from deep inside the encoder free its buffer (ASan). */
  CHECK_LUA(L,
            "local t = { a = { b = { c = { f = print } } } }\n"
            "for i = 1, 100 do assert(not pcall(json.canonical, t)) end\n"
            "local deep = {}\n"
            "local cur = deep\n"
            "for i = 1, 1200 do cur[1] = {}; cur = cur[1] end\n"
            "return not pcall(json.encode, deep)");
  CHECK_LUA(L, "return json.decode(string.rep('[', 100000)) == nil");
  lua_close(L);
  return pxtest_done("test_json");
}
