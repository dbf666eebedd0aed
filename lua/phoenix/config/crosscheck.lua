-- Cross-checks between the site files: what a schema cannot see.
local features = require "phoenix.features"
local util = require "phoenix.config.util"

local M = {}

local HYP, LXC, VM = "phoenix_hypervisor_config.json", "phoenix_lxc_configs.json", "phoenix_vm_configs.json"

local function kind_name(kind) return kind == "lxc" and "container" or "VM" end

local function ids(b)
  local P = b.problems
  local seen = {}
  for _, g in ipairs(b.all_guests) do
    local other = seen[g.id]
    if other and other.kind ~= g.kind then
      P:error(g.file, g.ptr, string.format("ID %d is used by both %s %d (%s) and %s %d", g.id, kind_name(other.kind),
        g.id, other.file, kind_name(g.kind), g.id), "CTs and VMs share one ID space on a Proxmox host")
    end
    seen[g.id] = seen[g.id] or g
  end
end

local function refs(b)
  local P, by_id = b.problems, b.by_id
  for _, g in ipairs(b.cts) do
    local w = g.want
    local src = w.clone_from_ctid
    if src then
      local r = by_id["lxc:" .. src]
      if src == g.id then
        P:error(LXC, g.ptr .. "/clone_from_ctid", "a container cannot clone itself")
      elseif not r then
        P:error(LXC, g.ptr .. "/clone_from_ctid", by_id["vm:" .. src] and string.format("%d is a VM, not a container", src)
          or string.format("no container %d to clone from", src), "clone_from_ctid names a template container of this site")
      elseif not r.want.template_snapshot_name then
        P:error(LXC, g.ptr .. "/clone_from_ctid", string.format("container %d has no template_snapshot_name to clone from", src),
          "set template_snapshot_name on container " .. src)
      end
      if w.template then
        P:warn(LXC, g.ptr .. "/template", "template is not used: this container is a clone of " .. src)
      end
    elseif not w.template then
      P:error(LXC, g.ptr, "a container needs template (a tarball) or clone_from_ctid (a template container)")
    end
  end
  for _, g in ipairs(b.vms) do
    local w = g.want
    local src = w.clone_from_vmid
    if src then
      local r = by_id["vm:" .. src]
      if src == g.id then
        P:error(VM, g.ptr .. "/clone_from_vmid", "a VM cannot clone itself")
      elseif not r then
        P:error(VM, g.ptr .. "/clone_from_vmid", by_id["lxc:" .. src] and string.format("%d is a container, not a VM", src)
          or string.format("no VM %d to clone from", src))
      end
    end
    if w.is_template and not w.template_image and not src then
      P:error(VM, g.ptr, "is_template needs template_image (the cloud image to build the template from)")
    end
  end
  for _, g in ipairs(b.all_guests) do
    for j, d in ipairs(g.want.dependencies) do
      if d == g.id then
        P:error(g.file, g.ptr .. "/dependencies/" .. (j - 1), "a guest cannot depend on itself")
      elseif not b.guest_kind[d] then
        P:error(g.file, g.ptr .. "/dependencies/" .. (j - 1), string.format("dependency %d: no such container or VM", d))
      end
    end
  end
  for i, e in ipairs(b.host.site_resources or {}) do
    for j, d in ipairs(e.depends_on or {}) do
      if not by_id[d] then
        P:error(HYP, util.pointer("/site_resources", i - 1, "depends_on", j - 1), "no resource " .. d .. " in this site")
      end
    end
  end
end

-- Dependency cycles, each printed once: "lxc:101 -> vm:1002 -> lxc:101".
local function cycles(b)
  local P, by_id = b.problems, b.by_id
  local state, stack, reported = {}, {}, {}
  local function visit(r)
    state[r.id] = 1
    stack[#stack + 1] = r.id
    for _, d in ipairs(r.deps) do
      local t = by_id[d]
      if t then
        if state[d] == 1 then
          local path, on = {}, false
          for _, id in ipairs(stack) do
            if id == d then on = true end
            if on then path[#path + 1] = id end
          end
          path[#path + 1] = d
          local key = table.concat(path, " ")
          if not reported[key] then
            reported[key] = true
            local first = by_id[path[1]].source
            P:error(first.file, first.pointer, "dependency cycle: " .. table.concat(path, " -> "),
              "remove one of these dependencies (dependencies, clone_from_*, depends_on)")
          end
        elseif not state[d] then
          visit(t)
        end
      end
    end
    stack[#stack] = nil
    state[r.id] = 2
  end
  for _, r in ipairs(b.resources) do
    if not state[r.id] then visit(r) end
  end
end

local function duplicates(b)
  local P = b.problems
  local ips, macs, names, routes = {}, {}, {}, {}
  for _, br in ipairs(b.host.network and b.host.network.interfaces or {}) do
    local a = util.address(br.address)
    if a then ips[a] = { what = "the host bridge " .. br.name } end
  end
  for _, g in ipairs(b.all_guests) do
    local w, what = g.want, kind_name(g.kind) .. " " .. g.sid
    local nc = w.network_config or {}
    local ip = util.address(nc.ip)
    if ip then
      if ips[ip] then
        P:error(g.file, g.ptr .. "/network_config/ip", string.format("IP address %s is also used by %s", ip, ips[ip].what))
      else
        ips[ip] = { what = what }
      end
    end
    local mac = w.mac_address or nc.mac
    if mac then
      if macs[mac] then
        P:error(g.file, g.ptr .. (w.mac_address and "/mac_address" or "/network_config/mac"),
          string.format("MAC address %s is also used by %s", mac, macs[mac]))
      else
        macs[mac] = what
      end
    end
    if type(w.name) == "string" then
      local n = w.name:lower()
      if names[n] then
        P:error(g.file, g.ptr .. "/name", string.format('host name "%s" is also used by %s', w.name, names[n]))
      else
        names[n] = what
      end
    end
    local ts = w.traefik_service
    if ts then
      if routes[ts.name] then
        P:error(g.file, g.ptr .. "/traefik_service/name",
          string.format('Traefik service "%s" is also routed to %s', ts.name, routes[ts.name]))
      else
        routes[ts.name] = what
      end
    end
  end
end

local function storages(b)
  local P, by_id, host = b.problems, b.by_id, b.host
  local declared, pools = {}, {}
  for _, v in pairs(host.proxmox_storage_ids or {}) do declared[v] = true end
  for _, p in ipairs(host.zfs and host.zfs.pools or {}) do pools[p.name] = true end
  for i, ds in ipairs(host.zfs and host.zfs.datasets or {}) do
    if next(pools) and not pools[ds.pool] then
      P:warn(HYP, util.pointer("/zfs/datasets", i - 1, "pool"), "pool " .. ds.pool .. " is not in zfs.pools: it must exist on the host")
    end
  end
  local function check(file, ptr, suffix, sid)
    if by_id["pve_storage:" .. sid] or declared[sid] then return end
    ptr = ptr .. suffix
    local pool = sid:match("^([^-]+)%-")
    if pool and pools[pool] then
      P:error(file, ptr, string.format("no dataset of pool %s provides storage %s", pool, sid),
        "declare the dataset in zfs.datasets with a proxmox_storage_type")
    else
      P:warn(file, ptr, "storage " .. sid .. " is not declared in this site: it must exist on the host")
    end
  end
  for _, g in ipairs(b.all_guests) do
    if g.want.storage_pool then check(g.file, g.ptr, "/storage_pool", g.want.storage_pool) end
    for j, z in ipairs(g.want.zfs_volumes or {}) do
      check(g.file, g.ptr, "/zfs_volumes/" .. (j - 1) .. "/pool", z.pool)
    end
  end
end

local function bridges(b)
  if not next(b.bridges) then return end
  for _, g in ipairs(b.all_guests) do
    local nc = g.want.network_config or {}
    local br, suffix = nc.bridge, "/network_config/bridge"
    if not br then br, suffix = g.want.network_bridge, "/network_bridge" end
    if br and not b.bridges[br] then
      b.problems:warn(g.file, g.ptr .. suffix, "bridge " .. br .. " is not declared in network.interfaces: it must exist on the host")
    end
  end
end

local function stacks(b)
  local P = b.problems
  local defs = b.stacks_doc and b.stacks_doc.docker_stacks or {}
  for _, g in ipairs(b.vms) do
    if g.want.count_index and g.want.count_index > 1 then goto next_vm end
    for j, s in ipairs(g.want.docker_stacks) do
      local p = g.ptr .. "/docker_stacks/" .. (j - 1)
      local st = defs[s.name]
      if not st then
        local known = util.keys(defs)
        P:error(VM, p, "unknown stack " .. s.name, #known > 0 and ("stacks in phoenix_stacks_config.json: " .. table.concat(known, ", "))
          or "declare it in phoenix_stacks_config.json")
      elseif s.environment and not (st.environments and st.environments[s.environment]) then
        P:error(VM, p .. "/environment", string.format("stack %s has no environment %s", s.name, s.environment))
      end
    end
    ::next_vm::
  end
end

local function feature_checks(b)
  local site_set = features.site_features(b.features_dir)
  local known = { lxc = {}, vm = {} } -- names already found fine, per kind
  for _, g in ipairs(b.all_guests) do
    if not (g.want.count_index and g.want.count_index > 1) then
      local fine = known[g.kind]
      for j, f in ipairs(g.want.features or {}) do
        local ok, msg, hint = fine[f]
        if not ok then
          ok, msg, hint = features.check(f, g.kind, site_set)
          fine[f] = ok
        end
        if not ok then b.problems:error(g.file, g.ptr .. "/features/" .. (j - 1), msg, hint) end
      end
    end
  end
end

local function shared_volumes(b)
  for _, vname in ipairs(util.keys(b.host.shared_volumes or {})) do
    local vol = b.host.shared_volumes[vname]
    for _, id in ipairs(util.keys(vol.mounts or {})) do
      local n = math.tointeger(tonumber(id))
      local p = util.pointer("/shared_volumes", vname, "mounts", id)
      if b.guest_kind[n] == "vm" then
        b.problems:error(HYP, p, string.format("%d is a VM: shared volumes are bind mounts into containers", n))
      elseif not b.guest_kind[n] then
        -- a warning, not an error: real sites keep mounts for containers they no longer declare
        b.problems:warn(HYP, p, string.format("no container %d in this site: this mount is skipped", n))
      end
    end
  end
end

-- A safety net: every dependency must name a resource of the site. Guest
-- references and site_resources' depends_on are reported by refs() with a
-- better message.
local function dangling(b)
  for _, r in ipairs(b.resources) do
    for _, d in ipairs(r.deps) do
      if not b.by_id[d] and not r.source.pointer:find("^/site_resources/") then
        if not d:match("^lxc:") and not d:match("^vm:") then
          b.problems:error(r.source.file, r.source.pointer, r.id .. " depends on " .. d .. ", which this site does not declare")
        end
      end
    end
  end
end

local function recipes(b)
  local reg = b.opts.recipes
  if not reg then return end
  local function has(t)
    if type(reg) == "function" then return reg(t) end
    if type(reg.has) == "function" then return reg:has(t) end
    return reg[t] ~= nil
  end
  local seen = {}
  for _, r in ipairs(b.resources) do
    if not seen[r.type] then
      seen[r.type] = true
      if not has(r.type) then
        b.problems:error(r.source.file, r.source.pointer, "no recipe for resource type " .. r.type,
          "add recipes/" .. r.type .. ".lua (or one in the site's recipes_dir)")
      end
    end
  end
end

-- run(b): b is the resources builder (resources, by_id, guests, host ...).
function M.run(b)
  b.bridges = {}
  for _, br in ipairs(b.host.network and b.host.network.interfaces or {}) do b.bridges[br.name] = true end
  ids(b)
  refs(b)
  cycles(b)
  duplicates(b)
  storages(b)
  bridges(b)
  stacks(b)
  feature_checks(b)
  shared_volumes(b)
  dangling(b)
  recipes(b)
end

return M
