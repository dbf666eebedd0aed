-- The verbs that converge (converge, plan, setup, create, sync, status,
-- delete) share this: load the site, choose the target, pick the resources,
-- take the lock, run the engine, print, and choose the exit code.
local engine = require "phoenix.engine"
local graph = require "phoenix.graph"
local lock = require "phoenix.lock"
local recipes = require "phoenix.recipes"
local report = require "phoenix.report"
local targets = require "phoenix.target"
local ctxmod = require "phoenix.ctx"
local px = require "px"
local log = require "px.log"
local sys = require "px.sys"

local M = {}

M.EXIT_OK, M.EXIT_FAILED, M.EXIT_USAGE, M.EXIT_CHANGES, M.EXIT_INTERRUPTED = 0, 1, 2, 3, 130
M.default_config_dir = "/usr/local/phoenix_hypervisor/etc"

-- Options every engine verb takes.
M.options = {
  { "config-dir", arg = "DIR", help = "site files directory (default " .. M.default_config_dir .. ")" },
  { "target", arg = "TYPE", help = "pve | pve-api | lxc (overrides the site's \"target\")" },
  { "target-opt", arg = "KEY=VALUE", type = "list", help = "a target option, e.g. root=DIR or bin=DIR (repeatable)" },
  { "jobs", short = "j", arg = "N", type = "int", min = 1, default = 4, help = "resources converged at once (default 4)" },
  { "recipes", arg = "DIR", help = "a directory of site recipes (adds or overrides types)" },
  { "json", help = "print the result as JSON (format phoenix.plan/1)" },
  { "log-json", arg = "FILE", help = "append one JSON line per event to FILE" },
  { "timeout", arg = "SECONDS", type = "int", min = 1, default = 1800, help = "per-resource time limit (default 1800)" },
  { "verbose", short = "v", help = "also list resources that were already in sync" },
  { "quiet", short = "q", help = "only errors" },
  { "debug", help = "debug logging, and tracebacks for recipe bugs" },
}

-- Options of verbs that change things.
M.apply_options = {
  { "allow-restart", help = "allow changes that restart a guest" },
  { "allow-recreate", help = "allow changes that destroy and re-create a guest" },
  { "lock-file", arg = "PATH", help = "run lock (default " .. lock.default_path .. ")" },
  { "lock-timeout", arg = "SECONDS", type = "int", min = 0, default = 30, help = "wait this long for another run (default 30)" },
}

local function print_problems(problems)
  for _, p in ipairs(problems) do
    local where = p.file and (p.file .. ": " .. (p.pointer ~= nil and p.pointer ~= "" and (p.pointer .. ": ") or "")) or ""
    local line = where .. tostring(p.message) .. (p.hint and (" (" .. p.hint .. ")") or "")
    if p.severity == "warning" then log.warn(line) else log.error(line) end
  end
end

-- prepare(opts) -> env | nil, exit code. env = {site, registry, target}
function M.prepare(opts)
  if opts.debug then log.set_level("debug") elseif opts.quiet then log.set_level("error") end
  if opts["log-json"] then
    local ok, err = log.open(opts["log-json"])
    if not ok then log.error(err) return nil, M.EXIT_USAGE end
  end
  local config = require "phoenix.config"
  local site, problems = config.load(opts["config-dir"] or M.default_config_dir)
  if not site then
    print_problems(problems or {})
    log.error("the site files have errors: nothing was done (run 'phoenix validate' for the full list)")
    return nil, M.EXIT_USAGE
  end
  if not opts.quiet then print_problems(site.warnings or {}) end
  local dirs = { { dir = px.home .. "/recipes", origin = "built-in" } }
  if site.recipes_dir then dirs[#dirs + 1] = { dir = site.recipes_dir, origin = "site", required = true } end
  if opts.recipes then dirs[#dirs + 1] = { dir = opts.recipes, origin = "site", required = true } end
  local registry, rerr = recipes.load({ dirs = dirs })
  if not registry then log.error(rerr) return nil, M.EXIT_USAGE end
  local spec, serr = targets.resolve(site.target, opts.target, opts["target-opt"])
  if not spec then log.error(serr) return nil, M.EXIT_USAGE end
  local target, terr = targets.open(spec)
  if not target then log.error(terr) return nil, M.EXIT_USAGE end
  return { site = site, registry = registry, target = target }
end

-- find_guest(site, word) -> resource | nil, msg: "101", "lxc:101", "vm:9000"
function M.find_guest(site, word)
  if site.by_id[word] then return site.by_id[word] end
  local found = {}
  for _, t in ipairs({ "lxc", "vm" }) do
    local r = site.by_id[t .. ":" .. word]
    if r then found[#found + 1] = r end
  end
  if #found == 1 then return found[1] end
  if #found > 1 then return nil, "ID " .. word .. " names both a container and a VM; say lxc:" .. word .. " or vm:" .. word end
  return nil, "no guest " .. word .. " in the site files"
end

-- Guests with trigger_sync_on_completion in a create run bring in the sync
-- resources (and what they need, guests aside), run after those guests:
-- id -> the triggering guest ids.
local function sync_after(site, g, keep)
  local triggers = {}
  for id in pairs(keep) do
    local r = site.by_id[id]
    if (r.type == "lxc" or r.type == "vm") and r.want.trigger_sync_on_completion then triggers[#triggers + 1] = id end
  end
  if #triggers == 0 then return {} end
  table.sort(triggers)
  local start = {}
  for _, r in ipairs(site.resources) do
    if r.scope == "sync" then start[#start + 1] = r.id end
  end
  local joined = {}
  for id in pairs(graph.closure(g, start)) do
    local t = site.by_id[id].type
    if not keep[id] and t ~= "lxc" and t ~= "vm" then joined[id] = triggers end
  end
  return joined
end

-- select(site, scope, ids) -> resources | nil, msg
-- scope: "all" | "host" | "guest" (ids + what they depend on) | "sync" | {ids}
function M.select(site, scope, ids)
  local all = site.resources
  if scope == "all" then return all end
  local g, err = graph.build(all, { external = "ignore" })
  if not g then return nil, err end
  local keep, joined = {}, {}
  if scope == "host" then
    for _, r in ipairs(all) do
      if r.scope == "host" then keep[r.id] = true end
    end
  elseif scope == "guest" then
    local start = {}
    for _, word in ipairs(ids) do
      local r, ferr = M.find_guest(site, word)
      if not r then return nil, ferr end
      start[#start + 1] = r.id
    end
    keep = graph.closure(g, start)
    joined = sync_after(site, g, keep)
  elseif scope == "sync" or scope == "ids" then
    local start = {}
    if scope == "sync" then
      for _, r in ipairs(all) do
        if r.scope == "sync" then start[#start + 1] = r.id end
      end
    else
      for _, id in ipairs(ids) do
        if not site.by_id[id] then return nil, "no resource " .. id .. " in the site files" end
        start[#start + 1] = id
      end
    end
    -- Guests are converged by converge/create and the host by setup; sync
    -- takes them as they are, except that `sync all` refreshes DNS and the
    -- firewall (its order: readiness, DNS/firewall, Traefik, Portainer).
    for id in pairs(graph.closure(g, start)) do
      local r = site.by_id[id]
      if r.scope == "sync" or (scope == "sync" and (r.type == "dns_server" or r.type == "firewall")) then
        keep[id] = true
      end
    end
  end
  local out = {}
  for _, r in ipairs(all) do
    if keep[r.id] then
      out[#out + 1] = r
    elseif joined[r.id] then
      local copy = {}
      for k, v in pairs(r) do copy[k] = v end
      copy.deps = {}
      for _, d in ipairs(r.deps) do copy.deps[#copy.deps + 1] = d end
      for _, d in ipairs(joined[r.id]) do copy.deps[#copy.deps + 1] = d end
      out[#out + 1] = copy
    end
  end
  return out
end

function M.describe_fn(env)
  return function(id)
    local r = env.site.by_id[id]
    local recipe = r and env.registry:get(r.type)
    if recipe and recipe.describe then
      local ok, d = pcall(recipe.describe, r.want)
      if ok then return d end
    end
  end
end

-- execute(verb, opts, env, resources, mode) -> exit code
function M.execute(verb, opts, env, resources, mode)
  local held
  if mode == "apply" then
    local err
    held, err = lock.acquire(opts["lock-file"] or lock.default_path, opts["lock-timeout"] or 30,
      "phoenix " .. verb)
    if not held then log.error(err) return M.EXIT_USAGE end
  end
  sys.trap_interrupt()
  local verbose, as_json = opts.verbose, opts.json
  local rep, err = engine.run({
    site = env.site, resources = resources, recipes = env.registry, target = env.target, mode = mode,
    jobs = opts.jobs, allow_restart = opts["allow-restart"], allow_recreate = opts["allow-recreate"],
    resource_timeout = opts.timeout, debug = opts.debug,
    on_event = function(ev)
      log.event(ev)
      if ev.event == "interrupt" then
        log.warn("interrupted: no new work will start; waiting for running steps (Ctrl-C again to abort)")
      end
    end,
  })
  if held then held:unlock() end
  if not rep then log.error(err) return M.EXIT_USAGE end
  if opts.debug then
    for _, id in ipairs(rep.order) do
      local res = rep.results[id]
      if res.traceback then log.debug(id .. ": " .. res.traceback) end
    end
  end
  if as_json then
    io.stdout:write(report.to_json(rep, { timings = mode == "apply" }))
  elseif verb == "status" then
    io.stdout:write(report.status_text(rep))
  elseif mode == "plan" then
    io.stdout:write(report.plan_text(rep, M.describe_fn(env)))
  else
    for _, id in ipairs(rep.order) do
      io.stdout:write(report.result_text(rep.results[id], verbose))
    end
    io.stdout:write(report.summary_text(verb, rep))
  end
  if rep.interrupted then return M.EXIT_INTERRUPTED end
  if rep.counts.failed > 0 or (mode == "apply" and rep.counts.skipped > 0) then return M.EXIT_FAILED end
  if mode == "plan" and opts["exit-code"] and rep.counts.pending > 0 then return M.EXIT_CHANGES end
  return M.EXIT_OK
end

-- prune(env, opts) -> exit code: deletes guests phoenix tagged as its own
-- that the site no longer declares (each only with --yes).
function M.prune(env, opts)
  if not env.target.owned_guests then
    log.error("--prune is not supported on the " .. env.target.type .. " target")
    return M.EXIT_USAGE
  end
  local owned, err = env.target:owned_guests()
  if not owned then log.error("--prune: " .. tostring(err)) return M.EXIT_FAILED end
  local code = M.EXIT_OK
  for _, g in ipairs(owned) do
    local id = g.type .. ":" .. g.name
    if not env.site.by_id[id] then
      local num = tonumber(g.name)
      local r = { id = id, type = g.type, name = g.name, scope = "guest", deps = {},
        want = { ctid = g.type == "lxc" and num or nil, vmid = g.type == "vm" and num or nil, prune = true } }
      local c = M.destroy(env, r, opts)
      if c ~= M.EXIT_OK then code = c end
    end
  end
  return code
end

-- destroy(env, resource, opts) -> exit code: deletes one guest phoenix owns.
function M.destroy(env, r, opts)
  local recipe = env.registry:get(r.type)
  if not recipe or not recipe.destroy then
    log.error("resource type '" .. r.type .. "' cannot be deleted by phoenix")
    return M.EXIT_USAGE
  end
  local ctx = ctxmod.new({ resource = r, site = env.site, target = env.target, options = opts })
  local have, err = engine.call(recipe.inspect, ctx, r.want)
  if not have then log.error(r.id .. ": inspect: " .. tostring(err)) return M.EXIT_FAILED end
  if have.exists == false then
    io.stdout:write(r.id .. ": already absent\n")
    return M.EXIT_OK
  end
  if not have.owned then
    log.error(r.id .. " exists but does not carry the phoenix tag: phoenix deletes only guests it created")
    return M.EXIT_USAGE
  end
  if not opts.yes then
    io.stdout:write(r.id .. " would be deleted with all its disks. Run again with --yes to delete it.\n")
    return M.EXIT_USAGE
  end
  local held, lerr = lock.acquire(opts["lock-file"] or lock.default_path, opts["lock-timeout"] or 30, "phoenix delete")
  if not held then log.error(lerr) return M.EXIT_USAGE end
  local ok, derr = engine.call(recipe.destroy, ctx, r.want, have)
  held:unlock()
  if not ok then log.error(r.id .. ": delete: " .. tostring(derr)) return M.EXIT_FAILED end
  io.stdout:write(r.id .. ": deleted\n")
  return M.EXIT_OK
end

return M
