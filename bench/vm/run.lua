-- VM converge benchmark (issue 7): a site of 20 VMs cloned from one
-- template, on a pve-sim node that sleeps LATENCY ms in every tool call.
-- Measures a cold converge with -j 1 and with -j 4 (each on a fresh node)
-- and a no-op converge, counting tool calls from the node's calls.log.
--
-- usage: phoenix lua bench/vm/run.lua [SOURCE_DIR] [VMS] [LATENCY_MS]
local exec = require "px.exec"
local fs = require "px.fs"
local json = require "px.json"
local px = require "px"
local sys = require "px.sys"

local src = arg[1] or "."
local count = tonumber(arg[2] or "20")
local latency = tonumber(arg[3] or "300")
local work = string.format("/tmp/phoenix-bench-vm-%d", sys.pid())

local function run(argv, opts)
  local r = assert(exec.run({ argv = argv, timeout_ms = 3600000, inherit_env = true, env = opts and opts.env }))
  if r.code ~= 0 then error(table.concat(argv, " ") .. " exited " .. r.code .. ":\n" .. r.stdout .. r.stderr, 2) end
  return r
end

local function qcow2(gib)
  return "QFI\251" .. string.pack(">I4", 3) .. string.rep("\0", 16) .. string.pack(">I8", gib * 1024 ^ 3 // 1)
end

-- A fresh node with the cloud image and the latency.
local function node(dir)
  run({ src .. "/tests/pve-sim/pve-sim", "init", dir, "--force", "--latency-ms", tostring(latency) })
  local iso = dir .. "/root/var/lib/vz/template/iso"
  assert(fs.mkdir(iso))
  assert(fs.write(iso .. "/noble-server-cloudimg-amd64.img", qcow2(2)))
end

local function site(dir)
  assert(fs.mkdir(dir))
  assert(fs.write(dir .. "/phoenix_hypervisor_config.json", json.encode({ domain_name = "bench.lan" })))
  assert(fs.write(dir .. "/phoenix_vm_configs.json", json.encode({
    vm_defaults = { cores = 2, memory_mb = 2048, disk_size_gb = 16, storage_pool = "local-zfs", network_bridge = "vmbr0" },
    vms = {
      { vmid = 9000, name = "tmpl", is_template = true, template_image = "noble-server-cloudimg-amd64.img",
        network_config = { ip = "dhcp", nameserver = "10.0.0.1" }, user_config = { username = "ops" } },
      { vmid = 2001, name = "node", clone_from_vmid = 9000, count = count, start_at_boot = true,
        network_config = { ip = "10.20.0.10/24", gw = "10.20.0.1", nameserver = "10.0.0.1" },
        user_config = { username = "ops", ssh_public_key = "ssh-ed25519 AAAAC3Nza bench@phoenix" } },
    },
  })))
end

-- calls(dir) -> number of tool calls, and the seconds they spent in all
-- (each call's own time, latency included: summed over overlapping calls)
local function calls(dir)
  local n, busy = 0, 0
  for line in (fs.read(dir .. "/sim/calls.log") or ""):gmatch("[^\n]+") do
    n = n + 1
    busy = busy + assert(json.decode(line)).ms / 1000
  end
  return n, busy
end

local function converge(nodedir, sitedir, jobs)
  fs.write(nodedir .. "/sim/calls.log", "")
  local t0 = sys.monotonic()
  local r = run({ px.exe, "converge", "--config-dir", sitedir, "-j", tostring(jobs), "-q",
    "--target", "pve", "--target-opt", "root=" .. nodedir .. "/root", "--target-opt", "bin=" .. nodedir .. "/bin",
    "--lock-file", work .. "/lock" })
  local wall = sys.monotonic() - t0
  local n, busy = calls(nodedir)
  return wall, n, busy, r.stdout
end

run({ "rm", "-rf", work })
assert(fs.mkdir(work))
site(work .. "/site")
print(string.format("VM converge: 1 template + %d clones, pve-sim latency %d ms per tool call", count, latency))
local results = {}
for _, jobs in ipairs({ 1, 4 }) do
  local nd = work .. "/node-j" .. jobs
  node(nd)
  local wall, n, busy = converge(nd, work .. "/site", jobs)
  results[jobs] = wall
  print(string.format("cold converge -j %d: %7.1f s wall, %3d tool calls, %.2f s per call, %.1f calls in flight",
    jobs, wall, n, busy / n, busy / wall))
end
print(string.format("speed-up -j 4 over -j 1: %.2fx", results[1] / results[4]))
local wall, n = converge(work .. "/node-j4", work .. "/site", 4)
print(string.format("no-op converge -j 4: %7.1f s wall, %3d tool calls (budget: 4)", wall, n))
run({ "rm", "-rf", work })
