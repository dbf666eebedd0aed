-- The lxc target: a plain Linux host, reached locally, with the lxc-* tools
-- for containers. Host files and commands work through the base target.
local Base = require "phoenix.target.base"

local Lxc = setmetatable({}, { __index = Base })
Lxc.__index = Lxc
Lxc.type = "lxc"
Lxc.options = {
  root = "directory the host's files live under (default /)",
  bin = "directory whose tools win over PATH",
}
Lxc.features = { host = true }

function Lxc.new(spec)
  return Base.new(spec, Lxc)
end

return Lxc
