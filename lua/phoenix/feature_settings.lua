-- What a feature script is told (docs/features.md, "Settings"): only the
-- variables its header documents (`#   PHOENIX_<NAME>  meaning` lines),
-- each taken from the guest's field of the same name in lower case
-- (PHOENIX_VLLM_ENGINE_CONFIG <- vllm_engine_config), else from the site
-- source below, else not passed (the script's default applies). Values
-- are strings: booleans yes/no, lists space-separated, objects JSON.
-- They are hashed into the feature's marker, so changing one reruns it.
local json = require "px.json"

local M = {}

-- documented(text) -> names (without PHOENIX_) from the script's header
function M.documented(text)
  local out, seen = {}, {}
  for line in text:gmatch("[^\n]*") do
    if line ~= "" and line:sub(1, 1) ~= "#" then break end
    local name = line:match("^#%s+PHOENIX_([A-Z0-9_]+)%s")
    if name and name ~= "FEATURE" and not seen[name] then
      seen[name] = true
      out[#out + 1] = name
    end
  end
  return out
end

local function get(t, ...)
  for _, k in ipairs({ ... }) do
    if type(t) ~= "table" then return nil end
    t = t[k]
  end
  if t == json.null then return nil end
  return t
end

local function res_want(site, id) return get(site, "by_id", id, "want") end

local function first_user(site)
  local u = get(site, "host", "users")
  if type(u) == "table" and u[1] then return u[1] end
  return u
end

local function address(want)
  local ip = get(want, "network_config", "ip")
  return ip and ip ~= "dhcp" and ip:match("^[^/]+") or nil
end

local function ca_url(site)
  return get(res_want(site, "trusted_ca:host"), "ca_url") or get(res_want(site, "step_ca:config"), "ca_url")
    or get(site, "host", "step_ca", "ca_url")
end

-- name -> function(want, site, guest) -> value; guest(what) reads what
-- another guest holds (the CA's certificate), nil when unknown.
M.site = {
  GUEST_ID = function(want) return want.ctid or want.vmid end,
  HOSTNAME = function(want) return want.name end,
  DOMAIN_NAME = function(want, site) return want.domain_name or get(site, "host", "domain_name") end,
  TIMEZONE = function(_, site) return get(site, "host", "timezone") end,
  ADMIN_USER = function(_, site) return get(first_user(site), "username") end,
  ADMIN_SUDO = function(_, site) return get(first_user(site), "sudo_access") end,
  ADMIN_SSH_KEYS = function(_, site)
    local u = first_user(site)
    local keys = get(u, "ssh_public_keys") or get(u, "ssh_public_key")
    if type(keys) == "table" then return #keys > 0 and table.concat(keys, "\n") or nil end
    return keys ~= "" and keys or nil
  end,
  ADMIN_PASSWORD_HASH = function(_, site) return get(first_user(site), "password_hash") end,
  CA_URL = function(_, site) return ca_url(site) end,
  CA_CERT_PEM = function(_, _, guest) return guest and guest("ca_cert") end,
  CA_FINGERPRINT = function(_, _, guest) return guest and guest("ca_fingerprint") end,
  NVIDIA_DRIVER_VERSION = function(_, site)
    return get(site, "files", "lxc", "nvidia_driver_version") or get(site, "host", "nvidia_driver", "version")
  end,
  NVIDIA_RUNFILE_URL = function(_, site)
    return get(site, "files", "lxc", "nvidia_runfile_url") or get(site, "host", "nvidia_driver", "runfile_url")
  end,
  NVIDIA_CUDA_VERSION = function(_, site) return get(site, "host", "nvidia_driver", "cuda_version") end,
  NVIDIA_REPO_URL = function(_, site) return get(site, "files", "lxc", "nvidia_repo_url") end,
  PORTAINER_SERVER_IMAGE = function(_, site) return get(site, "host", "docker", "portainer_server_image") end,
  PORTAINER_AGENT_IMAGE = function(_, site) return get(site, "host", "docker", "portainer_agent_image") end,
  PORTAINER_SERVER_PORT = function(_, site) return get(site, "host", "network", "portainer_server_port") end,
  PORTAINER_AGENT_PORT = function(_, site) return get(site, "host", "network", "portainer_agent_port") end,
  TRAEFIK_ACME_CA_URL = function(_, site)
    local url = get(res_want(site, "step_ca:config"), "ca_url")
    return url and (url:gsub("/+$", "") .. "/acme/acme/directory") or nil
  end,
  STEP_CA_NAME = function(_, site) return get(site, "host", "step_ca", "root_ca_name") end,
  STEP_CA_DNS = function(want, site)
    local names = {}
    names[#names + 1] = get(site, "host", "step_ca", "dns_name")
    names[#names + 1] = address(want)
    return #names > 0 and table.concat(names, " ") or nil
  end,
  STEP_CA_PROVISIONER = function(_, site) return get(site, "host", "step_ca", "provisioner_name") end,
  STEP_CA_ADDRESS = function(_, site)
    local port = (get(site, "host", "step_ca", "ca_url") or ""):match("^%a+://[^/:]+:(%d+)")
    return port and (":" .. port) or nil
  end,
  DNS_UPSTREAM = function(_, site) return get(site, "host", "dns_server", "upstream_servers") end,
  DNS_DOMAIN = function(want, site) return want.domain_name or get(site, "host", "domain_name") end,
  DNS_ZONES = function(_, site) return get(site, "host", "dns_server", "authoritative_zones") end,
  DNS_HOSTS = function(_, site)
    local lines = {}
    for _, r in ipairs(get(res_want(site, "dns_server:host"), "records") or {}) do
      lines[#lines + 1] = r.ip .. " " .. r.hostname
    end
    return #lines > 0 and table.concat(lines, "\n") or nil
  end,
  NAT_SOURCE = function(_, site) return get(site, "host", "network", "default_subnet") end,
  API_PORT = function(want) return get(want, "traefik_service", "port") end,
}

local function str(v)
  if v == nil or v == json.null then return nil end
  if type(v) == "boolean" then return v and "yes" or "no" end
  if type(v) == "table" then
    if json.is_array(v) or (#v > 0 and next(v, #v) == nil) then
      local parts = {}
      for i, x in ipairs(v) do parts[i] = tostring(x) end
      return table.concat(parts, " ")
    end
    return json.canonical(v)
  end
  if math.type(v) == "float" and v == math.floor(v) then return tostring(math.tointeger(v)) end
  return tostring(v)
end

-- settings(text, want, site, guest) -> sorted list of { "PHOENIX_KEY", "value" }
-- for the variables the script documents.
function M.settings(text, want, site, guest)
  local out = {}
  for _, name in ipairs(M.documented(text)) do
    local v = want[name:lower()]
    if v == nil and M.site[name] then v = M.site[name](want, site, guest) end
    v = str(v)
    if v and v ~= "" then out[#out + 1] = { "PHOENIX_" .. name, v } end
  end
  table.sort(out, function(a, b) return a[1] < b[1] end)
  return out
end

return M
