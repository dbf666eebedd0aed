local lock = require "phoenix.lock"
local exec = require "px.exec"
local sys = require "px.sys"
local kit = require "testkit"

describe("run lock", function()
  local dir
  before_each(function() dir = kit.tmpdir() end)
  after_each(function() kit.cleanup(dir) end)

  it("makes a second process wait, then names the holder", function()
    local path = dir .. "/phoenix.lock"
    kit.write(dir .. "/hold.lua", [[
      local lock = require "phoenix.lock"
      local l = assert(lock.acquire(arg[1], 0, "phoenix converge"))
      io.stdout:write("held\n") io.stdout:flush()
      require("px.sys").sleep(2)
      l:unlock()
    ]])
    local holder = assert(exec.spawn({ argv = { kit.bin, "lua", dir .. "/hold.lua", path }, inherit_env = true }))
    -- wait until the holder says it has the lock
    local t0 = sys.monotonic()
    while not (require("px.fs").read(path) or ""):find("pid=") and sys.monotonic() - t0 < 5 do sys.sleep(0.02) end
    local l, err = lock.acquire(path, 0.3, "phoenix setup")
    assert.is_nil(l)
    assert.matches("another phoenix run holds " .. path, err, 1, true)
    assert.matches("pid " .. holder.pid, err, 1, true)
    assert.matches("phoenix converge", err, 1, true)
    assert.matches("waited 0.3 s", err, 1, true)
    -- with a long enough timeout the second run gets it once the first ends
    local l2 = assert(lock.acquire(path, 10, "phoenix setup"))
    assert.is_true(sys.monotonic() - t0 >= 1.5)
    l2:unlock()
    holder:wait()
  end)
end)
