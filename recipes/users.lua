-- users: the admin user — account, shell, sudo (membership of the `sudo`
-- group), password hash (never shown: changes are secret) and SSH keys
-- (the site's keys are kept in authorized_keys; other keys stay). Files
-- are read under the target's root; useradd/usermod get --prefix and
-- chpasswd --root when the root is not /.
local files = require "phoenix.host.files"
local log = require "px.log"

local SUDO = "sudo"

local function table_file(text, fields)
  local out = {}
  for line in (text or ""):gmatch("[^\n]+") do
    local parts = {}
    for p in (line .. ":"):gmatch("([^:]*):") do parts[#parts + 1] = p end
    if parts[1] and parts[1] ~= "" then
      local row = {}
      for i, f in ipairs(fields) do row[f] = parts[i] end
      out[parts[1]] = row
    end
  end
  return out
end

-- A crypt(3) hash ($id$...), or a locked one (! or *).
local function hash_kind(h)
  if h == nil or h == "" or h == "NOT_SET" then return "none" end
  if h:match("^%$[%w]+%$[^:%s]+$") or h:match("^[!*]") then return "hash" end
  return "bad"
end

local function prefix(t, argv, opt)
  if t.root ~= "/" then
    argv[#argv + 1] = opt
    argv[#argv + 1] = t.root
  end
  return argv
end

local function inspect(ctx, want)
  local t = ctx.target
  local kind = hash_kind(want.password_hash)
  if kind == "bad" then
    return nil, "users:" .. want.username .. ": password_hash is not a crypt(3) hash such as $6$...; "
      .. "make one with `mkpasswd -m sha-512` (the value is not shown)"
  end
  if kind == "hash" then log.redact(want.password_hash) end
  local passwd = t:read("/etc/passwd")
  if not passwd then return nil, "cannot read " .. t:path("/etc/passwd") end
  local users = table_file(passwd, { "name", "x", "uid", "gid", "gecos", "home", "shell" })
  local groups = table_file(t:read("/etc/group"), { "name", "x", "gid", "members" })
  if want.sudo_access and not groups[SUDO] then
    return nil, "group '" .. SUDO .. "' does not exist on the host (is sudo installed?)"
  end
  local u = users[want.username]
  if not u then return { exists = false } end
  local member = {}
  for name, g in pairs(groups) do
    for m in (g.members or ""):gmatch("[^,]+") do
      if m == want.username then member[name] = true end
    end
  end
  local shadow = table_file(t:read("/etc/shadow"), { "name", "hash" })
  local keys_path = u.home .. "/.ssh/authorized_keys"
  local keys = {}
  for line in (t:read(keys_path) or ""):gmatch("[^\n]+") do keys[line:match("^%s*(.-)%s*$")] = true end
  return { exists = true, uid = tonumber(u.uid), gid = tonumber(u.gid), home = u.home, shell = u.shell,
    groups = member, hash = shadow[want.username] and shadow[want.username].hash, keys = keys,
    keys_path = keys_path }
end

return {
  type = "users",
  describe = function(want) return "user " .. want.username end,

  inspect = inspect,

  diff = function(_, want, have)
    if not have.exists then
      local c = { { action = "create", field = "user", to = want.username } }
      if want.sudo_access then c[#c + 1] = { action = "create", field = "sudo", to = true } end
      if hash_kind(want.password_hash) == "hash" then
        c[#c + 1] = { action = "create", field = "password_hash", to = want.password_hash, secret = true }
      end
      if #want.ssh_public_keys > 0 then
        c[#c + 1] = { action = "create", field = "ssh_public_keys", to = #want.ssh_public_keys .. " key(s)" }
      end
      return c
    end
    local out = {}
    if want.shell and have.shell ~= want.shell then
      out[#out + 1] = { action = "update", field = "shell", from = have.shell, to = want.shell }
    end
    if want.sudo_access ~= nil and (have.groups[SUDO] == true) ~= want.sudo_access then
      out[#out + 1] = { action = "update", field = "sudo", from = have.groups[SUDO] == true, to = want.sudo_access }
    end
    if hash_kind(want.password_hash) == "hash" and have.hash ~= want.password_hash then
      out[#out + 1] = { action = "update", field = "password_hash", from = have.hash, to = want.password_hash,
        secret = true }
    end
    local missing = 0
    for _, k in ipairs(want.ssh_public_keys) do
      if not have.keys[k] then missing = missing + 1 end
    end
    if missing > 0 then
      out[#out + 1] = { action = "update", field = "ssh_public_keys", from = "missing " .. missing,
        to = #want.ssh_public_keys .. " key(s) present" }
    end
    return out
  end,

  apply = function(ctx, want, have, changes)
    local t = ctx.target
    local due = {}
    for _, c in ipairs(changes) do due[c.field] = true end
    local function run(argv, opts)
      local o = { argv = argv }
      for k, v in pairs(opts or {}) do o[k] = v end
      return ctx:run(o)
    end
    if due.user then
      local argv = prefix(t, { "useradd" }, "--prefix")
      for _, a in ipairs({ "-m", "-s", want.shell or "/bin/bash" }) do argv[#argv + 1] = a end
      if want.sudo_access then
        argv[#argv + 1] = "-G"
        argv[#argv + 1] = SUDO
      end
      argv[#argv + 1] = want.username
      local ok, err = run(argv)
      if not ok then return nil, err end
    else
      if due.shell then
        local argv = prefix(t, { "usermod" }, "--prefix")
        for _, a in ipairs({ "-s", want.shell, want.username }) do argv[#argv + 1] = a end
        local ok, err = run(argv)
        if not ok then return nil, err end
      end
      if due.sudo then
        local argv = prefix(t, { "usermod" }, "--prefix")
        if want.sudo_access then
          for _, a in ipairs({ "-a", "-G", SUDO }) do argv[#argv + 1] = a end
        else
          local keep = {}
          for g in pairs(have.groups) do if g ~= SUDO then keep[#keep + 1] = g end end
          table.sort(keep)
          argv[#argv + 1] = "-G"
          argv[#argv + 1] = table.concat(keep, ",")
        end
        argv[#argv + 1] = want.username
        local ok, err = run(argv)
        if not ok then return nil, err end
      end
    end
    if due.password_hash then
      -- on stdin, so the hash is never on a command line
      local ok, err = run(prefix(t, { "chpasswd", "-e" }, "--root"), { stdin = want.username .. ":" .. want.password_hash .. "\n" })
      if not ok then return nil, err end
    end
    if due.ssh_public_keys then
      local now, err = inspect(ctx, want) -- the account as it is now (uid, home)
      if not now then return nil, err end
      local text = t:read(now.keys_path) or ""
      if text ~= "" and text:sub(-1) ~= "\n" then text = text .. "\n" end
      for _, k in ipairs(want.ssh_public_keys) do
        if not now.keys[k] then text = text .. k .. "\n" end
      end
      local dir = now.keys_path:match("^(.*)/[^/]+$")
      local ok
      ok, err = run({ "install", "-d", "-m", "0700", "-o", tostring(now.uid), "-g", tostring(now.gid), t:path(dir) })
      if not ok then return nil, err end
      ok, err = files.put(t, now.keys_path, text, { mode = "0600", uid = now.uid, gid = now.gid })
      if ok == nil then return nil, err end
    end
    return true
  end,
}
