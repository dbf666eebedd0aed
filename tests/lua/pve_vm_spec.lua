-- The pve target's VM driver against the Proxmox simulator: qm calls as
-- argv lists, the guest agent (exec, files in and out, waiting for it),
-- lock timeouts retried.
local fs = require "px.fs"
local json = require "px.json"
local scheduler = require "phoenix.scheduler"
local sys = require "px.sys"
local kit = require "testkit"
local vmfix = require "vmfix"

local TEMPLATE = "debian-12-standard_12.7-1_amd64.tar.zst"

local function concurrently(fns)
  local results, i = {}, 0
  scheduler.run({ jobs = #fns,
    next = function() i = i + 1 return fns[i] and { id = i, fn = fns[i] } end,
    done = function(task, ok, v) assert(ok, v) results[task.id] = v end })
  return results
end

describe("pve_vm driver", function()
  local dir, node

  lazy_setup(function()
    dir = kit.tmpdir()
    node = vmfix.node(dir, { "--template", TEMPLATE })
    node:run("pct", "create", "101", "local:vztmpl/" .. TEMPLATE, "--rootfs", "local-zfs:4")
    node:run("qm", "create", "200", "--name", "vm1", "--agent", "1", "--scsi0", "local-zfs:4")
    node:run("qm", "start", "200")
    node:run("qm", "create", "201", "--name", "stopped", "--agent", "1")
  end)
  lazy_teardown(function() kit.cleanup(dir) end)
  before_each(function()
    node:clear_calls()
    node:set({ agent_delay_s = 0, faults = {} })
    fs.write(node.dir .. "/sim/exec-rules.json", "[]")
  end)

  local function drv(extra)
    local t = vmfix.target(node, extra)
    return assert(t:driver("vm")), t
  end

  it("is the pve target's vm driver, and reads VMs from the inventory", function()
    local d, t = drv()
    assert.are.equal(d, t:driver("vm")) -- loaded once
    local g = assert(d:guest(200))
    assert.are.equal("vm1", g.name)
    assert.are.equal("running", g.status)
    assert.is_nil((d:guest(999)))
    local none, err = d:guest(101)
    assert.is_nil(none)
    assert.are.equal("guest 101 is a container, not a VM", err)
    local conf = assert(d:conf(201))
    assert.are.equal("stopped", conf.main.name)
    assert.has_error(function() d:guest("x") end)
    assert.are.equal(1, node:count("^pvesh"))
  end)

  it("runs commands through the agent: exit code, output, environment in the argv", function()
    fs.write(node.dir .. "/sim/exec-rules.json", json.encode({
      { argv = { "env", "A=1", "B=two words", "uname", "-r" }, stdout = "6.1\n" },
      { argv = { "false" }, exit = 3, stderr = "nope\n" },
    }))
    local d = drv()
    local r = assert(d:exec(200, { "uname", "-r" }, { env = { B = "two words", A = 1 } }))
    assert.are.same({ code = 0, stdout = "6.1\n", stderr = "" }, r)
    r = assert(d:exec(200, { "false" }))
    assert.are.same({ code = 3, stdout = "", stderr = "nope\n" }, r)
    local calls = node:calls()
    assert.are.same({ "qm", "guest", "exec", "200", "--timeout", "600", "--", "env", "A=1", "B=two words", "uname", "-r" },
      calls[1].argv)
    local none, err = d:exec(201, { "true" })
    assert.is_nil(none)
    assert.matches("`qm guest exec 201 --timeout 600 -- true` exited 255: VM 201 is not running", err, 1, true)
    assert.has_error(function() d:exec(200, {}) end)
    assert.has_error(function() d:exec(200, { "echo", 1 }) end)
  end)

  it("pushes files with install from stdin and pulls them with cat", function()
    local d = drv()
    assert.is_true(d:push(200, "/etc/phoenix/a b.txt", "line 1\nline 2\n", { mode = "0600" }))
    local p = node.dir .. "/sim/guests/200/fs/etc/phoenix/a b.txt"
    assert.are.equal("line 1\nline 2\n", fs.read(p))
    assert.are.equal(tonumber("600", 8), fs.stat(p).mode)
    assert.are.equal("line 1\nline 2\n", d:pull(200, "/etc/phoenix/a b.txt"))
    local none, err, missing = d:pull(200, "/etc/phoenix/none")
    assert.is_nil(none)
    assert.is_true(missing)
    assert.matches("reading /etc/phoenix/none in VM 200 failed (exit 1)", err, 1, true)
    local ex = vmfix.exec_log(node)
    assert.are.same({ "install", "-D", "-m", "0600", "/dev/stdin", "/etc/phoenix/a b.txt" }, ex[#ex - 2].argv)
    assert.are.equal(14, ex[#ex - 2].stdin_bytes)
    assert.has_error(function() d:push(200, "relative", "x") end)
  end)

  it("waits for the agent with backoff, yielding to other work, and gives up cleanly", function()
    local d = drv()
    node:run("qm", "stop", "200")
    node:set({ agent_delay_s = 1.2 })
    node:run("qm", "start", "200")
    node:clear_calls()
    local ticks = 0
    local t0 = sys.monotonic()
    local res = concurrently({
      function() return { d:wait_agent(200, { timeout = 30, first = 0.2 }) } end,
      function()
        for _ = 1, 5 do ticks = ticks + 1 require("phoenix.async").sleep(0.1) end
        return true
      end,
    })
    assert.is_true(res[1][1], res[1][2])
    assert.are.equal(5, ticks)
    assert.is_true(sys.monotonic() - t0 >= 1.0)
    local pings = node:count("^qm guest cmd 200 ping")
    assert.is_true(pings >= 2 and pings <= 5, "pings: " .. pings)
    -- too slow: a clean failure naming the VM, the wait and the cause
    node:run("qm", "stop", "200")
    node:set({ agent_delay_s = 60 })
    node:run("qm", "start", "200")
    local ok, err = d:wait_agent(200, { timeout = 0.5, first = 0.2 })
    assert.is_nil(ok)
    assert.matches("the QEMU guest agent of VM 200 did not answer within 1 s", err, 1, true)
    assert.matches("QEMU guest agent is not running", err, 1, true)
    -- not an agent that is booting: no waiting at all
    node:clear_calls()
    ok, err = d:wait_agent(201, { timeout = 30 })
    assert.is_nil(ok)
    assert.matches("VM 201 is not running", err, 1, true)
    assert.are.equal(1, #node:calls())
  end)

  it("retries a call that hit a config lock timeout", function()
    node:set({ faults = { { match = "qm set 201 *", kind = "lock-timeout", times = 2 } } })
    local d = drv({ lock_backoff_ms = "10" })
    assert(d:set(201, { { "description", "two words: ok" }, { "cores", 2 } }))
    assert.are.equal(3, node:count("^qm set 201"))
    assert.matches("#two words%%3A ok", vmfix.conf(node, 201))
    node:set({ faults = { { match = "qm set 201 *", kind = "lock-timeout", times = 5 } } })
    d = drv({ lock_backoff_ms = "10", lock_retries = "1" })
    local ok, err = d:set(201, { { "cores", 3 } })
    assert.is_nil(ok)
    assert.matches("got timeout (still locked after 1 retry)", err, 1, true)
  end)

  it("imports a disk and says which volume it made; refuses bad option names", function()
    local d = drv()
    local volid = assert(d:importdisk(201, node.root .. "/var/lib/vz/template/iso/" .. vmfix.IMAGE, "local-zfs"))
    assert.are.equal("local-zfs:vm-201-disk-0", volid)
    assert.matches("unused0: local-zfs:vm-201-disk-0", vmfix.conf(node, 201), 1, true)
    assert.has_error(function() d:set(201, { { "--evil", "1" } }) end)
    assert.has_error(function() d:set(201, { { "cores", {} } }) end)
  end)
end)
