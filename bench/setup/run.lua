-- Bench: a no-op `phoenix setup` on the Proxmox simulator with 20 datasets
-- and 10 NFS exports. Budget: at most one `zfs get`, and no writes (every
-- file under the node's root keeps its inode and mtime; no tool that
-- changes anything runs). Prints the tool calls and the best wall time.
-- Usage: build/phoenix lua bench/setup/run.lua [BUILD_DIR] [RUNS]
local exec = require "px.exec"
local fs = require "px.fs"
local json = require "px.json"
local sys = require "px.sys"

local src = require("px").home
local build = arg[1] or (src .. "/build")
local runs = tonumber(arg[2] or "5")
local phoenix = build .. "/phoenix"
local dir = string.format("/tmp/phoenix-bench-setup-%d", sys.pid())

local function run(argv, o)
  o = o or {}
  o.argv = argv
  o.timeout_ms = o.timeout_ms or 300000
  local r = assert(exec.run(o))
  if r.code ~= 0 and not o.check_free then error(table.concat(argv, " ") .. ": " .. r.stderr .. r.stdout) end
  return r
end

local function write(p, text)
  fs.mkdir(p:match("^(.*)/[^/]*$"), { parents = true })
  assert(fs.write(p, text))
end

run({ "rm", "-rf", dir })
run({ src .. "/tests/pve-sim/pve-sim", "init", dir .. "/sim" })
local root, bin = dir .. "/sim/root", dir .. "/sim/bin"

-- the site: one pool, 20 datasets (4 of them Proxmox storages), 10 exports
local datasets, exports = {}, {}
for i = 1, 20 do
  local ds = { name = string.format("ds%02d", i), pool = "tank",
    properties = string.format("recordsize=%dK,compression=%s,quota=%dG", i % 2 == 0 and 64 or 128,
      i % 3 == 0 and "lzjb" or "gzip", i) }
  if i <= 2 then ds.proxmox_storage_type, ds.proxmox_content_type = "zfspool", "images,rootdir" end
  if i == 3 or i == 4 then ds.proxmox_storage_type, ds.proxmox_content_type = "dir", "iso,vztmpl,backup" end
  datasets[#datasets + 1] = ds
  if i > 10 then
    exports[#exports + 1] = { path = "/tank/" .. ds.name, clients = { "192.168.10.0/24" }, options = { "rw", "sync", "no_subtree_check" } }
    fs.mkdir(root .. "/tank/" .. ds.name, { parents = true }) -- where the simulator's dataset would be mounted
  end
end
write(dir .. "/site/phoenix_hypervisor_config.json", json.encode({
  domain_name = "lab.example.lan",
  zfs = { arc_max_gb = 4, pools = { { name = "tank", raid_level = "mirror",
    disks = { "/dev/disk/by-id/ata-BENCH_1", "/dev/disk/by-id/ata-BENCH_2" } } }, datasets = datasets },
  nfs = { exports = exports },
  network = { interfaces = { name = "vmbr0", address = "192.168.10.2/24", gateway = "192.168.10.1", ports = "enp3s0" } },
  firewall = { enabled = true, default_input_policy = "DROP", global_firewall_rules = {
    { type = "in", action = "ACCEPT", source = "192.168.10.0/24", proto = "tcp", port = "22,8006" } } },
  dns_server = { enabled = true, upstream_servers = { "1.1.1.1" }, authoritative_zones = { "lab.example.lan" } },
}))
for i = 1, 2 do
  write(root .. "/dev/disk/by-id/ata-BENCH_" .. i, "")
  run({ "truncate", "-s", "64M", root .. "/dev/disk/by-id/ata-BENCH_" .. i })
end
write(root .. "/etc/network/interfaces", "auto lo\niface lo inet loopback\n")
write(root .. "/sys/module/zfs/parameters/zfs_arc_max", "0\n")
-- host tools the simulator lacks: recording stand-ins
for _, t in ipairs({ "ifreload", "exportfs", "systemctl", "update-initramfs", "dnsmasq" }) do
  assert(fs.write(bin .. "/" .. t, "#!/bin/sh\necho " .. t .. " \"$@\" >> " .. dir .. "/host-calls.log\n", { mode = "0755" }))
end

local function setup(extra)
  local argv = { phoenix, "setup", "--config-dir", dir .. "/site", "--target", "pve", "--target-opt", "root=" .. root,
    "--target-opt", "bin=" .. bin, "--lock-file", dir .. "/lock", "--json" }
  for _, a in ipairs(extra or {}) do argv[#argv + 1] = a end
  local t0 = sys.monotonic()
  local r = run(argv)
  return json.decode(r.stdout), sys.monotonic() - t0
end

-- every file under the root: inode, mtime, size
local function snapshot(path, out)
  out = out or {}
  for _, name in ipairs(fs.list(path) or {}) do
    local p = path .. "/" .. name
    local st = fs.stat(p, { follow = false })
    if st then
      out[p] = string.format("%d %.6f %d", st.ino, st.mtime, st.size)
      if st.type == "dir" then snapshot(p, out) end
    end
  end
  return out
end

local doc = setup()
assert(doc.summary.failed == 0, "first run failed: " .. json.encode(doc.summary))
print(string.format("first run: %d resources, %d changes", doc.summary.resources, doc.summary.changes))

local before = snapshot(root)
local best, ok = math.huge, true
local tools = {}
for i = 1, runs do
  fs.write(dir .. "/sim/sim/calls.log", "")
  fs.write(dir .. "/host-calls.log", "")
  local d, secs = setup()
  if d.summary.changes ~= 0 then ok = false print("run " .. i .. ": " .. d.summary.changes .. " changes") end
  if secs < best then best = secs end
  tools = {}
  for line in (fs.read(dir .. "/sim/sim/calls.log") or ""):gmatch("[^\n]+") do
    local c = json.decode(line)
    local key = c.argv[1] .. " " .. (c.argv[2] or "")
    tools[key] = (tools[key] or 0) + 1
  end
  if (tools["zfs get"] or 0) > 1 then ok = false end
  if (fs.read(dir .. "/host-calls.log") or "") ~= "" then ok = false print("host tools ran: " .. fs.read(dir .. "/host-calls.log")) end
end
local after = snapshot(root)
local written = {}
for p, v in pairs(after) do if before[p] ~= v then written[#written + 1] = p end end
for p in pairs(before) do if not after[p] then written[#written + 1] = p .. " (removed)" end end
table.sort(written)
local keys = {}
for k in pairs(tools) do keys[#keys + 1] = k end
table.sort(keys)
print(string.format("no-op setup, %d resources (20 datasets, 10 exports), best of %d: %.3f s", doc.summary.resources, runs, best))
for _, k in ipairs(keys) do print(string.format("  %-16s %d call(s)", k, tools[k])) end
print(string.format("  files under the root written: %d of %d", #written, (function() local n = 0 for _ in pairs(after) do n = n + 1 end return n end)()))
for _, p in ipairs(written) do print("    " .. p) end
run({ "rm", "-rf", dir })
if not ok or #written > 0 then
  print("BUDGET EXCEEDED: at most one zfs get and no writes")
  os.exit(1)
end
print("budget met: at most one zfs get, no writes")
