-- Containers on the pve target, through pct. Reading is the target's
-- batched inventory (configs from /etc/pve, state from one pvesh call);
-- every change is a pct call through t:pve (lock timeouts retried). Raw
-- lxc.* lines (lxc_options, apparmor_profile, id_maps), which pct cannot
-- set, are written into the guest's config file as Proxmox reads it.
local model = require "phoenix.target.pve_ct_model"
local fs = require "px.fs"
local pve = require "px.pve"
local tmpfile = require "phoenix.tmpfile"
local util = require "phoenix.util"

local D = {}
D.__index = D

-- What Proxmox applies to a running container at once (pve-container's
-- hotplug/fast-plug options, new mount points); the rest goes to the
-- [pve:pending] section and takes a restart.
D.live = {
  hostname = true, memory_mb = true, swap_mb = true, cores = true, net = true, onboot = true, startup = true,
  ["mount:create"] = true, snapshot = true,
}

function D.new(t)
  return setmetatable({ t = t, caps = { live = D.live, slots = true, markers_offline = false } }, D)
end

local function pct(d, args, opts) return d.t:pve("pct", args, opts) end

-- inspect(id) -> model | { exists = false } | nil, msg
function D:inspect(id)
  local g, err = self.t:guest(id)
  if g == nil and err then return nil, err end
  if not g then return { exists = false, id = id } end
  if g.kind ~= "lxc" then return nil, string.format("ID %d is a VM on this node, not a container", id) end
  return model.of(g)
end

function D:refresh(id) self.t:refresh(id) end

function D.adapt() return {} end

-- Options -------------------------------------------------------------------

local function opt(sets, k, v) sets[#sets + 1] = { k, tostring(v) } end

local function to_argv(argv, sets)
  for _, kv in ipairs(sets) do
    argv[#argv + 1] = "--" .. kv[1]
    argv[#argv + 1] = kv[2]
  end
  return argv
end

-- options(cur, patch, sets, dels): the pct options for patch fields, as
-- sets = {{key, value}...} and dels = {key...}
local function options(cur, patch, sets, dels)
  local function del(k) dels[#dels + 1] = k end
  for _, f in ipairs({ { "hostname", "hostname" }, { "memory_mb", "memory" }, { "swap_mb", "swap" },
    { "cores", "cores" }, { "nameserver", "nameserver" }, { "searchdomain", "searchdomain" } }) do
    local v = patch[f[1]]
    if v == false then del(f[2]) elseif v ~= nil then opt(sets, f[2], v) end
  end
  if patch.onboot ~= nil then opt(sets, "onboot", patch.onboot and 1 or 0) end
  if patch.net == false then
    del("net0")
  elseif patch.net then
    local v, err = model.net_option(patch.net, cur and cur.net)
    if not v then return nil, err end
    opt(sets, "net0", v)
  end
  if patch.startup == false then
    del("startup")
  elseif patch.startup then
    opt(sets, "startup", model.startup_option(patch.startup))
  end
  if patch.features then
    local v = model.features_option(patch.features)
    if v == "" then del("features") else opt(sets, "features", v) end
  end
  if patch.devices then
    local n = 0
    for i, path in ipairs(patch.devices) do
      opt(sets, "dev" .. (i - 1), path)
      n = i
    end
    for _, slot in ipairs(cur and cur.dev_slots or {}) do
      if tonumber(slot:match("%d+")) >= n then del(slot) end
    end
  end
  for _, op in ipairs(patch.mounts or {}) do
    if op.op == "delete" then
      del(op.slot)
    else
      local v, err = model.mount_option(op.mount)
      if not v then return nil, err end
      opt(sets, op.slot, v)
    end
  end
  return true
end

local RAW = { lxc = true, apparmor_profile = true, id_maps = true }

-- write_raw(id, cur, patch): the lxc.* lines, in the config file
local function write_raw(d, cur, patch)
  local any = false
  for k in pairs(RAW) do
    if patch[k] ~= nil then any = true end
  end
  if not any then return true end
  local g, err = d.t:guest(cur.id)
  if not g then return nil, err or ("container " .. cur.id .. " is gone") end
  local text, rerr = d.t:read(g.file)
  if not text then return nil, d.t:path(g.file) .. ": " .. tostring(rerr) end
  local cfg, perr = pve.parse_config(text, "lxc")
  if not cfg then return nil, d.t:path(g.file) .. ": " .. perr end
  local want = {}
  for k in pairs(RAW) do
    local v = patch[k]
    if v == nil then v = cur[k] elseif v == false then v = nil end
    want[k] = v
  end
  cfg.lxc = model.raw_lines(want)
  local out, werr = pve.write_config(cfg, "lxc")
  if not out then return nil, "container " .. cur.id .. ": " .. werr end
  local ok, wrerr = d.t:write(g.file, out)
  if ok == nil then return nil, d.t:path(g.file) .. ": " .. tostring(wrerr) end
  d.t:refresh(cur.id)
  return true
end

-- set(id, patch) -> true | nil, msg
function D:set(id, patch)
  local cur, err = self:inspect(id)
  if not cur then return nil, err end
  if not cur.exists then return nil, "container " .. id .. " does not exist" end
  local sets, dels = {}, {}
  local ok, oerr = options(cur, patch, sets, dels)
  if not ok then return nil, oerr end
  -- back to the running value: drop the pending change instead
  local args, reverts, keep_dels = { "set", tostring(id) }, {}, {}
  for _, kv in ipairs(sets) do
    if cur.pending[kv[1]] and cur.current[kv[1]] == kv[2] then
      reverts[#reverts + 1] = kv[1]
    else
      to_argv(args, { kv })
    end
  end
  for _, k in ipairs(dels) do
    if cur.pending[k] and cur.current[k] == nil then reverts[#reverts + 1] = k else keep_dels[#keep_dels + 1] = k end
  end
  if #keep_dels > 0 then to_argv(args, { { "delete", table.concat(keep_dels, ",") } }) end
  if #reverts > 0 then to_argv(args, { { "revert", table.concat(reverts, ",") } }) end
  if #args > 2 then
    local res, perr = pct(self, args)
    self.t:refresh(id)
    if not res then return nil, perr end
  end
  return write_raw(self, cur, patch)
end

-- create(id, spec) -> true | nil, msg
function D:create(id, spec)
  local storage = spec.rootfs.storage or "local"
  local args = { "create", tostring(id), spec.template, "--rootfs", storage .. ":" .. (spec.rootfs.size_gb or 8),
    "--unprivileged", spec.unprivileged and "1" or "0", "--tags", (self.t:tags_option()) }
  local sets = {}
  local patch = util.copy(spec)
  patch.mounts = {}
  local used = {}
  for i, m in ipairs(spec.mounts) do
    used[i] = "mp" .. (i - 1)
    patch.mounts[i] = { op = "set", slot = used[i], mount = m }
  end
  if next(spec.features) == nil then patch.features = nil end
  if #spec.devices == 0 then patch.devices = nil end
  local ok, err = options(nil, patch, sets, {})
  if not ok then return nil, err end
  local res, perr = pct(self, to_argv(args, sets))
  self.t:refresh(id)
  if not res then return nil, perr end
  return true
end

-- clone(src, snapname, id, spec) -> true | nil, msg: a full clone of the snapshot
function D:clone(src, snapname, id, spec)
  local args = { "clone", tostring(src), tostring(id), "--snapname", snapname, "--full", "1",
    "--hostname", spec.hostname }
  if spec.rootfs.storage then to_argv(args, { { "storage", spec.rootfs.storage } }) end
  local res, err = pct(self, args)
  self.t:refresh(id)
  if not res then return nil, err end
  return true
end

local function simple(d, id, args)
  local res, err = pct(d, args)
  d.t:refresh(id)
  if not res then return nil, err end
  return true
end

function D:start(id) return simple(self, id, { "start", tostring(id) }) end
function D:stop(id) return simple(self, id, { "shutdown", tostring(id), "--timeout", "60", "--forceStop", "1" }) end

-- restart: a shutdown and a start, so the pending changes are applied
function D:restart(id)
  local ok, err = self:stop(id)
  if not ok then return nil, err end
  return self:start(id)
end

function D:snapshot(id, name) return simple(self, id, { "snapshot", tostring(id), name }) end
function D:rollback(id, name) return simple(self, id, { "rollback", tostring(id), name }) end

function D:resize(id, disk, size_gb)
  return simple(self, id, { "resize", tostring(id), disk, size_gb .. "G" })
end

function D:destroy(id)
  return simple(self, id, { "destroy", tostring(id), "--force", "1", "--purge", "1" })
end

-- Inside the guest ---------------------------------------------------------

-- exec(id, argv, {stdin=, env=, timeout_ms=}) -> result | nil, msg.
-- pct exec has no environment option: variables go in front through env.
function D:exec(id, argv, o)
  o = o or {}
  local args = { "exec", tostring(id), "--" }
  if o.env and next(o.env) then
    args[#args + 1] = "env"
    for _, k in ipairs(util.sorted_keys(o.env)) do args[#args + 1] = k .. "=" .. tostring(o.env[k]) end
  end
  for _, a in ipairs(argv) do args[#args + 1] = a end
  return pct(self, args, { check = false, stdin = o.stdin or "", timeout_ms = o.timeout_ms })
end

-- push(id, path, content, {mode=, uid=, gid=}) -> true | nil, msg
function D:push(id, path, content, o)
  o = o or {}
  local dir = path:match("^(.*)/[^/]+$")
  if dir and dir ~= "" then
    local res, err = self:exec(id, { "mkdir", "-p", dir })
    if not res then return nil, err end
    if res.code ~= 0 then return nil, "mkdir " .. dir .. " in container " .. id .. ": " .. util.tail(res.stderr) end
  end
  local tmp, done = tmpfile.new(content)
  if not tmp then return nil, done end
  local args = { "push", tostring(id), tmp, path, "--perms", o.mode or "0644" }
  if o.uid then to_argv(args, { { "user", tostring(o.uid) } }) end
  if o.gid then to_argv(args, { { "group", tostring(o.gid) } }) end
  local res, perr = pct(self, args)
  done()
  if not res then return nil, perr end
  return true
end

-- pull(id, path) -> content | nil, msg
function D:pull(id, path)
  local tmp, done = tmpfile.new()
  if not tmp then return nil, done end
  local res, err = pct(self, { "pull", tostring(id), path, tmp })
  local data, rerr
  if res then data, rerr = fs.read(tmp) end
  done()
  if not res then return nil, err end
  if not data then return nil, rerr end
  return data
end

return D
