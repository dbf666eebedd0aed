-- The pve-api target with the node's shell over ssh, end to end through
-- the phoenix binary: the simulator's REST API (pve-sim serve, HTTPS with
-- a CA made here) for guests, and a real sshd on 127.0.0.1 for what the
-- API cannot do (cloud image import, cloud-init snippets and state
-- records, commands and files inside containers, zfs, raw lxc.* lines).
-- The same sites as the pve target's specs, with the same results.
local fs = require "px.fs"
local json = require "px.json"
local pve = require "px.pve"
local kit = require "testkit"
local servers = require "servers"
local sshd = require "sshd"
local vmfix = require "vmfix"

local TEMPLATE = "debian-12-standard_12.7-1_amd64.tar.zst"
local TOKEN = "root@pam!phoenix=9d2b7c1e-5a44-4f0e-8c3d-1e2f3a4b5c6d"
local VM_SITE = kit.source_dir .. "/tests/fixtures/vm/site"

local missing = sshd.missing() or servers.missing { "openssl", "version" }

describe("pve-api target with ssh", function()
  if missing then
    print("SKIP pve_api_ssh_spec: " .. missing)
    it("needs root, openssh-server and openssl", function() pending(missing) end)
    return
  end

  local dir, node, api, pki, keys, server

  setup(function()
    dir = kit.tmpdir()
    node = vmfix.node(dir, { "--template", TEMPLATE })
    assert(fs.mkdir(dir .. "/pki"))
    pki = servers.make_pki(dir .. "/pki")
    api = node:serve({ token = TOKEN, cert = pki.server_crt, key = pki.server_key })
    assert(fs.mkdir(dir .. "/ssh"))
    keys = sshd.keys(dir .. "/ssh")
    server = sshd.start(dir .. "/ssh", keys)
  end)
  teardown(function()
    if server then server.stop() end
    if api then api.stop() end
    kit.cleanup(dir)
  end)

  local function px(verb, site, args)
    local argv = { verb, "--config-dir", site, "--target", "pve-api" }
    for _, kv in ipairs({ "host=127.0.0.1", "port=" .. api.port, "token=" .. TOKEN, "cafile=" .. pki.ca_crt,
      "ssh=root@127.0.0.1", "ssh_port=" .. server.port, "ssh_identity=" .. keys.client_key,
      "ssh_known_hosts=" .. server.known_hosts, "root=" .. node.root, "bin=" .. node.bin, "lock_backoff_ms=10" }) do
      argv[#argv + 1] = "--target-opt"
      argv[#argv + 1] = kv
    end
    if verb ~= "plan" then argv[#argv + 1] = "--lock-file" argv[#argv + 1] = dir .. "/lock" end
    for _, a in ipairs(args or {}) do argv[#argv + 1] = a end
    return kit.phoenix(argv, { timeout_ms = 300000 })
  end

  local function writes_since(n0)
    local n, log = 0, node:api_log()
    for i = n0 + 1, #log do
      if log[i].method ~= "GET" then n = n + 1 end
    end
    return n
  end

  it("converges the VM site: image import and snippets over ssh, agent over the API; a second run changes nothing", function()
    local r = px("converge", VM_SITE)
    assert.are.equal(0, r.code, r.stdout .. r.stderr)
    assert.matches("converge: 0 ok, 4 changed, 0 failed, 0 skipped", r.stdout, 1, true)
    assert.are.equal("Portainer", vmfix.main(node, 1001).name)
    assert.are.equal(fs.read(VM_SITE .. "/features/hello.sh"),
      fs.read(node.dir .. "/sim/guests/1001/fs/var/lib/phoenix/features/hello.sh"))
    assert.is_nil((r.stdout .. r.stderr):find(TOKEN:match("=(.+)$"), 1, true))
    local n0 = #node:api_log()
    node:clear_calls()
    r = px("converge", VM_SITE)
    assert.are.equal(0, r.code, r.stdout .. r.stderr)
    assert.matches("converge: 4 ok, 0 changed, 0 failed, 0 skipped", r.stdout, 1, true)
    assert.are.equal(0, writes_since(n0))
    r = px("plan", VM_SITE, { "--exit-code" })
    assert.are.equal(0, r.code, r.stdout .. r.stderr)
  end)

  it("sets the host up over ssh and registers its storage through the API; a second run changes nothing", function()
    local sdir = dir .. "/hostsite"
    local zone = "/usr/share/zoneinfo/Europe/Berlin"
    assert(fs.mkdir(node.root .. "/usr/share/zoneinfo/Europe", { parents = true }))
    assert(fs.write(node.root .. zone, assert(fs.read(zone))))
    kit.write(sdir .. "/phoenix_hypervisor_config.json", json.encode({ timezone = "Europe/Berlin",
      zfs = { datasets = { { name = "phx-data", pool = "rpool", properties = "compression=lz4,quota=5G",
        proxmox_storage_type = "zfspool", proxmox_content_type = "images" } } } }))
    local n0 = #node:api_log()
    local r = px("setup", sdir, { "--allow-restart" })
    assert.are.equal(0, r.code, r.stdout .. r.stderr)
    assert.equals("Europe/Berlin\n", fs.read(node.root .. "/etc/timezone"))
    local zfs = node:run("zfs", "get", "-H", "-o", "value", "compression,quota", "rpool/phx-data").stdout
    assert.equals("lz4\n5G\n", zfs)
    assert.matches("zfspool: rpool%-phx%-data\n\tpool rpool/phx%-data\n", assert(fs.read(node.root .. "/etc/pve/storage.cfg")))
    local posted = false
    for i = n0 + 1, #node:api_log() do
      local e = node:api_log()[i]
      if e.method == "POST" and e.path == "/storage" then posted = true end
    end
    assert.is_true(posted, "the storage was not added through the API")
    n0 = #node:api_log()
    r = px("setup", sdir, { "--allow-restart" })
    assert.are.equal(0, r.code, r.stdout .. r.stderr)
    assert.matches("0 changed, 0 failed", r.stdout, 1, true)
    assert.are.equal(0, writes_since(n0))
  end)

  it("converges containers with features, raw lxc lines, host mounts and ZFS volumes", function()
    local sdir = dir .. "/ctsite"
    kit.write(sdir .. "/phoenix_hypervisor_config.json", json.encode({ features_dir = "features" }))
    kit.write(sdir .. "/features/base.sh", "echo base > /etc/phoenix-base\n")
    kit.write(sdir .. "/phoenix_lxc_configs.json", json.encode({ lxc_configs = {
      ["920"] = { name = "tpl", template = "local:vztmpl/" .. TEMPLATE, storage_pool = "local-zfs", storage_size_gb = 4,
        memory_mb = 512, features = { "base" }, template_snapshot_name = "golden",
        network_config = { name = "eth0", bridge = "vmbr0", ip = "10.0.0.90/24", gw = "10.0.0.1" } },
      ["921"] = { name = "web", clone_from_ctid = "920", storage_pool = "local-zfs", memory_mb = 1024, cores = 2,
        network_config = { name = "eth0", bridge = "vmbr0", ip = "10.0.0.11/24", gw = "10.0.0.1" },
        lxc_options = { "lxc.mount.auto: sys:rw" }, features = { "base" },
        mount_points = { { host_path = "/srv/web", container_path = "/srv/web" } },
        zfs_volumes = { { name = "data", pool = "local-zfs", size_gb = 2, mount_point = "/data" } },
        dependencies = { "920" } },
    } }))
    local r = px("converge", sdir)
    assert.are.equal(0, r.code, r.stdout .. r.stderr)
    local web = assert(pve.parse_config(assert(fs.read(node:conf("lxc", 921))), "lxc"))
    assert.same({ { "lxc.mount.auto", "sys:rw" } }, web.lxc)
    assert.matches("^/srv/web,mp=/srv/web", web.main.mp0)
    assert.matches("mp=/data", web.main.mp1)
    assert.is_true(fs.exists(node.root .. "/srv/web"))
    -- the feature ran in the template through `pct exec` over ssh; the clone has its marker
    local ran = false
    for line in (fs.read(node.dir .. "/sim/exec.log") or ""):gmatch("[^\n]+") do
      local e = json.decode(line)
      if e.vmid == 920 and e.argv[2] == "PHOENIX_FEATURE=base" and e.exit == 0 then ran = true end
    end
    assert.is_true(ran, "the feature did not run in container 920")
    assert.is_true(fs.exists(node.dir .. "/sim/guests/921/fs/var/lib/phoenix/features/base.done"))
    local n0 = #node:api_log()
    r = px("converge", sdir)
    assert.are.equal(0, r.code, r.stdout .. r.stderr)
    assert.matches("0 changed, 0 failed", r.stdout, 1, true)
    assert.are.equal(0, writes_since(n0))
  end)
end)
