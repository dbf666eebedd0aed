-- phoenix.features: the built-in feature registry.
local fs = require "px.fs"
local features = require "phoenix.features"
local sitefix = require "sitefix"

describe("phoenix.features", function()
  it("lists exactly the built-in features of CONFIG.md", function()
    assert.are.same({ "base_setup", "dns_server", "docker", "nat_gateway", "nvidia", "ollama", "portainer",
      "python_api_service", "step_ca", "step_cli", "traefik", "trusted_ca", "vllm" }, features.names())
  end)

  it("knows which guest kinds a feature applies to", function()
    assert.is_true(features.check("docker", "vm"))
    assert.is_true(features.check("traefik", "lxc"))
    local ok, msg = features.check("traefik", "vm")
    assert.is_nil(ok)
    assert.are.equal("feature traefik does not apply to VM guests (only lxc)", msg)
    local ok2, msg2, hint = features.check("fancy", "lxc", {})
    assert.is_nil(ok2)
    assert.matches("unknown feature fancy", msg2)
    assert.matches("base_setup", hint)
  end)

  it("finds a site's own features as <dir>/<name>.sh", function()
    local dir = sitefix.tmpdir()
    assert(fs.write(dir .. "/my_app.sh", "#!/bin/sh\n"))
    assert(fs.write(dir .. "/README", "not a feature"))
    local set = features.site_features(dir)
    sitefix.rmdir(dir)
    assert.are.same({ my_app = true }, set)
    assert.is_true(features.check("my_app", "vm", set))
    assert.are.same({}, features.site_features(nil))
    assert.are.same({}, features.site_features("/nonexistent/dir"))
  end)
end)

-- The built-in scripts themselves (etc/features/<name>.sh); they run in a
-- real container in tests/integration/features_spec.lua.
describe("built-in feature scripts", function()
  local exec = require "px.exec"
  local DIR = sitefix.SRC .. "/etc/features"
  local DOC = assert(fs.read(sitefix.SRC .. "/docs/features.md"))
  local HELPERS = "# %-%-%- phoenix feature helpers.-# %-%-%- end of phoenix feature helpers %-%-%-\n"

  local function script(name) return assert(fs.read(DIR .. "/" .. name .. ".sh")) end
  local function tool(name)
    local r = exec.run { argv = { "sh", "-c", 'command -v "$1"', "sh", name } }
    return r and r.code == 0
  end
  -- header(text) -> set of the PHOENIX_* variables documented as "#   PHOENIX_X  meaning"
  local function header(text)
    local set = {}
    for v in text:gmatch("\n#%s+(PHOENIX_[A-Z0-9_]+)[%s,]") do set[v] = true end
    return set
  end
  -- used(text) -> set of the PHOENIX_* variables the code (not the comments) reads
  local function used(text)
    local set = {}
    for line in text:gmatch("[^\n]*") do
      if not line:match("^%s*#") then
        for v in line:gmatch("PHOENIX_[A-Z0-9_]+") do set[v] = true end
      end
    end
    set.PHOENIX_FEATURE = nil
    return set
  end
  -- doc_section(name) -> the text of "## name" in docs/features.md
  local function doc_section(name)
    local s = DOC:find("\n## " .. name .. "\n", 1, true)
    assert(s, "docs/features.md has no section ## " .. name)
    local e = DOC:find("\n## ", s + 1, true) or #DOC
    return DOC:sub(s, e)
  end

  it("has exactly one script per built-in name", function()
    local files = {}
    for _, f in ipairs(assert(fs.list(DIR))) do files[#files + 1] = f:match("^(.*)%.sh$") or f end
    table.sort(files)
    assert.are.same(features.names(), files)
  end)

  it("scripts are POSIX sh with the usual prologue", function()
    for _, name in ipairs(features.names()) do
      local text = script(name)
      local start = "#!/bin/sh\n# phoenix feature: " .. name .. " "
      assert.are.equal(start, text:sub(1, #start), name)
      assert.matches("\nset %-euf\nFEATURE=%${PHOENIX_FEATURE:%-" .. name .. "}\n", text, nil, false)
      local r = exec.run { argv = { "sh", "-n", DIR .. "/" .. name .. ".sh" } }
      assert.are.equal(0, r.code, name .. ": sh -n: " .. r.stderr)
    end
  end)

  it("parse under busybox ash", function()
    if not tool("busybox") then return pending("busybox is not installed") end
    for _, name in ipairs(features.names()) do
      local r = exec.run { argv = { "busybox", "sh", "-n", DIR .. "/" .. name .. ".sh" } }
      assert.are.equal(0, r.code, name .. ": busybox sh -n: " .. r.stderr)
    end
  end)

  it("pass shellcheck as POSIX sh", function()
    if not tool("shellcheck") then
      print("SKIP shellcheck: not installed (apt-get install shellcheck)")
      return pending("shellcheck is not installed")
    end
    local argv = { "shellcheck", "--shell=sh", "--severity=style" }
    for _, name in ipairs(features.names()) do argv[#argv + 1] = DIR .. "/" .. name .. ".sh" end
    local r = exec.run { argv = argv }
    assert.are.equal(0, r.code, r.stdout .. r.stderr)
  end)

  it("document every variable they read, in the header and in docs/features.md", function()
    for _, name in ipairs(features.names()) do
      local text = script(name)
      local doc, head, code = doc_section(name), header(text), used(text)
      assert.is_true(next(code) ~= nil or name == "base_setup", name .. " reads no settings")
      for v in pairs(code) do
        assert.is_true(head[v], name .. ".sh reads " .. v .. " but its header does not document it")
        assert.truthy(doc:find("`" .. v .. "`", 1, true), "docs/features.md ## " .. name .. " lacks " .. v)
      end
      for v in pairs(head) do
        assert.is_true(code[v], name .. ".sh documents " .. v .. " but does not read it")
      end
    end
    -- and the docs name no variable a script does not read
    for v in DOC:gmatch("`(PHOENIX_[A-Z0-9_]+)`") do
      local found = v == "PHOENIX_FEATURE" or v == "PHOENIX_LOKI_URL"
      for _, name in ipairs(features.names()) do found = found or used(script(name))[v] end
      assert.is_true(found, "docs/features.md names " .. v .. ", which no script reads")
    end
  end)

  it("carry the same helper block", function()
    local first
    for _, name in ipairs(features.names()) do
      local block = script(name):match(HELPERS)
      assert.truthy(block, name .. ".sh lacks the helper block")
      first = first or block
      assert.are.equal(first, block, name .. ".sh's helper block differs from " .. features.names()[1] .. ".sh's")
    end
  end)
end)
