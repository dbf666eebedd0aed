"""The simulated node: where its files live, its settings (DIR/sim/sim.json),
its runtime state (which guests run, since when) and guest config files."""

import fcntl
import json
import os
import re
import time

from . import conf as confmod
from .errors import Die


class Sim:
    def __init__(self, base):
        self.base = os.path.abspath(base)
        self.root = os.path.join(self.base, "root")
        self.simdir = os.path.join(self.base, "sim")
        self.settings = self.load_json("sim.json", {})
        self.node = self.settings.get("node", "pve")
        self._runtime = None
        self._lockfd = None

    # ------------------------------------------------------------ files
    def path(self, *parts):
        return os.path.join(self.simdir, *parts)

    def load_json(self, name, default):
        try:
            with open(self.path(name), encoding="utf-8") as f:
                return json.load(f)
        except FileNotFoundError:
            return default

    def save_json(self, name, data):
        p = self.path(name)
        tmp = "%s.tmp.%d" % (p, os.getpid())
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=1, sort_keys=True)
            f.write("\n")
        os.replace(tmp, p)

    def lock(self):
        """Serialises state changes between concurrent tool calls."""
        if self._lockfd is None:
            self._lockfd = os.open(self.path(".lock"), os.O_RDWR | os.O_CREAT, 0o644)
            fcntl.flock(self._lockfd, fcntl.LOCK_EX)

    def unlock(self):
        if self._lockfd is not None:
            os.close(self._lockfd)
            self._lockfd = None

    def host_path(self, p):
        """An absolute host path as seen on the simulated node."""
        return os.path.join(self.root, p.lstrip("/"))

    # ---------------------------------------------------------- runtime
    @property
    def runtime(self):
        if self._runtime is None:
            self._runtime = self.load_json("runtime.json", {"guests": {}, "next_pid": 4000})
        return self._runtime

    def save_runtime(self):
        if self._runtime is not None:
            self.save_json("runtime.json", self._runtime)

    def running(self, vmid):
        return str(vmid) in self.runtime["guests"]

    def set_running(self, vmid, kind, on):
        g = self.runtime["guests"]
        if on:
            pid = self.runtime["next_pid"]
            self.runtime["next_pid"] = pid + 7
            g[str(vmid)] = {"type": kind, "started": time.time(), "pid": pid}
        else:
            g.pop(str(vmid), None)
        self.save_runtime()

    def uptime_exact(self, vmid):
        g = self.runtime["guests"].get(str(vmid))
        return time.time() - g["started"] if g else 0.0

    def uptime(self, vmid):
        g = self.runtime["guests"].get(str(vmid))
        return int(time.time() - g["started"]) if g else 0

    # ----------------------------------------------------------- guests
    def nodes_dir(self):
        return os.path.join(self.root, "etc/pve/nodes")

    def conf_rel(self, kind, vmid, node=None):
        sub = "lxc" if kind == "lxc" else "qemu-server"
        return "nodes/%s/%s/%s.conf" % (node or self.node, sub, vmid)

    def conf_path(self, kind, vmid, node=None):
        return os.path.join(self.root, "etc/pve", self.conf_rel(kind, vmid, node))

    def guests(self):
        """{vmid: (kind, node)} for every guest config in the cluster."""
        out = {}
        nd = self.nodes_dir()
        for node in sorted(os.listdir(nd)) if os.path.isdir(nd) else []:
            for sub, kind in (("lxc", "lxc"), ("qemu-server", "qemu")):
                d = os.path.join(nd, node, sub)
                if not os.path.isdir(d):
                    continue
                for f in os.listdir(d):
                    m = re.match(r"(\d+)\.conf\Z", f)
                    if m:
                        out[int(m.group(1))] = (kind, node)
        return out

    def local_guests(self, kind):
        d = os.path.dirname(self.conf_path(kind, 0))
        out = []
        for f in os.listdir(d) if os.path.isdir(d) else []:
            m = re.match(r"(\d+)\.conf\Z", f)
            if m:
                out.append(int(m.group(1)))
        return sorted(out)

    def check_vmid_unused(self, vmid):
        g = self.guests().get(int(vmid))
        if g:
            raise Die("%s %s already exists on node '%s'"
                      % ("VM" if g[0] == "qemu" else "CT", vmid, g[1]))

    def load_conf(self, kind, vmid, validate=True, warn=True):
        p = self.conf_path(kind, vmid)
        try:
            with open(p, encoding="utf-8", errors="surrogateescape") as f:
                text = f.read()
        except FileNotFoundError:
            raise Die("Configuration file '%s' does not exist" % self.conf_rel(kind, vmid))
        c, warnings = confmod.parse(text, kind, vmid, validate=validate)
        if warn:
            for w in warnings:
                os.write(2, w.encode("utf-8", "surrogateescape"))
        c["digest"] = Digest(text)
        return c

    def write_conf(self, kind, vmid, c):
        p = self.conf_path(kind, vmid)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        tmp = p + ".tmp.%d" % os.getpid()
        with open(tmp, "w", encoding="utf-8", errors="surrogateescape") as f:
            f.write(confmod.write(c, kind))
        os.replace(tmp, p)

    def remove_conf(self, kind, vmid):
        try:
            os.unlink(self.conf_path(kind, vmid))
        except FileNotFoundError:
            pass

    def random_mac(self):
        prefix = self.settings.get("mac_prefix", "BC:24:11")
        b = os.urandom(6 - len(prefix.split(":")))
        return (prefix + ":" + ":".join("%02X" % x for x in b)).upper()


class Digest:
    """The SHA-1 of a config file, computed only when somebody asks."""

    def __init__(self, text):
        self.text = text
        self.value = None

    def __str__(self):
        if self.value is None:
            import hashlib
            self.value = hashlib.sha1(self.text.encode("utf-8", "surrogateescape")).hexdigest()
        return self.value

    def __eq__(self, other):
        return str(self) == str(other)

    def __hash__(self):
        return hash(str(self))
