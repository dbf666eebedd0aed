-- Costs of px.http, px.git and px.gpu calls on this machine.
-- Run: ./build/phoenix lua bench/net.lua   (needs python3 and git; uses the test helpers)
local here = arg[0]:match("^(.*)/[^/]*$") or "."
package.path = here .. "/../tests/helpers/?.lua;" .. package.path

local exec = require "px.exec"
local git = require "px.git"
local gpu = require "px.gpu"
local http = require "px.http"
local sys = require "px.sys"
local fake = require "fake_sysfs"
local gitrepo = require "gitrepo"
local servers = require "servers"

local function time(n, fn)
  local t0 = sys.monotonic()
  for i = 1, n do fn(i) end
  return (sys.monotonic() - t0) / n * 1000
end

local function report(what, ms) print(string.format("%-52s %9.3f ms", what, ms)) end

local srv = servers.start_backend()
report("http.request GET (python backend), per call", time(200, function()
  assert(assert(http.request { url = srv.url .. "/json" }).status == 200)
end))
for _, n in ipairs { 10, 50 } do
  local t0 = sys.monotonic()
  local pending = {}
  for i = 1, n do pending[i] = assert(http.start { url = srv.url .. "/delay/1000" }) end
  while #pending > 0 do
    local idx = exec.wait_any(pending, 10000)
    for k = #idx, 1, -1 do assert(table.remove(pending, idx[k]):result()) end
  end
  report(string.format("%d x 1 s requests at once, wall time", n), (sys.monotonic() - t0) * 1000)
end
report("http.start + cancel, per request", time(200, function()
  local h = assert(http.start { url = srv.url .. "/delay/5000" })
  h:cancel()
  h:close()
end))
srv.stop()

local base = servers.tmpdir("bench-net")
local repo = gitrepo.new(base, "stack")
for i = 1, 20 do repo:commit({ ["f" .. i] = string.rep("x", 1000 * i) }, "c" .. i) end
report("git.resolve (local path, 1 branch), per call", time(100, function() assert(git.resolve(repo.dir, "main")) end))
local cache = base .. "/cache.git"
local t0 = sys.monotonic()
assert(git.fetch(repo.dir, cache, "main"))
report("git.fetch first (clone of 20 commits)", (sys.monotonic() - t0) * 1000)
report("git.fetch unchanged ref (no download), per call", time(100, function()
  local _, downloaded = assert(git.fetch(repo.dir, cache, "main"))
  assert(downloaded == false)
end))
local head = git.resolve(repo.dir)
report("git.read_file at a commit, per call", time(1000, function() assert(git.read_file(cache, head, "f7")) end))

local root = fake.build(base .. "/sys", { devices = fake.two_gpus(), iommu = true, cmdline = "intel_iommu=on",
                                          dev = { "nvidia0", "nvidia1", "nvidiactl" }, version = fake.version_text })
report("gpu.scan (7 PCI devices, fake tree), per call", time(1000, function() assert(gpu.scan { root = root }) end))
servers.run { "rm", "-rf", base }
