-- The lxc recipe on real LXC containers (the lxc target, busybox template),
-- in a private lxcpath: create (template, clone of its snapshot, a
-- dependent container, a rootfs tarball), features, health checks,
-- snapshots, drift made by hand and converged back, rollback, phoenix test,
-- delete. Needs root and the lxc tools; skips with the reason otherwise.
local exec = require "px.exec"
local fs = require "px.fs"
local json = require "px.json"
local sys = require "px.sys"
local kit = require "testkit"

local BUSYBOX = "/usr/share/lxc/templates/lxc-busybox"

local function missing()
  if sys.uid() ~= 0 then return "not root" end
  local r = exec.run({ argv = { "lxc-create", "--version" } })
  if not r or r.code ~= 0 then return "no lxc-create (apt-get install lxc)" end
  if not fs.exists(BUSYBOX) then return "no " .. BUSYBOX end
  r = exec.run({ argv = { "busybox", "true" } })
  if not r or r.code ~= 0 then return "no busybox (apt-get install busybox)" end
end

local function run(argv, stdin)
  return assert(exec.run({ argv = argv, stdin = stdin, timeout_ms = 120000 }))
end

describe("lxc recipe on the lxc target (real containers)", function()
  local why = missing()
  if why then
    print("SKIP lxc_target_spec: " .. why)
    it("needs root and LXC", function() pending(why) end)
    return
  end

  local dir, lxcpath, site

  local function write_site(cts, host)
    host = host or {}
    host.target = { type = "lxc", lxcpath = lxcpath }
    host.features_dir = "features"
    kit.write(site .. "/phoenix_hypervisor_config.json", json.encode(host))
    kit.write(site .. "/phoenix_lxc_configs.json", json.encode({ lxc_configs = cts }))
  end

  local function px(args)
    local argv = { args[1], "--config-dir", site }
    if args[1] == "converge" or args[1] == "delete" then
      argv[#argv + 1] = "--lock-file"
      argv[#argv + 1] = dir .. "/lock"
    end
    for i = 2, #args do argv[#argv + 1] = args[i] end
    return kit.phoenix(argv, { timeout_ms = 600000 })
  end

  local function plan_changes(id)
    local r = px({ "plan", "--json" })
    assert(r.code == 0, r.stdout .. r.stderr)
    for _, res in ipairs(assert(json.decode(r.stdout)).resources) do
      if res.id == id then return res.changes end
    end
  end

  local function fields(list)
    local out = {}
    for _, c in ipairs(list) do out[#out + 1] = c.field end
    table.sort(out)
    return table.concat(out, "|")
  end

  local function attach(id, ...)
    return run({ "lxc-attach", "-P", lxcpath, "-n", tostring(id), "--", ... })
  end

  local function config(id) return assert(fs.read(lxcpath .. "/" .. id .. "/config")) end

  local function state(id)
    return run({ "lxc-info", "-P", lxcpath, "-n", tostring(id), "-s" }).stdout:match("State:%s+(%u+)")
  end

  local function cts()
    return {
      ["7900"] = { name = "itpl", template = BUSYBOX, memory_mb = 96, cores = 1, features = { "stamp" },
        template_snapshot_name = "golden" },
      ["7901"] = { name = "iweb", clone_from_ctid = "7900", memory_mb = 128, swap_mb = 64, features = { "stamp", "web" },
        start_at_boot = true, boot_order = 1,
        mount_points = { { host_path = dir .. "/shared", container_path = "/srv/shared" } },
        health_check = { command = "test -f /etc/web-ready", retries = 3, interval = 1 },
        enable_lifecycle_snapshots = true,
        tests = { smoke = { { name = "ready", type = "script", path = "ready.sh" } } } },
      ["7902"] = { name = "iworker", template = BUSYBOX, unprivileged = false, memory_mb = 64, features = { "stamp" },
        dependencies = { "7901" } },
    }
  end

  lazy_setup(function()
    dir = kit.tmpdir()
    lxcpath = dir .. "/lxc"
    assert(fs.mkdir(lxcpath))
    site = dir .. "/site"
    kit.write(site .. "/features/stamp.sh", "#!/bin/sh\n# stamp: who am I\n#   PHOENIX_HOSTNAME  hostname\n"
      .. "#   PHOENIX_GUEST_ID  CTID\n"
      .. 'set -eu\nmkdir -p /etc/phoenix\necho "$PHOENIX_HOSTNAME $PHOENIX_GUEST_ID" > /etc/phoenix/stamp\n'
      .. 'echo run >> /etc/phoenix/stamp-runs\n')
    kit.write(site .. "/features/web.sh", "set -eu\ntouch /etc/web-ready\n")
    kit.write(site .. "/tests/ready.sh", "test -f /etc/web-ready && grep -q iweb /etc/phoenix/stamp\n")
    write_site(cts())
  end)

  lazy_teardown(function()
    if lxcpath then
      for _, name in ipairs(fs.list(lxcpath) or {}) do
        exec.run({ argv = { "lxc-stop", "-P", lxcpath, "-n", name, "-k" } })
        exec.run({ argv = { "lxc-destroy", "-P", lxcpath, "-n", name, "-s" } })
      end
    end
    kit.cleanup(dir)
  end)

  it("creates a template, a clone of its snapshot and a dependent container; a second run changes nothing", function()
    local r = px({ "converge" })
    assert.are.equal(0, r.code, r.stdout .. r.stderr)
    for _, id in ipairs({ 7900, 7901, 7902 }) do assert.are.equal("RUNNING", state(id)) end
    assert.are.equal("iweb\n", attach(7901, "hostname").stdout)
    assert.are.equal("iweb 7901\n", attach(7901, "cat", "/etc/phoenix/stamp").stdout)
    assert.are.equal("iworker 7902\n", attach(7902, "cat", "/etc/phoenix/stamp").stdout)
    local c = config(7901)
    assert.matches("lxc.group = phoenix", c, 1, true)
    assert.matches("lxc.cgroup2?%.memory%.[%w_.]+ = 134217728", c)
    assert.matches("lxc.mount.entry = " .. dir .. "/shared srv/shared none bind,create=dir 0 0", c, 1, true)
    assert.matches("lxc.start.auto = 1", c, 1, true)
    assert.is_false(config(7902):find("lxc.idmap", 1, true) ~= nil) -- privileged
    -- snapshots: the template's, and the clone's lifecycle pair (names in the comment files)
    local snaps = {}
    for _, id in ipairs({ "7900", "7901" }) do
      for _, s in ipairs(fs.list(lxcpath .. "/" .. id .. "/snaps") or {}) do
        snaps[#snaps + 1] = id .. ":" .. fs.read(lxcpath .. "/" .. id .. "/snaps/" .. s .. "/comment"):match("%S+")
      end
    end
    table.sort(snaps)
    assert.are.equal("7900:golden,7901:final-form,7901:pre-configured", table.concat(snaps, ","))
    -- the clone got the template's marker, but its identity differs: the feature ran again
    assert.are.equal("run\nrun\n", attach(7901, "cat", "/etc/phoenix/stamp-runs").stdout)
    r = px({ "converge", "--json" })
    assert.are.equal(0, r.code, r.stderr)
    assert.are.equal(0, assert(json.decode(r.stdout)).summary.changes)
    r = px({ "plan" })
    assert.matches("Plan: no changes; 3 in sync.", r.stdout, 1, true)
  end)

  it("phoenix test runs the guest's tests", function()
    local r = px({ "test", "7901" })
    assert.are.equal(0, r.code, r.stdout .. r.stderr)
    assert.matches("PASS  smoke / ready (ready.sh, guest)", r.stdout, 1, true)
    attach(7901, "rm", "/etc/web-ready")
    r = px({ "test", "7901" })
    assert.are.equal(1, r.code)
    assert.matches("lxc:7901: 0 passed, 1 failed", r.stdout, 1, true)
    attach(7901, "touch", "/etc/web-ready")
  end)

  it("shows drift made by hand and converges it back", function()
    local path = lxcpath .. "/7901/config"
    local c = config(7901)
    c = c:gsub("(memory%.[%w_]+ = )134217728", "%1268435456", 1)
    c = c:gsub("lxc%.mount%.entry = [^\n]*srv/shared[^\n]*\n", "")
    assert(fs.write(path, c))
    kit.write(site .. "/features/web.sh", "set -eu\ntouch /etc/web-ready\necho v2 > /etc/web-version\n")
    local ch = plan_changes("lxc:7901")
    -- on a cgroup v1 host swap is memory+swap less memory: it moves with memory
    assert.are.equal("feature web|memory_mb|mount /srv/shared", (fields(ch):gsub("|swap_mb$", "")))
    for _, x in ipairs(ch) do
      if x.field == "mount /srv/shared" then assert.are.equal("restart", x.disruptive) end
      if x.field == "memory_mb" then assert.is_nil(x.disruptive) end
    end
    -- without --allow-restart the mount waits; memory is set live
    local r = px({ "converge" })
    assert.are.equal(0, r.code, r.stdout .. r.stderr)
    assert.matches("held: needs --allow-restart", r.stdout, 1, true)
    assert.are.equal("v2\n", attach(7901, "cat", "/etc/web-version").stdout)
    assert.are.equal("mount /srv/shared", fields(plan_changes("lxc:7901")))
    r = px({ "converge", "--allow-restart" })
    assert.are.equal(0, r.code, r.stdout .. r.stderr)
    assert.matches("/srv/shared", attach(7901, "cat", "/proc/mounts").stdout, 1, true)
    assert.are.equal(0, #plan_changes("lxc:7901"))
    -- stopped by hand
    run({ "lxc-stop", "-P", lxcpath, "-n", "7902", "-k" })
    assert.are.equal("state", fields(plan_changes("lxc:7902")))
    r = px({ "converge" })
    assert.are.equal(0, r.code, r.stdout .. r.stderr)
    assert.are.equal("RUNNING", state(7902))
    assert.matches("Plan: no changes; 3 in sync.", px({ "plan" }).stdout, 1, true)
  end)

  it("reports what the lxc target cannot do as unsupported, and leaves it", function()
    local list = cts()
    list["7902"].storage_size_gb = 8
    write_site(list)
    local ch = plan_changes("lxc:7902")
    assert.are.equal(1, #ch)
    assert.are.equal("storage_size_gb", ch[1].field)
    assert.matches("not supported on this target", ch[1].held, 1, true)
    local r = px({ "converge" })
    assert.are.equal(0, r.code, r.stdout .. r.stderr)
    write_site(cts())
  end)

  it("creates from a rootfs tarball, rolls a failing container back to pre-configured, and deletes", function()
    local tar = dir .. "/rootfs.tar.gz"
    run({ "tar", "--numeric-owner", "-czf", tar, "-C", lxcpath .. "/7902/rootfs", "." })
    kit.write(site .. "/features/breaks.sh", "set -eu\ntouch /etc/half-done\nexit 7\n")
    local list = cts()
    list["7903"] = { name = "itar", template = tar, unprivileged = false, memory_mb = 64,
      features = { "stamp", "breaks" }, enable_lifecycle_snapshots = true }
    write_site(list, { behavior = { rollback_on_failure = true } })
    local r = px({ "converge" })
    assert.are.equal(1, r.code)
    assert.matches("lxc:7903: failed: feature breaks: `sh /var/lib/phoenix/features/breaks.sh` exited 7", r.stdout, 1,
      true)
    assert.matches("rolled back to snapshot pre-configured", r.stdout, 1, true)
    assert.are.equal("RUNNING", state(7903))
    assert.are.equal(1, attach(7903, "test", "-e", "/etc/half-done").code) -- undone by the rollback
    assert.are.equal("itar\n", attach(7903, "hostname").stdout)
    -- a container phoenix did not make is not deleted
    run({ "lxc-create", "-P", lxcpath, "-n", "7999", "-t", "none" })
    r = px({ "delete", "lxc:7999", "--yes" })
    assert.are.equal(2, r.code)
    assert.matches("does not carry the phoenix tag", r.stderr, 1, true)
    r = px({ "delete", "lxc:7903", "--yes" })
    assert.are.equal(0, r.code, r.stderr)
    assert.is_false(fs.exists(lxcpath .. "/7903"))
    write_site(cts())
  end)
end)
