"""`"backing": "lxc"`: a CT is backed by a real LXC container (busybox
template, no network), so `pct exec`, push and pull reach a real system.
Skipped (with the reason) without root, LXC tools or busybox."""

import os
import shutil
import subprocess
import tempfile
import unittest

from simtest import SimTestCase


def _why_not():
    if os.geteuid() != 0:
        return "needs root"
    for tool in ("lxc-create", "lxc-start", "lxc-attach", "lxc-destroy", "busybox"):
        if shutil.which(tool) is None:
            return "%s not installed" % tool
    return None


@unittest.skipIf(_why_not(), _why_not())
class LxcBacked(SimTestCase):
    def setUp(self):
        super().setUp()
        self.prefix = "pvesimt%d-" % os.getpid()
        self.node.settings(backing="lxc", lxc_prefix=self.prefix)

    def tearDown(self):
        subprocess.run(["lxc-destroy", "-f", "-n", self.prefix + "101"], capture_output=True)
        super().tearDown()

    def test_exec_push_pull_in_real_container(self):
        self.node.ct(101)
        r = self.node.run("pct", "exec", 101, "--", "true")
        self.assertEqual(r.rc, 1)                       # not running yet
        self.node.ok("pct", "start", 101)
        info = subprocess.run(["lxc-info", "-n", self.prefix + "101", "-s"],
                              capture_output=True, text=True).stdout
        self.assertIn("RUNNING", info)
        r = self.node.run("pct", "exec", 101, "--", "sh", "-c", "echo $((6*7)); exit 3")
        self.assertEqual((r.rc, r.out), (3, "42\n"))
        r = self.node.run("pct", "exec", 101, "--", "cat", stdin=b"piped\n")
        self.assertEqual(r.out, "piped\n")
        with tempfile.NamedTemporaryFile("w", delete=False) as f:
            f.write("marker\n")
        try:
            self.node.ok("pct", "push", 101, f.name, "/tmp/marker")
            self.assertEqual(self.node.ok("pct", "exec", 101, "--", "cat", "/tmp/marker"),
                             "marker\n")
            self.node.ok("pct", "exec", 101, "--", "sh", "-c", "echo made-inside > /tmp/in")
            self.node.ok("pct", "pull", 101, "/tmp/in", f.name)
            with open(f.name) as g:
                self.assertEqual(g.read(), "made-inside\n")
        finally:
            os.unlink(f.name)
        self.assertEqual(self.node.jsonl("exec.log")[0]["source"], "lxc")
        self.node.ok("pct", "stop", 101)
        info = subprocess.run(["lxc-info", "-n", self.prefix + "101", "-s"],
                              capture_output=True, text=True).stdout
        self.assertIn("STOPPED", info)
        self.node.ok("pct", "destroy", 101)
        self.assertFalse(os.path.exists("/var/lib/lxc/%s101" % self.prefix))


if __name__ == "__main__":
    unittest.main()
