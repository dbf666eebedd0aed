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
