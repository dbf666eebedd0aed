-- step_ca:config: the CA's ACME provisioner (ca.json
-- authority.provisioners[] {"type":"ACME","name":...}, which the gateway
-- and Traefik get certificates from), its root certificate in every guest
-- with the trusted_ca feature (/usr/local/share/ca-certificates/
-- phoenix-root-ca.crt, then update-ca-certificates), and the certificates
-- it issued: renewed inside their guest (`step ca renew`) once less than a
-- third of their lifetime is left.
local async = require "phoenix.async"
local guest = require "phoenix.guest"
local stepca = require "phoenix.stepca"
local json = require "px.json"
local util = require "phoenix.util"

local ROOT_DEST = "/usr/local/share/ca-certificates/phoenix-root-ca.crt"

local function paths(want)
  local sp = want.step_path or "/root/.step"
  return sp .. "/config/ca.json", sp .. "/certs/root_ca.crt"
end

-- dates(ctx, guest, cert) -> not_before, not_after | nil, msg
-- The certificate is read through the driver and its dates with openssl
-- here, so the guest needs no openssl.
local function dates(ctx, g, path)
  local pem, err = guest.pull(ctx, g, path)
  if not pem then return nil, err end
  local r, rerr = async.run { argv = { "openssl", "x509", "-noout", "-dates" }, stdin = pem }
  if not r then return nil, "openssl: " .. tostring(rerr) end
  if r.code ~= 0 then return nil, g .. ": " .. path .. ": not a certificate: " .. util.tail(r.stderr, 2) end
  return stepca.dates(r.stdout)
end

local function iso(t) return os.date("!%Y-%m-%d %H:%M UTC", t) end

return {
  type = "step_ca",

  describe = function(want) return "step-ca in " .. tostring(want.guest) end,

  inspect = function(ctx, want)
    local ca_json, root_path = paths(want)
    local text, err = guest.pull(ctx, want.guest, ca_json)
    if not text then return nil, err .. " (is step-ca initialised in the container?)" end
    local ok, doc = pcall(json.decode, text)
    if not ok then return nil, want.guest .. ": " .. ca_json .. ": " .. tostring(doc) end
    local root, rerr = guest.pull(ctx, want.guest, root_path)
    if not root then return nil, rerr end
    local have = { exists = true, ca_json = text, acme = stepca.acme(doc, want.acme_provisioner or "acme") ~= nil,
      root = root, trusted = {}, certs = {}, now = os.time() }
    for _, g in ipairs(want.trusted or {}) do
      have.trusted[g] = guest.pull(ctx, g, ROOT_DEST) or false
    end
    for i, c in ipairs(want.certificates or {}) do
      local nb, na = dates(ctx, c.guest, c.cert)
      have.certs[i] = nb and { not_before = nb, not_after = na } or { error = na }
    end
    return have
  end,

  diff = function(_, want, have)
    local changes = {}
    if not have.acme then
      changes[#changes + 1] = { action = "update", field = "ca.json authority.provisioners", from = "(no ACME)",
        to = '{"type":"ACME","name":"' .. (want.acme_provisioner or "acme") .. '"}' }
    end
    for _, g in ipairs(want.trusted or {}) do
      local cur = have.trusted[g]
      if cur ~= have.root then
        changes[#changes + 1] = { action = cur and "update" or "create", field = "root CA in " .. g,
          to = ROOT_DEST }
      end
    end
    for i, c in ipairs(want.certificates or {}) do
      local st = have.certs[i]
      local field = "certificate " .. c.guest .. ":" .. c.cert
      if st.error then
        changes[#changes + 1] = { action = "run", field = field,
          unsupported = "cannot be renewed: " .. st.error .. " (issue it first, e.g. with step ca certificate)" }
      elseif stepca.due(st.not_before, st.not_after, have.now) then
        changes[#changes + 1] = { action = "run", field = field, from = "expires " .. iso(st.not_after),
          to = "renewed", note = "less than a third of its lifetime left" }
      end
    end
    return changes
  end,

  apply = function(ctx, want, have, changes)
    local ca_json = paths(want)
    local errors = {}
    local function try(ok, err) if not ok then errors[#errors + 1] = err end return ok end
    local due = {}
    for _, c in ipairs(changes) do due[c.field] = true end
    if due["ca.json authority.provisioners"] then
      local text, err = stepca.add_acme(have.ca_json, want.acme_provisioner or "acme")
      if try(text, err) and try(guest.push(ctx, want.guest, ca_json, text, { mode = 384 })) then
        try(guest.exec(ctx, want.guest, { "systemctl", "reload-or-restart", "step-ca" }))
      end
    end
    for _, g in ipairs(want.trusted or {}) do
      if due["root CA in " .. g] and try(guest.push(ctx, g, ROOT_DEST, have.root, { mode = 420 })) then
        try(guest.exec(ctx, g, { "update-ca-certificates" }))
      end
    end
    for _, c in ipairs(want.certificates or {}) do
      if due["certificate " .. c.guest .. ":" .. c.cert] then
        local ok = try(guest.exec(ctx, c.guest, { "step", "ca", "renew", "--force", "--ca-url", want.ca_url,
          "--root", ROOT_DEST, c.cert, c.key }))
        if ok and c.reload then try(guest.exec(ctx, c.guest, c.reload)) end
      end
    end
    if #errors > 0 then return nil, table.concat(errors, "; ") end
    return true
  end,
}
