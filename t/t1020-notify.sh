#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Notifications: sync and drift events reach a real receiver on loopback in
# Slack and JSON formats, filtered per target; a 500 is retried, a redirect
# is not followed, a receiver that hangs never delays drift repair, the same
# event about the same subject goes out once a minute, and no file content
# or URL credential appears anywhere.
# shellcheck disable=SC2016
. "$(dirname "$0")/lib.sh"

[ -n "$DL_PYTHON" ] || skip_all "python3 is needed"

CANARY="canary-$$-0b5e2d-notify-content"
repo_init repo
write_file repo/app.yaml <<Y
apiVersion: driftless/v1
kind: Directory
metadata: {name: app}
spec: {path: /srv/app, mode: "0755"}
---
apiVersion: driftless/v1
kind: File
metadata: {name: conf}
spec: {path: /srv/app/app.conf, content: "$CANARY gen1\n", mode: "0644"}
---
apiVersion: driftless/v1
kind: File
metadata: {name: other}
spec: {path: /srv/app/other.conf, content: "$CANARY other\n"}
---
apiVersion: driftless/v1
kind: File
metadata: {name: third}
spec: {path: /srv/app/third.conf, content: "$CANARY third\n"}
Y
repo_commit repo v1
mkdir -p "$ROOT/srv"
git clone -q --bare repo "$SCRATCH/srv.git"
git -C repo remote add origin "$SCRATCH/srv.git"

RLOG=$SCRATCH/received.jsonl
"$DL_PYTHON" "$DL_SRCROOT/t/helpers/notify-receiver.py" --port-file "$SCRATCH/recv.port" \
	--log "$RLOG" --hang 20 >"$SCRATCH/receiver.log" 2>&1 &
register_pid $!
n=0
while ! [ -s "$SCRATCH/recv.port" ] && [ $n -lt 100 ]; do sleep 0.1; n=$((n + 1)); done
[ -s "$SCRATCH/recv.port" ] || bail_out "the notification receiver did not start"
RPORT=$(cat "$SCRATCH/recv.port")
R=http://127.0.0.1:$RPORT
PORT=$(free_port)
write_file "$SCRATCH/agent.yaml" <<Y
listen: 127.0.0.1:$PORT
notify:
  - {url: "$R/slack", format: slack, events: [sync-succeeded, drift]}
  - {url: "$R/json", format: json}
  - {url: "$R/fail-once", format: json, events: [sync-succeeded]}
  - {url: "http://user:hunter2-pass@127.0.0.1:$RPORT/hang?token=tok-in-query", events: [drift-detected]}
  - {url: "$R/redirect", events: [sync-succeeded]}
Y
AGENT_LOG=$SCRATCH/agent.log
agent_start() {
	"$DRIFTLESS" agent -c "$SCRATCH/agent.yaml" --repo "$SCRATCH/srv.git" --root "$ROOT" \
		--state "$STATE" --interval 1h >>"$AGENT_LOG" 2>&1 &
	echo $! >"$SCRATCH/agent.pid"
	register_pid "$(cat "$SCRATCH/agent.pid")"
}
agent_pid() { cat "$SCRATCH/agent.pid"; }
push() { git -C repo push -q origin main; }
log_has() { grep -qF -e "$1" "$AGENT_LOG"; }
content_is() { test "$(cat "$1" 2>/dev/null)" = "$2"; }
repaired_twice() { test "$(grep -c "File/conf: drift repaired" "$AGENT_LOG")" -ge 2; }
# received PATH [EVENT] [SUBJECT]: how many posts PATH got (of EVENT about SUBJECT)
received() {
	"$DL_PYTHON" - "$RLOG" "$@" <<'PY'
import json, sys
log, path = sys.argv[1], sys.argv[2]
ev = sys.argv[3] if len(sys.argv) > 3 else None
subj = sys.argv[4] if len(sys.argv) > 4 else None
n = 0
for line in open(log):
    r = json.loads(line)
    if r["path"].split("?")[0] != path:
        continue
    b = r["body"]
    if ev and isinstance(b, dict):
        if "event" in b and (b["event"] != ev or (subj and b["subject"] != subj)):
            continue
        if "text" in b and "event" not in b and ev not in b["text"].replace(" ", "-"):
            continue
    n += 1
print(n)
PY
}
has() { test "$(received "$@")" -ge 1; }
# at_least N PATH [EVENT] [SUBJECT]
at_least() {
	local n=$1
	shift
	test "$(received "$@")" -ge "$n"
}

test_expect_success 'a first sync sends sync-succeeded to the targets that want it' '
	agent_start &&
	wait_for 10 test -f "$ROOT/srv/app/app.conf" &&
	wait_for 5 has /json sync-succeeded "$(repo_head repo)" &&
	wait_for 5 has /slack &&
	"$DL_PYTHON" -c "
import json,sys
recs=[json.loads(l) for l in open(sys.argv[1])]
j=[r for r in recs if r[\"path\"]==\"/json\"][0]
b=j[\"body\"]
assert j[\"contentType\"]==\"application/json\", j
assert set(b)=={\"event\",\"time\",\"host\",\"subject\",\"revision\",\"text\"}, b
assert b[\"event\"]==\"sync-succeeded\" and b[\"revision\"]==sys.argv[2], b
assert \"revision %s applied: 4 created\" % sys.argv[2][:12] in b[\"text\"], b
s=[r for r in recs if r[\"path\"]==\"/slack\"][0][\"body\"]
assert list(s)==[\"text\"] and s[\"text\"].startswith(\"driftless on \"), s
assert sys.argv[2][:12] in s[\"text\"], s
" "$RLOG" "$(repo_head repo)"
'

test_expect_success 'a receiver answering 500 is retried and then gets it' '
	wait_for 10 at_least 2 /fail-once &&
	"$DL_PYTHON" -c "
import json,sys
r=[json.loads(l) for l in open(sys.argv[1])]
r=[x for x in r if x[\"path\"]==\"/fail-once\"]
assert [x[\"status\"] for x in r[:2]]==[500,200], r
assert r[1][\"time\"]-r[0][\"time\"]>=0.9, r
assert r[0][\"body\"]==r[1][\"body\"], r
" "$RLOG" &&
	log_has "notify: target 3 (http://127.0.0.1:$RPORT): sync-succeeded about $(repo_head repo) not delivered (HTTP 500); retry 1 in 1000 ms" &&
	log_has "notify: target 3 (http://127.0.0.1:$RPORT): sent sync-succeeded"
'

test_expect_success 'a redirect is not followed' '
	wait_for 5 has /redirect &&
	sleep 1.5 &&
	test "$(received /ok-redirected)" -eq 0 &&
	log_has "notify: target 5 (http://127.0.0.1:$RPORT): sync-succeeded about $(repo_head repo) not delivered (HTTP 302)"
'

test_expect_success 'a hand edit sends drift-detected and drift-repaired, in Slack and JSON form' '
	echo "hand edit" >"$ROOT/srv/app/app.conf" &&
	wait_for 3 content_is "$ROOT/srv/app/app.conf" "$CANARY gen1" &&
	wait_for 5 has /json drift-detected File/conf &&
	wait_for 5 has /json drift-repaired File/conf &&
	wait_for 5 at_least 3 /slack &&
	"$DL_PYTHON" -c "
import json,sys
recs=[json.loads(l) for l in open(sys.argv[1])]
j=[r[\"body\"] for r in recs if r[\"path\"]==\"/json\" and r[\"body\"][\"subject\"]==\"File/conf\"]
d=[b for b in j if b[\"event\"]==\"drift-detected\"][0]
assert d[\"text\"]==\"File/conf: /srv/app/app.conf changed outside Git (content); repaired\", d
assert d[\"revision\"]==sys.argv[2], d
f=[b for b in j if b[\"event\"]==\"drift-repaired\"][0]
assert f[\"text\"]==\"File/conf: /srv/app/app.conf repaired (content)\", f
s=[r[\"body\"][\"text\"] for r in recs if r[\"path\"]==\"/slack\"]
assert any(t.endswith(\": File/conf: /srv/app/app.conf changed outside Git (content); repaired\") for t in s), s
assert any(t.endswith(\": File/conf: /srv/app/app.conf repaired (content)\") for t in s), s
" "$RLOG" "$(repo_head repo)"
'

test_expect_success 'a receiver that hangs does not delay drift repair' '
	wait_for 5 has /hang &&
	n=$(received /hang) &&
	t0=$(date +%s%N) &&
	echo "while the receiver hangs" >"$ROOT/srv/app/other.conf" &&
	wait_for 2 content_is "$ROOT/srv/app/other.conf" "$CANARY other" &&
	ms=$((($(date +%s%N) - t0) / 1000000)) &&
	echo "repaired in $ms ms while a notification hangs" &&
	test "$ms" -lt 1000 &&
	wait_for 2 log_has "File/other: drift repaired" &&
	grep "File/other: drift repaired" "$AGENT_LOG" &&
	test "$(received /hang)" -eq "$n"
'

test_expect_success 'the same event about the same subject goes out once a minute' '
	wait_for 5 has /json drift-repaired File/other &&
	echo again >"$ROOT/srv/app/app.conf" &&
	wait_for 3 content_is "$ROOT/srv/app/app.conf" "$CANARY gen1" &&
	wait_for 3 repaired_twice &&
	sleep 1 &&
	test "$(received /json drift-repaired File/conf)" -eq 1 &&
	curl -s "http://127.0.0.1:$PORT/metrics" >metrics &&
	grep -qx "driftless_notifications_total{result=\"suppressed\"} [1-9][0-9]*" metrics &&
	grep -qx "driftless_notifications_total{result=\"sent\"} [1-9][0-9]*" metrics
'

test_expect_success 'a rejected revision sends sync-failed; an unreachable source health-degraded' '
	sed -i "s/mode: \"0644\"/mode: 0644/" repo/app.yaml && repo_commit repo broken && push &&
	kill -USR1 "$(agent_pid)" &&
	wait_for 5 has /json sync-failed "$(repo_head repo)" &&
	grep sync-failed "$RLOG" | grep -q "rejected: 1 problem; the previous revision stays enforced" &&
	mv "$SCRATCH/srv.git" "$SCRATCH/srv.moved" &&
	kill -USR1 "$(agent_pid)" &&
	wait_for 5 has /json health-degraded source &&
	grep health-degraded "$RLOG" | grep -q "the source is unreachable" &&
	mv "$SCRATCH/srv.moved" "$SCRATCH/srv.git"
'

test_expect_success 'no file content and no URL credential in notifications or the log' '
	expect_not_contains "$RLOG" "$CANARY" &&
	expect_not_contains "$AGENT_LOG" "$CANARY" &&
	expect_not_contains "$AGENT_LOG" "hunter2-pass" &&
	expect_not_contains "$AGENT_LOG" "tok-in-query" &&
	log_has "notify: target 4 (http://127.0.0.1:$RPORT), json, for drift-detected"
'

test_expect_success 'the agent stops at once even with a notification in flight' '
	echo "last" >"$ROOT/srv/app/third.conf" &&
	wait_for 3 content_is "$ROOT/srv/app/third.conf" "$CANARY third" &&
	sleep 0.3 &&
	t0=$(date +%s) &&
	kill -TERM "$(agent_pid)" &&
	timeout 10 tail --pid="$(agent_pid)" -f /dev/null &&
	test $(($(date +%s) - t0)) -le 3
'

test_expect_success 'bad notify settings are refused with FILE:LINE:COL and never echo the URL' '
	printf "notify:\n  - {url: \"ftp://u:secret-in-url@x/y\"}\n  - {url: \"https://x/\", format: xml, events: [sync, drift]}\n" >bad.yaml &&
	test_must_fail dl agent -c bad.yaml --repo "$SCRATCH/srv.git" --root "$ROOT" --state "$STATE" &&
	expect_contains stderr "bad.yaml:2:11: '\''notify[0].url'\'' must be an http:// or https:// URL" &&
	expect_contains stderr "bad.yaml:3:33: '\''notify[1].format'\'' must be slack or json" &&
	expect_contains stderr "bad.yaml:3:47: '\''notify[1].events'\'': unknown event '\''sync'\''" &&
	expect_not_contains stderr "secret-in-url"
'

test_done
