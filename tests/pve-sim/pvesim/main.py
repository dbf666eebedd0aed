"""Entry point of every simulated tool: injected latency and faults, the
call log (DIR/sim/calls.log), then the tool itself under the state lock."""

import json
import os
import sys
import time

from .errors import Die

TOOLS = ("pct", "qm", "pvesm", "pvesh", "zfs", "zpool")


def _latency(sim, tool):
    env = os.environ.get("PVE_SIM_LATENCY_MS")
    if env not in (None, ""):
        return float(env)
    lat = sim.settings.get("latency_ms", 0)
    if isinstance(lat, dict):
        return float(lat.get(tool, lat.get("default", 0)))
    return float(lat or 0)


def _lock_path(argv):
    """The config lock file of the guest an argv is about."""
    tool = argv[0]
    vmid = None
    for a in argv[2:] if tool in ("pct", "qm") else []:
        if a.isdigit() and len(a) >= 3:
            vmid = a
            break
    if vmid is None:
        return "/var/lock/pve-manager/pve-storage-lock"
    if tool == "pct":
        return "/run/lock/lxc/pve-config-%s.lock" % vmid
    return "/var/lock/qemu-server/lock-%s.conf" % vmid


def _pick_fault(sim, argv):
    """Counts the call and returns (number, fault or None) under the lock."""
    sim.lock()
    try:
        st = sim.load_json("counters.json", {"calls": 0, "faults": {}})
        st["calls"] += 1
        n = st["calls"]
        chosen = None
        line = " ".join(argv)
        import fnmatch
        for i, f in enumerate(sim.settings.get("faults", [])):
            # counted per fault spec, so editing the list starts fresh counts
            key = "%d:%s" % (i, json.dumps(f, sort_keys=True))
            used = st["faults"].get(key, 0)
            times = f.get("times", 1)
            if times is not None and times >= 0 and used >= times:
                continue
            if "call" in f and n < int(f["call"]):
                continue
            if "match" in f and not fnmatch.fnmatchcase(line, f["match"]):
                continue
            if "argv" in f:
                pats = f["argv"]
                if len(pats) != len(argv) and not (pats and pats[-1] == "**" and
                                                   len(argv) >= len(pats) - 1):
                    continue
                if not all(fnmatch.fnmatchcase(a, p) for a, p in zip(argv, pats)
                           if p != "**"):
                    continue
            st["faults"][key] = used + 1
            chosen = (i, f)
            break
        sim.save_json("counters.json", st)
        return n, chosen
    finally:
        sim.unlock()


def _log(sim, entry):
    line = json.dumps(entry, sort_keys=True) + "\n"
    fd = os.open(sim.path("calls.log"), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode("utf-8"))
    finally:
        os.close(fd)


def run(base, tool, args):
    from .sim import Sim
    t0 = time.time()
    sim = Sim(os.environ.get("PVE_SIM_DIR") or base)
    argv = [tool] + list(args)
    n, fault = _pick_fault(sim, argv)
    delay = _latency(sim, tool)
    if fault:
        delay += float(fault[1].get("delay_ms", 0))
    if delay > 0:
        time.sleep(delay / 1000.0)
    entry = {"n": n, "ts": round(t0, 3), "tool": tool, "argv": argv}
    if fault:
        i, f = fault
        if f.get("kind") == "lock-timeout":
            err = "can't lock file '%s' - got timeout\n" % _lock_path(argv)
        else:
            err = f.get("stderr", "")
        sys.stdout.write(f.get("stdout", ""))
        sys.stderr.write(err if not err or err.endswith("\n") else err + "\n")
        rc = int(f.get("exit", 255))
        entry["fault"] = i
    else:
        rc = _dispatch(sim, tool, args)
    sys.stdout.flush()
    sys.stderr.flush()
    entry["exit"] = rc
    entry["ms"] = round((time.time() - t0) * 1000, 1)
    _log(sim, entry)
    return rc


def _dispatch(sim, tool, args):
    try:
        if tool == "pct":
            from . import pct as mod
        elif tool == "qm":
            from . import qm as mod
        elif tool == "pvesm":
            from . import pvesm as mod
        elif tool == "pvesh":
            from . import pvesh as mod
        elif tool == "zfs":
            from . import zfs
            return zfs.zfs_main(sim, list(args))
        elif tool == "zpool":
            from . import zfs
            return zfs.zpool_main(sim, list(args))
        else:
            sys.stderr.write("pve-sim: unknown tool '%s'\n" % tool)
            return 127
        return mod.main(sim, list(args))
    except Die as e:
        sys.stdout.flush()
        sys.stderr.write(e.text())
        return e.exit
    except BrokenPipeError:
        return 141
    except Exception:
        import traceback
        sys.stderr.write("pve-sim internal error:\n" + traceback.format_exc())
        return 250
    finally:
        sim.unlock()
