-- Apply for the lxc recipe, in the order a container converges: defined
-- (create, clone, or re-create) -> configuration and volumes -> host mount
-- paths -> root disk size -> `pre-configured` snapshot -> running ->
-- features and application script -> health check -> `final-form` and
-- template snapshots. Only the changes the engine passed are made; a
-- container created in this run gets everything.
local diff = require "phoenix.lxc.diff"
local inspect = require "phoenix.lxc.inspect"
local runner = require "phoenix.feature_runner"
local specmod = require "phoenix.lxc.spec"
local util = require "phoenix.util"

local M = {}

local function group(changes)
  local by = {}
  for _, c in ipairs(changes) do
    by[c.step] = by[c.step] or {}
    table.insert(by[c.step], c)
  end
  return setmetatable(by, { __index = function() return {} end })
end

local function define(ctx, d, want, spec, have, recreate)
  local id = want.ctid
  if recreate then
    if not have.owned then
      return nil, "unprivileged cannot change, and container " .. id .. " does not carry the phoenix tag: "
        .. "phoenix re-creates only containers it created"
    end
    ctx.log:warn("re-creating container %d (unprivileged %s -> %s)", id, tostring(have.unprivileged),
      tostring(spec.unprivileged))
    local ok, err = d:destroy(id)
    if not ok then return nil, err end
  end
  if spec.clone then
    if not spec.clone.snapshot then
      return nil, string.format("clone_from_ctid %d: that container has no template_snapshot_name to clone from",
        spec.clone.from)
    end
    ctx.log:info("cloning %d from snapshot %s of %d", id, spec.clone.snapshot, spec.clone.from)
    return d:clone(spec.clone.from, spec.clone.snapshot, id, spec)
  end
  ctx.log:info("creating container %d from %s", id, tostring(spec.template))
  return d:create(id, spec)
end

-- patch(changes, spec) -> the driver's set() argument for these changes
local function patch_of(by, spec)
  local p, any = {}, false
  for _, c in ipairs(by.config) do
    local v = spec[c.key]
    if v == nil then v = false end
    p[c.key], any = v, true
  end
  local ops = {}
  for _, c in ipairs(by.mount) do
    if c.action == "delete" then
      ops[#ops + 1] = { op = "delete", slot = c.slot, target = c.target }
    else
      ops[#ops + 1] = { op = "set", slot = c.slot, mount = c.mount }
    end
  end
  if #ops > 0 then p.mounts, any = ops, true end
  return any and p or nil
end

local function host_path(ctx, c)
  local m = c.mount
  if not ctx.target:exists(m.source) then
    local ok, err = ctx.target:mkdir(m.source)
    if not ok then return nil, "creating " .. ctx.target:path(m.source) .. ": " .. tostring(err) end
  end
  if m.owner_uid or m.owner_gid then
    local st = ctx.target:stat(m.source) or {}
    local owner = tostring(m.owner_uid or st.uid) .. ":" .. tostring(m.owner_gid or st.gid)
    local ok, err = ctx:run({ argv = { "chown", owner, ctx.target:path(m.source) } })
    if not ok then return nil, err end
  end
  return true
end

local function words(s)
  local out = {}
  for w in s:gmatch("%S+") do out[#out + 1] = w end
  return out
end

-- health(ctx, d, want) -> true | nil, msg: the check's command inside the
-- guest (split on blanks, as the original ran it), `retries` attempts
-- `interval` seconds apart.
local function health(ctx, d, want)
  local hc = want.health_check
  local argv = words(hc.command)
  local attempts = math.max(1, hc.retries or 3)
  local res, err
  for i = 1, attempts do
    res, err = d:exec(want.ctid, argv, { timeout_ms = 120000 })
    if res and res.code == 0 then
      ctx.log:info("health check passed (attempt %d/%d)", i, attempts)
      return true
    end
    if i < attempts then ctx:sleep(hc.interval or 5) end
  end
  local out = res and util.tail((res.stdout or "") .. "\n" .. (res.stderr or ""), 5) or tostring(err)
  return nil, string.format("health check `%s` failed %d time%s: %s", hc.command, attempts,
    attempts == 1 and "" or "s", res and ("exit " .. res.code .. (out ~= "" and (": " .. out) or "")) or out)
end

local function rollback_on(ctx, d, want, msg)
  local behavior = ctx.site and ctx.site.host and ctx.site.host.behavior
  if not (behavior and behavior.rollback_on_failure) then return msg end
  d:refresh(want.ctid)
  local have = d:inspect(want.ctid)
  if not (have and have.exists and have.snapshots and have.snapshots[specmod.PRE]) then return msg end
  ctx.log:warn("rolling back to snapshot %s (behavior.rollback_on_failure)", specmod.PRE)
  local ok, err = d:rollback(want.ctid, specmod.PRE)
  if ok then ok, err = d:start(want.ctid) end
  d:refresh(want.ctid)
  if not ok then return msg .. "; rollback to snapshot " .. specmod.PRE .. " failed: " .. tostring(err) end
  return msg .. "; rolled back to snapshot " .. specmod.PRE .. " (behavior.rollback_on_failure)"
end

-- The steps after the pre-configured snapshot; a failure here may roll back.
local function finish(ctx, d, want, have, by, st)
  local id = want.ctid
  if have.status ~= "running" then
    local ok, err = d:start(id)
    if not ok then return nil, err end
    st.worked = true
  elseif st.restart then
    ctx.log:info("restarting container %d for changes it reads at start", id)
    local ok, err = d:restart(id)
    if not ok then return nil, err end
    st.worked = true
  end
  if st.created or #by.feature > 0 or not have.markers then
    local names = {}
    for i, it in ipairs(have.items) do names[i] = it.name end
    local marks, merr = runner.markers(d, id, names)
    if not marks then return nil, "reading feature markers: " .. tostring(merr) end
    for _, it in ipairs(runner.pending(have.items, marks)) do
      local ok, err = runner.run(d, id, it, ctx.log)
      if not ok then return nil, err end
      st.worked = true
    end
  end
  if want.health_check and st.worked then
    local ok, err = health(ctx, d, want)
    if not ok then return nil, err end
  end
  for _, c in ipairs(by.snapshot) do
    if c.stage == "post" then
      ctx.log:info("taking snapshot %s", c.name)
      local ok, err = d:snapshot(id, c.name)
      if not ok then return nil, err end
    end
  end
  return true
end

-- run(ctx, want, have, changes) -> true | nil, msg (the recipe's apply)
function M.run(ctx, want, have, changes)
  local d = assert(ctx.target:driver("ct"))
  local id, spec = want.ctid, have.spec
  local by = group(changes)
  local st = {}
  local recreate
  for _, c in ipairs(by.define) do
    if c.field == "unprivileged" then recreate = true end
  end
  if not have.exists or recreate then
    local ok, err = define(ctx, d, want, spec, have, recreate)
    d:refresh(id)
    if not ok then return nil, err end
    st.created = true
    have, err = inspect.container(ctx, d, want, spec, have.unsupported)
    if not have then return nil, err end
    by = group(diff.changes(have)) -- a new container is stopped: every change applies
  end
  local patch = patch_of(by, spec)
  if patch then
    local ok, err = d:set(id, patch)
    d:refresh(id)
    if not ok then return nil, err end
  end
  for _, c in ipairs(by.config) do
    if c.disruptive == "restart" then st.restart = true end
  end
  for _, c in ipairs(by.mount) do
    if c.disruptive == "restart" then st.restart = true end
  end
  for _, c in ipairs(by.hostpath) do
    local ok, err = host_path(ctx, c)
    if not ok then return nil, err end
  end
  for _, c in ipairs(by.resize) do
    if c.disk then
      local ok, err = d:resize(id, c.disk, c.size_gb)
      d:refresh(id)
      if not ok then return nil, err end
    end
  end
  for _, c in ipairs(by.snapshot) do
    if c.stage == "pre" then
      ctx.log:info("taking snapshot %s", c.name)
      local ok, err = d:snapshot(id, c.name)
      d:refresh(id)
      if not ok then return nil, err end
    end
  end
  local ok, err = finish(ctx, d, want, have, by, st)
  d:refresh(id)
  if not ok then return nil, rollback_on(ctx, d, want, err) end
  return true
end

return M
