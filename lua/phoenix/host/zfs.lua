-- ZFS for host recipes: one `zpool status` and one batched `zfs get` per
-- run (memoised on the target), property checks and comparisons.
local pve = require "px.pve"
local util = require "phoenix.util"

local M = {}

-- Per-target state: datasets changed during this run (re-read one by one).
local state = setmetatable({}, { __mode = "k" })
local function st(target)
  local s = state[target]
  if not s then
    s = { stale = {} }
    state[target] = s
  end
  return s
end

M.SIZE = { quota = true, refquota = true, reservation = true, refreservation = true, recordsize = true,
  volsize = true, volblocksize = true, special_small_blocks = true }

local ONOFF = { on = true, off = true }
local function set(...)
  local t = {}
  for _, v in ipairs({ ... }) do t[v] = true end
  return t
end

-- Native properties a site may set, with their allowed values (a set) or
-- a checker. Anything else must be a user property (module:name).
local COMPRESSION = set("on", "off", "lzjb", "gzip", "zle", "lz4", "zstd", "zstd-fast")
local CHECK = {
  compression = function(v)
    return COMPRESSION[v] or v:match("^gzip%-[1-9]$") or (v:match("^zstd%-(%d+)$") and tonumber(v:match("%d+")) <= 19)
      or v:match("^zstd%-fast%-%d+$")
  end,
  atime = ONOFF, relatime = ONOFF, readonly = ONOFF, exec = ONOFF, setuid = ONOFF, devices = ONOFF,
  overlay = ONOFF, vscan = ONOFF, zoned = ONOFF, nbmand = ONOFF, jailed = ONOFF,
  canmount = set("on", "off", "noauto"),
  sync = set("standard", "always", "disabled"),
  xattr = set("on", "off", "sa", "dir"),
  dedup = function(v) return ONOFF[v] or v == "verify" or v:match("^sha256") or v:match("^sha512")
    or v:match("^skein") or v:match("^edonr") or v:match("^blake3") end,
  checksum = set("on", "off", "fletcher2", "fletcher4", "sha256", "noparity", "sha512", "skein", "edonr", "blake3"),
  acltype = set("off", "noacl", "nfsv4", "posix", "posixacl"),
  aclinherit = set("discard", "noallow", "restricted", "passthrough", "passthrough-x"),
  aclmode = set("discard", "groupmask", "passthrough", "restricted"),
  snapdir = set("hidden", "visible", "disabled"),
  primarycache = set("all", "none", "metadata"), secondarycache = set("all", "none", "metadata"),
  logbias = set("latency", "throughput"),
  copies = set("1", "2", "3"),
  redundant_metadata = set("all", "most", "some", "none"),
  dnodesize = set("legacy", "auto", "1k", "2k", "4k", "8k", "16k"),
  casesensitivity = set("sensitive", "insensitive", "mixed"),
  normalization = set("none", "formC", "formD", "formKC", "formKD"),
  utf8only = ONOFF,
  volmode = set("default", "full", "geom", "dev", "none"),
  keylocation = function(v) return v == "prompt" or v:match("^file:///") or v:match("^https?://") end,
  mountpoint = function(v) return v == "none" or v == "legacy" or v:match("^/") end,
  sharenfs = function() return true end, sharesmb = function() return true end,
  encryption = function() return true end, keyformat = set("raw", "hex", "passphrase"),
  filesystem_limit = function(v) return v == "none" or v:match("^%d+$") end,
  snapshot_limit = function(v) return v == "none" or v:match("^%d+$") end,
  ["special_small_blocks"] = true, quota = true, refquota = true, reservation = true,
  refreservation = true, recordsize = true, volsize = true, volblocksize = true,
}

local UNITS = { [""] = 1, K = 1024, M = 1024 ^ 2, G = 1024 ^ 3, T = 1024 ^ 4, P = 1024 ^ 5, E = 1024 ^ 6 }

-- bytes("1.5T") -> 1649267441664; "none" -> 0; nil for what is not a size.
function M.bytes(v)
  if v == "none" then return 0 end
  local num, unit = tostring(v):upper():match("^(%d+%.?%d*)([KMGTPE]?)I?B?$")
  if not num then return nil end
  return math.floor(tonumber(num) * UNITS[unit] + 0.5)
end

local function pow2(n) return n > 0 and n & (n - 1) == 0 end

-- check(prop, value) -> true | nil, msg
function M.check(prop, value)
  if type(value) ~= "string" then return nil, string.format("%s: the value must be a string", prop) end
  if prop:find(":", 1, true) then
    if not prop:match("^[%w_.%-]+:[%w_.:%-]+$") then return nil, "'" .. prop .. "' is not a valid user property name" end
    return true
  end
  local rule = CHECK[prop]
  if rule == nil then
    return nil, string.format("'%s' is not a ZFS property phoenix can set (a user property is written module:name)", prop)
  end
  if M.SIZE[prop] then
    local n = M.bytes(value)
    if not n then return nil, string.format("%s=%s: not a size (e.g. 128K, 1T or none)", prop, value) end
    if (prop == "recordsize" or prop == "volblocksize") and (not pow2(n) or n < 512 or n > 16 * 1024 * 1024) then
      return nil, string.format("%s=%s: must be a power of 2 from 512 to 16M", prop, value)
    end
    return true
  end
  local ok
  if type(rule) == "function" then ok = rule(value) else ok = rule[value] end
  if not ok then
    local allowed = {}
    if type(rule) == "table" then
      for k in pairs(rule) do allowed[#allowed + 1] = k end
      table.sort(allowed)
    end
    return nil, string.format("%s=%s is not a valid value%s", prop, value,
      #allowed > 0 and (" (one of " .. table.concat(allowed, ", ") .. ")") or "")
  end
  return true
end

-- same(prop, want, have, root) -> whether the live value `have` (from
-- `zfs get -p`) is the wanted one. Mountpoints are compared without the
-- target's root (pools made on a test root have it as their altroot).
function M.same(prop, want, have, root)
  if have == nil then return false end
  if M.SIZE[prop] then
    local a, b = M.bytes(want), tonumber(have) or M.bytes(have)
    return a ~= nil and a == b
  end
  if prop == "mountpoint" and root and root ~= "/" and have:sub(1, #root + 1) == root .. "/" then
    have = have:sub(#root + 1)
  end
  if prop == "compression" then
    -- gzip is gzip-6 (zfs-fuse shows one as the other)
    want, have = want == "gzip-6" and "gzip" or want, have == "gzip-6" and "gzip" or have
  end
  return want == have
end

-- Pools --------------------------------------------------------------------

-- pools(ctx) -> { [name] = pool } (px.pve.parse_zpool_status rows) | nil, msg:
-- one `zpool status` per run.
function M.pools(ctx)
  return ctx.target:memo("phoenix.host.zpool_status", function()
    local res, err = ctx:run({ argv = { "zpool", "status" } })
    if not res then return nil, err end
    local list, perr = pve.parse_zpool_status(res.stdout)
    if not list then return nil, "`zpool status` printed what phoenix cannot read: " .. perr end
    local out = {}
    for _, p in ipairs(list) do out[p.name] = p end
    return out
  end)
end

function M.forget_pools(ctx) ctx.target:forget("phoenix.host.zpool_status") end

-- Datasets -----------------------------------------------------------------

-- The datasets of the site and the union of their properties.
local function batch_of(site)
  local names, props, seen = {}, { type = true }, {}
  for _, r in ipairs(site and site.resources or {}) do
    if r.type == "zfs_dataset" and not seen[r.want.name] then
      seen[r.want.name] = true
      names[#names + 1] = r.want.name
      for k in pairs(r.want.properties or {}) do props[k] = true end
    end
  end
  return names, props
end

-- props is a set; the target runs the batched `zfs get` (base.lua).
local function zfs_get(ctx, names, props, fresh)
  local plist = {}
  for k in pairs(props) do plist[#plist + 1] = k end
  return ctx.target:zfs_get(names, plist, { fresh = fresh })
end

-- dataset(ctx, name, props) -> { [prop] = {value, source} } | false (absent)
-- | nil, msg. Every dataset of the site is read with one `zfs get` per
-- run; one changed in this run (touch) is read again on its own.
function M.dataset(ctx, name, props)
  local s = st(ctx.target)
  if s.stale[name] then
    local want = { type = true }
    for k in pairs(props or {}) do want[k] = true end
    local got, err = zfs_get(ctx, { name }, want, true)
    if not got then return nil, err end
    return got[name] or false
  end
  local all, err = ctx.target:memo("phoenix.host.zfs_get", function()
    local names, ps = batch_of(ctx.site)
    local found = false
    for _, n in ipairs(names) do if n == name then found = true end end
    if not found then names[#names + 1] = name end
    for k in pairs(props or {}) do ps[k] = true end
    return zfs_get(ctx, names, ps)
  end)
  if not all then return nil, err end
  local d = all[name]
  if d then
    for k in pairs(props or {}) do
      if d[k] == nil then
        -- not in the batch (a dataset outside the site's list): read it alone
        s.stale[name] = true
        return M.dataset(ctx, name, props)
      end
    end
  end
  return d or false
end

-- touch(ctx, name): the dataset changed; later reads in this run ask zfs again.
function M.touch(ctx, name) st(ctx.target).stale[name] = true end

return M
