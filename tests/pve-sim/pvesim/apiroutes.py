"""The REST stand-in's endpoints: each request becomes the sim's own tool
call (pct, qm, pvesm, pvesh get), after the parameter checks Proxmox's API
does before it answers or forks a worker (unknown, missing, malformed
parameters -> 400; missing guest, existing vmid -> 500)."""

import base64
import json
import os
import re
import threading
import urllib.parse

from . import guestexec, pct, pvesm, qm, schema
from .apitasks import NOT_IN_SCHEMA, PARAM_FAILED, ApiError
from .errors import Die
from .sim import Sim

TOOLS = {"pct": pct, "qm": qm, "pvesm": pvesm}
VMID = {"type": "integer", "format": "pve-vmid", "minimum": 100, "maximum": 999999999}
# API parameters that the CLI takes as a file name; the API gets the content
FILE_PARAMS = {("pct", "create"): "ssh-public-keys", ("qm", "create"): "sshkeys",
               ("qm", "set"): "sshkeys"}
GET_AGENT = {"fsfreeze-status", "info", "network-get-interfaces"}
REDACT = ("password", "cipassword", "sshkeys", "token")


def param_error(errors):
    return ApiError(400, PARAM_FAILED, errors)


def _is_list(d):
    f = d.get("format")
    return d.get("type") == "array" or (isinstance(f, str) and "-list" in f)


def check_values(props, params, errors):
    """Schema checks of given values (as RESTHandler::handle does);
    returns them normalised: booleans 0/1, lists joined."""
    out = {}
    for k, v in params.items():
        d = props.get(k) if k != "extra-args" else None
        if d is None:
            errors[k] = NOT_IN_SCHEMA
            continue
        if isinstance(v, list):
            if not _is_list(d):
                errors[k] = "type check ('%s') failed - got an array" % d.get("type", "string")
                continue
            v = ",".join(v)
        if d.get("type") == "boolean":
            b = schema.parse_boolean(v)
            if b is None:
                errors[k] = "type check ('boolean') failed - got '%s'" % v
                continue
            v = str(b)
        schema.check_prop(v, d, k, errors)
        out[k] = v
    return out


def prepare(tool, cmd, params, fixed=None, stdin_param=True):
    """The argv for `tool cmd` from API parameters (path ones in `fixed`),
    or ApiError 400 naming every bad parameter. Returns (argv, stdin)."""
    arg_param, props = TOOLS[tool].props_for(cmd)
    fixed = {k: str(v) for k, v in (fixed or {}).items()}
    errors = {}
    for k in fixed:
        if k in params:
            errors[k] = "duplicate parameter (in path and body)"
    merged = dict(params)
    merged.update(fixed)
    extra = merged.pop("extra-args", None) if "extra-args" in arg_param else None
    vals = check_values(props, merged, errors)
    for k in list(arg_param) + list(props.own):
        d = props.get(k)
        if k != "extra-args" and d is not None and not d.get("optional") and k not in vals \
                and k not in errors:
            errors[k] = "property is missing and it is not optional"
    if errors:
        raise param_error(errors)
    stdin = None
    fp = FILE_PARAMS.get((tool, cmd)) if stdin_param else None
    if fp and fp in vals:
        data = vals[fp]
        if tool == "qm":
            data = urllib.parse.unquote(data)
        stdin = data.encode("utf-8")
        vals[fp] = "/dev/stdin"
    # shaped as callers of the CLI write it (`pct set 101 --memory 512`), so
    # fault patterns and calls.log read the same for both; values were
    # checked above, so a positional one cannot pass for an option
    argv = cmd.split() + [vals.pop(k) for k in arg_param if k in vals]
    for k, v in sorted(vals.items()):
        argv += ["--" + k, v]
    if extra is not None:
        argv += ["--"] + extra
    return argv, stdin


def parse_json_out(out):
    out = out.strip()
    if not out:
        return {}
    try:
        return json.loads(out)
    except ValueError:
        return out


class Api:
    """State shared by request threads: the node dir, tool runner, tasks,
    and guest-agent exec jobs."""

    def __init__(self, base, runner, tasks):
        self.base = base
        self.runner = runner
        self.tasks = tasks
        self.node = Sim(base).node
        self.exec_lock = threading.Lock()
        self.execs = {}
        self.next_pid = 1000

    # ------------------------------------------------------------ helpers
    def check_node(self, node):
        if node not in (self.node, "localhost"):
            raise ApiError(500, "hostname lookup '%s' failed - failed to get address info for: "
                                "%s: Name or service not known" % (node, node))

    @staticmethod
    def check_vmid(vmid, name="vmid"):
        errors = {}
        schema.check_prop(vmid, VMID, name, errors)
        if errors:
            raise param_error(errors)
        return int(vmid)

    def need_guest(self, kind, vmid):
        sim = Sim(self.base)
        if not os.path.exists(sim.conf_path(kind, vmid)):
            raise ApiError(500, "Configuration file '%s' does not exist"
                           % sim.conf_rel(kind, vmid))
        return sim

    def need_unused(self, vmid):
        try:
            Sim(self.base).check_vmid_unused(vmid)
        except Die as e:
            raise ApiError(500, e.msg)

    def pvesh(self, path, params, allowed=()):
        errors = {k: NOT_IN_SCHEMA for k in params if k not in allowed}
        if errors:
            raise param_error(errors)
        argv = ["get", path, "--output-format", "json"]
        for k, v in sorted(params.items()):
            for one in v if isinstance(v, list) else [v]:
                argv += ["--" + k, one]
        return json.loads(self.runner.call("pvesh", argv))

    # ------------------------------------------------------------ routing
    def routes(self):
        g = r"(?P<kind>lxc|qemu)"
        n = r"/nodes/(?P<node>[^/]+)"
        v = n + "/" + g + r"/(?P<vmid>[^/]+)"
        q = n + r"/qemu/(?P<vmid>[^/]+)/agent"
        return [
            ("GET", r"/version", self.get_plain),
            ("GET", r"/nodes", self.get_plain),
            ("GET", r"/cluster/resources", self.get_plain),
            ("GET", r"/cluster/nextid", self.get_plain),
            ("POST", r"/storage", self.storage_add),
            ("GET", n + r"/storage", self.get_node),
            ("GET", n + "/" + g, self.get_node),
            ("POST", n + "/" + g, self.create),
            ("GET", v + r"(?P<sub>|/status/current|/config|/pending|/snapshot)", self.get_guest),
            ("PUT", v + r"/config", self.set_config),
            ("POST", n + r"/(?P<kind>qemu)/(?P<vmid>[^/]+)/config", self.set_config_task),
            ("POST", v + r"/clone", self.clone),
            ("POST", v + r"/status/(?P<action>start|stop|shutdown|reboot)", self.status),
            ("POST", v + r"/snapshot", self.snapshot),
            ("POST", v + r"/snapshot/(?P<snap>[^/]+)/rollback", self.rollback),
            ("DELETE", v + r"/snapshot/(?P<snap>[^/]+)", self.delsnapshot),
            ("PUT", v + r"/resize", self.resize),
            ("POST", v + r"/template", self.template),
            ("DELETE", v, self.destroy),
            ("POST", q + r"/exec", self.agent_exec),
            ("GET", q + r"/exec-status", self.agent_exec_status),
            ("POST", q + r"/file-write", self.agent_file_write),
            ("GET", q + r"/file-read", self.agent_file_read),
            ("GET", q + r"/(?P<cmd>[a-z-]+)", self.agent_cmd),
            ("POST", q + r"/(?P<cmd>[a-z-]+)", self.agent_cmd),
            ("GET", n + r"/tasks", self.task_list),
            ("GET", n + r"/tasks/(?P<upid>[^/]+)/(?P<what>status|log)", self.task_get),
            ("DELETE", n + r"/tasks/(?P<upid>[^/]+)", self.task_stop),
        ]

    def dispatch(self, req, method, path, params):
        for meth, pat, fn in self.routes():
            if meth != method:
                continue
            m = re.fullmatch(pat, path)
            if m is None or (fn == self.agent_cmd and m.group("cmd") not in qm.AGENT_COMMANDS) \
                    or (fn == self.agent_cmd and (method == "GET") != self._agent_get(m)):
                continue
            a = {k: urllib.parse.unquote(x) for k, x in m.groupdict().items() if x is not None}
            if "node" in a:
                self.check_node(a["node"])
            if "vmid" in a:
                a["vmid"] = self.check_vmid(a["vmid"])
            return fn(req, a, params)
        raise ApiError(501, "Method '%s %s' not implemented" % (method, path))

    @staticmethod
    def _agent_get(m):
        c = m.group("cmd")
        return c.startswith("get-") or c in GET_AGENT

    # --------------------------------------------------------------- reads
    def get_plain(self, req, a, p):
        allowed = {"/cluster/resources": ("type",), "/cluster/nextid": ("vmid",)}
        return self.pvesh(req.api_path, p, allowed.get(req.api_path, ()))

    def get_node(self, req, a, p):
        return self.pvesh(req.api_path, p)

    def get_guest(self, req, a, p):
        self.need_guest(a["kind"], a["vmid"])
        if a["sub"] == "":
            return [{"subdir": s} for s in ("config", "pending", "status", "snapshot")]
        allowed = ("current", "snapshot") if a["sub"] == "/config" else ()
        path = "/nodes/%s/%s/%d%s" % (self.node, a["kind"], a["vmid"], a["sub"])
        return self.pvesh(path, p, allowed)

    # -------------------------------------------------------------- guests
    @staticmethod
    def tool(a):
        return "pct" if a["kind"] == "lxc" else "qm"

    @staticmethod
    def prefix(a):
        return "vz" if a["kind"] == "lxc" else "qm"

    def create(self, req, a, p):
        tool = self.tool(a)
        argv, stdin = prepare(tool, "create", p)
        vmid = int(p["vmid"])
        self.need_unused(vmid)
        return self.tasks.start(self.node, self.prefix(a) + "create", vmid, req.user, tool,
                                argv, stdin)

    def clone(self, req, a, p):
        argv, stdin = prepare(self.tool(a), "clone", p, {"vmid": a["vmid"]})
        self.need_guest(a["kind"], a["vmid"])
        self.need_unused(int(p["newid"]))
        return self.tasks.start(self.node, self.prefix(a) + "clone", a["vmid"], req.user,
                                self.tool(a), argv, stdin)

    def guest_task(self, req, a, p, cmd, typ, fixed=None):
        argv, stdin = prepare(self.tool(a), cmd, p, dict(fixed or {}, vmid=a["vmid"]))
        self.need_guest(a["kind"], a["vmid"])
        return self.tasks.start(self.node, typ, a["vmid"], req.user, self.tool(a), argv, stdin)

    def set_config(self, req, a, p):
        argv, stdin = prepare(self.tool(a), "set", p, {"vmid": a["vmid"]})
        self.need_guest(a["kind"], a["vmid"])
        self.runner.call(self.tool(a), argv, stdin)
        return None

    def set_config_task(self, req, a, p):
        return self.guest_task(req, a, p, "set", "qmconfig")

    def status(self, req, a, p):
        return self.guest_task(req, a, p, a["action"], self.prefix(a) + a["action"])

    def snapshot(self, req, a, p):
        return self.guest_task(req, a, p, "snapshot", self.prefix(a) + "snapshot")

    def rollback(self, req, a, p):
        return self.guest_task(req, a, p, "rollback", self.prefix(a) + "rollback",
                               {"snapname": a["snap"]})

    def delsnapshot(self, req, a, p):
        return self.guest_task(req, a, p, "delsnapshot", self.prefix(a) + "delsnapshot",
                               {"snapname": a["snap"]})

    def resize(self, req, a, p):
        return self.guest_task(req, a, p, "resize", "resize")

    def template(self, req, a, p):
        if a["kind"] == "qemu":
            return self.guest_task(req, a, p, "template", "qmtemplate")
        argv, stdin = prepare("pct", "template", p, {"vmid": a["vmid"]})
        self.need_guest("lxc", a["vmid"])
        self.runner.call("pct", argv, stdin)
        return None

    def destroy(self, req, a, p):
        return self.guest_task(req, a, p, "destroy", self.prefix(a) + "destroy")

    # ------------------------------------------------------------- storage
    def storage_add(self, req, a, p):
        argv, stdin = prepare("pvesm", "add", p)
        self.runner.call("pvesm", argv, stdin)
        return None

    # --------------------------------------------------------- guest agent
    def agent_cmd(self, req, a, p):
        if p:
            raise param_error({k: NOT_IN_SCHEMA for k in p})
        self.need_guest("qemu", a["vmid"])
        out = self.runner.call("qm", ["guest", "cmd", str(a["vmid"]), a["cmd"]])
        return {"result": parse_json_out(out)}

    def agent_ready(self, vmid):
        """The checks `qm guest exec` makes first, here so that a guest
        without a running agent fails the request itself (500)."""
        sim = self.need_guest("qemu", vmid)
        vm = qm.VM(sim)
        try:
            qm._agent_check(sim, vm, vmid, vm.load(vmid, warn=False))
        except Die as e:
            raise ApiError(500, e.msg)
        return sim

    @staticmethod
    def only(p, allowed, required=()):
        errors = {k: NOT_IN_SCHEMA for k in p if k not in allowed}
        errors.update({k: "property is missing and it is not optional"
                       for k in required if k not in p})
        if errors:
            raise param_error(errors)

    def agent_exec(self, req, a, p):
        self.only(p, ("command", "input-data"), ("command",))
        cmd = p["command"] if isinstance(p["command"], list) else [p["command"]]
        data = p.get("input-data")
        if isinstance(data, list):
            raise param_error({"input-data": "type check ('string') failed - got an array"})
        self.agent_ready(a["vmid"])
        argv = ["guest", "exec", str(a["vmid"])] + \
            (["--pass-stdin", "1"] if data is not None else []) + ["--"] + cmd
        with self.exec_lock:
            pid = self.next_pid
            self.next_pid += 1
        job = {"done": threading.Event(), "vmid": a["vmid"]}
        with self.exec_lock:
            self.execs[pid] = job
        stdin = data.encode("utf-8") if data is not None else None
        threading.Thread(target=self._run_exec, args=(job, argv, stdin), daemon=True).start()
        return {"pid": pid}

    def _run_exec(self, job, argv, stdin):
        try:
            job["result"] = parse_json_out(self.runner.call("qm", argv, stdin))
        except ApiError as e:
            job["error"] = e
        job["done"].set()

    def agent_exec_status(self, req, a, p):
        self.only(p, ("pid",), ("pid",))
        self.agent_ready(a["vmid"])
        try:
            pid = int(p["pid"])
        except (TypeError, ValueError):
            raise param_error({"pid": "type check ('integer') failed - got '%s'" % p["pid"]})
        with self.exec_lock:
            job = self.execs.get(pid)
        if job is None or job["vmid"] != a["vmid"]:
            raise ApiError(500, "Agent error: Invalid parameter 'pid'")
        if not job["done"].is_set():
            return {"exited": 0}
        if "error" in job:
            raise job["error"]
        return job["result"]

    def agent_file_write(self, req, a, p):
        self.only(p, ("file", "content", "encode"), ("file", "content"))
        enc = schema.parse_boolean(p.get("encode", "1"))
        if enc is None:
            raise param_error({"encode": "type check ('boolean') failed - got '%s'"
                               % p["encode"]})
        if len(p["content"]) > 61440:
            raise param_error({"content": "value may only be 61440 characters long"})
        sim = self.agent_ready(a["vmid"])
        data = p["content"].encode("utf-8")
        if enc:
            try:
                data = base64.b64decode(data, validate=True)
            except ValueError:
                raise ApiError(500, "Agent error: Invalid parameter 'content': not base64")
        path = guestexec.guest_path(sim, a["vmid"], p["file"])
        try:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "wb") as f:
                f.write(data)
        except OSError as e:
            raise ApiError(500, "Agent error: Failed to open file '%s': %s"
                           % (p["file"], e.strerror))
        return None

    def agent_file_read(self, req, a, p):
        self.only(p, ("file",), ("file",))
        sim = self.agent_ready(a["vmid"])
        path = guestexec.guest_path(sim, a["vmid"], p["file"])
        limit = 16 * 1024 * 1024
        try:
            with open(path, "rb") as f:
                data = f.read(limit + 1)
        except OSError as e:
            raise ApiError(500, "Agent error: Failed to open file '%s': %s"
                           % (p["file"], e.strerror))
        res = {"content": data[:limit].decode("utf-8", "replace")}
        if len(data) > limit:
            res["truncated"] = 1
        return res

    # --------------------------------------------------------------- tasks
    def task_list(self, req, a, p):
        self.only(p, ("start", "limit", "vmid"))
        with self.tasks.lock:
            tasks = list(self.tasks.tasks.values())
        rows = [t.status() for t in tasks
                if "vmid" not in p or t.id == str(p["vmid"])]
        return sorted(rows, key=lambda r: -r["starttime"])

    def task_get(self, req, a, p):
        t = self.tasks.get(a["upid"])
        if a["what"] == "status":
            self.only(p, ())
            return t.status()
        self.only(p, ("start", "limit"))
        try:
            start, limit = int(p.get("start", 0)), int(p.get("limit", 50))
        except (TypeError, ValueError):
            raise param_error({"start": "type check ('integer') failed"})
        page, total = t.log(start, limit)
        req.extra["total"] = total
        return page

    def task_stop(self, req, a, p):
        t = self.tasks.get(a["upid"])
        if not t.done.is_set():
            t.proc.terminate()
        return None
