-- A Proxmox container config (an inventory entry of the pve target) in the
-- container model, and model values back into pct option strings.
local pve = require "px.pve"
local raw = require "phoenix.lxc.raw"

local M = {}

local GiB = 1024 * 1024 * 1024

local function prop(v, fmt)
  if not v then return nil end
  return pve.parse_prop(v, fmt)
end

local function size_gb(s)
  local b = s and pve.parse_size(s)
  if not b then return nil end
  return b / GiB == math.floor(b / GiB) and math.tointeger(b // GiB) or b / GiB
end

local function is_volid(v) return v:sub(1, 1) ~= "/" and v:find(":", 1, true) ~= nil end

local function slot_num(k) return tonumber(k:match("%d+$")) end

local function sorted_slots(main, prefix)
  local out = {}
  for k in pairs(main) do
    if k:match("^" .. prefix .. "%d+$") then out[#out + 1] = k end
  end
  table.sort(out, function(a, b) return slot_num(a) < slot_num(b) end)
  return out
end

local function join(v)
  if type(v) == "table" then return table.concat(v, ";") end
  if v == true then return "1" elseif v == false then return "0" end
  return tostring(v)
end

-- of(entry) -> model
-- The model is what the container has after its next start: the
-- [pve:pending] values over the current ones (a value changed by hand on a
-- running container shows as drift now, not after a reboot). `current`
-- keeps the running values, so set() can revert a pending change instead
-- of queueing another.
function M.of(g)
  local main = {}
  for k, v in pairs(g.conf.main) do main[k] = v end
  local pending = {}
  for k, v in pairs((g.conf.pending or {}).main or {}) do
    main[k] = v
    pending[k] = true
  end
  for _, d in ipairs(g.conf.delete or {}) do
    main[d.key] = nil
    pending[d.key] = true
  end
  local m = {
    exists = true, id = g.vmid, status = g.status, owned = g.owned, template = g.template, lock = g.lock,
    hostname = main.hostname,
    memory_mb = tonumber(main.memory) or 512, swap_mb = tonumber(main.swap) or 512,
    cores = tonumber(main.cores),
    nameserver = main.nameserver, searchdomain = main.searchdomain,
    onboot = main.onboot == "1",
    unprivileged = main.unprivileged == "1",
    features = {}, devices = {}, mounts = {}, dev_slots = {}, snapshots = {}, pending = pending,
    current = g.conf.main,
  }
  local net = prop(main.net0, "lxc-net")
  if net then
    m.net = { name = net.name, bridge = net.bridge, hwaddr = net.hwaddr, ip = net.ip, gw = net.gw, vlan = net.tag,
      mtu = net.mtu, firewall = net.firewall == true or nil }
  end
  local st = prop(main.startup, "startup")
  if st then m.startup = { order = st.order, up = st.up } end
  for k, v in pairs(prop(main.features, "lxc-features") or {}) do m.features[k] = join(v) end
  local root = prop(main.rootfs, "lxc-rootfs")
  if root then m.rootfs = { storage = root.volume:match("^([^:]+):"), size_gb = size_gb(root.size), volume = root.volume } end
  for _, k in ipairs(sorted_slots(main, "mp")) do
    local mp = prop(main[k], "lxc-mp")
    if mp then
      local vol = is_volid(mp.volume)
      m.mounts[#m.mounts + 1] = { slot = k, target = mp.mp, kind = vol and "volume" or "bind",
        source = not vol and mp.volume or nil, ro = mp.ro == true,
        storage = vol and mp.volume:match("^([^:]+):") or nil, volume = vol and mp.volume or nil,
        size_gb = vol and size_gb(mp.size) or nil }
    end
  end
  for _, k in ipairs(sorted_slots(main, "dev")) do
    local dev = prop(main[k], "lxc-dev")
    if dev then m.devices[#m.devices + 1] = dev.path end
    m.dev_slots[#m.dev_slots + 1] = k
  end
  local split = raw.split(g.conf.lxc or {})
  m.lxc, m.apparmor_profile, m.id_maps = split.lxc, split.apparmor_profile, split.id_maps
  for name in pairs(g.conf.snapshots or {}) do m.snapshots[name] = true end
  return m
end

-- net_option(net, cur) -> "name=eth0,bridge=..." | nil, msg. Without a
-- MAC in the site the current one is kept (Proxmox made it).
function M.net_option(net, cur)
  local t = { name = net.name, bridge = net.bridge, ip = net.ip, gw = net.gw, tag = net.vlan, mtu = net.mtu,
    hwaddr = net.hwaddr or (cur and cur.hwaddr), firewall = net.firewall and true or nil }
  return pve.format_prop(t, "lxc-net")
end

function M.startup_option(s)
  local parts = {}
  if s.order then parts[#parts + 1] = "order=" .. s.order end
  if s.up then parts[#parts + 1] = "up=" .. s.up end
  return table.concat(parts, ",")
end

function M.features_option(f)
  local keys = {}
  for k in pairs(f) do keys[#keys + 1] = k end
  table.sort(keys)
  for i, k in ipairs(keys) do keys[i] = k .. "=" .. f[k] end
  return table.concat(keys, ",")
end

-- mount_option(m) -> the mpN value: a bind mount, or a new volume
-- (STORAGE:SIZE, which pct allocates)
function M.mount_option(m)
  if m.kind == "volume" then
    return string.format("%s:%d,mp=%s", m.storage, m.size_gb, m.target)
  end
  return pve.format_prop({ volume = m.source, mp = m.target, ro = m.ro or nil }, "lxc-mp")
end

-- raw_lines({lxc, apparmor_profile, id_maps}) -> the config's lxc.* lines
function M.raw_lines(w)
  local out = {}
  for _, kv in ipairs(w.lxc or {}) do out[#out + 1] = { kv[1], kv[2] } end
  if w.apparmor_profile then out[#out + 1] = { "lxc.apparmor.profile", w.apparmor_profile } end
  for _, l in ipairs(w.id_maps or {}) do out[#out + 1] = { "lxc.idmap", l } end
  return out
end

return M
