"""`pve-sim serve DIR`: a stand-in for Proxmox VE's REST API (/api2/json)
over HTTPS or HTTP, authenticated by API tokens. Requests become the sim's
own tool calls (see apiroutes); every request is logged to DIR/sim/api.log."""

import json
import os
import signal
import socket
import ssl
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from .apiroutes import REDACT, Api
from .apitasks import ApiError, Runner, Tasks

PREFIX = "/api2/json"
USAGE = ("usage: pve-sim serve DIR [--listen 127.0.0.1] [--port 0] [--cert PEM --key PEM] "
         "--token 'USER@REALM!TOKENID=SECRET' [--token ...]")


def parse_params(query, ctype, body):
    """{name: value or [values]} from the query string and the body
    (form-urlencoded or JSON); repeated keys make a list."""
    out = {}

    def add(k, v):
        if k in out:
            prev = out[k] if isinstance(out[k], list) else [out[k]]
            out[k] = prev + [v]
        else:
            out[k] = v

    for k, v in urllib.parse.parse_qsl(query, keep_blank_values=True):
        add(k, v)
    if body:
        if ctype.split(";")[0].strip().lower() == "application/json":
            try:
                doc = json.loads(body.decode("utf-8"))
            except ValueError as e:
                raise ApiError(400, "malformed JSON request body: %s" % e)
            if not isinstance(doc, dict):
                raise ApiError(400, "malformed JSON request body: not an object")
            for k, v in doc.items():
                for one in v if isinstance(v, list) else [v]:
                    add(k, _scalar(one))
        else:
            for k, v in urllib.parse.parse_qsl(body.decode("utf-8", "replace"),
                                               keep_blank_values=True):
                add(k, v)
    return out


def _scalar(v):
    if isinstance(v, bool):
        return "1" if v else "0"
    if v is None:
        return ""
    return str(v) if not isinstance(v, (dict, list)) else json.dumps(v)


def redact(params):
    return {k: ("**********" if k in REDACT else v) for k, v in params.items()}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "pve-api-daemon/3.0"
    sys_version = ""

    def log_message(self, fmt, *args):
        pass

    def version_string(self):
        return self.server_version

    def _reply(self, status, reason, doc):
        body = json.dumps(doc, sort_keys=True).encode("utf-8")
        self.send_response(status, reason.replace("\r", " ").replace("\n", " ").strip())
        self.send_header("Content-Type", "application/json;charset=UTF-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "max-age=0")
        self.end_headers()
        self.wfile.write(body)

    def _auth(self):
        h = self.headers.get("Authorization")
        if not h:
            raise ApiError(401, "No ticket")
        kind, _, tok = h.partition("=")
        if kind.strip() != "PVEAPIToken" or tok not in self.server.tokens:
            raise ApiError(401, "authentication failure")
        return tok.split("=", 1)[0]

    def _handle(self, method):
        t0 = time.time()
        url = urllib.parse.urlsplit(self.path)
        path = url.path
        params = {}
        try:
            n = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(n) if n > 0 else b""
            if path != PREFIX and not path.startswith(PREFIX + "/"):
                raise ApiError(501, "Method '%s %s' not implemented" % (method, path))
            path = "/" + path[len(PREFIX):].strip("/")
            params = parse_params(url.query if method in ("GET", "DELETE") else "",
                                  self.headers.get("Content-Type", ""),
                                  body if method in ("POST", "PUT") else b"")
            self.user = self._auth()
            self.api_path = path
            self.extra = {}
            doc = {"data": self.server.api.dispatch(self, method, path, params)}
            doc.update(self.extra)
            status, reason = 200, "OK"
        except ApiError as e:
            status, reason = e.status, e.message.split("\n")[0]
            doc = {"data": None}
            if e.status != 401:
                doc["message"] = e.message
            if e.errors is not None:
                doc["errors"] = e.errors
        except Exception as e:  # the sim's own bug: say so, as a 500
            import traceback
            traceback.print_exc(file=sys.stderr)
            status, reason = 500, "pve-sim internal error"
            doc = {"data": None, "message": "pve-sim internal error: %s\n" % e}
        # logged before the answer, so a client that got it finds the line
        self.server.log_request_line({"ts": round(t0, 3), "method": method, "path": path,
                                      "params": redact(params), "status": status,
                                      "ms": round((time.time() - t0) * 1000, 1)})
        self._reply(status, reason, doc)

    def do_GET(self):
        self._handle("GET")

    def do_POST(self):
        self._handle("POST")

    def do_PUT(self):
        self._handle("PUT")

    def do_DELETE(self):
        self._handle("DELETE")


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, addr, api, tokens, sslctx, logpath):
        if ":" in addr[0]:
            self.address_family = socket.AF_INET6
        super().__init__(addr, Handler)
        self.api = api
        self.tokens = tokens
        self.sslctx = sslctx
        self.logpath = logpath
        self.loglock = threading.Lock()

    def get_request(self):
        sock, addr = self.socket.accept()
        if self.sslctx is not None:
            # the handshake runs in the request's thread, not the accept loop
            sock = self.sslctx.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        return sock, addr

    def handle_error(self, request, client_address):
        e = sys.exc_info()[1]
        if isinstance(e, (ssl.SSLError, ConnectionError, socket.timeout)):
            return
        super().handle_error(request, client_address)

    def log_request_line(self, entry):
        line = json.dumps(entry, sort_keys=True) + "\n"
        with self.loglock:
            with open(self.logpath, "a", encoding="utf-8") as f:
                f.write(line)


def parse_args(argv):
    if not argv or argv[0].startswith("-"):
        raise ValueError("serve needs DIR")
    o = {"dir": os.path.abspath(argv[0]), "listen": "127.0.0.1", "port": "0", "cert": None,
         "key": None, "token": []}
    i = 1
    while i < len(argv):
        a = argv[i]
        k = a[2:] if a.startswith("--") else None
        if k not in o or k == "dir" or i + 1 >= len(argv):
            raise ValueError("bad argument '%s'" % a)
        if k == "token":
            tok = argv[i + 1]
            user, eq, secret = tok.partition("=")
            if not eq or not secret or "!" not in user or "@" not in user.split("!")[0]:
                raise ValueError("--token wants USER@REALM!TOKENID=SECRET, got '%s...'"
                                 % tok.split("=")[0])
            o["token"].append(tok)
        else:
            o[k] = argv[i + 1]
        i += 2
    if not o["token"]:
        raise ValueError("at least one --token is needed")
    if (o["cert"] is None) != (o["key"] is None):
        raise ValueError("--cert and --key go together")
    if not o["port"].isdigit() or int(o["port"]) > 65535:
        raise ValueError("bad --port '%s'" % o["port"])
    if not os.path.exists(os.path.join(o["dir"], "sim", "sim.json")):
        raise ValueError("%s is not a pve-sim node (run pve-sim init first)" % o["dir"])
    return o


def serve(argv):
    try:
        o = parse_args(argv)
    except ValueError as e:
        sys.stderr.write("pve-sim: %s\n%s\n" % (e, USAGE))
        return 2
    sslctx = None
    if o["cert"]:
        sslctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        sslctx.load_cert_chain(o["cert"], o["key"])
    base = o["dir"]
    runner = Runner(base)
    tasks = Tasks(runner)
    api = Api(base, runner, tasks)
    srv = Server((o["listen"], int(o["port"])), api, set(o["token"]), sslctx,
                 os.path.join(base, "sim", "api.log"))
    port = srv.server_address[1]
    with open(os.path.join(base, "sim", "api.port"), "w") as f:
        f.write("%d\n" % port)
    host = o["listen"] if ":" not in o["listen"] else "[%s]" % o["listen"]
    sys.stdout.write("listening on %s://%s:%d\n" % ("https" if sslctx else "http", host, port))
    sys.stdout.flush()
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    th = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True)
    th.start()
    while not stop.wait(3600):
        pass
    srv.shutdown()
    srv.server_close()
    tasks.wait_all(10)
    return 0
