-- phoenix lua bench/exec_overhead.lua [N] -> mean ms per px.exec.run{argv={"true"}}
local exec, sys = require "px.exec", require "px.sys"
local n = tonumber(arg[1]) or 500
local spec = { argv = { "/bin/true" } }
exec.run(spec) -- warm up (page cache, PATH lookup)
local t0 = sys.monotonic()
for _ = 1, n do
  local r = assert(exec.run(spec))
  assert(r.code == 0)
end
print(string.format("%.3f", (sys.monotonic() - t0) * 1000 / n))
