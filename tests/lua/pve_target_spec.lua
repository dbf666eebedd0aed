-- The pve target against the Proxmox simulator (tests/pve-sim): guests are
-- made with the simulator's own pct/qm, so what the target reads is what
-- Proxmox writes.
local targets = require "phoenix.target"
local scheduler = require "phoenix.scheduler"
local inventory = require "phoenix.target.pve.inventory"
local async = require "phoenix.async"
local fs = require "px.fs"
local sys = require "px.sys"
local json = require "px.json"
local kit = require "testkit"
local pvesim = require "pvesim"

local TEMPLATE = "debian-12-standard_12.7-1_amd64.tar.zst"

local function open(node, extra) return assert(targets.open(node:target_spec(extra))) end

-- run each fn as a scheduler task at once; returns their results by index
local function concurrently(fns)
  local results, i = {}, 0
  scheduler.run({ jobs = #fns,
    next = function() i = i + 1 return fns[i] and { id = i, fn = fns[i] } end,
    done = function(task, ok, v) assert(ok, v) results[task.id] = v end })
  return results
end

describe("pve target", function()
  local dir, node

  -- One node for the read-only tests: CTs and VMs in every state.
  lazy_setup(function()
    dir = kit.tmpdir()
    node = pvesim.init(dir .. "/n", { "--template", TEMPLATE })
    local tmpl = "local:vztmpl/" .. TEMPLATE
    node:run("pct", "create", "101", tmpl, "--hostname", "web", "--rootfs", "local-zfs:4",
      "--tags", "phoenix;web", "--memory", "512")
    node:run("pct", "start", "101")
    node:run("pct", "create", "102", tmpl, "--hostname", "base", "--rootfs", "local-zfs:4")
    node:run("pct", "template", "102")
    node:run("pct", "create", "103", tmpl, "--hostname", "db", "--rootfs", "local-zfs:4", "--tags", "db")
    node:run("pct", "set", "103", "--lock", "backup")
    node:run("qm", "create", "200", "--name", "vm1", "--memory", "1024", "--tags", "phoenix")
    node:run("qm", "start", "200")
    node:run("qm", "create", "201", "--name", "vm2", "--memory", "512")
    node:run("qm", "set", "201", "--lock", "migrate")
  end)
  lazy_teardown(function() kit.cleanup(dir) end)
  before_each(function() node:clear_calls() end)

  it("inventories CTs and VMs: kind, name, status, locks, templates, tags, ownership", function()
    local t = open(node)
    assert.are.equal("pve", t.node)
    local inv = assert(t:inventory())
    local g = inv.guests
    local ids = {}
    for id in pairs(g) do ids[#ids + 1] = id end
    table.sort(ids)
    assert.are.same({ 101, 102, 103, 200, 201 }, ids)
    assert.are.equal("lxc", g[101].kind)
    assert.are.equal("web", g[101].name)
    assert.are.equal("running", g[101].status)
    assert.are.same({ "phoenix", "web" }, g[101].tags)
    assert.is_true(g[101].owned)
    assert.is_false(g[101].template)
    assert.is_nil(g[101].lock)
    assert.are.equal("512", g[101].conf.main.memory)
    assert.are.equal("pve", g[101].node)
    assert.are.equal("/etc/pve/nodes/pve/lxc/101.conf", g[101].file)
    assert.are.equal(g[101].vmid, 101)
    assert.is_true(g[102].template)
    assert.are.equal("stopped", g[102].status)
    assert.is_false(g[102].owned)
    assert.are.equal("backup", g[103].lock)
    assert.are.same({ "db" }, g[103].tags)
    assert.are.equal("qemu", g[200].kind)
    assert.are.equal("vm1", g[200].name)
    assert.are.equal("running", g[200].status)
    assert.is_true(g[200].owned)
    assert.are.equal("migrate", g[201].lock)
    assert.are.equal("stopped", g[201].status)
    assert.are.same({}, g[201].tags)
    assert.are.equal(1, inv.calls)
    assert.are.same({ { type = "lxc", name = "101" }, { type = "vm", name = "200" } }, assert(t:owned_guests()))
  end)

  it("makes exactly one pvesh call per run, however often it is asked", function()
    local t = open(node)
    for _ = 1, 3 do
      assert(t:inventory())
      assert.are.equal("web", t:guest(101).name)
      assert.is_nil(t:guest(999))
      assert(t:owned_guests())
    end
    assert.are.equal(1, #node:calls())
    assert.are.equal(1, node:count("^pvesh get /cluster/resources %-%-type vm %-%-output%-format json$"))
    assert.are.equal(1, t.calls)
    -- a new run (a new target) asks again
    assert(open(node):inventory())
    assert.are.equal(2, node:count("^pvesh get /cluster/resources"))
  end)

  it("reads the storages with one pvesm status and ZFS with one zfs get", function()
    local t = open(node)
    local rows = assert(t:storages())
    assert.are.equal(2, #rows)
    assert.are.equal("zfspool", t:storage("local-zfs").type)
    assert.is_nil(t:storage("nope"))
    local ds = { "rpool/data", "rpool/data/subvol-101-disk-0", "rpool/missing" }
    local z = assert(t:zfs_get(ds, { "compression", "quota", "used" }))
    assert.are.equal("on", z["rpool/data"].compression.value)
    assert.are.equal("inherited", z["rpool/data"].compression.source)
    assert.are.equal("rpool", z["rpool/data"].compression.inherited_from)
    assert.are.equal("default", z["rpool/data/subvol-101-disk-0"].quota.source)
    assert.is_nil(z["rpool/missing"])
    -- the same batch in another order is the same call
    assert(t:zfs_get({ ds[3], ds[1], ds[2] }, { "used", "quota", "compression" }))
    assert.are.equal(1, node:count("^pvesm status$"))
    assert.are.equal(1, node:count("^zfs get"))
    assert.are.equal(2, #node:calls())
    node:run("zfs", "set", "quota=1073741824", "rpool/data/subvol-101-disk-0")
    t:refresh_zfs("rpool/data/subvol-101-disk-0")
    z = assert(t:zfs_get(ds, { "compression", "quota", "used" }))
    assert.are.equal("1073741824", z["rpool/data/subvol-101-disk-0"].quota.value)
    assert.are.equal("local", z["rpool/data/subvol-101-disk-0"].quota.source)
    assert.has_error(function() t:zfs_get({ "-r" }, { "used" }) end)
    assert.has_error(function() t:zfs_get({}, { "used" }) end)
  end)

  it("sees configs edited by hand after refresh, with one status call for the guest", function()
    local t = open(node)
    assert.are.equal("512", t:guest(103).conf.main.memory)
    local path = node:conf("lxc", 103)
    local text = assert(fs.read(path))
    assert(fs.write(path, (text:gsub("memory: 512", "memory: 2048"))))
    assert.are.equal("512", t:guest(103).conf.main.memory) -- memoised for the run
    t:refresh(103)
    local g = t:guest(103)
    assert.are.equal("2048", g.conf.main.memory)
    assert.are.equal("backup", g.lock)
    assert.are.equal("stopped", g.status)
    assert.are.equal(1, node:count("^pvesh get /nodes/pve/lxc/103/status/current"))
    assert.are.equal(2, #node:calls())
    assert(t:guest(103))
    assert.are.equal(2, #node:calls())
    assert.are.equal(2, assert(t:inventory()).calls)
    assert(fs.write(path, text))
  end)

  it("re-reads several changed guests with one call, and sees them come and go", function()
    local t = open(node)
    assert(t:inventory())
    local tmpl = "local:vztmpl/" .. TEMPLATE
    node:run("pct", "create", "150", tmpl, "--hostname", "new", "--rootfs", "local-zfs:4",
      "--tags", assert(t:tags_option({ "app" })))
    node:run("qm", "unlock", "201")
    node:run("qm", "start", "201")
    node:clear_calls()
    t:refresh(150)
    t:refresh(201)
    local inv = assert(t:inventory())
    assert.are.equal(1, #node:calls())
    assert.are.equal(1, node:count("^pvesh get /cluster/resources"))
    assert.are.equal("new", inv.guests[150].name)
    assert.is_true(inv.guests[150].owned)
    assert.are.same({ "app", "phoenix" }, inv.guests[150].tags)
    assert.are.equal("running", inv.guests[201].status)
    assert.is_nil(inv.guests[201].lock)
    node:run("pct", "destroy", "150")
    node:run("qm", "stop", "201")
    node:run("qm", "set", "201", "--lock", "migrate")
    node:clear_calls()
    t:refresh(150)
    assert.is_nil(t:guest(150))
    assert.are.equal(0, #node:calls()) -- no config: gone, nothing to ask
    assert.is_nil(assert(t:inventory()).guests[150])
  end)

  it("shares one inventory batch between concurrent tasks", function()
    node:set({ latency_ms = 300 })
    finally(function() node:set({ latency_ms = 0 }) end)
    local t = open(node)
    local t0 = sys.monotonic()
    local r = concurrently({
      function() return t:guest(101).name end,
      function() return t:guest(200).name end,
      function() return #assert(t:owned_guests()) end,
    })
    assert.are.equal("web", r[1])
    assert.are.equal("vm1", r[2])
    assert.are.equal(#assert(t:owned_guests()), r[3])
    assert.is_true(r[3] >= 2)
    assert.are.equal(1, #node:calls())
    assert.is_true(sys.monotonic() - t0 < 2.0)
  end)

  it("retries a Proxmox lock timeout with backoff, then succeeds", function()
    node:set({ faults = { { match = "pct set 101 *", kind = "lock-timeout", times = 2 } } })
    finally(function() node:set({ faults = {} }) end)
    local t = open(node, { lock_backoff_ms = "20" })
    local res = assert(t:pve("pct", { "set", 101, "--description", "retried" }))
    assert.are.equal(0, res.code)
    local calls = node:calls()
    assert.are.equal(3, #calls)
    assert.are.equal(255, calls[1].exit)
    assert.is_not_nil(calls[1].fault)
    assert.are.equal(0, calls[3].exit)
    assert.are.equal(3, t.calls)
    t:refresh(101)
    assert.are.equal("retried\n", t:guest(101).conf.description)
  end)

  it("gives up on a lock timeout after lock_retries, naming command and message", function()
    node:set({ faults = { { match = "qm set 200 *", kind = "lock-timeout", times = 5 } } })
    finally(function() node:set({ faults = {} }) end)
    local t = open(node, { lock_retries = "1", lock_backoff_ms = "1" })
    local res, err, r = t:pve("qm", { "set", "200", "--onboot", "1" })
    assert.is_nil(res)
    assert.matches("`qm set 200 --onboot 1` exited 255: can't lock file "
      .. "'/var/lock/qemu-server/lock-200.conf' - got timeout (still locked after 1 retry)", err, 1, true)
    assert.are.equal(255, r.code)
    assert.are.equal(2, #node:calls())
    -- a lock timeout did nothing: retried even when any exit code is welcome
    res, err = t:pve("qm", { "set", "200", "--onboot", "1" }, { check = false, lock_retries = 2 })
    assert.is_nil(res)
    assert.matches("(still locked after 2 retries)", err, 1, true)
    assert.are.equal(5, #node:calls())
  end)

  it("does not block other tasks while it waits to retry", function()
    node:set({ faults = { { match = "pct set 101 *", kind = "lock-timeout", times = 1 } } })
    finally(function() node:set({ faults = {} }) end)
    local t = open(node, { lock_backoff_ms = "1500" })
    local order = {}
    concurrently({
      function()
        assert(t:pve("pct", { "set", "101", "--description", "x" }))
        order[#order + 1] = "retried"
      end,
      function()
        async.sleep(0.3) -- after the first attempt failed, inside the backoff
        assert(t:pve("pvesh", { "get", "/version", "--output-format", "json" }))
        order[#order + 1] = "other"
      end,
    })
    assert.are.same({ "other", "retried" }, order)
  end)

  it("does not retry permanent failures and names command, exit code and stderr", function()
    local t = open(node, { lock_backoff_ms = "1" })
    local res, err = t:pve("pct", { "set", "999", "--memory", "512" })
    assert.is_nil(res)
    assert.are.equal("`pct set 999 --memory 512` exited 255: Configuration file 'nodes/pve/lxc/999.conf' "
      .. "does not exist", err)
    assert.are.equal(1, #node:calls())
    node:set({ faults = { { match = "pvesm status", stderr = "storage 'x' is not online", exit = 2 } } })
    finally(function() node:set({ faults = {} }) end)
    local rows, serr = t:storages()
    assert.is_nil(rows)
    assert.are.equal("`pvesm status` exited 2: storage 'x' is not online", serr)
    -- a failed batch is not kept: the next caller asks again
    node:set({ faults = {} })
    assert(t:storages())
    -- ok_codes / check as ctx:run
    assert.are.equal(255, assert(t:pve("pct", { "status", "999" }, { check = false })).code)
    assert.has_error(function() t:pve("rm", { "-rf", "/" }) end)
    assert.has_error(function() t:pve("pct", { "set", {} }) end)
  end)

  it("fails the inventory clearly when pvesh fails or prints garbage", function()
    node:set({ faults = { { match = "pvesh *", stdout = "not json", exit = 0, times = json.null } } })
    finally(function() node:set({ faults = {} }) end)
    local t = open(node)
    local inv, err = t:inventory()
    assert.is_nil(inv)
    assert.matches("`pvesh get /cluster/resources --type vm --output-format json` printed what is not pvesh JSON",
      err, 1, true)
    local g, gerr = t:guest(101)
    assert.is_nil(g)
    assert.are.equal(err, gerr)
  end)

  it("times out a hung tool call", function()
    node:set({ faults = { { match = "pvesm status", delay_ms = 3000 } } })
    finally(function() node:set({ faults = {} }) end)
    local t = open(node, { timeout_ms = "300" })
    local rows, err = t:storages()
    assert.is_nil(rows)
    assert.matches("^`pvesm status` timed out after", err)
  end)

  it("merges the phoenix tag into --tags", function()
    local t = open(node)
    assert.are.equal("phoenix", t:tags_option())
    assert.are.equal("ai;phoenix;web", t:tags_option("Web,ai;phoenix"))
    assert.are.equal("phoenix;web", t:tags_option({ "web", "web" }))
    local s, err = t:tags_option({ "bad tag" })
    assert.is_nil(s)
    assert.matches("'bad tag' is not a valid Proxmox tag", err, 1, true)
  end)

  it("supports containers, VMs and the host", function()
    local t = open(node)
    assert.is_true(t:supports("ct"))
    assert.is_true(t:supports("vm"))
    assert.is_true(t:supports("host"))
    assert.is_false(t:supports("gpu-hotplug"))
  end)
end)

describe("pve target options", function()
  local dir
  before_each(function() dir = kit.tmpdir() end)
  after_each(function() kit.cleanup(dir) end)

  local function fake_root(nodes)
    for _, n in ipairs(nodes) do assert(fs.mkdir(dir .. "/root/etc/pve/nodes/" .. n .. "/lxc")) end
    assert(fs.mkdir(dir .. "/root/etc/pve"))
    assert(fs.mkdir(dir .. "/bin"))
    return dir .. "/root"
  end

  it("finds the node: the option, the single node directory, or this host", function()
    local root = fake_root({ "alpha" })
    assert.are.equal("alpha", assert(targets.open({ type = "pve", root = root })).node)
    assert(fs.mkdir(root .. "/etc/pve/nodes/beta"))
    local t, err = targets.open({ type = "pve", root = root })
    assert.is_nil(t)
    assert.matches("holds several nodes (alpha, beta) and none is this host", err, 1, true)
    assert.matches("--target-opt node=NAME", err, 1, true)
    assert.are.equal("beta", assert(targets.open({ type = "pve", root = root, node = "beta" })).node)
    local host = sys.hostname():match("^[^.]+")
    assert(fs.mkdir(root .. "/etc/pve/nodes/" .. host))
    assert.are.equal(host, assert(targets.open({ type = "pve", root = root })).node)
    t, err = targets.open({ type = "pve", root = root, node = "gamma" })
    assert.is_nil(t)
    assert.matches("target option node: " .. root .. "/etc/pve/nodes/gamma does not exist", err, 1, true)
    t, err = targets.open({ type = "pve", root = root, node = "../x" })
    assert.is_nil(t)
    assert.matches("target option node: '../x' is not a valid node name", err, 1, true)
  end)

  it("takes this host's name when no node directory exists yet", function()
    local root = fake_root({})
    assert.are.equal(sys.hostname():match("^[^.]+"), assert(targets.open({ type = "pve", root = root })).node)
  end)

  it("refuses a root that is not a Proxmox node", function()
    assert(fs.mkdir(dir .. "/empty"))
    local t, err = targets.open({ type = "pve", root = dir .. "/empty" })
    assert.is_nil(t)
    assert.matches(dir .. "/empty/etc/pve does not exist: not a Proxmox VE node", err, 1, true)
  end)

  it("rejects unknown options and bad values, naming the option", function()
    local root = fake_root({ "pve" })
    local t, err = targets.open({ type = "pve", root = root, lock_retry = "3" })
    assert.is_nil(t)
    assert.matches("unknown option 'lock_retry' for the pve target (known: bin, lock_backoff_ms, lock_retries, "
      .. "node, root, timeout_ms)", err, 1, true)
    local bad = {
      { "lock_retries", "many", "target option lock_retries: expected a whole number >= 0, got 'many'" },
      { "lock_retries", "-1", "target option lock_retries: expected a whole number >= 0, got '-1'" },
      { "lock_backoff_ms", "1.5", "target option lock_backoff_ms: expected a whole number >= 0, got '1.5'" },
      { "timeout_ms", "0", "target option timeout_ms: expected a whole number >= 1, got '0'" },
      { "bin", dir .. "/nope", "target option bin: " },
    }
    for _, b in ipairs(bad) do
      t, err = targets.open({ type = "pve", root = root, [b[1]] = b[2] })
      assert.is_nil(t)
      assert.matches(b[3], err, 1, true)
    end
    kit.write(dir .. "/file", "x")
    t, err = targets.open({ type = "pve", root = root, bin = dir .. "/file" })
    assert.is_nil(t)
    assert.matches("target option bin: " .. dir .. "/file is not a directory", err, 1, true)
  end)

  it("coerces option strings from --target-opt and keeps JSON numbers", function()
    local root = fake_root({ "pve" })
    local spec = assert(targets.resolve(nil, "pve", { "root=" .. root, "bin=" .. dir .. "/bin", "lock_retries=3",
      "lock_backoff_ms=250", "timeout_ms=60000" }))
    local t = assert(targets.open(spec))
    assert.are.equal(3, t.options.lock_retries)
    assert.are.equal(250, t.options.lock_backoff_ms)
    assert.are.equal(60000, t.options.timeout_ms)
    assert.are.equal(dir .. "/bin", t.bin)
    assert.are.equal(root, t.root)
    assert.are.equal(root .. "/etc/pve", t:path("/etc/pve"))
    t = assert(targets.open({ type = "pve", root = root, lock_retries = 2, lock_backoff_ms = 10.0 }))
    assert.are.equal(2, t.options.lock_retries)
    assert.are.equal(10, t.options.lock_backoff_ms)
    assert.are.equal(900000, t.options.timeout_ms)
    assert.are.equal(5, assert(targets.open({ type = "pve", root = root })).options.lock_retries)
  end)

  it("reads guests of other cluster nodes from their node's directory", function()
    local root = fake_root({ "pve", "pve2" })
    kit.write(root .. "/etc/pve/nodes/pve/lxc/101.conf", "hostname: here\nmemory: 512\n")
    kit.write(root .. "/etc/pve/nodes/pve2/qemu-server/300.conf", "name: there\ntags: phoenix\ntemplate: 1\n")
    local t = assert(targets.open({ type = "pve", root = root, node = "pve" }))
    local rows = assert(require("px.pve").parse_pvesh_json(json.encode({
      { vmid = 101, type = "lxc", node = "pve", status = "running" },
      { vmid = 300, type = "qemu", node = "pve2", status = "stopped" },
      { vmid = 301, type = "qemu", node = "../../etc", status = "stopped" },
    })))
    local guests = assert(inventory.build(t, rows))
    assert.are.equal("here", guests[101].name)
    assert.are.equal("running", guests[101].status)
    assert.are.equal("pve2", guests[300].node)
    assert.are.equal("there", guests[300].name)
    assert.is_true(guests[300].template)
    assert.is_true(guests[300].owned)
    assert.is_nil(guests[301])
  end)
end)
