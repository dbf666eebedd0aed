-- The lxc recipe on the pve target, end to end through the phoenix binary
-- against the Proxmox simulator (tests/pve-sim): create, full clone from a
-- template's snapshot, the batched no-op, drift, disruptive changes, lock
-- retries, injected failures, rollback, GPUs, delete.
local fs = require "px.fs"
local json = require "px.json"
local pve = require "px.pve"
local kit = require "testkit"
local pvesim = require "pvesim"

local TEMPLATE = "debian-12-standard_12.7-1_amd64.tar.zst"

local function site_files(dir, cts, host)
  host = host or {}
  host.features_dir = host.features_dir or "features"
  kit.write(dir .. "/site/phoenix_hypervisor_config.json", json.encode(host))
  kit.write(dir .. "/site/phoenix_lxc_configs.json", json.encode({ lxc_configs = cts }))
  kit.write(dir .. "/site/features/base.sh", "echo base\n")
  kit.write(dir .. "/site/features/web.sh", "echo web\n")
  return dir .. "/site"
end

local function template_ct()
  return { name = "tpl", template = "local:vztmpl/" .. TEMPLATE, storage_pool = "local-zfs", storage_size_gb = 4,
    memory_mb = 512, features = { "base" }, template_snapshot_name = "golden",
    network_config = { name = "eth0", bridge = "vmbr0", ip = "10.0.0.90/24", gw = "10.0.0.1" } }
end

local function web_ct(extra)
  local ct = { name = "web", clone_from_ctid = "900", storage_pool = "local-zfs", memory_mb = 1024, swap_mb = 256,
    cores = 2, network_config = { name = "eth0", bridge = "vmbr0", ip = "10.0.0.11/24", gw = "10.0.0.1",
      nameservers = "1.1.1.1" },
    mac_address = "BC:24:11:00:01:01", pct_options = { "nesting=1" }, lxc_options = { "lxc.mount.auto: sys:rw" },
    mount_points = { { host_path = "/srv/web", container_path = "/srv/web", owner_uid = 100033, owner_gid = 100033 } },
    zfs_volumes = { { name = "data", pool = "local-zfs", size_gb = 2, mount_point = "/data" } },
    start_at_boot = true, boot_order = 2, features = { "base", "web" }, enable_lifecycle_snapshots = true,
    dependencies = { "900" } }
  for k, v in pairs(extra or {}) do
    if v == json.null then ct[k] = nil else ct[k] = v end
  end
  return ct
end

local function conf(node, id)
  local text = assert(fs.read(node:conf("lxc", id)))
  return assert(pve.parse_config(text, "lxc"))
end

describe("lxc recipe on the pve target", function()
  local dir, node, site

  local function px(args, env)
    local argv = { args[1], "--config-dir", site, "--target", "pve", "--target-opt", "root=" .. node.root,
      "--target-opt", "bin=" .. node.bin, "--target-opt", "lock_backoff_ms=10" }
    if args[1] == "converge" or args[1] == "delete" or args[1] == "create" then
      argv[#argv + 1] = "--lock-file"
      argv[#argv + 1] = dir .. "/lock"
    end
    for i = 2, #args do argv[#argv + 1] = args[i] end
    return kit.phoenix(argv, { env = env })
  end

  local function plan_json()
    local r = px({ "plan", "--json" })
    assert.are.equal(0, r.code, r.stderr)
    return assert(json.decode(r.stdout))
  end

  local function changes_of(doc, id)
    for _, res in ipairs(doc.resources) do
      if res.id == id then return res.changes, res end
    end
  end

  local function fields(list)
    local out = {}
    for _, c in ipairs(list or {}) do out[#out + 1] = c.field end
    table.sort(out)
    return table.concat(out, "|")
  end

  before_each(function()
    dir = kit.tmpdir()
    node = pvesim.init(dir .. "/n", { "--template", TEMPLATE, "--sysfs", "gpus=2,vendor=nvidia" })
    site = site_files(dir, { ["900"] = template_ct(), ["101"] = web_ct() },
      { behavior = { rollback_on_failure = true } })
  end)

  after_each(function() kit.cleanup(dir) end)

  it("creates the template, snapshots it, full-clones from the snapshot, and a second run changes nothing", function()
    local r = px({ "converge" })
    assert.are.equal(0, r.code, r.stdout .. r.stderr)
    assert.are.equal(1, node:count("^pct clone 900 101 %-%-snapname golden %-%-full 1"))
    local tpl = conf(node, 900)
    assert.is_not_nil(tpl.snapshots.golden)
    local c = conf(node, 101)
    local m = c.main
    assert.are.equal("web", m.hostname)
    assert.are.equal("1024", m.memory)
    assert.are.equal("256", m.swap)
    assert.are.equal("2", m.cores)
    assert.are.equal("phoenix", m.tags)
    assert.are.equal("1", m.onboot)
    assert.are.equal("order=2", m.startup)
    assert.are.equal("nesting=1", m.features)
    assert.are.equal("1.1.1.1", m.nameserver)
    assert.matches("hwaddr=BC:24:11:00:01:01", m.net0, 1, true)
    assert.matches("ip=10.0.0.11/24", m.net0, 1, true)
    assert.are.equal("/srv/web,mp=/srv/web", m.mp0)
    assert.matches("^local%-zfs:subvol%-101%-disk%-%d+,mp=/data,size=2G$", m.mp1)
    assert.are.same({ { "lxc.mount.auto", "sys:rw" } }, c.lxc)
    assert.is_not_nil(c.snapshots["pre-configured"])
    assert.is_not_nil(c.snapshots["final-form"])
    local st = assert(fs.stat(node.root .. "/srv/web"))
    assert.are.equal(100033, st.uid)
    -- features ran inside, with settings in the argv, and left markers
    local exec_log = fs.read(node.dir .. "/sim/exec.log") or ""
    assert.matches('"env", "PHOENIX_FEATURE=web"', exec_log, 1, true)
    assert.matches('"sh", "/var/lib/phoenix/features/web.sh"', exec_log, 1, true)
    assert.matches("%x+ web\n", assert(fs.read(node.dir .. "/sim/guests/101/fs/var/lib/phoenix/features/web.done")))
    -- second run
    node:clear_calls()
    r = px({ "converge", "--json" })
    assert.are.equal(0, r.code, r.stderr)
    local doc = assert(json.decode(r.stdout))
    assert.are.equal(0, doc.summary.changes)
    -- batched: one pvesh for both, one marker read per container, nothing else
    local calls = node:calls()
    assert.are.equal(3, #calls)
    assert.are.equal(1, node:count("^pvesh get /cluster/resources"))
    assert.are.equal(2, node:count("^pct exec %d+ %-%- cat /var/lib/phoenix/features/"))
    assert.are.equal(0, #(changes_of(plan_json(), "lxc:101")))
  end)

  it("shows drift by hand in the plan and converges it back", function()
    assert.are.equal(0, px({ "converge" }).code)
    node:run("pct", "set", "101", "--memory", "4096")         -- live on a running CT
    node:run("pct", "set", "101", "--delete", "mp0")          -- pending until restart
    kit.write(site .. "/features/web.sh", "echo web v2\n")    -- a feature's script edited
    local ch = changes_of(plan_json(), "lxc:101")
    assert.are.equal("feature web|memory_mb|mount /srv/web", fields(ch))
    local r = px({ "converge" })
    assert.are.equal(0, r.code, r.stdout .. r.stderr)
    assert.are.equal("1024", conf(node, 101).main.memory)
    assert.are.equal(0, #changes_of(plan_json(), "lxc:101"))
    -- stopped by hand: started again (its markers are read after the start)
    node:run("pct", "stop", "101")
    ch = changes_of(plan_json(), "lxc:101")
    assert.matches("state", fields(ch))
    r = px({ "converge" })
    assert.are.equal(0, r.code, r.stdout .. r.stderr)
    assert.matches("status: running", node:run("pct", "status", "101").stdout, 1, true)
    assert.are.equal(0, #changes_of(plan_json(), "lxc:101"))
  end)

  it("holds changes that need a restart of a running container until --allow-restart", function()
    assert.are.equal(0, px({ "converge" }).code)
    site_files(dir, { ["900"] = template_ct(), ["101"] = web_ct({ pct_options = { "nesting=1", "keyctl=1" } }) },
      { behavior = { rollback_on_failure = true } })
    local ch = changes_of(plan_json(), "lxc:101")
    assert.are.equal(1, #ch)
    assert.are.equal("pct_options", ch[1].field)
    assert.are.equal("restart", ch[1].disruptive)
    assert.are.equal("needs --allow-restart", ch[1].held)
    local r = px({ "converge" })
    assert.are.equal(0, r.code, r.stderr)
    assert.matches("held", r.stdout)
    assert.are.equal("nesting=1", conf(node, 101).main.features)
    node:clear_calls()
    r = px({ "converge", "--allow-restart" })
    assert.are.equal(0, r.code, r.stdout .. r.stderr)
    assert.are.equal("keyctl=1,nesting=1", conf(node, 101).main.features)
    assert.are.equal(1, node:count("^pct shutdown 101"))
    assert.are.equal(1, node:count("^pct start 101"))
    assert.are.equal(0, #changes_of(plan_json(), "lxc:101"))
  end)

  it("re-creates for unprivileged only with --allow-recreate; grows the root disk, never shrinks it", function()
    local own = { clone_from_ctid = json.null, template = "local:vztmpl/" .. TEMPLATE, storage_size_gb = 6 }
    site_files(dir, { ["900"] = template_ct(), ["101"] = web_ct(own) })
    assert.are.equal(0, px({ "converge" }).code)
    assert.are.equal(1, node:count("^pct create 101 "))
    own.unprivileged = false
    site_files(dir, { ["900"] = template_ct(), ["101"] = web_ct(own) })
    local ch = changes_of(plan_json(), "lxc:101")
    assert.are.equal("unprivileged", fields(ch))
    assert.are.equal("recreate", ch[1].disruptive)
    local r = px({ "converge" })
    assert.are.equal(0, r.code, r.stdout .. r.stderr)
    assert.are.equal("1", conf(node, 101).main.unprivileged)
    r = px({ "converge", "--allow-recreate" })
    assert.are.equal(0, r.code, r.stdout .. r.stderr)
    assert.are.equal(1, node:count("^pct destroy 101"))
    assert.are_not.equal("1", conf(node, 101).main.unprivileged) -- Proxmox writes no unprivileged: 0
    assert.are.equal(0, #changes_of(plan_json(), "lxc:101"))
    own.storage_size_gb = 8
    site_files(dir, { ["900"] = template_ct(), ["101"] = web_ct(own) })
    assert.are.equal(0, px({ "converge" }).code)
    assert.are.equal(1, node:count("^pct resize 101 rootfs 8G"))
    own.storage_size_gb = 2
    site_files(dir, { ["900"] = template_ct(), ["101"] = web_ct(own) })
    ch = changes_of(plan_json(), "lxc:101")
    assert.are.equal(1, #ch)
    assert.matches("never shrinks", ch[1].unsupported)
    r = px({ "converge" })
    assert.are.equal(0, r.code)
    assert.matches("size=8G", conf(node, 101).main.rootfs, 1, true)
  end)

  it("retries a call that found the config locked", function()
    node:set({ faults = { { match = "pct set 101 *", kind = "lock-timeout", times = 2 } } })
    local r = px({ "converge" })
    assert.are.equal(0, r.code, r.stdout .. r.stderr)
    assert.are.equal(3, node:count("^pct set 101 "))
    assert.are.equal("web", conf(node, 101).main.hostname)
  end)

  it("fails a container on an injected tool failure, names the command, and skips what depends on it", function()
    site_files(dir, { ["900"] = template_ct(), ["101"] = web_ct(),
      ["102"] = { name = "app", template = "local:vztmpl/" .. TEMPLATE, storage_pool = "local-zfs",
        dependencies = { "101" } } })
    node:set({ faults = { { match = "pct start 101", stderr = "startup for container '101' failed", exit = 255,
      times = 99 } } })
    local r = px({ "converge" })
    assert.are.equal(1, r.code)
    assert.matches("lxc:101: failed: `pct start 101` exited 255: startup for container '101' failed", r.stdout, 1, true)
    assert.matches("lxc:102: skipped (dependency lxc:101 failed)", r.stdout, 1, true)
    assert.are.equal(0, node:count("^pct create 102"))
  end)

  it("fails on a failing health check with its output, and rolls back to pre-configured", function()
    site_files(dir, { ["900"] = template_ct(),
      ["101"] = web_ct({ health_check = { command = "check-web --quick", retries = 2, interval = 0 } }) },
      { behavior = { rollback_on_failure = true } })
    kit.write(node.dir .. "/sim/exec-rules.json", json.encode({
      { guest = 101, match = "check-web *", stdout = "web: 502 bad gateway\n", exit = 3 } }))
    local r = px({ "converge" })
    assert.are.equal(1, r.code)
    assert.matches("health check `check-web --quick` failed 2 times: exit 3: web: 502 bad gateway", r.stdout, 1, true)
    assert.matches("rolled back to snapshot pre-configured", r.stdout, 1, true)
    assert.are.equal(1, node:count("^pct rollback 101 pre%-configured"))
  end)

  it("passes GPUs with their control devices, and refuses GPUs the host does not have", function()
    site_files(dir, { ["900"] = template_ct(), ["101"] = web_ct({ gpu_assignment = "1" }) })
    local r = px({ "converge" })
    assert.are.equal(0, r.code, r.stdout .. r.stderr)
    local m = conf(node, 101).main
    assert.are.equal("/dev/nvidia1", m.dev0)
    assert.are.equal("/dev/nvidiactl", m.dev1)
    assert.are.equal("/dev/nvidia-uvm", m.dev2)
    site_files(dir, { ["900"] = template_ct(), ["101"] = web_ct({ gpu_assignment = "0, 3" }) })
    r = px({ "plan" })
    assert.are.equal(1, r.code)
    assert.matches("gpu_assignment 0,3: GPU 3 is not on this host (/dev/nvidia3 is absent; NVIDIA GPUs found: 0, 1)",
      r.stdout, 1, true)
  end)

  it("runs a built-in feature with the settings its header documents", function()
    site_files(dir, { ["900"] = template_ct(), ["101"] = web_ct({ features = { "base_setup" } }) },
      { timezone = "Europe/Berlin", users = { username = "ops", sudo_access = true, ssh_public_key = "" } })
    local r = px({ "create", "101" }) -- the guests only: not the host's time zone and users
    assert.are.equal(0, r.code, r.stdout .. r.stderr)
    local script = assert(fs.read(kit.source_dir .. "/etc/features/base_setup.sh"))
    assert.are.equal(script, fs.read(node.dir .. "/sim/guests/101/fs/var/lib/phoenix/features/base_setup.sh"))
    local argv
    for line in (fs.read(node.dir .. "/sim/exec.log") or ""):gmatch("[^\n]+") do
      local e = json.decode(line)
      if e.vmid == 101 and e.argv[2] == "PHOENIX_FEATURE=base_setup" then argv = table.concat(e.argv, " ") end
    end
    assert.are.equal("env PHOENIX_FEATURE=base_setup PHOENIX_ADMIN_SUDO=yes PHOENIX_ADMIN_USER=ops "
      .. "PHOENIX_TIMEZONE=Europe/Berlin sh /var/lib/phoenix/features/base_setup.sh", argv)
  end)

  it("deletes only containers carrying the phoenix tag", function()
    assert.are.equal(0, px({ "converge" }).code)
    node:run("pct", "create", "555", "local:vztmpl/" .. TEMPLATE, "--rootfs", "local-zfs:4")
    local r = px({ "delete", "lxc:555", "--yes" })
    assert.are.equal(2, r.code)
    assert.matches("does not carry the phoenix tag", r.stderr, 1, true)
    r = px({ "delete", "101", "--yes" })
    assert.are.equal(0, r.code, r.stderr)
    assert.is_false(fs.exists(node:conf("lxc", 101)))
    assert.is_true(fs.exists(node:conf("lxc", 555)))
  end)

  it("phoenix test runs the guest's tests inside it and on the host, and fails on a failing one", function()
    kit.write(site .. "/tests/inside.sh", "check-inside\n")
    kit.write(site .. "/tests/host.sh", "test \"$PHOENIX_GUEST_ID\" = 101 && echo host-ok\n")
    site_files(dir, { ["900"] = template_ct(), ["101"] = web_ct({ tests = { smoke = {
      { name = "inside", type = "script", path = "inside.sh" },
      { name = "from host", type = "script", path = "host.sh", run_on = "host" } } } }) })
    assert.are.equal(0, px({ "converge" }).code)
    local r = px({ "test", "101" })
    assert.are.equal(0, r.code, r.stdout .. r.stderr)
    assert.matches("PASS  smoke / inside (inside.sh, guest)", r.stdout, 1, true)
    assert.matches("PASS  smoke / from host (host.sh, host)", r.stdout, 1, true)
    assert.matches("lxc:101: 2 passed, 0 failed", r.stdout, 1, true)
    kit.write(node.dir .. "/sim/exec-rules.json", json.encode({
      { guest = 101, match = "env PHOENIX_* sh /var/lib/phoenix/tests/inside.sh", stderr = "inside broke\n", exit = 1 } }))
    r = px({ "test", "101" })
    assert.are.equal(1, r.code)
    assert.matches("FAIL  smoke / inside (inside.sh, guest)", r.stdout, 1, true)
    assert.matches("| inside broke", r.stdout, 1, true)
    assert.matches("lxc:101: 1 passed, 1 failed", r.stdout, 1, true)
  end)
end)
