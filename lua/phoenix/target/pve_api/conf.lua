-- API answers -> the shapes the pve target's readers use: a guest config
-- as px.pve.parse_config gives it (values as the strings Proxmox writes),
-- and storages as px.pve.parse_pvesm_status gives them.
local json = require "px.json"

local M = {}

-- Proxmox writes numbers as written in the file: integers plain, floats
-- in their shortest form, booleans 0/1.
local function str(v)
  if v == json.null or v == nil then return nil end
  if type(v) == "boolean" then return v and "1" or "0" end
  if math.type(v) == "integer" then return tostring(v) end
  if math.type(v) == "float" then
    if v == math.floor(v) and math.abs(v) < 2 ^ 53 then return tostring(math.tointeger(v)) end
    return (string.format("%.15g", v))
  end
  if type(v) == "string" then return v end
  return nil
end

local function section() return { main = {}, lxc = {}, description = nil } end

-- build(kind, current, pending, snapshots) -> cfg | nil, msg
--   current: GET .../config?current=1; pending: GET .../pending;
--   snapshots: GET .../snapshot
function M.build(kind, current, pending, snapshots)
  if type(current) ~= "table" then return nil, "the config answer is not an object" end
  local cfg = section()
  cfg.pending, cfg.delete, cfg.special, cfg.snapshots, cfg.warnings = section(), {}, {}, {}, {}
  for k, v in pairs(current) do
    if k == "description" then
      cfg.description = str(v)
    elseif k == "lxc" and kind == "lxc" then
      for _, pair in ipairs(type(v) == "table" and v or {}) do
        if type(pair) == "table" and type(pair[1]) == "string" then cfg.lxc[#cfg.lxc + 1] = { pair[1], str(pair[2]) or "" } end
      end
    elseif k ~= "digest" then
      local s = str(v)
      if s == nil then return nil, "config key " .. k .. " holds a " .. type(v) end
      cfg.main[k] = s
    end
  end
  for _, item in ipairs(type(pending) == "table" and pending or {}) do
    if type(item) == "table" and type(item.key) == "string" then
      if item.pending ~= nil and item.pending ~= json.null then
        if item.key == "description" then cfg.pending.description = str(item.pending)
        else cfg.pending.main[item.key] = str(item.pending) end
      end
      local d = item.delete
      if d == 1 or d == 2 or d == true then cfg.delete[#cfg.delete + 1] = { key = item.key, force = d == 2 } end
    end
  end
  for _, s in ipairs(type(snapshots) == "table" and snapshots or {}) do
    if type(s) == "table" and type(s.name) == "string" and s.name ~= "current" then
      local snap = section()
      snap.main.snaptime = str(s.snaptime)
      snap.main.parent = str(s.parent)
      snap.main.vmstate = s.vmstate and str(s.vmstate) or nil
      snap.description = str(s.description)
      cfg.snapshots[s.name] = snap
    end
  end
  return cfg
end

-- missing(msg): Proxmox's "no such guest" (on this node, of this kind)
function M.missing(msg)
  msg = msg or ""
  return msg:find("does not exist", 1, true) ~= nil
end

-- storage_rows(rows) -> rows as parse_pvesm_status (KiB) | nil, msg
function M.storage_rows(rows)
  if type(rows) ~= "table" then return nil, "GET /nodes/{node}/storage: expected a list" end
  local out = {}
  for _, r in ipairs(rows) do
    if type(r) == "table" and type(r.storage) == "string" then
      local enabled = r.enabled ~= 0 and r.enabled ~= false
      local active = r.active == 1 or r.active == true
      local total, used, avail = math.tointeger(r.total), math.tointeger(r.used), math.tointeger(r.avail)
      local row = {
        name = r.storage, type = r.type, enabled = enabled, active = active,
        status = not enabled and "disabled" or active and "active" or "inactive",
        total = total and total // 1024 or 0, used = used and used // 1024 or 0, available = avail and avail // 1024 or 0,
      }
      if enabled and total and total > 0 then row.percent = math.floor(used / total * 10000 + 0.5) / 100 end
      out[#out + 1] = row
    end
  end
  table.sort(out, function(a, b) return a.name < b.name end)
  return out
end

return M
