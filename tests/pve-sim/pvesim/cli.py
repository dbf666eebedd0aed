"""Command-line handling as PVE::CLIHandler + PVE::JSONSchema::get_options
do it with Getopt::Long: '--opt val', '-opt val', '--opt=val', unique
abbreviations, case-insensitive names, permuted positionals, '--' ends
options; booleans take an optional value; then positional args are mapped
to the command's fixed parameters and every value is schema-checked."""

import re
import sys

from . import schema
from .errors import PVEError, param_error


class Props:
    """A command's parameter schema: an OptionTable (guest options) merged
    with the command's own parameters (dict name -> schema)."""

    def __init__(self, own=None, table=None, exclude=()):
        self.own = own or {}
        self.table = table
        self.exclude = set(exclude)

    def get(self, name):
        if name in self.exclude:
            return None
        d = self.own.get(name)
        if d is None and self.table is not None:
            d = self.table.get(name)
        return d

    def names(self):
        out = [n for n in self.own if n not in self.exclude]
        if self.table is not None:
            out.extend(n for n in self.table.names() if n not in self.exclude and n not in self.own)
        return out


def _is_list(d):
    f = d.get("format")
    return d.get("type") == "array" or (isinstance(f, str) and "-list" in f)


def usage(prefix, props, arg_param, fixed=()):
    args = []
    for p in arg_param:
        d = props.get(p) or {}
        if _is_list(d) and p != "extra-args":
            args.append("{<%s>}" % p)
        else:
            args.append("[<%s>]" % p if d.get("optional") else "<%s>" % p)
    has_opts = False
    idx = set()
    for k in sorted(props.names()):
        if k in arg_param or k in fixed:
            continue
        d = props.get(k)
        base = k
        m = re.match(r"([a-z]+)(\d+)\Z", k)
        if m:
            if m.group(1) in idx:
                continue
            if m.group(2) == "0" and props.get(m.group(1) + "1"):
                idx.add(m.group(1))
                base = m.group(1) + "[n]"
        if d.get("optional"):
            has_opts = True
        else:
            args.append("--%s <%s>" % (base, d.get("type", "string")))
    out = prefix + " " + " ".join(args)
    if has_opts:
        out += " [OPTIONS]"
    if props.get("output-format") is not None:
        out += " [FORMAT_OPTIONS]"
    return out + "\n"


def get_options(props, args, arg_param, prefix):
    """Returns the parameter dict, or raises PVEError (400 + usage)."""
    names = [n for n in props.names() if n not in arg_param]
    lower = {n.lower(): n for n in names}
    opts, positional, warnings = {}, [], []
    ok = True
    i = 0
    args = list(args)
    while i < len(args):
        a = args[i]
        i += 1
        if a == "--":
            positional.extend(args[i:])
            break
        m = re.match(r"--?([^=]+)(?:=(.*))?\Z", a, re.S) if a.startswith("-") and a != "-" else None
        if not m:
            positional.append(a)
            continue
        given, inline = m.group(1), m.group(2)
        name = lower.get(given.lower())
        if name is None:
            hits = sorted(n for n in names if n.lower().startswith(given.lower()))
            if len(hits) == 1:
                name = hits[0]
            elif len(hits) > 1:
                warnings.append("Option %s is ambiguous (%s)" % (given, ", ".join(hits)))
                ok = False
                continue
            else:
                warnings.append("Unknown option: %s" % given.lower())
                ok = False
                continue
        d = props.get(name)
        if d.get("type") == "boolean":
            if inline is not None:
                val = inline
            elif i < len(args) and not args[i].startswith("-"):
                val = args[i]
                i += 1
            else:
                val = ""
        else:
            if inline is not None:
                val = inline
            elif i < len(args):
                val = args[i]
                i += 1
            else:
                warnings.append("Option %s requires an argument" % name)
                ok = False
                continue
        if _is_list(d):
            opts.setdefault(name, []).append(val)
        else:
            opts[name] = val
    for w in warnings:
        sys.stderr.write(w + "\n")
    use = usage(prefix, props, arg_param)
    if not ok:
        raise PVEError("unable to parse option\n", code=400, usage=use)
    # positional arguments
    for j, p in enumerate(arg_param):
        if p == "extra-args":
            opts["extra-args"] = positional[j:]
            positional = []
            break
        if j >= len(positional):
            for q in arg_param[j:]:
                if q != "extra-args" and not (props.get(q) or {}).get("optional"):
                    raise PVEError("not enough arguments\n", code=400, usage=use)
            positional = []
            break
        opts[p] = positional[j]
    else:
        positional = positional[len(arg_param):]
    if positional:
        raise PVEError("too many arguments\n", code=400, usage=use)
    for k, v in list(opts.items()):
        d = props.get(k)
        if d is None:
            continue
        if d.get("type") == "boolean":
            if v == "":
                opts[k] = 1
            else:
                b = schema.parse_boolean(v)
                if b is None:
                    raise PVEError("unable to parse boolean option\n", code=400, usage=use)
                opts[k] = b
        elif isinstance(v, list) and k != "extra-args" and d.get("type") != "array":
            opts[k] = ",".join(v)
    return opts


def verify(props, opts, prefix, arg_param, required=()):
    """RESTHandler::handle's schema validation of all parameters."""
    errors = {}
    for k, v in opts.items():
        d = props.get(k)
        if d is None or k == "extra-args":
            continue
        schema.check_prop(v, d, k, errors)
    for k in required:
        if opts.get(k) is None:
            schema.check_prop(None, props.get(k) or {}, k, errors)
    if errors:
        e = param_error(errors)
        e.usage = usage(prefix, props, arg_param)
        raise e


def parse(prefix, props, args, arg_param, required=(), mapping=None):
    """get_options, then file-parameter mappings (e.g. sshkeys=FILE), then
    the schema check, as CLIHandler + RESTHandler::handle do."""
    opts = get_options(props, args, arg_param, prefix)
    for k, fn in (mapping or {}).items():
        if opts.get(k) is not None:
            opts[k] = fn(opts[k])
    verify(props, opts, prefix, arg_param, required)
    for k, v in opts.items():
        d = props.get(k)
        if d is not None and d.get("type") == "integer" and isinstance(v, str):
            opts[k] = int(v)
    return opts


def param_exc(prefix, props, arg_param, errors):
    e = param_error(errors)
    e.usage = usage(prefix, props, arg_param)
    return e


def abort_unknown(exe, cmd, commands):
    """CLIHandler's $abort: 'ERROR: unknown command ...' + short usage."""
    out = "ERROR: %s\nUSAGE: %s <COMMAND> [ARGS] [OPTIONS]\n" % (cmd, exe)
    for c in sorted(commands):
        out += "       %s %s\n" % (exe, c)
    return out
