-- The pve-api target's options. Site-file names are kept (host, port, user,
-- token_id, token, fingerprint, verify_tls); values from --target-opt arrive
-- as strings and are coerced here, with a message naming the option.
local fs = require "px.fs"
local log = require "px.log"
local sys = require "px.sys"
local whole = require("phoenix.target.pve.options").whole

local M = {}

M.help = {
  host = "the Proxmox node's address (name or IPv4) the API listens on (required)",
  port = "API port (default 8006)",
  user = "Proxmox user of the API token, name@realm (default root@pam)",
  token_id = "the API token's ID (required unless token is USER@REALM!ID=SECRET)",
  token = "the API token's secret, or USER@REALM!ID=SECRET; env:NAME or file:/path to read it from there",
  node = "the node new guests go to (default: the one node of the cluster, else the host's name)",
  cafile = "PEM file of the CA that signed the node's certificate (default: the system's CAs)",
  fingerprint = "SHA-256 fingerprint of the node's certificate (AA:BB:...); trusted instead of a CA",
  verify_tls = "false turns certificate checks off (default true; a warning is logged)",
  timeout_ms = "time limit of one Proxmox task (create, clone, start ...) in ms (default 900000)",
  request_timeout_ms = "time limit of one HTTP request in ms (default 60000)",
  lock_retries = "retries of a call that failed on a Proxmox lock timeout (default 5)",
  lock_backoff_ms = "wait before the first retry, doubled for each next one (default 500)",
  ssh = "[user@]host for what the API cannot do (commands and files in containers, host files, zfs); "
    .. "without it those steps fail and say so",
  ssh_port = "ssh port (default 22)",
  ssh_identity = "ssh private key file",
  ssh_known_hosts = "known_hosts file for the node's ssh host key (strict checking)",
  root = "with ssh: directory the node's files live under (default /)",
  bin = "with ssh: directory put first in the node's PATH (pct, qm, zfs ...)",
}

M.defaults = {
  port = 8006, user = "root@pam", verify_tls = true, timeout_ms = 900000, request_timeout_ms = 60000,
  lock_retries = 5, lock_backoff_ms = 500, ssh_port = 22,
}

local function boolean(name, v)
  if v == true or v == "true" or v == "1" or v == "yes" then return true end
  if v == false or v == "false" or v == "0" or v == "no" then return false end
  return nil, string.format("target option %s: expected true or false, got '%s'", name, tostring(v))
end

local function pattern(pat, what)
  return function(name, v)
    if type(v) ~= "string" or not v:match(pat) then
      return nil, string.format("target option %s: '%s' is not %s", name, tostring(v), what)
    end
    return v
  end
end

local function file(name, v)
  if type(v) ~= "string" or v:sub(1, 1) ~= "/" then
    return nil, string.format("target option %s: expected an absolute file path, got '%s'", name, tostring(v))
  end
  local st = fs.stat(v)
  if not st or st.type ~= "file" then return nil, string.format("target option %s: %s is not a file", name, v) end
  return v
end

-- token: the secret itself, or a reference read now (a secret on the
-- command line would show in `ps`); registered for redaction either way.
local function token(name, v)
  if type(v) ~= "string" or v == "" then return nil, "target option " .. name .. ": expected a string" end
  local kind, what = v:match("^(%a+):(.+)$")
  if kind == "env" then
    local got = sys.getenv(what)
    if not got or got == "" then return nil, "target option " .. name .. ": env:" .. what .. " is not set" end
    v = got
  elseif kind == "file" then
    local got, err = fs.read(what)
    if not got then return nil, "target option " .. name .. ": " .. tostring(err) end
    v = got:gsub("\r?\n$", "")
    if v == "" then return nil, "target option " .. name .. ": " .. what .. " is empty" end
  end
  if v:find("[%c\"%s]") then return nil, "target option " .. name .. ": the token holds spaces or control characters" end
  log.redact(v:match("=(.+)$") or v)
  return v
end

local HOST = "^[%w][%w%.%-]*$"

-- a directory on the node (it may not exist here)
local function remote_dir(n, v)
  if type(v) ~= "string" or v:sub(1, 1) ~= "/" or v:find("[%c:]") then
    return nil, string.format("target option %s: expected an absolute directory on the node, got '%s'", n, tostring(v))
  end
  return (v:gsub("/+$", "")) ~= "" and (v:gsub("/+$", "")) or "/"
end

local check = {
  host = pattern(HOST, "a host name or IPv4 address"),
  port = function(n, v) return whole(n, v, 1, 65535) end,
  ssh_port = function(n, v) return whole(n, v, 1, 65535) end,
  user = pattern("^[%w_.%-]+@[%w_.%-]+$", "a Proxmox user (name@realm)"),
  token_id = pattern("^%a[%w_.%-]*$", "an API token ID"),
  token = token,
  node = pattern("^%w[%w%-]*$", "a node name"),
  cafile = file,
  ssh_identity = file,
  ssh_known_hosts = file,
  fingerprint = function(n, v)
    if type(v) ~= "string" or not v:match("^%x%x" .. string.rep(":%x%x", 31) .. "$") then
      return nil, string.format("target option %s: expected a SHA-256 fingerprint (32 hex pairs separated by ':'), got '%s'",
        n, tostring(v))
    end
    return v:upper()
  end,
  verify_tls = boolean,
  timeout_ms = function(n, v) return whole(n, v, 1) end,
  request_timeout_ms = function(n, v) return whole(n, v, 1) end,
  lock_retries = function(n, v) return whole(n, v, 0) end,
  lock_backoff_ms = function(n, v) return whole(n, v, 0) end,
  ssh = pattern("^[%w_.%-]*@?[%w][%w%.%-]*$", "[user@]host"),
  root = remote_dir,
  bin = remote_dir,
}

-- coerce(spec) -> options | nil, msg (unknown keys are Base.new's business)
function M.coerce(spec)
  local o = {}
  for k, v in pairs(M.defaults) do o[k] = v end
  for k, v in pairs(spec) do
    if check[k] then
      local val, err = check[k](k, v)
      if val == nil then return nil, err end
      o[k] = val
    end
  end
  if not o.host then return nil, "the pve-api target needs option host (the node's address): --target-opt host=NAME" end
  if not o.token then
    return nil, "the pve-api target needs an API token: --target-opt token=env:NAME (with token_id and user), "
      .. "or token=USER@REALM!ID=SECRET"
  end
  local full_user, full_id, secret = o.token:match("^([^!]+)!([^=]+)=(.+)$")
  if full_user then
    o.user, o.token_id, o.secret = full_user, full_id, secret
  else
    if not o.token_id then return nil, "target option token_id is required with a bare token secret" end
    o.secret = o.token
  end
  o.token = nil
  if (o.root or o.bin) and not o.ssh then
    return nil, "target options root and bin of the pve-api target apply to the node's shell: they need ssh"
  end
  return o
end

return M
