-- Containers: one convergent recipe for every target with a container
-- driver (pve: pct, lxc: lxc-* tools). See docs/containers.md.
local apply = require "phoenix.lxc.apply"
local diff = require "phoenix.lxc.diff"
local inspect = require "phoenix.lxc.inspect"

return {
  type = "lxc",

  describe = function(want)
    local d = string.format("container %d (%s)", want.ctid, tostring(want.name))
    if want.clone_from_ctid then d = d .. ", clone of " .. want.clone_from_ctid end
    return d
  end,

  inspect = inspect.run,

  diff = function(_, _, have) return diff.changes(have) end,

  apply = apply.run,

  -- destroy: only called for a container carrying the phoenix tag (run.destroy checks have.owned)
  destroy = function(ctx, want, have)
    if not have.owned then return nil, "container " .. want.ctid .. " does not carry the phoenix tag" end
    local d, err = ctx.target:driver("ct")
    if not d then return nil, err end
    local ok, derr = d:destroy(want.ctid)
    d:refresh(want.ctid)
    if not ok then return nil, derr end
    return true
  end,
}
