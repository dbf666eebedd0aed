-- zfs_pool, zfs_dataset and pve_storage at engine level: pool health and
-- layout from a recorded `zpool status`, storages on the simulator.
local hostkit = require "hostkit"
local pvesim = require "pvesim"
local targets = require "phoenix.target"
local json = require "px.json"
local fs = require "px.fs"
local kit = require "testkit"
local log = require "px.log"

local R = hostkit.resource

-- A degraded mirror as zpool status prints it (after the OpenZFS man page).
local DEGRADED = [[
  pool: tank
 state: DEGRADED
status: One or more devices could not be used because the label is missing or
	invalid.  Sufficient replicas exist for the pool to continue
	functioning in a degraded state.
action: Replace the device using 'zpool replace'.
   see: https://openzfs.github.io/openzfs-docs/msg/ZFS-8000-4J
config:

	NAME                         STATE     READ WRITE CKSUM
	tank                         DEGRADED     0     0     0
	  mirror-0                   DEGRADED     0     0     0
	    ata-WDC_WD40EFRX_1       ONLINE       0     0     0
	    ata-WDC_WD40EFRX_2       UNAVAIL      0     0     0  corrupted data

errors: No known data errors
]]

describe("zfs_pool recipe", function()
  local h
  before_each(function() h = hostkit.new() end)
  after_each(function() h:cleanup() end)

  it("warns about a degraded pool naming the device, and holds a layout change", function()
    h:stub("zpool", { stdout = DEGRADED })
    local want = { name = "tank", raid_level = "mirror",
      disks = { "/dev/disk/by-id/ata-WDC_WD40EFRX_1", "/dev/disk/by-id/ata-WDC_WD40EFRX_2" } }
    log.capture(true)
    local rep = h:run({ R("zfs_pool:tank", want) })
    local lines = log.captured()
    log.capture(false)
    local text = type(lines) == "table" and table.concat(lines, "\n") or tostring(lines)
    local res = rep.results["zfs_pool:tank"]
    assert.are.equal("ok", res.status, hostkit.why(res))
    assert.are.equal(0, #res.changes + #res.held)
    assert.matches("pool tank is DEGRADED: ata%-WDC_WD40EFRX_2 UNAVAIL", text)
    local raidz = { name = "tank", raid_level = "raidz1", disks = want.disks }
    log.capture(true)
    res = h:run({ R("zfs_pool:tank", raidz) }).results["zfs_pool:tank"]
    log.capture(false)
    assert.are.equal("ok", res.status)
    assert.are.equal(1, #res.held)
    assert.matches("never changes the layout", res.held[1].unsupported)
    assert.are.equal("mirror: ata-WDC_WD40EFRX_1 ata-WDC_WD40EFRX_2", res.held[1].from)
    assert.are.same({ { "status" }, { "status" } }, h:calls("zpool")) -- nothing but reads
  end)

  it("names a disk that does not exist", function()
    h:stub("zpool", { stdout = "no pools available\n" })
    local rep = h:run({ R("zfs_pool:new", { name = "new", raid_level = "single", disks = { "/dev/disk/by-id/ata-GONE" } }) })
    local res = rep.results["zfs_pool:new"]
    assert.are.equal("failed", res.status)
    assert.matches("disk /dev/disk/by%-id/ata%-GONE does not exist", res.error)
    assert.are.same({ { "status" } }, h:calls("zpool"))
  end)
end)

describe("pve_storage recipe", function()
  local dir, node, t
  before_each(function()
    dir = kit.tmpdir()
    node = pvesim.init(dir .. "/sim")
    t = assert(targets.open(node:target_spec()))
  end)
  after_each(function() kit.cleanup(dir) end)

  local function run(resources, target)
    local engine = require "phoenix.engine"
    return assert(engine.run({ site = hostkit.site(resources), resources = resources, recipes = hostkit.registry(),
      target = target or t, mode = "apply" }))
  end

  it("sets the content of an existing storage and holds what Proxmox cannot change", function()
    node:run("pvesm", "add", "dir", "tank-iso", "--path", "/srv/iso", "--content", "iso")
    local want = { storage = "tank-iso", type = "dir", content = json.array({ "vztmpl", "iso" }), dataset = "tank/iso",
      path = "/srv/iso" }
    local rep = run({ R("pve_storage:tank-iso", want) })
    local res = rep.results["pve_storage:tank-iso"]
    assert.are.equal("changed", res.status, hostkit.why(res))
    assert.are.equal(1, node:count("^pvesm set tank%-iso %-%-content vztmpl,iso$"))
    assert.matches("dir: tank%-iso\n\tpath /srv/iso\n\tcontent iso,vztmpl\n", fs.read(node.root .. "/etc/pve/storage.cfg"))
    t = assert(targets.open(node:target_spec()))
    res = run({ R("pve_storage:tank-iso", want) }).results["pve_storage:tank-iso"]
    assert.are.equal("ok", res.status)
    assert.are.equal(0, #res.changes)
    -- another path, another type: held, never forced
    local moved = { storage = "tank-iso", type = "dir", content = want.content, dataset = "tank/iso", path = "/tank/iso" }
    res = run({ R("pve_storage:tank-iso", moved) }).results["pve_storage:tank-iso"]
    assert.are.equal(1, #res.held)
    assert.matches("cannot change a storage's path", res.held[1].unsupported)
    local zp = { storage = "tank-iso", type = "zfspool", content = want.content, dataset = "tank/iso", pool = "tank/iso" }
    res = run({ R("pve_storage:tank-iso", zp) }).results["pve_storage:tank-iso"]
    assert.matches("type cannot change", res.held[1].unsupported)
  end)

  it("is unsupported on a target without Proxmox", function()
    local h = hostkit.new()
    local want = { storage = "x-y", type = "dir", content = json.array({ "iso" }), dataset = "x/y", path = "/x/y" }
    local res = run({ R("pve_storage:x-y", want) }, h:target()).results["pve_storage:x-y"]
    h:cleanup()
    assert.are.equal("ok", res.status)
    assert.matches("has no Proxmox storage", res.held[1].unsupported)
  end)
end)
