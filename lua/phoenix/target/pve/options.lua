-- The pve target's options: values arrive as strings from
-- `--target-opt KEY=VALUE` or as JSON values from the site file; both are
-- coerced here and checked, with a message that names the option.
local fs = require "px.fs"
local sys = require "px.sys"

local M = {}

M.help = {
  root = "directory the node's files live under (default /); a pve-sim node's DIR/root",
  bin = "directory whose pct/qm/pvesm/pvesh/zfs/zpool win over PATH; a pve-sim node's DIR/bin",
  node = "node name (default: the one directory under <root>/etc/pve/nodes, else the hostname)",
  lock_retries = "retries of a call that failed on a Proxmox lock timeout (default 5)",
  lock_backoff_ms = "wait before the first retry, doubled for each next one (default 500)",
  timeout_ms = "time limit of one pct/qm/... call in ms (default 900000)",
}

M.defaults = { lock_retries = 5, lock_backoff_ms = 500, timeout_ms = 900000 }

-- whole(name, v, min [, max]) -> integer | nil, msg (shared with pve-api's options)
function M.whole(name, v, min, max)
  local n = v
  if type(v) == "string" then
    n = v:match("^%s*(%d+)%s*$") and tonumber(v)
  end
  if math.type(n) == "float" and n == math.floor(n) then n = math.tointeger(n) end
  if math.type(n) ~= "integer" or n < min or (max and n > max) then
    return nil, string.format("target option %s: expected a whole number %s, got '%s'", name,
      max and string.format("from %d to %d", min, max) or ">= " .. min, tostring(v))
  end
  return n
end

local whole = M.whole

local function dir(name, v)
  if type(v) ~= "string" or v == "" then
    return nil, string.format("target option %s: expected a directory, got '%s'", name, tostring(v))
  end
  local real, err = sys.realpath(v)
  if not real then return nil, "target option " .. name .. ": " .. tostring(err) end
  local st = fs.stat(real)
  if not st or st.type ~= "dir" then
    return nil, string.format("target option %s: %s is not a directory", name, v)
  end
  return real
end

-- Proxmox node names are short host names (no domain).
local function node(name, v)
  if type(v) ~= "string" or not v:match("^%w[%w-]*$") or #v > 63 then
    return nil, string.format("target option %s: '%s' is not a valid node name", name, tostring(v))
  end
  return v
end

local check = {
  root = dir, bin = dir, node = node,
  lock_retries = function(n, v) return whole(n, v, 0) end,
  lock_backoff_ms = function(n, v) return whole(n, v, 0) end,
  timeout_ms = function(n, v) return whole(n, v, 1) end,
}

-- coerce(spec) -> options table (defaults applied) | nil, msg.
-- Unknown keys are left to Base.new, which names the known ones.
function M.coerce(spec)
  local out = {}
  for k, v in pairs(M.defaults) do out[k] = v end
  for k, v in pairs(spec) do
    if check[k] then
      local val, err = check[k](k, v)
      if val == nil then return nil, err end
      out[k] = val
    end
  end
  return out
end

return M
