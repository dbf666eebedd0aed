-- A Portainer CE API client: one per Portainer URL and run, shared by every
-- resource through the target's run cache. It finds the version
-- (GET /api/status), logs in once (API key, or admin user/password -> JWT,
-- initialising the admin of a brand-new Portainer), and keeps the
-- environment and stack lists for the run, so a no-op sync costs a handful
-- of requests however many stacks there are.
local async = require "phoenix.async"
local http = require "phoenix.http"
local version = require "phoenix.portainer.version"
local log = require "px.log"

local M = {}

local Client = {}
Client.__index = Client

-- The run-scoped store: the target's per-run cache, else one per target.
local fallback = setmetatable({}, { __mode = "k" })
local function store_of(target)
  if type(target) == "table" and type(target.cache) == "table" then return target.cache end
  fallback[target] = fallback[target] or {}
  return fallback[target]
end

-- memo(store, key, fn) -> fn()'s results, once; concurrent callers wait for
-- the first. keep_failure: also remember a failed (nil, msg) result.
local function memo(store, key, fn, keep_failure)
  while store[key] and store[key].busy do async.sleep(0.005) end
  local e = store[key]
  if e then return table.unpack(e.values, 1, e.values.n) end
  store[key] = { busy = true }
  local values = table.pack(pcall(fn))
  if not values[1] then
    store[key] = nil
    error(values[2], 0)
  end
  values = table.pack(table.unpack(values, 2, values.n))
  if values[1] == nil and not keep_failure then store[key] = nil else store[key] = { values = values } end
  return table.unpack(values, 1, values.n)
end

function Client:memo(key, fn) return memo(self.cache, key, fn) end
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

-- Logs in; a Portainer without an administrator gets one first
-- (POST /api/users/admin/init). Refused credentials are one error.
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
      local ok, ierr = c.http:json { method = "POST", path = "/api/users/admin/init",
        json = { Username = conn.username, Password = conn.password } }
      if not ok then return nil, "initialising the administrator of a new Portainer: " .. ierr end
      log.info(string.format("portainer %s: initialised administrator '%s'", c.url, conn.username))
      c.initialised_admin = true
      jwt, err = login(c, conn)
    end
    if not jwt then
      return nil, string.format("login as '%s' refused: %s (check portainer_api.admin_user and admin_password)",
        conn.username, err)
    end
  end
  log.redact(jwt)
  c.http.headers.Authorization = "Bearer " .. jwt
  return true
end

-- connect(target, conn) -> client | nil, msg
-- conn = { url, cafile, insecure, username, password, api_key, timeout_ms,
--          retries, backoff, on_request }
-- Once per run and URL: later calls (other resources) get the same client,
-- or the same error without another attempt.
function M.connect(target, conn)
  local store = store_of(target)
  local key = "portainer:" .. conn.url .. "|" .. tostring(conn.username or "(api key)")
  local entry = memo(store, key, function()
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

-- Every run starts from Portainer's state: drop this run's client (tests).
function M.reset(target)
  local store = store_of(target)
  for k in pairs(store) do
    if type(k) == "string" and k:find("^portainer:") then store[k] = nil end
  end
end

-- Mixes in the endpoint and stack calls.
for _, mod in ipairs { "phoenix.portainer.endpoints", "phoenix.portainer.stacks" } do
  for k, v in pairs(require(mod)) do Client[k] = v end
end

M.Client = Client
M.version = version
return M
