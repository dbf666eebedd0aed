-- The vm recipe through the engine against the Proxmox simulator: a
-- template from a cloud image, a clone converged to its configuration,
-- drift made by hand and converged away, and the failures a site meets
-- (agent timeout, feature failure, missing image, lock timeouts).
local fs = require "px.fs"
local json = require "px.json"
local kit = require "testkit"
local servers = require "servers"
local vmfix = require "vmfix"

-- the variables a feature gets are the ones its header documents (docs/features.md)
local HELLO = "#!/bin/sh\n#   PHOENIX_GUEST_ID  VMID\n#   PHOENIX_HOSTNAME  name\n#   PHOENIX_DOMAIN_NAME  domain\n"
  .. "echo hello from $PHOENIX_HOSTNAME\n"
local STEP = "#!/bin/sh\necho step\n"

local function ok_report(rep)
  assert.are.equal(0, rep.counts.failed, vmfix.errors(rep))
  assert.are.equal(0, rep.counts.skipped, vmfix.errors(rep))
end

local function fields(rep, id)
  local out = {}
  for _, c in ipairs(rep.results[id].changes or {}) do out[#out + 1] = c.field end
  return table.concat(out, ",")
end

describe("vm recipe", function()
  -- One node through the whole lifecycle: the its below run in order and
  -- each starts from the state the previous one left.
  describe("lifecycle", function()
    local dir, node, sdir, site
    local vms

    lazy_setup(function()
      dir = kit.tmpdir()
      node = vmfix.node(dir)
      vms = {
        vmfix.template(),
        vmfix.clone(1001, "app", {
          cores = 4, memory_mb = 4096, disk_size_gb = 12, start_at_boot = true, boot_order = 4, boot_delay = 2,
          features = { "hello", "step" }, qm_options = { "balloon=0", "description: managed" },
          snapshots = { ["pre-features"] = "pre-features", ["post-features"] = "post-features" },
          volumes = { { type = "nfs", name = "data", path = "/srv/data", mount_point = "/data", server = "10.0.0.13" } },
        }),
      }
      sdir = vmfix.site(dir, node, vms, { features = { hello = HELLO, step = STEP } })
      site = vmfix.load(sdir)
    end)
    lazy_teardown(function() kit.cleanup(dir) end)

    it("plans a template and a clone of it", function()
      local rep = vmfix.run(site, node, { mode = "plan" })
      assert.are.equal(0, rep.counts.failed, vmfix.errors(rep))
      assert.are.equal("vm,template", fields(rep, "vm:9000"))
      assert.are.equal("vm,status,agent,snapshot pre-features,feature hello,feature step,volume data,"
        .. "snapshot post-features", fields(rep, "vm:1001"))
      local c = vmfix.changes(rep, "vm:1001")
      assert.are.equal("full clone of VM 9000 (4 cores, 4096 MB, 12 GB disk, on local-zfs)", c.vm.to)
      assert.are.equal("after VM 9000 exists", c.vm.note)
      assert.are.equal(1, #node:calls()) -- one pvesh for the whole plan
    end)

    it("builds the template, clones it and converges the clone", function()
      node:clear_calls()
      local rep = vmfix.run(site, node)
      local calls = node:calls()
      ok_report(rep)
      assert.are.equal(2, rep.counts.changed)
      -- the template: cloud image imported, cloud-init drive, serial console, agent, converted
      local t = vmfix.main(node, 9000)
      assert.are.equal("1", t.template)
      assert.are.equal("local-zfs:base-9000-disk-0,discard=on,size=2G", t.scsi0)
      assert.are.equal("local-zfs:vm-9000-cloudinit,media=cdrom", t.ide2)
      assert.are.equal("order=scsi0", t.boot)
      assert.are.equal("socket", t.serial0)
      assert.are.equal("serial0", t.vga)
      assert.are.equal("enabled=1", t.agent)
      assert.are.equal("phoenix", t.tags)
      assert.are.equal("ip=dhcp", t.ipconfig0)
      assert.are.equal("phoenix_user", t.ciuser)
      assert.is_nil(vmfix.conf(node, 9000):find("\n%[")) -- no snapshot: Proxmox refuses them on templates
      -- the clone: a full clone with its own configuration
      local a = vmfix.main(node, 1001)
      assert.are.equal("local-zfs:vm-1001-disk-0,discard=on,size=12G", a.scsi0)
      assert.are.equal("4", a.cores)
      assert.are.equal("4096", a.memory)
      assert.are.equal("1", a.onboot)
      assert.are.equal("order=4,up=2", a.startup)
      assert.are.equal("0", a.balloon)
      assert.matches("^virtio=BC:24:11:%x%x:%x%x:%x%x,bridge=vmbr0$", a.net0)
      assert.are.equal("ip=10.0.0.21/24,gw=10.0.0.1", a.ipconfig0)
      assert.are.equal("10.0.0.13", a.nameserver)
      assert.are.equal("lab.example", a.searchdomain)
      assert.are.equal("ssh-ed25519%20AAAAC3Nza%20admin%40host%0A", a.sshkeys)
      assert.are.equal("phoenix", a.tags)
      assert.matches("#managed\n", vmfix.conf(node, 1001), 1, true)
      assert.matches("status: running", vmfix.qm(node, "status", "1001"), 1, true)
      local conf = vmfix.conf(node, 1001)
      assert.matches("\n[pre-features]\n", conf, 1, true)
      assert.matches("\n[post-features]\n", conf, 1, true)
      assert.matches("parent: post-features", conf, 1, true)
      -- the order of work, as qm saw it
      local seq = {}
      for _, c in ipairs(calls) do
        local a1, a2 = c.argv[2], c.argv[3]
        if c.argv[1] == "qm" and (a2 == "1001" or (a1 == "clone" and c.argv[4] == "1001")) then seq[#seq + 1] = a1 end
        if c.argv[1] == "qm" and a1 == "guest" and c.argv[4] == "1001" then seq[#seq + 1] = a2 end
      end
      assert.are.equal("clone,set,resize,start,cmd,snapshot,exec,exec,exec,exec,exec,exec,exec,snapshot",
        table.concat(seq, ","))
      -- features: script pushed, run with settings in the argv, marker pushed
      local ex = vmfix.exec_log(node)
      local run_hello
      for _, e in ipairs(ex) do
        if e.argv[1] == "env" and e.argv[2] == "PHOENIX_FEATURE=hello" then run_hello = e.argv end
      end
      assert.are.same({ "env", "PHOENIX_FEATURE=hello", "PHOENIX_DOMAIN_NAME=lab.example", "PHOENIX_GUEST_ID=1001",
        "PHOENIX_HOSTNAME=app", "sh", "/var/lib/phoenix/features/hello.sh" }, run_hello)
      local gfs = node.dir .. "/sim/guests/1001/fs/var/lib/phoenix/features/"
      assert.are.equal(HELLO, fs.read(gfs .. "hello.sh"))
      assert.are.equal(tonumber("700", 8), fs.stat(gfs .. "hello.sh").mode)
      assert.matches("^%x+ hello\n$", fs.read(gfs .. "hello.done"))
      assert.matches("^%x+ step\n$", fs.read(gfs .. "step.done"))
      -- the NFS volume: the fixed script, the site's values as its arguments
      local nfs = ex[#ex].argv
      assert.are.same({ "sh", "-c" }, { nfs[1], nfs[2] })
      assert.are.same({ "phoenix-nfs", "10.0.0.13:/srv/data", "/data", "defaults,_netdev" }, { table.unpack(nfs, 4) })
    end)

    it("has nothing to do the second time, in one tool call", function()
      node:clear_calls()
      local rep = vmfix.run(site, node)
      ok_report(rep)
      assert.are.equal(2, rep.counts.ok)
      assert.are.equal(0, rep.change_count)
      assert.are.equal(1, #node:calls())
    end)

    it("shows drift made by hand and converges it; restarts only when allowed", function()
      node:run("qm", "stop", "1001")
      node:run("qm", "set", "1001", "--cores", "1", "--memory", "1024")
      node:run("qm", "start", "1001")
      node:run("qm", "resize", "1001", "scsi0", "20G") -- larger by hand: kept
      node:clear_calls()
      local rep = vmfix.run(site, node, { mode = "plan" })
      assert.are.equal("cores,memory", fields(rep, "vm:1001"))
      local c = vmfix.changes(rep, "vm:1001")
      assert.are.same({ "1", "4", "restart" }, { c.cores.from, c.cores.to, c.cores.disruptive })
      assert.are.same({ "1024", "4096", "restart" }, { c.memory.from, c.memory.to, c.memory.disruptive })
      assert.matches("needs %-%-allow%-restart", c.cores.held)
      -- without --allow-restart: held, nothing changed
      rep = vmfix.run(site, node)
      ok_report(rep)
      assert.are.equal(2, #rep.results["vm:1001"].held)
      assert.are.equal("1", vmfix.main(node, 1001).cores)
      assert.are.equal(0, node:count("^qm set"))
      -- with it: set, then one restart applies the pending values
      node:clear_calls()
      rep = vmfix.run(site, node, { allow_restart = true })
      ok_report(rep)
      assert.are.equal("changed", rep.results["vm:1001"].status)
      local m = vmfix.main(node, 1001)
      assert.are.same({ "4", "4096" }, { m.cores, m.memory })
      assert.is_nil(vmfix.conf(node, 1001):find("[PENDING]", 1, true))
      assert.are.equal(1, node:count("^qm reboot 1001"))
      assert.are.equal("local-zfs:vm-1001-disk-0,discard=on,size=20G", m.scsi0) -- never shrunk
      assert.are.equal(0, node:count("^qm resize"))
    end)

    it("starts a VM stopped by hand", function()
      node:run("qm", "stop", "1001")
      local rep = vmfix.run(site, node, { mode = "plan" })
      assert.are.equal("status,agent", fields(rep, "vm:1001"))
      local c = vmfix.changes(rep, "vm:1001")
      assert.are.same({ "stopped", "running" }, { c.status.from, c.status.to })
      rep = vmfix.run(site, node)
      ok_report(rep)
      assert.matches("status: running", vmfix.qm(node, "status", "1001"), 1, true)
      rep = vmfix.run(site, node, { mode = "plan" })
      assert.are.equal(2, rep.counts.in_sync)
    end)

    it("reruns only a feature whose script changed; trusts the guest's markers when the record is lost", function()
      kit.write(dir .. "/features/step.sh", STEP .. "echo more\n")
      node:clear_calls()
      local rep = vmfix.run(site, node, { mode = "plan" })
      assert.are.equal("agent,feature step", fields(rep, "vm:1001"))
      local c = vmfix.changes(rep, "vm:1001")
      assert.is_nil(c["feature hello"])
      assert.are.equal("script or settings changed", c["feature step"].note)
      rep = vmfix.run(site, node)
      ok_report(rep)
      local runs = {}
      for _, e in ipairs(vmfix.exec_log(node)) do
        if e.argv[1] == "env" then runs[e.argv[2]] = (runs[e.argv[2]] or 0) + 1 end
      end
      assert.are.same({ ["PHOENIX_FEATURE=hello"] = 1, ["PHOENIX_FEATURE=step"] = 2 }, runs)
      -- lose the host record: the markers in the guest say both are done
      assert(fs.remove(node.root .. "/var/lib/phoenix/vm/1001.json"))
      local before = #vmfix.exec_log(node)
      node:clear_calls()
      rep = vmfix.run(site, node)
      ok_report(rep)
      local after = vmfix.exec_log(node)
      for i = before + 1, #after do
        assert.are_not.equal("env", after[i].argv[1], "a feature ran again: " .. json.encode(after[i].argv))
      end
      assert.are.equal(2, node:count("^qm guest exec 1001 .* cat /var/lib/phoenix/features/"))
      rep = vmfix.run(site, node, { mode = "plan" })
      assert.are.equal(2, rep.counts.in_sync)
    end)

    it("changes cloud-init settings with a restart, and knows a password it set", function()
      vms[2].network_config.ip = "10.0.0.99/24"
      vms[2].user_config.password = "s3cret-pass"
      vmfix.site(dir, node, vms, { features = {} })
      site = vmfix.load(sdir)
      local rep = vmfix.run(site, node, { mode = "plan" })
      assert.are.equal("cipassword,ipconfig0", fields(rep, "vm:1001"))
      local c = vmfix.changes(rep, "vm:1001")
      assert.is_true(c.cipassword.secret)
      assert.are.equal("restart", c.ipconfig0.disruptive)
      rep = vmfix.run(site, node, { allow_restart = true })
      ok_report(rep)
      assert.are.equal("ip=10.0.0.99/24,gw=10.0.0.1", vmfix.main(node, 1001).ipconfig0)
      assert.matches("^%$5%$", vmfix.main(node, 1001).cipassword)
      rep = vmfix.run(site, node, { mode = "plan" })
      assert.are.equal(2, rep.counts.in_sync)
    end)
  end)

  describe("cases", function()
    local dir, node
    before_each(function()
      dir = kit.tmpdir()
      node = vmfix.node(dir)
    end)
    after_each(function() kit.cleanup(dir) end)

    local function converge(vms, opts, run_opts)
      local site = vmfix.load(vmfix.site(dir, node, vms, opts))
      return vmfix.run(site, node, run_opts), site
    end

    it("fails cleanly when the guest agent does not come up in time, and skips what depends on it", function()
      node:set({ agent_delay = { ["1002"] = 60 } })
      local t0 = require("px.sys").monotonic()
      local rep = converge({ vmfix.template(), vmfix.clone(1002, "slow", { agent_timeout = 1 }),
        vmfix.clone(1003, "after", { dependencies = { 1002 } }), vmfix.clone(1004, "other") })
      assert.is_true(require("px.sys").monotonic() - t0 < 60)
      local r = rep.results["vm:1002"]
      assert.are.equal("failed", r.status)
      assert.matches("the QEMU guest agent of VM 1002 did not answer within 1 s", r.error, 1, true)
      assert.is_nil(r.traceback)
      assert.are.equal("skipped", rep.results["vm:1003"].status)
      assert.are.equal("changed", rep.results["vm:1004"].status)
      assert.matches("status: running", vmfix.qm(node, "status", "1002"), 1, true)
    end)

    it("fails a feature with its exit code and stderr, and runs it again next time", function()
      fs.write(node.dir .. "/sim/exec-rules.json", json.encode({
        { match = "env PHOENIX_FEATURE=broken *", exit = 2, stderr = "E: Unable to locate package nope\n" } }))
      local rep, site = converge({ vmfix.template(), vmfix.clone(1005, "f", { features = { "broken" },
        snapshots = { ["post-features"] = "done" } }) }, { features = { broken = "apt-get install nope\n" } })
      local r = rep.results["vm:1005"]
      assert.are.equal("failed", r.status)
      assert.are.equal("feature broken: `sh /var/lib/phoenix/features/broken.sh` exited 2: E: Unable to locate package nope",
        r.error)
      assert.is_nil(fs.read(node.dir .. "/sim/guests/1005/fs/var/lib/phoenix/features/broken.done"))
      assert.is_nil(vmfix.conf(node, 1005):find("[done]", 1, true))
      rep = vmfix.run(site, node, { mode = "plan" })
      assert.truthy(vmfix.changes(rep, "vm:1005")["feature broken"])
    end)

    it("says where it looked for a missing cloud image and how to get it", function()
      local rep = converge({ vmfix.template({ template_image = "jammy-server-cloudimg-amd64.img" }) })
      local r = rep.results["vm:9000"]
      assert.are.equal("failed", r.status)
      assert.matches("cloud image 'jammy-server-cloudimg-amd64.img' is not on the host (looked in "
        .. "/var/lib/vz/template/iso)", r.error, 1, true)
      assert.matches("wget -P /var/lib/vz/template/iso https://cloud-images.ubuntu.com/jammy/current/"
        .. "jammy-server-cloudimg-amd64.img", r.error, 1, true)
      assert.are.equal(0, node:count("^qm create"))
    end)

    it("downloads a cloud image given as a URL once", function()
      local backend = servers.start_backend()
      local ok, err = pcall(function()
        local url = backend.url .. "/big/65536"
        local rep, site = converge({ vmfix.template({ template_image = url }) })
        assert.are.equal(0, rep.counts.failed, vmfix.errors(rep))
        assert.are.equal(65536, #fs.read(node.root .. "/var/lib/vz/template/iso/65536"))
        assert.are.equal("local-zfs:base-9000-disk-0,discard=on,size=64K", vmfix.main(node, 9000).scsi0)
        rep = vmfix.run(site, node, { mode = "plan" })
        assert.are.equal(1, rep.counts.in_sync)
      end)
      backend.stop()
      assert(ok, err)
    end)

    it("makes count VMs with consecutive IDs, names and addresses", function()
      local web = vmfix.clone(1010, "web", { count = 3, network_config = { ip = "10.0.0.50/24", gw = "10.0.0.1" } })
      local rep = converge({ vmfix.template(), web })
      assert.are.equal(4, rep.counts.changed, vmfix.errors(rep))
      for i = 0, 2 do
        local m = vmfix.main(node, 1010 + i)
        assert.are.equal("web-" .. (i + 1), m.name)
        assert.are.equal("ip=10.0.0." .. (50 + i) .. "/24,gw=10.0.0.1", m.ipconfig0)
      end
      assert.are.equal("VM 1011 (web-2), clone of 9000, 2 of 3", vmfix.registry():get("vm").describe(
        rep.results["vm:1011"] and vmfix.load(dir .. "/site").by_id["vm:1011"].want))
    end)

    it("retries calls that hit a guest config lock", function()
      node:set({ faults = { { match = "qm set 1006 *", kind = "lock-timeout", times = 2 } } })
      local rep = converge({ vmfix.template(), vmfix.clone(1006, "locked") }, nil,
        { target_opts = { lock_backoff_ms = "10" } })
      assert.are.equal(0, rep.counts.failed, vmfix.errors(rep))
      assert.are.equal(3, node:count("^qm set 1006"))
      assert.are.equal("ip=10.0.0.26/24,gw=10.0.0.1", vmfix.main(node, 1006).ipconfig0)
    end)

    it("renders cloud-init user-data into a snippets storage as cicustom", function()
      local tpl = "#cloud-config\nhostname: {{name}}\nfqdn: {{fqdn}}\nusers:\n  - name: {{username}}\n"
        .. "    ssh_authorized_keys: {{ssh_keys}}\n"
      local vm = vmfix.clone(1020, "ci", { cloud_init = { user_data = "base.yaml" } })
      local rep, site = converge({ vmfix.template(), vm }, { cloud_init = { ["base.yaml"] = tpl } })
      local r = rep.results["vm:1020"]
      assert.are.equal("failed", r.status)
      assert.matches("storage 'local' does not hold snippets: allow them with "
        .. "`pvesm set local --content backup,iso,vztmpl,snippets`", r.error, 1, true)
      node:run("pvesm", "set", "local", "--content", "backup,iso,vztmpl,snippets")
      rep = vmfix.run(site, node)
      assert.are.equal(0, rep.counts.failed, vmfix.errors(rep))
      assert.are.equal("user=local:snippets/phoenix-1020-user.yaml", vmfix.main(node, 1020).cicustom)
      assert.are.equal("#cloud-config\nhostname: ci\nfqdn: ci.lab.example\nusers:\n  - name: phoenix_user\n"
        .. '    ssh_authorized_keys: ["ssh-ed25519 AAAAC3Nza admin@host"]\n',
        fs.read(node.root .. "/var/lib/vz/snippets/phoenix-1020-user.yaml"))
      -- a template that names an unknown variable: the file and line
      kit.write(dir .. "/site/cloud-init/base.yaml", "#cloud-config\nhostname: {{nmae}}\n")
      rep = vmfix.run(vmfix.load(dir .. "/site"), node, { mode = "plan" })
      assert.matches("base.yaml line 2: unknown variable {{nmae}} (known: cidr, domain_name", rep.results["vm:1020"].error,
        1, true)
    end)

    it("finishes a template whose build stopped before the image was imported", function()
      node:run("qm", "create", "9000", "--name", "tmpl", "--tags", "phoenix", "--agent", "1")
      local rep = converge({ vmfix.template() }, nil, { mode = "plan" })
      assert.are.equal("ciuser,cores,ipconfig0,memory,nameserver,net0,searchdomain,image,template", fields(rep, "vm:9000"))
      rep = converge({ vmfix.template() })
      assert.are.equal(0, rep.counts.failed, vmfix.errors(rep))
      local m = vmfix.main(node, 9000)
      assert.are.same({ "1", "local-zfs:base-9000-disk-0,discard=on,size=2G", nil },
        { m.template, m.scsi0, m.unused0 })
    end)

    it("keeps a template with a cloud-init password in sync", function()
      local t = vmfix.template({ user_config = { username = "ops", password = "tmpl-pass" } })
      local rep, site = converge({ t })
      assert.are.equal(0, rep.counts.failed, vmfix.errors(rep))
      assert.matches("^%$5%$", vmfix.main(node, 9000).cipassword)
      rep = vmfix.run(site, node, { mode = "plan" })
      assert.are.equal(1, rep.counts.in_sync)
    end)

    it("renders phoenix's own agent.yaml when the site has no such template", function()
      node:run("pvesm", "set", "local", "--content", "iso,vztmpl,backup,snippets")
      local vm = vmfix.clone(1021, "agent", { cloud_init = { user_data = "agent.yaml" } })
      local rep = converge({ vmfix.template(), vm })
      assert.are.equal(0, rep.counts.failed, vmfix.errors(rep))
      local text = fs.read(node.root .. "/var/lib/vz/snippets/phoenix-1021-user.yaml")
      assert.matches("\nfqdn: agent.lab.example\n", text, 1, true)
      assert.matches("  - name: phoenix_user\n", text, 1, true)
      assert.matches('    ssh_authorized_keys: ["ssh-ed25519 AAAAC3Nza admin@host"]\n', text, 1, true)
      assert.matches("  - [systemctl, enable, --now, qemu-guest-agent]\n", text, 1, true)
    end)

    it("refuses a VM at its ID that is not the site's", function()
      node:run("qm", "create", "1007", "--name", "someone-else")
      local rep = converge({ vmfix.template(), vmfix.clone(1007, "mine") })
      assert.are.equal("failed", rep.results["vm:1007"].status)
      assert.matches("VM 1007 exists, is named 'someone-else' (not 'mine') and has no phoenix tag",
        rep.results["vm:1007"].error, 1, true)
      assert.are.equal("someone-else", vmfix.main(node, 1007).name)
    end)
  end)
end)
