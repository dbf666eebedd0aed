-- phoenix.transport.ssh against a real sshd on 127.0.0.1 (tests/helpers/sshd.lua).
-- The "remote" host is this machine, so every remote effect is checked
-- locally with px.fs / px.sys.
local ssh = require "phoenix.transport.ssh"
local async = require "phoenix.async"
local exec = require "px.exec"
local fs = require "px.fs"
local sys = require "px.sys"
local servers = require "servers"
local sshd = require "sshd"

local missing = sshd.missing()

describe("ssh transport against sshd", function()
  if missing then
    print("SKIP ssh_transport_spec: " .. missing)
    it("needs root and openssh-server", function() pending(missing) end)
    return
  end

  local dir, keys, server, tr, work
  local function new(o)
    local opts = { host = "127.0.0.1", port = server.port, identity = keys.client_key,
                   known_hosts = server.known_hosts }
    for k, v in pairs(o or {}) do opts[k] = v end
    return assert(ssh.new(opts))
  end

  setup(function()
    dir = servers.tmpdir("sshd")
    keys = sshd.keys(dir)
    server = sshd.start(dir, keys)
    work = dir .. "/work"
    assert(fs.mkdir(work))
    tr = new()
  end)
  teardown(function()
    if tr then tr:close() end
    if server then server.stop() end
    if dir then servers.run { "rm", "-rf", dir } end
  end)

  describe("run", function()
    it("returns code, stdout, stderr; feeds stdin; sets env", function()
      assert.equals("ssh root@127.0.0.1:" .. server.port, tr:describe())
      local r = assert(tr:run { argv = { "sh", "-c", "cat; echo to-err >&2; exit 3" }, stdin = "in\0put\n" })
      assert.equals(3, r.code)
      assert.equals("in\0put\n", r.stdout)
      assert.equals("to-err\n", r.stderr)
      assert.is_false(r.timed_out)
      r = assert(tr:run { argv = { "sh", "-c", 'printf "%s|%s|%s" "$A" "$B_2" "$LC_ALL"' },
                          env = { A = "x y'z", B_2 = "$(id)" } })
      assert.equals("x y'z|$(id)|C", r.stdout)
      assert.equals("", r.stderr)
    end)

    it("hands hostile argv words over byte-exact and runs none of them", function()
      local marker = work .. "/pwned"
      local words = { "$(touch " .. marker .. ")", "`touch " .. marker .. "`", ";", "a;touch " .. marker, "x\ny\n",
                      "'", "\"", "it's", "*", "", "-n", "--", "\\", "$HOME", "a b\tc", "\255\1", "&&", "|",
                      ">" .. marker }
      local argv = { "printf", "%s\\0" }
      for _, w in ipairs(words) do argv[#argv + 1] = w end
      local r = assert(tr:run { argv = argv })
      assert.equals(0, r.code)
      assert.equals(table.concat(words, "\0") .. "\0", r.stdout)
      assert.is_false(fs.exists(marker))
    end)

    it("runs in cwd and finds tools under path_prefix", function()
      local r = assert(tr:run { argv = { "pwd" }, cwd = work })
      assert.equals(work .. "\n", r.stdout)
      local bin = work .. "/sim-bin"
      assert(fs.mkdir(bin))
      assert(fs.write(bin .. "/px-sim-tool", "#!/bin/sh\necho sim \"$@\"\n", { mode = "0755" }))
      local sim = new { path_prefix = bin }
      r = assert(sim:run { argv = { "px-sim-tool", "a b" } })
      assert.equals("sim a b\n", r.stdout)
      sim:close()
      local ok, err = tr:run { argv = { "px-sim-tool" } }
      assert.is_nil(ok)
      assert.equals(tr:describe() .. ": px-sim-tool: No such file or directory", err)
      ok, err = tr:run { argv = { "pwd" }, cwd = work .. "/nope" }
      assert.is_nil(ok)
      assert.matches("cwd " .. work .. "/nope", err, 1, true)
    end)

    it("checks ok_codes when given", function()
      local r, err, res = tr:run { argv = { "sh", "-c", "echo bad >&2; exit 2" }, ok_codes = { 0, 1 } }
      assert.is_nil(r)
      assert.equals(tr:describe() .. ": `sh -c 'echo bad >&2; exit 2'` exited 2: bad", err)
      assert.equals(2, res.code)
      r = assert(tr:run { argv = { "sh", "-c", "exit 1" }, ok_codes = { 0, 1 } })
      assert.equals(1, r.code)
    end)

    it("on timeout ends the remote command and what it started (TERM, then KILL)", function()
      local pids = work .. "/pids"
      -- Both ignore TERM (an ignored signal stays ignored in the child).
      local script = "trap '' TERM; sleep 60 & echo $$ $! > " .. pids .. "; wait; wait"
      local t0 = sys.monotonic()
      local r = assert(tr:run { argv = { "sh", "-c", script }, timeout_ms = 1500, kill_grace_ms = 300 })
      assert.is_true(r.timed_out)
      assert.equals(124, r.code)
      local text = assert(fs.read(pids))
      local p1, p2 = text:match("^(%d+) (%d+)")
      local deadline = sys.monotonic() + 5
      while (sys.process_alive(tonumber(p1)) or sys.process_alive(tonumber(p2))) and sys.monotonic() < deadline do
        sys.sleep(0.05)
      end
      assert.is_false(sys.process_alive(tonumber(p1)))
      assert.is_false(sys.process_alive(tonumber(p2)))
      assert.is_true(sys.monotonic() - t0 < 30)
      -- No pid file of the wrapper is left in the remote /tmp.
      for _, name in ipairs(assert(fs.list("/tmp"))) do
        assert.is_nil(name:match("^%.phoenix%-ssh%-") and fs.read("/tmp/" .. name) ~= "0" and name or nil)
      end
    end)

    it("yields inside a scheduler task", function()
      local co = coroutine.create(function() return tr:run { argv = { "echo", "task" } } end)
      async.mark_task(co)
      local ok, req = coroutine.resume(co)
      assert.is_true(ok)
      assert.is_table(req)
      assert.is_not_nil(req.wait)
      req.wait:wait()
      local ok2, r = coroutine.resume(co)
      assert.is_true(ok2)
      assert.equals("task\n", r.stdout)
    end)

    it("serves parallel scheduler tasks on a fresh transport, clean output each", function()
      local scheduler = require "phoenix.scheduler"
      local t = new()
      local queue, results = {}, {}
      for i = 1, 4 do
        queue[i] = { id = i, fn = function()
          return t:run { argv = { "sh", "-c", "sleep 0.3; echo out-$0; echo err-$0 >&2", tostring(i) } }
        end }
      end
      local n = 0
      assert.is_true(scheduler.run {
        jobs = 4,
        next = function() n = n + 1; return queue[n] end,
        done = function(task, ok, r, err) results[task.id] = { ok = ok, r = r, err = err } end,
      })
      for i = 1, 4 do
        assert.is_true(results[i].ok)
        assert.is_table(results[i].r, results[i].err)
        assert.equals("out-" .. i .. "\n", results[i].r.stdout)
        assert.equals("err-" .. i .. "\n", results[i].r.stderr)
      end
      assert.equals(0, assert(t:run { argv = { "true" } }).code)
      t:close()
    end)

    it("reuses one connection (ControlMaster) until close", function()
      local function conn(t)
        return assert(t:run { argv = { "sh", "-c", 'echo "$SSH_CONNECTION"' } }).stdout
      end
      local c1 = conn(tr)
      assert.equals(c1, conn(tr))
      assert.equals("socket", assert(fs.stat(tr.control)).type)
      assert.equals(tonumber("700", 8), assert(fs.stat(tr.dir)).mode)
      local other = new()
      local c3 = conn(other)
      assert.not_equals(c1, c3) -- its own master: another client port
      local control, pdir = other.control, other.dir
      assert.is_true(other:close())
      assert.is_true(other:close())
      assert.is_false(fs.exists(control))
      assert.is_false(fs.exists(pdir))
      assert.has_error(function() other:run { argv = { "true" } } end)
    end)
  end)

  describe("ssh failures", function()
    it("connection refused: nil and a message naming the transport", function()
      local port = servers.free_ports(1)[1]
      local t = new { port = port, connect_timeout_s = 5 }
      local r, err = t:run { argv = { "true" } }
      assert.is_nil(r)
      assert.matches("^ssh root@127%.0%.0%.1:" .. port .. ": .*Connection refused", err)
      local ok, ferr = t:read("/etc/hostname")
      assert.is_nil(ok)
      assert.matches("^ssh root@127%.0%.0%.1:" .. port .. ": ", ferr)
      t:close()
    end)

    it("wrong host key: refused, named", function()
      local other = dir .. "/other_host"
      servers.run { "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", other }
      local kh = dir .. "/wrong_known_hosts"
      assert(fs.write(kh, string.format("[127.0.0.1]:%d %s\n", server.port,
        assert(fs.read(other .. ".pub")):match("^(%S+ %S+)"))))
      local t = new { known_hosts = kh }
      local r, err = t:run { argv = { "true" } }
      assert.is_nil(r)
      assert.matches("^ssh root@127%.0%.0%.1:%d+: .*Host key verification failed", err)
      t:close()
    end)

    it("wrong client key: refused, named", function()
      local other = dir .. "/other_client"
      servers.run { "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", other }
      local t = new { identity = other }
      local r, err = t:run { argv = { "true" } }
      assert.is_nil(r)
      assert.matches("^ssh root@127%.0%.0%.1:%d+: .*Permission denied", err)
      t:close()
    end)

    it("a remote exit code 255 is a result, not an ssh failure", function()
      local r = assert(tr:run { argv = { "sh", "-c", "exit 255" } })
      assert.equals(255, r.code)
    end)
  end)

  describe("files", function()
    it("read/write round trip, binary-safe; missing files as px.fs says", function()
      local p = work .. "/bin.dat"
      local bytes = {}
      for i = 0, 255 do bytes[#bytes + 1] = string.char(i) end
      local data = table.concat(bytes):rep(300)
      assert.is_true(tr:write(p, data))
      assert.equals(data, assert(fs.read(p)))
      assert.equals(data, tr:read(p))
      assert.equals(tonumber("644", 8), fs.stat(p).mode)
      local missing_p = work .. "/nope/none"
      assert.same({ fs.read(missing_p) }, { tr:read(missing_p) })
      assert.same({ fs.read(work) }, { tr:read(work) })
      assert.same({ fs.stat(missing_p) }, { tr:stat(missing_p) })
      assert.same({ fs.list(missing_p) }, { tr:list(missing_p) })
      assert.same({ fs.list(p) }, { tr:list(p) })
      assert.same({ fs.write(missing_p, "x") }, { tr:write(missing_p, "x") })
      assert.same({ fs.write(work, "x") }, { tr:write(work, "x") })
      assert.is_true(tr:write(work .. "/empty", ""))
      assert.equals("", tr:read(work .. "/empty"))
    end)

    it("write keeps mode and owner, applies mode/uid/gid, backs up, leaves no temp file", function()
      local d = work .. "/w"
      assert.is_true(tr:mkdir(d))
      local p = d .. "/conf"
      assert.is_true(tr:write(p, "one\n", { mode = "0640", uid = 1, gid = 2 }))
      local st = assert(fs.stat(p))
      assert.equals(tonumber("640", 8), st.mode)
      assert.equals(1, st.uid)
      assert.equals(2, st.gid)
      assert.is_true(tr:write(p, "two\n", { backup = ".old" }))
      st = assert(fs.stat(p))
      assert.same({ tonumber("640", 8), 1, 2 }, { st.mode, st.uid, st.gid })
      assert.equals("two\n", fs.read(p))
      assert.equals("one\n", fs.read(p .. ".old"))
      assert.is_true(tr:write(p, "three\n", { mode = tonumber("4750", 8), backup = ".old" }))
      assert.equals(tonumber("4750", 8), fs.stat(p).mode)
      assert.equals("two\n", fs.read(p .. ".old"))
      assert.same({ "conf", "conf.old" }, tr:list(d))
      assert.same(fs.list(d), tr:list(d))
    end)

    it("writes through a symlink; a failed write leaves the old file and no temp file", function()
      local d = work .. "/link"
      assert(fs.mkdir(d))
      assert(fs.write(d .. "/target", "old"))
      servers.run { "ln", "-s", "target", d .. "/link" }
      assert.is_true(tr:write(d .. "/link", "new"))
      assert.equals("link", fs.stat(d .. "/link", { follow = false }).type)
      assert.equals("new", fs.read(d .. "/target"))
      servers.run { "mkdir", d .. "/sub", d .. "/target.bak" }
      local ok, err = tr:write(d .. "/sub", "x")
      assert.is_nil(ok)
      assert.equals(d .. "/sub: Is a directory", err)
      -- The backup step fails (its name is taken by a directory): the old
      -- file stays and the temp file is gone.
      ok, err = tr:write(d .. "/link", "newer", { backup = ".bak" })
      assert.is_nil(ok)
      assert.equals(d .. "/link: Is a directory", err)
      assert.equals("new", fs.read(d .. "/target"))
      assert.same({ "link", "sub", "target", "target.bak" }, tr:list(d))
    end)

    it("stat matches px.fs; exists; list with odd names; mkdir; remove", function()
      local d = work .. "/odd"
      assert.is_true(tr:mkdir(d .. "/a/b", { mode = "0700" }))
      assert.is_true(tr:mkdir(d .. "/a/b"))
      assert.equals(tonumber("700", 8), fs.stat(d .. "/a/b").mode)
      local ok, err = tr:mkdir(d .. "/a/b", { parents = false })
      assert.is_nil(ok)
      assert.equals(d .. "/a/b: File exists", err)
      for _, name in ipairs { "-dash", "new\nline", "sp ace", "q'uote", "*" } do
        assert.is_true(tr:write(d .. "/" .. name, name))
      end
      assert.same(fs.list(d), tr:list(d))
      assert.equals(6, #tr:list(d))
      for _, name in ipairs { "a", "-dash", "new\nline" } do
        local want, got = fs.stat(d .. "/" .. name), tr:stat(d .. "/" .. name)
        assert.is_true(math.abs(want.mtime - got.mtime) < 1e-6)
        want.mtime, got.mtime = nil, nil
        assert.same(want, got)
      end
      servers.run { "ln", "-s", "a", d .. "/ln" }
      assert.equals("link", tr:stat(d .. "/ln", { follow = false }).type)
      assert.equals("dir", tr:stat(d .. "/ln").type)
      assert.same(fs.list(d .. "/ln"), tr:list(d .. "/ln"))
      assert.is_true(tr:exists(d .. "/-dash"))
      assert.is_false(tr:exists(d .. "/nope"))
      assert.is_true(tr:remove(d .. "/ln"))
      assert.is_true(fs.exists(d .. "/a"))
      assert.is_true(tr:remove(d .. "/-dash"))
      assert.is_true(tr:remove(d .. "/-dash"))
      assert.is_false(fs.exists(d .. "/-dash"))
      ok, err = tr:remove(d .. "/a")
      assert.is_nil(ok)
      assert.same({ fs.remove(d .. "/a") }, { ok, err })
      assert.is_true(tr:remove(d .. "/a/b"))
      assert.is_false(fs.exists(d .. "/a/b"))
    end)

    it("raises on wrong use", function()
      assert.has_error(function() tr:write(work .. "/x", "d", { mod = 1 }) end)
      assert.has_error(function() tr:write(work .. "/x", "d", { mode = "9" }) end)
      assert.has_error(function() tr:write(work .. "/x", 5) end)
      assert.has_error(function() tr:read("") end)
      assert.has_error(function() tr:stat(work, { follw = false }) end)
      assert.has_error(function() tr:mkdir(work, { mode = 99999 }) end)
    end)
  end)

  it("keeps no remote wrapper process behind", function()
    local r = assert(exec.run { argv = { "pgrep", "-f", "phoenix-ssh pxs" } })
    assert.equals("", r.stdout)
  end)
end)
