#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Check a /metrics answer: Prometheus text format 0.0.4, driftless_ names.

usage: check-metrics.py FILE REVISION

Every sample line must parse and every metric must have a # TYPE; the
reconcile duration histogram must have cumulative _bucket lines ending in
le="+Inf", and _sum and _count; the revision info metric must carry
REVISION. Prints one "name{labels} value" per sample on success, so the
test can grep values.
"""

import re
import sys

NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
LABEL = r'[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*"'
SAMPLE = re.compile(r"^(%s)(\{(%s(?:,%s)*)\})? (-?[0-9.]+(?:e[+-]?[0-9]+)?|\+Inf|-Inf|NaN)$"
                    % (NAME, LABEL, LABEL))
REQUIRED = {
    "driftless_build_info": "gauge",
    "driftless_revision_info": "gauge",
    "driftless_reconcile_duration_seconds": "histogram",
    "driftless_passes_total": "counter",
    "driftless_drift_events_total": "counter",
    "driftless_resources": "gauge",
    "driftless_last_successful_fetch_timestamp_seconds": "gauge",
    "driftless_last_successful_sync_timestamp_seconds": "gauge",
}


def fail(msg):
    print("error: " + msg)
    sys.exit(1)


def main():
    text = open(sys.argv[1], encoding="utf-8").read()
    rev = sys.argv[2]
    if not text.endswith("\n"):
        fail("the exposition does not end with a newline")
    types = {}
    samples = []
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, typ = line.split(" ", 3)
            if name in types:
                fail("two TYPE lines for " + name)
            types[name] = typ
            continue
        if line.startswith("# HELP ") or not line:
            continue
        if line.startswith("#"):
            fail("stray comment: " + line)
        m = SAMPLE.match(line)
        if not m:
            fail("unparsable sample: " + line)
        name = m.group(1)
        if not name.startswith("driftless_"):
            fail("name without the driftless_ prefix: " + name)
        base = re.sub(r"_(bucket|sum|count)$", "", name)
        if name not in types and base not in types:
            fail("no TYPE for " + name)
        samples.append((name, m.group(3) or "", m.group(4)))
    for name, typ in REQUIRED.items():
        if types.get(name) != typ:
            fail("%s: TYPE %s, expected %s" % (name, types.get(name), typ))
    h = "driftless_reconcile_duration_seconds"
    for t in ("pass", "drift"):
        buckets = [(l, float(v)) for n, l, v in samples if n == h + "_bucket" and 'type="%s"' % t in l]
        if not buckets or 'le="+Inf"' not in buckets[-1][0]:
            fail("histogram %s has no +Inf bucket" % t)
        vals = [v for _, v in buckets]
        if vals != sorted(vals):
            fail("histogram buckets are not cumulative: %r" % vals)
        count = [float(v) for n, l, v in samples if n == h + "_count" and 'type="%s"' % t in l]
        if not count or count[0] != vals[-1]:
            fail("_count differs from the +Inf bucket")
        if not [1 for n, l, v in samples if n == h + "_sum" and 'type="%s"' % t in l]:
            fail("no _sum")
    info = [(l, v) for n, l, v in samples if n == "driftless_revision_info"]
    if info != [('revision="%s"' % rev, "1")]:
        fail("revision info is %r, expected %s" % (info, rev))
    for n, l, v in samples:
        print("%s%s %s" % (n, "{%s}" % l if l else "", v))


main()
