"""zfs / zpool stand-ins: datasets, properties and their sources, -H/-p
output, snapshots, clones, destroy rules, and the pool commands."""

import unittest

from simtest import SimTestCase, fixture

from pvesim.zfs import nicenum, parse_num


class Units(unittest.TestCase):
    def test_nicenum(self):
        # from a real `zfs list` on Proxmox (fixtures/zfs-list.txt)
        self.assertEqual(nicenum(int(7.44 * 1024 ** 3)), "7.44G")
        self.assertEqual(nicenum(104 * 1024), "104K")
        self.assertEqual(nicenum(892 * 1024 ** 3 + 400 * 1024 ** 2), "892G")
        self.assertEqual(nicenum(981 * 1024 ** 2), "981M")
        self.assertEqual(nicenum(0), "0B")
        self.assertEqual(nicenum(2 * 1024 ** 3), "2G")
        self.assertIn("7.44G", fixture("zfs-list.txt"))

    def test_parse_num(self):
        self.assertEqual(parse_num("8G"), 8 * 1024 ** 3)
        self.assertEqual(parse_num("1.5M"), int(1.5 * 1024 ** 2))
        self.assertEqual(parse_num("512"), 512)
        self.assertIsNone(parse_num("lots"))


class Datasets(SimTestCase):
    def test_get_sources_and_inheritance(self):
        n = self.node
        n.ok("zfs", "create", "-o", "compression=zstd", "-o", "com.phoenix:owner=site",
             "rpool/data/apps")
        n.ok("zfs", "create", "-p", "rpool/data/apps/db/logs")
        out = n.ok("zfs", "get", "-H", "-p", "-o", "name,property,value,source",
                   "compression,mountpoint,com.phoenix:owner,quota,com.phoenix:unset",
                   "rpool/data/apps/db")
        self.assertEqual(out, "rpool/data/apps/db\tcompression\tzstd\tinherited from "
                              "rpool/data/apps\n"
                              "rpool/data/apps/db\tmountpoint\t/rpool/data/apps/db\tdefault\n"
                              "rpool/data/apps/db\tcom.phoenix:owner\tsite\tinherited from "
                              "rpool/data/apps\n"
                              "rpool/data/apps/db\tquota\t0\tdefault\n"
                              "rpool/data/apps/db\tcom.phoenix:unset\t-\t-\n")
        n.ok("zfs", "set", "mountpoint=/srv/apps", "quota=10G", "rpool/data/apps")
        out = n.ok("zfs", "get", "-H", "-o", "value,source", "mountpoint,quota",
                   "rpool/data/apps/db/logs")
        self.assertEqual(out, "/srv/apps/db/logs\tinherited from rpool/data/apps\nnone\tdefault\n")
        out = n.ok("zfs", "get", "-H", "-o", "value", "quota", "rpool/data/apps")
        self.assertEqual(out, "10G\n")
        n.ok("zfs", "inherit", "compression", "rpool/data/apps")
        self.assertEqual(n.ok("zfs", "get", "-H", "-o", "value,source", "compression",
                              "rpool/data/apps"), "on\tinherited from rpool\n")
        out = n.ok("zfs", "get", "-H", "-r", "-s", "local", "-o", "name,property",
                   "all", "rpool/data/apps")
        self.assertEqual(out, "rpool/data/apps\tquota\nrpool/data/apps\tmountpoint\n"
                              "rpool/data/apps\tcom.phoenix:owner\n")
        everything = n.ok("zfs", "get", "all", "rpool/data/apps").splitlines()
        self.assertRegex(everything[0], r"^NAME +PROPERTY +VALUE +SOURCE$")
        props = [line.split()[1] for line in everything[1:]]
        self.assertEqual(props[:5], ["type", "creation", "used", "available", "referenced"])

    def test_list_formats(self):
        n = self.node
        n.ok("zfs", "create", "-V", "4G", "-s", "rpool/data/vm-100-disk-0")
        n.ok("zfs", "create", "-o", "refquota=8G", "rpool/data/subvol-101-disk-0")
        out = n.ok("zfs", "list", "-H", "-p", "-o", "name,volsize,refquota,type",
                   "-r", "rpool/data").splitlines()
        self.assertEqual(out, ["rpool/data\t-\t0\tfilesystem",
                               "rpool/data/subvol-101-disk-0\t-\t8589934592\tfilesystem",
                               "rpool/data/vm-100-disk-0\t4294967296\t-\tvolume"])
        human = n.ok("zfs", "list", "-r", "rpool/data").splitlines()
        self.assertRegex(human[0], r"^NAME +USED +AVAIL +REFER +MOUNTPOINT$")
        self.assertRegex(human[2], r"^rpool/data/subvol-101-disk-0 +96K +8\.00G +96K +"
                                   r"/rpool/data/subvol-101-disk-0$")
        self.assertRegex(human[3], r"^rpool/data/vm-100-disk-0 +56K +\S+ +56K +-$")
        d1 = n.ok("zfs", "list", "-H", "-o", "name", "-d", "1", "rpool").split()
        self.assertEqual(d1, ["rpool", "rpool/ROOT", "rpool/data", "rpool/var-lib-vz"])
        self.assertFails(n.run("zfs", "list", "rpool/nope"),
                         "cannot open 'rpool/nope': dataset does not exist", rc=1)
        self.assertFails(n.run("zfs", "list", "-o", "name,bogus"),
                         "bad property list: invalid property 'bogus'", rc=2)

    def test_create_errors(self):
        n = self.node
        self.assertFails(n.run("zfs", "create", "rpool/data"),
                         "cannot create 'rpool/data': dataset already exists", rc=1)
        self.assertFails(n.run("zfs", "create", "rpool/a/b"),
                         "cannot create 'rpool/a/b': parent does not exist", rc=1)
        self.assertFails(n.run("zfs", "create", "-o", "compression=fast", "rpool/x"),
                         "cannot create 'rpool/x': 'compression' must be one of 'on | off",
                         rc=1)
        self.assertFails(n.run("zfs", "set", "used=1", "rpool/data"),
                         "cannot set property for 'rpool/data': 'used' is readonly", rc=1)
        self.assertFails(n.run("zfs", "set", "bogus=1", "rpool/data"),
                         "cannot set property for 'rpool/data': invalid property 'bogus'", rc=1)
        self.assertFails(n.run("zfs", "get", "bogus", "rpool"),
                         "bad property list: invalid property 'bogus'", rc=2)
        r = n.run("zfs", "get", "-H", "-o", "name,value", "compression", "rpool/nope",
                  "rpool/data")
        self.assertEqual((r.rc, r.out, r.err), (1, "rpool/data\ton\n",
                                                "cannot open 'rpool/nope': dataset does not "
                                                "exist\n"))

    def test_snapshots_clones_destroy_rename_rollback(self):
        n = self.node
        n.ok("zfs", "create", "rpool/data/app")
        n.ok("zfs", "snapshot", "rpool/data/app@a")
        n.ok("zfs", "snapshot", "rpool/data/app@b")
        self.assertEqual(n.ok("zfs", "list", "-H", "-t", "snapshot", "-o", "name",
                              "rpool/data/app"), "rpool/data/app@a\nrpool/data/app@b\n")
        self.assertFails(n.run("zfs", "snapshot", "rpool/data/app@a"),
                         "cannot create snapshot 'rpool/data/app@a': dataset already exists", 1)
        r = n.run("zfs", "rollback", "rpool/data/app@a")
        self.assertEqual(r.rc, 1)
        self.assertEqual(r.err, "cannot rollback to 'rpool/data/app@a': more recent snapshots or "
                                "bookmarks exist\nuse '-r' to force deletion of the following "
                                "snapshots and bookmarks:\nrpool/data/app@b\n")
        n.ok("zfs", "clone", "rpool/data/app@a", "rpool/data/app-copy")
        self.assertEqual(n.ok("zfs", "get", "-H", "-o", "value", "origin,clones",
                              "rpool/data/app-copy", "rpool/data/app@a"),
                         "rpool/data/app@a\n-\n-\nrpool/data/app-copy\n")
        r = n.run("zfs", "destroy", "rpool/data/app")
        self.assertEqual(r.err, "cannot destroy 'rpool/data/app': filesystem has children\n"
                                "use '-r' to destroy the following datasets:\n"
                                "rpool/data/app@a\nrpool/data/app@b\n")
        r = n.run("zfs", "destroy", "-r", "rpool/data/app")
        self.assertEqual(r.err, "cannot destroy 'rpool/data/app': filesystem has dependent "
                                "clones\nuse '-R' to destroy the following datasets:\n"
                                "rpool/data/app-copy\n")
        self.assertFails(n.run("zfs", "destroy", "rpool"), "operation does not apply to pools", 1)
        n.ok("zfs", "rename", "rpool/data/app-copy", "rpool/data/app2")
        self.assertFails(n.run("zfs", "rename", "rpool/data/app2", "rpool/data/app"),
                         "cannot rename to 'rpool/data/app': dataset already exists", 1)
        n.ok("zfs", "rollback", "-r", "rpool/data/app@a")
        self.assertEqual(n.ok("zfs", "list", "-H", "-t", "snapshot", "-o", "name"),
                         "rpool/data/app@a\n")
        n.ok("zfs", "destroy", "-R", "rpool/data/app")
        self.assertEqual(n.run("zfs", "list", "rpool/data/app2").rc, 1)


class Pools(SimTestCase):
    init_args = ("--storage", "local")

    def test_pool_commands(self):
        n = self.node
        self.assertEqual(n.ok("zpool", "list"), "no pools available\n")
        n.ok("zpool", "create", "tank", "mirror", "/dev/sdb", "/dev/sdc", "mirror", "/dev/sdd",
             "/dev/sde")
        self.assertFails(n.run("zpool", "create", "tank", "sdf"),
                         "cannot create 'tank': pool already exists", 1)
        self.assertFails(n.run("zpool", "create", "other", "/dev/sdb"),
                         "/dev/sdb is part of active pool 'tank'", 1)
        out = n.ok("zpool", "list", "-H", "-p", "-o", "name,size,health")
        self.assertEqual(out, "tank\t%d\tONLINE\n" % (200 * 1024 ** 3))
        st = n.ok("zpool", "status", "tank")
        ref = fixture("zpool-status.2pools.txt").split("\n\n  pool: tank")[1]
        self.assertIn("\tNAME        STATE     READ WRITE CKSUM\n"
                      "\ttank        ONLINE       0     0     0\n"
                      "\t  mirror-0  ONLINE       0     0     0\n"
                      "\t    sdb     ONLINE       0     0     0\n", st)
        self.assertIn("\t  mirror-0  ONLINE       0     0     0\n", ref)
        self.assertTrue(st.startswith("  pool: tank\n state: ONLINE\n"))
        self.assertTrue(st.endswith("\nerrors: No known data errors\n"))
        self.assertEqual(n.ok("zpool", "status", "-x"), "all pools are healthy\n")
        n.ok("zfs", "create", "tank/data")
        self.assertEqual(n.ok("zfs", "get", "-H", "-o", "value", "mountpoint", "tank/data"),
                         "/tank/data\n")


if __name__ == "__main__":
    unittest.main()
