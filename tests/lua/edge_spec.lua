-- traefik, nginx_gateway, step_ca and guest_ready through the engine with
-- a test guest driver; nginx -t and openssl are the real programs.
local engine = require "phoenix.engine"
local recipes = require "phoenix.recipes"
local targets = require "phoenix.target"
local traefik = require "phoenix.traefik"
local stepca = require "phoenix.stepca"
local exec = require "px.exec"
local fs = require "px.fs"
local json = require "px.json"
local servers = require "servers"
local fake_guest = require "fake_guest"
local kit = require "testkit"

-- Labels as in a real site's phoenix_stacks_config.json
-- (reference phoenix-site, SirHeads/Testing-ideas 0385ea2: qdrant_service, portainer_service).
local QDRANT = {
  "traefik.enable=true",
  "traefik.http.routers.qdrant.rule=Host(`qdrant.internal.example.lan`)",
  "traefik.http.routers.qdrant.entrypoints=websecure",
  "traefik.http.routers.qdrant.tls=true",
  "traefik.http.routers.qdrant.tls.certresolver=internal-resolver",
  "traefik.http.services.qdrant.loadbalancer.server.port=6333",
}
local PORTAINER = {
  "traefik.enable=true",
  "traefik.http.routers.portainer.rule=Host(`portainer.internal.example.lan`)",
  "traefik.http.routers.portainer.entrypoints=web",
  "traefik.http.services.portainer.loadbalancer.server.port=9000",
  "traefik.http.services.portainer.loadbalancer.server.scheme=http",
}

local function yaml_load(path)
  local r = assert(exec.run { argv = { "/usr/bin/python3", "-c",
    "import json, sys, yaml; print(json.dumps(yaml.safe_load(open(sys.argv[1]))))", path } })
  assert(r.code == 0, r.stderr)
  return json.decode(r.stdout)
end

describe("edge recipes", function()
  local dir, reg, guests

  setup(function()
    reg = assert(recipes.load { dirs = { { dir = kit.source_dir .. "/recipes", origin = "built-in" } } })
  end)
  before_each(function()
    dir = kit.tmpdir()
    guests = fake_guest.new(dir .. "/guests")
  end)
  after_each(function() kit.cleanup(dir) end)

  local function resource(id, want, deps)
    local t, name = id:match("^([^:]+):(.+)$")
    return { id = id, type = t, name = name, want = want, deps = deps or {}, scope = "sync" }
  end

  local function run(list, o)
    local t = assert(targets.open { type = "lxc", root = dir })
    t.drivers = { vm = guests, ct = guests }
    local by_id = {}
    for _, r in ipairs(list) do by_id[r.id] = r end
    local opts = { site = { resources = list, by_id = by_id }, resources = list, recipes = reg, target = t,
      mode = "apply", jobs = 4 }
    for k, v in pairs(o or {}) do opts[k] = v end
    return assert(engine.run(opts))
  end

  local SERVICES = {
    { name = "portainer", port = 9443, scheme = "https", host = "portainer.example.lan", backend_ip = "10.0.0.111",
      guest = "vm:1001" },
    { name = "git", port = 3000, scheme = "http", host = "git.example.lan", backend_ip = "10.0.0.140", guest = "lxc:140" },
  }

  describe("traefik", function()
    local function config(services)
      return resource("traefik:config", { guest = "lxc:102", ip = "10.0.0.12", domain_name = "example.lan",
        services = services or SERVICES })
    end

    it("writes the guests' routes once and only when they change", function()
      local rep = run { config() }
      assert.equal("changed", rep.results["traefik:config"].status)
      local path = guests:path(102, "/etc/traefik/dynamic/phoenix-services.yml")
      local doc = yaml_load(path)
      assert.same({ rule = "Host(`git.example.lan`)", service = "git", entryPoints = { "web" } }, doc.http.routers.git)
      assert.same({ loadBalancer = { servers = { { url = "https://10.0.0.111:9443" } } } }, doc.http.services.portainer)
      guests.calls = {}
      assert.equal(0, run({ config() }).change_count)
      assert.same({}, guests:calls_matching("^push"))
      local plan = run({ config { SERVICES[1], { name = "wiki", port = 80, host = "wiki.example.lan",
        backend_ip = "10.0.0.150", guest = "lxc:150" } } }, { mode = "plan" })
      local c = plan.results["traefik:config"].changes[1]
      assert.equal("update", c.action)
      assert.equal("routers +wiki -git", c.note)
      assert.matches("^2 routers, sha256 %x+$", c.to)
    end)

    it("turns the stacks' labels into routers and services at the VM's address", function()
      local r = resource("traefik:stacks", { guest = "lxc:102", ip = "10.0.0.12", stacks = {
        { stack = "qdrant_service", vmid = 1002, guest = "vm:1002", ip = "10.0.0.102",
          services = { qdrant = { traefik_labels = QDRANT } } },
        { stack = "portainer_service", vmid = 1001, guest = "vm:1001", ip = "10.0.0.111",
          services = { portainer = { traefik_labels = PORTAINER } } } } })
      assert.equal("changed", run({ r }).results["traefik:stacks"].status)
      local doc = yaml_load(guests:path(102, "/etc/traefik/dynamic/phoenix-stacks.yml"))
      assert.same({ rule = "Host(`qdrant.internal.example.lan`)", entryPoints = { "websecure" }, service = "qdrant",
        tls = { certResolver = "internal-resolver" } }, doc.http.routers.qdrant)
      assert.same({ servers = { { url = "http://10.0.0.102:6333" } } }, doc.http.services.qdrant.loadBalancer)
      assert.same({ servers = { { url = "http://10.0.0.111:9000" } } }, doc.http.services.portainer.loadBalancer)
      assert.equal(0, run({ r }).change_count)
    end)

    it("names a label it cannot use and the stack it is in", function()
      local cfg, err = traefik.from_stacks { { stack = "s", vmid = 7, ip = "10.0.0.7",
        services = { web = { traefik_labels = { "traefik.http.routers.web.rule=Host(`a`)",
          "traefik.http.middlewares.x.redirectscheme.scheme=https" } } } } }
      assert.is_nil(cfg)
      assert.equal("stack s@7, service web: label 'traefik.http.middlewares.x.redirectscheme.scheme=https' is not one "
        .. "phoenix can turn into file-provider configuration", err)
      _, err = traefik.from_stacks { { stack = "s", vmid = 7, ip = "10.0.0.7",
        services = { web = { traefik_labels = { "traefik.http.routers.web.rule=Host(`a`)" } } } } }
      assert.equal("stack s@7, service web: router web: say which service (several are defined)", err)
      _, err = traefik.from_services { { name = "x", port = 1, host = "x.lan", guest = "lxc:5" } }
      assert.equal("lxc:5: traefik_service x: the guest has no static IPv4 address to route to", err)
    end)
  end)

  describe("nginx_gateway", function()
    local pki
    before_each(function()
      pki = servers.make_pki(dir)
      guests:write(101, "/etc/nginx/ssl/example.lan.crt", fs.read(pki.server_crt))
      guests:write(101, "/etc/nginx/ssl/example.lan.key", fs.read(pki.server_key))
      guests.handlers.nginx = function() return { code = 0, stdout = "", stderr = "" } end
    end)

    local function gateway(services)
      return resource("nginx_gateway:config", { guest = "lxc:101", ip = "10.0.0.153", domain_name = "example.lan",
        traefik = { guest = "lxc:102", ip = "10.0.0.12", port = 80 }, services = services or SERVICES,
        tls = { cert = "/etc/nginx/ssl/example.lan.crt", key = "/etc/nginx/ssl/example.lan.key" } })
    end

    it("checks with nginx -t, pushes, checks in the container and reloads, once", function()
      local rep = run { gateway() }
      assert.equal("changed", rep.results["nginx_gateway:config"].status)
      local conf = guests:read(101, "/etc/nginx/conf.d/phoenix-gateway.conf")
      assert.matches("server_name git.example.lan portainer.example.lan;", conf, 1, true)
      assert.matches("proxy_pass http://10.0.0.12:80;", conf, 1, true)
      assert.same({ "exec 101 nginx -t", "exec 101 nginx -s reload" }, guests:calls_matching("^exec 101 nginx"))
      guests.calls = {}
      assert.equal(0, run({ gateway() }).change_count)
      assert.same({}, guests:calls_matching("nginx %-s reload"))
    end)

    it("pushes nothing when nginx -t rejects the certificate and key", function()
      assert(fs.mkdir(dir .. "/other"))
      local other = servers.make_pki(dir .. "/other")
      guests:write(101, "/etc/nginx/ssl/example.lan.key", fs.read(other.server_key))
      local rep = run { gateway() }
      assert.equal("failed", rep.results["nginx_gateway:config"].status)
      assert.matches("nginx %-t rejected the generated gateway configuration: .*key values mismatch",
        rep.results["nginx_gateway:config"].error)
      assert.same({}, guests:calls_matching("^push"))
    end)

    it("puts the old file back when nginx -t fails in the container", function()
      guests:write(101, "/etc/nginx/conf.d/phoenix-gateway.conf", "# old\n")
      guests.handlers.nginx = function(_, argv)
        if argv[2] == "-t" then return { code = 1, stdout = "", stderr = "nginx: [emerg] duplicate listen" } end
        return { code = 0, stdout = "", stderr = "" }
      end
      local rep = run { gateway() }
      assert.matches("`nginx %-t` exited 1: nginx: %[emerg%] duplicate listen %(the previous file is back%)",
        rep.results["nginx_gateway:config"].error)
      assert.equal("# old\n", guests:read(101, "/etc/nginx/conf.d/phoenix-gateway.conf"))
      assert.same({}, guests:calls_matching("reload"))
    end)
  end)

  describe("step_ca", function()
    local pki, now
    local CA_JSON = [[{
   "root": "/root/.step/certs/root_ca.crt",
   "address": ":9000",
   "dnsNames": ["ca.example.lan"],
   "authority": {
      "claims": {},
      "provisioners": [
         { "name": "admin@example.lan", "type": "JWK", "key": { "kty": "EC" } }
      ]
   },
   "tls": { "minVersion": 1.2 }
}
]]

    before_each(function()
      pki = servers.make_pki(dir)
      now = os.time()
      guests:write(103, "/root/.step/config/ca.json", CA_JSON)
      guests:write(103, "/root/.step/certs/root_ca.crt", fs.read(pki.ca_crt))
      guests.handlers.systemctl = function() return { code = 0, stdout = "", stderr = "" } end
      guests.handlers["update-ca-certificates"] = guests.handlers.systemctl
      -- `step ca renew`: a new certificate, valid from now
      guests.handlers.step = function(id, argv)
        local crt = servers.sign_dated(dir, "renewed", "gw", os.time() - 60, os.time() + 2 * 86400)
        guests:write(id, argv[#argv - 1], fs.read(crt))
        return { code = 0, stdout = "", stderr = "" }
      end
    end)

    local function ca(certs)
      return resource("step_ca:config", { guest = "lxc:103", ip = "10.0.0.10", ca_url = "https://10.0.0.10:9000",
        acme_provisioner = "acme", step_path = "/root/.step", trusted = { "lxc:101", "vm:1002" },
        certificates = certs or {} })
    end

    it("adds the ACME provisioner in place and hands the root CA to trusted guests", function()
      local rep = run { ca() }
      assert.equal("changed", rep.results["step_ca:config"].status)
      local text = guests:read(103, "/root/.step/config/ca.json")
      assert.equal(CA_JSON:gsub('"provisioners": %[\n', '"provisioners": [{"name":"acme","type":"ACME"},\n'), text)
      assert.matches('"claims": {}', text, 1, true)
      for _, id in ipairs { 101, 1002 } do
        assert.equal(fs.read(pki.ca_crt), guests:read(id, "/usr/local/share/ca-certificates/phoenix-root-ca.crt"))
      end
      assert.same({ "exec 103 systemctl reload-or-restart step-ca" }, guests:calls_matching("systemctl"))
      assert.equal(2, #guests:calls_matching("update%-ca%-certificates"))
      guests.calls = {}
      assert.equal(0, run({ ca() }).change_count)
      assert.same({}, guests:calls_matching("^push"))
    end)

    it("renews a certificate with less than a third of its lifetime left, and not a fresh one", function()
      local old = servers.sign_dated(dir, "old", "gw", now - 2 * 86400, now + 12 * 3600)
      local fresh = servers.sign_dated(dir, "fresh", "traefik", now - 3600, now + 2 * 86400)
      guests:write(101, "/etc/nginx/ssl/gw.crt", fs.read(old))
      guests:write(102, "/etc/traefik/t.crt", fs.read(fresh))
      local certs = { { guest = "lxc:101", cert = "/etc/nginx/ssl/gw.crt", key = "/etc/nginx/ssl/gw.key",
        reload = { "nginx", "-s", "reload" } }, { guest = "lxc:102", cert = "/etc/traefik/t.crt", key = "/etc/traefik/t.key" } }
      guests.handlers.nginx = guests.handlers.systemctl
      local plan = run({ ca(certs) }, { mode = "plan" })
      local renew = {}
      for _, c in ipairs(plan.results["step_ca:config"].changes) do
        if c.field:find("^certificate") then renew[#renew + 1] = c.field end
      end
      assert.same({ "certificate lxc:101:/etc/nginx/ssl/gw.crt" }, renew)
      run { ca(certs) }
      assert.same({ "exec 101 step ca renew --force --ca-url https://10.0.0.10:9000 --root "
        .. "/usr/local/share/ca-certificates/phoenix-root-ca.crt /etc/nginx/ssl/gw.crt /etc/nginx/ssl/gw.key" },
        guests:calls_matching("step ca renew"))
      assert.same({ "exec 101 nginx -s reload" }, guests:calls_matching("^exec 101 nginx"))
      assert.equal(0, run({ ca(certs) }).change_count)
    end)

    it("reports a certificate it cannot read instead of renewing it", function()
      local rep = run({ ca { { guest = "lxc:101", cert = "/etc/nginx/ssl/none.crt", key = "/k" } } })
      local r = rep.results["step_ca:config"]
      assert.equal(1, #r.held)
      assert.matches("cannot be renewed: .*none%.crt", r.held[1].held)
    end)

    it("reads openssl's dates and applies the one-third rule", function()
      local nb, na = stepca.dates("notBefore=Nov 24 02:05:00 2025 GMT\nnotAfter=Nov 25 02:05:00 2025 GMT\n")
      assert.equal(1763949900, nb)
      assert.equal(1763949900 + 86400, na)
      assert.is_false(stepca.due(nb, na, nb + 57599))
      assert.is_true(stepca.due(nb, na, nb + 57600))
      assert.is_nil(stepca.parse_time("Feb 30 2025"))
    end)
  end)

  describe("guest_ready", function()
    it("passes when the guest and its Docker answer, and fails what depends on it when not", function()
      guests.handlers.docker = function(id)
        if id == 1002 then return { code = 1, stdout = "", stderr = "Cannot connect to the Docker daemon" } end
        return { code = 0, stdout = "27.0\n", stderr = "" }
      end
      local list = {
        resource("guest_ready:1001", { guest = "vm:1001", vmid = 1001, docker = true }),
        resource("guest_ready:1002", { guest = "vm:1002", vmid = 1002, docker = true, timeout = 0.3 }),
        resource("traefik:config", { guest = "lxc:102", ip = "10.0.0.12", services = SERVICES }, { "guest_ready:1002" }),
      }
      local rep = run(list)
      assert.equal("ok", rep.results["guest_ready:1001"].status)
      assert.equal("failed", rep.results["guest_ready:1002"].status)
      assert.matches("not ready after 0.3 s: vm:1002: `docker info .*` exited 1: Cannot connect to the Docker daemon",
        rep.results["guest_ready:1002"].error)
      assert.equal("skipped", rep.results["traefik:config"].status)
    end)
  end)
end)
