-- What the lxc target cannot do of a container spec: each such part is
-- taken out of the spec (so the rest compares cleanly) and returned as an
-- unsupported entry {field, value, reason} for the plan.
local conf = require "phoenix.target.lxc.conf"

local M = {}

-- adapt(d, spec) -> entries
function M.adapt(d, spec)
  local out = {}
  local function no(field, value, reason) out[#out + 1] = { field = field, value = value, reason = reason } end
  if spec.rootfs.storage then
    no("storage_pool", spec.rootfs.storage, "the lxc target keeps root filesystems as directories under its lxcpath")
    spec.rootfs.storage = nil
  end
  if spec.rootfs.size_gb then
    no("storage_size_gb", spec.rootfs.size_gb, "a directory root filesystem has no size on the lxc target")
    spec.rootfs.size_gb = nil
  end
  local keep = {}
  for _, mt in ipairs(spec.mounts) do
    if mt.kind == "volume" then
      no("mount " .. mt.target, mt.storage .. ":" .. mt.size_gb .. "G",
        "dedicated volumes (zfs_volumes) need Proxmox storage; the lxc target has none")
    else
      keep[#keep + 1] = mt
    end
  end
  spec.mounts = keep
  if spec.net then
    if spec.net.vlan then no("network_config.vlan", spec.net.vlan, "VLAN tags need a Proxmox bridge") end
    if spec.net.firewall then no("network_config.firewall", true, "the Proxmox firewall is not on the lxc target") end
    spec.net.vlan, spec.net.firewall = nil, nil
    if spec.net.ip == "dhcp" then spec.net.ip = nil end -- the guest asks for its address itself
  end
  if spec.nameserver then no("nameservers", spec.nameserver, "the lxc target does not write the guest's resolv.conf") end
  if spec.searchdomain then no("searchdomain", spec.searchdomain, "the lxc target does not write the guest's resolv.conf") end
  spec.nameserver, spec.searchdomain = nil, nil
  for k, v in pairs(spec.features) do
    if not (k == "nesting" and (v == "1" or v == "0")) then
      no("pct_options." .. k, v, "only nesting=1 has an lxc equivalent (" .. conf.NESTING .. ")")
      spec.features[k] = nil
    end
  end
  if spec.features.nesting == "0" then spec.features.nesting = nil end
  if spec.swap_mb and not spec.memory_mb and d.cgroup == 1 then
    no("swap_mb", spec.swap_mb, "on a cgroup v1 host a swap limit needs memory_mb as well")
    spec.swap_mb = nil
  end
  local ncpu = d.t.cpus and d.t:cpus()
  if spec.cores and ncpu and spec.cores > ncpu then
    no("cores", spec.cores, "this host has " .. ncpu .. " CPUs")
    spec.cores = nil
  end
  return out
end

return M
