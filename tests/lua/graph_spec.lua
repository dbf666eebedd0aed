local graph = require "phoenix.graph"

local function R(id, deps) return { id = id, deps = deps or {} } end

describe("graph", function()
  it("orders dependencies first, keeping input order for ties", function()
    local g = assert(graph.build({ R("a", { "c" }), R("b"), R("c"), R("d", { "a", "b" }) }))
    assert.are.same({ "b", "c", "a", "d" }, graph.topo(g))
  end)

  it("names the cycle", function()
    local g, err = graph.build({ R("lxc:1", { "lxc:2" }), R("lxc:2", { "lxc:3" }), R("lxc:3", { "lxc:1" }) })
    assert.is_nil(g)
    assert.are.equal("dependency cycle: lxc:1 -> lxc:2 -> lxc:3 -> lxc:1", err)
    local _, self_err = graph.build({ R("x", { "x" }) })
    assert.are.equal("dependency cycle: x -> x", self_err)
  end)

  it("rejects unknown deps unless told to ignore them", function()
    local g, err = graph.build({ R("a", { "zz" }) })
    assert.is_nil(g)
    assert.matches("a depends on zz", err, 1, true)
    g = assert(graph.build({ R("a", { "zz" }) }, { external = "ignore" }))
    assert.are.same({ "a" }, graph.topo(g))
  end)

  it("computes closures, dependents and levels", function()
    local g = assert(graph.build({ R("a"), R("b", { "a" }), R("c", { "b" }), R("d") }))
    assert.are.same({ a = true, b = true, c = true }, graph.closure(g, { "c" }))
    assert.are.same({ "b", "c" }, graph.dependents(g, "a"))
    assert.are.same({ { "a", "d" }, { "b" }, { "c" } }, graph.levels(g))
  end)

  it("sorts 10,000 resources stably with dependencies first", function()
    local list = {}
    for i = 1, 10000 do list[i] = R("r" .. i, i > 1 and { "r" .. (i // 2) } or {}) end
    local g = assert(graph.build(list))
    local pos = {}
    for i, id in ipairs(graph.topo(g)) do pos[id] = i end
    for i = 2, 10000 do assert.is_true(pos["r" .. (i // 2)] < pos["r" .. i]) end
  end)
end)
