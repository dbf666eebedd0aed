-- px.fs: files, written atomically, and locks (src/px_fs.c).
local fs = require "px.fs"
local exec = require "px.exec"
local sys = require "px.sys"
local proc = require "proc"

local is_root = sys.uid() == 0

describe("px.fs", function()
  local dir
  before_each(function() dir = proc.tmpdir() end)
  after_each(function() proc.cleanup(dir) end)

  describe("read and write", function()
    it("round-trips any bytes", function()
      local data = "a\0b\255\n" .. string.rep("z", 100000)
      assert.is_true(fs.write(dir .. "/f", data))
      assert.are.equal(data, fs.read(dir .. "/f"))
      assert.is_true(fs.write(dir .. "/empty", ""))
      assert.are.equal("", fs.read(dir .. "/empty"))
    end)

    it("returns nil, 'path: reason' on failure", function()
      local v, err = fs.read(dir .. "/missing")
      assert.is_nil(v)
      assert.are.equal(dir .. "/missing: No such file or directory", err)
      v, err = fs.read(dir)
      assert.is_nil(v)
      assert.are.equal(dir .. ": Is a directory", err)
      v, err = fs.write(dir .. "/no/such/dir/f", "x")
      assert.is_nil(v)
      assert.are.equal(dir .. "/no/such/dir/f: No such file or directory", err)
      assert(fs.mkdir(dir .. "/d"))
      v, err = fs.write(dir .. "/d", "x")
      assert.is_nil(v)
      assert.are.equal(dir .. "/d: Is a directory", err)
    end)

    it("leaves no temporary file behind", function()
      for i = 1, 5 do assert(fs.write(dir .. "/f", tostring(i))) end
      assert.is_nil(fs.write(dir .. "/d/x", "y"))
      assert.are.same({ "f" }, fs.list(dir))
    end)

    it("creates new files 0644 and keeps an existing file's mode", function()
      assert(fs.write(dir .. "/f", "1"))
      assert.are.equal(tonumber("644", 8), fs.stat(dir .. "/f").mode)
      assert(fs.write(dir .. "/f", "2", { mode = "0600" }))
      assert.are.equal(tonumber("600", 8), fs.stat(dir .. "/f").mode)
      assert(fs.write(dir .. "/f", "3"))
      assert.are.equal(tonumber("600", 8), fs.stat(dir .. "/f").mode)
      assert(fs.write(dir .. "/f", "4", { mode = tonumber("640", 8) }))
      assert.are.equal(tonumber("640", 8), fs.stat(dir .. "/f").mode)
    end)

    it("sets and keeps the owner (as root)", function()
      if not is_root then
        print("skipped: owner changes need root")
        return
      end
      assert(fs.write(dir .. "/f", "1", { uid = 1234, gid = 2345 }))
      local st = fs.stat(dir .. "/f")
      assert.are.equal(1234, st.uid)
      assert.are.equal(2345, st.gid)
      assert(fs.write(dir .. "/f", "2"))
      st = fs.stat(dir .. "/f")
      assert.are.equal(1234, st.uid)
      assert.are.equal(2345, st.gid)
      -- chown clears set-ID bits, so the mode must be set after the owner
      assert(fs.write(dir .. "/s", "x", { mode = "4755", uid = 1234 }))
      assert.are.equal(tonumber("4755", 8), fs.stat(dir .. "/s").mode)
    end)

    it("keeps the previous file with backup = suffix", function()
      assert(fs.write(dir .. "/f", "old"))
      assert(fs.write(dir .. "/f", "new", { backup = ".bak" }))
      assert.are.equal("new", fs.read(dir .. "/f"))
      assert.are.equal("old", fs.read(dir .. "/f.bak"))
      assert(fs.write(dir .. "/f", "newer", { backup = ".bak" }))
      assert.are.equal("new", fs.read(dir .. "/f.bak"))
      assert(fs.write(dir .. "/g", "first", { backup = ".bak" })) -- nothing to keep
      assert.is_false(fs.exists(dir .. "/g.bak"))
    end)

    it("writes through a symlink and keeps the link", function()
      assert(fs.write(dir .. "/target", "old"))
      assert(exec.run{ argv = { "ln", "-s", "target", dir .. "/link" } })
      assert(fs.write(dir .. "/link", "new"))
      assert.are.equal("link", fs.stat(dir .. "/link", { follow = false }).type)
      assert.are.equal("new", fs.read(dir .. "/target"))
    end)

    it("raises on wrong use", function()
      assert.has_error(function() fs.write(dir .. "/f", "x", { mdoe = 1 }) end)
      assert.has_error(function() fs.write(dir .. "/f", "x", { mode = "rw-" }) end)
      assert.has_error(function() fs.write(dir .. "/f", "x", { mode = 99999 }) end)
      assert.has_error(function() fs.write(dir .. "/f", "x", { backup = "" }) end)
      assert.has_error(function() fs.write(dir .. "/f", "x", { backup = "/x" }) end)
      assert.has_error(function() fs.write(dir .. "/", "x") end)
      assert.has_error(function() fs.write(dir .. "/f") end)
    end)

    it("never shows a concurrent reader a partial file", function()
      -- A reader process reads the file in a loop while we rewrite it 40
      -- times with 2 MiB of one letter, alternating the letter. Every read
      -- must see 2 MiB of a single letter.
      local path = dir .. "/big"
      local size = 2 * 1024 * 1024
      assert(fs.write(path, string.rep("A", size)))
      local reader = proc.lua_script(dir, "reader.lua", [[
        local fs = require "px.fs"
        local path, size, stop = arg[1], tonumber(arg[2]), arg[3]
        local reads, bad = 0, 0
        while not fs.exists(stop) do
          local d = assert(fs.read(path))
          reads = reads + 1
          local c = d:sub(1, 1)
          if #d ~= size or d ~= string.rep(c, size) then bad = bad + 1 end
          if reads == 1 then assert(fs.write(stop .. ".ready", "")) end
        end
        print(reads, bad)
      ]])
      local h = assert(exec.spawn{ argv = { proc.bin, "lua", reader, path, tostring(size), dir .. "/stop" } })
      local t0 = sys.monotonic()
      while not fs.exists(dir .. "/stop.ready") do
        assert(sys.monotonic() - t0 < 10, "the reader did not start")
        sys.sleep(0.005)
      end
      local letters = { "B", "C" }
      for i = 1, 40 do
        assert(fs.write(path, string.rep(letters[i % 2 + 1], size)))
      end
      assert(fs.write(dir .. "/stop", ""))
      local r = h:wait(20000)
      assert.are.equal(0, r.code, r.stderr)
      local reads, bad = r.stdout:match("^(%d+)\t(%d+)")
      assert.is_true(tonumber(reads) > 10, "only " .. reads .. " reads")
      assert.are.equal("0", bad)
    end)
  end)

  describe("metadata", function()
    it("stat describes files, dirs and links", function()
      assert(fs.write(dir .. "/f", "12345"))
      local st = assert(fs.stat(dir .. "/f"))
      assert.are.equal("file", st.type)
      assert.are.equal(5, st.size)
      assert.is_true(st.mtime > 0)
      assert.are.equal("dir", fs.stat(dir).type)
      local _, err = fs.stat(dir .. "/missing")
      assert.are.equal(dir .. "/missing: No such file or directory", err)
      assert.has_error(function() fs.stat(dir, { folow = false }) end)
    end)

    it("exists, list (sorted), mkdir -p, remove", function()
      assert.is_false(fs.exists(dir .. "/a"))
      assert(fs.mkdir(dir .. "/a/b/c"))
      assert(fs.mkdir(dir .. "/a/b/c")) -- already there: fine with parents
      assert.is_true(fs.exists(dir .. "/a/b/c"))
      local ok, err = fs.mkdir(dir .. "/a", { parents = false })
      assert.is_nil(ok)
      assert.are.equal(dir .. "/a: File exists", err)
      for _, n in ipairs{ "zeta", "Alpha", "beta", ".hidden" } do assert(fs.write(dir .. "/" .. n, "")) end
      assert.are.same({ ".hidden", "Alpha", "a", "beta", "zeta" }, fs.list(dir))
      local _, lerr = fs.list(dir .. "/missing")
      assert.are.equal(dir .. "/missing: No such file or directory", lerr)
      assert.is_true(fs.remove(dir .. "/zeta"))
      assert.is_true(fs.remove(dir .. "/zeta")) -- absent is fine
      local rok, rerr = fs.remove(dir .. "/a")
      assert.is_nil(rok)
      assert.are.equal(dir .. "/a: Directory not empty", rerr)
    end)
  end)

  describe("sha256", function()
    it("matches the FIPS 180-4 test vectors", function()
      assert.are.equal("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", fs.sha256(""))
      assert.are.equal("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", fs.sha256("abc"))
      assert.are.equal("248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1",
        fs.sha256("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"))
      assert.are.equal("cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0",
        fs.sha256(string.rep("a", 1000000)))
    end)

    it("hashes a file the same as its content", function()
      local data = string.rep("phoenix\n", 50000)
      assert(fs.write(dir .. "/f", data))
      assert.are.equal(fs.sha256(data), fs.sha256_file(dir .. "/f"))
      local r = assert(exec.run{ argv = { "sha256sum", dir .. "/f" } })
      assert.are.equal(r.stdout:match("^%x+"), fs.sha256_file(dir .. "/f"))
      local _, err = fs.sha256_file(dir .. "/missing")
      assert.are.equal(dir .. "/missing: No such file or directory", err)
    end)
  end)

  describe("flock", function()
    -- A second process holds the lock for a while; it says so by writing
    -- "held" into the lock file.
    local function hold(path, mode, seconds)
      local script = proc.lua_script(dir, "holder.lua", [[
        local fs, sys = require "px.fs", require "px.sys"
        local lock = assert(fs.flock(arg[1], { mode = arg[2] }))
        lock:write("held")
        sys.sleep(tonumber(arg[3]))
      ]])
      local h = assert(exec.spawn{ argv = { proc.bin, "lua", script, path, mode, tostring(seconds) } })
      local t0 = sys.monotonic()
      while fs.read(path) ~= "held" do
        assert(sys.monotonic() - t0 < 10, "the holder never took the lock")
        sys.sleep(0.01)
      end
      return h
    end

    it("times out against another process, then gets the lock when it lets go", function()
      local path = dir .. "/lock"
      local h = hold(path, "exclusive", 0.8)
      local t0 = sys.monotonic()
      local lock, err, why = fs.flock(path, { timeout_ms = 150 })
      local took = sys.monotonic() - t0
      assert.is_nil(lock)
      assert.are.equal(path .. ": locked by another process (waited 150 ms)", err)
      assert.are.equal("busy", why)
      assert.is_true(took >= 0.14 and took < 1, "took " .. took)
      lock = assert(fs.flock(path, { timeout_ms = 10000 }))
      assert.is_true(sys.monotonic() - t0 < 5)
      assert.are.equal(0, h:wait().code)
      lock:unlock()
      lock:unlock()
    end)

    it("lets shared holders share and keeps writers out", function()
      local path = dir .. "/lock"
      local h = hold(path, "shared", 0.6)
      local s = assert(fs.flock(path, { mode = "shared" }))
      local x, err = fs.flock(path, { mode = "exclusive", timeout_ms = 50 })
      assert.is_nil(x)
      assert.truthy(err:find("locked by another process", 1, true))
      s:unlock()
      h:wait()
      x = assert(fs.flock(path, { mode = "exclusive" }))
      x:unlock()
    end)

    it("is released by <close>, unlock and collection", function()
      local path = dir .. "/lock"
      do
        local l <close> = assert(fs.flock(path))
        assert.is_nil(fs.flock(path)) -- another open file description conflicts
      end
      local l = assert(fs.flock(path))
      assert.truthy(tostring(l):find("held", 1, true))
      l:unlock()
      assert.truthy(tostring(l):find("released", 1, true))
      assert.has_error(function() l:write("x") end)
      l = assert(fs.flock(path))
      l = nil -- luacheck: ignore
      collectgarbage()
      collectgarbage()
      assert.truthy(fs.flock(path))
    end)

    it("raises on wrong use", function()
      assert.has_error(function() fs.flock(dir .. "/l", { mode = "read" }) end)
      assert.has_error(function() fs.flock(dir .. "/l", { timeout = 5 }) end)
    end)
  end)
end)
