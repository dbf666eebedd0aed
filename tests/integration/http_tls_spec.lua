-- px.http over HTTPS through a real nginx, with certificates from a CA this
-- test creates (tests/helpers/servers.lua). Skips when nginx or openssl is absent.
local exec = require "px.exec"
local http = require "px.http"
local json = require "px.json"
local log = require "px.log"
local sys = require "px.sys"
local servers = require "servers"

local missing = servers.missing { "nginx", "-v" } or servers.missing { "openssl", "version" }
  or servers.missing { servers.python, "-c", "pass" }

describe("px.http over TLS (nginx)", function()
  if missing then
    print("SKIP http_tls_spec: " .. missing)
    it("needs nginx, openssl and python3", function() pending(missing) end)
    return
  end

  local backend, ngx, base
  setup(function()
    backend = servers.start_backend()
    ngx = servers.start_nginx(backend.port)
    base = "https://127.0.0.1:" .. ngx.tls
  end)
  teardown(function()
    if ngx then ngx.stop() end
    if backend then backend.stop() end
  end)

  it("verifies the server against the given CA (HTTP/2 through nginx)", function()
    local r = assert(http.request { url = base .. "/nginx-json", cafile = ngx.pki.ca_crt })
    assert.equals(200, r.status)
    assert.equals("nginx", json.decode(r.body).served_by)
    r = assert(http.request { url = "https://localhost:" .. ngx.tls .. "/json", cafile = ngx.pki.ca_crt })
    assert.equals("world", json.decode(r.body).hello)
    assert.matches("^nginx", r.headers.server)
  end)

  it("capath works as well as cafile", function()
    local dir = servers.tmpdir("capath")
    finally(function() servers.run { "rm", "-rf", dir } end)
    servers.run { "cp", ngx.pki.ca_crt, dir .. "/ca.pem" }
    servers.run { "openssl", "rehash", dir }
    local r = assert(http.request { url = base .. "/nginx-json", capath = dir })
    assert.equals(200, r.status)
    local _, err = http.request { url = base .. "/nginx-json", cafile = "/nonexistent/ca.pem" }
    assert.equals(base .. "/nginx-json: error setting certificate file: /nonexistent/ca.pem", err)
  end)

  it("rejects an unknown CA unless insecure = true", function()
    local r, err = http.request { url = base .. "/nginx-json" , cafile = "/etc/ssl/certs/ca-certificates.crt" }
    assert.is_nil(r)
    assert.equals(base .. "/nginx-json: SSL certificate problem: unable to get local issuer certificate", err)
    log.capture(true)
    r = assert(http.request { url = base .. "/nginx-json", insecure = true })
    log.capture(false)
    assert.equals(200, r.status)
    assert.matches("TLS certificate verification is off", log.captured())
  end)

  it("names the certificate/host-name mismatch", function()
    local url = "https://127.0.0.1:" .. ngx.wrong .. "/api/auth"
    local r, err = http.request { url = url, cafile = ngx.pki.ca_crt }
    assert.is_nil(r)
    assert.equals(url .. ": SSL: certificate subject name 'wrong.example' does not match target host name '127.0.0.1'", err)
  end)

  it("presents a client certificate when given", function()
    local url = "https://127.0.0.1:" .. ngx.mtls .. "/"
    local r = assert(http.request { url = url, cafile = ngx.pki.ca_crt })
    assert.equals(400, r.status) -- nginx: "No required SSL certificate was sent"
    r = assert(http.request { url = url, cafile = ngx.pki.ca_crt,
                              client_cert = ngx.pki.client_crt, client_key = ngx.pki.client_key })
    assert.equals(200, r.status)
    assert.equals("client CN=phoenix-client", r.body)
  end)

  it("checks a pinned public key", function()
    local pin = servers.run { "sh", "-c",
      'openssl x509 -in "$1" -pubkey -noout | openssl pkey -pubin -outform der | openssl dgst -sha256 -binary | base64',
      "sh", ngx.pki.server_crt }
    pin = "sha256//" .. pin:gsub("%s+", "")
    assert(http.request { url = base .. "/nginx-json", cafile = ngx.pki.ca_crt, pinned_pubkey = pin })
    local r, err = http.request { url = base .. "/nginx-json", cafile = ngx.pki.ca_crt,
                                  pinned_pubkey = "sha256//AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=" }
    assert.is_nil(r)
    assert.matches("public key does not match pinned public key", err)
  end)

  it("trusts a certificate by its SHA-256 fingerprint alone, checked in the handshake", function()
    local fp = servers.run { "openssl", "x509", "-in", ngx.pki.wrong_crt, "-noout", "-fingerprint", "-sha256" }
    fp = fp:match("=(%S+)")
    local url = "https://127.0.0.1:" .. ngx.wrong .. "/"
    -- no CA, a host name that does not match: the fingerprint is the trust
    local r = assert(http.request { url = url, fingerprint = fp })
    assert.equals("wrong", r.body)
    r = assert(http.request { url = url, fingerprint = fp:lower() })
    assert.equals(200, r.status)
    local other = servers.run { "openssl", "x509", "-in", ngx.pki.server_crt, "-noout", "-fingerprint", "-sha256" }
    other = other:match("=(%S+)")
    local bad, err = http.request { url = url, fingerprint = other }
    assert.is_nil(bad)
    assert.equals(url .. ": the server's certificate has SHA-256 fingerprint " .. fp
      .. ", not the one given (fingerprint)", err)
    assert.has_error(function() http.request { url = url, fingerprint = "AB:CD" } end)
  end)

  it("passes 401 and 5xx through, and POSTs JSON", function()
    local r = assert(http.request { url = base .. "/auth", cafile = ngx.pki.ca_crt })
    assert.equals(401, r.status)
    r = assert(http.request { url = base .. "/status/503", cafile = ngx.pki.ca_crt })
    assert.equals(503, r.status)
    r = assert(http.request { url = base .. "/echo", cafile = ngx.pki.ca_crt, body = json.encode { a = 1 },
                              headers = { ["Content-Type"] = "application/json", ["X-API-Key"] = "k-123" } })
    local e = json.decode(r.body)
    assert.equals("POST", e.method)
    assert.equals("k-123", e.headers["x-api-key"])
  end)

  it("times out and caps over TLS too", function()
    local r, err = http.request { url = base .. "/delay/3000", cafile = ngx.pki.ca_crt, timeout_ms = 2000 }
    assert.is_nil(r)
    assert.equals(base .. "/delay/3000: timed out after 2000 ms", err)
    r = assert(http.request { url = base .. "/big/2000000", cafile = ngx.pki.ca_crt, max_response = 100000 })
    assert.is_true(r.truncated)
    assert.equals(100000, #r.body)
  end)

  it("runs requests concurrently with a process under wait_any", function()
    local list = {}
    for i = 1, 5 do list[i] = assert(http.start { url = base .. "/delay/1000", cafile = ngx.pki.ca_crt }) end
    list[6] = assert(exec.spawn { argv = { "sleep", "1" } })
    local t0 = sys.monotonic()
    local pending = { table.unpack(list) }
    while #pending > 0 and sys.monotonic() - t0 < 10 do
      local idx = exec.wait_any(pending, 10000)
      for k = #idx, 1, -1 do table.remove(pending, idx[k]) end
    end
    local elapsed = sys.monotonic() - t0
    assert.equals(0, #pending)
    assert.is_true(elapsed < 1.8, "took " .. elapsed .. " s")
    for i = 1, 5 do assert.equals("slept 1000", assert(list[i]:result()).body) end
  end)
end)
