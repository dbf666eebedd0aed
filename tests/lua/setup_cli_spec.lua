-- `phoenix setup` through the binary on the Proxmox simulator: the host
-- site (tests/fixtures/site/host) converges, a second run changes nothing
-- and reads ZFS with one `zfs get`, hand edits are undone, and bad input
-- fails clearly without touching the pool. Host tools the simulator does
-- not have (ifreload, exportfs, systemctl, update-initramfs, the kernel
-- load of apparmor_parser) are recording stand-ins in its bin directory.
local exec = require "px.exec"
local fs = require "px.fs"
local json = require "px.json"
local sys = require "px.sys"
local kit = require "testkit"
local hostkit = require "hostkit"
local pvesim = require "pvesim"

local SITE = kit.source_dir .. "/tests/fixtures/site/host"
local HASH = "$6$rounds=5000$phoenixsalt$TESTHASHxyz"
local ZONE = "/usr/share/zoneinfo/Europe/Berlin"

local function have(prog)
  local r = exec.run({ argv = { "sh", "-c", "command -v " .. prog } })
  return r and r.code == 0 and r.stdout:match("^(%S+)")
end

-- A node with the host's files a fresh Proxmox install has.
local function node_for_setup(dir)
  local node = pvesim.init(dir .. "/sim", { "--sysfs", "gpus=1,vendor=nvidia" })
  local h = hostkit.new()
  h.root, h.bin = node.root, node.bin
  for _, d in ipairs({ "ata-PHX_TEST_DISK_1", "ata-PHX_TEST_DISK_2" }) do
    h:write("/dev/disk/by-id/" .. d, "")
    assert(exec.run({ argv = { "truncate", "-s", "64M", node.root .. "/dev/disk/by-id/" .. d } }))
  end
  h:write("/etc/network/interfaces", "auto lo\niface lo inet loopback\n\niface enp3s0 inet manual\n\n"
    .. "auto vmbr0\niface vmbr0 inet static\n\taddress 192.168.10.2/24\n\tgateway 192.168.10.1\n"
    .. "\tbridge-ports enp3s0\n\tbridge-stp off\n\tbridge-fd 0\n")
  h:write("/etc/samba/smb.conf", "[global]\n   workgroup = WORKGROUP\n")
  h:write("/etc/passwd", "root:x:0:0:root:/root:/bin/bash\n")
  h:write("/etc/group", "root:x:0:\nsudo:x:27:\n")
  h:write("/etc/shadow", "root:*:19000:0:99999:7:::\n")
  h:write("/etc/gshadow", "root:*::\nsudo:*::\n")
  fs.mkdir(node.root .. "/home")
  h:write(ZONE, assert(fs.read(ZONE)))
  h:write("/sys/module/zfs/parameters/zfs_arc_max", "0\n")
  -- the simulator keeps datasets as state, it mounts nothing: the shared
  -- dataset's mountpoint is made as a mount would
  fs.mkdir(node.root .. "/tank/shared", { parents = true })
  for _, t in ipairs({ "ifreload", "exportfs", "systemctl", "update-initramfs" }) do h:stub(t) end
  local parser = have("apparmor_parser")
  assert(fs.write(node.bin .. "/apparmor_parser", string.format([[#!/bin/sh
/usr/bin/python3 -S -c 'import json,sys; print(json.dumps(sys.argv[1:]))' apparmor_parser "$@" >> %q/calls.log
[ "$1" = -Q ] && exec %q "$@"
exit 0
]], h.dir, parser or "true"), { mode = "0755" }))
  return node, h
end

local function setup(node, dir, extra, site)
  local args = { "setup", "--config-dir", site or SITE, "--target", "pve", "--target-opt", "root=" .. node.root,
    "--target-opt", "bin=" .. node.bin, "--lock-file", dir .. "/lock", "--allow-restart" }
  for _, a in ipairs(extra or {}) do args[#args + 1] = a end
  return kit.phoenix(args, { env = { PATH = sys.getenv("PATH"), PHOENIX_ADMIN_PASSWORD_HASH = HASH } })
end

local function summary(r)
  local doc = assert(json.decode(r.stdout), r.stdout .. r.stderr)
  return doc.summary, doc
end

describe("phoenix setup on the simulator", function()
  local dir
  before_each(function() dir = kit.tmpdir() end)
  after_each(function() kit.cleanup(dir) end)

  it("converges the host, then has nothing to do, then undoes hand edits", function()
    if not fs.exists(ZONE) then print("skip: no " .. ZONE .. " (tzdata)") return end
    if not have("testparm") then print("skip: no testparm (samba-common-bin)") return end
    if not have("useradd") then print("skip: no useradd") return end
    local node, h = node_for_setup(dir)
    local r = setup(node, dir, { "--json" })
    local s, doc = summary(r)
    for _, res in ipairs(doc.resources) do
      assert(res.status == "changed" or res.status == "ok", res.id .. ": " .. tostring(res.error))
    end
    assert.are.equal(0, r.code, r.stderr)
    assert.are.equal(0, s.failed)
    assert.are.equal(1, node:count("^zpool create %-R .* %-m /tank tank mirror .*ata%-PHX_TEST_DISK_1 .*ata%-PHX_TEST_DISK_2$"))
    assert.are.equal(4, node:count("^zfs create %-p "))
    assert.are.equal(1, node:count("^zfs create %-p %-o compression=gzip %-o quota=10G %-o recordsize=64K tank/vm%-disks$"))
    assert.are.equal(2, node:count("^pvesm add zfspool "))
    assert.are.equal(1, node:count("^pvesm add dir tank%-templates %-%-path /tank/templates %-%-content iso,vztmpl$"))
    local cfg = fs.read(node.root .. "/etc/pve/storage.cfg")
    assert.matches("zfspool: tank%-ct%-disks\n\tpool tank/ct%-disks\n\tcontent [%w,]+\n", cfg)
    assert.matches("/tank/shared 192%.168%.10%.0/24%(rw,sync,no_subtree_check,root_squash%)",
      fs.read(node.root .. "/etc/exports.d/phoenix.exports"))
    assert.matches("host%-record=dns%.lab%.example%.lan,192%.168%.10%.10\nhost%-record=web%.lab%.example%.lan,192%.168%.10%.20\n",
      fs.read(node.root .. "/etc/dnsmasq.d/phoenix.conf"))
    assert.matches("IN ACCEPT %-source 192%.168%.10%.0/24 %-p udp %-dport 53 # DNS",
      fs.read(node.root .. "/etc/pve/firewall/110.fw"))
    assert.truthy(fs.read(node.root .. "/etc/pve/nodes/pve/host.fw"))
    assert.matches("sudo:x:27:phoenix_admin", fs.read(node.root .. "/etc/group"))
    assert.truthy(fs.read(node.root .. "/etc/apparmor.d/lxc/lxc-phoenix-test"))
    assert.are.equal("2147483648\n", fs.read(node.root .. "/sys/module/zfs/parameters/zfs_arc_max"))
    -- the hash reached no command line and no output
    assert.is_nil(r.stdout:find(HASH, 1, true))
    assert.is_nil(fs.read(node.dir .. "/sim/calls.log"):find(HASH, 1, true))

    -- a second run: nothing to change, one zfs get, one pvesm status, no writes
    node:clear_calls()
    h:clear_calls()
    r = setup(node, dir, { "--json" })
    s = summary(r)
    assert.are.equal(0, r.code, r.stderr)
    assert.are.equal(0, s.changes)
    assert.are.equal(0, s.changed)
    assert.are.equal(1, node:count("^zfs get "))
    assert.are.equal(1, node:count("^zpool status"))
    assert.are.equal(1, node:count("^pvesm status"))
    assert.are.equal(0, node:count("^zfs [cs][re][et]"))
    assert.are.same({}, h:calls())

    -- hand edits: a property, an export line, a firewall rule
    node:run("zfs", "set", "compression=lzjb", "tank/shared")
    fs.write(node.root .. "/etc/exports.d/phoenix.exports", "# emptied by hand\n")
    local fwf = node.root .. "/etc/pve/firewall/110.fw"
    fs.write(fwf, (fs.read(fwf):gsub("%-dport 53", "-dport 5353")))
    r = setup(node, dir, { "--plan" })
    assert.are.equal(0, r.code, r.stderr)
    assert.matches("zfs_dataset:tank/shared", r.stdout)
    assert.matches("~ compression: lzjb → gzip%-6", r.stdout)
    assert.matches("nfs_exports:host", r.stdout)
    assert.matches("firewall:110", r.stdout)
    r = setup(node, dir, { "--json" })
    _, doc = summary(r)
    assert.are.equal(0, r.code, r.stderr)
    local changed = {}
    for _, res in ipairs(doc.resources) do
      if res.status == "changed" then changed[#changed + 1] = res.id end
    end
    table.sort(changed)
    assert.are.same({ "firewall:110", "nfs_exports:host", "zfs_dataset:tank/shared" }, changed)
    assert.matches("%-dport 53 # DNS", fs.read(fwf))
    assert.are.same({ { "-ra" } }, h:calls("exportfs"))
    r = setup(node, dir, { "--json" })
    assert.are.equal(0, summary(r).changes)
  end)

  -- A site of just a pool and datasets (written into dir/site).
  local function zfs_site(d, zfs)
    kit.write(d .. "/site/phoenix_hypervisor_config.json", json.encode({ zfs = zfs }))
    return d .. "/site"
  end

  local function untouched(node)
    assert.are.equal(0, node:count("^zpool create"))
    assert.are.equal(0, node:count("^zfs create"))
    assert.are.equal(0, node:count("^zfs set"))
  end

  it("refuses a disk in use, naming it, and creates nothing", function()
    if not have("mkfs.ext4") then print("skip: no mkfs.ext4") return end
    local node = pvesim.init(dir .. "/sim")
    local disk = node.root .. "/dev/disk/by-id/ata-USED"
    kit.write(disk, "")
    assert(exec.run({ argv = { "truncate", "-s", "16M", disk } }))
    assert.are.equal(0, exec.run({ argv = { "mkfs.ext4", "-q", "-F", "-L", "olddata", disk } }).code)
    kit.write(node.root .. "/dev/disk/by-id/ata-FREE", "")
    local site = zfs_site(dir, { pools = { { name = "tank", raid_level = "mirror",
      disks = { "/dev/disk/by-id/ata-FREE", "/dev/disk/by-id/ata-USED" } } },
      datasets = { { name = "data", pool = "tank", properties = "compression=gzip" } } })
    local r = setup(node, dir, {}, site)
    assert.are.equal(1, r.code)
    assert.matches("disk /dev/disk/by%-id/ata%-USED holds data %(a ext4 signature labelled olddata", r.stdout .. r.stderr)
    assert.is_nil((r.stdout .. r.stderr):find("disk /dev/disk/by-id/ata-FREE", 1, true))
    assert.matches("zfs_dataset:tank/data: skipped", r.stdout)
    untouched(node)
  end)

  it("refuses a dataset on an undeclared pool and an invalid property value", function()
    local node = pvesim.init(dir .. "/sim")
    local site = zfs_site(dir, { pools = json.array({}),
      datasets = { { name = "data", pool = "ghost", properties = "compression=gzip" } } })
    local r = setup(node, dir, {}, site)
    assert.are.equal(1, r.code)
    assert.matches("dataset ghost/data: pool ghost does not exist on this host and is not declared in zfs.pools",
      r.stdout .. r.stderr)
    untouched(node)
    site = zfs_site(dir, { datasets = { { name = "data", pool = "rpool", properties = "compression=fast,quota=1G" } } })
    node:clear_calls()
    r = setup(node, dir, {}, site)
    assert.are.equal(1, r.code)
    assert.matches("phoenix_hypervisor_config.json: /zfs/datasets/0/properties: compression=fast is not a valid value",
      r.stdout .. r.stderr)
    untouched(node)
    -- the value is refused before ZFS is even read
    assert.are.equal(0, node:count("^zfs get"))
  end)
end)
