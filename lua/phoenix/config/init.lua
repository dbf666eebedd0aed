-- phoenix.config: reads a site (the four JSON files), validates it and
-- returns the normalised site model with its typed resources.
--
--   local site, problems = config.load(dir, opts)
--
-- site is nil when problems holds an error. opts:
--   recipes          registry (type -> recipe, or :has(type)); every resource type must have one
--   resolve_secrets  false: keep {"secret": ...} references unresolved (validate --no-secrets)
--   getenv           function(name) for env: secrets (default px.sys.getenv)
--   schemas_dir      where the *.schema.json live (default <phoenix home>/schemas)
-- See docs/internals.md ("The site") and docs/resources.md.
local crosscheck = require "phoenix.config.crosscheck"
local files = require "phoenix.config.files"
local normalize = require "phoenix.config.normalize"
local resources = require "phoenix.config.resources"
local secrets = require "phoenix.config.secrets"
local util = require "phoenix.config.util"

local M = {}

M.DEFAULT_DIR = "/usr/local/phoenix_hypervisor/etc"
M.FILES = files.FILES

local KNOWN_OPTS = { recipes = true, resolve_secrets = true, getenv = true, schemas_dir = true }

-- A directory from the hypervisor file: absolute, or relative to the config dir.
local function site_dir(dir, v)
  if type(v) ~= "string" then return nil end
  if v:sub(1, 1) == "/" then return v end
  return dir .. "/" .. v
end

-- Stack secrets are read only for the environments some VM deploys (and
-- git credentials): a testing environment's password need not be set to
-- converge production.
local function stack_secret_filter(work)
  local defs = work.stacks and work.stacks.docker_stacks or {}
  local prefixes = {}
  for _, vm in ipairs(work.vm and work.vm.vms or {}) do
    for _, s in ipairs(vm.docker_stacks or {}) do
      local name = type(s) == "table" and s.name or s
      local def = defs[name]
      if def then
        local env = normalize.stack_env(def, type(s) == "table" and s.environment or nil)
        prefixes[#prefixes + 1] = util.pointer("/docker_stacks", name, "environments", env) .. "/"
      end
    end
  end
  return function(ptr)
    if ptr:match("^/docker_stacks/[^/]+/git/") then return true end
    for _, p in ipairs(prefixes) do
      if ptr:sub(1, #p) == p then return true end
    end
    return false
  end
end

function M.load(dir, opts)
  opts = opts or {}
  for k in pairs(opts) do
    if not KNOWN_OPTS[k] then error("phoenix.config.load: unknown option '" .. tostring(k) .. "'", 2) end
  end
  dir = (dir or M.DEFAULT_DIR):gsub("(.)/+$", "%1")
  local problems = util.problems()
  local docs = files.read(dir, problems, opts)
  -- Schema errors first: the checks below rely on the shapes the schemas guarantee.
  if problems:has_errors() then return nil, problems.list end

  -- px.schema's values are ours: normalise them in place (site.files decodes again when read)
  local work = {}
  for key, d in pairs(docs) do work[key] = d.value end
  local order = {}
  for key, d in pairs(docs) do order[key] = d.order end
  if opts.resolve_secrets ~= false then
    for _, f in ipairs(files.FILES) do
      local d = docs[f.key]
      if d then
        secrets.resolve(work[f.key], d.collected, d.name, problems, opts, f.key == "stacks" and stack_secret_filter(work) or nil)
      end
    end
  end

  normalize.apply_defaults(work, docs)
  local hyp = work.hypervisor
  local fw_ptr = (hyp.firewall == nil and type(hyp.shared_volumes) == "table"
    and hyp.shared_volumes.firewall ~= nil) and "/shared_volumes/firewall" or "/firewall"
  local host = normalize.host(work.hypervisor, problems)
  local cts = normalize.containers(work.lxc, order.lxc, problems, host)
  local vms = normalize.vms(work.vm, problems, host)

  local list, by_id, builder = resources.build({
    dir = dir, host = host, cts = cts, vms = vms, stacks_doc = work.stacks, problems = problems,
    firewall_ptr = fw_ptr, features_dir = site_dir(dir, host.features_dir), opts = opts,
  })
  crosscheck.run(builder)

  if problems:has_errors() then return nil, problems.list end
  local site = {
    dir = dir,
    files = files.as_written(docs),
    host = host,
    target = host.target and util.copy(host.target) or nil,
    recipes_dir = site_dir(dir, host.recipes_dir),
    features_dir = site_dir(dir, host.features_dir),
    resources = list,
    by_id = by_id,
    warnings = problems:warnings(),
  }
  return site, problems.list
end

return M
