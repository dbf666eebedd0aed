-- samba_shares: the site's shares in /etc/samba/phoenix-shares.conf (a file
-- phoenix owns), included from a marked block at the end of smb.conf. The
-- new shares are checked with `testparm -s` before anything live changes;
-- smbd reloads only when a file changed.
local files = require "phoenix.host.files"

local SMB = "/etc/samba/smb.conf"
local SHARES = "/etc/samba/phoenix-shares.conf"
local BLOCK = "samba_shares"

-- "browseable=yes writable=yes" -> { {"browseable","yes"}, ... } | nil, msg;
-- "create_mask=0775" means "create mask".
local function options(s, name)
  local out = {}
  for tok in (s or ""):gmatch("%S+") do
    local k, v = tok:match("^([^=]+)=(.*)$")
    if not k or v == "" then
      return nil, string.format("samba share %s: option '%s' is not key=value", name, tok)
    end
    out[#out + 1] = { (k:gsub("_", " ")), v }
  end
  return out
end

local function render(want)
  local out = { files.header("samba in phoenix_hypervisor_config.json") }
  for _, s in ipairs(want.shares) do
    local opts, err = options(s.options, s.name)
    if not opts then return nil, err end
    out[#out + 1] = "\n[" .. s.name .. "]\n"
    out[#out + 1] = "   path = " .. s.path .. "\n"
    for _, kv in ipairs(opts) do out[#out + 1] = "   " .. kv[1] .. " = " .. kv[2] .. "\n" end
    if s.valid_users and #s.valid_users > 0 then
      out[#out + 1] = "   valid users = " .. table.concat(s.valid_users, " ") .. "\n"
    end
  end
  return table.concat(out)
end

local INCLUDE = "include = " .. SHARES .. "\n"

return {
  type = "samba_shares",
  describe = function(want) return #want.shares .. " Samba share(s)" end,

  inspect = function(ctx, want)
    local t = ctx.target
    local smb = t:read(SMB)
    if not smb then return nil, "Samba is not installed on the host (no " .. SMB .. ")" end
    local shares, err = render(want)
    if not shares then return nil, err end
    local new_smb, berr = files.set_block(smb, BLOCK, INCLUDE)
    if not new_smb then return nil, SMB .. ": " .. berr end
    return { exists = true, smb = smb, new_smb = new_smb, shares = t:read(SHARES), new_shares = shares }
  end,

  diff = function(_, _, have)
    local out = {}
    out[#out + 1] = files.change(SHARES, have.shares, have.new_shares)
    out[#out + 1] = files.change(SMB, have.smb, have.new_smb)
    return out
  end,

  apply = function(ctx, want, have)
    local t = ctx.target
    for _, s in ipairs(want.shares) do
      local st = t:stat(s.path)
      if not st or st.type ~= "dir" then return nil, "samba share " .. s.name .. ": " .. s.path .. " is not a directory on the host" end
    end
    local staged, err = files.stage(t, "phoenix-shares.conf", have.new_shares)
    if not staged then return nil, err end
    local res, terr, raw = ctx:run({ argv = { "testparm", "-s", staged } })
    local bad = raw or res
    if not res or (bad and bad.stderr:find("Unknown parameter", 1, true)) then
      local why = terr or ("testparm: " .. (bad.stderr:match("Unknown parameter encountered: [^\n]*") or "rejected"))
      return nil, "the Samba shares do not pass testparm, nothing was changed: " .. why
    end
    local c1, e1 = files.put(t, SHARES, have.new_shares)
    if c1 == nil then return nil, e1 end
    local c2, e2 = files.put(t, SMB, have.new_smb)
    if c2 == nil then return nil, e2 end
    if c1 or c2 then
      local ok, rerr = ctx:run({ argv = { "systemctl", "try-reload-or-restart", "smbd" } })
      if not ok then return nil, rerr end
    end
    return true
  end,
}
