-- File operations of the ssh transport, with px.fs's contracts
-- (docs/api/fs.md): each one remote command; expected failures are
-- nil, "<path>: <reason>" with the remote system's reason.
local util = require "phoenix.util"
local scripts = require "phoenix.transport.ssh_scripts"

local M = {}

local TIMEOUT_MS = 120000
local MAX_READ = 256 * 1024 * 1024
local STAT_FORMAT = "%f %s %u %g %.9Y %i"
local S_IFMT = {
  [0xC000] = "socket", [0xA000] = "link", [0x8000] = "file", [0x6000] = "block",
  [0x4000] = "dir", [0x2000] = "char", [0x1000] = "fifo",
}

local function check_path(fn, path)
  if type(path) ~= "string" or path == "" or path:find("\0", 1, true) then
    error(string.format("%s: path must be a non-empty string", fn), 3)
  end
end

local function check_opts(fn, opts, keys)
  if opts == nil then return {} end
  if type(opts) ~= "table" then error(fn .. ": options table expected", 3) end
  for k in pairs(opts) do
    if not keys[k] then error(string.format("%s: unknown option '%s'", fn, tostring(k)), 3) end
  end
  return opts
end

-- A mode as octal text: integer or octal string ("0640").
local function octal(fn, mode)
  if type(mode) == "string" and mode:match("^[0-7]+$") then mode = tonumber(mode, 8) end
  if math.type(mode) ~= "integer" or mode < 0 or mode > 4095 then
    error(fn .. ": bad option 'mode' (an integer or octal string up to 07777 expected)", 3)
  end
  return string.format("%o", mode)
end

-- "<path>: <reason>" from the tool's message ("cat: /x: No such file or
-- directory" -> the text after the last ": ").
local function failure(path, res)
  if res.timed_out then return string.format("%s: timed out after %.0f ms", path, res.duration_ms or 0) end
  local last = util.tail(res.stderr, 1)
  local reason = last:match(".*: (.-)%s*$")
  if not reason or reason == "" then reason = last ~= "" and last or ("exited " .. tostring(res.code)) end
  return path .. ": " .. reason
end

-- One remote command; nil, msg names the transport when ssh itself failed.
local function call(self, argv, stdin, max_output)
  return self:run { argv = argv, stdin = stdin, timeout_ms = TIMEOUT_MS, max_output = max_output }
end

function M:read(path)
  check_path("read", path)
  local res, err = call(self, { "cat", "--", path }, nil, MAX_READ)
  if not res then return nil, err end
  if res.code ~= 0 or res.timed_out then return nil, failure(path, res) end
  if res.stdout_truncated then return nil, path .. ": larger than the ssh transport reads (256 MiB)" end
  return res.stdout
end

-- exists(path) -> boolean; nil, msg when the host cannot be asked.
function M:exists(path)
  check_path("exists", path)
  local res, err = call(self, { "test", "-e", path })
  if not res then return nil, err end
  if res.code == 0 then return true end
  if res.code == 1 then return false end
  return nil, failure(path, res)
end

local STAT_KEYS = { follow = true }

function M:stat(path, opts)
  check_path("stat", path)
  opts = check_opts("stat", opts, STAT_KEYS)
  local argv = { "stat", "-c", STAT_FORMAT, "--", path }
  if opts.follow ~= false then table.insert(argv, 2, "-L") end
  local res, err = call(self, argv)
  if not res then return nil, err end
  if res.code ~= 0 or res.timed_out then return nil, failure(path, res) end
  local raw, size, uid, gid, mtime, ino = res.stdout:match("^(%x+) (%d+) (%d+) (%d+) ([%d.]+) (%d+)\n$")
  if not raw then return nil, path .. ": unexpected stat output: " .. util.tail(res.stdout, 1) end
  raw = tonumber(raw, 16)
  return {
    type = S_IFMT[raw & 0xF000] or "other", size = math.tointeger(tonumber(size)),
    mode = raw & 4095, uid = math.tointeger(tonumber(uid)), gid = math.tointeger(tonumber(gid)),
    mtime = tonumber(mtime) + 0.0, ino = math.tointeger(tonumber(ino)),
  }
end

function M:list(path)
  check_path("list", path)
  local res, err = call(self, { "sh", "-c", scripts.list, "sh", path })
  if not res then return nil, err end
  if res.code ~= 0 or res.timed_out then return nil, failure(path, res) end
  local names = {}
  for name in res.stdout:gmatch("([^\0]+)\0") do names[#names + 1] = name end
  table.sort(names)
  return names
end

local MKDIR_KEYS = { mode = true, parents = true }

function M:mkdir(path, opts)
  check_path("mkdir", path)
  opts = check_opts("mkdir", opts, MKDIR_KEYS)
  local mode = octal("mkdir", opts.mode == nil and 493 or opts.mode)
  local argv = { "mkdir", "-m", mode, "--", path }
  if opts.parents ~= false then table.insert(argv, 2, "-p") end
  local res, err = call(self, argv)
  if not res then return nil, err end
  if res.code ~= 0 or res.timed_out then return nil, failure(path, res) end
  return true
end

function M:remove(path)
  check_path("remove", path)
  local res, err = call(self, { "sh", "-c", scripts.remove, "sh", path })
  if not res then return nil, err end
  if res.code ~= 0 or res.timed_out then return nil, failure(path, res) end
  return true
end

local WRITE_KEYS = { mode = true, uid = true, gid = true, backup = true }

local function id(name, v)
  if v == nil then return "" end
  if math.type(v) ~= "integer" or v < 0 then
    error("write: bad option '" .. name .. "' (an integer >= 0 expected)", 3)
  end
  return tostring(v)
end

function M:write(path, data, opts)
  check_path("write", path)
  if type(data) ~= "string" then error("write: data must be a string", 2) end
  opts = check_opts("write", opts, WRITE_KEYS)
  if path:match("/$") then error("write: path names a directory", 2) end
  local mode = opts.mode == nil and "" or octal("write", opts.mode)
  local backup = opts.backup
  if backup ~= nil and (type(backup) ~= "string" or backup == "" or backup:find("[/\0]")) then
    error("write: bad option 'backup' (a suffix such as \".bak\" expected)", 2)
  end
  local argv = { "sh", "-c", scripts.write, "sh", path, mode, id("uid", opts.uid), id("gid", opts.gid), backup or "" }
  local res, err = call(self, argv, data)
  if not res then return nil, err end
  if res.code ~= 0 or res.timed_out then return nil, failure(path, res) end
  return true
end

return M
