-- px.exec: running programs from argv lists (src/px_exec.c).
local exec = require "px.exec"
local sys = require "px.sys"
local fs = require "px.fs"
local proc = require "proc"

local function elapsed_since(t0) return sys.monotonic() - t0 end

describe("px.exec.run", function()
  it("runs a program and reports code, output and duration", function()
    local r = assert(exec.run{ argv = { "sh", "-c", "echo out; echo err >&2; exit 3" } })
    assert.are.equal(3, r.code)
    assert.are.equal("out\n", r.stdout)
    assert.are.equal("err\n", r.stderr)
    assert.is_false(r.timed_out)
    assert.is_false(r.stdout_truncated)
    assert.is_nil(r.signal)
    assert.is_true(r.duration_ms >= 0 and r.duration_ms < 5000)
    assert.is_true(math.type(r.pid) == "integer" and r.pid > 0)
  end)

  it("passes argv untouched: no shell, no word splitting", function()
    local r = assert(exec.run{ argv = { "printf", "[%s]", "a b", "$HOME", "*", "", 42 } })
    assert.are.equal("[a b][$HOME][*][][42]", r.stdout)
  end)

  it("reports death by a signal as 128+N and its name", function()
    local r = assert(exec.run{ argv = { "sh", "-c", "kill -KILL $$" } })
    assert.are.equal(137, r.code)
    assert.are.equal("SIGKILL", r.signal)
  end)

  it("returns nil and 'prog: No such file or directory' for a missing program", function()
    local r, err = exec.run{ argv = { "px-no-such-program-xyz", "a" } }
    assert.is_nil(r)
    assert.are.equal("px-no-such-program-xyz: No such file or directory", err)
    r, err = exec.run{ argv = { "/nonexistent/dir/prog" } }
    assert.is_nil(r)
    assert.are.equal("/nonexistent/dir/prog: No such file or directory", err)
  end)

  it("refuses a directory or a non-executable file as the program", function()
    local dir = proc.tmpdir()
    local r, err = exec.run{ argv = { dir } }
    assert.is_nil(r)
    assert.are.equal(dir .. ": Is a directory", err)
    assert(fs.write(dir .. "/script", "#!/bin/sh\necho hi\n", { mode = "0644" }))
    r, err = exec.run{ argv = { dir .. "/script" } }
    if sys.uid() == 0 then
      -- root may run a file only when some execute bit is set
      assert.is_nil(r)
      assert.are.equal(dir .. "/script: Permission denied", err)
    else
      assert.is_nil(r)
    end
    assert(fs.write(dir .. "/script", "#!/bin/sh\necho hi\n", { mode = "0755" }))
    r = assert(exec.run{ argv = { dir .. "/script" } })
    assert.are.equal("hi\n", r.stdout)
    proc.cleanup(dir)
  end)

  it("runs in cwd, and says which cwd is wrong", function()
    local r = assert(exec.run{ argv = { "pwd" }, cwd = "/tmp" })
    assert.are.equal("/tmp\n", r.stdout)
    local _, err = exec.run{ argv = { "pwd" }, cwd = "/nonexistent-px" }
    assert.are.equal("pwd: cwd /nonexistent-px: No such file or directory", err)
    _, err = exec.run{ argv = { "pwd" }, cwd = "/etc/hostname" }
    assert.are.equal("pwd: cwd /etc/hostname: Not a directory", err)
  end)

  describe("environment", function()
    it("is exactly env= when given", function()
      local r = assert(exec.run{ argv = { "env" }, env = { FOO = "bar", N = 7 } })
      local lines = {}
      for l in r.stdout:gmatch("[^\n]+") do lines[#lines + 1] = l end
      table.sort(lines)
      assert.are.same({ "FOO=bar", "N=7" }, lines)
    end)

    it("is a minimal PATH and LC_ALL=C by default, nothing inherited", function()
      assert.truthy(sys.getenv("PHOENIX_SOURCE_DIR")) -- ctest sets it
      local r = assert(exec.run{ argv = { "env" } })
      local names = {}
      for name in r.stdout:gmatch("([^=\n]+)=[^\n]*") do names[#names + 1] = name end
      table.sort(names)
      assert.are.same({ "LC_ALL", "PATH" }, names)
      assert.truthy(r.stdout:find("LC_ALL=C\n", 1, true))
    end)

    it("inherits only with inherit_env, and env= overrides", function()
      local r = assert(exec.run{ argv = { "env" }, inherit_env = true, env = { PHOENIX_SOURCE_DIR = "over" } })
      assert.truthy(r.stdout:find("PHOENIX_BIN=" .. proc.bin, 1, true))
      assert.truthy(r.stdout:find("\nPHOENIX_SOURCE_DIR=over\n", 1, true) or r.stdout:find("^PHOENIX_SOURCE_DIR=over\n"))
      local _, n = r.stdout:gsub("PHOENIX_SOURCE_DIR=", "")
      assert.are.equal(1, n)
    end)
  end)

  describe("stdin", function()
    it("is delivered", function()
      local r = assert(exec.run{ argv = { "cat" }, stdin = "hello\nworld" })
      assert.are.equal("hello\nworld", r.stdout)
    end)

    it("delivers large input while reading output (no deadlock)", function()
      local big = string.rep("0123456789abcdef", 512 * 1024) -- 8 MiB
      local r = assert(exec.run{ argv = { "cat" }, stdin = big })
      assert.are.equal(#big, #r.stdout)
      assert.is_true(r.stdout == big)
      r = assert(exec.run{ argv = { "sha256sum" }, stdin = big })
      assert.are.equal(fs.sha256(big), r.stdout:match("^(%x+)"))
    end)

    it("copes with a child that never reads it", function()
      local big = string.rep("x", 4 * 1024 * 1024)
      local r = assert(exec.run{ argv = { "true" }, stdin = big })
      assert.are.equal(0, r.code)
      r = assert(exec.run{ argv = { "sh", "-c", "exec 0<&-; sleep 0.1; echo done" }, stdin = big })
      assert.are.equal("done\n", r.stdout)
      r = assert(exec.run{ argv = { "sleep", "30" }, stdin = big, timeout_ms = 200 })
      assert.is_true(r.timed_out)
    end)

    it("is /dev/null when not given", function()
      local r = assert(exec.run{ argv = { "cat" } })
      assert.are.equal("", r.stdout)
    end)
  end)

  describe("output cap", function()
    it("truncates output over max_output and flags it", function()
      local r = assert(exec.run{ argv = { "head", "-c", "100000", "/dev/zero" }, max_output = 1000 })
      assert.are.equal(1000, #r.stdout)
      assert.is_true(r.stdout_truncated)
      assert.is_false(r.stderr_truncated)
      assert.are.equal(0, r.code) -- the child was drained, not blocked
    end)

    it("does not flag output that fits", function()
      local r = assert(exec.run{ argv = { "head", "-c", "1000", "/dev/zero" }, max_output = 1000 })
      assert.are.equal(1000, #r.stdout)
      assert.is_false(r.stdout_truncated)
    end)

    it("caps stderr separately", function()
      local r = assert(exec.run{ argv = { "sh", "-c", "head -c 5000 /dev/zero >&2" }, max_output = 10 })
      assert.are.equal(10, #r.stderr)
      assert.is_true(r.stderr_truncated)
    end)

    it("sends output to /dev/null or our own stream when asked", function()
      local r = assert(exec.run{ argv = { "echo", "x" }, stdout = "null", stderr = "null" })
      assert.are.equal("", r.stdout)
      r = assert(exec.run{ argv = { "true" }, stdout = "inherit" })
      assert.are.equal(0, r.code)
    end)
  end)

  describe("timeouts", function()
    it("kill a sleep 30 within 1 s and report code 124", function()
      local t0 = sys.monotonic()
      local r = assert(exec.run{ argv = { "sleep", "30" }, timeout_ms = 200 })
      local took = elapsed_since(t0)
      assert.is_true(r.timed_out)
      assert.are.equal(124, r.code)
      assert.are.equal("SIGTERM", r.signal)
      assert.is_true(took >= 0.19 and took < 1, "took " .. took)
      assert.is_false(proc.alive(r.pid))
    end)

    it("leave no process of the group behind (grandchild)", function()
      local t0 = sys.monotonic()
      local r = assert(exec.run{ argv = { "sh", "-c", "sleep 30 & echo $!; wait" }, timeout_ms = 200 })
      assert.is_true(elapsed_since(t0) < 1)
      assert.is_true(r.timed_out)
      local grandchild = tonumber(r.stdout:match("%d+"))
      assert.is_truthy(grandchild)
      assert.are.same({}, proc.settle(r.pid))
      assert.is_false(proc.alive(grandchild))
    end)

    it("kill a grandchild that ignores TERM once the leader is gone", function()
      local t0 = sys.monotonic()
      local r = assert(exec.run{
        argv = { "sh", "-c", "(trap '' TERM; sleep 30; :) & echo $!; wait" },
        timeout_ms = 200,
      })
      assert.is_true(elapsed_since(t0) < 1)
      local grandchild = tonumber(r.stdout:match("%d+"))
      assert.are.same({}, proc.settle(r.pid))
      assert.is_false(proc.alive(grandchild))
    end)

    it("escalate to KILL after kill_grace_ms when TERM is ignored", function()
      local t0 = sys.monotonic()
      local r = assert(exec.run{
        argv = { "sh", "-c", "trap '' TERM; sleep 30 & wait; wait" },
        timeout_ms = 200, kill_grace_ms = 300,
      })
      local took = elapsed_since(t0)
      assert.is_true(r.timed_out)
      assert.are.equal(124, r.code)
      assert.are.equal("SIGKILL", r.signal)
      assert.is_true(took >= 0.45 and took < 1.5, "took " .. took)
      assert.are.same({}, proc.settle(r.pid))
    end)

    it("do not wait for a daemon that keeps the pipes open", function()
      local t0 = sys.monotonic()
      local r = assert(exec.run{ argv = { "sh", "-c", "sleep 2 & echo started" } })
      assert.is_true(elapsed_since(t0) < 1.5)
      assert.are.equal("started\n", r.stdout)
      assert.is_false(r.timed_out)
    end)
  end)

  describe("wrong use raises", function()
    local cases = {
      { "no options", nil },
      { "unknown option", { argv = { "true" }, bogus = 1 } },
      { "argv missing", {} },
      { "argv empty", { argv = {} } },
      { "argv item not a string", { argv = { "echo", {} } } },
      { "empty program", { argv = { "" } } },
      { "env not a table", { argv = { "true" }, env = "A=1" } },
      { "env name with =", { argv = { "true" }, env = { ["A=B"] = "1" } } },
      { "bad timeout", { argv = { "true" }, timeout_ms = -5 } },
      { "bad stdout mode", { argv = { "true" }, stdout = "file" } },
      { "stdin not a string", { argv = { "true" }, stdin = 5 } },
    }
    for _, c in ipairs(cases) do
      it(c[1], function()
        assert.has_error(function() exec.run(c[2]) end)
      end)
    end
  end)
end)

describe("px.exec.spawn and wait_any", function()
  it("moves the other handles along when one in the list has already finished", function()
    local done = assert(exec.spawn{ argv = { "true" } })
    done:wait()
    local other = assert(exec.spawn{ argv = { "sh", "-c", "sleep 0.2; echo late" } })
    local t0 = require("px.sys").monotonic()
    local calls = 0
    while other:result() == nil and calls < 2000 do
      local ready = exec.wait_any({ done, other }, 1000)
      calls = calls + 1
      assert.are.equal(1, ready[1])
      require("px.sys").sleep(0.001)
    end
    assert.is_truthy(other:result(), "the other process never finished")
    assert.are.equal("late\n", other:result().stdout)
    assert.is_true(require("px.sys").monotonic() - t0 < 2)
  end)

  it("gives a handle with pid, done, wait and result", function()
    local h = assert(exec.spawn{ argv = { "sh", "-c", "sleep 0.1; echo ok" } })
    assert.is_true(h.pid > 0)
    assert.is_false(h:done())
    assert.is_nil(h:result())
    local r = h:wait()
    assert.are.equal("ok\n", r.stdout)
    assert.is_true(h:done())
    assert.are.equal("ok\n", h:result().stdout)
    assert.truthy(tostring(h):find("finished", 1, true))
  end)

  it("wait(timeout) returns nil, 'timeout' while running", function()
    local h <close> = assert(exec.spawn{ argv = { "sleep", "5" } })
    local r, err = h:wait(50)
    assert.is_nil(r)
    assert.are.equal("timeout", err)
  end)

  it("kill() signals the process group", function()
    local h = assert(exec.spawn{ argv = { "sh", "-c", "sleep 30 & wait" } })
    sys.sleep(0.1)
    assert.is_true(h:kill())
    local r = h:wait()
    assert.are.equal("SIGTERM", r.signal)
    assert.are.equal(143, r.code)
    assert.are.same({}, proc.settle(h.pid))
    h:kill() -- after the end: harmless
  end)

  it("<close> kills and reaps a running process; close twice is harmless", function()
    local pid
    do
      local h <close> = assert(exec.spawn{ argv = { "sleep", "30" } })
      pid = h.pid
      assert.is_true(proc.alive(pid))
    end
    assert.is_nil(proc.stat_of(pid)) -- reaped: not even a zombie
    local h = assert(exec.spawn{ argv = { "true" } })
    h:close()
    h:close()
    assert.is_true(h:done())
  end)

  it("wait_any returns the finished ones in the order they finish", function()
    local hs = {}
    for i, d in ipairs{ 0.3, 0.05, 0.15 } do
      hs[i] = assert(exec.spawn{ argv = { "sleep", tostring(d) } })
    end
    local order, pending = {}, { 1, 2, 3 }
    while #pending > 0 do
      local list = {}
      for _, i in ipairs(pending) do list[#list + 1] = hs[i] end
      local done, interrupted = exec.wait_any(list, 5000)
      assert.is_false(interrupted)
      assert.is_true(#done >= 1)
      local keep = {}
      local finished = {}
      for _, k in ipairs(done) do finished[pending[k]] = true; order[#order + 1] = pending[k] end
      for _, i in ipairs(pending) do if not finished[i] then keep[#keep + 1] = i end end
      pending = keep
    end
    assert.are.same({ 2, 3, 1 }, order)
    for _, h in ipairs(hs) do assert.are.equal(0, h:result().code) end
  end)

  it("wait_any returns at once for handles already finished", function()
    local h = assert(exec.spawn{ argv = { "true" } })
    h:wait()
    local long <close> = assert(exec.spawn{ argv = { "sleep", "5" } })
    local t0 = sys.monotonic()
    local done = exec.wait_any({ long, h }, 5000)
    assert.are.same({ 2 }, done)
    assert.is_true(elapsed_since(t0) < 0.5)
  end)

  it("wait_any times out with an empty list", function()
    local h <close> = assert(exec.spawn{ argv = { "sleep", "5" } })
    local t0 = sys.monotonic()
    local done, interrupted = exec.wait_any({ h }, 100)
    assert.are.same({}, done)
    assert.is_false(interrupted)
    local took = elapsed_since(t0)
    assert.is_true(took >= 0.09 and took < 1, "took " .. took)
  end)

  it("runs many processes at once", function()
    local t0 = sys.monotonic()
    local hs = {}
    for i = 1, 20 do hs[i] = assert(exec.spawn{ argv = { "sleep", "0.3" } }) end
    local left = 20
    while left > 0 do
      local list = {}
      for _, h in ipairs(hs) do if not h:done() then list[#list + 1] = h end end
      if #list == 0 then break end
      exec.wait_any(list, 5000)
      left = #list
    end
    for _, h in ipairs(hs) do assert.are.equal(0, h:result().code) end
    -- 20 x 0.3 s in series would be 6 s; together they take about 0.3 s.
    assert.is_true(elapsed_since(t0) < 3, "took " .. elapsed_since(t0))
  end)

  it("wait_any rejects what is not a waitable", function()
    assert.has_error(function() exec.wait_any({ {} }, 0) end)
    assert.has_error(function() exec.wait_any("x", 0) end)
  end)

  describe("when a signal ends phoenix", function()
    -- A phoenix process starts `sleep 30` (in a group of its own), prints
    -- its pid and waits; we signal phoenix and look for the sleep.
    local function start(dir, trap)
      local script = proc.lua_script(dir, "parent.lua", [[
        local exec, sys, fs = require "px.exec", require "px.sys", require "px.fs"
        if arg[1] == "trap" then sys.trap_interrupt() end
        local h = assert(exec.spawn{ argv = { "sleep", "30" } })
        assert(fs.write(arg[2], tostring(h.pid)))
        while true do exec.wait_any({ h }, 10000) end
      ]])
      local pidfile = dir .. "/child.pid"
      local parent = assert(exec.spawn{ argv = { proc.bin, "lua", script, trap and "trap" or "-", pidfile } })
      local t0 = sys.monotonic()
      while not fs.exists(pidfile) do
        assert(sys.monotonic() - t0 < 10, "the parent did not start its child")
        sys.sleep(0.01)
      end
      return parent, tonumber(fs.read(pidfile))
    end

    it("its children get the signal too", function()
      local dir = proc.tmpdir()
      local parent, child = start(dir, false)
      assert.is_true(proc.alive(child))
      parent:kill("TERM")
      local r = parent:wait(5000)
      assert.are.equal("SIGTERM", r.signal)
      assert.are.same({}, proc.settle(child))
      proc.cleanup(dir)
    end)

    it("with the trap, the first signal spares them and the second does not", function()
      local dir = proc.tmpdir()
      local parent, child = start(dir, true)
      parent:kill("INT")
      assert.is_nil(parent:wait(300)) -- trapped: still running
      assert.is_true(proc.alive(child))
      parent:kill("INT")
      local r = parent:wait(5000)
      assert.are.equal("SIGINT", r.signal)
      assert.are.same({}, proc.settle(child))
      proc.cleanup(dir)
    end)
  end)

  it("wakes wait_any on an interrupt (px.sys.trap_interrupt)", function()
    local dir = proc.tmpdir()
    local script = proc.lua_script(dir, "intr.lua", [[
      local exec, sys = require "px.exec", require "px.sys"
      assert(sys.trap_interrupt())
      local h <close> = assert(exec.spawn{ argv = { "sleep", "10" } })
      local killer = assert(exec.spawn{ argv = { "sh", "-c", 'sleep 0.2; kill -INT "$1"', "sh", tostring(sys.pid()) } })
      local t0 = sys.monotonic()
      local done, interrupted = exec.wait_any({ h }, 8000)
      print(#done, interrupted, sys.interrupted(), string.format("%.2f", sys.monotonic() - t0))
      killer:wait()
    ]])
    local r = proc.phoenix({ "lua", script })
    assert.are.equal(0, r.code, r.stderr)
    local n, intr, name, took = r.stdout:match("^(%d+)\t(%a+)\t(%S+)\t([%d.]+)")
    assert.are.equal("0", n)
    assert.are.equal("true", intr)
    assert.are.equal("SIGINT", name)
    assert.is_true(tonumber(took) < 2, "took " .. took)
    proc.cleanup(dir)
  end)
end)
