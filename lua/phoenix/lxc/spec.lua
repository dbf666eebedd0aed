-- The desired container, in the container model (docs/containers.md),
-- built from a `lxc:<ctid>` resource's want. nil fields are not managed.
local raw = require "phoenix.lxc.raw"

local M = {}

M.PRE, M.FINAL = "pre-configured", "final-form"

-- The NVIDIA nodes a GPU container needs besides /dev/nvidia<N>, in order.
M.NVIDIA_CONTROL = { "/dev/nvidiactl", "/dev/nvidia-uvm", "/dev/nvidia-uvm-tools", "/dev/nvidia-modeset" }

local function net_of(want)
  local nc = want.network_config
  if type(nc) ~= "table" then return nil end
  return {
    name = nc.name or "eth0", bridge = nc.bridge, ip = nc.ip, gw = nc.gw, hwaddr = want.mac_address,
    vlan = nc.vlan, mtu = nc.mtu, firewall = nc.firewall,
  }
end

local function features_of(want)
  local out = {}
  for _, opt in ipairs(want.pct_options or {}) do
    local k, v = opt:match("^([%w_]+)=(.*)$")
    if k then out[k] = v end
  end
  return out
end

-- gpu_devices(list, facts) -> devices | nil, msg
function M.gpu_devices(list, facts)
  if #list == 0 then return {} end
  local shown = {}
  for i, n in ipairs(list) do shown[i] = tostring(n) end
  local what = "gpu_assignment " .. table.concat(shown, ",")
  if not facts then return nil, what .. ": no GPU information from this host" end
  local have = {}
  for _, n in ipairs(facts.nvidia_gpus or {}) do have[n] = true end
  local found = {}
  for _, n in ipairs(facts.nvidia_gpus or {}) do found[#found + 1] = tostring(n) end
  local out = {}
  for _, n in ipairs(list) do
    if not have[n] then
      return nil, string.format("%s: GPU %d is not on this host (/dev/nvidia%d is absent; NVIDIA GPUs found: %s)",
        what, n, n, #found > 0 and table.concat(found, ", ") or "none")
    end
    out[#out + 1] = "/dev/nvidia" .. n
  end
  local present = {}
  for _, d in ipairs(facts.nvidia_devices or {}) do present[d] = true end
  if not present["/dev/nvidiactl"] then
    return nil, what .. ": /dev/nvidiactl is absent: the NVIDIA driver is not loaded on this host"
  end
  for _, d in ipairs(M.NVIDIA_CONTROL) do
    if present[d] then out[#out + 1] = d end
  end
  return out
end

-- mounts_of(want) -> list | nil, msg: bind mounts (shared_volumes,
-- mount_points) and dedicated volumes (zfs_volumes), one per container path.
function M.mounts_of(want)
  local out, seen = {}, {}
  local function add(m)
    if seen[m.target] then
      return nil, string.format("two mounts at %s (%s and %s)", m.target, seen[m.target], m.from)
    end
    seen[m.target] = m.from
    out[#out + 1] = m
    return true
  end
  for _, sv in ipairs(want.shared_volumes or {}) do
    local ok, err = add({ target = sv.container_path, kind = "bind", source = sv.host_path, ro = sv.read_only == true,
      owner_uid = sv.owner_uid, owner_gid = sv.owner_gid, from = "shared_volumes/" .. tostring(sv.volume) })
    if not ok then return nil, err end
  end
  for _, mp in ipairs(want.mount_points or {}) do
    local ok, err = add({ target = mp.container_path, kind = "bind", source = mp.host_path, ro = mp.read_only == true,
      owner_uid = mp.owner_uid, owner_gid = mp.owner_gid, from = "mount_points" })
    if not ok then return nil, err end
  end
  for _, zv in ipairs(want.zfs_volumes or {}) do
    local ok, err = add({ target = zv.mount_point, kind = "volume", storage = zv.pool, size_gb = zv.size_gb,
      name = zv.name, from = "zfs_volumes/" .. tostring(zv.name) })
    if not ok then return nil, err end
  end
  return out
end

-- build(want, {gpu = px.gpu facts, clone_snapshot = name}) -> spec | nil, msg
function M.build(want, o)
  o = o or {}
  local lines = {}
  for _, l in ipairs(want.lxc_options or {}) do
    local k, v = raw.parse(l)
    if k then lines[#lines + 1] = { k, v } end
  end
  if want.apparmor_manages_nesting then lines[#lines + 1] = { "lxc.apparmor.allow_nesting", "1" } end
  local split = raw.split(lines)
  local unpriv = want.unprivileged ~= false
  local id_maps = split.id_maps
  if want.id_maps and #want.id_maps > 0 then
    id_maps = unpriv and raw.expand(want.id_maps) or nil
    if not unpriv then
      id_maps = {}
      for _, m in ipairs(want.id_maps) do
        id_maps[#id_maps + 1] = string.format("%s %d %d %d", m.type:sub(1, 1), m.container_id, m.host_id, m.size)
      end
    end
  end
  local devices, derr = M.gpu_devices(want.gpu_assignment or {}, o.gpu)
  if not devices then return nil, derr end
  local mounts, merr = M.mounts_of(want)
  if not mounts then return nil, merr end
  local nc = want.network_config or {}
  local nameserver
  if nc.nameservers and #nc.nameservers > 0 then nameserver = table.concat(nc.nameservers, " ") end
  local startup
  if want.boot_order or want.boot_delay then startup = { order = want.boot_order, up = want.boot_delay } end
  local snaps = {}
  if want.enable_lifecycle_snapshots then snaps.pre, snaps.final = M.PRE, M.FINAL end
  if want.template_snapshot_name then snaps.template = want.template_snapshot_name end
  return {
    id = want.ctid,
    hostname = want.name,
    unprivileged = unpriv,
    memory_mb = want.memory_mb, swap_mb = want.swap_mb, cores = want.cores,
    net = net_of(want), nameserver = nameserver, searchdomain = nc.searchdomain,
    onboot = want.start_at_boot == true, startup = startup,
    features = features_of(want),
    apparmor_profile = want.apparmor_profile or split.apparmor_profile,
    id_maps = id_maps,
    lxc = split.lxc,
    devices = devices,
    mounts = mounts,
    rootfs = { storage = want.storage_pool, size_gb = want.storage_size_gb },
    template = want.template,
    clone = want.clone_from_ctid and { from = want.clone_from_ctid, snapshot = o.clone_snapshot } or nil,
    snapshots = snaps,
  }
end

return M
