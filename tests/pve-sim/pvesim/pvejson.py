"""JSON as Perl's JSON module writes it for the PVE CLIs: compact canonical
(`--output-format json`: one line, sorted keys) and pretty canonical
(3-space indent, `"key" : value`, as qm guest exec / json-pretty print)."""

import json


def _s(v):
    return json.dumps(v, ensure_ascii=False)


def compact(v):
    return json.dumps(v, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def pretty(v):
    return _pretty(v, 0) + "\n"


def _pretty(v, level):
    ind = "   " * (level + 1)
    end = "   " * level
    if isinstance(v, dict):
        if not v:
            return "{}"
        items = ["%s%s : %s" % (ind, _s(k), _pretty(v[k], level + 1)) for k in sorted(v)]
        return "{\n" + ",\n".join(items) + "\n" + end + "}"
    if isinstance(v, list):
        if not v:
            return "[]"
        return "[\n" + ",\n".join(ind + _pretty(x, level + 1) for x in v) + "\n" + end + "]"
    return _s(v)
