#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# bench/agent.sh [N]: the agent with N managed files (default 10000):
# idle RSS, the first repair after an idle spell (the agent loads the
# applied revision again), drift-repair latency over 1000 edits in a row,
# commit-to-applied after a trigger, idle RSS and idle wakeups per minute.
# "Idle" is 8 s after the last pass or repair: the agent frees the applied
# pass 5 s after its last use. Not part of the test suite.
set -eu
cd "$(dirname "$0")/.."
D=${DRIFTLESS:-$PWD/build/driftless}
n=${1:-10000}
W=$(mktemp -d /tmp/driftless-agent-bench.XXXXXX)
cleanup() { [ -n "${pid:-}" ] && kill "$pid" 2>/dev/null; rm -rf "$W"; }
trap cleanup EXIT
cc -O2 -o "$W/drift-latency" bench/drift-latency.c
bench/gen.sh "$W/repo" "$n" files >/dev/null
git clone -q --bare "$W/repo" "$W/src.git"
mkdir -p "$W/root/srv"
"$D" agent --repo "$W/src.git" --root "$W/root" --state "$W/state" --interval 60s 2>"$W/log" &
pid=$!
for _ in $(seq 1 3000); do grep -q "applied:" "$W/log" 2>/dev/null && break; sleep 0.1; done
sleep 8	# idle: the applied pass is freed; racily-clean stat entries settle
rss() { awk '/^(VmRSS|RssAnon|RssFile):/ {printf "%s%s %s KiB", n++ ? ", " : "", $1, $2}' "/proc/$pid/status"; }
echo "agent with $n managed files (pid $pid)"
echo "idle RSS after the first apply: $(rss)"
cold=""
for i in 1 2 3 4 5; do
	cold="$cold $("$W/drift-latency" repair "$W/root/srv/bench/d0" 1000 1 "$i" | sed -n 's/^p50 \([0-9.]*\) ms.*/\1/p')"
	sleep 8
done
echo "first repair after an idle spell, 5 times (ms):$cold"
echo "RSS after those: $(rss)"
"$W/drift-latency" repair "$W/root/srv/bench/d0" 1000 1000
echo "RSS right after 1000 repairs: $(rss)"
sleep 8
echo "idle RSS after them: $(rss)"
# commit-to-applied: change one file in Git, trigger, time until it lands
sed -i 's/key = 5$/key = 5 changed/' "$W/repo/files/d0/f5.conf"
git -C "$W/repo" commit -qam "one file" && git -C "$W/repo" push -q "$W/src.git" main
"$W/drift-latency" apply "$pid" "$W/root/srv/bench/d0/f5.conf" "$(cat "$W/repo/files/d0/f5.conf")
"
sleep 8
echo "idle RSS after the new revision: $(rss)"
c0=$(awk '/voluntary_ctxt_switches/ && !/non/ {print $2}' "/proc/$pid/status")
sleep 60
c1=$(awk '/voluntary_ctxt_switches/ && !/non/ {print $2}' "/proc/$pid/status")
echo "idle wakeups in 60 s (voluntary context switches, poll interval 60 s): $((c1 - c0))"
echo "idle RSS: $(rss)"
