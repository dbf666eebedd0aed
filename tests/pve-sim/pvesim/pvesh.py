"""`pvesh get`: the read side of the API the pve target uses —
/cluster/resources (one bare JSON array, sorted keys), /cluster/nextid,
/nodes, /nodes/<node>/{lxc,qemu}[/<vmid>/{config,pending,snapshot,status/current}],
/nodes/<node>/storage, /version."""

import re
import sys

from . import cli, schema
from . import conf as confmod
from .cli import Props
from .errors import Die
from .pvejson import compact, pretty

FORMAT = {"type": "string", "optional": 1, "enum": ["text", "json", "json-pretty", "yaml"]}


def main(sim, argv):
    if not argv:
        sys.stderr.write(cli.abort_unknown("pvesh", "no command specified",
                                           ["create", "delete", "get", "ls", "set", "usage"]))
        return 255
    cmd, args = argv[0], argv[1:]
    if cmd != "get":
        if cmd in ("create", "delete", "set", "ls", "usage", "help"):
            raise Die("pvesh %s: not simulated (only 'pvesh get' is)" % cmd)
        sys.stderr.write(cli.abort_unknown("pvesh", "unknown command 'pvesh %s'" % cmd,
                                           ["create", "delete", "get", "ls", "set", "usage"]))
        return 255
    path = None
    for a in args:
        if not a.startswith("-"):
            path = a
            break
    own = {"api_path": {"type": "string"}, "output-format": FORMAT,
           "noborder": {"type": "boolean", "optional": 1},
           "noheader": {"type": "boolean", "optional": 1},
           "human-readable": {"type": "boolean", "optional": 1},
           "quiet": {"type": "boolean", "optional": 1}}
    norm = "/" + (path or "").strip("/")
    if norm == "/cluster/resources":
        own["type"] = {"type": "string", "optional": 1, "enum": ["vm", "storage", "node", "sdn"]}
    elif norm == "/cluster/nextid":
        own["vmid"] = {"type": "integer", "optional": 1, "format": "pve-vmid", "minimum": 100,
                       "maximum": 999999999}
    elif re.match(r"/nodes/[^/]+/(lxc|qemu)/\d+/config\Z", norm):
        own["current"] = {"type": "boolean", "optional": 1}
        own["snapshot"] = {"type": "string", "optional": 1, "format": "pve-configid"}
    props = Props(own)
    o = cli.parse("pvesh get", props, args, ["api_path"])
    fmt = o.get("output-format", "text")
    sim.lock()
    data = get(sim, norm, o)
    if fmt == "json":
        sys.stdout.write(compact(data) + "\n")
    elif fmt == "json-pretty":
        sys.stdout.write(pretty(data))
    else:
        raise Die("pvesh: output format '%s' is not simulated (use json or json-pretty)" % fmt)
    return 0


def _guest(sim, kind, vmid):
    from .pct import CT
    from .qm import VM
    g = CT(sim) if kind == "lxc" else VM(sim)
    return g


def resources(sim, typ=None):
    from .pct import CT
    from .qm import VM
    from .storage import Storage
    res = []
    if typ in (None, "vm"):
        ct, vm = CT(sim), VM(sim)
        for vmid, (kind, node) in sorted(sim.guests().items()):
            if node != sim.node:
                continue
            g = ct if kind == "lxc" else vm
            c = g.load(vmid, warn=False)
            st = g.status(vmid, c)
            e = {"id": "%s/%d" % (kind, vmid), "type": kind, "vmid": vmid, "node": node,
                 "status": st["status"], "name": st.get("name", ""),
                 "cpu": 0, "maxcpu": st["cpus"], "mem": st["mem"], "maxmem": st["maxmem"],
                 "disk": st["disk"], "maxdisk": st["maxdisk"], "uptime": st["uptime"],
                 "netin": 0, "netout": 0, "diskread": 0, "diskwrite": 0,
                 "template": 1 if g.is_template(c) else 0}
            if kind == "qemu":
                e["memhost"] = st["mem"]
            if c.get("lock"):
                e["lock"] = c["lock"]
            if c.get("tags"):
                e["tags"] = c["tags"]
            res.append(e)
    if typ in (None, "node"):
        host_cpus = int(sim.settings.get("host_cpus", 8))
        res.append({"id": "node/%s" % sim.node, "type": "node", "node": sim.node,
                    "status": "online", "cpu": 0.02, "maxcpu": host_cpus,
                    "mem": 4 * 1024 ** 3, "maxmem": int(sim.settings.get("host_mem_gib", 64))
                    * 1024 ** 3, "disk": 3 * 1024 ** 3, "maxdisk": 100 * 1024 ** 3,
                    "uptime": 86400, "level": "", "cgroup-mode": 2})
    if typ in (None, "storage"):
        st = Storage(sim)
        for sid in st.ids():
            s = st.scfg(sid)
            nodes = s.get("nodes")
            if nodes and sim.node not in schema.split_list(nodes):
                continue
            total, used, avail, active, _ = st.status(sid) if s.get("disable") != "1" \
                else (0, 0, 0, False, None)
            res.append({"id": "storage/%s/%s" % (sim.node, sid), "type": "storage",
                        "storage": sid, "node": sim.node, "plugintype": s["type"],
                        "status": "available" if active else "unknown",
                        "content": ",".join(sorted(st.content(sid))), "disk": used,
                        "maxdisk": total, "shared": 1 if s.get("shared") == "1" else 0})
    if typ in (None, "sdn"):
        res.append({"id": "sdn/%s/localnetwork" % sim.node, "type": "sdn", "sdn": "localnetwork",
                    "node": sim.node, "status": "ok"})
    return res


def get(sim, path, o):
    if path == "/cluster/resources":
        return resources(sim, o.get("type"))
    if path == "/cluster/nextid":
        used = sim.guests()
        if o.get("vmid") is not None:
            if int(o["vmid"]) in used:
                raise Die("400 Parameter verification failed.\nvmid: VM %s already exists"
                          % o["vmid"])
            return str(o["vmid"])
        n = int(sim.settings.get("next_id_lower", 100))
        while n in used:
            n += 1
        return str(n)
    if path == "/version":
        # settable, as clients branch on the major version
        v = str(sim.settings.get("pve_version", "9.1.2"))
        return {"release": ".".join(v.split(".")[:2]), "repoid": "0a1b2c3d", "version": v}
    if path == "/nodes":
        return [{"node": sim.node, "status": "online", "type": "node", "id": "node/" + sim.node,
                 "level": "", "maxcpu": int(sim.settings.get("host_cpus", 8))}]
    m = re.match(r"/nodes/([^/]+)(/.*)?\Z", path)
    if not m:
        raise Die("no such resource '%s'" % path)
    node, rest = m.group(1), m.group(2) or ""
    if node not in (sim.node, "localhost"):
        raise Die("hostname lookup '%s' failed - failed to get address info for: %s: Name or "
                  "service not known" % (node, node))
    from .pct import CT
    from .qm import VM
    m = re.match(r"/(lxc|qemu)(?:/(\d+)(/.*)?)?\Z", rest)
    if m:
        kind = m.group(1)
        g = CT(sim) if kind == "lxc" else VM(sim)
        if m.group(2) is None:
            out = []
            for vmid in sim.local_guests(kind):
                c = g.load(vmid, warn=False)
                st = g.status(vmid, c)
                st["vmid"] = vmid
                st.pop("proxmox-support", None)
                st.pop("nics", None)
                out.append(st)
            return out
        vmid = int(m.group(2))
        sub = m.group(3) or ""
        c = g.load(vmid)
        if sub == "/config":
            if o.get("snapshot"):
                if o["snapshot"] not in c["snapshots"]:
                    raise Die("snapshot '%s' does not exist" % o["snapshot"])
                view = dict(c["snapshots"][o["snapshot"]])
            elif o.get("current"):
                view = {k: v for k, v in c.items() if k not in ("pending", "snapshots",
                                                                "special")}
            else:
                view = confmod.apply_pending(c)
            view["digest"] = str(c["digest"])
            if kind == "qemu" and view.get("cipassword"):
                view["cipassword"] = "**********"
            return {k: _num(v) for k, v in view.items()}
        if sub == "/status/current":
            st = g.status(vmid, c)
            if kind == "lxc":
                st["vmid"] = vmid
            st["ha"] = {"managed": 0}
            return st
        if sub == "/pending":
            return g.pending_json(vmid)
        if sub == "/snapshot":
            return g.snapshot_list(vmid)
        if sub in ("", "/"):
            return [{"subdir": s} for s in ("config", "pending", "status", "snapshot")]
        raise Die("no such resource '%s'" % path)
    if rest == "/storage":
        from .storage import Storage
        st = Storage(sim)
        out = []
        for sid in st.ids():
            s = st.scfg(sid)
            total, used, avail, active, _ = st.status(sid) if s.get("disable") != "1" \
                else (0, 0, 0, False, None)
            out.append({"storage": sid, "type": s["type"], "content": ",".join(
                sorted(st.content(sid))), "active": 1 if active else 0,
                "enabled": 0 if s.get("disable") == "1" else 1,
                "shared": 1 if s.get("shared") == "1" else 0, "total": total, "used": used,
                "avail": avail, "used_fraction": (used / total) if total else 0})
        return out
    raise Die("no such resource '%s'" % path)


def _num(v):
    if isinstance(v, str) and re.match(r"-?\d+\Z", v) and len(v) < 16:
        return int(v)
    return v
