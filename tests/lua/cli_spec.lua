-- The phoenix binary and its CLI (src/main.c, lua/phoenix/main.lua, cli.lua).
local fs = require "px.fs"
local exec = require "px.exec"
local proc = require "proc"
local version = require "phoenix.version"

describe("phoenix CLI", function()
  it("--version prints the version", function()
    local r = proc.phoenix({ "--version" })
    assert.are.equal(0, r.code)
    assert.are.equal("phoenix " .. version .. "\n", r.stdout)
    assert.are.equal(r.stdout, proc.phoenix({ "version" }).stdout)
  end)

  it("--help lists the verbs and exit codes", function()
    local r = proc.phoenix({ "--help" })
    assert.are.equal(0, r.code)
    assert.truthy(r.stdout:find("^usage: phoenix"))
    for _, verb in ipairs{ "converge", "plan", "repl", "lua" } do
      assert.truthy(r.stdout:find("\n  " .. verb .. " ", 1, true), verb)
    end
    assert.truthy(r.stdout:find("Exit codes", 1, true))
  end)

  it("without a verb prints the help and exits 2", function()
    local r = proc.phoenix({})
    assert.are.equal(2, r.code)
    assert.truthy(r.stdout:find("^usage: phoenix"))
  end)

  it("rejects an unknown verb with exit 2", function()
    local r = proc.phoenix({ "frobnicate" })
    assert.are.equal(2, r.code)
    assert.are.equal("phoenix: unknown verb 'frobnicate' (see 'phoenix --help')\n", r.stderr)
  end)

  it("has --help for lua and repl", function()
    for _, verb in ipairs{ "lua", "repl" } do
      local r = proc.phoenix({ verb, "--help" })
      assert.are.equal(0, r.code, verb)
      assert.truthy(r.stdout:find("^usage: phoenix " .. verb), verb)
    end
    assert.truthy(proc.phoenix({ "repl", "--help" }).stdout:find("--no-history", 1, true))
    local r = proc.phoenix({ "repl", "--bogus" })
    assert.are.equal(2, r.code)
    assert.are.equal("phoenix repl: unknown option --bogus (see 'phoenix repl --help')\n", r.stderr)
  end)

  describe("phoenix lua", function()
    local dir
    before_each(function() dir = proc.tmpdir() end)
    after_each(function() proc.cleanup(dir) end)

    it("runs a file with arg as the lua interpreter sets it", function()
      local f = proc.lua_script(dir, "a.lua", [[
        local a, b = ...
        print(arg[0], #arg, arg[1], arg[2], a, b, require("px.json").encode({ 1 }))
      ]])
      local r = proc.phoenix({ "lua", f, "x", "--flag" })
      assert.are.equal(0, r.code, r.stderr)
      assert.are.equal(f .. "\t2\tx\t--flag\tx\t--flag\t[1]\n", r.stdout)
    end)

    it("exits with the integer the file returns, 1 on error, 2 on a bad file", function()
      assert.are.equal(7, proc.phoenix({ "lua", proc.lua_script(dir, "r.lua", "return 7") }).code)
      local r = proc.phoenix({ "lua", proc.lua_script(dir, "e.lua", "error('bad thing')") })
      assert.are.equal(1, r.code)
      assert.truthy(r.stderr:find("^phoenix lua: .*e%.lua:1: bad thing"))
      r = proc.phoenix({ "lua", dir .. "/missing.lua" })
      assert.are.equal(2, r.code)
      assert.truthy(r.stderr:find("missing.lua", 1, true))
      r = proc.phoenix({ "lua", proc.lua_script(dir, "s.lua", "x = = 1") })
      assert.are.equal(2, r.code)
      assert.are.equal(2, proc.phoenix({ "lua" }).code)
    end)
  end)

  describe("finding the Lua files", function()
    local dir
    before_each(function() dir = proc.tmpdir() end)
    after_each(function() proc.cleanup(dir) end)

    local function copy_lua(to)
      assert(exec.run{ argv = { "cp", "-r", proc.source_dir .. "/lua", to } })
    end

    it("uses --lua-dir DIR when given", function()
      copy_lua(dir .. "/lua")
      -- a marker only this copy has, to prove it is the one running
      assert(fs.write(dir .. "/lua/marker.lua", "return 'from the copy'"))
      local script = proc.lua_script(dir, "m.lua", "print(require('marker'), require('px').lua_dir)")
      local r = proc.phoenix({ "--lua-dir", dir .. "/lua", "lua", script })
      assert.are.equal(0, r.code, r.stderr)
      assert.are.equal("from the copy\t" .. dir .. "/lua\n", r.stdout)
      r = proc.phoenix({ "--lua-dir=" .. dir .. "/lua", "lua", script })
      assert.are.equal("from the copy\t" .. dir .. "/lua\n", r.stdout)
    end)

    it("uses PHOENIX_HOME when set", function()
      copy_lua(dir .. "/lua")
      assert(fs.write(dir .. "/lua/marker.lua", "return 'home'"))
      local script = proc.lua_script(dir, "m.lua", "print(require('marker'), require('px').home)")
      local r = proc.phoenix({ "lua", script }, { env = { PHOENIX_HOME = dir } })
      assert.are.equal("home\t" .. dir .. "\n", r.stdout)
    end)

    it("refuses Lua files of another version, and a dir without them", function()
      copy_lua(dir .. "/lua")
      assert(fs.write(dir .. "/lua/phoenix/version.lua", 'return "0.0.0-other"'))
      local r = proc.phoenix({ "--lua-dir", dir .. "/lua", "--version" })
      assert.are.equal(2, r.code)
      assert.are.equal("phoenix: the Lua files in " .. dir .. "/lua are version 0.0.0-other but this binary is "
        .. version .. "\n", r.stderr)
      r = proc.phoenix({ "--version" }, { env = { PHOENIX_HOME = dir .. "/nothing" } })
      assert.are.equal(2, r.code)
      assert.are.equal("phoenix: " .. dir .. "/nothing/lua/phoenix/main.lua not found (check --lua-dir and PHOENIX_HOME)\n",
        r.stderr)
      r = proc.phoenix({ "--lua-dir", dir, "--version" })
      assert.are.equal(2, r.code)
      assert.are.equal("phoenix: " .. dir .. "/phoenix/main.lua not found (check --lua-dir and PHOENIX_HOME)\n", r.stderr)
    end)
  end)
end)
