"""pct: create, config files, lifecycle, set/pending, resize, snapshots,
templates, clones, destroy, exec, push/pull."""

import os
import re
import tempfile
import unittest

from simtest import SimTestCase, TEMPLATE


class Create(SimTestCase):
    def test_create_writes_real_config_and_volume(self):
        out = self.node.ok("pct", "create", 101, TEMPLATE, "--rootfs", "local-zfs:8",
                           "--hostname", "web", "--memory", 1024, "--unprivileged", 1,
                           "--net0", "name=eth0,bridge=vmbr0,ip=dhcp", "--tags", "Web,phoenix,web",
                           "--features", "nesting=1", "--description", "Web: 100%\nline 2")
        self.assertIn("extracting archive '/var/lib/vz/template/cache/", out)
        c = self.node.conf("lxc", 101)
        self.assertTrue(c.startswith("#Web%3A 100%25\n#line 2\narch: amd64\n"), c)
        self.assertIn("rootfs: local-zfs:subvol-101-disk-0,size=8G\n", c)
        self.assertIn("tags: phoenix;web\n", c)
        self.assertIn("unprivileged: 1\n", c)
        self.assertIn("ostype: debian\n", c)
        self.assertIn("swap: 512\n", c)
        net = re.search(r"^net0: (.*)$", c, re.M).group(1)
        self.assertRegex(net, r"^name=eth0,bridge=vmbr0,hwaddr=BC:24:11(:[0-9A-F]{2}){3},ip=dhcp,"
                              r"type=veth$")
        keys = [line.split(":")[0] for line in c.splitlines() if not line.startswith("#")]
        self.assertEqual(keys, sorted(keys))
        ds = self.node.zfs()["ds"]["rpool/data/subvol-101-disk-0"]
        self.assertEqual(ds["props"]["refquota"], str(8 * 1024 ** 3))
        self.assertEqual(self.node.ok("pct", "config", 101).splitlines()[0],
                         "arch: amd64")
        self.assertIn("description: Web%3A 100%25%0Aline 2\n", self.node.ok("pct", "config", 101))

    def test_create_defaults_and_storage_checks(self):
        r = self.node.run("pct", "create", 102, TEMPLATE)
        self.assertEqual(r.rc, 255)
        self.assertIn("storage: storage 'local' does not support container directories", r.err)
        self.node.ok("pct", "create", 102, TEMPLATE, "--storage", "local-zfs")
        c = self.node.conf("lxc", 102)
        self.assertIn("hostname: CT102\n", c)
        self.assertIn("rootfs: local-zfs:subvol-102-disk-0,size=4G\n", c)
        self.assertIn("memory: 512\n", c)
        r = self.node.run("pct", "create", 103, "local:vztmpl/nope.tar.zst", "--storage",
                          "local-zfs")
        self.assertFails(r, "can't find file 'local:vztmpl/nope.tar.zst'")
        r = self.node.run("pct", "create", 103, TEMPLATE, "--mp0", "local-zfs:1,mp=/x")
        self.assertFails(r, "mount points configured, but 'rootfs' not set - aborting")
        self.assertFalse(os.path.exists(self.node.conf_path("lxc", 103)))


class Lifecycle(SimTestCase):
    def setUp(self):
        super().setUp()
        self.node.ct(101)

    def test_start_stop_status_list(self):
        self.assertEqual(self.node.ok("pct", "status", 101), "status: stopped\n")
        self.assertFails(self.node.run("pct", "stop", 101), "CT 101 not running")
        self.assertFails(self.node.run("pct", "shutdown", 101), "CT 101 not running")
        self.assertFails(self.node.run("pct", "reboot", 101), "VM 101 not running")
        self.node.ok("pct", "start", 101)
        self.assertFails(self.node.run("pct", "start", 101), "CT 101 already running")
        self.assertEqual(self.node.ok("pct", "status", 101), "status: running\n")
        v = self.node.ok("pct", "status", 101, "--verbose")
        self.assertIn("status: running\n", v)
        self.assertIn("maxdisk: 8589934592\n", v)
        self.assertRegex(v, r"(?m)^pid: \d+$")
        lines = v.splitlines()
        self.assertEqual(lines, sorted(lines))
        self.node.ct(102)
        self.assertEqual(self.node.ok("pct", "list"),
                         "VMID       Status     Lock         Name                \n"
                         "101        running                 ct101               \n"
                         "102        stopped                 ct102               \n")
        self.node.ok("pct", "reboot", 101)
        self.node.ok("pct", "shutdown", 101)
        self.assertEqual(self.node.ok("pct", "status", 101), "status: stopped\n")

    def test_running_ct_changes_go_pending_then_apply_at_start(self):
        self.node.ok("pct", "start", 101)
        self.node.ok("pct", "set", 101, "--memory", 1024, "--nameserver", "1.1.1.1",
                     "--hostname", "renamed", "--delete", "ostype")
        c = self.node.conf("lxc", 101)
        self.assertIn("memory: 1024\n", c.split("[pve:pending]")[0])     # hotplugged
        self.assertIn("hostname: renamed\n", c.split("[pve:pending]")[0])  # fast-plugged
        self.assertIn("\n[pve:pending]\ndelete: ostype\nnameserver: 1.1.1.1\n", c)
        pend = self.node.ok("pct", "pending", 101)
        self.assertIn("new nameserver: 1.1.1.1\n", pend)
        self.assertIn("del ostype: debian\n", pend)
        self.assertIn("nameserver: 1.1.1.1\n", self.node.ok("pct", "config", 101))
        self.assertNotIn("nameserver", self.node.ok("pct", "config", 101, "--current"))
        self.node.ok("pct", "stop", 101)
        self.node.ok("pct", "start", 101)
        c = self.node.conf("lxc", 101)
        self.assertNotIn("[pve:pending]", c)
        self.assertIn("nameserver: 1.1.1.1\n", c)
        self.assertNotIn("ostype", c)

    def test_revert_and_readonly(self):
        self.node.ok("pct", "start", 101)
        self.node.ok("pct", "set", 101, "--nameserver", "1.1.1.1")
        self.node.ok("pct", "set", 101, "--revert", "nameserver")
        self.assertNotIn("nameserver", self.node.conf("lxc", 101))
        self.assertFails(self.node.run("pct", "set", 101, "--unprivileged", 1),
                         "unable to modify read-only option: 'unprivileged'")

    def test_resize(self):
        self.assertFails(self.node.run("pct", "resize", 101, "rootfs", "4G"),
                         "unable to shrink disk size")
        self.node.ok("pct", "resize", 101, "rootfs", "+2G")
        self.assertIn("rootfs: local-zfs:subvol-101-disk-0,size=10G\n", self.node.conf("lxc", 101))
        self.assertEqual(self.node.zfs()["ds"]["rpool/data/subvol-101-disk-0"]["props"]["refquota"],
                         str(10 * 1024 ** 3))
        self.node.ok("pct", "resize", 101, "rootfs", "12G")
        self.assertIn("size=12G", self.node.conf("lxc", 101))
        r = self.node.run("pct", "resize", 101, "rootfs", "12X")
        self.assertIn("size: value does not match the regex pattern", r.err)

    def test_mountpoint_add_and_remove_makes_unused(self):
        self.node.ok("pct", "set", 101, "--mp0", "local-zfs:2,mp=/data,backup=1")
        c = self.node.conf("lxc", 101)
        self.assertIn("mp0: local-zfs:subvol-101-disk-1,mp=/data,backup=1,size=2G\n", c)
        self.node.ok("pct", "set", 101, "--delete", "mp0")
        c = self.node.conf("lxc", 101)
        self.assertIn("unused0: local-zfs:subvol-101-disk-1\n", c)
        self.node.ok("pct", "set", 101, "--delete", "unused0")
        self.assertNotIn("subvol-101-disk-1", str(self.node.zfs()["ds"].keys()))

    def test_destroy(self):
        self.node.ok("pct", "set", 101, "--protection", 1)
        self.assertFails(self.node.run("pct", "destroy", 101),
                         "can't remove CT 101 - protection mode enabled")
        self.node.ok("pct", "set", 101, "--protection", 0)
        self.node.ok("pct", "start", 101)
        self.assertFails(self.node.run("pct", "destroy", 101),
                         "unable to destroy CT 101 - container is running")
        self.node.ok("pct", "destroy", 101, "--force")
        self.assertFalse(os.path.exists(self.node.conf_path("lxc", 101)))
        self.assertNotIn("rpool/data/subvol-101-disk-0", self.node.zfs()["ds"])
        self.assertEqual(self.node.ok("pct", "list"), "")


class Snapshots(SimTestCase):
    def setUp(self):
        super().setUp()
        self.node.ct(101)

    def test_tree_rollback_delete(self):
        self.node.ok("pct", "snapshot", 101, "first", "--description", "before upgrade\nmore")
        self.node.ok("pct", "set", 101, "--memory", 2048)
        self.node.ok("pct", "snapshot", 101, "second")
        c = self.node.conf("lxc", 101)
        self.assertIn("parent: second\n", c.split("\n[")[0])
        self.assertIn("\n[first]\n#before upgrade\n#more\narch: amd64\n", c)
        self.assertRegex(c, r"\[second\]\n(.*\n)*parent: first\n(.*\n)*snaptime: \d+\n")
        tree = self.node.ok("pct", "listsnapshot", 101).splitlines()
        self.assertEqual(len(tree), 3)
        self.assertRegex(tree[0], r"^`-> first {23}\d{4}-\d\d-\d\d \d\d:\d\d:\d\d {5}before upgrade$")
        self.assertRegex(tree[1], r"^ `-> second {21}\S+ \S+ {5}no-description$")
        self.assertEqual(tree[2], "  `-> current" + " " * 43 + "You are here!")
        # ZFS only rolls back to the most recent snapshot
        self.assertFails(self.node.run("pct", "rollback", 101, "first"),
                         "can't rollback, 'first' is not most recent snapshot on "
                         "'local-zfs:subvol-101-disk-0'")
        self.assertFails(self.node.run("pct", "rollback", 101, "nope"),
                         "snapshot 'nope' does not exist")
        self.node.ok("pct", "start", 101)
        self.node.ok("pct", "set", 101, "--memory", 4096)
        self.node.ok("pct", "rollback", 101, "second")   # stops the running CT
        self.assertEqual(self.node.ok("pct", "status", 101), "status: stopped\n")
        self.assertIn("memory: 2048\n", self.node.conf("lxc", 101))
        self.node.ok("pct", "delsnapshot", 101, "second")
        c = self.node.conf("lxc", 101)
        self.assertNotIn("[second]", c)
        self.assertIn("parent: first\n", c)
        self.node.ok("pct", "rollback", 101, "first", "--start")
        self.assertIn("memory: 512\n", self.node.conf("lxc", 101))
        self.assertEqual(self.node.ok("pct", "status", 101), "status: running\n")
        snaps = [n for n in self.node.zfs()["ds"] if "@" in n]
        self.assertEqual(snaps, ["rpool/data/subvol-101-disk-0@first"])

    def test_snapshot_checks(self):
        self.assertFails(self.node.run("pct", "snapshot", 101, "vzdump"),
                         "unable to use snapshot name 'vzdump' (reserved name)")
        self.assertFails(self.node.run("pct", "snapshot", 101, "current"),
                         "unable to use snapshot name 'current' (reserved name)")
        self.assertIn("snapname: invalid format - invalid configuration ID '1x'",
                      self.node.run("pct", "snapshot", 101, "1x").err)
        self.node.ok("pct", "snapshot", 101, "s1")
        self.assertFails(self.node.run("pct", "snapshot", 101, "s1"),
                         "snapshot name 's1' already used")
        # a CT on a raw dir volume cannot be snapshotted
        self.node.ok("pvesm", "add", "dir", "vmdir", "--path", "/srv/vm", "--content",
                     "images,rootdir")
        self.node.ok("pct", "create", 102, TEMPLATE, "--rootfs", "vmdir:1")
        self.assertIn("rootfs: vmdir:102/vm-102-disk-0.raw,size=1G\n", self.node.conf("lxc", 102))
        self.assertFails(self.node.run("pct", "snapshot", 102, "s1"),
                         "snapshot feature is not available")

    def test_config_snapshot_view(self):
        self.node.ok("pct", "snapshot", 101, "s1")
        self.node.ok("pct", "set", 101, "--memory", 1024)
        out = self.node.ok("pct", "config", 101, "--snapshot", "s1")
        self.assertIn("memory: 512\n", out)
        self.assertRegex(out, r"snaptime: \d+\n")


class TemplatesAndClones(SimTestCase):
    def setUp(self):
        super().setUp()
        self.node.ct(101)

    def test_full_clone_of_normal_ct_and_from_snapshot(self):
        out = self.node.ok("pct", "clone", 101, 102, "--hostname", "copy")
        self.assertEqual(out, "create full clone of mountpoint rootfs "
                              "(local-zfs:subvol-101-disk-0)\n")
        c1, c2 = self.node.conf("lxc", 101), self.node.conf("lxc", 102)
        self.assertIn("rootfs: local-zfs:subvol-102-disk-0,size=8G\n", c2)
        self.assertIn("hostname: copy\n", c2)
        mac = lambda c: re.search(r"hwaddr=([0-9A-F:]+)", c).group(1)
        self.assertNotEqual(mac(c1), mac(c2))
        self.node.ok("pct", "snapshot", 101, "s1")
        self.node.ok("pct", "set", 101, "--memory", 1024)
        self.node.ok("pct", "clone", 101, 103, "--snapname", "s1")
        self.assertIn("memory: 512\n", self.node.conf("lxc", 103))
        self.assertNotIn("[s1]", self.node.conf("lxc", 103))
        self.assertFails(self.node.run("pct", "clone", 101, 104, "--snapname", "nope"),
                         "snapshot 'nope' does not exist")
        self.assertFails(self.node.run("pct", "clone", 101, 104, "--full", 0),
                         "Linked clone feature for 'local-zfs:subvol-101-disk-0' is not available")
        self.assertFails(self.node.run("pct", "clone", 101, 102),
                         "unable to create CT 102: config file already exists")
        self.node.ok("pct", "start", 101)
        self.assertFails(self.node.run("pct", "clone", 101, 105),
                         "Cannot do full clones on a running container without snapshots")

    def test_template_and_linked_clone(self):
        self.node.ok("pct", "snapshot", 101, "s1")
        self.assertFails(self.node.run("pct", "template", 101),
                         "unable to create template, because CT contains snapshots")
        self.node.ok("pct", "delsnapshot", 101, "s1")
        self.node.ok("pct", "start", 101)
        self.assertFails(self.node.run("pct", "template", 101),
                         "you can't convert a CT to template if the CT is running")
        self.node.ok("pct", "stop", 101)
        self.node.ok("pct", "template", 101)
        c = self.node.conf("lxc", 101)
        self.assertIn("rootfs: local-zfs:basevol-101-disk-0,size=8G\n", c)
        self.assertIn("template: 1\n", c)
        self.assertFails(self.node.run("pct", "template", 101),
                         "you can't convert a template to a template")
        self.assertFails(self.node.run("pct", "start", 101), "you can't start a CT if it's a template")
        out = self.node.ok("pct", "clone", 101, 110, "--hostname", "linked")
        self.assertEqual(out, "create linked clone of mount point rootfs "
                              "(local-zfs:basevol-101-disk-0)\n")
        self.assertIn("rootfs: local-zfs:basevol-101-disk-0/subvol-110-disk-0,size=8G\n",
                      self.node.conf("lxc", 110))
        ds = self.node.zfs()["ds"]["rpool/data/subvol-110-disk-0"]
        self.assertEqual(ds["origin"], "rpool/data/basevol-101-disk-0@__base__")
        self.node.ok("pct", "clone", 101, 111, "--full")
        self.assertIn("rootfs: local-zfs:subvol-111-disk-0,size=8G\n", self.node.conf("lxc", 111))
        self.assertFails(self.node.run("pct", "clone", 101, 112, "--storage", "local-zfs",
                                       "--full", 0),
                         "parameter 'storage' not allowed for linked clones")
        self.assertFails(self.node.run("pct", "destroy", 101),
                         "base volume 'basevol-101-disk-0' is still in use by linked cloned")
        self.node.ok("pct", "destroy", 110)
        self.node.ok("pct", "destroy", 101)
        self.assertNotIn("rpool/data/basevol-101-disk-0", self.node.zfs()["ds"])


class Devices(SimTestCase):
    init_args = ("--sysfs", "gpus=1,vendor=nvidia")

    def test_device_passthrough_needs_the_host_device(self):
        self.node.ct(101)
        self.node.ok("pct", "set", 101, "--dev0", "/dev/nvidia0", "--dev1", "/dev/nvidiactl,gid=44")
        c = self.node.conf("lxc", 101)
        self.assertIn("dev0: /dev/nvidia0\n", c)
        self.assertIn("dev1: /dev/nvidiactl,gid=44\n", c)
        self.assertFails(self.node.run("pct", "set", 101, "--dev2", "/dev/nvidia7"),
                         "Path /dev/nvidia7 does not exist")


class ExecPushPull(SimTestCase):
    def setUp(self):
        super().setUp()
        self.node.ct(101)

    def test_exec_records_and_follows_rules(self):
        r = self.node.run("pct", "exec", 101, "--", "true")
        self.assertEqual(r.rc, 1)
        self.assertIn("Failed to get init pid", r.err)
        self.node.ok("pct", "start", 101)
        with open(os.path.join(self.node.simdir, "exec-rules.json"), "w") as f:
            f.write('[{"guest": 101, "match": "systemctl is-active *", "stdout": "active\\n"},'
                    ' {"argv": ["apt-get", "**"], "exit": 100, "stderr": "E: locked\\n"}]')
        r = self.node.run("pct", "exec", 101, "--", "systemctl", "is-active", "nginx")
        self.assertEqual((r.rc, r.out), (0, "active\n"))
        r = self.node.run("pct", "exec", 101, "--", "apt-get", "install", "-y", "nginx")
        self.assertEqual((r.rc, r.err), (100, "E: locked\n"))
        r = self.node.run("pct", "exec", 101, "--", "unknown-cmd", "--flag")
        self.assertEqual((r.rc, r.out, r.err), (0, "", ""))
        r = self.node.run("pct", "exec", 101, "--", "sh", "-s", stdin=b"echo hi\n")
        self.assertEqual(r.rc, 0)
        log = self.node.jsonl("exec.log")
        self.assertEqual([e["argv"] for e in log],
                         [["systemctl", "is-active", "nginx"], ["apt-get", "install", "-y",
                                                                "nginx"],
                          ["unknown-cmd", "--flag"], ["sh", "-s"]])
        self.assertEqual([e["exit"] for e in log], [0, 100, 0, 0])
        self.assertEqual(log[0]["source"], "rule:0")
        self.assertEqual(log[3]["stdin_bytes"], 8)
        r = self.node.run("pct", "exec", 101, "ls", "-l")
        self.assertIn("Unknown option: l", r.err)

    def test_push_pull_fake_fs(self):
        with tempfile.NamedTemporaryFile("w", delete=False) as f:
            f.write("feature-x v1\n")
        try:
            self.assertFails(self.node.run("pct", "push", 101, f.name, "/etc/marker"),
                             "can only push files to a running CT")
            self.node.ok("pct", "start", 101)
            self.assertFails(self.node.run("pct", "push", 101, f.name, "/etc/phoenix/marker"),
                             "failed to create file: /etc/phoenix/marker: No such file or directory")
            self.node.ok("pct", "exec", 101, "--", "mkdir", "-p", "/etc/phoenix")
            self.node.ok("pct", "push", 101, f.name, "/etc/phoenix/marker", "--perms", "600")
            self.assertEqual(self.node.ok("pct", "exec", 101, "--", "cat", "/etc/phoenix/marker"),
                             "feature-x v1\n")
            self.assertEqual(self.node.run("pct", "exec", 101, "--", "test", "-f",
                                           "/etc/phoenix/marker").rc, 0)
            self.assertEqual(self.node.run("pct", "exec", 101, "--", "test", "-f",
                                           "/etc/phoenix/other").rc, 1)
            dest = f.name + ".back"
            self.node.ok("pct", "pull", 101, "/etc/phoenix/marker", dest)
            with open(dest) as g:
                self.assertEqual(g.read(), "feature-x v1\n")
            os.unlink(dest)
            self.assertFails(self.node.run("pct", "pull", 101, "/nope", dest),
                             "failed to open /nope: No such file or directory")
            # the fake filesystem persists across restarts
            self.node.ok("pct", "reboot", 101)
            self.assertEqual(self.node.ok("pct", "exec", 101, "--", "ls", "/etc/phoenix"),
                             "marker\n")
        finally:
            os.unlink(f.name)


if __name__ == "__main__":
    unittest.main()
