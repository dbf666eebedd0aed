-- px.pve: config files, property strings and CLI output, against upstream's
-- own test data, real captures and the project's cases (tests/fixtures/pve).
local pve = require "px.pve"
local json = require "px.json"

local FIX = assert(os.getenv("PHOENIX_SOURCE_DIR"), "PHOENIX_SOURCE_DIR is not set") .. "/tests/fixtures/pve/"

local function read(path)
  local f = assert(io.open(FIX .. path, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

local function exists(path)
  local f = io.open(FIX .. path, "rb")
  if f then f:close() end
  return f ~= nil
end

local function list(dir, pattern)
  local out = {}
  local p = assert(io.popen("cd '" .. FIX .. dir .. "' && find . -type f | sort"))
  for line in p:lines() do
    local rel = line:sub(3)
    if rel:match(pattern) then out[#out + 1] = dir .. "/" .. rel end
  end
  p:close()
  return out
end

describe("upstream round trips", function()
  local names = {}
  for _, path in ipairs(list("upstream/qemu-server/parse-config-input", "%.conf$")) do
    names[#names + 1] = path:match("([^/]+)%.conf$")
  end

  it("covers all of qemu-server's parse-config cases", function()
    assert.are.equal(10, #names)
  end)

  for _, name in ipairs(names) do
    it("qemu-server " .. name .. ": parse + write gives the expected file", function()
      local input = read("upstream/qemu-server/parse-config-input/" .. name .. ".conf")
      local exp_path = "upstream/qemu-server/parse-config-expected/" .. name .. ".conf"
      local expected = exists(exp_path) and read(exp_path) or input
      local cfg = assert(pve.parse_config(input, "qemu"))
      assert.are.equal(expected, assert(pve.write_config(cfg, "qemu")))
    end)

    it("qemu-server " .. name .. ": strict mode agrees with upstream", function()
      local input = read("upstream/qemu-server/parse-config-input/" .. name .. ".conf")
      local err_path = "upstream/qemu-server/parse-config-expected/" .. name .. ".conf.strict.error"
      local cfg, err = pve.parse_config(input, "qemu", { strict = true })
      if exists(err_path) then
        assert.is_nil(cfg)
        local upstream = read(err_path):gsub("\n$", ""):gsub("^vm %d+ %- ", "")
        assert.are.equal(upstream, err:match("^line %d+: (.*)$"))
      else
        assert.is_table(cfg)
        assert.are.same({}, cfg.warnings)
      end
    end)
  end

  it("reproduces every pve-container snapshot-expected config byte for byte", function()
    local files = list("upstream/pve-container/snapshot-expected", "%.conf$")
    assert.is_true(#files >= 40)
    for _, path in ipairs(files) do
      local text = read(path)
      local cfg = assert(pve.parse_config(text, "lxc"))
      assert.are.equal(text, pve.write_config(cfg, "lxc"), path)
    end
  end)

  it("reads every pve-container snapshot-input config and writes it stably", function()
    for _, path in ipairs(list("upstream/pve-container/snapshot-input", "%.conf$")) do
      local cfg = assert(pve.parse_config(read(path), "lxc"))
      local once = assert(pve.write_config(cfg, "lxc"))
      local twice = assert(pve.write_config(assert(pve.parse_config(once, "lxc")), "lxc"))
      assert.are.equal(once, twice, path)
    end
  end)

  it("keeps snapstate in snapshot sections and drops it from the main one", function()
    local cfg = assert(pve.parse_config("memory: 1\nsnapstate: prepare\n\n[s1]\nmemory: 1\nsnapstate: delete\n", "lxc"))
    assert.is_nil(cfg.main.snapstate)
    assert.are.equal("delete", cfg.snapshots.s1.main.snapstate)
    assert.are.equal("memory: 1\n\n[s1]\nmemory: 1\nsnapstate: delete\n", pve.write_config(cfg, "lxc"))
  end)
end)

describe("container configs", function()
  local cfg = assert(pve.parse_config(read("own/lxc-full.conf"), "lxc"))

  it("writes the canonical form", function()
    assert.are.equal(read("own/lxc-full.canonical.conf"), pve.write_config(cfg, "lxc"))
    assert.are.same({}, cfg.warnings)
  end)

  it("decodes the description, keeping pve-container's trailing newline", function()
    assert.are.equal("Web server: nginx\nuses 100% of\n the CPU\n", cfg.description)
    assert.are.equal("snapshot before the upgrade\n", cfg.snapshots["before-upgrade"].description)
  end)

  it("keeps raw lxc lines in order, with ':' or '=' and empty values", function()
    assert.are.same({
      { "lxc.cgroup2.devices.allow", "c 226:0 rwm" },
      { "lxc.mount.entry", "/dev/dri dev/dri none bind,optional,create=dir" },
      { "lxc.apparmor.profile", "unconfined" },
      { "lxc.cap.drop", "" },
    }, cfg.lxc)
    assert.are.same({ { "lxc.apparmor.profile", "unconfined" } }, cfg.snapshots["after-upgrade"].lxc)
  end)

  it("reads [pve:pending] and its delete list with force flags", function()
    assert.are.equal("4096", cfg.pending.main.memory)
    assert.are.same({ { key = "swap", force = false }, { key = "tags", force = true } }, cfg.delete)
  end)

  it("reads the snapshot tree", function()
    assert.are.equal("after-upgrade", cfg.main.parent)
    assert.are.equal("before-upgrade", cfg.snapshots["after-upgrade"].main.parent)
    assert.is_nil(cfg.snapshots["before-upgrade"].main.parent)
    assert.are.equal("1700000000", cfg.snapshots["before-upgrade"].main.snaptime)
  end)

  it("keeps values as written (pve-container does not rewrite them)", function()
    assert.are.equal("nesting=1,keyctl=yes", cfg.main.features)
    assert.are.equal("phoenix;web", cfg.main.tags)
  end)

  it("reads a real config with raw lxc lines", function()
    local real = read("captures/lxc.123.conf.id17110685127.conf")
    local c = assert(pve.parse_config(real, "lxc"))
    assert.are.equal(4, #c.lxc)
    assert.are.same({ "lxc.cgroup2.devices.allow", "c 226:128 rwm" }, c.lxc[2])
    assert.are.equal("/titan/space,mp=/titan/space", c.main.mp0)
    assert.are.equal(real, pve.write_config(c, "lxc"))
  end)

  it("reports each malformed line as pve-container does", function()
    local c = assert(pve.parse_config(read("own/lxc-bad.conf"), "lxc"))
    assert.are.same({
      "line 2: unable to parse config:   cores: 2",
      "line 4: unable to parse value of 'foo' - unknown setting 'foo'",
      "line 5: unable to parse value of 'memory' - type check ('integer') failed - got 'lots'",
      "line 6: duplicate key 'memory'",
      "line 7: property 'delete' is only allowed in [pve:pending]",
      "line 8: unable to parse config: ha-managed: 1",
      "line 9: lxc.rootfs.path: lxc.rootfs.path is auto generated from rootfs",
      "line 10: lxc.network.type is deprecated and was renamed to lxc.net.INDEX.type",
      "line 11: unable to parse config: lxc.bogus.key: 1",
      "line 13: unable to parse config: [special:cloudinit]",
      "line 14: unable to parse value of 'name' - unknown setting 'name'",
      "line 19: duplicate snapshot section: snap1",
    }, c.warnings)
    -- pve-container keeps values that fail their check; later keys win
    assert.are.equal("bar", c.main.foo)
    assert.are.equal("512", c.main.memory)
    assert.are.equal("x", c.main.name)
    assert.are.same({ { "lxc.network.type", "veth" } }, c.lxc)
    assert.are.equal("2", c.snapshots.snap1.main.snaptime)
  end)

  it("fails a strict parse on the first problem", function()
    local c, err = pve.parse_config(read("own/lxc-bad.conf"), "lxc", { strict = true })
    assert.is_nil(c)
    assert.are.equal("line 2: unable to parse config:   cores: 2", err)
  end)

  it("treats [pending] as a snapshot and [PVE:PENDING] as pending for containers", function()
    local c = assert(pve.parse_config("memory: 1\n[PVE:PENDING]\nmemory: 2\n[pending]\nmemory: 3\n", "lxc"))
    assert.are.equal("2", c.pending.main.memory)
    assert.are.equal("3", c.snapshots.pending.main.memory)
  end)
end)

describe("VM configs", function()
  local cfg = assert(pve.parse_config(read("own/qemu-full.conf"), "qemu"))

  it("writes the canonical form", function()
    assert.are.same({}, cfg.warnings)
    assert.are.equal(read("own/qemu-full.canonical.conf"), pve.write_config(cfg, "qemu"))
  end)

  it("cuts trailing blank lines from a qemu description", function()
    assert.are.equal("Build VM: docker host\n\nowner: ops 100%", cfg.description)
  end)

  it("rewrites disks as qemu-server does on load and normalises booleans and integers", function()
    assert.are.equal("local-lvm:vm-200-disk-0,discard=on,iothread=1,size=32G", cfg.main.scsi0)
    assert.are.equal("1", cfg.main.kvm)
    assert.are.equal("4", cfg.snapshots.base.main.cores)
    assert.are.equal("local-lvm:vm-200-state-base", cfg.snapshots.base.main.vmstate)
  end)

  it("reads [PENDING], delete and [special:cloudinit]", function()
    assert.are.equal("8", cfg.pending.main.cores)
    assert.are.same({ { key = "hostpci0", force = true }, { key = "tags", force = false } }, cfg.delete)
    assert.are.same({ ipconfig0 = "ip=10.0.0.20/24,gw=10.0.0.1", name = "docker-1" }, cfg.special.cloudinit.main)
  end)

  it("drops [special:cloudinit] when no disk is a cloudinit image", function()
    local c = assert(pve.parse_config("cores: 1\n\n[special:cloudinit]\nname: x\n", "qemu"))
    assert.are.equal("x", c.special.cloudinit.main.name)
    assert.are.equal("cores: 1\n", pve.write_config(c, "qemu"))
    c.main.scsi1 = "local:100/vm-100-cloudinit.qcow2,media=cdrom"
    assert.matches("%[special:cloudinit%]", pve.write_config(c, "qemu"))
  end)

  it("reports each malformed line as qemu-server does", function()
    local c = assert(pve.parse_config(read("own/qemu-bad.conf"), "qemu"))
    assert.are.same({
      "line 2: unable to parse config:  memory: 512",
      "line 3: unable to parse value of 'frobnicate' - unknown setting 'frobnicate'",
      "line 4: unable to parse value of 'numa' - type check ('boolean') failed - got 'maybe'",
      "line 5: property 'delete' is only allowed in [PENDING]",
      "line 6: unable to parse value of 'net0' - invalid key in comma-separated list property: bogus",
      "line 7: unable to parse value of 'scsi0' - size: invalid format - value '12Q' is not a valid disk size",
      "line 13: duplicate section: pending",
      "line 16: skipping unknown section: 'weird section!'",
    }, c.warnings)
    -- qemu-server drops what fails; cdrom becomes ide2
    assert.are.same({ cores = "2", ide2 = "local:iso/debian.iso,media=cdrom" }, c.main)
    assert.are.same({ memory = "2048" }, c.pending.main)
    assert.are.same({ cores = "1" }, c.snapshots.snap.main)
  end)

  it("writes '#' for an empty pending description, nothing for the main one", function()
    local c = assert(pve.parse_config("#\ncores: 1\n[PENDING]\n#\ncores: 2\n", "qemu"))
    assert.are.equal("", c.description)
    assert.are.equal("", c.pending.description)
    assert.are.equal("cores: 1\n\n[PENDING]\n#\ncores: 2\n", pve.write_config(c, "qemu"))
  end)

  it("accepts the legacy description: line and cdrom", function()
    local c = assert(pve.parse_config("description: a%3Ab\ncdrom: none\n", "qemu"))
    assert.are.equal("a:b", c.description)
    assert.are.equal("none", c.main.ide2)
  end)

  it("refuses disk paths outside /dev, as filename_to_volume_id does", function()
    local c = assert(pve.parse_config("ide0: /mnt/disk.img\nide1: /dev/sdb\nide2: disk.qcow2\n", "qemu"))
    assert.are.same({
      "line 1: unable to parse value of 'ide0'",
      "line 3: unable to parse value of 'ide2' - file: invalid format - unable to parse volume ID",
    }, c.warnings)
    assert.are.same({ ide1 = "/dev/sdb" }, c.main)
  end)

  it("keeps qemu keys with '-' but refuses them for containers", function()
    local c = assert(pve.parse_config("allow-ksm: 1\n", "qemu"))
    assert.are.equal("1", c.main["allow-ksm"])
    local l = assert(pve.parse_config("allow-ksm: 1\n", "lxc"))
    assert.are.equal("line 1: unable to parse config: allow-ksm: 1", l.warnings[1])
  end)

  it("warns about a snapshot named current, and fails on it when strict", function()
    local c = assert(pve.parse_config("cores: 1\n[current]\ncores: 1\n", "qemu"))
    assert.are.equal("line 2: snapshot name 'current' is reserved", c.warnings[1])
    assert.is_nil((pve.parse_config("cores: 1\n[current]\ncores: 1\n", "qemu", { strict = true })))
  end)

  it("applies write_vm_config's fixups: cdrom, smp, unused volumes in use", function()
    local out = pve.write_config({ main = { cdrom = "none", smp = "2", cores = "4", scsi0 = "lvm:vm-1-disk-0",
      unused0 = "lvm:vm-1-disk-0", unused1 = "lvm:vm-1-disk-1" } }, "qemu")
    assert.are.equal("ide2: none\nscsi0: lvm:vm-1-disk-0\nsockets: 2\nunused1: lvm:vm-1-disk-1\n", out)
    local _, err = pve.write_config({ main = { cdrom = "none", ide2 = "none" } }, "qemu")
    assert.are.equal("option ide2 conflicts with cdrom", err)
  end)
end)

describe("write_config", function()
  it("writes sections in Proxmox's order: main, pending, special, snapshots sorted", function()
    local out = assert(pve.write_config({
      description = "two\nlines",
      main = { memory = "512", cores = 2, onboot = true },
      pending = { main = { memory = "1024" } },
      delete = { { key = "onboot" }, { key = "tags", force = true } },
      snapshots = { zeta = { main = { cores = "1" } }, alpha = { description = "#x", main = { cores = "1" } } },
    }, "lxc"))
    assert.are.equal("#two\n#lines\ncores: 2\nmemory: 512\nonboot: 1\n\n[pve:pending]\ndelete: onboot,!tags\n" ..
      "memory: 1024\n\n[alpha]\n##x\ncores: 1\n\n[zeta]\ncores: 1\n", out)
  end)

  it("refuses values and names that cannot be written", function()
    local function err(tbl, kind)
      local out, msg = pve.write_config(tbl, kind or "lxc")
      assert.is_nil(out)
      return msg
    end
    assert.are.equal("detected invalid newline inside property 'hostname'", err({ main = { hostname = "a\nb" } }))
    assert.are.equal("invalid key 'Bad Key'", err({ main = { ["Bad Key"] = "1" } }))
    assert.are.equal("empty value for 'hostname'", err({ main = { hostname = "" } }))
    assert.are.equal("invalid snapshot name 'no way'", err({ snapshots = { ["no way"] = {} } }))
    assert.are.equal("snapshot name 'Pending' is forbidden", err({ snapshots = { Pending = {} } }, "qemu"))
    assert.are.equal("unable to parse value of 'numa' - type check ('boolean') failed - got 'perhaps'",
      err({ main = { numa = "perhaps" } }, "qemu"))
    assert.are.equal("special sections are only valid for VMs", err({ special = { cloudinit = {} } }))
    assert.are.equal("raw lxc entries are only valid for containers", err({ lxc = { { "lxc.a", "b" } } }, "qemu"))
    assert.are.equal("lxc[1]: invalid raw lxc key", err({ lxc = { { "LXC.a", "b" } } }))
    assert.are.equal("[PENDING]: unable to parse value of 'cores' - type check ('integer') failed - got 'x'",
      err({ pending = { main = { cores = "x" } } }, "qemu"))
  end)

  it("raises on wrong use", function()
    assert.has_error(function() pve.write_config("x", "lxc") end)
    assert.has_error(function() pve.write_config({}, "openvz") end)
    assert.has_error(function() pve.parse_config("", "lxc", { bogus = true }) end)
  end)
end)

describe("description text", function()
  local sample = read("captures/description-encoding.generated.txt")
  local raw = sample:match("conf header[^\n]*\n(.-)\n===")

  it("encodes as upstream's encode_text: control chars, >= 0x80, ':' and '%'", function()
    local text = "Web server: nginx 100% \u{2713}\n# not a key: value\nsecond line\tTAB"
    local lines = {}
    for line in (text .. "\n"):gmatch("(.-)\n") do lines[#lines + 1] = "#" .. pve.encode_text(line) end
    assert.are.equal(raw, table.concat(lines, "\n"))
    local cfg = assert(pve.write_config({ description = text, main = {} }, "qemu"))
    assert.are.equal(raw .. "\n", cfg)
    assert.are.equal(text, assert(pve.parse_config(cfg, "qemu")).description)
  end)

  it("decodes %XX in any case and leaves stray % alone", function()
    assert.are.equal("a:b%c\n%zz%4", pve.decode_text("a%3ab%25c%0A%zz%4"))
    assert.are.equal("%0A%3A%25%7F%C3%A9", pve.encode_text("\n:%\127\195\169"))
  end)
end)

describe("property strings", function()
  it("parses container net with its required name", function()
    local t = assert(pve.parse_prop("name=eth0,bridge=vmbr0,firewall=1,gw=10.0.0.1,ip=10.0.0.2/24,ip6=auto,tag=20," ..
      "trunks=10;20,type=veth,hwaddr=BC:24:11:00:00:01,mtu=1500,rate=12.5", "lxc-net"))
    assert.are.same({ name = "eth0", bridge = "vmbr0", firewall = true, gw = "10.0.0.1", ip = "10.0.0.2/24",
      ip6 = "auto", tag = 20, trunks = { "10", "20" }, type = "veth", hwaddr = "BC:24:11:00:00:01", mtu = 1500,
      rate = 12.5 }, t)
    assert.are.equal("name=eth0,bridge=vmbr0,firewall=1,gw=10.0.0.1,hwaddr=BC:24:11:00:00:01,ip=10.0.0.2/24," ..
      "ip6=auto,mtu=1500,rate=12.5,tag=20,trunks=10;20,type=veth", pve.format_prop(t, "lxc-net"))
    local _, err = pve.parse_prop("bridge=vmbr0", "lxc-net")
    assert.are.equal("name: property is missing and it is not optional", err)
  end)

  it("parses mount points: default key volume, bind mounts, lists, sizes", function()
    local t = assert(pve.parse_prop("/srv/shared,mp=/mnt/shared,backup=0,ro=yes,mountoptions=noatime;nosuid",
      "lxc-mp"))
    assert.are.same({ volume = "/srv/shared", mp = "/mnt/shared", backup = false, ro = true,
      mountoptions = { "noatime", "nosuid" } }, t)
    assert.are.equal("/srv/shared,mp=/mnt/shared,backup=0,mountoptions=noatime;nosuid,ro=1",
      pve.format_prop(t, "lxc-mp"))
    assert.are.equal("local-zfs:subvol-1-disk-0,mp=/data,size=8G",
      pve.format_prop({ volume = "local-zfs:subvol-1-disk-0", mp = "/data", size = 8 * 1024 * 1024 * 1024 }, "lxc-mp"))
    assert.are.same({ volume = "local-zfs:subvol-101-disk-0", size = "8G" },
      pve.parse_prop("volume=local-zfs:subvol-101-disk-0,size=8G", "lxc-rootfs"))
    local _, err = pve.parse_prop("/a,mp=/x/../etc", "lxc-mp")
    assert.are.equal("mp: invalid format - path contains illegal character sequences", err)
    _, err = pve.parse_prop("/a,mp=/b,mountoptions=noatime;sync", "lxc-mp")
    assert.are.equal("mountoptions: value does not match the regex pattern", err)
  end)

  it("parses features, devices and startup", function()
    assert.are.same({ nesting = true, keyctl = true, mount = { "nfs", "cifs" } },
      pve.parse_prop("nesting=1,keyctl=on,mount=nfs;cifs", "lxc-features"))
    assert.are.same({ path = "/dev/dri/renderD128", gid = 44, mode = "0660" },
      pve.parse_prop("/dev/dri/renderD128,gid=44,mode=0660", "lxc-dev"))
    assert.is_nil((pve.parse_prop("/tmp/x", "lxc-dev")))
    assert.are.same({ order = 2, up = 30 }, pve.parse_prop("2,up=30", "startup"))
    assert.are.equal("order=2,down=60,up=30", pve.format_prop({ order = 2, up = 30, down = 60 }, "startup"))
  end)

  it("parses VM net with the model=MAC key alias", function()
    local t = assert(pve.parse_prop("virtio=BC:24:11:A3:DA:B1,bridge=vnet0,firewall=1", "qemu-net"))
    assert.are.same({ model = "virtio", macaddr = "BC:24:11:A3:DA:B1", bridge = "vnet0", firewall = true }, t)
    assert.are.equal("virtio=BC:24:11:A3:DA:B1,bridge=vnet0,firewall=1", pve.format_prop(t, "qemu-net"))
    assert.are.equal("e1000,bridge=vmbr0", pve.format_prop({ model = "e1000", bridge = "vmbr0" }, "qemu-net"))
    local _, err = pve.parse_prop("virtio=BC:24:11:A3:DA:B1,e1000=BC:24:11:A3:DA:B2", "qemu-net")
    assert.are.equal("key alias 'model' is already defined", err)
    _, err = pve.parse_prop("model=rtl9999", "qemu-net")
    assert.matches("^model: value 'rtl9999' does not have a value in the enumeration 'e1000, ", err)
    _, err = pve.parse_prop("virtio=01:24:11:A3:DA:B1", "qemu-net")
    assert.are.equal("macaddr: invalid format - value does not look like a valid unicast MAC address", err)
  end)

  it("parses hostpci with a ';' list of devices", function()
    local t = assert(pve.parse_prop("0000:01:00.0;0000:01:00.1,pcie=1,x-vga=on,rombar=false", "qemu-hostpci"))
    assert.are.same({ host = { "0000:01:00.0", "0000:01:00.1" }, pcie = true, ["x-vga"] = true, rombar = false }, t)
    assert.are.equal("0000:01:00.0;0000:01:00.1,pcie=1,rombar=0,x-vga=1", pve.format_prop(t, "qemu-hostpci"))
    assert.are.same({ mapping = "gpu0" }, pve.parse_prop("mapping=gpu0", "qemu-hostpci"))
    local _, err = pve.parse_prop("01:00.0,pcie=2", "qemu-hostpci")
    assert.are.equal("pcie: type check ('boolean') failed - got '2'", err)
    _, err = pve.parse_prop("zz:00.0", "qemu-hostpci")
    assert.are.equal("host: invalid format - not a valid PCI id", err)
  end)

  it("parses disks of every bus, with volume as an alias of file", function()
    for _, bus in ipairs { "scsi", "virtio", "ide", "sata" } do
      local t = assert(pve.parse_prop("volume=local:vm-1-disk-0,size=707456K,cache=writeback", "qemu-" .. bus))
      assert.are.same({ file = "local:vm-1-disk-0", size = "707456K", cache = "writeback" }, t)
      assert.are.equal("local:vm-1-disk-0,cache=writeback,size=707456K", pve.format_prop(t, "qemu-" .. bus))
    end
    assert.are.equal("iothread: invalid key in comma-separated list property: iothread",
      "iothread: " .. select(2, pve.parse_prop("local:x,iothread=1", "qemu-ide")))
    assert.are.equal("file: property is missing and it is not optional", select(2, pve.parse_prop("size=1G", "qemu-scsi")))
  end)

  it("parses ipconfig, agent, boot", function()
    assert.are.same({ ip = "dhcp", ip6 = "auto" }, pve.parse_prop("ip=dhcp,ip6=auto", "qemu-ipconfig"))
    assert.are.equal("ip: invalid format - value does not look like a valid IPv4 network configuration",
      select(2, pve.parse_prop("ip=10.0.0.300/24", "qemu-ipconfig")))
    assert.are.same({ enabled = true, ["freeze-fs"] = false }, pve.parse_prop("1,guest-fsfreeze=0", "qemu-agent"))
    assert.are.same({ order = { "scsi0", "ide2", "net0" } }, pve.parse_prop("order=scsi0;ide2;net0", "qemu-boot"))
    assert.are.equal("order=scsi1;net0", pve.format_prop({ order = { "scsi1", "net0" } }, "qemu-boot"))
  end)

  it("accepts every Proxmox boolean spelling", function()
    for word, value in pairs { ["1"] = true, on = true, yes = true, TRUE = true, ["0"] = false, off = false,
      No = false, ["false"] = false } do
      assert.are.equal(value, pve.parse_prop("firewall=" .. word .. ",name=e", "lxc-net").firewall)
    end
  end)

  it("names the key on syntax errors, as parse_property_string does", function()
    local cases = {
      { "name=e,bogus=1", "invalid key in comma-separated list property: bogus" },
      { "name=e,name=f", "duplicate key in comma-separated list property: name" },
      { "eth0", "value without key, but schema does not define a default key" },
      { "name=", "missing key in comma-separated list property" },
      { "=x", "missing key in comma-separated list property" },
      { "name=e,tag=0", "tag: value must have a minimum value of 1" },
      { "name=e,mtu=big", "mtu: type check ('integer') failed - got 'big'" },
      { "name=e,rate=fast", "rate: type check ('number') failed - got 'fast'" },
      { "name=e f", "name: value does not match the regex pattern" },
    }
    for _, c in ipairs(cases) do
      local t, err = pve.parse_prop(c[1], "lxc-net")
      assert.is_nil(t, c[1])
      assert.are.equal(c[2], err)
    end
    assert.are.equal("duplicate key in comma-separated list property: volume",
      select(2, pve.parse_prop("a:b,volume=c:d", "lxc-rootfs")))
  end)

  it("refuses what format_prop cannot write", function()
    assert.are.equal("invalid key 'colour'", select(2, pve.format_prop({ name = "e", colour = "red" }, "lxc-net")))
    assert.are.equal("bridge: illegal value with commas", select(2, pve.format_prop({ name = "e", bridge = "a,b" }, "lxc-net")))
    assert.are.equal("trunks: list element 2 contains ';'",
      select(2, pve.format_prop({ name = "e", trunks = { "1", "2;3" } }, "lxc-net")))
    assert.are.equal("firewall: type check ('boolean') failed",
      select(2, pve.format_prop({ name = "e", firewall = "maybe" }, "lxc-net")))
    assert.has_error(function() pve.parse_prop("x", "no-such-format") end)
  end)

  it("says which format a config key uses", function()
    assert.are.equal("lxc-mp", pve.format_of("mp7", "lxc"))
    assert.are.equal("qemu-scsi", pve.format_of("scsi30", "qemu"))
    assert.is_nil(pve.format_of("scsi31", "qemu"))
    assert.are.equal("startup", pve.format_of("startup", "qemu"))
    assert.is_nil(pve.format_of("hostname", "lxc"))
    assert.is_nil(pve.format_of("net00", "lxc"))
  end)
end)

describe("sizes, tags, snapshot names", function()
  it("parses and formats sizes as PVE::JSONSchema does", function()
    assert.are.equal(8 * 1024 ^ 3 // 1, pve.parse_size("8G"))
    assert.are.equal(512 * 1024 * 1024, pve.parse_size("512M"))
    assert.are.equal(707456 * 1024, pve.parse_size("707456K"))
    assert.are.equal(1610612736, pve.parse_size("1.5G"))
    assert.are.equal(100, pve.parse_size("100"))
    assert.is_nil((pve.parse_size("8GB")))
    assert.is_nil((pve.parse_size("-1G")))
    assert.is_nil((pve.parse_size("99999999999T")))
    assert.are.equal("8G", pve.format_size(8 * 1024 ^ 3 // 1))
    assert.are.equal("1536M", pve.format_size(1610612736))
    assert.are.equal("707456K", pve.format_size(707456 * 1024))
    assert.are.equal("1000", pve.format_size(1000))
    assert.are.equal("2T", pve.format_size(2 * 1024 ^ 4 // 1))
  end)

  it("splits tags on [,; ] and joins them with ';'", function()
    assert.are.same({ "foo", "bar", "baz" }, pve.parse_tags("foo bar;baz,"))
    assert.are.same({}, pve.parse_tags(""))
    assert.are.equal("invalid tag 'b@d'", select(2, pve.parse_tags("ok b@d")))
    assert.are.equal("db;storage", pve.format_tags { "db", "storage", "db" })
  end)

  it("checks snapshot names and the reserved ones", function()
    assert.is_true(pve.check_snapname("before-upgrade_2", "lxc"))
    assert.are.equal("snapshot name 'current' is reserved", select(2, pve.check_snapname("current", "qemu")))
    assert.are.equal("snapshot name 'pending' is reserved", select(2, pve.check_snapname("PENDING", "qemu")))
    assert.is_true(pve.check_snapname("pending", "lxc"))
    assert.are.equal("snapshot name 'vzdump' is reserved for backups", select(2, pve.check_snapname("vzdump", "lxc")))
    assert.is_nil((pve.check_snapname("1st", "lxc")))
    assert.is_nil((pve.check_snapname(string.rep("a", 41), "lxc")))
  end)
end)

describe("pvesm status", function()
  it("reads active, inactive and disabled storages", function()
    local rows = assert(pve.parse_pvesm_status(read("captures/pvesm-status.id56561887619.txt")))
    assert.are.equal(4, #rows)
    assert.are.same({ name = "HHDD", type = "zfspool", status = "active", total = 942931968, used = 4800060,
      available = 938131908, percent = 0.51, active = true, enabled = true }, rows[1])
    assert.are.same({ false, true, 0.0 }, { rows[2].active, rows[2].enabled, rows[2].percent })
    local gen = assert(pve.parse_pvesm_status(read("captures/pvesm-status.generated.txt")))
    assert.are.same({ name = "nfs-old", type = "nfs", status = "disabled", total = 0, used = 0, available = 0,
      active = false, enabled = false }, gen[5])
    assert.are.equal(1, #assert(pve.parse_pvesm_status(read("captures/pvesm-status.id60707659951.pbs.txt"))))
  end)

  it("rejects malformed rows with the line number", function()
    local text = "Name Type Status Total Used Available %\nlocal dir active 1 2 3 4.00%\nlocal dir active 1 2\n"
    assert.are.equal("line 3: expected 7 columns, got 5", select(2, pve.parse_pvesm_status(text)))
    assert.are.equal("line 1: unknown status 'sleepy'", select(2, pve.parse_pvesm_status("a dir sleepy 1 2 3 1.00%")))
    assert.are.equal("line 1: total is not a number: 'x'", select(2, pve.parse_pvesm_status("a dir active x 2 3 1.00%")))
    assert.are.equal("line 1: bad percentage '12'", select(2, pve.parse_pvesm_status("a dir active 1 2 3 12")))
    assert.are.same({}, pve.parse_pvesm_status(""))
  end)
end)

describe("zfs get / zfs list", function()
  it("reads zfs get -H -p -o name,property,value,source: tabs only, sources", function()
    local text = "tank/ct\tcreation\t1635861840\t-\ntank/ct\tcompression\tlz4\tinherited from tank\n" ..
      "tank/ct\tcom.example:note\tsome words here\tlocal\ntank/ct\tquota\t0\tdefault\n"
    local rows = assert(pve.parse_zfs_get(text))
    assert.are.equal(4, #rows)
    assert.are.same({ name = "tank/ct", property = "compression", value = "lz4", source = "inherited",
      inherited_from = "tank" }, rows[2])
    assert.are.equal("some words here", rows[3].value)
    assert.are.equal("line 1: expected 4 tab-separated fields, got 3", select(2, pve.parse_zfs_get("a\tb\tc\n")))
  end)

  it("reads a real zfs get with other columns", function()
    local rows = assert(pve.parse_zfs_get(read("captures/zfs-get-H-o-property-value-source.tank-downloads.tsv"),
      { "property", "value", "source" }))
    assert.are.equal(74, #rows)
    assert.are.same({ property = "creation", value = "Tue Nov  2 14:04 2021", source = "-" }, rows[2])
    assert.are.same({ property = "atime", value = "off", source = "inherited", inherited_from = "tank" }, rows[15])
    assert.has_error(function() pve.parse_zfs_get("", {}) end)
  end)

  it("reads zfs list -H -p with the columns given", function()
    local text = "rpool/data/subvol-102-disk-0\t2308743168\t126701535232\t/rpool/data/subvol-102-disk-0\n" ..
      "rpool/data/vm-100-disk-0\t1803550720\t957777440768\t-\n"
    local rows = assert(pve.parse_zfs_list(text, { "name", "used", "avail", "mountpoint" }))
    assert.are.same({ name = "rpool/data/vm-100-disk-0", used = 1803550720, avail = 957777440768,
      mountpoint = "-" }, rows[2])
    assert.are.equal("line 1: expected 3 fields, got 4", select(2, pve.parse_zfs_list(text, { "name", "used", "avail" })))
  end)

  it("reads zfs list without -H, naming columns from its header", function()
    local rows = assert(pve.parse_zfs_list(read("captures/zfs-list.proxmox.id69663347803.txt")))
    assert.are.equal(7, #rows)
    assert.are.same({ name = "rpool/data/subvol-102-disk-0", used = "2.15G", avail = "118G", refer = "2.10G",
      mountpoint = "/rpool/data/subvol-102-disk-0" }, rows[5])
  end)
end)

describe("zpool status", function()
  it("reads two healthy pools", function()
    local pools = assert(pve.parse_zpool_status(read("captures/zpool-status.2pools.txt")))
    assert.are.equal(2, #pools)
    assert.are.equal("btr", pools[1].name)
    assert.are.equal("ONLINE", pools[1].state)
    assert.are.equal("No known data errors", pools[1].errors)
    assert.matches("^scrub repaired 0B", pools[1].scan)
    assert.are.same({ name = "sdb1", state = "ONLINE", read = 0, write = 0, cksum = 0, depth = 2, parent = "mirror-0" },
      pools[1].config[4])
    assert.are.equal("tank", pools[2].config[1].name)
  end)

  it("reads a pasted resilvering pool without pool: and config: lines", function()
    local pools = assert(pve.parse_zpool_status(read("captures/zpool-status.resilver-replacing.id32234402988.partial.txt")))
    local p = pools[1]
    assert.are.equal("tank", p.name)
    assert.are.equal("DEGRADED", p.state)
    assert.are.equal("One or more devices is currently being resilvered.  The pool will continue to function, " ..
      "possibly in a degraded state.", p.status)
    assert.matches("21.39%% done", p.scan)
    assert.are.same({ name = "6017198632328599818", state = "FAULTED", read = 0, write = 0, cksum = 0, depth = 3,
      parent = "replacing-1", note = "was /dev/da1" }, p.config[5])
    assert.are.equal("mirror-2", p.config[7].parent)
  end)

  it("reads an old release's degraded pool (scrub:, spaces, too many errors)", function()
    local p = assert(pve.parse_zpool_status(read("own/zpool-status.degraded-old.txt")))[1]
    assert.are.equal("none requested", p.scan)
    assert.are.equal("Replace the faulted device, or use 'zpool clear' to mark the device repaired.", p.action)
    assert.are.same({ name = "sdb2", state = "FAULTED", read = 3, write = 140, cksum = 0, depth = 2,
      parent = "mirror-0", note = "too many errors" }, p.config[4])
  end)

  it("reads an unavailable pool with logs, cache, spares and permanent errors", function()
    local p = assert(pve.parse_zpool_status(read("own/zpool-status.unavail.txt")))[1]
    assert.are.equal("UNAVAIL", p.state)
    assert.are.equal("https://openzfs.github.io/openzfs-docs/msg/ZFS-8000-3C", p.see)
    assert.are.equal("insufficient replicas", p.config[1].note)
    assert.are.equal("1.2K", p.config[5].cksum)
    assert.are.same({ name = "logs", depth = 0 }, p.config[6])
    assert.are.equal("logs", p.config[7].parent)
    assert.are.same({ name = "ata-DISK_D", state = "AVAIL", depth = 1, parent = "spares" }, p.config[11])
    assert.are.equal("Permanent errors have been detected in the following files:\ntank/data:<0x0>\n" ..
      "/tank/data/file.bin", p.errors)
  end)

  it("rejects what is not zpool status", function()
    assert.are.equal("line 1: unexpected line: hello", select(2, pve.parse_zpool_status("hello\n")))
    assert.are.equal("line 3: unexpected line: \tsda ONLINE 0 0 0",
      select(2, pve.parse_zpool_status("  pool: x\nconfig:\n\tsda ONLINE 0 0 0\n")))
    assert.are.equal("line 4: incomplete error counters",
      select(2, pve.parse_zpool_status("  pool: x\nconfig:\n\tNAME STATE READ WRITE CKSUM\n\tx ONLINE 0 0\n")))
    assert.are.same({}, pve.parse_zpool_status("no pools available\n"))
  end)
end)

describe("listsnapshot", function()
  it("reads a branching tree made by upstream's printer", function()
    local rows = assert(pve.parse_listsnapshot(read("captures/listsnapshot.qemu-snapshots.generated.txt")))
    assert.are.equal(8, #rows)
    assert.are.same({ name = "machine_version_5_1_with_virtio", depth = 1, parent = "machine_version_5_1",
      time = "2025-01-15 11:27:42", description = "no-description", current = false }, rows[2])
    assert.are.equal("machine_version_5_1_with_virtio", rows[6].parent)
    assert.are.same({ name = "current", depth = 4, parent = "win19_5_2_plus_stuff", description = "You are here!",
      current = true }, rows[8])
  end)

  it("reads real pct and qm captures", function()
    local ct = assert(pve.parse_listsnapshot(read("captures/pct-listsnapshot.id62055967341.vzdump.txt")))
    assert.are.same({ "vzdump", "vzdump backup snapshot", "2026-04-11 11:01:18" }, { ct[1].name, ct[1].description,
      ct[1].time })
    local vm = assert(pve.parse_listsnapshot(read("captures/qm-listsnapshot.id36991923191.txt")))
    assert.are.equal("powered off!", vm[1].description)
    assert.are.equal("b4-nic-change", vm[2].parent)
    local lxc = assert(pve.parse_listsnapshot(read("captures/listsnapshot.lxc-delete-104.generated.txt")))
    assert.are.equal("test2", lxc[3].parent)
  end)

  it("rejects other lines", function()
    assert.are.equal("line 2: expected \"`-> name ...\"", select(2, pve.parse_listsnapshot("`-> a\nb\n")))
  end)
end)

describe("pvesh JSON", function()
  it("reads /cluster/resources with numbers sent as strings", function()
    local rows = assert(pve.parse_pvesh_json(read("own/pvesh-cluster-resources.json")))
    assert.is_true(json.is_array(rows))
    assert.are.equal(5, #rows)
    local ct = rows[1]
    assert.are.same({ 101, 2147483648, 2, 3600, 0, 1234 }, { ct.vmid, ct.maxmem, ct.maxcpu, ct.uptime, ct.disk, ct.netin })
    assert.are.equal(math.type(ct.vmid), "integer")
    assert.are.equal("phoenix;web", ct.tags)
    assert.are.equal(1, rows[2].template)
    assert.are.equal(2000, rows[4].maxdisk)
    assert.are.equal("", rows[3].level)
    assert.is_true(json.is_array(rows[5].members))
  end)

  it("unwraps the HTTP API's {\"data\": ...}", function()
    local rows = assert(pve.parse_pvesh_json(read("own/pvesh-cluster-resources.api.json")))
    assert.are.same({ 102, 1 }, { rows[1].vmid, rows[1].template })
  end)

  it("keeps [] and {} apart, null as px.json.null, escapes as UTF-8", function()
    local v = assert(pve.parse_pvesh_json('{"a":[],"b":{},"c":null,"d":"\\u00e9\\ud83d\\ude00\\n","e":-1.5e2}'))
    assert.is_true(json.is_array(v.a))
    assert.is_false(json.is_array(v.b))
    assert.are.equal(json.null, v.c)
    assert.are.equal("é😀\n", v.d)
    assert.are.equal(-150.0, v.e)
  end)

  it("rejects malformed JSON with the line", function()
    assert.are.equal("line 2: unexpected end of input", select(2, pve.parse_pvesh_json("[1,\n")))
    assert.are.equal("line 1: trailing characters after the value", select(2, pve.parse_pvesh_json("[] x")))
    assert.are.equal("line 1: expected an array or an object", select(2, pve.parse_pvesh_json("42")))
    assert.are.equal("line 1: expected ',' or ']'", select(2, pve.parse_pvesh_json("[01]")))
    assert.are.equal("line 1: invalid number", select(2, pve.parse_pvesh_json("[-]")))
    assert.are.equal("line 1: nesting too deep", select(2, pve.parse_pvesh_json(string.rep("[", 1000))))
    assert.are.equal("line 1: control character in string", select(2, pve.parse_pvesh_json('["a\tb"]')))
  end)
end)

describe("robustness", function()
  it("handles long inputs (buffers that must grow)", function()
    local tags = {}
    for i = 1, 300 do tags[i] = "tag" .. i end
    assert.are.same(tags, pve.parse_tags(pve.format_tags(tags)))
    local long = string.rep("x:%\t", 3000)
    local out = assert(pve.write_config({ description = long, main = { cores = 1 } }, "lxc"))
    assert.are.equal(long .. "\n", assert(pve.parse_config(out, "lxc")).description)
    local trunks = {}
    for i = 1, 500 do trunks[i] = tostring(i) end
    local net = assert(pve.format_prop({ name = "e", trunks = trunks }, "lxc-net"))
    assert.are.same(trunks, pve.parse_prop(net, "lxc-net").trunks)
    local header = {}
    for i = 1, 60 do header[i] = string.rep("C", 40) .. i end
    local rows = assert(pve.parse_zfs_list(table.concat(header, " ") .. "\n" .. string.rep("v ", 60) .. "\n"))
    assert.are.equal("v", rows[1][header[60]:lower()])
  end)

  it("never fails on arbitrary bytes", function()
    local seed = 42
    local function rnd(n)
      seed = (seed * 1103515245 + 12345) % 2147483648
      return seed % n
    end
    local alphabet = "[]#:=,;%!\n\t abcdefgilmnoprstuvxz0123456789-_.PENDINGlxc.:/\"{}\\"
    local fns = { "parse_pvesm_status", "parse_zpool_status", "parse_listsnapshot", "parse_pvesh_json",
      "parse_zfs_get", "parse_zfs_list", "decode_text", "parse_tags", "parse_size" }
    for _ = 1, 300 do
      local t = {}
      for i = 1, rnd(200) do
        local c = rnd(alphabet:len()) + 1
        t[i] = alphabet:sub(c, c)
      end
      local s = table.concat(t)
      for _, kind in ipairs { "lxc", "qemu" } do
        local cfg = pve.parse_config(s, kind)
        if cfg then pve.write_config(cfg, kind) end
      end
      for _, f in ipairs { "lxc-net", "qemu-net", "qemu-scsi", "qemu-hostpci", "lxc-mp" } do
        local p = pve.parse_prop(s, f)
        if p then assert.is_string(pve.format_prop(p, f)) end
      end
      for _, f in ipairs(fns) do
        local ok, err = pcall(pve[f], s, f:match("zfs") and { "a", "b" } or nil)
        assert.is_true(ok, err)
      end
    end
  end)
end)
