-- What each feature script is told: its settings, passed as PHOENIX_<KEY>
-- environment variables in the argv (docs/internals.md, "Feature scripts").
-- Settings, the guest's identity (PHOENIX_GUEST_ID, PHOENIX_HOSTNAME)
-- included, are hashed into the feature's marker: changing one reruns the
-- feature, and a clone reruns what its template ran (the scripts check
-- before they act, so that costs little).
local json = require "px.json"

local M = {}

local function list(v)
  if type(v) ~= "table" then return v end
  local out = {}
  for i, x in ipairs(v) do out[i] = tostring(x) end
  return table.concat(out, " ")
end

local function host(site, ...)
  local v = site and site.host
  for _, k in ipairs({ ... }) do
    if type(v) ~= "table" then return nil end
    v = v[k]
  end
  return v
end

local function ca(want, site)
  return {
    CA_URL = host(site, "step_ca", "ca_url"), CA_DNS_NAME = host(site, "step_ca", "dns_name"),
    ROOT_CA_NAME = host(site, "step_ca", "root_ca_name"), DOMAIN_NAME = want.domain_name,
  }
end

-- name -> function(want, site) -> { KEY = value }
M.builtin = {
  base_setup = function(want, site)
    local nc = want.network_config or {}
    return { TIMEZONE = host(site, "timezone"), DOMAIN_NAME = want.domain_name, NAMESERVERS = list(nc.nameservers) }
  end,
  nvidia = function(_, site)
    return {
      NVIDIA_DRIVER_VERSION = host(site, "nvidia_driver", "version"),
      NVIDIA_RUNFILE_URL = host(site, "nvidia_driver", "runfile_url"),
      CUDA_VERSION = host(site, "nvidia_driver", "cuda_version"),
    }
  end,
  vllm = function(want)
    local out = {}
    for k, v in pairs(want) do
      if type(k) == "string" and k:match("^vllm_[%w_]+$") then
        out[k:upper()] = type(v) == "table" and json.canonical(v) or v
      end
    end
    return out
  end,
  portainer = function(want, site)
    return {
      PORTAINER_ROLE = want.portainer_role,
      PORTAINER_SERVER_IP = host(site, "network", "portainer_server_ip"),
      PORTAINER_SERVER_PORT = host(site, "network", "portainer_server_port"),
      PORTAINER_AGENT_PORT = host(site, "network", "portainer_agent_port"),
    }
  end,
  dns_server = function(want, site)
    return { DOMAIN_NAME = want.domain_name, UPSTREAM_SERVERS = list(host(site, "dns_server", "upstream_servers")) }
  end,
  step_ca = function(want, site)
    local s = ca(want, site)
    s.INTERMEDIATE_CA_NAME = host(site, "step_ca", "intermediate_ca_name")
    s.PROVISIONER_NAME = host(site, "step_ca", "provisioner_name")
    return s
  end,
  trusted_ca = ca,
  step_cli = ca,
  traefik = function(want) return { DOMAIN_NAME = want.domain_name } end,
}

local function str(v)
  if type(v) == "boolean" then return v and "1" or "0" end
  if math.type(v) == "float" and v == math.floor(v) then return tostring(math.tointeger(v)) end
  return tostring(v)
end

-- settings(name, want, site) -> sorted list of { "PHOENIX_KEY", "value" }
function M.settings(name, want, site)
  local fn = M.builtin[name]
  local t = fn and fn(want, site) or {}
  t.GUEST_ID, t.HOSTNAME = want.ctid or want.vmid, want.name
  local out = {}
  for k, v in pairs(t) do
    if v ~= nil and v ~= json.null and v ~= "" then out[#out + 1] = { "PHOENIX_" .. k, str(v) } end
  end
  table.sort(out, function(a, b) return a[1] < b[1] end)
  return out
end

return M
