-- Reading guests over the REST API (the pve-api target) against the
-- simulator's API stand-in (pve-sim serve, plain HTTP here):
-- N containers declared, each read the way a no-op converge reads it
-- (one /cluster/resources for all, then config + pending + snapshot per
-- guest, sent together), with -j 1 and -j 4. Prints requests and wall time.
--
--   PHOENIX_SOURCE_DIR=$PWD build/phoenix lua bench/pve-api/run.lua [N] [dir] [latency_ms]
--
-- latency_ms is added to every simulator tool call (sim.json latency_ms),
-- standing in for a remote node's round trip.
--
-- The stand-in answers each request by running the simulator's Python
-- tools (~50-250 ms here), so the wall figures are the stand-in's; the
-- request count is phoenix's own and is the budget: 1 + 3N.
local targets = require "phoenix.target"
local scheduler = require "phoenix.scheduler"
local exec = require "px.exec"
local fs = require "px.fs"
local sys = require "px.sys"

local N = tonumber(arg[1]) or 20
local LATENCY = tonumber(arg[3]) or 0
local DIR = arg[2] or ("/tmp/phoenix-bench-pve-api-" .. sys.pid())
local SRC = sys.getenv("PHOENIX_SOURCE_DIR") or "."
local TOKEN = "root@pam!bench=0b5e1c3a-bench-token"

local function run(argv)
  local r = assert(exec.run({ argv = argv, timeout_ms = 120000 }))
  if r.code ~= 0 then error(table.concat(argv, " ") .. ": " .. r.stderr) end
  return r
end

local function ct_conf(id)
  return table.concat({ "arch: amd64", "cores: 2", "hostname: ct" .. id, "memory: 1024",
    "net0: name=eth0,bridge=vmbr0,ip=dhcp,type=veth", "ostype: debian",
    "rootfs: local-zfs:subvol-" .. id .. "-disk-0,size=8G", "tags: phoenix", "unprivileged: 1", "" }, "\n")
end

run({ "rm", "-rf", DIR })
run({ SRC .. "/tests/pve-sim/pve-sim", "init", DIR })
for i = 1, N do
  assert(fs.write(string.format("%s/root/etc/pve/nodes/pve/lxc/%d.conf", DIR, 200 + i), ct_conf(200 + i)))
end
if LATENCY > 0 then
  local json = require "px.json"
  local sim = assert(json.decode(assert(fs.read(DIR .. "/sim/sim.json"))))
  sim.latency_ms = LATENCY
  assert(fs.write(DIR .. "/sim/sim.json", json.encode(sim)))
end
local server = assert(exec.spawn({ argv = { SRC .. "/tests/pve-sim/pve-sim", "serve", DIR, "--port", "0", "--token", TOKEN },
  stdout = "null", stderr = "null" }))
local port
for _ = 1, 300 do
  port = math.tointeger(tonumber(fs.read(DIR .. "/sim/api.port") or ""))
  if port then break end
  sys.sleep(0.05)
end
assert(port, "pve-sim serve did not come up")

-- The target speaks https only; the stand-in serves http here, so the
-- client's base URL is pointed at it after opening.
local function open()
  local spec = { type = "pve-api", host = "127.0.0.1", port = tostring(port), token = TOKEN }
  local client = require "phoenix.target.pve_api.client"
  local new = client.new
  client.new = function(o)
    local c = new(o)
    c.base = c.base:gsub("^https:", "http:")
    return c
  end
  local t = assert(targets.open(spec))
  client.new = new
  return t
end

local function pass(jobs)
  local t = open()
  local before = t.api.requests
  local t0 = sys.monotonic()
  local i = 0
  scheduler.run({ jobs = jobs,
    next = function()
      i = i + 1
      if i > N then return nil end
      local id = 200 + i
      return { id = id, fn = function() return assert(t:guest(id)) end }
    end,
    done = function(_, ok, v) assert(ok, v) end })
  return t.api.requests - before, sys.monotonic() - t0
end

local ok, err = pcall(function()
  for _, jobs in ipairs({ 1, 4 }) do
    local reqs, secs = pass(jobs)
    print(string.format("%d guests, -j %d: %d requests (budget %d), %.2f s", N, jobs, reqs, 1 + 3 * N, secs))
    if reqs > 1 + 3 * N then error("over budget") end
  end
end)
server:kill("TERM")
server:wait(5000)
run({ "rm", "-rf", DIR })
if not ok then
  io.stderr:write(tostring(err), "\n")
  os.exit(1)
end
