-- nginx_gateway:config: the gateway's server blocks for the public
-- services (TLS here, then on to Traefik) in
-- /etc/nginx/conf.d/phoenix-gateway.conf of the gateway container. Before
-- anything is pushed, the generated file is checked with a real `nginx -t`
-- on this host, in a temporary prefix with copies of the certificate and
-- key it references; after the push, `nginx -t` in the container checks
-- the whole configuration (the old file goes back if it fails) and nginx
-- reloads. Nothing happens when the file is already right.
local async = require "phoenix.async"
local guest = require "phoenix.guest"
local nginx = require "phoenix.nginx"
local util = require "phoenix.util"
local fs = require "px.fs"
local sys = require "px.sys"

local CONF = "/etc/nginx/conf.d/phoenix-gateway.conf"

local function tls(want)
  local t = want.tls or {}
  return { cert = t.cert or "/etc/nginx/ssl/gateway.crt", key = t.key or "/etc/nginx/ssl/gateway.key" }
end

local function servers(text)
  local n = 0
  for _ in (text or ""):gmatch("\nserver {") do n = n + 1 end
  return n .. " server blocks, sha256 " .. fs.sha256(text or ""):sub(1, 12)
end

local seq = 0
-- check(ctx, want) -> true | nil, msg: nginx -t on this host against the
-- generated file and the gateway's certificate and key.
local function check(ctx, want)
  local paths = tls(want)
  local cert, cerr = guest.pull(ctx, want.guest, paths.cert)
  if not cert then return nil, "the gateway's certificate: " .. cerr end
  local key, kerr = guest.pull(ctx, want.guest, paths.key)
  if not key then return nil, "the gateway's key: " .. kerr end
  seq = seq + 1
  local dir = string.format("%s/phoenix-nginx-check-%d-%d", sys.getenv("TMPDIR") or "/tmp", sys.pid(), seq)
  local ok, err = fs.mkdir(dir .. "/tmp", { mode = 448 })
  if not ok then return nil, err end
  local function done(...)
    async.run { argv = { "rm", "-rf", dir } }
    return ...
  end
  local text
  text, err = nginx.render(want, { cert = dir .. "/gateway.crt", key = dir .. "/gateway.key" })
  if not text then return done(nil, err) end
  for name, data in pairs { ["gateway.crt"] = cert, ["gateway.key"] = key, ["phoenix-gateway.conf"] = text,
    ["nginx.conf"] = table.concat({
      "pid " .. dir .. "/nginx.pid;", "error_log " .. dir .. "/error.log;", "events { worker_connections 16; }",
      "http {", "  client_body_temp_path " .. dir .. "/tmp/body;", "  proxy_temp_path " .. dir .. "/tmp/proxy;",
      "  fastcgi_temp_path " .. dir .. "/tmp/fastcgi;", "  uwsgi_temp_path " .. dir .. "/tmp/uwsgi;",
      "  scgi_temp_path " .. dir .. "/tmp/scgi;", "  include " .. dir .. "/phoenix-gateway.conf;", "}", "" }, "\n") } do
    ok, err = fs.write(dir .. "/" .. name, data, { mode = 384 })
    if not ok then return done(nil, err) end
  end
  local argv = { "nginx", "-t", "-q", "-p", dir, "-e", dir .. "/error.log", "-c", dir .. "/nginx.conf" }
  local r, rerr = async.run { argv = argv }
  if not r then return done(nil, "nginx -t: " .. tostring(rerr) .. " (nginx must be installed here to check the gateway)") end
  if r.code ~= 0 then
    return done(nil, "nginx -t rejected the generated gateway configuration: "
      .. util.tail(r.stderr ~= "" and r.stderr or r.stdout):gsub((dir:gsub("%p", "%%%0")), "<check>"))
  end
  return done(true)
end

return {
  type = "nginx_gateway",

  describe = function(want) return "nginx gateway in " .. tostring(want.guest) end,

  inspect = function(ctx, want)
    local text, err = nginx.render(want, tls(want))
    if not text then return nil, err end
    local present, eerr = guest.exists(ctx, want.guest, CONF)
    if present == nil then return nil, eerr end
    local have = { exists = present, wanted = text }
    if present then
      local cur, perr = guest.pull(ctx, want.guest, CONF)
      if not cur then return nil, perr end
      have.content = cur
    end
    return have
  end,

  diff = function(_, _, have)
    if not have.exists then return { { action = "create", field = CONF, to = servers(have.wanted) } } end
    if have.content ~= have.wanted then
      return { { action = "update", field = CONF, from = servers(have.content), to = servers(have.wanted),
        note = "checked with nginx -t, then nginx reloads" } }
    end
    return {}
  end,

  apply = function(ctx, want, have)
    local ok, err = check(ctx, want)
    if not ok then return nil, err end
    ok, err = guest.exec(ctx, want.guest, { "mkdir", "-p", "/etc/nginx/conf.d" })
    if not ok then return nil, err end
    ok, err = guest.push(ctx, want.guest, CONF, have.wanted, { mode = 420 })
    if not ok then return nil, err end
    local tested, terr = guest.exec(ctx, want.guest, { "nginx", "-t" })
    if not tested then
      -- Leave nginx with the configuration it had.
      local undo = have.exists and guest.push(ctx, want.guest, CONF, have.content, { mode = 420 })
        or guest.exec(ctx, want.guest, { "rm", "-f", CONF })
      return nil, terr .. (undo and " (the previous file is back)" or "")
    end
    local reloaded, rerr = guest.exec(ctx, want.guest, { "nginx", "-s", "reload" })
    if not reloaded then return nil, rerr end
    return true
  end,
}
