-- A plain LXC container's config file (<lxcpath>/<name>/config) in the
-- container model. phoenix owns the lines after its marker (the "block");
-- the lines before it are the template's, minus the keys the block sets.
--
--   # phoenix: managed below (phoenix converge rewrites these lines)
--   lxc.group = phoenix            -- owned: delete/prune only touch these
--   lxc.uts.name = web
--   lxc.cgroup2.memory.max = 536870912 ...   (lxc.cgroup.* on cgroup v1 hosts)
--   lxc.net.0.type = veth ...
--   lxc.mount.entry = /srv/data srv/data none bind,create=dir 0 0
--   # phoenix: lxc_options
--   lxc.mount.auto = sys:rw        -- the site's raw lines, as written
--   # phoenix: end of managed lines
-- LXC itself appends the keys it changes (lxc-copy, lxc-snapshot: the
-- rootfs path) at the end of the file: lines after the end mark are the
-- template's again.
local raw = require "phoenix.lxc.raw"

local M = {}

M.MARK = "# phoenix: managed below (phoenix converge rewrites these lines)"
M.RAW_MARK = "# phoenix: lxc_options"
M.END_MARK = "# phoenix: end of managed lines"
M.GROUP = "phoenix"
M.NESTING = "/usr/share/lxc/config/nesting.conf"
local MB = 1024 * 1024

-- parse(text) -> { head = {line...}, block = {{k, v}...}, raw = {{k, v}...}, all = {{k, v}...} }
function M.parse(text)
  local out = { head = {}, block = {}, raw = {}, all = {} }
  local where = "head"
  for line in (text or ""):gmatch("([^\n]*)\n?") do
    if line == M.MARK then
      where = "block"
    elseif line == M.RAW_MARK and where == "block" then
      where = "raw"
    elseif line == M.END_MARK and where == "raw" then
      where = "head"
    else
      local k, v = line:match("^%s*(lxc%.[%w_.%-]+)%s*=%s*(.-)%s*$")
      if k then out.all[#out.all + 1] = { k, v } end
      if where == "head" then
        out.head[#out.head + 1] = line
      elseif k then
        table.insert(out[where], { k, v })
      end
    end
  end
  -- the gmatch above yields a last empty match for a final newline
  if out.head[#out.head] == "" then out.head[#out.head] = nil end
  return out
end

local function unquote(v)
  if v and #v >= 2 and v:sub(1, 1) == '"' and v:sub(-1) == '"' then return v:sub(2, -2) end
  return v
end

local function last(list, key)
  local v
  for _, kv in ipairs(list) do
    if kv[1] == key then v = kv[2] end
  end
  return v
end

local function count_cpus(set)
  if not set then return nil end
  local n = 0
  for part in set:gmatch("[^,]+") do
    local a, b = part:match("^%s*(%d+)%-(%d+)%s*$")
    if a then n = n + tonumber(b) - tonumber(a) + 1 elseif part:match("^%s*%d+%s*$") then n = n + 1 else return nil end
  end
  return n
end

local function bytes_mb(v)
  local n = v and tonumber(v)
  if not n then return nil end
  return math.tointeger(n // MB)
end

-- A mount entry: "<source> <target without /> none <options> 0 0".
local function mount_of(v)
  local src, dst, _, opts = v:match("^(%S+)%s+(%S+)%s+(%S+)%s+(%S+)")
  if not src then return nil end
  local o = {}
  for w in opts:gmatch("[^,]+") do o[w] = true end
  return { source = src, target = "/" .. dst:gsub("^/+", ""), ro = o.ro == true, device = o["create=file"] == true }
end

-- model(parsed) -> the container model fields a config file holds
function M.model(p)
  local all = p.all
  local m = { groups = {} }
  for _, kv in ipairs(all) do
    if kv[1] == "lxc.group" then m.groups[#m.groups + 1] = kv[2] end
  end
  m.owned = false
  for _, g in ipairs(m.groups) do
    if g == M.GROUP then m.owned = true end
  end
  m.hostname = unquote(last(all, "lxc.uts.name"))
  local mem = bytes_mb(last(all, "lxc.cgroup2.memory.max") or last(all, "lxc.cgroup.memory.limit_in_bytes"))
  m.memory_mb = mem
  local swap2 = last(all, "lxc.cgroup2.memory.swap.max")
  local memsw = last(all, "lxc.cgroup.memory.memsw.limit_in_bytes")
  if swap2 then m.swap_mb = bytes_mb(swap2) elseif memsw and mem then m.swap_mb = bytes_mb(memsw) - mem end
  m.cores = count_cpus(last(all, "lxc.cgroup2.cpuset.cpus") or last(all, "lxc.cgroup.cpuset.cpus"))
  m.onboot = last(all, "lxc.start.auto") == "1"
  local order, delay = last(all, "lxc.start.order"), last(all, "lxc.start.delay")
  if order or delay then m.startup = { order = tonumber(order), up = tonumber(delay) } end
  local ntype = last(all, "lxc.net.0.type")
  if ntype == "veth" then
    m.net = { name = last(all, "lxc.net.0.name"), bridge = last(all, "lxc.net.0.link"),
      hwaddr = last(all, "lxc.net.0.hwaddr"), ip = last(all, "lxc.net.0.ipv4.address"),
      gw = last(all, "lxc.net.0.ipv4.gateway"), mtu = tonumber(last(all, "lxc.net.0.mtu")) }
  end
  local maps = {}
  for _, kv in ipairs(all) do
    if kv[1] == "lxc.idmap" then maps[#maps + 1] = raw.norm_idmap(kv[2]) end
  end
  m.unprivileged = #maps > 0
  local default = raw.default_map()
  m.id_maps = #maps > 0 and not (#maps == 2 and maps[1] == default[1] and maps[2] == default[2]) and maps or nil
  m.apparmor_profile = last(all, "lxc.apparmor.profile")
  m.features, m.mounts, m.devices = {}, {}, {}
  for _, kv in ipairs(p.block) do
    if kv[1] == "lxc.include" and kv[2] == M.NESTING then
      m.features.nesting = "1"
    elseif kv[1] == "lxc.mount.entry" then
      local mt = mount_of(kv[2])
      if mt and mt.device then
        m.devices[#m.devices + 1] = mt.source
      elseif mt then
        m.mounts[#m.mounts + 1] = { kind = "bind", source = mt.source, target = mt.target, ro = mt.ro }
      end
    end
  end
  m.lxc = raw.split(p.raw).lxc
  m.rootfs_path = (last(all, "lxc.rootfs.path") or ""):gsub("^dir:", "")
  return m
end

local function cpus(n) return n == 1 and "0" or ("0-" .. (n - 1)) end

-- block(m, {cgroup = 1|2}) -> list of {k, v}: the managed lines for model m
function M.block(m, o)
  local v2 = o.cgroup == 2
  local out = {}
  local function add(k, v) if v ~= nil then out[#out + 1] = { k, tostring(v) } end end
  add("lxc.group", M.GROUP)
  add("lxc.uts.name", m.hostname)
  local maps = m.id_maps or (m.unprivileged and raw.default_map()) or {}
  for _, l in ipairs(maps) do add("lxc.idmap", l) end
  if m.memory_mb then
    add(v2 and "lxc.cgroup2.memory.max" or "lxc.cgroup.memory.limit_in_bytes", m.memory_mb * MB)
    if m.swap_mb and v2 then add("lxc.cgroup2.memory.swap.max", m.swap_mb * MB) end
    if m.swap_mb and not v2 then add("lxc.cgroup.memory.memsw.limit_in_bytes", (m.memory_mb + m.swap_mb) * MB) end
  end
  if m.cores then add(v2 and "lxc.cgroup2.cpuset.cpus" or "lxc.cgroup.cpuset.cpus", cpus(m.cores)) end
  if m.onboot then add("lxc.start.auto", "1") end
  if m.startup then
    add("lxc.start.order", m.startup.order)
    add("lxc.start.delay", m.startup.up)
  end
  if m.net then
    add("lxc.net.0.type", "veth")
    add("lxc.net.0.link", m.net.bridge)
    add("lxc.net.0.name", m.net.name)
    add("lxc.net.0.flags", "up")
    add("lxc.net.0.hwaddr", m.net.hwaddr)
    add("lxc.net.0.ipv4.address", m.net.ip)
    add("lxc.net.0.ipv4.gateway", m.net.gw)
    add("lxc.net.0.mtu", m.net.mtu)
  else
    add("lxc.net.0.type", "empty")
  end
  add("lxc.apparmor.profile", m.apparmor_profile)
  if m.features and m.features.nesting == "1" then add("lxc.include", M.NESTING) end
  for _, mt in ipairs(m.mounts or {}) do
    add("lxc.mount.entry", string.format("%s %s none bind,create=dir%s 0 0", mt.source, mt.target:sub(2),
      mt.ro and ",ro" or ""))
  end
  for _, d in ipairs(m.devices or {}) do
    add("lxc.mount.entry", string.format("%s %s none bind,optional,create=file 0 0", d, d:sub(2)))
  end
  return out
end

-- Keys the block owns: the template's lines with these keys are dropped.
local function owned_key(k, m, rawkeys)
  if k == "lxc.uts.name" or k == "lxc.idmap" or k:match("^lxc%.net%.") or k:match("^lxc%.start%.") then
    return true
  end
  if k:match("^lxc%.cgroup2?%.memory%.") or k:match("^lxc%.cgroup2?%.cpuset%.cpus$") then return true end
  if k == "lxc.apparmor.profile" and m.apparmor_profile then return true end
  return rawkeys[k] == true
end

-- render(parsed, m, {cgroup}) -> text: the template's lines (without keys
-- the block sets) then the block for m.
function M.render(p, m, o)
  local rawkeys = {}
  for _, kv in ipairs(m.lxc or {}) do rawkeys[kv[1]] = true end
  local out = {}
  for _, line in ipairs(p.head) do
    local k, v = line:match("^%s*(lxc%.[%w_.%-]+)%s*=%s*(.-)%s*$")
    local drop = k and (owned_key(k, m, rawkeys) or (k == "lxc.group" and v == M.GROUP)
      or (k == "lxc.include" and v == M.NESTING))
    if not drop then out[#out + 1] = line end
  end
  while out[#out] == "" do out[#out] = nil end
  out[#out + 1] = ""
  out[#out + 1] = M.MARK
  for _, kv in ipairs(M.block(m, o)) do out[#out + 1] = kv[1] .. " = " .. kv[2] end
  out[#out + 1] = M.RAW_MARK
  for _, kv in ipairs(m.lxc or {}) do out[#out + 1] = kv[1] .. " = " .. kv[2] end
  out[#out + 1] = M.END_MARK
  return table.concat(out, "\n") .. "\n"
end

return M
