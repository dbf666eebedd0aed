-- Guest inventory of the pve target: configs read straight from the files
-- pct/qm parse (/etc/pve/nodes/<node>/{lxc,qemu-server}/<vmid>.conf) and
-- the live state (status, uptime ...) from one pvesh call for all guests.
local pve = require "px.pve"
local util = require "phoenix.util"

local M = {}

M.TAG = "phoenix"

M.DIRS = { lxc = "lxc", qemu = "qemu-server" }

function M.conf_path(node, kind, vmid)
  return string.format("/etc/pve/nodes/%s/%s/%d.conf", node, M.DIRS[kind], vmid)
end

-- A node name as Proxmox allows it (a host name); anything else from a
-- tool's output never becomes part of a path.
function M.node_name(s)
  return type(s) == "string" and #s <= 63 and s:match("^%w[%w-]*$") ~= nil
end

-- tags(s) -> sorted list. Proxmox splits on [,; ]; a value the strict
-- parser refuses (a container keeps it) is still split the same way.
function M.tags(s)
  if s == nil or s == "" then return {} end
  local list = pve.parse_tags(s)
  if not list then
    list = {}
    for tag in s:gmatch("[^,; ]+") do list[#list + 1] = tag end
  end
  table.sort(list)
  return list
end

local function has_tag(list, tag)
  for _, t in ipairs(list) do
    if t:lower() == tag then return true end
  end
  return false
end

-- read_conf(t, node, kind, vmid) -> conf, path | nil (no such file) | nil, msg
function M.read_conf(t, node, kind, vmid)
  local path = M.conf_path(node, kind, vmid)
  local text, err = t:read(path)
  if not text then
    if not t:exists(path) then return nil end
    return nil, t:path(path) .. ": " .. tostring(err)
  end
  local conf, perr = pve.parse_config(text, kind)
  if not conf then return nil, t:path(path) .. ": " .. perr end
  return conf, path
end

-- find_conf(t, nodes, vmid) -> conf, kind, node, path | nil | nil, msg:
-- the first of the given nodes (in order) holding a config for vmid.
function M.find_conf(t, nodes, vmid)
  for _, node in ipairs(nodes) do
    for _, kind in ipairs({ "lxc", "qemu" }) do
      local conf, path_or_err = M.read_conf(t, node, kind, vmid)
      if conf then return conf, kind, node, path_or_err end
      if path_or_err then return nil, path_or_err end
    end
  end
  return nil
end

-- entry(vmid, kind, node, conf, path, row) -> an inventory entry. The
-- config file is the truth for what it holds (lock, template, tags, name);
-- the pvesh row adds the live state.
function M.entry(vmid, kind, node, conf, path, row)
  local main = conf.main
  local tags = M.tags(main.tags or (row and row.tags))
  local name = kind == "lxc" and main.hostname or main.name
  return {
    vmid = vmid,
    kind = kind,
    node = node,
    conf = conf,
    file = path,
    status = row and row.status or "unknown",
    lock = main.lock,
    template = main.template == "1",
    tags = tags,
    owned = has_tag(tags, M.TAG),
    name = name or (row and row.name) or ((kind == "lxc" and "CT" or "VM") .. vmid),
    live = row,
  }
end

-- rows(text, argv) -> list | nil, msg: pvesh JSON output.
function M.rows(text, argv)
  local rows, err = pve.parse_pvesh_json(text)
  if not rows then
    return nil, "`" .. util.argv_string(argv) .. "` printed what is not pvesh JSON: " .. err
  end
  return rows
end

-- scan(t, node) -> { [vmid] = {kind, conf, path} } | nil, msg: every
-- guest config of one node.
function M.scan(t, node)
  local found = {}
  for _, kind in ipairs({ "lxc", "qemu" }) do
    local dir = string.format("/etc/pve/nodes/%s/%s", node, M.DIRS[kind])
    local files = {}
    if t:exists(dir) then
      local lerr
      files, lerr = t:list(dir)
      if not files then return nil, t:path(dir) .. ": " .. tostring(lerr) end
    end
    for _, file in ipairs(files) do
      local id = file:match("^(%d+)%.conf$")
      local vmid = id and math.tointeger(tonumber(id))
      if vmid then
        local conf, path_or_err = M.read_conf(t, node, kind, vmid)
        if conf then
          found[vmid] = { kind = kind, conf = conf, path = path_or_err }
        elseif path_or_err then
          return nil, path_or_err
        end -- gone since the listing: a guest just destroyed
      end
    end
  end
  return found
end

-- build(t, rows) -> guests: the node's configs joined with the rows of
-- /cluster/resources; guests on other nodes of a cluster are read from
-- their node's directory (/etc/pve is shared cluster-wide).
function M.build(t, rows)
  local by_id = {}
  for _, r in ipairs(rows) do
    local vmid = math.tointeger(r.vmid)
    if vmid and M.DIRS[r.type] then by_id[vmid] = r end
  end
  local local_confs, err = M.scan(t, t.node)
  if not local_confs then return nil, err end
  local guests = {}
  for vmid, c in pairs(local_confs) do
    guests[vmid] = M.entry(vmid, c.kind, t.node, c.conf, c.path, by_id[vmid])
  end
  for vmid, r in pairs(by_id) do
    if not guests[vmid] and M.node_name(r.node) and r.node ~= t.node then
      local conf, path_or_err = M.read_conf(t, r.node, r.type, vmid)
      if conf then
        guests[vmid] = M.entry(vmid, r.type, r.node, conf, path_or_err, r)
      elseif path_or_err then
        return nil, path_or_err
      end
    end
  end
  return guests
end

return M
