#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Service, backend builtin: started detached by apply and by the agent,
# restart policies with exponential backoff, stop with a timeout then
# SIGKILL, restartOn, a capped and rotated log, re-adoption after the agent
# is killed with SIGKILL (same pid, not restarted), health checks (http,
# tcp, exec) shown in status, a failing one recorded as degraded. Backend
# systemd under --root: the unit is written, systemctl is not run. Names,
# argv and health check targets are checked (M11), loopback only.
# shellcheck disable=SC2016
# shellcheck disable=SC2317 # helpers are called from the eval'ed bodies
# shellcheck disable=SC2034 # variables are read by the eval'ed bodies
. "$(dirname "$0")/lib.sh"

[ -n "$DL_PYTHON" ] || skip_all "python3 is needed for the test's services"
PY=$DL_PYTHON
BIN=$SCRATCH/bin
mkdir -p "$BIN" "$ROOT/srv/www" "$ROOT/etc"

# crash.py LOG CODE: note the start in LOG, exit with CODE a moment later
cat >"$BIN/crash.py" <<'P'
import sys, time
with open(sys.argv[1], "a") as f:
    f.write("%.3f\n" % time.time())
time.sleep(0.1)
sys.exit(int(sys.argv[2]))
P
# stubborn.py: ignore SIGTERM and run until killed
cat >"$BIN/stubborn.py" <<'P'
import signal, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
while True:
    time.sleep(1)
P
# chatty.py: a line of 1 KiB every 10 ms
cat >"$BIN/chatty.py" <<'P'
import sys, time
n = 0
while True:
    n += 1
    sys.stdout.write("%08d %s\n" % (n, "y" * 1014))
    sys.stdout.flush()
    time.sleep(0.01)
P

lines() { if [ -f "$1" ]; then wc -l <"$1"; else echo 0; fi; }
alive() { kill -0 "$1" 2>/dev/null && ! grep -q '^State:.*Z' "/proc/$1/status" 2>/dev/null; }
gone() { ! alive "$1"; }

# svc STATE ID FIELD: a field of a service in 'status -o json' (python repr)
svc() {
	dl status --state "$1" -o json | "$PY" -c '
import json, sys
d = json.load(sys.stdin)
s = [x for x in d["services"] if x["id"] == sys.argv[1]]
print(s[0][sys.argv[2]] if s else "none")' "$2" "$3"
}
# svc_pid STATE ID: its pid (registered for the cleanup)
svc_pid() {
	local p
	p=$(svc "$1" "$2" pid)
	case "$p" in [0-9]*) register_pid "$p" ;; esac
	echo "$p"
}

# ---- one-shot apply, no agent ----

S1=$SCRATCH/state1
repo_init one
write_file one/svc.yaml <<Y
apiVersion: driftless/v1
kind: Service
metadata: {name: sleeper}
spec:
  exec: [/usr/bin/sleep, "1000"]
---
apiVersion: driftless/v1
kind: Service
metadata: {name: stubborn}
spec:
  exec: [$PY, $BIN/stubborn.py]
  stopTimeout: 1s
Y
repo_commit one v1
one() { dl apply --repo "$SCRATCH/one" --root "$ROOT" --state "$S1" "$@"; }

test_expect_success 'apply starts builtin services detached: they outlive apply, in a session of their own' '
	expect_exit 0 one &&
	expect_contains "$SCRATCH/stdout" "Service/sleeper created (start: pid " &&
	pid=$(svc_pid "$S1" Service/sleeper) && spid=$(svc_pid "$S1" Service/stubborn) &&
	alive "$pid" && alive "$spid" &&
	test "$(ps -o sid= -p "$pid" | tr -d " ")" = "$pid" &&
	test "$(ps -o pgid= -p "$pid" | tr -d " ")" = "$pid" &&
	test "$(svc "$S1" Service/sleeper state)" = running &&
	expect_exit 0 one &&
	expect_contains "$SCRATCH/stdout" "0 created, 0 updated, 0 deleted, 2 unchanged" &&
	test "$(svc "$S1" Service/sleeper pid)" = "$pid" &&
	test -f "$S1/services/sleeper/out.log" &&
	expect_exit 0 dl status --state "$S1" &&
	expect_contains "$SCRATCH/stdout" "Service/sleeper: running, pid $pid"
'

test_expect_success 'a service that died while nothing watched is started again by the next apply' '
	pid=$(svc "$S1" Service/sleeper pid) &&
	kill -9 "$pid" && wait_for 5 gone "$pid" &&
	expect_exit 0 dl plan --repo "$SCRATCH/one" --root "$ROOT" --state "$S1" &&
	expect_contains "$SCRATCH/stdout" "update Service/sleeper (start (pid $pid is gone))" &&
	expect_exit 0 one &&
	new=$(svc_pid "$S1" Service/sleeper) && alive "$new" && test "$new" != "$pid"
'

test_expect_success 'ensure: stopped sends SIGTERM, and SIGKILL after stopTimeout to a process that ignores it' '
	spid=$(svc "$S1" Service/stubborn pid) &&
	sed -i "s/  stopTimeout: 1s/  stopTimeout: 1s\n  ensure: stopped/" one/svc.yaml &&
	repo_commit one stop &&
	start=$(date +%s%N) &&
	expect_exit 0 one &&
	elapsed=$((($(date +%s%N) - start) / 1000000)) &&
	test "$elapsed" -ge 1000 &&
	expect_contains "$SCRATCH/stdout" "Service/stubborn updated (stop pid $spid: killed with SIGKILL after the 1000 ms stop timeout)" &&
	wait_for 5 gone "$spid" &&
	test "$(svc "$S1" Service/stubborn state)" = stopped &&
	expect_exit 0 one &&
	expect_contains "$SCRATCH/stdout" "0 updated"
'

test_expect_success 'a service removed from Git is stopped and forgotten' '
	pid=$(svc "$S1" Service/sleeper pid) &&
	git -C one rm -q svc.yaml &&
	write_file one/keep.yaml <<-Y &&
	apiVersion: driftless/v1
	kind: File
	metadata: {name: keep}
	spec: {path: /srv/keep, content: "k\n"}
	Y
	repo_commit one "no services" &&
	expect_exit 0 one &&
	expect_contains "$SCRATCH/stdout" "Service/sleeper deleted (stop pid $pid: stopped in" &&
	wait_for 5 gone "$pid" &&
	test "$(svc "$S1" Service/sleeper pid)" = none
'

test_expect_success 'backend systemd under --root: the unit is written through the fs layer; systemctl is not run' '
	write_file one/unit.yaml <<-Y &&
	apiVersion: driftless/v1
	kind: Service
	metadata: {name: web}
	spec:
	  exec: [/usr/bin/python3, -m, http.server, "8080", --bind, 127.0.0.1, "100%", "\$HOME", "a \"b\""]
	  env: {MODE: prod}
	  user: www-data
	  workingDir: /srv/www
	  restart: on-failure
	  backend: systemd
	Y
	repo_commit one unit &&
	expect_exit 0 one &&
	expect_contains "$SCRATCH/stdout" "systemctl not run: the root is not /" &&
	unit=$ROOT/etc/systemd/system/driftless-web.service &&
	expect_mode 644 "$unit" &&
	cat >"$SCRATCH/want-exec" <<-\E &&
	ExecStart="/usr/bin/python3" "-m" "http.server" "8080" "--bind" "127.0.0.1" "100%%" "$$HOME" "a \"b\""
	E
	grep -qxF -f "$SCRATCH/want-exec" "$unit" &&
	expect_contains "$unit" "Environment=\"MODE=prod\"" &&
	expect_contains "$unit" "User=www-data" &&
	expect_contains "$unit" "WorkingDirectory=/srv/www" &&
	expect_contains "$unit" "Restart=on-failure" &&
	expect_exit 0 one &&
	expect_contains "$SCRATCH/stdout" "0 updated" &&
	git -C one rm -q unit.yaml && repo_commit one "no unit" &&
	expect_exit 0 one &&
	test ! -e "$unit"
'

# bad_svc SPEC-LINES: a revision with one Service; it must be rejected
bad_svc() {
	repo_init "$SCRATCH/bad" >/dev/null 2>&1 || true
	{
		printf 'apiVersion: driftless/v1\nkind: Service\nmetadata: {name: bad}\nspec:\n'
		cat
	} >"$SCRATCH/bad/bad.yaml"
	repo_commit "$SCRATCH/bad" bad >/dev/null
	test_must_fail dl apply --repo "$SCRATCH/bad" --root "$ROOT" --state "$SCRATCH/bad-state" "$@"
}

test_expect_success 'names, argv and health checks are checked: loopback only, one kind of check (M11, G04)' '
	printf "  name: \"-x\"\n  exec: [/bin/true]\n" | bad_svc &&
	expect_contains "$SCRATCH/stderr" "service name '"'"'-x'"'"' must match" &&
	printf "  name: \"a/b\"\n  exec: [/bin/true]\n" | bad_svc &&
	expect_contains "$SCRATCH/stderr" "service name '"'"'a/b'"'"' must match" &&
	printf "  exec: [python3, -m, http.server]\n" | bad_svc &&
	expect_contains "$SCRATCH/stderr" "must start with an absolute path" &&
	printf "  restart: sometimes\n  exec: [/bin/true]\n" | bad_svc &&
	expect_contains "$SCRATCH/stderr" "'"'"'restart'"'"' must be one of always, on-failure, never" &&
	printf "  exec: [/bin/true]\n  healthCheck: {http: \"http://169.254.169.254/latest/\"}\n" | bad_svc &&
	expect_contains "$SCRATCH/stderr" "must name a loopback address" &&
	printf "  exec: [/bin/true]\n  healthCheck: {tcp: \"example.com:80\"}\n" | bad_svc &&
	expect_contains "$SCRATCH/stderr" "loopback" &&
	printf "  exec: [/bin/true]\n  healthCheck: {http: \"https://127.0.0.1/\"}\n" | bad_svc &&
	expect_contains "$SCRATCH/stderr" "https is not supported" &&
	printf "  exec: [/bin/true]\n  healthCheck: {tcp: \"127.0.0.1:1\", exec: [/bin/true]}\n" | bad_svc &&
	expect_contains "$SCRATCH/stderr" "exactly one of" &&
	printf "  exec: [/bin/true]\n  healthCheck: {exec: /bin/true}\n" | bad_svc &&
	expect_contains "$SCRATCH/stderr" "'"'"'healthCheck.exec'"'"' must be an argv list" &&
	printf "  exec: [/bin/true]\n  healthCheck: {tcp: \"127.0.0.1:1\", every: 1s}\n" | bad_svc &&
	expect_contains "$SCRATCH/stderr" "unknown field '"'"'healthCheck.every'"'"'" &&
	printf "  exec: [/bin/true]\n  log: {maxSize: 10}\n" | bad_svc &&
	expect_contains "$SCRATCH/stderr" "'"'"'log.maxSize'"'"' must be a size" &&
	printf "  exec: [/bin/true]\n  restartOn: [File/none]\n" | bad_svc &&
	expect_contains "$SCRATCH/stderr" "'"'"'restartOn'"'"' names File/none, which is not declared" &&
	printf "policy:\n  kinds: [File]\n" >"$SCRATCH/nosvc.yaml" &&
	printf "  exec: [/bin/true]\n" | bad_svc -c "$SCRATCH/nosvc.yaml" &&
	expect_contains "$SCRATCH/stderr" "kind Service is denied by local policy rule '"'"'policy.kinds'"'"'" &&
	printf "policy:\n  owners: [nobody]\n" >"$SCRATCH/owners.yaml" &&
	printf "  exec: [/bin/true]\n" | bad_svc -c "$SCRATCH/owners.yaml" &&
	expect_contains "$SCRATCH/stderr" "it would run as root"
'

# ---- the agent ----

PORT=$(free_port)
DEAD_PORT=$(free_port)
repo_init repo
write_file repo/conf.yaml <<Y
apiVersion: driftless/v1
kind: File
metadata: {name: conf}
spec: {path: /srv/web.conf, content: "gen1\n"}
---
apiVersion: driftless/v1
kind: File
metadata: {name: other}
spec: {path: /srv/other.conf, content: "a\n"}
Y
write_file repo/crash.yaml <<Y
apiVersion: driftless/v1
kind: Service
metadata: {name: always}
spec: {exec: [$PY, $BIN/crash.py, $SCRATCH/always.log, "1"], restartDelay: 200ms}
---
apiVersion: driftless/v1
kind: Service
metadata: {name: onfail-ok}
spec: {exec: [$PY, $BIN/crash.py, $SCRATCH/onfail-ok.log, "0"], restart: on-failure, restartDelay: 200ms}
---
apiVersion: driftless/v1
kind: Service
metadata: {name: onfail-bad}
spec: {exec: [$PY, $BIN/crash.py, $SCRATCH/onfail-bad.log, "2"], restart: on-failure, restartDelay: 200ms}
---
apiVersion: driftless/v1
kind: Service
metadata: {name: never}
spec: {exec: [$PY, $BIN/crash.py, $SCRATCH/never.log, "1"], restart: never, restartDelay: 200ms}
Y
write_file repo/web.yaml <<Y
apiVersion: driftless/v1
kind: Service
metadata: {name: web}
spec:
  exec: [$PY, -m, http.server, "$PORT", --bind, 127.0.0.1]
  workingDir: /srv/www
  restartOn: [File/conf]
  healthCheck: {http: "http://127.0.0.1:$PORT/", interval: 300ms, timeout: 1s}
---
apiVersion: driftless/v1
kind: Service
metadata: {name: tcp}
spec:
  exec: [/usr/bin/sleep, "1000"]
  healthCheck: {tcp: "127.0.0.1:$PORT", interval: 300ms}
---
apiVersion: driftless/v1
kind: Service
metadata: {name: probe}
spec:
  exec: [/usr/bin/sleep, "1000"]
  healthCheck: {exec: [/usr/bin/test, -d, $ROOT/srv/www], interval: 300ms}
---
apiVersion: driftless/v1
kind: Service
metadata: {name: chatty}
spec:
  exec: [$PY, $BIN/chatty.py]
  log: {maxSize: 16k, keep: "2"}
Y
repo_commit repo v1

AGENT_LOG=$SCRATCH/agent.log
# notifications go to a receiver on loopback (health-degraded)
RLOG=$SCRATCH/received.jsonl
"$PY" "$DL_SRCROOT/t/helpers/notify-receiver.py" --port-file "$SCRATCH/recv.port" \
	--log "$RLOG" >"$SCRATCH/receiver.log" 2>&1 &
register_pid $!
n=0
while ! [ -s "$SCRATCH/recv.port" ] && [ $n -lt 100 ]; do sleep 0.1; n=$((n + 1)); done
[ -s "$SCRATCH/recv.port" ] || bail_out "the notification receiver did not start"
write_file "$SCRATCH/agent.yaml" <<Y
notify:
  - {url: "http://127.0.0.1:$(cat "$SCRATCH/recv.port")/json", format: json, events: [health-degraded]}
Y
agent_start() {
	"$DRIFTLESS" agent -c "$SCRATCH/agent.yaml" --repo "$SCRATCH/repo" --root "$ROOT" --state "$STATE" \
		--interval 1s >>"$AGENT_LOG" 2>&1 &
	AGENT_PID=$!
	echo "$AGENT_PID" >"$SCRATCH/agent.pid"
	register_pid "$AGENT_PID"
}
agent_pid() { cat "$SCRATCH/agent.pid"; }
log_has() { grep -qF -e "$1" "$AGENT_LOG"; }
ready_is() { test "$(svc "$STATE" "$1" ready)" = "$2"; }
at_least() { test "$(lines "$1")" -ge "$2"; }

test_expect_success 'the agent starts the services and restarts crashed ones with exponential backoff' '
	agent_start &&
	wait_for 20 log_has "agent: revision" &&
	wait_for 20 at_least "$SCRATCH/always.log" 5 &&
	wait_for 10 at_least "$SCRATCH/onfail-bad.log" 3 &&
	"$PY" - "$SCRATCH/always.log" <<-PY &&
	import sys
	t = [float(l) for l in open(sys.argv[1])]
	g = [b - a for a, b in zip(t, t[1:])]
	print("gaps", g)
	# 0.1 s of run, then 200, 400, 800 ms of backoff
	assert g[0] >= 0.28 and g[1] >= 0.48 and g[2] >= 0.88, g
	assert g[2] > g[0] + 0.4, g
	PY
	test "$(svc "$STATE" Service/always restarts)" -ge 3 &&
	log_has "Service/always: pid" &&
	log_has "restarting in 400 ms"
'

test_expect_success 'on-failure restarts only a failure; never restarts nothing' '
	test "$(lines "$SCRATCH/onfail-ok.log")" = 1 &&
	test "$(lines "$SCRATCH/never.log")" = 1 &&
	test "$(svc "$STATE" Service/never state)" = exited &&
	test "$(svc "$STATE" Service/never lastExit)" = "exit status 1" &&
	test "$(svc "$STATE" Service/onfail-ok lastExit)" = "exit status 0" &&
	log_has "Service/never: pid" && log_has "not restarted (restart: never)" &&
	: a full pass does not start them again either &&
	kill -HUP "$(agent_pid)" &&
	wait_for 10 log_has "configuration reloaded" &&
	sleep 1 &&
	test "$(lines "$SCRATCH/never.log")" = 1 &&
	test "$(lines "$SCRATCH/onfail-ok.log")" = 1
'

test_expect_success 'the crashing services leave with their manifest' '
	git -C repo rm -q crash.yaml &&
	repo_commit repo "no crashers" &&
	wait_for 20 log_has "Service/always: deleted" &&
	n=$(lines "$SCRATCH/always.log") && sleep 2 &&
	test "$(lines "$SCRATCH/always.log")" = "$n"
'

test_expect_success 'health checks: http, tcp and exec; status shows readiness' '
	wait_for 20 ready_is Service/web True &&
	wait_for 10 ready_is Service/tcp True &&
	wait_for 10 ready_is Service/probe True &&
	expect_exit 0 dl status --state "$STATE" &&
	expect_contains "$SCRATCH/stdout" "Service/web: running, pid" &&
	expect_contains "$SCRATCH/stdout" "ready (http http://127.0.0.1:$PORT/: status 200)" &&
	expect_contains "$SCRATCH/stdout" "ready (tcp 127.0.0.1:$PORT: connected)" &&
	expect_contains "$SCRATCH/stdout" "ready (exec: exit status 0)" &&
	! grep -q "degraded" "$SCRATCH/stdout" &&
	test "$(dl status --state "$STATE" -o json | "$PY" -c "import json,sys; print(json.load(sys.stdin)[\"degraded\"])")" = False
'

test_expect_success 'restartOn: a change of the File restarts the service; another change does not' '
	pid=$(svc_pid "$STATE" Service/web) &&
	sed -i "s/\"a\\\\n\"/\"b\\\\n\"/" repo/conf.yaml &&
	repo_commit repo "other b" &&
	wait_for 20 test -f "$ROOT/srv/other.conf" &&
	wait_for 20 grep -q b "$ROOT/srv/other.conf" &&
	sleep 1 &&
	test "$(svc "$STATE" Service/web pid)" = "$pid" &&
	sed -i "s/gen1/gen2/" repo/conf.yaml &&
	repo_commit repo "conf gen2" &&
	wait_for 20 grep -q gen2 "$ROOT/srv/web.conf" &&
	wait_for 10 log_has "Service/web: updated" &&
	new=$(svc_pid "$STATE" Service/web) &&
	test "$new" != "$pid" && gone "$pid" && alive "$new" &&
	log_has "restart: File/conf changed" &&
	wait_for 20 ready_is Service/web True
'

test_expect_success 'the log is capped and rotated: out.log, out.log.1, out.log.2, no more' '
	L=$STATE/services/chatty/out.log &&
	wait_for 30 test -f "$L.2" &&
	sleep 2 &&
	test ! -e "$L.3" &&
	test "$(stat -c %s "$L")" -lt 400000 &&
	test "$(stat -c %s "$L.1")" -ge 16384 &&
	head -c 9 "$L.1" | grep -q "^[0-9]\{8\} "
'

test_expect_success 'a failing health check marks the service not ready: degraded, recorded in history' '
	sed -i "s/127.0.0.1:$PORT\", interval: 300ms}/127.0.0.1:$DEAD_PORT\", interval: 300ms, retries: \"2\"}/" repo/web.yaml &&
	grep -q "$DEAD_PORT" repo/web.yaml &&
	repo_commit repo "tcp check a dead port" &&
	wait_for 30 ready_is Service/tcp False &&
	expect_exit 0 dl status --state "$STATE" &&
	expect_contains "$SCRATCH/stdout" "Service/tcp: running" &&
	expect_contains "$SCRATCH/stdout" "NOT READY (tcp 127.0.0.1:$DEAD_PORT: Connection refused)" &&
	expect_contains "$SCRATCH/stdout" "health:             degraded: Service/tcp not ready" &&
	test "$(dl status --state "$STATE" -o json | "$PY" -c "import json,sys; print(json.load(sys.stdin)[\"degraded\"])")" = True &&
	expect_exit 0 dl history --state "$STATE" -n 5 &&
	expect_contains "$SCRATCH/stdout" "health" &&
	expect_contains "$SCRATCH/stdout" "degraded" &&
	expect_contains "$SCRATCH/stdout" "failed    Service/tcp (health check failed 2 times in a row: tcp 127.0.0.1:$DEAD_PORT: Connection refused)" &&
	log_has "Service/tcp: not ready" &&
	wait_for 10 grep -q "health-degraded" "$RLOG" &&
	"$PY" -c "
import json, sys
ev = [json.loads(l)[\"body\"] for l in open(sys.argv[1])]
ev = [e for e in ev if e.get(\"event\") == \"health-degraded\"]
assert ev and \"Service/tcp is not ready\" in json.dumps(ev), ev
" "$RLOG"
'

test_expect_success 'the agent killed with SIGKILL and started again adopts the running services: same pids, no restart' '
	web=$(svc_pid "$STATE" Service/web) && chatty=$(svc_pid "$STATE" Service/chatty) &&
	kill -9 "$(agent_pid)" &&
	timeout 10 tail --pid="$(agent_pid)" -f /dev/null &&
	alive "$web" && alive "$chatty" &&
	: > "$AGENT_LOG" &&
	agent_start &&
	wait_for 20 log_has "agent: revision" &&
	sleep 1 &&
	test "$(svc "$STATE" Service/web pid)" = "$web" &&
	test "$(svc "$STATE" Service/chatty pid)" = "$chatty" &&
	alive "$web" && alive "$chatty" &&
	! log_has "Service/web: updated" && ! log_has "Service/web: created" &&
	test "$(svc "$STATE" Service/web restarts)" = 0 &&
	wait_for 20 ready_is Service/web True
'

test_expect_success 'an adopted service that dies is restarted by the new agent' '
	web=$(svc "$STATE" Service/web pid) &&
	kill -9 "$web" &&
	wait_for 20 log_has "Service/web: restarted" &&
	log_has "exit status unknown: started before this agent" &&
	new=$(svc_pid "$STATE" Service/web) &&
	test "$new" != "$web" && alive "$new" &&
	test "$(svc "$STATE" Service/web restarts)" = 1 &&
	wait_for 20 ready_is Service/web True
'

test_expect_success 'SIGTERM stops the agent, not the services; removed from Git, they are stopped' '
	web=$(svc_pid "$STATE" Service/web) &&
	kill -TERM "$(agent_pid)" &&
	timeout 10 tail --pid="$(agent_pid)" -f /dev/null &&
	alive "$web" &&
	agent_start &&
	wait_for 20 log_has "agent: revision" &&
	pids="$(svc_pid "$STATE" Service/web) $(svc_pid "$STATE" Service/tcp) $(svc_pid "$STATE" Service/probe) $(svc_pid "$STATE" Service/chatty)" &&
	git -C repo rm -q web.yaml &&
	repo_commit repo "no services" &&
	for p in $pids; do wait_for 30 gone "$p" || exit 1; done &&
	kill -TERM "$(agent_pid)" &&
	timeout 10 tail --pid="$(agent_pid)" -f /dev/null
'

test_done
