-- dns_server: dnsmasq on the host answering the site's names —
-- /etc/dnsmasq.d/phoenix.conf (a file phoenix owns) with a record for
-- every guest, the upstream servers, and the internal zones answered
-- locally only (dual horizon: internal names from here, the rest
-- forwarded). A new file is checked with `dnsmasq --test` first; dnsmasq
-- restarts only when it changed (it reads its configuration only at start).
-- The previous file is kept in /var/lib/phoenix/backup: dnsmasq would read
-- a backup left in /etc/dnsmasq.d.
local files = require "phoenix.host.files"

local FILE = "/etc/dnsmasq.d/phoenix.conf"

local function zones(want)
  local out, seen = {}, {}
  local function add(z)
    if z and z ~= "" and not seen[z] then
      seen[z] = true
      out[#out + 1] = z
    end
  end
  add(want.domain_name)
  for _, z in ipairs(want.authoritative_zones or {}) do add(z) end
  return out
end

local function render(want)
  local out = { files.header("dns_server in phoenix_hypervisor_config.json") }
  local function line(s) out[#out + 1] = s .. "\n" end
  line("# never forward plain names or private reverse lookups upstream")
  line("domain-needed")
  line("bogus-priv")
  local up = want.upstream_servers or {}
  if #up > 0 then
    line("no-resolv")
    for _, s in ipairs(up) do line("server=" .. s) end
  end
  local zs = zones(want)
  if #zs > 0 then
    line("# internal zones: answered here, never forwarded")
    for _, z in ipairs(zs) do line("local=/" .. z .. "/") end
  end
  if want.domain_name then line("domain=" .. want.domain_name) end
  if #(want.records or {}) > 0 then line("# one record per guest") end
  for _, r in ipairs(want.records or {}) do
    line("host-record=" .. r.hostname .. "," .. r.ip)
  end
  return table.concat(out)
end

return {
  type = "dns_server",
  describe = function(want)
    return "DNS (dnsmasq): " .. #(want.records or {}) .. " record(s)" .. (want.enabled == false and ", disabled" or "")
  end,

  inspect = function(ctx)
    return { exists = true, text = ctx.target:read(FILE) }
  end,

  diff = function(_, want, have)
    local new = want.enabled ~= false and render(want) or nil
    return { files.change(FILE, have.text, new) }
  end,

  apply = function(ctx, want, have)
    local t = ctx.target
    if want.enabled == false then
      if have.text then
        local ok, err = t:remove(FILE)
        if not ok then return nil, err end
      end
    else
      local text = render(want)
      local staged, err = files.stage(t, "dnsmasq-phoenix.conf", text)
      if not staged then return nil, err end
      local ok, terr = ctx:run({ argv = { "dnsmasq", "--test", "--conf-file=" .. staged } })
      if not ok then return nil, "the dnsmasq configuration does not pass `dnsmasq --test`, nothing was changed: " .. terr end
      local changed, werr = files.put(t, FILE, text, { keep = "/var/lib/phoenix/backup" })
      if changed == nil then return nil, werr end
    end
    local ok, rerr = ctx:run({ argv = { "systemctl", "restart", "dnsmasq" } })
    if not ok then return nil, rerr end
    return true
  end,
}
