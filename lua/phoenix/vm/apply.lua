-- Changing a VM for the vm recipe: create (from a cloud image, or a full
-- clone), one `qm set` for the configuration, the disk, start, the agent,
-- snapshots, features and volumes, acting only on the changes the engine
-- passes (a VM made in this run gets every step).
local config = require "phoenix.vm.config"
local runner = require "phoenix.feature_runner"
local fs = require "px.fs"
local image = require "phoenix.vm.image"
local inspect = require "phoenix.vm.inspect"
local state = require "phoenix.vm.state"
local volumes = require "phoenix.vm.volumes"

local M = {}

function M.must(ctx, ok, err)
  if not ok then ctx:fail(err) end
  return ok
end

-- A template from a cloud image: create, import the image, attach it as
-- scsi0 with a cloud-init drive, boot from it. The rest of the options
-- follow with the common configuration step.
local function image_path(ctx, want, have)
  local img = have.image or M.must(ctx, image.locate(ctx.target, want.template_image))
  if img.path then return img.path end
  if not img.url then ctx:fail(image.missing(img)) end
  return M.must(ctx, image.fetch(ctx, img))
end

local function import_image(ctx, d, want, path)
  local volid = M.must(ctx, d:importdisk(want.vmid, ctx.target:path(path), want.storage_pool))
  M.must(ctx, d:set(want.vmid, {
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
  M.must(ctx, d:create(want.vmid, opts))
  import_image(ctx, d, want, path)
end

local function create(ctx, d, want, have)
  if want.clone_from_vmid then
    local src, serr = d:guest(want.clone_from_vmid)
    if not src then ctx:fail(serr or string.format("VM %d to clone from does not exist", want.clone_from_vmid)) end
    if src.status == "running" and not src.template then
      ctx.log:warn("cloning VM %d while it runs: its disk may be inconsistent", want.clone_from_vmid)
    end
    M.must(ctx, d:clone(want.clone_from_vmid, want.vmid, { name = want.name, full = true, storage = want.storage_pool }))
  elseif want.template_image then
    build_from_image(ctx, d, want, have)
  else
    ctx:fail("VM " .. want.vmid .. " needs clone_from_vmid (a template VM) or template_image (a cloud image): "
      .. "phoenix does not install operating systems")
  end
  local conf = M.must(ctx, d:conf(want.vmid))
  local fresh = inspect.from_conf({ exists = true, vmid = want.vmid, status = "stopped" }, conf, false)
  fresh.record = state.read(ctx.target, want.vmid, fresh.uuid)
  fresh.facts = have.facts
  M.must(ctx, inspect.tags_facts(ctx.target, fresh.facts, conf.main.tags))
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
  M.must(ctx, ok, err)
end

local function record_write(ctx, want, rec)
  M.must(ctx, state.write(ctx.target, want.vmid, rec))
end

local function run_guest_steps(ctx, d, want, have, by, fresh)
  local vmid = want.vmid
  local rec = have.record
  if (by.status or fresh) and not have.running then M.must(ctx, d:start(vmid)) end
  if by.agent or fresh then
    M.must(ctx, d:wait_agent(vmid, { timeout = want.agent_timeout or inspect.AGENT_TIMEOUT }))
  end
  local pre, post = inspect.snapshot_names(want)
  if pre and (by["snapshot " .. pre] or (fresh and not have.snapshots[pre])) then
    M.must(ctx, d:snapshot(vmid, pre, "phoenix: before the features"))
  end
  if #(have.features or {}) > 0 and not rec.features_started then
    rec.features_started = true
    record_write(ctx, want, rec)
  end
  for _, f in ipairs(have.features or {}) do
    if not f.done and (fresh or by["feature " .. f.name]) then
      -- a run whose record was lost: the guest's marker still knows
      local marks = not fresh and runner.markers(d, vmid, { f.name }) or {}
      if marks[f.name] ~= f.hash then M.must(ctx, runner.run(d, vmid, f, ctx.log)) end
      rec.features[f.name] = f.hash
      record_write(ctx, want, rec)
    end
  end
  for _, v in ipairs(have.volumes or {}) do
    if not v.done and (fresh or by["volume " .. v.name]) then
      M.must(ctx, volumes.mount(d, vmid, v))
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
    M.must(ctx, d:snapshot(vmid, post, "phoenix: after the features"))
  end
end

function M.apply(ctx, want, have, changes)
  local d = inspect.driver(ctx)
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
  if rec.uuid == nil then rec.uuid = have.uuid end
  for _, c in ipairs(cfg) do
    if c.key == "cipassword" then
      rec.password = fs.sha256(c.value)
      record_write(ctx, want, rec)
    end
  end
  if want.is_template then
    if by.image then
      if not want.storage_pool then ctx:fail("storage_pool is not set: the storage to import the cloud image into") end
      import_image(ctx, d, want, image_path(ctx, want, have))
    end
    if fresh or by.template then
      if have.running then M.must(ctx, d:stop(want.vmid)) end
      M.must(ctx, d:template(want.vmid))
    end
    return true
  end
  local disk = have.disk
  if disk and want.disk_size_gb and disk.size and disk.size < want.disk_size_gb * 1024 ^ 3
    and (fresh or by["disk " .. disk.key]) then
    M.must(ctx, d:resize(want.vmid, disk.key, want.disk_size_gb .. "G"))
  end
  local restart_for = {}
  for _, c in ipairs(cfg) do
    if c.disruptive == "restart" then restart_for[#restart_for + 1] = c.key end
  end
  if #restart_for > 0 and have.running then
    ctx.log:info("restarting to apply %s", table.concat(restart_for, ", "))
    M.must(ctx, d:reboot(want.vmid))
  end
  run_guest_steps(ctx, d, want, have, by, fresh)
  record_write(ctx, want, rec)
  return true
end

return M
