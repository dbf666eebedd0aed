#!/usr/bin/python3
"""A small HTTP server for the px.http tests (plain HTTP; nginx adds TLS).

Usage: http_test_server.py PORTFILE [LIFETIME_S]
Listens on 127.0.0.1 on a free port, writes the port to PORTFILE once it
accepts connections, and exits after LIFETIME_S seconds (default 600) so a
test that dies cannot leave it behind.

Routes: /json, /echo (method, path, headers, body back as JSON),
/status/<code>, /delay/<ms>, /big/<bytes>, /headers (repeated headers),
/redirect (302 to /json), /auth (401 unless "Authorization: Bearer s3cret-token").
"""
import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def send(self, code, body, ctype="text/plain", extra=()):
        data = body if isinstance(body, bytes) else body.encode()
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        for k, v in extra:
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def handle_any(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else b""
        parts = self.path.split("?")[0].strip("/").split("/")
        route = parts[0]
        arg = parts[1] if len(parts) > 1 else ""
        if route == "json":
            self.send(200, json.dumps({"hello": "world"}), "application/json")
        elif route == "echo":
            out = {"method": self.command, "path": self.path,
                   "headers": {k.lower(): v for k, v in self.headers.items()},
                   "body": body.decode("utf-8", "replace")}
            self.send(200, json.dumps(out), "application/json")
        elif route == "status":
            self.send(int(arg), "status " + arg)
        elif route == "delay":
            time.sleep(int(arg) / 1000.0)
            self.send(200, "slept " + arg)
        elif route == "big":
            self.send(200, b"x" * int(arg), "application/octet-stream")
        elif route == "headers":
            self.send(200, "ok", extra=[("X-Multi", "a"), ("X-Multi", "b"),
                                        ("Set-Cookie", "a=1; Path=/"),
                                        ("Set-Cookie", "b=2; Expires=Wed, 21 Oct 2037 07:28:00 GMT")])
        elif route == "redirect":
            self.send(302, "moved", extra=[("Location", "/json")])
        elif route == "auth":
            if self.headers.get("Authorization") == "Bearer s3cret-token":
                self.send(200, "welcome")
            else:
                self.send(401, json.dumps({"message": "Unauthorized"}), "application/json")
        else:
            self.send(404, "no route " + self.path)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = handle_any


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # many clients connect at once in the tests

    def handle_error(self, request, client_address):
        pass  # clients that time out or stop reading are part of the tests


def main():
    portfile = sys.argv[1]
    lifetime = float(sys.argv[2]) if len(sys.argv) > 2 else 600
    server = Server(("127.0.0.1", 0), Handler)
    tmp = portfile + ".tmp"
    with open(tmp, "w") as f:
        f.write(str(server.server_address[1]))
    os.rename(tmp, portfile)
    threading.Timer(lifetime, lambda: os._exit(0)).start()
    server.serve_forever()


if __name__ == "__main__":
    main()
