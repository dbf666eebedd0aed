-- GPU passthrough for VMs: which PCI slots `gpu_assignment` names, and
-- whether the host can hand them to a VM: the device exists, the IOMMU is
-- on, its IOMMU group holds nothing else the host uses, and every function
-- is bound to vfio-pci. Each failure is one message that says the fix.
local gpu = require "px.gpu"

local M = {}

local function slot_of(addr) return addr:match("^(%x+:%x+:%x+)") end

local function full(addr)
  if addr:match("^%x%x%x%x:") then return addr:lower() end
  return ("0000:" .. addr):lower()
end

local function what(d)
  local kind = ({ display = "display controller", audio = "audio device", usb = "USB controller",
    bridge = "bridge" })[d.kind] or ("device of class " .. tostring(d.class))
  return string.format("%s (%s%s, driver %s)", d.address, d.vendor_name and (d.vendor_name .. " ") or "", kind,
    d.driver or "none")
end

-- scan(root) -> facts (every PCI device) | nil, msg
local function scan(root)
  local facts, err = gpu.scan({ root = root, all = true })
  if not facts then return nil, "cannot read the host's PCI devices: " .. tostring(err) end
  return facts
end

-- slots(facts, indices) -> { "0000:01:00", ... } | nil, msg: GPU N is the
-- Nth display controller in PCI address order (as for containers).
local function slots_for(facts, indices)
  local displays = {}
  for _, d in ipairs(facts.devices) do
    if d.kind == "display" then displays[#displays + 1] = d end
  end
  local out = {}
  for _, i in ipairs(indices) do
    local d = displays[i + 1]
    if not d then
      local list = {}
      for n, x in ipairs(displays) do list[#list + 1] = (n - 1) .. ": " .. x.address end
      return nil, string.format("gpu_assignment names GPU %d but the host has %d (%s)", i, #displays,
        #list > 0 and table.concat(list, ", ") or "no display controllers in /sys/bus/pci/devices")
    end
    out[#out + 1] = slot_of(d.address)
  end
  return out
end

-- The devices a hostpci host id stands for: a slot (all its functions) or one function.
local function functions_of(facts, id)
  local f = full(id)
  local out = {}
  for _, d in ipairs(facts.devices) do
    if d.address == f or (not f:find("%.") and slot_of(d.address) == f) then out[#out + 1] = d end
  end
  return out
end

local function vfio_hint(devs)
  local ids, seen = {}, {}
  for _, d in ipairs(devs) do
    local id = d.vendor .. ":" .. d.device
    if not seen[id] then ids[#ids + 1] = id seen[id] = true end
  end
  return string.format("bind it to vfio-pci at boot: `echo 'options vfio-pci ids=%s' > /etc/modprobe.d/vfio.conf` "
    .. "(and `softdep <driver> pre: vfio-pci`, or blacklist the driver), then `update-initramfs -u -k all` and reboot",
    table.concat(ids, ","))
end

-- check(facts, root, ids) -> true | nil, msg for the hostpci host ids.
local function check(facts, root, ids)
  local passed = {}
  local all = {}
  for _, id in ipairs(ids) do
    local devs = functions_of(facts, id)
    if #devs == 0 then
      return nil, string.format("GPU passthrough: no PCI device %s on this host (`lspci -D` lists them)", full(id))
    end
    for _, d in ipairs(devs) do passed[d.address] = true all[#all + 1] = d end
  end
  if not facts.iommu_enabled then
    if facts.iommu_cmdline then
      return nil, "GPU passthrough: the kernel command line asks for the IOMMU but there are no IOMMU groups: "
        .. "enable VT-d (Intel) or AMD-Vi/IOMMU in the firmware setup and reboot"
    end
    return nil, "GPU passthrough: the IOMMU is off: add intel_iommu=on (Intel) or amd_iommu=on (AMD) and iommu=pt "
      .. "to the kernel command line (GRUB_CMDLINE_LINUX_DEFAULT in /etc/default/grub, then update-grub; or "
      .. "/etc/kernel/cmdline, then proxmox-boot-tool refresh) and reboot"
  end
  local by_addr = {}
  for _, d in ipairs(facts.devices) do by_addr[d.address] = d end
  for _, d in ipairs(all) do
    if d.iommu_group == nil then
      return nil, string.format("GPU passthrough: %s is in no IOMMU group: check that the IOMMU covers that slot", d.address)
    end
    local members, err = gpu.iommu_group(root, d.iommu_group)
    if not members then return nil, "GPU passthrough: " .. err end
    for _, m in ipairs(members) do
      local other = by_addr[m]
      -- bridges (class 06xx) in the group are harmless: they stay with the host
      if not passed[m] and not (other and other.class:sub(1, 2) == "06") then
        return nil, string.format("GPU passthrough: IOMMU group %d of %s also holds %s, which the host "
          .. "keeps: a VM gets whole IOMMU groups, so put the card in a slot with a group of its own (or pass that "
          .. "device through as well)", d.iommu_group, d.address, other and what(other) or m)
      end
    end
  end
  for _, d in ipairs(all) do
    if d.driver ~= "vfio-pci" then
      return nil, string.format("GPU passthrough: %s is bound to %s, not vfio-pci: %s", d.address,
        d.driver or "no driver", vfio_hint(all))
    end
  end
  return true
end

--[[ resolve(root, indices, extra_ids) -> { values = {"0000:01:00", ...} } | nil, msg.
indices: gpu_assignment (GPU numbers); extra_ids: host ids of hostpci entries the
site gives in qm_options (checked the same way). ]]
function M.resolve(root, indices, extra_ids)
  local facts, err = scan(root)
  if not facts then return nil, err end
  local values, serr = slots_for(facts, indices or {})
  if not values then return nil, serr end
  local ids = {}
  for _, v in ipairs(values) do ids[#ids + 1] = v end
  for _, v in ipairs(extra_ids or {}) do ids[#ids + 1] = v end
  local ok, cerr = check(facts, root, ids)
  if not ok then return nil, cerr end
  return { values = values }
end

return M
