-- Fake sysfs/procfs/dev trees for px.gpu tests, laid out as the kernel does:
-- sys/bus/pci/devices/<addr> is a symlink into sys/devices/pci0000:00/,
-- a device's driver and iommu_group are symlinks, and
-- sys/kernel/iommu_groups/<n>/devices/<addr> link back to the devices.
local exec = require "px.exec"
local json = require "px.json"

local M = {}

-- The tree is written by one python3 process (px.fs.write fsyncs every
-- file, which makes a few hundred small files slow): dirs, then files,
-- then symlinks, then the overriding files.
local MAKER = [[
import json, os, sys
spec = json.load(sys.stdin)
for d in spec["dirs"]: os.makedirs(d, exist_ok=True)
def put(path, content):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    if os.path.lexists(path): os.remove(path)
    with open(path, "w") as f: f.write(content)
for path, content in spec["files"]: put(path, content)
for target, path in spec["links"]: os.symlink(target, path)
for path, content in spec["overrides"]: put(path, content)
]]

-- Host devices most machines have: a host bridge, a USB and a SATA controller.
M.host_devices = {
  { address = "0000:00:00.0", vendor = "8086", device = "3e30", class = "060000", iommu_group = 0 },
  { address = "0000:00:14.0", vendor = "8086", device = "a36d", class = "0c0330", driver = "xhci_hcd", iommu_group = 5 },
  { address = "0000:00:17.0", vendor = "8086", device = "a352", class = "010601", driver = "ahci", iommu_group = 6 },
}

-- Two NVIDIA RTX 3090s (10de:2204), each with its HDMI audio function.
function M.two_gpus(opts)
  opts = opts or {}
  local gpu_driver = opts.driver or "nvidia"
  local list = {
    { address = "0000:01:00.0", vendor = "10de", device = "2204", class = "030000", driver = gpu_driver, iommu_group = 12 },
    { address = "0000:01:00.1", vendor = "10de", device = "1aef", class = "040300", driver = "snd_hda_intel", iommu_group = 12 },
    { address = "0000:02:00.0", vendor = "10de", device = "2204", class = "030000", driver = opts.driver2 or gpu_driver, iommu_group = 13 },
    { address = "0000:02:00.1", vendor = "10de", device = "1aef", class = "040300", driver = "snd_hda_intel", iommu_group = 13 },
  }
  for _, d in ipairs(M.host_devices) do list[#list + 1] = d end
  return list
end

M.version_text = "NVRM version: NVIDIA UNIX x86_64 Kernel Module  580.76.05  Wed Jul 30 21:01:58 UTC 2025\n"
  .. "GCC version:  gcc version 12.2.0 (Debian 12.2.0-14)\n"

--[[ Builds a tree in dir from spec:
  devices = { {address, vendor, device, class, driver?, iommu_group?}, ... }
  iommu = true        -- create sys/kernel/iommu_groups from the devices' groups
  cmdline = "..."     -- proc/cmdline
  dev = { "nvidia0", "nvidiactl", ... }  -- files under dev/
  version = "..."     -- proc/driver/nvidia/version, verbatim
  modules = "..."     -- proc/modules, verbatim
  sys_modules = { "vfio", ... }          -- directories under sys/module
  files = { ["rel/path"] = "content" }   -- written last (malformed cases)
Returns dir. ]]
function M.build(dir, spec)
  local dirs, files, links, overrides = {}, {}, {}, {}
  local function mkdir(rel) dirs[#dirs + 1] = dir .. "/" .. rel end
  local function write(rel, content) files[#files + 1] = { dir .. "/" .. rel, content } end
  local function link(target, rel) links[#links + 1] = { target, dir .. "/" .. rel } end
  mkdir("sys/bus/pci/devices")
  mkdir("sys/module")
  local drivers = {}
  for _, d in ipairs(spec.devices or {}) do
    local real = "sys/devices/pci0000:00/" .. d.address
    write(real .. "/vendor", "0x" .. d.vendor .. "\n")
    write(real .. "/device", "0x" .. d.device .. "\n")
    write(real .. "/class", "0x" .. d.class .. "\n")
    link("../../../devices/pci0000:00/" .. d.address, "sys/bus/pci/devices/" .. d.address)
    if d.driver then
      if not drivers[d.driver] then
        mkdir("sys/bus/pci/drivers/" .. d.driver)
        drivers[d.driver] = true
      end
      link("../../../bus/pci/drivers/" .. d.driver, real .. "/driver")
    end
    if spec.iommu and d.iommu_group then
      local g = "sys/kernel/iommu_groups/" .. d.iommu_group
      mkdir(g .. "/devices")
      link("../../../../kernel/iommu_groups/" .. d.iommu_group, real .. "/iommu_group")
      link("../../../../devices/pci0000:00/" .. d.address, g .. "/devices/" .. d.address)
    end
  end
  if spec.cmdline then write("proc/cmdline", spec.cmdline .. "\n") end
  for _, name in ipairs(spec.dev or {}) do write("dev/" .. name, "") end
  if spec.version then write("proc/driver/nvidia/version", spec.version) end
  if spec.modules then write("proc/modules", spec.modules) end
  for _, m in ipairs(spec.sys_modules or {}) do mkdir("sys/module/" .. m) end
  for rel, content in pairs(spec.files or {}) do overrides[#overrides + 1] = { dir .. "/" .. rel, content } end
  local input = json.encode { dirs = json.array(dirs), files = json.array(files), links = json.array(links),
                              overrides = json.array(overrides) }
  local r = assert(exec.run { argv = { "/usr/bin/python3", "-c", MAKER }, stdin = input })
  assert(r.code == 0, r.stderr)
  return dir
end

return M
