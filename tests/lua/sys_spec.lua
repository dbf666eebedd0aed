-- px.sys: process facts and the interrupt trap (src/px_sys.c).
local sys = require "px.sys"
local exec = require "px.exec"
local proc = require "proc"

describe("px.sys", function()
  it("has clocks that move", function()
    local m0, t0 = sys.monotonic(), sys.time()
    sys.sleep(0.05)
    local dm = sys.monotonic() - m0
    assert.is_true(dm >= 0.045 and dm < 1, "slept " .. dm)
    assert.is_true(sys.time() > 1.6e9 and sys.time() >= t0)
    assert.has_error(function() sys.sleep(-1) end)
    assert.has_error(function() sys.sleep(1e300) end)
  end)

  it("reads the environment", function()
    assert.are.equal(proc.bin, sys.getenv("PHOENIX_BIN"))
    assert.is_nil(sys.getenv("PX_SURELY_NOT_SET_123"))
    assert.are.equal(proc.bin, sys.environ().PHOENIX_BIN)
  end)

  it("knows this process", function()
    local r = assert(exec.run{ argv = { "sh", "-c", "echo $PPID" } })
    assert.are.equal(sys.pid(), tonumber(r.stdout))
    r = assert(exec.run{ argv = { "id", "-u" } })
    assert.are.equal(sys.uid(), tonumber(r.stdout))
    r = assert(exec.run{ argv = { "hostname" } })
    assert.are.equal(r.stdout:gsub("\n$", ""), sys.hostname())
    assert.is_true(sys.process_alive(sys.pid()))
    assert.has_error(function() sys.process_alive(0) end)
  end)

  it("tells whether a stream is a terminal", function()
    -- under ctest nothing is a terminal; through `script` stdout would be
    local script = proc.tmpdir()
    local f = proc.lua_script(script, "t.lua", 'print(require("px.sys").isatty("stdout"), require("px.sys").isatty(0))')
    local r = proc.phoenix({ "lua", f }, { stdin = "" })
    assert.are.equal("false\tfalse\n", r.stdout)
    assert.has_error(function() sys.isatty("stdfoo") end)
    proc.cleanup(script)
  end)

  it("resolves real paths", function()
    assert.are.equal("/", sys.realpath("/tmp/.."))
    local v, err = sys.realpath("/nonexistent-px/x")
    assert.is_nil(v)
    assert.are.equal("/nonexistent-px/x: No such file or directory", err)
  end)

  it("traps the first interrupt, ends sleep early; the second one kills", function()
    local dir = proc.tmpdir()
    local f = proc.lua_script(dir, "trap.lua", [[
      local sys, exec = require "px.sys", require "px.exec"
      assert(sys.trap_interrupt())
      assert(sys.interrupted() == nil)
      local me = tostring(sys.pid())
      local k = assert(exec.spawn{ argv = { "sh", "-c", 'sleep 0.2; kill -TERM "$1"', "sh", me } })
      local t0 = sys.monotonic()
      sys.sleep(10)
      -- the 10 s sleep must end early, soon after the signal (0.2 s)
      local early = sys.monotonic() - t0 < 5 and "early" or "late"
      io.stdout:write(sys.interrupted(), " ", early, "\n")
      io.stdout:flush()
      k:wait()
      exec.run{ argv = { "kill", "-INT", me } }
      sys.sleep(5)
      print("not reached")
    ]])
    local t0 = sys.monotonic()
    local r = proc.phoenix({ "lua", f })
    assert.is_true(sys.monotonic() - t0 < 4)
    assert.are.equal("SIGTERM early\n", r.stdout)
    assert.are.equal("SIGINT", r.signal)
    proc.cleanup(dir)
  end)
end)
