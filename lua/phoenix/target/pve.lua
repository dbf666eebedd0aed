-- The pve target: a Proxmox VE node, reached locally. Guest configs are
-- read straight from /etc/pve, the live state of all guests comes from one
-- pvesh call per run, storage from one `pvesm status`, ZFS from one
-- `zfs get`; changes go through pct/qm/pvesm/pvesh/zfs/zpool (t:pve).
-- `root` and `bin` point it at the simulator in tests.
local Base = require "phoenix.target.base"
local async = require "phoenix.async"
local util = require "phoenix.util"
local options = require "phoenix.target.pve.options"
local inventory = require "phoenix.target.pve.inventory"
local pve = require "px.pve"
local sys = require "px.sys"
local log = require "px.log"

local Pve = setmetatable({}, { __index = Base })
Pve.__index = Pve
Pve.type = "pve"
Pve.options = options.help
Pve.features = { ct = true, vm = true, host = true }
Pve.TAG = inventory.TAG

local TOOLS = { pct = true, qm = true, pvesm = true, pvesh = true, zfs = true, zpool = true }

-- The node: the option, else the one directory under etc/pve/nodes, else
-- (a cluster) the one named as this host.
local function detect_node(t, wanted)
  local dir = "/etc/pve/nodes"
  local nodes = {}
  for _, name in ipairs(t:exists(dir) and t:list(dir) or {}) do
    local st = t:stat(dir .. "/" .. name)
    if st and st.type == "dir" then nodes[#nodes + 1] = name end
  end
  if wanted then
    if not t:exists(dir .. "/" .. wanted) then
      return nil, string.format("target option node: %s does not exist (nodes: %s)",
        t:path(dir .. "/" .. wanted), #nodes > 0 and table.concat(nodes, ", ") or "none")
    end
    return wanted
  end
  if #nodes == 1 then return nodes[1] end
  local host = (sys.hostname() or "localhost"):match("^[^.]+")
  if #nodes == 0 then return host end
  for _, n in ipairs(nodes) do
    if n == host then return host end
  end
  return nil, string.format("%s holds several nodes (%s) and none is this host ('%s'): "
    .. "choose one with --target-opt node=NAME", t:path(dir), table.concat(nodes, ", "), host)
end

-- new(spec) -> target | nil, msg
function Pve.new(spec)
  local t, err = Base.new(spec, Pve) -- refuses unknown options
  if not t then return nil, err end
  local o, oerr = options.coerce(spec)
  if not o then return nil, oerr end
  if not t:exists("/etc/pve") then
    return nil, t:path("/etc/pve") .. " does not exist: not a Proxmox VE node "
      .. "(for the simulator: --target-opt root=DIR/root --target-opt bin=DIR/bin)"
  end
  t.bin = o.bin
  t.options = o
  local node, nerr = detect_node(t, o.node)
  if not node then return nil, nerr end
  t.node = node
  t.calls = 0    -- tool calls made through t:pve
  t.gens = {}    -- vmid -> times t:refresh(vmid) was called
  t.loaded = {}  -- vmid -> the generation the inventory entry was read at
  t.zfs_batches = {}
  return t
end

local OWN = { check = true, ok_codes = true, lock_retries = true }

local function lock_timeout(res)
  return (res.stderr or ""):find("can't lock file '[^']*' %- got timeout") ~= nil
end

local function accepted(res, o)
  if res.timed_out then return false end
  if o.check == false then return true end
  for _, c in ipairs(o.ok_codes or { 0 }) do
    if res.code == c then return true end
  end
  return false
end

-- pve(tool, args, opts) -> result | nil, msg [, result]
-- Runs a Proxmox/ZFS tool with the argv list `args` (through self:run, so
-- `bin` applies and the scheduler multiplexes). opts: px.exec options
-- (stdin, env, timeout_ms ...) plus check / ok_codes as ctx:run, and
-- lock_retries to override the target's. A call that found the guest's
-- config locked ("can't lock file '…' - got timeout") did nothing, so it is
-- retried after lock_backoff_ms, doubling; any other failure is final.
function Pve:pve(tool, args, opts)
  if not TOOLS[tool] then
    error("t:pve: unknown tool '" .. tostring(tool) .. "' (pct, qm, pvesm, pvesh, zfs, zpool)", 2)
  end
  if type(args) ~= "table" then error("t:pve: args must be a list", 2) end
  local argv = { tool }
  for i, a in ipairs(args) do
    if type(a) ~= "string" and math.type(a) ~= "integer" then
      error(string.format("t:pve: args[%d] is a %s, not a string", i, type(a)), 2)
    end
    argv[#argv + 1] = tostring(a)
  end
  opts = opts or {}
  local run = { argv = argv, timeout_ms = self.options.timeout_ms }
  for k, v in pairs(opts) do
    if not OWN[k] then run[k] = v end
  end
  local retries = opts.lock_retries or self.options.lock_retries
  local attempt = 0
  while true do
    self.calls = self.calls + 1
    local res, err = self:tool_run(run)
    if not res then return nil, util.command_error(argv, nil, err) end
    -- a lock timeout means the call did nothing: retried even with check=false
    local locked = res.code ~= 0 and not res.timed_out and lock_timeout(res)
    if not locked and accepted(res, opts) then return res end
    local msg = util.command_error(argv, res)
    if not locked then return nil, msg, res end
    if attempt >= retries then
      return nil, string.format("%s (still locked after %d %s)", msg, retries, retries == 1 and "retry" or "retries"), res
    end
    attempt = attempt + 1
    local wait = self.options.lock_backoff_ms * 2 ^ (attempt - 1) / 1000
    log.info(string.format("`%s`: guest config locked, retry %d/%d in %.1f s",
      util.argv_string(argv), attempt, retries, wait))
    async.sleep(wait)
  end
end

-- tool_run(opts) -> result | nil, msg: how t:pve runs one call (the
-- pve-api target answers from the REST API instead).
function Pve:tool_run(opts) return self:run(opts) end

-- Inventory ----------------------------------------------------------------

local RESOURCES = { "get", "/cluster/resources", "--type", "vm", "--output-format", "json" }

-- cluster_rows() -> rows | nil, msg: the one call for all guests' state.
local function cluster_rows(t)
  local res, err = t:pve("pvesh", RESOURCES)
  if not res then return nil, err end
  return inventory.rows(res.stdout, { "pvesh", table.unpack(RESOURCES) })
end

local function load(t)
  local gens = util.copy(t.gens)
  local rows, err = cluster_rows(t)
  if not rows then return nil, err end
  local guests, gerr = inventory.build(t, rows)
  if not guests then return nil, gerr end
  t.loaded = gens
  return { guests = guests, calls = 1, node = t.node }
end

local function stale(t, vmid) return t.gens[vmid] ~= t.loaded[vmid] end

-- Nodes to look for a guest's config on: this node, then the one it was on.
local function nodes_of(t, inv, vmid)
  local old = inv.guests[vmid]
  if old and old.node ~= t.node then return { t.node, old.node } end
  return { t.node }
end

-- reread(t, inv, vmids, rows_for) re-reads the configs of vmids; rows_for(vmid,
-- kind, node) gives each one's live state (nil, msg on failure).
local function reread(t, inv, vmids, rows_for)
  for _, vmid in ipairs(vmids) do
    local gen = t.gens[vmid]
    local conf, kind, node, path = inventory.find_conf(t, nodes_of(t, inv, vmid), vmid)
    if conf then
      local row, err = rows_for(vmid, kind, node)
      if row == nil and err then return nil, err end
      inv.guests[vmid] = inventory.entry(vmid, kind, node, conf, path, row or nil)
    elseif kind then
      return nil, kind -- find_conf's error message
    else
      inv.guests[vmid] = nil -- destroyed
    end
    t.loaded[vmid] = gen
  end
  return true
end

-- One stale guest: its status with one call.
local function reload_one(t, inv, vmid)
  return reread(t, inv, { vmid }, function(id, kind, node)
    local argv = { "get", string.format("/nodes/%s/%s/%d/status/current", node, kind, id),
      "--output-format", "json" }
    local res, err = t:pve("pvesh", argv)
    if not res then return nil, err end
    inv.calls = inv.calls + 1
    local row, perr = inventory.rows(res.stdout, { "pvesh", table.unpack(argv) })
    if not row then return nil, perr end
    return row
  end)
end

-- Several stale guests: one /cluster/resources call serves them all.
local function reload_many(t, inv, vmids)
  local rows, err = cluster_rows(t)
  if not rows then return nil, err end
  inv.calls = inv.calls + 1
  local by_id = {}
  for _, r in ipairs(rows) do
    if math.tointeger(r.vmid) then by_id[math.tointeger(r.vmid)] = r end
  end
  return reread(t, inv, vmids, function(id) return by_id[id] or false end)
end

local function inv_loaded(t)
  return t:memo("inventory", function() return load(t) end)
end

-- inventory() -> { guests = {[vmid] = entry}, calls = N, node } | nil, msg
-- Loaded once per run (one tool call); guests marked by refresh() are read
-- again first (one more call for all of them).
function Pve:inventory()
  local inv, err = inv_loaded(self)
  if not inv then return nil, err end
  local vmids = {}
  for vmid in pairs(self.gens) do
    if stale(self, vmid) then vmids[#vmids + 1] = vmid end
  end
  if #vmids == 0 then return inv end
  table.sort(vmids)
  -- generations only grow, so the key names this state: concurrent callers
  -- share one re-read, and a later refresh() makes a new key
  local parts = {}
  for i, vmid in ipairs(vmids) do parts[i] = vmid .. "=" .. self.gens[vmid] end
  local key = "stale:" .. table.concat(parts, ",")
  local ok, rerr = self:memo(key, function()
    if #vmids == 1 then return reload_one(self, inv, vmids[1]) end
    return reload_many(self, inv, vmids)
  end)
  if not ok then return nil, rerr end
  return inv
end

local function check_vmid(vmid, level)
  local n = math.tointeger(tonumber(vmid))
  if not n or n < 1 then error("expected a guest ID, got " .. tostring(vmid), level + 1) end
  return n
end
Pve.check_vmid = check_vmid -- for the pve-api target

-- guest(vmid) -> entry | nil (no such guest) | nil, msg
function Pve:guest(vmid)
  vmid = check_vmid(vmid, 2)
  local inv, err = inv_loaded(self)
  if not inv then return nil, err end
  if stale(self, vmid) then
    local key = "guest:" .. vmid .. ":" .. self.gens[vmid]
    local ok, rerr = self:memo(key, function() return reload_one(self, inv, vmid) end)
    if not ok then return nil, rerr end
  end
  return inv.guests[vmid]
end

-- guest_conf(vmid, kind) -> a guest's parsed config, read now | nil (absent) | nil, msg
function Pve:guest_conf(vmid, kind)
  vmid = check_vmid(vmid, 2)
  return inventory.read_conf(self, self.node, kind, vmid)
end

-- refresh(vmid) marks a guest as changed: the next guest()/inventory() reads
-- its config file again and its status with one call. refresh() with no
-- argument drops every batch of the run (inventory, storages, ZFS).
function Pve:refresh(vmid)
  if vmid == nil then
    self:forget()
    self.gens, self.loaded, self.zfs_batches = {}, {}, {}
    return true
  end
  vmid = check_vmid(vmid, 2)
  self.gens[vmid] = (self.gens[vmid] or 0) + 1
  return true
end

-- owned_guests() -> { {type = "lxc"|"vm", name = "101"}, ... } | nil, msg:
-- this node's guests carrying the phoenix tag, by ID (for --prune).
function Pve:owned_guests()
  local inv, err = self:inventory()
  if not inv then return nil, err end
  local ids = {}
  for vmid, g in pairs(inv.guests) do
    if g.owned and g.node == self.node then ids[#ids + 1] = vmid end
  end
  table.sort(ids)
  local out = {}
  for i, vmid in ipairs(ids) do
    out[i] = { type = inv.guests[vmid].kind == "lxc" and "lxc" or "vm", name = tostring(vmid) }
  end
  return out
end

-- tags_option(tags) -> "phoenix;web" | nil, msg: the --tags value for
-- pct/qm create, clone and set: the given tags (a list, or a string split
-- as Proxmox does) plus the phoenix tag, lower-cased (Proxmox compares
-- tags case-insensitively; lower case reads back the same everywhere),
-- sorted, without duplicates.
function Pve.tags_option(_, tags)
  local list = {}
  if type(tags) == "string" then
    for tag in tags:gmatch("[^,; ]+") do list[#list + 1] = tag:lower() end
  elseif type(tags) == "table" then
    for i, tag in ipairs(tags) do list[i] = tostring(tag):lower() end
  elseif tags ~= nil then
    error("tags_option: expected a list or a string of tags", 2)
  end
  list[#list + 1] = inventory.TAG
  for _, tag in ipairs(list) do
    local one = pve.parse_tags(tag)
    if not one or #one ~= 1 or one[1] ~= tag then
      return nil, "tags: '" .. tag .. "' is not a valid Proxmox tag (letters, digits, _ + . -)"
    end
  end
  table.sort(list)
  return pve.format_tags(list)
end

-- Storage and ZFS ------------------------------------------------------------

-- storages() -> pvesm status rows | nil, msg (one call per run;
-- t:forget("storages") after adding one).
function Pve:storages()
  return self:memo("storages", function()
    local res, err = self:pve("pvesm", { "status" })
    if not res then return nil, err end
    local rows, perr = pve.parse_pvesm_status(res.stdout)
    if not rows then return nil, "`pvesm status` printed what phoenix cannot read: " .. perr end
    return rows
  end)
end

-- storage(name) -> row | nil (absent) | nil, msg
function Pve:storage(name)
  local rows, err = self:storages()
  if not rows then return nil, err end
  for _, r in ipairs(rows) do
    if r.name == name then return r end
  end
  return nil
end

-- zfs_command(args, opts): the `zfs` calls of zfs_get (base.lua) go through
-- t:pve, so Proxmox lock timeouts are retried here too.
function Pve:zfs_command(args, opts)
  return self:pve("zfs", args, opts)
end

return Pve
