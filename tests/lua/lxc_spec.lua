-- The container model's pure parts: raw lines and id maps, the spec built
-- from a site's want, the diff, the plain-LXC config file, feature markers,
-- /etc/subuid, and create runs that trigger a sync.
local conf = require "phoenix.target.lxc.conf"
local diff = require "phoenix.lxc.diff"
local raw = require "phoenix.lxc.raw"
local runner = require "phoenix.feature_runner"
local settings = require "phoenix.feature_settings"
local specmod = require "phoenix.lxc.spec"
local subids = require "phoenix.target.lxc.subids"
local targets = require "phoenix.target"
local run = require "phoenix.run"
local json = require "px.json"
local kit = require "testkit"

local GPU2 = { nvidia_gpus = { 0, 1 }, nvidia_devices = { "/dev/nvidia0", "/dev/nvidia1", "/dev/nvidia-uvm",
  "/dev/nvidiactl" } }

local function want(extra)
  local w = { ctid = 101, name = "web", unprivileged = true, features = json.array({}),
    gpu_assignment = json.array({}), dependencies = json.array({}) }
  for k, v in pairs(extra or {}) do w[k] = v end
  return w
end

-- a have as inspect makes it, from a spec and a model
local function have_of(spec, model, extra)
  local h = { exists = true, status = "stopped", unprivileged = true, features = {}, lxc = {}, devices = {}, mounts = {},
    snapshots = {}, host_paths = {}, markers = {}, items = {}, onboot = false,
    caps = { live = { memory_mb = true }, slots = true } }
  for k, v in pairs(model or {}) do h[k] = v end
  for k, v in pairs(extra or {}) do h[k] = v end
  h.spec = spec
  return h
end

describe("container model", function()
  describe("raw lines and id maps", function()
    it("parses both separators and splits apparmor and idmap lines out", function()
      assert.are.same({ "lxc.mount.auto", "sys:rw" }, { raw.parse("lxc.mount.auto:sys:rw") })
      assert.are.same({ "lxc.cap.keep", "sys_admin" }, { raw.parse("lxc.cap.keep = sys_admin") })
      assert.is_nil(raw.parse("mount.auto = x"))
      local s = raw.split({ { "lxc.apparmor.profile", "unconfined" }, { "lxc.idmap", "u 0  100000 65536" },
        { "lxc.mount.auto", "sys:rw" } })
      assert.are.equal("unconfined", s.apparmor_profile)
      assert.are.same({ "u 0 100000 65536" }, s.id_maps)
      assert.are.same({ { "lxc.mount.auto", "sys:rw" } }, s.lxc)
    end)

    it("expands a site's id map to full ranges around the default offset", function()
      -- the reference site's CT 101 maps gid 33 (www-data) to the host's 33
      assert.are.same({ "u 0 100000 65536", "g 0 100000 33", "g 33 33 1", "g 34 100034 65502" },
        raw.expand({ { type = "gid", host_id = 33, container_id = 33, size = 1 } }))
      assert.are.same({ uid = { { 100000, 65536 } }, gid = { { 100000, 33 }, { 33, 1 }, { 100034, 65502 } } },
        raw.host_ranges(raw.expand({ { type = "gid", host_id = 33, container_id = 33, size = 1 } })))
    end)
  end)

  describe("spec", function()
    it("maps the site's fields to the model", function()
      local s = assert(specmod.build(want({
        memory_mb = 512, cores = 2, mac_address = "BC:24:11:00:00:01", start_at_boot = true, boot_order = 3,
        network_config = { name = "eth0", bridge = "vmbr0", ip = "10.0.0.5/24", gw = "10.0.0.1",
          nameservers = json.array({ "1.1.1.1", "9.9.9.9" }) },
        pct_options = { "nesting=1", "keyctl=1" }, lxc_options = { "lxc.apparmor.profile: unconfined", "lxc.mount.auto = sys:rw" },
        apparmor_manages_nesting = true,
        shared_volumes = { { volume = "ssl", host_path = "/tank/ssl", container_path = "/certs", read_only = true } },
        mount_points = { { host_path = "/tank/logs", container_path = "/var/log/app", owner_uid = 33, owner_gid = 33 } },
        zfs_volumes = { { name = "models", pool = "fast", size_gb = 50, mount_point = "/models" } },
        gpu_assignment = { 1 }, enable_lifecycle_snapshots = true, template_snapshot_name = "golden",
      }), { gpu = GPU2 }))
      assert.are.same({ name = "eth0", bridge = "vmbr0", ip = "10.0.0.5/24", gw = "10.0.0.1",
        hwaddr = "BC:24:11:00:00:01" }, s.net)
      assert.are.equal("1.1.1.1 9.9.9.9", s.nameserver)
      assert.are.same({ order = 3 }, s.startup)
      assert.are.same({ nesting = "1", keyctl = "1" }, s.features)
      assert.are.equal("unconfined", s.apparmor_profile)
      assert.are.same({ { "lxc.mount.auto", "sys:rw" }, { "lxc.apparmor.allow_nesting", "1" } }, s.lxc)
      assert.are.same({ "/dev/nvidia1", "/dev/nvidiactl", "/dev/nvidia-uvm" }, s.devices)
      assert.are.same({ "/certs", "/var/log/app", "/models" },
        { s.mounts[1].target, s.mounts[2].target, s.mounts[3].target })
      assert.is_true(s.mounts[1].ro)
      assert.are.equal("volume", s.mounts[3].kind)
      assert.are.same({ pre = "pre-configured", final = "final-form", template = "golden" }, s.snapshots)
    end)

    it("refuses two mounts at one path and GPUs the host does not have", function()
      local s, err = specmod.build(want({ mount_points = {
        { host_path = "/a", container_path = "/data" }, { host_path = "/b", container_path = "/data" } } }))
      assert.is_nil(s)
      assert.matches("two mounts at /data", err, 1, true)
      s, err = specmod.build(want({ gpu_assignment = { 2 } }), { gpu = GPU2 })
      assert.is_nil(s)
      assert.matches("GPU 2 is not on this host (/dev/nvidia2 is absent; NVIDIA GPUs found: 0, 1)", err, 1, true)
      s, err = specmod.build(want({ gpu_assignment = { 0 } }), { gpu = { nvidia_gpus = { 0 },
        nvidia_devices = { "/dev/nvidia0" } } })
      assert.is_nil(s)
      assert.matches("/dev/nvidiactl is absent", err, 1, true)
    end)
  end)

  describe("diff", function()
    it("plans a missing container as one create, its snapshots and its features", function()
      local s = assert(specmod.build(want({ template = "/t.tar.gz", enable_lifecycle_snapshots = true })))
      local h = have_of(s, nil, { exists = false, items = { { name = "docker", hash = string.rep("a", 64) } } })
      local ch = diff.changes(h)
      local got = {}
      for i, c in ipairs(ch) do got[i] = c.action .. " " .. c.field .. (c.to and (" " .. tostring(c.to)) or "") end
      assert.are.same({ "create container from /t.tar.gz, hostname web, unprivileged",
        "create snapshot pre-configured", "run feature docker aaaaaaaaaaaa", "create snapshot final-form" }, got)
    end)

    it("marks what a running container reads only at start as disruptive", function()
      local s = assert(specmod.build(want({ memory_mb = 512, pct_options = { "nesting=1" } })))
      local h = have_of(s, { memory_mb = 256, hostname = "web" }, { status = "running" })
      local ch = diff.changes(h)
      assert.are.equal(2, #ch)
      assert.are.equal("memory_mb", ch[1].field)
      assert.is_nil(ch[1].disruptive)
      assert.are.equal("pct_options", ch[2].field)
      assert.are.equal("restart", ch[2].disruptive)
      h.status = "stopped"
      ch = diff.changes(h)
      assert.is_nil(ch[2].disruptive)
      assert.are.equal("state", ch[3].field)
    end)

    it("keeps mount slots, takes the lowest free one, and removes undeclared mounts", function()
      local s = assert(specmod.build(want({ mount_points = {
        { host_path = "/srv/a", container_path = "/a" }, { host_path = "/srv/b", container_path = "/b" } } })))
      local h = have_of(s, { hostname = "web", mounts = {
        { slot = "mp1", kind = "bind", source = "/srv/a", target = "/a", ro = false },
        { slot = "mp0", kind = "bind", source = "/srv/old", target = "/old", ro = false } } },
        { status = "running", host_paths = { ["/srv/a"] = { uid = 0, gid = 0 }, ["/srv/b"] = { uid = 0, gid = 0 } } })
      local ch = diff.changes(h)
      assert.are.equal(2, #ch)
      assert.are.same({ "create", "mount /b", "mp2" }, { ch[1].action, ch[1].field, ch[1].slot })
      assert.are.same({ "delete", "mount /old", "mp0" }, { ch[2].action, ch[2].field, ch[2].slot })
    end)

    it("grows disks, reports a shrink as unsupported, and a changed unprivileged as a re-create", function()
      local s = assert(specmod.build(want({ unprivileged = false, storage_size_gb = 4,
        zfs_volumes = { { name = "m", pool = "tank", size_gb = 20, mount_point = "/m" } } })))
      local h = have_of(s, { hostname = "web", unprivileged = true, rootfs = { storage = "tank", size_gb = 8 },
        mounts = { { slot = "mp0", kind = "volume", storage = "tank", volume = "tank:subvol-101-disk-1",
          target = "/m", size_gb = 10 } } })
      local ch = diff.changes(h)
      assert.are.same({ "unprivileged", "recreate" }, { ch[1].field, ch[1].disruptive })
      assert.are.same({ "mount /m size_gb", 10, 20, "mp0" }, { ch[2].field, ch[2].from, ch[2].to, ch[2].disk })
      assert.are.equal("storage_size_gb", ch[3].field)
      assert.matches("never shrinks", ch[3].unsupported, 1, true)
    end)

    it("reruns a feature whose marker holds another hash, and runs all when markers are unknown", function()
      local s = assert(specmod.build(want()))
      local items = { { name = "a", hash = string.rep("1", 64) }, { name = "b", hash = string.rep("2", 64) } }
      local h = have_of(s, { hostname = "web" }, { status = "running", items = items,
        markers = { a = string.rep("1", 64), b = string.rep("3", 64) } })
      local ch = diff.changes(h)
      assert.are.equal(1, #ch)
      assert.are.same({ "feature b", "run", "script or settings changed" }, { ch[1].field, ch[1].action, ch[1].note })
      h.markers = nil
      assert.are.equal(2, #diff.changes(h))
    end)
  end)

  describe("plain LXC config", function()
    local TEMPLATE = table.concat({
      "# Template used to create this container: /usr/share/lxc/templates/lxc-busybox",
      'lxc.uts.name = "101"', "lxc.rootfs.path = dir:/var/lib/lxc/101/rootfs", "lxc.net.0.type = veth",
      "lxc.net.0.link = lxcbr0", "lxc.mount.entry = /lib lib none ro,bind 0 0", "lxc.cap.drop = sys_module", "" }, "\n")

    it("reads the template's values, writes its block, and reads back what it wrote", function()
      local p = conf.parse(TEMPLATE)
      local m = conf.model(p)
      assert.are.equal("101", m.hostname)
      assert.are.same({ name = nil, bridge = "lxcbr0" }, { name = m.net.name, bridge = m.net.bridge })
      assert.is_false(m.owned)
      assert.are.equal("/var/lib/lxc/101/rootfs", m.rootfs_path)
      m.hostname, m.memory_mb, m.swap_mb, m.cores, m.onboot = "web", 256, 128, 2, true
      m.net = nil
      m.mounts = { { kind = "bind", source = "/srv/data", target = "/srv/data", ro = true } }
      m.devices = { "/dev/nvidia0" }
      m.lxc = { { "lxc.mount.auto", "sys:rw" } }
      m.unprivileged = true
      local text = conf.render(p, m, { cgroup = 2 })
      -- the template's lines stay, minus the keys the block now sets
      assert.matches("lxc.mount.entry = /lib lib none ro,bind 0 0\n", text, 1, true)
      assert.matches("lxc.cap.drop = sys_module\n", text, 1, true)
      assert.is_nil(text:find('lxc.uts.name = "101"', 1, true))
      assert.is_nil(text:find("lxc.net.0.link = lxcbr0", 1, true))
      assert.matches("lxc.cgroup2.memory.max = 268435456\nlxc.cgroup2.memory.swap.max = 134217728\n", text, 1, true)
      assert.matches("lxc.cgroup2.cpuset.cpus = 0-1\n", text, 1, true)
      assert.matches("lxc.idmap = u 0 100000 65536\n", text, 1, true)
      assert.matches("lxc.net.0.type = empty\n", text, 1, true)
      assert.matches("# phoenix: lxc_options\nlxc.mount.auto = sys:rw\n# phoenix: end of managed lines\n$", text)
      local back = conf.model(conf.parse(text))
      assert.is_true(back.owned)
      assert.are.same({ "web", 256, 128, 2, true, true }, { back.hostname, back.memory_mb, back.swap_mb, back.cores,
        back.onboot, back.unprivileged })
      assert.is_nil(back.id_maps) -- the default map
      assert.are.same(m.mounts, back.mounts)
      assert.are.same({ "/dev/nvidia0" }, back.devices)
      assert.are.same({ { "lxc.mount.auto", "sys:rw" } }, back.lxc)
      -- cgroup v1 keys: swap is memory+swap
      local v1 = conf.render(p, m, { cgroup = 1 })
      assert.matches("lxc.cgroup.memory.memsw.limit_in_bytes = 402653184\n", v1, 1, true)
      assert.are.equal(128, conf.model(conf.parse(v1)).swap_mb)
      -- LXC appends what it changes (lxc-copy: the rootfs) after the end mark: the template's again
      local copied = text:gsub("lxc.rootfs.path = [^\n]*\n", "") .. "lxc.rootfs.path = dir:/var/lib/lxc/102/rootfs\n"
      local again = conf.render(conf.parse(copied), conf.model(conf.parse(copied)), { cgroup = 2 })
      assert.matches("lxc.rootfs.path = dir:/var/lib/lxc/102/rootfs\n\n# phoenix: managed", again, 1, true)
      assert.is_nil(again:find("lxc.rootfs.path = dir:/var/lib/lxc/101/rootfs", 1, true))
    end)
  end)

  describe("feature markers", function()
    it("reads concatenated markers and builds the argv with settings", function()
      local m = runner.parse_markers(string.rep("a", 64) .. " docker\n" .. string.rep("b", 64) .. " base_setup\n")
      assert.are.same({ docker = string.rep("a", 64), base_setup = string.rep("b", 64) }, m)
      local it = { name = "vllm", hash = string.rep("c", 64), settings = { { "PHOENIX_GUEST_ID", "101" }, { "PHOENIX_VLLM_ENGINE_CONFIG", '{"a":1}' } },
        args = {} }
      assert.are.same({ "env", "PHOENIX_FEATURE=vllm", "PHOENIX_GUEST_ID=101", 'PHOENIX_VLLM_ENGINE_CONFIG={"a":1}',
        "sh", "/var/lib/phoenix/features/vllm.sh" }, runner.argv(it))
      assert.are.same({ it }, runner.pending({ it }, {}))
    end)
  end)

  describe("feature settings", function()
    local SCRIPT = table.concat({ "#!/bin/sh", "# phoenix feature: x", "#   env PHOENIX_FEATURE=x sh x.sh",
      "#   PHOENIX_TIMEZONE   zone", "#   PHOENIX_VLLM_ENGINE_CONFIG  json", "#   PHOENIX_ADMIN_SUDO  yes/no",
      "#                      (continued: PHOENIX_NOT_THIS)", "#   PHOENIX_DNS_UPSTREAM  servers", "#   PHOENIX_UNSET  x",
      "set -eu", "# PHOENIX_LATER  not in the header", "" }, "\n")

    it("passes only what the header documents: the guest's field, else the site's source", function()
      assert.are.same({ "TIMEZONE", "VLLM_ENGINE_CONFIG", "ADMIN_SUDO", "DNS_UPSTREAM", "UNSET" },
        settings.documented(SCRIPT))
      local site = { host = { timezone = "Europe/Berlin", users = { { username = "ops", sudo_access = true } },
        dns_server = { upstream_servers = json.array({ "1.1.1.1", "9.9.9.9" }) } } }
      local w = want({ vllm_engine_config = { ModelConfig = { model = "m" } }, timezone = "UTC" })
      assert.are.same({
        { "PHOENIX_ADMIN_SUDO", "yes" },
        { "PHOENIX_DNS_UPSTREAM", "1.1.1.1 9.9.9.9" },
        { "PHOENIX_TIMEZONE", "UTC" },                               -- the guest's field wins
        { "PHOENIX_VLLM_ENGINE_CONFIG", '{"ModelConfig":{"model":"m"}}' },
      }, settings.settings(SCRIPT, w, site))
    end)
  end)

  describe("/etc/subuid", function()
    it("grants root the ranges a map needs, once", function()
      local dir = kit.tmpdir()
      kit.write(dir .. "/etc/subuid", "alice:100000:65536\n")
      local t = assert(targets.open({ type = "lxc", root = dir }))
      local ranges = raw.host_ranges(raw.expand({ { type = "uid", host_id = 33, container_id = 33, size = 1 } }))
      assert(subids.ensure(t, ranges))
      assert(subids.ensure(t, ranges))
      assert.are.equal("alice:100000:65536\nroot:100000:33\nroot:33:1\nroot:100034:65502\n", t:read("/etc/subuid"))
      assert.are.equal("root:100000:65536\n", t:read("/etc/subgid"))
      kit.cleanup(dir)
    end)
  end)

  describe("the lxc target", function()
    it("lists the containers carrying lxc.group = phoenix (for --prune)", function()
      local dir = kit.tmpdir()
      kit.write(dir .. "/lxc/101/config", "lxc.uts.name = a\n" .. conf.MARK .. "\nlxc.group = phoenix\n")
      kit.write(dir .. "/lxc/102/config", "lxc.uts.name = b\nlxc.group = phoenix\n")
      kit.write(dir .. "/lxc/103/config", "lxc.uts.name = c\nlxc.group = web\n")
      kit.write(dir .. "/lxc/web/config", "lxc.group = phoenix\n") -- not a CTID
      local t = assert(targets.open({ type = "lxc", lxcpath = dir .. "/lxc" }))
      assert.are.same({ { type = "lxc", name = "101" }, { type = "lxc", name = "102" } }, t:owned_guests())
      local bad, err = targets.open({ type = "lxc", lxcpath = "relative" })
      assert.is_nil(bad)
      assert.matches("lxcpath: expected an absolute path", err, 1, true)
      kit.cleanup(dir)
    end)
  end)

  describe("create runs", function()
    it("bring in the sync resources after a container with trigger_sync_on_completion", function()
      local function res(id, scope, deps, w)
        local t, name = id:match("^([^:]+):(.*)$")
        return { id = id, type = t, name = name, scope = scope, deps = deps or {}, want = w or {} }
      end
      local list = { res("lxc:101", "guest", {}, { trigger_sync_on_completion = true }), res("vm:200", "guest"),
        res("lxc:102", "guest"), res("stack:db@200", "sync", { "vm:200" }) }
      local site = { resources = list, by_id = {} }
      for _, r in ipairs(list) do site.by_id[r.id] = r end
      local out = assert(run.select(site, "guest", { "101" }))
      assert.are.equal(2, #out)
      assert.are.equal("stack:db@200", out[2].id)
      assert.are.same({ "vm:200", "lxc:101" }, out[2].deps)
      assert.are.same({ "vm:200" }, list[4].deps) -- the site's resource is left as it was
      out = assert(run.select(site, "guest", { "102" }))
      assert.are.equal(1, #out)
    end)
  end)
end)
