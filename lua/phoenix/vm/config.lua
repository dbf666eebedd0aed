-- A VM's wanted Proxmox options (what `qm set` takes) and how they compare
-- with its config file. Pure: inspect gathers the host facts (GPU
-- addresses, the user-data snippet) into `facts` first.
local pve = require "px.pve"
local util = require "phoenix.util"

local M = {}

-- Options that take effect on a running VM at once (qemu-server's
-- "fast plug" list); the rest wait in [PENDING] until the VM restarts,
-- except what `hotplug` covers.
local FASTPLUG = {
  description = true, hookscript = true, lock = true, migrate_downtime = true, migrate_speed = true,
  name = true, onboot = true, protection = true, shares = true, startup = true, tags = true,
  vmstatestorage = true, balloon = true, cpulimit = true, cpuunits = true,
}
local CLOUDINIT = {
  cicustom = true, cipassword = true, citype = true, ciupgrade = true, ciuser = true,
  nameserver = true, searchdomain = true, sshkeys = true,
}
M.CLOUDINIT = CLOUDINIT

local function hotplug_set(main)
  local v = main.hotplug or "network,disk,usb"
  local set = {}
  if v == "1" then
    for _, k in ipairs({ "network", "disk", "usb", "cpu", "memory", "cloudinit" }) do set[k] = true end
  elseif v ~= "0" then
    for k in v:gmatch("[^,;%s]+") do set[k] = true end
  end
  return set
end

-- live(key, main) -> true when `qm set key` changes a running VM at once.
function M.live(key, main)
  if FASTPLUG[key] then return true end
  local hot = hotplug_set(main)
  if key:match("^net%d+$") then return hot.network == true end
  if key:match("^scsi%d+$") or key:match("^virtio%d+$") then return hot.disk == true end
  if key:match("^usb%d+$") then return hot.usb == true end
  if key == "vcpus" then return hot.cpu == true end
  if key == "memory" then return hot.memory == true end
  if CLOUDINIT[key] or key:match("^ipconfig%d+$") then return hot.cloudinit == true end
  return false
end

local DISK = { ide = true, sata = true, scsi = true, virtio = true, efidisk = true, tpmstate = true, unused = true }
-- A disk option: its value names a volume phoenix cannot compare with the
-- allocation syntax (`local-zfs:10`), so it is only created, never updated.
function M.is_disk(key)
  local base = key:match("^(%a+)%d+$")
  return base ~= nil and DISK[base] == true
end

-- "key=value" / "key: value" -> key, value
function M.split_option(s)
  local k, v = s:match("^([a-z][a-z0-9_-]*)%s*[=:]%s*(.-)%s*$")
  return k, v
end

-- Canonical form of a value for comparison.
local function canonical(key, v)
  if v == nil then return nil end
  v = tostring(v)
  local fmt = pve.format_of(key, "qemu")
  if fmt then
    local t = pve.parse_prop(v, fmt)
    if t then
      if fmt == "qemu-net" then t.macaddr = t.macaddr and t.macaddr:upper() end
      return util.show(t)
    end
  end
  return v
end

function M.same(key, a, b)
  if a == nil or b == nil then return a == b end
  return canonical(key, a) == canonical(key, b)
end

-- sshkeys are stored URI-escaped; compare the text, ignoring blank lines.
function M.decode_keys(s)
  if not s then return nil end
  local text = s:gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end)
  local keys = {}
  for line in text:gmatch("[^\n]+") do
    line = line:match("^%s*(.-)%s*$")
    if line ~= "" then keys[#keys + 1] = line end
  end
  return keys
end

function M.ssh_keys(want)
  local uc = want.user_config or {}
  local keys = {}
  if uc.ssh_public_key then keys[#keys + 1] = uc.ssh_public_key end
  for _, k in ipairs(uc.ssh_public_keys or {}) do keys[#keys + 1] = k end
  local out = {}
  for _, k in ipairs(keys) do
    for line in k:gmatch("[^\n]+") do
      line = line:match("^%s*(.-)%s*$")
      if line ~= "" then out[#out + 1] = line end
    end
  end
  return out
end

local function bridge_of(want)
  local nc = want.network_config or {}
  return nc.bridge or want.network_bridge
end

-- net0 as wanted, keeping the MAC the VM already has (Proxmox made one)
-- unless the site names one.
local function net0(want, main)
  local bridge = bridge_of(want)
  if not bridge then return nil end
  local nc = want.network_config or {}
  local cur = main.net0 and pve.parse_prop(main.net0, "qemu-net") or {}
  local t = { model = cur.model or "virtio", bridge = bridge }
  t.macaddr = nc.mac or cur.macaddr
  if nc.vlan then t.tag = nc.vlan end
  if want.firewall and want.firewall.enabled then t.firewall = true end
  -- keep what the site does not manage (rate, mtu, queues ...)
  for k, v in pairs(cur) do
    if t[k] == nil and k ~= "tag" and k ~= "firewall" then t[k] = v end
  end
  return assert(pve.format_prop(t, "qemu-net"))
end

local function ipconfig0(want)
  local nc = want.network_config
  if not nc or not nc.ip then return nil end
  if nc.ip == "dhcp" then return "ip=dhcp" end
  local s = "ip=" .. nc.ip
  if nc.gw then s = s .. ",gw=" .. nc.gw end
  return s
end

local function startup(want)
  if want.boot_order == nil and want.boot_delay == nil then return nil end
  local parts = {}
  if want.boot_order ~= nil then parts[#parts + 1] = "order=" .. want.boot_order end
  if want.boot_delay ~= nil then parts[#parts + 1] = "up=" .. want.boot_delay end
  return table.concat(parts, ",")
end

local function num(v) return math.tointeger(v) and tostring(math.tointeger(v)) or nil end

--[[ wanted(want, main, facts) -> list of { key, value, secret?, create_only?, from_options? }
in a stable order. facts: { hostpci = {"0000:01:00", ...} | nil, cicustom = "user=..." | nil,
tags = "phoenix;web" (the --tags value), password_hash = hex | nil }. ]]
function M.wanted(want, main, facts)
  facts = facts or {}
  local list, seen = {}, {}
  local function put(key, value, extra)
    if value == nil then return end
    local e = { key = key, value = tostring(value) }
    for k, v in pairs(extra or {}) do e[k] = v end
    if seen[key] then
      list[seen[key]] = e -- a later source wins, in the first one's place
    else
      list[#list + 1] = e
      seen[key] = #list
    end
  end
  put("name", want.name)
  put("cores", num(want.cores))
  put("sockets", num(want.sockets))
  put("memory", num(want.memory_mb))
  put("net0", net0(want, main))
  put("agent", "enabled=1")
  put("onboot", want.start_at_boot and "1" or "0")
  put("startup", startup(want))
  put("tags", facts.tags)
  if want.description then put("description", want.description) end
  -- cloud-init
  local uc = want.user_config or {}
  put("ciuser", uc.username)
  if uc.password then put("cipassword", uc.password, { secret = true }) end
  local keys = M.ssh_keys(want)
  if #keys > 0 then put("sshkeys", table.concat(keys, "\n") .. "\n", { keys = keys }) end
  put("ipconfig0", ipconfig0(want))
  local nc = want.network_config or {}
  if nc.nameserver and #nc.nameserver > 0 then put("nameserver", table.concat(nc.nameserver, " ")) end
  put("searchdomain", nc.searchdomain or want.domain_name)
  put("cicustom", facts.cicustom)
  for i, h in ipairs(facts.hostpci or {}) do put("hostpci" .. (i - 1), h) end
  -- the site's own options win over the ones above
  for _, o in ipairs(want.qm_options or {}) do
    local k, v = M.split_option(o)
    if k then put(k, v, { from_options = true, create_only = M.is_disk(k) }) end
  end
  return list
end

-- Is the wanted entry e already what the config says? The password is
-- stored hashed, so the host record tells whether this one was set.
local function satisfied(e, main, facts, description)
  local cur = main[e.key]
  if e.key == "description" then
    return (description or ""):gsub("%s+$", "") == e.value:gsub("%s+$", "")
  end
  if e.create_only then return cur ~= nil end
  if e.key == "cipassword" then
    return cur ~= nil and facts.password_recorded == true
  end
  if e.key == "sshkeys" then
    local have = M.decode_keys(cur)
    return have ~= nil and util.equal(have, e.keys)
  end
  if e.key == "onboot" and cur == nil then return e.value == "0" end
  if e.key == "tags" then return facts.tags_ok == true end
  return M.same(e.key, cur, e.value)
end

local function shown(e, v)
  if e.key == "sshkeys" and v then return #(M.decode_keys(v)) .. " key(s)" end
  if e.key == "description" and v then return (#v > 40 and v:sub(1, 37) .. "..." or v):gsub("\n", " ") end
  return v
end

--[[ changes(want, have, facts) -> config changes for an existing VM:
{ field = key, from, to, action = "update"|"create"|"delete", disruptive = "restart"?,
  key = key, value = string|nil, delete = true?, secret = true? }.
have: { main, pending, description, running }. ]]
function M.changes(want, have, facts)
  local main = have.main
  local out = {}
  local wanted = M.wanted(want, main, facts)
  local wanted_keys = {}
  for _, e in ipairs(wanted) do
    wanted_keys[e.key] = true
    if not satisfied(e, main, facts, have.description) then
      local c = {
        field = e.key, key = e.key, value = e.value, secret = e.secret,
        action = main[e.key] == nil and "create" or "update",
        from = shown(e, main[e.key]), to = shown(e, e.value),
      }
      if e.key == "sshkeys" then c.ssh_keys = e.keys end
      if have.running and not M.live(e.key, main) then
        c.disruptive = "restart"
        c.note = (have.pending and have.pending[e.key]) and "set, waiting for a restart" or nil
      end
      out[#out + 1] = c
    end
  end
  -- GPUs phoenix assigned before and the site no longer wants
  if facts.hostpci then
    for key in pairs(main) do
      if key:match("^hostpci%d+$") and not wanted_keys[key] then
        out[#out + 1] = { field = key, key = key, delete = true, action = "delete", from = main[key],
          disruptive = have.running and "restart" or nil }
      end
    end
  end
  table.sort(out, function(a, b) return a.field < b.field end)
  return out
end

return M
