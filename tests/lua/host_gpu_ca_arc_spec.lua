-- The nvidia, trusted_ca and zfs_arc recipes on a temporary root with fake
-- sysfs/proc trees (fake_sysfs), through the engine.
local hostkit = require "hostkit"
local fake = require "fake_sysfs"
local fs = require "px.fs"

local R = hostkit.resource

local function results(h, resources, o)
  local rep = h:run(resources, o)
  return rep.results
end

-- A site with a VM passing a GPU through (its whole slot).
local function site_with_vm(nv, hostpci)
  local vm = R("vm:200", { vmid = 200, name = "gpu-vm", qm_options = { hostpci } }, { scope = "guest" })
  return hostkit.site({ nv, vm })
end

describe("nvidia recipe", function()
  local h
  before_each(function() h = hostkit.new() end)
  after_each(function() h:cleanup() end)

  local function tree(spec)
    spec.devices = spec.devices or fake.two_gpus()
    fake.build(h.root, spec)
  end

  it("writes the vfio files for passed-through GPUs, runs update-initramfs, and reports the reboot", function()
    h:stub("update-initramfs")
    tree({ iommu = true, cmdline = "BOOT_IMAGE=/vmlinuz root=ZFS=rpool/ROOT/pve-1 intel_iommu=on iommu=pt",
      modules = "nvidia 1 0 - Live 0x0\n" })
    local nv = R("nvidia:host", {})
    local site = site_with_vm(nv, "--hostpci0 0000:02:00,pcie=1,x-vga=1")
    local res = results(h, { nv }, { site = site })[nv.id]
    assert.are.equal("changed", res.status, hostkit.why(res))
    assert.matches("\noptions vfio%-pci ids=10de:1aef,10de:2204\nsoftdep nvidia pre: vfio%-pci\n",
      h:read("/etc/modprobe.d/vfio.conf"))
    assert.matches("\nvfio\nvfio_iommu_type1\nvfio_pci\n$", h:read("/etc/modules-load.d/vfio.conf"))
    assert.are.same({ { "-u", "-k", "all" } }, h:calls("update-initramfs"))
    -- still bound to nvidia until the host reboots: held, never done
    assert.are.equal(1, #res.held)
    assert.are.equal("reboot", res.held[1].disruptive)
    assert.matches("0000:02:00.0 is bound to nvidia, not vfio%-pci", res.held[1].to)
    res = results(h, { nv }, { site = site })[nv.id]
    assert.are.equal("ok", res.status)
    assert.are.equal(0, #res.changes)
    assert.are.equal(1, #res.held)
    assert.are.equal(1, #h:calls("update-initramfs"))
    -- after the reboot (vfio-pci bound, modules loaded) nothing is left
    h:cleanup()
    h = hostkit.new()
    h:stub("update-initramfs")
    local devices = fake.two_gpus({ driver2 = "vfio-pci" })
    for _, d in ipairs(devices) do if d.address == "0000:02:00.1" then d.driver = "vfio-pci" end end
    tree({ iommu = true, cmdline = "intel_iommu=on", devices = devices,
      modules = "vfio_pci 1 0 - Live 0x0\nvfio_iommu_type1 1 0 - Live 0x0\nvfio 1 0 - Live 0x0\n" })
    res = results(h, { nv }, { site = site })[nv.id]
    assert.are.equal("changed", res.status, hostkit.why(res))
    assert.are.equal(0, #res.held)
    res = results(h, { nv }, { site = site })[nv.id]
    assert.are.equal("ok", res.status)
    assert.are.equal(0, #res.changes + #res.held)
  end)

  it("reports IOMMU missing from the kernel command line, and an absent device as an error", function()
    h:stub("update-initramfs")
    tree({ iommu = false, cmdline = "BOOT_IMAGE=/vmlinuz quiet" })
    local nv = R("nvidia:host", {})
    local res = results(h, { nv }, { site = site_with_vm(nv, "hostpci0: 01:00.0") })[nv.id]
    local unsupported
    for _, c in ipairs(res.held) do if c.field == "kernel command line" then unsupported = c.unsupported end end
    assert.matches("phoenix does not edit the boot loader", unsupported)
    res = results(h, { nv }, { site = site_with_vm(nv, "--hostpci1 0000:0a:00") })[nv.id]
    assert.are.equal("failed", res.status)
    assert.matches("vm:200 passes through PCI device 0000:0a:00, which this host does not have", res.error)
  end)

  it("installs the runfile only when the version differs and reports the reboot", function()
    h:stub("update-initramfs")
    tree({ iommu = true, cmdline = "intel_iommu=on", version = fake.version_text })
    -- the runfile: a script recording its arguments; curl fetches it from a file:// URL
    local runfile = h.dir .. "/NVIDIA-Linux-x86_64-590.1.run"
    assert(fs.write(runfile, "echo \"$@\" > " .. h.dir .. "/runfile-args\n"))
    local want = { install = true, version = "590.1", runfile_url = "file://" .. runfile }
    local nv = R("nvidia:host", want)
    local same = R("nvidia:host", { install = true, version = "580.76.05", runfile_url = "file://" .. runfile })
    local res = results(h, { same }, {})[same.id]
    assert.are.equal("ok", res.status)
    assert.are.equal(0, #res.changes)
    res = results(h, { nv }, {})[nv.id]
    assert.are.equal("changed", res.status, hostkit.why(res))
    assert.are.equal("--silent --no-questions --ui=none --dkms\n", fs.read(h.dir .. "/runfile-args"))
    assert.are.equal("590.1\n", h:read("/var/lib/phoenix/nvidia/installed-version"))
    -- the old module runs until the host reboots: held, never done
    res = results(h, { nv }, {})[nv.id]
    assert.are.equal("ok", res.status)
    assert.are.equal(1, #res.held)
    assert.matches("NVIDIA driver 590%.1 is installed, 580%.76%.05 is running", res.held[1].to)
    fs.remove(h.dir .. "/runfile-args")
    res = results(h, { nv }, {})[nv.id]
    assert.are.equal("ok", res.status)
    assert.is_nil(fs.read(h.dir .. "/runfile-args"))
  end)
end)

describe("trusted_ca recipe", function()
  local h
  before_each(function() h = hostkit.new() end)
  after_each(function() h:cleanup() end)

  local PEM = "-----BEGIN CERTIFICATE-----\nMIIBtest\n-----END CERTIFICATE-----\n"

  -- a target whose container driver serves files from a table
  local function target(files_in_guest)
    local t = h:target()
    t.drivers = { ct = { pull = function(_, id, path)
      local f = files_in_guest[id .. ":" .. path]
      if not f then return nil, "pct pull " .. id .. " " .. path .. ": no such file" end
      return f
    end } }
    return t
  end

  it("installs the CA guest's root certificate and updates the trust store on change only", function()
    h:stub("update-ca-certificates")
    local ca = R("trusted_ca:host", { root_ca_name = "Lab Root CA", ca_guest = "lxc:120" })
    local t = target({ ["120:/root/.step/certs/root_ca.crt"] = "junk before\n" .. PEM })
    local res = results(h, { ca }, { target = t })[ca.id]
    assert.are.equal("changed", res.status, hostkit.why(res))
    assert.are.equal(PEM, h:read("/usr/local/share/ca-certificates/phoenix-root-ca.crt"))
    assert.are.equal(1, #h:calls("update-ca-certificates"))
    res = results(h, { ca }, { target = t })[ca.id]
    assert.are.equal("ok", res.status)
    assert.are.equal(1, #h:calls("update-ca-certificates"))
    -- a plan before the CA guest exists shows the pending install; apply fails clearly
    res = results(h, { ca }, { target = target({}), mode = "plan" })[ca.id]
    assert.are.equal("in_sync", res.status)
    h:cleanup()
    h = hostkit.new()
    res = results(h, { ca }, { target = target({}), mode = "plan" })[ca.id]
    assert.are.equal("pending", res.status)
    res = results(h, { ca }, { target = target({}) })[ca.id]
    assert.are.equal("failed", res.status)
    assert.matches("cannot read the root CA from lxc:120", res.error)
  end)
end)

describe("zfs_arc recipe", function()
  local h
  before_each(function() h = hostkit.new() end)
  after_each(function() h:cleanup() end)

  it("sets the limit in zfs.conf (keeping other options) and live", function()
    h:stub("update-initramfs")
    h:write("/etc/modprobe.d/zfs.conf", "# tuned\noptions zfs zfs_arc_min=1073741824 zfs_arc_max=4294967296\n")
    h:write("/sys/module/zfs/parameters/zfs_arc_max", "4294967296\n")
    h:write("/proc/mounts", "rpool/ROOT/pve-1 / zfs rw,relatime,xattr,noacl 0 0\n")
    local arc = R("zfs_arc:host", { arc_max_gb = 8, arc_max_bytes = 8589934592 })
    local res = results(h, { arc })[arc.id]
    assert.are.equal("changed", res.status, hostkit.why(res))
    assert.are.equal("# tuned\noptions zfs zfs_arc_min=1073741824 zfs_arc_max=8589934592\n", h:read("/etc/modprobe.d/zfs.conf"))
    assert.are.equal("8589934592\n", h:read("/sys/module/zfs/parameters/zfs_arc_max"))
    assert.are.equal(1, #h:calls("update-initramfs"))
    res = results(h, { arc })[arc.id]
    assert.are.equal("ok", res.status)
    assert.are.equal(0, #res.changes)
    -- no module loaded and no file yet: the file only, no initramfs (root not on ZFS)
    h:cleanup()
    h = hostkit.new()
    h:stub("update-initramfs")
    res = results(h, { arc })[arc.id]
    assert.are.equal("changed", res.status, hostkit.why(res))
    assert.are.equal("options zfs zfs_arc_max=8589934592\n", h:read("/etc/modprobe.d/zfs.conf"))
    assert.are.equal(0, #h:calls("update-initramfs"))
  end)
end)
