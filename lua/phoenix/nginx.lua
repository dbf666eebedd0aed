-- The nginx gateway's server blocks: TLS for each public service, proxied
-- to Traefik, which routes by host name. Values from the site are checked
-- before they go into the configuration text (a host name cannot carry a
-- ';' or '}' into it).
local M = {}

local HOST = "^[%w][%w%.%-]*$"
local IPV4 = "^%d+%.%d+%.%d+%.%d+$"
local PATH = "^/[%w%._/%-]+$"

-- render(want, paths) -> text | nil, msg
-- paths = { cert =, key = }: where the certificate and key are (the real
-- ones in the container, or copies in a test prefix).
function M.render(want, paths)
  local t = want.traefik or {}
  if not (t.ip and t.ip:match(IPV4)) then return nil, "the Traefik container has no static IPv4 address" end
  local port = math.tointeger(t.port or 80)
  if not port then return nil, "traefik port: not an integer" end
  for _, p in ipairs { paths.cert, paths.key } do
    if not (type(p) == "string" and p:match(PATH)) then
      return nil, "certificate path '" .. tostring(p) .. "': an absolute path of letters, digits, '.', '_', '-'"
    end
  end
  local hosts, seen = {}, {}
  for _, s in ipairs(want.services or {}) do
    if not tostring(s.host):match(HOST) then return nil, s.guest .. ": '" .. tostring(s.host) .. "' is not a host name" end
    if not seen[s.host] then
      seen[s.host] = true
      hosts[#hosts + 1] = s.host
    end
  end
  table.sort(hosts)
  local out = {
    "# Written by phoenix (nginx_gateway:config) from the site files; changes here are overwritten.",
    "map $http_upgrade $phoenix_connection_upgrade {",
    "    default upgrade;",
    "    ''      close;",
    "}",
  }
  if #hosts > 0 then
    out[#out + 1] = ""
    out[#out + 1] = "server {"
    out[#out + 1] = "    listen 80;"
    out[#out + 1] = "    server_name " .. table.concat(hosts, " ") .. ";"
    out[#out + 1] = "    return 301 https://$host$request_uri;"
    out[#out + 1] = "}"
  end
  for _, h in ipairs(hosts) do
    for _, line in ipairs {
      "",
      "server {",
      "    listen 443 ssl;",
      "    server_name " .. h .. ";",
      "    ssl_certificate " .. paths.cert .. ";",
      "    ssl_certificate_key " .. paths.key .. ";",
      "    location / {",
      "        proxy_pass http://" .. t.ip .. ":" .. port .. ";",
      "        proxy_http_version 1.1;",
      "        proxy_set_header Host $host;",
      "        proxy_set_header X-Real-IP $remote_addr;",
      "        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;",
      "        proxy_set_header X-Forwarded-Proto $scheme;",
      "        proxy_set_header Upgrade $http_upgrade;",
      "        proxy_set_header Connection $phoenix_connection_upgrade;",
      "    }",
      "}",
    } do
      out[#out + 1] = line
    end
  end
  return table.concat(out, "\n") .. "\n"
end

return M
