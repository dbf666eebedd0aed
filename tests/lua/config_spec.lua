-- phoenix.config: the site model the engine gets (docs/internals.md, docs/resources.md).
local fs = require "px.fs"
local json = require "px.json"
local log = require "px.log"
local config = require "phoenix.config"
local sitefix = require "sitefix"

local function errors_of(problems)
  local out = {}
  for _, p in ipairs(problems or {}) do
    if p.severity == "error" then out[#out + 1] = p.file .. ": " .. p.pointer .. ": " .. p.message end
  end
  return table.concat(out, "\n")
end

local function load(base, patches, opts)
  local dir = sitefix.site(base, patches)
  opts = opts or {}
  if opts.getenv == nil then opts.getenv = sitefix.getenv() end
  local site, problems = config.load(dir, opts)
  sitefix.rmdir(dir)
  return site, problems
end

local function ids_of(site, rtype)
  local out = {}
  for _, r in ipairs(site.resources) do
    if r.type == rtype then out[#out + 1] = r.name end
  end
  return out
end

local function has(list, x)
  for _, v in ipairs(list) do
    if v == x then return true end
  end
  return false
end

describe("the real reference site", function()
  local site, problems = config.load(sitefix.FIXTURES .. "/reference")

  it("loads, with warnings only", function()
    assert.is_table(site, errors_of(problems))
    assert.is_true(#site.warnings > 0)
    for _, p in ipairs(problems) do assert.are.equal("warning", p.severity) end
  end)

  it("says that the firewall nested in shared_volumes is read as the host firewall", function()
    local found
    for _, w in ipairs(site.warnings) do
      if w.pointer == "/shared_volumes/firewall" then found = w end
    end
    assert.is_truthy(found)
    assert.are.equal("DROP", site.by_id["firewall:cluster"].want.policy_in)
    assert.are.equal("/shared_volumes/firewall", site.by_id["firewall:cluster"].source.pointer)
    assert.are.equal(6, #site.by_id["firewall:host"].want.rules)
    assert.is_nil(site.host.shared_volumes.firewall)
  end)

  it("has the containers in file order and the VMs", function()
    assert.are.same({ "900", "901", "910", "911", "912", "801", "802", "101", "914", "917", "103", "102" }, ids_of(site, "lxc"))
    assert.are.same({ "9000", "1001", "1002" }, ids_of(site, "vm"))
  end)

  it("normalises a container's want", function()
    local w = site.by_id["lxc:901"].want
    assert.are.equal(901, w.ctid)
    assert.are.equal("integer", math.type(w.ctid))
    assert.are.equal(900, w.clone_from_ctid)
    assert.are.same({ 0, 1 }, w.gpu_assignment) -- "0, 1" with a space
    assert.are.same({ 1002 }, w.dependencies)
    assert.are.equal("internal.thinkheads.ai", w.domain_name)
    assert.is_true(w.is_template) -- others clone from it
    assert.are.same({ "nesting=1" }, w.pct_options) -- proxmox_defaults.lxc.features = "nesting=1"
    assert.are.same({ "8.8.8.8" }, site.by_id["lxc:900"].want.network_config.nameservers)
    assert.are.same({}, site.by_id["lxc:900"].want.gpu_assignment)
    assert.is_true(json.is_array(site.by_id["lxc:900"].want.gpu_assignment))
    -- the files stay as written
    assert.are.equal("0, 1", site.files.lxc.lxc_configs["901"].gpu_assignment)
  end)

  it("gives every container its shared volumes", function()
    local m = site.by_id["lxc:910"].want.shared_volumes
    assert.are.same({ { volume = "ssl_certs", host_path = "/mnt/pve/quickOS/shared-prod-data/ssl", container_path = "/certs" } }, m)
  end)

  it("turns datasets into zfs_dataset and pve_storage resources", function()
    local ds = site.by_id["zfs_dataset:quickOS/vm-disks"]
    assert.are.same({ recordsize = "128K", compression = "lz4", sync = "standard", quota = "800G" }, ds.want.properties)
    assert.are.same({ "zfs_pool:quickOS" }, ds.deps)
    local st = site.by_id["pve_storage:fastData-shared-iso"].want
    assert.are.same({ storage = "fastData-shared-iso", type = "dir", content = { "iso", "vztmpl" },
      dataset = "fastData/shared-iso", path = "/fastData/shared-iso" }, st)
    assert.are.equal("quickOS/lxc-disks", site.by_id["pve_storage:quickOS-lxc-disks"].want.pool)
    assert.are.equal(32 * 1024 ^ 3, site.by_id["zfs_arc:host"].want.arc_max_bytes)
  end)

  it("links guests to what they need", function()
    local deps = site.by_id["lxc:901"].deps
    for _, d in ipairs { "lxc:900", "vm:1002", "pve_storage:quickOS-lxc-disks", "network_bridge:vmbr0", "nvidia:host" } do
      assert.is_true(has(deps, d), d)
    end
    assert.is_true(has(site.by_id["vm:1002"].deps, "vm:9000"))
    assert.is_true(has(site.by_id["lxc:801"].deps, "pve_storage:fastData-shared-bulk-data")) -- zfs_volumes pool
  end)

  it("builds the sync resources", function()
    local ep = site.by_id["portainer_endpoint:1002"]
    assert.are.equal("sync", ep.scope)
    assert.are.same({ "vm:1002", "vm:1001", "guest_ready:1002", "guest_ready:1001", "traefik:config",
      "stack:portainer_service@1001" }, ep.deps)
    assert.are.equal("tcp://portainer-agent.internal.thinkheads.ai:9001", ep.want.url)
    assert.are.equal("10.0.0.111", ep.want.server.ip)
    local st = site.by_id["stack:thinkheads_ai_app@1002"]
    assert.are.equal("production", st.want.environment)
    assert.are.same({ name = "DATABASE_PASS", value = "PROD_SECRET_PASSWORD" }, st.want.variables[2])
    assert.is_true(has(st.deps, "portainer_endpoint:1002"))
    local tdeps = site.by_id["traefik:config"].deps
    assert.are.same({ "lxc:102", "step_ca:config", "guest_ready:102", "dns_server:host" }, { table.unpack(tdeps, 1, 4) })
    assert.is_true(has(tdeps, "firewall:1002"))
    assert.are.equal("lxc:101", site.by_id["nginx_gateway:config"].want.guest)
    assert.are.equal("lxc:103", site.by_id["step_ca:config"].want.guest)
    local names = {}
    for _, s in ipairs(site.by_id["traefik:config"].want.services) do names[#names + 1] = s.name end
    assert.is_true(has(names, "granite-embedding") and has(names, "portainer"))
  end)

  it("gives every resource a unique id made of type and name, deps inside the site", function()
    local seen = {}
    for _, r in ipairs(site.resources) do
      assert.is_nil(seen[r.id])
      seen[r.id] = true
      assert.are.equal(r.type .. ":" .. r.name, r.id)
      assert.is_truthy(({ host = true, guest = true, sync = true })[r.scope])
      assert.is_table(r.want)
      assert.is_string(r.source.file)
      for _, d in ipairs(r.deps) do assert.is_truthy(site.by_id[d], r.id .. " -> " .. d) end
    end
  end)
end)

describe("the example site in etc/", function()
  it("loads clean (its secrets given)", function()
    local site, problems = config.load(sitefix.SRC .. "/etc", { getenv = sitefix.getenv() })
    assert.is_table(site, errors_of(problems))
    assert.are.equal(0, #problems)
  end)

  it("needs only the stack secrets of the environments it deploys", function()
    local site, problems = config.load(sitefix.SRC .. "/etc", { getenv = sitefix.getenv { "POSTGRES_TEST_PASSWORD" } })
    assert.is_table(site, errors_of(problems))
  end)
end)

describe("defaults", function()
  local site = assert(load("good"))

  it("applies proxmox_defaults.lxc where a container says nothing", function()
    local dns, gitea = site.by_id["lxc:110"].want, site.by_id["lxc:140"].want
    assert.are.same({ 1024, 1, 512, "tank-ct-disks", 8 }, { dns.memory_mb, dns.cores, dns.swap_mb, dns.storage_pool, dns.storage_size_gb })
    assert.are.same({ 2048, 2, 32 }, { gitea.memory_mb, gitea.cores, gitea.storage_size_gb })
    assert.are.equal("vmbr0", dns.network_config.bridge)          -- merged into the CT's own network_config
    assert.are.same({ "1.1.1.1" }, dns.network_config.nameservers) -- the CT's own value wins
    assert.are.same({ "192.168.10.10" }, gitea.network_config.nameservers)
  end)

  it("applies the schemas' defaults last", function()
    local w = site.by_id["lxc:110"].want
    assert.is_true(w.unprivileged)
    assert.are.equal("none", w.portainer_role)
    assert.is_false(w.enable_lifecycle_snapshots)
    assert.are.equal(false, site.by_id["vm:2001"].want.is_template)
  end)

  it("applies vm_defaults and the host's ubuntu_release to VMs", function()
    local w = site.by_id["vm:2001"].want
    assert.are.same({ 2, 4096, 32, "tank-vm-disks", "vmbr0", "noble" },
      { w.cores, w.memory_mb, w.disk_size_gb, w.storage_pool, w.network_bridge, w.ubuntu_release })
    assert.are.equal(4, site.by_id["vm:2002"].want.cores)
  end)

  it("expands count into consecutive IDs, suffixed names and addresses", function()
    local a, b = site.by_id["vm:2101"].want, site.by_id["vm:2102"].want
    assert.are.same({ "ci-runner-1", "ci-runner-2" }, { a.name, b.name })
    assert.are.same({ "192.168.10.31/24", "192.168.10.32/24" }, { a.network_config.ip, b.network_config.ip })
    assert.is_nil(site.by_id["vm:2103"])
    assert.are.equal("/vms/3", site.by_id["vm:2102"].source.pointer)
  end)

  it("reads both forms of dataset properties as objects", function()
    assert.are.same({ recordsize = "64K", compression = "lz4", quota = "1T" }, site.by_id["zfs_dataset:tank/vm-disks"].want.properties)
    assert.are.same({ recordsize = "16K", compression = "lz4", quota = "500G" }, site.by_id["zfs_dataset:tank/ct-disks"].want.properties)
  end)

  it("reads legacy proxmox_defaults.lxc feature flags as default pct_options", function()
    local s = assert(load("good", { { op = "set", file = "hypervisor", pointer = "/proxmox_defaults/lxc/features", value = "nesting=1,keyctl=1" } }))
    assert.are.same({ "nesting=1", "keyctl=1" }, s.by_id["lxc:110"].want.pct_options)
    assert.are.same({ "nesting=1", "keyctl=1" }, s.by_id["lxc:140"].want.pct_options) -- its own list
  end)
end)

describe("secrets", function()
  it("resolves env: references and registers them for redaction", function()
    local site = assert(load("good"))
    local ep = site.by_id["portainer_endpoint:2002"].want
    assert.are.equal(sitefix.ENV.PORTAINER_ADMIN_PASSWORD, ep.admin_password)
    assert.are.equal("x (secret) y", log.scrub("x " .. sitefix.ENV.PORTAINER_ADMIN_PASSWORD .. " y"))
    local pg = site.by_id["stack:postgres@2002"].want.variables[2]
    assert.are.same({ name = "POSTGRES_PASSWORD", value = sitefix.ENV.POSTGRES_PASSWORD }, pg)
    -- the files keep the reference
    assert.are.same({ secret = "env:PORTAINER_ADMIN_PASSWORD" }, site.files.hypervisor.portainer_api.admin_password)
  end)

  it("resolves file: references (one trailing newline dropped)", function()
    local dir = sitefix.tmpdir()
    assert(fs.write(dir .. "/pw", "file-secret-value-123\n"))
    local site, problems = load("good", { { op = "set", file = "hypervisor", pointer = "/portainer_api/admin_password",
      value = { secret = "file:" .. dir .. "/pw" } } })
    sitefix.rmdir(dir)
    assert.is_table(site, errors_of(problems))
    assert.are.equal("file-secret-value-123", site.host.portainer_api.admin_password)
    assert.are.equal("(secret)", log.scrub("file-secret-value-123"))
  end)

  it("warns about a secret too short to mask readably", function()
    local dir = sitefix.tmpdir()
    assert(fs.write(dir .. "/pw", "ab\n"))
    local site, problems = load("good", { { op = "set", file = "hypervisor", pointer = "/portainer_api/admin_password",
      value = { secret = "file:" .. dir .. "/pw" } } })
    sitefix.rmdir(dir)
    assert.is_table(site, errors_of(problems))
    local found
    for _, p in ipairs(site.warnings) do
      if p.pointer == "/portainer_api/admin_password" then found = p end
    end
    assert.is_table(found, "no warning for the short secret")
    assert.matches("this secret is 2 characters long", found.message, 1, true)
    assert.is_nil(found.message:find("ab", 1, true))
  end)

  it("names the file and pointer of a missing secret", function()
    local site, problems = load("good", nil, { getenv = sitefix.getenv { "PHOENIX_ADMIN_PASSWORD_HASH" } })
    assert.is_nil(site)
    assert.are.same({ "phoenix_hypervisor_config.json", "/users/password_hash" }, { problems[1].file, problems[1].pointer })
    assert.are.equal("secret env:PHOENIX_ADMIN_PASSWORD_HASH is not set", problems[1].message)
  end)

  it("can leave references unresolved", function()
    local site = assert(load("good", nil, { resolve_secrets = false, getenv = function() return nil end }))
    assert.are.same({ secret = "env:PORTAINER_ADMIN_PASSWORD" }, site.host.portainer_api.admin_password)
  end)
end)

describe("site-level fields", function()
  it("target, recipes_dir and features_dir (relative to the config dir)", function()
    local site = assert(load("good", {
      { op = "set", file = "hypervisor", pointer = "/recipes_dir", value = "recipes" },
      { op = "set", file = "hypervisor", pointer = "/features_dir", value = "/opt/site/features" },
    }))
    assert.are.same({ type = "pve" }, site.target)
    assert.matches("^/tmp/phoenix%-test%-%d+%-%d+/recipes$", site.recipes_dir)
    assert.are.equal("/opt/site/features", site.features_dir)
  end)

  it("accepts a site's own feature from features_dir", function()
    local patches = {
      { op = "set", file = "hypervisor", pointer = "/features_dir", value = "features" },
      { op = "set", file = "lxc", pointer = "/lxc_configs/140/features/-", value = "gitea_setup" },
    }
    local dir = sitefix.site("good", patches)
    assert(fs.mkdir(dir .. "/features"))
    assert(fs.write(dir .. "/features/gitea_setup.sh", "#!/bin/sh\n"))
    local site, problems = config.load(dir, { getenv = sitefix.getenv() })
    fs.remove(dir .. "/features/gitea_setup.sh")
    local site2, problems2 = config.load(dir, { getenv = sitefix.getenv() })
    sitefix.rmdir(dir)
    assert.is_table(site, errors_of(problems))
    assert.is_nil(site2)
    assert.matches("unknown feature gitea_setup", errors_of(problems2), 1, true)
  end)

  it("turns site_resources into resources with their depends_on", function()
    local site = assert(load("good", { { op = "set", file = "hypervisor", pointer = "/site_resources", value = {
      { type = "backup_job", name = "nightly", scope = "sync", depends_on = { "lxc:140", "pve_storage:tank-backups" }, schedule = "daily" },
      { type = "cron_entry", name = "scrub", depends_on = { "backup_job:nightly" } },
    } } }))
    local r = site.by_id["backup_job:nightly"]
    assert.are.same({ "sync", { "lxc:140", "pve_storage:tank-backups" }, "daily" }, { r.scope, r.deps, r.want.schedule })
    assert.are.equal("host", site.by_id["cron_entry:scrub"].scope)
  end)

  it("checks resource types against a recipe registry when given one", function()
    local reg = setmetatable({}, { __index = function(_, t) return t ~= "samba_shares" and {} or nil end })
    local site, problems = load("good", nil, { recipes = reg })
    assert.is_nil(site)
    assert.matches("no recipe for resource type samba_shares", errors_of(problems), 1, true)
  end)

  it("refuses unknown options", function()
    assert.has_error(function() config.load("/nonexistent", { bogus = true }) end)
  end)

  it("reports a missing config directory", function()
    local site, problems = config.load("/nonexistent/phoenix-site")
    assert.is_nil(site)
    assert.matches("does not exist", problems[1].message)
    assert.is_string(problems[1].hint)
  end)

  it("stops after schema errors (the cross-checks need the shapes)", function()
    local site, problems = load("good", {
      { op = "set", file = "lxc", pointer = "/lxc_configs/110/cores", value = "two" },
      { op = "set", file = "lxc", pointer = "/lxc_configs/120/dependencies", value = { "555" } },
    })
    assert.is_nil(site)
    local text = errors_of(problems)
    assert.matches("expected integer", text)
    assert.is_nil(text:find("no such container", 1, true))
  end)
end)
