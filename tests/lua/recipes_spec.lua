local recipes = require "phoenix.recipes"
local kit = require "testkit"

local GOOD = [[
local util = require "phoenix.util"
return {
  type = "%s",
  inspect = function() return {} end,
  diff = function() return {} end,
  apply = function() return true end,
}
]]

describe("recipe registry", function()
  local dir
  before_each(function() dir = kit.tmpdir() end)
  after_each(function() kit.cleanup(dir) end)

  it("loads built-ins and lets a site recipe override one", function()
    kit.write(dir .. "/builtin/lxc.lua", GOOD:format("lxc"))
    kit.write(dir .. "/builtin/vm.lua", GOOD:format("vm"))
    kit.write(dir .. "/site/lxc.lua", GOOD:format("lxc"))
    kit.write(dir .. "/site/backup_job.lua", GOOD:format("backup_job"))
    local reg = assert(recipes.load({ dirs = {
      { dir = dir .. "/builtin", origin = "built-in" },
      { dir = dir .. "/site", origin = "site", required = true },
    } }))
    assert.are.equal(dir .. "/site/lxc.lua", reg:file("lxc"))
    assert.are.equal(dir .. "/builtin/vm.lua", reg:file("vm"))
    local list = reg:list()
    assert.are.same({ "backup_job", "lxc", "vm" }, { list[1].type, list[2].type, list[3].type })
    assert.are.equal(dir .. "/builtin/lxc.lua", list[2].overrides)
    assert.are.equal("site", list[2].origin)
  end)

  local cases = {
    { "missing field", "return { type = 'bad', inspect = function() end, diff = function() end }", "missing field 'apply'" },
    { "wrong type", "return { type = 'bad', inspect = 1, diff = function() end, apply = function() end }",
      "field 'inspect' must be a function, not a number" },
    { "unknown field", "return { type = 'bad', inspect = function() end, diff = function() end, apply = function() end, aply = 1 }",
      "unknown field 'aply'" },
    { "name mismatch", (GOOD:format("other")), "type 'other' does not match the file name (expected 'bad')" },
    { "not a table", "return 42", "must return a table, returned number" },
    { "global", "helper = 1\n" .. GOOD:format("bad"), "assigns the global 'helper'" },
    { "syntax", "return {", "expected" },
  }
  for _, c in ipairs(cases) do
    it("says which file and field is wrong: " .. c[1], function()
      kit.write(dir .. "/r/bad.lua", c[2])
      local reg, err = recipes.load({ dirs = { { dir = dir .. "/r", origin = "site", required = true } } })
      assert.is_nil(reg)
      assert.matches(dir .. "/r/bad.lua", err, 1, true)
      assert.matches(c[3], err, 1, true)
    end)
  end

  it("requires a named site directory to exist", function()
    local reg, err = recipes.load({ dirs = { { dir = dir .. "/nope", origin = "site", required = true } } })
    assert.is_nil(reg)
    assert.matches("nope: No such file or directory", err, 1, true)
  end)
end)
