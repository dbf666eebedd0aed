-- The lxc target: a plain Linux host, reached locally, with the lxc-* tools
-- for containers (driver phoenix.target.lxc_ct). Host files and commands
-- work through the base target.
local Base = require "phoenix.target.base"

local Lxc = setmetatable({}, { __index = Base })
Lxc.__index = Lxc
Lxc.type = "lxc"
Lxc.options = {
  root = "directory the host's files live under (default /)",
  bin = "directory whose tools win over PATH",
  lxcpath = "where containers live (default /var/lib/lxc, as lxc-* tools use)",
  cgroup = "1 or 2: which lxc.cgroup keys limits use (default: what the host mounts)",
}
Lxc.features = { host = true, ct = true }

function Lxc.new(spec)
  local t, err = Base.new(spec, Lxc)
  if not t then return nil, err end
  local path = spec.lxcpath or "/var/lib/lxc"
  if type(path) ~= "string" or path:sub(1, 1) ~= "/" or path:find("[%s\n]") then
    return nil, "target option lxcpath: expected an absolute path without spaces, got '" .. tostring(path) .. "'"
  end
  t.lxcpath = path:gsub("(.)/+$", "%1")
  if spec.cgroup ~= nil then
    local v = tonumber(spec.cgroup)
    if v ~= 1 and v ~= 2 then return nil, "target option cgroup: expected 1 or 2, got '" .. tostring(spec.cgroup) .. "'" end
    t.cgroup = math.tointeger(v)
  end
  return t
end

-- cpus() -> number of online CPUs of the host (sysfs), or nil
function Lxc:cpus()
  local text = self:read("/sys/devices/system/cpu/online")
  if not text then return nil end
  local n = 0
  for part in text:gmatch("[^,%s]+") do
    local a, b = part:match("^(%d+)%-(%d+)$")
    n = n + (a and (tonumber(b) - tonumber(a) + 1) or 1)
  end
  return n
end

-- owned_guests() -> { {type = "lxc", name = "101"}, ... }: containers in
-- lxcpath carrying lxc.group = phoenix (for --prune)
function Lxc:owned_guests()
  local d, err = self:driver("ct")
  if not d then return nil, err end
  local out = {}
  for i, name in ipairs(d:owned()) do out[i] = { type = "lxc", name = name } end
  return out
end

return Lxc
