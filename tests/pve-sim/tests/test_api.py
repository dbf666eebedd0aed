"""`pve-sim serve`: the REST API stand-in, spoken to over HTTPS (a test CA
made here with openssl) like a Proxmox client would."""

import base64
import http.client
import json
import os
import re
import select
import shutil
import signal
import ssl
import subprocess
import tempfile
import threading
import time
import unittest
import urllib.parse

from simtest import PVE_SIM, TEMPLATE, Node

TOKEN = "root@pam!phoenix"
SECRET = "0b3c9d2e-5f1a-4c8b-9e7d-123456789abc"
UPID_RE = re.compile(r"UPID:pve:([0-9A-F]{8}):([0-9A-F]{8}):([0-9A-F]{8}):([a-z]+):(\d*):"
                     r"root@pam!phoenix:\Z")


def openssl(d, *args):
    subprocess.run(["openssl"] + list(args), cwd=d, check=True, capture_output=True)


def make_pki(d):
    """A CA and a server certificate for 127.0.0.1 signed by it."""
    openssl(d, "req", "-x509", "-new", "-nodes", "-newkey", "ec", "-pkeyopt",
            "ec_paramgen_curve:prime256v1", "-keyout", "ca.key", "-out", "ca.crt", "-days", "2",
            "-subj", "/CN=pve-sim test CA", "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    openssl(d, "req", "-new", "-nodes", "-newkey", "ec", "-pkeyopt",
            "ec_paramgen_curve:prime256v1", "-keyout", "server.key", "-out", "server.csr",
            "-subj", "/CN=pve")
    with open(os.path.join(d, "server.ext"), "w") as f:
        f.write("subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n")
    openssl(d, "x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
            "-CAcreateserial", "-days", "2", "-out", "server.crt", "-extfile", "server.ext")


class ApiServer:
    def __init__(self, node, pki=None, tokens=(TOKEN + "=" + SECRET,)):
        argv = [PVE_SIM, "serve", node.base, "--port", "0"]
        if pki:
            argv += ["--cert", os.path.join(pki, "server.crt"),
                     "--key", os.path.join(pki, "server.key")]
        for t in tokens:
            argv += ["--token", t]
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     env=node.env())
        ready, _, _ = select.select([self.proc.stdout], [], [], 15)
        if not ready:
            self.proc.kill()
            raise AssertionError("pve-sim serve did not start")
        self.line = self.proc.stdout.readline().decode()
        m = re.match(r"listening on (https?)://127\.0\.0\.1:(\d+)\n\Z", self.line)
        if not m:
            self.proc.kill()
            raise AssertionError("unexpected first line %r: %s"
                                 % (self.line, self.proc.stderr.read().decode()))
        self.scheme, self.port = m.group(1), int(m.group(2))
        self.ctx = None
        if pki:
            self.ctx = ssl.create_default_context(cafile=os.path.join(pki, "ca.crt"))

    def conn(self):
        if self.ctx:
            return http.client.HTTPSConnection("127.0.0.1", self.port, context=self.ctx,
                                               timeout=30)
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)

    def request(self, method, path, params=None, auth=TOKEN + "=" + SECRET, as_json=False):
        """Returns (status, reason, document)."""
        headers = {}
        if auth is not None:
            headers["Authorization"] = "PVEAPIToken=" + auth
        url = "/api2/json" + path
        body = None
        pairs = []
        for k, v in (params or {}).items():
            for one in v if isinstance(v, list) else [v]:
                pairs.append((k, one))
        if method in ("GET", "DELETE"):
            if pairs:
                url += "?" + urllib.parse.urlencode(pairs)
        elif as_json:
            body = json.dumps(params or {}).encode()
            headers["Content-Type"] = "application/json"
        else:
            body = urllib.parse.urlencode(pairs).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        c = self.conn()
        try:
            c.request(method, url, body=body, headers=headers)
            r = c.getresponse()
            raw = r.read()
            assert r.getheader("Content-Type") == "application/json;charset=UTF-8", \
                r.getheader("Content-Type")
            return r.status, r.reason, json.loads(raw)
        finally:
            c.close()

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        rc = self.proc.wait(10)
        self.proc.stdout.close()
        self.proc.stderr.close()
        return rc


class ApiTestCase(unittest.TestCase):
    """One node and one server per class (starting them is most of the
    cost); each test uses its own VMIDs and resets the settings it changes."""

    @classmethod
    def setUpClass(cls):
        cls.pki = tempfile.mkdtemp(prefix="pvesim-pki-")
        make_pki(cls.pki)
        cls.node = Node()
        cls.api = ApiServer(cls.node, cls.pki)

    @classmethod
    def tearDownClass(cls):
        rc = cls.api.stop()
        cls.node.cleanup()
        shutil.rmtree(cls.pki, ignore_errors=True)
        assert rc == 0, "serve exits 0 on SIGTERM"

    def setUp(self):
        self.n_calls = len(self.node.jsonl("calls.log"))
        self.n_api = len(self.node.jsonl("api.log"))

    def tearDown(self):
        self.node.settings(faults=[], latency_ms=0, agent_delay_s=0, pve_version="9.1.2")

    def new_calls(self):
        return self.node.jsonl("calls.log")[self.n_calls:]

    def new_api(self):
        return self.node.jsonl("api.log")[self.n_api:]

    # helpers
    def ok(self, method, path, params=None, **kw):
        st, reason, doc = self.api.request(method, path, params, **kw)
        self.assertEqual((st, reason), (200, "OK"), doc)
        return doc["data"]

    def fails(self, method, path, params, status, reason):
        st, r, doc = self.api.request(method, path, params)
        self.assertEqual((st, r), (status, reason), doc)
        self.assertIsNone(doc["data"])
        return doc

    def task(self, method, path, params=None):
        upid = self.ok(method, path, params)
        self.assertRegex(upid, UPID_RE)
        return upid

    def wait(self, upid, timeout=20):
        end = time.time() + timeout
        while True:
            st = self.ok("GET", "/nodes/pve/tasks/%s/status" % urllib.parse.quote(upid))
            if st["status"] == "stopped":
                return st
            self.assertEqual(st["status"], "running")
            self.assertLess(time.time(), end, "task did not end")
            time.sleep(0.05)

    def run_task(self, method, path, params=None):
        upid = self.task(method, path, params)
        st = self.wait(upid)
        self.assertEqual(st["exitstatus"], "OK", self.log(upid))
        return upid

    def log(self, upid):
        return [e["t"] for e in self.ok("GET", "/nodes/pve/tasks/%s/log" % upid,
                                        {"start": 0, "limit": 500})]

    def create_ct(self, vmid=101, **extra):
        p = {"vmid": vmid, "ostemplate": TEMPLATE, "rootfs": "local-zfs:8",
             "hostname": "ct%d" % vmid, "memory": 512, "onboot": 1,
             "net0": "name=eth0,bridge=vmbr0,ip=dhcp"}
        p.update(extra)
        return self.run_task("POST", "/nodes/pve/lxc", p)

    def pvesh(self, path, *args):
        return json.loads(self.node.ok("pvesh", "get", path, "--output-format", "json", *args))


class TestServer(ApiTestCase):
    def test_start_line_port_file_and_version(self):
        self.assertEqual(self.api.scheme, "https")
        with open(os.path.join(self.node.simdir, "api.port")) as f:
            self.assertEqual(int(f.read()), self.api.port)
        v = self.ok("GET", "/version")
        self.assertEqual(v, self.pvesh("/version"))
        self.assertEqual(sorted(v), ["release", "repoid", "version"])
        self.node.settings(pve_version="8.2.4")
        v = self.ok("GET", "/version")
        self.assertEqual((v["version"], v["release"]), ("8.2.4", "8.2"))

    def test_auth_failures(self):
        st, reason, doc = self.api.request("GET", "/version", auth=None)
        self.assertEqual((st, reason, doc), (401, "No ticket", {"data": None}))
        st, reason, doc = self.api.request("GET", "/version", auth=TOKEN + "=wrong")
        self.assertEqual((st, reason, doc), (401, "authentication failure", {"data": None}))
        st, reason, doc = self.api.request("GET", "/version", auth="root@pam!other=" + SECRET)
        self.assertEqual((st, reason), (401, "authentication failure"))
        # nothing ran for the refused requests
        self.assertEqual(self.new_calls(), [])
        log = self.new_api()
        self.assertEqual([e["status"] for e in log], [401, 401, 401])

    def test_unknown_path_and_node(self):
        d = self.fails("GET", "/nodes/pve/foo", None, 501,
                       "Method 'GET /nodes/pve/foo' not implemented")
        self.assertEqual(d["message"], "Method 'GET /nodes/pve/foo' not implemented\n")
        self.fails("POST", "/nodes/pve/lxc/101/config", {"memory": 1}, 501,
                   "Method 'POST /nodes/pve/lxc/101/config' not implemented")
        msg = "hostname lookup 'other' failed - failed to get address info for: other: " \
              "Name or service not known"
        self.fails("GET", "/nodes/other/lxc", None, 500, msg)
        self.fails("POST", "/nodes/other/lxc/101/status/start", None, 500, msg)
        self.fails("GET", "/nodes/pve/tasks/UPID:pve:00000001:00000002:00000003:vzstart:1:"
                   "root@pam!phoenix:/status", None, 500, "no such task")

    def test_plain_http(self):
        node = Node("--node", "pve2")
        other = ApiServer(node)
        try:
            self.assertEqual(other.scheme, "http")
            st, _, doc = other.request("GET", "/nodes")
            self.assertEqual(st, 200)
            self.assertEqual(doc["data"][0]["node"], "pve2")
            with open(os.path.join(node.simdir, "api.port")) as f:
                self.assertEqual(int(f.read()), other.port)
        finally:
            self.assertEqual(other.stop(), 0)
            node.cleanup()


class TestContainers(ApiTestCase):
    def test_create_task_status_log_and_config(self):
        upid = self.task("POST", "/nodes/pve/lxc", {
            "vmid": 101, "ostemplate": TEMPLATE, "rootfs": "local-zfs:8", "hostname": "ct101",
            "memory": 512, "onboot": 1, "password": "s3cret-pw"})
        m = UPID_RE.match(upid)
        self.assertEqual((m.group(4), m.group(5)), ("vzcreate", "101"))
        st = self.wait(upid)
        self.assertEqual(st["exitstatus"], "OK")
        self.assertEqual((st["upid"], st["type"], st["id"], st["user"], st["node"]),
                         (upid, "vzcreate", "101", TOKEN, "pve"))
        self.assertEqual(st["pid"], int(m.group(1), 16))
        self.assertEqual(st["starttime"], int(m.group(3), 16))
        doc = self.api.request("GET", "/nodes/pve/tasks/%s/log" % upid,
                               {"start": 0, "limit": 50})[2]
        lines = [e["t"] for e in doc["data"]]
        self.assertEqual([e["n"] for e in doc["data"]], list(range(1, len(lines) + 1)))
        self.assertEqual(doc["total"], len(lines))
        self.assertIn("Detected container architecture: amd64", lines)
        self.assertEqual(lines[-1], "TASK OK")
        page = self.ok("GET", "/nodes/pve/tasks/%s/log" % upid, {"start": 1, "limit": 1})
        self.assertEqual(page, [{"n": 2, "t": lines[1]}])
        # the tool call behind it, with the request logged (secret redacted)
        calls = [c["argv"] for c in self.new_calls()]
        # argv shaped as a CLI caller writes it (so fault patterns match both)
        self.assertEqual(calls[0][:4], ["pct", "create", "101", TEMPLATE])
        i = calls[0].index("--memory")
        self.assertEqual(calls[0][i + 1], "512")
        api = self.new_api()
        self.assertEqual(api[0]["params"]["password"], "**********")
        with open(os.path.join(self.node.simdir, "api.log")) as f:
            self.assertNotIn("s3cret-pw", f.read())
        # config: the same data pvesh gives, raw lxc.* lines included
        with open(self.node.conf_path("lxc", 101), "a") as f:
            f.write("lxc.apparmor.profile: unconfined\n")
        conf = self.ok("GET", "/nodes/pve/lxc/101/config")
        self.assertEqual(conf, self.pvesh("/nodes/pve/lxc/101/config"))
        self.assertEqual(conf["lxc"], [["lxc.apparmor.profile", "unconfined"]])
        self.assertEqual(conf["memory"], 512)
        self.assertRegex(conf["digest"], r"\A[0-9a-f]{40}\Z")
        st = self.ok("GET", "/nodes/pve/lxc/101/status/current")
        self.assertEqual(st["status"], "stopped")
        res = self.ok("GET", "/cluster/resources", {"type": "vm"})
        self.assertIn(("lxc/101", "ct101"), [(r["id"], r["name"]) for r in res])
        self.assertEqual({r["type"] for r in res}, {"lxc"})
        self.assertEqual(self.ok("GET", "/cluster/nextid"), "100")
        self.fails("POST", "/nodes/pve/lxc", {"vmid": 101, "ostemplate": TEMPLATE}, 500,
                   "CT 101 already exists on node 'pve'")

    def test_pending_after_set_on_running_ct(self):
        self.node.ct(111)
        self.run_task("POST", "/nodes/pve/lxc/111/status/start")
        self.assertEqual(self.ok("GET", "/nodes/pve/lxc/111/status/current")["status"],
                         "running")
        self.assertIsNone(self.ok("PUT", "/nodes/pve/lxc/111/config",
                                  {"features": "nesting=1", "cores": 2}))
        pend = {e["key"]: e for e in self.ok("GET", "/nodes/pve/lxc/111/pending")}
        self.assertEqual(pend["features"], {"key": "features", "pending": "nesting=1"})
        self.assertEqual(pend["cores"], {"key": "cores", "value": 2})
        self.assertEqual(pend["hostname"], {"key": "hostname", "value": "ct111"})
        cur = self.ok("GET", "/nodes/pve/lxc/111/config", {"current": 1})
        self.assertNotIn("features", cur)
        self.assertEqual(self.ok("GET", "/nodes/pve/lxc/111/config")["features"], "nesting=1")
        # JSON bodies work as well as forms
        self.ok("PUT", "/nodes/pve/lxc/111/config", {"description": "via json", "onboot": True},
                as_json=True)
        conf = self.ok("GET", "/nodes/pve/lxc/111/config", {"current": 1})
        self.assertEqual((conf["description"], conf["onboot"]), ("via json", 1))

    def test_snapshots_rollback_delete(self):
        self.node.ct(121)
        upid = self.run_task("POST", "/nodes/pve/lxc/121/snapshot",
                             {"snapname": "before", "description": "first one"})
        self.assertEqual(UPID_RE.match(upid).group(4), "vzsnapshot")
        self.ok("PUT", "/nodes/pve/lxc/121/config", {"memory": 2048})
        snaps = {s["name"]: s for s in self.ok("GET", "/nodes/pve/lxc/121/snapshot")}
        self.assertEqual(sorted(snaps), ["before", "current"])
        self.assertEqual(snaps["before"]["description"], "first one")
        self.assertIsInstance(snaps["before"]["snaptime"], int)
        self.assertEqual((snaps["current"]["description"], snaps["current"]["running"],
                          snaps["current"]["parent"]), ("You are here!", 0, "before"))
        snapconf = self.ok("GET", "/nodes/pve/lxc/121/config", {"snapshot": "before"})
        self.assertEqual(snapconf["memory"], 512)
        self.run_task("POST", "/nodes/pve/lxc/121/snapshot/before/rollback")
        self.assertEqual(self.ok("GET", "/nodes/pve/lxc/121/config")["memory"], 512)
        self.run_task("DELETE", "/nodes/pve/lxc/121/snapshot/before")
        names = [s["name"] for s in self.ok("GET", "/nodes/pve/lxc/121/snapshot")]
        self.assertEqual(names, ["current"])

    def test_clone_resize_template_destroy(self):
        self.node.ct(131)
        self.run_task("PUT", "/nodes/pve/lxc/131/resize", {"disk": "rootfs", "size": "+2G"})
        self.assertIn("size=10G", self.ok("GET", "/nodes/pve/lxc/131/config")["rootfs"])
        self.assertIsNone(self.ok("POST", "/nodes/pve/lxc/131/template"))
        self.assertEqual(self.ok("GET", "/nodes/pve/lxc/131/config")["template"], 1)
        upid = self.run_task("POST", "/nodes/pve/lxc/131/clone",
                             {"newid": 132, "hostname": "copy"})
        self.assertEqual(UPID_RE.match(upid).group(4, 5), ("vzclone", "131"))
        self.assertEqual(self.ok("GET", "/nodes/pve/lxc/132/config")["hostname"], "copy")
        self.run_task("DELETE", "/nodes/pve/lxc/132", {"purge": 1})
        self.assertFalse(os.path.exists(self.node.conf_path("lxc", 132)))
        self.fails("GET", "/nodes/pve/lxc/132/config", None, 500,
                   "Configuration file 'nodes/pve/lxc/132.conf' does not exist")

    def test_failed_task(self):
        self.node.ct(141)
        upid = self.task("POST", "/nodes/pve/lxc/141/clone", {"newid": 142, "snapname": "nope"})
        st = self.wait(upid)
        self.assertEqual(st["exitstatus"], "snapshot 'nope' does not exist")
        self.assertEqual(self.log(upid)[-1], "TASK ERROR: snapshot 'nope' does not exist")
        self.assertFalse(os.path.exists(self.node.conf_path("lxc", 142)))


class TestErrors(ApiTestCase):
    PF = "Parameter verification failed."

    def test_unknown_and_missing_parameters(self):
        self.node.ct(201)
        before = self.node.conf("lxc", 201)
        d = self.fails("PUT", "/nodes/pve/lxc/201/config", {"foo": 1, "mem": 1024, "cores": 2},
                       400, self.PF)
        nd = "property is not defined in schema and the schema does not allow additional " \
             "properties"
        self.assertEqual(d["errors"], {"foo": nd, "mem": nd})  # no abbreviations in the API
        self.assertEqual(d["message"], self.PF + "\n")
        self.assertEqual(self.node.conf("lxc", 201), before)
        d = self.fails("POST", "/nodes/pve/lxc", {"vmid": 203}, 400, self.PF)
        self.assertEqual(d["errors"], {"ostemplate": "property is missing and it is not optional"})
        d = self.fails("POST", "/nodes/pve/lxc/201/clone", {}, 400, self.PF)
        self.assertEqual(list(d["errors"]), ["newid"])
        d = self.fails("GET", "/cluster/resources", {"type": "bogus"}, 400, self.PF)
        self.assertIn("type", d["errors"])
        d = self.fails("GET", "/nodes/pve/lxc/201/status/current", {"x": 1}, 400, self.PF)
        self.assertEqual(d["errors"], {"x": nd})

    def test_bad_format_is_400_before_any_task(self):
        self.node.ct(211)
        d = self.fails("POST", "/nodes/pve/lxc", {"vmid": 212, "ostemplate": TEMPLATE,
                                                  "memory": "lots", "net0": "bridge=vmbr0"},
                       400, self.PF)
        self.assertEqual(sorted(d["errors"]), ["memory", "net0"])
        self.assertEqual(d["errors"]["memory"], "type check ('integer') failed - got 'lots'")
        self.assertIn("invalid format", d["errors"]["net0"])
        d = self.fails("POST", "/nodes/pve/lxc/211/status/start", {"skiplock": "maybe"},
                       400, self.PF)
        self.assertEqual(d["errors"], {"skiplock": "type check ('boolean') failed - got 'maybe'"})
        self.fails("GET", "/nodes/pve/lxc/abc/config", None, 400, self.PF)
        self.assertEqual(len(self.new_calls()), 1, "no tool ran but for the CT")
        # checks only the tool itself makes come back the same way
        d = self.fails("PUT", "/nodes/pve/lxc/211/config", {"delete": "hostname,nope"}, 400,
                       self.PF)
        self.assertIn("delete", d["errors"])

    def test_missing_guest_is_500(self):
        tasks = self.ok("GET", "/nodes/pve/tasks")
        msg = "Configuration file 'nodes/pve/lxc/105.conf' does not exist"
        for method, path in (("GET", "/nodes/pve/lxc/105/config"),
                             ("GET", "/nodes/pve/lxc/105/status/current"),
                             ("POST", "/nodes/pve/lxc/105/status/start"),
                             ("PUT", "/nodes/pve/lxc/105/config"),
                             ("DELETE", "/nodes/pve/lxc/105")):
            params = {"memory": 512} if method == "PUT" else None
            d = self.fails(method, path, params, 500, msg)
            self.assertEqual(d["message"], msg + "\n")
        self.assertEqual(self.ok("GET", "/nodes/pve/tasks"), tasks, "no task started")

    def test_tool_failure_in_sync_call_is_500(self):
        self.node.ct(221)
        self.node.settings(faults=[{"match": "pct set 221 --memory *", "kind": "lock-timeout"}])
        self.fails("PUT", "/nodes/pve/lxc/221/config", {"memory": 1024}, 500,
                   "can't lock file '/run/lock/lxc/pve-config-221.lock' - got timeout")


class TestConcurrency(ApiTestCase):
    def test_two_slow_tasks_overlap(self):
        self.node.ct(301)
        self.node.ct(302)
        self.node.settings(latency_ms=700)
        ups = [self.task("POST", "/nodes/pve/lxc/%d/snapshot" % v, {"snapname": "snap1"})
               for v in (301, 302)]
        # answered before the work is done
        self.assertEqual(self.ok("GET", "/nodes/pve/tasks/%s/status" % ups[0])["status"],
                         "running")
        for u in ups:
            self.assertEqual(self.wait(u)["exitstatus"], "OK")
        calls = [c for c in self.new_calls() if c["argv"][:2] == ["pct", "snapshot"]]
        self.assertEqual(len(calls), 2)
        a, b = sorted(calls, key=lambda c: c["ts"])
        self.assertLess(b["ts"], a["ts"] + a["ms"] / 1000.0, "the two workers overlapped")

    def test_concurrent_requests(self):
        self.node.ct(311)
        self.node.settings(latency_ms=500)
        out = []
        ths = [threading.Thread(target=lambda p: out.append(
            self.api.request("GET", "/nodes/pve/lxc/311/" + p)[0]), args=(p,))
            for p in ("config", "status/current", "pending")]
        for t in ths:
            t.start()
        for t in ths:
            t.join()
        self.assertEqual(out, [200, 200, 200])
        log = sorted(self.new_api(), key=lambda e: e["ts"])
        self.assertEqual(len(log), 3)
        self.assertLess(log[2]["ts"], log[0]["ts"] + log[0]["ms"] / 1000.0)


class TestQemuAndAgent(ApiTestCase):
    def test_vm_lifecycle(self):
        upid = self.run_task("POST", "/nodes/pve/qemu", {
            "vmid": 400, "name": "vm400", "memory": 2048, "scsi0": "local-zfs:32",
            "net0": "virtio,bridge=vmbr0", "agent": 1,
            "sshkeys": urllib.parse.quote("ssh-ed25519 AAAAC3Nza me@host", safe="")})
        self.assertEqual(UPID_RE.match(upid).group(4), "qmcreate")
        conf = self.ok("GET", "/nodes/pve/qemu/400/config")
        self.assertEqual(conf, self.pvesh("/nodes/pve/qemu/400/config"))
        self.assertEqual(urllib.parse.unquote(conf["sshkeys"]), "ssh-ed25519 AAAAC3Nza me@host")
        self.assertIsNone(self.ok("PUT", "/nodes/pve/qemu/400/config", {"cores": 2}))
        up = self.run_task("POST", "/nodes/pve/qemu/400/config", {"memory": 4096})
        self.assertEqual(UPID_RE.match(up).group(4), "qmconfig")
        self.run_task("PUT", "/nodes/pve/qemu/400/resize", {"disk": "scsi0", "size": "40G"})
        conf = self.ok("GET", "/nodes/pve/qemu/400/config")
        self.assertEqual((conf["cores"], conf["memory"]), (2, 4096))
        self.assertIn("size=40G", conf["scsi0"])
        self.run_task("POST", "/nodes/pve/qemu/400/status/start")
        self.assertEqual(self.ok("GET", "/nodes/pve/qemu/400/status/current")["status"],
                         "running")
        self.run_task("POST", "/nodes/pve/qemu/400/status/stop")
        self.run_task("DELETE", "/nodes/pve/qemu/400", {"purge": 1})
        self.assertFalse(os.path.exists(self.node.conf_path("qemu", 400)))

    def test_agent(self):
        self.node.vm(410, "--agent", "1")
        self.fails("POST", "/nodes/pve/qemu/410/agent/ping", None, 500, "VM 410 is not running")
        self.node.settings(agent_delay_s=3600)
        self.node.ok("qm", "start", 410)
        self.fails("POST", "/nodes/pve/qemu/410/agent/ping", None, 500,
                   "QEMU guest agent is not running")
        self.fails("POST", "/nodes/pve/qemu/410/agent/exec", {"command": "true"}, 500,
                   "QEMU guest agent is not running")
        self.node.settings(agent_delay_s=0)
        self.assertEqual(self.ok("POST", "/nodes/pve/qemu/410/agent/ping"), {"result": {}})
        self.assertEqual(self.ok("GET", "/nodes/pve/qemu/410/agent/get-host-name"),
                         {"result": {"host-name": "vm410"}})
        osinfo = self.ok("GET", "/nodes/pve/qemu/410/agent/get-osinfo")["result"]
        self.assertEqual(osinfo, json.loads(self.node.ok("qm", "guest", "cmd", 410,
                                                         "get-osinfo")))
        ifs = self.ok("GET", "/nodes/pve/qemu/410/agent/network-get-interfaces")["result"]
        self.assertEqual([i["name"] for i in ifs], ["lo", "eth0"])
        self.fails("GET", "/nodes/pve/qemu/410/agent/ping", None, 501,
                   "Method 'GET /nodes/pve/qemu/410/agent/ping' not implemented")

    def exec_wait(self, vmid, pid):
        for _ in range(400):
            st = self.ok("GET", "/nodes/pve/qemu/%d/agent/exec-status" % vmid, {"pid": pid})
            if st["exited"]:
                return st
            time.sleep(0.05)
        self.fail("exec did not end")

    def test_agent_exec_with_stdin_and_files(self):
        self.node.vm(420, "--agent", "1")
        self.node.ok("qm", "start", 420)
        text = "key = value\nsecond line\n"
        pid = self.ok("POST", "/nodes/pve/qemu/420/agent/exec", {
            "command": ["install", "-D", "-m", "0644", "/dev/stdin", "/etc/app/app.conf"],
            "input-data": text})["pid"]
        self.assertIsInstance(pid, int)
        self.assertEqual(self.exec_wait(420, pid), {"exited": 1, "exitcode": 0})
        ex = self.node.jsonl("exec.log")[-1]
        self.assertEqual((ex["argv"][0], ex["stdin_bytes"]), ("install", len(text)))
        pid2 = self.ok("POST", "/nodes/pve/qemu/420/agent/exec",
                       {"command": ["cat", "/etc/app/app.conf"]})["pid"]
        self.assertNotEqual(pid2, pid)
        st = self.exec_wait(420, pid2)
        self.assertEqual((st["exitcode"], st["out-data"]), (0, text))
        self.assertEqual(self.ok("GET", "/nodes/pve/qemu/420/agent/file-read",
                                 {"file": "/etc/app/app.conf"}), {"content": text})
        self.assertIsNone(self.ok("POST", "/nodes/pve/qemu/420/agent/file-write", {
            "file": "/etc/other", "content": base64.b64encode(b"raw\x00bytes").decode()}))
        self.assertIsNone(self.ok("POST", "/nodes/pve/qemu/420/agent/file-write", {
            "file": "/etc/plain", "content": "as is", "encode": 0}))
        out = json.loads(self.node.ok("qm", "guest", "exec", 420, "--", "cat", "/etc/plain"))
        self.assertEqual(out["out-data"], "as is")
        self.fails("GET", "/nodes/pve/qemu/420/agent/file-read", {"file": "/nope"}, 500,
                   "Agent error: Failed to open file '/nope': No such file or directory")
        self.fails("GET", "/nodes/pve/qemu/420/agent/exec-status", {"pid": 99999}, 500,
                   "Agent error: Invalid parameter 'pid'")
        d = self.fails("POST", "/nodes/pve/qemu/420/agent/exec", {}, 400,
                       "Parameter verification failed.")
        self.assertEqual(list(d["errors"]), ["command"])


class TestStorage(ApiTestCase):
    def test_storage_add(self):
        self.assertIsNone(self.ok("POST", "/storage", {
            "storage": "tank", "type": "dir", "path": "/srv/tank", "content": "images,rootdir"}))
        ids = [s["storage"] for s in self.ok("GET", "/nodes/pve/storage")]
        self.assertIn("tank", ids)
        with open(os.path.join(self.node.root, "etc/pve/storage.cfg")) as f:
            self.assertIn("dir: tank\n\tpath /srv/tank\n", f.read())
        d = self.fails("POST", "/storage", {"storage": "t2", "type": "floppy"}, 400,
                       "Parameter verification failed.")
        self.assertEqual(list(d["errors"]), ["type"])
        self.fails("POST", "/storage", {"storage": "tank", "type": "dir", "path": "/x"}, 500,
                   "create storage failed: storage ID 'tank' already defined")


if __name__ == "__main__":
    unittest.main()
