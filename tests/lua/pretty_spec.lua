-- phoenix.pretty: values as a person reads them (lua/phoenix/pretty.lua).
local pretty = require("phoenix.pretty").pretty

describe("phoenix.pretty", function()
  it("prints scalars as Lua would write them", function()
    assert.are.equal("42", pretty(42))
    assert.are.equal("1.5", pretty(1.5))
    assert.are.equal('"a\\nb\\"c"', pretty('a\nb"c'))
    assert.are.equal("nil", pretty(nil))
    assert.are.equal("true", pretty(true))
    assert.truthy(pretty(print):match("^function: "))
  end)

  it("sorts keys: numbers, then strings, then the rest", function()
    assert.are.equal('{ 1, 2, [5] = "e", a = 1, b = 2, ["end"] = 4, ["not id"] = 3 }',
      pretty({ 1, 2, b = 2, a = 1, ["not id"] = 3, ["end"] = 4, [5] = "e" }))
    assert.are.equal("{}", pretty({}))
  end)

  it("indents nested tables that do not fit on a line", function()
    local v = { name = "web", net = { ip = "10.0.0.5/24", gw = "10.0.0.1", bridge = "vmbr0", mtu = 1500 } }
    assert.are.equal(table.concat({
      "{",
      '  name = "web",',
      '  net = { bridge = "vmbr0", gw = "10.0.0.1", ip = "10.0.0.5/24", mtu = 1500 }',
      "}",
    }, "\n"), pretty(v))
  end)

  it("marks cycles instead of looping", function()
    local t = { name = "loop" }
    t.self = t
    t.list = { t }
    local out = pretty(t, { width = 200 })
    local addr = tostring(t)
    assert.are.equal('{ list = { <cycle: ' .. addr .. '> }, name = "loop", self = <cycle: ' .. addr .. '> }', out)
    -- a table met twice but not inside itself is printed twice
    local shared = { 1 }
    assert.are.equal("{ { 1 }, { 1 } }", pretty({ shared, shared }))
  end)

  it("cuts long tables and deep nesting, saying so", function()
    local big = {}
    for i = 1, 250 do big[i] = i end
    local out = pretty(big)
    assert.truthy(out:find("... (150 more)", 1, true))
    assert.is_nil(out:find("101", 1, true))
    assert.are.equal("{ 1, 2, ... (1 more) }", pretty({ 1, 2, 3 }, { max_items = 2 }))
    local deep = { a = { b = { c = { d = 1 } } } }
    assert.are.equal("{ a = { b = {...} } }", pretty(deep, { max_depth = 2 }))
    assert.has_error(function() pretty({}, { maxitems = 1 }) end)
  end)

  it("uses __tostring when a table has one", function()
    local obj = setmetatable({}, { __tostring = function() return "<obj>" end })
    assert.are.equal("{ <obj> }", pretty({ obj }))
  end)
end)
