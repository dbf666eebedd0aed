"""Strictness: every parameter is checked as PVE's CLIHandler / JSONSchema
check it, with the same messages, usage lines and exit codes."""

import unittest

from simtest import SimTestCase, TEMPLATE


class StrictOptions(SimTestCase):
    def setUp(self):
        super().setUp()
        self.node.ct(101)

    def test_type_check_integer(self):
        r = self.node.run("pct", "set", 101, "--memory", "abc")
        self.assertEqual(r.rc, 255)
        self.assertEqual(r.err, "400 Parameter verification failed.\n"
                                "memory: type check ('integer') failed - got 'abc'\n"
                                "pct set <vmid> [OPTIONS]\n")

    def test_unknown_option(self):
        r = self.node.run("pct", "set", 101, "--foo", "1")
        self.assertEqual(r.err, "Unknown option: foo\n400 unable to parse option\n"
                                "pct set <vmid> [OPTIONS]\n")
        self.assertEqual(r.rc, 255)

    def test_fixed_node_parameter_is_unknown(self):
        r = self.node.run("pct", "set", 101, "--node", "pve")
        self.assertFails(r, "Unknown option: node")

    def test_too_many_and_not_enough_arguments(self):
        self.assertEqual(self.node.run("pct", "set", 101, 102).err,
                         "400 too many arguments\npct set <vmid> [OPTIONS]\n")
        r = self.node.run("pct", "create", 150)
        self.assertEqual(r.err, "400 not enough arguments\n"
                                "pct create <vmid> <ostemplate> [OPTIONS]\n")

    def test_missing_option_value(self):
        r = self.node.run("pct", "set", 101, "--memory")
        self.assertFails(r, "Option memory requires an argument\n400 unable to parse option")

    def test_minimum_and_maximum(self):
        self.assertFails(self.node.run("pct", "set", 101, "--memory", 8),
                         "memory: value must have a minimum value of 16")
        self.assertFails(self.node.run("pct", "set", 101, "--cores", 9000),
                         "cores: value must have a maximum value of 8192")

    def test_enum(self):
        self.assertFails(self.node.run("pct", "set", 101, "--ostype", "windows"),
                         "ostype: value 'windows' does not have a value in the enumeration "
                         "'debian, devuan, ubuntu, centos, fedora, opensuse, archlinux, alpine, "
                         "gentoo, nixos, unmanaged'")

    def test_boolean_spellings(self):
        for v, want in (("yes", "1"), ("off", "0"), ("TRUE", "1")):
            self.node.ok("pct", "set", 101, "--onboot", v)
            self.assertIn("onboot: %s\n" % want, self.node.conf("lxc", 101))
        r = self.node.run("pct", "set", 101, "--onboot", "maybe")
        self.assertEqual(r.err, "400 unable to parse boolean option\npct set <vmid> [OPTIONS]\n")

    def test_vmid_range(self):
        r = self.node.run("pct", "set", 99, "--memory", 512)
        self.assertEqual(r.err, "400 Parameter verification failed.\n"
                                "vmid: invalid format - value does not look like a valid VM ID\n"
                                "\npct set <vmid> [OPTIONS]\n")
        self.assertFails(self.node.run("qm", "create", 1000000000),
                         "vmid: invalid format - value does not look like a valid VM ID")
        self.assertFails(self.node.run("qm", "status", "abc"),
                         "vmid: type check ('integer') failed - got 'abc'")

    def test_abbreviation_and_ambiguity(self):
        self.node.ok("pct", "set", 101, "--mem", 1024)
        self.assertIn("memory: 1024\n", self.node.conf("lxc", 101))
        r = self.node.run("pct", "set", 101, "--n", "x")
        self.assertFails(r, "Option n is ambiguous (")

    def test_option_forms(self):
        self.node.ok("pct", "set", 101, "-swap=256")
        self.node.ok("pct", "set", "--cores", 3, 101)  # permuted positional
        c = self.node.conf("lxc", 101)
        self.assertIn("swap: 256\n", c)
        self.assertIn("cores: 3\n", c)

    def test_unknown_command(self):
        r = self.node.run("pct", "frobnicate", 101)
        self.assertEqual(r.rc, 255)
        self.assertTrue(r.err.startswith("ERROR: unknown command 'pct frobnicate'\n"
                                         "USAGE: pct <COMMAND> [ARGS] [OPTIONS]\n"))

    def test_no_options(self):
        self.assertFails(self.node.run("pct", "set", 101), "no options specified")


class PropertyStrings(SimTestCase):
    def setUp(self):
        super().setUp()
        self.node.ct(101)

    def test_invalid_key(self):
        r = self.node.run("pct", "set", 101, "--net0", "name=eth0,bogus=1")
        self.assertEqual(r.err, "400 Parameter verification failed.\n"
                                "net0: invalid format - invalid key in comma-separated list "
                                "property: bogus\n\npct set <vmid> [OPTIONS]\n")

    def test_missing_required_subkey(self):
        r = self.node.run("pct", "set", 101, "--net0", "bridge=vmbr0")
        self.assertIn("net0: invalid format - format error\n"
                      "net0.name: property is missing and it is not optional\n", r.err)

    def test_bad_sub_values(self):
        r = self.node.run("pct", "set", 101, "--net0", "name=eth0,hwaddr=01:00:00:00:00:00")
        self.assertIn("net0.hwaddr: invalid format - value does not look like a valid unicast "
                      "MAC address", r.err)
        r = self.node.run("pct", "set", 101, "--net0", "name=eth0,ip=10.0.0.1")
        self.assertIn("net0.ip: invalid format - value does not look like a valid ipv4 network "
                      "configuration", r.err)
        r = self.node.run("pct", "set", 101, "--mp0", "local-zfs:4,mp=/data,size=4X")
        self.assertIn("mp0.size: invalid format - value does not look like a valid disk size",
                      r.err)
        r = self.node.run("pct", "set", 101, "--features", "nesting=maybe")
        self.assertIn("features.nesting: type check ('boolean') failed - got 'maybe'", r.err)
        r = self.node.run("pct", "set", 101, "--dev0", "/dev/dri/card0,mode=999")
        self.assertIn("dev0.mode: value does not match the regex pattern", r.err)
        r = self.node.run("pct", "set", 101, "--startup", "order=x")
        self.assertIn("startup: invalid format - unable to parse startup options", r.err)

    def test_duplicate_and_default_keys(self):
        r = self.node.run("pct", "set", 101, "--net0", "name=eth0,name=eth1")
        self.assertIn("duplicate key in comma-separated list property: name", r.err)
        r = self.node.run("pct", "set", 101, "--mp0", "local-zfs:1,local-zfs:2,mp=/x")
        self.assertIn("duplicate key in comma-separated list property: volume", r.err)
        r = self.node.run("pct", "set", 101, "--net0", "eth0")
        self.assertIn("value without key, but schema does not define a default key", r.err)

    def test_qemu_formats(self):
        self.node.vm(200)
        r = self.node.run("qm", "set", 200, "--net0", "e1001,bridge=vmbr0")
        self.assertIn("net0.model: value 'e1001' does not have a value in the enumeration", r.err)
        r = self.node.run("qm", "set", 200, "--hostpci0", "pcie=1")
        self.assertIn("hostpci0: invalid format - either 'host' or 'mapping' must be set.", r.err)
        r = self.node.run("qm", "set", 200, "--hostpci0", "host=zz:00.0")
        self.assertIn("hostpci0.host: value does not match the regex pattern", r.err)
        r = self.node.run("qm", "set", 200, "--ipconfig0", "ip=10.0.0.5/24,gw=10.0.0.300")
        self.assertIn("ipconfig0.gw: invalid format - value does not look like a valid IPv4 "
                      "address", r.err)
        r = self.node.run("qm", "set", 200, "--scsi0", "local-zfs:vm-200-disk-0,cache=fast")
        self.assertIn("scsi0.cache: value 'fast' does not have a value in the enumeration", r.err)
        r = self.node.run("qm", "set", 200, "--memory", "abc")
        self.assertIn("memory: invalid format - format error\n"
                      "memory.current: type check ('integer') failed - got 'abc'", r.err)
        r = self.node.run("qm", "set", 200, "--agent", "enabled=1,fstrim=1")
        self.assertIn("invalid key in comma-separated list property: fstrim", r.err)
        r = self.node.run("qm", "set", 200, "--boot", "order=scsi0;bogus")
        self.assertIn("boot: invalid format - format error", r.err)
        r = self.node.run("qm", "set", 200, "--tags", "ok,bad!")
        self.assertIn("tags: invalid format - invalid characters in tag", r.err)
        self.node.ok("qm", "set", 200, "--hostpci0", "host=0000:01:00.0;0000:01:00.1,pcie=1",
                     "--ipconfig0", "ip=dhcp,ip6=auto", "--cpu", "host,flags=+aes",
                     "--startup", "order=2,up=30")
        c = self.node.conf("qemu", 200)
        self.assertIn("hostpci0: host=0000:01:00.0;0000:01:00.1,pcie=1\n", c)
        self.assertIn("startup: order=2,up=30\n", c)

    def test_delete_checks(self):
        r = self.node.run("pct", "set", 101, "--delete", "memory", "--memory", 512)
        self.assertIn("delete: you can't use '-memory' and -delete memory' at the same time", r.err)
        r = self.node.run("pct", "set", 101, "--delete", "bogus")
        self.assertIn("delete: unknown option 'bogus'", r.err)
        self.assertFails(self.node.run("pct", "set", 101, "--delete", "rootfs"),
                         "unable to delete required option 'rootfs'")


class ConfigDrift(SimTestCase):
    def test_hand_edited_bad_value_is_dropped_with_warning(self):
        self.node.ct(101)
        c = self.node.conf("lxc", 101).replace("memory: 512", "memory: lots")
        self.node.write_conf("lxc", 101, c + "foo: bar\n lxc.bad: x\n")
        r = self.node.run("pct", "config", 101)
        self.assertEqual(r.rc, 0)
        self.assertIn("vm 101 - unable to parse value of 'memory' - type check ('integer') "
                      "failed - got 'lots'\n", r.err)
        self.assertIn("vm 101 - unable to parse value of 'foo' - unknown setting 'foo'\n", r.err)
        self.assertIn("vm 101 - unable to parse config:  lxc.bad: x\n", r.err)
        self.assertNotIn("memory", r.out)
        self.assertIn("hostname: ct101\n", r.out)

    def test_hand_edited_net_format_error(self):
        self.node.vm(200)
        c = self.node.conf("qemu", 200)
        self.node.write_conf("qemu", 200, c + "net1: virtio,bogus=1\n")
        r = self.node.run("qm", "config", 200)
        self.assertIn("vm 200 - unable to parse value of 'net1' - invalid key in comma-separated "
                      "list property: bogus\n", r.err)
        self.assertNotIn("net1", r.out)

    def test_existing_and_locked(self):
        self.node.ct(101)
        self.assertFails(self.node.run("pct", "create", 101, TEMPLATE, "--rootfs", "local-zfs:1"),
                         "CT 101 already exists on node 'pve'")
        self.node.vm(200)
        self.assertFails(self.node.run("pct", "create", 200, TEMPLATE),
                         "VM 200 already exists on node 'pve'")
        self.assertFails(self.node.run("pct", "config", 105),
                         "Configuration file 'nodes/pve/lxc/105.conf' does not exist")
        self.assertFails(self.node.run("qm", "config", 205),
                         "Configuration file 'nodes/pve/qemu-server/205.conf' does not exist")
        self.node.ok("pct", "set", 101, "--lock", "backup")
        for argv in (("pct", "set", 101, "--memory", 1024), ("pct", "start", 101),
                     ("pct", "snapshot", 101, "s1"), ("pct", "resize", 101, "rootfs", "+1G"),
                     ("pct", "destroy", 101), ("pct", "template", 101)):
            self.assertFails(self.node.run(*argv), "CT is locked (backup)")
        self.node.ok("pct", "start", 101, "--skiplock")
        self.node.ok("pct", "unlock", 101)
        self.assertNotIn("lock:", self.node.conf("lxc", 101))
        self.node.ok("qm", "set", 200, "--lock", "snapshot")
        self.assertFails(self.node.run("qm", "set", 200, "--memory", 512), "VM is locked (snapshot)")
        self.node.ok("qm", "set", 200, "--memory", 512, "--skiplock")


if __name__ == "__main__":
    unittest.main()
