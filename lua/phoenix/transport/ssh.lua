-- The ssh transport: commands and files on a remote host (the Proxmox node
-- behind the pve-api target). One ControlMaster connection per transport,
-- reused by every call. ssh hands the remote command to the remote user's
-- shell as ONE string, so every word is single-quoted (util.sh_quote) and
-- the remote side is a constant wrapper script (ssh_scripts.run) that gets
-- the values as positional parameters. Files: ssh_files.lua.
local exec = require "px.exec"
local fs = require "px.fs"
local log = require "px.log"
local sys = require "px.sys"
local async = require "phoenix.async"
local util = require "phoenix.util"
local scripts = require "phoenix.transport.ssh_scripts"
local files = require "phoenix.transport.ssh_files"

local M = {}

local Ssh = {}
Ssh.__index = Ssh
for name, fn in pairs(files) do Ssh[name] = fn end

local NEW_KEYS = {
  host = true, user = true, port = true, identity = true, known_hosts = true,
  ssh = true, connect_timeout_s = true, path_prefix = true,
}
local RUN_KEYS = {
  argv = true, stdin = true, env = true, timeout_ms = true, kill_grace_ms = true,
  max_output = true, cwd = true, ok_codes = true,
}
M.DEFAULT_TIMEOUT_MS = 600000
local DEFAULT_GRACE_MS = 2000

local counter = 0

local function is_int(v, lo, hi)
  return math.type(v) == "integer" and v >= lo and (not hi or v <= hi)
end

local function bad(fmt, ...) return nil, "ssh.new: " .. string.format(fmt, ...) end

local function local_file(what, path)
  if type(path) ~= "string" or path == "" then return nil, what .. " must be a file name" end
  local st, err = fs.stat(path)
  if not st then return nil, what .. " " .. err end
  if st.type ~= "file" then return nil, what .. " " .. path .. ": not a regular file" end
  return true
end

-- Checks new()'s options; returns the normalized fields or nil, msg.
local function check_new(o)
  local host = o.host
  if type(host) ~= "string" or host == "" then return bad("host is required (a name or user@name)") end
  local user = o.user
  local u, h = host:match("^([^@]*)@([^@]*)$")
  if u then
    if user ~= nil and user ~= u then return bad("host %q names user %q but user is %q", host, u, tostring(user)) end
    user, host = u, h
  end
  -- A leading '-' would make ssh read the host as an option; no spaces or
  -- control characters either.
  if not host:match("^[%w_][%w._:%%-]*$") then return bad("bad host name %q", host) end
  user = user == nil and "root" or user
  if type(user) ~= "string" or not user:match("^[%w_][%w._-]*%$?$") then
    return bad("bad user name %q", tostring(user))
  end
  local port = o.port == nil and 22 or o.port
  if math.type(port) == "float" and port == math.floor(port) then port = math.tointeger(port) end
  if not is_int(port, 1, 65535) then return bad("port must be an integer 1..65535, got %s", tostring(o.port)) end
  local ok, err
  if o.identity ~= nil then
    ok, err = local_file("identity", o.identity)
    if not ok then return bad("%s", err) end
  end
  if o.known_hosts ~= nil then
    ok, err = local_file("known_hosts", o.known_hosts)
    if not ok then return bad("%s", err) end
  end
  local prog = o.ssh == nil and "ssh" or o.ssh
  if type(prog) ~= "string" or prog == "" then return bad("ssh must be a program name or path") end
  local cto = o.connect_timeout_s == nil and 10 or o.connect_timeout_s
  if type(cto) ~= "number" or cto <= 0 or cto ~= cto then
    return bad("connect_timeout_s must be a positive number, got %s", tostring(o.connect_timeout_s))
  end
  local prefix = o.path_prefix
  if prefix ~= nil and (type(prefix) ~= "string" or not prefix:match("^/[^:\n%z]*$")) then
    return bad("path_prefix must be an absolute directory without ':', got %s", tostring(prefix))
  end
  return { host = host, user = user, port = port, identity = o.identity, known_hosts = o.known_hosts,
           ssh = prog, connect_timeout_s = math.ceil(cto), path_prefix = prefix or "" }
end

-- The ssh options every call uses: one shared connection, never a prompt.
local function base_argv(c, control)
  local argv = {
    c.ssh, "-T", "-x", "-a",
    "-o", "BatchMode=yes",
    "-o", "ConnectTimeout=" .. c.connect_timeout_s,
    "-o", "ControlMaster=auto",
    "-o", "ControlPath=" .. control,
    "-o", "ControlPersist=60",
    "-o", "ServerAliveInterval=15",
    "-o", "ServerAliveCountMax=4",
    "-o", "LogLevel=ERROR",
    "-p", tostring(c.port),
    "-l", c.user,
  }
  if c.identity then
    for _, w in ipairs { "-i", c.identity, "-o", "IdentitiesOnly=yes" } do argv[#argv + 1] = w end
  end
  if c.known_hosts then
    for _, w in ipairs { "-o", "UserKnownHostsFile=" .. c.known_hosts, "-o", "GlobalKnownHostsFile=/dev/null",
                         "-o", "StrictHostKeyChecking=yes" } do
      argv[#argv + 1] = w
    end
  end
  return argv
end

-- The local environment of the ssh client: the agent socket if there is one.
local function client_env()
  local env = { PATH = sys.getenv("PATH") or "/usr/local/bin:/usr/bin:/bin", LC_ALL = "C" }
  for _, k in ipairs { "HOME", "SSH_AUTH_SOCK" } do env[k] = sys.getenv(k) end
  return env
end

-- new(opts) -> transport | nil, msg (unknown keys raise)
function M.new(o)
  if type(o) ~= "table" then error("ssh.new: options table expected", 2) end
  for k in pairs(o) do
    if not NEW_KEYS[k] then error(string.format("ssh.new: unknown option '%s'", tostring(k)), 2) end
  end
  local c, err = check_new(o)
  if not c then return nil, err end
  -- The control socket lives in a private directory: whoever can reach it
  -- runs commands as the remote user.
  counter = counter + 1
  local dir = string.format("/tmp/phoenix-ssh-%d-%d-%06x", sys.pid(), counter, math.random(0, 0xffffff))
  local ok, merr = fs.mkdir(dir, { mode = tonumber("700", 8), parents = false })
  if not ok then return nil, "ssh.new: " .. merr end
  c.dir = dir
  c.control = dir .. "/cm"
  c.base = base_argv(c, c.control)
  c.env = client_env()
  c.name = string.format("ssh %s@%s:%d", c.user, c.host, c.port)
  return setmetatable(c, Ssh)
end

function Ssh:describe() return self.name end

local function token()
  counter = counter + 1
  return string.format("pxs%x%x%08x%08x", sys.pid(), counter, math.random(0, 0xffffffff), math.random(0, 0xffffffff))
end

-- The ssh command line for remote words (each one quoted).
function Ssh:_argv(words)
  local q = {}
  for i, w in ipairs(words) do q[i] = util.sh_quote(w) end
  local argv = { table.unpack(self.base) }
  argv[#argv + 1] = "--"
  argv[#argv + 1] = self.host
  argv[#argv + 1] = table.concat(q, " ")
  return argv
end

local function check_run(o)
  if type(o) ~= "table" then error("run: options table expected", 3) end
  for k in pairs(o) do
    if not RUN_KEYS[k] then error(string.format("run: unknown option '%s'", tostring(k)), 3) end
  end
  local argv = o.argv
  if type(argv) ~= "table" or #argv == 0 then error("run: argv must be a non-empty list", 3) end
  local words = {}
  for i, a in ipairs(argv) do
    if math.type(a) == "integer" then a = tostring(a) end
    if type(a) ~= "string" or a:find("\0", 1, true) then
      error(string.format("run: argv item %d is not a string without NUL bytes", i), 3)
    end
    words[i] = a
  end
  -- `env` runs the command: a first word with '=' would be an assignment.
  if words[1] == "" or words[1]:find("=", 1, true) then error("run: argv[1] must be a program name without '='", 3) end
  local env = {}
  if o.env ~= nil then
    if type(o.env) ~= "table" then error("run: env must be a table", 3) end
    for k, v in pairs(o.env) do
      if type(k) ~= "string" or not k:match("^[A-Za-z_][A-Za-z0-9_]*$") then
        error(string.format("run: bad env name %q", tostring(k)), 3)
      end
      if type(v) == "number" then v = tostring(v) end
      if type(v) ~= "string" or v:find("\0", 1, true) then
        error(string.format("run: env %s must be a string", k), 3)
      end
      env[#env + 1] = k .. "=" .. v
    end
    table.sort(env)
  end
  local t = o.timeout_ms == nil and M.DEFAULT_TIMEOUT_MS or o.timeout_ms
  if type(t) ~= "number" or t <= 0 then error("run: timeout_ms must be a positive number", 3) end
  local g = o.kill_grace_ms == nil and DEFAULT_GRACE_MS or o.kill_grace_ms
  if type(g) ~= "number" or g < 0 then error("run: kill_grace_ms must be a number >= 0", 3) end
  if o.stdin ~= nil and type(o.stdin) ~= "string" then error("run: stdin must be a string", 3) end
  if o.cwd ~= nil and (type(o.cwd) ~= "string" or o.cwd == "" or o.cwd:find("\0", 1, true)) then
    error("run: cwd must be a directory name", 3)
  end
  if o.ok_codes ~= nil and type(o.ok_codes) ~= "table" then error("run: ok_codes must be a list of exit codes", 3) end
  return words, env, t, g
end

-- Last occurrence of plain text s in text, or nil.
local function find_last(text, s)
  local at, pos = nil, 1
  while true do
    local i = text:find(s, pos, true)
    if not i then return at end
    at, pos = i, i + 1
  end
end

-- After a timeout: TERM (then KILL) the remote command's process group.
function Ssh:_kill_remote(tok, grace_ms)
  local tenths = math.max(1, math.ceil(grace_ms / 100))
  local argv = self:_argv { "exec", "sh", "-c", scripts.kill, "phoenix-ssh-kill", tok, tostring(tenths) }
  -- Best effort, bounded: a dead connection must not hold the caller.
  async.run { argv = argv, env = self.env, timeout_ms = grace_ms + self.connect_timeout_s * 1000 + 5000 }
end

-- run(opts) -> result | nil, msg [, result]: the async.run contract, on the
-- remote host. Exit codes are results; ssh's own failures are nil, msg.
function Ssh:run(o)
  local words, env, timeout_ms, grace_ms = check_run(o)
  if self.closed then error(self.name .. ": the transport is closed", 2) end
  local tok = token()
  local remote = { "exec", "sh", "-c", scripts.run, "phoenix-ssh", tok, self.path_prefix, o.cwd or "", words[1] }
  for _, e in ipairs(env) do remote[#remote + 1] = e end
  for _, w in ipairs(words) do remote[#remote + 1] = w end
  local res, err = async.run {
    argv = self:_argv(remote), env = self.env, stdin = o.stdin,
    timeout_ms = timeout_ms, kill_grace_ms = grace_ms, max_output = o.max_output,
  }
  if not res then return nil, self.name .. ": " .. err end
  if res.timed_out then self:_kill_remote(tok, grace_ms) end
  local stderr = res.stderr
  local s = stderr:find(tok .. "-start\n", 1, true)
  if not s then
    if res.timed_out then
      return nil, log.scrub(string.format("%s: timed out after %.0f ms before `%s` started", self.name,
        res.duration_ms or timeout_ms, words[1]))
    end
    if stderr:find(tok .. "-nopid", 1, true) then
      return nil, self.name .. ": cannot create the process file in the remote ${TMPDIR:-/tmp}"
    end
    local tail = util.tail(stderr)
    if res.code == 255 then return nil, log.scrub(self.name .. ": " .. (tail ~= "" and tail or "connection failed")) end
    return nil, log.scrub(string.format("%s: the remote shell exited %d before `%s` started%s", self.name,
      res.code, words[1], tail ~= "" and (": " .. tail) or ""))
  end
  stderr = stderr:sub(s + #tok + 7)
  local e = find_last(stderr, tok .. "-end ")
  local status
  if e then
    status = stderr:match("^(%w+)\n", e + #tok + 5)
    stderr = stderr:sub(1, e - 1)
  end
  local out = {}
  for k, v in pairs(res) do out[k] = v end
  out.stderr = stderr
  if not res.timed_out then
    if status == "nocmd" then
      return nil, string.format("%s: %s: No such file or directory", self.name, words[1])
    elseif status == "nocwd" then
      return nil, string.format("%s: %s: cwd %s: cannot change into it", self.name, words[1], o.cwd)
    elseif not status then
      local tail = util.tail(stderr)
      return nil, log.scrub(string.format("%s: `%s` ended without an exit status (connection lost?)%s", self.name,
        util.argv_string(words), tail ~= "" and (": " .. tail) or "")), out
    end
  end
  if o.ok_codes then
    local ok = false
    for _, c in ipairs(o.ok_codes) do
      if out.code == c then ok = true end
    end
    if res.timed_out or not ok then return nil, self.name .. ": " .. util.command_error(words, out), out end
  end
  return out
end

-- close(): ends the ControlMaster and removes the private directory.
-- Idempotent; also on garbage collection and <close>.
function Ssh:close()
  if self.closed then return true end
  self.closed = true
  if fs.exists(self.control) then
    local argv = { table.unpack(self.base) }
    for _, w in ipairs { "-O", "exit", "--", self.host } do argv[#argv + 1] = w end
    -- Not async: close also runs from __gc, where a task cannot yield.
    -- Nothing captured: a handle made while the Lua state closes is never
    -- finalized, so capture buffers would leak.
    exec.run { argv = argv, env = self.env, timeout_ms = 5000, stdout = "null", stderr = "null" }
    fs.remove(self.control)
  end
  fs.remove(self.dir)
  return true
end

Ssh.__close = Ssh.close
Ssh.__gc = function(self) pcall(Ssh.close, self) end

return M
