-- vm: a QEMU VM on a Proxmox node, end to end. A template is built from a
-- cloud image (qm create, qm importdisk, disks + cloud-init drive + serial
-- console + agent, qm template); other VMs are full clones of one. Then:
-- configuration (cores, memory, net0, boot, qm_options, GPUs), disk size
-- (grow only), cloud-init, running, the guest agent, snapshots around the
-- feature scripts, features, NFS volumes. docs/vms.md tells the story.
local apply = require "phoenix.vm.apply"
local config = require "phoenix.vm.config"
local inspect = require "phoenix.vm.inspect"
local pve = require "px.pve"
local state = require "phoenix.vm.state"

-- The steps after configuration, shared by new and existing VMs.
local function guest_steps(want, have, out)
  local pre, post = inspect.snapshot_names(want)
  local due = 0
  for _, f in ipairs(have.features or {}) do if not f.done then due = due + 1 end end
  for _, v in ipairs(have.volumes or {}) do if not v.done then due = due + 1 end end
  if not have.running then
    out[#out + 1] = { field = "status", action = have.exists and "update" or "create",
      from = have.exists and (have.status or "stopped") or nil, to = "running" }
  end
  if not have.running or due > 0 then
    out[#out + 1] = { field = "agent", action = "run",
      to = string.format("wait for the guest agent (up to %d s)", want.agent_timeout or inspect.AGENT_TIMEOUT) }
  end
  if pre and not have.snapshots[pre] and not have.record.features_started and
    (#(have.features or {}) > 0 or not have.exists) then
    out[#out + 1] = { field = "snapshot " .. pre, action = "create", to = "before the features", snapshot = pre }
  end
  for _, f in ipairs(have.features or {}) do
    if not f.done then
      out[#out + 1] = { field = "feature " .. f.name, action = "run", to = f.name, feature = f.name,
        note = have.record.features[f.name] and "script or settings changed" or nil }
    end
  end
  for _, v in ipairs(have.volumes or {}) do
    if not v.done then
      out[#out + 1] = { field = "volume " .. v.name, action = "run", to = v.source .. " on " .. v.mount_point,
        volume = v.name }
    end
  end
  if post and not have.snapshots[post] then
    out[#out + 1] = { field = "snapshot " .. post, action = "create", to = "after the features", snapshot = post }
  end
end

local function create_summary(want)
  local parts = {}
  if want.cores then parts[#parts + 1] = want.cores .. " cores" end
  if want.memory_mb then parts[#parts + 1] = want.memory_mb .. " MB" end
  if want.disk_size_gb and not want.is_template then parts[#parts + 1] = want.disk_size_gb .. " GB disk" end
  if want.storage_pool then parts[#parts + 1] = "on " .. want.storage_pool end
  return #parts > 0 and (" (" .. table.concat(parts, ", ") .. ")") or ""
end

local function diff(_, want, have)
  local out = {}
  if not have.exists then
    local c = { field = "vm", action = "create" }
    if want.clone_from_vmid then
      c.to = "full clone of VM " .. want.clone_from_vmid .. create_summary(want)
      if not have.source then c.note = "after VM " .. want.clone_from_vmid .. " exists" end
    elseif want.template_image then
      c.to = "from cloud image " .. want.template_image .. create_summary(want)
      if have.image and not have.image.path then
        c.note = have.image.url and "downloads the image first" or "the image is not on the host yet"
      end
    else
      c.to = "new VM" .. create_summary(want)
      c.note = "needs clone_from_vmid or template_image"
    end
    out[1] = c
    if want.is_template then
      out[#out + 1] = { field = "template", action = "create", to = "convert to a template",
        note = want.template_snapshot_name and ("no snapshot " .. want.template_snapshot_name
          .. ": Proxmox keeps none of a template, which is itself the clean state") or nil }
      return out
    end
    guest_steps(want, have, out)
    return out
  end
  if have.template and not want.is_template then
    out[#out + 1] = { field = "template", action = "update", from = "template", to = "VM",
      unsupported = "a template cannot become a VM again: delete it (phoenix delete vm:" .. want.vmid
        .. " --yes) and converge" }
    return out
  end
  for _, c in ipairs(config.changes(want, have, have.facts)) do out[#out + 1] = c end
  local ud = have.facts.user_data
  if ud and ud.current ~= ud.content then
    out[#out + 1] = { field = "user-data", action = ud.current and "update" or "create", to = ud.volid,
      note = have.running and "used from the next boot" or nil }
  end
  if want.is_template then
    if not have.template then
      if not have.disk then
        out[#out + 1] = { field = "image", action = "create", to = "import " .. tostring(want.template_image) }
      end
      out[#out + 1] = { field = "template", action = "update", from = "VM", to = "template",
        disruptive = have.running and "restart" or nil }
    end
    return out
  end
  local disk = have.disk
  if want.disk_size_gb and disk and disk.size and disk.size < want.disk_size_gb * 1024 ^ 3 then
    out[#out + 1] = { field = "disk " .. disk.key, action = "update", from = pve.format_size(disk.size),
      to = want.disk_size_gb .. "G", disk = disk.key }
  end
  guest_steps(want, have, out)
  return out
end



local function describe(want)
  local what = want.is_template and "template VM" or "VM"
  local s = string.format("%s %d (%s)", what, want.vmid, want.name or "?")
  if want.clone_from_vmid then s = s .. ", clone of " .. want.clone_from_vmid end
  if want.is_template and want.template_image then s = s .. " from " .. want.template_image end
  if want.count_of then s = s .. string.format(", %d of %d", want.count_index, want.count_of) end
  return s
end

local function destroy(ctx, want, have)
  local d = inspect.driver(ctx)
  if have.running then apply.must(ctx, d:stop(want.vmid)) end
  apply.must(ctx, d:destroy(want.vmid))
  state.remove(ctx.target, want.vmid)
  return true
end

return {
  type = "vm",
  describe = describe,
  inspect = inspect.inspect,
  diff = diff,
  apply = apply.apply,
  destroy = destroy,
}
