"""Test helpers: a fresh simulated node per test, and a way to run its
tools like a caller would (separate processes, argv lists)."""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
SIMROOT = os.path.dirname(HERE)
PVE_SIM = os.path.join(SIMROOT, "pve-sim")
FIXTURES = os.path.join(HERE, "fixtures")
sys.path.insert(0, SIMROOT)

TEMPLATE = "local:vztmpl/debian-12-standard_12.7-1_amd64.tar.zst"


def fixture(*p):
    with open(os.path.join(FIXTURES, *p), encoding="utf-8") as f:
        return f.read()


class Result:
    def __init__(self, rc, out, err):
        self.rc, self.out, self.err = rc, out, err

    def __repr__(self):
        return "Result(rc=%r, out=%r, err=%r)" % (self.rc, self.out, self.err)


class Node:
    def __init__(self, *init_args):
        self.base = tempfile.mkdtemp(prefix="pvesim-")
        subprocess.run([PVE_SIM, "init", self.base] + list(init_args), check=True,
                       stdout=subprocess.DEVNULL)
        self.bin = os.path.join(self.base, "bin")
        self.root = os.path.join(self.base, "root")
        self.simdir = os.path.join(self.base, "sim")

    def env(self, extra=None):
        env = dict(os.environ)
        env.pop("PVE_SIM_LATENCY_MS", None)
        env.pop("PVE_SIM_DIR", None)
        env["TZ"] = "UTC"
        env.update(extra or {})
        return env

    def run(self, *argv, env=None, stdin=None):
        p = subprocess.run([os.path.join(self.bin, argv[0])] + [str(a) for a in argv[1:]],
                           input=stdin if stdin is not None else b"", capture_output=True,
                           env=self.env(env))
        return Result(p.returncode, p.stdout.decode(), p.stderr.decode())

    def ok(self, *argv, **kw):
        r = self.run(*argv, **kw)
        if r.rc != 0:
            raise AssertionError("%s failed: %r" % (" ".join(map(str, argv)), r))
        return r.out

    def conf_path(self, kind, vmid):
        sub = "lxc" if kind == "lxc" else "qemu-server"
        return os.path.join(self.root, "etc/pve/nodes/pve", sub, "%s.conf" % vmid)

    def conf(self, kind, vmid):
        with open(self.conf_path(kind, vmid), encoding="utf-8") as f:
            return f.read()

    def write_conf(self, kind, vmid, text):
        with open(self.conf_path(kind, vmid), "w", encoding="utf-8") as f:
            f.write(text)

    def settings(self, **kw):
        p = os.path.join(self.simdir, "sim.json")
        with open(p) as f:
            s = json.load(f)
        s.update(kw)
        with open(p, "w") as f:
            json.dump(s, f)

    def jsonl(self, name):
        p = os.path.join(self.simdir, name)
        if not os.path.exists(p):
            return []
        with open(p) as f:
            return [json.loads(line) for line in f if line.strip()]

    def zfs(self):
        with open(os.path.join(self.simdir, "zfs.json")) as f:
            return json.load(f)

    def cleanup(self):
        shutil.rmtree(self.base, ignore_errors=True)

    # shorthands
    def ct(self, vmid=101, *extra):
        return self.ok("pct", "create", vmid, TEMPLATE, "--rootfs", "local-zfs:8",
                       "--hostname", "ct%s" % vmid, "--net0", "name=eth0,bridge=vmbr0,ip=dhcp",
                       *extra)

    def vm(self, vmid=200, *extra):
        return self.ok("qm", "create", vmid, "--name", "vm%s" % vmid, "--memory", 2048,
                       "--scsi0", "local-zfs:32", "--net0", "virtio,bridge=vmbr0", *extra)


class SimTestCase(unittest.TestCase):
    init_args = ()

    def setUp(self):
        self.node = Node(*self.init_args)

    def tearDown(self):
        self.node.cleanup()

    def assertFails(self, r, msg, rc=255):
        self.assertEqual(r.rc, rc, r)
        self.assertIn(msg, r.err)
