-- Inspection budget for the pve target: 100 CTs + 20 VMs on the simulator
-- with 300 ms injected into every tool call must be inspected (configs,
-- live state, storages, ZFS) in at most 4 tool calls and under 1.5 s wall
-- (the three batches at once, as tasks under the scheduler, and in series).
-- Beside it, the per-guest way (`pct config` per CT, `qm config` per VM)
-- measured the same way: one after another, and 4 at a time.
--
--   build/phoenix lua bench/pve-inspect/run.lua [latency_ms] [dir]
--
-- Writes the guests' config files straight into a fresh `pve-sim init`
-- node in the simulator's real format (creating 120 guests through the
-- simulator would take minutes); the simulator reads them back, which the
-- per-guest pass checks (exit 0, no warnings). Exits 1 over budget.
local targets = require "phoenix.target"
local scheduler = require "phoenix.scheduler"
local async = require "phoenix.async"
local exec = require "px.exec"
local fs = require "px.fs"
local json = require "px.json"
local sys = require "px.sys"

local LATENCY = tonumber(arg[1]) or 300
local DIR = arg[2] or ("/tmp/phoenix-bench-pve-inspect-" .. sys.pid())
local SRC = sys.getenv("PHOENIX_SOURCE_DIR") or "."
local N_CT, N_VM = 100, 20
local BUDGET_CALLS, BUDGET_S = 4, 1.5

local function mac(a, b) return string.format("BC:24:11:%02X:%02X:%02X", a, b // 256, b % 256) end

local function ct_conf(id)
  return table.concat({
    "#container " .. id .. "%3A web tier",
    "arch: amd64",
    "cores: " .. (id % 4 + 1),
    "features: nesting=1",
    "hostname: ct" .. id,
    "memory: " .. (512 * (id % 4 + 1)),
    "net0: name=eth0,bridge=vmbr0,firewall=1,hwaddr=" .. mac(1, id) .. ",ip=dhcp,type=veth",
    "onboot: 1",
    "ostype: debian",
    "rootfs: local-zfs:subvol-" .. id .. "-disk-0,size=8G",
    "swap: 512",
    "tags: " .. (id % 2 == 0 and "phoenix;web" or "web"),
    "unprivileged: 1",
    "",
  }, "\n")
end

local function vm_conf(id)
  return table.concat({
    "agent: 1",
    "boot: order=scsi0;net0",
    "cores: 4",
    "memory: 8192",
    "name: vm" .. id,
    "net0: virtio=" .. mac(2, id) .. ",bridge=vmbr0,firewall=1",
    "ostype: l26",
    "scsi0: local-zfs:vm-" .. id .. "-disk-0,iothread=1,size=32G",
    "scsihw: virtio-scsi-single",
    "tags: phoenix",
    "",
  }, "\n")
end

local function must(r, what)
  if not r or r.code ~= 0 then
    io.stderr:write(what .. " failed: " .. (r and (r.stderr .. r.stdout) or "did not start") .. "\n")
    os.exit(2)
  end
  return r
end

-- The node: 100 CTs (ids 1000..1099; every third running) and 20 VMs
-- (2000..2019; every second running), with their ZFS volumes.
local function make_node()
  must(exec.run({ argv = { SRC .. "/tests/pve-sim/pve-sim", "init", DIR, "--force" } }), "pve-sim init")
  local nd = DIR .. "/root/etc/pve/nodes/pve"
  local runtime = { guests = {}, next_pid = 5000 }
  local datasets = {}
  for i = 0, N_CT - 1 do
    local id = 1000 + i
    assert(fs.write(string.format("%s/lxc/%d.conf", nd, id), ct_conf(id)))
    if i % 3 == 0 then runtime.guests[tostring(id)] = { pid = 5000 + i, started = os.time(), type = "lxc" } end
    datasets[#datasets + 1] = "rpool/data/subvol-" .. id .. "-disk-0"
  end
  for i = 0, N_VM - 1 do
    local id = 2000 + i
    assert(fs.write(string.format("%s/qemu-server/%d.conf", nd, id), vm_conf(id)))
    if i % 2 == 0 then runtime.guests[tostring(id)] = { pid = 6000 + i, started = os.time(), type = "qemu" } end
    datasets[#datasets + 1] = "rpool/data/vm-" .. id .. "-disk-0"
  end
  assert(fs.write(DIR .. "/sim/runtime.json", json.encode(runtime)))
  -- the volumes as `zfs create` would have made them
  for _, ds in ipairs(datasets) do
    local argv = { DIR .. "/bin/zfs", "create" }
    if ds:find("/vm%-") then
      argv[#argv + 1] = "-s" -- sparse, as local-zfs is
      argv[#argv + 1] = "-V"
      argv[#argv + 1] = "32G"
    else
      argv[#argv + 1] = "-o"
      argv[#argv + 1] = "refquota=8G"
    end
    argv[#argv + 1] = ds
    must(exec.run({ argv = argv }), "zfs create " .. ds)
  end
  local sim = assert(json.decode(assert(fs.read(DIR .. "/sim/sim.json"))))
  sim.latency_ms = LATENCY
  assert(fs.write(DIR .. "/sim/sim.json", json.encode(sim)))
  return datasets
end

local function calls()
  local n = 0
  for _ in (fs.read(DIR .. "/sim/calls.log") or ""):gmatch("[^\n]+") do n = n + 1 end
  return n
end

-- what the simulator says each of the last n calls took (latency included)
local function call_ms(n)
  local lines = {}
  for line in (fs.read(DIR .. "/sim/calls.log") or ""):gmatch("[^\n]+") do lines[#lines + 1] = line end
  local out = {}
  for i = math.max(1, #lines - n + 1), #lines do
    local c = assert(json.decode(lines[i]))
    out[#out + 1] = string.format("%s %.0f ms", c.tool, c.ms)
  end
  return table.concat(out, ", ")
end

local function tasks(fns, jobs)
  local i = 0
  local failed
  scheduler.run({ jobs = jobs,
    next = function() i = i + 1 return fns[i] and { id = i, fn = fns[i] } end,
    done = function(_, ok, err) if not ok then failed = err end end })
  if failed then error(failed, 0) end
end

-- phoenix's way: a run's inspection pass, the three batches `jobs` at once
local function batched(datasets, jobs)
  local before = calls()
  local t0 = sys.monotonic()
  local t = assert(targets.open({ type = "pve", root = DIR .. "/root", bin = DIR .. "/bin" }))
  local inv, storages, zfs
  tasks({
    function() inv = assert(t:inventory()) end,
    function() storages = assert(t:storages()) end,
    function() zfs = assert(t:zfs_get(datasets, { "used", "refquota", "volsize", "compression" })) end,
  }, jobs)
  local running, guests, ds = 0, 0, 0
  for _, g in pairs(inv.guests) do
    guests = guests + 1
    if g.status == "running" then running = running + 1 end
    assert(#g.conf.warnings == 0, g.file .. ": " .. tostring(g.conf.warnings[1]))
  end
  for _ in pairs(zfs) do ds = ds + 1 end
  local wall = sys.monotonic() - t0
  assert(guests == N_CT + N_VM, "inventory has " .. guests .. " guests")
  assert(ds == #datasets, "zfs_get saw " .. ds .. " datasets")
  assert(#storages == 2)
  return wall, calls() - before, running
end

-- the per-guest way: one `pct config` / `qm config` per guest, `jobs` at once
local function per_guest(jobs)
  local before = calls()
  local t0 = sys.monotonic()
  local fns = {}
  for i = 0, N_CT + N_VM - 1 do
    local tool, id = "pct", 1000 + i
    if i >= N_CT then tool, id = "qm", 2000 + i - N_CT end
    fns[#fns + 1] = function()
      local r = async.run({ argv = { DIR .. "/bin/" .. tool, "config", tostring(id) } })
      must(r, tool .. " config " .. id)
      assert(r.stderr == "", tool .. " config " .. id .. " warned: " .. r.stderr)
    end
  end
  tasks(fns, jobs)
  return sys.monotonic() - t0, calls() - before
end

local datasets = make_node()
local wall, n, running = batched(datasets, 3)
local inside = call_ms(n)
local wall1, n1b = batched(datasets, 1)
local s1, n1 = per_guest(1)
local s4, n4 = per_guest(4)
exec.run({ argv = { "rm", "-rf", DIR } })

print(string.format("pve target inspection: %d CTs + %d VMs (%d running), %d datasets, %d ms per tool call",
  N_CT, N_VM, running, #datasets, LATENCY))
print(string.format("%-52s %8s %8s   %s", "way", "calls", "wall", "budget"))
print(string.format("%-52s %8d %7.2fs   <= %d calls, < %.1f s", "phoenix: files + 1 pvesh + 1 pvesm + 1 zfs get",
  n, wall, BUDGET_CALLS, BUDGET_S))
print(string.format("%-52s %8d %7.2fs", "phoenix: the same three batches one after another", n1b, wall1))
print("  (the simulator's own time per batched call: " .. inside .. ")")
print(string.format("%-52s %8d %7.2fs", "per guest: pct/qm config, one after another", n1, s1))
print(string.format("%-52s %8d %7.2fs", "per guest: pct/qm config, 4 at a time", n4, s4))
if n > BUDGET_CALLS or wall >= BUDGET_S then
  print("OVER BUDGET")
  os.exit(1)
end
