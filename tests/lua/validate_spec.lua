-- phoenix validate: the command, run as a user runs it.
local exec = require "px.exec"
local json = require "px.json"
local schema = require "px.schema"
local sitefix = require "sitefix"

local BIN = os.getenv("PHOENIX_BIN") or require("px").exe

local function run(args, env)
  local argv = { BIN, "validate" }
  for _, a in ipairs(args) do argv[#argv + 1] = a end
  local e = { PATH = os.getenv("PATH") or "/usr/bin:/bin" }
  for k, v in pairs(env or {}) do e[k] = v end
  return assert(exec.run { argv = argv, env = e, timeout_ms = 30000 })
end

describe("phoenix validate", function()
  it("passes the real reference site, printing its warnings apart", function()
    local r = run { "--config-dir", sitefix.FIXTURES .. "/reference" }
    assert.are.equal(0, r.code, r.stdout .. r.stderr)
    assert.is_nil(r.stdout:find("errors (", 1, true))
    assert.matches("\nwarnings %(%d+%):\n", "\n" .. r.stdout)
    assert.matches("phoenix_hypervisor_config.json: /shared_volumes/firewall: firewall inside shared_volumes", r.stdout, 1, true)
    assert.matches("phoenix_hypervisor_config.json: /portainer_api/admin_password: plain-text password\n  hint: ", r.stdout, 1, true)
    assert.matches("valid: 12 containers, 3 VMs, %d+ resources, %d+ warnings\n$", r.stdout)
  end)

  it("passes the example site in etc/ clean", function()
    local r = run({ "--config-dir", sitefix.SRC .. "/etc" }, sitefix.ENV)
    assert.are.equal(0, r.code, r.stdout)
    assert.matches("valid: 5 containers, 5 VMs, %d+ resources, 0 warnings\n$", r.stdout)
    local r2 = run { "--config-dir", sitefix.SRC .. "/etc", "--no-secrets" }
    assert.are.equal(0, r2.code, r2.stdout)
  end)

  it("fails with exit 2, printing file: /pointer: message and a hint", function()
    local dir = sitefix.site("good", {
      { op = "set", file = "lxc", pointer = "/lxc_configs/120/dependencies", value = { "555" } },
      { op = "set", file = "lxc", pointer = "/lxc_configs/110/memroy_mb", value = 1 },
    })
    local r = run({ "--config-dir", dir }, sitefix.ENV)
    sitefix.rmdir(dir)
    assert.are.equal(2, r.code)
    local errs = r.stdout:match("errors %(1%):\n(.-)\nwarnings")
    assert.are.equal("phoenix_lxc_configs.json: /lxc_configs/120/dependencies/0: dependency 555: no such container or VM", errs)
    assert.matches('warnings (1):\nphoenix_lxc_configs.json: /lxc_configs/110/memroy_mb: unknown field "memroy_mb" (phoenix does not use it)\n  hint: check the spelling', r.stdout, 1, true)
    assert.matches(": not valid: 1 error, 1 warning\n$", r.stdout)
  end)

  it("reports a broken JSON file with line and column", function()
    local dir = sitefix.site("good", { { op = "text", file = "vm", text = '{\n  "vms": [\n    {"vmid": 9000 "name": "x"}\n  ]\n}\n' } })
    local r = run({ "--config-dir", dir }, sitefix.ENV)
    sitefix.rmdir(dir)
    assert.are.equal(2, r.code)
    assert.matches("phoenix_vm_configs.json: /: line 3, column 19: expected ',' or '}' in object\n  hint: fix the JSON syntax", r.stdout, 1, true)
  end)

  it("--json gives the same as a machine-readable document", function()
    local dir = sitefix.site("good", { { op = "set", file = "lxc", pointer = "/lxc_configs/110/cores", value = 0 } })
    local r = run({ "--config-dir", dir, "--json" }, sitefix.ENV)
    sitefix.rmdir(dir)
    assert.are.equal(2, r.code)
    local doc = assert(schema.decode(r.stdout))
    assert.is_false(doc.valid)
    assert.are.equal(dir, doc.config_dir)
    assert.are.same({ file = "phoenix_lxc_configs.json", pointer = "/lxc_configs/110/cores",
      message = "0 is less than the minimum 1", line = doc.errors[1].line }, doc.errors[1])
    assert.are.equal("integer", math.type(doc.errors[1].line))
    assert.is_true(json.is_array(doc.warnings))
    assert.are.equal(0, #doc.warnings)
    assert.is_nil(doc.resources)

    local ok = run({ "--config-dir", sitefix.SRC .. "/etc", "--json" }, sitefix.ENV)
    local d2 = assert(schema.decode(ok.stdout))
    assert.is_true(d2.valid)
    assert.are.equal(5, d2.counts.lxc)
    assert.are.equal(5, d2.counts.vm)
    assert.is_true(d2.resources > 10)
  end)

  it("uses /usr/local/phoenix_hypervisor/etc by default", function()
    local r = run {}
    if r.code == 0 then return end -- a real site is installed here
    assert.are.equal(2, r.code)
    assert.matches("/usr/local/phoenix_hypervisor/etc: /: the config directory does not exist", r.stdout, 1, true)
  end)

  it("has help and refuses unknown options", function()
    local h = run { "--help" }
    assert.are.equal(0, h.code)
    assert.matches("--config-dir DIR", h.stdout, 1, true)
    assert.matches("--json", h.stdout, 1, true)
    local u = run { "--bogus" }
    assert.are.equal(2, u.code)
    assert.matches("unknown option --bogus", u.stderr, 1, true)
  end)

  it("never prints a secret", function()
    -- an env secret whose value is also a container name: the output shows (secret) instead
    local env = {}
    for k, v in pairs(sitefix.ENV) do env[k] = v end
    env.PORTAINER_ADMIN_PASSWORD = "gitea-secret-name"
    local dir = sitefix.site("good", {
      { op = "set", file = "lxc", pointer = "/lxc_configs/140/name", value = "gitea-secret-name" },
      { op = "set", file = "lxc", pointer = "/lxc_configs/130/name", value = "gitea-secret-name" },
    })
    local r = run({ "--config-dir", dir }, env)
    sitefix.rmdir(dir)
    assert.are.equal(2, r.code)
    assert.matches('host name "(secret)" is also used by container 130', r.stdout, 1, true)
    assert.is_nil(r.stdout:find("gitea-secret-name", 1, true))
  end)
end)
