-- Generates a valid site of N guests (default 1000: 80% containers, 20% VMs)
-- in the shape of the real reference site, for timing `phoenix validate`.
--   phoenix lua bench/validate/gen_site.lua DIR [N]
local fs = require "px.fs"
local json = require "px.json"

local dir, n = arg[1], tonumber(arg[2] or "1000")
assert(dir, "usage: gen_site.lua DIR [N]")
assert(fs.mkdir(dir, { parents = true }))
local A = json.array

local n_vm = n // 5
local n_ct = n - n_vm

local function ip(i) return string.format("10.%d.%d.%d", 16 + i // 62500, (i // 250) % 250, i % 250 + 2) end
local function mac(i) return string.format("BC:24:11:%02X:%02X:%02X", (i >> 16) & 255, (i >> 8) & 255, i & 255) end

local hyp = {
  domain_name = "bench.example.lan", timezone = "UTC", target = { type = "pve" },
  users = { username = "admin", password_hash = { secret = "env:BENCH_HASH" }, sudo_access = true, ssh_public_key = "ssh-ed25519 AAAA bench" },
  network = { interfaces = { name = "vmbr0", address = "10.15.0.1/12", gateway = "10.15.0.254", dns_nameservers = A { "10.15.0.2" } },
    default_subnet = "10.0.0.0/8", portainer_server_ip = ip(n_ct), portainer_server_port = 9443, portainer_agent_port = 9001 },
  zfs = { arc_max_gb = 64, pools = A { { name = "tank", raid_level = "raidz2", disks = A {} } }, datasets = A {} },
  proxmox_defaults = { lxc = { cores = 2, memory_mb = 2048, storage_pool = "tank-ct-disks", storage_size_gb = 16, unprivileged = true } },
  firewall = { enabled = true, default_input_policy = "DROP", default_output_policy = "ACCEPT",
    global_firewall_rules = A { { type = "in", action = "ACCEPT", source = "10.0.0.0/8", proto = "tcp", port = "22,8006" } } },
  portainer_api = { admin_user = "admin", admin_password = { secret = "env:BENCH_PORTAINER" }, portainer_hostname = "portainer.bench.example.lan" },
  dns_server = { enabled = true, upstream_servers = A { "1.1.1.1" }, authoritative_zones = A { "bench.example.lan" } },
  step_ca = { root_ca_name = "Bench CA", intermediate_ca_name = "Bench Intermediate", dns_name = "ca.bench.example.lan", provisioner_name = "admin" },
  shared_volumes = {},
}
for d = 1, 6 do hyp.zfs.pools[1].disks[d] = "/dev/disk/by-id/ata-BENCH_DISK_" .. d end
for _, ds in ipairs { { "vm-disks", "zfspool", "images" }, { "ct-disks", "zfspool", "images,rootdir" }, { "iso", "dir", "iso,vztmpl" } } do
  hyp.zfs.datasets[#hyp.zfs.datasets + 1] = { name = ds[1], pool = "tank", properties = "recordsize=16K,compression=lz4,quota=10T",
    proxmox_storage_type = ds[2], proxmox_content_type = ds[3] }
end

local cts = {}
local features = { "base_setup", "docker", "trusted_ca", "step_cli" }
for i = 0, n_ct - 1 do
  local id = 1000 + i
  local ct = {
    name = "ct-" .. id, memory_mb = 1024 + (i % 8) * 512, cores = 1 + i % 4, storage_size_gb = 8 + i % 32,
    network_config = { name = "eth0", bridge = "vmbr0", ip = ip(i) .. "/12", gw = "10.15.0.254", nameservers = "10.15.0.2" },
    mac_address = mac(i), start_at_boot = i % 2 == 0, boot_order = i % 10, boot_delay = 5,
    features = A { features[1], features[2 + i % 3] }, gpu_assignment = i % 50 == 0 and "0, 1" or "none",
    portainer_role = "none", apparmor_profile = "unconfined", lxc_options = A { "lxc.apparmor.profile=unconfined" },
    firewall = { enabled = true, rules = A {
      { type = "in", action = "ACCEPT", source = "10.0.0.0/8", proto = "tcp", port = "22", comment = "ssh" },
      { type = "in", action = "ACCEPT", source = "10.15.0.3", proto = "tcp", port = tostring(8000 + i % 1000), comment = "traefik" } } },
    mount_points = A { { host_path = "/tank/data/" .. id, container_path = "/data", owner_uid = 100000, owner_gid = 100000 } },
  }
  if i == 0 then
    ct.template = "/tank/iso/template/cache/debian-12-standard_12.7-1_amd64.tar.zst"
    ct.template_snapshot_name = "golden"
  else
    ct.clone_from_ctid = "1000"
    ct.dependencies = A { tostring(1000 + (i - 1) // 10 * 10 == id and 1000 or 1000 + (i - 1) // 10 * 10) }
  end
  if i == 1 then ct.features = A { "base_setup", "step_ca" } end
  if i == 2 then ct.features = A { "base_setup", "traefik" } end
  if i % 10 == 5 then ct.traefik_service = { name = "svc-" .. id, port = 8000 + i % 1000 } end
  cts[tostring(id)] = ct
  if i % 20 == 3 then hyp.shared_volumes["vol" .. i] = { host_path = "/tank/shared/vol" .. i, mounts = { [tostring(id)] = "/shared" } } end
end

local vms = A {}
vms[1] = { vmid = 9000, name = "template", is_template = true, template_image = "noble-server-cloudimg-amd64.img",
  template_snapshot_name = "base", network_config = { ip = "dhcp" }, user_config = { username = "phoenix" } }
for i = 1, n_vm - 1 do
  local id = 20000 + i
  local role = i == 1 and "primary" or (i % 4 == 0 and "agent" or "none")
  vms[#vms + 1] = {
    vmid = id, name = "vm-" .. id, clone_from_vmid = 9000, cores = 2 + i % 4, memory_mb = 4096, disk_size_gb = 32 + i % 64,
    start_at_boot = true, boot_order = 20, features = A { "base_setup", "docker" }, portainer_role = role,
    dependencies = A { i == 1 and "1002" or "20001" },
    network_config = { ip = ip(n_ct + i - 1) .. "/12", gw = "10.15.0.254", nameserver = "10.15.0.2" },
    user_config = { username = "phoenix" },
    docker_stacks = role == "agent" and A { "web", { name = "db", environment = "production" } } or A {},
    firewall = { enabled = true, rules = A { { type = "in", action = "ACCEPT", source = "10.0.0.0/8", proto = "tcp", port = "9001" } } },
  }
end

local stacks = { docker_stacks = {
  web = { description = "web", compose_file_path = "stacks/web/docker-compose.yml",
    environments = { production = { variables = A { { name = "PORT", value = "80" } }, files = A {} } } },
  db = { description = "db", git = { url = "https://git.example.lan/db.git", ref = "main", compose_file = "compose.yml" },
    environments = { production = { variables = A { { name = "DB_PASSWORD", value = { secret = "env:BENCH_DB" } } } } } },
} }

local function write(name, doc)
  assert(fs.write(dir .. "/" .. name, json.canonical(doc, { pretty = true }) .. "\n"))
end
write("phoenix_hypervisor_config.json", hyp)
write("phoenix_lxc_configs.json", { lxc_configs = cts })
write("phoenix_vm_configs.json", { vm_defaults = { storage_pool = "tank-vm-disks", network_bridge = "vmbr0" }, vms = vms })
write("phoenix_stacks_config.json", stacks)
print(string.format("%s: %d containers, %d VMs", dir, n_ct, n_vm))
