-- The portainer_endpoint and stack recipes through the engine, against
-- the Portainer stand-in behind nginx (TLS), git repositories on disk and a
-- test guest driver. Resources have the shapes the site loader gives.
local engine = require "phoenix.engine"
local recipes = require "phoenix.recipes"
local targets = require "phoenix.target"
local fs = require "px.fs"
local git = require "px.git"
local servers = require "servers"
local gitrepo = require "gitrepo"
local fake_guest = require "fake_guest"
local kit = require "testkit"

local PASSWORD = "correct-horse-battery"
local COMPOSE = "services:\n  web:\n    image: nginx:1.27\n"

describe("stack recipes", function()
  local backend, nginx, dir, reg, repo, guests

  setup(function()
    backend = servers.start_portainer()
    nginx = servers.start_nginx(backend.port)
    reg = assert(recipes.load { dirs = { { dir = kit.source_dir .. "/recipes", origin = "built-in" } } })
  end)
  teardown(function()
    nginx:stop()
    backend:stop()
  end)

  before_each(function()
    dir = kit.tmpdir()
    backend:configure { version = "2.21.4", admin = "admin:" .. PASSWORD }
    kit.write(dir .. "/phoenix/stacks/web/docker-compose.yml", COMPOSE)
    repo = gitrepo.new(dir, "apps")
    repo:commit({ ["app/docker-compose.yml"] = "services:\n  app:\n    image: busybox\n" }, "first")
    guests = fake_guest.new(dir .. "/guests")
    guests.handlers.docker = function() return { code = 0, stdout = "", stderr = "" } end
  end)
  after_each(function() kit.cleanup(dir) end)

  local function resource(id, want, deps)
    local t, name = id:match("^([^:]+):(.+)$")
    return { id = id, type = t, name = name, want = want, deps = deps or {}, scope = "sync" }
  end

  -- The site: VM 1002 (agent) with a compose stack and a git stack, VM
  -- 1001 (the Portainer server) with its own stack run by docker compose.
  local function site(o)
    o = o or {}
    local server = { guest = "vm:1001", ip = "127.0.0.1", port = o.port or nginx.tls, hostname = o.hostname or "localhost",
      ca_file = nginx.pki.ca_crt }
    local list = {
      resource("portainer_endpoint:1002", { guest = "vm:1002", vmid = 1002, name = "drphoenix", agent_host = "10.0.0.102",
        agent_ip = "10.0.0.102", agent_port = 9001, url = "tcp://10.0.0.102:9001", server = server,
        admin_user = "admin", admin_password = o.password or PASSWORD }),
      resource("stack:web@1002", { stack = "web", vmid = 1002, guest = "vm:1002", environment = "production",
        compose_file_path = "stacks/web/docker-compose.yml", endpoint = "portainer_endpoint:1002",
        variables = o.web_vars or { { name = "A", value = "1" }, { name = "DB_PASSWORD", value = "pw-123" } } },
        { "portainer_endpoint:1002" }),
      resource("stack:app@1002", { stack = "app", vmid = 1002, guest = "vm:1002", environment = "production",
        git = { url = "file://" .. repo.dir, ref = o.ref or "main", compose_file = "app/docker-compose.yml" },
        endpoint = "portainer_endpoint:1002", variables = {} }, { "portainer_endpoint:1002" }),
      resource("stack:portainer_service@1001", { stack = "portainer_service", vmid = 1001, guest = "vm:1001",
        environment = "production", compose_file_path = "stacks/web/docker-compose.yml",
        variables = { { name = "TZ", value = "UTC" } } }),
    }
    local by_id = {}
    for _, r in ipairs(list) do by_id[r.id] = r end
    return { dir = dir .. "/phoenix/etc", resources = list, by_id = by_id }
  end

  local function run(s, o)
    local t = assert(targets.open { type = "lxc", root = dir })
    t.drivers = { vm = guests, ct = guests }
    local opts = { site = s, resources = s.resources, recipes = reg, target = t, mode = "apply", jobs = 4,
      http_backoff = 0.01, cache_dir = dir .. "/cache" }
    for k, v in pairs(o or {}) do opts[k] = v end
    return assert(engine.run(opts))
  end

  local function status(rep)
    local out = {}
    for id, r in pairs(rep.results) do out[id] = r.status end
    return out
  end

  local function stack_named(name)
    for _, s in ipairs(backend:control("state").stacks) do
      if s.Name == name then return s end
    end
  end

  it("plans everything on a brand-new Portainer without changing it", function()
    backend:configure { version = "2.21.4" }
    local rep = run(site(), { mode = "plan" })
    assert.same({ ["portainer_endpoint:1002"] = "pending", ["stack:web@1002"] = "pending",
      ["stack:app@1002"] = "pending", ["stack:portainer_service@1001"] = "pending" }, status(rep))
    local c = rep.results["stack:web@1002"].changes[1]
    assert.equal("create", c.action)
    assert.matches("^stacks/web/docker%-compose%.yml %(sha256 %x+%)$", c.to)
    assert.equal("on Portainer environment 'drphoenix', created first", c.note)
    for _, r in ipairs(backend:requests()) do
      if r ~= "POST /api/auth" then assert.matches("^GET ", r) end
    end
    assert.same({}, backend:control("state").users)
    -- and the apply initialises the administrator, once
    backend:reset()
    local rep2 = run(site())
    assert.equal(4, rep2.counts.changed)
    local inits = 0
    for _, r in ipairs(backend:requests()) do
      if r == "POST /api/users/admin/init" then inits = inits + 1 end
    end
    assert.equal(1, inits)
  end)

  it("creates the environment and the stacks, then a second sync changes nothing", function()
    local s = site()
    local rep = run(s)
    assert.same({ ["portainer_endpoint:1002"] = "changed", ["stack:web@1002"] = "changed",
      ["stack:app@1002"] = "changed", ["stack:portainer_service@1001"] = "changed" }, status(rep))
    local state = backend:control("state")
    assert.equal(1, #state.endpoints)
    assert.equal("tcp://10.0.0.102:9001", state.endpoints[1].URL)
    local web = stack_named("web")
    assert.same({ { name = "A", value = "1" }, { name = "DB_PASSWORD", value = "pw-123" },
      { name = "PHOENIX_CONTENT_SHA256", value = fs.sha256(COMPOSE) }, { name = "PHOENIX_MANAGED", value = "1" } },
      web.Env)
    assert.equal(COMPOSE, web._file)
    local app = stack_named("app")
    assert.equal(repo:git("rev-parse", "HEAD"), app.GitConfig.ConfigHash)
    assert.equal("refs/heads/main", app.GitConfig.ReferenceName)
    assert.equal("app/docker-compose.yml", app.GitConfig.ConfigFilePath)
    -- the server's own stack: docker compose in VM 1001
    assert.equal(COMPOSE, guests:read(1001, "/opt/phoenix/stacks/portainer_service/docker-compose.yml"))
    assert.equal("TZ='UTC'\n", guests:read(1001, "/opt/phoenix/stacks/portainer_service/.env"))
    assert.same({ "exec 1001 docker compose --project-name portainer_service --file "
      .. "/opt/phoenix/stacks/portainer_service/docker-compose.yml --env-file /opt/phoenix/stacks/portainer_service/.env "
      .. "up --detach --remove-orphans" }, guests:calls_matching("^exec 1001 docker"))

    backend:reset()
    guests.calls = {}
    local again = run(s)
    assert.equal(0, again.change_count)
    assert.equal(4, again.counts.ok)
    local mutating = {}
    for _, r in ipairs(backend:requests()) do
      if not r:find("^GET ") and r ~= "POST /api/auth" then mutating[#mutating + 1] = r end
    end
    assert.same({}, mutating)
    assert.same({}, guests:calls_matching("^push"))
  end)

  it("redeploys on a new commit, a new compose file and new variables; secrets stay hidden", function()
    local s = site()
    run(s)
    repo:commit({ ["app/docker-compose.yml"] = "services:\n  app:\n    image: busybox:2\n" }, "second")
    kit.write(dir .. "/phoenix/stacks/web/docker-compose.yml", COMPOSE .. "    restart: always\n")
    s = site { web_vars = { { name = "A", value = "2" }, { name = "DB_PASSWORD", value = "pw-456" } } }
    local plan = run(s, { mode = "plan" })
    local function fields(id)
      local out = {}
      for _, c in ipairs(plan.results[id].changes) do out[#out + 1] = c.field .. (c.secret and " (secret)" or "") end
      return out
    end
    assert.same({ "compose", "env.A", "env.DB_PASSWORD (secret)" }, fields("stack:web@1002"))
    assert.same({ "commit" }, fields("stack:app@1002"))
    assert.same({ "compose" }, fields("stack:portainer_service@1001"))
    backend:reset()
    local rep = run(s)
    assert.equal(3, rep.counts.changed)
    local reqs = backend:requests()
    assert.truthy(table.concat(reqs, "\n"):find("PUT /api/stacks/%d+/git/redeploy%?endpointId=1"))
    assert.truthy(table.concat(reqs, "\n"):find("PUT /api/stacks/%d+%?endpointId=1"))
    assert.equal(repo:git("rev-parse", "HEAD"), stack_named("app").GitConfig.ConfigHash)
    assert.equal("pw-456", stack_named("web").Env[2].value)
    assert.equal(0, run(s).change_count)
  end)

  it("fetches git only when the ref moved", function()
    local fetches = 0
    local real = git.fetch
    git.fetch = function(...) fetches = fetches + 1 return real(...) end
    local ok, err = pcall(function()
      local s = site()
      run(s)
      assert.equal(1, fetches) -- the compose file checked before the create
      run(s)
      assert.equal(1, fetches)
      repo:commit({ ["app/x"] = "x" }, "moved")
      run(s)
      assert.equal(2, fetches)
    end)
    git.fetch = real
    assert(ok, err)
  end)

  it("fails clearly when the compose file is not at the new commit", function()
    local s = site()
    s.by_id["stack:app@1002"].want.git.compose_file = "missing.yml"
    local rep = run(s)
    assert.equal("failed", rep.results["stack:app@1002"].status)
    assert.matches("missing%.yml", rep.results["stack:app@1002"].error)
    assert.equal("changed", rep.results["stack:web@1002"].status)
    assert.is_nil(stack_named("app"))
  end)

  it("leaves a stack it did not create alone", function()
    backend:configure { version = "2.21.4", admin = "admin:" .. PASSWORD }
    local s = site()
    run(s, { resources = { s.resources[1] } })
    backend:control("stacks", { { Name = "web", EndpointId = 1, Env = { { name = "X", value = "1" } },
      StackFileContent = "services: {}\n" } })
    backend:reset()
    local rep = run(s)
    local r = rep.results["stack:web@1002"]
    assert.equal("ok", r.status)
    assert.equal(1, #r.held)
    assert.matches("was not created by phoenix", r.held[1].held)
    for _, q in ipairs(backend:requests()) do assert.not_matches("^PUT /api/stacks/1", q) end
    assert.equal("services: {}\n", stack_named("web")._file)
  end)

  it("creates git stacks on the old route of 2.18", function()
    backend:configure { version = "2.18.4", admin = "admin:" .. PASSWORD }
    local rep = run(site())
    assert.equal("changed", rep.results["stack:app@1002"].status)
    local joined = table.concat(backend:requests(), "\n")
    assert.truthy(joined:find("POST /api/stacks?endpointId=1&method=repository&type=2", 1, true))
    assert.falsy(joined:find("/create/standalone", 1, true))
  end)

  it("reports a 409 on create and goes on with the rest", function()
    local s = site()
    run(s, { resources = { s.resources[1] } })
    backend:control("faults", { { method = "POST", path = "/api/stacks/create/standalone/string", status = 409,
      message = "A stack with the normalized name 'web' already exists", details = "conflict" } })
    local rep = run(s)
    assert.equal("failed", rep.results["stack:web@1002"].status)
    assert.matches("^POST https://localhost:%d+/api/stacks/create/standalone/string%?endpointId=1: 409 Conflict: "
      .. "A stack with the normalized name 'web' already exists %(conflict%)$", rep.results["stack:web@1002"].error)
    assert.equal("changed", rep.results["stack:app@1002"].status)
  end)

  it("retries a 5xx on an idempotent call and converges", function()
    local s = site()
    run(s)
    kit.write(dir .. "/phoenix/stacks/web/docker-compose.yml", COMPOSE .. "#\n")
    backend:control("faults", { { method = "PUT", path = "/api/stacks/", status = 502, times = 1 } })
    local rep = run(s)
    assert.equal("changed", rep.results["stack:web@1002"].status)
    local puts = 0
    for _, q in ipairs(backend:requests()) do
      if q:find("^PUT /api/stacks/") then puts = puts + 1 end
    end
    assert.equal(2, puts)
  end)

  it("fails the Portainer resources when Portainer is unreachable; the rest goes on", function()
    local rep = run(site { port = servers.free_ports(1)[1] })
    assert.equal("failed", rep.results["portainer_endpoint:1002"].status)
    assert.matches("is not reachable: .*Connection refused", rep.results["portainer_endpoint:1002"].error)
    assert.equal("skipped", rep.results["stack:web@1002"].status)
    assert.equal("changed", rep.results["stack:portainer_service@1001"].status)
  end)

  it("fails with one clear error on refused credentials", function()
    local rep = run(site { password = "wrong-password-0" })
    local err = rep.results["portainer_endpoint:1002"].error
    assert.matches("login as 'admin' refused: .*422 Unprocessable Entity: Invalid credentials", err)
    assert.not_matches("wrong%-password", err)
    local logins = 0
    for _, q in ipairs(backend:requests()) do
      if q == "POST /api/auth" then logins = logins + 1 end
    end
    assert.equal(1, logins)
  end)

  it("names a certificate for another host", function()
    local rep = run(site { port = nginx.wrong, hostname = "127.0.0.1" })
    assert.matches("does not match target host name '127.0.0.1'", rep.results["portainer_endpoint:1002"].error)
  end)

  it("times out a hung Portainer", function()
    backend:control("faults", { { method = "GET", path = "/api/endpoints", delay_ms = 2000, times = 9 } })
    local rep = run(site(), { http_timeout_ms = 300 })
    assert.matches("/api/endpoints%?excludeSnapshots=true: timed out after 300 ms",
      rep.results["portainer_endpoint:1002"].error)
  end)

  it("writes variables with quotes into .env as compose reads them", function()
    local s = site()
    s.by_id["stack:portainer_service@1001"].want.variables = { { name = "P", value = "a$b \"c\"" } }
    run(s)
    assert.equal("P='a$b \"c\"'\n", guests:read(1001, "/opt/phoenix/stacks/portainer_service/.env"))
    s.by_id["stack:portainer_service@1001"].want.variables = { { name = "Q", value = "it's" } }
    local rep = run(s)
    assert.matches("variable Q: a value with a newline or a single quote", rep.results["stack:portainer_service@1001"].error)
  end)

  it("never shows a password or token of a git URL", function()
    local source = require "phoenix.stack.source"
    assert.equal("https://deploy:(secret)@git.example/r.git", source.shown_url("https://deploy:tok-123@git.example/r.git"))
    assert.equal("https://(secret)@git.example/r.git", source.shown_url("https://tok-123@git.example/r.git"))
    assert.equal("git://127.0.0.1:9418/r", source.shown_url("git://127.0.0.1:9418/r"))
  end)
end)
