"""`pct`: Proxmox container management, after pve-container's PVE::CLI::pct
and PVE::API2::LXC*: the same parameters, checks, messages and output."""

import os
import re
import sys
import time

from . import cli, guestexec, schema
from . import conf as confmod
from .cli import Props
from .errors import Die, Invalid, FormatError, PVEError
from .guest import GuestType, alloc_spec, is_volid

VMID = {"type": "integer", "format": "pve-vmid", "minimum": 100, "maximum": 999999999}
SNAP = {"type": "string", "format": "pve-configid", "maxLength": 40}


def B():
    return {"type": "boolean", "optional": 1}


def S(**kw):
    d = {"type": "string", "optional": 1}
    d.update(kw)
    return d


def I(**kw):
    d = {"type": "integer", "optional": 1}
    d.update(kw)
    return d


MP_NAMES = ["rootfs"] + ["mp%d" % i for i in range(256)]
# Options a running CT takes at once (LXC_FASTPLUG_OPTIONS + hotplug).
FASTPLUG = {"description", "onboot", "startup", "protection", "hostname", "hookscript", "cores",
            "tags", "lock"}
HOTPLUG = {"cpulimit", "cpuunits", "memory", "swap"}


class CT(GuestType):
    kind = "lxc"
    tstr = "CT"
    exe = "pct"

    # ------------------------------------------------------ formats
    def mp_format(self, key):
        t = schema.options("lxc", "set")
        d = t.get("rootfs" if key == "rootfs" else "mp0")
        return schema.subkeys_of(d)

    def parse_mp(self, key, value):
        return schema.parse_property_string(self.mp_format(key), value, key)

    def print_mp(self, key, mp):
        return schema.print_property_string(mp, self.mp_format(key))

    def net_format(self):
        return schema.subkeys_of(schema.options("lxc", "set").get("net0"))

    def volumes(self, c, include_unused=False):
        out = []
        for k in sorted(c):
            if k == "rootfs" or re.match(r"mp\d+\Z", k):
                try:
                    mp = self.parse_mp(k, c[k])
                except (Invalid, FormatError):
                    continue
                if is_volid(mp.get("volume", "")):
                    out.append((k, mp["volume"]))
            elif include_unused and re.match(r"unused\d+\Z", k):
                out.append((k, c[k]))
        return out

    # ----------------------------------------------------- lifecycle
    def start_guest(self, vmid, c=None):
        c = c or self.load(vmid)
        if c.get("pending"):
            self.apply_pending(vmid, c)
        if guestexec.backed(self.sim, "lxc"):
            try:
                guestexec.lxc_start(self.sim, vmid)
            except RuntimeError as e:
                raise Die("startup for container '%s' failed\n%s" % (vmid, e))
        self.sim.set_running(vmid, "lxc", True)

    def stop_guest(self, vmid):
        if guestexec.backed(self.sim, "lxc"):
            guestexec.lxc_stop(self.sim, vmid)
        self.sim.set_running(vmid, "lxc", False)

    def apply_pending(self, vmid, c):
        dels = confmod.pending_delete(c)
        for k in dels:
            c.pop(k, None)
        for k, v in (c.get("pending") or {}).items():
            if k != "delete":
                c[k] = v
        c["pending"] = {}
        self.write(vmid, c)

    # -------------------------------------------------------- status
    def status(self, vmid, c):
        running = self.sim.running(vmid)
        st = {"status": "running" if running else "stopped", "vmid": str(vmid), "type": "lxc",
              "name": c.get("hostname", "CT%s" % vmid)}
        host_cpus = int(self.sim.settings.get("host_cpus", 8))
        st["cpus"] = int(c.get("cores", host_cpus))
        if c.get("cpulimit") and float(c["cpulimit"]) > 0:
            st["cpus"] = min(st["cpus"], float(c["cpulimit"]))
        st["maxmem"] = int(c.get("memory", 512)) * 2 ** 20
        st["maxswap"] = int(c.get("swap", 512)) * 2 ** 20
        st["maxdisk"], st["disk"] = 0, 0
        if c.get("rootfs"):
            try:
                mp = self.parse_mp("rootfs", c["rootfs"])
                st["maxdisk"] = schema.parse_size(str(mp.get("size", "0"))) or 0
                if is_volid(mp["volume"]):
                    sid, volname, info = self.storage.parse(mp["volume"])
                    if self.storage.scfg(sid)["type"] == "zfspool":
                        ds = self.storage.dataset(sid, info)
                        if ds in self.storage.zfs.ds:
                            st["disk"] = self.storage.zfs.refer(ds)
            except (Die, Invalid, FormatError):
                pass
        st["mem"] = st["maxmem"] // 8 if running else 0
        st["swap"] = 0
        st["cpu"] = 0
        st["uptime"] = self.sim.uptime(vmid)
        for k in ("netin", "netout", "diskread", "diskwrite"):
            st[k] = 0
        if running:
            st["pid"] = self.sim.runtime["guests"][str(vmid)]["pid"]
        if c.get("lock"):
            st["lock"] = c["lock"]
        if c.get("tags"):
            st["tags"] = c["tags"]
        if self.is_template(c):
            st["template"] = 1
        return st

    # ------------------------------------------------------------ set
    def prepare_value(self, vmid, key, value, c, storage_default=None):
        """Canonical form of a new option value (allocating new volumes)."""
        if key == "tags":
            return self.unique_tags(value)
        if re.match(r"dev\d+\Z", key):
            fmt = schema.subkeys_of(schema.options("lxc", "set").get("dev0"))
            dev = schema.parse_property_string(fmt, value, key)
            if not dev.get("path"):
                raise Die("Path is not defined for passthrough device %s" % key)
            if not os.path.exists(self.sim.host_path(dev["path"])):
                raise Die("Path %s does not exist" % dev["path"])
            return value
        if re.match(r"net\d+\Z", key):
            net = schema.parse_property_string(self.net_format(), value, key)
            net["type"] = "veth"
            if not net.get("hwaddr"):
                net["hwaddr"] = self.sim.random_mac()
            return schema.print_property_string(net, self.net_format())
        if key == "rootfs" or re.match(r"mp\d+\Z", key):
            if storage_default and re.match(r"\d+(\.\d+)?\Z", value.split(",")[0]):
                value = "%s:%s" % (storage_default, value)
            mp = self.parse_mp(key, value)
            spec = alloc_spec(mp["volume"])
            if spec:
                sid, gib = spec
                scfg = self.storage.check_enabled(sid)
                if "rootdir" not in self.storage.content(sid):
                    raise PVEError("Parameter verification failed.\n", code=400, errors={
                        "storage": "storage '%s' does not support container directories" % sid})
                size = int(gib * 1024 ** 3)
                fmt = "subvol" if scfg["type"] == "zfspool" or (scfg["type"] == "dir"
                                                                   and size == 0) else "raw"
                mp["volume"] = self.storage.alloc(sid, int(vmid), fmt, size)
                mp["size"] = schema.format_size(size)
            elif is_volid(mp["volume"]):
                if not self.storage.exists(mp["volume"]):
                    raise Die("volume '%s' does not exist" % mp["volume"])
            return self.print_mp(key, mp)
        return value

    def update(self, vmid, params, delete, revert, digest):
        c = self.load(vmid)
        self.check_lock(c)
        self.assert_digest(digest, c)
        running = self.sim.running(vmid)
        dels = confmod.pending_delete(c)
        for opt in schema.split_list(delete or ""):
            force = opt.startswith("!")
            opt = opt.lstrip("!")
            if opt in ("rootfs", "memory", "hostname"):
                raise Die("unable to delete required option '%s'" % opt)
            if opt in ("unprivileged",):
                raise Die("unable to modify read-only option: '%s'" % opt)
            if opt not in c and opt not in (c.get("pending") or {}):
                continue
            if not running or opt in FASTPLUG or opt in HOTPLUG or \
                    re.match(r"(net|unused)\d+\Z", opt):
                self.delete_now(c, opt)
                c.get("pending", {}).pop(opt, None)
                dels.pop(opt, None)
            else:
                c.get("pending", {}).pop(opt, None)
                dels[opt] = force
        for opt in schema.split_list(revert or ""):
            c.get("pending", {}).pop(opt, None)
            dels.pop(opt, None)
        for k in sorted(params):
            v = params[k]
            if k == "unprivileged":
                raise Die("unable to modify read-only option: '%s'" % k)
            v = self.prepare_value(vmid, k, str(v), c)
            dels.pop(k, None)
            if running and k not in FASTPLUG and k not in HOTPLUG and \
                    not re.match(r"net\d+\Z", k) and \
                    not (re.match(r"mp\d+\Z", k) and k not in c):
                c.setdefault("pending", {})[k] = v
                continue
            self.set_now(c, k, v)
            c.get("pending", {}).pop(k, None)
        confmod.set_pending_delete(c, dels)
        self.write(vmid, c)
        self.save_storage()

    def set_now(self, c, k, v):
        if k == "description":
            c["description"] = v
            return
        old = c.get(k)
        if old is not None and (k == "rootfs" or re.match(r"mp\d+\Z", k)):
            try:
                ov = self.parse_mp(k, old)["volume"]
                nv = self.parse_mp(k, v)["volume"]
                if ov != nv and is_volid(ov):
                    self.add_unused(c, ov)
            except (Invalid, FormatError):
                pass
        c[k] = v

    def delete_now(self, c, opt):
        old = c.pop(opt, None)
        if old is not None and re.match(r"mp\d+\Z", opt):
            try:
                vol = self.parse_mp(opt, old)["volume"]
                if is_volid(vol):
                    self.add_unused(c, vol)
            except (Invalid, FormatError):
                pass
        elif old is not None and re.match(r"unused\d+\Z", opt):
            in_use = {v for _, v in self.volumes(c, False)}
            for s in c.get("snapshots", {}).values():
                in_use |= {v for _, v in self.volumes(s, False)}
            if old not in in_use and self.storage.exists(old):
                self.storage.free(old)


def _detect(ostemplate):
    base = os.path.basename(ostemplate)
    for os_ in ("debian", "devuan", "ubuntu", "centos", "fedora", "opensuse", "archlinux",
                "alpine", "gentoo", "nixos"):
        if base.startswith(os_) or ("-" + os_) in base:
            return os_
    if base.startswith(("rockylinux", "almalinux", "oracle")):
        return "centos"
    return "unmanaged"


def _arch(ostemplate):
    for a in ("amd64", "arm64", "i386", "armhf", "riscv64"):
        if a in os.path.basename(ostemplate):
            return a
    return "amd64"


def _read_file_param(path):
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except OSError as e:
        raise Die("unable to open file '%s' - %s" % (path, e.strerror))


COMMANDS = {
    "list": ([], {}),
    "config": (["vmid"], {"current": B(), "snapshot": dict(SNAP, optional=1)}),
    "pending": (["vmid"], {}),
    "status": (["vmid"], {"verbose": B()}),
    "set": (["vmid"], None),
    "create": (["vmid", "ostemplate"], None),
    "start": (["vmid"], {"skiplock": B(), "debug": B()}),
    "stop": (["vmid"], {"skiplock": B(), "overrule-shutdown": B(),
                        "timeout": I(minimum=0)}),
    "shutdown": (["vmid"], {"timeout": I(minimum=0), "forceStop": B()}),
    "reboot": (["vmid"], {"timeout": I(minimum=0)}),
    "destroy": (["vmid"], {"force": B(), "purge": B(), "destroy-unreferenced-disks": B()}),
    "clone": (["vmid", "newid"], {"newid": VMID, "bwlimit": {"type": "number", "optional": 1,
                                                             "minimum": 0},
                                  "description": S(), "full": B(),
                                  "hostname": S(format="dns-name"), "pool": S(format="pve-poolid"),
                                  "snapname": dict(SNAP, optional=1),
                                  "storage": S(format="pve-storage-id"),
                                  "target": S(format="pve-node")}),
    "resize": (["vmid", "disk", "size"], {"disk": {"type": "string", "enum": MP_NAMES},
                                          "size": {"type": "string",
                                                   "pattern": r"\+?\d+(\.\d+)?[KMGT]?"},
                                          "digest": S(maxLength=40)}),
    "snapshot": (["vmid", "snapname"], {"snapname": SNAP, "description": S()}),
    "listsnapshot": (["vmid"], {}),
    "rollback": (["vmid", "snapname"], {"snapname": SNAP, "start": B()}),
    "delsnapshot": (["vmid", "snapname"], {"snapname": SNAP, "force": B()}),
    "template": (["vmid"], {}),
    "exec": (["vmid", "extra-args"], {"extra-args": {"type": "array", "optional": 1},
                                      "keep-env": B()}),
    "push": (["vmid", "file", "destination"], {"file": {"type": "string"},
                                               "destination": {"type": "string"},
                                               "user": S(), "group": S(), "perms": S()}),
    "pull": (["vmid", "path", "destination"], {"path": {"type": "string"},
                                               "destination": {"type": "string"},
                                               "user": S(), "group": S(), "perms": S()}),
    "unlock": (["vmid"], {}),
}


def props_for(cmd):
    arg_param, own = COMMANDS[cmd]
    if cmd == "set":
        return arg_param, Props({"vmid": VMID}, schema.options("lxc", "set"))
    if cmd == "create":
        return arg_param, Props({"vmid": VMID, "ostemplate": {"type": "string",
                                                             "maxLength": 255}},
                                schema.options("lxc", "create"))
    d = dict(own)
    if "vmid" in arg_param:
        d["vmid"] = VMID
    return arg_param, Props(d)


def main(sim, argv):
    if not argv:
        sys.stderr.write(cli.abort_unknown("pct", "no command specified", COMMANDS))
        return 255
    cmd, args = argv[0], argv[1:]
    cands = [c for c in COMMANDS if c.startswith(cmd)]
    if cmd not in COMMANDS and len(cands) == 1:
        cmd = cands[0]
    if cmd not in COMMANDS:
        sys.stderr.write(cli.abort_unknown("pct", "unknown command 'pct %s'" % cmd, COMMANDS))
        return 255
    arg_param, props = props_for(cmd)
    prefix = "pct " + cmd
    mapping = {"ssh-public-keys": _read_file_param} if cmd == "create" else None
    o = cli.parse(prefix, props, args, arg_param, mapping=mapping)
    ct = CT(sim)
    sim.lock()
    out = []
    try:
        rc = globals()["do_" + cmd](sim, ct, o, out, prefix, props, arg_param)
    finally:
        sys.stdout.write("".join(out))
    return rc or 0


# ------------------------------------------------------------ commands

def do_list(sim, ct, o, out, *a):
    rows = []
    for vmid in sim.local_guests("lxc"):
        c = ct.load(vmid, warn=False)
        rows.append((vmid, "running" if sim.running(vmid) else "stopped", c.get("lock", ""),
                     c.get("hostname", "")))
    if not rows:
        return
    fmt = "%-10s %-10s %-12s %-20s\n"
    out.append(fmt % ("VMID", "Status", "Lock", "Name"))
    for r in rows:
        out.append(fmt % r)


def do_config(sim, ct, o, out, *a):
    ct.print_config(o["vmid"], o.get("current"), o.get("snapshot"), out)


def do_pending(sim, ct, o, out, *a):
    ct.print_pending(o["vmid"], out)


def do_status(sim, ct, o, out, *a):
    c = ct.load(o["vmid"])
    st = ct.status(o["vmid"], c)
    if o.get("verbose"):
        for k in sorted(st):
            out.append("%s: %s\n" % (k, st[k]))
    else:
        out.append("status: %s\n" % st["status"])


def do_set(sim, ct, o, out, prefix, props, arg_param):
    vmid = o.pop("vmid")
    delete, revert, digest = o.pop("delete", None), o.pop("revert", None), o.pop("digest", None)
    if not o and not delete and not revert:
        raise Die("no options specified")
    if delete:
        ct.check_delete_list(prefix, props, arg_param, delete, o)
    ct.update(vmid, o, delete, revert, digest)


def do_create(sim, ct, o, out, prefix, props, arg_param):
    vmid = o.pop("vmid")
    ostemplate = o.pop("ostemplate")
    sim.check_vmid_unused(vmid)
    if o.pop("restore", None):
        raise Die("restore from backup archives is not simulated")
    o.pop("force", None)
    o.pop("unique", None)
    o.pop("ignore-unpack-errors", None)
    o.pop("bwlimit", None)
    o.pop("ha-managed", None)
    password = o.pop("password", None)
    o.pop("ssh-public-keys", None)
    if password is not None and len(str(password)) < 5:
        raise cli.param_exc(prefix, props, arg_param,
                            {"password": "value must be at least 5 characters long"})
    pool = o.pop("pool", None)
    if pool is not None and pool not in sim.settings.get("pools", []):
        raise Die("pool '%s' does not exist" % pool)
    start = o.pop("start", None)
    storage = o.pop("storage", "local")
    unpriv = o.pop("unprivileged", None)
    if ostemplate != "-":
        if is_volid(ostemplate):
            path = ct.storage.path(ostemplate)
        else:
            path = ostemplate
        if not os.path.isfile(sim.host_path(path)) and not os.path.isfile(path):
            raise Die("can't find file '%s'" % ostemplate)
    else:
        raise Die("pipe requires cli environment")
    mps = [k for k in o if re.match(r"mp\d+\Z", k)]
    if mps and "rootfs" not in o:
        raise Die("mount points configured, but 'rootfs' not set - aborting")
    if "rootfs" not in o:
        ct.storage.scfg(storage)
        if "rootdir" not in ct.storage.content(storage):
            raise cli.param_exc(prefix, props, arg_param, {
                "storage": "storage '%s' does not support container directories" % storage})
        o["rootfs"] = "%s:4" % storage
    c = {"pending": {}, "snapshots": {}}
    try:
        for k in sorted(o):
            if re.match(r"unused\d+\Z", k):
                sys.stderr.write("ignoring '%s', cannot create/restore with unused volume\n" % k)
                continue
            v = ct.prepare_value(vmid, k, str(o[k]), c, storage_default=storage)
            if k == "description":
                c["description"] = v
            else:
                c[k] = v
    except Exception:
        for _, volid in ct.volumes(c):
            try:
                ct.storage.free(volid)
            except Die:
                pass
        raise
    c.setdefault("arch", _arch(ostemplate))
    c.setdefault("ostype", _detect(ostemplate))
    c.setdefault("hostname", "CT%s" % vmid)
    c.setdefault("memory", "512")
    c.setdefault("swap", "512")
    if unpriv:
        c["unprivileged"] = "1"
    out.append("extracting archive '%s'\n" % (ct.storage.path(ostemplate)
                                              if is_volid(ostemplate) else ostemplate))
    out.append("Total bytes read: 521902080 (498MiB, 212MiB/s)\n")
    out.append("Detected container architecture: %s\n" % c["arch"])
    ct.write(vmid, c)
    ct.save_storage()
    os.makedirs(guestexec.fs_root(sim, vmid), exist_ok=True)
    if start:
        ct.start_guest(vmid)


def do_start(sim, ct, o, out, *a):
    vmid = o["vmid"]
    c = ct.load(vmid)
    if not o.get("skiplock"):
        ct.check_lock(c)
    if ct.is_template(c):
        raise Die("you can't start a CT if it's a template")
    if sim.running(vmid):
        raise Die("CT %s already running" % vmid)
    for k, volid in ct.volumes(c, False):
        if not ct.storage.exists(volid):
            raise Die("startup for container '%s' failed\nvolume '%s' does not exist"
                      % (vmid, volid))
    ct.start_guest(vmid, c)


def do_stop(sim, ct, o, out, *a):
    vmid = o["vmid"]
    c = ct.load(vmid)
    if not sim.running(vmid):
        raise Die("CT %s not running" % vmid)
    if not o.get("skiplock") and c.get("lock") != "mounted":
        ct.check_lock(c)
    ct.stop_guest(vmid)


def do_shutdown(sim, ct, o, out, *a):
    vmid = o["vmid"]
    c = ct.load(vmid)
    if not sim.running(vmid):
        raise Die("CT %s not running" % vmid)
    ct.check_lock(c)
    ct.stop_guest(vmid)


def do_reboot(sim, ct, o, out, *a):
    vmid = o["vmid"]
    c = ct.load(vmid)
    if not sim.running(vmid):
        raise Die("VM %s not running" % vmid)
    ct.check_lock(c)
    ct.stop_guest(vmid)
    ct.start_guest(vmid)


def do_destroy(sim, ct, o, out, *a):
    vmid = o["vmid"]
    c = ct.load(vmid)
    ct.check_protection(c, "can't remove CT %s" % vmid)
    if sim.running(vmid):
        if not o.get("force"):
            raise Die("unable to destroy CT %s - container is running" % vmid)
        ct.stop_guest(vmid)
    ct.check_lock(c)
    for k, volid in ct.volumes(c, True):
        try:
            _, _, info = ct.storage.parse(volid)
            if info.get("vmid") is not None and int(info["vmid"]) != int(vmid):
                continue
            if ct.storage.exists(volid):
                ct.storage.free(volid)
        except Die as e:
            raise Die("%s" % e.msg)
    ct.save_storage()
    sim.remove_conf("lxc", vmid)
    import shutil
    shutil.rmtree(sim.path("guests", str(vmid)), ignore_errors=True)
    if guestexec.backed(sim, "lxc"):
        guestexec.lxc_destroy(sim, vmid)


def do_clone(sim, ct, o, out, *a):
    vmid, newid = o["vmid"], o["newid"]
    c = ct.load(vmid)
    ct.check_lock(c)
    snapname, storage = o.get("snapname"), o.get("storage")
    if o.get("target") and o["target"] not in (sim.node, "localhost"):
        raise Die("no such cluster node '%s'" % o["target"])
    if storage:
        ct.storage.check_enabled(storage)
    if o.get("pool") is not None and o["pool"] not in sim.settings.get("pools", []):
        raise Die("pool '%s' does not exist" % o["pool"])
    running = sim.running(vmid)
    full = o.get("full")
    if full is None:
        full = not ct.is_template(c)
    if storage is not None and not full:
        raise Die("parameter 'storage' not allowed for linked clones")
    if snapname and snapname not in c["snapshots"]:
        raise Die("snapshot '%s' does not exist" % snapname)
    src = c["snapshots"][snapname] if snapname else c
    if os.path.exists(sim.conf_path("lxc", newid)):
        raise Die("unable to create CT %s: config file already exists" % newid)
    sim.check_vmid_unused(newid)
    new, mounts = {"pending": {}, "snapshots": {}}, []
    for k, v in src.items():
        if k in ("snapshots", "pending", "special", "parent", "snaptime", "lock", "digest",
                 "template", "snapstate") or re.match(r"unused\d+\Z", k):
            continue
        if k == "rootfs" or re.match(r"mp\d+\Z", k):
            mp = ct.parse_mp(k, v)
            if not is_volid(mp["volume"]):
                raise Die("unable to clone mountpint '%s' (type %s)"
                          % (k, "device" if mp["volume"].startswith("/dev/") else "bind"))
            if full:
                if running and not snapname:
                    raise Die("Cannot do full clones on a running container without snapshots")
            elif not ct.storage.has_feature("clone", mp["volume"], snapname):
                raise Die("Linked clone feature for '%s' is not available" % mp["volume"])
            mounts.append((k, mp))
        elif re.match(r"net\d+\Z", k):
            net = schema.parse_property_string(ct.net_format(), v, k)
            net["hwaddr"] = sim.random_mac()
            new[k] = schema.print_property_string(net, ct.net_format())
        else:
            new[k] = v
    if o.get("hostname"):
        new["hostname"] = o["hostname"]
    if o.get("description"):
        new["description"] = o["description"]
    created = []
    try:
        for k, mp in sorted(mounts):
            if full:
                out.append("create full clone of mountpoint %s (%s)\n" % (k, mp["volume"]))
                if storage and "rootdir" not in ct.storage.content(storage):
                    raise Die("storage '%s' does not support container directories" % storage)
                mp["volume"] = ct.storage.copy(mp["volume"], newid, storage, snapname)
            else:
                out.append("create linked clone of mount point %s (%s)\n" % (k, mp["volume"]))
                mp["volume"] = ct.storage.clone_linked(mp["volume"], newid, snapname)
            created.append(mp["volume"])
            new[k] = ct.print_mp(k, mp)
    except Die as e:
        for volid in created:
            ct.storage.free(volid)
        ct.save_storage()
        sys.stdout.write("".join(out))
        del out[:]
        raise Die("clone failed: " + e.msg)
    ct.write(newid, new)
    ct.save_storage()
    src_fs = guestexec.fs_root(sim, vmid)
    if os.path.isdir(src_fs):
        import shutil
        shutil.copytree(src_fs, guestexec.fs_root(sim, newid), dirs_exist_ok=True)


def do_resize(sim, ct, o, out, *a):
    vmid, disk, sizestr = o["vmid"], o["disk"], o["size"]
    ext = sizestr.startswith("+")
    newsize = schema.parse_size(sizestr.lstrip("+"))
    c = ct.load(vmid)
    ct.check_lock(c)
    ct.assert_digest(o.get("digest"), c)
    if disk not in c:
        raise Die("unable to parse mount point '%s' - mount point not defined" % disk)
    mp = ct.parse_mp(disk, c[disk])
    volid = mp["volume"]
    if not is_volid(volid):
        raise Die("can't resize mount point: bind and device mounts are not supported")
    _, _, info = ct.storage.parse(volid)
    if info.get("vmid") is not None and int(info["vmid"]) != int(vmid):
        raise Die("can't resize mount point owned by another container (%s)" % info["vmid"])
    size = ct.storage.volume_size(volid)
    if ext:
        newsize += size
    if newsize < size:
        raise Die("unable to shrink disk size")
    if newsize == size:
        return
    ct.storage.resize(volid, newsize)
    mp["size"] = schema.format_size(newsize)
    c[disk] = ct.print_mp(disk, mp)
    ct.write(vmid, c)
    ct.save_storage()


def do_snapshot(sim, ct, o, out, *a):
    ct.snapshot_create(o["vmid"], o["snapname"], o.get("description"))


def do_delsnapshot(sim, ct, o, out, *a):
    ct.snapshot_delete(o["vmid"], o["snapname"], o.get("force"))


def do_rollback(sim, ct, o, out, *a):
    ct.snapshot_rollback(o["vmid"], o["snapname"], o.get("start"))


def do_listsnapshot(sim, ct, o, out, *a):
    print_snapshot_tree(ct.snapshot_list(o["vmid"]), out)


def print_snapshot_tree(lst, out):
    snaps = {e["name"]: dict(e, children=[]) for e in lst}
    roots = []
    for e in lst:
        p = e.get("parent")
        if p and p in snaps:
            snaps[p]["children"].append(e["name"])
        else:
            roots.append(e["name"])

    def key(n):
        t = snaps[n].get("snaptime")
        return (1, 0) if t is None else (0, t)

    def walk(prefix, name):
        e = snaps[name]
        desc = (e.get("description") or "no-description").split("\n")[0]
        ts = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(e["snaptime"])) \
            if e.get("snaptime") is not None else ""
        width = max(0, 30 - len(prefix))
        out.append("%s %-*s %-23s %s\n" % (prefix, width, name, ts, desc))
        for ch in sorted(e["children"], key=key):
            walk(" " + prefix, ch)

    for r in sorted(roots, key=key):
        walk("`->", r)


def do_template(sim, ct, o, out, *a):
    vmid = o["vmid"]
    c = ct.load(vmid)
    ct.check_lock(c)
    if c["snapshots"]:
        raise Die("unable to create template, because CT contains snapshots")
    if ct.is_template(c):
        raise Die("you can't convert a template to a template")
    if sim.running(vmid):
        raise Die("you can't convert a CT to template if the CT is running")
    for k, volid in ct.volumes(c, False):
        sid, _, _ = ct.storage.parse(volid)
        if ct.storage.scfg(sid).get("path"):
            raise Die("Directory storage '%s' does not support container templates!" % sid)
    for k, volid in ct.volumes(c, False):
        mp = ct.parse_mp(k, c[k])
        mp["volume"] = ct.storage.create_base(volid)
        c[k] = ct.print_mp(k, mp)
    c["template"] = "1"
    ct.write(vmid, c)
    ct.save_storage()


def do_exec(sim, ct, o, out, *a):
    vmid = o["vmid"]
    c = ct.load(vmid)
    args = o.get("extra-args") or []
    if not args:
        raise Die("missing command at /usr/share/perl5/PVE/CLI/pct.pm line 247.")
    if not sim.running(vmid):
        sys.stderr.write("lxc-attach: %s: ../src/lxc/attach.c: get_attach_context: 405 "
                         "Connection refused - Failed to get init pid\n"
                         "lxc-attach: %s: ../src/lxc/attach.c: lxc_attach: 1470 Connection "
                         "refused - Failed to get attach context\n" % (vmid, vmid))
        return 1
    stdin = read_stdin()
    sim.unlock()
    so, se, rc = guestexec.run(sim, "lxc", vmid, args, c, stdin)
    sys.stdout.write(so)
    sys.stderr.write(se)
    return rc


def read_stdin():
    """What the command would get on stdin: data a caller pipes in (read to
    EOF). Terminals, /dev/null and pipes nobody writes to give nothing, so a
    caller that leaves an idle stdin open does not hang us."""
    import select
    import stat
    try:
        mode = os.fstat(0).st_mode
    except OSError:
        return b""
    if stat.S_ISREG(mode):
        return os.read(0, 1 << 26)
    if not stat.S_ISFIFO(mode) and not stat.S_ISSOCK(mode):
        return b""
    chunks, wait = [], 0.25
    while True:
        ready, _, _ = select.select([0], [], [], wait)
        if not ready:
            return b"".join(chunks)
        b = os.read(0, 1 << 16)
        if not b:
            return b"".join(chunks)
        chunks.append(b)
        wait = 5.0


def _perms(p):
    if p is None:
        return None
    try:
        return int(p, 16) if p.lower().startswith("0x") else int(p, 8)
    except ValueError:
        raise Die("invalid mode: '%s'" % p)


def do_push(sim, ct, o, out, *a):
    vmid = o["vmid"]
    ct.load(vmid)
    if not sim.running(vmid):
        raise Die("can only push files to a running CT")
    src, dest = o["file"], o["destination"]
    if not os.path.isfile(src):
        raise Die("failed to open %s for reading" % src)
    root = guestexec.lxc_rootfs(sim, vmid) if guestexec.backed(sim, "lxc") else \
        guestexec.fs_root(sim, vmid)
    target = os.path.normpath(os.path.join(root, dest.lstrip("/")))
    if not os.path.isdir(os.path.dirname(target)):
        raise Die("failed to create file: %s: No such file or directory" % dest)
    import shutil
    shutil.copyfile(src, target)
    mode = _perms(o.get("perms"))
    if mode is not None:
        os.chmod(target, mode)


def do_pull(sim, ct, o, out, *a):
    vmid = o["vmid"]
    ct.load(vmid)
    if not sim.running(vmid):
        raise Die("can only pull files from a running CT")
    root = guestexec.lxc_rootfs(sim, vmid) if guestexec.backed(sim, "lxc") else \
        guestexec.fs_root(sim, vmid)
    srcp = os.path.normpath(os.path.join(root, o["path"].lstrip("/")))
    if not os.path.isfile(srcp):
        raise Die("failed to open %s: No such file or directory" % o["path"])
    dest = o["destination"]
    import shutil
    try:
        shutil.copyfile(srcp, dest)
    except OSError as e:
        raise Die("failed to create file: %s: %s" % (dest, e.strerror))
    mode = _perms(o.get("perms"))
    if mode is not None:
        os.chmod(dest, mode)


def do_unlock(sim, ct, o, out, *a):
    c = ct.load(o["vmid"])
    c.pop("lock", None)
    ct.write(o["vmid"], c)
