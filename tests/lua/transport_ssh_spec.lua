-- phoenix.transport.ssh without an sshd: quoting, option checks, and what
-- run() makes of ssh's outcomes, with a fake `ssh` program (a script that
-- records its argv and runs the remote command string with the local sh,
-- as a remote login shell would). The real thing: tests/integration/ssh_transport_spec.lua.
local ssh = require "phoenix.transport.ssh"
local util = require "phoenix.util"
local exec = require "px.exec"
local fs = require "px.fs"

local function tmpdir()
  local r = assert(exec.run { argv = { "mktemp", "-d", "/tmp/phoenix-sshunit.XXXXXX" } })
  return (r.stdout:gsub("%s+$", ""))
end

describe("util.sh_quote", function()
  it("gives the shell back every word byte for byte", function()
    local words = { "$(touch /tmp/phoenix-sh-quote-pwned)", "`id`", ";", "a'b", "''", "'", "\"", "x\ny", "*", "",
                    "-n", "\\", "$HOME", "\t", "é\255", "!", "~", "a b" }
    local q = {}
    for i, w in ipairs(words) do q[i] = util.sh_quote(w) end
    local r = assert(exec.run { argv = { "sh", "-c", "printf '%s\\0' " .. table.concat(q, " ") } })
    assert.equals(0, r.code)
    assert.equals(table.concat(words, "\0") .. "\0", r.stdout)
    assert.is_false(fs.exists("/tmp/phoenix-sh-quote-pwned"))
    assert.equals("'it'\\''s'", util.sh_quote("it's"))
    assert.equals("'12'", util.sh_quote(12))
  end)

  it("raises on a NUL byte or a non-string", function()
    assert.has_error(function() util.sh_quote("a\0b") end)
    assert.has_error(function() util.sh_quote({}) end)
    assert.has_error(function() util.sh_quote(nil) end)
  end)
end)

describe("ssh.new", function()
  it("accepts user@host and describes itself", function()
    local t = assert(ssh.new { host = "admin@node1.example", port = 2222 })
    assert.equals("ssh admin@node1.example:2222", t:describe())
    t:close()
    t = assert(ssh.new { host = "node1" })
    assert.equals("ssh root@node1:22", t:describe())
    local d = t.dir
    assert.equals(tonumber("700", 8), fs.stat(d).mode)
    t:close()
    assert.is_false(fs.exists(d))
  end)

  it("raises on unknown keys, returns nil, msg for bad values", function()
    assert.has_error(function() ssh.new { host = "h", hots = "x" } end, "ssh.new: unknown option 'hots'")
    assert.has_error(function() ssh.new "h" end)
    local cases = {
      { {}, "host is required" },
      { { host = "-oProxyCommand=touch /tmp/x" }, "bad host name" },
      { { host = "a b" }, "bad host name" },
      { { host = "h;id" }, "bad host name" },
      { { host = "a@b@c" }, "bad host name" },
      { { host = "u@h", user = "v" }, "names user" },
      { { host = "h", user = "-l" }, "bad user name" },
      { { host = "h", port = 0 }, "port must be" },
      { { host = "h", port = "22" }, "port must be" },
      { { host = "h", port = 70000 }, "port must be" },
      { { host = "h", identity = "/nonexistent/key" }, "identity /nonexistent/key: No such file or directory" },
      { { host = "h", known_hosts = "/etc" }, "known_hosts /etc: not a regular file" },
      { { host = "h", connect_timeout_s = 0 }, "connect_timeout_s" },
      { { host = "h", path_prefix = "rel/bin" }, "path_prefix" },
      { { host = "h", path_prefix = "/a:/b" }, "path_prefix" },
      { { host = "h", ssh = "" }, "ssh must be" },
    }
    for _, c in ipairs(cases) do
      local t, err = ssh.new(c[1])
      assert.is_nil(t)
      assert.matches("^ssh%.new: ", err)
      assert.is_truthy(err:find(c[2], 1, true), err)
    end
  end)
end)

describe("ssh run with a fake ssh", function()
  local dir, log
  local function fake(body)
    local path = dir .. "/fake-ssh-" .. tostring(math.random(1e9))
    assert(fs.write(path, "#!/bin/sh\nprintf '%s\\n' \"$@\" > " .. log .. "\n" .. body, { mode = "0755" }))
    return path
  end
  -- Runs the last argument (the remote command string) as a login shell would.
  local RUN = 'for last; do :; done\nexec sh -c "$last"\n'

  setup(function()
    dir = tmpdir()
    log = dir .. "/argv"
  end)
  teardown(function() exec.run { argv = { "rm", "-rf", dir } } end)

  it("passes the connection options, `--` and the host, then one quoted command", function()
    local key = dir .. "/key"
    assert(fs.write(key, "not read by the fake\n"))
    local t = assert(ssh.new { host = "h", user = "u", port = 2200, ssh = fake(RUN), identity = key,
                               known_hosts = key, connect_timeout_s = 3 })
    local r = assert(t:run { argv = { "echo", "a b" } })
    assert.equals("a b\n", r.stdout)
    assert.equals("", r.stderr)
    local argv = {}
    for line in assert(fs.read(log)):gmatch("[^\n]+") do argv[#argv + 1] = line end
    local text = table.concat(argv, " ")
    for _, want in ipairs { "-o BatchMode=yes", "-o ConnectTimeout=3", "-o ControlMaster=auto",
                            "-o ControlPath=" .. t.dir .. "/cm", "-o ControlPersist=60", "-p 2200", "-l u",
                            "-i " .. key, "-o StrictHostKeyChecking=yes", "-o UserKnownHostsFile=" .. key } do
      assert.is_truthy(text:find(want, 1, true), want)
    end
    local dd
    for i, a in ipairs(argv) do if a == "--" then dd = i end end
    assert.equals("h", argv[dd + 1])
    assert.equals("'exec' 'sh' '-c' ", argv[dd + 2]:sub(1, 17))
    t:close()
  end)

  it("ssh's own failure (255, the command never started) is nil, msg naming the transport", function()
    local refuse = "echo 'ssh: connect to host h port 22: Connection refused' >&2\nexit 255\n"
    local t = assert(ssh.new { host = "h", ssh = fake(refuse) })
    local r, err = t:run { argv = { "true" } }
    assert.is_nil(r)
    assert.equals("ssh root@h:22: ssh: connect to host h port 22: Connection refused", err)
    local ok, ferr = t:write("/x", "data")
    assert.is_nil(ok)
    assert.equals("ssh root@h:22: ssh: connect to host h port 22: Connection refused", ferr)
    t:close()
  end)

  it("a connection lost after the start is nil, msg, not an exit code", function()
    -- Keeps only the first stderr line (the start marker), then fails like ssh.
    local lose = 'for last; do :; done\nsh -c "$last" 2>&1 >/dev/null | head -n 1 >&2\n'
                 .. 'echo "Connection closed by remote host" >&2\nexit 255\n'
    local t = assert(ssh.new { host = "h", ssh = fake(lose) })
    local r, err, res = t:run { argv = { "sh", "-c", "echo hi >&2" } }
    assert.is_nil(r)
    assert.equals("ssh root@h:22: `sh -c 'echo hi >&2'` ended without an exit status (connection lost?): "
                  .. "Connection closed by remote host", err)
    assert.equals(255, res.code)
    t:close()
  end)

  it("raises on wrong use of run", function()
    local t = assert(ssh.new { host = "h", ssh = fake(RUN) })
    assert.has_error(function() t:run { argv = { "true" }, inherit_env = true } end,
                     "run: unknown option 'inherit_env'")
    assert.has_error(function() t:run { argv = {} } end)
    assert.has_error(function() t:run { argv = { "a=b" } } end)
    assert.has_error(function() t:run { argv = { "x", "a\0b" } } end)
    assert.has_error(function() t:run { argv = { "true" }, env = { ["A-B"] = "x" } } end)
    assert.has_error(function() t:run { argv = { "true" }, env = { ["A=B"] = "x" } } end)
    assert.has_error(function() t:run { argv = { "true" }, timeout_ms = 0 } end)
    assert.has_error(function() t:run { argv = { "true" }, stdin = 5 } end)
    t:close()
    assert.has_error(function() t:run { argv = { "true" } } end)
  end)

  it("closes on <close> and garbage collection", function()
    local d
    do
      local t <close> = assert(ssh.new { host = "h", ssh = fake(RUN) })
      d = t.dir
      assert.is_true(fs.exists(d))
    end
    assert.is_false(fs.exists(d))
    local t = assert(ssh.new { host = "h", ssh = fake(RUN) })
    d = t.dir
    t = nil -- luacheck: ignore
    collectgarbage()
    collectgarbage()
    assert.is_false(fs.exists(d))
  end)
end)
