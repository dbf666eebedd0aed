-- px.http against a local Python HTTP server (tests/helpers/http_test_server.py).
-- TLS through nginx is in tests/integration/http_tls_spec.lua.
local exec = require "px.exec"
local http = require "px.http"
local json = require "px.json"
local log = require "px.log"
local sys = require "px.sys"
local servers = require "servers"

-- Waits for every waitable in list; returns them in the order they finished.
local function wait_all(list, limit_ms)
  local pending, order = { table.unpack(list) }, {}
  local deadline = sys.monotonic() + limit_ms / 1000
  while #pending > 0 and sys.monotonic() < deadline do
    local idx = exec.wait_any(pending, limit_ms)
    for k = #idx, 1, -1 do order[#order + 1] = table.remove(pending, idx[k]) end
  end
  return order, #pending
end

describe("px.http options", function()
  it("raises on unknown options and bad values", function()
    assert.has_error(function() http.request { url = "http://127.0.0.1/", bogus = 1 } end)
    assert.has_error(function() http.start { url = "http://127.0.0.1/", timeout = 5 } end)
    assert.has_error(function() http.request {} end)
    assert.has_error(function() http.request { url = "ftp://127.0.0.1/x" } end)
    assert.has_error(function() http.request { url = "http://127.0.0.1/", method = "get it" } end)
    assert.has_error(function() http.request { url = "http://127.0.0.1/", timeout_ms = -1 } end)
    assert.has_error(function() http.request { url = "http://127.0.0.1/", insecure = "yes" } end)
    assert.has_error(function() http.request { url = "http://127.0.0.1/", headers = { ["X-A"] = "a\r\nX-B: b" } } end)
    assert.has_error(function() http.request { url = "http://127.0.0.1/", headers = { ["Bad Name"] = "x" } } end)
    assert.has_error(function() http.request { url = "http://127.0.0.1/", headers = "X: y" } end)
    local ok, err = pcall(http.request, { url = "http://127.0.0.1/", colour = "red" })
    assert.is_false(ok)
    assert.matches("unknown option 'colour'", err)
  end)

  it("says Connection refused for a closed port, without the password", function()
    local port = servers.free_ports(1)[1]
    local r, err = http.request { url = "http://admin:hunter22@127.0.0.1:" .. port .. "/api/auth" }
    assert.is_nil(r)
    assert.equals("http://admin:(secret)@127.0.0.1:" .. port .. "/api/auth: Connection refused", err)
  end)
end)

describe("px.http against a local server", function()
  local srv
  setup(function() srv = servers.start_backend() end)
  teardown(function() if srv then srv.stop() end end)

  it("GETs JSON", function()
    local r = assert(http.request { url = srv.url .. "/json" })
    assert.equals(200, r.status)
    assert.equals("application/json", r.headers["content-type"])
    assert.same({ hello = "world" }, json.decode(r.body))
    assert.is_false(r.truncated)
    assert.is_true(r.duration_ms > 0 and r.duration_ms < 5000)
  end)

  it("POSTs a body with headers; other methods go through as given", function()
    local r = assert(http.request { url = srv.url .. "/echo", body = '{"a":1}',
                                    headers = { ["Content-Type"] = "application/json", ["X-Empty"] = "" } })
    local e = json.decode(r.body)
    assert.equals("POST", e.method)
    assert.equals('{"a":1}', e.body)
    assert.equals("application/json", e.headers["content-type"])
    assert.equals("", e.headers["x-empty"])
    assert.is_nil(e.headers["expect"])
    r = assert(http.request { method = "PUT", url = srv.url .. "/echo", body = "x" })
    assert.equals("PUT", json.decode(r.body).method)
    r = assert(http.request { method = "DELETE", url = srv.url .. "/echo" })
    assert.equals("DELETE", json.decode(r.body).method)
    r = assert(http.request { method = "POST", url = srv.url .. "/echo" })
    assert.equals("0", json.decode(r.body).headers["content-length"])
    r = assert(http.request { method = "HEAD", url = srv.url .. "/json" })
    assert.equals(200, r.status)
    assert.equals("", r.body)
  end)

  it("sends large bodies intact", function()
    local big = string.rep("0123456789", 200000)
    local r = assert(http.request { url = srv.url .. "/echo", method = "PATCH", body = big })
    assert.equals(#big, #json.decode(r.body).body)
    r = assert(http.request { url = srv.url .. "/echo", body = "a\0b" })
    assert.equals("a\0b", json.decode(r.body).body)
    assert.has_error(function() http.request { url = srv.url .. "/echo", body = 42 } end)
  end)

  it("returns 401 and 5xx as results, not errors", function()
    local r = assert(http.request { url = srv.url .. "/auth" })
    assert.equals(401, r.status)
    assert.equals("Unauthorized", json.decode(r.body).message)
    r = assert(http.request { url = srv.url .. "/auth", headers = { Authorization = "Bearer s3cret-token" } })
    assert.equals(200, r.status)
    for _, code in ipairs { 500, 502, 503 } do
      r = assert(http.request { url = srv.url .. "/status/" .. code })
      assert.equals(code, r.status)
      assert.equals("status " .. code, r.body)
    end
  end)

  it("lower-cases header names and joins repeated ones", function()
    local r = assert(http.request { url = srv.url .. "/headers" })
    assert.equals("a, b", r.headers["x-multi"])
    assert.equals("a=1; Path=/\nb=2; Expires=Wed, 21 Oct 2037 07:28:00 GMT", r.headers["set-cookie"])
    assert.equals("2", r.headers["content-length"])
    assert.is_nil(r.headers["X-Multi"])
  end)

  it("follows redirects only when asked, keeping the last response's headers", function()
    local r = assert(http.request { url = srv.url .. "/redirect" })
    assert.equals(302, r.status)
    assert.equals("/json", r.headers.location)
    r = assert(http.request { url = srv.url .. "/redirect", follow_redirects = true })
    assert.equals(200, r.status)
    assert.is_nil(r.headers.location)
    assert.equals("world", json.decode(r.body).hello)
  end)

  it("times out with a clear message", function()
    local t0 = sys.monotonic()
    local r, err = http.request { url = srv.url .. "/delay/3000", timeout_ms = 300 }
    assert.is_nil(r)
    assert.equals(srv.url .. "/delay/3000: timed out after 300 ms", err)
    assert.is_true(sys.monotonic() - t0 < 2)
  end)

  it("names a connect-phase timeout (a TLS handshake that never comes)", function()
    local silent = servers.start_silent()
    finally(silent.stop)
    local url = "https://127.0.0.1:" .. silent.port .. "/api"
    local r, err = http.request { url = url, connect_timeout_ms = 300, timeout_ms = 5000 }
    assert.is_nil(r)
    assert.equals(url .. ": connect timed out after 300 ms", err)
  end)

  it("caps the response and flags it truncated", function()
    local r = assert(http.request { url = srv.url .. "/big/300000", max_response = 1000 })
    assert.equals(200, r.status)
    assert.equals(1000, #r.body)
    assert.is_true(r.truncated)
    r = assert(http.request { url = srv.url .. "/big/300000" })
    assert.equals(300000, #r.body)
    assert.is_false(r.truncated)
  end)

  it("keeps credentials and registered secrets out of messages", function()
    log.redact("registered-secret-42")
    local port = servers.free_ports(1)[1]
    local _, err = http.request {
      url = "http://bob:pa55word@127.0.0.1:" .. port .. "/x?token=registered-secret-42",
      headers = { Authorization = "Bearer eyJtoken.abc", ["X-API-Key"] = "ptr_apikey_123" } }
    assert.matches("Connection refused", err)
    assert.is_nil(err:find("pa55word", 1, true))
    assert.is_nil(err:find("registered-secret-42", 1, true))
    assert.truthy(err:find("token=(secret)", 1, true))
    -- A server error page that echoes the key must not leak it either.
    local h = http.start { url = srv.url .. "/delay/5000", timeout_ms = 100,
                           headers = { ["X-API-Key"] = "ptr_apikey_123" } }
    local _, err2 = h:wait()
    assert.matches("timed out after 100 ms", err2)
    assert.is_nil(err2:find("ptr_apikey_123", 1, true))
  end)

  it("start() handles are waitables: five 1 s requests and a process finish together", function()
    local list = {}
    for i = 1, 5 do list[i] = assert(http.start { url = srv.url .. "/delay/1000" }) end
    list[6] = assert(exec.spawn { argv = { "sleep", "1" } })
    local t0 = sys.monotonic()
    local order, left = wait_all(list, 10000)
    local elapsed = sys.monotonic() - t0
    assert.equals(0, left)
    assert.equals(6, #order)
    assert.is_true(elapsed >= 0.9 and elapsed < 1.8, "took " .. elapsed .. " s")
    for i = 1, 5 do
      assert.is_true(list[i]:done())
      local r = assert(list[i]:result())
      assert.equals("slept 1000", r.body)
    end
    assert.equals(0, list[6]:result().code)
  end)

  it("wait(ms) times out while running, then returns the result", function()
    local h = assert(http.start { url = srv.url .. "/delay/400" })
    assert.is_false(h:done())
    assert.is_nil(h:result())
    local r, err = h:wait(50)
    assert.is_nil(r)
    assert.equals("timeout", err)
    r = assert(h:wait())
    assert.equals("slept 400", r.body)
    assert.matches("finished", tostring(h))
  end)

  it("cancel() stops a request at once", function()
    local h = assert(http.start { url = srv.url .. "/delay/5000" })
    local t0 = sys.monotonic()
    assert.is_true(h:cancel())
    assert.is_true(sys.monotonic() - t0 < 0.5)
    assert.is_true(h:done())
    local r, err = h:result()
    assert.is_nil(r)
    assert.equals(srv.url .. "/delay/5000: cancelled", err)
    h:cancel() -- again: harmless
  end)

  it("close() and <close> are idempotent; a closed handle has no result", function()
    local h = assert(http.start { url = srv.url .. "/delay/3000" })
    h:close()
    h:close()
    local r, err = h:result()
    assert.is_nil(r)
    assert.matches(": closed$", err)
    do
      local h2 <close> = assert(http.start { url = srv.url .. "/json" })
      assert.equals(200, assert(h2:wait()).status)
    end
    -- Dropped while running: the GC stops the worker.
    for _ = 1, 3 do http.start { url = srv.url .. "/delay/3000" } end
    collectgarbage()
    collectgarbage()
  end)

  it("warns when TLS verification is turned off", function()
    log.capture(true)
    http.request { url = "https://127.0.0.1:" .. servers.free_ports(1)[1] .. "/", insecure = true, timeout_ms = 500 }
    log.capture(false)
    local out = log.captured()
    assert.matches("warning: https://127.0.0.1:%d+/: TLS certificate verification is off", out)
  end)
end)
