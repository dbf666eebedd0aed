-- What phoenix did inside a VM, recorded on the host so a run that has
-- nothing to do needs no call into the guest: the features that ran (the
-- hash of script + settings, as in the guest's markers), the NFS mounts,
-- the cloud-init password set. The record is bound to the VM's SMBIOS
-- UUID, which a clone or a re-created VM does not share, so it never
-- vouches for another VM with the same ID.
local json = require "px.json"

local M = {}

M.DIR = "/var/lib/phoenix/vm"

function M.path(vmid) return string.format("%s/%d.json", M.DIR, vmid) end

-- uuid(main) -> the SMBIOS UUID of a VM's config (nil when it has none)
function M.uuid(main)
  local s = main and main.smbios1
  return s and s:match("uuid=([%x%-]+)") or nil
end

local function fresh(uuid) return { uuid = uuid, features = {}, volumes = {} } end

-- read(t, vmid, uuid) -> record (a fresh one when absent, unreadable or
-- for another VM), and a warning when the file could not be used.
function M.read(t, vmid, uuid)
  local text = t:read(M.path(vmid))
  if not text then return fresh(uuid) end
  local r, err = json.decode(text)
  if type(r) ~= "table" then
    return fresh(uuid), t:path(M.path(vmid)) .. ": " .. tostring(err or "not a JSON object") .. " (ignored)"
  end
  if r.uuid ~= uuid then return fresh(uuid) end
  if type(r.features) ~= "table" then r.features = {} end
  if type(r.volumes) ~= "table" then r.volumes = {} end
  return r
end

-- write(t, vmid, record) -> true | nil, msg
function M.write(t, vmid, record)
  local ok, err = t:write(M.path(vmid), json.canonical(record) .. "\n", { mode = "0600", mkdir = true })
  if ok == nil then return nil, "cannot record the state of VM " .. vmid .. ": " .. tostring(err) end
  return true
end

function M.remove(t, vmid)
  if t:exists(M.path(vmid)) then return t:remove(M.path(vmid)) end
  return true
end

return M
