-- The pve-api target: a Proxmox VE node or cluster over the REST API
-- (HTTPS, API token). It is the pve target with another way to talk:
-- the drivers still build pct/qm/pvesh/pvesm argv lists, and tool_run
-- turns each into the request the Proxmox CLI itself makes for it
-- (pve_api/calls.lua), waiting on the task's UPID where there is one.
-- What has no API (commands and files inside containers, host files, zfs,
-- qm importdisk) goes over ssh when the `ssh` option names the node, and
-- otherwise fails saying so. Guests on any node of the cluster are found
-- (one /cluster/resources call); new guests go to `node`.
local Base = require "phoenix.target.base"
local Pve = require "phoenix.target.pve"
local calls = require "phoenix.target.pve_api.calls"
local client = require "phoenix.target.pve_api.client"
local conf = require "phoenix.target.pve_api.conf"
local inventory = require "phoenix.target.pve.inventory"
local options = require "phoenix.target.pve_api.options"
local async = require "phoenix.async"
local json = require "px.json"
local sys = require "px.sys"
local util = require "phoenix.util"

local Api = setmetatable({}, { __index = Pve })
Api.__index = Api
Api.type = "pve-api"
Api.options = options.help
Api.features = { ct = true, vm = true, host = false }
Api.TAG = Pve.TAG
Api.remote = true -- its files and /sys are not this machine's

-- The node new guests go to: the option, else the cluster's only node,
-- else the one named like `host`.
local function choose_node(t, wanted)
  local rows, err = t.api:request("GET", "/nodes")
  if not rows then return nil, "cannot reach the Proxmox API at " .. t.api:describe() .. ": " .. err end
  local names = {}
  for _, r in ipairs(type(rows) == "table" and rows or {}) do
    if type(r) == "table" and inventory.node_name(r.node) then names[#names + 1] = r.node end
  end
  table.sort(names)
  local function known(n)
    for _, x in ipairs(names) do if x == n then return true end end
    return false
  end
  if wanted then
    if not known(wanted) then
      return nil, string.format("target option node: the cluster has no node '%s' (nodes: %s)", wanted,
        #names > 0 and table.concat(names, ", ") or "none")
    end
    return wanted
  end
  if #names == 1 then return names[1] end
  local short = t.options.host:match("^[^.]+")
  if known(short) then return short end
  return nil, string.format("the cluster has several nodes (%s): choose one with --target-opt node=NAME",
    table.concat(names, ", "))
end

-- The node's shell ---------------------------------------------------------

local function no_shell(t, what)
  return string.format("%s needs the node's shell, which the Proxmox API does not give: "
    .. "name it with --target-opt ssh=root@%s", what, t.options.host)
end

function Api:tool(name) return name end -- resolved on the node (PATH, bin)

function Api:run(opts)
  if not self.shell then return nil, no_shell(self, "running `" .. tostring(opts.argv[1]) .. "`") end
  return self.shell:run(opts)
end

-- The file operations of Base's read/write/... : the transport's, or
-- ones that say the shell is missing.
local FILE_OPS = { "read", "exists", "stat", "list", "mkdir", "remove", "write" }

local function shell_files(t)
  local files = {}
  for _, op in ipairs(FILE_OPS) do
    if t.shell then
      files[op] = function(...) return t.shell[op](t.shell, ...) end
    elseif op == "exists" then
      files[op] = function() return false end
    else
      files[op] = function(path)
        return nil, no_shell(t, (op == "write" and "writing" or op) .. " " .. path)
      end
    end
  end
  return files
end

function Api.new(spec)
  local s = util.copy(spec)
  s.root, s.bin = nil, nil -- paths on the node, not here (Base.new resolves root locally)
  local t, err = Base.new(s, Api) -- refuses unknown options
  if not t then return nil, err end
  local o, oerr = options.coerce(spec)
  if not o then return nil, oerr end
  t.spec, t.options, t.root, t.bin = spec, o, o.root or "/", nil
  t.api = client.new(o)
  if o.ssh then
    local ssh = require "phoenix.transport.ssh"
    local user, host = o.ssh:match("^(.-)@(.+)$")
    local tr, terr = ssh.new { host = host or o.ssh, user = user ~= "" and user or nil, port = o.ssh_port,
      identity = o.ssh_identity, known_hosts = o.ssh_known_hosts, path_prefix = o.bin }
    if not tr then return nil, "target option ssh: " .. terr end
    t.shell = tr
  end
  t.files = shell_files(t)
  local node, nerr = choose_node(t, o.node)
  if not node then return nil, nerr end
  t.node = node
  t.calls = 0
  t.gens, t.loaded, t.zfs_batches = {}, {}, {}
  return t
end

function Api:supports(feature)
  if feature == "host" then return self.shell ~= nil end
  return self.features[feature] == true
end

function Api:close()
  if self.shell then self.shell:close() end
end

-- argv -> API ----------------------------------------------------------------

local function result(code, stdout, stderr)
  return { code = code, stdout = stdout or "", stderr = stderr or "", timed_out = code == 124 }
end

local function node_of_upid(upid) return upid:match("^UPID:([%w%-]+):") end

-- The guest's node: where the cluster says it is, else this target's.
function Api:node_of(vmid)
  local inv = self.cache.inventory and self.cache.inventory.values and self.cache.inventory.values[1]
  local g = inv and inv.guests[vmid]
  return g and g.node or self.node
end

local function encode(v)
  if v == json.null or v == nil then return "" end
  return json.encode(v) .. "\n"
end

-- qm guest exec: start it through the agent, then poll exec-status as qm
-- does, until it exits or the --timeout passes.
local function guest_exec(t, req, run)
  local params = { command = req.command }
  if req.pass_stdin then params["input-data"] = run.stdin or "" end
  local started, err = t.api:request("POST", req.path .. "/exec", params)
  if not started then return result(255, "", err .. "\n") end
  local pid = type(started) == "table" and math.tointeger(started.pid)
  if not pid then return result(255, "", "agent/exec answered without a pid\n") end
  local deadline = sys.monotonic() + req.timeout_s
  local pause = 0.05
  while true do
    local st, serr = t.api:request("GET", req.path .. "/exec-status", { pid = pid })
    if not st then return result(255, "", serr .. "\n") end
    if type(st) == "table" and (st.exited == 1 or st.exited == true) then
      return result(0, json.encode({ exitcode = st.exitcode, exited = 1, ["out-data"] = st["out-data"],
        ["err-data"] = st["err-data"] }) .. "\n")
    end
    if sys.monotonic() >= deadline then return result(0, json.encode({ exited = 0, pid = pid }) .. "\n") end
    async.sleep(pause)
    pause = math.min(pause * 1.5, 1)
  end
end

-- sshkeys: qm reads a file and sends its content URI-escaped; the API
-- takes the escaped content.
local function inline_sshkeys(t, params)
  local path = params.sshkeys
  if not path then return true end
  if not t.shell then return nil, no_shell(t, "reading the ssh keys file") end
  local text, err = t.shell:read(path)
  if not text then return nil, err end
  params.sshkeys = client.escape(text)
  return true
end

function Api:api_call(req, run)
  if req.special == "guest_exec" then return guest_exec(self, req, run) end
  local ok, kerr = inline_sshkeys(self, req.params)
  if not ok then return nil, kerr end
  local data, err = self.api:request(req.method, req.path, req.params)
  if data == nil then return result(255, "", err .. "\n") end
  if client.is_upid(data) and req.task ~= false then
    local node = node_of_upid(data)
    local st, terr, timed_out = self.api:wait_task(node, data, run.timeout_ms or self.options.timeout_ms)
    if not st then return result(timed_out and 124 or 255, "", terr .. "\n") end
    local log = self.api:task_log(node, data, 8)
    if st.exitstatus ~= "OK" then
      return result(255, log, tostring(st.exitstatus) .. "\n" .. log .. "\n")
    end
    return result(0, log)
  end
  if req.output == "json" then return result(0, encode(data)) end
  if req.output == "agent" then
    local r = type(data) == "table" and data.result
    if r == nil or (type(r) == "table" and next(r) == nil) then return result(0, "") end
    return result(0, encode(r))
  end
  return result(0, "")
end

function Api:tool_run(run)
  local argv = run.argv
  local req, err = calls.map(argv[1], table.move(argv, 2, #argv, 1, {}), function(vmid) return self:node_of(vmid) end)
  if req then return self:api_call(req, run) end
  if err then return nil, err end
  return self:run(run) -- no API for it: the node's shell
end

-- Inventory --------------------------------------------------------------

local RESOURCES = { type = "vm" }

local function cluster_rows(t)
  local rows, err = t.api:request("GET", "/cluster/resources", RESOURCES)
  t.calls = t.calls + 1
  if not rows then return nil, err end
  if type(rows) ~= "table" then return nil, "GET /cluster/resources: expected a list" end
  return rows
end

-- An entry from its /cluster/resources row alone; the config is fetched
-- when a resource asks for that guest (guest()).
local function row_entry(r)
  local vmid, kind = math.tointeger(r.vmid), r.type
  local main = { tags = r.tags, lock = r.lock, template = (r.template == 1 or r.template == true) and "1" or nil }
  main[kind == "lxc" and "hostname" or "name"] = r.name
  local e = inventory.entry(vmid, kind, r.node, { main = main }, inventory.conf_path(r.node, kind, vmid), r)
  e.partial = true
  return e
end

local function load(t)
  local rows, err = cluster_rows(t)
  if not rows then return nil, err end
  local guests = {}
  for _, r in ipairs(rows) do
    local vmid = math.tointeger(r.vmid)
    if vmid and inventory.DIRS[r.type] and inventory.node_name(r.node) then guests[vmid] = row_entry(r) end
  end
  return { guests = guests, calls = 1, node = t.node }
end

local function inv_loaded(t)
  return t:memo("inventory", function() return load(t) end)
end

-- fetch(t, inv, vmid, row) -> true | nil, msg: the guest's full entry, read
-- now. Its config, pending changes and snapshots (and, without a fresh
-- /cluster/resources row, its status) are requests sent at once; a guest
-- the status call does not find is gone.
local function fetch(t, inv, vmid, row)
  local old = inv.guests[vmid]
  local node = old and old.node or t.node
  local kinds = old and { old.kind } or { "lxc", "qemu" }
  for _, kind in ipairs(kinds) do
    local base = string.format("/nodes/%s/%s/%d", node, kind, vmid)
    local sent = {
      status = row and { { finish = function() return row end } } or { t.api:start("GET", base .. "/status/current") },
      current = { t.api:start("GET", base .. "/config", { current = 1 }) },
      pending = { t.api:start("GET", base .. "/pending") },
      snapshot = { t.api:start("GET", base .. "/snapshot") },
    }
    local got, errs = {}, {}
    for name, p in pairs(sent) do
      if p[1] then got[name], errs[name] = p[1]:finish() else errs[name] = p[2] end
    end
    t.calls = t.calls + (row and 3 or 4)
    if got.status then
      for _, name in ipairs({ "current", "pending", "snapshot" }) do
        if got[name] == nil then return nil, errs[name] end
      end
      local cfg, cerr = conf.build(kind, got.current, got.pending, got.snapshot)
      if not cfg then return nil, string.format("%s %d: %s", kind == "lxc" and "container" or "VM", vmid, cerr) end
      local live = got.status
      live.node = node
      inv.guests[vmid] = inventory.entry(vmid, kind, node, cfg, inventory.conf_path(node, kind, vmid), live)
      return true
    end
    if not conf.missing(errs.status) then return nil, errs.status end
  end
  inv.guests[vmid] = nil
  return true
end

local check_vmid = Pve.check_vmid

-- guest(vmid) -> entry | nil (no such guest) | nil, msg. Read in full on
-- first ask and after refresh(vmid); shared by concurrent askers.
function Api:guest(vmid)
  vmid = check_vmid(vmid, 2)
  local inv, err = inv_loaded(self)
  if not inv then return nil, err end
  local g = inv.guests[vmid]
  local stale = self.gens[vmid] ~= self.loaded[vmid]
  if (g and g.partial) or stale then
    local gen = self.gens[vmid]
    local key = "guest:" .. vmid .. ":" .. tostring(gen)
    local row = not stale and g and g.live or nil
    local ok, ferr = self:memo(key, function() return fetch(self, inv, vmid, row) end)
    if not ok then return nil, ferr end
    self.loaded[vmid] = gen
  end
  return inv.guests[vmid]
end

-- inventory() -> { guests = {[vmid] = entry}, calls, node }: every guest of
-- the cluster from one call; entries not asked for by guest() carry what
-- /cluster/resources tells (name, status, tags, lock, template, node).
function Api:inventory()
  return inv_loaded(self)
end

-- guest_conf(vmid, kind) -> config read now | nil (absent) | nil, msg
function Api:guest_conf(vmid, kind)
  vmid = check_vmid(vmid, 2)
  self:refresh(vmid)
  local g, err = self:guest(vmid)
  if not g then return nil, err end
  if g.kind ~= kind then return nil, string.format("guest %d is not a %s", vmid, kind == "lxc" and "container" or "VM") end
  return g.conf, g.file
end

-- storages() -> rows shaped as px.pve.parse_pvesm_status gives them (KiB)
function Api:storages()
  return self:memo("storages", function()
    local rows, err = self.api:request("GET", string.format("/nodes/%s/storage", self.node))
    self.calls = self.calls + 1
    if not rows then return nil, err end
    return conf.storage_rows(rows)
  end)
end

return Api
