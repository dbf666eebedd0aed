-- Parsing budget for px.pve: 1,000 guest config files (800 CTs, 200 VMs,
-- shaped like a real site's: descriptions, tags, mount points, raw lxc
-- lines, a pending section, snapshot trees) must parse in under 50 ms.
--
--   build/phoenix lua bench/pve-parse/run.lua [count] [dir]
--
-- Writes the files under dir (default: a fresh directory in /tmp), then
-- times reading + parsing them all, best of 5 runs. Exits 1 over budget.
local pve = require "px.pve"
local fs = require "px.fs"
local sys = require "px.sys"

local COUNT = tonumber(arg[1]) or 1000
local DIR = arg[2] or ("/tmp/phoenix-bench-pve-" .. sys.pid())
local BUDGET_MS = 50 * COUNT / 1000 -- 50 ms per 1,000 files

local function ct_config(id)
  local t = {
    "#Phoenix-managed container " .. id .. "%3A web tier",
    "#owner%3A platform team, 100%25 automated",
    "arch: amd64",
    "cores: " .. (id % 8 + 1),
    "features: nesting=1,keyctl=1",
    "hostname: ct" .. id,
    "memory: " .. (512 * (id % 8 + 1)),
    "mp0: /mnt/pve/shared/" .. id .. ",mp=/srv/shared,backup=0",
    "mp1: local-zfs:subvol-" .. id .. "-disk-1,mp=/data,size=32G",
    "net0: name=eth0,bridge=vmbr0,firewall=1,gw=10.0.0.1,hwaddr=BC:24:11:" ..
      string.format("%02X:%02X:%02X", id % 256, (id // 256) % 256, 7) .. ",ip=10.0." .. (id % 250) .. ".10/24,type=veth",
    "onboot: 1",
    "ostype: debian",
    "rootfs: local-zfs:subvol-" .. id .. "-disk-0,size=8G",
    "startup: order=" .. (id % 10) .. ",up=30",
    "swap: 512",
    "tags: phoenix;web",
    "unprivileged: 1",
    "lxc.cgroup2.devices.allow: c 226:0 rwm",
    "lxc.mount.entry: /dev/dri dev/dri none bind,optional,create=dir",
  }
  if id % 4 == 0 then
    t[#t + 1] = ""
    t[#t + 1] = "[pve:pending]"
    t[#t + 1] = "delete: swap"
    t[#t + 1] = "memory: 4096"
  end
  for s = 1, id % 3 do
    t[#t + 1] = ""
    t[#t + 1] = "[snap" .. s .. "]"
    t[#t + 1] = "#before change " .. s
    t[#t + 1] = "arch: amd64"
    t[#t + 1] = "cores: 2"
    t[#t + 1] = "hostname: ct" .. id
    t[#t + 1] = "memory: 1024"
    if s > 1 then t[#t + 1] = "parent: snap" .. (s - 1) end
    t[#t + 1] = "rootfs: local-zfs:subvol-" .. id .. "-disk-0,size=8G"
    t[#t + 1] = "snaptime: " .. (1700000000 + s * 3600)
  end
  return table.concat(t, "\n") .. "\n"
end

local function vm_config(id)
  local t = {
    "#Docker host " .. id,
    "agent: enabled=1,fstrim_cloned_disks=1",
    "boot: order=scsi0;ide2;net0",
    "cores: 4",
    "cpu: host",
    "ide2: local-lvm:vm-" .. id .. "-cloudinit,media=cdrom",
    "ipconfig0: ip=10.1." .. (id % 250) .. ".20/24,gw=10.1.0.1",
    "memory: 8192",
    "name: vm" .. id,
    "net0: virtio=BC:24:11:AA:" .. string.format("%02X:%02X", id % 256, (id // 256) % 256) .. ",bridge=vmbr0,firewall=1",
    "numa: 0",
    "ostype: l26",
    "scsi0: local-lvm:vm-" .. id .. "-disk-0,discard=on,iothread=1,size=32G",
    "scsi1: local-lvm:vm-" .. id .. "-disk-1,iothread=1,size=100G",
    "scsihw: virtio-scsi-single",
    "smbios1: uuid=5b6e9a4e-6a49-4a6f-9d8e-2f0c3a1b7c11",
    "sockets: 1",
    "tags: docker;phoenix",
    "vmgenid: 7079e97c-50e3-4079-afe7-23e67566b946",
  }
  if id % 5 == 0 then t[#t + 1] = "hostpci0: 0000:01:00.0;0000:01:00.1,pcie=1,x-vga=1" end
  t[#t + 1] = ""
  t[#t + 1] = "[special:cloudinit]"
  t[#t + 1] = "ipconfig0: ip=10.1." .. (id % 250) .. ".20/24,gw=10.1.0.1"
  t[#t + 1] = "name: vm" .. id
  if id % 2 == 0 then
    t[#t + 1] = ""
    t[#t + 1] = "[base]"
    t[#t + 1] = "cores: 4"
    t[#t + 1] = "memory: 8192"
    t[#t + 1] = "scsi0: local-lvm:vm-" .. id .. "-disk-0,discard=on,iothread=1,size=32G"
    t[#t + 1] = "snaptime: 1700000000"
    t[#t + 1] = "vmstate: local-lvm:vm-" .. id .. "-state-base"
  end
  return table.concat(t, "\n") .. "\n"
end

-- write the files
assert(fs.mkdir(DIR .. "/lxc", { parents = true }))
assert(fs.mkdir(DIR .. "/qemu-server", { parents = true }))
local files = {}
local n_vm = COUNT // 5
for i = 1, COUNT do
  local vm = i <= n_vm
  local id = 100 + i
  local path = DIR .. (vm and "/qemu-server/" or "/lxc/") .. id .. ".conf"
  local text = vm and vm_config(id) or ct_config(id)
  assert(fs.write(path, text))
  files[#files + 1] = { path = path, kind = vm and "qemu" or "lxc" }
end

local function run()
  local t0 = sys.monotonic()
  local keys = 0
  for _, f in ipairs(files) do
    local cfg = assert(pve.parse_config(assert(fs.read(f.path)), f.kind))
    assert(#cfg.warnings == 0, f.path .. ": " .. tostring(cfg.warnings[1]))
    for _ in pairs(cfg.main) do keys = keys + 1 end
  end
  return (sys.monotonic() - t0) * 1000, keys
end

local best, keys = math.huge, 0
for _ = 1, 5 do
  collectgarbage()
  local ms
  ms, keys = run()
  best = math.min(best, ms)
end

-- parse only (texts already in memory), for comparison
local texts = {}
for i, f in ipairs(files) do texts[i] = assert(fs.read(f.path)) end
local parse_best = math.huge
for _ = 1, 5 do
  collectgarbage()
  local t0 = sys.monotonic()
  for i, f in ipairs(files) do pve.parse_config(texts[i], f.kind) end
  parse_best = math.min(parse_best, (sys.monotonic() - t0) * 1000)
end

for _, f in ipairs(files) do fs.remove(f.path) end
fs.remove(DIR .. "/lxc")
fs.remove(DIR .. "/qemu-server")
fs.remove(DIR)
print(string.format("pve-parse: %d configs (%d CT, %d VM), %d options: read+parse %.1f ms, parse only %.1f ms " ..
  "(budget %.0f ms) %s", COUNT, COUNT - n_vm, n_vm, keys, best, parse_best, BUDGET_MS,
  best < BUDGET_MS and "OK" or "OVER BUDGET"))
os.exit(best < BUDGET_MS and 0 or 1)
