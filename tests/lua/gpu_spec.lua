-- px.gpu against fake sysfs/procfs/dev trees (tests/helpers/fake_sysfs.lua).
local gpu = require "px.gpu"
local fake = require "fake_sysfs"
local servers = require "servers"

local IOMMU_CMDLINE = "BOOT_IMAGE=/boot/vmlinuz-6.8.12-4-pve root=/dev/mapper/pve-root ro quiet intel_iommu=on iommu=pt"
local NODES = { "nvidia1", "nvidia-uvm", "nvidiactl", "nvidia0", "nvidia-uvm-tools", "nvidia-modeset", "null" }

local function addresses(devices)
  local out = {}
  for _, d in ipairs(devices) do out[#out + 1] = d.address end
  return out
end

local function by_address(devices, address)
  for _, d in ipairs(devices) do if d.address == address then return d end end
end

describe("px.gpu", function()
  local base, n = nil, 0
  setup(function() base = servers.tmpdir("gpu") end)
  teardown(function() if base then servers.run { "rm", "-rf", base } end end)

  local function tree(spec)
    n = n + 1
    return fake.build(base .. "/t" .. n, spec)
  end

  it("finds two NVIDIA GPUs with their audio functions, IOMMU on", function()
    local root = tree { devices = fake.two_gpus(), iommu = true, cmdline = IOMMU_CMDLINE, dev = NODES,
                        version = fake.version_text,
                        modules = "nvidia_uvm 1 0 - Live 0x0\nnvidia 2 1 nvidia_uvm, Live 0x0\n" }
    local f = assert(gpu.scan { root = root })
    assert.same({ "0000:01:00.0", "0000:01:00.1", "0000:02:00.0", "0000:02:00.1" }, addresses(f.devices))
    assert.same({ address = "0000:01:00.0", vendor = "10de", device = "2204", class = "030000", kind = "display",
                  driver = "nvidia", iommu_group = 12, vendor_name = "NVIDIA" }, f.devices[1])
    assert.equals("audio", f.devices[2].kind)
    assert.equals("snd_hda_intel", f.devices[2].driver)
    assert.equals(13, f.devices[4].iommu_group)
    assert.is_true(f.iommu_enabled)
    assert.is_true(f.iommu_cmdline)
    assert.equals(IOMMU_CMDLINE, f.cmdline)
    assert.same({ "/dev/nvidia0", "/dev/nvidia1", "/dev/nvidia-modeset", "/dev/nvidia-uvm", "/dev/nvidia-uvm-tools",
                  "/dev/nvidiactl" }, f.nvidia_devices)
    assert.same({ 0, 1 }, f.nvidia_gpus)
    assert.equals("580.76.05", f.driver_version)
    assert.same({}, f.vfio_modules)
    assert.same({}, f.problems)
  end)

  it("lists every PCI device with all = true", function()
    local root = tree { devices = fake.two_gpus(), iommu = true }
    local f = assert(gpu.scan { root = root, all = true })
    assert.same({ "0000:00:00.0", "0000:00:14.0", "0000:00:17.0", "0000:01:00.0", "0000:01:00.1", "0000:02:00.0",
                  "0000:02:00.1" }, addresses(f.devices))
    local bridge = by_address(f.devices, "0000:00:00.0")
    assert.equals("bridge", bridge.kind)
    assert.is_nil(bridge.driver)
    assert.equals("usb", by_address(f.devices, "0000:00:14.0").kind)
  end)

  it("reports IOMMU off: no groups, no kernel flags", function()
    local root = tree { devices = fake.two_gpus(), iommu = false, cmdline = "BOOT_IMAGE=/vmlinuz ro quiet" }
    local f = assert(gpu.scan { root = root })
    assert.is_false(f.iommu_enabled)
    assert.is_false(f.iommu_cmdline)
    assert.is_nil(f.devices[1].iommu_group)
    assert.is_nil(f.driver_version)
    assert.same({}, f.nvidia_devices)
    local g, err = gpu.iommu_group(root, 12)
    assert.is_nil(g)
    assert.equals(root .. "/sys/kernel/iommu_groups/12/devices: no such IOMMU group", err)
    -- amd_iommu=on alone counts; "iommu=ptx" does not
    root = tree { devices = {}, cmdline = "ro amd_iommu=on" }
    assert.is_true(gpu.scan { root = root }.iommu_cmdline)
    root = tree { devices = {}, cmdline = "ro iommu=ptx intel_iommu=off" }
    assert.is_false(gpu.scan { root = root }.iommu_cmdline)
  end)

  it("shows a host device sharing a GPU's IOMMU group", function()
    local devices = fake.two_gpus()
    for _, d in ipairs(devices) do
      if d.address == "0000:00:14.0" then d.iommu_group = 13 end
    end
    local root = tree { devices = devices, iommu = true, cmdline = IOMMU_CMDLINE }
    assert.same({ "0000:01:00.0", "0000:01:00.1" }, gpu.iommu_group(root, 12))
    local members = gpu.iommu_group(root, 13)
    assert.same({ "0000:00:14.0", "0000:02:00.0", "0000:02:00.1" }, members)
    local usb = assert(gpu.device(root, members[1]))
    assert.equals("0c0330", usb.class)
    assert.equals("xhci_hcd", usb.driver)
    assert.equals(13, usb.iommu_group)
  end)

  it("tells vfio-pci from nvidia and lists the vfio modules", function()
    local root = tree { devices = fake.two_gpus { driver = "nvidia", driver2 = "vfio-pci" }, iommu = true,
                        modules = "vfio_pci 16384 0 - Live 0x0\nvfio_pci_core 94208 1 vfio_pci, Live 0x0\n"
                                  .. "kvm 1 0 - Live 0x0\nvfio_iommu_type1 45056 0 - Live 0x0\n",
                        sys_modules = { "vfio", "vfio_pci", "kvm" } }
    local f = assert(gpu.scan { root = root })
    assert.equals("nvidia", f.devices[1].driver)
    assert.equals("vfio-pci", f.devices[3].driver)
    assert.same({ "vfio", "vfio_iommu_type1", "vfio_pci", "vfio_pci_core" }, f.vfio_modules)
    assert.equals("vfio-pci", gpu.device(root, "02:00.0").driver)
  end)

  it("reads the open kernel module's version line; absent file is nil", function()
    local root = tree { devices = {}, version = "NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  "
      .. "580.76.05  Release Build  (dvs-builder@U16-I3-B03-4-3)  Thu Jul 31 2025\n" }
    assert.equals("580.76.05", gpu.scan { root = root }.driver_version)
    root = tree { devices = {} }
    local f = gpu.scan { root = root }
    assert.is_nil(f.driver_version)
    assert.same({}, f.problems)
  end)

  it("survives malformed files and says what is wrong where", function()
    local root = tree {
      devices = fake.two_gpus(), iommu = true, version = "NVRM: something else entirely\n",
      files = {
        ["sys/devices/pci0000:00/0000:02:00.0/vendor"] = "garbage\n",
        ["sys/devices/pci0000:00/0000:01:00.1/driver"] = "not a link",
        ["sys/bus/pci/devices/not-an-address/vendor"] = "0x10de\n",
      },
    }
    assert(servers.run { "rm", root .. "/sys/devices/pci0000:00/0000:00:17.0/class" })
    assert(servers.run { "ln", "-sfn", "../../../../kernel/iommu_groups/abc",
                         root .. "/sys/devices/pci0000:00/0000:00:14.0/iommu_group" })
    local f = assert(gpu.scan { root = root, all = true })
    local p = table.concat(f.problems, "\n")
    local R = root:gsub("%p", "%%%0")
    assert.matches(R .. "/sys/bus/pci/devices/0000:02:00.0/vendor: expected a 4%-digit hex id such as 0x10de, got 'garbage'", p)
    assert.matches(R .. "/sys/bus/pci/devices/0000:01:00.1/driver: not a symlink to a driver", p)
    assert.matches(R .. "/sys/bus/pci/devices/not%-an%-address: not a PCI address", p)
    assert.matches(R .. "/sys/bus/pci/devices/0000:00:17.0/class: No such file or directory", p)
    assert.matches(R .. "/sys/bus/pci/devices/0000:00:14.0/iommu_group: expected a link to an IOMMU group number, got 'abc'", p)
    assert.matches(R .. "/proc/driver/nvidia/version: no 'NVRM version: ... <version>' line", p)
    assert.equals(6, #f.problems)
    -- The unreadable devices are left out, the rest are still there.
    assert.same({ "0000:00:00.0", "0000:00:14.0", "0000:01:00.0", "0000:01:00.1", "0000:02:00.1" }, addresses(f.devices))
    assert.is_nil(by_address(f.devices, "0000:01:00.1").driver)
    assert.is_nil(f.driver_version)
    local d, err = gpu.device(root, "0000:02:00.0")
    assert.is_nil(d)
    assert.matches("vendor: expected a 4%-digit hex id", err)
  end)

  it("fails clearly without a PCI tree, and for absent devices", function()
    local f, err = gpu.scan { root = base .. "/nothing" }
    assert.is_nil(f)
    assert.equals(base .. "/nothing/sys/bus/pci/devices: No such file or directory", err)
    local root = tree { devices = fake.two_gpus() }
    local d
    d, err = gpu.device(root, "0000:0a:00.0")
    assert.is_nil(d)
    assert.equals(root .. "/sys/bus/pci/devices/0000:0a:00.0: no such PCI device", err)
  end)

  it("raises on wrong use", function()
    assert.has_error(function() gpu.scan { root = "/", colour = 1 } end)
    assert.has_error(function() gpu.scan { root = 5 } end)
    assert.has_error(function() gpu.scan { all = "yes" } end)
    assert.has_error(function() gpu.device("/", "01:00") end)
    assert.has_error(function() gpu.device("/", "zz:00.0") end)
    assert.has_error(function() gpu.iommu_group("/", -1) end)
    assert.has_error(function() gpu.iommu_group("/", "x") end)
  end)

  it("scans this machine's real /sys without problems", function()
    local f = assert(gpu.scan { all = true })
    assert.is_table(f.devices)
    assert.is_boolean(f.iommu_enabled)
    for _, d in ipairs(f.devices) do assert.matches("^%x%x%x%x:%x%x:%x%x%.%x$", d.address) end
  end)
end)
