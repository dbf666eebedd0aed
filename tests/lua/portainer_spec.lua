-- phoenix.portainer and phoenix.http against the Portainer stand-in behind
-- a real nginx (TLS with a CA made by the test).
local portainer = require "phoenix.portainer"
local phttp = require "phoenix.http"
local json = require "px.json"
local servers = require "servers"

local PASSWORD = "correct-horse-battery"

-- A fresh run cache per connect: what a new phoenix run would have.
local function target() return { cache = {} } end

describe("phoenix.portainer", function()
  local nginx, backend, seen

  local function conn(o)
    local c = { url = "https://localhost:" .. nginx.tls, cafile = nginx.pki.ca_crt, username = "admin",
      password = PASSWORD, retries = 2, backoff = 0.01, timeout_ms = 5000,
      on_request = function(m, u) seen[#seen + 1] = m .. " " .. u:gsub("^https://[^/]+", "") end }
    for k, v in pairs(o or {}) do c[k] = v end
    return c
  end

  -- A new Portainer instance with the given options behind the same nginx.
  local function start(o)
    if not backend then
      backend = servers.start_portainer()
      nginx = servers.start_nginx(backend.port)
    end
    backend:configure(o or {})
    seen = {}
  end

  teardown(function()
    if nginx then nginx:stop() end
    if backend then backend:stop() end
  end)

  describe("auth", function()
    it("initialises the administrator of a brand-new Portainer at the first change, not before", function()
      start { version = "2.21.4" }
      local c = assert(portainer.connect(target(), conn()))
      assert.same({ 2, 21, 4 }, c.version)
      assert.is_true(c.fresh)
      assert.same({}, assert(c:endpoints()))
      assert.same({}, assert(c:stacks()))
      assert.same({ "GET /api/status", "POST /api/auth", "GET /api/users/admin/check" }, seen)
      assert.same({}, backend:control("state").users)
      assert(c:create_agent_endpoint("a", "tcp://10.0.0.9:9001"))
      assert.is_true(c.initialised_admin)
      assert.same({ "POST /api/users/admin/init", "POST /api/auth", "POST /api/endpoints" }, { table.unpack(seen, 4) })
      assert.matches("^Bearer [%w_%-]+%.[%w_%-]+%.[%w_%-]+$", c.http.headers.Authorization)
      assert.equal(1, #assert(c:endpoints()))
    end)

    it("reports an administrator password Portainer refuses", function()
      start { version = "2.21.4" }
      local c = assert(portainer.connect(target(), conn { password = "short" }))
      local e, err = c:create_agent_endpoint("a", "tcp://10.0.0.9:9001")
      assert.is_nil(e)
      assert.matches("^initialising the administrator of a new Portainer: POST https://localhost:%d+/api/users/admin/init: "
        .. "400 Bad Request: Invalid request payload %(Password does not meet the requirements", err)
    end)

    it("logs in once per run and shares the client", function()
      start { version = "2.21.4", admin = "admin:" .. PASSWORD }
      local t = target()
      local a = assert(portainer.connect(t, conn()))
      local b = assert(portainer.connect(t, conn()))
      assert.equal(a, b)
      assert.same({ "GET /api/status", "POST /api/auth" }, seen)
      assert.is_nil(a.initialised_admin)
    end)

    it("reports refused credentials once, without retrying or leaking the password", function()
      start { version = "2.21.4", admin = "admin:" .. PASSWORD }
      local t = target()
      local c, err = portainer.connect(t, conn { password = "wrong-password-123" })
      assert.is_nil(c)
      assert.matches("login as 'admin' refused: POST https://localhost:%d+/api/auth: 422 Unprocessable Entity: "
        .. "Invalid credentials %(Unauthorized%)", err)
      assert.not_matches("wrong%-password", err)
      local _, err2 = portainer.connect(t, conn { password = "wrong-password-123" })
      assert.equal(err, err2)
      -- one login, one admin check; the second connect asked nothing
      assert.same({ "GET /api/status", "POST /api/auth", "GET /api/users/admin/check" }, seen)
      assert.equal(3, #backend:requests())
    end)

    it("uses an API key in X-API-Key and explains a refused one", function()
      start { version = "2.21.4", admin = "admin:" .. PASSWORD, api_keys = { "ptr_goodkey" } }
      local c = assert(portainer.connect(target(), conn { api_key = "ptr_goodkey", username = false }))
      assert.is_nil(c.http.headers.Authorization)
      assert.same({}, assert(c:stacks()))
      local bad = assert(portainer.connect(target(), conn { api_key = "ptr_badkey" }))
      local list, err = bad:stacks()
      assert.is_nil(list)
      assert.matches("GET https://localhost:%d+/api/stacks: 401 Unauthorized: A valid authorisation token is missing %(Unauthorized%)", err)
      assert.matches("the API key was refused: check portainer_api.api_token", err, 1, true)
      assert.not_matches("ptr_badkey", err)
    end)
  end)

  describe("endpoints", function()
    it("creates an agent environment with a multipart form and finds it by name", function()
      start { version = "2.18.4", admin = "admin:" .. PASSWORD }
      local c = assert(portainer.connect(target(), conn()))
      assert.is_false(c:find_endpoint("vm1002"))
      local e = assert(c:create_agent_endpoint("vm1002", "tcp://10.0.0.102:9001"))
      assert.equal(2, e.Type)
      assert.equal("tcp://10.0.0.102:9001", e.URL)
      local found = assert(c:find_endpoint("vm1002"))
      assert.equal(e.Id, found.Id)
      local again, err = c:create_agent_endpoint("vm1002", "tcp://10.0.0.102:9001")
      assert.is_nil(again)
      assert.matches("POST https://localhost:%d+/api/endpoints: 409 Conflict: Name is not unique", err)
      local u = assert(c:update_endpoint_url(found, "tcp://10.0.0.103:9001"))
      assert.equal("tcp://10.0.0.103:9001", u.URL)
    end)

    it("lists environments once per run", function()
      start { version = "2.21.4", admin = "admin:" .. PASSWORD }
      local c = assert(portainer.connect(target(), conn()))
      for _ = 1, 5 do assert.is_false(c:find_endpoint("x")) end
      local n = 0
      for _, r in ipairs(seen) do
        if r:find("^GET /api/endpoints") then n = n + 1 end
      end
      assert.equal(1, n)
    end)
  end)

  describe("stacks", function()
    local function setup(version)
      start { version = version, admin = "admin:" .. PASSWORD }
      local c = assert(portainer.connect(target(), conn()))
      local e = assert(c:create_agent_endpoint("agent", "tcp://127.0.0.1:9001"))
      seen = {}
      return c, e.Id
    end

    local compose = "services:\n  web:\n    image: nginx\n"
    local env = json.array { { name = "A", value = "1" } }

    for _, case in ipairs {
      { "2.21.4", "POST /api/stacks/create/standalone/string?endpointId=1" },
      { "2.19.0", "POST /api/stacks/create/standalone/string?endpointId=1" },
      { "2.18.4", "POST /api/stacks?endpointId=1&method=string&type=2" },
    } do
      it("creates from compose content on the route of " .. case[1], function()
        local c, eid = setup(case[1])
        local s = assert(c:create_stack(eid, { name = "web", content = compose, env = env }))
        assert.same({ case[2] }, seen)
        assert.equal("web", s.Name)
        assert.equal(eid, s.EndpointId)
        assert.same({ { name = "A", value = "1" } }, s.Env)
        local found = assert(c:find_stack("web", eid))
        assert.equal(s.Id, found.Id)
        assert.is_false(c:find_stack("web", eid + 1))
      end)
    end

    it("falls back to the old route when the version is unknown and the new one is missing", function()
      local c, eid = setup("2.18.4")
      c.version = nil
      assert(c:create_stack(eid, { name = "web", content = compose, env = env }))
      assert.same({ "POST /api/stacks/create/standalone/string?endpointId=1",
        "POST /api/stacks?endpointId=1&method=string&type=2" }, seen)
    end)

    it("reports a 409 with Portainer's message", function()
      local c, eid = setup("2.21.4")
      assert(c:create_stack(eid, { name = "web", content = compose, env = env }))
      local s, err = c:create_stack(eid, { name = "web", content = compose, env = env })
      assert.is_nil(s)
      assert.matches("^POST https://localhost:%d+/api/stacks/create/standalone/string%?endpointId=1: 409 Conflict: "
        .. "A stack with the normalized name 'web' already exists %(A stack with this name already exists%)$", err)
    end)

    it("updates from content and deletes", function()
      local c, eid = setup("2.21.4")
      local s = assert(c:create_stack(eid, { name = "web", content = compose, env = env }))
      local u = assert(c:update_stack(s, eid, { content = compose .. "#\n", env = json.array {} }))
      assert.same({}, u.Env)
      assert.equal(compose .. "#\n", backend:control("state").stacks[1]._file)
      assert.is_true(c:delete_stack(s, eid))
      assert.is_false(c:find_stack("web", eid))
      assert.same("PUT /api/stacks/1?endpointId=1", seen[2])
      assert.same("DELETE /api/stacks/1?endpointId=1", seen[3])
    end)
  end)

  describe("failures", function()
    it("retries an idempotent call after 5xx and succeeds", function()
      start { version = "2.21.4", admin = "admin:" .. PASSWORD }
      local c = assert(portainer.connect(target(), conn()))
      backend:control("faults", { { method = "GET", path = "/api/stacks", status = 503, times = 2 } })
      seen = {}
      assert.same({}, assert(c:stacks()))
      assert.same({ "GET /api/stacks", "GET /api/stacks", "GET /api/stacks" }, seen)
    end)

    it("gives up after the retries with the last answer", function()
      start { version = "2.21.4", admin = "admin:" .. PASSWORD }
      local c = assert(portainer.connect(target(), conn()))
      backend:control("faults", { { method = "GET", path = "/api/stacks", status = 500, times = 9,
        message = "boom" } })
      local list, err = c:stacks()
      assert.is_nil(list)
      assert.matches("GET https://localhost:%d+/api/stacks: 500 Internal Server Error: boom %(injected by the test%) "
        .. "%(after 3 attempts%)", err)
    end)

    it("never retries a POST", function()
      start { version = "2.21.4", admin = "admin:" .. PASSWORD }
      local c = assert(portainer.connect(target(), conn()))
      backend:control("faults", { { method = "POST", path = "/api/endpoints", status = 502, times = 1 } })
      seen = {}
      local e, err = c:create_agent_endpoint("a", "tcp://1.2.3.4:9001")
      assert.is_nil(e)
      assert.matches("502 Bad Gateway", err)
      assert.same({ "POST /api/endpoints" }, seen)
    end)

    it("does not retry a 4xx", function()
      start { version = "2.21.4", admin = "admin:" .. PASSWORD }
      local c = assert(portainer.connect(target(), conn()))
      seen = {}
      local s, err = c:update_stack({ Id = 42 }, 1, { content = "x", env = json.array {} })
      assert.is_nil(s)
      assert.matches("PUT https://localhost:%d+/api/stacks/42%?endpointId=1: 404 Not Found: Unable to find a stack", err)
      assert.same({ "PUT /api/stacks/42?endpointId=1" }, seen)
    end)

    it("names a TLS certificate for another host clearly", function()
      start { version = "2.21.4", admin = "admin:" .. PASSWORD }
      local c, err = portainer.connect(target(), conn { url = "https://127.0.0.1:" .. nginx.wrong, retries = 0 })
      assert.is_nil(c)
      assert.matches("Portainer https://127.0.0.1:%d+ is not reachable: GET https://127.0.0.1:%d+/api/status: SSL: "
        .. "certificate subject name 'wrong.example' does not match target host name '127.0.0.1'", err)
    end)

    it("times out a slow answer without retrying it", function()
      start { version = "2.21.4", admin = "admin:" .. PASSWORD }
      local c = assert(portainer.connect(target(), conn { timeout_ms = 300 }))
      backend:control("faults", { { method = "GET", path = "/api/endpoints", delay_ms = 1500, times = 5 } })
      seen = {}
      local list, err = c:endpoints()
      assert.is_nil(list)
      assert.matches("GET https://localhost:%d+/api/endpoints%?excludeSnapshots=true: timed out after 300 ms", err)
      assert.same(1, #seen)
    end)

    it("retries an unreachable Portainer, then fails with the cause", function()
      start { version = "2.21.4" }
      local port = servers.free_ports(1)[1]
      local c, err = portainer.connect(target(), conn { url = "https://127.0.0.1:" .. port })
      assert.is_nil(c)
      assert.matches("Portainer https://127.0.0.1:%d+ is not reachable: GET https://127.0.0.1:%d+/api/status: "
        .. ".*Connection refused %(after 3 attempts%)", err)
      assert.equal(3, #seen)
    end)
  end)
end)

describe("the Portainer stand-in", function()
  -- Its objects carry every field of the real ones (tests/fixtures/portainer).
  it("answers stacks and environments in the shape of a real database export", function()
    local fixture = json.decode(assert(require("px.fs").read(
      require("testkit").source_dir .. "/tests/fixtures/portainer/db-export-stacks.json")))
    local srv = servers.start_portainer { version = "2.18.4", admin = "admin:" .. PASSWORD }
    local ok, err = pcall(function()
      local c = assert(portainer.connect(target(), { url = srv.url, username = "admin", password = PASSWORD }))
      local e = assert(c:create_agent_endpoint("a", "tcp://10.0.0.5:9001"))
      local s = assert(c:create_stack(e.Id, { name = "web", content = "services: {}\n", env = json.array {} }))
      for _, k in ipairs(fixture.endpoint_keys) do assert.is_not_nil(e[k], "endpoint field " .. k) end
      for k in pairs(fixture.stacks[2]) do
        assert.is_true(s[k] ~= nil, "stack field " .. k)
      end
      -- and the client reads the real objects: GitConfig null is a compose stack
      assert.equal(json.null, fixture.stacks[2].GitConfig)
      assert.equal(2, fixture.stacks[2].Type)
    end)
    srv:stop()
    assert(ok, err)
  end)
end)

describe("phoenix.http helpers", function()
  it("encodes queries with sorted keys and [] lists", function()
    assert.equal("a=1&b=x%20y&types%5B%5D=1&types%5B%5D=2", phttp.query { b = "x y", a = 1, ["types[]"] = { 1, 2 } })
  end)

  it("reads Portainer's {message, details} and plain text errors", function()
    assert.equal("Invalid credentials (Unauthorized)", phttp.server_message('{"message":"Invalid credentials","details":"Unauthorized"}'))
    assert.equal("same", phttp.server_message('{"message":"same","details":"same"}'))
    assert.equal("404 page not found", phttp.server_message("404 page not found\n"))
    assert.is_nil(phttp.server_message(""))
  end)

  it("builds multipart form bodies", function()
    local body, ctype = phttp.multipart { { "Name", "x" }, { "Type", 2 } }
    local b = ctype:match("boundary=(.+)$")
    assert.equal("--" .. b .. "\r\nContent-Disposition: form-data; name=\"Name\"\r\n\r\nx\r\n--" .. b
      .. "\r\nContent-Disposition: form-data; name=\"Type\"\r\n\r\n2\r\n--" .. b .. "--\r\n", body)
  end)
end)
