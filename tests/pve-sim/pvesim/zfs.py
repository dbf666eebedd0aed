"""A ZFS stand-in: pools, datasets (filesystem/volume/snapshot), properties
with sources (local / default / inherited from X / -), clones, and the
`zfs` / `zpool` command lines with OpenZFS's output formats and messages.
All state lives in DIR/sim/zfs.json; no disk is ever touched."""

import os
import re
import sys
import time

from .errors import Die

# Property table in zfs_prop_t order (the order `zfs get all` prints):
# name -> (default, inheritable, applies-to, kind). applies: f=filesystem,
# v=volume, s=snapshot. kind: size, num, ratio, date, str, ro (computed).
_P = [
    ("type", None, 0, "fvs", "ro"), ("creation", None, 0, "fvs", "date"),
    ("used", None, 0, "fvs", "ro"), ("available", None, 0, "fv", "ro"),
    ("referenced", None, 0, "fvs", "ro"), ("compressratio", None, 0, "fvs", "ro"),
    ("mounted", None, 0, "f", "ro"), ("origin", None, 0, "fv", "ro"),
    ("quota", "0", 0, "f", "size"), ("reservation", "0", 0, "fv", "size"),
    ("volsize", None, 0, "v", "size"), ("volblocksize", "16384", 0, "v", "create"),
    ("recordsize", "131072", 1, "f", "size"), ("mountpoint", None, 1, "f", "str"),
    ("sharenfs", "off", 1, "f", "str"), ("checksum", "on", 1, "fv", "idx"),
    ("compression", "off", 1, "fv", "idx"), ("atime", "on", 1, "f", "onoff"),
    ("devices", "on", 1, "fs", "onoff"), ("exec", "on", 1, "fs", "onoff"),
    ("setuid", "on", 1, "fs", "onoff"), ("readonly", "off", 1, "fv", "onoff"),
    ("zoned", "off", 1, "f", "onoff"), ("snapdir", "hidden", 1, "f", "idx"),
    ("aclmode", "discard", 1, "f", "idx"), ("aclinherit", "restricted", 1, "f", "idx"),
    ("createtxg", None, 0, "fvs", "ro"), ("canmount", "on", 0, "f", "idx"),
    ("xattr", "sa", 1, "fs", "idx"), ("copies", "1", 1, "fv", "idx"),
    ("version", None, 0, "fs", "ro"), ("utf8only", "off", 0, "fs", "create"),
    ("normalization", "none", 0, "fs", "create"),
    ("casesensitivity", "sensitive", 0, "fs", "create"),
    ("vscan", "off", 1, "f", "onoff"), ("nbmand", "off", 1, "fs", "onoff"),
    ("sharesmb", "off", 1, "f", "str"), ("refquota", "0", 0, "f", "size"),
    ("refreservation", "0", 0, "fv", "size"), ("guid", None, 0, "fvs", "ro"),
    ("primarycache", "all", 1, "fvs", "idx"), ("secondarycache", "all", 1, "fvs", "idx"),
    ("usedbysnapshots", None, 0, "fv", "ro"), ("usedbydataset", None, 0, "fv", "ro"),
    ("usedbychildren", None, 0, "fv", "ro"), ("usedbyrefreservation", None, 0, "fv", "ro"),
    ("defer_destroy", None, 0, "s", "ro"), ("userrefs", None, 0, "s", "ro"),
    ("logbias", "latency", 1, "fv", "idx"), ("objsetid", None, 0, "fvs", "ro"),
    ("dedup", "off", 1, "fv", "idx"), ("mlslabel", "none", 1, "fvs", "str"),
    ("sync", "standard", 1, "fv", "idx"), ("dnodesize", "legacy", 1, "f", "idx"),
    ("refcompressratio", None, 0, "fvs", "ro"), ("written", None, 0, "fvs", "ro"),
    ("clones", None, 0, "s", "ro"), ("logicalused", None, 0, "fv", "ro"),
    ("logicalreferenced", None, 0, "fvs", "ro"), ("volmode", "default", 1, "v", "idx"),
    ("filesystem_limit", "none", 0, "f", "str"), ("snapshot_limit", "none", 0, "fv", "str"),
    ("filesystem_count", "none", 0, "f", "str"), ("snapshot_count", "none", 0, "fv", "str"),
    ("snapdev", "hidden", 1, "fv", "idx"), ("acltype", "off", 1, "fs", "idx"),
    ("context", "none", 0, "fvs", "str"), ("fscontext", "none", 0, "fvs", "str"),
    ("defcontext", "none", 0, "fvs", "str"), ("rootcontext", "none", 0, "fvs", "str"),
    ("relatime", "on", 1, "f", "onoff"), ("redundant_metadata", "all", 1, "fv", "idx"),
    ("overlay", "on", 1, "f", "onoff"), ("encryption", "off", 0, "fvs", "create"),
    ("keylocation", "none", 0, "fv", "str"), ("keyformat", "none", 0, "fv", "create"),
    ("pbkdf2iters", "0", 0, "fv", "create"), ("special_small_blocks", "0", 1, "f", "size"),
]
PROPS = {p[0]: p for p in _P}
ORDER = [p[0] for p in _P]
ALIASES = {"avail": "available", "refer": "referenced", "ratio": "compressratio",
           "reserv": "reservation", "volblock": "volblocksize", "recsize": "recordsize",
           "compress": "compression", "lused": "logicalused", "lrefer": "logicalreferenced",
           "refratio": "refcompressratio", "usedsnap": "usedbysnapshots",
           "usedds": "usedbydataset", "usedchild": "usedbychildren",
           "usedrefreserv": "usedbyrefreservation", "refreserv": "refreservation",
           "shareiscsi": "sharenfs"}
_CHOICES = {
    "checksum": ["on", "off", "fletcher2", "fletcher4", "sha256", "noparity", "sha512",
                 "skein", "edonr", "blake3"],
    "compression": ["on", "off", "lzjb", "gzip", "gzip-1", "gzip-2", "gzip-3", "gzip-4",
                    "gzip-5", "gzip-6", "gzip-7", "gzip-8", "gzip-9", "zle", "lz4", "zstd"]
    + ["zstd-%d" % i for i in range(1, 20)] + ["zstd-fast"],
    "snapdir": ["hidden", "visible"], "aclmode": ["discard", "groupmask", "passthrough",
                                                  "restricted"],
    "aclinherit": ["discard", "noallow", "restricted", "passthrough", "passthrough-x"],
    "canmount": ["on", "off", "noauto"], "xattr": ["on", "off", "dir", "sa"],
    "copies": ["1", "2", "3"], "primarycache": ["all", "none", "metadata"],
    "secondarycache": ["all", "none", "metadata"], "logbias": ["latency", "throughput"],
    "dedup": ["on", "off", "verify", "sha256", "sha256,verify", "sha512", "skein", "blake3"],
    "sync": ["standard", "always", "disabled"],
    "dnodesize": ["legacy", "auto", "1k", "2k", "4k", "8k", "16k"],
    "volmode": ["default", "full", "geom", "dev", "none"], "snapdev": ["hidden", "visible"],
    "acltype": ["off", "nfsv4", "posix", "noacl", "posixacl"],
    "redundant_metadata": ["all", "most", "some", "none"],
    "encryption": ["off", "on", "aes-128-ccm", "aes-192-ccm", "aes-256-ccm", "aes-128-gcm",
                   "aes-192-gcm", "aes-256-gcm"],
    "keyformat": ["none", "raw", "hex", "passphrase"],
    "normalization": ["none", "formC", "formD", "formKC", "formKD"],
    "casesensitivity": ["sensitive", "insensitive", "mixed"], "utf8only": ["on", "off"],
}
FS_REFER = 98304      # an empty filesystem references 96K
VOL_REFER = 57344     # an empty sparse zvol references 56K
SNAP_LIMIT_FIELDS = ("name", "property", "value", "received", "source")


def parse_num(s):
    m = re.match(r"(\d+(?:\.\d+)?|\.\d+)\s*([bkmgtpez]?)(i?b)?\Z", s.strip(), re.I)
    if not m:
        return None
    mult = 1024 ** "bkmgtpez".index((m.group(2) or "b").lower())
    return int(float(m.group(1)) * mult)


def nicenum(n):
    """zfs_nicenum with bytes: 0B 512B 104K 7.44G 892G."""
    n = int(n)
    if n < 1024:
        return "%dB" % n
    units = "BKMGTPE"
    i = 0
    v = float(n)
    while v >= 1024 and i < len(units) - 1:
        v /= 1024
        i += 1
    if n % (1024 ** i) == 0:
        return "%d%s" % (n // 1024 ** i, units[i])
    for prec in (2, 1, 0):
        s = "%.*f%s" % (prec, v, units[i])
        if len(s) <= 5:
            return s
    return s


def is_user_prop(p):
    return ":" in p and re.match(r"[a-z0-9_.:\-]+\Z", p) is not None and not p.startswith(":")


class ZFS:
    def __init__(self, sim):
        self.sim = sim
        self.st = sim.load_json("zfs.json", {"txg": 1, "pools": {}, "ds": {}})

    def save(self):
        self.sim.save_json("zfs.json", self.st)

    # ---------------------------------------------------------- helpers
    @property
    def ds(self):
        return self.st["ds"]

    def exists(self, name):
        return name in self.ds

    def _next(self):
        self.st["txg"] += 1
        return self.st["txg"]

    def pool_of(self, name):
        return re.split(r"[/@]", name)[0]

    def parent(self, name):
        if "@" in name:
            return name.split("@")[0]
        return name.rsplit("/", 1)[0] if "/" in name else None

    def children(self, name, snaps=True):
        pre = name + "/"
        out = [n for n in self.ds if n.startswith(pre) and "/" not in n[len(pre):] and "@" not in n]
        if snaps:
            out.extend(self.snapshots(name))
        return out

    def snapshots(self, name):
        pre = name + "@"
        return sorted((n for n in self.ds if n.startswith(pre)), key=lambda n: self.ds[n]["txg"])

    def descendants(self, name):
        """All datasets under name (filesystems/volumes and snapshots)."""
        pre = name + "/"
        return [n for n in self.ds if n.startswith(pre) or n.startswith(name + "@")]

    def clones_of(self, snap):
        return sorted(n for n, d in self.ds.items() if d.get("origin") == snap)

    def _new(self, name, typ, refer, props=None, origin=None, volsize=None):
        d = {"type": typ, "creation": int(time.time()), "txg": self._next(),
             "guid": int.from_bytes(os.urandom(8), "big") >> 1, "refer": refer,
             "props": dict(props or {})}
        if origin:
            d["origin"] = origin
        if volsize is not None:
            d["volsize"] = volsize
        self.ds[name] = d
        return d

    # ------------------------------------------------------- accounting
    def used(self, name):
        d = self.ds[name]
        if d["type"] == "snapshot":
            return d.get("used", 0)
        return self.refer(name) + self.used_children(name) + self.used_snaps(name) \
            + self.used_refreserv(name)

    def refer(self, name):
        return int(self.ds[name].get("refer", 0))

    def used_snaps(self, name):
        return sum(self.ds[s].get("used", 0) for s in self.snapshots(name))

    def used_children(self, name):
        return sum(self.used(c) for c in self.children(name, snaps=False))

    def used_refreserv(self, name):
        rr = int(self.get_value(name, "refreservation"))
        return max(0, rr - self.refer(name))

    def pool_free(self, pool):
        return max(0, self.st["pools"][pool]["size"] - self.used(pool))

    def available(self, name):
        pool = self.pool_of(name)
        avail = self.pool_free(pool)
        n = name
        while n:
            q = int(self.get_value(n, "quota")) if self.ds[n]["type"] == "filesystem" else 0
            if q:
                avail = min(avail, max(0, q - self.used(n)))
            n = self.parent(n)
        rq = int(self.get_value(name, "refquota")) if self.ds[name]["type"] == "filesystem" else 0
        if rq:
            avail = min(avail, max(0, rq - self.refer(name)))
        return avail

    # --------------------------------------------------------- properties
    def applies(self, name, prop):
        d = self.ds[name]
        code = {"filesystem": "f", "volume": "v", "snapshot": "s"}[d["type"]]
        p = PROPS.get(prop)
        return p is None or code in p[3]

    def lookup(self, name, prop):
        """(value, source) with raw values (numbers as int strings)."""
        d = self.ds[name]
        if is_user_prop(prop):
            if prop in d["props"]:
                return d["props"][prop], "local"
            n = self.parent(name)
            while n:
                if prop in self.ds[n]["props"]:
                    return self.ds[n]["props"][prop], "inherited from " + n
                n = self.parent(n)
            return "-", "-"
        p = PROPS[prop]
        default, inh, _, kind = p[1], p[2], p[3], p[4]
        if kind == "ro" or prop == "creation":
            return self._computed(name, prop), "-"
        if prop == "volsize":
            return str(d.get("volsize", 0)), "local"
        if kind == "create" and prop in d["props"]:
            return d["props"][prop], "-"
        if prop in d["props"]:
            return d["props"][prop], "local"
        if inh:
            n = self.parent(name)
            while n:
                if prop in self.ds[n]["props"]:
                    v = self.ds[n]["props"][prop]
                    if prop == "mountpoint" and v not in ("none", "legacy"):
                        rel = name[len(n):]
                        v = v.rstrip("/") + rel if v != "/" else rel
                    return v, "inherited from " + n
                n = self.parent(n)
        if prop == "mountpoint":
            return "/" + name, "default"
        if kind == "create":
            return default, "-"
        return default, "default"

    def get_value(self, name, prop):
        return self.lookup(name, prop)[0]

    def _computed(self, name, prop):
        d = self.ds[name]
        if prop == "type":
            return d["type"]
        if prop == "creation":
            return str(d["creation"])
        if prop == "used":
            return str(self.used(name))
        if prop == "available":
            return str(self.available(name))
        if prop in ("referenced", "logicalreferenced"):
            return str(self.refer(name))
        if prop in ("compressratio", "refcompressratio"):
            return "1.00"
        if prop == "mounted":
            return "yes" if self.get_value(name, "canmount") == "on" and \
                self.get_value(name, "mountpoint") not in ("none", "legacy") else "no"
        if prop == "origin":
            return d.get("origin", "-")
        if prop == "createtxg":
            return str(d["txg"])
        if prop == "guid":
            return str(d["guid"])
        if prop == "objsetid":
            return str(d["txg"] + 128)
        if prop == "version":
            return "5"
        if prop == "usedbysnapshots":
            return str(self.used_snaps(name))
        if prop == "usedbydataset":
            return str(self.refer(name))
        if prop == "usedbychildren":
            return str(self.used_children(name))
        if prop == "usedbyrefreservation":
            return str(self.used_refreserv(name))
        if prop in ("logicalused",):
            return str(self.used(name))
        if prop == "written":
            return str(self.refer(name) if d["type"] != "snapshot" else d.get("refer", 0))
        if prop == "defer_destroy":
            return "off"
        if prop == "userrefs":
            return "0"
        if prop == "clones":
            return ",".join(self.clones_of(name))
        return "-"

    def display(self, name, prop, value, parsable):
        if value == "-":
            return value
        if prop in ("quota", "refquota", "reservation", "refreservation") and value == "0" \
                and not parsable:
            return "none"
        if parsable:
            if prop in ("compressratio", "refcompressratio"):
                return value
            return value
        kind = PROPS.get(prop, (0, 0, 0, 0, "str"))[4]
        if prop in ("compressratio", "refcompressratio"):
            return value + "x"
        if prop == "creation":
            return time.strftime("%a %b %e %H:%M %Y", time.localtime(int(value)))
        if prop in ("used", "available", "referenced", "usedbysnapshots", "usedbydataset",
                    "usedbychildren", "usedbyrefreservation", "logicalused",
                    "logicalreferenced", "written") or (kind == "size" and value.isdigit()) \
                or (prop == "volblocksize"):
            return nicenum(int(value))
        return value

    def validate_set(self, name, prop, value, creating=False):
        """Returns the stored form of value or raises Die (zfs messages)."""
        what = "cannot create '%s'" % name if creating else "cannot set property for '%s'" % name
        if is_user_prop(prop):
            return value
        prop = ALIASES.get(prop, prop)
        p = PROPS.get(prop)
        if p is None:
            raise Die("%s: invalid property '%s'" % (what, prop), exit=1)
        kind = p[4]
        if kind == "ro" or prop == "creation" or (kind == "create" and not creating):
            raise Die("%s: '%s' is readonly" % (what, prop), exit=1)
        if name in self.ds and not self.applies(name, prop):
            raise Die("%s: '%s' does not apply to datasets of this type" % (what, prop), exit=1)
        if kind == "size" or prop in ("volblocksize",):
            if value == "none" and prop in ("quota", "refquota", "reservation", "refreservation"):
                return "0"
            n = parse_num(value)
            if n is None:
                raise Die("%s: bad numeric value '%s'" % (what, value), exit=1)
            if prop == "recordsize" and (n < 512 or n > 16 * 1024 * 1024 or n & (n - 1)):
                raise Die("%s: 'recordsize' must be power of 2 from 512B to 16M" % what, exit=1)
            if prop in ("quota", "refquota") and n and name in self.ds and \
                    n < (self.used(name) if prop == "quota" else self.refer(name)):
                raise Die("%s: size is less than current used or reserved space" % what, exit=1)
            return str(n)
        if kind == "onoff":
            if value not in ("on", "off"):
                raise Die("%s: '%s' must be one of 'on | off'" % (what, prop), exit=1)
            return value
        if kind in ("idx", "create") and prop in _CHOICES:
            if value not in _CHOICES[prop]:
                raise Die("%s: '%s' must be one of '%s'" % (what, prop, " | ".join(_CHOICES[prop])),
                          exit=1)
            return value
        if prop == "mountpoint" and value not in ("none", "legacy") and not value.startswith("/"):
            raise Die("%s: 'mountpoint' must be an absolute path, 'none', or 'legacy'" % what,
                      exit=1)
        return value

    # --------------------------------------------------------- operations
    def create(self, name, props=None, volsize=None, sparse=False, parents=False):
        props = dict(props or {})
        if name in self.ds:
            raise Die("cannot create '%s': dataset already exists" % name, exit=1)
        if not re.match(r"[A-Za-z0-9][A-Za-z0-9_.:\-/]*\Z", name) or "//" in name or \
                name.endswith("/"):
            raise Die("cannot create '%s': invalid character in dataset name" % name, exit=1)
        parent = self.parent(name)
        if parent is None:
            raise Die("cannot create '%s': missing dataset name" % name, exit=1)
        if self.pool_of(name) not in self.st["pools"]:
            raise Die("cannot create '%s': no such pool '%s'" % (name, self.pool_of(name)), exit=1)
        if parent not in self.ds:
            if not parents:
                raise Die("cannot create '%s': parent does not exist" % name, exit=1)
            self.create(parent, parents=True)
        if self.ds[parent]["type"] != "filesystem":
            raise Die("cannot create '%s': parent is not a filesystem" % name, exit=1)
        stored = {}
        for k, v in props.items():
            k = ALIASES.get(k, k)
            if k == "volsize":
                continue
            if PROPS.get(k) and volsize is None and "f" not in PROPS[k][3]:
                raise Die("cannot create '%s': '%s' does not apply to datasets of this type"
                          % (name, k), exit=1)
            if PROPS.get(k) and volsize is not None and "v" not in PROPS[k][3]:
                raise Die("cannot create '%s': '%s' does not apply to datasets of this type"
                          % (name, k), exit=1)
            stored[k] = self.validate_set(name, k, v, creating=True)
        if volsize is not None:
            if not sparse and "refreservation" not in stored:
                stored["refreservation"] = str(volsize)
            if self.pool_free(self.pool_of(name)) < (0 if sparse else volsize):
                raise Die("cannot create '%s': out of space" % name, exit=1)
            return self._new(name, "volume", VOL_REFER, stored, volsize=volsize)
        return self._new(name, "filesystem", FS_REFER, stored)

    def snapshot(self, name):
        ds, _, snap = name.partition("@")
        if ds not in self.ds or self.ds[ds]["type"] == "snapshot":
            raise Die("cannot open '%s': dataset does not exist" % ds, exit=1)
        if not re.match(r"[A-Za-z0-9_.:\-]+\Z", snap):
            raise Die("cannot create snapshot '%s': invalid character in snapshot name" % name,
                      exit=1)
        if name in self.ds:
            raise Die("cannot create snapshot '%s': dataset already exists" % name, exit=1)
        self._new(name, "snapshot", self.refer(ds))

    def destroy(self, name, recursive=False, clones=False, dry=False, verbose=False):
        if name not in self.ds:
            what = "could not find any snapshots to destroy; check snapshot names." \
                if "@" in name else "cannot open '%s': dataset does not exist" % name
            raise Die(what, exit=1)
        if "/" not in name and "@" not in name:
            raise Die("cannot destroy '%s': operation does not apply to pools\n"
                      "use 'zfs destroy -r %s' to destroy all datasets in the pool\n"
                      "use 'zpool destroy %s' to destroy the pool itself" % (name, name, name),
                      exit=1)
        victims = [name] + (self.descendants(name) if recursive or clones else [])
        if "@" in name:
            deps = self.clones_of(name)
            if deps and not clones:
                raise Die("cannot destroy '%s': snapshot has dependent clones\n"
                          "use '-R' to destroy the following datasets:\n%s"
                          % (name, "\n".join(deps)), exit=1)
        elif not recursive and not clones:
            kids = self.children(name)
            if kids:
                what = "volume" if self.ds[name]["type"] == "volume" else "filesystem"
                raise Die("cannot destroy '%s': %s has children\n"
                          "use '-r' to destroy the following datasets:\n%s"
                          % (name, what, "\n".join(sorted(self.descendants(name)))), exit=1)
        dep = []
        for v in list(victims):
            if "@" in v:
                dep.extend(c for c in self.clones_of(v) if c not in victims)
        if dep and not clones:
            raise Die(("cannot destroy '%s': " + self.ds[name]["type"]
                       + " has dependent clones\n"
                       "use '-R' to destroy the following datasets:\n%s")
                      % (name, "\n".join(sorted(set(dep)))), exit=1)
        if clones:
            while dep:
                extra = []
                for c in dep:
                    if c not in victims:
                        victims.append(c)
                        victims.extend(self.descendants(c))
                        for v in [c] + self.descendants(c):
                            if "@" in v:
                                extra.extend(self.clones_of(v))
                dep = [c for c in extra if c not in victims]
        out = []
        for v in sorted(set(victims), key=lambda n: (-n.count("/"), n)):
            if verbose:
                out.append(("would destroy %s" if dry else "will destroy %s") % v)
            if not dry:
                self.ds.pop(v, None)
        return out

    def rename(self, old, new, parents=False):
        if old not in self.ds:
            raise Die("cannot open '%s': dataset does not exist" % old, exit=1)
        if "@" in old:
            if "@" not in new:
                new = old.split("@")[0] + "@" + new
            if new.split("@")[0] != old.split("@")[0]:
                raise Die("cannot rename to '%s': snapshots must be part of same dataset" % new,
                          exit=1)
        if new in self.ds:
            raise Die("cannot rename to '%s': dataset already exists" % new, exit=1)
        if "@" not in new:
            if self.pool_of(new) != self.pool_of(old):
                raise Die("cannot rename to '%s': datasets must be within same pool" % new,
                          exit=1)
            par = self.parent(new)
            if par not in self.ds:
                if not parents:
                    raise Die("cannot rename to '%s': parent does not exist" % new, exit=1)
                self.create(par, parents=True)
        moved = [old] + ([] if "@" in old else self.descendants(old))
        for n in moved:
            nn = new + n[len(old):]
            self.ds[nn] = self.ds.pop(n)
        for d in self.ds.values():
            o = d.get("origin")
            if o and (o == old or o.startswith(old + "@") or o.startswith(old + "/")):
                d["origin"] = new + o[len(old):]

    def rollback(self, snap, recursive=False):
        if snap not in self.ds or "@" not in snap:
            raise Die("cannot open '%s': dataset does not exist" % snap, exit=1)
        ds = snap.split("@")[0]
        later = [s for s in self.snapshots(ds) if self.ds[s]["txg"] > self.ds[snap]["txg"]]
        if later and not recursive:
            raise Die("cannot rollback to '%s': more recent snapshots or bookmarks exist\n"
                      "use '-r' to force deletion of the following snapshots and bookmarks:\n%s"
                      % (snap, "\n".join(later)), exit=1)
        for s in later:
            if self.clones_of(s):
                raise Die("cannot rollback to '%s': clones of previous snapshots exist\n"
                          "use '-R' to force deletion of the following clones and dependents:\n%s"
                          % (snap, "\n".join(self.clones_of(s))), exit=1)
            self.ds.pop(s)
        self.ds[ds]["refer"] = self.ds[snap]["refer"]

    def clone(self, snap, name, props=None, parents=False):
        if snap not in self.ds or "@" not in snap:
            raise Die("cannot open '%s': dataset does not exist" % snap, exit=1)
        src = self.ds[snap.split("@")[0]]
        if name in self.ds:
            raise Die("cannot create '%s': dataset already exists" % name, exit=1)
        par = self.parent(name)
        if par not in self.ds:
            if not parents:
                raise Die("cannot create '%s': parent does not exist" % name, exit=1)
            self.create(par, parents=True)
        stored = {k: self.validate_set(name, k, v, creating=True) for k, v in (props or {}).items()}
        d = self._new(name, src["type"], self.ds[snap]["refer"], stored, origin=snap,
                      volsize=src.get("volsize"))
        return d

    def set(self, name, prop, value):
        if name not in self.ds:
            raise Die("cannot open '%s': dataset does not exist" % name, exit=1)
        prop = ALIASES.get(prop, prop)
        if prop == "volsize":
            if self.ds[name]["type"] != "volume":
                raise Die("cannot set property for '%s': 'volsize' does not apply to datasets of"
                          " this type" % name, exit=1)
            n = parse_num(value)
            if n is None:
                raise Die("cannot set property for '%s': bad numeric value '%s'" % (name, value),
                          exit=1)
            old = self.ds[name].get("volsize", 0)
            self.ds[name]["volsize"] = n
            if self.ds[name]["props"].get("refreservation") == str(old):
                self.ds[name]["props"]["refreservation"] = str(n)
            return
        self.ds[name]["props"][prop] = self.validate_set(name, prop, value)

    def inherit(self, name, prop, recursive=False):
        if name not in self.ds:
            raise Die("cannot open '%s': dataset does not exist" % name, exit=1)
        prop = ALIASES.get(prop, prop)
        p = PROPS.get(prop)
        if p is None and not is_user_prop(prop):
            raise Die("invalid property '%s'" % prop, exit=1)
        if p is not None and not p[2]:
            raise Die("'%s' property cannot be inherited" % prop, exit=1)
        for n in [name] + (self.descendants(name) if recursive else []):
            self.ds[n]["props"].pop(prop, None)

    def create_pool(self, pool, vdevs, size, props=None, fsprops=None, mountpoint=None):
        if pool in self.st["pools"]:
            raise Die("cannot create '%s': pool already exists" % pool, exit=1)
        if not re.match(r"[A-Za-z][A-Za-z0-9_.:\-]*\Z", pool) or \
                re.match(r"(mirror|raidz\d?|draid\d?|spare|log|cache|special|c[0-9].*)\Z", pool):
            raise Die("cannot create '%s': invalid character in pool name" % pool, exit=1)
        used = {d for p in self.st["pools"].values() for _, devs in p["vdevs"] for d in devs}
        for _, devs in vdevs:
            for d in devs:
                if d in used:
                    owner = [n for n, p in self.st["pools"].items()
                             if any(d in ds for _, ds in p["vdevs"])][0]
                    raise Die("%s is part of active pool '%s'" % (d, owner), exit=1)
        self.st["pools"][pool] = {"size": size, "vdevs": vdevs, "health": "ONLINE",
                                  "guid": int.from_bytes(os.urandom(8), "big") >> 1,
                                  "props": dict(props or {})}
        fs = {}
        for k, v in (fsprops or {}).items():
            fs[ALIASES.get(k, k)] = v
        if mountpoint:
            fs["mountpoint"] = mountpoint
        self._new(pool, "filesystem", FS_REFER, {})
        for k, v in fs.items():
            self.ds[pool]["props"][k] = self.validate_set(pool, k, v, creating=True)

    def destroy_pool(self, pool):
        if pool not in self.st["pools"]:
            raise Die("cannot open '%s': no such pool" % pool, exit=1)
        del self.st["pools"][pool]
        for n in [n for n in self.ds if self.pool_of(n) == pool]:
            del self.ds[n]


# ================================================================ CLI

ZFS_USAGE = """usage: zfs command args ...
where 'command' is one of the following:

\tcreate [-Pnpuv] [-o property=value] ... <filesystem>
\tcreate [-Pnpsv] [-b blocksize] [-o property=value] ... -V <size> <volume>
\tdestroy [-fnpRrv] <filesystem|volume>
\tsnapshot [-r] [-o property=value] ... <filesystem|volume>@<snap> ...
\trollback [-rRf] <snapshot>
\tclone [-p] [-o property=value] ... <snapshot> <filesystem|volume>
\trename [-f] <filesystem|volume|snapshot> <filesystem|volume|snapshot>
\tlist [-Hp] [-r|-d max] [-o property[,...]] [-s property]...
\t    [-S property]... [-t type[,...]] [filesystem|volume|snapshot] ...
\tset <property=value> ... <filesystem|volume|snapshot> ...
\tget [-rHp] [-d max] [-o "all" | field[,...]]
\t    [-t type[,...]] [-s source[,...]]
\t    <"all" | property[,...]> [filesystem|volume|snapshot|bookmark] ...
\tinherit [-rS] <property> <filesystem|volume|snapshot> ...
"""


def _getopt(args, spec):
    """POSIX getopt for zfs/zpool: spec like 'rHpd:o:'; returns (opts, rest)."""
    opts, rest = [], list(args)
    while rest and rest[0].startswith("-") and rest[0] != "-":
        a = rest.pop(0)
        if a == "--":
            break
        i = 1
        while i < len(a):
            c = a[i]
            j = spec.find(c)
            if j < 0:
                raise Die("invalid option '%s'\n%s" % (c, ZFS_USAGE), exit=2)
            if j + 1 < len(spec) and spec[j + 1] == ":":
                val = a[i + 1:] if i + 1 < len(a) else (rest.pop(0) if rest else None)
                if val is None:
                    raise Die("missing argument for '%s' option\n%s" % (c, ZFS_USAGE), exit=2)
                opts.append((c, val))
                break
            opts.append((c, None))
            i += 1
    return opts, rest


def _props_arg(v, opts):
    if "=" not in v:
        raise Die("missing '=' for property=value argument\n" + ZFS_USAGE, exit=2)
    k, _, val = v.partition("=")
    if k in opts:
        raise Die("property '%s' specified multiple times" % k, exit=2)
    opts[k] = val


def _table(rows, headers, right, scripted):
    if scripted:
        return "".join("\t".join(r) + "\n" for r in rows)
    widths = [len(h) for h in headers]
    for r in rows:
        for i, c in enumerate(r):
            widths[i] = max(widths[i], len(c))
    out = []
    for r in [headers] + rows:
        cells = []
        for i, c in enumerate(r):
            if i == len(r) - 1:
                cells.append(c.rjust(widths[i]) if right[i] else c)
            else:
                cells.append(c.rjust(widths[i]) if right[i] else c.ljust(widths[i]))
        out.append("  ".join(cells).rstrip() + "\n")
    return "".join(out)


_LIST_RIGHT = {"used", "available", "referenced", "quota", "refquota", "reservation",
               "refreservation", "volsize", "recordsize", "written", "logicalused",
               "logicalreferenced", "usedbysnapshots", "usedbydataset", "usedbychildren",
               "usedbyrefreservation", "volblocksize", "createtxg", "guid", "objsetid",
               "compressratio", "refcompressratio", "userrefs", "copies"}
_HEAD = {"available": "AVAIL", "referenced": "REFER", "compressratio": "RATIO",
         "refcompressratio": "REFRATIO", "volblocksize": "VOLBLOCK", "recordsize": "RECSIZE",
         "logicalused": "LUSED", "logicalreferenced": "LREFER", "usedbysnapshots": "USEDSNAP",
         "usedbydataset": "USEDDS", "usedbychildren": "USEDCHILD",
         "usedbyrefreservation": "USEDREFRESERV", "refreservation": "REFRESERV",
         "reservation": "RESERV", "compression": "COMPRESS"}


def _select(z, targets, recursive, depth, types, implicit_snaps=True, missing=None):
    """Datasets for list/get: explicit targets (+ -r/-d) or everything. A
    missing target is reported and skipped (zfs exits 1 at the end)."""
    def typ_ok(n):
        return z.ds[n]["type"] in types

    out = []
    if not targets:
        for n in sorted(z.ds, key=_sortkey(z)):
            if typ_ok(n):
                out.append(n)
        return out
    for t in targets:
        if t not in z.ds:
            sys.stderr.write("cannot open '%s': dataset does not exist\n" % t)
            if missing is not None:
                missing.append(t)
            continue
        if recursive or depth is not None:
            base = t.count("/")
            cand = [t] + [n for n in z.descendants(t)]
            for n in sorted(cand, key=_sortkey(z)):
                d = n.split("@")[0].count("/") - base + (1 if "@" in n else 0)
                if depth is not None and d > depth:
                    continue
                if typ_ok(n) or n == t and "@" in t:
                    out.append(n)
        else:
            if typ_ok(t) or "@" in t:
                out.append(t)
            if implicit_snaps and "snapshot" in types and "@" not in t and \
                    types == {"snapshot"}:
                out.extend(z.snapshots(t))
                if t in out and not typ_ok(t):
                    out.remove(t)
    return out


def _sortkey(z):
    def k(n):
        ds, _, snap = n.partition("@")
        return (ds.split("/"), 1 if snap else 0, z.ds[n]["txg"] if snap else 0)
    return k


def _types(v):
    out = set()
    for t in v.split(","):
        if t == "all":
            out |= {"filesystem", "volume", "snapshot"}
        elif t in ("filesystem", "volume", "snapshot", "bookmark"):
            out.add(t)
        elif t in ("fs", "vol", "snap"):
            out.add({"fs": "filesystem", "vol": "volume", "snap": "snapshot"}[t])
        else:
            raise Die("invalid type '%s'\nfor type '-t' option, one of the following types is"
                      " required: filesystem, snapshot, volume, bookmark, or all" % t, exit=2)
    return out


def _check_props(names, allow_all=False):
    out = []
    for p in names:
        if p == "all" and allow_all:
            out.append(p)
            continue
        pp = ALIASES.get(p, p)
        if pp in ("name",) or pp in PROPS or is_user_prop(pp):
            out.append(pp)
        else:
            raise Die("bad property list: invalid property '%s'\n%s" % (p, ZFS_USAGE), exit=2)
    return out


def zfs_main(sim, argv):
    if not argv:
        raise Die("missing command\n" + ZFS_USAGE, exit=2)
    cmd, args = argv[0], argv[1:]
    sim.lock()
    z = ZFS(sim)
    out = []
    if cmd == "list":
        o, rest = _getopt(args, "rHpd:o:s:S:t:")
        cols = ["name", "used", "available", "referenced", "mountpoint"]
        scripted = parsable = recursive = False
        depth, types, sorts = None, None, []
        for c, v in o:
            if c == "r":
                recursive = True
            elif c == "H":
                scripted = True
            elif c == "p":
                parsable = True
            elif c == "d":
                depth = int(v)
            elif c == "o":
                cols = _check_props(v.split(","))
            elif c in "sS":
                sorts.append((_check_props([v])[0], c == "S"))
            elif c == "t":
                types = _types(v)
        if types is None:
            types = {"filesystem", "volume"} | ({"snapshot"} if any("@" in t for t in rest)
                                                else set())
        missing = []
        names = _select(z, rest, recursive, depth, types, missing=missing)
        for prop, desc in reversed(sorts):
            def sk(n, prop=prop):
                v = z.get_value(n, prop) if prop != "name" else n
                return (0, int(v)) if v.isdigit() else (1, v)
            names.sort(key=sk, reverse=desc)
        rows = []
        for n in names:
            row = []
            for c in cols:
                if c == "name":
                    row.append(n)
                elif not z.applies(n, c):
                    row.append("-")
                else:
                    row.append(z.display(n, c, z.get_value(n, c), parsable))
            rows.append(row)
        if not rows and not scripted and not rest:
            sys.stdout.write("no datasets available\n")
            return 0
        heads = [_HEAD.get(c, c.upper()) for c in cols]
        if rows:
            out.append(_table(rows, heads, [c in _LIST_RIGHT for c in cols], scripted))
        if missing:
            sys.stdout.write("".join(out))
            return 1
    elif cmd == "get":
        o, rest = _getopt(args, "rHpd:o:t:s:")
        fields = ["name", "property", "value", "source"]
        scripted = parsable = recursive = False
        depth, types, sources = None, None, None
        for c, v in o:
            if c == "r":
                recursive = True
            elif c == "H":
                scripted = True
            elif c == "p":
                parsable = True
            elif c == "d":
                depth = int(v)
            elif c == "o":
                fields = ["name", "property", "value", "received", "source"] if v == "all" \
                    else v.split(",")
                for f in fields:
                    if f not in SNAP_LIMIT_FIELDS:
                        raise Die("invalid column name '%s'\n%s" % (f, ZFS_USAGE), exit=2)
            elif c == "t":
                types = _types(v)
            elif c == "s":
                sources = set(v.split(","))
        if not rest:
            raise Die("missing property argument\n" + ZFS_USAGE, exit=2)
        props = _check_props(rest[0].split(","), allow_all=True)
        targets = rest[1:]
        if types is None:
            types = {"filesystem", "volume"} | ({"snapshot"} if recursive or depth is not None
                                                or any("@" in t for t in targets) else set())
        missing = []
        names = _select(z, targets, recursive, depth, types, implicit_snaps=False,
                        missing=missing)
        rows = []
        for n in names:
            plist = props
            if "all" in props:
                plist = [p for p in ORDER if z.applies(n, p) and
                         not (p == "origin" and "origin" not in z.ds[n])]
                user = set()
                m = n
                while m:
                    user |= {k for k in z.ds[m]["props"] if is_user_prop(k)}
                    m = z.parent(m)
                plist = plist + sorted(user)
            for p in plist:
                if p == "name":
                    val, src = n, "-"
                elif not z.applies(n, p):
                    val, src = "-", "-"
                else:
                    val, src = z.lookup(n, p)
                    val = z.display(n, p, val, parsable)
                if sources is not None:
                    kind = src.split(" ")[0] if src != "-" else "none"
                    if kind not in sources:
                        continue
                rec = {"name": n, "property": p, "value": val, "received": "-", "source": src}
                rows.append([rec[f] for f in fields])
        if rows:
            out.append(_table(rows, [f.upper() for f in fields], [False] * len(fields),
                              scripted))
        if missing:
            sys.stdout.write("".join(out))
            return 1
    elif cmd == "create":
        o, rest = _getopt(args, "pusnPvo:V:b:")
        props, volsize, sparse, parents = {}, None, False, False
        for c, v in o:
            if c == "o":
                _props_arg(v, props)
            elif c == "V":
                volsize = parse_num(v)
                if volsize is None:
                    raise Die("bad volume size '%s': bad numeric value '%s'" % (v, v), exit=1)
            elif c == "s":
                sparse = True
            elif c == "b":
                props["volblocksize"] = v
            elif c == "p":
                parents = True
        if len(rest) != 1:
            raise Die(("missing filesystem argument\n" if not rest else "too many arguments\n")
                      + ZFS_USAGE, exit=2)
        if sparse and volsize is None:
            raise Die("'-s' and '-b' can only be used when creating a volume\n" + ZFS_USAGE, exit=2)
        z.create(rest[0], props, volsize, sparse, parents)
        z.save()
    elif cmd == "set":
        if len(args) < 2:
            raise Die("missing arguments\n" + ZFS_USAGE, exit=2)
        assigns = [a for a in args if "=" in a]
        names = [a for a in args if "=" not in a]
        if not names:
            raise Die("missing dataset name(s)\n" + ZFS_USAGE, exit=2)
        for n in names:
            if n not in z.ds:
                raise Die("cannot open '%s': dataset does not exist" % n, exit=1)
            for a in assigns:
                k, _, v = a.partition("=")
                z.set(n, k, v)
        z.save()
    elif cmd == "inherit":
        o, rest = _getopt(args, "rS")
        if len(rest) < 2:
            raise Die("missing arguments\n" + ZFS_USAGE, exit=2)
        for n in rest[1:]:
            z.inherit(n, rest[0], any(c == "r" for c, _ in o))
        z.save()
    elif cmd == "snapshot" or cmd == "snap":
        o, rest = _getopt(args, "ro:")
        if not rest:
            raise Die("missing snapshot argument\n" + ZFS_USAGE, exit=2)
        rec = any(c == "r" for c, _ in o)
        for s in rest:
            if "@" not in s:
                raise Die("cannot create snapshot '%s': empty component or misplaced '@' or '#'"
                          " delimiter in name" % s, exit=1)
            names = [s]
            if rec:
                ds, _, snap = s.partition("@")
                names += ["%s@%s" % (d, snap) for d in z.descendants(ds) if "@" not in d]
            for n in names:
                z.snapshot(n)
        z.save()
    elif cmd == "destroy":
        o, rest = _getopt(args, "rRfnpv")
        flags = {c for c, _ in o}
        if len(rest) != 1:
            raise Die("missing dataset argument\n" + ZFS_USAGE, exit=2)
        lines = z.destroy(rest[0], "r" in flags, "R" in flags, "n" in flags, "v" in flags)
        out.extend(line + "\n" for line in lines)
        z.save()
    elif cmd == "rename":
        o, rest = _getopt(args, "fpru")
        if len(rest) != 2:
            raise Die("missing target dataset name\n" + ZFS_USAGE, exit=2)
        z.rename(rest[0], rest[1], any(c == "p" for c, _ in o))
        z.save()
    elif cmd == "rollback":
        o, rest = _getopt(args, "rRf")
        if len(rest) != 1:
            raise Die("missing dataset argument\n" + ZFS_USAGE, exit=2)
        z.rollback(rest[0], any(c in "rR" for c, _ in o))
        z.save()
    elif cmd == "clone":
        o, rest = _getopt(args, "puo:")
        props = {}
        for c, v in o:
            if c == "o":
                _props_arg(v, props)
        if len(rest) != 2:
            raise Die("missing target dataset argument\n" + ZFS_USAGE, exit=2)
        z.clone(rest[0], rest[1], props, any(c == "p" for c, _ in o))
        z.save()
    else:
        raise Die("unrecognized command '%s'\n%s" % (cmd, ZFS_USAGE), exit=2)
    sys.stdout.write("".join(out))
    return 0


ZPOOL_USAGE = """usage: zpool command args ...
where 'command' is one of the following:

\tcreate [-fnd] [-o property=value] ...
\t    [-O file-system-property=value] ...
\t    [-m mountpoint] [-R root] <pool> <vdev> ...
\tdestroy [-f] <pool>
\tlist [-gHLpPv] [-o property[,...]] [-T d|u] [pool] ...
\tstatus [-DegiLpPstvx] [-T d|u] [pool] ...
"""
_ZP_COLS = ["name", "size", "allocated", "free", "checkpoint", "expandsize", "fragmentation",
            "capacity", "dedupratio", "health", "altroot"]
_ZP_ALIAS = {"alloc": "allocated", "frag": "fragmentation", "cap": "capacity",
             "dedup": "dedupratio", "ckpoint": "checkpoint", "expandsz": "expandsize"}
_ZP_HEAD = {"allocated": "ALLOC", "fragmentation": "FRAG", "capacity": "CAP",
            "dedupratio": "DEDUP", "checkpoint": "CKPOINT", "expandsize": "EXPANDSZ"}


def _pool_value(z, pool, col, parsable):
    p = z.st["pools"][pool]
    size = p["size"]
    alloc = min(size, z.used(pool))
    vals = {
        "name": pool, "size": size, "allocated": alloc, "free": size - alloc,
        "checkpoint": "-", "expandsize": "-", "fragmentation": 0,
        "capacity": int(alloc * 100 // size) if size else 0,
        "dedupratio": "1.00" if parsable else "1.00x",
        "health": p["health"], "altroot": "-", "guid": str(p["guid"]),
    }
    v = vals.get(col, "-")
    if parsable or isinstance(v, str):
        return str(v)
    if col in ("fragmentation", "capacity"):
        return "%d%%" % v
    return nicenum(v)


def zpool_main(sim, argv):
    if not argv:
        raise Die("missing command\n" + ZPOOL_USAGE, exit=2)
    cmd, args = argv[0], argv[1:]
    sim.lock()
    z = ZFS(sim)
    out = ""
    if cmd == "create":
        o, rest = _getopt(args, "fndo:O:m:R:t:")
        props, fsprops, mp = {}, {}, None
        for c, v in o:
            if c == "o":
                _props_arg(v, props)
            elif c == "O":
                _props_arg(v, fsprops)
            elif c == "m":
                mp = v
        if not rest:
            raise Die("missing pool name argument\n" + ZPOOL_USAGE, exit=2)
        pool, devs = rest[0], rest[1:]
        if not devs:
            raise Die("missing vdev specification\n" + ZPOOL_USAGE, exit=2)
        vdevs, cur = [], None
        for d in devs:
            if re.match(r"(mirror|raidz[123]?|draid[123]?(:.*)?|spare|log|cache|special|dedup)\Z",
                        d):
                cur = [d, []]
                vdevs.append(cur)
            elif cur is None:
                vdevs.append(["disk", [d]])
            else:
                cur[1].append(d)
        size = 0
        for kind, ds in vdevs:
            if kind in ("log", "cache", "spare", "special", "dedup"):
                continue
            sizes = [_dev_size(sim, d) for d in ds]
            if kind == "disk":
                size += sum(sizes)
            elif kind == "mirror":
                size += min(sizes)
            else:
                par = int(kind[-1]) if kind[-1].isdigit() else 1
                size += min(sizes) * max(1, len(sizes) - par)
        z.create_pool(pool, vdevs, size, props, fsprops, mp)
        z.save()
    elif cmd == "destroy":
        _, rest = _getopt(args, "f")
        if len(rest) != 1:
            raise Die("missing pool argument\n" + ZPOOL_USAGE, exit=2)
        z.destroy_pool(rest[0])
        z.save()
    elif cmd == "list":
        o, rest = _getopt(args, "gHLpPvo:T:")
        cols, scripted, parsable = list(_ZP_COLS), False, False
        for c, v in o:
            if c == "H":
                scripted = True
            elif c == "p":
                parsable = True
            elif c == "o":
                cols = []
                for x in v.split(","):
                    x = _ZP_ALIAS.get(x, x)
                    if x not in _ZP_COLS + ["guid"]:
                        raise Die("bad property list: invalid property '%s'\n%s"
                                  % (x, ZPOOL_USAGE), exit=2)
                    cols.append(x)
        pools = rest or sorted(z.st["pools"])
        rows = []
        for p in pools:
            if p not in z.st["pools"]:
                raise Die("cannot open '%s': no such pool" % p, exit=1)
            rows.append([_pool_value(z, p, c, parsable) for c in cols])
        if not rows and not rest:
            out = "no pools available\n"
        else:
            out = _table(rows, [_ZP_HEAD.get(c, c.upper()) for c in cols],
                         [c not in ("name", "health", "altroot") for c in cols], scripted)
    elif cmd == "status":
        o, rest = _getopt(args, "DegiLpPstvxT:")
        if ("x", None) in o:
            bad = [p for p in sorted(z.st["pools"]) if z.st["pools"][p]["health"] != "ONLINE"]
            if not bad:
                out = "all pools are healthy\n"
                sys.stdout.write(out)
                return 0
            rest = rest or bad
        pools = rest or sorted(z.st["pools"])
        if not pools:
            out = "no pools available\n"
        blocks = []
        for p in pools:
            if p not in z.st["pools"]:
                raise Die("cannot open '%s': no such pool" % p, exit=1)
            blocks.append(_pool_status(z, p, ("P", None) in o))
        out += "\n".join(blocks)
    else:
        raise Die("unrecognized command '%s'\n%s" % (cmd, ZPOOL_USAGE), exit=2)
    sys.stdout.write(out)
    return 0


def _dev_size(sim, dev):
    path = dev if dev.startswith("/") else None
    for cand in ([path, sim.root + path] if path else []):
        if cand and os.path.isfile(cand):
            return os.path.getsize(cand)
    return parse_num(str(sim.settings.get("zfs_device_size", "100G")))


def _vdev_name(d, full):
    if full:
        return d
    return re.sub(r"^/dev/(disk/by-[a-z-]+/)?", "", d)


def _pool_status(z, pool, full=False):
    p = z.st["pools"][pool]
    rows = [(0, pool, p["health"])]
    n = 0
    for kind, devs in p["vdevs"]:
        if kind == "disk":
            rows.append((1, _vdev_name(devs[0], full), "ONLINE"))
        elif kind in ("log", "cache", "spare", "special", "dedup"):
            rows.append((-1, {"log": "logs", "spare": "spares"}.get(kind, kind), None))
            rows.extend((1, _vdev_name(d, full), "ONLINE" if kind != "spare" else "AVAIL")
                        for d in devs)
        else:
            rows.append((1, "%s-%d" % (kind, n), "ONLINE"))
            rows.extend((2, _vdev_name(d, full), "ONLINE") for d in devs)
            n += 1
    width = max([10] + [2 * d + len(name) for d, name, _ in rows if d >= 0])
    out = "  pool: %s\n state: %s\nconfig:\n\n" % (pool, p["health"])
    out += "\t%-*s  %-8s %5s %5s %5s\n" % (width, "NAME", "STATE", "READ", "WRITE", "CKSUM")
    for depth, name, state in rows:
        if depth < 0:
            out += "\t%s\n" % name
            continue
        label = "  " * depth + name
        out += "\t%-*s  %-8s %5s %5s %5s\n" % (width, label, state, "0", "0", "0")
    out += "\nerrors: No known data errors\n"
    return out
