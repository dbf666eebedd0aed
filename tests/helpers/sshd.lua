-- A private sshd on 127.0.0.1 for the ssh transport tests: host and client
-- keys made here (ssh-keygen), a known_hosts file for the host key, sshd
-- in the foreground (-D) so stop() ends it. Needs root (sshd must setuid
-- to the logged-in user and read its keys) and /usr/sbin/sshd.
local exec = require "px.exec"
local fs = require "px.fs"
local sys = require "px.sys"
local servers = require "servers"

local M = {}

M.SSHD = "/usr/sbin/sshd"

-- The reason sshd tests cannot run here, or nil.
function M.missing()
  if sys.uid() ~= 0 then return "not root (sshd logs in as root)" end
  if not fs.exists(M.SSHD) then return M.SSHD .. " is not installed (apt-get install openssh-server)" end
  return servers.missing { "sh", "-c", "command -v ssh-keygen ssh-keyscan >/dev/null" }
    and "ssh-keygen/ssh-keyscan are missing (apt-get install openssh-client)"
end

local function keygen(path)
  servers.run { "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "phoenix-test", "-f", path }
end

-- keys(dir) -> {host_key=, host_pub=, client_key=, client_pub=}: made once per dir.
function M.keys(dir)
  local k = { host_key = dir .. "/host_ed25519", client_key = dir .. "/id_ed25519" }
  keygen(k.host_key)
  keygen(k.client_key)
  k.host_pub = fs.read(k.host_key .. ".pub")
  k.client_pub = fs.read(k.client_key .. ".pub")
  return k
end

-- start(dir, keys) -> server {port, known_hosts, stop()}. A new port each
-- time; known_hosts names "[127.0.0.1]:port".
function M.start(dir, keys)
  local port = servers.free_ports(1)[1]
  local cfg = dir .. "/sshd_config"
  assert(fs.write(dir .. "/authorized_keys", keys.client_pub, { mode = "0600" }))
  assert(fs.write(cfg, table.concat({
    "Port " .. port,
    "ListenAddress 127.0.0.1",
    "HostKey " .. keys.host_key,
    "AuthorizedKeysFile " .. dir .. "/authorized_keys",
    "PermitRootLogin prohibit-password",
    "PasswordAuthentication no",
    "KbdInteractiveAuthentication no",
    "StrictModes no",
    "UsePAM no",
    "PidFile " .. dir .. "/sshd.pid",
    "MaxSessions 50",
    "MaxStartups 50",
    "AcceptEnv LANG LC_*",
    -- bash sources ~/.bashrc for ssh commands when SHLVL < 2 on start;
    -- this machine's root .bashrc takes ~1 s (pyenv), which is not what
    -- the tests measure.
    "SetEnv SHLVL=1",
    "",
  }, "\n")))
  local known = dir .. "/known_hosts." .. port
  local host_pub = keys.host_pub:match("^(%S+ %S+)")
  assert(fs.write(known, string.format("[127.0.0.1]:%d %s\n", port, host_pub)))
  -- sshd refuses a relative path to itself; /run/sshd must exist (privsep).
  assert(fs.mkdir("/run/sshd", { mode = tonumber("755", 8) }))
  local h = assert(exec.spawn { argv = { M.SSHD, "-D", "-e", "-f", cfg }, stdout = "null", stderr = "capture" })
  local deadline = sys.monotonic() + 10
  while true do
    local r = exec.run { argv = { "ssh-keyscan", "-T", "2", "-p", tostring(port), "127.0.0.1" } }
    if r and r.code == 0 and r.stdout ~= "" then break end
    if h:done() or sys.monotonic() > deadline then
      local res = h:done() and h:result()
      h:close()
      error("sshd did not come up: " .. (res and res.stderr or "no answer on port " .. port))
    end
    sys.sleep(0.05)
  end
  local server = { port = port, known_hosts = known, handle = h }
  function server.stop()
    if server.handle then
      server.handle:kill("TERM")
      server.handle:wait(5000)
      server.handle:close()
      server.handle = nil
    end
  end
  return server
end

return M
