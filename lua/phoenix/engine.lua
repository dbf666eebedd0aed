-- The engine: converges a list of resources through their recipes, in
-- dependency order, up to `jobs` at once.
--
-- For each resource: inspect -> diff -> (plan stops here) -> drop the
-- disruptive changes the flags do not allow -> apply -> inspect and diff
-- again: anything still different that was not held back fails it. A failed
-- resource marks everything that depends on it skipped.
local ctxmod = require "phoenix.ctx"
local graph = require "phoenix.graph"
local scheduler = require "phoenix.scheduler"
local sys = require "px.sys"

local M = {}

local ACTIONS = { create = true, update = true, delete = true, run = true }
local DISRUPTIVE = { restart = "allow_restart", recreate = "allow_recreate", reboot = false }

-- check_changes(list) -> true | nil, msg (a recipe bug, reported as such)
local function check_changes(changes)
  if type(changes) ~= "table" then return nil, "diff must return a list of changes, got " .. type(changes) end
  for i, c in ipairs(changes) do
    if type(c) ~= "table" then return nil, string.format("change %d is a %s, not a table", i, type(c)) end
    if not ACTIONS[c.action] then
      return nil, string.format("change %d (%s) has action %s (create, update, delete or run)", i,
        tostring(c.field), tostring(c.action))
    end
    if c.disruptive ~= nil and c.disruptive ~= false and DISRUPTIVE[c.disruptive] == nil then
      return nil, string.format("change %d (%s) has disruptive = %s (restart, recreate or reboot)", i,
        tostring(c.field), tostring(c.disruptive))
    end
  end
  return true
end

-- Why a change may not be applied in this run, or nil.
local function held_reason(c, o)
  if c.unsupported then return "not supported on this target: " .. tostring(c.unsupported) end
  local d = c.disruptive
  if d == nil or d == false then return nil end
  local flag = DISRUPTIVE[d]
  if flag == false then return "needs a host reboot (phoenix never reboots the host)" end
  if not o[flag] then return "needs --" .. flag:gsub("_", "-") end
end

local function describe_changes(list)
  local util = require "phoenix.util"
  local parts = {}
  for _, c in ipairs(list) do
    if c.action == "update" then
      parts[#parts + 1] = string.format("%s: %s (want %s)", tostring(c.field),
        c.secret and "(secret)" or util.show(c.from), c.secret and "(secret)" or util.show(c.to))
    else
      parts[#parts + 1] = c.action .. " " .. tostring(c.field or "")
    end
  end
  return table.concat(parts, "; ")
end

-- Calls a recipe function; expected failures come back as nil, msg.
local function call(fn, ...)
  local res = table.pack(xpcall(fn, function(e)
    if ctxmod.is_failure(e) then return e end
    return { bug = tostring(e), traceback = debug.traceback(tostring(e), 2) }
  end, ...))
  if res[1] then return table.unpack(res, 2, res.n) end
  local e = res[2]
  if ctxmod.is_failure(e) then return nil, e.message end
  return nil, e.bug, e.traceback
end

M.call = call

local function converge_one(r, recipe, ctx, o)
  local result = { changes = {}, held = {} }
  local have, err, tb = call(recipe.inspect, ctx, r.want)
  if have == nil then
    result.status, result.error, result.traceback = "failed", "inspect: " .. tostring(err or "returned nothing"), tb
    return result
  end
  result.exists = not (type(have) == "table" and have.exists == false)
  local changes
  changes, err, tb = call(recipe.diff, ctx, r.want, have)
  if changes == nil and err then
    result.status, result.error, result.traceback = "failed", "diff: " .. err, tb
    return result
  end
  changes = changes or {}
  local ok, bad = check_changes(changes)
  if not ok then
    result.status, result.error = "failed", "recipe " .. r.type .. ": " .. bad
    return result
  end
  if o.mode == "plan" then
    result.changes = changes
    for _, c in ipairs(changes) do c.held = held_reason(c, o) end
    result.status = #changes > 0 and "pending" or "in_sync"
    return result
  end
  local allowed = {}
  for _, c in ipairs(changes) do
    c.held = held_reason(c, o)
    if c.held then table.insert(result.held, c) else allowed[#allowed + 1] = c end
  end
  if #allowed == 0 then
    result.status = "ok"
    return result
  end
  ok, err, tb = call(recipe.apply, ctx, r.want, have, allowed)
  if not ok then
    result.status, result.error, result.traceback = "failed", err or "apply returned false", tb
    result.changes = allowed
    return result
  end
  result.changes = allowed
  -- Verify: what the recipe applied must now be gone from the diff.
  local have2
  have2, err, tb = call(recipe.inspect, ctx, r.want)
  if have2 == nil then
    result.status, result.error, result.traceback = "failed", "inspect after apply: " .. tostring(err), tb
    return result
  end
  local after
  after, err, tb = call(recipe.diff, ctx, r.want, have2)
  if after == nil and err then
    result.status, result.error, result.traceback = "failed", "diff after apply: " .. err, tb
    return result
  end
  local left = {}
  for _, c in ipairs(after or {}) do
    if not held_reason(c, o) then left[#left + 1] = c end
  end
  if #left > 0 then
    result.status = "failed"
    result.error = "did not converge: " .. describe_changes(left)
    return result
  end
  result.status = "changed"
  return result
end

-- run{ resources=, recipes=, target=, site=, mode="plan"|"apply", jobs=4,
--      allow_restart=, allow_recreate=, resource_timeout=, on_event=fn } -> report
-- or nil, msg when the resources do not form a DAG.
function M.run(o)
  local g, err = graph.build(o.resources, { external = "ignore" })
  if not g then return nil, err end
  local order = graph.topo(g)
  local mode = o.mode or "apply"
  local emit = o.on_event or function() end
  local report = {
    mode = mode, order = order, results = {}, interrupted = false,
    counts = { ok = 0, changed = 0, failed = 0, skipped = 0, in_sync = 0, pending = 0 },
    change_count = 0,
  }
  local t0 = sys.monotonic()
  local status = {} -- id -> "queued" | "running" | final status
  local pos = 1     -- scan position in order for the next ready resource
  local waiting = {} -- ids whose deps are not all done yet, in order

  local function record(id, result)
    local r = g.nodes[id]
    result.id, result.type, result.name = id, r.type, r.name
    report.results[id] = result
    status[id] = result.status
    report.counts[result.status] = (report.counts[result.status] or 0) + 1
    emit({ event = "finish", id = id, status = result.status, error = result.error,
      changes = #(result.changes or {}), held = #(result.held or {}), duration = result.duration })
  end

  local function skip_dependents(id, why)
    for _, d in ipairs(graph.dependents(g, id)) do
      if status[d] == nil or status[d] == "queued" then
        record(d, { status = "skipped", reason = why, changes = {}, held = {} })
      end
    end
  end

  -- Ready: every dependency finished well. In plan mode nothing changes, so
  -- every inspection may run at once.
  local function ready(id)
    if mode == "plan" then return true end
    for _, d in ipairs(g.deps[id]) do
      local s = status[d]
      if s ~= "ok" and s ~= "changed" then return false end
    end
    return true
  end

  local function make_task(id)
    local r = g.nodes[id]
    status[id] = "running"
    return {
      id = id,
      fn = function()
        local recipe = o.recipes:get(r.type)
        if not recipe then
          return { status = "failed", error = "no recipe for resource type '" .. r.type .. "'", changes = {}, held = {} }
        end
        local ctx = ctxmod.new({ resource = r, site = o.site, target = o.target, options = o })
        return converge_one(r, recipe, ctx, o)
      end,
    }
  end

  local function next_task()
    -- resources whose deps were pending, in order, then new ones
    for i, id in ipairs(waiting) do
      if status[id] == nil and ready(id) then
        table.remove(waiting, i)
        return make_task(id)
      elseif status[id] ~= nil then
        table.remove(waiting, i)
        return next_task()
      end
    end
    while pos <= #order do
      local id = order[pos]
      pos = pos + 1
      if status[id] == nil then
        if ready(id) then return make_task(id) end
        waiting[#waiting + 1] = id
      end
    end
  end

  local finished = scheduler.run{
    jobs = mode == "plan" and math.max(o.jobs or 4, 8) or (o.jobs or 4),
    timeout = o.resource_timeout,
    next = function()
      local t = next_task()
      if t then emit({ event = "start", id = t.id }) end
      return t
    end,
    done = function(t, ok, value, tb)
      local result
      if ok then
        result = value
      else
        result = { status = "failed", error = tostring(value), traceback = tb, changes = {}, held = {} }
      end
      result.duration = t.duration
      record(t.id, result)
      if result.status == "failed" or result.status == "skipped" then
        skip_dependents(t.id, "dependency " .. t.id .. " " .. result.status)
      end
    end,
    on_interrupt = function()
      report.interrupted = true
      emit({ event = "interrupt" })
    end,
  }
  for _, id in ipairs(order) do
    if report.results[id] == nil then
      record(id, { status = "skipped", reason = finished and "not reached" or "interrupted", changes = {}, held = {} })
    end
  end
  for _, res in pairs(report.results) do
    report.change_count = report.change_count + #(res.changes or {})
  end
  report.duration = sys.monotonic() - t0
  return report
end

return M
