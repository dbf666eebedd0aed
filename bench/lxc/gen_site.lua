-- Writes the bench site: N busybox containers (ids 8001..) on the lxc
-- target in LXCPATH, each with memory/cores limits, a start-at-boot order,
-- a bind mount and one feature; and the Ansible playbook that asks the
-- same of community.general.lxc_container.
-- Usage: phoenix lua gen_site.lua DIR LXCPATH N
local fs = require "px.fs"
local json = require "px.json"

local dir, lxcpath, n = arg[1], arg[2], tonumber(arg[3] or "10")
assert(dir and lxcpath and n, "usage: gen_site.lua DIR LXCPATH N")
local site = dir .. "/site"
assert(fs.mkdir(site .. "/features"))
assert(fs.write(dir .. "/site/phoenix_hypervisor_config.json", json.encode({
  target = { type = "lxc", lxcpath = lxcpath }, features_dir = "features" })))
assert(fs.write(site .. "/features/bench.sh",
  "#!/bin/sh\n# bench feature\n#   PHOENIX_HOSTNAME  the hostname\n"
    .. "set -eu\n[ -f /etc/bench ] || echo \"$PHOENIX_HOSTNAME\" > /etc/bench\n"))
local cts, ids = {}, {}
for i = 1, n do
  local id = 8000 + i
  ids[#ids + 1] = id
  cts[tostring(id)] = {
    name = "bench" .. i, template = "/usr/share/lxc/templates/lxc-busybox", memory_mb = 64, cores = 1,
    start_at_boot = true, boot_order = i, features = { "bench" },
    mount_points = { { host_path = dir .. "/shared", container_path = "/srv/shared" } },
  }
end
assert(fs.write(site .. "/phoenix_lxc_configs.json", json.encode({ lxc_configs = cts })))

-- The same containers for Ansible: started, with the same single-valued
-- config keys (the module compares the first line of each key).
local v2 = fs.exists("/sys/fs/cgroup/cgroup.controllers")
local mem = v2 and "lxc.cgroup2.memory.max" or "lxc.cgroup.memory.limit_in_bytes"
local cpus = v2 and "lxc.cgroup2.cpuset.cpus" or "lxc.cgroup.cpuset.cpus"
local lines = {
  "- hosts: localhost",
  "  connection: local",
  "  gather_facts: false",
  "  tasks:",
  "    - name: bench containers",
  "      community.general.lxc_container:",
  "        name: \"{{ item.id }}\"",
  "        lxc_path: " .. lxcpath,
  "        state: started",
  "        container_config:",
  "          - \"lxc.uts.name = {{ item.name }}\"",
  "          - \"" .. mem .. " = 67108864\"",
  "          - \"" .. cpus .. " = 0\"",
  "          - \"lxc.start.auto = 1\"",
  "      loop:",
}
for i, id in ipairs(ids) do lines[#lines + 1] = string.format("        - { id: \"%d\", name: bench%d }", id, i) end
assert(fs.write(dir .. "/playbook.yml", table.concat(lines, "\n") .. "\n"))
assert(fs.write(dir .. "/inventory", "localhost ansible_python_interpreter=/usr/bin/python3\n"))
print(string.format("%s: %d containers", site, n))
