-- The engine at the REPL prompt: site(), inspect(id), diff(id), plan([id]),
-- converge([id]), reload(). The site is loaded on first use and kept until
-- reload(), so a session can edit files and look again.
local ctxmod = require "phoenix.ctx"
local engine = require "phoenix.engine"
local graph = require "phoenix.graph"
local lock = require "phoenix.lock"
local report = require "phoenix.report"
local run = require "phoenix.run"

local M = {}

-- env(opts) -> table of functions for repl.start{env=...}; opts are the
-- verb options (config-dir, target, target-opt, recipes, jobs, lock-*).
function M.env(opts)
  local cur
  local function get()
    if not cur then
      local e = run.prepare(opts)
      if not e then error("cannot load the site (the problems are printed above)", 0) end
      cur = e
    end
    return cur
  end
  local function resource(id)
    local e = get()
    local r = e.site.by_id[id] or run.find_guest(e.site, tostring(id))
    if not r then error("no resource " .. tostring(id) .. " (site().by_id lists them)", 0) end
    return r, e
  end
  -- id and everything it depends on, or every resource
  local function scope(id)
    local e = get()
    if id == nil then return e.site.resources end
    local r = resource(id)
    local g = assert(graph.build(e.site.resources, { external = "ignore" }))
    local keep = graph.closure(g, { r.id })
    local out = {}
    for _, x in ipairs(e.site.resources) do
      if keep[x.id] then out[#out + 1] = x end
    end
    return out
  end
  local function recipe_ctx(r, e)
    local recipe = e.registry:get(r.type)
    if not recipe then error("no recipe for resource type '" .. r.type .. "'", 0) end
    return recipe, ctxmod.new({ resource = r, site = e.site, target = e.target, options = { mode = "plan" } })
  end
  local function engine_run(resources, mode)
    local e = get()
    return assert(engine.run({ site = e.site, resources = resources, recipes = e.registry, target = e.target,
      mode = mode, jobs = opts.jobs or 4, allow_restart = opts["allow-restart"], allow_recreate = opts["allow-recreate"] }))
  end

  return {
    site = function() return get().site end,
    target = function() return get().target end,
    reload = function() cur = nil return true end,
    inspect = function(id)
      local r, e = resource(id)
      local recipe, ctx = recipe_ctx(r, e)
      local have, err = engine.call(recipe.inspect, ctx, r.want)
      if have == nil then error(err, 0) end
      e.target:forget()
      return have
    end,
    diff = function(id)
      local r, e = resource(id)
      local recipe, ctx = recipe_ctx(r, e)
      local have, err = engine.call(recipe.inspect, ctx, r.want)
      if have == nil then error(err, 0) end
      e.target:forget()
      return recipe.diff(ctx, r.want, have)
    end,
    plan = function(id)
      local rep = engine_run(id and { (resource(id)) } or scope(nil), "plan")
      get().target:forget()
      io.stdout:write(report.plan_text(rep, run.describe_fn(get())))
    end,
    converge = function(id)
      local held, err = lock.acquire(opts["lock-file"] or lock.default_path, opts["lock-timeout"] or 30, "phoenix repl")
      if not held then error(err, 0) end
      local rep = engine_run(scope(id), "apply")
      held:unlock()
      get().target:forget()
      for _, rid in ipairs(rep.order) do io.stdout:write(report.result_text(rep.results[rid])) end
      io.stdout:write(report.summary_text("converge", rep))
    end,
  }
end

return M
