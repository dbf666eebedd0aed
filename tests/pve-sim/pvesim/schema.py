"""Proxmox's JSON-schema checks (PVE::JSONSchema), re-implemented from its
source: check_prop order (type, format, pattern, length, range, enum), the
messages it adds, property strings (parse_property_string /
print_property_string) and the named formats the guest options use.

Option definitions come from data/option-formats.json (copied from the
Proxmox API viewer); it is loaded lazily, on the first validation."""

import json
import os
import re

from .errors import FormatError, Invalid

_DATA = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "data")
_formats_json = None


def _api():
    global _formats_json
    if _formats_json is None:
        with open(os.path.join(_DATA, "option-formats.json"), encoding="utf-8") as f:
            _formats_json = json.load(f)
    return _formats_json


# ---------------------------------------------------------------- helpers

IPV4 = r"(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
_H = r"[0-9a-fA-F]{1,4}"
IPV6 = (r"(?:(?:(?:%(h)s:){6}(?:%(h)s:%(h)s|%(v4)s))|(?:::(?:%(h)s:){5}(?:%(h)s:%(h)s|%(v4)s))"
        r"|(?:(?:%(h)s)?::(?:%(h)s:){4}(?:%(h)s:%(h)s|%(v4)s))"
        r"|(?:(?:(?:%(h)s:){0,1}%(h)s)?::(?:%(h)s:){3}(?:%(h)s:%(h)s|%(v4)s))"
        r"|(?:(?:(?:%(h)s:){0,2}%(h)s)?::(?:%(h)s:){2}(?:%(h)s:%(h)s|%(v4)s))"
        r"|(?:(?:(?:%(h)s:){0,3}%(h)s)?::(?:%(h)s:){1}(?:%(h)s:%(h)s|%(v4)s))"
        r"|(?:(?:(?:%(h)s:){0,4}%(h)s)?::(?:%(h)s:%(h)s|%(v4)s))"
        r"|(?:(?:(?:%(h)s:){0,5}%(h)s)?::%(h)s)|(?:(?:(?:%(h)s:){0,6}%(h)s)?::))") % {"h": _H, "v4": IPV4}
_re_cache = {}


def rx(pat):
    r = _re_cache.get(pat)
    if r is None:
        # Perl's (?^: ...) is Python's (?: ...)
        r = re.compile(r"(?:%s)\Z" % pat.replace("(?^:", "(?:"), re.S)
        _re_cache[pat] = r
    return r


def is_number(v):
    return re.match(r"[+-]?(\d+\.\d+|\d+\.|\.\d+|\d+)([eE][+-]?\d+)?\Z", v) is not None


def is_integer(v):
    return re.match(r"[+-]?\d+\Z", v) is not None


def parse_boolean(v):
    lv = str(v).lower()
    if lv in ("1", "on", "yes", "true"):
        return 1
    if lv in ("0", "off", "no", "false"):
        return 0
    return None


def parse_size(v):
    m = re.match(r"(\d+(\.\d+)?)([KMGT])?\Z", v)
    if not m:
        return None
    n = float(m.group(1))
    n *= {None: 1, "K": 1024, "M": 1024 ** 2, "G": 1024 ** 3, "T": 1024 ** 4}[m.group(3)]
    return int(n)


def format_size(n):
    n = int(n)
    for unit in ("K", "M", "G", "T"):
        if n % 1024:
            return str(n) + ("" if unit == "K" else {"M": "K", "G": "M", "T": "G"}[unit])
        n //= 1024
    return "%dT" % n


def split_list(v):
    """PVE::Tools::split_list: split on [,; \\0] and whitespace."""
    return [x for x in re.split(r"[,;\s\0]+", v.strip()) if x != ""] if v else []


# --------------------------------------------------------- named formats

def _configid(v):
    if not re.match(r"[a-z][a-z0-9_-]+\Z", v, re.I):
        raise Invalid("invalid configuration ID '%s'" % v)


def _storage_id(v):
    if not re.match(r"[a-z][a-z0-9\-_.]*[a-z0-9]\Z", v, re.I):
        raise Invalid("storage ID '%s' contains illegal characters" % v)


def _volume_id(v):
    m = re.match(r"([a-z][a-z0-9\-_.]*[a-z0-9]):(.+)\Z", v, re.I)
    if not m:
        raise Invalid("unable to parse volume ID '%s'" % v)


def _volume_or_path(v):
    if v.startswith("/"):
        return
    _volume_id(v)


def _volume_or_qm_path(v):
    if v in ("none", "cdrom") or v.startswith("/"):
        return
    _volume_id(v)


def _vmid(v):
    if not re.match(r"[1-9][0-9]{2,8}\Z", v):
        raise Invalid("value does not look like a valid VM ID")


def _node(v):
    if not re.match(r"[a-zA-Z0-9]([a-zA-Z0-9\-]*[a-zA-Z0-9])?\Z", v):
        raise Invalid("value does not look like a valid node name")


def _mac(v):
    if not re.match(r"[a-f0-9][02468ace](?::[a-f0-9]{2}){5}\Z", v, re.I):
        raise Invalid("value does not look like a valid unicast MAC address")


def _ipv4(v):
    if not re.match(r"(?:%s)\Z" % IPV4, v):
        raise Invalid("value does not look like a valid IPv4 address")


def _ipv6(v):
    if not re.match(r"(?:%s)\Z" % IPV6, v):
        raise Invalid("value does not look like a valid IPv6 address")


def _ip(v):
    if not (re.match(r"(?:%s)\Z" % IPV4, v) or re.match(r"(?:%s)\Z" % IPV6, v)):
        raise Invalid("value does not look like a valid IP address")


def _cidr4_ok(v):
    m = re.match(r"(?:%s)/(\d+)\Z" % IPV4, v)
    return bool(m) and 7 < int(m.group(1)) <= 32


def _cidr6_ok(v):
    m = re.match(r"(?:%s)/(\d+)\Z" % IPV6, v)
    return bool(m) and 7 < int(m.group(1)) <= 128


def _ipv4_config(v):
    if v in ("dhcp", "manual") or _cidr4_ok(v):
        return
    raise Invalid("value does not look like a valid ipv4 network configuration")


def _ipv6_config(v):
    if v in ("auto", "dhcp", "manual") or _cidr6_ok(v):
        return
    raise Invalid("value does not look like a valid ipv6 network configuration")


def _cidrv4(v):
    if not _cidr4_ok(v):
        raise Invalid("value does not look like a valid IPv4 CIDR network")


def _cidrv6(v):
    if not _cidr6_ok(v):
        raise Invalid("value does not look like a valid IPv6 CIDR network")


_DNS = r"([a-zA-Z0-9]([a-zA-Z0-9\-]*[a-zA-Z0-9])?)"


def _dns_name(v):
    if not re.match(r"(%s\.)*%s\Z" % (_DNS, _DNS), v):
        raise Invalid("value does not look like a valid DNS name")


def _address(v):
    try:
        _ip(v)
    except Invalid:
        try:
            _dns_name(v)
        except Invalid:
            raise Invalid("value does not look like a valid address: %s" % v)


def _ip_ll_iface(v):
    m = re.match(r"(.+)%([a-zA-Z0-9_.-]+)\Z", v)
    addr = m.group(1) if m else v
    try:
        _ip(addr)
    except Invalid:
        raise Invalid("value does not look like a valid IP address: %s" % v)


def _disk_size(v):
    if parse_size(v) is None:
        raise Invalid("value does not look like a valid disk size: %s" % v)


def _urlencoded(v):
    if not re.match(r"[-%a-zA-Z0-9_.!~*'()]*\Z", v):
        raise Invalid("invalid urlencoded string: %s" % v)


def _tag(v):
    if not re.match(r"[a-z0-9_][a-z0-9_\-+.]*\Z", v, re.I):
        raise Invalid("invalid characters in tag")


def _bridge(v):
    if not re.match(r"[-_.\w\d]+\Z", v):
        raise Invalid("invalid bridge ID '%s'" % v)


def _poolid(v):
    if not re.match(r"[A-Za-z0-9_\-]+(/[A-Za-z0-9_\-]+){0,2}\Z", v):
        raise Invalid("pool name '%s' contains illegal characters" % v)


def _lxc_mp_string(v):
    if re.search(r"/\.\.?/", v) or re.search(r"/\.\.?\Z", v) or v.startswith("../"):
        raise Invalid("%s contains illegal character sequences" % v)


def _lxc_dev_string(v):
    if not v.startswith("/dev/") or re.search(r"/\.\.?(/|\Z)", v):
        raise Invalid("%s is not a valid device path" % v)


def _timezone(v):
    if v == "host":
        return
    if not re.match(r"[A-Za-z0-9_+\-/]+\Z", v) or ".." in v or not (
            v == "UTC" or os.path.isfile(os.path.join("/usr/share/zoneinfo", v)) or "/" in v):
        raise Invalid("invalid time zone '%s'" % v)


def _startup(v):
    if not v:
        raise Invalid("unable to parse startup options")
    for p in v.split(","):
        if re.match(r"\s*\Z", p):
            continue
        if not (re.match(r"(order=)?\d+\Z", p) or re.match(r"(up|down)=\d+\Z", p)):
            raise Invalid("unable to parse startup options")


def _cpuset(v):
    for part in v.split(","):
        m = re.match(r"(\d+)(?:-(\d+))?\Z", part)
        if not m or (m.group(2) and int(m.group(2)) < int(m.group(1))):
            raise Invalid("unable to parse cpuset option")


def _hotplug(v):
    if v in ("0", "1"):
        return
    for f in v.split(","):
        if f not in ("network", "disk", "cpu", "memory", "usb", "cloudinit"):
            raise Invalid("invalid hotplug feature '%s'" % f)


def _bootdisk(v):
    if not re.match(r"(ide|sata|scsi|virtio|efidisk|tpmstate)\d+\Z", v):
        raise Invalid("invalid drive name '%s'" % v)


def _boot_order(v):
    for dev in v.split(";"):
        if not re.match(r"(ide|sata|scsi|virtio|net|hostpci|usb)\d+\Z", dev):
            raise Invalid("invalid boot device '%s'" % dev)


_VALIDATORS = {
    "pve-configid": _configid, "pve-storage-id": _storage_id, "pve-volume-id": _volume_id,
    "pve-volume-id-or-absolute-path": _volume_or_path,
    "pve-volume-id-or-qm-path": _volume_or_qm_path, "pve-vmid": _vmid, "pve-node": _node,
    "mac-addr": _mac, "ipv4": _ipv4, "ipv6": _ipv6, "ip": _ip, "pve-ipv4-config": _ipv4_config,
    "pve-ipv6-config": _ipv6_config, "CIDRv4": _cidrv4, "CIDRv6": _cidrv6,
    "dns-name": _dns_name, "address": _address, "lxc-ip-with-ll-iface": _ip_ll_iface,
    "disk-size": _disk_size, "urlencoded": _urlencoded, "pve-tag": _tag,
    "pve-bridge-id": _bridge, "pve-poolid": _poolid, "pve-lxc-mp-string": _lxc_mp_string,
    "pve-lxc-dev-string": _lxc_dev_string, "pve-ct-timezone": _timezone,
    "pve-startup-order": _startup, "pve-cpuset": _cpuset, "pve-hotplug-features": _hotplug,
    "pve-qm-bootdisk": _bootdisk, "string": lambda v: None,
}


def _opt(t, **kw):
    d = {"type": t, "optional": 1}
    d.update(kw)
    return d


# Hash formats that option-formats.json names but does not expand (from
# qemu-server's QemuServer.pm / Cloudinit.pm / PCI.pm sources).
_B64 = _opt("string", format_description="Base64 encoded string")
_HEXID = _opt("string", pattern=r"0x[0-9a-fA-F]{4}", format_description="hex id")
_PCIID = r"(?:[a-f0-9]{4,}:)?[a-f0-9]{2}:[a-f0-9]{2}(?:\.[a-f0-9])?"
HASH_FORMATS = {
    "pve-qm-ipconfig": {
        "ip": _opt("string", format="pve-ipv4-config"),
        "gw": _opt("string", format="ipv4"),
        "ip6": _opt("string", format="pve-ipv6-config"),
        "gw6": _opt("string", format="ipv6"),
    },
    "pve-qm-hostpci": {
        "host": _opt("string", default_key=1, pattern=r"%s(?:;%s)*" % (_PCIID, _PCIID)),
        "mapping": _opt("string", format="pve-configid"),
        "rombar": _opt("boolean"), "romfile": _opt("string"), "pcie": _opt("boolean"),
        "x-vga": _opt("boolean"), "legacy-igd": _opt("boolean"), "mdev": _opt("string"),
        "driver": _opt("string", enum=["vfio", "keep"]),
        "vendor-id": _HEXID, "device-id": _HEXID, "sub-vendor-id": _HEXID,
        "sub-device-id": _HEXID,
    },
    "pve-qm-boot": {
        "legacy": _opt("string", default_key=1, pattern=r"[acdn]{1,4}"),
        "order": _opt("string", format="pve-qm-boot-order"),
    },
    "pve-vm-cpu-conf": {
        "cputype": _opt("string", default_key=1, pattern=r"[a-zA-Z0-9_.+\-]+"),
        "flags": _opt("string", pattern=r"[+-][a-zA-Z0-9\-_.]+(;[+-][a-zA-Z0-9\-_.]+)*"),
        "hidden": _opt("boolean"), "hv-vendor-id": _opt("string", pattern=r"[a-zA-Z0-9]{1,12}"),
        "phys-bits": _opt("string", pattern=r"([1-5]?\d|6[0-4]|host)"),
        "guest-phys-bits": _opt("integer", minimum=32, maximum=64),
        "reported-model": _opt("string"),
    },
    "pve-qm-cicustom": {
        "meta": _opt("string", format="pve-volume-id"),
        "network": _opt("string", format="pve-volume-id"),
        "user": _opt("string", format="pve-volume-id"),
        "vendor": _opt("string", format="pve-volume-id"),
    },
    "pve-qm-smbios1": {
        "uuid": _opt("string", pattern=r"[a-fA-F0-9]{8}(?:-[a-fA-F0-9]{4}){3}-[a-fA-F0-9]{12}"),
        "version": _B64, "serial": _B64, "manufacturer": _B64, "product": _B64, "sku": _B64,
        "family": _B64, "base64": _opt("boolean"),
    },
    "pve-qm-watchdog": {
        "model": _opt("string", default_key=1, enum=["i6300esb", "ib700"]),
        "action": _opt("string", enum=["reset", "shutdown", "poweroff", "pause", "debug", "none"]),
    },
    "pve-qm-rng": {
        "source": {"type": "string", "default_key": 1,
                   "enum": ["/dev/urandom", "/dev/random", "/dev/hwrng"]},
        "max_bytes": _opt("integer"), "period": _opt("integer"),
    },
    "pve-qm-ide": None,  # filled from ide[n] (cdrom is an alias of ide2)
}
_VALIDATORS["pve-qm-boot-order"] = _boot_order


def _hostpci_validator(d):
    if "host" not in d and "mapping" not in d:
        raise Invalid("either 'host' or 'mapping' must be set.")


_HASH_VALIDATORS = {"pve-qm-hostpci": _hostpci_validator}


def _named_hash(name):
    f = HASH_FORMATS.get(name)
    if f is None and name == "pve-qm-ide":
        f = subkeys_of(_api()["POST /nodes/{node}/qemu"]["ide[n]"])
        HASH_FORMATS[name] = f
    return f


def check_format(fmt, value, path):
    """PVE::JSONSchema::check_format; raises Invalid or FormatError."""
    if isinstance(fmt, dict):
        return parse_property_string(fmt, value, path)
    m = re.match(r"(.*?)(?:-(list|opt))?\Z", fmt)
    name, kind = m.group(1), m.group(2)
    if name in HASH_FORMATS and kind is None:
        res = parse_property_string(_named_hash(name), value, path)
        v = _HASH_VALIDATORS.get(name)
        if v:
            v(res)
        return res
    fn = _VALIDATORS.get(name)
    if fn is None:
        if name in ("pve-qemu-sev-fmt", "pve-qemu-tdx-fmt"):
            return None  # opaque here: confidential-computing options
        raise Invalid("undefined format '%s'" % fmt)
    if kind == "list":
        for v in split_list(value):
            fn(v)
    elif kind == "opt":
        if value:
            fn(value)
    else:
        fn(value)
    return None


def check_type(path, typ, value, errors):
    if typ in (None, "string", "any"):
        return True
    if typ == "boolean":
        if value in ("1", "0", 1, 0):
            return True
    elif typ == "integer":
        if is_integer(str(value)):
            return True
    elif typ == "number":
        if is_number(str(value)):
            return True
    else:
        return True
    add_error(errors, path, "type check ('%s') failed - got '%s'" % (typ, value))
    return False


def add_error(errors, path, msg):
    path = path or "_root"
    if path in errors:
        errors[path] = errors[path] + "\\n" + msg
    else:
        errors[path] = msg


def check_prop(value, schema, path, errors):
    if value is None:
        if not schema.get("optional") and not schema.get("alias"):
            add_error(errors, path, "property is missing and it is not optional")
        return
    value = str(value)
    if not check_type(path, schema.get("type"), value, errors):
        return
    fmt = schema.get("format")
    if fmt is None and "subkeys" in schema:
        fmt = subkeys_of(schema)
    if fmt is not None:
        try:
            check_format(fmt, value, path)
        except (Invalid, FormatError) as e:
            add_error(errors, path, "invalid format - %s" % e)
            return
    pat = schema.get("pattern")
    if pat and not rx(pat).match(value):
        add_error(errors, path, "value does not match the regex pattern")
        return
    if "maxLength" in schema and len(value) > int(schema["maxLength"]):
        add_error(errors, path, "value may only be %s characters long" % schema["maxLength"])
        return
    if "minLength" in schema and len(value) < int(schema["minLength"]):
        add_error(errors, path, "value must be at least %s characters long" % schema["minLength"])
        return
    if is_number(value):
        if "maximum" in schema and float(value) > float(schema["maximum"]):
            add_error(errors, path, "value must have a maximum value of %s" % schema["maximum"])
            return
        if "minimum" in schema and float(value) < float(schema["minimum"]):
            add_error(errors, path, "value must have a minimum value of %s" % schema["minimum"])
            return
    enum = schema.get("enum")
    if enum and value not in enum:
        add_error(errors, path, "value '%s' does not have a value in the enumeration '%s'"
                  % (value, ", ".join(enum)))


# ------------------------------------------------------- property strings

_sub_cache = {}


def _required_from_typetext(tt):
    """Keys written without [...] around them in a typetext are required:
    'name=<string> [,bridge=<bridge>]', '[volume=]<volume> ,mp=<Path>'."""
    groups, cur, depth = [], "", 0
    for ch in tt or "":
        if ch in "[<":
            depth += 1
        elif ch in "]>":
            depth -= 1
        if ch.isspace() and depth == 0:
            if cur:
                groups.append(cur)
            cur = ""
            continue
        cur += ch
    if cur:
        groups.append(cur)
    req = set()
    for grp in groups:
        if grp.startswith("["):
            depth, close = 0, -1
            for i, c in enumerate(grp):
                depth += c == "["
                depth -= c == "]"
                if depth == 0:
                    close = i
                    break
            if close == len(grp) - 1:
                continue
        m = re.match(r"[\[,]*([A-Za-z0-9_\-]+)=", grp)
        if m:
            req.add(m.group(1))
    return req


def subkeys_of(optdef):
    """The sub-key schema of an option, with 'optional' filled in."""
    key = id(optdef)
    res = _sub_cache.get(key)
    if res is None:
        req = _required_from_typetext(optdef.get("typetext"))
        res = {}
        for k, v in optdef["subkeys"].items():
            d = dict(v)
            if "alias" not in d and k not in req:
                d["optional"] = 1
            res[k] = d
        _sub_cache[key] = res
    return res


def parse_property_string(fmt, data, path=""):
    res = {}
    default_key = None
    for part in data.split(","):
        if re.match(r"\s*\Z", part):
            continue
        m = re.match(r"([^=]+)=(.+)\Z", part, re.S)
        if m:
            k, v = m.group(1), m.group(2)
            if k in res:
                raise Invalid("duplicate key in comma-separated list property: %s" % k)
            schema = fmt.get(k)
            if schema and schema.get("alias"):
                if schema.get("keyAlias"):
                    ka = schema["keyAlias"]
                    if ka in res:
                        raise Invalid("key alias '%s' is already defined" % ka)
                    res[ka] = k
                k = schema["alias"]
                schema = fmt.get(k)
            if not schema:
                raise Invalid("invalid key in comma-separated list property: %s" % k)
            if schema.get("type") == "boolean":
                b = parse_boolean(v)
                v = v if b is None else b
            res[k] = v
        elif "=" not in part:
            if default_key:
                raise Invalid("duplicate key in comma-separated list property: %s" % default_key)
            for k, s in fmt.items():
                if s.get("default_key"):
                    default_key = k
                    if not res.get(k):
                        res[k] = part
                        break
                    raise Invalid("duplicate key in comma-separated list property: %s" % k)
            if not default_key:
                raise Invalid("value without key, but schema does not define a default key")
        else:
            raise Invalid("missing key in comma-separated list property")
    errors = {}
    for k, s in fmt.items():
        check_prop(res.get(k), s, "%s.%s" % (path, k) if path else k, errors)
    if errors:
        raise FormatError(errors)
    return res


def print_property_string(data, fmt):
    """Default key first, then required keys, then the rest, sorted;
    keyAlias pairs (qemu net: virtio=MAC) are combined."""
    default_key = None
    key_alias = {}
    for k, s in fmt.items():
        if s.get("default_key"):
            default_key = k
        if s.get("alias") and s.get("keyAlias"):
            key_alias[s["keyAlias"]] = s["alias"]
    out, done = [], set()

    def add(k, isdefault=False):
        if k in done or data.get(k) is None:
            return
        done.add(k)
        v = data[k]
        s = fmt.get(k, {})
        if k in key_alias and data.get(key_alias[k]) is not None:
            out.append("%s=%s" % (v, data[key_alias[k]]))
            done.add(key_alias[k])
            return
        if s.get("format") == "disk-size":
            v = format_size(parse_size(str(v)) if not isinstance(v, int) else v)
        out.append(str(v) if isdefault else "%s=%s" % (k, v))

    if default_key:
        add(default_key, True)
    for k in sorted(data):
        if k in fmt and not fmt[k].get("optional"):
            add(k)
    for k in sorted(data):
        add(k)
    return ",".join(out)


# -------------------------------------------------------- option tables

_RANGES = {
    "lxc": {"net": 32, "mp": 256, "unused": 256, "dev": 256},
    "qemu": {"net": 32, "ide": 4, "sata": 6, "scsi": 31, "virtio": 16, "hostpci": 16,
             "ipconfig": 32, "serial": 4, "parallel": 3, "usb": 14, "unused": 256,
             "numa": 8, "virtiofs": 10},
}
_API_PATHS = {
    ("lxc", "create"): "POST /nodes/{node}/lxc",
    ("lxc", "set"): "PUT /nodes/{node}/lxc/{vmid}/config",
    ("qemu", "create"): "POST /nodes/{node}/qemu",
    ("qemu", "set"): "POST /nodes/{node}/qemu/{vmid}/config",
}
_tables = {}


class OptionTable:
    """Options of one API call; 'net[n]' answers for net0..net31."""

    def __init__(self, props):
        self.plain = {}
        self.indexed = {}
        for k, v in props.items():
            m = re.match(r"(.+)\[n\]\Z", k)
            if m:
                self.indexed[m.group(1)] = v
            else:
                self.plain[k] = v
        self.ranges = {}

    def get(self, name):
        d = self.plain.get(name)
        if d is not None:
            return d
        m = re.match(r"([a-z]+)(\d+)\Z", name)
        if m and m.group(1) in self.indexed and int(m.group(2)) < self.ranges.get(m.group(1), 0) \
                and str(int(m.group(2))) == m.group(2):
            return self.indexed[m.group(1)]
        return None

    def names(self):
        out = list(self.plain)
        for base in self.indexed:
            out.extend("%s%d" % (base, i) for i in range(self.ranges.get(base, 0)))
        return out


def options(kind, call):
    key = (kind, call)
    t = _tables.get(key)
    if t is None:
        props = dict(_api()[_API_PATHS[key]])
        props.pop("node", None)
        for k, d in props.items():
            if k not in ("vmid", "ostemplate"):
                d["optional"] = 1
        t = OptionTable(props)
        t.ranges = _RANGES[kind]
        _tables[key] = t
    return t


# Keys that only appear in config files (snapshots, runtime bookkeeping).
FILE_ONLY = {
    "lxc": {"parent": {"type": "string", "format": "pve-configid"},
            "snaptime": {"type": "integer"}, "snapstate": {"type": "string"},
            "digest": {"type": "string"}},
    "qemu": {"parent": {"type": "string", "format": "pve-configid"},
             "snaptime": {"type": "integer"}, "snapstate": {"type": "string"},
             "vmstate": {"type": "string", "format": "pve-volume-id"},
             "runningmachine": {"type": "string"}, "runningcpu": {"type": "string"},
             "meta": {"type": "string"}, "digest": {"type": "string"}},
}


def config_option(kind, key):
    """Schema of a key as it may appear in a config file, or None."""
    d = options(kind, "set").get(key) or options(kind, "create").get(key)
    if d is None:
        d = FILE_ONLY[kind].get(key)
    if key in ("vmid", "delete", "revert", "digest", "force", "skiplock", "background_delay",
               "storage", "pool", "start", "restore", "unique", "ostemplate", "password",
               "ssh-public-keys", "ignore-unpack-errors", "bwlimit", "archive", "live-restore",
               "ha-managed", "import-working-storage") and key not in FILE_ONLY[kind]:
        return None
    return d


def option_format(d):
    """The hash format (sub-keys) of an option, or None for plain values."""
    if "subkeys" in d:
        return subkeys_of(d)
    f = d.get("format")
    if isinstance(f, str) and f in HASH_FORMATS:
        return _named_hash(f)
    return None
