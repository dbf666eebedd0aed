-- Budget (issue 9): a no-op `phoenix sync all` of 10 stacks on 3 VMs makes
-- at most one HTTP request per stack plus one per environment list, and no
-- git fetch when the refs have not moved.
--
--   ./build/phoenix lua bench/sync/run.lua [STACKS] [VMS]     (defaults 10 3)
--
-- Real parts: the Portainer stand-in (tests/helpers/portainer_standin.py)
-- behind nginx with TLS, a git daemon; guests through the test guest
-- driver. The CLI runs in this process (phoenix.main) so px.git calls can
-- be counted; Portainer requests are counted by the stand-in.
local here = arg[0]:match("^(.*)/[^/]*$") or "."
local root = here .. "/../.."
package.path = root .. "/tests/helpers/?.lua;" .. package.path

local servers = require "servers"
local gitrepo = require "gitrepo"
local fake_guest = require "fake_guest"
local Base = require "phoenix.target.base"
local git = require "px.git"
local json = require "px.json"
local fs = require "px.fs"
local sys = require "px.sys"

local STACKS, VMS = tonumber(arg[1]) or 10, tonumber(arg[2]) or 3

local backend = servers.start_portainer()
local nginx = servers.start_nginx(backend.port)
local dir = servers.tmpdir("bench-sync")
assert(fs.mkdir(dir .. "/git"))
local repo = gitrepo.new(dir .. "/git", "stacks")
local files = {}
for i = 1, STACKS do files["s" .. i .. "/docker-compose.yml"] = "services:\n  s" .. i .. ":\n    image: busybox\n" end
repo:commit(files, "stacks")
local daemon = servers.start_git_daemon(dir .. "/git")

-- The site: a Portainer server container, VMS agent VMs, STACKS stacks
-- spread over them (odd ones from git, even ones from compose files).
local function write(path, doc)
  assert(fs.mkdir(path:match("^(.*)/[^/]*$"), { parents = true }))
  assert(fs.write(path, type(doc) == "string" and doc or json.encode(doc)))
end
local etc = dir .. "/phoenix/etc"
write(etc .. "/phoenix_hypervisor_config.json", { domain_name = "bench.lan",
  network = { portainer_server_port = nginx.tls, portainer_agent_port = 9001 },
  portainer_api = { admin_user = "admin", admin_password = "bench-admin-password",
    url = "https://localhost:" .. nginx.tls, ca_file = nginx.pki.ca_crt } })
write(etc .. "/phoenix_lxc_configs.json", { lxc_configs = { ["110"] = { name = "portainer",
  template = "local:vztmpl/debian-12.tar.zst", portainer_role = "server", network_config = { ip = "10.1.0.10/24" } } } })
local vms, defs = {}, {}
for v = 1, VMS do
  vms[v] = { vmid = 3000 + v, name = "apps" .. v, portainer_role = "agent", network_config = { ip = "10.1.0." .. (20 + v) .. "/24" },
    docker_stacks = {} }
end
for i = 1, STACKS do
  local name = "s" .. i
  local vm = vms[(i - 1) % VMS + 1]
  vm.docker_stacks[#vm.docker_stacks + 1] = name
  if i % 2 == 1 then
    defs[name] = { git = { url = daemon.url .. "/stacks", ref = "main", compose_file = name .. "/docker-compose.yml" },
      environments = { production = { variables = { { name = "N", value = tostring(i) } } } } }
  else
    defs[name] = { compose_file_path = "stacks/" .. name .. ".yml",
      environments = { production = { variables = { { name = "N", value = tostring(i) } } } } }
    write(dir .. "/phoenix/stacks/" .. name .. ".yml", files[name .. "/docker-compose.yml"])
  end
end
write(etc .. "/phoenix_vm_configs.json", { vms = vms })
write(etc .. "/phoenix_stacks_config.json", { docker_stacks = defs })
assert(fs.mkdir(dir .. "/root"))

-- Guests through the test driver; px.git calls counted.
local guests = fake_guest.new(dir .. "/guests")
guests.handlers.docker = function() return { code = 0, stdout = "27.0\n", stderr = "" } end
function Base.driver(_, kind)
  if kind == "ct" or kind == "vm" then return guests end
end
local counts = { fetch = 0, resolve = 0 }
for _, fn in ipairs { "fetch", "resolve" } do
  local real = git[fn]
  git[fn] = function(...)
    counts[fn] = counts[fn] + 1
    return real(...)
  end
end

local main = require("phoenix.main").main
local function sync()
  local t0 = sys.monotonic()
  local code = main { "sync", "all", "--quiet", "--config-dir", etc, "--target", "lxc", "--target-opt",
    "root=" .. dir .. "/root", "--lock-file", dir .. "/lock" }
  return code, sys.monotonic() - t0
end

local ok, err = pcall(function()
  local code = sync()
  assert(code == 0, "the first sync failed")
  backend:reset()
  counts.fetch, counts.resolve = 0, 0
  local code2, took = sync()
  assert(code2 == 0, "the no-op sync failed")
  local reqs = backend:requests()
  local by = {}
  for _, q in ipairs(reqs) do
    local key = q:gsub("%?.*$", "")
    by[key] = (by[key] or 0) + 1
  end
  local keys = {}
  for k in pairs(by) do keys[#keys + 1] = k end
  table.sort(keys)
  print(string.format("no-op sync all: %d stacks on %d VMs (%d from git), %.0f ms", STACKS, VMS, (STACKS + 1) // 2,
    took * 1000))
  print(string.format("HTTP requests at Portainer: %d", #reqs))
  for _, k in ipairs(keys) do print(string.format("  %3d  %s", by[k], k)) end
  print(string.format("git: %d ref lookups (ls-remote), %d fetches", counts.resolve, counts.fetch))
  local budget = STACKS + (by["GET /api/endpoints"] or 0)
  print(string.format("budget: at most %d requests (one per stack + one per environment list): %s", budget,
    #reqs <= budget and "met" or "EXCEEDED"))
  print(string.format("budget: no git fetch with unchanged refs: %s", counts.fetch == 0 and "met" or "EXCEEDED"))
  if #reqs > budget or counts.fetch > 0 then error("over budget", 0) end
end)
daemon:stop()
nginx:stop()
backend:stop()
servers.run { "rm", "-rf", dir }
if not ok then
  io.stderr:write(tostring(err), "\n")
  return 1
end
return 0
