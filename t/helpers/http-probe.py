#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Raw-socket HTTP experiments for the agent's HTTP tests.

  early PORT PATH [HEADER...]
      Send a POST whose headers announce a 1 GiB body, send no body, and
      wait (5 s at most) for the answer. Prints "STATUS MS". Exit 0 when an
      answer came before any body byte was sent.
  slow PORT IDLE TOTAL
      Open one connection that sends half a request and then nothing, and
      one that trickles a byte every 0.3 s. Meanwhile GET /healthz must
      answer within 1 s. The idle one must be closed within IDLE+2 s, the
      trickling one within TOTAL+2 s. Prints what happened.
  flood PORT SECRET N [PARALLEL]
      N GitHub-signed deliveries to /hooks/github, each with its own
      delivery id, from PARALLEL threads (default 25). Prints
      "STATUS COUNT" lines and the time taken.
  hang-server PORTFILE
      Accept TCP connections and never answer (a source that hangs).
"""

import hashlib
import hmac
import http.client
import os
import socket
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor


def early(port, path, headers):
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    req = "POST %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nContent-Length: 1073741824\r\n" % (path, port)
    for h in headers:
        req += h + "\r\n"
    s.sendall((req + "\r\n").encode())
    t0 = time.time()
    try:
        data = s.recv(4096)
    except socket.timeout:
        print("no answer within 5 s")
        return 1
    ms = (time.time() - t0) * 1000
    if not data:
        print("closed without an answer")
        return 1
    status = data.split(b" ", 2)[1].decode()
    print("%s %.0f" % (status, ms))
    return 0


def slow(port, idle, total):
    a = socket.create_connection(("127.0.0.1", port))
    a.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n")
    b = socket.create_connection(("127.0.0.1", port))
    b.sendall(b"GET /")
    t0 = time.time()
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    c.request("GET", "/healthz")
    r = c.getresponse()
    r.read()
    took = time.time() - t0
    print("healthz: %d in %.3f s while two slow clients are connected" % (r.status, took))
    ok = r.status == 200 and took < 1
    closed = {}
    a.setblocking(False)
    b.setblocking(False)
    while time.time() - t0 < total + 3 and len(closed) < 2:
        if "trickle" not in closed:
            try:
                b.send(b"x")
            except OSError:
                closed["trickle"] = time.time() - t0
        for s, name in ((a, "idle"), (b, "trickle")):
            if name in closed:
                continue
            try:
                if s.recv(4096) == b"":
                    closed[name] = time.time() - t0
            except BlockingIOError:
                pass
            except OSError:
                closed[name] = time.time() - t0
        time.sleep(0.3)
    for name, limit in (("idle", idle + 2), ("trickle", total + 2)):
        when = closed.get(name)
        print("%s connection: %s" % (name, "closed after %.1f s" % when if when else "still open"))
        ok = ok and when is not None and when <= limit
    return 0 if ok else 1


def flood(port, secret, n, parallel):
    body = b'{"ref":"refs/heads/main","after":"0000000000000000000000000000000000000000"}'
    sig = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    tag = "%d-%d" % (os.getpid(), int(time.time() * 1000))

    def one(i):
        try:
            return one_(i)
        except OSError as e:
            return "refused (%s)" % e.__class__.__name__

    def one_(i):
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        c.request("POST", "/hooks/github", body=body, headers={
            "Content-Type": "application/json", "X-Hub-Signature-256": sig,
            "X-GitHub-Event": "push", "X-GitHub-Delivery": "flood-%s-%d" % (tag, i)})
        r = c.getresponse()
        r.read()
        c.close()
        return r.status

    t0 = time.time()
    with ThreadPoolExecutor(parallel) as ex:
        statuses = list(ex.map(one, range(n)))
    counts = {}
    for s in statuses:
        counts[s] = counts.get(s, 0) + 1
    for s in sorted(counts, key=str):
        print("%s %d" % (s, counts[s]))
    print("took %.3f s" % (time.time() - t0))
    return 0


def hang_server(portfile):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", 0))
    s.listen(16)
    with open(portfile + ".tmp", "w") as f:
        f.write(str(s.getsockname()[1]))
    os.rename(portfile + ".tmp", portfile)
    held = []
    while True:
        c, _ = s.accept()
        held.append(c)


def main(argv):
    cmd = argv[1]
    if cmd == "early":
        return early(int(argv[2]), argv[3], argv[4:])
    if cmd == "slow":
        return slow(int(argv[2]), float(argv[3]), float(argv[4]))
    if cmd == "flood":
        return flood(int(argv[2]), argv[3], int(argv[4]), int(argv[5]) if len(argv) > 5 else 25)
    if cmd == "hang-server":
        return hang_server(argv[2])
    print(__doc__)
    return 64


if __name__ == "__main__":
    sys.exit(main(sys.argv))
