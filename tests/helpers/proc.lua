-- Test helpers for the runtime specs: temporary directories, processes of
-- a group, the phoenix binary under test.
local fs = require "px.fs"
local exec = require "px.exec"
local sys = require "px.sys"

local M = {}

M.bin = sys.getenv("PHOENIX_BIN") or error("PHOENIX_BIN is not set (run through ctest)")
M.source_dir = sys.getenv("PHOENIX_SOURCE_DIR")

-- tmpdir() -> a fresh directory; cleanup(dir) removes it.
function M.tmpdir()
  local r = assert(exec.run{ argv = { "mktemp", "-d", "/tmp/pxtest.XXXXXX" } })
  assert(r.code == 0, r.stderr)
  return (r.stdout:gsub("\n$", ""))
end

function M.cleanup(dir)
  assert(dir:match("^/tmp/pxtest%."), "refusing to remove " .. dir)
  exec.run{ argv = { "rm", "-rf", "--", dir } }
end

-- stat_of(pid) -> state, pgrp from /proc/PID/stat, or nil when gone.
function M.stat_of(pid)
  local text = fs.read("/proc/" .. pid .. "/stat")
  if not text then return nil end
  local rest = text:match("^%d+ %(.*%) (.*)$")
  local state, _, pgrp = rest:match("^(%S+) (%S+) (%S+)")
  return state, tonumber(pgrp)
end

-- A zombie has finished; only a running or sleeping process is "alive".
-- (PID 1 of some containers never reaps orphans, so zombies can linger.)
function M.alive(pid)
  local state = M.stat_of(pid)
  return state ~= nil and state ~= "Z"
end

-- group_members(pgid) -> list of live (non-zombie) pids in that group.
function M.group_members(pgid)
  local out = {}
  for _, name in ipairs(fs.list("/proc") or {}) do
    if name:match("^%d+$") then
      local state, pgrp = M.stat_of(name)
      if pgrp == pgid and state ~= "Z" then out[#out + 1] = tonumber(name) end
    end
  end
  return out
end

-- settle(pgid) -> live members of the group left after up to 2 s. A
-- process sent SIGKILL dies asynchronously: it may still show as running
-- for a moment after kill(2) returned, on a loaded machine.
function M.settle(pgid)
  local t0 = sys.monotonic()
  while true do
    local left = M.group_members(pgid)
    if #left == 0 or sys.monotonic() - t0 > 2 then return left end
    sys.sleep(0.01)
  end
end

-- lua_script(dir, name, code) -> path of a script `phoenix lua` can run.
function M.lua_script(dir, name, code)
  local path = dir .. "/" .. name
  assert(fs.write(path, code))
  return path
end

-- phoenix{args..., stdin=, env=} -> result of running the binary under test.
function M.phoenix(args, opts)
  local argv = { M.bin }
  for _, a in ipairs(args) do argv[#argv + 1] = a end
  local spec = { argv = argv, timeout_ms = 20000 }
  for k, v in pairs(opts or {}) do spec[k] = v end
  return assert(exec.run(spec))
end

return M
