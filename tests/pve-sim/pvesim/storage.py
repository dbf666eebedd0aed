"""Storages as PVE::Storage sees them: /etc/pve/storage.cfg in its real
section format, volume IDs and names per plugin (dir, zfspool), allocation,
snapshots, templates (base volumes), linked and full clones, features, and
`pvesm status` figures. ZFS volumes are datasets in the zfs stand-in; dir
volumes are entries in DIR/sim/volumes.json."""

import os
import re

from . import schema
from .errors import Die
from .zfs import ZFS, parse_num

GiB = 1024 ** 3

# volume_has_feature tables (pve-storage ZFSPoolPlugin / Plugin)
_ZFS_FEATURES = {"snapshot": {"current", "snap"}, "clone": {"base"}, "template": {"current"},
                 "copy": {"base", "current"}, "sparseinit": {"base", "current"},
                 "rename": {"current"}}
_DIR_FEATURES = {"snapshot": {"current": {"qcow2"}, "snap": {"qcow2"}},
                 "clone": {"base": {"qcow2", "raw", "vmdk"}},
                 "template": {"current": {"qcow2", "raw", "vmdk", "subvol"}},
                 "copy": {"base": {"qcow2", "raw", "vmdk"}, "current": {"qcow2", "raw", "vmdk"},
                          "snap": {"qcow2"}},
                 "rename": {"current": {"qcow2", "raw", "vmdk"}}}
CONTENT_TYPES = {"dir": ["images", "rootdir", "vztmpl", "iso", "backup", "snippets", "import"],
                 "zfspool": ["images", "rootdir"], "nfs": ["images", "rootdir", "vztmpl", "iso",
                                                           "backup", "snippets", "import"],
                 "cifs": ["images", "rootdir", "vztmpl", "iso", "backup", "snippets", "import"],
                 "lvm": ["images", "rootdir"], "lvmthin": ["images", "rootdir"],
                 "pbs": ["backup"]}
BOOL_KEYS = {"sparse", "disable", "shared", "mkdir", "create-base-path", "create-subdirs",
             "is_mountpoint", "krbd", "saferemove", "tagged_only"}


def parse_cfg(text):
    """SectionConfig: 'type: id' then indented 'key value' lines."""
    out, cur = [], None
    for line in text.split("\n"):
        if not line.strip() or line.lstrip().startswith("#"):
            if not line.strip():
                cur = None
            continue
        m = re.match(r"(\S+):\s*(\S+)\s*\Z", line)
        if m and not line[0].isspace():
            cur = {"type": m.group(1), "storage": m.group(2), "_order": []}
            out.append(cur)
            continue
        if cur is None or not line[0].isspace():
            continue
        m = re.match(r"\s+(\S+)(?:\s+(.*?))?\s*\Z", line)
        if m:
            k, v = m.group(1), m.group(2)
            cur[k] = "1" if v is None and k in BOOL_KEYS else (v if v is not None else "")
            cur["_order"].append(k)
    return out


REQUIRED = {"dir": ["path"], "zfspool": ["pool"], "nfs": ["export", "server"],
            "cifs": ["server", "share"], "pbs": ["datastore", "server"], "lvm": ["vgname"],
            "lvmthin": ["thinpool", "vgname"], "btrfs": ["path"], "zfs": ["pool"]}


def write_cfg(sections):
    """SectionConfig::write_config: header, 'disable', required options
    sorted, then the optional ones sorted; booleans as 'key 1'."""
    out = []
    for s in sections:
        lines = ["%s: %s" % (s["type"], s["storage"])]
        if s.get("disable") == "1":
            lines.append("\tdisable")
        req = REQUIRED.get(s["type"], [])
        keys = [k for k in s if k not in ("type", "storage", "_order", "disable")]
        for k in sorted(keys, key=lambda k: (k not in req, k)):
            v = s[k]
            if k == "content":
                v = ",".join(sorted(schema.split_list(v))) or "none"
            if v != "":
                lines.append("\t%s %s" % (k, v))
        out.append("\n".join(lines) + "\n")
    return "\n".join(out)


class Storage:
    def __init__(self, sim):
        self.sim = sim
        self.cfg_path = os.path.join(sim.root, "etc/pve/storage.cfg")
        try:
            with open(self.cfg_path, encoding="utf-8") as f:
                self.sections = parse_cfg(f.read())
        except FileNotFoundError:
            self.sections = []
        self._zfs = None
        self._vols = None

    # --------------------------------------------------------- config
    def ids(self):
        return [s["storage"] for s in self.sections]

    def scfg(self, sid, noerr=False):
        for s in self.sections:
            if s["storage"] == sid:
                return s
        if noerr:
            return None
        raise Die("storage '%s' does not exist" % sid)

    def content(self, sid):
        s = self.scfg(sid)
        if "content" not in s:
            return {"images", "rootdir"}  # the plugins' default content
        return set(schema.split_list(s["content"]))

    def enabled(self, sid):
        s = self.scfg(sid)
        if s.get("disable") == "1":
            return False
        nodes = s.get("nodes")
        return not nodes or self.sim.node in schema.split_list(nodes)

    def check_enabled(self, sid):
        s = self.scfg(sid)
        if s.get("disable") == "1":
            raise Die("storage '%s' is disabled" % sid)
        nodes = s.get("nodes")
        if nodes and self.sim.node not in schema.split_list(nodes):
            raise Die("storage '%s' is not available on node '%s'" % (sid, self.sim.node))
        return s

    def save_cfg(self):
        # replaced whole, as pmxcfs does: a reader never sees half a file
        tmp = self.cfg_path + ".tmp.%d" % os.getpid()
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(write_cfg(self.sections))
        os.replace(tmp, self.cfg_path)

    # ---------------------------------------------------------- state
    @property
    def zfs(self):
        if self._zfs is None:
            self._zfs = ZFS(self.sim)
        return self._zfs

    @property
    def vols(self):
        if self._vols is None:
            self._vols = self.sim.load_json("volumes.json", {})
        return self._vols

    def save(self):
        if self._zfs is not None:
            self._zfs.save()
        if self._vols is not None:
            self.sim.save_json("volumes.json", self._vols)

    # --------------------------------------------------------- volumes
    @staticmethod
    def split_volid(volid, noerr=False):
        m = re.match(r"([a-z][a-z0-9\-_.]*[a-z0-9]):(.+)\Z", volid, re.I)
        if not m:
            if noerr:
                return None, None
            raise Die("unable to parse volume ID '%s'" % volid)
        return m.group(1), m.group(2)

    def parse_volname(self, sid, volname):
        """{vtype, name, vmid, basename, basevmid, isbase, format}."""
        s = self.scfg(sid)
        if s["type"] == "zfspool":
            m = re.match(r"(((base|basevol)-(\d+)-\S+)/)?((base|basevol|vm|subvol)-(\d+)-\S+)\Z",
                         volname)
            if not m:
                raise Die("unable to parse zfs volume name '%s'" % volname)
            kind = m.group(6)
            return {"vtype": "images", "name": m.group(5), "vmid": int(m.group(7)),
                    "basename": m.group(2), "basevmid": m.group(4),
                    "isbase": kind in ("base", "basevol"),
                    "format": "subvol" if kind in ("subvol", "basevol") else "raw"}
        m = re.match(r"(\d+)/(\S+)/(\d+)/(\S+)\Z", volname)
        if m:
            return dict(self._name_dir(m.group(4)), vtype="images", vmid=int(m.group(3)),
                        basename=m.group(2), basevmid=m.group(1))
        m = re.match(r"(\d+)/(\S+)\Z", volname)
        if m:
            return dict(self._name_dir(m.group(2)), vtype="images", vmid=int(m.group(1)),
                        basename=None, basevmid=None)
        for vt in ("iso", "vztmpl", "backup", "snippets", "import"):
            m = re.match(r"%s/([^/]+)\Z" % vt, volname)
            if m:
                return {"vtype": vt, "name": m.group(1), "vmid": None, "isbase": False,
                        "format": None, "basename": None}
        raise Die("unable to parse directory volume name '%s'" % volname)

    @staticmethod
    def _name_dir(name):
        m = re.match(r"((base-)?[^/\s]+\.(raw|qcow2|vmdk|subvol))\Z", name)
        if not m:
            m2 = re.match(r"(base-|vm-|subvol-)", name)
            if not m2:
                raise Die("unable to parse volume filename '%s'" % name)
            return {"name": name, "format": "subvol", "isbase": name.startswith("base")}
        return {"name": m.group(1), "format": m.group(3), "isbase": bool(m.group(2))}

    def parse(self, volid):
        sid, volname = self.split_volid(volid)
        self.scfg(sid)
        return sid, volname, self.parse_volname(sid, volname)

    def dataset(self, sid, info):
        return "%s/%s" % (self.scfg(sid)["pool"], info["name"])

    def dir_path(self, sid):
        return self.scfg(sid).get("path", "/var/lib/vz")

    def path(self, volid):
        sid, volname, info = self.parse(volid)
        s = self.scfg(sid)
        if s["type"] == "zfspool":
            ds = self.dataset(sid, info)
            if info["format"] == "subvol":
                return "/" + ds
            return "/dev/zvol/" + ds
        base = self.dir_path(sid)
        sub = {"images": "images/%s" % volname.split("/")[-2] if "/" in volname else "images",
               "vztmpl": "template/cache", "iso": "template/iso", "backup": "dump",
               "snippets": "snippets", "import": "import"}[info["vtype"]]
        return "%s/%s/%s" % (base, sub, info["name"])

    def exists(self, volid):
        try:
            sid, volname, info = self.parse(volid)
        except Die:
            return False
        s = self.scfg(sid)
        if s["type"] == "zfspool":
            return self.zfs.exists(self.dataset(sid, info))
        if info["vtype"] == "images":
            return volname in self.vols.get(sid, {})
        return os.path.exists(self.sim.host_path(self.path(volid)))

    def volume_size(self, volid):
        sid, volname, info = self.parse(volid)
        if self.scfg(sid)["type"] == "zfspool":
            ds = self.dataset(sid, info)
            if ds not in self.zfs.ds:
                raise Die("zfs error: cannot open '%s': dataset does not exist" % ds)
            d = self.zfs.ds[ds]
            if d["type"] == "volume":
                return d["volsize"]
            return int(self.zfs.get_value(ds, "refquota"))
        v = self.vols.get(sid, {}).get(volname)
        if v is None:
            raise Die("volume '%s' does not exist" % volid)
        return v["size"]

    def _free_name(self, sid, vmid, fmt):
        used = set()
        pat = re.compile(r"(?:vm|base|subvol|basevol)-%d-disk-(\d+)" % vmid)
        s = self.scfg(sid)
        if s["type"] == "zfspool":
            pre = s["pool"] + "/"
            names = [n[len(pre):] for n in self.zfs.ds if n.startswith(pre)]
        else:
            names = [k.split("/")[-1] for k in self.vols.get(sid, {})]
        for n in names:
            m = pat.match(n)
            if m:
                used.add(int(m.group(1)))
        i = 0
        while i in used:
            i += 1
        prefix = "subvol" if fmt == "subvol" else "vm"
        return "%s-%d-disk-%d" % (prefix, vmid, i)

    def alloc(self, sid, vmid, fmt, size, name=None):
        """vdisk_alloc; size in bytes. Returns the new volume ID."""
        s = self.scfg(sid)
        if s["type"] == "zfspool":
            if fmt not in ("raw", "subvol"):
                raise Die("unsupported format '%s'" % fmt)
            name = name or self._free_name(sid, vmid, fmt)
            ds = "%s/%s" % (s["pool"], name)
            if self.zfs.exists(ds):
                raise Die("zfs error: cannot create '%s': dataset already exists" % ds)
            if fmt == "subvol":
                props = {"acltype": "posix", "xattr": "sa"}
                if size:
                    props["refquota"] = str(size)
                self.zfs.create(ds, props)
            else:
                props = {}
                if s.get("blocksize"):
                    props["volblocksize"] = s["blocksize"]
                self.zfs.create(ds, props, volsize=size, sparse=s.get("sparse") == "1")
            return "%s:%s" % (sid, name)
        if s["type"] != "dir":
            raise Die("storage type '%s' is not simulated" % s["type"])
        fmt = fmt or "raw"
        base = name or self._free_name(sid, vmid, fmt)
        if fmt == "subvol":
            base = base.replace("vm-", "subvol-", 1)
            fname = base
        else:
            fname = base if base.endswith("." + fmt) else "%s.%s" % (base, fmt)
        volname = "%d/%s" % (vmid, fname)
        vs = self.vols.setdefault(sid, {})
        if volname in vs:
            raise Die("disk image '%s' already exists" % self.path("%s:%s" % (sid, volname)))
        vs[volname] = {"size": size, "format": fmt, "snapshots": []}
        return "%s:%s" % (sid, volname)

    def free(self, volid):
        sid, volname, info = self.parse(volid)
        s = self.scfg(sid)
        if info.get("isbase"):
            for row in self.list_volumes(sid):
                other = self.split_volid(row[0])[1]
                try:
                    oi = self.parse_volname(sid, other)
                except Die:
                    continue
                if oi.get("basename") == info["name"] and oi["name"] != info["name"]:
                    raise Die("base volume '%s' is still in use by linked cloned" % volname)
        if s["type"] == "zfspool":
            ds = self.dataset(sid, info)
            if ds in self.zfs.ds:
                self.zfs.destroy(ds, recursive=True)
            return
        self.vols.get(sid, {}).pop(volname, None)

    def resize(self, volid, size):
        sid, volname, info = self.parse(volid)
        if self.scfg(sid)["type"] == "zfspool":
            ds = self.dataset(sid, info)
            if info["format"] == "subvol":
                self.zfs.set(ds, "refquota", str(size))
            else:
                self.zfs.set(ds, "volsize", str(size))
            return
        self.vols[sid][volname]["size"] = size

    def has_feature(self, feature, volid, snap=None):
        try:
            sid, volname, info = self.parse(volid)
        except Die:
            return False  # bind mounts and devices have no storage features
        key = "snap" if snap else ("base" if info["isbase"] else "current")
        if self.scfg(sid)["type"] == "zfspool":
            return key in _ZFS_FEATURES.get(feature, ())
        return info["format"] in _DIR_FEATURES.get(feature, {}).get(key, ())

    def snapshots(self, volid):
        sid, volname, info = self.parse(volid)
        if self.scfg(sid)["type"] == "zfspool":
            ds = self.dataset(sid, info)
            return [n.split("@")[1] for n in self.zfs.snapshots(ds)]
        return list(self.vols[sid][volname]["snapshots"])

    def snapshot(self, volid, snap):
        sid, volname, info = self.parse(volid)
        if self.scfg(sid)["type"] == "zfspool":
            self.zfs.snapshot("%s@%s" % (self.dataset(sid, info), snap))
            return
        self.vols[sid][volname]["snapshots"].append(snap)

    def delete_snapshot(self, volid, snap):
        sid, volname, info = self.parse(volid)
        if self.scfg(sid)["type"] == "zfspool":
            name = "%s@%s" % (self.dataset(sid, info), snap)
            if name in self.zfs.ds:
                self.zfs.destroy(name)
            return
        snaps = self.vols[sid][volname]["snapshots"]
        if snap in snaps:
            snaps.remove(snap)

    def rollback_is_possible(self, volid, snap):
        sid, volname, info = self.parse(volid)
        snaps = self.snapshots(volid)
        if snap not in snaps:
            raise Die("unable to rollback to snapshot '%s' on '%s' - snapshot does not exist"
                      % (snap, volid))
        if self.scfg(sid)["type"] == "zfspool" and snaps[-1] != snap:
            raise Die("can't rollback, '%s' is not most recent snapshot on '%s'" % (snap, volid))

    def rollback(self, volid, snap):
        sid, volname, info = self.parse(volid)
        if self.scfg(sid)["type"] == "zfspool":
            self.zfs.rollback("%s@%s" % (self.dataset(sid, info), snap))

    def create_base(self, volid):
        """Template conversion: rename to base-/basevol- (+ @__base__ on ZFS)."""
        sid, volname, info = self.parse(volid)
        if info["isbase"]:
            return volid
        s = self.scfg(sid)
        if s["type"] == "zfspool":
            if info["basename"]:
                raise Die("create_base not possible with base image")
            newname = re.sub(r"^(vm|subvol)-", lambda m: "base-" if m.group(1) == "vm"
                             else "basevol-", info["name"])
            old, new = self.dataset(sid, info), "%s/%s" % (s["pool"], newname)
            self.zfs.rename(old, new)
            self.zfs.snapshot(new + "@__base__")
            return "%s:%s" % (sid, newname)
        if info["format"] == "subvol":
            raise Die("Directory storage '%s' does not support container templates!" % sid)
        newname = re.sub(r"^vm-", "base-", info["name"])
        newvol = "%d/%s" % (info["vmid"], newname)
        vs = self.vols[sid]
        vs[newvol] = vs.pop(volname)
        return "%s:%s" % (sid, newvol)

    def clone_linked(self, volid, vmid, snap=None):
        sid, volname, info = self.parse(volid)
        if not self.has_feature("clone", volid, snap):
            raise Die("clone feature is not available")
        s = self.scfg(sid)
        fmt = info["format"]
        name = self._free_name(sid, vmid, fmt)
        if s["type"] == "zfspool":
            base = self.dataset(sid, info)
            props = {}
            if fmt == "subvol":
                props["refquota"] = self.zfs.get_value(base, "refquota")
            self.zfs.clone("%s@__base__" % base, "%s/%s" % (s["pool"], name), props)
            return "%s:%s/%s" % (sid, info["name"], name)
        newvol = "%s/%d/%s.%s" % (volname, vmid, name, fmt)
        self.vols[sid][newvol] = {"size": self.volume_size(volid), "format": fmt,
                                  "snapshots": [], "base": volname}
        return "%s:%s" % (sid, newvol)

    def copy(self, volid, vmid, target_sid=None, snap=None):
        """A full copy (clone_disk / copy_volume) of volid (or of its snapshot)."""
        sid, volname, info = self.parse(volid)
        size = self.volume_size(volid)
        target = target_sid or sid
        fmt = info["format"]
        ts = self.scfg(target)
        if ts["type"] == "zfspool" and fmt not in ("raw", "subvol"):
            fmt = "raw"
        if ts["type"] == "dir" and fmt == "subvol" and size:
            fmt = "raw"
        new = self.alloc(target, vmid, fmt, size)
        src_refer = None
        if self.scfg(sid)["type"] == "zfspool":
            ds = self.dataset(sid, info)
            src_refer = self.zfs.ds[ds + ("@" + snap if snap else "")]["refer"]
        if src_refer is not None and ts["type"] == "zfspool":
            nsid, nvolname, ninfo = self.parse(new)
            self.zfs.ds[self.dataset(nsid, ninfo)]["refer"] = src_refer
        return new

    def list_volumes(self, sid, vmid=None, content=None):
        """(volid, format, content, size, vmid) rows like `pvesm list`."""
        s = self.scfg(sid)
        rows = []
        if s["type"] == "zfspool":
            pre = s["pool"] + "/"
            for n, d in self.zfs.ds.items():
                if not n.startswith(pre) or "/" in n[len(pre):] or "@" in n:
                    continue
                name = n[len(pre):]
                m = re.match(r"(vm|base|subvol|basevol)-(\d+)-", name)
                if not m:
                    continue
                ctype = "rootdir" if m.group(1) in ("subvol", "basevol") else "images"
                volname = name
                origin = d.get("origin")
                if origin and origin.endswith("@__base__"):
                    volname = "%s/%s" % (origin[len(pre):].split("@")[0], name)
                size = d["volsize"] if d["type"] == "volume" else \
                    int(self.zfs.get_value(n, "refquota"))
                fmt = "subvol" if ctype == "rootdir" else "raw"
                rows.append(("%s:%s" % (sid, volname), fmt, ctype, size, int(m.group(2))))
        else:
            for volname, v in self.vols.get(sid, {}).items():
                info = self.parse_volname(sid, volname)
                ctype = "rootdir" if v["format"] == "subvol" else "images"
                rows.append(("%s:%s" % (sid, volname), v["format"], ctype, v["size"],
                             info["vmid"]))
            base = self.sim.host_path(self.dir_path(sid))
            for vt, sub in (("vztmpl", "template/cache"), ("iso", "template/iso"),
                            ("snippets", "snippets"), ("backup", "dump")):
                if vt not in self.content(sid):
                    continue
                d = os.path.join(base, sub)
                for f in sorted(os.listdir(d)) if os.path.isdir(d) else []:
                    p = os.path.join(d, f)
                    if os.path.isfile(p):
                        ext = re.search(r"\.(tar(?:\.(gz|xz|zst|bz2))?|tgz)$", f)
                        tfmt = "tar"
                        if ext and ext.group(2):
                            tfmt = "t" + {"gz": "gz", "xz": "xz", "zst": "zst",
                                          "bz2": "bz2"}[ext.group(2)]
                        elif ext and ext.group(1) == "tgz":
                            tfmt = "tgz"
                        fmt = {"vztmpl": tfmt, "iso": "iso",
                               "snippets": "snippet"}.get(vt, "backup")
                        rows.append(("%s:%s/%s" % (sid, vt, f), fmt, vt, os.path.getsize(p),
                                     None))
        if vmid is not None:
            rows = [r for r in rows if r[4] == int(vmid)]
        if content:
            rows = [r for r in rows if r[2] in schema.split_list(content)]
        return sorted(rows)

    def status(self, sid):
        """(total, used, avail, active) in bytes."""
        s = self.scfg(sid)
        if s["type"] == "zfspool":
            pool = s.get("pool", "")
            if pool not in self.zfs.ds:
                return 0, 0, 0, False, "zfs error: cannot open '%s': dataset does not exist\n" % pool
            used = self.zfs.used(pool)
            avail = self.zfs.available(pool)
            return used + avail, used, avail, True, None
        if s["type"] == "dir":
            sizes = self.sim.settings.get("storage_size", {})
            total = parse_num(str(sizes.get(sid, "100G")))
            used = 2 * GiB + sum(v["size"] for v in self.vols.get(sid, {}).values())
            base = self.sim.host_path(self.dir_path(sid))
            for sub in ("template/cache", "template/iso", "snippets", "dump"):
                d = os.path.join(base, sub)
                for f in os.listdir(d) if os.path.isdir(d) else []:
                    p = os.path.join(d, f)
                    if os.path.isfile(p):
                        used += os.path.getsize(p)
            used = min(used, total)
            return total, used, total - used, True, None
        return 0, 0, 0, False, None
