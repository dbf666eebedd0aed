-- Containers on the lxc target: a plain Linux host with the lxc-* tools.
-- A container's name is its CTID, its hostname the site's `name`. Configs
-- are read straight from <lxcpath>/<id>/config, snapshots from
-- <lxcpath>/<id>/snaps/, and which containers run from the monitor sockets
-- in /proc/net/unix (no process; one `lxc-ls --running` when that cannot
-- answer). Changes go through lxc-create/-copy/-start/-stop/-snapshot/
-- -destroy/-cgroup and config file writes; commands inside run through
-- lxc-attach.
local adapt = require "phoenix.target.lxc.adapt"
local conf = require "phoenix.target.lxc.conf"
local inside = require "phoenix.target.lxc.inside"
local limits = require "phoenix.target.lxc.limits"
local raw = require "phoenix.lxc.raw"
local subids = require "phoenix.target.lxc.subids"
local tmpfile = require "phoenix.tmpfile"
local tool = require "phoenix.target.lxc.tool"
local util = require "phoenix.util"
local fs = require "px.fs"

local D = {}
D.__index = D

-- What applies to a running container without a restart (the rest is
-- read at start: network, mounts, hostname, raw lines ...). Limits are
-- also written live through lxc-cgroup.
D.live = { memory_mb = true, swap_mb = true, cores = true, onboot = true, startup = true }

function D.new(t)
  local d = setmetatable({ t = t, path = t.lxcpath, override = {} }, D)
  d.cgroup = t.cgroup or (t:exists("/sys/fs/cgroup/cgroup.controllers") and 2 or 1)
  d.caps = { live = D.live, slots = false, markers_offline = true }
  return d
end

local lx, cdir = tool.run, tool.dir

-- Running containers -----------------------------------------------------

-- running() -> set of names | nil, msg: the monitor sockets
-- (@<lxcpath>/<name>/command) in /proc/net/unix, memoised per run.
function D:running()
  return self.t:memo("lxc:running", function()
    local text = fs.read("/proc/net/unix")
    local prefix = "@" .. self.path .. "/"
    if text and #prefix + 16 < 100 then
      local set = {}
      for name in text:gmatch("%s" .. prefix:gsub("%p", "%%%0") .. "([^/%s]+)/command\n") do set[name] = true end
      return set
    end
    local res, err = lx(self, "lxc-ls", nil, { "--running", "-1" })
    if not res then return nil, err end
    local set = {}
    for name in res.stdout:gmatch("%S+") do set[name] = true end
    return set
  end)
end

function D:status(id)
  local o = self.override[tostring(id)]
  if o then return o end
  local set, err = self:running()
  if not set then return nil, err end
  return set[tostring(id)] and "running" or "stopped"
end

-- Inspect ------------------------------------------------------------------

local function snapshots(d, id)
  local out, dirs = {}, {}
  local base = cdir(d, id) .. "/snaps"
  for _, snap in ipairs(d.t:exists(base) and d.t:list(base) or {}) do
    local c = d.t:read(base .. "/" .. snap .. "/comment")
    local name = c and c:match("^%s*(%S+)")
    if name then
      out[name] = true
      dirs[name] = snap
    end
  end
  return out, dirs
end

-- inspect(id) -> model | { exists = false } | nil, msg
function D:inspect(id)
  local path = cdir(self, id) .. "/config"
  local text = self.t:read(path)
  if not text then
    if self.t:exists(path) then return nil, "cannot read " .. self.t:path(path) end
    return { exists = false, id = id }
  end
  local m = conf.model(conf.parse(text))
  m.exists, m.id = true, id
  local st, err = self:status(id)
  if not st then return nil, err end
  m.status = st
  m.snapshots = snapshots(self, id)
  return m
end

-- refresh(id): after a change. Configs are read afresh anyway; the state
-- this driver set itself (start/stop) stays known.
function D:refresh(_) self.t:forget("lxc:running") end

-- adapt(spec) -> unsupported entries (phoenix.target.lxc.adapt)
function D:adapt(spec) return adapt.adapt(self, spec) end

-- Inside the guest (phoenix.target.lxc.inside)
function D:exec(id, argv, o) return inside.exec(self, id, argv, o) end
function D:push(id, path, content, o) return inside.push(self, id, path, content, o) end
function D:pull(id, path) return inside.pull(self, id, path) end
function D:markers(id, names) return inside.markers(self, id, names) end

-- Changes ------------------------------------------------------------------

local function write_conf(d, id, m)
  local path = cdir(d, id) .. "/config"
  local text, err = d.t:read(path)
  if not text then return nil, "cannot read " .. d.t:path(path) .. ": " .. tostring(err) end
  local ok, werr = d.t:write(path, conf.render(conf.parse(text), m, { cgroup = d.cgroup }), { mode = "0640" })
  if ok == nil then return nil, werr end
  return true
end

-- The mount list after set/delete operations (by container path; the lxc
-- target has no mpN slots).
local function apply_mounts(list, ops)
  local out = {}
  for _, mt in ipairs(list or {}) do out[#out + 1] = mt end
  for _, op in ipairs(ops) do
    local target = op.target or op.mount.target
    local at
    for i, mt in ipairs(out) do
      if mt.target == target then at = i end
    end
    if op.op == "delete" then
      if at then table.remove(out, at) end
    else
      local mt = { kind = "bind", source = op.mount.source, target = target, ro = op.mount.ro == true }
      if at then out[at] = mt else out[#out + 1] = mt end
    end
  end
  return out
end

-- set(id, patch) -> true | nil, msg. patch: model fields to change (false
-- clears one), mounts = the full desired list.
function D:set(id, patch)
  local cur, err = self:inspect(id)
  if not cur then return nil, err end
  if not cur.exists then return nil, "container " .. id .. " does not exist" end
  local m = util.copy(cur)
  for k, v in pairs(patch) do
    if k == "mounts" then
      m.mounts = apply_mounts(cur.mounts, v)
    elseif v == false and k ~= "onboot" then
      m[k] = nil
    else
      m[k] = v
    end
  end
  if patch.id_maps and m.unprivileged then
    local ok, serr = subids.ensure(self.t, raw.host_ranges(m.id_maps or raw.default_map()))
    if not ok then return nil, serr end
  end
  local ok, werr = write_conf(self, id, m)
  if not ok then return nil, werr end
  if cur.status == "running" then return limits.set_live(self, id, cur, m) end
  return true
end

local TARBALL = { "%.tar$", "%.tar%.gz$", "%.tgz$", "%.tar%.xz$", "%.txz$", "%.tar%.zst$", "%.tar%.bz2$" }

local function is_tarball(p)
  for _, pat in ipairs(TARBALL) do
    if p:match(pat) then return true end
  end
  return false
end

-- create(id, spec) -> true | nil, msg: from a template script (such as
-- /usr/share/lxc/templates/lxc-busybox) or a root filesystem tarball.
function D:create(id, spec)
  local tpl = spec.template
  if type(tpl) ~= "string" or tpl:sub(1, 1) ~= "/" then
    return nil, "template " .. tostring(tpl) .. ": the lxc target takes an LXC template script "
      .. "(/usr/share/lxc/templates/lxc-busybox) or a root filesystem tarball, by absolute path"
  end
  if not fs.exists(tpl) then return nil, "template " .. tpl .. " does not exist" end
  local maps = spec.unprivileged and (spec.id_maps or raw.default_map()) or {}
  if #maps > 0 then
    local ok, err = subids.ensure(self.t, raw.host_ranges(maps))
    if not ok then return nil, err end
  end
  local lines = { "lxc.net.0.type = empty" }
  for _, l in ipairs(maps) do lines[#lines + 1] = "lxc.idmap = " .. l end
  local tar = is_tarball(tpl)
  local rootfs = cdir(self, id) .. "/rootfs"
  if tar then lines[#lines + 1] = "lxc.rootfs.path = dir:" .. rootfs end
  if tar then
    -- lxc-create -t none wants the directory the config names
    local ok, merr = self.t:mkdir(rootfs)
    if not ok then return nil, merr end
  end
  local cfile, done = tmpfile.new(table.concat(lines, "\n") .. "\n")
  if not cfile then return nil, done end
  local res, err = lx(self, "lxc-create", id, { "-t", tar and "none" or tpl, "-f", cfile })
  done()
  if not res then return nil, err end
  if tar then
    local argv = { "tar", "--numeric-owner", "-xpf", tpl, "-C", self.t:path(rootfs) }
    if #maps > 0 then
      local r, cerr = self.t:run({ argv = { "chown", raw.DEFAULT_BASE .. ":" .. raw.DEFAULT_BASE, self.t:path(rootfs) } })
      if not r or r.code ~= 0 then return nil, util.command_error({ "chown", rootfs }, r, cerr) end
      argv = { "lxc-usernsexec", "-m", "b:0:" .. raw.DEFAULT_BASE .. ":" .. raw.DEFAULT_SIZE, "--",
        table.unpack(argv) }
    end
    local r, xerr = self.t:run({ argv = argv, timeout_ms = 600000 })
    if not r or r.code ~= 0 then return nil, util.command_error(argv, r, xerr) end
  end
  return true
end

-- clone(src, snapname, id) -> true | nil, msg: a full copy of the snapshot
function D:clone(src, snapname, id)
  local _, dirs = snapshots(self, src)
  local snap = dirs[snapname]
  if not snap then return nil, string.format("container %s has no snapshot %s to clone from", src, snapname) end
  local argv = { "lxc-copy", "-P", cdir(self, src) .. "/snaps", "-n", snap, "-N", tostring(id), "-p", self.path }
  local res, err = self.t:run({ argv = argv, timeout_ms = 600000 })
  if not res or res.code ~= 0 then return nil, util.command_error(argv, res, err) end
  return true
end

function D:start(id)
  local logf = cdir(self, id) .. "/phoenix-start.log"
  self.t:remove(logf)
  local res, err, r = lx(self, "lxc-start", id, { "-l", "ERROR", "-o", logf })
  if not res then
    local tail = util.tail(fs.read(logf) or "", 3)
    return nil, err .. (tail ~= "" and (" | log: " .. tail) or ""), r
  end
  self.override[tostring(id)] = "running"
  return true
end

function D:stop(id)
  local res, err = lx(self, "lxc-stop", id, { "-t", "30" }, { check = false })
  if not res then return nil, err end
  -- 2: it was not running, which is what we want
  if res.code ~= 0 and res.code ~= 2 then return nil, util.command_error({ "lxc-stop", "-n", tostring(id) }, res) end
  self.override[tostring(id)] = "stopped"
  return true
end

function D:restart(id)
  local ok, err = self:stop(id)
  if not ok then return nil, err end
  return self:start(id)
end

-- snapshot(id, name): lxc-snapshot copies a directory root filesystem,
-- which LXC does only for a stopped container: a running one is stopped
-- for it and started again.
function D:snapshot(id, name)
  local was = self:status(id)
  if was == "running" then
    local ok, err = self:stop(id)
    if not ok then return nil, err end
  end
  local cfile, done = tmpfile.new(name .. "\n")
  if not cfile then return nil, done end
  local res, err = lx(self, "lxc-snapshot", id, { "-c", cfile })
  done()
  if not res then return nil, err end
  if was == "running" then return self:start(id) end
  return true
end

function D:rollback(id, name)
  local _, dirs = snapshots(self, id)
  if not dirs[name] then return nil, "container " .. id .. " has no snapshot " .. name end
  local ok, err = self:stop(id)
  if not ok then return nil, err end
  local cur = self:inspect(id)
  local res, rerr = lx(self, "lxc-snapshot", id, { "-r", dirs[name] })
  if not res then return nil, rerr end
  -- restoring renames the copy to the container's name, which LXC writes
  -- as its hostname: put the hostname back
  if cur and cur.exists then return self:set(id, { hostname = cur.hostname }) end
  return true
end

function D:resize() return nil, "the lxc target has no disk sizes" end

function D:destroy(id)
  -- lxc-destroy -f refuses some running containers; stop it first
  local st = self:status(id)
  if st == "running" then
    local res, err = lx(self, "lxc-stop", id, { "-k" }, { check = false })
    if not res then return nil, err end
  end
  local res, err = lx(self, "lxc-destroy", id, { "-f", "-s" })
  if not res then return nil, err end
  self.override[tostring(id)] = nil
  return true
end

-- owned() -> { "101", ... }: containers in lxcpath carrying lxc.group = phoenix
function D:owned()
  local out = {}
  for _, name in ipairs(self.t:exists(self.path) and self.t:list(self.path) or {}) do
    if name:match("^%d+$") then
      local text = self.t:read(self.path .. "/" .. name .. "/config")
      if text and conf.model(conf.parse(text)).owned then out[#out + 1] = name end
    end
  end
  table.sort(out, function(a, b) return tonumber(a) < tonumber(b) end)
  return out
end

return D
