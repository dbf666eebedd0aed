-- apparmor_profile: an AppArmor profile guests use, installed from the site
-- (<config dir>/apparmor/<name>) to /etc/apparmor.d/lxc/<name>, where LXC
-- profiles live. A new text is checked with `apparmor_parser -Q` (parse
-- only) before it is installed, then loaded with `apparmor_parser -r`.
-- The previous text is kept in /var/lib/phoenix/backup/apparmor/<name>:
-- a backup inside apparmor.d would be loaded as a second profile.
local files = require "phoenix.host.files"
local fs = require "px.fs"

local DIR = "/etc/apparmor.d/lxc/"
local LOADED = "/sys/kernel/security/apparmor/profiles"

-- The names of the loaded profiles, or nil when the kernel does not say.
local function loaded(t)
  local text = t:read(LOADED)
  if not text then return nil end
  local out = {}
  for line in text:gmatch("[^\n]+") do
    local name = line:match("^(.-)%s+%(%w+%)%s*$") or line
    out[name] = true
  end
  return out
end

local function parser(ctx, flags, path)
  local argv = { "apparmor_parser" }
  for _, f in ipairs(flags) do argv[#argv + 1] = f end
  if ctx.target.root ~= "/" then
    argv[#argv + 1] = "--base"
    argv[#argv + 1] = ctx.target:path("/etc/apparmor.d")
  end
  argv[#argv + 1] = path
  return ctx:run({ argv = argv })
end

return {
  type = "apparmor_profile",
  describe = function(want) return "AppArmor profile " .. want.name end,

  inspect = function(ctx, want)
    local t = ctx.target
    local text = want.file and fs.read(want.file)
    local dest = DIR .. want.name
    local have = { exists = true, text = text, dest = dest, current = t:read(dest), loaded = loaded(t) }
    if not text then
      -- the site does not carry it: it must be on the host already
      local known = have.current ~= nil or t:exists("/etc/apparmor.d/" .. want.name)
        or (have.loaded and have.loaded[want.name])
      if not known then
        local users = {}
        for _, g in ipairs(want.guests or {}) do users[#users + 1] = tostring(g) end
        return nil, string.format("AppArmor profile %s (used by %s) is neither in %s nor on the host",
          want.name, table.concat(users, ", "), tostring(want.file))
      end
      if not have.current then have.dest = "/etc/apparmor.d/" .. want.name end
    end
    return have
  end,

  diff = function(_, want, have)
    local out = {}
    if have.text then out[#out + 1] = files.change(have.dest, have.current, have.text) end
    if have.loaded and not have.loaded[want.name] and #out == 0 then
      out[#out + 1] = { action = "run", field = "load", to = "apparmor_parser -r " .. have.dest }
    end
    return out
  end,

  apply = function(ctx, want, have, changes)
    local t = ctx.target
    for _, c in ipairs(changes) do
      if c.field == have.dest then
        local staged, err = files.stage(t, "apparmor-" .. want.name, have.text)
        if not staged then return nil, err end
        local ok, perr = parser(ctx, { "-Q", "-K" }, staged)
        if not ok then return nil, "AppArmor profile " .. want.name .. " does not parse, nothing was changed: " .. perr end
        local w, werr = files.put(t, have.dest, have.text, { keep = "/var/lib/phoenix/backup/apparmor" })
        if w == nil then return nil, werr end
      end
    end
    local ok, err = parser(ctx, { "-r" }, t:path(have.dest))
    if not ok then return nil, err end
    return true
  end,
}
