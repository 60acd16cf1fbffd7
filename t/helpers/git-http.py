#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""A small Git smart-HTTP server for the end-to-end tests.

Serves every repository below --root through git-http-backend (CGI), on
127.0.0.1 only, over plain HTTP or, with --tls CERT KEY, over HTTPS.
Standard library only. It binds an ephemeral port itself and writes the
port number to --port-file once it is listening, so there is no race over
free ports. Each request is logged to --access-log as one line:
"METHOD PATH STATUS BYTES" (the query string is dropped), so tests can
count ref advertisements and pack downloads.

Optional --basic-auth USER:PASSWORD requires that HTTP Basic credential on
every request (401 otherwise); --bearer TOKEN accepts "Authorization:
Bearer TOKEN" as well. --redirect BASE answers every request with a 301 to
BASE followed by the request's path and query (another host, or http://).
The response body of the backend is spooled to a
temporary file, so memory stays flat whatever the pack size.
"""

import argparse
import base64
import hmac
import os
import shutil
import ssl
import subprocess
import sys
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

BACKEND = "/usr/lib/git-core/git-http-backend"
MAX_BODY = 512 * 1024 * 1024
CHUNK = 64 * 1024


class Handler(BaseHTTPRequestHandler):
    server_version = "driftless-test-git-http/1"
    protocol_version = "HTTP/1.1"
    timeout = 60  # per-connection socket timeout: no stuck handler threads

    def log_message(self, fmt, *args):  # quiet: we keep our own log
        pass

    def _access(self, status, size):
        path = urlsplit(self.path).path
        line = "%s %s %d %d\n" % (self.command, path, status, size)
        with self.server.log_lock:
            with open(self.server.access_log, "a", encoding="utf-8") as f:
                f.write(line)

    def _plain(self, status, text, extra=()):
        body = text.encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        for k, v in extra:
            self.send_header(k, v)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        self._access(status, len(body))

    def _authorised(self):
        want_basic = self.server.basic_auth
        want_bearer = self.server.bearer
        if not want_basic and not want_bearer:
            return True
        got = self.headers.get("Authorization", "")
        if want_basic and got.startswith("Basic "):
            try:
                cred = base64.b64decode(got[6:].strip(), validate=True)
            except ValueError:
                return False
            return hmac.compare_digest(cred, want_basic.encode())
        if want_bearer and got.startswith("Bearer "):
            return hmac.compare_digest(got[7:].strip().encode(),
                                       want_bearer.encode())
        return False

    def _read_body(self, out):
        """Copy the request body to the file `out`; return its length."""
        te = self.headers.get("Transfer-Encoding", "").lower()
        total = 0
        if "chunked" in te:
            while True:
                line = self.rfile.readline(1024)
                if not line:
                    raise ValueError("truncated chunked body")
                size = int(line.split(b";", 1)[0].strip(), 16)
                if size == 0:
                    # trailers, up to the empty line
                    while self.rfile.readline(1024) not in (b"\r\n", b"\n",
                                                            b""):
                        pass
                    break
                total += size
                if total > MAX_BODY:
                    raise ValueError("body too large")
                left = size
                while left:
                    data = self.rfile.read(min(left, CHUNK))
                    if not data:
                        raise ValueError("truncated chunk")
                    out.write(data)
                    left -= len(data)
                self.rfile.readline(16)  # CRLF after the chunk
            return total
        left = int(self.headers.get("Content-Length") or 0)
        if left > MAX_BODY:
            raise ValueError("body too large")
        while left:
            data = self.rfile.read(min(left, CHUNK))
            if not data:
                raise ValueError("truncated body")
            out.write(data)
            total += len(data)
            left -= len(data)
        return total

    def _cgi(self):
        if self.server.redirect:
            self.close_connection = True
            self._plain(301, "moved\n",
                        [("Location", self.server.redirect + self.path)])
            return
        if not self._authorised():
            self.close_connection = True
            self._plain(401, "authentication required\n",
                        [("WWW-Authenticate", 'Basic realm="git"')])
            return
        url = urlsplit(self.path)
        with tempfile.TemporaryFile() as body, \
                tempfile.TemporaryFile() as out, \
                tempfile.TemporaryFile() as err:
            try:
                length = self._read_body(body)
            except ValueError as e:
                self.close_connection = True
                self._plain(400, "bad request: %s\n" % e)
                return
            body.seek(0)
            env = {
                "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                "GIT_PROJECT_ROOT": self.server.project_root,
                "GIT_HTTP_EXPORT_ALL": "1",
                "GATEWAY_INTERFACE": "CGI/1.1",
                "SERVER_PROTOCOL": "HTTP/1.1",
                "SERVER_NAME": "127.0.0.1",
                "SERVER_PORT": str(self.server.server_address[1]),
                "REQUEST_METHOD": self.command,
                "PATH_INFO": url.path,
                "QUERY_STRING": url.query,
                "CONTENT_TYPE": self.headers.get("Content-Type", ""),
                "CONTENT_LENGTH": str(length),
                "REMOTE_ADDR": self.client_address[0],
            }
            if self.server.basic_auth:
                env["REMOTE_USER"] = self.server.basic_auth.split(":", 1)[0]
            for key, value in self.headers.items():
                name = key.upper().replace("-", "_")
                if name in ("CONTENT_TYPE", "CONTENT_LENGTH",
                            "AUTHORIZATION", "TRANSFER_ENCODING"):
                    continue
                env["HTTP_" + name] = value
            for key in ("HOME", "GIT_CONFIG_NOSYSTEM", "GIT_CONFIG_GLOBAL",
                        "LC_ALL", "TZ"):
                if key in os.environ:
                    env[key] = os.environ[key]
            try:
                proc = subprocess.run([BACKEND], stdin=body, stdout=out,
                                      stderr=err, env=env, timeout=120,
                                      check=False)
            except subprocess.TimeoutExpired:
                self.close_connection = True
                self._plain(504, "git-http-backend timed out\n")
                return
            err.seek(0)
            errtext = err.read()
            if errtext:
                with self.server.log_lock:
                    with open(self.server.error_log, "ab") as f:
                        f.write(errtext)
            out.seek(0)
            status, reason, headers = 200, "OK", []
            while True:
                line = out.readline(8192)
                if line in (b"\r\n", b"\n", b""):
                    break
                key, _, value = line.decode("latin-1").partition(":")
                key, value = key.strip(), value.strip()
                if key.lower() == "status":
                    code, _, reason = value.partition(" ")
                    status = int(code)
                else:
                    headers.append((key, value))
            if proc.returncode != 0 and status == 200 and not headers:
                self.close_connection = True
                self._plain(500, "git-http-backend failed\n")
                return
            start = out.tell()
            size = out.seek(0, os.SEEK_END) - start
            out.seek(start)
            self.send_response(status, reason or None)
            for key, value in headers:
                if key.lower() in ("content-length", "transfer-encoding",
                                   "connection"):
                    continue
                self.send_header(key, value)
            self.send_header("Content-Length", str(size))
            self.end_headers()
            if self.command != "HEAD":
                shutil.copyfileobj(out, self.wfile, CHUNK)
            self._access(status, size)

    do_GET = _cgi
    do_POST = _cgi
    do_HEAD = _cgi


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", required=True, help="GIT_PROJECT_ROOT")
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--access-log", required=True)
    ap.add_argument("--error-log", default=os.devnull)
    ap.add_argument("--tls", nargs=2, metavar=("CERT", "KEY"))
    ap.add_argument("--basic-auth", metavar="USER:PASSWORD")
    ap.add_argument("--bearer", metavar="TOKEN")
    ap.add_argument("--redirect", metavar="BASE")
    args = ap.parse_args()

    if not os.access(BACKEND, os.X_OK):
        sys.exit("git-http: %s not found (Debian package 'git')" % BACKEND)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    server.project_root = os.path.abspath(args.root)
    server.access_log = args.access_log
    server.error_log = args.error_log
    server.basic_auth = args.basic_auth
    server.bearer = args.bearer
    server.redirect = args.redirect
    server.log_lock = threading.Lock()
    open(args.access_log, "a", encoding="utf-8").close()
    if args.tls:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(args.tls[0], args.tls[1])
        # the handshake happens in the handler thread, on first read, so a
        # silent client cannot stall the accept loop
        server.socket = ctx.wrap_socket(server.socket, server_side=True,
                                        do_handshake_on_connect=False)

    tmp = args.port_file + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write("%d\n" % server.server_address[1])
    os.rename(tmp, args.port_file)
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
