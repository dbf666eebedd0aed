-- Portainer versions: parsing, comparing, and which routes a version has.
local M = {}

-- "2.21.4" -> {2, 21, 4}; nil for anything else.
function M.parse(s)
  local a, b, c = tostring(s or ""):match("^v?(%d+)%.(%d+)%.?(%d*)")
  if not a then return nil end
  return { tonumber(a), tonumber(b), tonumber(c) or 0 }
end

-- at_least(v, 2, 19, 0): v is that version or later; nil when v is unknown.
function M.at_least(v, a, b, c)
  if not v then return nil end
  local want = { a, b or 0, c or 0 }
  for i = 1, 3 do
    if v[i] ~= want[i] then return v[i] > want[i] end
  end
  return true
end

-- The /api/stacks/create/standalone/* routes came in 2.19.0: true, false,
-- or nil when the version is unknown.
function M.new_stack_routes(v) return M.at_least(v, 2, 19, 0) end

return M
