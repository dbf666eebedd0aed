-- phoenix lua bench/exec_overhead.lua [N] -> mean ms per px.exec.run{argv={"true"}},
-- and this process's CPU ms per call (from /proc/self/stat, 10 ms ticks)
local exec, sys = require "px.exec", require "px.sys"
local n = tonumber(arg[1]) or 500
local spec = { argv = { "/bin/true" } }
exec.run(spec) -- warm up (page cache, PATH lookup)
local function cpu_ms()
  local f = assert(io.open("/proc/self/stat"))
  local rest = f:read("a"):match("%) (.*)$")
  f:close()
  local fields = {}
  for x in rest:gmatch("%S+") do fields[#fields + 1] = x end
  return (tonumber(fields[12]) + tonumber(fields[13])) * 10 -- utime + stime, USER_HZ = 100
end
local c0 = cpu_ms()
local t0 = sys.monotonic()
for _ = 1, n do
  local r = assert(exec.run(spec))
  assert(r.code == 0)
end
print(string.format("%.3f %.3f", (sys.monotonic() - t0) * 1000 / n, (cpu_ms() - c0) / n))
