"""`qm`: QEMU/KVM virtual machine management, after qemu-server's
PVE::CLI::qm and PVE::API2::Qemu: parameters, checks, messages, output."""

import os
import re
import sys
import time
import urllib.parse
import uuid

from . import cli, guestexec, schema
from . import conf as confmod
from .cli import Props
from .errors import Die, Invalid, FormatError
from .guest import GuestType, alloc_spec, is_volid
from .pct import B, S, I, SNAP, VMID, print_snapshot_tree, read_stdin
from .pvejson import pretty

DRIVE_RE = re.compile(r"(ide|sata|scsi|virtio)\d+\Z|efidisk0\Z|tpmstate0\Z")
DRIVE_NAMES = (["ide%d" % i for i in range(4)] + ["sata%d" % i for i in range(6)]
               + ["scsi%d" % i for i in range(31)] + ["virtio%d" % i for i in range(16)]
               + ["efidisk0", "tpmstate0"])
FASTPLUG = {"description", "hookscript", "lock", "migrate_downtime", "migrate_speed", "name",
            "onboot", "protection", "shares", "startup", "tags", "vmstatestorage"}
CI_KEYS = ("cicustom", "cipassword", "citype", "ciupgrade", "ciuser", "nameserver",
           "searchdomain", "sshkeys")
AGENT_COMMANDS = ["fsfreeze-freeze", "fsfreeze-status", "fsfreeze-thaw", "fstrim", "get-fsinfo",
                  "get-host-name", "get-memory-block-info", "get-memory-blocks", "get-osinfo",
                  "get-time", "get-timezone", "get-users", "get-vcpus", "info",
                  "network-get-interfaces", "ping", "shutdown", "suspend-disk",
                  "suspend-hybrid", "suspend-ram"]


class VM(GuestType):
    kind = "qemu"
    tstr = "VM"
    exe = "qm"

    def __init__(self, sim):
        super().__init__(sim)
        self.messages = []   # what qm prints while creating disks

    def drive_format(self, key):
        base = re.match(r"[a-z]+", key).group(0)
        t = schema.options("qemu", "set")
        d = t.get(key) if key in ("efidisk0", "tpmstate0") else t.get(base + "0")
        return schema.subkeys_of(d)

    def parse_drive(self, key, value):
        return schema.parse_property_string(self.drive_format(key), value, key)

    def print_drive(self, key, d):
        return schema.print_property_string(d, self.drive_format(key))

    def net_format(self):
        return schema.subkeys_of(schema.options("qemu", "set").get("net0"))

    @staticmethod
    def is_cdrom(d):
        return d.get("media") == "cdrom"

    @staticmethod
    def is_cloudinit(d):
        return re.search(r"[:/]vm-\d+-cloudinit(\.(qcow2|raw))?\Z", d.get("file", "")) is not None

    def drives(self, c):
        out = []
        for k in sorted(c):
            if DRIVE_RE.match(k):
                try:
                    out.append((k, self.parse_drive(k, c[k])))
                except (Invalid, FormatError):
                    pass
        return out

    def volumes(self, c, include_unused=False):
        out = []
        for k, d in self.drives(c):
            if self.is_cdrom(d) or not is_volid(d.get("file", "")):
                continue
            out.append((k, d["file"]))
        if include_unused:
            for k in sorted(c):
                if re.match(r"unused\d+\Z", k):
                    out.append((k, c[k]))
        return out

    def mem_mb(self, c):
        m = c.get("memory")
        if not m:
            return 512
        return int(re.sub(r"^current=", "", m.split(",")[0]))

    def vmstate_storage(self, c):
        if c.get("vmstatestorage"):
            return c["vmstatestorage"]
        for k, volid in self.volumes(c):
            return self.storage.split_volid(volid)[0]
        return "local"

    # ----------------------------------------------------- lifecycle
    def start_guest(self, vmid, c=None):
        c = c or self.load(vmid)
        if c.get("pending"):
            dels = confmod.pending_delete(c)
            for k in dels:
                self.delete_now(c, k)
            for k, v in (c.get("pending") or {}).items():
                if k != "delete":
                    self.set_now(c, k, v)
            c["pending"] = {}
        if any(self.is_cloudinit(d) for _, d in self.drives(c)):
            self.gen_cloudinit(c)
        self.write(vmid, c)
        self.save_storage()
        self.sim.set_running(vmid, "qemu", True)

    def gen_cloudinit(self, c):
        sec = {}
        for k, v in c.items():
            if k in CI_KEYS or k == "name" or re.match(r"(ipconfig|net)\d+\Z", k):
                sec[k] = v
        c.setdefault("special", {})["cloudinit"] = sec

    def stop_guest(self, vmid):
        self.sim.set_running(vmid, "qemu", False)

    # -------------------------------------------------------- status
    def status(self, vmid, c):
        running = self.sim.running(vmid)
        st = {"status": "running" if running else "stopped", "vmid": int(vmid)}
        st["qmpstatus"] = st["status"]
        if c.get("name"):
            st["name"] = c["name"]
        sockets = int(c.get("sockets", 1))
        cores = int(c.get("cores", 1))
        st["cpus"] = int(c.get("vcpus", sockets * cores))
        st["maxmem"] = self.mem_mb(c) * 2 ** 20
        st["maxdisk"] = 0
        boot = self.bootdisk(c)
        if boot:
            d = self.parse_drive(boot, c[boot])
            st["maxdisk"] = schema.parse_size(str(d.get("size", "0"))) or 0
        st["disk"] = 0
        st["mem"] = st["maxmem"] // 4 if running else 0
        st["uptime"] = self.sim.uptime(vmid)
        for k in ("netin", "netout", "diskread", "diskwrite", "cpu"):
            st[k] = 0
        if running:
            st["pid"] = self.sim.runtime["guests"][str(vmid)]["pid"]
            st["running-machine"] = "pc-i440fx-9.2+pve1"
            st["running-qemu"] = "9.2.0"
            st["proxmox-support"] = {"backup-max-workers": 1, "pbs-dirty-bitmap": 1,
                                     "pbs-library-version": "1.5.1", "query-bitmap-info": 1}
            st["nics"] = {"tap%si%s" % (vmid, k[3:]): {"netin": 0, "netout": 0}
                          for k in c if re.match(r"net\d+\Z", k)}
        if c.get("lock"):
            st["lock"] = c["lock"]
        if c.get("tags"):
            st["tags"] = c["tags"]
        if self.is_template(c):
            st["template"] = 1
        return st

    def bootdisk(self, c):
        boot = c.get("boot", "")
        m = re.search(r"order=([^,]+)", boot)
        cands = m.group(1).split(";") if m else []
        if c.get("bootdisk"):
            cands.append(c["bootdisk"])
        for k in cands:
            if k in c and DRIVE_RE.match(k):
                try:
                    if not self.is_cdrom(self.parse_drive(k, c[k])):
                        return k
                except (Invalid, FormatError):
                    pass
        for k, d in self.drives(c):
            if not self.is_cdrom(d) and k not in ("efidisk0", "tpmstate0"):
                return k
        return None

    # ------------------------------------------------------------ set
    def prepare_value(self, vmid, key, value, c):
        if key == "tags":
            return self.unique_tags(value)
        if key == "cipassword":
            if not value.startswith("$5$") and not value.startswith("$6$"):
                value = encrypt_pw(value)
            return value
        if re.match(r"net\d+\Z", key):
            net = schema.parse_property_string(self.net_format(), value, key)
            if not net.get("macaddr"):
                net["macaddr"] = self.sim.random_mac()
            return schema.print_property_string(net, self.net_format())
        if DRIVE_RE.match(key):
            return self.prepare_drive(vmid, key, value)
        return value

    def prepare_drive(self, vmid, key, value):
        d = self.parse_drive(key, value)
        f = d.get("file", "")
        st = self.storage
        m = re.match(r"([a-z][a-z0-9\-_.]*[a-z0-9]):cloudinit\Z", f, re.I)
        spec = alloc_spec(f)
        if m:
            sid = m.group(1)
            st.check_enabled(sid)
            name = "vm-%s-cloudinit" % vmid
            fmt = "raw" if st.scfg(sid)["type"] == "zfspool" else "qcow2"
            d["file"] = st.alloc(sid, int(vmid), fmt, 4 * 2 ** 20, name=name)
            d["media"] = "cdrom"
            val = self.print_drive(key, d)
            self.messages.append("%s: successfully created disk '%s'\n" % (key, val))
            return val
        if spec:
            sid, gib = spec
            scfg = st.check_enabled(sid)
            if "images" not in st.content(sid):
                raise Die("storage '%s' does not support vm images" % sid)
            size = int(gib * 1024 ** 3)
            if d.get("import-from"):
                src = d.pop("import-from")
                size = self.import_size(src)
            elif key == "efidisk0":
                size = 1024 * 1024 if d.get("efitype", "2m") == "4m" else 128 * 1024
            elif key == "tpmstate0":
                size = 4 * 1024 * 1024
            fmt = d.pop("format", None) or ("raw" if scfg["type"] == "zfspool" else "raw")
            d["file"] = st.alloc(sid, int(vmid), fmt, size)
            d["size"] = schema.format_size(size)
            val = self.print_drive(key, d)
            self.messages.append("%s: successfully created disk '%s'\n" % (key, val))
            return val
        if is_volid(f) and not self.is_cdrom(d) or (is_volid(f) and f.split(":")[1].startswith(
                "iso/")):
            if not st.exists(f):
                raise Die("volume '%s' does not exist" % f)
            if not self.is_cdrom(d) and not d.get("size"):
                d["size"] = schema.format_size(st.volume_size(f))
        return self.print_drive(key, d)

    def import_size(self, src):
        path = src
        if is_volid(src):
            path = self.sim.host_path(self.storage.path(src))
        elif not os.path.exists(src) and os.path.exists(self.sim.host_path(src)):
            path = self.sim.host_path(src)
        if not os.path.isfile(path):
            raise Die("source '%s' does not exist" % src)
        with open(path, "rb") as f:
            head = f.read(32)
        if head[:4] == b"QFI\xfb" and len(head) >= 32:
            return int.from_bytes(head[24:32], "big")
        return os.path.getsize(path)

    def running_applies(self, c, key):
        hot = schema.split_list(c.get("hotplug", "network,disk,usb"))
        if c.get("hotplug") == "1":
            hot = ["network", "disk", "usb", "cpu", "memory", "cloudinit"]
        if key in FASTPLUG:
            return True
        if re.match(r"net\d+\Z", key):
            return "network" in hot
        if re.match(r"(scsi|virtio)\d+\Z", key):
            return "disk" in hot
        if re.match(r"usb\d+\Z", key):
            return "usb" in hot
        if key == "vcpus":
            return "cpu" in hot
        if key in ("memory", "balloon"):
            return "memory" in hot if key == "memory" else True
        if key in ("cpulimit", "cpuunits"):
            return True
        if key in CI_KEYS or re.match(r"ipconfig\d+\Z", key):
            return "cloudinit" in hot
        return False

    def update(self, vmid, params, delete, revert, digest, skiplock):
        c = self.load(vmid)
        if not skiplock:
            self.check_lock(c)
        self.assert_digest(digest, c)
        running = self.sim.running(vmid)
        dels = confmod.pending_delete(c)
        for opt in schema.split_list(delete or ""):
            force = opt.startswith("!")
            opt = opt.lstrip("!")
            if opt not in c and opt not in (c.get("pending") or {}):
                sys.stderr.write("cannot delete '%s' - not set in current configuration!\n" % opt)
                continue
            if not running or self.running_applies(c, opt) or re.match(r"unused\d+\Z", opt):
                self.delete_now(c, opt)
                c.get("pending", {}).pop(opt, None)
                dels.pop(opt, None)
            else:
                dels[opt] = force
        for opt in schema.split_list(revert or ""):
            c.get("pending", {}).pop(opt, None)
            dels.pop(opt, None)
        for k in sorted(params):
            v = self.prepare_value(vmid, k, str(params[k]), c)
            dels.pop(k, None)
            if running and not self.running_applies(c, k):
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
        if old is not None and DRIVE_RE.match(k):
            try:
                od = self.parse_drive(k, old)
                if od.get("file") != self.parse_drive(k, v).get("file"):
                    self.drop_drive(c, od)
            except (Invalid, FormatError):
                pass
        c[k] = v

    def drop_drive(self, c, d):
        f = d.get("file", "")
        if self.is_cloudinit(d):
            if self.storage.exists(f):
                self.storage.free(f)
        elif not self.is_cdrom(d) and is_volid(f):
            self.add_unused(c, f)

    def delete_now(self, c, opt):
        old = c.pop(opt, None)
        if old is None:
            return
        if DRIVE_RE.match(opt):
            try:
                self.drop_drive(c, self.parse_drive(opt, old))
            except (Invalid, FormatError):
                pass
        elif re.match(r"unused\d+\Z", opt):
            in_use = {v for _, v in self.volumes(c)}
            for s in c.get("snapshots", {}).values():
                in_use |= {v for _, v in self.volumes(s)}
            if old not in in_use and self.storage.exists(old):
                self.storage.free(old)


def encrypt_pw(pw):
    try:
        import warnings
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import crypt
        return crypt.crypt(pw, crypt.mksalt(crypt.METHOD_SHA256))
    except ImportError:
        import hashlib
        salt = os.urandom(6).hex()
        return "$5$%s$%s" % (salt, hashlib.sha256((salt + pw).encode()).hexdigest()[:43])


COMMANDS = {
    "list": ([], {"full": B()}),
    "config": (["vmid"], {"current": B(), "snapshot": dict(SNAP, optional=1)}),
    "pending": (["vmid"], {}),
    "status": (["vmid"], {"verbose": B()}),
    "set": (["vmid"], None),
    "create": (["vmid"], None),
    "start": (["vmid"], {"skiplock": B(), "force-cpu": S(), "machine": S(),
                         "migratedfrom": S(format="pve-node"), "migration_network": S(),
                         "migration_type": S(enum=["secure", "insecure"]), "stateuri": S(),
                         "targetstorage": S(), "timeout": I(minimum=0)}),
    "stop": (["vmid"], {"skiplock": B(), "keepActive": B(), "migratedfrom": S(),
                        "overrule-shutdown": B(), "timeout": I(minimum=0)}),
    "shutdown": (["vmid"], {"skiplock": B(), "keepActive": B(), "forceStop": B(),
                            "timeout": I(minimum=0)}),
    "reboot": (["vmid"], {"timeout": I(minimum=0)}),
    "destroy": (["vmid"], {"skiplock": B(), "purge": B(), "destroy-unreferenced-disks": B()}),
    "clone": (["vmid", "newid"], {"newid": VMID, "bwlimit": {"type": "integer", "optional": 1,
                                                             "minimum": 0},
                                  "description": S(), "format": S(enum=["raw", "qcow2", "vmdk"]),
                                  "full": B(), "name": S(format="dns-name"),
                                  "pool": S(format="pve-poolid"),
                                  "snapname": dict(SNAP, optional=1),
                                  "storage": S(format="pve-storage-id"),
                                  "target": S(format="pve-node")}),
    "resize": (["vmid", "disk", "size"], {"disk": {"type": "string", "enum": DRIVE_NAMES},
                                          "size": {"type": "string",
                                                   "pattern": r"\+?\d+(\.\d+)?[KMGT]?"},
                                          "digest": S(maxLength=40), "skiplock": B()}),
    "snapshot": (["vmid", "snapname"], {"snapname": SNAP, "description": S(), "vmstate": B()}),
    "listsnapshot": (["vmid"], {}),
    "rollback": (["vmid", "snapname"], {"snapname": SNAP, "start": B()}),
    "delsnapshot": (["vmid", "snapname"], {"snapname": SNAP, "force": B()}),
    "template": (["vmid"], {"disk": S(enum=DRIVE_NAMES)}),
    "importdisk": (["vmid", "source", "storage"], {"source": {"type": "string"},
                                                   "storage": {"type": "string",
                                                               "format": "pve-storage-id"},
                                                   "format": S(enum=["raw", "qcow2", "vmdk"]),
                                                   "target-disk": S(enum=DRIVE_NAMES)}),
    "guest exec": (["vmid", "extra-args"], {"extra-args": {"type": "array", "optional": 1},
                                            "pass-stdin": B(), "synchronous": B(),
                                            "timeout": I(minimum=0)}),
    "guest cmd": (["vmid", "command"], {"command": {"type": "string", "enum": AGENT_COMMANDS}}),
    "agent": (["vmid", "command"], {"command": {"type": "string", "enum": AGENT_COMMANDS}}),
    "cloudinit dump": (["vmid", "type"], {"type": {"type": "string",
                                                   "enum": ["user", "network", "meta"]}}),
    "cloudinit pending": (["vmid"], {}),
    "cloudinit update": (["vmid"], {}),
    "unlock": (["vmid"], {}),
}


def props_for(cmd):
    arg_param, own = COMMANDS[cmd]
    if cmd == "set":
        extra = {"vmid": VMID}
        return arg_param, Props(extra, schema.options("qemu", "set"))
    if cmd == "create":
        return arg_param, Props({"vmid": VMID}, schema.options("qemu", "create"))
    d = dict(own)
    d["vmid"] = VMID
    return arg_param, Props(d)


def main(sim, argv):
    if not argv:
        sys.stderr.write(cli.abort_unknown("qm", "no command specified", COMMANDS))
        return 255
    cmd, args = argv[0], argv[1:]
    if cmd in ("guest", "cloudinit"):
        if not args:
            sys.stderr.write(cli.abort_unknown("qm", "incomplete command 'qm %s'" % cmd,
                                               [c for c in COMMANDS if c.startswith(cmd)]))
            return 255
        cmd, args = cmd + " " + args[0], args[1:]
    if cmd not in COMMANDS:
        sys.stderr.write(cli.abort_unknown("qm", "unknown command 'qm %s'" % cmd, COMMANDS))
        return 255
    arg_param, props = props_for(cmd)
    prefix = "qm " + cmd
    mapping = {"sshkeys": _sshkeys_file} if cmd in ("set", "create") else None
    o = cli.parse(prefix, props, args, arg_param, mapping=mapping)
    vm = VM(sim)
    sim.lock()
    out = []
    try:
        rc = globals()["do_" + cmd.replace(" ", "_")](sim, vm, o, out, prefix, props, arg_param)
    finally:
        sys.stdout.write("".join(out))
    return rc or 0


# ------------------------------------------------------------ commands

def do_list(sim, vm, o, out, *a):
    rows = []
    for vmid in sim.local_guests("qemu"):
        c = vm.load(vmid, warn=False)
        st = vm.status(vmid, c)
        rows.append(st)
    if not rows:
        return
    out.append("%10s %-20s %-10s %-10s %12s %-10s\n" % ("VMID", "NAME", "STATUS", "MEM(MB)",
                                                       "BOOTDISK(GB)", "PID"))
    for st in rows:
        mem = st["maxmem"] / (1024 * 1024)
        mem = "%d" % mem if mem == int(mem) else "%s" % mem
        out.append("%10s %-20s %-10s %-10s %12.2f %-10s\n" % (
            st["vmid"], st.get("name", ""), st["qmpstatus"], mem,
            st["maxdisk"] / 1024 ** 3, st.get("pid", 0)))


def do_config(sim, vm, o, out, *a):
    vm.print_config(o["vmid"], o.get("current"), o.get("snapshot"), out)


def do_pending(sim, vm, o, out, *a):
    vm.print_pending(o["vmid"], out)


def _print_recursive(prefix, v, key, out):
    if isinstance(v, dict):
        if key is not None:
            out.append("%s%s:\n" % (prefix, key))
        for k in sorted(v):
            _print_recursive("\t" + prefix, v[k], k, out)
    elif isinstance(v, list):
        if key is not None:
            out.append("%s%s:\n" % (prefix, key))
        for item in v:
            _print_recursive("\t" + prefix, item, None, out)
    elif v is not None:
        out.append("%s%s: %s\n" % (prefix, key, v) if key is not None else "%s%s\n" % (prefix, v))


def do_status(sim, vm, o, out, *a):
    c = vm.load(o["vmid"])
    st = vm.status(o["vmid"], c)
    if o.get("verbose"):
        for k in sorted(st):
            if k in ("cpu", "relcpu"):
                continue
            _print_recursive("", st[k], k, out)
    else:
        out.append("status: %s\n" % st["qmpstatus"])


def _sshkeys_file(path):
    """qm's param_mapping: --sshkeys names a file; its content is URI-escaped."""
    try:
        with open(path, encoding="utf-8") as f:
            data = f.read()
    except OSError as e:
        raise Die("unable to open file '%s' - %s" % (path, e.strerror))
    return urllib.parse.quote(data, safe="-_.~")


def do_set(sim, vm, o, out, prefix, props, arg_param):
    vmid = o.pop("vmid")
    delete, revert, digest = o.pop("delete", None), o.pop("revert", None), o.pop("digest", None)
    skiplock = o.pop("skiplock", None)
    o.pop("force", None)
    o.pop("background_delay", None)
    if "cdrom" in o:
        o["ide2"] = o.pop("cdrom") + ",media=cdrom"
    if not o and not delete and not revert:
        raise Die("no options specified")
    if delete:
        vm.check_delete_list(prefix, props, arg_param, delete, o)
    shown = dict(o)
    for k, v in (("delete", delete), ("revert", revert), ("digest", digest),
                 ("skiplock", skiplock)):
        if v is not None:
            shown[k] = v
    out.append("update VM %s: %s\n" % (vmid, " ".join(
        "-%s %s" % (k, "<hidden>" if k == "cipassword" else shown[k]) for k in sorted(shown))))
    try:
        vm.update(vmid, o, delete, revert, digest, skiplock)
    finally:
        out.extend(vm.messages)


def do_create(sim, vm, o, out, prefix, props, arg_param):
    vmid = o.pop("vmid")
    sim.check_vmid_unused(vmid)
    if o.pop("archive", None):
        raise Die("restore from backup archives is not simulated")
    for k in ("force", "unique", "live-restore", "bwlimit", "storage", "ha-managed",
              "import-working-storage"):
        o.pop(k, None)
    pool = o.pop("pool", None)
    if pool is not None and pool not in sim.settings.get("pools", []):
        raise Die("pool '%s' does not exist" % pool)
    start = o.pop("start", None)
    if "cdrom" in o:
        o["ide2"] = o.pop("cdrom") + ",media=cdrom"
    c = {"pending": {}, "snapshots": {}}
    try:
        for k in sorted(o):
            v = vm.prepare_value(vmid, k, str(o[k]), c)
            out.extend(vm.messages)
            del vm.messages[:]
            if k == "description":
                c["description"] = v
            else:
                c[k] = v
    except Exception:
        for _, volid in vm.volumes(c):
            try:
                vm.storage.free(volid)
            except Die:
                pass
        raise
    if "smbios1" not in c:
        c["smbios1"] = "uuid=%s" % uuid.uuid4()
    if "vmgenid" not in c:
        c["vmgenid"] = str(uuid.uuid4())
    elif c["vmgenid"] == "1":
        c["vmgenid"] = str(uuid.uuid4())
    elif c["vmgenid"] == "0":
        del c["vmgenid"]
    c["meta"] = "creation-qemu=9.2.0,ctime=%d" % int(time.time())
    if "boot" not in c:
        order = []
        disks = [k for k, d in vm.drives(c) if not vm.is_cdrom(d)
                 and k not in ("efidisk0", "tpmstate0")]
        cds = [k for k, d in vm.drives(c) if vm.is_cdrom(d) and not vm.is_cloudinit(d)]
        key = lambda k: (["ide", "sata", "scsi", "virtio"].index(re.match(r"[a-z]+", k).group(0)),
                         int(re.search(r"\d+", k).group(0)))
        if disks:
            order.append(sorted(disks, key=key)[0])
        if cds:
            order.append(sorted(cds, key=key)[0])
        nets = sorted((k for k in c if re.match(r"net\d+\Z", k)), key=lambda k: int(k[3:]))
        if nets:
            order.append(nets[0])
        if order:
            c["boot"] = "order=" + ";".join(order)
    vm.write(vmid, c)
    vm.save_storage()
    if start:
        vm.start_guest(vmid)


def _check_pci(sim, c):
    for k in sorted(c):
        if not re.match(r"hostpci\d+\Z", k):
            continue
        d = schema.parse_property_string(schema.HASH_FORMATS["pve-qm-hostpci"], c[k], k)
        if "host" not in d:
            continue
        groups = sim.host_path("/sys/kernel/iommu_groups")
        if not os.path.isdir(groups) or not os.listdir(groups):
            raise Die("cannot prepare PCI pass-through, IOMMU not present")
        for hid in d["host"].split(";"):
            full = hid if re.match(r"[a-f0-9]{4,}:", hid) else "0000:" + hid
            devdir = sim.host_path("/sys/bus/pci/devices")
            if "." in full.split(":")[-1]:
                ok = os.path.isdir(os.path.join(devdir, full))
            else:
                ok = os.path.isdir(devdir) and any(n.startswith(full + ".")
                                                   for n in os.listdir(devdir))
            if not ok:
                raise Die("no pci device info for device '%s'" % full)


def do_start(sim, vm, o, out, *a):
    vmid = o["vmid"]
    c = vm.load(vmid)
    if not o.get("skiplock"):
        vm.check_lock(c)
    if vm.is_template(c):
        raise Die("you can't start a vm if it's a template")
    if sim.running(vmid):
        raise Die("VM %s already running" % vmid)
    for k, volid in vm.volumes(c):
        if not vm.storage.exists(volid):
            raise Die("volume '%s' does not exist" % volid)
    _check_pci(sim, confmod.apply_pending(c))
    vm.start_guest(vmid, c)


def do_stop(sim, vm, o, out, *a):
    vmid = o["vmid"]
    c = vm.load(vmid)
    if not o.get("skiplock"):
        vm.check_lock(c)
    if sim.running(vmid):
        vm.stop_guest(vmid)


def do_shutdown(sim, vm, o, out, *a):
    do_stop(sim, vm, o, out)


def do_reboot(sim, vm, o, out, *a):
    vmid = o["vmid"]
    c = vm.load(vmid)
    if not sim.running(vmid):
        raise Die("VM %s not running" % vmid)
    vm.check_lock(c)
    vm.stop_guest(vmid)
    vm.start_guest(vmid)


def do_destroy(sim, vm, o, out, *a):
    vmid = o["vmid"]
    c = vm.load(vmid)
    vm.check_protection(c, "can't remove VM %s" % vmid)
    if sim.running(vmid):
        raise Die("VM %s is running - destroy failed" % vmid)
    if not o.get("skiplock"):
        vm.check_lock(c)
    vols = [v for _, v in vm.volumes(c, True)]
    for k, d in vm.drives(c):
        if vm.is_cloudinit(d):
            vols.append(d["file"])
    for s in c["snapshots"].values():
        if s.get("vmstate"):
            vols.append(s["vmstate"])
    if o.get("destroy-unreferenced-disks", 1):
        for sid in vm.storage.ids():
            if not vm.storage.enabled(sid):
                continue
            for row in vm.storage.list_volumes(sid, vmid=vmid):
                if row[2] in ("images", "rootdir") and row[0] not in vols:
                    vols.append(row[0])
    for volid in vols:
        try:
            _, _, info = vm.storage.parse(volid)
            if info.get("vmid") is not None and int(info["vmid"]) != int(vmid):
                continue
            if vm.storage.exists(volid):
                vm.storage.free(volid)
        except Die as e:
            sys.stderr.write("Could not remove disk '%s', check manually: %s" % (volid, e.msg))
    vm.save_storage()
    sim.remove_conf("qemu", vmid)


def do_clone(sim, vm, o, out, *a):
    vmid, newid = o["vmid"], o["newid"]
    c = vm.load(vmid)
    snapname, storage, fmt = o.get("snapname"), o.get("storage"), o.get("format")
    if o.get("target") and o["target"] not in (sim.node, "localhost"):
        raise Die("no such cluster node '%s'" % o["target"])
    if o.get("pool") is not None and o["pool"] not in sim.settings.get("pools", []):
        raise Die("pool '%s' does not exist" % o["pool"])
    if storage:
        vm.storage.check_enabled(storage)
    full = o.get("full")
    if full is None:
        full = not vm.is_template(c)
    if storage is not None and not full:
        raise Die("parameter 'storage' not allowed for linked clones")
    if fmt is not None and not full:
        raise Die("parameter 'format' not allowed for linked clones")
    if snapname and snapname not in c["snapshots"]:
        raise Die("snapshot '%s' does not exist" % snapname)
    if not vm.is_template(c) or snapname:
        vm.check_lock(c)
    src = c["snapshots"][snapname] if snapname else c
    if os.path.exists(sim.conf_path("qemu", newid)):
        raise Die("unable to create VM %s: config file already exists" % newid)
    sim.check_vmid_unused(newid)
    running = sim.running(vmid)
    new, drives = {"pending": {}, "snapshots": {}}, []
    for k, v in src.items():
        if k in ("snapshots", "pending", "special", "parent", "snaptime", "vmstate",
                 "snapstate", "digest", "lock", "template", "runningmachine", "runningcpu") \
                or re.match(r"unused\d+\Z", k):
            continue
        if re.match(r"net\d+\Z", k):
            net = schema.parse_property_string(vm.net_format(), v, k)
            net["macaddr"] = sim.random_mac()
            new[k] = schema.print_property_string(net, vm.net_format())
        elif DRIVE_RE.match(k):
            d = vm.parse_drive(k, v)
            if vm.is_cdrom(d) and not vm.is_cloudinit(d):
                new[k] = v
                continue
            if k == "tpmstate0" and full and running and not snapname:
                raise Die("cannot clone TPM state while VM is running")
            if full or vm.is_cloudinit(d):
                if not vm.storage.has_feature("copy", d["file"], snapname):
                    raise Die("Full clone feature is not supported for drive '%s'" % k)
                drives.append((k, d, True))
            else:
                if not vm.storage.has_feature("clone", d["file"], snapname):
                    raise Die("Linked clone feature is not supported for drive '%s'" % k)
                drives.append((k, d, False))
        else:
            new[k] = v
    rest = [p for p in new.get("smbios1", "").split(",") if p and not p.startswith("uuid=")]
    new["smbios1"] = ",".join(["uuid=%s" % uuid.uuid4()] + rest)
    if new.get("vmgenid"):
        new["vmgenid"] = str(uuid.uuid4())
    new["name"] = o.get("name") or "Copy-of-VM-%s" % (c.get("name") or vmid)
    if o.get("description"):
        new["description"] = o["description"]
    created = []
    try:
        for k, d, is_full in sorted(drives, key=lambda x: x[0]):
            if vm.is_cloudinit(d):
                sid = storage or vm.storage.split_volid(d["file"])[0]
                d["file"] = vm.storage.alloc(sid, newid, "raw" if vm.storage.scfg(sid)["type"]
                                             == "zfspool" else "qcow2", 4 * 2 ** 20,
                                             name="vm-%s-cloudinit" % newid)
            elif is_full:
                out.append("create full clone of drive %s (%s)\n" % (k, d["file"]))
                d["file"] = vm.storage.copy(d["file"], newid, storage, snapname)
            else:
                out.append("create linked clone of drive %s (%s)\n" % (k, d["file"]))
                d["file"] = vm.storage.clone_linked(d["file"], newid, snapname)
            created.append(d["file"])
            new[k] = vm.print_drive(k, d)
    except Die as e:
        for volid in created:
            vm.storage.free(volid)
        vm.save_storage()
        sys.stdout.write("".join(out))
        del out[:]
        raise Die("clone failed: " + e.msg)
    vm.write(newid, new)
    vm.save_storage()


def do_resize(sim, vm, o, out, *a):
    vmid, disk, sizestr = o["vmid"], o["disk"], o["size"]
    c = vm.load(vmid)
    if not o.get("skiplock"):
        vm.check_lock(c)
    vm.assert_digest(o.get("digest"), c)
    if disk not in c:
        raise Die("disk '%s' does not exist" % disk)
    d = vm.parse_drive(disk, c[disk])
    if vm.is_cdrom(d):
        raise Die("you can't resize a cdrom")
    volid = d["file"]
    ext = sizestr.startswith("+")
    newsize = schema.parse_size(sizestr.lstrip("+"))
    size = vm.storage.volume_size(volid)
    if ext:
        newsize += size
    if newsize < size:
        raise Die("shrinking disks is not supported")
    if newsize == size:
        return
    vm.storage.resize(volid, newsize)
    d["size"] = schema.format_size(newsize)
    c[disk] = vm.print_drive(disk, d)
    vm.write(vmid, c)
    vm.save_storage()


def do_snapshot(sim, vm, o, out, *a):
    vm.snapshot_create(o["vmid"], o["snapname"], o.get("description"), o.get("vmstate"))


def do_delsnapshot(sim, vm, o, out, *a):
    vm.snapshot_delete(o["vmid"], o["snapname"], o.get("force"))


def do_rollback(sim, vm, o, out, *a):
    vm.snapshot_rollback(o["vmid"], o["snapname"], o.get("start"))


def do_listsnapshot(sim, vm, o, out, *a):
    print_snapshot_tree(vm.snapshot_list(o["vmid"]), out)


def do_template(sim, vm, o, out, *a):
    vmid = o["vmid"]
    c = vm.load(vmid)
    vm.check_lock(c)
    if c["snapshots"]:
        raise Die("unable to create template, because VM contains snapshots")
    if vm.is_template(c) and not o.get("disk"):
        raise Die("you can't convert a template to a template")
    if sim.running(vmid):
        raise Die("you can't convert a VM to template if VM is running")
    for k, d in vm.drives(c):
        if vm.is_cdrom(d) or (o.get("disk") and k != o["disk"]):
            continue
        if not vm.storage.has_feature("template", d["file"]):
            raise Die("volume '%s' does not support template/clone" % d["file"])
    for k, d in vm.drives(c):
        if vm.is_cdrom(d) or (o.get("disk") and k != o["disk"]):
            continue
        d["file"] = vm.storage.create_base(d["file"])
        c[k] = vm.print_drive(k, d)
    if not o.get("disk"):
        c["template"] = "1"
    vm.write(vmid, c)
    vm.save_storage()


def do_importdisk(sim, vm, o, out, *a):
    vmid, source, sid = o["vmid"], o["source"], o["storage"]
    c = vm.load(vmid)
    vm.check_lock(c)
    scfg = vm.storage.check_enabled(sid)
    if "images" not in vm.storage.content(sid):
        raise Die("storage '%s' does not support vm images" % sid)
    size = vm.import_size(source)
    fmt = o.get("format") or "raw"
    if scfg["type"] == "zfspool":
        fmt = "raw"
    out.append("importing disk '%s' to VM %s ...\n" % (source, vmid))
    volid = vm.storage.alloc(sid, int(vmid), fmt, size)
    gib = size / 1024 ** 3
    out.append("transferred 0.0 B of %.1f GiB (0.00%%)\n" % gib)
    out.append("transferred %.1f GiB of %.1f GiB (100.00%%)\n" % (gib, gib))
    target = o.get("target-disk")
    if target:
        if target in c:
            vm.drop_drive(c, vm.parse_drive(target, c[target]))
        c[target] = "%s,size=%s" % (volid, schema.format_size(size))
        key = target
    else:
        key = vm.add_unused(c, volid)
    vm.write(vmid, c)
    vm.save_storage()
    out.append("Successfully imported disk as '%s:%s'\n" % (key, volid))


# ----------------------------------------------------- guest agent

def _agent_check(sim, vm, vmid, c):
    agent = c.get("agent")
    enabled = False
    if agent:
        try:
            fmt = schema.subkeys_of(schema.options("qemu", "set").get("agent"))
            enabled = str(schema.parse_property_string(fmt, agent, "agent").get("enabled")) == "1"
        except (Invalid, FormatError):
            enabled = False
    if not enabled:
        raise Die("No QEMU guest agent configured")
    if not sim.running(vmid):
        raise Die("VM %s is not running" % vmid)
    delays = sim.settings.get("agent_delay", {})
    delay = float(delays.get(str(vmid), sim.settings.get("agent_delay_s", 0))) \
        if isinstance(delays, dict) else float(delays)
    if sim.uptime_exact(vmid) < delay:
        raise Die("QEMU guest agent is not running")


def _print_agent(res, out):
    if res is None:
        return
    if isinstance(res, str):
        res = res.rstrip("\n")
        if res.strip():
            out.append(res + "\n")
        return
    if isinstance(res, dict) and not res:
        return
    out.append(pretty(res))


def do_guest_exec(sim, vm, o, out, *a):
    vmid = o["vmid"]
    c = vm.load(vmid)
    _agent_check(sim, vm, vmid, c)
    args = o.get("extra-args") or []
    if not args:
        raise Die("No command given")
    stdin = read_stdin() if o.get("pass-stdin") else b""
    if len(stdin) > 1024 * 1024:
        raise Die("'input-data' size exceeds 1 MiB")
    sim.unlock()
    so, se, rc = guestexec.run(sim, "qemu", vmid, args, c, stdin)
    if o.get("synchronous") == 0:
        res = {"pid": 1000 + len(args)}
    else:
        res = {"exitcode": rc, "exited": 1}
        if so:
            res["out-data"] = so
        if se:
            res["err-data"] = se
    _print_agent(res, out)


def _agent_result(sim, vm, vmid, c, command):
    scripted = sim.settings.get("agent_results", {})
    key = "%s:%s" % (vmid, command)
    if key in scripted:
        return scripted[key]
    if command in scripted:
        return scripted[command]
    name = c.get("name", "VM%s" % vmid)
    if command in ("ping", "fsfreeze-thaw", "fstrim", "shutdown", "suspend-disk",
                   "suspend-hybrid", "suspend-ram"):
        return {} if command != "fsfreeze-thaw" else 0
    if command == "fsfreeze-status":
        return "thawed"
    if command == "fsfreeze-freeze":
        return 1
    if command == "get-host-name":
        return {"host-name": name}
    if command == "get-osinfo":
        return {"id": "debian", "kernel-release": "6.1.0-25-amd64", "machine": "x86_64",
                "name": "Debian GNU/Linux", "pretty-name": "Debian GNU/Linux 12 (bookworm)",
                "version": "12 (bookworm)", "version-id": "12"}
    if command == "get-time":
        return int(time.time() * 1e9)
    if command == "get-timezone":
        return {"offset": 0, "zone": "UTC"}
    if command == "info":
        return {"supported_commands": [{"enabled": True, "name": "guest-" + n,
                                        "success-response": True} for n in AGENT_COMMANDS],
                "version": "7.2.15"}
    if command == "network-get-interfaces":
        ifs = [{"hardware-address": "00:00:00:00:00:00", "ip-addresses": [
            {"ip-address": "127.0.0.1", "ip-address-type": "ipv4", "prefix": 8}], "name": "lo"}]
        for k in sorted(c):
            m = re.match(r"net(\d+)\Z", k)
            if not m:
                continue
            mac = re.search(r"=([0-9A-Fa-f:]{17})", c[k])
            addrs = []
            ipc = c.get("ipconfig" + m.group(1), "")
            ipm = re.search(r"ip=([0-9.]+)/(\d+)", ipc)
            if ipm:
                addrs.append({"ip-address": ipm.group(1), "ip-address-type": "ipv4",
                              "prefix": int(ipm.group(2))})
            ifs.append({"hardware-address": (mac.group(1) if mac else "").lower(),
                        "ip-addresses": addrs, "name": "eth" + m.group(1)})
        return ifs
    return {}


def do_guest_cmd(sim, vm, o, out, *a):
    vmid = o["vmid"]
    c = vm.load(vmid)
    _agent_check(sim, vm, vmid, c)
    _print_agent(_agent_result(sim, vm, vmid, c, o["command"]), out)


def do_agent(sim, vm, o, out, *a):
    do_guest_cmd(sim, vm, o, out)


# ------------------------------------------------------- cloud-init

def _ci_user(vm, vmid, c):
    name = c.get("name", "VM%s" % vmid)
    lines = ["#cloud-config", "hostname: %s" % name, "manage_etc_hosts: true",
             "fqdn: %s" % name]
    if c.get("ciuser"):
        lines.append("user: %s" % c["ciuser"])
    if c.get("cipassword"):
        lines.append("password: %s" % c["cipassword"])
    if c.get("sshkeys"):
        lines.append("ssh_authorized_keys:")
        for k in urllib.parse.unquote(c["sshkeys"]).splitlines():
            if k.strip():
                lines.append("  - %s" % k.strip())
    lines += ["chpasswd:", "  expire: False", "users:", "  - default"]
    if c.get("ciupgrade", "1") == "1":
        lines.append("package_upgrade: true")
    return "\n".join(lines) + "\n"


def _ci_network(vm, vmid, c):
    lines = ["version: 1", "config:"]
    for k in sorted(c, key=lambda k: (len(k), k)):
        m = re.match(r"net(\d+)\Z", k)
        if not m:
            continue
        mac = re.search(r"=([0-9A-Fa-f:]{17})", c[k])
        lines += ["    - type: physical", "      name: eth%s" % m.group(1),
                  "      mac_address: '%s'" % (mac.group(1).lower() if mac else "")]
        ipc = c.get("ipconfig" + m.group(1))
        if ipc:
            lines.append("      subnets:")
            d = dict(p.split("=", 1) for p in ipc.split(",") if "=" in p)
            if d.get("ip") == "dhcp":
                lines.append("      - type: dhcp4")
            elif d.get("ip"):
                lines += ["      - type: static", "        address: '%s'" % d["ip"]]
                if d.get("gw"):
                    lines.append("        gateway: '%s'" % d["gw"])
            if d.get("ip6") in ("dhcp", "auto"):
                lines.append("      - type: %s" % ("dhcp6" if d["ip6"] == "dhcp" else
                                                   "ipv6_slaac"))
    if c.get("nameserver") or c.get("searchdomain"):
        lines.append("    - type: nameserver")
        if c.get("nameserver"):
            lines.append("      address:")
            lines += ["      - '%s'" % a for a in schema.split_list(c["nameserver"])]
        if c.get("searchdomain"):
            lines.append("      search:")
            lines += ["      - '%s'" % a for a in schema.split_list(c["searchdomain"])]
    return "\n".join(lines) + "\n"


def do_cloudinit_dump(sim, vm, o, out, *a):
    vmid = o["vmid"]
    c = confmod.apply_pending(vm.load(vmid))
    t = o["type"]
    if t == "user":
        out.append(_ci_user(vm, vmid, c))
    elif t == "network":
        out.append(_ci_network(vm, vmid, c))
    else:
        out.append("instance-id: %s\n" % re.sub(r"\W", "", c.get("smbios1", "")[5:41] or
                                                 str(vmid)))


def do_cloudinit_pending(sim, vm, o, out, *a):
    c = vm.load(o["vmid"])
    cur = confmod.apply_pending(c)
    old = (c.get("special") or {}).get("cloudinit", {})
    keys = set(old)
    keys |= {k for k in cur if k in CI_KEYS or k == "name" or re.match(r"(ipconfig|net)\d+\Z", k)}
    for k in sorted(keys):
        ov, nv = old.get(k), cur.get(k)
        if k == "cipassword":
            ov = "**********" if ov else ov
            nv = "**********" if nv else nv
        if ov is not None and nv is None:
            out.append("del %s: %s\n" % (k, ov))
        elif ov is None and nv is not None:
            out.append("new %s: %s\n" % (k, nv))
        elif ov != nv:
            out.append("cur %s: %s\nnew %s: %s\n" % (k, ov, k, nv))
        else:
            out.append("cur %s: %s\n" % (k, ov))


def do_cloudinit_update(sim, vm, o, out, *a):
    vmid = o["vmid"]
    c = vm.load(vmid)
    vm.check_lock(c)
    vm.gen_cloudinit(c)
    vm.write(vmid, c)
    out.append("generating cloud-init ISO\n")


def do_unlock(sim, vm, o, out, *a):
    c = vm.load(o["vmid"])
    c.pop("lock", None)
    vm.write(o["vmid"], c)
