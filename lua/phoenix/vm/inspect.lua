-- Reading a VM for the vm recipe (read only): its inventory entry and
-- config file, phoenix's host record of it, and the host facts its wanted
-- configuration depends on (GPU slots, the user-data snippet, tags), so
-- that diff stays pure.
local cloudinit = require "phoenix.vm.cloudinit"
local config = require "phoenix.vm.config"
local runner = require "phoenix.feature_runner"
local fs = require "px.fs"
local gpu = require "phoenix.vm.gpu"
local image = require "phoenix.vm.image"
local pve = require "px.pve"
local state = require "phoenix.vm.state"
local storage = require "phoenix.vm.storage"
local volumes = require "phoenix.vm.volumes"

local M = {}

M.AGENT_TIMEOUT = 300

function M.driver(ctx)
  local d, err = ctx.target:driver("vm")
  if not d then ctx:fail(err) end
  return d
end


-- The snapshots taken around the features: `snapshots`, else the
-- lifecycle names when enable_lifecycle_snapshots is on.
function M.snapshot_names(want)
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
function M.from_conf(have, conf, running)
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

function M.tags_facts(t, facts, tags_value)
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
  local ok, err = M.tags_facts(t, facts, have.main and have.main.tags)
  if not ok then return nil, err end
  local pw = want.user_config and want.user_config.password
  facts.password_recorded = pw ~= nil and have.record ~= nil and have.record.password == fs.sha256(pw)
  local extra = option_pci_ids(want)
  if (want.gpu_assignment and #want.gpu_assignment > 0) or #extra > 0 then
    if t.remote then
      return nil, string.format("gpu_assignment: " .. "the %s target reaches the node over the network, and GPU checks read the node's /sys and /dev here: "
      .. "run phoenix on the node (pve target) for GPU passthrough", t.type)
    end
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

function M.inspect(ctx, want)
  local d = M.driver(ctx)
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
    M.from_conf(have, g.conf, g.status == "running")
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
    local list, lerr = runner.plan(want, ctx.site, runner.other_guests(ctx))
    if not list then return nil, lerr end
    for _, f in ipairs(list) do f.done = have.record.features[f.name] == f.hash end
    have.features = list
    local vols = volumes.entries(want)
    for _, v in ipairs(vols) do v.done = have.record.volumes[v.name] == v.hash end
    have.volumes = vols
  end
  return have
end

return M
