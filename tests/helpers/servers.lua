-- Local servers for tests: a Python HTTP backend, nginx with TLS from a CA
-- made here, git daemon. Everything binds 127.0.0.1 and lives in a temp dir;
-- each start function returns a server with :stop().
local exec = require "px.exec"
local fs = require "px.fs"
local http = require "px.http"
local sys = require "px.sys"

local M = {}

local here = (debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$")) or "."
M.python = "/usr/bin/python3"

-- Runs argv; raises with the command's stderr when it fails (test setup).
function M.run(argv, opts)
  local o = { argv = argv }
  for k, v in pairs(opts or {}) do o[k] = v end
  local r, err = exec.run(o)
  if not r then error(err, 2) end
  if r.code ~= 0 then
    error(string.format("%s exited %d: %s", table.concat(argv, " "), r.code, r.stderr), 2)
  end
  return r.stdout
end

-- The reason a program cannot be used, or nil when it runs.
function M.missing(argv)
  local r, err = exec.run { argv = argv }
  if not r then return err end
  if r.code ~= 0 and r.code ~= 1 then return table.concat(argv, " ") .. " exited " .. r.code end
end

function M.tmpdir(tag)
  return (M.run { "mktemp", "-d", "/tmp/phoenix-" .. tag .. ".XXXXXX" }):gsub("%s+$", "")
end

-- n distinct free TCP ports on 127.0.0.1 (the kernel picks them).
function M.free_ports(n)
  local out = M.run { M.python, "-c", [[
import socket, sys
socks = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in socks: s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in socks))
]], tostring(n) }
  local ports = {}
  for p in out:gmatch("%d+") do ports[#ports + 1] = tonumber(p) end
  return ports
end

local function wait_for(what, probe, seconds)
  local deadline = sys.monotonic() + (seconds or 10)
  while sys.monotonic() < deadline do
    if probe() then return end
    sys.sleep(0.05)
  end
  error(what .. " did not come up", 3)
end

local function stopper(handle, dir)
  return function()
    if handle then
      handle:kill("TERM")
      handle:wait(5000)
      handle:close()
      handle = nil
    end
    if dir then M.run { "rm", "-rf", dir } end
  end
end

-- The Python backend (tests/helpers/http_test_server.py) on a free port.
function M.start_backend()
  local dir = M.tmpdir("http")
  local portfile = dir .. "/port"
  local h = assert(exec.spawn { argv = { M.python, here .. "/http_test_server.py", portfile, "600" },
                                stdout = "null", stderr = "null" })
  wait_for("the Python test server", function() return fs.exists(portfile) end)
  local port = tonumber(fs.read(portfile))
  return { port = port, url = "http://127.0.0.1:" .. port, dir = dir, stop = stopper(h, dir) }
end

-- The Portainer stand-in (tests/helpers/portainer_standin.py) on a free
-- port. o = { version = "2.21.4", admin = "user:password" (an existing
-- administrator; none: a brand-new Portainer), api_keys = { ... } }.
-- The server has :control(what, body) for its /__standin/ routes and
-- :requests() -> the list of "METHOD /path?query" it served.
function M.start_portainer(o)
  o = o or {}
  local dir = M.tmpdir("portainer")
  local portfile = dir .. "/port"
  local argv = { M.python, here .. "/portainer_standin.py", portfile, "--version", o.version or "2.21.4" }
  if o.admin then argv[#argv + 1] = "--admin=" .. o.admin end
  for _, k in ipairs(o.api_keys or {}) do argv[#argv + 1] = "--api-key=" .. k end
  local h = assert(exec.spawn { argv = argv, stdout = "null", stderr = "null" })
  wait_for("the Portainer stand-in", function() return fs.exists(portfile) end)
  local port = tonumber(fs.read(portfile))
  local srv = { port = port, url = "http://127.0.0.1:" .. port, dir = dir, stop = stopper(h, dir) }
  function srv:control(what, body)
    local r = assert(http.request { url = self.url .. "/__standin/" .. what, method = body and "POST" or "GET",
      body = body and require("px.json").encode(body) or nil, timeout_ms = 5000 })
    assert(r.status < 300, what .. ": " .. r.status .. " " .. r.body)
    return r.body ~= "" and require("px.json").decode(r.body) or nil
  end
  function srv:requests() return self:control("stats").requests end
  function srv:reset() self:control("reset", {}) end
  -- configure{ version =, admin =, api_keys = }: a new instance, state wiped
  function srv:configure(c) self:control("configure", c) self:reset() end
  return srv
end

-- A socket that listens and never accepts or answers: TCP connects (the
-- kernel backlog), a TLS handshake or an HTTP response never comes.
function M.start_silent()
  local dir = M.tmpdir("silent")
  local portfile = dir .. "/port"
  local h = assert(exec.spawn { argv = { M.python, "-c", [[
import os, socket, sys, time
s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen(64)
with open(sys.argv[1] + ".tmp", "w") as f: f.write(str(s.getsockname()[1]))
os.rename(sys.argv[1] + ".tmp", sys.argv[1])
time.sleep(600)
]], portfile }, stdout = "null", stderr = "null" })
  wait_for("the silent listener", function() return fs.exists(portfile) end)
  return { port = tonumber(fs.read(portfile)), stop = stopper(h, dir) }
end

local function openssl(dir, args)
  local argv = { "openssl" }
  for _, a in ipairs(args) do argv[#argv + 1] = a end
  M.run(argv, { cwd = dir })
end

local function new_key_req(dir, name, subject)
  openssl(dir, { "req", "-new", "-nodes", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                 "-keyout", name .. ".key", "-out", name .. ".csr", "-subj", subject })
end

local function sign(dir, name, ext)
  assert(fs.write(dir .. "/" .. name .. ".ext", ext))
  openssl(dir, { "x509", "-req", "-in", name .. ".csr", "-CA", "ca.crt", "-CAkey", "ca.key",
                 "-CAcreateserial", "-days", "2", "-out", name .. ".crt", "-extfile", name .. ".ext" })
end

-- A CA and certificates signed by it in dir: server (localhost, 127.0.0.1),
-- wrong (CN=wrong.example, no SAN, so curl compares the subject name) and
-- client (for nginx's ssl_verify_client). Returns the file paths.
function M.make_pki(dir)
  openssl(dir, { "req", "-x509", "-new", "-nodes", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                 "-keyout", "ca.key", "-out", "ca.crt", "-days", "2", "-subj", "/CN=phoenix test CA",
                 "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign" })
  new_key_req(dir, "server", "/CN=localhost")
  sign(dir, "server", "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n")
  new_key_req(dir, "wrong", "/CN=wrong.example")
  sign(dir, "wrong", "extendedKeyUsage=serverAuth\n")
  new_key_req(dir, "client", "/CN=phoenix-client")
  sign(dir, "client", "extendedKeyUsage=clientAuth\n")
  local p = {}
  for _, n in ipairs { "ca", "server", "wrong", "client" } do
    p[n .. "_crt"], p[n .. "_key"] = dir .. "/" .. n .. ".crt", dir .. "/" .. n .. ".key"
  end
  return p
end

-- sign_dated(pki_dir, name, cn, not_before, not_after): a certificate
-- name.crt (key name.key) from the CA in pki_dir with the given validity
-- (seconds since the epoch), through `openssl ca`, which can set both.
function M.sign_dated(dir, name, cn, nb, na)
  local ca = dir .. "/ca-" .. name
  M.run { "mkdir", "-p", ca .. "/new" }
  assert(fs.write(ca .. "/index.txt", ""))
  assert(fs.write(ca .. "/serial", string.format("%04X\n", math.random(4096, 65535))))
  assert(fs.write(ca .. "/ca.cnf", table.concat({ "[ca]", "default_ca = t", "[t]", "database = " .. ca .. "/index.txt",
    "new_certs_dir = " .. ca .. "/new", "serial = " .. ca .. "/serial", "default_md = sha256", "policy = any",
    "unique_subject = no", "[any]", "commonName = supplied", "" }, "\n")))
  new_key_req(dir, name, "/CN=" .. cn)
  local function stamp(t) return os.date("!%Y%m%d%H%M%SZ", t) end
  openssl(dir, { "ca", "-batch", "-notext", "-config", ca .. "/ca.cnf", "-cert", "ca.crt", "-keyfile", "ca.key",
    "-in", name .. ".csr", "-out", name .. ".crt", "-startdate", stamp(nb), "-enddate", stamp(na) })
  return dir .. "/" .. name .. ".crt", dir .. "/" .. name .. ".key"
end

-- nginx in front of a backend: https on `tls` (h2, cert for localhost),
-- `wrong` (a certificate for another name) and `mtls` (client certificate
-- required). Returns { ports, pki, dir, stop }.
function M.start_nginx(backend_port)
  local dir = M.tmpdir("nginx")
  local pki = M.make_pki(dir)
  local ports = M.free_ports(3)
  local tls, wrong, mtls = ports[1], ports[2], ports[3]
  assert(fs.mkdir(dir .. "/tmp", { parents = true }))
  local conf = table.concat({
    sys.uid() == 0 and "user root;" or "",
    "worker_processes 1;",
    "pid " .. dir .. "/nginx.pid;",
    "error_log " .. dir .. "/error.log;",
    "events { worker_connections 128; }",
    "http {",
    "  access_log off;",
    "  client_body_temp_path " .. dir .. "/tmp/body;",
    "  proxy_temp_path " .. dir .. "/tmp/proxy;",
    "  fastcgi_temp_path " .. dir .. "/tmp/fastcgi;",
    "  uwsgi_temp_path " .. dir .. "/tmp/uwsgi;",
    "  scgi_temp_path " .. dir .. "/tmp/scgi;",
    "  server {",
    "    listen 127.0.0.1:" .. tls .. " ssl http2;",
    "    ssl_certificate " .. pki.server_crt .. "; ssl_certificate_key " .. pki.server_key .. ";",
    "    location = /nginx-json { default_type application/json; return 200 '{\"served_by\":\"nginx\"}'; }",
    "    location / { proxy_pass http://127.0.0.1:" .. backend_port .. "; proxy_read_timeout 60s; }",
    "  }",
    "  server {",
    "    listen 127.0.0.1:" .. wrong .. " ssl;",
    "    ssl_certificate " .. pki.wrong_crt .. "; ssl_certificate_key " .. pki.wrong_key .. ";",
    "    location / { return 200 'wrong'; }",
    "  }",
    "  server {",
    "    listen 127.0.0.1:" .. mtls .. " ssl;",
    "    ssl_certificate " .. pki.server_crt .. "; ssl_certificate_key " .. pki.server_key .. ";",
    "    ssl_client_certificate " .. pki.ca_crt .. "; ssl_verify_client on;",
    "    location / { return 200 'client $ssl_client_s_dn'; }",
    "  }",
    "}",
  }, "\n") .. "\n"
  local conf_path = dir .. "/nginx.conf"
  assert(fs.write(conf_path, conf))
  local base = { "nginx", "-p", dir, "-e", dir .. "/error.log", "-c", conf_path }
  local check = { table.unpack(base) }
  check[#check + 1] = "-t"
  M.run(check)
  local argv = { table.unpack(base) }
  argv[#argv + 1], argv[#argv + 2] = "-g", "daemon off;"
  local h = assert(exec.spawn { argv = argv, stdout = "null", stderr = "null" })
  wait_for("nginx", function()
    local r = http.request { url = "https://127.0.0.1:" .. tls .. "/nginx-json", cafile = pki.ca_crt,
                             connect_timeout_ms = 200, timeout_ms = 1000 }
    return r and r.status == 200
  end)
  return { tls = tls, wrong = wrong, mtls = mtls, pki = pki, dir = dir, stop = stopper(h, dir) }
end

-- git daemon serving every repository under base on a free port.
function M.start_git_daemon(base)
  local port = M.free_ports(1)[1]
  local h = assert(exec.spawn { argv = { "git", "daemon", "--reuseaddr", "--export-all", "--listen=127.0.0.1",
                                         "--port=" .. port, "--base-path=" .. base, base },
                                stdout = "null", stderr = "null" })
  wait_for("git daemon", function()
    local r = exec.run { argv = { "git", "ls-remote", "git://127.0.0.1:" .. port .. "/none" } }
    -- An unknown repository is a clean protocol error once it listens.
    return r and not r.stderr:find("Connection refused", 1, true)
  end)
  return { port = port, url = "git://127.0.0.1:" .. port, stop = stopper(h) }
end

return M
