-- Inspect for the lxc recipe: the container as the target's driver sees
-- it, plus what the pure diff needs besides (the desired spec adapted to
-- the target, feature scripts and their markers, host mount paths).
local gpu = require "px.gpu"
local runner = require "phoenix.feature_runner"
local specmod = require "phoenix.lxc.spec"

local M = {}

-- spec(ctx, want) -> spec | nil, msg (GPUs checked against the host)
function M.spec(ctx, want)
  local facts
  if #(want.gpu_assignment or {}) > 0 then
    if ctx.target.remote then
      return nil, string.format("gpu_assignment: " .. "the %s target reaches the node over the network, and GPU checks read the node's /sys and /dev here: "
      .. "run phoenix on the node (pve target) for GPU passthrough", ctx.target.type)
    end
    local err
    facts, err = gpu.scan({ root = ctx.target.root })
    if not facts then return nil, "gpu_assignment: cannot read the host's GPUs: " .. tostring(err) end
  end
  local snap
  if want.clone_from_ctid then
    local src = ctx.site and ctx.site.by_id["lxc:" .. want.clone_from_ctid]
    snap = src and src.want.template_snapshot_name
  end
  return specmod.build(want, { gpu = facts, clone_snapshot = snap })
end

local function host_paths(ctx, spec)
  local out = {}
  for _, m in ipairs(spec.mounts) do
    if m.kind == "bind" then
      local st = ctx.target:stat(m.source)
      if st and st.type == "dir" then out[m.source] = { uid = st.uid, gid = st.gid } end
    end
  end
  return out
end

-- container(ctx, d, want, spec, unsupported) -> have | nil, msg
function M.container(ctx, d, want, spec, unsupported)
  local have, err = d:inspect(want.ctid)
  if not have then return nil, err end
  have.spec, have.unsupported, have.caps = spec, unsupported, d.caps
  local items, ierr = runner.plan(want, ctx.site, runner.other_guests(ctx))
  if not items then return nil, ierr end
  have.items = items
  if not have.exists then
    have.markers, have.snapshots, have.host_paths = {}, {}, {}
    return have
  end
  have.host_paths = host_paths(ctx, spec)
  if #items > 0 and (have.status == "running" or d.caps.markers_offline) then
    local names = {}
    for i, it in ipairs(items) do names[i] = it.name end
    local marks, merr = runner.markers(d, want.ctid, names)
    if not marks then return nil, "reading feature markers: " .. tostring(merr) end
    have.markers = marks
  elseif #items == 0 then
    have.markers = {}
  end
  return have
end

-- run(ctx, want) -> have | nil, msg (the recipe's inspect)
function M.run(ctx, want)
  local d, err = ctx.target:driver("ct")
  if not d then return nil, err end
  local spec, serr = M.spec(ctx, want)
  if not spec then return nil, serr end
  local unsupported = d:adapt(spec)
  -- a clone inherits unprivileged from its source: another value cannot be had
  if spec.clone then
    local src = d:inspect(spec.clone.from)
    if src and src.exists and src.unprivileged ~= spec.unprivileged then
      unsupported[#unsupported + 1] = { field = "unprivileged", value = spec.unprivileged,
        reason = string.format("a clone inherits unprivileged from container %d, which is %s", spec.clone.from,
          src.unprivileged and "unprivileged" or "privileged") }
      spec.unprivileged = src.unprivileged
    end
  end
  return M.container(ctx, d, want, spec, unsupported)
end

return M
