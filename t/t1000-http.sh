#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The agent's HTTP surface: JSON API equal to the commands, status page,
# metrics, health and readiness, the API token, the Host allow-list, limits
# (body size before reading, slow clients), and no file content anywhere.
# shellcheck disable=SC2016
. "$(dirname "$0")/lib.sh"

command -v curl >/dev/null || skip_all "curl is needed"

CANARY="canary-$$-7f3a9c1e-file-content"
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
metadata: {name: esc}
spec: {path: "/srv/app/<b>x&y.conf", content: "$CANARY escaped\n"}
---
apiVersion: driftless/v1
kind: File
metadata: {name: rep, annotations: {driftless/drift: report}}
spec: {path: /srv/app/report.conf, content: "$CANARY report\n"}
Y
repo_commit repo "v1 by <script>x</script>"
mkdir -p "$ROOT/srv"
git clone -q --bare repo "$SCRATCH/srv.git"
git -C repo remote add origin "$SCRATCH/srv.git"

TOKEN="tok-$$-a7c3e9f1b2d4"
printf '%s\n' "$TOKEN" >"$SCRATCH/token"
chmod 600 "$SCRATCH/token"
write_file "$SCRATCH/agent.yaml" <<Y
apiTokenFile: $SCRATCH/token
Y
PORT=$(free_port)
URL=http://127.0.0.1:$PORT
AGENT_LOG=$SCRATCH/agent.log

# agent_start [ARGS]: the agent on the bare repository, HTTP on $PORT, short
# HTTP timeouts (idle 2 s, a whole request 4 s) so slow clients are quick to test
agent_start() {
	DRIFTLESS_HTTP_TIMEOUTS=2,4 "$DRIFTLESS" agent -c "$SCRATCH/agent.yaml" \
		--repo "$SCRATCH/srv.git" --root "$ROOT" --state "$STATE" --interval 60s \
		--listen "127.0.0.1:$PORT" "$@" >>"$AGENT_LOG" 2>&1 &
	echo $! >"$SCRATCH/agent.pid"
	register_pid "$(cat "$SCRATCH/agent.pid")"
}
agent_pid() { cat "$SCRATCH/agent.pid"; }
agent_stop() {
	kill -TERM "$(agent_pid)" 2>/dev/null
	timeout 10 tail --pid="$(agent_pid)" -f /dev/null
}
push() { git -C repo push -q origin main; }
log_has() { grep -qF -e "$1" "$AGENT_LOG"; }
content_is() { test "$(cat "$1" 2>/dev/null)" = "$2"; }
# get URL-PATH [CURL ARGS]: body into $SCRATCH/body, headers into
# $SCRATCH/headers; prints the status code
get() {
	local path=$1
	shift
	curl -s -o "$SCRATCH/body" -D "$SCRATCH/headers" -w '%{http_code}' --max-time 10 "$@" "$URL$path"
}
# expect_code CODE URL-PATH [CURL ARGS]
expect_code() {
	local want=$1 got
	shift
	got=$(get "$@")
	if [ "$got" != "$want" ]; then
		echo "error: expected HTTP $want, got $got for $*"
		cat "$SCRATCH/body"
		return 1
	fi
}
ready() { test "$(get /readyz)" = 200; }
healthy() { test "$(get /healthz)" = 200; }
probe() { "$DL_PYTHON" "$DL_SRCROOT/t/helpers/http-probe.py" "$@"; }

test_expect_success 'the agent serves /healthz at once and /readyz once a revision is applied' '
	agent_start &&
	wait_for 10 test -f "$ROOT/srv/app/app.conf" &&
	expect_code 200 /healthz &&
	test "$(cat body)" = ok &&
	wait_for 10 ready &&
	expect_contains body "ready: revision $(repo_head repo) applied" &&
	log_has "http: listening on 127.0.0.1:$PORT"
'

test_expect_success 'GET /api/v1/status is what `driftless status -o json` prints' '
	expect_code 200 /api/v1/status &&
	expect_contains headers "Content-Type: application/json" &&
	cp body api.json &&
	expect_exit 0 dl status --state "$STATE" -o json &&
	"$DL_PYTHON" -c "
import json,sys
a=json.load(open(sys.argv[1])); c=json.load(open(sys.argv[2]))
assert a==c, (a,c)
assert a[\"lastAppliedRevision\"]==sys.argv[3], a
assert a[\"agent\"][\"running\"] and a[\"managedResources\"]==4, a
" api.json stdout "$(repo_head repo)"
'

test_expect_success 'GET /api/v1/history is what `driftless history -o json` prints; limit works' '
	expect_code 200 /api/v1/history &&
	cp body api.json &&
	expect_exit 0 dl history --state "$STATE" -o json &&
	test_cmp stdout api.json &&
	expect_code 200 "/api/v1/history?limit=1" &&
	"$DL_PYTHON" -c "
import json,sys
d=json.load(open(sys.argv[1]))
assert len(d[\"passes\"])==1 and d[\"passes\"][0][\"revision\"]==sys.argv[2], d
" body "$(repo_head repo)" &&
	expect_code 400 "/api/v1/history?limit=0" &&
	expect_code 400 "/api/v1/history?limit=abc"
'

test_expect_success 'GET /api/v1/resources lists the inventory with kind, name, path and state' '
	expect_code 200 /api/v1/resources &&
	"$DL_PYTHON" -c "
import json,sys
d=json.load(open(sys.argv[1]))
r={x[\"id\"]: x for x in d[\"resources\"]}
assert sorted(r)==[\"Directory/app\",\"File/conf\",\"File/esc\",\"File/rep\"], r
c=r[\"File/conf\"]
assert (c[\"kind\"],c[\"name\"],c[\"path\"],c[\"type\"],c[\"state\"],c[\"created\"])==(\"File\",\"conf\",\"/srv/app/app.conf\",\"file\",\"in-sync\",True), c
assert r[\"File/esc\"][\"path\"]==\"/srv/app/<b>x&y.conf\"
assert d[\"counts\"]=={\"in-sync\":4,\"drifted\":0,\"failed\":0}, d
" body
'

test_expect_success 'drift shows in the resources: repaired is in sync, reported is drifted' '
	echo hand >"$ROOT/srv/app/report.conf" &&
	wait_for 3 log_has "File/rep: drift reported, not repaired" &&
	echo hand >"$ROOT/srv/app/app.conf" &&
	wait_for 3 log_has "File/conf: drift repaired" &&
	expect_code 200 /api/v1/resources &&
	"$DL_PYTHON" -c "
import json,sys
r={x[\"id\"]: x for x in json.load(open(sys.argv[1]))[\"resources\"]}
assert r[\"File/rep\"][\"state\"]==\"drifted\" and \"content\" in r[\"File/rep\"][\"detail\"], r
assert r[\"File/conf\"][\"state\"]==\"in-sync\" and r[\"File/conf\"][\"detail\"].startswith(\"drift repaired\"), r
" body
'

test_expect_success 'GET / is a self-contained page with the revision, escaped names and paths' '
	expect_code 200 / &&
	expect_contains headers "Content-Type: text/html; charset=utf-8" &&
	expect_contains headers "Content-Security-Policy: default-src '\''none'\''" &&
	expect_contains body "$(repo_head repo)" &&
	expect_contains body "/srv/app/&lt;b&gt;x&amp;y.conf" &&
	expect_not_contains body "<b>x" &&
	expect_contains body "v1 by &lt;script&gt;x&lt;/script&gt;" &&
	expect_not_contains body "<script" &&
	expect_contains body "Driftless Test &lt;test@driftless.invalid&gt;" &&
	expect_contains body ">drifted<" &&
	expect_contains body "File/rep" &&
	! grep -E "(src|href)=\"(https?:)?//" body
'

test_expect_success 'GET /metrics parses as Prometheus text with the histogram and the revision' '
	expect_code 200 /metrics &&
	expect_contains headers "Content-Type: text/plain; version=0.0.4" &&
	"$DL_PYTHON" "$DL_SRCROOT/t/helpers/check-metrics.py" body "$(repo_head repo)" >samples &&
	grep -qx "driftless_passes_total{result=\"applied\"} [1-9][0-9]*" samples &&
	grep -qx "driftless_drift_events_total{policy=\"repair\",outcome=\"repaired\"} [1-9][0-9]*" samples &&
	grep -qx "driftless_drift_events_total{policy=\"report\",outcome=\"reported\"} [1-9][0-9]*" samples &&
	grep -qx "driftless_resources{kind=\"File\",state=\"drifted\"} 1" samples &&
	grep -qx "driftless_resources{kind=\"Directory\",state=\"in-sync\"} 1" samples &&
	grep -qx "driftless_reconcile_duration_seconds_count{type=\"drift\"} [1-9][0-9]*" samples &&
	grep -qx "driftless_source_up 1" samples
'

test_expect_success 'no file content, and not the token, in any answer or in the log' '
	for p in / /metrics /api/v1/status /api/v1/resources /api/v1/history /healthz /readyz; do
		get "$p" >/dev/null && cat body headers
	done >all-answers &&
	test -s all-answers &&
	expect_not_contains all-answers "$CANARY" &&
	expect_not_contains all-answers "$TOKEN" &&
	expect_not_contains "$AGENT_LOG" "$CANARY" &&
	expect_not_contains "$AGENT_LOG" "$TOKEN"
'

test_expect_success 'POST /api/v1/sync needs the token: none or a wrong one is 401' '
	expect_code 401 /api/v1/sync -X POST &&
	expect_contains headers "WWW-Authenticate: Bearer" &&
	expect_code 401 /api/v1/sync -X POST -H "Authorization: Bearer wrong-$TOKEN" &&
	expect_code 401 /api/v1/sync -X POST -H "Authorization: Bearer ${TOKEN%?}" &&
	expect_code 401 /api/v1/sync -X POST -H "Authorization: Basic $TOKEN" &&
	expect_code 405 /api/v1/sync -H "Authorization: Bearer $TOKEN" &&
	expect_contains headers "Allow: POST"
'

test_expect_success 'POST /api/v1/sync with the token is 202 and the new commit is applied' '
	n=$(grep -c "agent: new revision" "$AGENT_LOG") &&
	sed -i "s/gen1/gen2/" repo/app.yaml && repo_commit repo "v2 password=hunter2-$$ and https://u:pw-$$@git.example/x" && push &&
	expect_code 202 /api/v1/sync -X POST -H "Authorization: Bearer $TOKEN" &&
	"$DL_PYTHON" -c "import json,sys; assert json.load(open(sys.argv[1]))[\"status\"] in (\"started\",\"queued\")" body &&
	wait_for 10 content_is "$ROOT/srv/app/app.conf" "$CANARY gen2" &&
	test "$(grep -c "agent: new revision" "$AGENT_LOG")" -gt "$n" &&
	expect_code 200 "/api/v1/history?limit=1" &&
	expect_contains body "$(repo_head repo)" &&
	expect_contains body "v2 password=<redacted> and https://git.example/x" &&
	expect_code 200 / &&
	expect_contains body "v2 password=&lt;redacted&gt;" &&
	expect_not_contains body "hunter2-$$" &&
	expect_not_contains body "pw-$$"
'

test_expect_success 'a Host that is not allowed is refused with 421 (DNS rebinding)' '
	expect_code 421 /api/v1/status -H "Host: evil.example" &&
	expect_code 421 /metrics -H "Host: evil.example:$PORT" &&
	expect_code 421 /api/v1/sync -X POST -H "Host: 127.0.0.2" -H "Authorization: Bearer $TOKEN" &&
	expect_code 200 /api/v1/status -H "Host: localhost:$PORT" &&
	expect_code 200 /api/v1/status -H "Host: 127.0.0.1"
'

test_expect_success 'unknown paths are 404, wrong methods 405, webhooks are off without config' '
	expect_code 404 /nope &&
	expect_code 404 /api/v1/state &&
	expect_code 404 /hooks/github -X POST -H "Content-Type: application/json" -d "{}" &&
	expect_code 405 /api/v1/status -X POST &&
	expect_code 405 /metrics -X DELETE
'

test_expect_success 'an oversized body is refused with 413 before it is read' '
	probe early "$PORT" /api/v1/sync "Authorization: Bearer $TOKEN" >out &&
	cat out &&
	test "$(cut -d" " -f1 out)" = 413 &&
	dd if=/dev/zero bs=1024 count=8 2>/dev/null >big &&
	expect_code 413 /api/v1/sync -X POST -H "Authorization: Bearer $TOKEN" --data-binary @big &&
	wait_for 2 log_has "\"POST /api/v1/sync\" 413"
'

test_expect_success 'slow clients do not block others and are cut off after the timeouts' '
	probe slow "$PORT" 2 4 >out; st=$?
	cat out && test $st -eq 0 &&
	wait_for 2 log_has "request not finished within 4 s; connection closed" &&
	expect_code 200 /healthz
'

test_expect_success 'the access log has no query strings' '
	expect_code 200 "/api/v1/history?limit=2&token=$TOKEN-query" &&
	wait_for 2 log_has "\"GET /api/v1/history\" 200" &&
	expect_not_contains "$AGENT_LOG" "limit=2" &&
	expect_not_contains "$AGENT_LOG" "$TOKEN-query"
'

test_expect_success 'SIGTERM stops the agent and closes the port' '
	agent_stop &&
	! kill -0 "$(agent_pid)" 2>/dev/null &&
	! dl_port_open "$PORT"
'

test_expect_success 'a token file readable by others is refused; the agent does not start' '
	chmod 640 "$SCRATCH/token" &&
	test_must_fail dl agent -c "$SCRATCH/agent.yaml" --repo "$SCRATCH/srv.git" --root "$ROOT" \
		--state "$STATE" --listen "127.0.0.1:$PORT" &&
	expect_contains stderr "apiTokenFile" &&
	expect_contains stderr "chmod 600" &&
	expect_not_contains stderr "$TOKEN" &&
	chmod 600 "$SCRATCH/token"
'

test_expect_success 'bad listen addresses are refused: in the config with FILE:LINE:COL, by flag, in use' '
	printf "listen: 127.0.0.1:99999\n" >bad.yaml &&
	test_must_fail dl agent -c bad.yaml --repo "$SCRATCH/srv.git" --root "$ROOT" --state "$STATE" &&
	expect_contains stderr "bad.yaml:1:9: '\''listen'\'' must be HOST:PORT" &&
	test_must_fail dl agent --repo "$SCRATCH/srv.git" --root "$ROOT" --state "$STATE" --listen example.com:80 &&
	expect_contains stderr "'\''listen'\'': '\''example.com:80'\'' is not HOST:PORT" &&
	bport=$(free_port) &&
	{ "$DL_PYTHON" -c "import socket,time; s=socket.socket(); s.bind((\"127.0.0.1\",$bport)); s.listen(); time.sleep(30)" & } &&
	blocker=$! && register_pid $blocker &&
	wait_for 5 dl_port_open "$bport" &&
	test_must_fail dl agent --repo "$SCRATCH/srv.git" --root "$ROOT" --state "$STATE" --listen "127.0.0.1:$bport" &&
	expect_contains stderr "cannot listen on '\''127.0.0.1:$bport'\'': Address already in use" &&
	kill $blocker
'

test_expect_success 'a non-loopback listen address needs an API token, and then reads need it too' '
	test_must_fail dl agent --repo "$SCRATCH/srv.git" --root "$ROOT" --state "$STATE" --listen "0.0.0.0:$(free_port)" &&
	expect_contains stderr "is not a loopback address; set '\''apiTokenFile'\''" &&
	printf "apiTokenFile: %s\nallowedHosts: [driftless.example]\n" "$SCRATCH/token" >wide.yaml &&
	{ "$DRIFTLESS" agent -c wide.yaml --repo "$SCRATCH/srv.git" --root "$ROOT" --state "$STATE" \
		--listen "0.0.0.0:$PORT" >>"$AGENT_LOG" 2>&1 & } &&
	echo $! >"$SCRATCH/agent.pid" && register_pid "$(agent_pid)" &&
	wait_for 5 healthy &&
	expect_code 401 /api/v1/status &&
	expect_code 401 / &&
	expect_code 200 /api/v1/status -H "Authorization: Bearer $TOKEN" &&
	expect_code 200 /api/v1/resources -H "Authorization: Bearer $TOKEN" -H "Host: driftless.example:$PORT" &&
	expect_code 421 /api/v1/resources -H "Authorization: Bearer $TOKEN" -H "Host: other.example" &&
	expect_code 200 /metrics &&
	wait_for 5 ready &&
	agent_stop
'

test_expect_success 'POST /api/v1/sync is 409 while a sync runs and another one is queued' '
	"$DL_PYTHON" "$DL_SRCROOT/t/helpers/http-probe.py" hang-server "$SCRATCH/hang.port" &
	register_pid $! &&
	wait_for 5 test -s "$SCRATCH/hang.port" &&
	HPORT=$(free_port) &&
	{ "$DRIFTLESS" agent -c "$SCRATCH/agent.yaml" --repo "git://127.0.0.1:$(cat "$SCRATCH/hang.port")/x" \
		--root "$SCRATCH/root2" --state "$SCRATCH/state2" --listen "127.0.0.1:$HPORT" \
		>"$SCRATCH/agent2.log" 2>&1 & } &&
	pid2=$! && register_pid $pid2 &&
	URL=http://127.0.0.1:$HPORT &&
	wait_for 5 healthy &&
	expect_code 503 /readyz &&
	expect_contains body "not ready: no revision has been applied yet" &&
	expect_code 202 /api/v1/sync -X POST -H "Authorization: Bearer $TOKEN" &&
	expect_contains body "\"queued\"" &&
	expect_code 409 /api/v1/sync -X POST -H "Authorization: Bearer $TOKEN" &&
	expect_code 200 /healthz &&
	kill -TERM $pid2 &&
	timeout 10 tail --pid=$pid2 -f /dev/null
'

test_done
