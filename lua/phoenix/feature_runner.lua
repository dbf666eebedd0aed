-- Runs a guest's feature scripts (and its application script) through a
-- guest driver, as docs/internals.md "Feature scripts" pins it: push the
-- script to /var/lib/phoenix/features/<name>.sh, run it with its settings as
-- PHOENIX_* variables in the argv, and on exit 0 push <name>.done holding
-- "<sha256> <name>" (the hash of the script text and its settings). A
-- feature whose marker holds the current hash is not run again.
local fs = require "px.fs"
local px = require "px"
local settings = require "phoenix.feature_settings"
local util = require "phoenix.util"

local M = {}

M.DIR = "/var/lib/phoenix/features"
M.APP = "application_script"       -- the marker name of the application script
M.TIMEOUT_MS = 3600 * 1000         -- one script may run an hour (package installs)

-- script_path(name, site) -> path | nil, msg: the site's features_dir wins
-- over the built-in etc/features.
function M.script_path(name, site)
  local tried = {}
  for _, dir in ipairs({ site and site.features_dir or false, px.home .. "/etc/features" }) do
    if dir then
      local p = dir .. "/" .. name .. ".sh"
      if fs.exists(p) then return p end
      tried[#tried + 1] = p
    end
  end
  return nil, "feature " .. name .. ": no script (looked for " .. table.concat(tried, ", ") .. ")"
end

-- app_path(rel, site) -> path | nil, msg: an application script named
-- relative to the site directory, or to ../bin beside it (the layout of
-- /usr/local/phoenix_hypervisor: etc/ for the files, bin/ for scripts).
function M.app_path(rel, site)
  local tried = {}
  for _, base in ipairs({ site.dir, site.dir .. "/../bin" }) do
    local p = base .. "/" .. rel
    if fs.exists(p) then return p end
    tried[#tried + 1] = p
  end
  return nil, "application_script " .. rel .. ": not found (looked for " .. table.concat(tried, ", ") .. ")"
end

local function hash(text, list)
  local parts = { text, "\0" }
  for _, kv in ipairs(list) do parts[#parts + 1] = kv[1] .. "=" .. kv[2] .. "\n" end
  return fs.sha256(table.concat(parts))
end

local function item(name, path, want, site, args, guest)
  local text, err = fs.read(path)
  if not text then return nil, name .. ": " .. tostring(err) end
  local set = settings.settings(text, want, site, guest)
  return { name = name, path = path, text = text, settings = set, hash = hash(text, set), args = args or {} }
end

-- plan(want, site, guest) -> items | nil, msg: the features in order,
-- then the application script, each { name, path, text, settings, hash,
-- args }. guest(what) answers settings that come from another guest (see
-- feature_settings).
function M.plan(want, site, guest)
  local out = {}
  for _, name in ipairs(want.features or {}) do
    local path, err = M.script_path(name, site)
    if not path then return nil, err end
    local it, ierr = item(name, path, want, site, nil, guest)
    if not it then return nil, ierr end
    out[#out + 1] = it
  end
  if want.application_script then
    local path, err = M.app_path(want.application_script, site)
    if not path then return nil, err end
    local it, ierr = item(M.APP, path, want, site, { tostring(want.ctid or want.vmid) }, guest)
    if not it then return nil, ierr end
    out[#out + 1] = it
  end
  return out
end

-- parse_markers(text) -> { name = hash }: concatenated marker files.
function M.parse_markers(text)
  local out = {}
  for h, name in (text or ""):gmatch("(%x+) ([%w_.%-]+)\n?") do out[name] = h end
  return out
end

function M.marker_paths(names)
  local out = {}
  for i, n in ipairs(names) do out[i] = M.DIR .. "/" .. n .. ".done" end
  return out
end

-- markers(driver, id, names) -> { name = hash } | nil, msg. A driver may
-- read them its own way (d:markers); otherwise one `cat` inside the guest.
function M.markers(driver, id, names)
  if #names == 0 then return {} end
  if driver.markers then return driver:markers(id, names) end
  local argv = { "cat" }
  for _, p in ipairs(M.marker_paths(names)) do argv[#argv + 1] = p end
  local res, err = driver:exec(id, argv, { timeout_ms = 60000 })
  if not res then return nil, err end
  return M.parse_markers(res.stdout) -- a missing marker only shortens the output
end

-- pending(items, markers) -> the items whose marker does not hold their hash
function M.pending(items, markers)
  local out = {}
  for _, it in ipairs(items) do
    if markers[it.name] ~= it.hash then out[#out + 1] = it end
  end
  return out
end

-- argv(it) -> env PHOENIX_FEATURE=<name> PHOENIX_...=... sh <path> [args]
function M.argv(it)
  local argv = { "env", "PHOENIX_FEATURE=" .. it.name }
  for _, kv in ipairs(it.settings) do argv[#argv + 1] = kv[1] .. "=" .. kv[2] end
  argv[#argv + 1] = "sh"
  argv[#argv + 1] = M.DIR .. "/" .. it.name .. ".sh"
  for _, a in ipairs(it.args) do argv[#argv + 1] = a end
  return argv
end

-- run(driver, id, it, log) -> true | nil, msg
function M.run(driver, id, it, log)
  local path = M.DIR .. "/" .. it.name .. ".sh"
  local ok, err = driver:push(id, path, it.text, { mode = "0700" })
  if not ok then return nil, it.name .. ": push " .. path .. ": " .. tostring(err) end
  if log then log:info("running %s", it.name == M.APP and "the application script" or ("feature " .. it.name)) end
  local res, xerr = driver:exec(id, M.argv(it), { timeout_ms = M.TIMEOUT_MS })
  if not res then return nil, it.name .. ": " .. tostring(xerr) end
  if res.code ~= 0 then
    local tail = util.tail(res.stderr ~= "" and res.stderr or res.stdout)
    return nil, string.format("%s: `sh %s` exited %d%s", it.name == M.APP and "application_script" or
      ("feature " .. it.name), path, res.code, tail ~= "" and (": " .. tail) or "")
  end
  ok, err = driver:push(id, M.DIR .. "/" .. it.name .. ".done", it.hash .. " " .. it.name .. "\n", { mode = "0600" })
  if not ok then return nil, it.name .. ": marker: " .. tostring(err) end
  return true
end

-- What features learn from another guest: the site CA's root certificate
-- and fingerprint, as the step_ca feature leaves them in its guest (read
-- once per run; nil while that guest cannot answer).
function M.other_guests(ctx)
  return function(what)
    local ca = ctx.site and ctx.site.by_id and ctx.site.by_id["trusted_ca:host"]
    local gid = ca and ca.want.ca_guest
    local kind, id = tostring(gid):match("^(%a+):(%d+)$")
    if not kind then return nil end
    local file = what == "ca_cert" and "root_ca.crt" or "root_ca.fingerprint"
    local g = ctx.site.by_id[gid]
    local path = ((g and g.want.steppath) or "/root/.step") .. "/certs/" .. file
    local data = ctx.target:memo("guest-file:" .. gid .. ":" .. path, function()
      local d = ctx.target:driver(kind == "lxc" and "ct" or "vm")
      if not d then return nil end
      return d:pull(tonumber(id), path)
    end)
    if what == "ca_fingerprint" and data then data = data:match("^%s*(%S+)") end
    return data
  end
end

return M
