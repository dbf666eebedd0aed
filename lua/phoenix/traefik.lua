-- Traefik dynamic configuration (file provider) from the site: routers
-- and services for the guests' traefik_service, and for the stacks'
-- traefik_labels (the Docker provider's label syntax, turned into the file
-- provider's structure since Traefik runs in a container of its own and
-- reaches the stacks at their VM's address).
local json = require "px.json"

local M = {}

local function list(...) return json.array { ... } end

local function csv(v)
  local out = json.array {}
  for item in tostring(v):gmatch("[^,]+") do
    local s = item:match("^%s*(.-)%s*$")
    if s ~= "" then out[#out + 1] = s end
  end
  return out
end

local HOST = "^[%w][%w%.%-]*$"
local IPV4 = "^%d+%.%d+%.%d+%.%d+$"

-- A name Traefik accepts for a router or service.
local function check_name(name, what)
  if not tostring(name):match("^[%w][%w_%-]*$") then
    return nil, string.format("%s name '%s': use letters, digits, '_' and '-'", what, tostring(name))
  end
  return true
end

-- services(want.services, entry_points) -> dynamic config table | nil, msg
-- One router (Host rule) and one service per guest service.
function M.from_services(services, o)
  o = o or {}
  local routers, svcs = {}, {}
  for _, s in ipairs(services or {}) do
    local ok, err = check_name(s.name, "traefik_service")
    if not ok then return nil, s.guest .. ": " .. err end
    if not (s.backend_ip and s.backend_ip:match(IPV4)) then
      return nil, string.format("%s: traefik_service %s: the guest has no static IPv4 address to route to", s.guest,
        s.name)
    end
    if not tostring(s.host):match(HOST) then
      return nil, string.format("%s: traefik_service %s: '%s' is not a host name", s.guest, s.name, tostring(s.host))
    end
    local name = s.name
    if routers[name] then name = s.name .. "-" .. tostring(s.guest):gsub("%D", "") end
    routers[name] = { rule = "Host(`" .. s.host .. "`)", service = name,
      entryPoints = list(table.unpack(o.entry_points or { "web" })) }
    svcs[name] = { loadBalancer = { servers = list { url = string.format("%s://%s:%d", s.scheme or "http",
      s.backend_ip, math.tointeger(s.port) or s.port) } } }
  end
  return { http = { routers = routers, services = svcs } }
end

-- Router settings a label may set: label key (lower case) -> setter.
local ROUTER = {
  rule = function(r, v) r.rule = v end,
  entrypoints = function(r, v) r.entryPoints = csv(v) end,
  middlewares = function(r, v) r.middlewares = csv(v) end,
  service = function(r, v) r.service = v end,
  priority = function(r, v)
    r.priority = math.tointeger(tonumber(v))
    return r.priority ~= nil
  end,
  tls = function(r, v)
    if v == "true" then r.tls = r.tls or {} elseif v ~= "false" then return false end
  end,
  ["tls.certresolver"] = function(r, v) r.tls = r.tls or {} r.tls.certResolver = v end,
  ["tls.options"] = function(r, v) r.tls = r.tls or {} r.tls.options = v end,
}

local SERVICE = {
  ["loadbalancer.server.port"] = function(s, v)
    s.port = math.tointeger(tonumber(v))
    return s.port ~= nil
  end,
  ["loadbalancer.server.scheme"] = function(s, v)
    s.scheme = v
    return v == "http" or v == "https" or v == "h2c"
  end,
  ["loadbalancer.passhostheader"] = function(s, v)
    s.passHostHeader = v == "true"
    return v == "true" or v == "false"
  end,
}

-- from_stacks(want.stacks) -> dynamic config table | nil, msg
-- stacks = { { stack, vmid, guest, ip, services = { svc = { traefik_labels = {...} } } } }
function M.from_stacks(stacks)
  local routers, svcs, owner = {}, {}, {}
  for _, st in ipairs(stacks or {}) do
    local names = {}
    for n in pairs(st.services or {}) do names[#names + 1] = n end
    table.sort(names)
    for _, svc_name in ipairs(names) do
      local where = string.format("stack %s@%s, service %s", st.stack, tostring(st.vmid), svc_name)
      local r_here, s_here, enabled = {}, {}, true
      for _, label in ipairs(st.services[svc_name].traefik_labels or {}) do
        local k, v = tostring(label):match("^([^=]+)=(.*)$")
        local kl = k and k:lower()
        local rname, rkey = (kl or ""):match("^traefik%.http%.routers%.([^.]+)%.(.+)$")
        local sname, skey = (kl or ""):match("^traefik%.http%.services%.([^.]+)%.(.+)$")
        if kl == "traefik.enable" then
          enabled = v == "true"
        elseif rname and ROUTER[rkey] then
          rname = k:match("^[^.]+%.[^.]+%.[^.]+%.([^.]+)") -- the name as written
          r_here[rname] = r_here[rname] or {}
          if ROUTER[rkey](r_here[rname], v) == false then
            return nil, string.format("%s: label %s: bad value '%s'", where, k, v)
          end
        elseif sname and SERVICE[skey] then
          sname = k:match("^[^.]+%.[^.]+%.[^.]+%.([^.]+)")
          s_here[sname] = s_here[sname] or {}
          if SERVICE[skey](s_here[sname], v) == false then
            return nil, string.format("%s: label %s: bad value '%s'", where, k, v)
          end
        elseif not (kl and kl:find("^traefik%.docker%.")) then
          return nil, string.format("%s: label '%s' is not one phoenix can turn into file-provider configuration",
            where, tostring(label))
        end
      end
      if enabled then
        if not (st.ip and st.ip:match(IPV4)) then
          return nil, string.format("%s: VM %s has no static IPv4 address to route to", where, tostring(st.vmid))
        end
        local only
        for n in pairs(s_here) do only = (only == nil) and n or false end
        for n, s in pairs(s_here) do
          local ok, err = check_name(n, "service")
          if not ok then return nil, where .. ": " .. err end
          if not s.port then return nil, string.format("%s: service %s has no loadbalancer.server.port label", where, n) end
          if owner[n] then return nil, string.format("%s: service %s is also defined by %s", where, n, owner[n]) end
          owner[n] = where
          svcs[n] = { loadBalancer = { servers = list { url = string.format("%s://%s:%d", s.scheme or "http", st.ip,
            s.port) }, passHostHeader = s.passHostHeader } }
        end
        for n, r in pairs(r_here) do
          local ok, err = check_name(n, "router")
          if not ok then return nil, where .. ": " .. err end
          if routers[n] then return nil, string.format("%s: router %s is also defined elsewhere", where, n) end
          if not r.rule then return nil, string.format("%s: router %s has no rule label", where, n) end
          r.service = r.service or (only or nil)
          if not r.service then
            return nil, string.format("%s: router %s: say which service (several are defined)", where, n)
          end
          routers[n] = r
        end
      end
    end
  end
  for n, r in pairs(routers) do
    if not svcs[r.service] then
      return nil, string.format("router %s: service %s is not defined by any stack", n, r.service)
    end
  end
  return { http = { routers = routers, services = svcs } }
end

-- router_names(text) -> sorted router names in a file phoenix wrote
function M.router_names(text)
  local names, inside = {}, false
  for line in (text or ""):gmatch("[^\n]+") do
    if line:match("^  routers:") then
      inside = true
    elseif inside and line:match("^    [^ ]") then
      names[#names + 1] = line:match("^    \"?([^\":]+)")
    elseif line:match("^  %S") then
      inside = false
    end
  end
  table.sort(names)
  return names
end

return M
