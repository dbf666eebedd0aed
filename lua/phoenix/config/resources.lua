-- Builds the typed resources (docs/resources.md) and their dependency
-- edges from the normalised host, containers, VMs and stacks.
local normalize = require "phoenix.config.normalize"
local util = require "phoenix.config.util"

local M = {}

local HYP, LXC, VM = "phoenix_hypervisor_config.json", "phoenix_lxc_configs.json", "phoenix_vm_configs.json"

local Builder = {}
Builder.__index = Builder

function Builder:add(rtype, name, scope, want, file, ptr, deps)
  local id = rtype .. ":" .. name
  if self.by_id[id] then
    local first = self.by_id[id].source
    self.problems:error(file, ptr, string.format("%s is declared twice (first at %s %s)", id, first.file, first.pointer))
    return self.by_id[id]
  end
  local r = { id = id, type = rtype, name = tostring(name), scope = scope, want = want,
    deps = util.list(deps or {}), source = { file = file, pointer = ptr } }
  self.resources[#self.resources + 1] = r
  self.by_id[id] = r
  return r
end

-- Adds dep to r unless already there (and only when it names a resource of this site).
local function dep(r, id, by_id)
  if not id or id == r.id or (by_id and not by_id[id]) then return end
  for _, d in ipairs(r.deps) do
    if d == id then return end
  end
  r.deps[#r.deps + 1] = id
end
M.dep = dep

-- Storage ID of a dataset: <pool>-<dataset> (slashes become '-').
function M.storage_id(ds)
  return ds.pool .. "-" .. tostring(ds.name):gsub("/", "-")
end

function Builder:host_resources()
  local host, by_id = self.host, self.by_id
  local zfs = host.zfs or {}
  for i, p in ipairs(zfs.pools or {}) do
    local level = p.raid_level:lower()
    self:add("zfs_pool", p.name, "host", { name = p.name, raid_level = level == "stripe" and "single" or level,
      disks = p.disks }, HYP, util.pointer("/zfs/pools", i - 1))
  end
  for i, ds in ipairs(zfs.datasets or {}) do
    local full = ds.pool .. "/" .. ds.name
    local mp = ds.mountpoint or ds.properties.mountpoint or ("/" .. full)
    self.mountpoints[#self.mountpoints + 1] = { path = mp, id = "zfs_dataset:" .. full }
    local r = self:add("zfs_dataset", full, "host", { name = full, pool = ds.pool, dataset = ds.name,
      properties = ds.properties, mountpoint = mp, storage_class = ds.storage_class },
      HYP, util.pointer("/zfs/datasets", i - 1))
    dep(r, "zfs_pool:" .. ds.pool, by_id)
    local parent = full:match("^(.+)/[^/]+$")
    if parent and parent ~= ds.pool then dep(r, "zfs_dataset:" .. parent, by_id) end
  end
  for i, ds in ipairs(zfs.datasets or {}) do
    if ds.proxmox_storage_type then
      local sid = M.storage_id(ds)
      local full = ds.pool .. "/" .. ds.name
      local want = { storage = sid, type = ds.proxmox_storage_type,
        content = util.split_list(ds.proxmox_content_type or "images,rootdir"),
        dataset = full }
      if ds.proxmox_storage_type == "zfspool" then want.pool = full else want.path = by_id["zfs_dataset:" .. full].want.mountpoint end
      local r = self:add("pve_storage", sid, "host", want, HYP, util.pointer("/zfs/datasets", i - 1, "proxmox_storage_type"))
      dep(r, "zfs_dataset:" .. full, by_id)
    end
  end
  if zfs.arc_max_gb then
    local gb = zfs.arc_max_gb
    self:add("zfs_arc", "host", "host", { arc_max_gb = gb, arc_max_bytes = math.floor(gb * 1024 * 1024 * 1024) },
      HYP, "/zfs/arc_max_gb")
  end
  local net = host.network or {}
  for i, b in ipairs(net.interfaces or {}) do
    local want = b
    want.dns_nameservers = want.dns_nameservers or util.list()
    self:add("network_bridge", b.name, "host", want, HYP, #net.interfaces > 1 and util.pointer("/network/interfaces", i - 1)
      or "/network/interfaces")
  end
  if host.timezone then self:add("timezone", "host", "host", { timezone = host.timezone }, HYP, "/timezone") end
  for i, u in ipairs(host.users or {}) do
    local want = u
    local keys = util.list(want.ssh_public_keys or {})
    if type(want.ssh_public_key) == "string" and want.ssh_public_key ~= "" then table.insert(keys, 1, want.ssh_public_key) end
    want.ssh_public_keys, want.ssh_public_key = keys, nil
    self:add("users", u.username, "host", want, HYP, #host.users > 1 and util.pointer("/users", i - 1) or "/users")
  end
  if host.nfs and host.nfs.exports then
    local r = self:add("nfs_exports", "host", "host", { exports = host.nfs.exports }, HYP, "/nfs")
    for _, e in ipairs(host.nfs.exports) do dep(r, self:dataset_of(e.path), by_id) end
  end
  if host.samba then
    local want = host.samba
    want.shares = want.shares or util.list()
    local r = self:add("samba_shares", "host", "host", want, HYP, "/samba")
    for _, s in ipairs(want.shares) do
      if s.path:sub(1, 1) ~= "/" then
        s.dataset = s.path
        s.path = by_id["zfs_dataset:" .. s.dataset] and by_id["zfs_dataset:" .. s.dataset].want.mountpoint or ("/" .. s.path)
      end
      dep(r, self:dataset_of(s.path), by_id)
    end
  end
  if host.nvidia_driver then self:add("nvidia", "host", "host", host.nvidia_driver, HYP, "/nvidia_driver") end
  local fw = host.firewall
  if fw then
    local ptr = self.firewall_ptr
    self:add("firewall", "cluster", "host", { enabled = fw.enabled ~= false, policy_in = fw.default_input_policy,
      policy_out = fw.default_output_policy }, HYP, ptr)
    local r = self:add("firewall", "host", "host", { rules = fw.global_firewall_rules or util.list() }, HYP, ptr)
    dep(r, "firewall:cluster", by_id)
  end
end

-- The dataset whose mountpoint holds path (the deepest), as a resource ID.
function Builder:dataset_of(path)
  local best, blen = nil, 0
  if type(path) ~= "string" then return nil end
  for _, m in ipairs(self.mountpoints) do
    local mp = m.path
    if (path == mp or path:sub(1, #mp + 1) == mp .. "/") and #mp > blen then best, blen = m.id, #mp end
  end
  return best
end

function Builder:guest_common(r, want)
  local by_id = self.by_id
  for _, d in ipairs(want.dependencies) do
    dep(r, self.rid_of[d])
  end
  if want.storage_pool then dep(r, "pve_storage:" .. want.storage_pool, by_id) end
  local bridge = (want.network_config and want.network_config.bridge) or want.network_bridge
  if bridge then dep(r, "network_bridge:" .. bridge, by_id) end
end

function Builder:guests()
  local by_id = self.by_id
  for _, g in ipairs(self.cts) do
    local want = g.want
    local r = self:add("lxc", g.sid, "guest", want, LXC, g.ptr)
    if want.clone_from_ctid then dep(r, "lxc:" .. want.clone_from_ctid) end
    self:guest_common(r, want)
    for _, z in ipairs(want.zfs_volumes or {}) do dep(r, "pve_storage:" .. z.pool, by_id) end
    for _, m in ipairs(want.mount_points or {}) do dep(r, self:dataset_of(m.host_path), by_id) end
    for _, m in ipairs(want.shared_volumes) do dep(r, self:dataset_of(m.host_path), by_id) end
    if #want.gpu_assignment > 0 then dep(r, "nvidia:host", by_id) end
  end
  for _, g in ipairs(self.vms) do
    local want = g.want
    local r = self:add("vm", g.sid, "guest", want, VM, g.ptr)
    if want.clone_from_vmid then dep(r, "vm:" .. want.clone_from_vmid) end
    self:guest_common(r, want)
  end
  -- templates: guests others clone from
  for _, g in ipairs(self.cts) do
    local src = g.want.clone_from_ctid and by_id["lxc:" .. g.want.clone_from_ctid]
    if src then src.want.is_template = true end
  end
  -- AppArmor profiles and guest firewalls need the guests first
  local profiles = {}
  for _, g in ipairs(self.cts) do
    local p = g.want.apparmor_profile
    if p and p ~= "unconfined" then
      if not profiles[p] then
        profiles[p] = self:add("apparmor_profile", p, "host",
          { name = p, guests = util.list(), file = self.dir .. "/apparmor/" .. p }, LXC, g.ptr .. "/apparmor_profile")
      end
      local list = profiles[p].want.guests
      list[#list + 1] = g.id
      dep(by_id[g.rid], profiles[p].id)
    end
  end
  for _, g in ipairs(self.all_guests) do
    local fw = g.want.firewall
    if fw then
      local r = self:add("firewall", g.sid, "host", { vmid = g.id, guest = g.rid,
        kind = g.kind, enabled = fw.enabled ~= false, policy_in = fw.policy_in, policy_out = fw.policy_out,
        rules = fw.rules or util.list() }, g.file, g.ptr .. "/firewall")
      dep(r, g.rid)
      dep(r, "firewall:cluster", by_id)
    end
  end
end

local function guest_ip(want)
  return util.address(want.network_config and want.network_config.ip)
end

-- The guests with a given feature / role (in file order).
function Builder:guests_where(pred)
  local out = {}
  for _, g in ipairs(self.all_guests) do
    if pred(g.want, g) then out[#out + 1] = g end
  end
  return out
end

local function has_feature(want, name)
  for _, f in ipairs(want.features or {}) do
    if f == name then return true end
  end
  return false
end

function Builder:portainer()
  local host = self.host
  local net, api = host.network or {}, host.portainer_api or {}
  local servers = self:guests_where(function(w) return w.portainer_role == "primary" or w.portainer_role == "server" end)
  local server = servers[1]
  if not server and net.portainer_server_ip then
    server = self:guests_where(function(w) return guest_ip(w) == net.portainer_server_ip end)[1]
  end
  self.portainer_server = server
  local agents = self:guests_where(function(w) return w.portainer_role == "agent" end)
  for _, g in ipairs(agents) do
    local want = g.want
    local ip = guest_ip(want)
    local agent_host = want.portainer_agent_hostname or ip
    local port = net.portainer_agent_port or 9001
    local r = self:add("portainer_endpoint", g.sid, "sync", {
      guest = g.rid, vmid = g.id, name = want.portainer_environment_name or want.name,
      agent_host = agent_host, agent_ip = ip, agent_port = port,
      url = agent_host and ("tcp://" .. agent_host .. ":" .. port) or nil,
      server = (server or api.url) and { guest = server and (server.kind .. ":" .. server.id),
        ip = server and guest_ip(server.want), port = net.portainer_server_port or 9443,
        hostname = api.portainer_hostname, url = api.url, ca_file = api.ca_file,
        insecure = api.tls_skip_verify } or nil,
      admin_user = api.admin_user, admin_password = api.admin_password, api_token = api.api_token,
    }, g.file, g.ptr .. "/portainer_role")
    dep(r, g.rid)
    if server then dep(r, server.kind .. ":" .. server.id) end
    if not server then
      self.problems:warn(g.file, g.ptr .. "/portainer_role", "a Portainer agent but no Portainer server guest is declared",
        "give one guest portainer_role primary (VM) or server (container)")
    end
  end
end

function Builder:stacks()
  local by_id = self.by_id
  local defs = self.stacks_doc and self.stacks_doc.docker_stacks or {}
  for _, g in ipairs(self.vms) do
    for j, s in ipairs(g.want.docker_stacks) do
      local st = defs[s.name]
      if st then
        local env = normalize.stack_env(st, s.environment)
        local e = (st.environments or {})[env] or {}
        local vars = util.list()
        for _, v in ipairs(e.variables or {}) do
          vars[#vars + 1] = { name = v.name, value = type(v.value) == "table" and v.value or tostring(v.value) }
        end
        local name = s.name .. "@" .. g.id
        local endpoint = by_id["portainer_endpoint:" .. g.id] and ("portainer_endpoint:" .. g.id) or nil
        local r = self:add("stack", name, "sync", {
          stack = s.name, vmid = g.id, guest = g.rid, environment = env,
          description = st.description, compose_file_path = st.compose_file_path, git = st.git,
          variables = vars, files = e.files or util.list(), services = e.services or {},
          endpoint = endpoint,
        }, VM, util.pointer(g.ptr .. "/docker_stacks", j - 1))
        dep(r, g.rid)
        dep(r, endpoint)
        if self.portainer_server then dep(r, self.portainer_server.kind .. ":" .. self.portainer_server.id) end
      end
    end
  end
end

function Builder:edge()
  local host, by_id = self.host, self.by_id
  local services = util.list()
  for _, g in ipairs(self.all_guests) do
    local ts = g.want.traefik_service
    if ts then
      local fqdn = ts.host or (host.domain_name and (ts.name .. "." .. host.domain_name) or ts.name)
      services[#services + 1] = { name = ts.name, port = ts.port, scheme = ts.scheme or "http", host = fqdn,
        backend_ip = guest_ip(g.want), guest = g.rid }
    end
  end
  local step = host.step_ca
  if step then
    local g = self:guests_where(function(w) return has_feature(w, "step_ca") end)[1]
    if g then
      local want = {}
      for k, v in pairs(step) do want[k] = v end
      want.guest, want.ip = g.rid, guest_ip(g.want)
      want.ca_url = want.ca_url or ("https://" .. (want.ip or want.dns_name) .. ":9000")
      want.acme_provisioner = want.acme_provisioner or "acme"
      want.step_path = want.step_path or "/root/.step"
      want.trusted = util.list()
      for _, tg in ipairs(self:guests_where(function(w) return has_feature(w, "trusted_ca") end)) do
        want.trusted[#want.trusted + 1] = tg.kind .. ":" .. tg.id
      end
      local certs = util.list()
      for _, c in ipairs(step.certificates or {}) do
        local id = tonumber(c.guest)
        certs[#certs + 1] = { guest = self.guest_kind[id] and (self.guest_kind[id] .. ":" .. id) or ("lxc:" .. id),
          cert = c.cert, key = c.key, reload = c.reload }
      end
      want.certificates = certs
      local r = self:add("step_ca", "config", "sync", want, HYP, "/step_ca")
      dep(r, want.guest)
      local t = self:add("trusted_ca", "host", "host", { root_ca_name = step.root_ca_name, dns_name = step.dns_name,
        ca_url = want.ca_url, ca_guest = want.guest }, HYP, "/step_ca")
      dep(t, want.guest)
    else
      self.problems:warn(HYP, "/step_ca", "step_ca is configured but no guest has the step_ca feature",
        "add \"step_ca\" to the features of the CA container")
    end
  end
  local labelled = self:labelled_stacks()
  if #services > 0 or #labelled > 0 then
    local tg = self:guests_where(function(w) return has_feature(w, "traefik") end)[1]
    if tg then
      local r = self:add("traefik", "config", "sync", { guest = tg.kind .. ":" .. tg.id, ip = guest_ip(tg.want),
        domain_name = host.domain_name, services = services }, tg.file, tg.ptr .. "/features")
      dep(r, r.want.guest)
      dep(r, "step_ca:config", by_id)
      if #labelled > 0 then
        -- "Traefik again": the stacks' routes, once the stacks are deployed.
        local again = self:add("traefik", "stacks", "sync", { guest = r.want.guest, ip = r.want.ip,
          domain_name = host.domain_name, stacks = labelled }, "phoenix_stacks_config.json", "/docker_stacks")
        dep(again, r.want.guest)
        dep(again, "traefik:config")
        for _, st in ipairs(labelled) do dep(again, "stack:" .. st.stack .. "@" .. st.vmid) end
      end
      local gw = self:guests_where(function(w) return w.traefik_service and w.traefik_service.name == "nginx" end)[1]
        or self:guests_where(function(w) return type(w.name) == "string" and w.name:lower():find("nginx", 1, true) end)[1]
      if gw then
        local routed = util.list()
        for _, s in ipairs(services) do
          if s.guest ~= gw.kind .. ":" .. gw.id then routed[#routed + 1] = s end
        end
        local tls_name = host.domain_name or "gateway"
        local n = self:add("nginx_gateway", "config", "sync", { guest = gw.kind .. ":" .. gw.id, ip = guest_ip(gw.want),
          domain_name = host.domain_name, traefik = { guest = r.want.guest, ip = r.want.ip, port = 80 },
          services = routed, tls = { cert = "/etc/nginx/ssl/" .. tls_name .. ".crt",
            key = "/etc/nginx/ssl/" .. tls_name .. ".key" } }, gw.file, gw.ptr)
        dep(n, n.want.guest)
        dep(n, "traefik:config")
        local ca = by_id["step_ca:config"]
        if ca then
          ca.want.certificates[#ca.want.certificates + 1] = { guest = n.want.guest, cert = n.want.tls.cert,
            key = n.want.tls.key, reload = util.list { "nginx", "-s", "reload" } }
        end
      end
    else
      self.problems:warn(LXC, "", "guests declare traefik_service but no guest has the traefik feature",
        "add \"traefik\" to the features of the Traefik container")
    end
  end
  if host.dns_server then
    local want = {}
    for k, v in pairs(host.dns_server) do want[k] = v end
    want.domain_name = host.domain_name
    local records = util.list()
    for _, g in ipairs(self.all_guests) do
      local ip = guest_ip(g.want)
      if ip and g.want.name then
        local hn = g.want.name:lower()
        records[#records + 1] = { hostname = host.domain_name and (hn .. "." .. host.domain_name) or hn, ip = ip,
          guest = g.rid }
      end
      for _, d in ipairs(g.want.dns_records or {}) do
        records[#records + 1] = { hostname = d.hostname, ip = d.ip, guest = g.rid }
      end
    end
    want.records = records
    want.upstream_servers = util.list(want.upstream_servers or {})
    want.authoritative_zones = util.list(want.authoritative_zones or {})
    self:add("dns_server", "host", "host", want, HYP, "/dns_server")
  end
end

-- The stacks whose services carry traefik_labels, with their VM's address.
function Builder:labelled_stacks()
  local out = util.list()
  for _, r in ipairs(self.resources) do
    if r.type == "stack" then
      local services = {}
      local any = false
      for name, svc in pairs(r.want.services or {}) do
        if type(svc) == "table" and svc.traefik_labels and #svc.traefik_labels > 0 then
          services[name], any = { traefik_labels = svc.traefik_labels }, true
        end
      end
      if any then
        local g = self.by_id[r.want.guest]
        out[#out + 1] = { stack = r.want.stack, vmid = r.want.vmid, guest = r.want.guest,
          ip = g and guest_ip(g.want), services = services }
      end
    end
  end
  return out
end

-- `sync all` as one DAG: readiness -> DNS/firewall -> Traefik -> Portainer
-- endpoints and stacks -> Traefik again. Readiness is a guest_ready:<id>
-- resource per guest the sync works in (Docker answering on stack VMs).
function Builder:sync_order()
  local by_id = self.by_id
  local where = {}
  for _, g in ipairs(self.all_guests) do where[g.kind .. ":" .. g.id] = g end
  local function ready(guest, docker)
    local g = guest and where[guest]
    if not g then return nil end
    local r = by_id["guest_ready:" .. g.id]
    if not r then
      r = self:add("guest_ready", tostring(g.id), "sync", { guest = guest, vmid = g.id, docker = false }, g.file, g.ptr)
      dep(r, guest)
    end
    r.want.docker = r.want.docker or docker == true
    return r.id
  end
  local edge_first = { "dns_server:host" }
  for _, r in ipairs(self.resources) do
    if r.type == "firewall" then edge_first[#edge_first + 1] = r.id end
  end
  local server_stacks = {}
  for _, r in ipairs(self.resources) do
    local w = r.want
    if r.type == "stack" and not w.endpoint and self.portainer_server
      and w.guest == self.portainer_server.kind .. ":" .. self.portainer_server.id then
      server_stacks[#server_stacks + 1] = r.id
    end
  end
  for _, r in ipairs({ table.unpack(self.resources) }) do
    local w = r.want
    if r.type == "traefik" or r.type == "nginx_gateway" or r.type == "step_ca" then
      dep(r, ready(w.guest))
      if r.id == "traefik:config" then
        for _, id in ipairs(edge_first) do dep(r, id, by_id) end
      end
    elseif r.type == "portainer_endpoint" then
      dep(r, ready(w.guest, true))
      if w.server then dep(r, ready(w.server.guest, true)) end
      dep(r, "traefik:config", by_id)
      for _, id in ipairs(server_stacks) do dep(r, id) end
    elseif r.type == "stack" then
      dep(r, ready(w.guest, true))
      dep(r, "traefik:config", by_id)
    end
  end
end

function Builder:site_resources()
  for i, e in ipairs(self.host.site_resources or {}) do
    local want = e
    local deps = util.list({ table.unpack(e.depends_on or {}) })
    self:add(e.type, e.name, e.scope or "host", want, HYP, util.pointer("/site_resources", i - 1), deps)
  end
end

-- build(ctx) -> resources, by_id
-- ctx: { dir, host, cts, vms, stacks_doc, problems, firewall_ptr }
function M.build(ctx)
  local b = setmetatable({ resources = {}, by_id = {}, mountpoints = {}, guest_kind = {}, rid_of = {}, all_guests = {} },
    Builder)
  for k, v in pairs(ctx) do b[k] = v end
  -- each guest's ID as a string and as a resource ID, made once
  for _, list in ipairs { { b.cts, "lxc", LXC }, { b.vms, "vm", VM } } do
    for _, g in ipairs(list[1]) do
      g.kind, g.file, g.sid = list[2], list[3], tostring(g.id)
      g.rid = g.kind .. ":" .. g.sid
      b.all_guests[#b.all_guests + 1] = g
      if not b.guest_kind[g.id] then b.guest_kind[g.id], b.rid_of[g.id] = g.kind, g.rid end
    end
  end
  b:host_resources()
  b:guests()
  b:portainer()
  b:stacks()
  b:edge()
  b:sync_order()
  b:site_resources()
  return b.resources, b.by_id, b
end

return M
