"""Commands run inside guests (pct exec, qm guest exec): every run is
recorded in DIR/sim/exec.log; results come from scripted rules
(DIR/sim/exec-rules.json), from a few file commands emulated on the
guest's fake filesystem (DIR/sim/guests/<id>/fs, shared with pct push/pull),
or, for CTs with `"backing": "lxc"`, from a real LXC container."""

import json
import os
import time


def fs_root(sim, vmid):
    return sim.path("guests", str(vmid), "fs")


def guest_path(sim, vmid, p):
    root = fs_root(sim, vmid)
    full = os.path.normpath(os.path.join(root, p.lstrip("/")))
    if not (full == root or full.startswith(root + os.sep)):
        full = root
    return full


def _rules(sim):
    p = sim.path("exec-rules.json")
    try:
        with open(p, encoding="utf-8") as f:
            rules = json.load(f)
    except FileNotFoundError:
        return []
    return rules if isinstance(rules, list) else rules.get("rules", [])


def _match(rule, kind, vmid, argv):
    import fnmatch
    if "guest" in rule and str(rule["guest"]) != str(vmid):
        return False
    if "type" in rule and rule["type"] != kind:
        return False
    if "argv" in rule:
        pats = rule["argv"]
        if pats and pats[-1] == "**":
            if len(argv) < len(pats) - 1:
                return False
            pats, argv = pats[:-1], argv[:len(pats) - 1]
        if len(pats) != len(argv):
            return False
        return all(fnmatch.fnmatchcase(a, p) for a, p in zip(argv, pats))
    if "match" in rule:
        return fnmatch.fnmatchcase(" ".join(argv), rule["match"])
    return True


def _install(sim, vmid, args, stdin):
    """`install [-D] [-m MODE] [-o UID] [-g GID] SRC DEST` (coreutils): copies
    SRC (a guest file, or /dev/stdin for the bytes passed in) to DEST."""
    parents, mode, rest = False, 0o755, []
    i = 0
    while i < len(args):
        a = args[i]
        if a == "-D":
            parents = True
        elif a in ("-m", "-o", "-g") and i + 1 < len(args):
            if a == "-m":
                try:
                    mode = int(args[i + 1], 8)
                except ValueError:
                    return "", "install: invalid mode '%s'\n" % args[i + 1], 1
            i += 1
        elif a.startswith("-"):
            return None
        else:
            rest.append(a)
        i += 1
    if len(rest) != 2:
        return None
    src, dest = rest
    if src == "/dev/stdin":
        data = stdin or b""
    else:
        sp = guest_path(sim, vmid, src)
        if not os.path.isfile(sp):
            return "", "install: cannot stat '%s': No such file or directory\n" % src, 1
        with open(sp, "rb") as f:
            data = f.read()
    dp = guest_path(sim, vmid, dest)
    if parents:
        os.makedirs(os.path.dirname(dp), exist_ok=True)
    elif not os.path.isdir(os.path.dirname(dp)):
        return "", ("install: cannot create regular file '%s': No such file or directory\n"
                    % dest), 1
    with open(dp, "wb") as f:
        f.write(data)
    os.chmod(dp, mode)
    return "", "", 0


def _builtin(sim, vmid, argv, c, stdin=b""):
    """A few file commands on the fake filesystem; None if not one."""
    if not argv:
        return None
    cmd, args = os.path.basename(argv[0]), argv[1:]
    if cmd == "true":
        return "", "", 0
    if cmd == "install" and args:
        return _install(sim, vmid, args, stdin)
    if cmd == "false":
        return "", "", 1
    if cmd == "echo":
        return " ".join(a for a in args if a != "-n") + ("" if "-n" in args else "\n"), "", 0
    if cmd == "hostname" and not args:
        return (c.get("hostname") or c.get("name") or "CT%s" % vmid) + "\n", "", 0
    if cmd == "cat" and args:
        out = ""
        for a in args:
            p = guest_path(sim, vmid, a)
            if not os.path.isfile(p):
                return out, "cat: %s: No such file or directory\n" % a, 1
            with open(p, encoding="utf-8", errors="replace") as f:
                out += f.read()
        return out, "", 0
    if cmd in ("test", "[") and args:
        if cmd == "[" and args[-1] == "]":
            args = args[:-1]
        if len(args) == 2 and args[0] in ("-e", "-f", "-d", "-s"):
            p = guest_path(sim, vmid, args[1])
            ok = {"-e": os.path.exists, "-f": os.path.isfile, "-d": os.path.isdir,
                  "-s": lambda x: os.path.isfile(x) and os.path.getsize(x) > 0}[args[0]](p)
            return "", "", 0 if ok else 1
        return None
    if cmd == "mkdir" and args:
        for a in args:
            if not a.startswith("-"):
                os.makedirs(guest_path(sim, vmid, a), exist_ok=True)
        return "", "", 0
    if cmd == "touch" and args:
        for a in args:
            p = guest_path(sim, vmid, a)
            if not os.path.isdir(os.path.dirname(p)):
                return "", "touch: cannot touch '%s': No such file or directory\n" % a, 1
            with open(p, "a"):
                pass
        return "", "", 0
    if cmd == "rm" and args:
        force = any(a.startswith("-") and "f" in a for a in args)
        for a in args:
            if a.startswith("-"):
                continue
            p = guest_path(sim, vmid, a)
            if os.path.isdir(p):
                import shutil
                shutil.rmtree(p)
            elif os.path.exists(p):
                os.unlink(p)
            elif not force:
                return "", "rm: cannot remove '%s': No such file or directory\n" % a, 1
        return "", "", 0
    if cmd == "ls" and args:
        names = []
        for a in args:
            if a.startswith("-"):
                continue
            p = guest_path(sim, vmid, a)
            if os.path.isdir(p):
                names.extend(sorted(os.listdir(p)))
            elif os.path.exists(p):
                names.append(a)
            else:
                return "", "ls: cannot access '%s': No such file or directory\n" % a, 2
        return "".join(n + "\n" for n in names), "", 0
    return None


def lxc_name(sim, vmid):
    return "%s%s" % (sim.settings.get("lxc_prefix", "simct"), vmid)


def backed(sim, kind):
    return kind == "lxc" and sim.settings.get("backing") == "lxc"


def lxc_start(sim, vmid):
    import subprocess
    name = lxc_name(sim, vmid)
    cfg = "/var/lib/lxc/%s/config" % name
    if not os.path.exists(cfg):
        r = subprocess.run(["lxc-create", "-t", sim.settings.get("lxc_template", "busybox"),
                            "-n", name], capture_output=True, text=True)
        if r.returncode:
            raise RuntimeError("lxc-create failed: " + r.stderr.strip())
        with open(cfg, encoding="utf-8") as f:
            lines = [ln for ln in f if not ln.startswith("lxc.net")]
        lines.append("lxc.net.0.type = empty\n")
        with open(cfg, "w", encoding="utf-8") as f:
            f.writelines(lines)
    r = subprocess.run(["lxc-start", "-n", name], capture_output=True, text=True)
    if r.returncode:
        raise RuntimeError("lxc-start failed: " + r.stderr.strip())


def lxc_stop(sim, vmid):
    import subprocess
    subprocess.run(["lxc-stop", "-n", lxc_name(sim, vmid), "-k"], capture_output=True)


def lxc_destroy(sim, vmid):
    import subprocess
    subprocess.run(["lxc-destroy", "-f", "-n", lxc_name(sim, vmid)], capture_output=True)


def lxc_rootfs(sim, vmid):
    return "/var/lib/lxc/%s/rootfs" % lxc_name(sim, vmid)


def run(sim, kind, vmid, argv, c, stdin=b""):
    """Returns (stdout, stderr, exitcode) and appends to exec.log."""
    t0 = time.time()
    src = "default"
    res = None
    for i, rule in enumerate(_rules(sim)):
        if _match(rule, kind, vmid, argv):
            res = (rule.get("stdout", ""), rule.get("stderr", ""), int(rule.get("exit", 0)))
            src = "rule:%d" % i
            break
    if res is None and backed(sim, kind):
        import subprocess
        r = subprocess.run(["lxc-attach", "-n", lxc_name(sim, vmid), "--"] + argv,
                           input=stdin, capture_output=True)
        res = (r.stdout.decode("utf-8", "replace"), r.stderr.decode("utf-8", "replace"),
               r.returncode)
        src = "lxc"
    if res is None:
        res = _builtin(sim, vmid, argv, c, stdin)
        if res is not None:
            src = "builtin"
    if res is None:
        res = ("", "", 0)
    entry = {"ts": round(t0, 3), "type": kind, "vmid": int(vmid), "argv": argv,
             "exit": res[2], "source": src, "stdin_bytes": len(stdin or b"")}
    line = json.dumps(entry, sort_keys=True) + "\n"
    fd = os.open(sim.path("exec.log"), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode("utf-8"))
    finally:
        os.close(fd)
    return res
