-- The resource graph: edges from each resource's deps, a stable topological
-- order, cycles named, dependency closures and the independent sets.
local M = {}

-- build(resources [, {external = "ignore"|"error"}]) -> graph | nil, msg
-- With external = "ignore", deps naming resources outside the list are
-- dropped (a scoped run treats them as already converged).
function M.build(resources, opts)
  opts = opts or {}
  local g = { nodes = {}, order = {}, index = {}, deps = {}, rdeps = {} }
  for i, r in ipairs(resources) do
    if g.nodes[r.id] then return nil, "duplicate resource id " .. r.id end
    g.nodes[r.id] = r
    g.order[i] = r.id
    g.index[r.id] = i
    g.rdeps[r.id] = {}
  end
  for _, id in ipairs(g.order) do
    local list, seen = {}, {}
    for _, d in ipairs(g.nodes[id].deps or {}) do
      if not g.nodes[d] then
        if opts.external ~= "ignore" then
          return nil, string.format("%s depends on %s, which is not declared", id, d)
        end
      elseif d == id then
        return nil, "dependency cycle: " .. id .. " -> " .. id
      elseif not seen[d] then
        seen[d] = true
        list[#list + 1] = d
        table.insert(g.rdeps[d], id)
      end
    end
    g.deps[id] = list
  end
  local cycle = M.find_cycle(g)
  if cycle then return nil, "dependency cycle: " .. table.concat(cycle, " -> ") end
  return g
end

-- find_cycle(g) -> { id1, id2, ..., id1 } | nil
function M.find_cycle(g)
  local state, stack = {}, {}
  local function visit(id)
    state[id] = "open"
    stack[#stack + 1] = id
    for _, d in ipairs(g.deps[id]) do
      if state[d] == "open" then
        local cycle, start = {}, nil
        for i, s in ipairs(stack) do
          if s == d then start = i end
          if start then cycle[#cycle + 1] = s end
        end
        cycle[#cycle + 1] = d
        return cycle
      elseif not state[d] then
        local c = visit(d)
        if c then return c end
      end
    end
    stack[#stack] = nil
    state[id] = "done"
  end
  for _, id in ipairs(g.order) do
    if not state[id] then
      local c = visit(id)
      if c then return c end
    end
  end
end

-- topo(g) -> ids, dependencies first; ties keep the input order.
function M.topo(g)
  local indeg, out = {}, {}
  for _, id in ipairs(g.order) do indeg[id] = #g.deps[id] end
  -- a min-heap on input position keeps the order stable and O(n log n)
  local heap = {}
  local function push(id)
    heap[#heap + 1] = id
    local i = #heap
    while i > 1 do
      local p = i // 2
      if g.index[heap[p]] <= g.index[heap[i]] then break end
      heap[p], heap[i] = heap[i], heap[p]
      i = p
    end
  end
  local function pop()
    local top = heap[1]
    heap[1] = heap[#heap]
    heap[#heap] = nil
    local i = 1
    while true do
      local l, r, m = 2 * i, 2 * i + 1, i
      if heap[l] and g.index[heap[l]] < g.index[heap[m]] then m = l end
      if heap[r] and g.index[heap[r]] < g.index[heap[m]] then m = r end
      if m == i then break end
      heap[m], heap[i] = heap[i], heap[m]
      i = m
    end
    return top
  end
  for _, id in ipairs(g.order) do
    if indeg[id] == 0 then push(id) end
  end
  while #heap > 0 do
    local id = pop()
    out[#out + 1] = id
    for _, r in ipairs(g.rdeps[id]) do
      indeg[r] = indeg[r] - 1
      if indeg[r] == 0 then push(r) end
    end
  end
  return out
end

-- closure(g, ids) -> set {id = true} of ids and everything they depend on.
function M.closure(g, ids)
  local set = {}
  local function add(id)
    if set[id] then return end
    set[id] = true
    for _, d in ipairs(g.deps[id] or {}) do add(d) end
  end
  for _, id in ipairs(ids) do add(id) end
  return set
end

-- dependents(g, id) -> list of every resource that depends on id, transitively.
function M.dependents(g, id)
  local out, seen = {}, {}
  local function walk(x)
    for _, r in ipairs(g.rdeps[x] or {}) do
      if not seen[r] then
        seen[r] = true
        out[#out + 1] = r
        walk(r)
      end
    end
  end
  walk(id)
  return out
end

-- levels(g) -> { {ids...}, ... }: sets that may run at once, in order.
function M.levels(g)
  local depth, levels = {}, {}
  for _, id in ipairs(M.topo(g)) do
    local d = 1
    for _, dep in ipairs(g.deps[id]) do
      if depth[dep] + 1 > d then d = depth[dep] + 1 end
    end
    depth[id] = d
    levels[d] = levels[d] or {}
    table.insert(levels[d], id)
  end
  return levels
end

return M
