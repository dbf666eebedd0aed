-- Containers on the lxc target: a plain Linux host with the lxc-* tools.
-- A container's name is its CTID, its hostname the site's `name`. Configs
-- are read straight from <lxcpath>/<id>/config, snapshots from
-- <lxcpath>/<id>/snaps/, and which containers run from the monitor sockets
-- in /proc/net/unix (no process; one `lxc-ls --running` when that cannot
-- answer). Changes go through lxc-create/-copy/-start/-stop/-snapshot/
-- -destroy/-cgroup and config file writes; commands inside run through
-- lxc-attach.
local conf = require "phoenix.target.lxc.conf"
local raw = require "phoenix.lxc.raw"
local subids = require "phoenix.target.lxc.subids"
local tmpfile = require "phoenix.tmpfile"
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

local function lx(d, tool, id, args, opts)
  local argv = { tool, "-P", d.path }
  if id then argv[#argv + 1] = "-n"; argv[#argv + 1] = tostring(id) end
  for _, a in ipairs(args or {}) do argv[#argv + 1] = a end
  local o = { argv = argv, timeout_ms = 600000 }
  for k, v in pairs(opts or {}) do
    if k ~= "check" then o[k] = v end
  end
  local res, err = d.t:run(o)
  if not res then return nil, util.command_error(argv, nil, err) end
  if res.code ~= 0 and not (opts and opts.check == false) then return nil, util.command_error(argv, res), res end
  return res
end

local function cdir(d, id) return d.path .. "/" .. tostring(id) end

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

-- adapt(spec) -> unsupported entries; removes from spec what this target
-- cannot do, so the rest compares cleanly.
function D:adapt(spec)
  local out = {}
  local function no(field, value, reason) out[#out + 1] = { field = field, value = value, reason = reason } end
  if spec.rootfs.storage then
    no("storage_pool", spec.rootfs.storage, "the lxc target keeps root filesystems as directories under its lxcpath")
    spec.rootfs.storage = nil
  end
  if spec.rootfs.size_gb then
    no("storage_size_gb", spec.rootfs.size_gb, "a directory root filesystem has no size on the lxc target")
    spec.rootfs.size_gb = nil
  end
  local keep = {}
  for _, mt in ipairs(spec.mounts) do
    if mt.kind == "volume" then
      no("mount " .. mt.target, mt.storage .. ":" .. mt.size_gb .. "G",
        "dedicated volumes (zfs_volumes) need Proxmox storage; the lxc target has none")
    else
      keep[#keep + 1] = mt
    end
  end
  spec.mounts = keep
  if spec.net then
    if spec.net.vlan then no("network_config.vlan", spec.net.vlan, "VLAN tags need a Proxmox bridge") end
    if spec.net.firewall then no("network_config.firewall", true, "the Proxmox firewall is not on the lxc target") end
    spec.net.vlan, spec.net.firewall = nil, nil
    if spec.net.ip == "dhcp" then spec.net.ip = nil end -- the guest asks for its address itself
  end
  if spec.nameserver then no("nameservers", spec.nameserver, "the lxc target does not write the guest's resolv.conf") end
  if spec.searchdomain then no("searchdomain", spec.searchdomain, "the lxc target does not write the guest's resolv.conf") end
  spec.nameserver, spec.searchdomain = nil, nil
  for k, v in pairs(spec.features) do
    if not (k == "nesting" and (v == "1" or v == "0")) then
      no("pct_options." .. k, v, "only nesting=1 has an lxc equivalent (" .. conf.NESTING .. ")")
      spec.features[k] = nil
    end
  end
  if spec.features.nesting == "0" then spec.features.nesting = nil end
  if spec.swap_mb and not spec.memory_mb and self.cgroup == 1 then
    no("swap_mb", spec.swap_mb, "on a cgroup v1 host a swap limit needs memory_mb as well")
    spec.swap_mb = nil
  end
  local ncpu = self.t.cpus and self.t:cpus()
  if spec.cores and ncpu and spec.cores > ncpu then
    no("cores", spec.cores, "this host has " .. ncpu .. " CPUs")
    spec.cores = nil
  end
  return out
end

-- markers(id, names) -> { name = hash }: read from the root filesystem on
-- the host (no process), refusing symlinks on the way so a guest cannot
-- point phoenix at host files.
function D:markers(id, names)
  local text = self.t:read(cdir(self, id) .. "/config")
  if not text then return {} end
  local root = conf.model(conf.parse(text)).rootfs_path
  if root == "" then return {} end
  local dir = root
  for part in ("var/lib/phoenix/features"):gmatch("[^/]+") do
    dir = dir .. "/" .. part
    local st = fs.stat(dir, { follow = false })
    if not st then return {} end
    if st.type ~= "dir" then return nil, dir .. " is not a directory inside container " .. id end
  end
  local out = {}
  for _, name in ipairs(names) do
    local p = dir .. "/" .. name .. ".done"
    local st = fs.stat(p, { follow = false })
    if st and st.type == "file" then
      local h = (fs.read(p) or ""):match("^(%x+) " .. name:gsub("%p", "%%%0") .. "\n?$")
      out[name] = h
    end
  end
  return out
end

-- Changes ------------------------------------------------------------------

local function write_conf(d, id, m)
  local path = cdir(d, id) .. "/config"
  local text, err = d.t:read(path)
  if not text then return nil, "cannot read " .. d.t:path(path) .. ": " .. tostring(err) end
  local ok, werr = d.t:write(path, conf.render(conf.parse(text), m, { cgroup = d.cgroup }), { mode = "0640" })
  if ok == nil then return nil, werr end
  return true
end

local LIVE_KEYS = {
  [1] = { mem = "memory.limit_in_bytes", memsw = "memory.memsw.limit_in_bytes", cpus = "cpuset.cpus" },
  [2] = { mem = "memory.max", swap = "memory.swap.max", cpus = "cpuset.cpus" },
}

-- live limits through lxc-cgroup, in an order the kernel accepts (v1:
-- memory+swap never below memory)
local function set_live(d, id, old, m)
  local k = LIVE_KEYS[d.cgroup]
  local steps = {}
  if m.memory_mb and (m.memory_mb ~= old.memory_mb or m.swap_mb ~= old.swap_mb) then
    local mem = tostring(m.memory_mb * 1024 * 1024)
    if d.cgroup == 2 then
      steps[#steps + 1] = { k.mem, mem }
      if m.swap_mb then steps[#steps + 1] = { k.swap, tostring(m.swap_mb * 1024 * 1024) } end
    elseif m.swap_mb then
      local memsw = { k.memsw, tostring((m.memory_mb + m.swap_mb) * 1024 * 1024) }
      if (old.memory_mb or math.huge) > m.memory_mb then
        steps[#steps + 1] = { k.mem, mem }; steps[#steps + 1] = memsw
      else
        steps[#steps + 1] = memsw; steps[#steps + 1] = { k.mem, mem }
      end
    else
      steps[#steps + 1] = { k.mem, mem }
    end
  end
  if m.cores and m.cores ~= old.cores then
    steps[#steps + 1] = { k.cpus, m.cores == 1 and "0" or ("0-" .. (m.cores - 1)) }
  end
  for _, s in ipairs(steps) do
    local ok, err = lx(d, "lxc-cgroup", id, { s[1], s[2] })
    if not ok then return nil, err end
  end
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
  if cur.status == "running" then return set_live(self, id, cur, m) end
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

-- Inside the guest ---------------------------------------------------------

-- exec(id, argv, {stdin=, env=, timeout_ms=}) -> result | nil, msg
function D:exec(id, argv, o)
  o = o or {}
  local args = { "--clear-env" }
  local keys = util.sorted_keys(o.env or {})
  for _, k in ipairs(keys) do
    args[#args + 1] = "-v"
    args[#args + 1] = k .. "=" .. tostring(o.env[k])
  end
  args[#args + 1] = "--"
  for _, a in ipairs(argv) do args[#args + 1] = a end
  return lx(self, "lxc-attach", id, args, { check = false, stdin = o.stdin, timeout_ms = o.timeout_ms or 600000 })
end

-- The file is written next to its place and renamed, so a reader never
-- sees half of it; path and mode are arguments, never part of the script.
local PUSH = 'umask 077 && mkdir -p "${1%/*}" && cat > "$1.phoenix-new" && chmod "$2" "$1.phoenix-new" '
  .. '&& { [ -z "$3" ] || chown "$3" "$1.phoenix-new"; } && mv -f "$1.phoenix-new" "$1"'

-- push(id, path, content, {mode=, uid=, gid=}) -> true | nil, msg
function D:push(id, path, content, o)
  o = o or {}
  local owner = o.uid and (tostring(o.uid) .. ":" .. tostring(o.gid or o.uid)) or ""
  local res, err = self:exec(id, { "sh", "-c", PUSH, "sh", path, o.mode or "0644", owner }, { stdin = content })
  if not res then return nil, err end
  if res.code ~= 0 then return nil, string.format("writing %s in container %s: %s", path, id, util.tail(res.stderr)) end
  return true
end

-- pull(id, path) -> content | nil, msg
function D:pull(id, path)
  local res, err = self:exec(id, { "cat", path })
  if not res then return nil, err end
  if res.code ~= 0 then return nil, string.format("reading %s in container %s: %s", path, id, util.tail(res.stderr)) end
  return res.stdout
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
