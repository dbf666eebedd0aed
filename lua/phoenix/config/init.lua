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

-- Stack secrets are read only for the environments some VM deploys: a
-- testing environment's password need not be set to converge production.
local function resolve_stack_secrets(work, docs, problems, opts)
  local defs = work.stacks and work.stacks.docker_stacks
  if not defs then return end
  local done = {}
  for _, vm in ipairs(work.vm and work.vm.vms or {}) do
    for _, s in ipairs(vm.docker_stacks or {}) do
      local name = type(s) == "table" and s.name or s
      local def = defs[name]
      local env = def and normalize.stack_env(def, type(s) == "table" and s.environment or nil)
      local key = tostring(name) .. "\0" .. tostring(env)
      if def and def.environments and def.environments[env] and not done[key] then
        done[key] = true
        secrets.resolve(def.environments[env], docs.stacks.name, problems, opts,
          util.pointer("/docker_stacks", name, "environments", env))
      end
    end
  end
  for _, name in ipairs(util.keys(defs)) do
    local def = defs[name]
    if def.git and def.git.credentials then
      secrets.resolve(def.git.credentials, docs.stacks.name, problems, opts, util.pointer("/docker_stacks", name, "git", "credentials"))
    end
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

  local raw = {}
  for key, d in pairs(docs) do raw[key] = d.value end
  local work = {}
  for key, v in pairs(raw) do work[key] = util.copy(v) end
  for key, d in pairs(docs) do secrets.plain_text(raw[key], d.name, problems) end
  if opts.resolve_secrets ~= false then
    for key, d in pairs(docs) do
      if key ~= "stacks" then secrets.resolve(work[key], d.name, problems, opts) end
    end
    resolve_stack_secrets(work, docs, problems, opts)
  end

  normalize.apply_defaults(work, docs)
  local host = normalize.host(work.hypervisor, problems)
  local fw_ptr = (raw.hypervisor.firewall == nil and type(raw.hypervisor.shared_volumes) == "table"
    and raw.hypervisor.shared_volumes.firewall ~= nil) and "/shared_volumes/firewall" or "/firewall"
  local cts = normalize.containers(work.lxc, raw.lxc, docs.lxc and docs.lxc.order, problems, host)
  local vms = normalize.vms(work.vm, problems, host)

  local list, by_id, builder = resources.build({
    dir = dir, host = host, cts = cts, vms = vms, stacks_doc = work.stacks, problems = problems,
    firewall_ptr = fw_ptr, features_dir = site_dir(dir, host.features_dir), opts = opts,
  })
  crosscheck.run(builder)

  if problems:has_errors() then return nil, problems.list end
  local site = {
    dir = dir,
    files = raw,
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
