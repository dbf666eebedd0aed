-- The pve-api target's pure parts: argv -> REST request, API answers ->
-- parsed configs and storage rows, and its options. The target against the
-- simulator's API is tests/lua/pve_api_target_spec.lua.
local calls = require "phoenix.target.pve_api.calls"
local client = require "phoenix.target.pve_api.client"
local conf = require "phoenix.target.pve_api.conf"
local options = require "phoenix.target.pve_api.options"
local json = require "px.json"
local log = require "px.log"

local function on(node) return function() return node end end

local function map(tool, args, node)
  return calls.map(tool, args, on(node or "pve"))
end

describe("pve-api argv -> request", function()
  it("maps pct create to POST /nodes/{node}/lxc with vmid and ostemplate as parameters", function()
    local r = assert(map("pct", { "create", "101", "local:vztmpl/debian.tar.zst", "--memory", "512",
      "--rootfs", "local-zfs:8", "--tags", "phoenix" }))
    assert.equals("POST", r.method)
    assert.equals("/nodes/pve/lxc", r.path)
    assert.is_true(r.task)
    assert.same({ vmid = "101", ostemplate = "local:vztmpl/debian.tar.zst", memory = "512", rootfs = "local-zfs:8",
      tags = "phoenix" }, r.params)
  end)

  it("addresses a guest on the node the cluster says it is on", function()
    local r = assert(map("qm", { "clone", "9000", "120", "--full", "1", "--name", "web" }, "pve2"))
    assert.equals("/nodes/pve2/qemu/9000/clone", r.path)
    assert.same({ newid = "120", full = "1", name = "web" }, r.params)
    r = assert(map("pct", { "set", "101", "--delete", "mp0,swap", "--revert", "memory" }))
    assert.same({ "PUT", "/nodes/pve/lxc/101/config", false }, { r.method, r.path, r.task })
    assert.same({ delete = "mp0,swap", revert = "memory" }, r.params)
  end)

  it("puts path parameters in the path, escaped", function()
    local r = assert(map("pct", { "rollback", "101", "before-features" }))
    assert.same({ "POST", "/nodes/pve/lxc/101/snapshot/before-features/rollback" }, { r.method, r.path })
    assert.same({}, r.params)
    r = assert(map("qm", { "delsnapshot", "120", "a b" }))
    assert.equals("/nodes/pve/qemu/120/snapshot/a%20b", r.path)
    r = assert(map("qm", { "resize", "120", "scsi0", "32G" }))
    assert.same({ disk = "scsi0", size = "32G" }, r.params)
    r = assert(map("pct", { "destroy", "101", "--force", "1", "--purge", "1" }))
    assert.same({ "DELETE", "/nodes/pve/lxc/101" }, { r.method, r.path })
    r = assert(map("qm", { "create", "9000", "--name", "tpl", "--net0", "virtio,bridge=vmbr0" }))
    assert.same({ vmid = "9000", name = "tpl", net0 = "virtio,bridge=vmbr0" }, r.params)
    assert.equals("/nodes/pve/qemu", r.path)
  end)

  it("maps the guest agent and pvesh", function()
    local r = assert(map("qm", { "guest", "cmd", "120", "ping" }))
    assert.same({ "POST", "/nodes/pve/qemu/120/agent/ping", "agent" }, { r.method, r.path, r.output })
    r = assert(map("qm", { "guest", "cmd", "120", "network-get-interfaces" }))
    assert.equals("GET", r.method)
    r = assert(map("qm", { "guest", "exec", "120", "--timeout", "30", "--pass-stdin", "1", "--", "install", "-D",
      "--mode", "/dev/stdin" }))
    assert.equals("guest_exec", r.special)
    assert.same({ "install", "-D", "--mode", "/dev/stdin" }, r.command)
    assert.same({ 30, true }, { r.timeout_s, r.pass_stdin })
    r = assert(map("pvesh", { "get", "/cluster/resources", "--type", "vm", "--output-format", "json" }))
    assert.same({ "GET", "/cluster/resources", { type = "vm" }, "json" }, { r.method, r.path, r.params, r.output })
    r = assert(map("pvesm", { "add", "dir", "backup", "--path", "/srv/backup", "--content", "backup" }))
    assert.same({ "POST", "/storage" }, { r.method, r.path })
    assert.same({ type = "dir", storage = "backup", path = "/srv/backup", content = "backup" }, r.params)
  end)

  it("has no request for what the API cannot do, and refuses malformed lines", function()
    assert.is_nil(map("pct", { "exec", "101", "--", "true" }))
    assert.is_nil(map("pct", { "push", "101", "/tmp/a", "/etc/a" }))
    assert.is_nil(map("qm", { "importdisk", "9000", "/img.qcow2", "local-zfs" }))
    assert.is_nil(map("zfs", { "get", "all" }))
    local r, err = map("pct", { "start" })
    assert.is_nil(r)
    assert.equals("`pct start` expects 1 positional argument (vmid), got 0", err)
    r, err = map("pct", { "set", "abc", "--memory", "1" })
    assert.is_nil(r)
    assert.equals("`pct set`: 'abc' is not a guest ID", err)
    r, err = map("pct", { "set", "101", "--memory" })
    assert.is_nil(r)
    assert.equals("option --memory has no value", err)
    r, err = map("qm", { "guest", "exec", "120", "--bogus", "1", "--", "true" })
    assert.is_nil(r)
    assert.matches("unknown option %-%-bogus", err)
  end)

  it("form-encodes parameters, repeating a list's key", function()
    assert.equals("command=a%20b&command=%24%28x%29&input-data=l1%0Al2",
      client.form({ command = { "a b", "$(x)" }, ["input-data"] = "l1\nl2" }))
    assert.equals("UPID:pve:0001:AB@pam!t", client.segment("UPID:pve:0001:AB@pam!t"))
    assert.is_true(client.is_upid("UPID:pve:000A1B2C:0012D3E4:6543ABCD:vzcreate:101:root@pam!phoenix:"))
    assert.is_false(client.is_upid("OK"))
  end)
end)

describe("pve-api answers -> configs", function()
  it("builds the parse_config shape from config, pending and snapshot answers", function()
    local cfg = assert(conf.build("lxc",
      { hostname = "web", memory = 512, onboot = 1, cpulimit = 1.5, description = "Web\n", digest = "abc",
        lxc = { { "lxc.apparmor.profile", "unconfined" } }, net0 = "name=eth0,bridge=vmbr0" },
      { { key = "memory", value = 512, pending = 1024 }, { key = "swap", value = 512, delete = 1 },
        { key = "tags", delete = 2 }, { key = "hostname", value = "web" } },
      { { name = "base", description = "", snaptime = 1700000000 },
        { name = "current", description = "You are here!", parent = "base" } }))
    assert.same({ hostname = "web", memory = "512", onboot = "1", cpulimit = "1.5", net0 = "name=eth0,bridge=vmbr0" },
      cfg.main)
    assert.equals("Web\n", cfg.description)
    assert.same({ { "lxc.apparmor.profile", "unconfined" } }, cfg.lxc)
    assert.same({ memory = "1024" }, cfg.pending.main)
    assert.same({ { key = "swap", force = false }, { key = "tags", force = true } }, cfg.delete)
    assert.same({ "base" }, (function() local n = {} for k in pairs(cfg.snapshots) do n[#n + 1] = k end return n end)())
    assert.equals("1700000000", cfg.snapshots.base.main.snaptime)
    assert.is_nil(conf.build("lxc", json.null, {}, {}))
  end)

  it("turns GET /nodes/{node}/storage into pvesm status rows (KiB)", function()
    local rows = assert(conf.storage_rows({
      { storage = "local-zfs", type = "zfspool", active = 1, enabled = 1, total = 1024 * 1000, used = 1024 * 250,
        avail = 1024 * 750, content = "images,rootdir" },
      { storage = "backup", type = "dir", active = 0, enabled = 0, total = 0, used = 0, avail = 0 },
    }))
    assert.same({ name = "backup", type = "dir", enabled = false, active = false, status = "disabled", total = 0,
      used = 0, available = 0 }, rows[1])
    assert.same({ name = "local-zfs", type = "zfspool", enabled = true, active = true, status = "active", total = 1000,
      used = 250, available = 750, percent = 25.0 }, rows[2])
  end)

  it("knows Proxmox's 'no such guest'", function()
    assert.is_true(conf.missing("GET /nodes/pve/lxc/105/status/current: Configuration file 'nodes/pve/lxc/105.conf' does not exist"))
    assert.is_false(conf.missing("GET /nodes/pve/lxc/105/status/current: HTTP 500"))
  end)
end)

describe("pve-api options", function()
  it("needs a host and a token; a full token string carries user and ID", function()
    local o, err = options.coerce({ type = "pve-api" })
    assert.is_nil(o)
    assert.matches("needs option host", err)
    o, err = options.coerce({ host = "pve1.lan" })
    assert.is_nil(o)
    assert.matches("needs an API token", err)
    o = assert(options.coerce({ host = "pve1.lan", token = "ops@pve!phoenix=1234-abcd-5678" }))
    assert.same({ "ops@pve", "phoenix", "1234-abcd-5678", 8006 }, { o.user, o.token_id, o.secret, o.port })
    assert.equals("(secret)", log.scrub("1234-abcd-5678"))
    o, err = options.coerce({ host = "pve1.lan", token = "bare-secret-1" })
    assert.is_nil(o)
    assert.equals("target option token_id is required with a bare token secret", err)
    o = assert(options.coerce({ host = "pve1.lan", token = "bare-secret-1", token_id = "ci", user = "ci@pve",
      port = "8443", verify_tls = "false" }))
    assert.same({ "ci@pve", "ci", "bare-secret-1", 8443, false }, { o.user, o.token_id, o.secret, o.port, o.verify_tls })
  end)

  it("reads the token from the environment or a file", function()
    local o, err = options.coerce({ host = "h", token = "env:PHOENIX_TEST_SURELY_UNSET_VAR" })
    assert.is_nil(o)
    assert.equals("target option token: env:PHOENIX_TEST_SURELY_UNSET_VAR is not set", err)
    local path = os.tmpname()
    local f = assert(io.open(path, "w"))
    f:write("root@pam!ci=from-file-secret\n")
    f:close()
    o = assert(options.coerce({ host = "h", token = "file:" .. path }))
    os.remove(path)
    assert.same({ "root@pam", "ci", "from-file-secret" }, { o.user, o.token_id, o.secret })
  end)

  it("names the option of a bad value", function()
    for _, case in ipairs({
      { { port = "99999" }, "target option port: expected a whole number from 1 to 65535, got '99999'" },
      { { fingerprint = "AB:CD" }, "target option fingerprint: expected a SHA-256 fingerprint" },
      { { verify_tls = "maybe" }, "target option verify_tls: expected true or false, got 'maybe'" },
      { { host = "-oProxyCommand=x" }, "target option host: '-oProxyCommand=x' is not a host name or IPv4 address" },
      { { ssh = "root@-x" }, "target option ssh: 'root@-x' is not [user@]host" },
      { { root = "/srv/node" }, "target options root and bin of the pve-api target apply to the node's shell: they need ssh" },
    }) do
      local spec = { host = "h", token = "u@pam!t=s3cret-value" }
      for k, v in pairs(case[1]) do spec[k] = v end
      local o, err = options.coerce(spec)
      assert.is_nil(o)
      assert.equals(case[2], err:sub(1, #case[2]))
    end
  end)
end)
