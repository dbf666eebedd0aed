-- The Proxmox REST API over px.http: token authentication, form-encoded
-- parameters, {"data": ...} answers, and waits on task UPIDs. Requests
-- yield inside scheduler tasks (async.wait), so guests progress together.
local async = require "phoenix.async"
local json = require "px.json"
local sys = require "px.sys"

local M = {}

local Client = {}
Client.__index = Client

local function escape(s, keep)
  return (tostring(s):gsub("[^%w%-%._~" .. (keep or "") .. "]", function(c)
    return string.format("%%%02X", c:byte())
  end))
end

M.escape = escape

-- A path segment: a UPID keeps its ':' '@' '!' as Proxmox clients send it.
function M.segment(s) return escape(s, ":@!") end

-- form(params) -> "k=v&k=v": sorted keys, a list repeats its key.
function M.form(params)
  local keys = {}
  for k in pairs(params or {}) do keys[#keys + 1] = k end
  table.sort(keys)
  local out = {}
  for _, k in ipairs(keys) do
    local v = params[k]
    if type(v) == "table" then
      for _, item in ipairs(v) do out[#out + 1] = escape(k) .. "=" .. escape(item) end
    else
      if type(v) == "boolean" then v = v and 1 or 0 end
      out[#out + 1] = escape(k) .. "=" .. escape(v)
    end
  end
  return table.concat(out, "&")
end

-- new{host, port, user, token_id, secret, cafile, verify_tls, fingerprint, timeout_ms}
function M.new(o)
  local c = setmetatable({}, Client)
  c.base = string.format("https://%s:%d/api2/json", o.host, o.port)
  c.auth = string.format("PVEAPIToken=%s!%s=%s", o.user, o.token_id, o.secret)
  c.tls = { cafile = o.cafile, insecure = o.verify_tls == false or nil, fingerprint = o.fingerprint }
  c.timeout_ms = o.timeout_ms or 60000
  c.requests = 0
  return c
end

function Client:describe() return self.base end

-- The message of a failed answer: Proxmox's "message", the per-parameter
-- "errors" of a 400, else the status.
local function failure(r)
  local body = json.decode(r.body or "")
  local msg = type(body) == "table" and type(body.message) == "string" and body.message:gsub("%s+$", "") or nil
  local parts = {}
  if type(body) == "table" and type(body.errors) == "table" then
    local keys = {}
    for k in pairs(body.errors) do keys[#keys + 1] = k end
    table.sort(keys)
    for _, k in ipairs(keys) do parts[#parts + 1] = k .. ": " .. tostring(body.errors[k]):gsub("%s+$", "") end
  end
  if not msg or msg == "" then
    msg = "HTTP " .. r.status
    if r.status == 401 then msg = msg .. " authentication failure: check user, token_id and token" end
    if r.status == 403 then msg = msg .. " permission denied: the token lacks a privilege for this call" end
  end
  if #parts > 0 then msg = msg .. " " .. table.concat(parts, "; ") end
  return msg
end

-- start(method, path, params [, {timeout_ms=}]) -> pending | nil, msg: the
-- request runs on its own thread; several started at once overlap.
-- pending:finish() -> data | nil, msg, status (data is the answer's "data",
-- json.null when Proxmox says null).
function Client:start(method, path, params, o)
  local http = require "px.http" -- loaded on first use, as in ctx:http
  local url = self.base .. path
  local form = M.form(params)
  local req = {
    method = method, url = url, headers = { Authorization = self.auth, Accept = "application/json" },
    timeout_ms = (o and o.timeout_ms) or self.timeout_ms,
    cafile = self.tls.cafile, insecure = self.tls.insecure, fingerprint = self.tls.fingerprint,
  }
  if method == "GET" or method == "DELETE" then
    if form ~= "" then req.url = url .. "?" .. form end
  else
    req.headers["Content-Type"] = "application/x-www-form-urlencoded"
    req.body = form
  end
  self.requests = self.requests + 1
  local h, err = http.start(req)
  if not h then return nil, string.format("%s %s: %s", method, path, err) end
  return { h = h, method = method, path = path, finish = M.finish }
end

function M.finish(p)
  local r, rerr = async.wait(p.h)
  p.h:close()
  local method, path = p.method, p.path
  if not r then return nil, rerr end
  if r.status ~= 200 then
    return nil, string.format("%s %s: %s", method, path, failure(r)), r.status
  end
  local body, jerr = json.decode(r.body)
  if type(body) ~= "table" then
    return nil, string.format("%s %s: the answer is not Proxmox API JSON: %s", method, path, tostring(jerr or r.body)), r.status
  end
  local data = body.data
  if data == nil then data = json.null end
  return data, nil, r.status
end

-- request(...) -> start(...):finish()
function Client:request(method, path, params, o)
  local p, err = self:start(method, path, params, o)
  if not p then return nil, err end
  return p:finish()
end

function M.is_upid(v) return type(v) == "string" and v:match("^UPID:[%w%-]+:") ~= nil end

-- task_log(node, upid, n) -> the last n lines of a task's log (a string)
function Client:task_log(node, upid, n)
  local path = string.format("/nodes/%s/tasks/%s/log", node, M.segment(upid))
  local rows = self:request("GET", path, { start = 0, limit = 5000 })
  if type(rows) ~= "table" then return "" end
  local lines = {}
  for _, row in ipairs(rows) do
    if type(row) == "table" and type(row.t) == "string" then lines[#lines + 1] = row.t end
  end
  local first = math.max(1, #lines - n + 1)
  return table.concat(lines, "\n", first)
end

-- wait_task(node, upid, timeout_ms) -> status | nil, msg, timed_out.
-- Polls the task's status (0.1 s, growing to 1 s between polls); a task
-- still running at the deadline is stopped (as exec kills a process).
function Client:wait_task(node, upid, timeout_ms)
  local path = string.format("/nodes/%s/tasks/%s/status", node, M.segment(upid))
  local deadline = sys.monotonic() + timeout_ms / 1000
  local pause = 0.1
  while true do
    local st, err = self:request("GET", path)
    if not st then return nil, err end
    if type(st) == "table" and st.status == "stopped" then return st end
    if sys.monotonic() >= deadline then
      self:request("DELETE", string.format("/nodes/%s/tasks/%s", node, M.segment(upid)))
      return nil, string.format("task %s still ran after %d s and was stopped", upid, timeout_ms // 1000), true
    end
    async.sleep(math.min(pause, math.max(0.01, deadline - sys.monotonic())))
    pause = math.min(pause * 1.5, 1)
  end
end

return M
