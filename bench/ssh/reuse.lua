-- ssh transport: the first call (new connection: TCP, key exchange, auth)
-- against later calls over the ControlMaster, on a private sshd on
-- 127.0.0.1 (tests/helpers/sshd.lua; needs root and openssh-server).
-- Usage: phoenix lua bench/ssh/reuse.lua [calls]
local here = arg[0]:match("^(.*)/[^/]*$") or "."
package.path = here .. "/../../tests/helpers/?.lua;" .. package.path
local ssh = require "phoenix.transport.ssh"
local exec = require "px.exec"
local sys = require "px.sys"
local servers = require "servers"
local sshd = require "sshd"

local why = sshd.missing()
if why then
  print("skipped: " .. why)
  return
end
local n = tonumber(arg[1]) or 30
local dir = servers.tmpdir("sshd-bench")
local keys = sshd.keys(dir)
local server = sshd.start(dir, keys)

local function median(xs)
  table.sort(xs)
  return xs[(#xs + 1) // 2]
end

local ok, err = pcall(function()
  local function open()
    return assert(ssh.new { host = "127.0.0.1", port = server.port, identity = keys.client_key,
                            known_hosts = server.known_hosts })
  end
  local first, later, raw, reads, writes = {}, {}, {}, {}, {}
  for _ = 1, 5 do
    local tr = open()
    local t0 = sys.monotonic()
    assert(tr:run { argv = { "true" } })
    first[#first + 1] = (sys.monotonic() - t0) * 1000
    tr:close()
  end
  local tr = open()
  assert(tr:run { argv = { "true" } })
  for i = 1, n do
    local t0 = sys.monotonic()
    assert(tr:run { argv = { "true" } })
    later[#later + 1] = (sys.monotonic() - t0) * 1000
    -- The same mux call without the wrapper script: the wrapper's share.
    local argv = tr:_argv { "true" }
    t0 = sys.monotonic()
    assert(assert(exec.run { argv = argv, env = tr.env }).code == 0)
    raw[#raw + 1] = (sys.monotonic() - t0) * 1000
    t0 = sys.monotonic()
    assert(tr:read("/etc/hostname"))
    reads[#reads + 1] = (sys.monotonic() - t0) * 1000
    t0 = sys.monotonic()
    assert(tr:write(dir .. "/w" .. i, "data\n"))
    writes[#writes + 1] = (sys.monotonic() - t0) * 1000
  end
  tr:close()
  local ssh_v = {}
  for i = 1, 10 do
    local t0 = sys.monotonic()
    assert(exec.run { argv = { "ssh", "-V" } })
    ssh_v[i] = (sys.monotonic() - t0) * 1000
  end
  print(string.format("%-52s %9.1f ms", "first call, new connection (median of 5)", median(first)))
  print(string.format("%-52s %9.1f ms", "later call over the ControlMaster (median of " .. n .. ")", median(later)))
  print(string.format("%-52s %9.1fx", "  speed-up", median(first) / median(later)))
  print(string.format("%-52s %9.1f ms", "  same mux call without the wrapper script", median(raw)))
  print(string.format("%-52s %9.1f ms", "  `ssh -V` (the client's start-up alone)", median(ssh_v)))
  print(string.format("%-52s %9.1f ms", "read (cat) over the ControlMaster", median(reads)))
  print(string.format("%-52s %9.1f ms", "write (atomic, synced) over the ControlMaster", median(writes)))
end)
server.stop()
servers.run { "rm", "-rf", dir }
if not ok then error(err, 0) end
