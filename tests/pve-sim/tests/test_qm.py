"""qm: create (disks, cloud-init, net), config/pending, lifecycle, guest
agent, importdisk, snapshots, templates and clones, resize, PCI checks."""

import os
import re
import tempfile
import unittest

from simtest import SimTestCase, fixture


class Create(SimTestCase):
    def test_create_full_vm(self):
        with tempfile.NamedTemporaryFile("w", suffix=".pub", delete=False) as f:
            f.write("ssh-ed25519 AAAAC3Nza admin@host\n")
        try:
            self.node.ok("qm", "create", 200, "--name", "db", "--memory", 4096, "--cores", 2,
                         "--net0", "virtio,bridge=vmbr0,firewall=1",
                         "--scsi0", "local-zfs:32,iothread=1,discard=on",
                         "--scsihw", "virtio-scsi-single", "--ide2", "local-zfs:cloudinit",
                         "--ciuser", "admin", "--cipassword", "s3cret", "--sshkeys", f.name,
                         "--ipconfig0", "ip=10.0.0.5/24,gw=10.0.0.1", "--agent", "enabled=1",
                         "--tags", "phoenix;db", "--onboot", 1)
        finally:
            os.unlink(f.name)
        c = self.node.conf("qemu", 200)
        self.assertIn("scsi0: local-zfs:vm-200-disk-0,discard=on,iothread=1,size=32G\n", c)
        self.assertIn("ide2: local-zfs:vm-200-cloudinit,media=cdrom\n", c)
        self.assertIn("boot: order=scsi0;net0\n", c)
        self.assertIn("sshkeys: ssh-ed25519%20AAAAC3Nza%20admin%40host%0A\n", c)
        self.assertIn("tags: db;phoenix\n", c)
        self.assertRegex(c, r"net0: virtio=BC:24:11(:[0-9A-F]{2}){3},bridge=vmbr0,firewall=1\n")
        self.assertRegex(c, r"cipassword: \$5\$\S+\n")
        self.assertRegex(c, r"smbios1: uuid=[0-9a-f-]{36}\n")
        self.assertRegex(c, r"vmgenid: [0-9a-f-]{36}\n")
        self.assertRegex(c, r"meta: creation-qemu=[\d.]+,ctime=\d+\n")
        out = self.node.ok("qm", "config", 200)
        self.assertIn("cipassword: **********\n", out)
        vol = self.node.zfs()["ds"]["rpool/data/vm-200-disk-0"]
        self.assertEqual((vol["type"], vol["volsize"]), ("volume", 32 * 1024 ** 3))
        self.assertNotIn("refreservation", vol["props"])   # local-zfs is sparse
        self.assertIn("rpool/data/vm-200-cloudinit", self.node.zfs()["ds"])

    def test_create_checks(self):
        self.assertFails(self.node.run("qm", "create", 201, "--scsi0", "local:8"),
                         "storage 'local' does not support vm images")
        self.assertFails(self.node.run("qm", "create", 201, "--scsi0", "nosuch:8"),
                         "storage 'nosuch' does not exist")
        self.assertFails(self.node.run("qm", "create", 201, "--scsi0", "local-zfs:vm-201-disk-9"),
                         "volume 'local-zfs:vm-201-disk-9' does not exist")
        self.assertFalse(os.path.exists(self.node.conf_path("qemu", 201)))
        self.assertFails(self.node.run("qm", "create", 201, "--sshkeys", "/nonexistent.pub"),
                         "unable to open file '/nonexistent.pub' - No such file or directory")

    def test_import_from_and_importdisk(self):
        img = os.path.join(self.node.base, "cloud.qcow2")
        with open(img, "wb") as f:
            f.write(b"QFI\xfb" + b"\0" * 20 + (2 * 1024 ** 3).to_bytes(8, "big") + b"\0" * 64)
        self.node.ok("qm", "create", 202, "--scsi0", "local-zfs:0,import-from=%s" % img)
        self.assertIn("scsi0: local-zfs:vm-202-disk-0,size=2G\n", self.node.conf("qemu", 202))
        out = self.node.ok("qm", "importdisk", 202, img, "local-zfs")
        self.assertTrue(out.startswith("importing disk '%s' to VM 202 ...\n" % img))
        self.assertTrue(out.endswith("Successfully imported disk as "
                                     "'unused0:local-zfs:vm-202-disk-1'\n"))
        self.assertIn("unused0: local-zfs:vm-202-disk-1\n", self.node.conf("qemu", 202))
        self.node.ok("qm", "set", 202, "--scsi1", "local-zfs:vm-202-disk-1")  # in use again
        c = self.node.conf("qemu", 202)
        self.assertIn("scsi1: local-zfs:vm-202-disk-1,size=2G\n", c)
        self.assertNotIn("unused0", c)
        self.assertFails(self.node.run("qm", "importdisk", 202, "/no/such.img", "local-zfs"),
                         "source '/no/such.img' does not exist")


class Lifecycle(SimTestCase):
    def setUp(self):
        super().setUp()
        self.node.vm(200, "--agent", "enabled=1", "--ipconfig0", "ip=10.1.1.9/24")

    def test_list_status(self):
        self.node.vm(201)
        self.node.ok("qm", "start", 201)
        out = self.node.ok("qm", "list").splitlines()
        self.assertEqual(out[0], "      VMID NAME                 STATUS     MEM(MB)    "
                                 "BOOTDISK(GB) PID       ")
        self.assertEqual(out[1], "       200 vm200                stopped    2048       "
                                 "       32.00 0         ")
        self.assertRegex(out[2], r"^       201 vm201                running    2048       "
                                 r"       32\.00 \d+ +$")
        self.assertEqual(self.node.ok("qm", "status", 200), "status: stopped\n")
        v = self.node.ok("qm", "status", 201, "--verbose")
        self.assertIn("qmpstatus: running\n", v)
        self.assertIn("proxmox-support:\n\tbackup-max-workers: 1\n", v)
        self.assertIn("nics:\n\ttap201i0:\n\t\tnetin: 0\n", v)
        self.assertNotIn("\ncpu:", "\n" + v)

    def test_start_stop(self):
        self.node.ok("qm", "stop", 200)           # stopping a stopped VM is fine
        self.node.ok("qm", "start", 200)
        self.assertFails(self.node.run("qm", "start", 200), "VM 200 already running")
        self.assertFails(self.node.run("qm", "destroy", 200), "VM 200 is running - destroy failed")
        self.node.ok("qm", "reboot", 200)
        self.node.ok("qm", "shutdown", 200)
        self.assertFails(self.node.run("qm", "reboot", 200), "VM 200 not running")

    def test_pending_while_running(self):
        self.node.ok("qm", "start", 200)
        self.node.ok("qm", "set", 200, "--memory", 4096, "--name", "renamed",
                     "--net1", "virtio,bridge=vmbr1", "--ciuser", "bob")
        c = self.node.conf("qemu", 200)
        main, pending = c.split("\n[PENDING]\n")
        self.assertIn("name: renamed\n", main)       # fast-plug
        self.assertIn("net1: virtio=", main)          # network hotplug
        self.assertIn("memory: 4096\n", pending)      # no memory hotplug by default
        self.assertIn("ciuser: bob\n", pending)
        p = self.node.ok("qm", "pending", 200)
        self.assertIn("cur memory: 2048\nnew memory: 4096\n", p)
        self.assertIn("new ciuser: bob\n", p)
        self.assertIn("memory: 4096\n", self.node.ok("qm", "config", 200))
        self.assertIn("memory: 2048\n", self.node.ok("qm", "config", 200, "--current"))
        self.node.ok("qm", "stop", 200)
        self.node.ok("qm", "start", 200)
        c = self.node.conf("qemu", 200)
        self.assertNotIn("[PENDING]", c)
        self.assertIn("memory: 4096\n", c)

    def test_delete_disk_becomes_unused(self):
        self.node.ok("qm", "set", 200, "--scsi1", "local-zfs:4")
        self.node.ok("qm", "set", 200, "--delete", "scsi1")
        c = self.node.conf("qemu", 200)
        self.assertIn("unused0: local-zfs:vm-200-disk-1\n", c)
        r = self.node.run("qm", "set", 200, "--delete", "serial0")
        self.assertEqual(r.rc, 0)
        self.assertIn("cannot delete 'serial0' - not set in current configuration!", r.err)
        self.node.ok("qm", "set", 200, "--delete", "unused0")
        self.assertNotIn("rpool/data/vm-200-disk-1", self.node.zfs()["ds"])

    def test_guest_agent(self):
        self.assertFails(self.node.run("qm", "guest", "exec", 200, "--", "uptime"),
                         "VM 200 is not running")
        self.node.ok("qm", "set", 200, "--agent", "0")
        self.node.ok("qm", "start", 200)
        self.assertFails(self.node.run("qm", "agent", 200, "ping"),
                         "No QEMU guest agent configured")
        self.node.ok("qm", "set", 200, "--agent", "enabled=1")  # pending until restart
        self.assertFails(self.node.run("qm", "agent", 200, "ping"),
                         "No QEMU guest agent configured")
        self.node.ok("qm", "stop", 200)
        self.node.settings(agent_delay_s=30)
        self.node.ok("qm", "start", 200)
        self.assertFails(self.node.run("qm", "guest", "exec", 200, "--", "uptime"),
                         "QEMU guest agent is not running")
        self.node.settings(agent_delay_s=0)
        self.assertEqual(self.node.ok("qm", "agent", 200, "ping"), "")
        with open(os.path.join(self.node.simdir, "exec-rules.json"), "w") as f:
            f.write('[{"type": "qemu", "argv": ["cloud-init", "status"], "stdout": "status: done\\n"},'
                    ' {"argv": ["false"], "exit": 1, "stderr": "failed\\n"}]')
        out = self.node.ok("qm", "guest", "exec", 200, "--", "cloud-init", "status")
        self.assertEqual(out, '{\n   "exitcode" : 0,\n   "exited" : 1,\n'
                              '   "out-data" : "status: done\\n"\n}\n')
        r = self.node.run("qm", "guest", "exec", 200, "false")
        self.assertEqual(r.rc, 0)    # the guest's exit code is reported, not returned
        self.assertIn('"exitcode" : 1', r.out)
        self.assertIn('"err-data" : "failed\\n"', r.out)
        self.assertEqual(self.node.ok("qm", "guest", "cmd", 200, "fsfreeze-status"), "thawed\n")
        ifs = self.node.ok("qm", "guest", "cmd", 200, "network-get-interfaces")
        self.assertIn('"ip-address" : "10.1.1.9"', ifs)
        self.assertIn("not-a-cmd", self.node.run("qm", "guest", "cmd", 200, "not-a-cmd").err)
        log = self.node.jsonl("exec.log")
        self.assertEqual([(e["type"], e["argv"], e["exit"]) for e in log],
                         [("qemu", ["cloud-init", "status"], 0), ("qemu", ["false"], 1)])


    def test_guest_exec_install_writes_files(self):
        self.node.ok("qm", "set", 200, "--agent", "1")
        self.node.ok("qm", "start", 200)
        out = self.node.ok("qm", "guest", "exec", 200, "--pass-stdin", 1, "--", "install", "-D",
                           "-m", "0700", "/dev/stdin", "/var/lib/x/run.sh", stdin=b"echo hi\n")
        self.assertIn('"exitcode" : 0', out)
        p = os.path.join(self.node.simdir, "guests", "200", "fs", "var/lib/x/run.sh")
        self.assertEqual(os.stat(p).st_mode & 0o777, 0o700)
        out = self.node.ok("qm", "guest", "exec", 200, "--", "cat", "/var/lib/x/run.sh")
        self.assertIn('"out-data" : "echo hi\\n"', out)
        out = self.node.ok("qm", "guest", "exec", 200, "--pass-stdin", 1, "--", "install",
                           "/dev/stdin", "/no/such/dir/f", stdin=b"x")
        self.assertIn('"exitcode" : 1', out)
        self.assertEqual(self.node.jsonl("exec.log")[0]["stdin_bytes"], 8)


class SnapshotsTemplatesClones(SimTestCase):
    def setUp(self):
        super().setUp()
        self.node.vm(200)

    def test_snapshot_vmstate_and_rollback(self):
        self.node.ok("qm", "start", 200)
        self.node.ok("qm", "snapshot", 200, "live", "--vmstate", 1, "--description", "with RAM")
        c = self.node.conf("qemu", 200)
        self.assertIn("vmstate: local-zfs:vm-200-state-live\n", c)
        self.node.ok("qm", "stop", 200)
        self.node.ok("qm", "rollback", 200, "live")
        self.assertEqual(self.node.ok("qm", "status", 200), "status: running\n")
        self.node.ok("qm", "snapshot", 200, "plain")
        self.node.ok("qm", "rollback", 200, "plain")
        self.assertEqual(self.node.ok("qm", "status", 200), "status: stopped\n")
        self.assertFails(self.node.run("qm", "snapshot", 200, "Pending"),
                         "unable to use snapshot name 'Pending' (reserved name)")
        self.node.ok("qm", "delsnapshot", 200, "plain")
        self.node.ok("qm", "delsnapshot", 200, "live")
        self.assertNotIn("rpool/data/vm-200-state-live", self.node.zfs()["ds"])

    def test_template_clones(self):
        self.node.ok("qm", "snapshot", 200, "s1")
        self.assertFails(self.node.run("qm", "template", 200),
                         "unable to create template, because VM contains snapshots")
        # cloning from a snapshot on ZFS: neither linked nor full clone is possible
        self.assertFails(self.node.run("qm", "clone", 200, 300, "--snapname", "s1"),
                         "Full clone feature is not supported for drive 'scsi0'")
        self.assertFails(self.node.run("qm", "clone", 200, 300, "--snapname", "s1", "--full", 0),
                         "Linked clone feature is not supported for drive 'scsi0'")
        self.node.ok("qm", "delsnapshot", 200, "s1")
        self.node.ok("qm", "template", 200)
        self.assertIn("scsi0: local-zfs:base-200-disk-0,size=32G\n", self.node.conf("qemu", 200))
        self.assertFails(self.node.run("qm", "start", 200), "you can't start a vm if it's a template")
        self.assertFails(self.node.run("qm", "snapshot", 200, "s2"),
                         "you can't take a snapshot if it's a template")
        out = self.node.ok("qm", "clone", 200, 301, "--name", "linked")
        self.assertEqual(out, "create linked clone of drive scsi0 (local-zfs:base-200-disk-0)\n")
        c = self.node.conf("qemu", 301)
        self.assertIn("scsi0: local-zfs:base-200-disk-0/vm-301-disk-0,size=32G\n", c)
        self.assertIn("name: linked\n", c)
        self.assertNotIn("template", c)
        self.node.ok("qm", "clone", 200, 302, "--full")
        c2 = self.node.conf("qemu", 302)
        self.assertIn("name: Copy-of-VM-vm200\n", c2)
        self.assertIn("scsi0: local-zfs:vm-302-disk-0,size=32G\n", c2)
        uuid = lambda c: re.search(r"smbios1: uuid=(\S+)", c).group(1)
        self.assertNotEqual(uuid(self.node.conf("qemu", 200)), uuid(c2))

    def test_clone_from_snapshot_on_qcow2_dir(self):
        self.node.ok("pvesm", "add", "dir", "vmdir", "--path", "/srv/vm", "--content", "images")
        self.node.ok("qm", "create", 210, "--scsi0", "vmdir:4,format=qcow2")
        self.assertIn("scsi0: vmdir:210/vm-210-disk-0.qcow2,size=4G\n", self.node.conf("qemu", 210))
        self.node.ok("qm", "snapshot", 210, "s1")
        out = self.node.ok("qm", "clone", 210, 211, "--snapname", "s1")
        self.assertIn("create full clone of drive scsi0 (vmdir:210/vm-210-disk-0.qcow2)", out)
        self.assertIn("scsi0: vmdir:211/vm-211-disk-0.qcow2,size=4G\n", self.node.conf("qemu", 211))
        self.node.ok("qm", "rollback", 210, "s1")

    def test_resize_and_destroy(self):
        self.assertFails(self.node.run("qm", "resize", 200, "scsi0", "16G"),
                         "shrinking disks is not supported")
        self.assertFails(self.node.run("qm", "resize", 200, "scsi1", "+1G"),
                         "disk 'scsi1' does not exist")
        self.node.ok("qm", "resize", 200, "scsi0", "+8G")
        self.assertIn("scsi0: local-zfs:vm-200-disk-0,size=40G\n", self.node.conf("qemu", 200))
        self.assertEqual(self.node.zfs()["ds"]["rpool/data/vm-200-disk-0"]["volsize"],
                         40 * 1024 ** 3)
        self.node.ok("pvesm", "alloc", "local-zfs", 200, "vm-200-disk-7", "1G")
        self.node.ok("qm", "destroy", 200)
        ds = self.node.zfs()["ds"]
        self.assertFalse([n for n in ds if "-200-" in n])   # unreferenced disks go too


class PCI(SimTestCase):
    init_args = ("--sysfs", "gpus=2,vendor=nvidia")

    def test_hostpci_checks_fake_sysfs(self):
        self.assertTrue(os.path.exists(os.path.join(self.node.root, "dev/nvidia1")))
        grp = os.path.join(self.node.root, "sys/kernel/iommu_groups/10/devices/0000:01:00.0")
        self.assertTrue(os.path.islink(grp))
        drv = os.readlink(os.path.join(self.node.root, "sys/bus/pci/devices/0000:01:00.0/driver"))
        self.assertTrue(drv.endswith("drivers/nvidia"))
        self.node.vm(200, "--hostpci0", "0000:02:00,pcie=1,x-vga=1")
        self.node.ok("qm", "start", 200)
        self.node.ok("qm", "stop", 200)
        self.node.ok("qm", "set", 200, "--hostpci1", "0000:07:00.0")
        self.assertFails(self.node.run("qm", "start", 200),
                         "no pci device info for device '0000:07:00.0'")


class NoIOMMU(SimTestCase):
    def test_hostpci_without_iommu(self):
        self.node.vm(200, "--hostpci0", "01:00.0")
        self.assertFails(self.node.run("qm", "start", 200),
                         "cannot prepare PCI pass-through, IOMMU not present")


class Formats(SimTestCase):
    def test_pending_matches_upstream_formatter(self):
        self.node.write_conf("qemu", 120, fixture("qemu-parse", "input", "sections.conf"))
        self.assertEqual(self.node.ok("qm", "pending", 120), fixture("qm-pending.sections.txt"))

    def test_description_encoding(self):
        ref = fixture("description-encoding.txt").split("\n")
        raw = [ref[1], ref[2], ref[3]]
        cli_line = ref[5]
        self.node.vm(200)
        self.node.ok("qm", "set", 200, "--description",
                     "Web server: nginx 100% \u2713\n# not a key: value\nsecond line\tTAB")
        c = self.node.conf("qemu", 200)
        self.assertEqual(c.splitlines()[:3], raw)
        self.assertIn(cli_line + "\n", self.node.ok("qm", "config", 200))


if __name__ == "__main__":
    unittest.main()
