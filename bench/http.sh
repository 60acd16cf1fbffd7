#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# bench/http.sh [N]: the agent's HTTP surface with N managed files (default
# 10000), the agent fetching from a `git daemon` on loopback, polling every
# hour (so fetches come from the webhook), a GitHub webhook receiver:
#   (a) webhook-to-applied: push a one-file change, POST a signed delivery,
#       time until the managed file holds the new content (polled every
#       1 ms), over ROUNDS commits (default 20); the same with SIGUSR1 for
#       reference;
#   (b) wrk on /healthz, /metrics and /api/v1/status (-t2 -c8 -dWRK_S s,
#       default 10), idle and while passes run (a loop of commits + SIGUSR1),
#       and single requests with curl (median of 50) for the same-run ratio;
#   (c) RSS of the agent before, during and after FLOOD_ROUNDS (default 2)
#       floods of FLOOD_S s (default 15) of validly signed deliveries with
#       distinct X-GitHub-Delivery ids (wrk with a Lua script), and the
#       fetches they caused.
# Uses wrk (Debian package wrk), curl, openssl, git daemon and python3;
# prints markdown for bench/RESULTS.md. Not part of the test suite.
set -eu
cd "$(dirname "$0")/.."
D=${DRIFTLESS:-$PWD/build/driftless}
n=${1:-10000}
ROUNDS=${ROUNDS:-20} WRK_S=${WRK_S:-10} FLOOD_S=${FLOOD_S:-15} FLOOD_ROUNDS=${FLOOD_ROUNDS:-2}
for t in wrk curl openssl python3; do
	command -v "$t" >/dev/null || { echo "bench: needs $t (apt-get install $t)" >&2; exit 1; }
done
GIT_DAEMON=$(git --exec-path)/git-daemon
[ -x "$GIT_DAEMON" ] || { echo "bench: needs git daemon (apt-get install git)" >&2; exit 1; }
[ -x "$D" ] || { echo "bench: no driftless binary at $D (set DRIFTLESS)" >&2; exit 1; }
W=$(mktemp -d /tmp/driftless-http-bench.XXXXXX)
pids=()
cleanup() {
	touch "$W/stop"
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do timeout 10 tail --pid="$p" -f /dev/null 2>/dev/null || true; done
	rm -rf "$W"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
# wait_until SECONDS CMD...: poll CMD every 0.1 s; fail after SECONDS
wait_until() {
	local limit=$(($1 * 10)) i=0
	shift
	until "$@" >/dev/null 2>&1; do
		i=$((i + 1))
		[ $i -le $limit ] || { echo "bench: timed out waiting for: $*" >&2; return 1; }
		sleep 0.1
	done
}
say() { echo "$*" >&2; }

# --- the repository, the Git server, the agent
say "generating $n files..."
bench/gen.sh "$W/repo" "$n" files >/dev/null
mkdir -p "$W/git" "$W/root/srv"
git clone -q --bare "$W/repo" "$W/git/src.git"
git -C "$W/repo" remote add origin "$W/git/src.git"
GPORT=$(port)
"$GIT_DAEMON" --reuseaddr --export-all --verbose --base-path="$W/git" --listen=127.0.0.1 \
	--port="$GPORT" >"$W/git-daemon.log" 2>&1 &
pids+=($!)
wait_until 10 port_open "$GPORT"
fetches_seen() { grep -c "Request upload-pack for '/src.git'" "$W/git-daemon.log" || true; }

head -c 24 /dev/urandom | base64 >"$W/secret"
chmod 600 "$W/secret"
printf 'webhook: {provider: github, secretFile: %s}\n' "$W/secret" >"$W/agent.yaml"
PORT=$(port)
URL=http://127.0.0.1:$PORT
say "starting the agent (first apply of $n files)..."
"$D" agent -c "$W/agent.yaml" --repo "git://127.0.0.1:$GPORT/src.git" --root "$W/root" \
	--state "$W/state" --interval 1h --listen "127.0.0.1:$PORT" 2>"$W/agent.log" &
apid=$!
pids+=("$apid")
ready() { [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$URL/readyz")" = 200 ]; }
wait_until 300 ready
sleep 3	# let the racily-clean stat entries settle
rss() { awk '/^VmRSS/ {print $2}' "/proc/$apid/status"; }
hwm() { awk '/^VmHWM/ {print $2}' "/proc/$apid/status"; }
metric() {	# the sum of a metric's samples whose line contains $2
	curl -s --max-time 10 "$URL/metrics" |
		awk -v m="$1" -v l="${2:-}" 'index($0, m) == 1 && index($0, l) { s += $NF } END { printf "%.6f", s }'
}
int() { printf '%.0f' "$1"; }

# a GitHub push payload of a realistic size (~7 KiB), signed with openssl
python3 - "$W/body.json" <<'PY'
import json, sys
commits = [{"id": "%040x" % (i * 7919), "message": "change %d" % i, "author": {"name": "bench", "email": "bench@driftless.invalid"},
            "added": [], "removed": [], "modified": ["files/d0/f%d.conf" % i] * 4} for i in range(20)]
json.dump({"ref": "refs/heads/main", "before": "0" * 40, "after": "1" * 40,
           "repository": {"full_name": "bench/infra", "clone_url": "https://example.invalid/bench/infra.git"},
           "pusher": {"name": "bench"}, "commits": commits}, open(sys.argv[1], "w"))
PY
SIG=sha256=$(openssl dgst -sha256 -hmac "$(cat "$W/secret")" "$W/body.json" | sed 's/^.*= //')

# --- (a) webhook-to-applied
cat >"$W/lat.py" <<'PY'
# lat.py MODE TARGET FILE WANTFILE BODY SIG ID: trigger (POST a delivery to
# port TARGET, or SIGUSR1 to pid TARGET), then poll FILE every 1 ms until it
# equals WANTFILE; prints milliseconds (or "timeout" after 10 s)
import http.client, os, signal, sys, time
mode, target, path, wantf, bodyf, sig, did = sys.argv[1:8]
want, body = open(wantf, "rb").read(), open(bodyf, "rb").read()
if mode == "hook":
    c = http.client.HTTPConnection("127.0.0.1", int(target), timeout=5)
    c.connect()
    t0 = time.monotonic()
    c.request("POST", "/hooks/github", body, {"Content-Type": "application/json",
              "X-GitHub-Event": "push", "X-GitHub-Delivery": did, "X-Hub-Signature-256": sig})
    st = c.getresponse().status
    if st != 202:
        sys.exit("lat.py: HTTP %d" % st)
else:
    t0 = time.monotonic()
    os.kill(int(target), signal.SIGUSR1)
while True:
    try:
        with open(path, "rb") as f:
            if f.read() == want:
                break
    except FileNotFoundError:
        pass
    if time.monotonic() - t0 > 10:
        print("timeout")
        sys.exit(0)
    time.sleep(0.001)
print("%.1f" % ((time.monotonic() - t0) * 1000))
PY
stats() {	# numbers on stdin -> "p50 / p90 / max"
	python3 -c '
import sys
v = sorted(float(x) for x in sys.stdin.read().split() if x != "timeout")
q = lambda p: v[min(len(v) - 1, int(round(p * (len(v) - 1))))]
print("%.0f / %.0f / %.0f ms" % (q(0.5), q(0.9), v[-1]) if v else "none")'
}
gen=0
commit_one() {	# change one managed file in Git and push it
	gen=$((gen + 1))
	sed -i "2s/.*/key = 5 gen$gen/" "$W/repo/files/d0/f5.conf"
	git -C "$W/repo" commit -qam "gen$gen" && git -C "$W/repo" push -q origin main
}
passes_at() { echo "$(metric driftless_reconcile_duration_seconds_sum 'type="pass"') $(metric driftless_reconcile_duration_seconds_count 'type="pass"')"; }
say "(a) webhook-to-applied, $ROUNDS commits..."
pa0=$(passes_at)
: >"$W/lat-hook" && : >"$W/lat-usr1"
f0=$(fetches_seen)
for i in $(seq 1 "$ROUNDS"); do
	commit_one
	sleep 1.1	# hook-triggered fetches start at most once a second
	python3 "$W/lat.py" hook "$PORT" "$W/root/srv/bench/d0/f5.conf" "$W/repo/files/d0/f5.conf" \
		"$W/body.json" "$SIG" "lat-$i-$$" >>"$W/lat-hook"
done
f1=$(fetches_seen)
for i in $(seq 1 "$ROUNDS"); do
	commit_one
	sleep 1.1
	python3 "$W/lat.py" usr1 "$apid" "$W/root/srv/bench/d0/f5.conf" "$W/repo/files/d0/f5.conf" \
		"$W/body.json" "$SIG" x >>"$W/lat-usr1"
done
pa1=$(passes_at)
hook_missed=$(grep -c timeout "$W/lat-hook" || true)
usr1_missed=$(grep -c timeout "$W/lat-usr1" || true)

# --- (b) wrk and curl on the read endpoints
cat >"$W/report.lua" <<'LUA'
function done(summary, latency, requests)
	local e = summary.errors
	io.write(string.format("WRK %d %d %d %d %d %d %d\n", summary.requests, summary.duration,
		latency:percentile(50), latency:percentile(99), latency.max,
		e.connect + e.read + e.write + e.timeout, e.status))
end
LUA
# wrk_row PATH STATE: one wrk run; prints a table row, keeps p50 in $p50
wrk_row() {
	local out req dur l50 l99 lmax err st
	out=$(timeout $((WRK_S + 30)) wrk -t2 -c8 -d"${WRK_S}s" -s "$W/report.lua" "$URL$1" | grep '^WRK ')
	read -r _ req dur l50 l99 lmax err st <<<"$out"
	p50=$l50
	# shellcheck disable=SC2016 # backquotes for markdown
	printf '| `%s` | %s | %s | %s | %s | %s | %s | %s |\n' "$1" "$2" \
		"$(python3 -c "print('%.0f' % ($req / ($dur / 1e6)))")" \
		"$(python3 -c "print('%.2f' % ($l50 / 1e3))")" "$(python3 -c "print('%.1f' % ($l99 / 1e3))")" \
		"$(python3 -c "print('%.0f' % ($lmax / 1e3))")" "$err / $st" \
		"$(python3 -c "print('%.1f' % ($l50 / $ref50))")"
}
curl_median() {	# median of 50 sequential single requests, ms
	for _ in $(seq 1 50); do curl -s -o /dev/null --max-time 10 -w '%{time_total}\n' "$URL$1"; done |
		sort -n | awk '{ v[NR] = $1 } END { printf "%.2f", v[int((NR + 1) / 2)] * 1000 }'
}
say "(b) curl and wrk, idle..."
c_h=$(curl_median /healthz) c_m=$(curl_median /metrics) c_s=$(curl_median /api/v1/status)
m_bytes=$(curl -s "$URL/metrics" | wc -c) s_bytes=$(curl -s "$URL/api/v1/status" | wc -c)
ref50=1
rows_idle=$(
	wrk_row /healthz idle
	echo "REF $p50"
)
ref50=$(echo "$rows_idle" | awk '/^REF/ {print $2}')
rows_idle=$(echo "$rows_idle" | grep -v '^REF' | sed 's/| [0-9.]* |$/| 1.0 |/')
rows_idle="$rows_idle
$(wrk_row /metrics idle)
$(wrk_row /api/v1/status idle)"

say "(b) wrk while passes run..."
# passes: a loop of one-file commits + SIGUSR1, each waiting until applied
pass_loop() {
	local g=0
	while [ ! -e "$W/stop-loop" ] && [ ! -e "$W/stop" ]; do
		g=$((g + 1))
		sed -i "2s/.*/key = 6 load$g/" "$W/repo/files/d0/f6.conf"
		git -C "$W/repo" commit -qam "load$g" && git -C "$W/repo" push -q origin main
		kill -USR1 "$apid"
		for _ in $(seq 1 100); do
			grep -q "load$g\$" "$W/root/srv/bench/d0/f6.conf" 2>/dev/null && break
			sleep 0.05
		done
	done
}
busy_row() {
	local p0 p1 s0 s1 c0 c1
	rm -f "$W/stop-loop"
	p0=$(metric driftless_passes_total) s0=$(metric driftless_reconcile_duration_seconds_sum 'type="pass"')
	c0=$(metric driftless_reconcile_duration_seconds_count 'type="pass"')
	pass_loop &
	lp=$!
	pids+=("$lp")
	sleep 1
	wrk_row "$1" "passes running"
	touch "$W/stop-loop"
	timeout 15 tail --pid="$lp" -f /dev/null || kill "$lp" 2>/dev/null || true
	p1=$(metric driftless_passes_total) s1=$(metric driftless_reconcile_duration_seconds_sum 'type="pass"')
	c1=$(metric driftless_reconcile_duration_seconds_count 'type="pass"')
	echo "PASSES $1: $(int "$(python3 -c "print($p1 - $p0)")") passes, mean $(python3 -c "
c = $c1 - $c0
print('%.0f ms' % (1000 * ($s1 - $s0) / c) if c else '-')")" >>"$W/passes"
}
: >"$W/passes"
rows_busy="$(busy_row /healthz)
$(busy_row /metrics)
$(busy_row /api/v1/status)"

# --- (c) RSS under a webhook flood
cat >"$W/flood.lua" <<'LUA'
local f = assert(io.open(os.getenv("HOOK_BODY"), "rb"))
local body = f:read("*a")
f:close()
local sig = os.getenv("HOOK_SIG")
local threads = {}
function setup(thread)
	table.insert(threads, thread)
	thread:set("tid", #threads)
end
function init(args)
	counter, ok, dup, other = 0, 0, 0, 0
	prefix = string.format("flood-%s-%d-%d-", os.getenv("HOOK_ROUND"), os.time(), tid)
end
function request()
	counter = counter + 1
	return wrk.format("POST", "/hooks/github", {["Content-Type"] = "application/json",
		["X-GitHub-Event"] = "push", ["X-Hub-Signature-256"] = sig,
		["X-GitHub-Delivery"] = prefix .. counter}, body)
end
function response(status, headers, b)
	if status == 202 then ok = ok + 1 elseif status == 200 then dup = dup + 1 else other = other + 1 end
end
function done(summary, latency, requests)
	local a, d, o = 0, 0, 0
	for _, t in ipairs(threads) do a = a + t:get("ok"); d = d + t:get("dup"); o = o + t:get("other") end
	local e = summary.errors
	io.write(string.format("FLOOD %d %d %d %d %d %d %d %d\n", summary.requests, summary.duration,
		a, d, o, e.connect + e.read + e.write + e.timeout, latency:percentile(50), latency:percentile(99)))
end
LUA
say "(c) webhook floods..."
sleep 2
rss_before=$(rss)
rows_flood=""
for r in $(seq 1 "$FLOOD_ROUNDS"); do
	sleep 1.5
	fm0=$(metric driftless_fetches_total) fg0=$(fetches_seen)
	acc0=$(metric driftless_webhook_deliveries_total 'result="accepted"')
	before=$(rss)
	: >"$W/rss-during"
	(while [ ! -e "$W/stop-rss" ] && [ ! -e "$W/stop" ]; do rss >>"$W/rss-during"; sleep 0.5; done) &
	sp=$!
	pids+=("$sp")
	out=$(HOOK_BODY=$W/body.json HOOK_SIG=$SIG HOOK_ROUND=$r timeout $((FLOOD_S + 30)) \
		wrk -t2 -c8 -d"${FLOOD_S}s" -s "$W/flood.lua" "$URL/hooks/github" | grep '^FLOOD ')
	touch "$W/stop-rss"
	timeout 5 tail --pid="$sp" -f /dev/null || true
	rm -f "$W/stop-rss"
	read -r _ req dur a d o err l50 l99 <<<"$out"
	sleep 3	# the pending fetch, if any
	after=$(rss)
	fm1=$(metric driftless_fetches_total) fg1=$(fetches_seen)
	acc1=$(metric driftless_webhook_deliveries_total 'result="accepted"')
	rows_flood="$rows_flood
| $r | $((req)) in ${FLOOD_S} s ($(python3 -c "print('%.0f' % ($req / ($dur / 1e6)))")/s), p50 $(python3 -c "print('%.2f' % ($l50 / 1e3))") ms, p99 $(python3 -c "print('%.1f' % ($l99 / 1e3))") ms | $a / $d / $o / $err | $(int "$(python3 -c "print($acc1 - $acc0)")") | $before | $(sort -n "$W/rss-during" | head -1)-$(sort -n "$W/rss-during" | tail -1) | $after | $(int "$(python3 -c "print($fm1 - $fm0)")") ($((fg1 - fg0)) upload-pack) |"
done
rss_end=$(rss)

# --- the report
echo "agent with $n managed files on $(nproc) cores ($(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)),"
echo "$(uname -r), $(wrk -v 2>&1 | head -1 | awk '{print $1, $2}'), $(curl --version | head -1 | awk '{print $1, $2}'), $("$D" --version 2>/dev/null | head -1)"
echo
echo "(a) webhook-to-applied ($ROUNDS one-file commits, git daemon on loopback):"
echo
echo "| trigger | p50 / p90 / max | missed (10 s) | fetches seen by git daemon |"
echo "|---|---|---|---|"
echo "| signed GitHub delivery (202) | $(stats <"$W/lat-hook") | $hook_missed | $((f1 - f0)) upload-pack connections (two per fetch of a new commit) |"
echo "| SIGUSR1 (reference) | $(stats <"$W/lat-usr1") | $usr1_missed | |"
echo
echo "passes in (a): $(python3 -c "
s0, c0, s1, c1 = map(float, '$pa0 $pa1'.split())
print('%.0f, mean %.0f ms' % (c1 - c0, 1000 * (s1 - s0) / (c1 - c0)) if c1 > c0 else 0)")"
echo
echo "(b) single requests with curl, median of 50: /healthz $c_h ms, /metrics $c_m ms ($m_bytes bytes)," \
	"/api/v1/status $c_s ms ($s_bytes bytes); /metrics to /healthz: $(python3 -c "print('%.1f' % ($c_m / $c_h))")," \
	"/api/v1/status to /healthz: $(python3 -c "print('%.1f' % ($c_s / $c_h))")"
echo
echo "| endpoint | agent | req/s | p50 ms | p99 ms | max ms | socket errors / non-2xx | p50 / idle /healthz p50 |"
echo "|---|---|---|---|---|---|---|---|"
echo "$rows_idle"
echo "$rows_busy"
echo
sed 's/^PASSES /passes during the run on /' "$W/passes"
echo
echo "(c) webhook floods (wrk -t2 -c8 -d${FLOOD_S}s, distinct delivery ids, $(wc -c <"$W/body.json")-byte signed body); RSS in KiB:"
echo
echo "| flood | requests | 202 / 200 / other / socket errors | accepted (metric) | RSS before | RSS during (min-max) | RSS after | fetches |"
echo "|---|---|---|---|---|---|---|---|"
echo "${rows_flood#?}"
echo
echo "RSS before the floods $rss_before KiB, at the end $rss_end KiB, peak (VmHWM) $(hwm) KiB;" \
	"agent log $(wc -l <"$W/agent.log") lines, $(($(stat -c %s "$W/agent.log") / 1048576)) MiB"
