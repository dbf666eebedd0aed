-- A Portainer CE API client: one per Portainer URL and run, shared by every
-- resource through the target's run cache. It finds the version
-- (GET /api/status), logs in once (API key, or admin user/password -> JWT,
-- initialising the admin of a brand-new Portainer), and keeps the
-- environment and stack lists for the run, so a no-op sync costs a handful
-- of requests however many stacks there are.
local http = require "phoenix.http"
local runcache = require "phoenix.runcache"
local version = require "phoenix.portainer.version"
local log = require "px.log"

local M = {}

local Client = {}
Client.__index = Client

function Client:memo(key, fn) return runcache.memo(self.cache, key, fn) end
function Client:forget(key) self.cache[key] = nil end

-- A 401 after login means the key or token stopped working: say which.
function Client:explain(err, res)
  if res and res.status == 401 then
    return err .. (self.api_key and " (the API key was refused: check portainer_api.api_token)"
      or " (the login token was refused)")
  end
  return err
end

-- call{...http.Client:json options} -> decoded, response | nil, msg
function Client:call(o)
  local doc, err, res = self.http:json(o)
  if doc == nil then return nil, self:explain(err, res), res end
  return doc, res
end

local function login(c, conn)
  local doc, err, res = c.http:json { method = "POST", path = "/api/auth",
    json = { Username = conn.username, Password = conn.password } }
  if doc and type(doc.jwt) == "string" then return doc.jwt end
  if not res or (res.status ~= 401 and res.status ~= 422) then return nil, err end
  return false, err
end

-- Logs in. A Portainer without an administrator (brand-new) is marked
-- fresh: it has no environments or stacks, and its administrator is
-- created by the first change (writable), never while inspecting.
-- Refused credentials are one error.
local function authenticate(c, conn)
  if conn.api_key then
    c.http.headers["X-API-Key"] = conn.api_key
    return true
  end
  if not conn.username or not conn.password then
    return nil, "no credentials: set portainer_api.api_token, or admin_user and admin_password"
  end
  local jwt, err = login(c, conn)
  if jwt == nil then return nil, err end
  if jwt == false then
    local _, _, res = c.http:request { method = "GET", path = "/api/users/admin/check", expect = { 204 } }
    if res and res.status == 404 then
      c.fresh, c.conn = true, conn
      return true
    end
    return nil, string.format("login as '%s' refused: %s (check portainer_api.admin_user and admin_password)",
      conn.username, err)
  end
  log.redact(jwt)
  c.http.headers.Authorization = "Bearer " .. jwt
  return true
end

-- writable() -> true | nil, msg: initialises the administrator of a fresh
-- Portainer (POST /api/users/admin/init) and logs in, once.
function Client:writable()
  if not self.fresh then return true end
  local entry = runcache.memo(self.cache, "admin-init", function()
    local conn = self.conn
    local ok, err = self.http:json { method = "POST", path = "/api/users/admin/init",
      json = { Username = conn.username, Password = conn.password } }
    if not ok then return { err = "initialising the administrator of a new Portainer: " .. err } end
    log.info(string.format("portainer %s: initialised administrator '%s'", self.url, conn.username))
    local jwt, lerr = login(self, conn)
    if not jwt then return { err = "login after initialising the administrator: " .. tostring(lerr) } end
    log.redact(jwt)
    self.http.headers.Authorization = "Bearer " .. jwt
    self.fresh, self.initialised_admin = false, true
    return { ok = true }
  end, true)
  if entry.err then return nil, entry.err end
  return true
end

-- connect(target, conn) -> client | nil, msg
-- conn = { url, cafile, insecure, username, password, api_key, timeout_ms,
--          retries, backoff, on_request }
-- Once per run and URL: later calls (other resources) get the same client,
-- or the same error without another attempt.
function M.connect(target, conn)
  local store = runcache.store(target)
  local key = "portainer:" .. conn.url .. "|" .. tostring(conn.username or "(api key)")
  local entry = runcache.memo(store, key, function()
    for _, s in ipairs { conn.password, conn.api_key } do log.redact(s) end
    local c = setmetatable({ url = conn.url, api_key = conn.api_key, cache = {} }, Client)
    c.http = http.client { base = conn.url, cafile = conn.cafile, insecure = conn.insecure,
      timeout_ms = conn.timeout_ms, retries = conn.retries, backoff = conn.backoff, on_request = conn.on_request }
    local status, err = c.http:json { path = "/api/status" }
    if not status then return { err = "Portainer " .. conn.url .. " is not reachable: " .. err } end
    c.version_string = type(status) == "table" and status.Version or nil
    c.version = version.parse(c.version_string)
    local ok, aerr = authenticate(c, conn)
    if not ok then return { err = "Portainer " .. conn.url .. ": " .. aerr } end
    return { client = c }
  end, true)
  if entry.err then return nil, entry.err end
  return entry.client
end

-- conn_for(endpoint_want, options) -> conn | nil, msg
-- The connection settings a portainer_endpoint resource carries (from the
-- hypervisor file's portainer_api and network), plus the run's HTTP knobs.
-- URL: portainer_api.url, else https://<portainer_hostname or server IP>:<port>.
function M.conn_for(w, options)
  local s = w.server or {}
  local url = s.url
  if not url then
    local host = s.hostname or s.ip
    if not host then
      return nil, "no Portainer server: give a guest portainer_role primary/server, or set portainer_api.url"
    end
    url = "https://" .. host .. ":" .. tostring(s.port or 9443)
  end
  options = options or {}
  return { url = url, cafile = s.ca_file, insecure = s.insecure, username = w.admin_user,
    password = w.admin_password, api_key = w.api_token, timeout_ms = options.http_timeout_ms,
    retries = options.http_retries, backoff = options.http_backoff, on_request = options.on_http_request }
end

-- Mixes in the endpoint and stack calls.
for _, mod in ipairs { "phoenix.portainer.endpoints", "phoenix.portainer.stacks" } do
  for k, v in pairs(require(mod)) do Client[k] = v end
end

M.Client = Client
M.version = version
return M
