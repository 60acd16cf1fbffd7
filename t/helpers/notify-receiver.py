#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""A webhook receiver for the notification tests.

Listens on 127.0.0.1 (an ephemeral port, written to --port-file once it is
listening) and records every POST as one JSON line in --log:
{"path": ..., "time": ..., "status": ..., "body": <the parsed JSON body or
the raw text>}. How it answers depends on the first path component:

  /fail-once...  500 to the first request on that exact path, then 200
  /hang...       records the request, then sleeps --hang seconds before
                 answering 200
  /redirect...   302 to /ok (the agent must not follow it)
  anything else  200

Standard library only; one thread per request, so a hanging path does not
hold up the others.
"""

import argparse
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 120

    def log_message(self, fmt, *args):
        pass

    def do_POST(self):
        n = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(n) if n else b""
        try:
            body = json.loads(raw.decode("utf-8"))
        except ValueError:
            body = raw.decode("utf-8", "replace")
        srv = self.server
        with srv.lock:
            seen = srv.seen.get(self.path, 0)
            srv.seen[self.path] = seen + 1
        status = 200
        if self.path.startswith("/fail-once") and seen == 0:
            status = 500
        elif self.path.startswith("/redirect"):
            status = 302
        rec = {"path": self.path, "time": time.time(), "status": status,
               "contentType": self.headers.get("Content-Type"), "body": body}
        with srv.lock:
            with open(srv.log, "a", encoding="utf-8") as f:
                f.write(json.dumps(rec) + "\n")
        if self.path.startswith("/hang"):
            time.sleep(srv.hang)
        out = b"ok\n"
        self.send_response(status)
        if status == 302:
            self.send_header("Location", "/ok-redirected")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--log", required=True)
    ap.add_argument("--hang", type=float, default=30)
    a = ap.parse_args()
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    srv.daemon_threads = True
    srv.lock = threading.Lock()
    srv.seen = {}
    srv.log = a.log
    srv.hang = a.hang
    open(a.log, "a").close()
    with open(a.port_file + ".tmp", "w") as f:
        f.write(str(srv.server_address[1]))
    import os
    os.rename(a.port_file + ".tmp", a.port_file)
    srv.serve_forever()


if __name__ == "__main__":
    main()
