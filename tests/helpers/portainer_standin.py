#!/usr/bin/python3
"""A Portainer CE stand-in for the phoenix tests (plain HTTP; nginx adds TLS).

Usage: portainer_standin.py PORTFILE [--version 2.21.4] [--admin USER:PASS]
                            [--api-key KEY] [--lifetime SECONDS]

Serves the routes phoenix uses, with the shapes of the Portainer sources
(routes and payloads from the swag annotations of 2.18.4 / 2.19.0 / 2.21.4,
objects as in a real database export), from in-memory state:

  GET  /api/status                       {"Version", "InstanceID"} (no auth)
  GET  /api/users/admin/check            204 | 404 (no auth)
  POST /api/users/admin/init             {"Username","Password"} -> user | 409
  POST /api/auth                         {"Username","Password"} -> {"jwt"} | 422
  GET  /api/endpoints[?name=&types[]=]   array, X-Total-Count header
  POST /api/endpoints                    multipart/form-data (Name, EndpointCreationType, URL, TLS...)
  PUT  /api/endpoints/{id}               {"URL"} (endpointUpdatePayload)
  GET  /api/stacks[?filters={"EndpointID":N}]
  GET  /api/stacks/{id}, /api/stacks/{id}/file
  POST /api/stacks/create/standalone/{repository,string}?endpointId=N   (2.19.0 and later)
  POST /api/stacks?type=2&method={repository,string}&endpointId=N      (not in 2.19.0)
  PUT  /api/stacks/{id}?endpointId=N                 update from file content
  PUT  /api/stacks/{id}/git/redeploy?endpointId=N    pull the ref again and redeploy
  DELETE /api/stacks/{id}?endpointId=N

Authenticated routes take "Authorization: Bearer <jwt>" or "X-API-Key".
Errors are {"message", "details"} as Portainer's httperror writes them; an
unknown route is Go's plain "404 page not found".

Test control (not counted, not authenticated), on the same port:
  GET  /__standin/stats       {"requests": ["GET /api/stacks", ...]}
  POST /__standin/reset       clears the request log
  POST /__standin/configure   {"version", "admin": "USER:PASS" | null, "api_keys": [...]}: a new instance
  POST /__standin/faults      [{"method","path","status","times","delay_ms","close"}]
  POST /__standin/stacks      seed stack objects (e.g. one phoenix did not create)
  GET  /__standin/state       {"endpoints": [...], "stacks": [...]}
"""
import argparse
import base64
import hashlib
import hmac
import json
import os
import re
import subprocess
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

LOCK = threading.Lock()
STATE = {
    "version": "2.21.4",
    "instance": str(uuid.uuid4()),
    "users": [],          # {"Id", "Username", "Password"}
    "api_keys": set(),
    "jwt_secret": os.urandom(16),
    "endpoints": [],
    "stacks": [],
    "next_endpoint": 1,
    "next_stack": 1,
    "requests": [],
    "faults": [],
}


def version_tuple():
    return tuple(int(x) for x in re.findall(r"\d+", STATE["version"])[:3])


def make_jwt(user):
    def b64(obj):
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()
    head = b64({"alg": "HS256", "typ": "JWT"})
    body = b64({"id": user["Id"], "username": user["Username"], "role": 1, "exp": int(time.time()) + 28800})
    sig = hmac.new(STATE["jwt_secret"], (head + "." + body).encode(), hashlib.sha256).digest()
    return head + "." + body + "." + base64.urlsafe_b64encode(sig).rstrip(b"=").decode()


def valid_jwt(token):
    parts = token.split(".")
    if len(parts) != 3:
        return False
    sig = hmac.new(STATE["jwt_secret"], (parts[0] + "." + parts[1]).encode(), hashlib.sha256).digest()
    return hmac.compare_digest(base64.urlsafe_b64encode(sig).rstrip(b"=").decode(), parts[2])


def endpoint_object(eid, name, etype, url, group):
    # Field set of portainer.Endpoint as in the database export.
    return {
        "Id": eid, "Name": name, "Type": etype, "URL": url, "PublicURL": "", "GroupId": group,
        "Status": 1, "TLSConfig": {"TLS": etype == 2, "TLSSkipVerify": etype == 2},
        "Agent": {"Version": "2.21.4" if etype == 2 else ""}, "AuthorizedTeams": None, "AuthorizedUsers": None,
        "ContainerEngine": "docker", "EdgeCheckinInterval": 0, "EdgeKey": "", "Gpus": [], "Heartbeat": False,
        "Kubernetes": {"Configuration": {}, "Snapshots": []}, "LastCheckInDate": 0, "QueryDate": 0,
        "Snapshots": [], "TagIds": [], "Tags": None, "TeamAccessPolicies": {}, "UserAccessPolicies": {},
        "AzureCredentials": {"ApplicationID": "", "AuthenticationKey": "", "TenantID": ""},
        "ComposeSyntaxMaxVersion": "", "PostInitMigrations": {"MigrateGPUs": True, "MigrateIngresses": True},
        "Edge": {"AsyncMode": False, "CommandInterval": 0, "PingInterval": 0, "SnapshotInterval": 0},
        "SecuritySettings": {"allowBindMountsForRegularUsers": True, "allowStackManagementForRegularUsers": True},
    }


def stack_object(sid, name, endpoint, env, git=None, entry="docker-compose.yml"):
    s = {
        "Id": sid, "Name": name, "Type": 2, "EndpointId": endpoint, "SwarmId": "", "EntryPoint": entry,
        "Env": env, "ResourceControl": None, "Status": 1, "ProjectPath": "/data/compose/%d" % sid,
        "CreationDate": int(time.time()), "CreatedBy": "admin", "UpdateDate": 0, "UpdatedBy": "",
        "AdditionalFiles": None, "AutoUpdate": None, "Option": None, "GitConfig": git,
        "FromAppTemplate": False, "Namespace": "",
    }
    if version_tuple() >= (2, 19, 0):
        # Fields later versions added to portainer.Stack.
        s.update({"IsComposeFormat": False, "StackFileVersion": 1, "PreviousDeploymentInfo": None,
                  "SupportRelativePath": False, "FilesystemPath": "", "Webhook": ""})
    return s


def git_head(url, ref):
    """The commit a clone of url at ref would check out (what Portainer stores as ConfigHash)."""
    names = [ref] if ref.startswith("refs/") else ["refs/tags/" + ref, "refs/heads/" + ref, ref]
    try:
        out = subprocess.run(["git", "ls-remote", url] + names, capture_output=True, text=True, timeout=30,
                             env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "GIT_CONFIG_NOSYSTEM": "1",
                                  "HOME": "/nonexistent"})
    except subprocess.TimeoutExpired:
        return None, "git ls-remote timed out"
    if out.returncode != 0:
        return None, out.stderr.strip()
    found = {}
    for line in out.stdout.splitlines():
        sha, name = line.split("\t", 1)
        found[name] = sha
    for n in names:
        if n + "^{}" in found:
            return found[n + "^{}"], None
        if n in found:
            return found[n], None
    return None, "reference not found: " + ref


def parse_multipart(ctype, body):
    m = re.search(r'boundary="?([^";]+)"?', ctype or "")
    if not m:
        return None
    boundary = b"--" + m.group(1).encode()
    fields = {}
    for part in body.split(boundary)[1:]:
        if part.startswith(b"--"):
            break
        head, _, value = part.lstrip(b"\r\n").partition(b"\r\n\r\n")
        nm = re.search(rb'name="([^"]*)"', head)
        if nm:
            fields[nm.group(1).decode()] = value[:-2].decode() if value.endswith(b"\r\n") else value.decode()
    return fields


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def send(self, code, obj=None, raw=None, headers=()):
        if raw is not None:
            data, ctype = raw.encode(), "text/plain; charset=utf-8"
        elif obj is not None:
            data, ctype = json.dumps(obj).encode(), "application/json"
        else:
            data, ctype = b"", None
        self.send_response(code)
        if ctype:
            self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def error(self, code, message, details):
        self.send(code, {"message": message, "details": details})

    def json_body(self):
        try:
            return json.loads(self.body or b"null")
        except ValueError:
            return None

    def authenticated(self):
        key = self.headers.get("X-API-Key")
        if key is not None:
            return key in STATE["api_keys"]
        auth = self.headers.get("Authorization") or ""
        return auth.startswith("Bearer ") and valid_jwt(auth[7:])

    def handle_any(self):
        n = int(self.headers.get("Content-Length") or 0)
        self.body = self.rfile.read(n) if n else b""
        parts = urlsplit(self.path)
        self.query = parse_qs(parts.query)
        path = parts.path
        if path.startswith("/__standin/"):
            return self.control(path[len("/__standin/"):])
        with LOCK:
            STATE["requests"].append(self.command + " " + self.path)
            fault = None
            for f in STATE["faults"]:
                if f.get("times", 1) > 0 and f.get("method", self.command) == self.command \
                        and path.startswith(f["path"]):
                    f["times"] = f.get("times", 1) - 1
                    fault = f
                    break
        if fault:
            if fault.get("delay_ms"):
                time.sleep(fault["delay_ms"] / 1000.0)
            if fault.get("close"):
                self.close_connection = True
                return
            if fault.get("status"):
                return self.error(fault["status"], fault.get("message", "Injected failure"),
                                  fault.get("details", "injected by the test"))
        with LOCK:
            return self.route(path)

    def control(self, what):
        with LOCK:
            if what == "stats":
                return self.send(200, {"requests": STATE["requests"]})
            if what == "reset":
                STATE["requests"] = []
                STATE["faults"] = []
                return self.send(204)
            if what == "configure":
                configure(self.json_body() or {})
                return self.send(204)
            if what == "faults":
                STATE["faults"] = self.json_body() or []
                return self.send(204)
            if what == "stacks":
                for s in self.json_body() or []:
                    sid = STATE["next_stack"]
                    STATE["next_stack"] += 1
                    STATE["stacks"].append(stack_object(sid, s["Name"], s["EndpointId"], s.get("Env", []),
                                                        s.get("GitConfig")))
                    STATE["stacks"][-1]["_file"] = s.get("StackFileContent", "")
                return self.send(204)
            if what == "state":
                return self.send(200, {"endpoints": STATE["endpoints"], "version": STATE["version"],
                                       "stacks": STATE["stacks"], "users": [u["Username"] for u in STATE["users"]]})
        return self.send(404, raw="404 page not found")

    # -- routes --------------------------------------------------------
    def route(self, path):
        m, cmd = None, self.command
        if path == "/api/status" and cmd == "GET":
            return self.send(200, {"Version": STATE["version"], "InstanceID": STATE["instance"]})
        if path == "/api/users/admin/check" and cmd == "GET":
            if STATE["users"]:
                return self.send(204)
            return self.error(404, "Administrator not initialized", "object not found inside the database")
        if path == "/api/users/admin/init" and cmd == "POST":
            return self.admin_init()
        if path == "/api/auth" and cmd == "POST":
            return self.auth()
        if not path.startswith("/api/"):
            return self.send(404, raw="404 page not found")
        if not self.authenticated():
            return self.error(401, "A valid authorisation token is missing", "Unauthorized")
        if path == "/api/endpoints" and cmd == "GET":
            return self.endpoint_list()
        if path == "/api/endpoints" and cmd == "POST":
            return self.endpoint_create()
        m = re.fullmatch(r"/api/endpoints/(\d+)", path)
        if m and cmd == "PUT":
            e = next((e for e in STATE["endpoints"] if e["Id"] == int(m.group(1))), None)
            if e is None:
                return self.error(404, "Unable to find an environment with the specified identifier inside the database",
                                  "object not found inside the database")
            p = self.json_body() or {}
            if p.get("URL"):
                e["URL"] = p["URL"] if p["URL"].startswith("tcp://") or e["Type"] != 2 else "tcp://" + p["URL"]
            return self.send(200, e)
        if path == "/api/stacks" and cmd == "GET":
            return self.stack_list()
        if path == "/api/stacks" and cmd == "POST" and version_tuple()[:3] != (2, 19, 0):
            # The deprecated route: removed in 2.19.0, restored as an alias in 2.19.1.
            method = (self.query.get("method") or [""])[0]
            if (self.query.get("type") or [""])[0] != "2" or method not in ("repository", "string"):
                return self.error(400, "Invalid query parameter: type/method", "only compose repository/string")
            return self.stack_create(method)
        m = re.fullmatch(r"/api/stacks/create/standalone/(repository|string)", path)
        if m and cmd == "POST" and version_tuple() >= (2, 19, 0):
            return self.stack_create(m.group(1))
        m = re.fullmatch(r"/api/stacks/(\d+)(/file|/git/redeploy)?", path)
        if m:
            stack = next((s for s in STATE["stacks"] if s["Id"] == int(m.group(1))), None)
            if stack is None:
                return self.error(404, "Unable to find a stack with the specified identifier inside the database",
                                  "object not found inside the database")
            sub = m.group(2)
            if sub is None and cmd == "GET":
                return self.send(200, public(stack))
            if sub == "/file" and cmd == "GET":
                return self.send(200, {"StackFileContent": stack["_file"]})
            if sub is None and cmd == "PUT":
                return self.stack_update(stack)
            if sub == "/git/redeploy" and cmd == "PUT":
                return self.stack_redeploy(stack)
            if sub is None and cmd == "DELETE":
                STATE["stacks"].remove(stack)
                return self.send(204)
        return self.send(404, raw="404 page not found")

    def admin_init(self):
        p = self.json_body() or {}
        if STATE["users"]:
            return self.error(409, "Unable to create administrator user", "An administrator user already exists")
        if not p.get("Username") or len(p.get("Password") or "") < 12:
            return self.error(400, "Invalid request payload",
                              "Password does not meet the requirements (at least 12 characters)")
        user = {"Id": 1, "Username": p["Username"], "Password": p["Password"]}
        STATE["users"].append(user)
        return self.send(200, {"Id": 1, "Username": user["Username"], "Role": 1})

    def auth(self):
        p = self.json_body() or {}
        for u in STATE["users"]:
            if u["Username"] == p.get("Username") and u["Password"] == p.get("Password"):
                return self.send(200, {"jwt": make_jwt(u)})
        return self.error(422, "Invalid credentials", "Unauthorized")

    def endpoint_list(self):
        out = list(STATE["endpoints"])
        name = (self.query.get("name") or [None])[0]
        if name is not None:
            out = [e for e in out if e["Name"] == name]
        types = self.query.get("types[]")
        if types:
            out = [e for e in out if str(e["Type"]) in types]
        return self.send(200, out, headers=[("X-Total-Count", str(len(out)))])

    def endpoint_create(self):
        f = parse_multipart(self.headers.get("Content-Type"), self.body)
        if f is None:
            return self.error(400, "Invalid request payload", "request is not multipart/form-data")
        name = f.get("Name", "")
        if not name:
            return self.error(400, "Invalid request payload", "Invalid environment name")
        try:
            etype = int(f.get("EndpointCreationType", ""))
        except ValueError:
            return self.error(400, "Invalid request payload", "Invalid environment type value")
        if etype == 2 and (f.get("TLS") != "true" or f.get("TLSSkipVerify") != "true"):
            return self.error(400, "Invalid request payload", "TLS and TLSSkipVerify must be true for an agent")
        if any(e["Name"] == name for e in STATE["endpoints"]):
            return self.error(409, "Name is not unique", "Name is not unique")
        url = f.get("URL", "")
        if etype == 2 and not url.startswith("tcp://"):
            url = "tcp://" + url
        eid = STATE["next_endpoint"]
        STATE["next_endpoint"] += 1
        e = endpoint_object(eid, name, etype, url, int(f.get("GroupID") or 1))
        STATE["endpoints"].append(e)
        return self.send(200, e)

    def stack_list(self):
        out = [public(s) for s in STATE["stacks"]]
        raw = (self.query.get("filters") or [None])[0]
        if raw:
            try:
                flt = json.loads(raw)
            except ValueError:
                return self.error(400, "Invalid query parameter: filters", "invalid character")
            if "EndpointID" in flt:
                out = [s for s in out if s["EndpointId"] == int(flt["EndpointID"])]
        return self.send(200, out)

    def endpoint_param(self):
        try:
            eid = int((self.query.get("endpointId") or [""])[0])
        except ValueError:
            return None
        return next((e for e in STATE["endpoints"] if e["Id"] == eid), None)

    def stack_create(self, method):
        ep = self.endpoint_param()
        if ep is None:
            return self.error(400, "Invalid query parameter: endpointId", "Missing query parameter")
        p = self.json_body()
        if not isinstance(p, dict) or not p.get("Name"):
            return self.error(400, "Invalid request payload", "Invalid stack name")
        name = p["Name"]
        if not re.fullmatch(r"[a-z0-9][a-z0-9_-]*", name):
            return self.error(400, "Invalid request payload", "Invalid stack name")
        if any(s["Name"] == name and s["EndpointId"] == ep["Id"] for s in STATE["stacks"]):
            return self.error(409, "A stack with the normalized name '%s' already exists" % name,
                              "A stack with this name already exists")
        env = p.get("Env") or []
        sid = STATE["next_stack"]
        if method == "repository":
            if "ComposeFilePathInRepository" in p:
                return self.error(400, "Invalid request payload", "unknown field ComposeFilePathInRepository")
            url, ref = p.get("RepositoryURL"), p.get("RepositoryReferenceName") or "refs/heads/main"
            if not url:
                return self.error(400, "Invalid request payload", "Invalid repository URL. Must correspond to a valid URL format")
            sha, err = git_head(url, ref)
            if sha is None:
                return self.error(500, "Unable to clone git repository", err)
            git = {"URL": url, "ReferenceName": ref, "ConfigFilePath": p.get("ComposeFile") or "docker-compose.yml",
                   "Authentication": None, "ConfigHash": sha, "TLSSkipVerify": bool(p.get("TLSSkipVerify"))}
            s = stack_object(sid, name, ep["Id"], env, git, git["ConfigFilePath"])
            s["_file"] = ""
        else:
            if not p.get("StackFileContent"):
                return self.error(400, "Invalid request payload", "Invalid stack file content")
            s = stack_object(sid, name, ep["Id"], env)
            s["_file"] = p["StackFileContent"]
        STATE["next_stack"] += 1
        STATE["stacks"].append(s)
        return self.send(200, public(s))

    def stack_update(self, stack):
        ep = self.endpoint_param()
        if ep is None and version_tuple() >= (2, 19, 0):
            return self.error(400, "Invalid query parameter: endpointId", "Missing query parameter")
        if stack["GitConfig"] is not None:
            return self.error(400, "Invalid request payload", "use the git redeploy route for a git stack")
        p = self.json_body() or {}
        if not p.get("StackFileContent"):
            return self.error(400, "Invalid request payload", "Invalid stack file content")
        stack["_file"] = p["StackFileContent"]
        stack["Env"] = p.get("Env") or []
        stack["UpdateDate"] = int(time.time())
        return self.send(200, public(stack))

    def stack_redeploy(self, stack):
        if stack["GitConfig"] is None:
            return self.error(400, "Invalid request payload", "the stack is not a git stack")
        p = self.json_body() or {}
        ref = p.get("RepositoryReferenceName") or stack["GitConfig"]["ReferenceName"]
        sha, err = git_head(stack["GitConfig"]["URL"], ref)
        if sha is None:
            return self.error(500, "Unable to clone git repository", err)
        stack["GitConfig"]["ReferenceName"] = ref
        stack["GitConfig"]["ConfigHash"] = sha
        stack["Env"] = p.get("Env") or []
        stack["UpdateDate"] = int(time.time())
        return self.send(200, public(stack))

    do_GET = do_POST = do_PUT = do_DELETE = handle_any


def configure(c):
    """Start over as a new instance (state wiped, request log kept)."""
    STATE.update({"version": c.get("version") or "2.21.4", "instance": str(uuid.uuid4()), "users": [],
                  "api_keys": set(c.get("api_keys") or []), "endpoints": [], "stacks": [],
                  "next_endpoint": 1, "next_stack": 1, "faults": []})
    if c.get("admin"):
        user, _, pw = c["admin"].partition(":")
        STATE["users"].append({"Id": 1, "Username": user, "Password": pw})


def public(stack):
    return {k: v for k, v in stack.items() if not k.startswith("_")}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("portfile")
    ap.add_argument("--version", default="2.21.4")
    ap.add_argument("--admin", help="USER:PASS of an admin that already exists")
    ap.add_argument("--api-key", action="append", default=[])
    ap.add_argument("--lifetime", type=float, default=600)
    a = ap.parse_args()
    configure({"version": a.version, "admin": a.admin, "api_keys": a.api_key})
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    srv.daemon_threads = True
    with open(a.portfile + ".tmp", "w") as f:
        f.write(str(srv.server_address[1]))
    os.rename(a.portfile + ".tmp", a.portfile)
    threading.Timer(a.lifetime, lambda: os._exit(0)).start()
    srv.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
