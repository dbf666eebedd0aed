-- The bad-site corpus: each tests/fixtures/site/bad/<name>.json patches the
-- good site and names the problem it must produce (severity, file, JSON
-- pointer, message fragment). The good site itself must load clean.
local fs = require "px.fs"
local config = require "phoenix.config"
local sitefix = require "sitefix"

local function describe_problems(problems)
  local out = {}
  for _, p in ipairs(problems) do
    out[#out + 1] = string.format("  %s %s: %s: %s", p.severity, p.file, p.pointer, p.message)
  end
  return table.concat(out, "\n")
end

describe("the good base site", function()
  it("loads with no errors and no warnings", function()
    local dir = sitefix.site("good")
    local site, problems = config.load(dir, { getenv = sitefix.getenv() })
    sitefix.rmdir(dir)
    assert.is_table(site, describe_problems(problems))
    assert.are.equal(0, #problems, describe_problems(problems))
  end)
end)

describe("the bad-site corpus", function()
  local dir = sitefix.FIXTURES .. "/bad"
  local names = {}
  for _, f in ipairs(assert(fs.list(dir))) do
    if f:match("%.json$") then names[#names + 1] = f end
  end

  it("has at least 40 variants", function()
    assert.is_true(#names >= 40, "only " .. #names .. " variants")
  end)

  for _, f in ipairs(names) do
    local v = sitefix.variant(dir .. "/" .. f)
    it(f:gsub("%.json$", "") .. ": " .. v.description, function()
      local site_dir = sitefix.site("good", v.patch)
      local site, problems = config.load(site_dir, { getenv = sitefix.getenv(v.unset_env) })
      sitefix.rmdir(site_dir)
      local e = v.expect
      local found
      for _, p in ipairs(problems) do
        if p.severity == e.severity and p.file == e.file and (e.pointer == nil or p.pointer == e.pointer)
          and p.message:find(e.message, 1, true) then
          found = p
          break
        end
      end
      assert.is_truthy(found, string.format("expected %s %s: %s: ...%s...\ngot:\n%s", e.severity, e.file,
        tostring(e.pointer), e.message, describe_problems(problems)))
      if e.severity == "error" then
        assert.is_nil(site, "a site with an error must not load")
      else
        assert.is_table(site, "a warning must not stop the site from loading:\n" .. describe_problems(problems))
      end
    end)
  end
end)
