"""Latency and fault injection, and the call log every invocation writes."""

import os
import subprocess
import time
import unittest

from simtest import SimTestCase


class CallLog(SimTestCase):
    def test_every_call_is_logged(self):
        self.node.ct(101)
        self.node.run("pct", "set", 101, "--memory", "abc")
        self.node.run("zfs", "list", "-H")
        log = self.node.jsonl("calls.log")
        self.assertEqual([e["argv"][:2] for e in log],
                         [["pct", "create"], ["pct", "set"], ["zfs", "list"]])
        self.assertEqual([e["n"] for e in log], [1, 2, 3])
        self.assertEqual([e["exit"] for e in log], [0, 255, 0])
        self.assertEqual(log[1]["argv"], ["pct", "set", "101", "--memory", "abc"])
        for e in log:
            self.assertGreater(e["ms"], 0)
            self.assertIn("ts", e)


class Latency(SimTestCase):
    def test_settings_and_env(self):
        self.node.settings(latency_ms=250)
        t = time.time()
        self.node.ok("pct", "list")
        self.assertGreaterEqual(time.time() - t, 0.25)
        self.assertGreaterEqual(self.node.jsonl("calls.log")[-1]["ms"], 250)
        t = time.time()
        self.node.ok("pct", "list", env={"PVE_SIM_LATENCY_MS": "0"})
        self.assertLess(self.node.jsonl("calls.log")[-1]["ms"], 250)
        self.node.settings(latency_ms={"zfs": 200, "default": 0})
        self.node.ok("zfs", "list")
        self.node.ok("pct", "list")
        log = self.node.jsonl("calls.log")
        self.assertGreaterEqual(log[-2]["ms"], 200)
        self.assertLess(log[-1]["ms"], 200)

    def test_parallel_calls_overlap(self):
        self.node.settings(latency_ms=400)
        procs = [subprocess.Popen([os.path.join(self.node.bin, "pvesm"), "status"],
                                  stdout=subprocess.DEVNULL, env=self.node.env())
                 for _ in range(4)]
        t = time.time()
        for p in procs:
            self.assertEqual(p.wait(), 0)
        self.assertLess(time.time() - t, 4 * 0.4)   # sleeps happen outside the state lock
        self.assertEqual(len(self.node.jsonl("calls.log")), 4)


class Faults(SimTestCase):
    def test_call_number_fails(self):
        self.node.settings(faults=[{"call": 2, "stderr": "boom", "exit": 7}])
        self.node.ok("pct", "list")
        r = self.node.run("pct", "list")
        self.assertEqual((r.rc, r.err, r.out), (7, "boom\n", ""))
        self.node.ok("pct", "list")
        self.assertEqual([e.get("fault") for e in self.node.jsonl("calls.log")], [None, 0, None])

    def test_lock_timeout_then_success(self):
        self.node.ct(101)
        self.node.settings(faults=[{"match": "pct set 101 *", "kind": "lock-timeout",
                                    "times": 2}])
        for _ in range(2):
            r = self.node.run("pct", "set", 101, "--memory", 1024)
            self.assertEqual(r.rc, 255)
            self.assertEqual(r.err, "can't lock file '/run/lock/lxc/pve-config-101.lock' - "
                                    "got timeout\n")
        self.assertNotIn("memory: 1024", self.node.conf("lxc", 101))
        self.node.ok("pct", "set", 101, "--memory", 1024)
        self.assertIn("memory: 1024", self.node.conf("lxc", 101))
        self.node.vm(200)
        self.node.settings(faults=[{"argv": ["qm", "set", "200", "**"], "kind": "lock-timeout"}])
        self.assertEqual(self.node.run("qm", "set", 200, "--memory", 512).err,
                         "can't lock file '/var/lock/qemu-server/lock-200.conf' - got timeout\n")
        self.node.ok("qm", "set", 200, "--memory", 512)

    def test_unlimited_and_after_call(self):
        self.node.settings(faults=[{"match": "zfs get *", "times": None, "call": 3,
                                    "stderr": "zfs: io error", "exit": 1, "stdout": "partial\n"}])
        self.node.ok("zfs", "get", "all", "rpool")
        self.node.ok("zfs", "get", "all", "rpool")
        for _ in range(3):
            r = self.node.run("zfs", "get", "all", "rpool")
            self.assertEqual((r.rc, r.out, r.err), (1, "partial\n", "zfs: io error\n"))
        self.node.ok("zfs", "list")


if __name__ == "__main__":
    unittest.main()
