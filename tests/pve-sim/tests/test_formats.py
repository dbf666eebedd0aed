"""Output and file formats compared with real Proxmox material (fixtures/):
config round trips, listsnapshot trees, pct/qm list, pvesm status, pvesh."""

import glob
import json
import os
import re
import unittest

from simtest import SimTestCase, fixture, FIXTURES

from pvesim import conf, pvesm
from pvesim.pct import print_snapshot_tree


class ConfigRoundTrip(unittest.TestCase):
    def test_upstream_qemu_pairs(self):
        inputs = sorted(glob.glob(os.path.join(FIXTURES, "qemu-parse", "input", "*.conf")))
        self.assertGreaterEqual(len(inputs), 10)
        for path in inputs:
            name = os.path.basename(path)
            exp = os.path.join(FIXTURES, "qemu-parse", "expected", name)
            text = fixture("qemu-parse", "input", name)
            want = fixture("qemu-parse", "expected", name) if os.path.exists(exp) else text
            c, warnings = conf.parse(text, "qemu", 8006)
            self.assertEqual(conf.write(c, "qemu"), want, name)
            err = exp + ".strict.error"
            if os.path.exists(err):
                self.assertEqual(warnings[0], fixture(err), name)
            else:
                self.assertEqual(warnings, [], name)

    def test_lxc_configs_are_canonical(self):
        files = sorted(glob.glob(os.path.join(FIXTURES, "lxc", "*.conf")))
        self.assertGreaterEqual(len(files), 20)
        for path in files:
            with open(path) as f:
                text = f.read()
            c, warnings = conf.parse(text, "lxc", 101)
            self.assertEqual(warnings, [], path)
            self.assertEqual(conf.write(c, "lxc"), text, path)

    def test_lxc_raw_keys_keep_order(self):
        c, _ = conf.parse(fixture("lxc", "123.conf"), "lxc", 123)
        self.assertEqual(c["lxc"][0], ["lxc.cgroup2.devices.allow", "c 226:0 rwm"])
        self.assertEqual(len(c["lxc"]), 4)
        c, _ = conf.parse("arch: amd64\nlxc.apparmor.profile = unconfined\nlxc.mount.auto:\n",
                          "lxc", 1)
        self.assertEqual(c["lxc"], [["lxc.apparmor.profile", "unconfined"],
                                    ["lxc.mount.auto", ""]])

    def test_strict_parse_raises(self):
        from pvesim.errors import Invalid
        with self.assertRaises(Invalid):
            conf.parse("memory: x\n", "qemu", 1, strict=True)


class SnapshotTree(unittest.TestCase):
    def setUp(self):
        os.environ["TZ"] = "UTC"
        import time
        time.tzset()

    def test_matches_upstream_print_snapshot_tree(self):
        for name in ("lxc-104", "qemu-snapshots"):
            lst = json.loads(fixture("snaplist.%s.json" % name))
            out = []
            print_snapshot_tree(lst, out)
            exp = "listsnapshot.lxc-delete-104.conf.txt" if name == "lxc-104" else \
                "listsnapshot.qemu-snapshots.conf.txt"
            self.assertEqual("".join(out), fixture(exp))

    def test_real_capture_layout(self):
        for cap in ("pct-listsnapshot.vzdump.txt", "qm-listsnapshot.txt"):
            lines = fixture(cap).splitlines()
            m = re.match(r"`-> (\S+) +(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) +(.*)", lines[0])
            import calendar
            ts = calendar.timegm(tuple(int(x) for x in re.split(r"[- :]", m.group(2))) +
                                 (0, 0, 0))
            out = []
            print_snapshot_tree([{"name": m.group(1), "snaptime": ts, "description": m.group(3)},
                                 {"name": "current", "parent": m.group(1),
                                  "description": "You are here!"}], out)
            self.assertEqual("".join(out).splitlines(), lines)


class PvesmStatusFormat(unittest.TestCase):
    def test_matches_upstream_formatter(self):
        rows = json.loads(fixture("pvesm-status.input.json"))
        for r in rows:
            r["active"], r["enabled"] = bool(r["active"]), bool(r["enabled"])
        self.assertEqual(pvesm.format_status(rows), fixture("pvesm-status.output.txt"))

    def test_matches_real_capture(self):
        lines = fixture("pvesm-status.real.txt").splitlines()
        rows = []
        for line in lines[1:]:
            f = line.split()
            rows.append({"storage": f[0], "type": f[1], "active": f[2] == "active",
                         "enabled": f[2] != "disabled", "total": int(f[3]) * 1024,
                         "used": int(f[4]) * 1024, "avail": int(f[5]) * 1024})
        self.assertEqual(pvesm.format_status(rows).splitlines(), lines)


class ListFormats(SimTestCase):
    def test_pct_list_header_and_rows(self):
        cap = fixture("pct-list.txt").splitlines()
        self.node.ct(102, "--hostname", "openclaw")
        self.node.ct(105, "--hostname", "picoclaw")
        self.node.ok("pct", "start", 105)
        self.assertEqual(self.node.ok("pct", "list").splitlines(), cap)

    def test_qm_list_against_capture(self):
        cap = fixture("qm-list+pct-list.txt").splitlines()
        self.node.ok("qm", "create", 102, "--name", "haos18-2", "--memory", 4096,
                     "--scsi0", "local-zfs:32")
        self.node.ok("qm", "start", 102)
        out = self.node.ok("qm", "list").splitlines()
        # the capture's author trimmed the PID column
        self.assertEqual(out[0].rstrip()[:len(cap[0])], cap[0])
        self.assertTrue(out[1].startswith(cap[1]))
        self.node.ct(101, "--hostname", "pihole")
        self.node.ok("pct", "start", 101)
        self.assertEqual([line.rstrip() for line in self.node.ok("pct", "list").splitlines()],
                         cap[-2:])


class ConfigCommand(SimTestCase):
    def test_pct_config_of_real_config(self):
        text = fixture("lxc", "123.conf")
        self.node.write_conf("lxc", 123, text)
        self.assertEqual(self.node.ok("pct", "config", 123), text)   # lxc.* pairs last
        self.assertIn("123        stopped                 gpu", self.node.ok("pct", "list"))


class Pvesh(SimTestCase):
    def test_cluster_resources_json(self):
        self.node.ct(101, "--tags", "db,storage")
        self.node.vm(200)
        self.node.ok("qm", "template", 200)
        self.node.ok("pct", "set", 101, "--lock", "backup")
        self.node.ok("pct", "start", 101, "--skiplock")
        out = self.node.ok("pvesh", "get", "/cluster/resources", "--type", "vm",
                           "--output-format", "json")
        self.assertEqual(out.count("\n"), 1)
        data = json.loads(out)
        self.assertEqual(out, json.dumps(data, sort_keys=True, separators=(",", ":")) + "\n")
        ct, vm = data
        self.assertEqual((ct["id"], ct["type"], ct["vmid"], ct["status"], ct["lock"],
                          ct["tags"], ct["template"], ct["node"]),
                         ("lxc/101", "lxc", 101, "running", "backup", "db;storage", 0, "pve"))
        self.assertEqual((vm["id"], vm["template"], vm["maxdisk"], vm["maxmem"]),
                         ("qemu/200", 1, 32 * 1024 ** 3, 2048 * 1024 ** 2))
        self.assertNotIn("lock", vm)
        for key in ("cpu", "maxcpu", "mem", "disk", "uptime", "netin", "netout", "diskread",
                    "diskwrite", "name"):
            self.assertIn(key, ct)
        everything = json.loads(self.node.ok("pvesh", "get", "/cluster/resources",
                                             "--output-format", "json"))
        self.assertEqual(sorted({e["type"] for e in everything}),
                         ["lxc", "node", "qemu", "sdn", "storage"])
        self.assertIn("storage/pve/local-zfs", [e["id"] for e in everything])
        r = self.node.run("pvesh", "get", "/cluster/resources", "--type", "vms")
        self.assertIn("type: value 'vms' does not have a value in the enumeration "
                      "'vm, storage, node, sdn'", r.err)

    def test_other_paths(self):
        self.node.ct(100)
        self.assertEqual(self.node.ok("pvesh", "get", "/cluster/nextid", "--output-format",
                                      "json"), '"101"\n')
        cfg = json.loads(self.node.ok("pvesh", "get", "/nodes/pve/lxc/100/config",
                                      "--output-format", "json"))
        self.assertEqual(cfg["memory"], 512)
        self.assertRegex(cfg["digest"], r"^[0-9a-f]{40}$")
        pretty = self.node.ok("pvesh", "get", "/nodes/pve/lxc/100/status/current",
                              "--output-format", "json-pretty")
        self.assertIn('   "status" : "stopped",\n', pretty)
        self.assertFails(self.node.run("pvesh", "get", "/nodes/pve/nothing"),
                         "no such resource '/nodes/pve/nothing'")


class PvesmCommands(SimTestCase):
    def test_add_set_status_alloc_list(self):
        st = self.node.ok("pvesm", "status").splitlines()
        self.assertEqual(st[0], "Name             Type     Status     Total (KiB)      Used (KiB) "
                                "Available (KiB)        %")
        self.assertRegex(st[2], r"^local-zfs     zfspool     active +\d+ +\d+ +\d+ +\d+\.\d\d%$")
        self.assertFails(self.node.run("pvesm", "add", "zfspool", "tank", "--pool", "tank/data"),
                         "create storage failed: could not activate storage 'tank', zfs error: "
                         "cannot import 'tank': no such pool available")
        r = self.node.run("pvesm", "add", "dir", "bad", "--path", "/x", "--pool", "y")
        self.assertIn("pool: unexpected property 'pool'", r.err)
        r = self.node.run("pvesm", "add", "dir", "bad")
        self.assertIn("path: property is missing and it is not optional", r.err)
        self.node.ok("zpool", "create", "tank", "mirror", "sdb", "sdc")
        self.node.ok("zfs", "create", "tank/data")
        self.node.ok("pvesm", "add", "zfspool", "tank", "--pool", "tank/data", "--content",
                     "images,rootdir", "--sparse", 1)
        self.assertFails(self.node.run("pvesm", "add", "dir", "tank", "--path", "/x"),
                         "create storage failed: storage ID 'tank' already defined")
        self.node.ok("pvesm", "set", "tank", "--disable", 1)
        with open(os.path.join(self.node.root, "etc/pve/storage.cfg")) as f:
            cfg = f.read()
        self.assertIn("zfspool: tank\n\tdisable\n\tpool tank/data\n\tcontent images,rootdir\n"
                      "\tsparse 1\n", cfg)
        self.assertRegex(self.node.ok("pvesm", "status"), r"\ntank +zfspool +disabled +0 +0 +0 +N/A\n")
        self.node.ok("pvesm", "set", "tank", "--delete", "disable")
        out = self.node.ok("pvesm", "alloc", "tank", 101, "vm-101-disk-0", "4G")
        self.assertEqual(out, "successfully created 'tank:vm-101-disk-0'\n")
        r = self.node.run("pvesm", "alloc", "tank", 101, "disk-0", "4G")
        self.assertIn("filename: illegal name 'disk-0' - should be 'vm-101-*'", r.err)
        lst = self.node.ok("pvesm", "list", "tank").splitlines()
        self.assertEqual(lst, ["Volid              Format Type            Size VMID",
                               "tank:vm-101-disk-0 raw    images    4294967296 101"])


if __name__ == "__main__":
    unittest.main()
