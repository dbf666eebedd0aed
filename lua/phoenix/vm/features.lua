-- Feature scripts inside a guest, as docs/internals.md "Feature scripts"
-- says: push the script, run it with its settings as environment variables
-- in the argv, and on success push a marker holding the sha256 of script +
-- settings. Only the guest driver's exec/push/pull are used, so this works
-- for any guest kind.
local fs = require "px.fs"
local json = require "px.json"
local px = require "px"
local util = require "phoenix.util"

local M = {}

M.DIR = "/var/lib/phoenix/features"

-- script(site, name) -> text, path | nil, msg: the site's features_dir wins
-- over the built-in etc/features.
function M.script(site, name)
  local tried = {}
  local dirs = {}
  if site and site.features_dir then dirs[#dirs + 1] = site.features_dir end
  if px.home then dirs[#dirs + 1] = px.home .. "/etc/features" end
  for _, d in ipairs(dirs) do
    local p = d .. "/" .. name .. ".sh"
    local text = fs.read(p)
    if text then return text, p end
    tried[#tried + 1] = p
  end
  return nil, "feature " .. name .. ": no script (looked for " .. table.concat(tried, ", ") .. ")"
end

local function put(env, k, v)
  if v == nil or v == json.null then return end
  if type(v) == "table" then v = json.canonical(v) end
  if type(v) == "boolean" then v = v and "1" or "0" end
  env["PHOENIX_" .. k] = tostring(v)
end

-- settings(name, want, site) -> { PHOENIX_X = "..." }: what a VM's feature
-- is told. Only fields the feature reads, so an unrelated change (cores)
-- does not rerun it.
function M.vm_settings(name, want, site)
  local host = site and site.host or {}
  local env = {}
  put(env, "GUEST_ID", want.vmid)
  put(env, "HOSTNAME", want.name)
  put(env, "DOMAIN_NAME", want.domain_name)
  put(env, "USERNAME", want.user_config and want.user_config.username)
  if name == "base_setup" then
    put(env, "TIMEZONE", host.timezone)
  elseif name == "docker" then
    put(env, "PORTAINER_ROLE", want.portainer_role)
    put(env, "EXTERNAL_REGISTRY_URL", host.network and host.network.external_registry_url)
  elseif name == "nvidia" then
    local nv = host.nvidia_driver or {}
    put(env, "NVIDIA_DRIVER_VERSION", nv.version)
    put(env, "NVIDIA_RUNFILE_URL", nv.runfile_url)
    put(env, "CUDA_VERSION", nv.cuda_version)
  elseif name == "trusted_ca" or name == "step_cli" then
    put(env, "STEP_CA", host.step_ca)
  end
  return env
end

-- hash(script, env) -> hex: what the marker holds.
function M.hash(script, env)
  return fs.sha256(script .. "\0" .. json.canonical(env))
end

--[[ wanted(site, want, names, settings_fn) -> list of { name, script, env, hash } | nil, msg ]]
function M.wanted(site, want, names, settings_fn)
  local out = {}
  for _, name in ipairs(names or {}) do
    local text, err = M.script(site, name)
    if not text then return nil, err end
    local env = settings_fn(name, want, site)
    out[#out + 1] = { name = name, script = text, env = env, hash = M.hash(text, env) }
  end
  return out
end

-- marker(driver, id, name) -> hash | nil (none, or unreadable)
function M.marker(driver, id, name)
  local text = driver:pull(id, M.DIR .. "/" .. name .. ".done")
  return text and text:match("^(%x+)") or nil
end

-- run(driver, id, f, {timeout_ms=}) -> true | nil, msg
function M.run(driver, id, f, o)
  local path = M.DIR .. "/" .. f.name .. ".sh"
  local ok, err = driver:push(id, path, f.script, { mode = "0700" })
  if not ok then return nil, "feature " .. f.name .. ": " .. err end
  local argv = { "env", "PHOENIX_FEATURE=" .. f.name }
  for _, k in ipairs(util.sorted_keys(f.env)) do argv[#argv + 1] = k .. "=" .. f.env[k] end
  argv[#argv + 1] = "sh"
  argv[#argv + 1] = path
  local res, rerr = driver:exec(id, argv, { timeout_ms = (o and o.timeout_ms) or 3600000 })
  if not res then return nil, "feature " .. f.name .. ": " .. rerr end
  if res.code ~= 0 then
    local tail = util.tail(res.stderr ~= "" and res.stderr or res.stdout, 8)
    return nil, string.format("feature %s failed (exit %d)%s", f.name, res.code, tail ~= "" and (":\n" .. tail) or "")
  end
  ok, err = driver:push(id, M.DIR .. "/" .. f.name .. ".done", f.hash .. "\n", { mode = "0600" })
  if not ok then return nil, "feature " .. f.name .. ": " .. err end
  return true
end

return M
