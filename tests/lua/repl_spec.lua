-- phoenix repl (lua/phoenix/repl.lua, lua/phoenix/cmd/repl.lua).
local repl = require "phoenix.repl"
local fs = require "px.fs"
local proc = require "proc"

local function session(env)
  local out = {}
  local s = repl.new{ env = env, write = function(text, is_error) out[#out + 1] = (is_error and "E:" or "") .. text end }
  return s, function()
    local text = table.concat(out)
    for i = #out, 1, -1 do out[i] = nil end
    return text
  end
end

describe("phoenix.repl", function()
  it("prints expressions and runs statements", function()
    local s, out = session()
    assert.are.equal("done", s:feed("1 + 1"))
    assert.are.equal("2\n", out())
    s:feed("x = { b = 2, a = { 1, 2 } }")
    assert.are.equal("", out())
    s:feed("x")
    assert.are.equal("{ a = { 1, 2 }, b = 2 }\n", out())
    s:feed("return 1, 'two', nil")
    assert.are.equal('1\t"two"\tnil\n', out())
    s:feed("_")
    assert.are.equal("1\n", out())
    s:feed("(function() end)()") -- no values: nothing printed
    assert.are.equal("", out())
  end)

  it("continues an incomplete chunk on the next lines", function()
    local s, out = session()
    assert.are.equal("more", s:feed("function f(n)"))
    assert.are.equal("more", s:feed("  return n * 2"))
    assert.are.equal("done", s:feed("end"))
    s:feed("f(21)")
    assert.are.equal("42\n", out())
    assert.are.equal("more", s:feed("{"))
    assert.are.equal("more", s:feed("  1,"))
    assert.are.equal("done", s:feed("}"))
    assert.are.equal("{ 1 }\n", out())
  end)

  it("survives errors and keeps its state", function()
    local s, out = session()
    s:feed("y = 5")
    s:feed("error('boom')")
    assert.are.equal("E:error: stdin:1: boom\n", out())
    s:feed("nil + 1")
    assert.truthy(out():find("^E:error: stdin:1: attempt to perform arithmetic on a nil value"))
    s:feed("error({ code = 7 })")
    assert.are.equal("E:error: (error object is a table value: { code = 7 })\n", out())
    s:feed("x = = 1")
    assert.truthy(out():find("^E:syntax error: stdin:1:"))
    s:feed("y")
    assert.are.equal("5\n", out())
    assert.are.equal(4, s.errors)
  end)

  it("reports an unfinished chunk at the end of input", function()
    local s, out = session()
    s:feed("for i = 1, 2 do")
    s:finish()
    assert.truthy(out():find("^E:syntax error: stdin:1: 'end' expected"))
  end)

  it("offers extra names given by its caller, and px.* on demand", function()
    local s, out = session({ site = function() return { name = "lab" } end, answer = 42 })
    s:feed("site().name")
    assert.are.equal('"lab"\n', out())
    s:feed("answer")
    assert.are.equal("42\n", out())
    s:feed("px.json.encode({ 1 })")
    assert.are.equal('"[1]"\n', out())
    s:feed("px.version")
    assert.are.equal('"' .. require("px").version .. '"\n', out())
    s:feed("string.upper('x')")
    assert.are.equal('"X"\n', out())
  end)

  it("keeps registered secrets out of what it prints", function()
    local s, out = session()
    require("px.log").redact("t0ps3cret")
    s:feed("'token=t0ps3cret'")
    assert.are.equal('"token=(secret)"\n', out())
  end)

  it("completes names, fields and methods", function()
    local s = session({ answer = 42 })
    assert.are.same({ "answer" }, s:complete("answ"))
    assert.are.same({ "string.format" }, s:complete("string.form"))
    assert.truthy(s:complete("px.exec.")[1])
    local c = s:complete("px.exec.r")
    assert.are.same({ "px.exec.run" }, c)
    s:feed("h = io.stdout")
    assert.are.same({ "h:write" }, s:complete("h:wri"))
    assert.are.same({}, s:complete("nosuch.x"))
    assert.are.same({ "repeat", "require", "return" }, s:complete("re"))
  end)

  describe("phoenix repl, stdin not a terminal", function()
    it("evaluates piped lines and exits 0", function()
      local input = table.concat({
        "t = { list = { 3, 2, 1 }, name = 'x' }",
        "t.self = t",
        "t",
        "local gone = 1 -- locals last one chunk, as in lua.c",
        "n = 0",
        "for i = 1, 3 do",
        "  n = n + i",
        "end",
        "#t.list",
        "n, gone",
        "",
      }, "\n")
      local r = proc.phoenix({ "repl" }, { stdin = input, env = { HOME = "/nonexistent-px" } })
      assert.are.equal(0, r.code, r.stderr)
      assert.are.equal("", r.stderr)
      local addr = r.stdout:match("<cycle: (table: 0x%x+)>")
      assert.truthy(addr)
      assert.are.equal('{\n  list = { 3, 2, 1 },\n  name = "x",\n  self = <cycle: ' .. addr .. ">\n}\n3\n6\tnil\n", r.stdout)
    end)

    it("prints errors on stderr, goes on, and exits 1", function()
      local r = proc.phoenix({ "repl" }, { stdin = "error('bad')\n1 + 2\nreturn (\n", env = { HOME = "/nonexistent-px" } })
      assert.are.equal(1, r.code)
      assert.are.equal("3\n", r.stdout)
      assert.truthy(r.stderr:find("error: stdin:1: bad\n", 1, true))
      assert.truthy(r.stderr:find("syntax error: stdin:", 1, true))
    end)

    it("does not touch the history file", function()
      local dir = proc.tmpdir()
      local r = proc.phoenix({ "repl" }, { stdin = "1\n", env = { HOME = dir } })
      assert.are.equal(0, r.code)
      assert.is_false(fs.exists(dir .. "/.phoenix_history"))
      proc.cleanup(dir)
    end)
  end)

  describe("phoenix repl on a terminal (through script(1))", function()
    -- keys: a shell script that types into the pty, slowly enough for the
    -- line editor to be reading each time.
    local function run_tty(home, keys)
      local exec = require "px.exec"
      local r = assert(exec.run{
        argv = { "sh", "-c", "( " .. keys .. " ) | script -qec '\"$PHOENIX_BIN\" repl' /dev/null" },
        env = { PHOENIX_BIN = proc.bin, HOME = home, TERM = "dumb", PATH = "/usr/bin:/bin" },
        timeout_ms = 20000,
      })
      return (r.stdout:gsub("\r", ""))
    end

    it("edits lines, completes names with Tab and keeps history across runs", function()
      local home = proc.tmpdir()
      local out = run_tty(home, [[sleep 1; printf 'x = 21\r'; sleep 0.3; printf 'x * 2\r'; sleep 0.3;
        printf 'string.for\t("%%d", 5)\r'; sleep 0.3; printf '\004']])
      assert.truthy(out:find("phoenix " .. require("px").version, 1, true))
      assert.truthy(out:find("\n42\n", 1, true), out)
      assert.truthy(out:find('\n"5"\n', 1, true), out)
      local hist = assert(fs.read(home .. "/.phoenix_history"))
      assert.truthy(hist:find("x\\040=\\04021", 1, true) or hist:find("x = 21", 1, true), hist)
      assert.are.equal(tonumber("600", 8), fs.stat(home .. "/.phoenix_history").mode)
      -- a second run: Ctrl-P three times recalls "x = 21" from the file
      out = run_tty(home, [[sleep 1; printf '\020\020\020\r'; sleep 0.3; printf 'x + 1\r'; sleep 0.3; printf '\004']])
      assert.truthy(out:find("\n22\n", 1, true), out)
      proc.cleanup(home)
    end)
  end)

  it("rejects unknown options", function()
    assert.has_error(function() repl.new{ evn = {} } end)
    assert.has_error(function() repl.start{ baner = "x" } end)
  end)
end)
