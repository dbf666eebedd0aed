-- The built-in feature scripts and which guest kinds they apply to.
--
-- A feature is a script run inside a guest, in the order the guest lists
-- them (etc/features/<name>.sh, run with pct exec or the guest agent). A
-- site may add its own as <features_dir>/<name>.sh; those apply to both
-- kinds and may not shadow a built-in name's kinds.
local fs = require "px.fs"

local M = {}

M.builtin = {
  base_setup = { kinds = { lxc = true, vm = true }, summary = "packages, locale, time zone, users" },
  nvidia = { kinds = { lxc = true, vm = true }, summary = "NVIDIA user-space driver matching the host" },
  docker = { kinds = { lxc = true, vm = true }, summary = "Docker engine and compose plugin" },
  vllm = { kinds = { lxc = true }, summary = "vLLM server (vllm_engine_config)" },
  ollama = { kinds = { lxc = true }, summary = "Ollama server" },
  portainer = { kinds = { lxc = true }, summary = "Portainer server or agent by portainer_role" },
  dns_server = { kinds = { lxc = true }, summary = "DNS server for the site's domain" },
  nat_gateway = { kinds = { lxc = true }, summary = "NAT and forwarding for a private network" },
  python_api_service = { kinds = { lxc = true }, summary = "a Python API service (systemd unit)" },
  step_ca = { kinds = { lxc = true }, summary = "smallstep certificate authority (step_ca)" },
  traefik = { kinds = { lxc = true }, summary = "Traefik reverse proxy (traefik_service routes)" },
  trusted_ca = { kinds = { lxc = true, vm = true }, summary = "trust the site's internal CA" },
  step_cli = { kinds = { lxc = true, vm = true }, summary = "step CLI, bootstrapped against the CA" },
}

-- Sorted names of the built-ins (for messages and docs).
function M.names()
  local out = {}
  for name in pairs(M.builtin) do out[#out + 1] = name end
  table.sort(out)
  return out
end

-- site_features(dir) -> set of names with a <dir>/<name>.sh (empty when dir is nil or absent).
function M.site_features(dir)
  local set = {}
  if not dir then return set end
  local names = fs.list(dir)
  for _, f in ipairs(names or {}) do
    local name = f:match("^([a-z][a-z0-9_-]*)%.sh$")
    if name then set[name] = true end
  end
  return set
end

-- check(name, kind, site_set) -> true | nil, message, hint
function M.check(name, kind, site_set)
  local b = M.builtin[name]
  if b then
    if b.kinds[kind] then return true end
    local kinds = {}
    for k in pairs(b.kinds) do kinds[#kinds + 1] = k end
    table.sort(kinds)
    return nil, string.format("feature %s does not apply to %s guests (only %s)", name,
      kind == "lxc" and "container" or "VM", table.concat(kinds, ", "))
  end
  if site_set and site_set[name] then return true end
  return nil, "unknown feature " .. name .. ": not built in and not in the site's features_dir",
    "built-in features: " .. table.concat(M.names(), ", ") .. "; a site feature is <features_dir>/" .. name .. ".sh"
end

return M
