-- vm: a QEMU VM on a Proxmox node, end to end. A template is built from a
-- cloud image (qm create, qm importdisk, disks + cloud-init drive + serial
-- console + agent, qm template); other VMs are full clones of one. Then:
-- configuration (cores, memory, net0, boot, qm_options, GPUs), disk size
-- (grow only), cloud-init, running, the guest agent, snapshots around the
-- feature scripts, features, NFS volumes. docs/vms.md tells the story.
local cloudinit = require "phoenix.vm.cloudinit"
local config = require "phoenix.vm.config"
local features = require "phoenix.vm.features"
local fs = require "px.fs"
local gpu = require "phoenix.vm.gpu"
local image = require "phoenix.vm.image"
local pve = require "px.pve"
local state = require "phoenix.vm.state"
local storage = require "phoenix.vm.storage"
local volumes = require "phoenix.vm.volumes"

local AGENT_TIMEOUT = 300

local function driver(ctx)
  local d, err = ctx.target:driver("vm")
  if not d then ctx:fail(err) end
  return d
end

-- The snapshots taken around the features: `snapshots`, else the
-- lifecycle names when enable_lifecycle_snapshots is on.
local function snapshot_names(want)
  local s = want.snapshots or {}
  local pre, post = s["pre-features"], s["post-features"]
  if not want.snapshots and want.enable_lifecycle_snapshots then pre, post = "pre-configured", "final-form" end
  return pre, post
end

-- The VM's system disk: scsi0, else the first disk of the boot order.
local function disk_of(main)
  local key = main.scsi0 and "scsi0"
  if not key and main.boot then
    local b = pve.parse_prop(main.boot, "qemu-boot")
    for _, k in ipairs(b and b.order or {}) do
      if config.is_disk(k) and main[k] then key = k break end
    end
  end
  if not key then return nil end
  local d = pve.parse_prop(main[key], pve.format_of(key, "qemu"))
  if not d or d.media == "cdrom" then return nil end
  return { key = key, volid = d.file, size = d.size and pve.parse_size(d.size) or nil }
end

local function snapshot_set(conf)
  local set = {}
  for name in pairs(conf.snapshots or {}) do set[name] = true end
  return set
end

-- hostpci host ids the site gives itself in qm_options (checked as GPUs are)
local function option_pci_ids(want)
  local ids = {}
  for _, o in ipairs(want.qm_options or {}) do
    local k, v = config.split_option(o)
    if k and k:match("^hostpci%d+$") then
      local p = pve.parse_prop(v, "qemu-hostpci")
      for _, h in ipairs(p and p.host or {}) do ids[#ids + 1] = h end
    end
  end
  return ids
end

-- What a config file says, in the shape config.changes reads.
local function from_conf(have, conf, running)
  have.main = conf.main
  have.pending = conf.pending and conf.pending.main or {}
  have.description = conf.description
  have.running = running
  have.snapshots = snapshot_set(conf)
  have.disk = disk_of(conf.main)
  have.uuid = state.uuid(conf.main)
  have.template = conf.main.template == "1"
  return have
end

local function tags_facts(t, facts, tags_value)
  local list = {}
  for tag in (tags_value or ""):gmatch("[^,; ]+") do list[#list + 1] = tag:lower() end
  local owned = false
  for _, tag in ipairs(list) do if tag == "phoenix" then owned = true end end
  local v, err = t:tags_option(list)
  if not v then return nil, err end
  facts.tags, facts.tags_ok = v, owned
  return true
end

-- Host facts the wanted config depends on (pure diff needs them ready).
local function gather_facts(ctx, want, have)
  local t = ctx.target
  local facts = {}
  local ok, err = tags_facts(t, facts, have.main and have.main.tags)
  if not ok then return nil, err end
  local pw = want.user_config and want.user_config.password
  facts.password_recorded = pw ~= nil and have.record ~= nil and have.record.password == fs.sha256(pw)
  local extra = option_pci_ids(want)
  if (want.gpu_assignment and #want.gpu_assignment > 0) or #extra > 0 then
    local g, gerr = gpu.resolve(t.root, want.gpu_assignment or {}, extra)
    if not g then return nil, gerr end
    facts.hostpci = g.values
  elseif want.gpu_assignment then
    facts.hostpci = {} -- "none": phoenix removes the hostpci entries it does not want
  end
  local ci = want.cloud_init
  if ci and ci.user_data then
    local storages, serr = storage.read(t)
    if not storages then return nil, serr end
    local path, volid = storage.snippet(storages, ci.storage or "local", cloudinit.file(want.vmid))
    if not path then return nil, volid end
    local text, terr = cloudinit.template(ctx.site, ci.user_data)
    if not text then return nil, terr end
    local rendered, rerr = cloudinit.render(text, cloudinit.vars(want), terr)
    if not rendered then return nil, rerr end
    facts.cicustom = "user=" .. volid
    facts.user_data = { path = path, volid = volid, content = rendered, current = t:read(path) }
  end
  return facts
end

local function inspect(ctx, want)
  local d = driver(ctx)
  local g, err = d:guest(want.vmid)
  if g == nil and err then return nil, err end
  -- --prune and `phoenix delete vm:ID` of an undeclared VM know only its ID
  if want.prune or want.name == nil then
    return { exists = g ~= nil, owned = g and g.owned, running = g and g.status == "running" }
  end
  local have = { exists = g ~= nil, vmid = want.vmid }
  if g then
    if not g.owned and g.name ~= want.name then
      return nil, string.format("VM %d exists, is named '%s' (not '%s') and has no phoenix tag: it is not this "
        .. "site's VM; choose another vmid or remove it", want.vmid, g.name, want.name)
    end
    have.owned, have.lock, have.status = g.owned, g.lock, g.status
    from_conf(have, g.conf, g.status == "running")
    local rec, warn = state.read(ctx.target, want.vmid, have.uuid)
    if warn then ctx.log:warn("%s", warn) end
    have.record = rec
    if want.is_template and not have.template and not have.disk and want.template_image then
      local img, ierr = image.locate(ctx.target, want.template_image)
      if not img then return nil, ierr end
      have.image = img -- a build that stopped before the image was imported
    end
    if have.disk and have.disk.size and want.disk_size_gb and not have.template
      and have.disk.size > want.disk_size_gb * 1024 ^ 3 then
      -- not a change (phoenix never shrinks a disk), but plan says so
      local say = ctx.options.mode == "plan" and ctx.log.info or ctx.log.debug
      say(ctx.log, "disk %s is %s, more than disk_size_gb %d: kept (phoenix never shrinks a disk)", have.disk.key,
        pve.format_size(have.disk.size), want.disk_size_gb)
    end
  else
    have.main, have.pending, have.snapshots, have.record = {}, {}, {}, state.read(ctx.target, want.vmid, nil)
    if want.clone_from_vmid then
      local src, serr = d:guest(want.clone_from_vmid)
      if src == nil and serr then return nil, serr end
      have.source = src and { template = src.template, status = src.status } or nil
    elseif want.template_image then
      local img, ierr = image.locate(ctx.target, want.template_image)
      if not img then return nil, ierr end
      have.image = img
    end
  end
  local facts, ferr = gather_facts(ctx, want, have)
  if not facts then return nil, ferr end
  have.facts = facts
  if not want.is_template then
    local list, lerr = features.wanted(ctx.site, want, want.features, features.vm_settings)
    if not list then return nil, lerr end
    for _, f in ipairs(list) do f.done = have.record.features[f.name] == f.hash end
    have.features = list
    local vols = volumes.entries(want)
    for _, v in ipairs(vols) do v.done = have.record.volumes[v.name] == v.hash end
    have.volumes = vols
  end
  return have
end

-- The steps after configuration, shared by new and existing VMs.
local function guest_steps(want, have, out)
  local pre, post = snapshot_names(want)
  local todo = 0
  for _, f in ipairs(have.features or {}) do if not f.done then todo = todo + 1 end end
  for _, v in ipairs(have.volumes or {}) do if not v.done then todo = todo + 1 end end
  if not have.running then
    out[#out + 1] = { field = "status", action = have.exists and "update" or "create",
      from = have.exists and (have.status or "stopped") or nil, to = "running" }
  end
  if not have.running or todo > 0 then
    out[#out + 1] = { field = "agent", action = "run",
      to = string.format("wait for the guest agent (up to %d s)", want.agent_timeout or AGENT_TIMEOUT) }
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

-- Apply ----------------------------------------------------------------------

local function must(ctx, ok, err)
  if not ok then ctx:fail(err) end
  return ok
end

-- A template from a cloud image: create, import the image, attach it as
-- scsi0 with a cloud-init drive, boot from it. The rest of the options
-- follow with the common configuration step.
local function image_path(ctx, want, have)
  local img = have.image or must(ctx, image.locate(ctx.target, want.template_image))
  if img.path then return img.path end
  if not img.url then ctx:fail(image.missing(img)) end
  return must(ctx, image.fetch(ctx, img))
end

local function import_image(ctx, d, want, path)
  local volid = must(ctx, d:importdisk(want.vmid, ctx.target:path(path), want.storage_pool))
  must(ctx, d:set(want.vmid, {
    { "scsi0", volid .. ",discard=on" }, { "ide2", want.storage_pool .. ":cloudinit" }, { "boot", "order=scsi0" },
  }))
end

local function build_from_image(ctx, d, want, have)
  if not want.storage_pool then ctx:fail("storage_pool is not set: the storage to import the cloud image into") end
  local path = image_path(ctx, want, have)
  local bridge = (want.network_config and want.network_config.bridge) or want.network_bridge
  local opts = {
    { "name", want.name }, { "ostype", "l26" }, { "scsihw", "virtio-scsi-pci" },
    { "serial0", "socket" }, { "vga", "serial0" }, { "agent", "enabled=1" }, { "tags", have.facts.tags },
  }
  if want.memory_mb then opts[#opts + 1] = { "memory", want.memory_mb } end
  if want.cores then opts[#opts + 1] = { "cores", want.cores } end
  if bridge then opts[#opts + 1] = { "net0", "virtio,bridge=" .. bridge } end
  must(ctx, d:create(want.vmid, opts))
  import_image(ctx, d, want, path)
end

local function create(ctx, d, want, have)
  if want.clone_from_vmid then
    local src, serr = d:guest(want.clone_from_vmid)
    if not src then ctx:fail(serr or string.format("VM %d to clone from does not exist", want.clone_from_vmid)) end
    if src.status == "running" and not src.template then
      ctx.log:warn("cloning VM %d while it runs: its disk may be inconsistent", want.clone_from_vmid)
    end
    must(ctx, d:clone(want.clone_from_vmid, want.vmid, { name = want.name, full = true, storage = want.storage_pool }))
  elseif want.template_image then
    build_from_image(ctx, d, want, have)
  else
    ctx:fail("VM " .. want.vmid .. " needs clone_from_vmid (a template VM) or template_image (a cloud image): "
      .. "phoenix does not install operating systems")
  end
  local conf = must(ctx, d:conf(want.vmid))
  local fresh = from_conf({ exists = true, vmid = want.vmid, status = "stopped" }, conf, false)
  fresh.record = state.read(ctx.target, want.vmid, fresh.uuid)
  fresh.facts = have.facts
  must(ctx, tags_facts(ctx.target, fresh.facts, conf.main.tags))
  fresh.facts.password_recorded = false
  fresh.features, fresh.volumes = have.features, have.volumes
  return fresh
end

-- One `qm set` for the configuration changes; the keys are written to a
-- file first (qm reads --sshkeys from a file).
local function set_config(ctx, d, want, list)
  local opts, del, keyfile = {}, {}, nil
  for _, c in ipairs(list) do
    if c.delete then
      del[#del + 1] = c.key
    elseif c.key == "sshkeys" then
      keyfile = string.format("/var/lib/phoenix/tmp/vm-%d.sshkeys", want.vmid)
      local ok, err = ctx.target:write(keyfile, c.value, { mode = "0600", mkdir = true })
      if ok == nil then ctx:fail("cannot write the ssh keys file: " .. tostring(err)) end
      opts[#opts + 1] = { "sshkeys", ctx.target:path(keyfile) }
    else
      opts[#opts + 1] = { c.key, c.value }
    end
  end
  if #opts == 0 and #del == 0 then return end
  local ok, err = d:set(want.vmid, opts, { delete = del })
  if keyfile then ctx.target:remove(keyfile) end
  must(ctx, ok, err)
end

local function record_write(ctx, want, rec)
  must(ctx, state.write(ctx.target, want.vmid, rec))
end

local function run_guest_steps(ctx, d, want, have, by, fresh)
  local vmid = want.vmid
  local rec = have.record
  local running = have.running
  if (by.status or fresh) and not running then
    must(ctx, d:start(vmid))
    running = true
  end
  if by.agent or fresh then
    must(ctx, d:wait_agent(vmid, { timeout = want.agent_timeout or AGENT_TIMEOUT }))
  end
  local pre, post = snapshot_names(want)
  if pre and (by["snapshot " .. pre] or (fresh and not have.snapshots[pre])) then
    must(ctx, d:snapshot(vmid, pre, "phoenix: before the features"))
  end
  if #(have.features or {}) > 0 and not rec.features_started then
    rec.features_started = true
    record_write(ctx, want, rec)
  end
  for _, f in ipairs(have.features or {}) do
    if not f.done and (fresh or by["feature " .. f.name]) then
      -- a run whose record was lost: the guest's marker still knows
      if fresh or features.marker(d, vmid, f.name) ~= f.hash then
        ctx.log:info("feature %s", f.name)
        must(ctx, features.run(d, vmid, f))
      end
      rec.features[f.name] = f.hash
      record_write(ctx, want, rec)
    end
  end
  for _, v in ipairs(have.volumes or {}) do
    if not v.done and (fresh or by["volume " .. v.name]) then
      must(ctx, volumes.mount(d, vmid, v))
      rec.volumes[v.name] = v.hash
      record_write(ctx, want, rec)
    end
  end
  -- forget features and volumes the site no longer lists
  local keep = {}
  for _, f in ipairs(have.features or {}) do keep[f.name] = true end
  for name in pairs(rec.features) do if not keep[name] then rec.features[name] = nil end end
  keep = {}
  for _, v in ipairs(have.volumes or {}) do keep[v.name] = true end
  for name in pairs(rec.volumes) do if not keep[name] then rec.volumes[name] = nil end end
  if post and (by["snapshot " .. post] or (fresh and not have.snapshots[post])) then
    must(ctx, d:snapshot(vmid, post, "phoenix: after the features"))
  end
end

local function apply(ctx, want, have, changes)
  local d = driver(ctx)
  local by = {}
  for _, c in ipairs(changes) do by[c.field] = c end
  local fresh = false
  local cfg = {}
  if by.vm then
    have = create(ctx, d, want, have)
    fresh = true
    cfg = config.changes(want, have, have.facts)
  else
    for _, c in ipairs(changes) do
      if c.key then cfg[#cfg + 1] = c end
    end
  end
  local ud = have.facts.user_data
  if ud and (fresh or by["user-data"]) and ud.current ~= ud.content then
    local ok, err = ctx.target:write(ud.path, ud.content, { mode = "0644", mkdir = true })
    if ok == nil then ctx:fail("cannot write the cloud-init user-data " .. ud.path .. ": " .. tostring(err)) end
  end
  set_config(ctx, d, want, cfg)
  local rec = have.record
  for _, c in ipairs(cfg) do
    if c.key == "cipassword" then rec.password = fs.sha256(c.value) end
  end
  if want.is_template then
    if by.image then
      if not want.storage_pool then ctx:fail("storage_pool is not set: the storage to import the cloud image into") end
      import_image(ctx, d, want, image_path(ctx, want, have))
    end
    if fresh or by.template then
      if have.running then must(ctx, d:stop(want.vmid)) end
      must(ctx, d:template(want.vmid))
    end
    return true
  end
  local disk = have.disk
  if disk and want.disk_size_gb and disk.size and disk.size < want.disk_size_gb * 1024 ^ 3
    and (fresh or by["disk " .. disk.key]) then
    must(ctx, d:resize(want.vmid, disk.key, want.disk_size_gb .. "G"))
  end
  local restart_for = {}
  for _, c in ipairs(cfg) do
    if c.disruptive == "restart" then restart_for[#restart_for + 1] = c.key end
  end
  if #restart_for > 0 and have.running then
    ctx.log:info("restarting to apply %s", table.concat(restart_for, ", "))
    must(ctx, d:reboot(want.vmid))
  end
  if rec.uuid == nil then rec.uuid = have.uuid end
  run_guest_steps(ctx, d, want, have, by, fresh)
  record_write(ctx, want, rec)
  return true
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
  local d = driver(ctx)
  if have.running then must(ctx, d:stop(want.vmid)) end
  must(ctx, d:destroy(want.vmid))
  state.remove(ctx.target, want.vmid)
  return true
end

return {
  type = "vm",
  describe = describe,
  inspect = inspect,
  diff = diff,
  apply = apply,
  destroy = destroy,
}
