-- zfs_pool: creates a pool only when it is absent and every disk is
-- unused; never destroys it or changes its layout; reports its health.
local zfs = require "phoenix.host.zfs"
local json = require "px.json"
local sys = require "px.sys"

local function base(p) return (p:gsub("/+$", ""):match("([^/]+)$")) end

-- The pool's top-level vdevs as {kind, disks}: "mirror-0" -> mirror,
-- "raidz1-0" -> raidz1, a bare device -> single.
local function layout(pool)
  local vdevs, by_name = {}, {}
  for _, row in ipairs(pool.config or {}) do
    if row.depth == 1 and row.parent == pool.name then
      local kind = row.name:match("^(mirror)%-%d+$") or row.name:match("^(raidz%d?)%-%d+$")
        or row.name:match("^(draid%d?)")
      local v = { kind = kind or "single", disks = {} }
      if not kind then v.disks[1] = base(row.name) end
      vdevs[#vdevs + 1] = v
      by_name[row.name] = v
    elseif row.depth == 2 and by_name[row.parent] then
      table.insert(by_name[row.parent].disks, base(row.name))
    end
  end
  return vdevs
end

local function kind_of(level)
  if level == "raidz" then return "raidz1" end
  return level
end

-- "mirror: a b" / "single: a b" for plans and messages
local function show(kind, disks) return kind .. ": " .. table.concat(disks, " ") end

local function have_layout(vdevs)
  local kind, disks = nil, {}
  for _, v in ipairs(vdevs) do
    local k = v.kind == "raidz" and "raidz1" or v.kind
    if kind and kind ~= k then kind = "mixed" else kind = kind or k end
    for _, d in ipairs(v.disks) do disks[#disks + 1] = d end
  end
  return kind or "none", disks
end

-- The leaves that are not healthy, as "dev STATE (note)".
local function failing(pool)
  local parents, out = {}, {}
  for _, row in ipairs(pool.config or {}) do if row.parent then parents[row.parent] = true end end
  for _, row in ipairs(pool.config or {}) do
    if row.depth > 0 and row.state and not parents[row.name] and row.state ~= "ONLINE" and row.state ~= "AVAIL"
      and row.state ~= "INUSE" then
      out[#out + 1] = row.name .. " " .. row.state .. (row.note and (" (" .. row.note .. ")") or "")
    end
  end
  return out
end

-- Why a disk cannot go into a new pool, or nil. Read only: the pools'
-- vdevs (`zpool status`), signatures (`blkid -p`), and for block devices
-- partitions and mounts (`lsblk`).
local function disk_problem(ctx, disk, pools)
  local t = ctx.target
  local real = t:path(disk)
  local stat = t:stat(disk)
  if not stat then return "does not exist" end
  local names = { [base(disk)] = true, [disk] = true, [real] = true }
  local rp = sys.realpath(real)
  if rp then names[rp] = true names[base(rp)] = true end
  for pname, pool in pairs(pools) do
    for _, row in ipairs(pool.config or {}) do
      if row.depth > 0 and (names[row.name] or names[base(row.name)]) then
        return "is already part of pool " .. pname
      end
    end
  end
  local res, err = ctx:run({ argv = { "blkid", "-p", "-o", "export", real }, ok_codes = { 0, 2 } })
  if not res then return "cannot be checked: " .. err end
  if res.code == 0 then
    local ty = res.stdout:match("TYPE=([^\n]+)") or res.stdout:match("PTTYPE=([^\n]+)")
    local label = res.stdout:match("\nLABEL=([^\n]+)")
    return "holds data (" .. (ty and ("a " .. ty .. " signature") or "a signature")
      .. (label and (" labelled " .. label) or "") .. ", found by blkid)"
  end
  if stat.type == "block" then
    res, err = ctx:run({ argv = { "lsblk", "-J", "-o", "PATH,FSTYPE,MOUNTPOINT", real } })
    if not res then return "cannot be checked: " .. err end
    local doc = json.decode(res.stdout)
    local function walk(list)
      for _, d in ipairs(list or {}) do
        if (d.mountpoint ~= nil and d.mountpoint ~= json.null) then return d.path .. " is mounted on " .. d.mountpoint end
        if d.fstype ~= nil and d.fstype ~= json.null then return d.path .. " holds " .. d.fstype end
        local sub = walk(d.children)
        if sub then return sub end
      end
    end
    local why = doc and walk(doc.blockdevices)
    if why then return "is in use: " .. why end
  elseif stat.type ~= "file" then
    return "is not a block device (" .. stat.type .. ")"
  end
  return nil
end

return {
  type = "zfs_pool",
  describe = function(want) return "ZFS pool " .. want.name .. " (" .. want.raid_level .. ")" end,

  inspect = function(ctx, want)
    local pools, err = zfs.pools(ctx)
    if not pools then return nil, err end
    local pool = pools[want.name]
    if pool then
      local kind, disks = have_layout(layout(pool))
      local bad = failing(pool)
      if pool.state ~= "ONLINE" or #bad > 0 then
        ctx.log:warn("pool %s is %s%s", want.name, tostring(pool.state),
          #bad > 0 and (": " .. table.concat(bad, ", ")) or "")
      end
      return { exists = true, state = pool.state, kind = kind, disks = disks, failing = bad }
    end
    local problems = {}
    for _, d in ipairs(want.disks) do
      local why = disk_problem(ctx, d, pools)
      if why then problems[#problems + 1] = "disk " .. d .. " " .. why end
    end
    if #problems > 0 then
      return nil, "pool " .. want.name .. " cannot be created: " .. table.concat(problems, "; ")
        .. " (phoenix never reuses a disk that is in use)"
    end
    return { exists = false }
  end,

  diff = function(_, want, have)
    local kind = kind_of(want.raid_level)
    local disks = {}
    for i, d in ipairs(want.disks) do disks[i] = base(d) end
    if not have.exists then
      return { { action = "create", field = "pool", to = show(kind, disks) } }
    end
    local same = have.kind == kind and #have.disks == #disks
    if same then
      local set = {}
      for _, d in ipairs(have.disks) do set[d] = true end
      for _, d in ipairs(disks) do if not set[d] then same = false end end
    end
    if not same then
      return { { action = "update", field = "layout", from = show(have.kind, have.disks), to = show(kind, disks),
        unsupported = "phoenix never changes the layout of an existing pool" } }
    end
    return {}
  end,

  apply = function(ctx, want, _, changes)
    for _, c in ipairs(changes) do
      if c.field == "pool" and c.action == "create" then
        local argv = { "zpool", "create" }
        -- a test root is the pool's altroot: its datasets mount under it
        -- (and -m: zfs-fuse would mount the pool on the altroot itself)
        if ctx.target.root ~= "/" then
          for _, a in ipairs({ "-R", ctx.target.root, "-m", "/" .. want.name }) do argv[#argv + 1] = a end
        end
        argv[#argv + 1] = want.name
        local kind = kind_of(want.raid_level)
        if kind ~= "single" then argv[#argv + 1] = kind end
        for _, d in ipairs(want.disks) do argv[#argv + 1] = ctx.target:path(d) end
        local ok, err = ctx:run({ argv = argv })
        zfs.forget_pools(ctx)
        if not ok then return nil, err end
      end
    end
    return true
  end,
}
