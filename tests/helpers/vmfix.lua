-- VM specs' fixtures: a pve-sim node with a cloud image, a site of VMs
-- written as JSON files and loaded by phoenix.config, and the engine run
-- with the built-in vm recipe against the node.
local config = require "phoenix.config"
local engine = require "phoenix.engine"
local fs = require "px.fs"
local json = require "px.json"
local recipes = require "phoenix.recipes"
local targets = require "phoenix.target"
local kit = require "testkit"
local pvesim = require "pvesim"

local M = {}

M.IMAGE = "noble-server-cloudimg-amd64.img"

-- A qcow2 header whose virtual size is `gib` GiB: all pve-sim's importdisk reads.
function M.qcow2(gib)
  local size = gib * 1024 * 1024 * 1024
  return "QFI\251" .. string.pack(">I4", 3) .. string.rep("\0", 16) .. string.pack(">I8", size)
end

-- node(dir, init_args) -> pve-sim node with the cloud image in local's ISO dir
function M.node(dir, args)
  local node = pvesim.init(dir .. "/node", args)
  local iso = node.root .. "/var/lib/vz/template/iso"
  assert(fs.mkdir(iso))
  assert(fs.write(iso .. "/" .. M.IMAGE, M.qcow2(2)))
  return node
end

-- The template every spec clones from.
function M.template(extra)
  local t = { vmid = 9000, name = "tmpl", is_template = true, template_image = M.IMAGE,
    network_config = { ip = "dhcp", nameserver = "10.0.0.13" }, user_config = { username = "phoenix_user" } }
  for k, v in pairs(extra or {}) do t[k] = v end
  return t
end

function M.clone(vmid, name, extra)
  local v = { vmid = vmid, name = name, clone_from_vmid = 9000,
    network_config = { ip = "10.0.0." .. (vmid % 200 + 20) .. "/24", gw = "10.0.0.1", nameserver = "10.0.0.13" },
    user_config = { username = "phoenix_user", ssh_public_key = "ssh-ed25519 AAAAC3Nza admin@host" } }
  for k, v2 in pairs(extra or {}) do v[k] = v2 end
  return v
end

-- site(dir, node, vms, opts) -> site directory. opts: defaults (vm_defaults),
-- features = { name = script }, cloud_init = { file = text }, host = {...extra keys}
function M.site(dir, node, vms, opts)
  opts = opts or {}
  local sdir = dir .. "/site"
  local host = { domain_name = "lab.example", timezone = "UTC",
    target = { type = "pve", root = node.root, bin = node.bin }, features_dir = dir .. "/features" }
  for k, v in pairs(opts.host or {}) do host[k] = v end
  kit.write(sdir .. "/phoenix_hypervisor_config.json", json.encode(host))
  local defaults = opts.defaults or { cores = 2, memory_mb = 2048, disk_size_gb = 10, storage_pool = "local-zfs",
    network_bridge = "vmbr0" }
  kit.write(sdir .. "/phoenix_vm_configs.json", json.encode({ vm_defaults = defaults, vms = vms }))
  fs.mkdir(dir .. "/features")
  for name, text in pairs(opts.features or {}) do kit.write(dir .. "/features/" .. name .. ".sh", text) end
  for name, text in pairs(opts.cloud_init or {}) do kit.write(sdir .. "/cloud-init/" .. name, text) end
  return sdir
end

function M.load(sdir)
  local site, problems = config.load(sdir)
  if not site then
    local msgs = {}
    for _, p in ipairs(problems) do msgs[#msgs + 1] = p.file .. " " .. p.pointer .. ": " .. p.message end
    error("site does not load:\n" .. table.concat(msgs, "\n"), 2)
  end
  return site
end

local registry
function M.registry()
  if not registry then
    registry = recipes.load({ dirs = {} })
    registry:add(assert(recipes.load_file(kit.source_dir .. "/recipes/vm.lua")), "recipes/vm.lua", "builtin")
  end
  return registry
end

function M.target(node, extra)
  return assert(targets.open(node:target_spec(extra)))
end

--[[ run(site, node, opts) -> report. opts: mode ("apply"), jobs, allow_restart,
ids (resource ids, default all VMs), target_opts ]]
function M.run(site, node, opts)
  opts = opts or {}
  local list = {}
  local want_ids
  if opts.ids then
    want_ids = {}
    for _, id in ipairs(opts.ids) do want_ids[id] = true end
  end
  for _, r in ipairs(site.resources) do
    if r.type == "vm" and (not want_ids or want_ids[r.id]) then list[#list + 1] = r end
  end
  local rep = assert(engine.run({
    site = site, resources = list, recipes = M.registry(), target = M.target(node, opts.target_opts),
    mode = opts.mode or "apply", jobs = opts.jobs or 4, allow_restart = opts.allow_restart,
  }))
  return rep
end

-- errors(report) -> "id: error" lines of failed resources (for assertion messages)
function M.errors(rep)
  local out = {}
  for id, r in pairs(rep.results) do
    if r.error then out[#out + 1] = id .. ": " .. r.error end
  end
  table.sort(out)
  return table.concat(out, "\n")
end

-- changes(report, id) -> { "field" = change }
function M.changes(rep, id)
  local out = {}
  for _, c in ipairs(rep.results[id].changes or {}) do out[c.field] = c end
  for _, c in ipairs(rep.results[id].held or {}) do out[c.field] = c end
  return out
end

-- qm(node, ...) -> the tool's stdout (fails unless it exits 0)
function M.qm(node, ...) return node:run("qm", ...).stdout end

function M.conf(node, vmid) return assert(fs.read(node:conf("qemu", vmid))) end

-- main(node, vmid) -> the config's main section as key -> value
function M.main(node, vmid)
  local out = {}
  for line in M.conf(node, vmid):gmatch("[^\n]*") do
    if line:match("^%[") then break end
    local k, v = line:match("^([%w_-]+): (.*)$")
    if k then out[k] = v end
  end
  return out
end

-- exec_log(node) -> decoded lines of sim/exec.log
function M.exec_log(node)
  local out = {}
  for line in (fs.read(node.dir .. "/sim/exec.log") or ""):gmatch("[^\n]+") do out[#out + 1] = assert(json.decode(line)) end
  return out
end

return M
