-- zfs_arc: the ARC size limit, persistently (the zfs module's options in
-- /etc/modprobe.d/zfs.conf) and live (/sys/module/zfs/parameters/zfs_arc_max).
local files = require "phoenix.host.files"

local CONF = "/etc/modprobe.d/zfs.conf"
local LIVE = "/sys/module/zfs/parameters/zfs_arc_max"

-- The file with zfs_arc_max=bytes: the value replaced where it is, else
-- added to the first `options zfs` line, else a new line. Other options and
-- comments stay.
local function render(text, bytes)
  local ls = files.lines(text or "")
  local done = false
  for i, l in ipairs(ls) do
    if not l:match("^%s*#") and l:match("^%s*options%s+zfs%s") and l:find("zfs_arc_max=", 1, true) then
      ls[i] = l:gsub("zfs_arc_max=%S*", "zfs_arc_max=" .. bytes, 1)
      done = true
    end
  end
  if not done then
    for i, l in ipairs(ls) do
      if not done and l:match("^%s*options%s+zfs%s") then
        ls[i] = l:gsub("%s*$", "") .. " zfs_arc_max=" .. bytes
        done = true
      end
    end
  end
  if not done then ls[#ls + 1] = "options zfs zfs_arc_max=" .. bytes end
  return table.concat(ls, "\n") .. "\n"
end

-- Root on ZFS: the module options are read from the initramfs.
local function root_on_zfs(target)
  local mounts = target:read("/proc/mounts") or ""
  for line in mounts:gmatch("[^\n]+") do
    local _, mp, fstype = line:match("^(%S+)%s+(%S+)%s+(%S+)")
    if mp == "/" and fstype == "zfs" then return true end
  end
  return false
end

return {
  type = "zfs_arc",
  describe = function(want) return string.format("ZFS ARC limit %g GiB", want.arc_max_gb) end,

  inspect = function(ctx)
    local t = ctx.target
    local live = t:read(LIVE)
    return { exists = true, conf = t:read(CONF), live = live and live:match("^%s*(%d+)") }
  end,

  diff = function(_, want, have)
    local out = {}
    local c = files.change(CONF, have.conf, render(have.conf, want.arc_max_bytes))
    if c then out[#out + 1] = c end
    if have.live and tonumber(have.live) ~= want.arc_max_bytes then
      out[#out + 1] = { action = "update", field = "zfs_arc_max (live)", from = have.live,
        to = tostring(want.arc_max_bytes) }
    end
    return out
  end,

  apply = function(ctx, want, have, changes)
    local t = ctx.target
    for _, c in ipairs(changes) do
      if c.field == CONF then
        local changed, err = files.put(t, CONF, render(have.conf, want.arc_max_bytes))
        if changed == nil then return nil, err end
        if changed and root_on_zfs(t) then
          local ok, rerr = ctx:run({ argv = { "update-initramfs", "-u", "-k", "all" } })
          if not ok then return nil, rerr end
        end
      else
        -- a kernel parameter file: written in place (it cannot be renamed over)
        local f, err = io.open(t:path(LIVE), "w")
        if not f then return nil, "cannot set the live ARC limit: " .. tostring(err) end
        local ok, werr = f:write(tostring(want.arc_max_bytes) .. "\n")
        local cok, cerr = f:close()
        if not ok or not cok then return nil, "cannot set the live ARC limit: " .. tostring(werr or cerr) end
      end
    end
    return true
  end,
}
