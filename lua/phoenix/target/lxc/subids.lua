-- /etc/subuid and /etc/subgid: the host ids root may hand to unprivileged
-- containers. Proxmox hosts carry root:100000:65536; a plain Debian host
-- has nothing, and LXC (newuidmap) then refuses the container's id map.
local M = {}

local function covered(text, first, count)
  for line in (text or ""):gmatch("[^\n]+") do
    local user, s, c = line:match("^%s*([^:#%s]+):(%d+):(%d+)%s*$")
    if (user == "root" or user == "0") and tonumber(s) <= first and first + count <= tonumber(s) + tonumber(c) then
      return true
    end
  end
  return false
end

-- ensure(t, ranges) -> true | nil, msg. ranges = { uid = {{first, count}...}, gid = {...} }
-- Appends root:<first>:<count> for every range not yet granted.
function M.ensure(t, ranges)
  for kind, file in pairs({ uid = "/etc/subuid", gid = "/etc/subgid" }) do
    local text = t:read(file) or ""
    local add = {}
    for _, r in ipairs(ranges[kind] or {}) do
      if not covered(text, r[1], r[2]) then add[#add + 1] = string.format("root:%d:%d", r[1], r[2]) end
    end
    if #add > 0 then
      if text ~= "" and text:sub(-1) ~= "\n" then text = text .. "\n" end
      local ok, err = t:write(file, text .. table.concat(add, "\n") .. "\n", { mode = "0644" })
      if ok == nil then return nil, t:path(file) .. ": " .. tostring(err) end
      require("px.log").info(string.format("%s: added %s (host ids for unprivileged containers)", t:path(file),
        table.concat(add, ", ")))
    end
  end
  return true
end

M.covered = covered

return M
