-- Values computed once per run and shared by every resource: the target's
-- per-run cache (a new target per run), or one table per target object.
local async = require "phoenix.async"

local M = {}

local fallback = setmetatable({}, { __mode = "k" })

function M.store(target)
  if type(target) == "table" and type(target.cache) == "table" then return target.cache end
  fallback[target] = fallback[target] or {}
  return fallback[target]
end

-- memo(store, key, fn, keep_failure) -> fn()'s results, computed once;
-- concurrent callers wait for the first. A failed result (nil, msg) is
-- remembered only with keep_failure (else the next caller tries again).
function M.memo(store, key, fn, keep_failure)
  while store[key] and store[key].busy do async.sleep(0.005) end
  local e = store[key]
  if e then return table.unpack(e.values, 1, e.values.n) end
  store[key] = { busy = true }
  local values = table.pack(pcall(fn))
  if not values[1] then
    store[key] = nil
    error(values[2], 0)
  end
  values = table.pack(table.unpack(values, 2, values.n))
  if values[1] == nil and not keep_failure then store[key] = nil else store[key] = { values = values } end
  return table.unpack(values, 1, values.n)
end

return M
