"""`pvesm`: storage manager (pve-storage's PVE::CLI::pvesm): status, add,
set, remove, alloc, free, list, path."""

import os
import re
import sys

from . import cli, schema
from .cli import Props
from .errors import Die, Invalid
from .storage import CONTENT_TYPES, REQUIRED, Storage

GiB = 1024 ** 3
STORE = {"type": "string", "format": "pve-storage-id"}


def S(**kw):
    d = {"type": "string", "optional": 1}
    d.update(kw)
    return d


def B():
    return {"type": "boolean", "optional": 1}


TYPES = ["btrfs", "cephfs", "cifs", "dir", "esxi", "glusterfs", "iscsi", "iscsidirect", "lvm",
         "lvmthin", "nfs", "pbs", "rbd", "zfs", "zfspool"]
# option -> types it is valid for (a subset of pve-storage's plugin options)
OPTS = {
    "path": (S(), {"dir", "btrfs", "cephfs"}), "pool": (S(), {"zfspool", "rbd", "zfs"}),
    "content": (S(format="pve-storage-content-list"), None), "nodes": (S(), None),
    "disable": (B(), None), "shared": (B(), {"dir", "lvm", "rbd", "zfs", "iscsi"}),
    "sparse": (B(), {"zfspool"}), "blocksize": (S(), {"zfspool", "zfs"}),
    "mkdir": (B(), {"dir", "nfs", "cifs", "glusterfs", "btrfs", "cephfs"}),
    "create-base-path": (B(), {"dir", "nfs", "cifs", "glusterfs", "btrfs", "cephfs"}),
    "create-subdirs": (B(), {"dir", "nfs", "cifs", "glusterfs", "btrfs", "cephfs"}),
    "is_mountpoint": (S(), {"dir", "btrfs"}), "mountpoint": (S(), {"zfspool"}),
    "server": (S(), {"nfs", "cifs", "pbs", "glusterfs", "esxi"}),
    "export": (S(), {"nfs"}), "share": (S(), {"cifs"}), "username": (S(), {"cifs", "pbs",
                                                                          "esxi"}),
    "password": (S(), {"cifs", "pbs", "esxi"}), "datastore": (S(), {"pbs"}),
    "fingerprint": (S(), {"pbs"}), "vgname": (S(), {"lvm", "lvmthin"}),
    "thinpool": (S(), {"lvmthin"}), "format": (S(enum=["raw", "qcow2", "vmdk", "subvol"]),
                                                {"dir", "nfs", "cifs", "glusterfs", "btrfs"}),
    "preallocation": (S(enum=["off", "metadata", "falloc", "full"]),
                      {"dir", "nfs", "cifs", "glusterfs", "btrfs"}),
    "prune-backups": (S(), {"dir", "nfs", "cifs", "pbs", "cephfs", "btrfs", "glusterfs"}),
    "max-protected-backups": ({"type": "integer", "optional": 1, "minimum": -1},
                              {"dir", "nfs", "cifs", "pbs", "cephfs", "btrfs", "glusterfs"}),
    "namespace": (S(), {"pbs", "rbd"}), "krbd": (B(), {"rbd"}), "monhost": (S(), {"rbd",
                                                                                 "cephfs"}),
    "options": (S(), {"nfs", "cifs"}), "subdir": (S(), {"cifs"}), "domain": (S(), {"cifs"}),
    "smbversion": (S(enum=["default", "2.0", "2.1", "3", "3.0", "3.11"]), {"cifs"}),
    "bwlimit": (S(), None), "snapshot-as-volume-chain": (B(), {"dir", "lvm"}),
}
FIXED = {"path", "pool", "server", "export", "share", "vgname", "thinpool", "datastore",
         "mountpoint"}


def _content_validator(v):
    if v not in ("images", "rootdir", "vztmpl", "iso", "backup", "snippets", "import", "none"):
        raise Invalid("invalid content type '%s'" % v)


schema._VALIDATORS.setdefault("pve-storage-content", _content_validator)


COMMANDS = {
    "status": ([], {"content": S(format="pve-storage-content-list"), "enabled": B(),
                    "format": B(), "storage": S(format="pve-storage-id"),
                    "target": S(format="pve-node")}),
    "add": (["type", "storage"], None),
    "set": (["storage"], None),
    "remove": (["storage"], {}),
    "alloc": (["storage", "vmid", "filename", "size"], {
        "vmid": {"type": "integer", "format": "pve-vmid", "minimum": 100,
                 "maximum": 999999999},
        "filename": {"type": "string"}, "size": {"type": "string", "pattern": r"\d+[MG]?"},
        "format": S(enum=["raw", "qcow2", "subvol", "vmdk"])}),
    "free": (["volume"], {"volume": {"type": "string"}, "delay": {"type": "integer",
                                                                 "optional": 1},
                          "storage": S(format="pve-storage-id")}),
    "list": (["storage"], {"content": S(format="pve-storage-content-list"),
                           "vmid": {"type": "integer", "optional": 1, "format": "pve-vmid",
                                    "minimum": 100, "maximum": 999999999}}),
    "path": (["volume"], {"volume": {"type": "string"}}),
}


def props_for(cmd):
    arg_param, own = COMMANDS[cmd]
    if cmd == "add":
        d = {k: v[0] for k, v in OPTS.items()}
        d["type"] = {"type": "string", "enum": TYPES}
        d["storage"] = STORE
        return arg_param, Props(d)
    if cmd == "set":
        d = {k: v[0] for k, v in OPTS.items() if k not in FIXED}
        d["storage"] = STORE
        d["delete"] = S(format="pve-configid-list")
        d["digest"] = S(maxLength=64)
        return arg_param, Props(d)
    d = dict(own)
    if "storage" in arg_param:
        d["storage"] = STORE
    return arg_param, Props(d)


def main(sim, argv):
    if not argv:
        sys.stderr.write(cli.abort_unknown("pvesm", "no command specified", COMMANDS))
        return 255
    cmd, args = argv[0], argv[1:]
    aliases = {"create": "add", "destroy": "remove", "delete": "remove"}
    cmd = aliases.get(cmd, cmd)
    if cmd not in COMMANDS:
        sys.stderr.write(cli.abort_unknown("pvesm", "unknown command 'pvesm %s'" % cmd, COMMANDS))
        return 255
    arg_param, props = props_for(cmd)
    prefix = "pvesm " + cmd
    o = cli.parse(prefix, props, args, arg_param)
    sim.lock()
    st = Storage(sim)
    out = []
    try:
        rc = globals()["do_" + cmd](sim, st, o, out, prefix, props, arg_param)
    finally:
        sys.stdout.write("".join(out))
    return rc or 0


def do_status(sim, st, o, out, *a):
    rows = []
    ids = st.ids()
    if o.get("storage"):
        st.scfg(o["storage"])
        ids = [o["storage"]]
    for sid in ids:
        s = st.scfg(sid)
        nodes = s.get("nodes")
        if nodes and sim.node not in schema.split_list(nodes):
            continue
        enabled = s.get("disable") != "1"
        if o.get("enabled") and not enabled:
            continue
        if o.get("content"):
            want = set(schema.split_list(o["content"]))
            if not want & st.content(sid):
                continue
        total = used = avail = 0
        active = False
        if enabled:
            total, used, avail, active, err = st.status(sid)
            if err:
                sys.stderr.write(err)
        rows.append({"storage": sid, "type": s["type"], "total": total, "used": used,
                     "avail": avail, "active": active, "enabled": enabled})
    out.append(format_status(rows))


def format_status(rows):
    """pvesm's print_status: rows of {storage, type, total, used, avail (bytes),
    active, enabled}."""
    maxlen = max([len(r["storage"]) for r in rows] + [0]) + 1
    out = ["%-*s %10s %10s %15s %15s %15s %8s\n" % (maxlen, "Name", "Type", "Status",
                                                   "Total (KiB)", "Used (KiB)",
                                                   "Available (KiB)", "%")]
    for r in sorted(rows, key=lambda r: r["storage"]):
        status = "active" if r["active"] else "inactive"
        per = r["used"] * 100.0 / r["total"] if r["total"] > 0 else 0.0
        if not r["enabled"]:
            status = "disabled"
            pct = "% 8s" % "N/A"
        else:
            pct = "% 7.2f%%" % per
        out.append("%-*s %10s %10s %15d %15d %15d %s\n" % (
            maxlen, r["storage"], r["type"], status, r["total"] // 1024, r["used"] // 1024,
            r["avail"] // 1024, pct))
    return "".join(out)


def _validate_opts(typ, o, prefix, props, arg_param):
    errors = {}
    for k in o:
        if k in ("type", "storage", "delete", "digest"):
            continue
        types = OPTS.get(k, (None, None))[1]
        if types is not None and typ not in types:
            errors[k] = "unexpected property '%s'" % k
    if "content" in o:
        allowed = CONTENT_TYPES.get(typ, [])
        for ct in schema.split_list(o["content"]):
            if ct not in allowed and ct != "none":
                errors["content"] = "content type '%s' is not available for storage type " \
                                    "'%s'" % (ct, typ)
    if errors:
        raise cli.param_exc(prefix, props, arg_param, errors)


def do_add(sim, st, o, out, prefix, props, arg_param):
    typ, sid = o.pop("type"), o.pop("storage")
    if typ not in ("dir", "zfspool"):
        raise Die("create storage failed: storage type '%s' is not simulated" % typ)
    _validate_opts(typ, o, prefix, props, arg_param)
    missing = {k: "property is missing and it is not optional"
               for k in REQUIRED.get(typ, []) if k not in o}
    if missing:
        raise cli.param_exc(prefix, props, arg_param, missing)
    if st.scfg(sid, noerr=True):
        raise Die("create storage failed: storage ID '%s' already defined" % sid)
    sec = {"type": typ, "storage": sid, "_order": []}
    for k, v in o.items():
        sec[k] = str(v)
    if typ == "zfspool":
        pool = sec["pool"].split("/")[0]
        from .zfs import ZFS
        if pool not in ZFS(sim).st["pools"]:
            raise Die("create storage failed: could not activate storage '%s', zfs error: "
                      "cannot import '%s': no such pool available" % (sid, pool))
    if typ == "dir" and sec.get("disable") != "1":
        path = sim.host_path(sec["path"])
        if not os.path.isdir(path):
            if sec.get("create-base-path", sec.get("mkdir", "1")) == "1":
                os.makedirs(path, exist_ok=True)
            else:
                raise Die("create storage failed: unable to activate storage '%s' - directory "
                          "'%s' does not exist" % (sid, sec["path"]))
        if sec.get("create-subdirs", sec.get("mkdir", "1")) == "1":
            for sub in ("images", "template/cache", "template/iso", "dump", "snippets",
                        "private"):
                os.makedirs(os.path.join(path, sub), exist_ok=True)
    st.sections.append(sec)
    st.save_cfg()


def do_set(sim, st, o, out, prefix, props, arg_param):
    sid = o.pop("storage")
    s = st.scfg(sid)
    delete = o.pop("delete", None)
    o.pop("digest", None)
    _validate_opts(s["type"], o, prefix, props, arg_param)
    for k in schema.split_list(delete or ""):
        if k in REQUIRED.get(s["type"], []):
            raise Die("update storage failed: unable to delete required option '%s'" % k)
        if k in FIXED:
            raise Die("update storage failed: unable to delete fixed option '%s'" % k)
        if k in o:
            raise Die("update storage failed: cannot set and delete property '%s' at the same "
                      "time!" % k)
        if k not in OPTS:
            raise Die("update storage failed: no such option '%s'" % k)
        s.pop(k, None)
    for k, v in o.items():
        s[k] = str(v)
    if not o and not delete:
        raise Die("no options specified")
    st.save_cfg()


def do_remove(sim, st, o, out, *a):
    s = st.scfg(o["storage"])
    st.sections.remove(s)
    st.save_cfg()


def do_alloc(sim, st, o, out, prefix, props, arg_param):
    sid, vmid, name, size = o["storage"], o["vmid"], o["filename"], o["size"]
    s = st.check_enabled(sid)
    m = re.match(r"(\d+)([MG])?\Z", size)
    kib = int(m.group(1)) * {None: 1, "M": 1024, "G": 1024 * 1024}[m.group(2)]
    fmt = o.get("format")
    if name:
        if not re.match(r"(vm|subvol|base|basevol)-%s-\S+\Z" % vmid, name):
            raise cli.param_exc(prefix, props, arg_param, {
                "filename": "illegal name '%s' - should be 'vm-%s-*'" % (name, vmid)})
        if s["type"] == "dir":
            m2 = re.search(r"\.(raw|qcow2|vmdk)\Z", name)
            if m2:
                fmt = fmt or m2.group(1)
                name = name[:-len(m2.group(0))]
    if s["type"] == "zfspool":
        fmt = fmt or "raw"
        if fmt not in ("raw", "subvol"):
            raise Die("unsupported format '%s'" % fmt)
        if fmt == "subvol" and name and name.startswith("vm-"):
            raise Die("illegal name '%s' - should be 'subvol-%s-*'" % (name, vmid))
    volid = st.alloc(sid, int(vmid), fmt or "raw", kib * 1024, name=name or None)
    st.save()
    out.append("successfully created '%s'\n" % volid)


def do_free(sim, st, o, out, *a):
    volid = o["volume"]
    if o.get("storage") and ":" not in volid:
        volid = "%s:%s" % (o["storage"], volid)
    if not st.exists(volid):
        raise Die("volume '%s' does not exist" % volid)
    st.free(volid)
    st.save()
    out.append("Removed volume '%s'\n" % volid)


def do_path(sim, st, o, out, *a):
    out.append(st.path(o["volume"]) + "\n")


def do_list(sim, st, o, out, *a):
    rows = st.list_volumes(o["storage"], o.get("vmid"), o.get("content"))
    maxname = max([len(r[0]) for r in rows] + [5])
    maxsize = max([r[3] for r in rows] + [0])
    digits = max(len(str(maxsize)), 4)
    base = "%%-%ds %%-6s %%-9s %%%ds" % (maxname, digits)
    out.append((base + " %s\n") % ("Volid", "Format", "Type", "Size", "VMID"))
    for r in rows:
        if r[4] is not None:
            out.append((base + " %d\n") % (r[0], r[1], r[2], r[3], r[4]))
    for r in sorted((r for r in rows if r[4] is None), key=lambda r: r[1]):
        out.append((base + "\n") % (r[0], r[1], r[2], r[3]))
