local targets = require "phoenix.target"
local async = require "phoenix.async"
local scheduler = require "phoenix.scheduler"
local kit = require "testkit"

describe("targets", function()
  local dir
  before_each(function() dir = kit.tmpdir() end)
  after_each(function() kit.cleanup(dir) end)

  it("takes the command line over the site file", function()
    local spec = assert(targets.resolve({ type = "pve", node = "a" }, "lxc", { "root=/x" }))
    assert.are.same({ type = "lxc", root = "/x" }, spec)
    spec = assert(targets.resolve({ type = "pve", node = "a" }, nil, { "bin=/b" }))
    assert.are.same({ type = "pve", node = "a", bin = "/b" }, spec)
    local _, err = targets.resolve(nil, "esxi", {})
    assert.matches("unknown target type 'esxi'", err, 1, true)
    _, err = targets.resolve(nil, "lxc", { "novalue" })
    assert.matches("KEY=VALUE", err, 1, true)
  end)

  it("rejects unknown options", function()
    local t, err = targets.open({ type = "lxc", rooot = "/" })
    assert.is_nil(t)
    assert.matches("unknown option 'rooot' for the lxc target (known: bin, cgroup, lxcpath, root)", err, 1, true)
  end)

  it("keeps files under its root and rewrites only on change", function()
    local t = assert(targets.open({ type = "lxc", root = dir }))
    assert.is_true(t:write("/etc/x.conf", "a", { mkdir = true }))
    assert.is_false(t:write("/etc/x.conf", "a"))
    assert.is_true(t:write("/etc/x.conf", "b", { backup = ".phoenix.bak" }))
    assert.are.equal("a", kit and require("px.fs").read(dir .. "/etc/x.conf.phoenix.bak"))
    assert.are.equal("b", t:read("/etc/x.conf"))
    assert.has_error(function() t:read("relative") end)
  end)

  it("resolves tools through bin first", function()
    kit.write(dir .. "/bin/pct", "#!/bin/sh\necho sim-pct \"$@\"\n")
    require("px.exec").run({ argv = { "chmod", "+x", dir .. "/bin/pct" } })
    local t = assert(targets.open({ type = "lxc", bin = dir .. "/bin" }))
    local r = assert(t:run({ argv = { "pct", "list" } }))
    assert.are.equal("sim-pct list\n", r.stdout)
    r = assert(t:run({ argv = { "echo", "real" } }))
    assert.are.equal("real\n", r.stdout)
  end)

  it("computes a batch once for concurrent tasks", function()
    local t = assert(targets.open({ type = "lxc" }))
    local calls, results = 0, {}
    local tasks = {}
    for i = 1, 3 do
      tasks[i] = { id = i, fn = function()
        return t:memo("guests", function()
          calls = calls + 1
          async.run({ argv = { "sleep", "0.2" } })
          return { "101", "102" }
        end)
      end }
    end
    local i = 0
    scheduler.run({ jobs = 3, next = function() i = i + 1 return tasks[i] end,
      done = function(task, ok, v) assert(ok, v) results[task.id] = v end })
    assert.are.equal(1, calls)
    assert.are.same({ "101", "102" }, results[3])
    t:forget("guests")
    t:memo("guests", function() calls = calls + 1 return {} end)
    assert.are.equal(2, calls)
  end)
end)
