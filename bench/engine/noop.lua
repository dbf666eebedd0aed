-- Engine overhead: a no-op converge of N in-sync resources whose inspect
-- costs nothing. Usage: phoenix lua bench/engine/noop.lua [N] [jobs]
local engine = require "phoenix.engine"
local recipes = require "phoenix.recipes"
local targets = require "phoenix.target"
local sys = require "px.sys"

local n = tonumber(arg[1]) or 1000
local jobs = tonumber(arg[2]) or 4
local reg = recipes.load({ dirs = {} })
reg:add({
  type = "noop",
  inspect = function(_, want) return { exists = true, value = want.value } end,
  diff = function(_, want, have) if have.value ~= want.value then return { { action = "update" } } end return {} end,
  apply = function() return true end,
})
local resources = {}
for i = 1, n do
  resources[i] = { id = "noop:" .. i, type = "noop", name = tostring(i), want = { value = i },
    deps = i > 10 and { "noop:" .. (i // 10) } or {}, scope = "host" }
end
local target = assert(targets.open({ type = "lxc" }))
local best = math.huge
for _ = 1, 5 do
  local t0 = sys.monotonic()
  local rep = assert(engine.run({ resources = resources, recipes = reg, target = target, mode = "apply", jobs = jobs }))
  local dt = sys.monotonic() - t0
  assert(rep.counts.ok == n, "not all in sync")
  if dt < best then best = dt end
end
io.stdout:write(string.format("engine no-op converge: %d resources, -j %d: best of 5 %.1f ms; Lua heap %.1f MB\n",
  n, jobs, best * 1000, collectgarbage("count") / 1024))
