-- phoenix lua bench/concurrent.lua [N] [SECONDS] -> wall seconds for N
-- concurrent `sleep SECONDS` started with spawn and collected with wait_any.
local exec, sys = require "px.exec", require "px.sys"
local n = tonumber(arg[1]) or 100
local secs = arg[2] or "0.2"
local t0 = sys.monotonic()
local running = {}
for i = 1, n do running[i] = assert(exec.spawn{ argv = { "sleep", secs } }) end
while #running > 0 do
  local done = exec.wait_any(running, 10000)
  local finished = {}
  for _, k in ipairs(done) do finished[k] = true end
  local left = {}
  for k, h in ipairs(running) do
    if finished[k] then assert(h:result().code == 0) else left[#left + 1] = h end
  end
  running = left
end
print(string.format("%.3f", sys.monotonic() - t0))
