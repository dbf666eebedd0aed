-- trusted_ca: the site's internal root CA (step-ca in a guest) in the
-- host's trust store: its root certificate is pulled from the CA guest
-- through the guest driver (step-ca keeps it at /root/.step/certs/root_ca.crt),
-- installed as /usr/local/share/ca-certificates/phoenix-root-ca.crt, and
-- update-ca-certificates runs when it changed.
local files = require "phoenix.host.files"

local DEST = "/usr/local/share/ca-certificates/phoenix-root-ca.crt"
local ROOT_CERT = "/root/.step/certs/root_ca.crt"

local function one_cert(pem)
  local cert = pem and pem:match("(%-%-%-%-%-BEGIN CERTIFICATE%-%-%-%-%-.-%-%-%-%-%-END CERTIFICATE%-%-%-%-%-)")
  return cert and (cert .. "\n")
end

return {
  type = "trusted_ca",
  describe = function(want) return "trust " .. (want.root_ca_name or "the site's root CA") end,

  inspect = function(ctx, want)
    local kind, id = tostring(want.ca_guest or ""):match("^(%w+):(%d+)$")
    if not kind then return nil, "no guest runs the step_ca feature: nothing to take the root CA from" end
    local driver, err = ctx.target:driver(kind == "lxc" and "ct" or "vm")
    if not driver then return nil, err end
    local current = ctx.target:read(DEST)
    local pem, perr = driver:pull(tonumber(id), ROOT_CERT)
    if not pem then
      -- a CA guest not created yet (plan on a new host): nothing to compare
      if ctx.options.mode == "plan" then return { exists = current ~= nil, current = current, pending = perr } end
      return nil, "cannot read the root CA from " .. want.ca_guest .. " (" .. ROOT_CERT .. "): " .. tostring(perr)
    end
    local cert = one_cert(pem)
    if not cert then return nil, want.ca_guest .. ":" .. ROOT_CERT .. " holds no PEM certificate" end
    return { exists = current ~= nil, current = current, cert = cert }
  end,

  diff = function(_, want, have)
    if have.pending then
      if have.exists then return {} end -- keep what is installed until the CA can be read
      return { { action = "create", field = DEST, to = want.root_ca_name, note = "from " .. want.ca_guest .. " once it runs" } }
    end
    return { files.change(DEST, have.current, have.cert) }
  end,

  apply = function(ctx, _, have)
    if not have.cert then return nil, "the root CA certificate is not available yet" end
    local changed, err = files.put(ctx.target, DEST, have.cert, { mode = "0644" })
    if changed == nil then return nil, err end
    if changed then
      local ok, rerr = ctx:run({ argv = { "update-ca-certificates" } })
      if not ok then return nil, rerr end
    end
    return true
  end,
}
