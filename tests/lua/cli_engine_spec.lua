-- The converging verbs through the binary: a site of site_resources served
-- by a site recipe, on the lxc target with a temporary root.
local exec = require "px.exec"
local fs = require "px.fs"
local json = require "px.json"
local sys = require "px.sys"
local kit = require "testkit"

local NOTE = [[
return {
  type = "note",
  describe = function(want) return "note " .. want.path end,
  inspect = function(ctx, want) local t = ctx.target:read(want.path) return { exists = t ~= nil, text = t } end,
  diff = function(_, want, have)
    if have.text ~= want.text then
      return { { action = have.exists and "update" or "create", field = "text", from = have.text, to = want.text } }
    end
    return {}
  end,
  apply = function(ctx, want)
    if want.sleep then assert(ctx:run({ argv = { "sleep", tostring(want.sleep) } })) end
    if want.fail then return nil, want.fail end
    return ctx.target:write(want.path, want.text) ~= nil
  end,
}
]]

local function make_site(dir, resources)
  kit.write(dir .. "/recipes/note.lua", NOTE)
  fs.mkdir(dir .. "/root")
  kit.write(dir .. "/site/phoenix_hypervisor_config.json", json.encode({
    recipes_dir = dir .. "/recipes",
    target = { type = "lxc", root = dir .. "/root" },
    site_resources = resources,
  }))
  return dir .. "/site"
end

local function note(name, extra)
  local r = { type = "note", name = name, path = "/" .. name .. ".txt", text = name:upper() }
  for k, v in pairs(extra or {}) do r[k] = v end
  return r
end

describe("converging verbs", function()
  local dir, site, lockf
  before_each(function()
    dir = kit.tmpdir()
    site = make_site(dir, { note("a"), note("b", { depends_on = { "note:a" } }), note("c") })
    lockf = dir .. "/phoenix.lock"
  end)
  after_each(function() kit.cleanup(dir) end)

  local function px(args, opts)
    local full = {}
    for _, a in ipairs(args) do full[#full + 1] = a end
    return kit.phoenix(full, opts)
  end

  it("plans, converges, and then has nothing to do", function()
    local r = px({ "plan", "--config-dir", site, "--exit-code" })
    assert.are.equal(3, r.code, r.stderr)
    assert.matches("note:a  note /a.txt\n  + text: A", r.stdout, 1, true)
    assert.matches("Plan: 3 to create, 0 to change, 0 to delete", r.stdout, 1, true)
    r = px({ "converge", "--config-dir", site, "--lock-file", lockf })
    assert.are.equal(0, r.code, r.stderr)
    assert.matches("converge: 0 ok, 3 changed, 0 failed, 0 skipped", r.stdout, 1, true)
    assert.are.equal("B", fs.read(dir .. "/root/b.txt"))
    r = px({ "plan", "--config-dir", site, "--exit-code" })
    assert.are.equal(0, r.code)
    assert.matches("Plan: no changes; 3 in sync.", r.stdout, 1, true)
    r = px({ "converge", "--config-dir", site, "--lock-file", lockf })
    assert.matches("converge: 3 ok, 0 changed", r.stdout, 1, true)
  end)

  it("shows drift in status and fixes it", function()
    px({ "converge", "--config-dir", site, "--lock-file", lockf })
    assert(fs.write(dir .. "/root/c.txt", "edited by hand"))
    fs.remove(dir .. "/root/a.txt")
    local r = px({ "status", "--config-dir", site })
    assert.are.equal(0, r.code)
    assert.matches("note:a    missing", r.stdout, 1, true)
    assert.matches("note:b    in sync", r.stdout, 1, true)
    assert.matches("note:c    drift (1 change)", r.stdout, 1, true)
    r = px({ "plan", "--config-dir", site })
    assert.matches("~ text: edited by hand → C", r.stdout, 1, true)
    px({ "converge", "--config-dir", site, "--lock-file", lockf })
    assert.are.equal("C", fs.read(dir .. "/root/c.txt"))
  end)

  it("gives the same plan JSON on every run", function()
    local a = px({ "plan", "--config-dir", site, "--json" })
    local b = px({ "plan", "--config-dir", site, "--json" })
    assert.are.equal(0, a.code, a.stderr)
    assert.are.equal(a.stdout, b.stdout)
    local doc = assert(json.decode(a.stdout))
    assert.are.equal("phoenix.plan/1", doc.format)
    assert.are.equal(3, doc.summary.pending)
    assert.are.same({ "note:a", "note:b", "note:c" }, { doc.resources[1].id, doc.resources[2].id, doc.resources[3].id })
  end)

  it("exits 1 when a resource fails, skipping its dependents", function()
    site = make_site(dir, { note("a", { fail = "no space left" }), note("b", { depends_on = { "note:a" } }), note("c") })
    local r = px({ "converge", "--config-dir", site, "--lock-file", lockf })
    assert.are.equal(1, r.code)
    assert.matches("note:a: failed: no space left", r.stdout, 1, true)
    assert.matches("note:b: skipped (dependency note:a failed)", r.stdout, 1, true)
    assert.matches("converge: 0 ok, 1 changed, 1 failed, 1 skipped", r.stdout, 1, true)
  end)

  it("refuses a second run while the first holds the lock, naming it", function()
    site = make_site(dir, { note("slow", { sleep = 3 }) })
    local first = assert(exec.spawn({ argv = { kit.bin, "converge", "--config-dir", site, "--lock-file", lockf },
      inherit_env = true }))
    local t0 = sys.monotonic()
    while not (fs.read(lockf) or ""):find("pid=") and sys.monotonic() - t0 < 10 do sys.sleep(0.05) end
    local r = px({ "converge", "--config-dir", site, "--lock-file", lockf, "--lock-timeout", "0" })
    assert.are.equal(2, r.code)
    assert.matches("another phoenix run holds " .. lockf .. " (pid " .. first.pid, r.stderr, 1, true)
    assert.matches("phoenix converge", r.stderr, 1, true)
    assert.are.equal(0, first:wait().code)
  end)

  it("stops starting work on Ctrl-C and exits 130", function()
    site = make_site(dir, { note("a", { sleep = 1 }), note("b"), note("c") })
    local h = assert(exec.spawn({ argv = { kit.bin, "converge", "--config-dir", site, "--lock-file", lockf, "-j", "1" },
      inherit_env = true }))
    sys.sleep(0.5)
    exec.run({ argv = { "kill", "-INT", tostring(h.pid) } })
    local r = h:wait()
    assert.are.equal(130, r.code, r.stdout .. r.stderr)
    assert.matches("interrupted: no new work will start", r.stderr, 1, true)
    assert.matches("note:a: changed", r.stdout, 1, true)
    assert.matches("note:b: skipped (interrupted)", r.stdout, 1, true)
    assert.are.equal("A", fs.read(dir .. "/root/a.txt"))
    assert.is_nil(fs.read(dir .. "/root/b.txt"))
  end)

  it("lets --recipes override the site's recipe for a type, and says so", function()
    kit.write(dir .. "/other/note.lua", NOTE:gsub("want.text %) ~= nil", "want.text:lower()) ~= nil"))
    local r = px({ "--list-recipes", "--config-dir", site, "--recipes", dir .. "/other" })
    assert.are.equal(0, r.code, r.stderr)
    assert.matches(dir .. "/other/note.lua (site, overrides " .. dir .. "/recipes/note.lua)", r.stdout, 1, true)
    assert.truthy(("\n" .. r.stdout):find("\nnote ", 1, true), r.stdout) -- a line of its own, among the built-ins
  end)

  it("stops before touching anything when the site files are wrong", function()
    kit.write(site .. "/phoenix_lxc_configs.json", '{"lxc_configs": {"101": {"memory_mb": "lots"}}}')
    local r = px({ "converge", "--config-dir", site, "--lock-file", lockf })
    assert.are.equal(2, r.code)
    assert.matches("phoenix_lxc_configs.json: /lxc_configs/101/memory_mb", r.stderr, 1, true)
    assert.matches("nothing was done", r.stderr, 1, true)
    assert.is_nil(fs.read(dir .. "/root/a.txt"))
  end)

  it("puts the engine at the REPL prompt", function()
    local r = px({ "repl", "--no-history", "--config-dir", site, "--lock-file", lockf }, {
      stdin = 'site().by_id["note:b"].deps[1]\nplan("note:a")\nconverge("note:b")\ninspect("note:b")\ndiff("note:c")\n',
    })
    assert.are.equal(0, r.code, r.stderr)
    assert.matches('"note:a"', r.stdout, 1, true)
    assert.matches("note:a  note /a.txt\n  + text: A", r.stdout, 1, true)
    assert.matches("converge: 0 ok, 2 changed", r.stdout, 1, true)
    assert.matches('{ exists = true, text = "B" }', r.stdout, 1, true)
    assert.matches('action = "create"', r.stdout, 1, true)
    assert.is_nil(fs.read(dir .. "/root/c.txt"))
    r = px({ "repl", "--no-history", "--config-dir", site }, { stdin = 'inspect("note:zz")\n' })
    assert.are.equal(1, r.code)
    assert.matches("no resource note:zz", r.stderr, 1, true)
  end)

  it("rejects unknown options and targets with exit 2", function()
    local r = px({ "converge", "--config-dir", site, "--bogus" })
    assert.are.equal(2, r.code)
    assert.matches("unknown option --bogus", r.stderr, 1, true)
    r = px({ "plan", "--config-dir", site, "--target", "esxi" })
    assert.are.equal(2, r.code)
    assert.matches("unknown target type 'esxi'", r.stderr, 1, true)
    r = px({ "plan", "--config-dir", site, "--target-opt", "rooot=/x" })
    assert.matches("unknown option 'rooot' for the lxc target", r.stderr, 1, true)
  end)
end)
