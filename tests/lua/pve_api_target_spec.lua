-- The pve-api target against the simulator's REST API (pve-sim serve, over
-- HTTPS with a CA made here): opening (token, TLS, node), the inventory
-- batch, guest reads equal to what the config files say, tasks and their
-- failures, the guest agent, and converging a site through the phoenix
-- binary with the same result as the pve target.
local fs = require "px.fs"
local json = require "px.json"
local pve = require "px.pve"
local targets = require "phoenix.target"
local kit = require "testkit"
local pvesim = require "pvesim"
local servers = require "servers"

local TEMPLATE = "debian-12-standard_12.7-1_amd64.tar.zst"
local TOKEN = "root@pam!phoenix=5f1c9a2e-7d3b-4c11-9e0a-3b8d6f2a1c44"

local missing = servers.missing { "openssl", "version" } or servers.missing { servers.python, "-c", "pass" }

describe("pve-api target", function()
  if missing then
    it("needs openssl and python3", function() pending(missing) end)
    return
  end

  local dir, node, api, pki

  local function spec(extra)
    local s = { type = "pve-api", host = "127.0.0.1", port = tostring(api.port), token = TOKEN, cafile = pki.ca_crt,
      lock_backoff_ms = "10" }
    for k, v in pairs(extra or {}) do
      if v == false then s[k] = nil else s[k] = v end
    end
    return s
  end

  local function open(extra) return assert(targets.open(spec(extra))) end

  setup(function()
    dir = kit.tmpdir("pveapi")
    node = pvesim.init(dir .. "/n", { "--template", TEMPLATE })
    fs.mkdir(dir .. "/pki")
    pki = servers.make_pki(dir .. "/pki")
    api = node:serve({ token = TOKEN, cert = pki.server_crt, key = pki.server_key })
  end)
  teardown(function()
    if api then api.stop() end
    kit.cleanup(dir)
  end)

  it("opens with a valid token and CA, and names what is wrong otherwise", function()
    local t = open()
    assert.equals("pve", t.node)
    assert.is_false(t:supports("host"))
    assert.is_true(t:supports("ct"))
    local bad, err = targets.open(spec({ token = "root@pam!phoenix=wrong-secret-value" }))
    assert.is_nil(bad)
    assert.matches("cannot reach the Proxmox API at https://127.0.0.1:%d+/api2/json: GET /nodes: ", err)
    assert.matches("authentication failure", err)
    assert.is_nil(err:find("wrong-secret-value", 1, true))
    bad, err = targets.open(spec({ cafile = "/etc/ssl/certs/ca-certificates.crt" }))
    assert.is_nil(bad)
    assert.matches("SSL certificate problem", err)
    bad, err = targets.open(spec({ node = "pve9" }))
    assert.is_nil(bad)
    assert.equals("target option node: the cluster has no node 'pve9' (nodes: pve)", err)
    bad, err = targets.open(spec({ colour = "blue" }))
    assert.is_nil(bad)
    assert.matches("unknown option 'colour' for the pve%-api target", err)
  end)

  it("trusts the node's certificate by fingerprint instead of a CA", function()
    local fp = servers.run { "openssl", "x509", "-in", pki.server_crt, "-noout", "-fingerprint", "-sha256" }
    fp = fp:match("=(%S+)")
    local t = assert(targets.open(spec({ cafile = false, fingerprint = fp })))
    assert.equals("pve", t.node)
    local other = servers.run { "openssl", "x509", "-in", pki.wrong_crt, "-noout", "-fingerprint", "-sha256" }
    local bad, err = targets.open(spec({ cafile = false, fingerprint = other:match("=(%S+)") }))
    assert.is_nil(bad)
    assert.matches("has SHA%-256 fingerprint " .. fp:gsub("%p", "%%%0"), err)
  end)

  it("creates, reads and changes a container through tasks; reads agree with the config file", function()
    local t = open()
    local res, err = t:pve("pct", { "create", "150", "local:vztmpl/" .. TEMPLATE, "--rootfs", "local-zfs:4",
      "--hostname", "api-ct", "--memory", "512", "--tags", "phoenix", "--net0", "name=eth0,bridge=vmbr0,ip=dhcp" })
    assert.is_table(res, err)
    t:refresh(150)
    local g = assert(t:guest(150))
    local file = assert(pve.parse_config(assert(fs.read(node:conf("lxc", 150))), "lxc"))
    assert.same(file.main, g.conf.main)
    assert.same({ "lxc", "pve", "api-ct", true, "stopped" }, { g.kind, g.node, g.name, g.owned, g.status })
    -- a running container's change waits in [pve:pending]
    assert(t:pve("pct", { "start", "150" }))
    assert(t:pve("pct", { "set", "150", "--cores", "2", "--delete", "net0" }))
    t:refresh(150)
    g = assert(t:guest(150))
    file = assert(pve.parse_config(assert(fs.read(node:conf("lxc", 150))), "lxc"))
    assert.same(file.main, g.conf.main)
    assert.same(file.pending.main, g.conf.pending.main)
    assert.same(file.delete, g.conf.delete)
    assert.equals("running", g.status)
    assert(t:pve("pct", { "snapshot", "150", "golden" }))
    t:refresh(150)
    assert.is_table(assert(t:guest(150)).conf.snapshots.golden)
    -- gone after destroy
    assert(t:pve("pct", { "shutdown", "150", "--timeout", "60", "--forceStop", "1" }))
    assert(t:pve("pct", { "destroy", "150", "--force", "1", "--purge", "1" }))
    t:refresh(150)
    local gone, gerr = t:guest(150)
    assert.is_nil(gone)
    assert.is_nil(gerr)
  end)

  it("fails a bad option before any task and a failing task with its message", function()
    local t = open()
    local res, err = t:pve("pct", { "set", "101", "--memory", "1" })
    assert.is_nil(res)
    assert.equals("`pct set 101 --memory 1` exited 255: PUT /nodes/pve/lxc/101/config: Parameter verification failed. "
      .. "memory: value must have a minimum value of 16", err)
    res, err = t:pve("pct", { "create", "151", "local:vztmpl/" .. TEMPLATE, "--memroy", "512" })
    assert.is_nil(res)
    assert.matches("Parameter verification failed", err)
    assert.matches("memroy", err)
    res, err = t:pve("pct", { "create", "152", "local:vztmpl/" .. TEMPLATE, "--rootfs", "local-zfs:4" })
    assert.is_table(res, err)
    res, err = t:pve("pct", { "clone", "152", "153", "--snapname", "nope", "--full", "1" })
    assert.is_nil(res)
    assert.matches("^`pct clone 152 153 %-%-snapname nope %-%-full 1` exited 255: ", err)
  end)

  it("inventories the cluster in one request and reads a guest in one round of three", function()
    local t = open()
    node:run("pct", "create", "160", "local:vztmpl/" .. TEMPLATE, "--rootfs", "local-zfs:4", "--tags", "phoenix;web")
    -- the stand-in logs a request just after answering it: wait for the line
    local function requests_since(n0, want)
      local deadline = require("px.sys").monotonic() + 2
      while #node:api_log() - n0 < want and require("px.sys").monotonic() < deadline do require("px.sys").sleep(0.02) end
      return #node:api_log() - n0
    end
    local before = #node:api_log()
    local inv = assert(t:inventory())
    assert.is_table(inv.guests[160])
    assert.is_true(inv.guests[160].owned)
    local owned = assert(t:owned_guests())
    local ids = {}
    for _, o in ipairs(owned) do ids[#ids + 1] = o.name end
    assert.truthy(table.concat(ids, ","):find("160", 1, true))
    assert.equals(1, requests_since(before, 1))
    assert(t:guest(160))
    assert.equals(4, requests_since(before, 4))
    assert(t:guest(160)) -- cached for the run
    assert.equals(4, requests_since(before, 5))
    t:refresh(160) -- after a change: its status too
    assert(t:guest(160))
    assert.equals(8, requests_since(before, 8))
  end)

  it("says what needs the node's shell when ssh is not set", function()
    local t = open()
    local res, err = t:pve("pct", { "exec", "160", "--", "true" })
    assert.is_nil(res)
    assert.matches("needs the node's shell, which the Proxmox API does not give: name it with %-%-target%-opt ssh=root@127.0.0.1",
      err)
    local ok, werr = t:write("/etc/phoenix-test", "x")
    assert.is_nil(ok)
    assert.matches("writing /etc/phoenix%-test needs the node's shell", werr)
  end)

  local function site_files(d, cts)
    kit.write(d .. "/site/phoenix_hypervisor_config.json", json.encode({ features_dir = "features" }))
    kit.write(d .. "/site/phoenix_lxc_configs.json", json.encode({ lxc_configs = cts }))
    fs.mkdir(d .. "/site/features")
    return d .. "/site"
  end

  it("converges a site of containers like the pve target does, and a second run changes nothing", function()
    local cts = {
      ["910"] = { name = "tpl", template = "local:vztmpl/" .. TEMPLATE, storage_pool = "local-zfs", storage_size_gb = 4,
        memory_mb = 512, template_snapshot_name = "golden",
        network_config = { name = "eth0", bridge = "vmbr0", ip = "10.0.0.90/24", gw = "10.0.0.1" } },
      ["911"] = { name = "web", clone_from_ctid = "910", storage_pool = "local-zfs", memory_mb = 1024, cores = 2,
        start_at_boot = true, network_config = { name = "eth0", bridge = "vmbr0", ip = "10.0.0.11/24", gw = "10.0.0.1" },
        dependencies = { "910" } },
      ["912"] = { name = "db", clone_from_ctid = "910", storage_pool = "local-zfs", memory_mb = 512,
        network_config = { name = "eth0", bridge = "vmbr0", ip = "10.0.0.12/24", gw = "10.0.0.1" },
        dependencies = { "910" } },
    }
    local site = site_files(dir, cts)
    local argv = { "converge", "--config-dir", site, "--target", "pve-api", "--lock-file", dir .. "/lock" }
    for k, v in pairs(spec()) do
      if k ~= "type" then argv[#argv + 1] = "--target-opt" argv[#argv + 1] = k .. "=" .. v end
    end
    local r = kit.phoenix(argv)
    assert.equals(0, r.code, r.stdout .. r.stderr)
    local web = assert(pve.parse_config(assert(fs.read(node:conf("lxc", 911))), "lxc"))
    assert.same({ "web", "1024", "2", "1" }, { web.main.hostname, web.main.memory, web.main.cores, web.main.onboot })
    assert.matches("ip=10.0.0.11/24", web.main.net0)
    local tpl = assert(pve.parse_config(assert(fs.read(node:conf("lxc", 910))), "lxc"))
    assert.is_table(tpl.snapshots.golden)
    assert.is_nil(r.stdout:find(TOKEN:match("=(.+)$"), 1, true))
    assert.is_nil(r.stderr:find(TOKEN:match("=(.+)$"), 1, true))
    -- no-op: the inventory, then per declared guest one round of reads
    local before = #node:api_log()
    r = kit.phoenix(argv)
    assert.equals(0, r.code, r.stdout .. r.stderr)
    assert.matches("0 changed", r.stdout)
    local writes = 0
    for i = before + 1, #node:api_log() do
      if node:api_log()[i].method ~= "GET" then writes = writes + 1 end
    end
    assert.equals(0, writes)
    -- delete goes through the API too, and only with --yes
    local del = { "delete", "lxc:912", "--config-dir", site, "--target", "pve-api", "--lock-file", dir .. "/lock" }
    for i = 8, #argv do del[#del + 1] = argv[i] end
    r = kit.phoenix(del)
    assert.matches("would be deleted", r.stdout)
    assert.is_true(fs.exists(node:conf("lxc", 912)))
    del[#del + 1] = "--yes"
    r = kit.phoenix(del)
    assert.equals(0, r.code, r.stdout .. r.stderr)
    assert.is_false(fs.exists(node:conf("lxc", 912)))
  end)
end)
