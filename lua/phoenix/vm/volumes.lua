-- NFS volumes inside a VM (`volumes[]` of type nfs): an /etc/fstab entry
-- and the mount, made by one fixed POSIX sh script run through the guest
-- agent. The site's values travel as its positional arguments, never as
-- shell text.
local fs = require "px.fs"
local util = require "phoenix.util"

local M = {}

-- $1 = server:/path, $2 = mount point, $3 = options. Installs the NFS
-- client when mount.nfs is missing, replaces an older fstab line for the
-- same mount point, mounts when not mounted. Safe to rerun.
M.SCRIPT = [[
set -eu
src=$1 mp=$2 opts=$3
line="$src $mp nfs $opts 0 0"
if ! command -v mount.nfs >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1; then
    DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q nfs-common >/dev/null
  else
    echo "mount.nfs is missing and there is no apt-get to install nfs-common" >&2
    exit 1
  fi
fi
mkdir -p "$mp"
if ! grep -qxF -- "$line" /etc/fstab; then
  tmp=/etc/fstab.phoenix.$$
  awk -v mp="$mp" '$2 != mp' /etc/fstab > "$tmp"
  printf '%s\n' "$line" >> "$tmp"
  cat "$tmp" > /etc/fstab
  rm -f "$tmp"
fi
if command -v mountpoint >/dev/null 2>&1 && mountpoint -q "$mp"; then
  mount -o remount "$mp"
else
  mount "$mp"
fi
]]

local DEFAULT_OPTIONS = "defaults,_netdev"

-- entries(want) -> list of { name, source, mount_point, options, hash }
function M.entries(want)
  local out = {}
  for _, v in ipairs(want.volumes or {}) do
    if v.type == "nfs" then
      local e = { name = v.name, source = v.server .. ":" .. v.path, mount_point = v.mount_point,
        options = v.options or DEFAULT_OPTIONS }
      e.hash = fs.sha256(M.SCRIPT .. "\0" .. e.source .. "\0" .. e.mount_point .. "\0" .. e.options)
      out[#out + 1] = e
    end
  end
  return out
end

-- mount(driver, vmid, e) -> true | nil, msg
function M.mount(driver, vmid, e)
  local res, err = driver:exec(vmid, { "sh", "-c", M.SCRIPT, "phoenix-nfs", e.source, e.mount_point, e.options },
    { timeout_ms = 600000 })
  if not res then return nil, "volume " .. e.name .. ": " .. err end
  if res.code ~= 0 then
    return nil, string.format("volume %s: mounting %s on %s failed (exit %d): %s", e.name, e.source, e.mount_point,
      res.code, util.tail(res.stderr ~= "" and res.stderr or res.stdout, 5))
  end
  return true
end

return M
