-- nvidia: the host side of GPUs. For GPUs passed through to VMs (hostpci
-- in a VM's qm_options): IOMMU on the kernel command line, the vfio
-- modules loaded at boot, vfio-pci claiming the GPUs' device IDs. For the
-- NVIDIA driver (nvidia_driver.install): the runfile installed when the
-- version differs from the one wanted. The running state comes from sysfs
-- and /proc through px.gpu. A reboot that is needed is reported
-- (disruptive = "reboot"), never done.
local files = require "phoenix.host.files"
local gpu = require "px.gpu"

local MODULES_LOAD = "/etc/modules-load.d/vfio.conf"
local MODPROBE = "/etc/modprobe.d/vfio.conf"
local MARKER = "/var/lib/phoenix/nvidia/installed-version"
local WORK = "/var/lib/phoenix/nvidia/"
local VFIO = { "vfio", "vfio_iommu_type1", "vfio_pci" }

-- PCI addresses VMs pass through: hostpciN values in qm_options
-- ("--hostpci0 0000:01:00,pcie=1", "hostpci0: 01:00.0;01:00.1,x-vga=1").
local function passthrough(site)
  local out, seen = {}, {}
  for _, r in ipairs(site and site.resources or {}) do
    if r.type == "vm" then
      for _, o in ipairs(r.want.qm_options or {}) do
        local v = tostring(o):match("hostpci%d+%s*[=:]?%s+(%S+)") or tostring(o):match("hostpci%d+=(%S+)")
        if v then
          local hosts = v:match("host=([^,]+)") or v:match("^([^,=]+)")
          for a in (hosts or ""):gmatch("[^;]+") do
            if not a:match("^%x%x%x%x:") then a = "0000:" .. a end
            a = a:lower()
            if not seen[a] then
              seen[a] = true
              out[#out + 1] = { address = a, guest = r.id }
            end
          end
        end
      end
    end
  end
  return out
end

-- The devices an address names: one function, or all of a slot.
local function devices_of(facts, address)
  local out = {}
  for _, d in ipairs(facts.devices) do
    if d.address == address or d.address:sub(1, #address + 1) == address .. "." then out[#out + 1] = d end
  end
  return out
end

local function modprobe_text(ids)
  return files.header("the VMs' hostpci devices in phoenix_vm_configs.json")
    .. "options vfio-pci ids=" .. table.concat(ids, ",") .. "\n"
    .. "softdep nvidia pre: vfio-pci\nsoftdep nouveau pre: vfio-pci\n"
end

local function modules_text()
  return files.header("the VMs' hostpci devices in phoenix_vm_configs.json") .. table.concat(VFIO, "\n") .. "\n"
end

return {
  type = "nvidia",
  describe = function(want)
    return "GPU host setup" .. (want.install and want.version and (", NVIDIA driver " .. want.version) or "")
  end,

  inspect = function(ctx, want)
    local t = ctx.target
    if t.remote then return nil, string.format("the %s target reaches the node over the network, and GPU checks read the node's /sys and /dev here: "
      .. "run phoenix on the node (pve target) for GPU passthrough", t.type) end
    local facts, err = gpu.scan({ root = t.root, all = true })
    if not facts then return nil, "cannot read the host's PCI devices: " .. err end
    for _, p in ipairs(facts.problems or {}) do ctx.log:warn("%s", p) end
    local have = { exists = true, cmdline = facts.cmdline, iommu_cmdline = facts.iommu_cmdline,
      iommu_enabled = facts.iommu_enabled, driver_version = facts.driver_version, devices = {}, ids = {},
      installed = (t:read(MARKER) or ""):match("^%s*(%S+)"), modules_load = t:read(MODULES_LOAD),
      modprobe = t:read(MODPROBE), vfio_loaded = {} }
    for _, m in ipairs(facts.vfio_modules or {}) do have.vfio_loaded[m] = true end
    local seen = {}
    for _, p in ipairs(passthrough(ctx.site)) do
      local ds = devices_of(facts, p.address)
      if #ds == 0 then
        return nil, string.format("%s passes through PCI device %s, which this host does not have", p.guest, p.address)
      end
      for _, d in ipairs(ds) do
        have.devices[#have.devices + 1] = { address = d.address, driver = d.driver, guest = p.guest }
        local id = d.vendor .. ":" .. d.device
        if not seen[id] then
          seen[id] = true
          have.ids[#have.ids + 1] = id
        end
      end
    end
    table.sort(have.ids)
    if want.install and want.version and want.runfile_url and not want.runfile_url:find(want.version, 1, true) then
      ctx.log:warn("nvidia_driver.runfile_url does not name version %s", want.version)
    end
    return have
  end,

  diff = function(_, want, have)
    local out = {}
    local reboot = {}
    if #have.devices > 0 then
      if not have.iommu_cmdline then
        out[#out + 1] = { action = "update", field = "kernel command line", from = have.cmdline or "(unknown)",
          to = "intel_iommu=on (or amd_iommu=on) iommu=pt",
          unsupported = "phoenix does not edit the boot loader: add it to GRUB_CMDLINE_LINUX_DEFAULT in "
            .. "/etc/default/grub (or /etc/kernel/cmdline), run proxmox-boot-tool refresh, and reboot" }
      end
      out[#out + 1] = files.change(MODULES_LOAD, have.modules_load, modules_text())
      out[#out + 1] = files.change(MODPROBE, have.modprobe, modprobe_text(have.ids))
      for _, d in ipairs(have.devices) do
        if d.driver ~= "vfio-pci" then
          reboot[#reboot + 1] = d.address .. " is bound to " .. (d.driver or "no driver") .. ", not vfio-pci"
        end
      end
      for _, m in ipairs(VFIO) do
        if not have.vfio_loaded[m] then reboot[#reboot + 1] = "module " .. m .. " is not loaded" end
      end
    end
    if want.install and want.version and have.driver_version ~= want.version then
      if have.installed == want.version then
        reboot[#reboot + 1] = "NVIDIA driver " .. want.version .. " is installed, "
          .. (have.driver_version and (have.driver_version .. " is running") or "none is loaded")
      else
        out[#out + 1] = { action = have.driver_version and "update" or "create", field = "NVIDIA driver",
          from = have.driver_version, to = want.version, note = "runfile install" }
      end
    end
    if #reboot > 0 then
      out[#out + 1] = { action = "run", field = "reboot", to = table.concat(reboot, "; "), disruptive = "reboot" }
    end
    return out
  end,

  apply = function(ctx, want, have, changes)
    local t = ctx.target
    local initramfs = false
    for _, c in ipairs(changes) do
      if c.field == MODULES_LOAD or c.field == MODPROBE then
        local text = c.field == MODULES_LOAD and modules_text() or modprobe_text(have.ids)
        local changed, err = files.put(t, c.field, text)
        if changed == nil then return nil, err end
        initramfs = initramfs or changed
      end
    end
    if initramfs then
      -- vfio-pci must claim the GPUs before their own driver does: from the initramfs
      local ok, err = ctx:run({ argv = { "update-initramfs", "-u", "-k", "all" }, timeout_ms = 600000 })
      if not ok then return nil, err end
    end
    for _, c in ipairs(changes) do
      if c.field == "NVIDIA driver" then
        if not want.runfile_url then return nil, "nvidia_driver.runfile_url is needed to install driver " .. want.version end
        local run = t:path(WORK .. "NVIDIA-Linux-" .. want.version .. ".run")
        local ok, err = t:mkdir(WORK)
        if not ok then return nil, err end
        ok, err = ctx:run({ argv = { "curl", "-fsSL", "--retry", "3", "-o", run, want.runfile_url }, timeout_ms = 1800000 })
        if not ok then return nil, "downloading the NVIDIA driver: " .. err end
        -- --dkms: the module is rebuilt for new kernels
        ok, err = ctx:run({ argv = { "sh", run, "--silent", "--no-questions", "--ui=none", "--dkms" },
          timeout_ms = 1800000 })
        if not ok then return nil, "installing the NVIDIA driver: " .. err end
        ok, err = t:write(MARKER, want.version .. "\n", { mkdir = true })
        if ok == nil then return nil, err end
        t:remove(WORK .. "NVIDIA-Linux-" .. want.version .. ".run")
      end
    end
    return true
  end,
}
