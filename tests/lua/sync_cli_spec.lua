-- `phoenix sync` from the command line: a site in files, the Portainer
-- stand-in behind nginx (TLS), a git daemon, and the guests reached
-- through the test guest driver (tests/helpers/phoenix_fake_guests.lua).
local fs = require "px.fs"
local json = require "px.json"
local servers = require "servers"
local gitrepo = require "gitrepo"
local kit = require "testkit"

local PASSWORD = "portainer-admin-pass-1"
local PG_PASSWORD = "pg-very-secret-1"

describe("phoenix sync", function()
  local backend, nginx, daemon, dir, repo, pki

  setup(function()
    backend = servers.start_portainer()
    nginx = servers.start_nginx(backend.port)
  end)
  teardown(function()
    nginx:stop()
    backend:stop()
  end)

  local function write_json(path, doc) kit.write(path, json.encode(doc)) end

  before_each(function()
    dir = kit.tmpdir()
    backend:configure { version = "2.21.4" }
    pki = nginx.pki
    assert(fs.mkdir(dir .. "/git"))
    repo = gitrepo.new(dir .. "/git", "stacks")
    repo:commit({ ["whoami/docker-compose.yml"] = "services:\n  whoami:\n    image: traefik/whoami\n" }, "first")
    daemon = servers.start_git_daemon(dir .. "/git")
    local etc = dir .. "/phoenix/etc"
    write_json(etc .. "/phoenix_hypervisor_config.json", {
      domain_name = "lab.example.lan",
      network = { portainer_server_port = nginx.tls, portainer_agent_port = 9001 },
      portainer_api = { admin_user = "admin", admin_password = { secret = "env:PORTAINER_ADMIN_PASSWORD" },
        url = "https://localhost:" .. nginx.tls, ca_file = pki.ca_crt },
      step_ca = { root_ca_name = "Lab CA", dns_name = "ca.lab.example.lan", provisioner_name = "admin@lab" },
    })
    write_json(etc .. "/phoenix_lxc_configs.json", { lxc_configs = {
      ["101"] = { name = "nginx-gateway", template = "local:vztmpl/debian-12.tar.zst", features = { "trusted_ca" }, network_config = { ip = "10.0.0.153/24" },
        traefik_service = { name = "nginx", port = 443 } },
      ["120"] = { name = "step-ca", template = "local:vztmpl/debian-12.tar.zst", features = { "step_ca" }, network_config = { ip = "10.0.0.10/24" } },
      ["130"] = { name = "traefik", template = "local:vztmpl/debian-12.tar.zst", features = { "traefik" }, network_config = { ip = "10.0.0.12/24" } },
      ["140"] = { name = "git", template = "local:vztmpl/debian-12.tar.zst", network_config = { ip = "10.0.0.140/24" },
        traefik_service = { name = "git", port = 3000 } },
    } })
    write_json(etc .. "/phoenix_vm_configs.json", { vms = {
      { vmid = 2001, name = "portainer", portainer_role = "primary", network_config = { ip = "10.0.0.21/24" },
        docker_stacks = { "portainer_service" } },
      { vmid = 2002, name = "apps", portainer_role = "agent", portainer_environment_name = "apps",
        network_config = { ip = "10.0.0.22/24" }, features = { "trusted_ca" }, docker_stacks = { "whoami", "postgres" } },
    } })
    write_json(etc .. "/phoenix_stacks_config.json", { docker_stacks = {
      portainer_service = { compose_file_path = "stacks/portainer/docker-compose.yml" },
      whoami = { git = { url = daemon.url .. "/stacks", ref = "main", compose_file = "whoami/docker-compose.yml" },
        environments = { production = { variables = { { name = "WHOAMI_NAME", value = "apps" } }, services = {
          whoami = { traefik_labels = { "traefik.enable=true", "traefik.http.routers.whoami.rule=Host(`whoami.lab.example.lan`)",
            "traefik.http.services.whoami.loadbalancer.server.port=80" } } } } } },
      postgres = { compose_file_path = "stacks/postgres/docker-compose.yml", environments = { production = {
        variables = { { name = "POSTGRES_USER", value = "apps" },
          { name = "POSTGRES_PASSWORD", value = { secret = "env:POSTGRES_PASSWORD" } } } } } },
    } })
    kit.write(dir .. "/phoenix/stacks/portainer/docker-compose.yml", "services:\n  portainer:\n    image: portainer/portainer-ce\n")
    kit.write(dir .. "/phoenix/stacks/postgres/docker-compose.yml", "services:\n  db:\n    image: postgres:16\n")
    -- what the guests hold already: the CA's files, the gateway's certificate
    local g = dir .. "/guests"
    kit.write(g .. "/120/root/.step/config/ca.json", '{"authority":{"provisioners":[]}}\n')
    kit.write(g .. "/120/root/.step/certs/root_ca.crt", fs.read(pki.ca_crt))
    kit.write(g .. "/101/etc/nginx/ssl/lab.example.lan.crt", fs.read(pki.server_crt))
    kit.write(g .. "/101/etc/nginx/ssl/lab.example.lan.key", fs.read(pki.server_key))
    assert(fs.mkdir(dir .. "/root"))
  end)
  after_each(function()
    daemon:stop()
    kit.cleanup(dir)
  end)

  local function phoenix(args, env)
    local argv = { "lua", kit.source_dir .. "/tests/helpers/phoenix_fake_guests.lua", dir .. "/guests" }
    for _, a in ipairs(args) do argv[#argv + 1] = a end
    for _, a in ipairs { "--config-dir", dir .. "/phoenix/etc", "--target", "lxc", "--target-opt", "root=" .. dir .. "/root" } do
      argv[#argv + 1] = a
    end
    local e = { PATH = os.getenv("PATH"), PORTAINER_ADMIN_PASSWORD = PASSWORD, POSTGRES_PASSWORD = PG_PASSWORD,
      PHOENIX_CACHE_DIR = dir .. "/cache" }
    for k, v in pairs(env or {}) do e[k] = v end
    return kit.phoenix(argv, { env = e })
  end

  local function lock() return { "--lock-file", dir .. "/lock" } end

  local function results(r)
    local doc = json.decode(r.stdout)
    local by, order = {}, {}
    for _, x in ipairs(doc.resources) do
      by[x.id] = x
      order[#order + 1] = x.id
    end
    return by, order, doc
  end

  local function index(order, id)
    for i, x in ipairs(order) do
      if x == id then return i end
    end
  end

  it("plans sync all in the order readiness, Traefik, Portainer, Traefik again, and hides secrets", function()
    local r = phoenix { "sync", "all", "--plan", "--json" }
    assert.equal(0, r.code, r.stderr)
    local by, order = results(r)
    assert.equal("in_sync", by["guest_ready:130"].status)
    for _, id in ipairs { "traefik:config", "portainer_endpoint:2002", "stack:whoami@2002",
      "stack:postgres@2002", "stack:portainer_service@2001", "traefik:stacks", "nginx_gateway:config", "step_ca:config" } do
      assert.truthy(by[id], id)
      assert.equal("pending", by[id].status, id .. ": " .. tostring(by[id].error))
    end
    assert.truthy(index(order, "guest_ready:2002") < index(order, "traefik:config"))
    assert.truthy(index(order, "traefik:config") < index(order, "portainer_endpoint:2002"))
    assert.truthy(index(order, "stack:portainer_service@2001") < index(order, "portainer_endpoint:2002"))
    assert.truthy(index(order, "portainer_endpoint:2002") < index(order, "stack:whoami@2002"))
    assert.truthy(index(order, "stack:whoami@2002") < index(order, "traefik:stacks"))
    assert.not_matches(PG_PASSWORD, r.stdout, 1, true)
    assert.not_matches(PASSWORD, r.stdout .. r.stderr, 1, true)
    local text = phoenix { "sync", "all", "--plan" }
    if os.getenv("SHOW_PLAN") then io.stderr:write(text.stdout) end
    assert.matches("stack:postgres@2002", text.stdout, 1, true)
    assert.not_matches(PG_PASSWORD, text.stdout, 1, true)
    assert.same({}, backend:control("state").users) -- a plan initialises nothing
  end)

  it("converges everything, and a second sync changes nothing", function()
    local r = phoenix { "sync", "all", "--json", table.unpack(lock()) }
    assert.equal(0, r.code, r.stdout .. r.stderr)
    local state = backend:control("state")
    assert.equal("apps", state.endpoints[1].Name)
    assert.equal("tcp://10.0.0.22:9001", state.endpoints[1].URL)
    local names = {}
    for _, s in ipairs(state.stacks) do names[#names + 1] = s.Name end
    table.sort(names)
    assert.same({ "postgres", "whoami" }, names)
    local routes = fs.read(dir .. "/guests/130/etc/traefik/dynamic/phoenix-stacks.yml")
    assert.matches('rule: "Host(`whoami.lab.example.lan`)"', routes, 1, true)
    assert.matches('url: "http://10.0.0.22:80"', routes, 1, true)
    assert.matches("server_name git.lab.example.lan;",
      fs.read(dir .. "/guests/101/etc/nginx/conf.d/phoenix-gateway.conf"), 1, true)
    assert.equal(fs.read(pki.ca_crt), fs.read(dir .. "/guests/2002/usr/local/share/ca-certificates/phoenix-root-ca.crt"))
    assert.matches('"type":"ACME"', fs.read(dir .. "/guests/120/root/.step/config/ca.json"), 1, true)

    backend:reset()
    local again = phoenix { "sync", "all", "--json", table.unpack(lock()) }
    assert.equal(0, again.code, again.stderr)
    local _, _, doc = results(again)
    assert.equal(0, doc.summary.changes)
    for _, q in ipairs(backend:requests()) do
      assert.truthy(q:find("^GET ") or q == "POST /api/auth", q)
    end
  end)

  it("syncs one stack with 'sync stack NAME to VMID'", function()
    assert.equal(0, phoenix({ "sync", "all", table.unpack(lock()) }).code)
    kit.write(dir .. "/phoenix/stacks/postgres/docker-compose.yml", "services:\n  db:\n    image: postgres:17\n")
    repo:commit({ ["whoami/docker-compose.yml"] = "services:\n  whoami:\n    image: traefik/whoami:v2\n" }, "second")
    backend:reset()
    local r = phoenix { "sync", "stack", "postgres", "to", "2002", "--json", table.unpack(lock()) }
    assert.equal(0, r.code, r.stderr)
    local by = results(r)
    assert.equal("changed", by["stack:postgres@2002"].status)
    assert.is_nil(by["stack:whoami@2002"])
    local puts = {}
    for _, q in ipairs(backend:requests()) do
      if q:find("^PUT") then puts[#puts + 1] = q end
    end
    assert.equal(1, #puts)
    local bad = phoenix { "sync", "stack", "nope", "to", "2002" }
    assert.equal(2, bad.code)
    assert.matches("no resource stack:nope@2002", bad.stderr, 1, true)
  end)

  it("fails the Portainer resources when Portainer is down and converges the rest", function()
    local port = servers.free_ports(1)[1]
    local hyp = json.decode(fs.read(dir .. "/phoenix/etc/phoenix_hypervisor_config.json"))
    hyp.portainer_api.url = "https://localhost:" .. port
    write_json(dir .. "/phoenix/etc/phoenix_hypervisor_config.json", hyp)
    local r = phoenix { "sync", "all", "--json", table.unpack(lock()) }
    assert.equal(1, r.code)
    local by = results(r)
    assert.equal("failed", by["portainer_endpoint:2002"].status)
    assert.matches("is not reachable", by["portainer_endpoint:2002"].error)
    assert.equal("skipped", by["stack:whoami@2002"].status)
    assert.equal("changed", by["traefik:config"].status)
    assert.equal("changed", by["stack:portainer_service@2001"].status)
    assert.equal("changed", by["nginx_gateway:config"].status)
  end)
end)
