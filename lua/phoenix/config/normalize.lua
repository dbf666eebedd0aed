-- Normalisation: defaults, IDs as numbers, lists instead of strings,
-- VM count expansion, dataset properties as objects. Works on a deep copy
-- of the decoded files (site.files keeps them as written).
local util = require "phoenix.config.util"

local M = {}

local HYP, LXC, VM = "phoenix_hypervisor_config.json", "phoenix_lxc_configs.json", "phoenix_vm_configs.json"

-- proxmox_defaults.lxc into one container. The legacy string `features`
-- ("nesting=1") and `nesting` are pct feature flags: they become the
-- default pct_options; a list `features` is the default feature scripts.
local function merge_lxc_defaults(ct, d, pct)
  for k, v in pairs(d) do
    -- the legacy pct feature flags (string features, nesting) arrive in pct (legacy_pct)
    local legacy = (k == "features" and type(v) == "string") or k == "nesting"
    if legacy or k == "security" then
      goto continue
    elseif k == "network_config" then
      if type(v) == "table" then
        if ct.network_config == nil then
          ct.network_config = util.copy(v)
        else
          for nk, nv in pairs(v) do
            if ct.network_config[nk] == nil then ct.network_config[nk] = util.copy(nv) end
          end
        end
      end
    elseif ct[k] == nil then
      ct[k] = util.copy(v)
    end
    ::continue::
  end
  if ct.pct_options == nil and #pct > 0 then ct.pct_options = util.list({ table.unpack(pct) }) end
end

-- The legacy pct flags of proxmox_defaults.lxc (features = "nesting=1", nesting = 1), deduplicated.
local function legacy_pct(d)
  local out, seen = {}, {}
  local function add(p)
    if not seen[p] then seen[p], out[#out + 1] = true, p end
  end
  if type(d.features) == "string" then
    for item in d.features:gmatch("[^,]+") do add(item) end
  end
  if d.nesting == 1 or d.nesting == true then add("nesting=1") end
  return out
end

-- apply_defaults(work, docs): site defaults first, then the schemas'
-- `default`s where the field is still absent.
function M.apply_defaults(work, docs)
  local hyp = work.hypervisor or {}
  local ld = hyp.proxmox_defaults and hyp.proxmox_defaults.lxc
  if ld and work.lxc and work.lxc.lxc_configs then
    local pct = legacy_pct(ld)
    for _, ct in pairs(work.lxc.lxc_configs) do merge_lxc_defaults(ct, ld, pct) end
  end
  if work.vm and work.vm.vms then
    local vd = work.vm.vm_defaults or {}
    local release = hyp.vm_defaults and hyp.vm_defaults.ubuntu_release
    for _, vm in ipairs(work.vm.vms) do
      for k, v in pairs(vd) do
        if vm[k] == nil then vm[k] = util.copy(v) end
      end
      if vm.ubuntu_release == nil then vm.ubuntu_release = release end
    end
  end
  for key, d in pairs(docs) do
    for _, x in ipairs(d.defaults or {}) do
      -- px.schema names the table the default belongs in (work is its value)
      local parent = x.parent
      if parent then
        if parent[x.key] == nil then parent[x.key] = util.copy(x.value) end
      else
        util.set_default(work[key], x.pointer, x.value)
      end
    end
  end
end

local function ints(list)
  local out = util.list()
  for _, v in ipairs(list or {}) do out[#out + 1] = math.tointeger(tonumber(v)) end
  return out
end

-- "0, 1" -> {0, 1}; "none" -> {}. Bad indices are errors.
local function gpus(v, file, ptr, problems)
  local out = util.list()
  if type(v) == "table" then
    for _, x in ipairs(v) do out[#out + 1] = x end
    return out
  end
  if v == nil or v == "none" or v:match("^%s*$") then return out end
  for part in v:gmatch("[^,]+") do
    local s = part:match("^%s*(.-)%s*$")
    local n = s:match("^%d+$") and math.tointeger(tonumber(s))
    if n and n <= 255 then
      out[#out + 1] = n
    else
      problems:error(file, ptr, string.format('GPU index "%s" is not a number', s),
        'write "none" or GPU indices separated by commas, e.g. "0" or "0,1"')
    end
  end
  return out
end

local SIZE_PROPS = { quota = true, refquota = true, reservation = true, refreservation = true, recordsize = true,
  volsize = true, volblocksize = true, special_small_blocks = true }

-- Dataset properties: "k=v,k=v" or an object -> object of strings.
local function properties(v, ptr, problems)
  local out = {}
  if type(v) == "string" then
    for item in v:gmatch("[^,]+") do
      local k, val = item:match("^([^=]+)=(.*)$")
      if k then out[k] = val end
    end
  elseif type(v) == "table" then
    for k, val in pairs(v) do
      if type(val) == "boolean" then val = val and "on" or "off" end
      if math.type(val) == "float" and val == math.floor(val) then val = math.tointeger(val) end
      out[k] = tostring(val)
    end
  end
  for k, val in pairs(out) do
    if SIZE_PROPS[k] and val ~= "none" and val ~= "auto" and not val:match("^%d+%.?%d*[KMGTPEZ]?$")
      and not val:match("^%d+%.?%d*[KMGTPEZ]i?B$") then
      problems:error(HYP, ptr, string.format('property %s: "%s" is not a size', k, val), "sizes look like 512, 128K, 1.5T or none")
    end
  end
  return out
end

-- The host: the hypervisor file with firewall lifted out of shared_volumes,
-- users and bridges as lists, dataset properties as objects.
function M.host(hyp, problems)
  local host = hyp or {}
  local sv = host.shared_volumes
  if type(sv) == "table" and sv.firewall ~= nil then
    if host.firewall ~= nil then
      problems:error(HYP, "/shared_volumes/firewall", "firewall is declared twice (here and at the top level)",
        "keep the top-level one")
    else
      host.firewall = sv.firewall
    end
    sv.firewall = nil
  end
  if host.users ~= nil and not util.is_list(host.users) then host.users = util.list({ host.users }) end
  local net = host.network
  if net and net.interfaces ~= nil and not util.is_list(net.interfaces) then
    net.interfaces = util.list({ net.interfaces })
  end
  local zfs = host.zfs
  if zfs and zfs.datasets then
    for i, ds in ipairs(zfs.datasets) do
      ds.properties = properties(ds.properties, util.pointer("/zfs/datasets", i - 1, "properties"), problems)
    end
  end
  return host
end

local function normal_net(nc)
  if type(nc) ~= "table" then return end
  if nc.nameservers ~= nil then nc.nameservers = util.split_list(nc.nameservers) end
  if nc.nameserver ~= nil then nc.nameserver = util.split_list(nc.nameserver) end
  if type(nc.mac) == "string" then nc.mac = nc.mac:upper() end
end

-- containers(lxc_doc, order, problems, host) -> list of { id, ptr, want }
-- (order: px.schema's key order of the file's objects, for file order)
function M.containers(lxc_doc, order, problems, host)
  local out = {}
  local cts = lxc_doc and lxc_doc.lxc_configs
  if type(cts) ~= "table" then return out end
  -- shared volume mounts by CTID, volumes in name order
  local shared, mounts_of = host.shared_volumes or {}, {}
  for _, vname in ipairs(util.keys(shared)) do
    local vol = shared[vname]
    for id, cpath in pairs(type(vol) == "table" and vol.mounts or {}) do
      local list = mounts_of[id] or {}
      mounts_of[id] = list
      list[#list + 1] = { volume = vname, host_path = vol.host_path, container_path = cpath,
        read_only = vol.read_only, owner_uid = vol.owner_uid, owner_gid = vol.owner_gid }
    end
  end
  for _, key in ipairs(util.keys(cts, order)) do
    local want = cts[key]
    local ptr = "/lxc_configs/" .. util.escape(key)
    want.ctid = math.tointeger(tonumber(key))
    if want.clone_from_ctid ~= nil then want.clone_from_ctid = math.tointeger(tonumber(want.clone_from_ctid)) end
    want.dependencies = ints(want.dependencies)
    want.gpu_assignment = gpus(want.gpu_assignment, LXC, ptr .. "/gpu_assignment", problems)
    if type(want.mac_address) == "string" then want.mac_address = want.mac_address:upper() end
    normal_net(want.network_config)
    -- the schema default covers a network_config written in the file, not one from proxmox_defaults
    if want.network_config and want.network_config.name == nil then want.network_config.name = "eth0" end
    want.domain_name = host.domain_name
    want.shared_volumes = util.list(mounts_of[key])
    out[#out + 1] = { id = want.ctid, ptr = ptr, want = want }
  end
  return out
end

-- The environment a VM deploys a stack with: the one it names, else
-- "production" when the stack has it, else the stack's only environment.
function M.stack_env(def, requested)
  if requested then return requested end
  local envs = def and def.environments or {}
  if envs.production then return "production" end
  local names = util.keys(envs)
  return #names == 1 and names[1] or "production"
end

-- "10.0.0.5/24" + n -> "10.0.0.(5+n)/24", nil when it leaves the last octet.
local function bump_ip(ip, n)
  local a, b, c, d, rest = ip:match("^(%d+)%.(%d+)%.(%d+)%.(%d+)(.*)$")
  if not a then return nil end
  local last = tonumber(d) + n
  if last > 254 then return nil end
  return string.format("%s.%s.%s.%d%s", a, b, c, last, rest)
end

-- vms(work, problems, host) -> list of { id, ptr, want }, after `count` expansion:
-- count N gives VMIDs vmid..vmid+N-1, names name-1..name-N and static IPs
-- counted up from the one given.
function M.vms(vm_doc, problems, host)
  local out = {}
  local vms = vm_doc and vm_doc.vms
  if type(vms) ~= "table" then return out end
  for i, vm in ipairs(vms) do
    local ptr = "/vms/" .. (i - 1)
    if vm.clone_from_vmid ~= nil then vm.clone_from_vmid = math.tointeger(tonumber(vm.clone_from_vmid)) end
    vm.dependencies = ints(vm.dependencies)
    -- absent stays nil: phoenix then leaves the VM's hostpci entries alone
    if vm.gpu_assignment ~= nil then vm.gpu_assignment = gpus(vm.gpu_assignment, VM, ptr .. "/gpu_assignment", problems) end
    normal_net(vm.network_config)
    local stacks = util.list()
    for _, s in ipairs(vm.docker_stacks or {}) do
      if type(s) == "string" then stacks[#stacks + 1] = { name = s } else stacks[#stacks + 1] = s end
    end
    vm.docker_stacks = stacks
    vm.domain_name = host.domain_name
    local count = vm.count or 1
    vm.count = nil
    for n = 0, count - 1 do
      local want = count > 1 and util.copy(vm) or vm
      want.vmid = vm.vmid + n
      if count > 1 then
        want.name = vm.name .. "-" .. (n + 1)
        want.count_index, want.count_of = n + 1, count
        local ip = want.network_config and want.network_config.ip
        if ip and ip ~= "dhcp" then
          local bumped = bump_ip(ip, n)
          if bumped then
            want.network_config.ip = bumped
          else
            problems:error(VM, ptr .. "/count", string.format("count %d runs past the end of the subnet from %s", count, ip))
          end
        end
      end
      out[#out + 1] = { id = want.vmid, ptr = ptr, want = want }
    end
  end
  return out
end

return M
