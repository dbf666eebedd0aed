-- A pve-sim node for specs: made with the simulator's own `init`, its tools
-- run directly, its call log and settings read and changed.
local exec = require "px.exec"
local fs = require "px.fs"
local json = require "px.json"
local kit = require "testkit"

local M = {}

local Node = {}
Node.__index = Node

-- init(dir, args) -> node; args are extra `pve-sim init` options.
function M.init(dir, args)
  local argv = { kit.source_dir .. "/tests/pve-sim/pve-sim", "init", dir }
  for _, a in ipairs(args or {}) do argv[#argv + 1] = a end
  local r = assert(exec.run({ argv = argv, timeout_ms = 60000 }))
  assert(r.code == 0, "pve-sim init: " .. r.stderr)
  return setmetatable({ dir = dir, root = dir .. "/root", bin = dir .. "/bin" }, Node)
end

-- run(tool, ...) -> result; fails the test unless the tool exits 0.
function Node:run(tool, ...)
  local r = assert(exec.run({ argv = { self.bin .. "/" .. tool, ... }, timeout_ms = 60000 }))
  assert(r.code == 0, tool .. " " .. table.concat({ ... }, " ") .. ": " .. r.stderr)
  return r
end

-- calls() -> the decoded lines of sim/calls.log (one per tool call)
function Node:calls()
  local text = fs.read(self.dir .. "/sim/calls.log") or ""
  local out = {}
  for line in text:gmatch("[^\n]+") do out[#out + 1] = assert(json.decode(line)) end
  return out
end

-- count(pattern) -> calls whose command line matches the Lua pattern
function Node:count(pattern)
  local n = 0
  for _, c in ipairs(self:calls()) do
    if table.concat(c.argv, " "):find(pattern) then n = n + 1 end
  end
  return n
end

function Node:clear_calls() assert(fs.write(self.dir .. "/sim/calls.log", "")) end

-- set(settings) merges keys into sim/sim.json (latency_ms, faults ...).
function Node:set(settings)
  local path = self.dir .. "/sim/sim.json"
  local cur = assert(json.decode(assert(fs.read(path))))
  for k, v in pairs(settings) do cur[k] = v end
  assert(fs.write(path, json.encode(cur)))
end

function Node:conf(kind, vmid, node)
  local sub = kind == "lxc" and "lxc" or "qemu-server"
  return string.format("%s/etc/pve/nodes/%s/%s/%d.conf", self.root, node or "pve", sub, vmid)
end

-- serve{token=, cert=, key=} -> api {port, stop()}: `pve-sim serve` on a
-- free port (HTTPS with cert/key), up once it has written sim/api.port.
function Node:serve(o)
  local port_file = self.dir .. "/sim/api.port"
  fs.remove(port_file)
  local argv = { kit.source_dir .. "/tests/pve-sim/pve-sim", "serve", self.dir, "--port", "0", "--token", o.token }
  if o.cert then
    for _, a in ipairs({ "--cert", o.cert, "--key", o.key }) do argv[#argv + 1] = a end
  end
  local h = assert(exec.spawn({ argv = argv, stdout = "null", stderr = "null" }))
  local sys = require "px.sys"
  local deadline = sys.monotonic() + 15
  local port
  while not port do
    port = math.tointeger(tonumber(fs.read(port_file) or ""))
    if not port then
      assert(sys.monotonic() < deadline, "pve-sim serve did not come up")
      sys.sleep(0.05)
    end
  end
  local api = { port = port }
  function api.stop()
    if h then
      h:kill("TERM")
      h:wait(5000)
      h:close()
      h = nil
    end
  end
  return api
end

-- api_log() -> the decoded lines of sim/api.log (one per API request)
function Node:api_log()
  local text = fs.read(self.dir .. "/sim/api.log") or ""
  local out = {}
  for line in text:gmatch("[^\n]+") do out[#out + 1] = assert(json.decode(line)) end
  return out
end

function Node:target_spec(extra)
  local spec = { type = "pve", root = self.root, bin = self.bin }
  for k, v in pairs(extra or {}) do spec[k] = v end
  return spec
end

return M
