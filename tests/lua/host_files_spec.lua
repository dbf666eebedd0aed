-- phoenix.host.files: managed files and marked blocks.
local files = require "phoenix.host.files"
local targets = require "phoenix.target"
local fs = require "px.fs"
local kit = require "testkit"

describe("phoenix.host.files", function()
  local dir, t
  before_each(function()
    dir = kit.tmpdir()
    t = assert(targets.open({ type = "lxc", root = dir }))
  end)
  after_each(function() kit.cleanup(dir) end)

  it("writes only when the content differs and keeps the previous version", function()
    assert.is_true(files.put(t, "/etc/x/a.conf", "one\n"))
    local st1 = assert(fs.stat(dir .. "/etc/x/a.conf"))
    assert.is_false(files.put(t, "/etc/x/a.conf", "one\n"))
    assert.are.equal(st1.ino, fs.stat(dir .. "/etc/x/a.conf").ino)
    assert.is_nil(fs.read(dir .. "/etc/x/a.conf.phoenix.bak"))
    assert.is_true(files.put(t, "/etc/x/a.conf", "two\n"))
    assert.are.equal("one\n", fs.read(dir .. "/etc/x/a.conf.phoenix.bak"))
    assert.are.equal("two\n", fs.read(dir .. "/etc/x/a.conf"))
    -- keep: the previous version goes to another directory, none beside the file
    assert.is_true(files.put(t, "/etc/d/b.conf", "1\n", { keep = "/var/lib/phoenix/backup" }))
    assert.is_true(files.put(t, "/etc/d/b.conf", "2\n", { keep = "/var/lib/phoenix/backup" }))
    assert.are.equal("1\n", fs.read(dir .. "/var/lib/phoenix/backup/b.conf"))
    assert.are.same({ "b.conf" }, fs.list(dir .. "/etc/d"))
  end)

  it("describes a change by file and line counts", function()
    assert.is_nil(files.change("/f", "a\n", "a\n"))
    local c = files.change("/f", "a\nb\n", "a\nc\nd\n")
    assert.are.same({ action = "update", field = "/f", from = "2 lines", to = "3 lines", note = "+2 -1 lines" }, c)
    assert.are.equal("create", files.change("/f", nil, "x\n").action)
    assert.are.equal("delete", files.change("/f", "x\n", nil).action)
    assert.are.equal("restart", files.change("/f", nil, "x\n", { disruptive = "restart" }).disruptive)
  end)

  it("puts, replaces and removes a marked block, leaving the rest alone", function()
    local text = "user line 1\n\nuser line 2\n"
    local a = assert(files.set_block(text, "demo", "managed 1\n"))
    assert.are.equal(text .. "\n# BEGIN phoenix demo\nmanaged 1\n# END phoenix demo\n", a)
    assert.are.equal("managed 1\n", files.find_block(a, "demo"))
    local b = assert(files.set_block(a .. "after\n", "demo", "managed 2\nmanaged 3\n"))
    assert.are.equal(text .. "\n# BEGIN phoenix demo\nmanaged 2\nmanaged 3\n# END phoenix demo\nafter\n", b)
    assert.are.equal(b, files.set_block(b, "demo", "managed 2\nmanaged 3\n"))
    assert.are.equal(text .. "\nafter\n", files.set_block(b, "demo", nil))
    -- adopting lines 2..3 (an unmarked stanza) puts the block in their place
    assert.are.equal("l1\n# BEGIN phoenix s\nnew\n# END phoenix s\nl4\n",
      files.set_block("l1\nl2\nl3\nl4\n", "s", "new\n", { at = 2, upto = 3 }))
    assert.are.equal("# BEGIN phoenix n\nx\n# END phoenix n\n", files.set_block(nil, "n", "x\n"))
  end)

  it("refuses a block whose markers are broken", function()
    local ok, err = files.set_block("# BEGIN phoenix demo\nx\n", "demo", "y\n")
    assert.is_nil(ok)
    assert.matches("without its END", err)
    ok, err = files.set_block("# END phoenix demo\n", "demo", "y\n")
    assert.is_nil(ok)
    assert.matches("without its BEGIN", err)
  end)

  it("stages a candidate under the root", function()
    local p = assert(files.stage(t, "cand.conf", "x=1\n"))
    assert.are.equal(dir .. "/var/lib/phoenix/staging/cand.conf", p)
    assert.are.equal("x=1\n", fs.read(p))
  end)
end)
