-- The host recipes on a temporary target root, through the engine: each
-- converges, a second run has nothing to do, a hand edit is found and
-- undone, and bad input fails without writing. Host tools are recording
-- stand-ins (hostkit), or wrappers around the real checkers (testparm,
-- dnsmasq --test, apparmor_parser -Q) where those are installed.
local hostkit = require "hostkit"
local json = require "px.json"
local fs = require "px.fs"
local exec = require "px.exec"
local kit = require "testkit"

local R = hostkit.resource

local function ok_run(h, resources, o)
  local rep = h:run(resources, o)
  for _, r in ipairs(resources) do
    local res = rep.results[r.id]
    assert(res.status == "changed" or res.status == "ok", r.id .. ": " .. hostkit.why(res))
  end
  return rep
end

local function in_sync(h, resources, o)
  local rep = h:run(resources, o)
  for _, r in ipairs(resources) do
    local res = rep.results[r.id]
    assert(res.status == "ok" and #res.changes == 0, r.id .. " should be in sync: " .. hostkit.why(res))
  end
  return rep
end

local function have(prog)
  local r = exec.run({ argv = { "sh", "-c", "command -v " .. prog } })
  return r and r.code == 0 and r.stdout:match("^(%S+)")
end

describe("host recipes", function()
  local h
  before_each(function() h = hostkit.new() end)
  after_each(function() h:cleanup() end)

  describe("network_bridge", function()
    local want = { name = "vmbr0", address = "192.168.10.2/24", gateway = "192.168.10.1", ports = "enp3s0",
      dns_nameservers = json.array({}) }
    local INSTALLER = "auto lo\niface lo inet loopback\n\niface enp3s0 inet manual\n\nauto vmbr0\n"
      .. "iface vmbr0 inet static\n\taddress 192.168.10.9/24\n\tgateway 192.168.10.1\n\tbridge-ports enp3s0\n"
      .. "\tbridge-stp off\n\tbridge-fd 0\n\nsource /etc/network/interfaces.d/*\n"

    it("adopts the installer's stanza, and a live bridge needs --allow-restart", function()
      h:stub("ifreload")
      h:write("/etc/network/interfaces", INSTALLER)
      local r = R("network_bridge:vmbr0", want)
      local rep = h:run({ r })
      local res = rep.results[r.id]
      assert.are.equal("ok", res.status)
      assert.are.equal(1, #res.held)
      assert.are.equal("restart", res.held[1].disruptive)
      assert.are.equal(INSTALLER, h:read("/etc/network/interfaces"))
      assert.are.equal(0, #h:calls("ifreload"))
      ok_run(h, { r }, { allow_restart = true })
      local text = h:read("/etc/network/interfaces")
      assert.are.equal("auto lo\niface lo inet loopback\n\niface enp3s0 inet manual\n\n"
        .. "# BEGIN phoenix network_bridge vmbr0\nauto vmbr0\niface vmbr0 inet static\n\taddress 192.168.10.2/24\n"
        .. "\tgateway 192.168.10.1\n\tbridge-ports enp3s0\n\tbridge-stp off\n\tbridge-fd 0\n"
        .. "# END phoenix network_bridge vmbr0\n\nsource /etc/network/interfaces.d/*\n", text)
      assert.are.same({ { "-a" } }, h:calls("ifreload"))
      assert.are.equal(INSTALLER, h:read("/etc/network/interfaces.phoenix.bak"))
      in_sync(h, { r }, { allow_restart = true })
      assert.are.equal(1, #h:calls("ifreload"))
    end)

    it("adds a new bridge without --allow-restart and restores the file when ifreload fails", function()
      h:stub("ifreload", { exit = 1, stderr = "error: vmbr1: bridge port enp9s0 does not exist\n" })
      h:write("/etc/network/interfaces", "auto lo\niface lo inet loopback\n")
      local r = R("network_bridge:vmbr1", { name = "vmbr1", ports = "enp9s0", vlan_aware = true,
        dns_nameservers = json.array({}) })
      local rep = h:run({ r })
      local res = rep.results[r.id]
      assert.are.equal("failed", res.status)
      assert.matches("ifreload %-a` exited 1: error: vmbr1: bridge port enp9s0 does not exist", res.error)
      assert.matches("restored", res.error)
      assert.are.equal("auto lo\niface lo inet loopback\n", h:read("/etc/network/interfaces"))
      assert.are.equal(2, #h:calls("ifreload"))
      fs.remove(h.dir .. "/exit.ifreload")
      ok_run(h, { r })
      assert.matches("iface vmbr1 inet manual\n\tbridge%-ports enp9s0\n\tbridge%-stp off\n\tbridge%-fd 0\n"
        .. "\tbridge%-vlan%-aware yes\n\tbridge%-vids 2%-4094\n", h:read("/etc/network/interfaces"))
    end)
  end)

  describe("timezone", function()
    it("sets /etc/timezone and /etc/localtime, and refuses an unknown zone", function()
      local zone = "/usr/share/zoneinfo/Europe/Berlin"
      if not fs.exists(zone) then
        print("skip: no " .. zone .. " (tzdata)")
        return
      end
      h:write(zone, assert(fs.read(zone)))
      h:write("/etc/timezone", "Etc/UTC\n")
      local r = R("timezone:host", { timezone = "Europe/Berlin" })
      ok_run(h, { r })
      assert.are.equal("Europe/Berlin\n", h:read("/etc/timezone"))
      assert.are.equal("link", fs.stat(h.root .. "/etc/localtime", { follow = false }).type)
      in_sync(h, { r })
      local bad = R("timezone:host", { timezone = "Mars/Olympus_Mons" })
      local rep = h:run({ bad })
      assert.are.equal("failed", rep.results[bad.id].status)
      assert.matches("unknown time zone Mars/Olympus_Mons", rep.results[bad.id].error)
      assert.are.equal("Europe/Berlin\n", h:read("/etc/timezone"))
    end)
  end)

  describe("users", function()
    local KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEXAMPLE admin@lab"
    local HASH = "$6$rounds=5000$salt$0123456789abcdefHASH"
    local function base_files()
      h:write("/etc/passwd", "root:x:0:0:root:/root:/bin/bash\n")
      h:write("/etc/group", "root:x:0:\nsudo:x:27:\nusers:x:100:\n")
      h:write("/etc/shadow", "root:*:19000:0:99999:7:::\n")
      h:write("/etc/gshadow", "root:*::\nsudo:*::\nusers:*::\n")
      fs.mkdir(h.root .. "/home")
    end

    it("creates the user with sudo, password hash and key, and keeps other keys", function()
      if not have("useradd") then print("skip: no useradd") return end
      base_files()
      local want = { username = "phoenix_admin", password_hash = HASH, sudo_access = true,
        ssh_public_keys = json.array({ KEY }) }
      local r = R("users:phoenix_admin", want)
      local plan = h:run({ r }, { mode = "plan" })
      local secret
      for _, c in ipairs(plan.results[r.id].changes) do if c.field == "password_hash" then secret = c.secret end end
      assert.is_true(secret)
      ok_run(h, { r })
      assert.matches("\nphoenix_admin:x:%d+:%d+::/home/phoenix_admin:/bin/bash\n", h:read("/etc/passwd"))
      assert.matches("sudo:x:27:phoenix_admin", h:read("/etc/group"))
      assert.matches("\nphoenix_admin:" .. HASH:gsub("%p", "%%%0") .. ":", h:read("/etc/shadow"))
      local keys = "/home/phoenix_admin/.ssh/authorized_keys"
      assert.are.equal(KEY .. "\n", h:read(keys))
      assert.are.equal(tonumber("600", 8), fs.stat(h.root .. keys).mode)
      in_sync(h, { r })
      -- hand edits: a key of the user's own is kept, sudo removed by hand comes back
      h:write(keys, "ssh-rsa AAAAB3 own@laptop\n")
      h:write("/etc/group", (h:read("/etc/group"):gsub("sudo:x:27:phoenix_admin", "sudo:x:27:")))
      ok_run(h, { r })
      assert.are.equal("ssh-rsa AAAAB3 own@laptop\n" .. KEY .. "\n", h:read(keys))
      assert.matches("sudo:x:27:phoenix_admin", h:read("/etc/group"))
      in_sync(h, { r })
      -- the hash never reaches a command line
      for _, argv in ipairs(h:calls()) do
        for _, a in ipairs(argv) do assert.is_nil(a:find(HASH, 1, true)) end
      end
    end)

    it("takes sudo away, and refuses a password that is not a hash", function()
      if not have("useradd") then print("skip: no useradd") return end
      base_files()
      local r = R("users:ops", { username = "ops", sudo_access = true, ssh_public_keys = json.array({}) })
      ok_run(h, { r })
      r = R("users:ops", { username = "ops", sudo_access = false, ssh_public_keys = json.array({}) })
      ok_run(h, { r })
      assert.matches("sudo:x:27:\n", h:read("/etc/group"))
      local bad = R("users:ops", { username = "ops", password_hash = "hunter2", ssh_public_keys = json.array({}) })
      local rep = h:run({ bad })
      assert.are.equal("failed", rep.results[bad.id].status)
      assert.matches("not a crypt%(3%) hash", rep.results[bad.id].error)
      assert.is_nil(rep.results[bad.id].error:find("hunter2", 1, true))
    end)
  end)

  describe("nfs_exports", function()
    it("writes the exports file, runs exportfs -ra only on change, and puts back a removed line", function()
      h:stub("exportfs")
      fs.mkdir(h.root .. "/tank/shared", { parents = true })
      fs.mkdir(h.root .. "/tank/media", { parents = true })
      local r = R("nfs_exports:host", { exports = {
        { path = "/tank/shared", clients = { "192.168.10.0/24", "10.0.0.5" }, options = { "rw", "sync", "no_subtree_check" } },
        { path = "/tank/media", clients = { "192.168.10.0/24" } } } })
      ok_run(h, { r })
      local text = h:read("/etc/exports.d/phoenix.exports")
      assert.matches("\n/tank/shared 192%.168%.10%.0/24%(rw,sync,no_subtree_check%) 10%.0%.0%.5%(rw,sync,no_subtree_check%)\n"
        .. "/tank/media 192%.168%.10%.0/24%(ro,sync,no_subtree_check%)\n$", text)
      assert.are.same({ { "-ra" } }, h:calls("exportfs"))
      in_sync(h, { r })
      assert.are.equal(1, #h:calls("exportfs"))
      h:write("/etc/exports.d/phoenix.exports", (text:gsub("/tank/media[^\n]*\n", "")))
      ok_run(h, { r })
      assert.are.equal(text, h:read("/etc/exports.d/phoenix.exports"))
      assert.are.equal(2, #h:calls("exportfs"))
    end)

    it("fails on a path that is not there, writing nothing", function()
      h:stub("exportfs")
      local r = R("nfs_exports:host", { exports = { { path = "/tank/nowhere", clients = { "10.0.0.0/8" } } } })
      local rep = h:run({ r })
      assert.are.equal("failed", rep.results[r.id].status)
      assert.matches("/tank/nowhere is not a directory", rep.results[r.id].error)
      assert.is_nil(h:read("/etc/exports.d/phoenix.exports"))
      assert.are.equal(0, #h:calls("exportfs"))
    end)
  end)

  describe("samba_shares", function()
    local SMB = "[global]\n   workgroup = WORKGROUP\n\n[homes]\n   browseable = no\n"
    local function share(opts)
      return R("samba_shares:host", { user = "phoenix_admin", shares = { { name = "shared", path = "/tank/shared",
        options = opts or "browseable=yes writable=yes create_mask=0664", valid_users = { "phoenix_admin" } } } })
    end

    it("checks with testparm, then writes the include and reloads smbd", function()
      local testparm = have("testparm")
      if not testparm then print("skip: no testparm (samba-common-bin)") return end
      h:wrap("testparm", testparm)
      h:stub("systemctl")
      fs.mkdir(h.root .. "/tank/shared", { parents = true })
      h:write("/etc/samba/smb.conf", SMB)
      local r = share()
      ok_run(h, { r })
      assert.are.equal(SMB .. "\n# BEGIN phoenix samba_shares\ninclude = /etc/samba/phoenix-shares.conf\n"
        .. "# END phoenix samba_shares\n", h:read("/etc/samba/smb.conf"))
      assert.matches("\n%[shared%]\n   path = /tank/shared\n   browseable = yes\n   writable = yes\n"
        .. "   create mask = 0664\n   valid users = phoenix_admin\n$", h:read("/etc/samba/phoenix-shares.conf"))
      assert.are.equal(1, #h:calls("testparm"))
      assert.are.same({ { "try-reload-or-restart", "smbd" } }, h:calls("systemctl"))
      in_sync(h, { r })
      assert.are.equal(1, #h:calls("systemctl"))
    end)

    it("changes nothing when testparm rejects the shares", function()
      local testparm = have("testparm")
      if not testparm then print("skip: no testparm (samba-common-bin)") return end
      h:wrap("testparm", testparm)
      h:stub("systemctl")
      fs.mkdir(h.root .. "/tank/shared", { parents = true })
      h:write("/etc/samba/smb.conf", SMB)
      local r = share("browseable=maybe")
      local rep = h:run({ r })
      assert.are.equal("failed", rep.results[r.id].status)
      assert.matches("do not pass testparm, nothing was changed", rep.results[r.id].error)
      assert.are.equal(SMB, h:read("/etc/samba/smb.conf"))
      assert.is_nil(h:read("/etc/samba/phoenix-shares.conf"))
      assert.are.equal(0, #h:calls("systemctl"))
      r = share("browseable")
      rep = h:run({ r })
      assert.matches("option 'browseable' is not key=value", rep.results[r.id].error)
    end)
  end)

  describe("apparmor_profile", function()
    local PROFILE = "profile lxc-phoenix-test flags=(attach_disconnected,mediate_deleted) {\n  file,\n  network,\n"
      .. "  deny mount fstype=devpts,\n}\n"

    it("parses with -Q first, installs and loads the profile, keeps the old one outside apparmor.d", function()
      local parser = have("apparmor_parser")
      if not parser then print("skip: no apparmor_parser") return end
      -- -Q runs the real parser; -r (a kernel load) is recorded and, as the
      -- kernel would, lists the profile as loaded
      local loaded = h.root .. "/sys/kernel/security/apparmor/profiles"
      assert(fs.write(h.bin .. "/apparmor_parser", string.format([[#!/bin/sh
/usr/bin/python3 -S -c 'import json,sys; print(json.dumps(sys.argv[1:]))' apparmor_parser "$@" >> %q/calls.log
case "$1" in
  -Q) exec %q "$@" ;;
  -r) echo "lxc-phoenix-test (enforce)" >> %q ;;
esac
]], h.dir, parser, loaded), { mode = "0755" }))
      h:write("/sys/kernel/security/apparmor/profiles", "lxc-container-default (enforce)\n")
      local file = h.dir .. "/site/apparmor/lxc-phoenix-test"
      kit.write(file, PROFILE)
      local r = R("apparmor_profile:lxc-phoenix-test", { name = "lxc-phoenix-test", guests = { 101 }, file = file })
      ok_run(h, { r })
      assert.are.equal(PROFILE, h:read("/etc/apparmor.d/lxc/lxc-phoenix-test"))
      local flags = {}
      for _, argv in ipairs(h:calls("apparmor_parser")) do flags[#flags + 1] = argv[1] end
      assert.are.same({ "-Q", "-r" }, flags)
      in_sync(h, { r })
      -- a changed text: the old one is kept outside apparmor.d, which holds only the profile
      kit.write(file, PROFILE:gsub("  network,\n", ""))
      ok_run(h, { r })
      assert.are.equal(PROFILE, h:read("/var/lib/phoenix/backup/apparmor/lxc-phoenix-test"))
      assert.are.same({ "lxc-phoenix-test" }, fs.list(h.root .. "/etc/apparmor.d/lxc"))
      -- a profile that does not parse is not installed
      kit.write(file, "profile broken {\n  bogus rule here\n}\n")
      local rep = h:run({ r })
      assert.are.equal("failed", rep.results[r.id].status)
      assert.matches("does not parse, nothing was changed", rep.results[r.id].error)
      assert.are.equal(PROFILE:gsub("  network,\n", ""), h:read("/etc/apparmor.d/lxc/lxc-phoenix-test"))
    end)

    it("needs the profile somewhere when the site does not carry it", function()
      local r = R("apparmor_profile:lxc-custom", { name = "lxc-custom", guests = { 101, 102 },
        file = h.dir .. "/site/apparmor/lxc-custom" })
      local rep = h:run({ r })
      assert.are.equal("failed", rep.results[r.id].status)
      assert.matches("lxc%-custom %(used by 101, 102%) is neither in", rep.results[r.id].error)
      h:write("/etc/apparmor.d/lxc-custom", "profile lxc-custom {}\n")
      h:stub("apparmor_parser")
      in_sync(h, { r })
    end)
  end)
end)
