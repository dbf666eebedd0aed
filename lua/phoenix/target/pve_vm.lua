-- The VM driver of the pve target: QEMU guests through `qm` (argv lists
-- only), their state from the target's batched inventory, and commands and
-- files inside the guest through the QEMU guest agent (`qm guest exec`).
-- The vm recipe owns the VM model; this module only runs qm and reads.
local async = require "phoenix.async"
local json = require "px.json"
local util = require "phoenix.util"

local M = {}

local Driver = {}
Driver.__index = Driver

function M.new(target)
  return setmetatable({ t = target }, Driver)
end

local function check_vmid(vmid)
  local n = math.tointeger(tonumber(vmid))
  if not n or n < 100 then error("expected a VMID (>= 100), got " .. tostring(vmid), 3) end
  return n
end

-- guest(vmid) -> inventory entry (kind "qemu") | nil (absent) | nil, msg
function Driver:guest(vmid)
  vmid = check_vmid(vmid)
  local g, err = self.t:guest(vmid)
  if g == nil then return nil, err end
  if g.kind ~= "qemu" then
    return nil, string.format("guest %d is a container, not a VM", vmid)
  end
  return g
end

-- conf(vmid) -> parsed config read from its file now (no tool call) | nil | nil, msg
function Driver:conf(vmid)
  vmid = check_vmid(vmid)
  return self.t:guest_conf(vmid, "qemu")
end

-- Options as a list of {key, value} pairs -> "--key value" argv words.
local function option_words(args, options)
  for _, kv in ipairs(options or {}) do
    local k, v = kv[1], kv[2]
    if type(k) ~= "string" or not k:match("^[a-z][a-z0-9_-]*$") then
      error("qm option name must be a lower-case word, got " .. tostring(k), 3)
    end
    if type(v) == "boolean" then v = v and "1" or "0" end
    if type(v) ~= "string" and math.type(v) ~= "integer" then
      error("qm option " .. k .. ": value must be a string or integer, got " .. type(v), 3)
    end
    args[#args + 1] = "--" .. k
    args[#args + 1] = tostring(v)
  end
  return args
end

-- qm(args, opts) -> result | nil, msg. A call that changes a guest names it
-- in opts.changes (a VMID): its inventory entry is re-read next time.
function Driver:qm(args, opts)
  opts = opts or {}
  local run = {}
  for k, v in pairs(opts) do
    if k ~= "changes" then run[k] = v end
  end
  local res, err = self.t:pve("qm", args, run)
  if opts.changes then self.t:refresh(opts.changes) end
  return res, err
end

function Driver:create(vmid, options)
  vmid = check_vmid(vmid)
  return self:qm(option_words({ "create", vmid }, options), { changes = vmid })
end

-- set(vmid, options, {delete = {"key", ...}})
function Driver:set(vmid, options, o)
  vmid = check_vmid(vmid)
  local args = option_words({ "set", vmid }, options)
  if o and o.delete and #o.delete > 0 then
    args[#args + 1] = "--delete"
    args[#args + 1] = table.concat(o.delete, ",")
  end
  return self:qm(args, { changes = vmid })
end

-- clone(src, dst, {name=, full=true, storage=})
function Driver:clone(src, dst, o)
  src, dst = check_vmid(src), check_vmid(dst)
  o = o or {}
  local options = { { "full", o.full == false and "0" or "1" } }
  if o.name then options[#options + 1] = { "name", o.name } end
  if o.storage then options[#options + 1] = { "storage", o.storage } end
  return self:qm(option_words({ "clone", src, dst }, options), { changes = dst })
end

-- importdisk(vmid, source, storage) -> volume ID | nil, msg
function Driver:importdisk(vmid, source, storage)
  vmid = check_vmid(vmid)
  local res, err = self:qm({ "importdisk", vmid, source, storage }, { changes = vmid })
  if not res then return nil, err end
  -- "Successfully imported disk as 'unused0:local-zfs:vm-9000-disk-0'"
  local volid = res.stdout:match("imported disk as '[%w]+:([^']+)'")
  if not volid then
    return nil, string.format("`qm importdisk %d %s %s` did not say which volume it made: %s", vmid,
      source, storage, util.tail(res.stdout, 2))
  end
  return volid
end

function Driver:template(vmid)
  vmid = check_vmid(vmid)
  return self:qm({ "template", vmid }, { changes = vmid })
end

function Driver:resize(vmid, disk, size)
  vmid = check_vmid(vmid)
  return self:qm({ "resize", vmid, disk, size }, { changes = vmid })
end

function Driver:snapshot(vmid, name, description)
  vmid = check_vmid(vmid)
  local args = { "snapshot", vmid, name }
  if description then
    args[#args + 1] = "--description"
    args[#args + 1] = description
  end
  return self:qm(args, { changes = vmid })
end

function Driver:start(vmid) vmid = check_vmid(vmid) return self:qm({ "start", vmid }, { changes = vmid }) end
function Driver:stop(vmid) vmid = check_vmid(vmid) return self:qm({ "stop", vmid }, { changes = vmid }) end
function Driver:reboot(vmid) vmid = check_vmid(vmid) return self:qm({ "reboot", vmid }, { changes = vmid }) end

function Driver:destroy(vmid)
  vmid = check_vmid(vmid)
  return self:qm({ "destroy", vmid, "--purge", "1", "--destroy-unreferenced-disks", "1" }, { changes = vmid })
end

-- Guest agent ---------------------------------------------------------------

-- agent(vmid, command) -> decoded answer (nil when it printed nothing) | nil, msg
function Driver:agent(vmid, command)
  vmid = check_vmid(vmid)
  local res, err = self:qm({ "guest", "cmd", vmid, command })
  if not res then return nil, err end
  if not res.stdout:find("%S") then return true end
  local v, jerr = json.decode(res.stdout)
  if v == nil then return nil, "`qm guest cmd " .. vmid .. " " .. command .. "` printed what is not JSON: " .. tostring(jerr) end
  return v
end

-- The agent is not answering yet (booting): qm's two ways of saying so.
local function not_up(err)
  err = err or ""
  return err:find("QEMU guest agent is not running", 1, true) ~= nil
    or err:find("qmp command 'guest%-ping' failed") ~= nil
end

-- wait_agent(vmid, {timeout = 300, first = 0.5, max = 10}) -> true | nil, msg.
-- Pings the agent until it answers, sleeping first, 2*first, ... (at most
-- max) seconds between tries, through async so other resources go on.
function Driver:wait_agent(vmid, o)
  vmid = check_vmid(vmid)
  o = o or {}
  local timeout, wait, max = o.timeout or 300, o.first or 0.5, o.max or 10
  local clock = o.clock or require("px.sys").monotonic
  local deadline = clock() + timeout
  local last
  while true do
    local ok, err = self:agent(vmid, "ping")
    if ok then return true end
    last = err
    -- only "not up yet" is worth waiting for; anything else is final
    if not not_up(err) then return nil, err end
    local left = deadline - clock()
    if left <= 0 then
      return nil, string.format("the QEMU guest agent of VM %d did not answer within %d s (%s): is "
        .. "qemu-guest-agent installed and enabled in the image? (raise agent_timeout if it boots slowly)",
        vmid, math.floor(timeout + 0.5), util.tail(last, 1))
    end
    async.sleep(math.min(wait, left))
    wait = math.min(wait * 2, max)
  end
end

local function env_words(argv, env)
  if not env or next(env) == nil then return argv end
  local names = util.sorted_keys(env)
  local out = { "env" }
  for _, k in ipairs(names) do
    if not tostring(k):match("^[A-Za-z_][A-Za-z0-9_]*$") then
      error("exec: bad environment variable name " .. tostring(k), 3)
    end
    out[#out + 1] = k .. "=" .. tostring(env[k])
  end
  for _, a in ipairs(argv) do out[#out + 1] = a end
  return out
end

-- exec(vmid, argv, {stdin=, env=, timeout_ms=}) -> {code, stdout, stderr} | nil, msg.
-- `qm guest exec` waits up to --timeout for the command; a command still
-- running then is an error (its pid is named).
function Driver:exec(vmid, argv, o)
  vmid = check_vmid(vmid)
  o = o or {}
  if type(argv) ~= "table" or #argv == 0 then error("exec: argv must be a non-empty list", 2) end
  for i, a in ipairs(argv) do
    if type(a) ~= "string" then error(string.format("exec: argv[%d] is a %s, not a string", i, type(a)), 2) end
  end
  local secs = math.max(1, math.ceil((o.timeout_ms or 600000) / 1000))
  local args = { "guest", "exec", vmid, "--timeout", secs }
  if o.stdin then
    args[#args + 1] = "--pass-stdin"
    args[#args + 1] = "1"
  end
  args[#args + 1] = "--"
  for _, a in ipairs(env_words(argv, o.env)) do args[#args + 1] = a end
  local res, err = self:qm(args, { stdin = o.stdin, timeout_ms = secs * 1000 + 60000 })
  if not res then return nil, err end
  local v, jerr = json.decode(res.stdout)
  if type(v) ~= "table" then
    return nil, "`qm guest exec " .. vmid .. "` printed what is not the agent's JSON: " .. tostring(jerr or res.stdout)
  end
  if v.exited ~= 1 and v.exited ~= true then
    return nil, string.format("`%s` in VM %d still runs after %d s (pid %s)", util.argv_string(argv), vmid, secs,
      tostring(v.pid))
  end
  return { code = math.tointeger(v.exitcode) or -1, stdout = v["out-data"] or "", stderr = v["err-data"] or "" }
end

local function mode_string(m)
  if m == nil then return "0644" end
  if type(m) == "number" then return string.format("%04o", m) end
  if type(m) == "string" and m:match("^0?[0-7][0-7][0-7][0-7]?$") then return m end
  error("push: mode must be an integer or an octal string, got " .. tostring(m), 3)
end

-- push(vmid, path, content, {mode=, uid=, gid=}) -> true | nil, msg.
-- One agent call: `install -D` makes the parent directories and sets the
-- mode; the content travels as the command's stdin (the agent's input-data).
function Driver:push(vmid, path, content, o)
  o = o or {}
  if type(path) ~= "string" or path:sub(1, 1) ~= "/" then error("push: path must be absolute", 2) end
  if type(content) ~= "string" then error("push: content must be a string", 2) end
  local argv = { "install", "-D", "-m", mode_string(o.mode) }
  if o.uid then argv[#argv + 1] = "-o" argv[#argv + 1] = tostring(math.tointeger(o.uid)) end
  if o.gid then argv[#argv + 1] = "-g" argv[#argv + 1] = tostring(math.tointeger(o.gid)) end
  argv[#argv + 1] = "/dev/stdin"
  argv[#argv + 1] = path
  local res, err = self:exec(vmid, argv, { stdin = content, timeout_ms = o.timeout_ms })
  if not res then return nil, err end
  if res.code ~= 0 then
    return nil, string.format("writing %s in VM %d failed (exit %d): %s", path, vmid, res.code, util.tail(res.stderr, 3))
  end
  return true
end

-- pull(vmid, path) -> content | nil, msg, missing (true when the file is absent)
function Driver:pull(vmid, path)
  if type(path) ~= "string" or path:sub(1, 1) ~= "/" then error("pull: path must be absolute", 2) end
  local res, err = self:exec(vmid, { "cat", path }, { timeout_ms = 60000 })
  if not res then return nil, err end
  if res.code ~= 0 then
    local missing = res.stderr:find("No such file", 1, true) ~= nil
    return nil, string.format("reading %s in VM %d failed (exit %d): %s", path, vmid, res.code, util.tail(res.stderr, 2)), missing
  end
  return res.stdout
end

return M
