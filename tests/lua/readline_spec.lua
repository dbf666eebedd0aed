-- px.readline: libedit line input and history (src/px_readline.c).
local readline = require "px.readline"
local fs = require "px.fs"
local proc = require "proc"

describe("px.readline", function()
  local dir
  before_each(function() dir = proc.tmpdir() end)
  after_each(function() proc.cleanup(dir) end)

  it("reads lines and returns nil at the end of input", function()
    local f = proc.lua_script(dir, "r.lua", [[
      local rl = require "px.readline"
      local out = {}
      while true do
        local line = rl.readline("> ")
        if line == nil then break end
        out[#out + 1] = "[" .. line .. "]"
      end
      io.stderr:write(table.concat(out, ","), "\n")
    ]])
    local r = proc.phoenix({ "lua", f }, { stdin = "one\ntwo words\n\nlast" })
    assert.are.equal(0, r.code)
    assert.are.equal("[one],[two words],[],[last]\n", r.stderr)
  end)

  it("saves and loads history, owner-only", function()
    local path = dir .. "/hist"
    readline.add_history("x = 1")
    readline.add_history("   ") -- blank: not kept
    readline.add_history("print(x)")
    assert.is_true(readline.save_history(path))
    local text = fs.read(path)
    assert.truthy(text:find("x = 1", 1, true) or text:find("x\\040=\\0401", 1, true))
    assert.truthy(text:find("print(x)", 1, true))
    assert.are.equal(tonumber("600", 8), fs.stat(path).mode)
    assert.is_true(readline.load_history(path))
    local ok, err = readline.load_history(dir .. "/missing")
    assert.is_nil(ok)
    assert.are.equal(dir .. "/missing: cannot read the history: No such file or directory", err)
    ok, err = readline.save_history(dir .. "/no/dir/hist")
    assert.is_nil(ok)
    assert.are.equal(dir .. "/no/dir/hist: cannot write the history: No such file or directory", err)
  end)

  it("takes a completer function or nil", function()
    readline.set_completer(function() return {} end)
    readline.set_completer(nil)
    assert.has_error(function() readline.set_completer(42) end)
  end)
end)
