-- Choosing and opening the target a run talks to.
local fs = require "px.fs"

local M = {}

M.modules = {
  pve = "phoenix.target.pve",
  ["pve-api"] = "phoenix.target.pve_api",
  lxc = "phoenix.target.lxc",
}

local function names()
  local out = {}
  for k in pairs(M.modules) do out[#out + 1] = k end
  table.sort(out)
  return table.concat(out, ", ")
end

-- resolve(site_target, cli_type, cli_opts) -> spec | nil, msg
-- The command line wins over the site file; with neither, a Proxmox node
-- (/etc/pve present) means pve.
function M.resolve(site_target, cli_type, cli_opts)
  local spec = {}
  if site_target and (not cli_type or cli_type == site_target.type) then
    for k, v in pairs(site_target) do spec[k] = v end
  end
  if cli_type then spec.type = cli_type end
  for _, kv in ipairs(cli_opts or {}) do
    local k, v = kv:match("^([%w_%-]+)=(.*)$")
    if not k then return nil, "--target-opt expects KEY=VALUE, got '" .. kv .. "'" end
    spec[k] = v
  end
  if not spec.type then
    if fs.exists("/etc/pve") then
      spec.type = "pve"
    else
      return nil, "no target: this host has no /etc/pve, so it is not a Proxmox node. Choose one with "
        .. "--target " .. names():gsub(", ", "|") .. " or a \"target\" in phoenix_hypervisor_config.json"
    end
  end
  if not M.modules[spec.type] then
    return nil, string.format("unknown target type '%s' (known: %s)", tostring(spec.type), names())
  end
  return spec
end

-- open(spec) -> target | nil, msg
function M.open(spec)
  local modname = M.modules[spec.type]
  if not modname then
    return nil, string.format("unknown target type '%s' (known: %s)", tostring(spec.type), names())
  end
  local ok, mod = pcall(require, modname)
  if not ok then
    if tostring(mod):find("module '" .. modname .. "' not found", 1, true) then
      return nil, "the " .. spec.type .. " target is not available in this version"
    end
    error(mod, 0)
  end
  return mod.new(spec)
end

return M
