-- VMs through the phoenix binary: the site in tests/fixtures/vm/site on a
-- pve-sim node — plan, converge, a second converge that does nothing in
-- one tool call, drift, delete.
local fs = require "px.fs"
local json = require "px.json"
local kit = require "testkit"
local vmfix = require "vmfix"

local SITE = kit.source_dir .. "/tests/fixtures/vm/site"

describe("phoenix with VMs", function()
  local dir, node, lockf

  lazy_setup(function()
    dir = kit.tmpdir()
    node = vmfix.node(dir)
    lockf = dir .. "/phoenix.lock"
  end)
  lazy_teardown(function() kit.cleanup(dir) end)

  local function px(verb, args)
    local argv = { verb, "--config-dir", SITE, "--target", "pve", "--target-opt", "root=" .. node.root,
      "--target-opt", "bin=" .. node.bin }
    if verb ~= "plan" then argv[#argv + 1] = "--lock-file" argv[#argv + 1] = lockf end
    for _, a in ipairs(args or {}) do argv[#argv + 1] = a end
    return kit.phoenix(argv, { timeout_ms = 240000 })
  end

  it("plans the site: a template, a clone with its steps, the counted workers", function()
    local r = px("plan", { "--exit-code" })
    assert.are.equal(3, r.code, r.stderr)
    assert.matches("vm:9000  template VM 9000 (ubuntu-2404-cloud-template) from noble-server-cloudimg-amd64.img\n"
      .. "  + vm: from cloud image noble-server-cloudimg-amd64.img (2 cores, 4096 MB, on local-zfs)\n"
      .. "  + template: convert to a template  (no snapshot initial_clean_state: Proxmox keeps none of a template, "
      .. "which is itself the clean state)\n", r.stdout, 1, true)
    assert.matches("vm:1011  VM 1011 (worker-2), clone of 9000, 2 of 2\n", r.stdout, 1, true)
    assert.matches("  ~ feature hello: hello\n", r.stdout, 1, true)
    assert.matches("Plan: 10 to create, 5 to change, 0 to delete; 0 resources in sync.", r.stdout, 1, true)
  end)

  it("converges it, then has nothing to do in one tool call", function()
    local r = px("converge")
    assert.are.equal(0, r.code, r.stdout .. r.stderr)
    assert.matches("converge: 0 ok, 4 changed, 0 failed, 0 skipped", r.stdout, 1, true)
    assert.are.equal("Portainer", vmfix.main(node, 1001).name)
    assert.are.equal(fs.read(SITE .. "/features/hello.sh"),
      fs.read(node.dir .. "/sim/guests/1001/fs/var/lib/phoenix/features/hello.sh"))
    node:clear_calls()
    r = px("converge")
    assert.are.equal(0, r.code, r.stderr)
    assert.matches("converge: 4 ok, 0 changed, 0 failed, 0 skipped", r.stdout, 1, true)
    local calls = node:calls()
    assert.are.equal(1, #calls)
    assert.are.same({ "pvesh", "get", "/cluster/resources", "--type", "vm", "--output-format", "json" }, calls[1].argv)
    r = px("plan", { "--exit-code" })
    assert.are.equal(0, r.code, r.stdout)
  end)

  it("shows a stopped VM and changed memory in the plan (JSON too) and converges them", function()
    node:run("qm", "stop", "1010")
    node:run("qm", "set", "1011", "--memory", "2048") -- running: waits for a restart
    node:run("qm", "stop", "1011")
    node:run("qm", "start", "1011")
    local r = px("plan", { "--json" })
    assert.are.equal(0, r.code, r.stderr)
    local plan = assert(json.decode(r.stdout))
    local by = {}
    for _, res in ipairs(plan.resources) do by[res.id] = res end
    assert.are.same({ { field = "status", action = "update", from = "stopped", to = "running" },
      { field = "agent", action = "run", to = "wait for the guest agent (up to 300 s)" } }, by["vm:1010"].changes)
    local mem = by["vm:1011"].changes[1]
    assert.are.same({ "memory", "update", "2048", "4096", "restart", "needs --allow-restart" },
      { mem.field, mem.action, mem.from, mem.to, mem.disruptive, mem.held })
    r = px("converge", { "--allow-restart" })
    assert.are.equal(0, r.code, r.stdout .. r.stderr)
    assert.matches("converge: 2 ok, 2 changed", r.stdout, 1, true)
    assert.are.equal("4096", vmfix.main(node, 1011).memory)
    assert.matches("status: running", vmfix.qm(node, "status", "1010"), 1, true)
  end)

  it("deletes only VMs phoenix owns", function()
    node:run("qm", "create", "1500", "--name", "hand-made")
    local r = px("delete", { "vm:1500", "--yes" })
    assert.are.equal(2, r.code)
    assert.matches("vm:1500 exists but does not carry the phoenix tag", r.stderr, 1, true)
    assert.is_true(fs.exists(node:conf("qemu", 1500)))
    r = px("delete", { "vm:1011" })
    assert.are.equal(2, r.code)
    assert.matches("vm:1011 would be deleted with all its disks", r.stdout, 1, true)
    r = px("delete", { "vm:1011", "--yes" })
    assert.are.equal(0, r.code, r.stderr)
    assert.matches("vm:1011: deleted", r.stdout, 1, true)
    assert.is_false(fs.exists(node:conf("qemu", 1011)))
    assert.is_false(fs.exists(node.root .. "/var/lib/phoenix/vm/1011.json"))
    assert.is_nil(node:run("zfs", "list", "-H", "-o", "name").stdout:find("vm-1011", 1, true))
  end)
end)
