-- HTTP API clients over px.http: requests yield to the scheduler (like
-- ctx:http), JSON in and out, retries with backoff for idempotent methods,
-- and errors that name the method, the URL and the server's own message.
-- Credentials travel in headers only, never in URLs, so messages (which go
-- through px.log.scrub as well) cannot show them.
local async = require "phoenix.async"
local json = require "px.json"
local log = require "px.log"

local M = {}

-- Methods that may be sent again without changing the outcome (RFC 9110).
M.IDEMPOTENT = { GET = true, HEAD = true, PUT = true, DELETE = true, OPTIONS = true }

local REASONS = {
  [200] = "OK", [201] = "Created", [204] = "No Content", [400] = "Bad Request", [401] = "Unauthorized",
  [403] = "Forbidden", [404] = "Not Found", [405] = "Method Not Allowed", [409] = "Conflict",
  [413] = "Payload Too Large", [422] = "Unprocessable Entity", [429] = "Too Many Requests",
  [500] = "Internal Server Error", [502] = "Bad Gateway", [503] = "Service Unavailable",
  [504] = "Gateway Timeout",
}
M.REASONS = REASONS

-- The statuses worth another try: the server or a proxy in front failed.
local RETRY_STATUS = { [500] = true, [502] = true, [503] = true, [504] = true }

local function pct(s)
  -- JSON numbers arrive as floats: an identifier 3.0 must read "3"
  if math.type(s) == "float" and math.tointeger(s) then s = math.tointeger(s) end
  return (tostring(s):gsub("[^%w%-%._~]", function(c) return string.format("%%%02X", c:byte()) end))
end
M.escape = pct

-- query{ a = 1, ["types[]"] = {1, 2} } -> "a=1&types%5B%5D=1&types%5B%5D=2" (sorted keys)
function M.query(q)
  if not q then return "" end
  local keys = {}
  for k in pairs(q) do keys[#keys + 1] = k end
  table.sort(keys)
  local parts = {}
  for _, k in ipairs(keys) do
    local v = q[k]
    if type(v) == "table" then
      for _, x in ipairs(v) do parts[#parts + 1] = pct(k) .. "=" .. pct(x) end
    else
      parts[#parts + 1] = pct(k) .. "=" .. pct(v)
    end
  end
  return table.concat(parts, "&")
end

-- multipart{ {name, value}, ... } -> body, content type (RFC 7578 form fields)
function M.multipart(fields)
  local boundary = "phoenix-" .. require("px.fs").sha256(json.encode(fields)):sub(1, 24)
  local out = {}
  for _, f in ipairs(fields) do
    out[#out + 1] = "--" .. boundary .. "\r\nContent-Disposition: form-data; name=\"" .. f[1] .. "\"\r\n\r\n"
      .. tostring(f[2]) .. "\r\n"
  end
  out[#out + 1] = "--" .. boundary .. "--\r\n"
  return table.concat(out), "multipart/form-data; boundary=" .. boundary
end

-- The server's explanation from an error body: Portainer (and many Go
-- APIs) send {"message", "details"}; others send text.
function M.server_message(body)
  if not body or body == "" then return nil end
  local ok, doc = pcall(json.decode, body)
  if ok and type(doc) == "table" then
    local msg = type(doc.message) == "string" and doc.message or (type(doc.error) == "string" and doc.error)
    if msg then
      local d = doc.details
      if type(d) == "string" and d ~= "" and d ~= msg then msg = msg .. " (" .. d .. ")" end
      return msg
    end
  end
  local line = body:match("^%s*([^\r\n]*)")
  if #line > 200 then line = line:sub(1, 200) .. "..." end
  return line ~= "" and line or nil
end

local Client = {}
Client.__index = Client

-- client{ base = "https://host:9443", headers = {}, cafile =, insecure =,
--         timeout_ms = 30000, connect_timeout_ms = 10000, retries = 3,
--         backoff = 0.5, on_request = fn(method, url) } -> client
function M.client(o)
  assert(type(o.base) == "string" and o.base:match("^https?://"), "http client: base must be an http(s) URL")
  return setmetatable({
    base = o.base:gsub("/+$", ""), headers = o.headers or {}, cafile = o.cafile, insecure = o.insecure,
    timeout_ms = o.timeout_ms or 30000, connect_timeout_ms = o.connect_timeout_ms or 10000,
    retries = o.retries or 3, backoff = o.backoff or 0.5, on_request = o.on_request,
  }, Client)
end

function Client:url(path, query)
  local q = M.query(query)
  return self.base .. path .. (q ~= "" and ("?" .. q) or "")
end

-- A transport failure worth retrying: anything but the whole request
-- running out of time (the server is slow, not gone: asking again only
-- multiplies the wait).
local function transient(msg)
  return not (msg:find("timed out after", 1, true) and not msg:find("connect timed out", 1, true))
end

-- request{ method, path, query, json = value | body = string, form = fields,
--          headers, expect = {200, ...}, retry = bool, timeout_ms }
-- -> response | nil, message, response
-- A status not in expect (default: any 2xx) is a failure whose message is
-- "METHOD URL: 409 Conflict: <server message>".
function Client:request(o)
  local method = o.method or "GET"
  local url = self:url(o.path, o.query)
  local headers = {}
  for k, v in pairs(self.headers) do headers[k] = v end
  local body = o.body
  if o.json ~= nil then
    body = json.canonical(o.json) -- honours px.json.array marks: [] stays []
    headers["Content-Type"] = "application/json"
  elseif o.form then
    local ctype
    body, ctype = M.multipart(o.form)
    headers["Content-Type"] = ctype
  end
  headers.Accept = headers.Accept or "application/json"
  for k, v in pairs(o.headers or {}) do headers[k] = v end
  local retry = o.retry
  if retry == nil then retry = M.IDEMPOTENT[method] == true end
  local attempts = retry and (self.retries + 1) or 1
  local what = method .. " " .. url
  local res, err
  for attempt = 1, attempts do
    if self.on_request then self.on_request(method, url) end
    local h
    h, err = require("px.http").start {
      method = method, url = url, headers = headers, body = body, cafile = self.cafile,
      insecure = self.insecure, timeout_ms = o.timeout_ms or self.timeout_ms,
      connect_timeout_ms = self.connect_timeout_ms,
    }
    if h then res, err = async.wait(h) end
    local again
    if not res then
      -- px.http's message starts with the URL: keep the method in front.
      err = method .. " " .. tostring(err)
      again = transient(err)
    else
      local ok = false
      if o.expect then
        for _, s in ipairs(o.expect) do
          if res.status == s then ok = true end
        end
      else
        ok = res.status >= 200 and res.status < 300
      end
      if ok then return res end
      local msg = M.server_message(res.body)
      err = string.format("%s: %d %s%s", what, res.status, REASONS[res.status] or "", msg and (": " .. msg) or "")
      again = RETRY_STATUS[res.status] == true
    end
    if not again or attempt == attempts then
      if attempt > 1 then err = err .. string.format(" (after %d attempts)", attempt) end
      return nil, log.scrub(err), res
    end
    -- 0.5 s, 1 s, 2 s ... : long enough for a restarting service, short
    -- enough that a converge does not stall on one dead API.
    async.sleep(self.backoff * 2 ^ (attempt - 1))
    res = nil
  end
end

-- json{...same as request} -> decoded body (json.null for an empty one), response | nil, msg, response
function Client:json(o)
  local res, err, failed = self:request(o)
  if not res then return nil, err, failed end
  if res.body == nil or res.body == "" then return json.null, res end
  local ok, doc = pcall(json.decode, res.body)
  if not ok then
    return nil, log.scrub(string.format("%s %s: %d: the answer is not JSON: %s", o.method or "GET",
      self:url(o.path, o.query), res.status, tostring(doc))), res
  end
  return doc, res
end

return M
