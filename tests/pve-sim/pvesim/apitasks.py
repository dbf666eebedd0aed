"""Tool calls for the REST stand-in: synchronous ones, and workers (tasks)
that run a tool in the background as Proxmox's fork_worker does, each
named by a UPID and keeping its log for tasks/{upid}/{status,log}."""

import os
import re
import subprocess
import threading
import time


class ApiError(Exception):
    """An HTTP error answer: status, message, and for 400 the errors hash."""

    def __init__(self, status, message, errors=None):
        if not message.endswith("\n"):
            message += "\n"
        super().__init__(message)
        self.status = status
        self.message = message
        self.errors = errors


PARAM_FAILED = "Parameter verification failed."
_ERR_LINE = re.compile(r"([A-Za-z0-9_.\-\[\]]+): (.*)\Z")


def tool_error(tool, rc, err):
    """The ApiError a failed tool call means: its '400 Parameter
    verification failed.' block -> 400 with errors, else 500 with the
    last error line (warnings may come first)."""
    lines = [ln for ln in err.splitlines() if ln.strip()]
    for i, ln in enumerate(lines):
        if ln.startswith("400 "):
            errors = {}
            for more in lines[i + 1:]:
                m = _ERR_LINE.match(more)
                if not m:
                    break
                errors[m.group(1)] = m.group(2)
            if ln[4:].strip() == PARAM_FAILED or errors:
                return ApiError(400, PARAM_FAILED, errors)
            return ApiError(400, ln[4:])
    for ln in lines:
        if ln.startswith("Unknown option: "):
            return ApiError(400, PARAM_FAILED, {ln[16:]: NOT_IN_SCHEMA})
    if lines:
        return ApiError(500, lines[-1])
    return ApiError(500, "command '%s' failed: exit code %d" % (tool, rc))


NOT_IN_SCHEMA = "property is not defined in schema and the schema does not allow additional " \
                "properties"


class Runner:
    """Runs DIR/bin/<tool> (so latency, faults and calls.log apply)."""

    def __init__(self, base):
        self.base = base

    def popen(self, tool, argv, stdin=None):
        return subprocess.Popen([os.path.join(self.base, "bin", tool)] + argv,
                                stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def call(self, tool, argv, stdin=None):
        """Runs a tool to its end: stdout text, or raises ApiError."""
        p = self.popen(tool, argv, stdin)
        out, err = p.communicate(stdin)
        out, err = out.decode("utf-8", "replace"), err.decode("utf-8", "replace")
        if p.returncode != 0:
            raise tool_error(tool, p.returncode, err)
        return out


def _pstart(pid):
    """The process start time in clock ticks (/proc/PID/stat field 22)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return int(f.read().rsplit(")", 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return 0


def task_error(err, rc):
    """The exit status of a failed worker: its error, on one line."""
    e = tool_error("worker", rc, err)
    if e.errors:
        return " ".join([e.message.strip()] + ["%s: %s" % kv for kv in sorted(e.errors.items())])
    return e.message.strip()


class Task:
    def __init__(self, node, typ, wid, user, proc):
        self.node, self.type, self.id, self.user = node, typ, str(wid), user
        self.pid = proc.pid
        self.pstart = _pstart(proc.pid)
        self.starttime = int(time.time())
        self.upid = "UPID:%s:%08X:%08X:%08X:%s:%s:%s:" % (node, self.pid, self.pstart,
                                                          self.starttime, typ, self.id, user)
        self.proc = proc
        self.lines = []
        self.exitstatus = None
        self.done = threading.Event()

    def status(self):
        st = {"upid": self.upid, "node": self.node, "pid": self.pid, "pstart": self.pstart,
              "starttime": self.starttime, "type": self.type, "id": self.id, "user": self.user,
              "status": "stopped" if self.done.is_set() else "running"}
        if self.done.is_set():
            st["exitstatus"] = self.exitstatus
        return st

    def log(self, start, limit):
        lines = list(self.lines)
        page = [{"n": i + 1, "t": t} for i, t in enumerate(lines)][start:start + limit]
        return page, len(lines)


class Tasks:
    def __init__(self, runner):
        self.runner = runner
        self.lock = threading.Lock()
        self.tasks = {}

    def start(self, node, typ, wid, user, tool, argv, stdin=None):
        proc = self.runner.popen(tool, argv, stdin)
        t = Task(node, typ, wid, user, proc)
        with self.lock:
            self.tasks[t.upid] = t
        threading.Thread(target=self._wait, args=(t, stdin), daemon=True).start()
        return t.upid

    def _wait(self, t, stdin):
        """Collects the worker's output as it comes (the log grows while it
        runs); stderr is also kept apart to find the error."""
        err = []

        def feed():
            try:
                t.proc.stdin.write(stdin)
                t.proc.stdin.close()
            except OSError:
                pass

        def read_err():
            for raw in t.proc.stderr:
                line = raw.decode("utf-8", "replace").rstrip("\n")
                err.append(line)
                t.lines.append(line)

        helpers = [threading.Thread(target=read_err, daemon=True)]
        if stdin is not None:
            helpers.append(threading.Thread(target=feed, daemon=True))
        for h in helpers:
            h.start()
        for raw in t.proc.stdout:
            t.lines.append(raw.decode("utf-8", "replace").rstrip("\n"))
        for h in helpers:
            h.join()
        rc = t.proc.wait()
        if rc == 0:
            t.exitstatus = "OK"
            t.lines.append("TASK OK")
        else:
            t.exitstatus = task_error("\n".join(err), rc)
            t.lines.append("TASK ERROR: " + t.exitstatus)
        t.done.set()

    def get(self, upid):
        with self.lock:
            t = self.tasks.get(upid)
        if t is None:
            raise ApiError(500, "no such task")
        return t

    def wait_all(self, timeout):
        end = time.time() + timeout
        with self.lock:
            tasks = list(self.tasks.values())
        for t in tasks:
            t.done.wait(max(0.0, end - time.time()))
