-- What every target shares: files under its root, host commands (a tool
-- found in `bin` wins, so tests point pct/qm/... at the simulator), and a
-- per-run cache for batched inspection.
local async = require "phoenix.async"
local util = require "phoenix.util"
local fs = require "px.fs"
local pve = require "px.pve"

local Base = {}
Base.__index = Base

local function join(root, p)
  if type(p) ~= "string" or p:sub(1, 1) ~= "/" then
    error("target path must be absolute, got " .. tostring(p), 3)
  end
  if root == "/" then return p end
  return root .. p
end

-- new(spec, class) -> target; class provides type, options (name -> help)
-- and features (name -> true). Unknown options are errors.
function Base.new(spec, class)
  for k in pairs(spec) do
    if k ~= "type" and not class.options[k] then
      local known = {}
      for name in pairs(class.options) do known[#known + 1] = name end
      table.sort(known)
      return nil, string.format("unknown option '%s' for the %s target (known: %s)", k, class.type,
        table.concat(known, ", "))
    end
  end
  local root = spec.root or "/"
  if root ~= "/" then
    local real, err = require("px.sys").realpath(root)
    if not real then return nil, "target root " .. err end
    root = real
  end
  local t = setmetatable({ type = class.type, root = root, bin = spec.bin, spec = spec, cache = {}, files = fs }, class)
  return t
end

function Base:path(p) return join(self.root, p) end

function Base:supports(feature) return self.features[feature] == true end

-- driver(kind) -> driver | nil, msg. Guest drivers live in modules named
-- phoenix.target.<type>_<kind> ("pve_ct", "lxc_ct", "pve_vm"), loaded on
-- first use; a target without one does not support that kind of guest.
function Base:driver(kind)
  self.drivers = self.drivers or {}
  local d = self.drivers[kind]
  if d then return d end
  local modname = "phoenix.target." .. self.type:gsub("%-", "_") .. "_" .. kind
  local ok, mod = pcall(require, modname)
  if not ok then
    if tostring(mod):find("module '" .. modname .. "' not found", 1, true) then
      local what = ({ ct = "containers", vm = "virtual machines" })[kind] or kind
      return nil, what .. " are not supported on the " .. self.type .. " target"
    end
    error(mod, 0)
  end
  d = mod.new(self)
  self.drivers[kind] = d
  return d
end

-- Resolves argv[1] through bin when the tool is there.
function Base:tool(name)
  if self.bin and not name:find("/", 1, true) then
    local p = self.bin .. "/" .. name
    if fs.exists(p) then return p end
  end
  return name
end

-- run(opts) -> result | nil, msg (px.exec options; yields inside a task)
function Base:run(opts)
  local argv = { self:tool(opts.argv[1]), table.unpack(opts.argv, 2) }
  local o = {}
  for k, v in pairs(opts) do o[k] = v end
  o.argv = argv
  return async.run(o)
end

-- Files go through self.files: px.fs here; a remote target puts its
-- transport's file operations there (same contracts, full paths).
function Base:read(p) return self.files.read(self:path(p)) end
function Base:exists(p) return self.files.exists(self:path(p)) end
function Base:stat(p) return self.files.stat(self:path(p)) end
function Base:list(p) return self.files.list(self:path(p)) end
function Base:mkdir(p, opts) return self.files.mkdir(self:path(p), opts) end
function Base:remove(p) return self.files.remove(self:path(p)) end

-- write(p, data, {mode=, uid=, gid=, backup=".phoenix.bak", mkdir=true})
-- -> changed (boolean) | nil, msg. Unchanged content is not rewritten.
function Base:write(p, data, opts)
  opts = opts or {}
  local files = self.files
  local full = self:path(p)
  local old = files.read(full)
  local mode = opts.mode
  if type(mode) == "string" then mode = tonumber(mode, 8) end
  if old == data then
    local st = files.stat(full)
    if not mode or (st and st.mode == mode) then return false end
  end
  if opts.mkdir then
    local dir = full:match("^(.*)/[^/]*$")
    if dir and dir ~= "" then
      local ok, err = files.mkdir(dir)
      if not ok then return nil, err end
    end
  end
  local wopts = { mode = mode, uid = opts.uid, gid = opts.gid }
  if old and opts.backup then wopts.backup = opts.backup end
  local ok, err = files.write(full, data, wopts)
  if not ok then return nil, err end
  return true
end

-- memo(key, fn) -> fn()'s results, computed once per run and shared by
-- concurrent tasks (a second caller waits for the first).
function Base:memo(key, fn)
  local e = self.cache[key]
  while e and e.busy do
    async.sleep(0.005)
    e = self.cache[key]
  end
  if e then return table.unpack(e.values, 1, e.values.n) end
  self.cache[key] = { busy = true }
  local values = table.pack(pcall(fn))
  if not values[1] then
    self.cache[key] = nil
    error(values[2], 0)
  end
  self.cache[key] = { values = table.pack(table.unpack(values, 2, values.n)) }
  -- a failed batch (nil, msg) is not cached: the next caller tries again
  if values[2] == nil then self.cache[key] = nil end
  return table.unpack(values, 2, values.n)
end

-- forget(key) drops one cached batch; forget() drops all.
function Base:forget(key)
  if key == nil then self.cache = {} else self.cache[key] = nil end
end

-- ZFS, on every target that has `zfs`: one batched `zfs get` per run.

-- zfs_command(args, opts) -> result | nil, msg, result: `zfs args...` with
-- ok_codes (default {0}); targets override it (pve retries lock timeouts).
function Base:zfs_command(args, opts)
  local argv = { "zfs", table.unpack(args) }
  local res, err = self:run({ argv = argv })
  if not res then return nil, util.command_error(argv, nil, err) end
  local ok = false
  for _, c in ipairs(opts and opts.ok_codes or { 0 }) do
    if res.code == c then ok = true end
  end
  if res.timed_out or not ok then return nil, util.command_error(argv, res), res end
  return res
end

local function string_list(what, list)
  if type(list) ~= "table" or #list == 0 then error("zfs_get: " .. what .. " must be a non-empty list", 3) end
  local out = {}
  for i, v in ipairs(list) do
    if type(v) ~= "string" or v == "" or v:find("[%s,]") or v:sub(1, 1) == "-" then
      error(string.format("zfs_get: %s[%d] is not a %s: %s", what, i, what:sub(1, -2), tostring(v)), 3)
    end
    out[i] = v
  end
  table.sort(out)
  return out
end

-- zfs_get(datasets, props [, {fresh=true}]) -> { [dataset] = { [prop] = {value=, source=,
-- inherited_from=} } } | nil, msg. One `zfs get` for the whole list, once
-- per run for the same lists; datasets that do not exist are absent.
function Base:zfs_get(datasets, props, opts)
  local ds = string_list("datasets", datasets)
  local ps = string_list("properties", props)
  local key = "zfs:" .. table.concat(ds, " ") .. "|" .. table.concat(ps, ",")
  self.zfs_batches = self.zfs_batches or {}
  self.zfs_batches[key] = ds
  if opts and opts.fresh then self:forget(key) end -- read again (after a change)
  return self:memo(key, function()
    local argv = { "get", "-H", "-p", "-o", "name,property,value,source", table.concat(ps, ","), table.unpack(ds) }
    local res, err, partial = self:zfs_command(argv, { ok_codes = { 0, 1 } })
    if not res then return nil, err, partial end
    if res.code == 1 then
      -- zfs reports each missing dataset and goes on; anything else is an error
      for line in res.stderr:gmatch("[^\n]+") do
        if not line:match("^cannot open '[^']*': dataset does not exist$") then
          return nil, util.command_error({ "zfs", table.unpack(argv) }, res)
        end
      end
    end
    local rows, perr = pve.parse_zfs_get(res.stdout)
    if not rows then return nil, "`zfs get` printed what phoenix cannot read: " .. perr end
    local out = {}
    for _, r in ipairs(rows) do
      out[r.name] = out[r.name] or {}
      out[r.name][r.property] = { value = r.value, source = r.source, inherited_from = r.inherited_from }
    end
    return out
  end)
end

-- refresh_zfs(dataset) drops the zfs_get batches that hold the dataset (or
-- all of them), after a change to it.
function Base:refresh_zfs(dataset)
  for key, ds in pairs(self.zfs_batches or {}) do
    local hit = dataset == nil
    for _, d in ipairs(ds) do
      if d == dataset then hit = true end
    end
    if hit then
      self:forget(key)
      self.zfs_batches[key] = nil
    end
  end
  return true
end


return Base
