-- GPU passthrough for VMs against fake sysfs trees (tests/helpers/fake_sysfs):
-- what gpu_assignment becomes (hostpci entries), and each host problem as a
-- clear error naming the fix.
local exec = require "px.exec"
local kit = require "testkit"
local sysfs = require "fake_sysfs"
local vmfix = require "vmfix"

-- Two GPUs, each with its audio function, in groups 12 and 13 with a PCIe
-- root port (a bridge, harmless); the host's USB and SATA controllers alone.
local function devices(o)
  o = o or {}
  local drv = o.driver or "vfio-pci"
  return {
    { address = "0000:00:00.0", vendor = "8086", device = "3e30", class = "060000", iommu_group = 0 },
    { address = "0000:00:01.0", vendor = "8086", device = "1901", class = "060400", driver = "pcieport", iommu_group = 12 },
    { address = "0000:00:14.0", vendor = "8086", device = "a36d", class = "0c0330", driver = "xhci_hcd",
      iommu_group = o.usb_group or 5 },
    { address = "0000:00:17.0", vendor = "8086", device = "a352", class = "010601", driver = "ahci", iommu_group = 6 },
    { address = "0000:01:00.0", vendor = "10de", device = "2204", class = "030000", driver = drv, iommu_group = 12 },
    { address = "0000:01:00.1", vendor = "10de", device = "1aef", class = "040300", driver = o.audio_driver or drv,
      iommu_group = 12 },
    { address = "0000:02:00.0", vendor = "10de", device = "2204", class = "030000", driver = drv, iommu_group = 13 },
    { address = "0000:02:00.1", vendor = "10de", device = "1aef", class = "040300", driver = drv, iommu_group = 13 },
  }
end

describe("vm GPU passthrough", function()
  local dir, node
  before_each(function()
    dir = kit.tmpdir()
    node = vmfix.node(dir)
  end)
  after_each(function() kit.cleanup(dir) end)

  local function plan(tree, vm)
    assert(exec.run({ argv = { "rm", "-rf", node.root .. "/sys", node.root .. "/proc" } }))
    sysfs.build(node.root, tree)
    local site = vmfix.load(vmfix.site(dir, node, { vmfix.template(), vm }))
    local rep = vmfix.run(site, node, { mode = "plan" })
    return rep.results["vm:" .. vm.vmid], site
  end

  local function gpu_vm(extra)
    local v = vmfix.clone(1100, "gpu", { gpu_assignment = "1" })
    for k, x in pairs(extra or {}) do v[k] = x end
    return v
  end

  it("passes GPU 1 through as its whole slot, and takes it away with \"none\"", function()
    local _, site = plan({ devices = devices(), iommu = true, cmdline = "intel_iommu=on iommu=pt" }, gpu_vm())
    local rep = vmfix.run(site, node)
    assert.are.equal(0, rep.counts.failed, vmfix.errors(rep))
    local m = vmfix.main(node, 1100)
    assert.are.equal("0000:02:00", m.hostpci0) -- qm start checked it against the same tree
    assert.matches("status: running", vmfix.qm(node, "status", "1100"), 1, true)
    local vm = gpu_vm({ gpu_assignment = "none" })
    site = vmfix.load(vmfix.site(dir, node, { vmfix.template(), vm }))
    rep = vmfix.run(site, node, { mode = "plan" })
    local c = vmfix.changes(rep, "vm:1100")
    assert.are.same({ "delete", "0000:02:00", "restart" }, { c.hostpci0.action, c.hostpci0.from, c.hostpci0.disruptive })
  end)

  it("refuses when the IOMMU is off, saying how to turn it on", function()
    local r = plan({ devices = devices(), iommu = false, cmdline = "quiet" }, gpu_vm())
    assert.are.equal("failed", r.status)
    assert.matches("GPU passthrough: the IOMMU is off: add intel_iommu=on (Intel) or amd_iommu=on (AMD) and "
      .. "iommu=pt to the kernel command line", r.error, 1, true)
    r = plan({ devices = devices(), iommu = false, cmdline = "intel_iommu=on" }, gpu_vm())
    assert.matches("there are no IOMMU groups: enable VT-d (Intel) or AMD-Vi/IOMMU in the firmware setup", r.error, 1, true)
  end)

  it("refuses a GPU whose IOMMU group holds a device the host keeps", function()
    local r = plan({ devices = devices({ usb_group = 13 }), iommu = true }, gpu_vm())
    assert.are.equal("failed", r.status)
    assert.matches("IOMMU group 13 of 0000:02:00.0 also holds 0000:00:14.0 (Intel USB controller, driver "
      .. "xhci_hcd), which the host keeps", r.error, 1, true)
    -- the bridge in group 12 is fine: GPU 0 passes
    r = plan({ devices = devices({ usb_group = 13 }), iommu = true }, gpu_vm({ gpu_assignment = "0" }))
    assert.are.equal("pending", r.status, r.error)
  end)

  it("refuses a GPU (or its audio function) that is not bound to vfio-pci", function()
    local r = plan({ devices = devices({ driver = "nvidia", audio_driver = "snd_hda_intel" }), iommu = true }, gpu_vm())
    assert.are.equal("failed", r.status)
    assert.matches("0000:02:00.0 is bound to nvidia, not vfio-pci: bind it to vfio-pci at boot: "
      .. "`echo 'options vfio-pci ids=10de:2204,10de:1aef' > /etc/modprobe.d/vfio.conf`", r.error, 1, true)
    r = plan({ devices = devices({ audio_driver = "snd_hda_intel" }), iommu = true }, gpu_vm({ gpu_assignment = "0" }))
    assert.matches("0000:01:00.1 is bound to snd_hda_intel, not vfio-pci", r.error, 1, true)
  end)

  it("names the GPUs there are when asked for one that is not, and checks hostpci from qm_options", function()
    local r = plan({ devices = devices(), iommu = true }, gpu_vm({ gpu_assignment = "2" }))
    assert.are.equal("inspect: gpu_assignment names GPU 2 but the host has 2 (0: 0000:01:00.0, 1: 0000:02:00.0)",
      r.error)
    r = plan({ devices = devices(), iommu = true }, vmfix.clone(1100, "gpu", { qm_options = { "hostpci0=0000:05:00,pcie=1" } }))
    assert.matches("GPU passthrough: no PCI device 0000:05:00 on this host", r.error, 1, true)
    r = plan({ devices = devices(), iommu = true }, vmfix.clone(1100, "gpu", { qm_options = { "hostpci0: 01:00" } }))
    assert.are.equal("pending", r.status, r.error)
  end)
end)
