"""Guest config files in Proxmox's own format (parse_pct_config /
parse_vm_config and their writers): '#' description lines (percent-
encoded), sorted 'key: value' lines, raw 'lxc.*' lines in order, a pending
section ([PENDING] for VMs, [pve:pending] for CTs), [special:cloudinit],
then snapshot sections. A conf is a dict like Perl's: keys -> values, plus
'description', 'lxc' (list of pairs), 'pending', 'special', 'snapshots'."""

import re
import urllib.parse

from . import schema
from .errors import FormatError, Invalid

SECTION_KEYS = ("description", "lxc", "pending", "special", "snapshots", "digest")


def encode_text(s):
    out = []
    for b in s.encode("utf-8"):
        if b < 0x20 or b >= 0x7F or b in (0x3A, 0x25):
            out.append("%%%02X" % b)
        else:
            out.append(chr(b))
    return "".join(out)


def decode_text(s):
    return urllib.parse.unquote(s, encoding="utf-8", errors="replace")


def check_value(kind, key, value):
    """The check_type the config parsers run on each value: returns the
    normalised value or raises Invalid / FormatError."""
    d = schema.config_option(kind, key)
    if d is None:
        raise Invalid("unknown setting '%s'" % key)
    t = d.get("type")
    if t == "boolean":
        b = schema.parse_boolean(value)
        if b is None:
            raise Invalid("type check ('boolean') failed - got '%s'" % value)
        return str(b)
    if t == "integer":
        if not re.match(r"\d+\Z", value):
            raise Invalid("type check ('integer') failed - got '%s'" % value)
        return str(int(value))
    if t == "number":
        if not re.match(r"\d+(\.\d+)?\Z", value):
            raise Invalid("type check ('number') failed - got '%s'" % value)
        return value
    fmt = schema.option_format(d)
    if fmt is not None:
        schema.check_format(fmt, value, key)
        return value
    if d.get("format"):
        schema.check_format(d["format"], value, key)
        return value
    m = re.match(r'"(.*)"\Z', value, re.S)
    return m.group(1) if m else value


def new_section(kind):
    return {}


def parse(text, kind, vmid, validate=True, strict=False):
    """Returns (conf, warnings). Bad lines/values are dropped with a
    warning, as Proxmox does; strict=True raises Invalid instead."""
    conf = {"pending": {}, "snapshots": {}, "special": {}}
    warnings = []
    section = conf
    descr = [None]

    def finish():
        if descr[0] is not None:
            section["description"] = descr[0].rstrip()
        descr[0] = None

    def warn(msg):
        if strict:
            raise Invalid(msg)
        warnings.append(msg if msg.endswith("\n") else msg + "\n")

    pending_re = r"\[PENDING\]\s*\Z" if kind == "qemu" else r"\[pve:pending\]\s*\Z"
    key_re = r"([a-z][a-z_\-]*\d*):\s*(.+?)\s*\Z" if kind == "qemu" else r"([a-z][a-z_]*\d*):\s*(.+?)\s*\Z"
    in_pending = False
    special = None
    seen = set()
    skipping = False

    def enter(name, new):
        finish()
        if name in seen:
            warn("vm %s - duplicate section: %s" % (vmid, name))
        seen.add(name)
        return new

    for line in text.split("\n"):
        if re.match(r"\s*\Z", line):
            continue
        if re.match(pending_re, line, re.I):
            conf["pending"] = {}
            section = enter("pending", conf["pending"])
            in_pending, special, skipping = True, None, False
            continue
        m = re.match(r"\[special:(cloudinit|fleecing)\]\s*\Z", line) if kind == "qemu" else None
        if m:
            conf["special"][m.group(1)] = {}
            section = enter("special:" + m.group(1), conf["special"][m.group(1)])
            in_pending, special, skipping = False, m.group(1), False
            continue
        m = re.match(r"\[([a-z][a-z0-9_\-]+)\]\s*\Z", line, re.I)
        if m:
            name = m.group(1)
            conf["snapshots"][name] = {}
            section = enter(name, conf["snapshots"][name])
            in_pending, special, skipping = False, None, False
            continue
        m = re.match(r"\[(.*)\]\s*\Z", line)
        if m:
            finish()
            warn("vm %s - skipping unknown section: '%s'" % (vmid, m.group(1)))
            section, skipping = {}, True
            continue
        if skipping:
            continue
        m = re.match(r"#(.*)\Z", line)
        if m:
            descr[0] = (descr[0] or "") + decode_text(m.group(1)) + "\n"
            continue
        if kind == "lxc":
            m = re.match(r"(lxc\.[a-z0-9_\-.]+)(:|\s*=)\s*(.*?)\s*\Z", line)
            if m:
                section.setdefault("lxc", []).append([m.group(1), m.group(3)])
                continue
        m = re.match(r"description:\s*(.*\S)\s*\Z", line)
        if m:
            descr[0] = (descr[0] or "") + decode_text(m.group(1)) + "\n"
            continue
        m = re.match(r"snapstate:\s*(prepare|delete)\s*\Z", line)
        if m:
            section["snapstate"] = m.group(1)
            continue
        m = re.match(r"delete:\s*(.*\S)\s*\Z", line)
        if m:
            if in_pending:
                section["delete"] = m.group(1)
            else:
                warn("vm %s - property 'delete' is only allowed in [PENDING]" % vmid)
            continue
        m = re.match(key_re, line)
        if m:
            key, value = m.group(1), m.group(2)
            if kind == "qemu" and key == "cdrom":
                key = "ide2"
            if special == "fleecing" and key == "fleecing-images":
                section[key] = value
                continue
            if validate:
                try:
                    value = check_value(kind, key, value)
                except (Invalid, FormatError) as e:
                    warn("vm %s - unable to parse value of '%s' - %s" % (vmid, key, e))
                    continue
            section[key] = value
            continue
        warn("vm %s - unable to parse config: %s" % (vmid, line))
    finish()
    return conf, warnings


def _raw_section(sec, kind, pending=False):
    out = []
    d = sec.get("description")
    if d is not None:
        if d:
            out.extend("#" + encode_text(line) for line in d.split("\n"))
        elif pending:
            out.append("#")
    for k in sorted(sec):
        if k in SECTION_KEYS or k == "snapname":
            continue
        out.append("%s: %s" % (k, sec[k]))
    if kind == "lxc":
        out.extend("%s: %s" % (k, v) for k, v in sec.get("lxc", []))
    return "".join(line + "\n" for line in out)


def write(conf, kind):
    raw = _raw_section(conf, kind)
    pending = conf.get("pending") or {}
    if pending:
        raw += "\n[%s]\n" % ("PENDING" if kind == "qemu" else "pve:pending")
        raw += _raw_section(pending, kind, True)
    for name in sorted(conf.get("special") or {}):
        raw += "\n[special:%s]\n" % name
        raw += _raw_section(conf["special"][name], kind)
    for name in sorted(conf.get("snapshots") or {}):
        raw += "\n[%s]\n" % name
        raw += _raw_section(conf["snapshots"][name], kind)
    return raw


def plain(sec):
    """The option keys of a section (no description/lxc/sections)."""
    return {k: v for k, v in sec.items() if k not in SECTION_KEYS}


def pending_delete(conf):
    """parse_pending_delete: {key: force} from 'delete: a,!b'."""
    res = {}
    for item in schema.split_list((conf.get("pending") or {}).get("delete", "")):
        force = item.startswith("!")
        res[item.lstrip("!")] = force
    return res


def set_pending_delete(conf, dels):
    p = conf.setdefault("pending", {})
    if dels:
        p["delete"] = ",".join(("!" if f else "") + k for k, f in sorted(dels.items()))
    else:
        p.pop("delete", None)


def apply_pending(conf):
    """load_current_config's view: pending values and deletions applied."""
    res = {k: v for k, v in conf.items() if k not in ("pending", "snapshots", "special")}
    for k, v in (conf.get("pending") or {}).items():
        if k != "delete":
            res[k] = v
    for k in pending_delete(conf):
        res.pop(k, None)
    return res
