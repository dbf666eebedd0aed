-- timezone: /etc/timezone and the /etc/localtime link to the zone file, as
-- Debian's tzdata sets them (systemd reads /etc/localtime).
local fs = require "px.fs"

local ZONES = "/usr/share/zoneinfo/"

local function sha(target, p)
  return fs.sha256_file(target:path(p))
end

return {
  type = "timezone",
  describe = function(want) return "time zone " .. want.timezone end,

  inspect = function(ctx, want)
    local t = ctx.target
    local zone = ZONES .. want.timezone
    if want.timezone:find("%.%.") or not t:exists(zone) then
      return nil, "unknown time zone " .. want.timezone .. " (no " .. zone .. " on the host; is tzdata installed?)"
    end
    local name = t:read("/etc/timezone")
    local lt = fs.stat(t:path("/etc/localtime"), { follow = false })
    return { exists = true, name = name and name:match("^%s*(.-)%s*$"),
      localtime_ok = lt ~= nil and lt.type == "link" and sha(t, "/etc/localtime") == sha(t, zone) }
  end,

  diff = function(_, want, have)
    local out = {}
    if have.name ~= want.timezone then
      out[#out + 1] = { action = "update", field = "/etc/timezone", from = have.name, to = want.timezone }
    end
    if not have.localtime_ok then
      out[#out + 1] = { action = "update", field = "/etc/localtime", to = ZONES .. want.timezone }
    end
    return out
  end,

  apply = function(ctx, want, _, changes)
    local t = ctx.target
    for _, c in ipairs(changes) do
      if c.field == "/etc/timezone" then
        local ok, err = t:write("/etc/timezone", want.timezone .. "\n", { backup = ".phoenix.bak", mkdir = true })
        if ok == nil then return nil, err end
      else
        local ok, err = ctx:run({ argv = { "ln", "-sfn", ZONES .. want.timezone, t:path("/etc/localtime") } })
        if not ok then return nil, err end
      end
    end
    return true
  end,
}
