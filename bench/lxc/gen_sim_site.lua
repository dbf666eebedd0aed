-- Writes a pve site of N containers from a Debian template on local-zfs,
-- each started (no features: the bench measures pct calls).
-- Usage: phoenix lua gen_sim_site.lua DIR N
local fs = require "px.fs"
local json = require "px.json"

local dir, n = arg[1], tonumber(arg[2] or "20")
assert(dir and n, "usage: gen_sim_site.lua DIR N")
assert(fs.write(dir .. "/phoenix_hypervisor_config.json", json.encode({ domain_name = "bench.lan" })))
local cts = {}
for i = 1, n do
  cts[tostring(300 + i)] = {
    name = "sim" .. i, template = "local:vztmpl/debian-12-standard_12.7-1_amd64.tar.zst",
    storage_pool = "local-zfs", storage_size_gb = 4, memory_mb = 512, cores = 1,
    network_config = { name = "eth0", bridge = "vmbr0", ip = string.format("10.0.0.%d/24", 10 + i), gw = "10.0.0.1" },
  }
end
assert(fs.write(dir .. "/phoenix_lxc_configs.json", json.encode({ lxc_configs = cts })))
