local engine = require "phoenix.engine"
local recipes = require "phoenix.recipes"
local report = require "phoenix.report"
local targets = require "phoenix.target"
local exec = require "px.exec"
local json = require "px.json"
local sys = require "px.sys"
local kit = require "testkit"

local function setup()
  local dir = kit.tmpdir()
  local target = assert(targets.open({ type = "lxc", root = dir }))
  local reg = assert(recipes.load({ dirs = {} }))
  reg:add(kit.file_recipe("testfile"))
  return dir, target, reg
end

local function run(target, reg, resources, o)
  local opts = { resources = resources, recipes = reg, target = target, mode = "apply", jobs = 4 }
  for k, v in pairs(o or {}) do opts[k] = v end
  return assert(engine.run(opts))
end

-- A recipe whose resource is always missing and whose apply is fn(ctx).
local function action_recipe(type_, fn)
  return {
    type = type_,
    inspect = function() return { exists = false } end,
    diff = function() return { { action = "create" } } end,
    apply = function(ctx) fn(ctx) return true end,
  }
end

describe("engine", function()
  local dir, target, reg
  before_each(function() dir, target, reg = setup() end)
  after_each(function() kit.cleanup(dir) end)

  it("converges in dependency order and a second run changes nothing", function()
    local r = {
      kit.resource("testfile:c", { path = "/c", content = "C", log = "/order" }, { "testfile:b" }),
      kit.resource("testfile:b", { path = "/b", content = "B", log = "/order" }, { "testfile:a" }),
      kit.resource("testfile:a", { path = "/a", content = "A", log = "/order" }),
    }
    local rep = run(target, reg, r)
    assert.are.equal(3, rep.counts.changed)
    assert.are.equal("testfile:a\ntestfile:b\ntestfile:c\n", target:read("/order"))
    assert.are.same({ "testfile:a", "testfile:b", "testfile:c" }, rep.order)
    local again = run(target, reg, r)
    assert.are.equal(3, again.counts.ok)
    assert.are.equal(0, again.change_count)
  end)

  it("runs independent resources at once up to -j", function()
    local r = {
      kit.resource("testfile:x", { path = "/x", content = "x", sleep = 1 }),
      kit.resource("testfile:y", { path = "/y", content = "y", sleep = 1 }),
    }
    local t0 = sys.monotonic()
    run(target, reg, r, { jobs = 2 })
    local two = sys.monotonic() - t0
    kit.cleanup(dir)
    dir, target, reg = setup()
    t0 = sys.monotonic()
    run(target, reg, r, { jobs = 1 })
    local one = sys.monotonic() - t0
    assert.is_true(two < 1.6, "-j 2 took " .. two)
    assert.is_true(one >= 1.9, "-j 1 took " .. one)
  end)

  it("skips what depends on a failure and goes on with the rest", function()
    local r = {
      kit.resource("testfile:bad", { path = "/bad", content = "x", fail = "disk on fire" }),
      kit.resource("testfile:child", { path = "/child", content = "x" }, { "testfile:bad" }),
      kit.resource("testfile:grandchild", { path = "/gc", content = "x" }, { "testfile:child" }),
      kit.resource("testfile:other", { path = "/other", content = "x" }),
    }
    local rep = run(target, reg, r)
    assert.are.equal("failed", rep.results["testfile:bad"].status)
    assert.are.equal("disk on fire", rep.results["testfile:bad"].error)
    assert.are.equal("skipped", rep.results["testfile:child"].status)
    assert.matches("dependency testfile:bad failed", rep.results["testfile:child"].reason, 1, true)
    assert.are.equal("skipped", rep.results["testfile:grandchild"].status)
    assert.are.equal("changed", rep.results["testfile:other"].status)
    assert.is_nil(target:read("/child"))
  end)

  it("holds disruptive changes unless allowed", function()
    target:write("/d", "old")
    local r = { kit.resource("testfile:d", { path = "/d", content = "new", disruptive = "restart" }) }
    local rep = run(target, reg, r)
    assert.are.equal("ok", rep.results["testfile:d"].status)
    assert.are.equal(1, #rep.results["testfile:d"].held)
    assert.matches("allow%-restart", rep.results["testfile:d"].held[1].held)
    assert.are.equal("old", target:read("/d"))
    rep = run(target, reg, r, { allow_restart = true })
    assert.are.equal("changed", rep.results["testfile:d"].status)
    assert.are.equal("new", target:read("/d"))
  end)

  it("fails a resource whose apply did not converge", function()
    local rep = run(target, reg, { kit.resource("testfile:b", { path = "/b", content = "x", broken = true }) })
    assert.are.equal("failed", rep.results["testfile:b"].status)
    assert.matches("did not converge: create content", rep.results["testfile:b"].error, 1, true)
  end)

  it("plans without changing anything, in a stable JSON form", function()
    target:write("/p", "old")
    local r = {
      kit.resource("testfile:p", { path = "/p", content = "new" }),
      kit.resource("testfile:q", { path = "/q", content = "q" }, { "testfile:p" }),
    }
    local rep1 = run(target, reg, r, { mode = "plan" })
    local rep2 = run(target, reg, r, { mode = "plan" })
    assert.are.equal("old", target:read("/p"))
    assert.is_nil(target:read("/q"))
    local j1 = report.to_json(rep1)
    assert.are.equal(j1, report.to_json(rep2))
    local doc = json.decode(j1)
    assert.are.equal("phoenix.plan/1", doc.format)
    assert.are.equal("pending", doc.resources[1].status)
    assert.are.equal("update", doc.resources[1].changes[1].action)
    assert.are.equal("old", doc.resources[1].changes[1].from)
    assert.are.equal(2, doc.summary.pending)
    local text = report.plan_text(rep1)
    assert.matches("~ content: old → new", text, 1, true)
    assert.matches("+ content: q", text, 1, true)
    assert.matches("Plan: 1 to create, 1 to change, 0 to delete", text, 1, true)
  end)

  it("shows secrets as (secret) in plans", function()
    reg:add({
      type = "secretthing",
      inspect = function() return { exists = true } end,
      diff = function()
        return { { action = "update", field = "password", from = "hunter2old", to = "hunter2new", secret = true } }
      end,
      apply = function() return true end,
    })
    local rep = run(target, reg, { kit.resource("secretthing:x", {}) }, { mode = "plan" })
    local text = report.plan_text(rep) .. report.to_json(rep)
    assert.is_nil(text:find("hunter2", 1, true))
    assert.matches("password: (secret) → (secret)", text, 1, true)
  end)

  it("fails a resource that runs past its time limit, and kills its process", function()
    local r = {
      kit.resource("testfile:slow", { path = "/s", content = "x", sleep = 31 }),
      kit.resource("testfile:quick", { path = "/q", content = "x" }),
    }
    local t0 = sys.monotonic()
    local rep = run(target, reg, r, { resource_timeout = 1 })
    assert.is_true(sys.monotonic() - t0 < 3)
    assert.are.equal("failed", rep.results["testfile:slow"].status)
    assert.matches("timed out after 1 s", rep.results["testfile:slow"].error, 1, true)
    assert.are.equal("changed", rep.results["testfile:quick"].status)
    collectgarbage()
    local ps = exec.run({ argv = { "pgrep", "-x", "-f", "sleep 31" } })
    assert.are.equal(1, ps.code, "a sleep 31 is still running: " .. ps.stdout)
  end)

  it("stops starting work on an interrupt and lets running steps finish", function()
    reg:add(action_recipe("interrupter", function(ctx)
      assert(ctx:run({ argv = { "kill", "-INT", tostring(sys.pid()) } }))
      assert(ctx:run({ argv = { "sleep", "0.3" } }))
      ctx.target:write("/finished", "yes")
    end))
    reg:add(action_recipe("later", function(ctx) ctx.target:write("/later", "ran") end))
    sys.trap_interrupt()
    local rep = run(target, reg, { kit.resource("interrupter:a", {}), kit.resource("later:b", {}) }, { jobs = 1 })
    assert.is_true(rep.interrupted)
    assert.are.equal("yes", target:read("/finished"))
    assert.is_nil(target:read("/later"))
    assert.are.equal("skipped", rep.results["later:b"].status)
    assert.are.equal("interrupted", rep.results["later:b"].reason)
  end)

  it("reports recipe bugs with a traceback and ctx:fail without one", function()
    reg:add({
      type = "buggy",
      inspect = function() local t = nil return t.x end,
      diff = function() return {} end,
      apply = function() return true end,
    })
    reg:add({
      type = "failing",
      inspect = function(ctx) ctx:fail("no such pool 'tank'") end,
      diff = function() return {} end,
      apply = function() return true end,
    })
    local rep = run(target, reg, { kit.resource("buggy:x", {}), kit.resource("failing:y", {}) })
    assert.are.equal("failed", rep.results["buggy:x"].status)
    assert.matches("attempt to index", rep.results["buggy:x"].error)
    assert.truthy(rep.results["buggy:x"].traceback)
    assert.are.equal("inspect: no such pool 'tank'", rep.results["failing:y"].error)
    assert.is_nil(rep.results["failing:y"].traceback)
  end)

  it("rejects a diff that returns malformed changes", function()
    reg:add({
      type = "sloppy",
      inspect = function() return {} end,
      diff = function() return { { action = "modify", field = "x" } } end,
      apply = function() return true end,
    })
    local rep = run(target, reg, { kit.resource("sloppy:x", {}) })
    assert.matches("has action modify", rep.results["sloppy:x"].error, 1, true)
  end)

  it("fails resources whose type has no recipe", function()
    local rep = run(target, reg, { kit.resource("nosuch:x", {}) })
    assert.are.equal("no recipe for resource type 'nosuch'", rep.results["nosuch:x"].error)
  end)

  it("names the command, exit code and stderr tail when ctx:run fails", function()
    local err
    reg:add(action_recipe("cmdfail", function(ctx)
      local _, e = ctx:run({ argv = { "sh", "-c", "echo one >&2; echo two >&2; exit 3" } })
      err = e
    end))
    run(target, reg, { kit.resource("cmdfail:x", {}) })
    assert.are.equal("`sh -c 'echo one >&2; echo two >&2; exit 3'` exited 3: one\ntwo", err)
  end)
end)
