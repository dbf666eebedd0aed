"""What pct and qm share (PVE::AbstractConfig and PVE::GuestHelpers):
config loading and locks, snapshot create/delete/rollback and the snapshot
tree, pending changes, templates, tags, and status figures."""

import copy
import re
import time

from . import conf as confmod
from . import schema
from .errors import Die
from .storage import Storage

VOLID_RE = re.compile(r"[a-z][a-z0-9\-_.]*[a-z0-9]:", re.I)


class GuestType:
    kind = None        # 'lxc' | 'qemu'
    tstr = None        # 'CT' | 'VM'
    exe = None

    def __init__(self, sim):
        self.sim = sim
        self._storage = None

    @property
    def storage(self):
        if self._storage is None:
            self._storage = Storage(self.sim)
        return self._storage

    def save_storage(self):
        if self._storage is not None:
            self._storage.save()

    # ------------------------------------------------------ config I/O
    def load(self, vmid, warn=True):
        return self.sim.load_conf(self.kind, vmid, warn=warn)

    def write(self, vmid, c):
        c = {k: v for k, v in c.items() if k != "digest"}
        # as qemu-server/pve-container do on write: an unusedN entry whose
        # volume a disk uses again (main or pending section) is dropped
        used = {v for _, v in self.volumes(c)}
        used |= {v for _, v in self.volumes(c.get("pending") or {})}
        for k in [k for k in c if re.match(r"unused\d+\Z", k) and c[k] in used]:
            del c[k]
        self.sim.write_conf(self.kind, vmid, c)

    def check_lock(self, c):
        if c.get("lock"):
            raise Die("%s is locked (%s)" % (self.tstr, c["lock"]))

    def check_protection(self, c, msg):
        if c.get("protection") == "1":
            raise Die("%s - protection mode enabled" % msg)

    def is_template(self, c):
        return c.get("template") == "1"

    def assert_digest(self, digest, c):
        if digest and digest != c.get("digest"):
            raise Die("detected modified configuration - file changed by other user? Try again.")

    # ---------------------------------------------------------- volumes
    def volumes(self, c, include_unused=False):
        """[(key, volid)] of storage volumes a config references."""
        raise NotImplementedError

    # ------------------------------------------------------- snapshots
    def check_snapname(self, name):
        if name == "current" or (self.kind == "lxc" and name == "vzdump") or \
                (self.kind == "qemu" and name.lower() == "pending"):
            raise Die("unable to use snapshot name '%s' (reserved name)" % name)

    def snapshot_create(self, vmid, name, description=None, vmstate=False):
        self.check_snapname(name)
        c = self.load(vmid)
        if self.is_template(c):
            raise Die("you can't take a snapshot if it's a template")
        self.check_lock(c)
        if name in c["snapshots"]:
            raise Die("snapshot name '%s' already used" % name)
        running = self.sim.running(vmid)
        vols = self.volumes(c)
        for key, volid in vols:
            if not self.storage.has_feature("snapshot", volid):
                raise Die("snapshot feature is not available")
        snap = {k: copy.deepcopy(v) for k, v in c.items()
                if k not in ("snapshots", "pending", "special", "digest", "lock", "description",
                             "snapstate")}
        snap["snaptime"] = str(int(time.time()))
        if description:
            snap["description"] = description
        if self.kind == "qemu" and vmstate and running:
            sid = self.vmstate_storage(c)
            state = self.storage.alloc(sid, vmid, "raw", int(self.mem_mb(c)) * 2 ** 20 +
                                       2 ** 29, name="vm-%s-state-%s" % (vmid, name))
            snap["vmstate"] = state
            snap["runningmachine"] = "pc-i440fx-9.0+pve0"
        for key, volid in vols:
            self.storage.snapshot(volid, name)
        c["snapshots"][name] = snap
        c["parent"] = name
        self.write(vmid, c)
        self.save_storage()

    def snapshot_delete(self, vmid, name, force=False):
        c = self.load(vmid)
        if name not in c["snapshots"]:
            raise Die("snapshot '%s' does not exist" % name)
        if not force:
            self.check_lock(c)
        snap = c["snapshots"][name]
        for key, volid in self.volumes(snap):
            if self.storage.exists(volid):
                self.storage.delete_snapshot(volid, name)
        if snap.get("vmstate"):
            try:
                self.storage.free(snap["vmstate"])
            except Die:
                pass
        parent = snap.get("parent")
        for s in c["snapshots"].values():
            if s.get("parent") == name:
                if parent:
                    s["parent"] = parent
                else:
                    s.pop("parent", None)
        if c.get("parent") == name:
            if parent:
                c["parent"] = parent
            else:
                c.pop("parent", None)
        del c["snapshots"][name]
        self.write(vmid, c)
        self.save_storage()

    def snapshot_rollback(self, vmid, name, start=False):
        c = self.load(vmid)
        if name not in c["snapshots"]:
            raise Die("snapshot '%s' does not exist" % name)
        self.check_lock(c)
        snap = c["snapshots"][name]
        if snap.get("snapstate"):
            raise Die("unable to rollback to incomplete snapshot (snapstate = %s)"
                      % snap["snapstate"])
        for key, volid in self.volumes(snap):
            self.storage.rollback_is_possible(volid, name)
        if self.sim.running(vmid):
            self.stop_guest(vmid)
        for key, volid in self.volumes(snap):
            self.storage.rollback(volid, name)
        new = {"snapshots": c["snapshots"]}
        for k, v in c.items():
            if re.match(r"unused\d+\Z", k) or k == "description":
                new[k] = v
        for k, v in snap.items():
            if k in ("snaptime", "vmstate", "lock", "digest", "description") or \
                    re.match(r"unused\d+\Z", k):
                continue
            new[k] = copy.deepcopy(v)
        in_snap = {v for _, v in self.volumes(snap)}
        for key, volid in self.volumes(c):
            if volid not in in_snap:
                self.add_unused(new, volid)
        new["parent"] = name
        self.write(vmid, new)
        self.save_storage()
        if self.kind == "qemu" and snap.get("vmstate"):
            self.start_guest(vmid, new)
        elif start:
            self.start_guest(vmid, new)

    def add_unused(self, c, volid):
        for k, v in c.items():
            if re.match(r"unused\d+\Z", k) and v == volid:
                return k
        i = 0
        while "unused%d" % i in c:
            i += 1
        c["unused%d" % i] = volid
        return "unused%d" % i

    def snapshot_list(self, vmid):
        c = self.load(vmid)
        res = []
        for name, s in c["snapshots"].items():
            e = {"name": name, "description": s.get("description", "")}
            if s.get("snaptime"):
                e["snaptime"] = int(s["snaptime"])
            if s.get("parent"):
                e["parent"] = s["parent"]
            if s.get("vmstate"):
                e["vmstate"] = 1
            res.append(e)
        cur = {"name": "current", "digest": str(c["digest"]), "description": "You are here!",
               "running": 1 if self.sim.running(vmid) else 0}
        if c.get("parent"):
            cur["parent"] = c["parent"]
        res.append(cur)
        return res

    # --------------------------------------------------------- pending
    def pending_list(self, vmid):
        """PVE's config_with_pending_array: {key, value?, pending?, delete?}
        for every current and pending key, sorted by key."""
        c = self.load(vmid)
        dels = confmod.pending_delete(c)
        pend = dict(c.get("pending") or {})
        pend.pop("delete", None)
        if self.kind == "qemu":
            if c.get("cipassword") is not None:
                c["cipassword"] = "**********"
            if pend.get("cipassword") is not None:
                pend["cipassword"] = "********** "
        items = []
        for k, v in c.items():
            if k in ("pending", "snapshots", "special", "lxc", "digest"):
                continue
            it = {"key": k, "value": v}
            if k in pend:
                it["pending"] = pend.pop(k)
            if k in dels:
                it["delete"] = 2 if dels.pop(k) else 1
            items.append(it)
        for k, v in pend.items():
            items.append({"key": k, "pending": v})
        for k, f in dels.items():
            items.append({"key": k, "delete": 2 if f else 1})
        return sorted(items, key=lambda i: i["key"])

    def pending_json(self, vmid):
        """pending_list with integer/number options as JSON numbers."""
        table = schema.options(self.kind, "set")
        out = []
        for it in self.pending_list(vmid):
            d = table.get(it["key"]) or {}
            for f in ("value", "pending"):
                if f in it:
                    it[f] = _typed(d, it[f])
            out.append(it)
        return out

    def print_pending(self, vmid, out):
        for it in self.pending_list(vmid):
            k = it["key"]
            v, p = it.get("value"), it.get("pending")
            if k == "description":
                v = confmod.encode_text(v) if v is not None else None
                p = confmod.encode_text(p) if p is not None else None
            if v is not None:
                if it.get("delete"):
                    out.append("del %s: %s\n" % (k, v))
                elif p is not None:
                    out.append("cur %s: %s\n" % (k, v))
                    out.append("new %s: %s\n" % (k, p))
                else:
                    out.append("cur %s: %s\n" % (k, v))
            elif p is not None:
                out.append("new %s: %s\n" % (k, p))

    # ------------------------------------------------------ the config
    def print_config(self, vmid, current, snapname, out):
        c = self.load(vmid)
        if snapname:
            if snapname not in c["snapshots"]:
                raise Die("snapshot '%s' does not exist" % snapname)
            view = dict(c["snapshots"][snapname])
        elif current:
            view = {k: v for k, v in c.items() if k not in ("pending", "snapshots", "special")}
        else:
            view = confmod.apply_pending(c)
        if self.kind == "qemu" and view.get("cipassword"):
            view["cipassword"] = "**********"
        for k in sorted(view):
            if k in ("digest", "lxc", "snapshots", "pending", "special"):
                continue
            v = view[k]
            if k == "description":
                v = confmod.encode_text(v)
            out.append("%s: %s\n" % (k, v))
        for k, v in view.get("lxc", []) if self.kind == "lxc" else []:
            out.append("%s: %s\n" % (k, v))

    # ------------------------------------------------------------- tags
    @staticmethod
    def unique_tags(value):
        seen, res = set(), []
        for t in sorted(schema.split_list(value), key=str.lower):
            t = t.lower()
            if t not in seen:
                seen.add(t)
                res.append(t)
        return ";".join(res)

    # ------------------------------------------------------- set/delete
    def check_delete_list(self, prefix, props, arg_param, delete, params):
        errors = {}
        for opt in schema.split_list(delete):
            opt = opt.lstrip("!")
            if opt in params:
                errors["delete"] = "you can't use '-%s' and -delete %s' at the same time" % (opt,
                                                                                            opt)
            elif schema.config_option(self.kind, opt) is None:
                errors["delete"] = "unknown option '%s'" % opt
        if errors:
            from . import cli
            raise cli.param_exc(prefix, props, arg_param, errors)

    # ----------------------------------------------------------- status
    def resource(self, vmid, c):
        raise NotImplementedError


def _typed(d, v):
    """A config value as the API returns it: numbers where the schema says so."""
    v = str(v)
    try:
        if d.get("type") == "integer":
            return int(v)
        if d.get("type") == "number":
            f = float(v)
            return int(f) if f.is_integer() and "." not in v else f
    except ValueError:
        pass
    return v


def fmt_error(key, e):
    """How a property-string failure reads inside a 400 error."""
    return "invalid format - %s" % e


def validate_value(kind, key, value):
    """Schema check of one option value as the API would do it; returns the
    error text or None."""
    d = schema.config_option(kind, key)
    if d is None:
        return "property is not defined in schema and the schema does not allow additional " \
               "properties"
    errors = {}
    schema.check_prop(value, d, key, errors)
    return errors.get(key)


def alloc_spec(value):
    """'local-zfs:8' (or '8' with a default storage) -> (storage, GiB) or None."""
    m = re.match(r"([a-z][a-z0-9\-_.]*[a-z0-9]):(\d+(?:\.\d+)?)\Z", value, re.I)
    if m:
        return m.group(1), float(m.group(2))
    return None


def is_volid(v):
    return VOLID_RE.match(v) is not None and not v.startswith("/")
