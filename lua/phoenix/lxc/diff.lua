-- Desired container (spec) against the inspected one (have): the change
-- records the lxc recipe plans and applies. Pure: everything it needs was
-- read by inspect (have.spec, have.items, have.markers, have.caps).
--
-- Besides the engine's fields a change carries `step` (define, config,
-- mount, hostpath, rootfs, state, snapshot, feature) and `key` (the model
-- field) for apply.
local json = require "px.json"

local M = {}

-- model field -> the site field a plan names
M.FIELDS = {
  { "hostname", "name" }, { "memory_mb", "memory_mb" }, { "swap_mb", "swap_mb" }, { "cores", "cores" },
  { "net", "network_config" }, { "nameserver", "nameservers" }, { "searchdomain", "searchdomain" },
  { "onboot", "start_at_boot" }, { "startup", "startup" }, { "features", "pct_options" },
  { "apparmor_profile", "apparmor_profile" }, { "id_maps", "id_maps" }, { "lxc", "lxc_options" },
  { "devices", "gpu_assignment" },
}

local NET_KEYS = { "name", "bridge", "ip", "gw", "hwaddr", "vlan", "mtu", "firewall" }

-- show(key, v): a model value as a plan shows it
function M.show(key, v)
  if v == nil then return nil end
  if key == "net" then
    local parts = {}
    for _, k in ipairs(NET_KEYS) do
      local x = v[k]
      if x ~= nil and x ~= false then parts[#parts + 1] = k .. "=" .. (x == true and "1" or tostring(x)) end
    end
    return table.concat(parts, ",")
  elseif key == "startup" then
    local parts = {}
    if v.order then parts[#parts + 1] = "order=" .. v.order end
    if v.up then parts[#parts + 1] = "up=" .. v.up end
    return table.concat(parts, ",")
  elseif key == "features" then
    local keys = {}
    for k in pairs(v) do keys[#keys + 1] = k end
    table.sort(keys)
    for i, k in ipairs(keys) do keys[i] = k .. "=" .. v[k] end
    return table.concat(keys, ",")
  elseif key == "lxc" then
    local out = {}
    for i, kv in ipairs(v) do out[i] = kv[1] .. " = " .. kv[2] end
    return json.array(out)
  elseif type(v) == "table" then
    return json.array(v)
  end
  return v
end

local function same_net(s, h)
  if s == nil or h == nil then return s == h end
  for _, k in ipairs(NET_KEYS) do
    local a, b = s[k], h[k]
    if k == "firewall" then
      if (a == true) ~= (b == true) then return false end
    elseif k == "hwaddr" then
      if a ~= nil and (b == nil or a:upper() ~= b:upper()) then return false end
    elseif a ~= nil or b ~= nil then
      if tostring(a) ~= tostring(b) then return false end
    end
  end
  return true
end

local function same_list(a, b)
  a, b = a or {}, b or {}
  if #a ~= #b then return false end
  for i = 1, #a do
    local x, y = a[i], b[i]
    if type(x) == "table" then
      if x[1] ~= y[1] or x[2] ~= y[2] then return false end
    elseif x ~= y then
      return false
    end
  end
  return true
end

local function same_map(a, b)
  for k, v in pairs(a or {}) do
    if (b or {})[k] ~= v then return false end
  end
  for k in pairs(b or {}) do
    if (a or {})[k] == nil then return false end
  end
  return true
end

-- same(key, spec value, have value): whether the field needs no change
function M.same(key, s, h)
  if key == "net" then return same_net(s, h) end
  if key == "features" then return same_map(s, h) end
  if key == "startup" then
    s, h = s or {}, h or {}
    return s.order == h.order and s.up == h.up
  end
  if key == "lxc" or key == "devices" then return same_list(s, h) end
  if key == "id_maps" then return same_list(s or {}, h or {}) end
  if key == "onboot" then return (s == true) == (h == true) end
  return s == h
end

-- Fields managed only when the site gives them (nil = leave as it is).
local OPTIONAL = { memory_mb = true, swap_mb = true, cores = true, nameserver = true, searchdomain = true,
  apparmor_profile = true }

local function restart_if(c, have, live)
  if have.status == "running" and not live then c.disruptive = "restart" end
  return c
end

local function unsupported_changes(spec, have, out)
  for _, u in ipairs(have.unsupported or {}) do
    out[#out + 1] = { field = u.field, action = have.exists and "update" or "create", to = u.value,
      unsupported = u.reason, step = "unsupported" }
  end
  return spec
end

local function config_changes(spec, have, out)
  local live = have.caps.live
  for _, f in ipairs(M.FIELDS) do
    local key, field = f[1], f[2]
    local s, h = spec[key], have[key]
    if not (OPTIONAL[key] and s == nil) and not M.same(key, s, h) then
      out[#out + 1] = restart_if({ field = field, action = "update", from = M.show(key, h), to = M.show(key, s),
        step = "config", key = key }, have, live[key])
    end
  end
end

-- free_slot(used) -> "mpN": the lowest slot nobody uses
local function free_slot(used)
  for i = 0, 255 do
    local s = "mp" .. i
    if not used[s] then
      used[s] = true
      return s
    end
  end
end

local function show_mount(m)
  if m == nil then return nil end
  if m.kind == "volume" then
    return string.format("%s:%sG", tostring(m.storage), tostring(m.size_gb)) .. (m.volume and (" (" .. m.volume .. ")") or "")
  end
  return m.source .. (m.ro and " (read-only)" or "")
end

local function mount_changes(spec, have, out)
  local live = have.caps.live
  local by_target, used = {}, {}
  for _, m in ipairs(have.mounts or {}) do
    by_target[m.target] = m
    if m.slot then used[m.slot] = true end
  end
  local wanted = {}
  for _, m in ipairs(spec.mounts) do
    wanted[m.target] = true
    do
      local h = by_target[m.target]
      local field = "mount " .. m.target
      if not h then
        out[#out + 1] = restart_if({ field = field, action = "create", to = show_mount(m), step = "mount", mount = m,
          slot = have.caps.slots and free_slot(used) or nil, note = m.from }, have, live["mount:create"])
      elseif h.kind ~= m.kind or (m.kind == "bind" and (h.source ~= m.source or h.ro ~= m.ro))
          or (m.kind == "volume" and h.storage ~= m.storage) then
        out[#out + 1] = restart_if({ field = field, action = "update", from = show_mount(h), to = show_mount(m),
          step = "mount", mount = m, slot = h.slot, note = m.from }, have, live["mount:update"])
      elseif m.kind == "volume" and (h.size_gb or 0) < m.size_gb then
        out[#out + 1] = { field = field .. " size_gb", action = "update", from = h.size_gb, to = m.size_gb,
          step = "resize", disk = h.slot or m.target, size_gb = m.size_gb }
      elseif m.kind == "volume" and (h.size_gb or 0) > m.size_gb then
        out[#out + 1] = { field = field .. " size_gb", action = "update", from = h.size_gb, to = m.size_gb,
          unsupported = "phoenix never shrinks a volume", step = "resize" }
      end
    end
  end
  for _, h in ipairs(have.mounts or {}) do
    if not wanted[h.target] then
      out[#out + 1] = restart_if({ field = "mount " .. h.target, action = "delete", from = show_mount(h), step = "mount",
        slot = h.slot, target = h.target,
        note = h.kind == "volume" and "the volume is detached, not destroyed" or nil }, have, live["mount:delete"])
    end
  end
end

local function hostpath_changes(spec, have, out)
  for _, m in ipairs(spec.mounts) do
    if m.kind == "bind" then
      local st = have.host_paths[m.source]
      if not st then
        out[#out + 1] = { field = "mount " .. m.target .. " host path", action = "create", to = m.source,
          step = "hostpath", mount = m }
      elseif (m.owner_uid and st.uid ~= m.owner_uid) or (m.owner_gid and st.gid ~= m.owner_gid) then
        out[#out + 1] = { field = "mount " .. m.target .. " owner", action = "update",
          from = st.uid .. ":" .. st.gid,
          to = tostring(m.owner_uid or st.uid) .. ":" .. tostring(m.owner_gid or st.gid), step = "hostpath", mount = m }
      end
    end
  end
end

local function rootfs_changes(spec, have, out)
  local s, h = spec.rootfs, have.rootfs
  if not h then return end
  if s.storage and h.storage and s.storage ~= h.storage then
    out[#out + 1] = { field = "storage_pool", action = "update", from = h.storage, to = s.storage, step = "rootfs",
      unsupported = "phoenix does not move a root disk to another storage (pct move-volume)" }
  end
  if s.size_gb and h.size_gb then
    if s.size_gb > h.size_gb then
      out[#out + 1] = { field = "storage_size_gb", action = "update", from = h.size_gb, to = s.size_gb,
        step = "resize", disk = "rootfs", size_gb = s.size_gb }
    elseif s.size_gb < h.size_gb then
      out[#out + 1] = { field = "storage_size_gb", action = "update", from = h.size_gb, to = s.size_gb, step = "resize",
        unsupported = "phoenix never shrinks a disk; the root disk stays " .. h.size_gb .. " GB" }
    end
  end
end

local function snapshot_changes(spec, have, out, stage)
  local names = {}
  if stage == "pre" then
    names[1] = spec.snapshots.pre
  else
    names[#names + 1] = spec.snapshots.final
    names[#names + 1] = spec.snapshots.template
  end
  for _, name in ipairs(names) do
    if not have.snapshots[name] and not out["snap:" .. name] then
      out["snap:" .. name] = true
      local c = { field = "snapshot", action = "create", to = name, step = "snapshot", name = name,
        stage = stage }
      if have.exists then restart_if(c, have, have.caps.live.snapshot) end
      out[#out + 1] = c
    end
  end
end

local function feature_changes(have, out)
  for _, it in ipairs(have.items or {}) do
    local mark = have.markers and have.markers[it.name]
    if not have.markers or mark ~= it.hash then
      local note
      if not have.markers then
        note = "the container is not running: its markers are read after the start"
      elseif mark then
        note = "script or settings changed"
      end
      out[#out + 1] = { field = it.name == "application_script" and "application_script" or ("feature " .. it.name),
        action = "run", from = mark and mark:sub(1, 12) or nil, to = it.hash:sub(1, 12), note = note,
        step = "feature", name = it.name }
    end
  end
end

-- summary(spec) -> what a create makes, in one line
function M.summary(spec)
  local parts = {}
  if spec.clone then
    parts[1] = string.format("full clone of %d from snapshot %s", spec.clone.from, tostring(spec.clone.snapshot))
  else
    parts[1] = "from " .. tostring(spec.template)
  end
  parts[#parts + 1] = "hostname " .. tostring(spec.hostname)
  if spec.memory_mb then parts[#parts + 1] = spec.memory_mb .. " MB" end
  if spec.cores then parts[#parts + 1] = spec.cores .. (spec.cores == 1 and " core" or " cores") end
  parts[#parts + 1] = spec.unprivileged and "unprivileged" or "privileged"
  if #spec.mounts > 0 then parts[#parts + 1] = #spec.mounts .. (#spec.mounts == 1 and " mount" or " mounts") end
  return table.concat(parts, ", ")
end

-- changes(have) -> list: have carries spec, items, markers, caps (see inspect)
function M.changes(have)
  local spec, out = have.spec, {}
  if not have.exists then
    out[#out + 1] = { field = "container", action = "create", to = M.summary(spec), step = "define" }
    unsupported_changes(spec, have, out)
    snapshot_changes(spec, have, out, "pre")
    feature_changes(have, out)
    snapshot_changes(spec, have, out, "post")
  else
    if spec.unprivileged ~= have.unprivileged then
      out[#out + 1] = { field = "unprivileged", action = "update", from = have.unprivileged, to = spec.unprivileged,
        disruptive = "recreate", step = "define",
        note = "fixed at creation: the container would be destroyed and created again, losing its data" }
    end
    unsupported_changes(spec, have, out)
    config_changes(spec, have, out)
    mount_changes(spec, have, out)
    hostpath_changes(spec, have, out)
    rootfs_changes(spec, have, out)
    snapshot_changes(spec, have, out, "pre")
    if have.status ~= "running" then
      out[#out + 1] = { field = "state", action = "update", from = have.status, to = "running", step = "state" }
    end
    feature_changes(have, out)
    snapshot_changes(spec, have, out, "post")
  end
  for k in pairs(out) do
    if type(k) == "string" then out[k] = nil end
  end
  return out
end

return M
