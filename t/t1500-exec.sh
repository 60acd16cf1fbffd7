#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Exec: a one-shot command runs once per change of what it runs or of a
# trigger, never on a no-op pass, not even by the agent; guards (creates,
# unless, onlyIf); timeout; retries with backoff; output bounded and
# redacted into history; kill -9 mid-run leaves an unknown outcome that is
# run again only when idempotent, else waits for 'driftless ack' (HARDENING
# F04); argv and env checks (M11) and local policy (M10). Commands are real,
# harmless programs: --root does not confine what a command does.
# shellcheck disable=SC2016
# shellcheck disable=SC2317 # helpers are called from the eval'ed bodies
# shellcheck disable=SC2034 # variables are read by the eval'ed bodies
. "$(dirname "$0")/lib.sh"

[ -n "$DL_PYTHON" ] || skip_all "python3 is needed for the test's commands"
PY=$DL_PYTHON
BIN=$SCRATCH/bin
mkdir -p "$BIN" "$ROOT/srv/app" "$ROOT/etc"

# count.py FILE WORDS...: append a line "TIME WORDS" to FILE
cat >"$BIN/count.py" <<'P'
import sys, time
with open(sys.argv[1], "a") as f:
    f.write("%.3f %s\n" % (time.time(), " ".join(sys.argv[2:])))
P
# flaky.py FILE N: note the attempt in FILE; fail until the N-th attempt
cat >"$BIN/flaky.py" <<'P'
import sys, time
with open(sys.argv[1], "a") as f:
    f.write("%.3f\n" % time.time())
n = sum(1 for _ in open(sys.argv[1]))
print("attempt", n)
sys.exit(0 if n >= int(sys.argv[2]) else 3)
P
# job.py MARKER PIDFILE RUNS: the first run writes its pid and hangs; later
# runs (MARKER exists) note themselves in RUNS and end at once
cat >"$BIN/job.py" <<'P'
import os, sys, time
marker, pidfile, runs = sys.argv[1:4]
if not os.path.exists(marker):
    open(marker, "w").close()
    with open(pidfile + ".tmp", "w") as f:
        f.write(str(os.getpid()))
    os.rename(pidfile + ".tmp", pidfile)
    time.sleep(60)
with open(runs, "a") as f:
    f.write("ran\n")
P
# leak.py FILE MARKER: print FILE (a secret), then far more than history
# keeps; the first run (no MARKER yet) fails
cat >"$BIN/leak.py" <<'P'
import os, sys
print("the password is", open(sys.argv[1]).read().strip())
sys.stdout.write("x" * 20000 + "\n")
first = not os.path.exists(sys.argv[2])
open(sys.argv[2], "a").close()
print("done")
sys.exit(1 if first else 0)
P

printf 'root:x:0:0:root:/root:/bin/bash\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n' \
	>"$ROOT/etc/passwd"

RUNS=$SCRATCH/runs
lines() { if [ -f "$1" ]; then wc -l <"$1"; else echo 0; fi; }
runs_are() { test "$(lines "$RUNS")" = "$1"; }

repo_init repo
write_file repo/app.yaml <<Y
apiVersion: driftless/v1
kind: File
metadata: {name: sql}
spec: {path: /srv/app/migrate.sql, content: "v1\n"}
---
apiVersion: driftless/v1
kind: File
metadata: {name: other}
spec: {path: /srv/app/other.conf, content: "a\n"}
---
apiVersion: driftless/v1
kind: Exec
metadata: {name: migrate}
spec:
  command: [$PY, $BIN/count.py, $RUNS, migrate]
  env: {STAGE: one}
  triggers: [File/sql]
Y
repo_commit repo v1

test_expect_success 'an Exec runs once; a second pass on the same commit does not run it' '
	expect_exit 0 dl_apply "$SCRATCH/repo" &&
	expect_contains "$SCRATCH/stdout" "Exec/migrate created (ran $PY: exit status 0" &&
	runs_are 1 &&
	expect_exit 0 dl_apply "$SCRATCH/repo" &&
	expect_contains "$SCRATCH/stdout" "3 unchanged" &&
	runs_are 1 &&
	expect_exit 0 dl_plan "$SCRATCH/repo" &&
	expect_contains "$SCRATCH/stdout" "0 to create, 0 to update" &&
	runs_are 1
'

test_expect_success 'a change of a trigger runs it again, once; a change of another resource does not' '
	sed -i "s/v1\\\\n/v2\\\\n/" repo/app.yaml &&
	repo_commit repo "sql v2" &&
	expect_exit 0 dl_plan "$SCRATCH/repo" &&
	expect_contains "$SCRATCH/stdout" "update Exec/migrate (run $PY: trigger File/sql changed)" &&
	expect_exit 0 dl_apply "$SCRATCH/repo" &&
	runs_are 2 &&
	expect_exit 0 dl_apply "$SCRATCH/repo" &&
	runs_are 2 &&
	sed -i "s/\"a\\\\n\"/\"b\\\\n\"/" repo/app.yaml &&
	repo_commit repo "other b" &&
	expect_exit 0 dl_apply "$SCRATCH/repo" &&
	expect_contains "$SCRATCH/stdout" "File/other updated" &&
	runs_are 2
'

test_expect_success 'a change of its command or environment runs it again' '
	sed -i "s/STAGE: one/STAGE: two/" repo/app.yaml &&
	repo_commit repo "env two" &&
	expect_exit 0 dl_apply "$SCRATCH/repo" &&
	expect_contains "$SCRATCH/stdout" "Exec/migrate updated" &&
	runs_are 3 &&
	expect_exit 0 dl_apply "$SCRATCH/repo" &&
	runs_are 3
'

AGENT_LOG=$SCRATCH/agent.log
log_has() { grep -qF -e "$1" "$AGENT_LOG"; }

test_expect_success 'the agent does not run it at start or on a full pass, and runs it once on a trigger change' '
	"$DRIFTLESS" agent --repo "$SCRATCH/repo" --root "$ROOT" --state "$STATE" --interval 1s \
		>>"$AGENT_LOG" 2>&1 &
	pid=$! && register_pid $pid &&
	wait_for 20 log_has "agent: revision" &&
	sleep 2 &&
	runs_are 3 &&
	sed -i "s/v2\\\\n/v3\\\\n/" repo/app.yaml &&
	repo_commit repo "sql v3" &&
	wait_for 20 runs_are 4 &&
	sleep 3 &&
	runs_are 4 &&
	kill -HUP $pid &&
	wait_for 20 log_has "configuration reloaded" &&
	sleep 1 &&
	runs_are 4 &&
	kill -TERM $pid &&
	timeout 10 tail --pid=$pid -f /dev/null &&
	log_has "Exec/migrate: updated"
'

write_file repo/guards.yaml <<Y
apiVersion: driftless/v1
kind: Exec
metadata: {name: creates}
spec:
  command: [$PY, $BIN/count.py, $RUNS, creates]
  creates: /srv/app/done
---
apiVersion: driftless/v1
kind: Exec
metadata: {name: unless}
spec:
  command: [$PY, $BIN/count.py, $RUNS, unless]
  unless: [/bin/true]
---
apiVersion: driftless/v1
kind: Exec
metadata: {name: onlyif-no}
spec:
  command: [$PY, $BIN/count.py, $RUNS, onlyif-no]
  onlyIf: [/bin/false]
---
apiVersion: driftless/v1
kind: Exec
metadata: {name: onlyif-yes}
spec:
  command: [$PY, $BIN/count.py, $RUNS, onlyif-yes]
  onlyIf: [/usr/bin/test, -d, /]
Y
repo_commit repo guards

test_expect_success 'guards: creates (under the root), unless and onlyIf decide whether it runs' '
	touch "$ROOT/srv/app/done" &&
	expect_exit 0 dl_apply "$SCRATCH/repo" &&
	runs_are 5 &&
	grep -q " onlyif-yes$" "$RUNS" &&
	: unless and onlyIf ran and said no: recorded as not run &&
	expect_exit 0 dl history --state "$STATE" -n 1 &&
	expect_contains "$SCRATCH/stdout" "Exec/unless (not run: '"'"'unless'"'"' /bin/true succeeded)" &&
	expect_contains "$SCRATCH/stdout" "Exec/onlyif-no (not run: '"'"'onlyIf'"'"' /bin/false: exit status 1)" &&
	expect_contains "$SCRATCH/stdout" "created   Exec/onlyif-yes" &&
	expect_exit 0 dl_apply "$SCRATCH/repo" &&
	runs_are 5 &&
	rm "$ROOT/srv/app/done" &&
	: creates gone: the run was never recorded for this spec, so it runs now &&
	expect_exit 0 dl_apply "$SCRATCH/repo" &&
	grep -q " creates$" "$RUNS" &&
	runs_are 6
'

write_file repo/slow.yaml <<Y
apiVersion: driftless/v1
kind: Exec
metadata: {name: slow}
spec:
  command: [/usr/bin/sleep, "30"]
  timeout: 1s
---
apiVersion: driftless/v1
kind: Exec
metadata: {name: flaky}
spec:
  command: [$PY, $BIN/flaky.py, $SCRATCH/attempts, "3"]
  retries: "3"
  retryDelay: 300ms
Y
repo_commit repo "slow and flaky"

test_expect_success 'a timeout kills the command (and its group); retries back off and then succeed' '
	start=$(date +%s) &&
	expect_exit 1 dl_apply "$SCRATCH/repo" &&
	test $(($(date +%s) - start)) -lt 20 &&
	expect_contains "$SCRATCH/stdout" "Exec/slow failed" &&
	expect_contains "$SCRATCH/stdout" "timed out after 1000 ms" &&
	expect_contains "$SCRATCH/stdout" "Exec/flaky created (ran $PY: exit status 0" &&
	expect_contains "$SCRATCH/stdout" "after retries" &&
	test "$(lines "$SCRATCH/attempts")" = 3 &&
	"$PY" - "$SCRATCH/attempts" <<-PY
	import sys
	t = [float(l) for l in open(sys.argv[1])]
	g = [b - a for a, b in zip(t, t[1:])]
	print("gaps", g)
	assert g[0] >= 0.3 and g[1] >= 0.6, g
	PY
'

test_expect_success 'a failed Exec is tried again on the next pass; a successful one is not' '
	expect_exit 1 dl_apply "$SCRATCH/repo" &&
	expect_contains "$SCRATCH/stdout" "Exec/slow failed" &&
	test "$(lines "$SCRATCH/attempts")" = 3 &&
	git -C repo rm -q slow.yaml &&
	repo_commit repo "no slow" &&
	expect_exit 0 dl_apply "$SCRATCH/repo"
'

# A Secret this host can decrypt; the Exec prints it.
CANARY='CANARY-exec-5b1d9e77-never-in-history'
KEYS=$SCRATCH/keys
mkdir -p "$KEYS"
id_apply() { dl_apply "$SCRATCH/repo" --identity "$KEYS/host.key" "$@"; }

test_expect_success 'output is bounded and redacted: a Secret the command prints never reaches history' '
	expect_exit 0 dl secret keygen --identity "$KEYS/host.key" &&
	printf "%s\n" "$CANARY" >"$SCRATCH/pw" &&
	mkdir -p repo/secrets &&
	dl secret seal -r "$(cat "$SCRATCH/stdout")" "$SCRATCH/pw" >repo/secrets/pw.age &&
	cat >repo/leak.yaml <<-Y &&
	apiVersion: driftless/v1
	kind: Secret
	metadata: {name: pw}
	spec: {path: /srv/app/pw, source: secrets/pw.age, mode: "0600"}
	---
	apiVersion: driftless/v1
	kind: Exec
	metadata: {name: leak}
	spec:
	  command: [$PY, $BIN/leak.py, $ROOT/srv/app/pw, $SCRATCH/leak.marker]
	  dependsOn: [Secret/pw]
	Y
	repo_commit repo leak &&
	: the first run fails: its output goes into the error &&
	expect_exit 1 id_apply &&
	expect_contains "$SCRATCH/stdout" "Exec/leak failed" &&
	expect_contains "$SCRATCH/stdout" "<redacted sha256:" &&
	expect_contains "$SCRATCH/stdout" "bytes dropped" &&
	! grep -qF "$CANARY" "$SCRATCH/stdout" "$SCRATCH/stderr" &&
	: the second pass loads the revision from its cache, decrypts nothing, runs it again &&
	expect_exit 0 id_apply &&
	expect_contains "$SCRATCH/stdout" "Exec/leak created (ran" &&
	expect_contains "$SCRATCH/stdout" "<redacted sha256:" &&
	expect_contains "$SCRATCH/stdout" "done" &&
	! grep -qF "$CANARY" "$SCRATCH/stdout" "$SCRATCH/stderr" &&
	expect_exit 0 dl history --state "$STATE" -n 2 -o json &&
	! grep -qF "$CANARY" "$SCRATCH/stdout" &&
	"$PY" - "$SCRATCH/stdout" <<-PY &&
	import json, sys
	d = json.load(open(sys.argv[1]))
	dets = [r["detail"] for p in d["passes"] for r in p["resources"] if r["id"] == "Exec/leak"]
	assert len(dets) == 2, dets
	for det in dets:
	    assert "<redacted sha256:" in det and "bytes dropped" in det, det
	    assert len(det) < 3000, len(det)
	PY
	! grep -qaF "$CANARY" "$STATE/driftless.db" &&
	{ ! test -f "$STATE/driftless.db-wal" || ! grep -qaF "$CANARY" "$STATE/driftless.db-wal"; }
'

test_expect_success 'user: the command runs as that account of the root'"'"'s /etc/passwd' '
	cat >repo/whoami.yaml <<-Y &&
	apiVersion: driftless/v1
	kind: Exec
	metadata: {name: whoami}
	spec:
	  command: [/usr/bin/id, -u]
	  user: nobody
	Y
	repo_commit repo whoami &&
	: it starts in the root, which nobody must be able to enter &&
	chmod 0711 "$SCRATCH" &&
	expect_exit 0 id_apply &&
	expect_contains "$SCRATCH/stdout" "Exec/whoami created (ran /usr/bin/id: exit status 0" &&
	expect_contains "$SCRATCH/stdout" "output: 65534" &&
	: what follows needs no identity &&
	git -C repo rm -q leak.yaml secrets/pw.age &&
	repo_commit repo "no secret" &&
	expect_exit 0 id_apply
'

# job_yaml NAME [idempotent]: an Exec running job.py with its own files
job_yaml() {
	cat <<-Y
	apiVersion: driftless/v1
	kind: Exec
	metadata: {name: $1}
	spec:
	  command: [$PY, $BIN/job.py, $SCRATCH/$1.marker, $SCRATCH/$1.pid, $SCRATCH/$1.runs]
	Y
	[ -z "${2:-}" ] || echo "  idempotent: true"
}

# kill_mid_run NAME: apply in the background, kill -9 it while NAME runs
kill_mid_run() {
	rm -f "$SCRATCH/$1.pid"
	"$DRIFTLESS" apply --repo "$SCRATCH/repo" --root "$ROOT" --state "$STATE" \
		>"$SCRATCH/bg.out" 2>&1 &
	local dpid=$!
	register_pid "$dpid"
	wait_for 30 test -s "$SCRATCH/$1.pid" || return 1
	register_pid "$(cat "$SCRATCH/$1.pid")"
	kill -9 "$dpid"
	wait "$dpid" 2>/dev/null || true
	kill -9 "$(cat "$SCRATCH/$1.pid")"
	rm -f "$SCRATCH/$1.pid"
}

test_expect_success 'kill -9 mid-run: an unknown outcome, not run again, reported with its remedy; ack settles it' '
	job_yaml hang >repo/hang.yaml &&
	repo_commit repo hang &&
	kill_mid_run hang &&
	test "$(dl status --state "$STATE" -o json | "$PY" -c "import json,sys; print(json.load(sys.stdin)[\"unknownOutcomes\"][0][\"id\"])")" = Exec/hang &&
	expect_exit 1 dl_apply "$SCRATCH/repo" &&
	expect_contains "$SCRATCH/stderr" "recovering from an interrupted apply" &&
	expect_contains "$SCRATCH/stdout" "Exec/hang failed" &&
	expect_contains "$SCRATCH/stdout" "did not report back" &&
	expect_contains "$SCRATCH/stdout" "driftless ack Exec/hang" &&
	test "$(lines "$SCRATCH/hang.runs")" = 0 &&
	expect_exit 1 dl_plan "$SCRATCH/repo" &&
	expect_contains "$SCRATCH/stdout" "! Exec/hang: the run started at" &&
	expect_exit 0 dl status --state "$STATE" &&
	expect_contains "$SCRATCH/stdout" "unknown outcomes:" &&
	expect_exit 0 dl history --state "$STATE" -n 1 &&
	expect_contains "$SCRATCH/stdout" "driftless ack Exec/hang" &&
	expect_exit 64 dl ack --state "$STATE" &&
	expect_exit 1 dl ack --state "$STATE" Exec/migrate &&
	expect_exit 0 dl ack --state "$STATE" Exec/hang &&
	expect_contains "$SCRATCH/stdout" "counts as done" &&
	expect_exit 0 dl_apply "$SCRATCH/repo" &&
	test "$(lines "$SCRATCH/hang.runs")" = 0 &&
	expect_exit 0 dl history --state "$STATE" -n 2 &&
	expect_contains "$SCRATCH/stdout" "ack " &&
	expect_exit 0 dl status --state "$STATE" &&
	! grep -q "unknown outcomes" "$SCRATCH/stdout"
'

test_expect_success 'ack --rerun: it runs again on the next pass' '
	job_yaml again >repo/again.yaml &&
	repo_commit repo again &&
	kill_mid_run again &&
	expect_exit 1 dl_apply "$SCRATCH/repo" &&
	expect_exit 0 dl ack --state "$STATE" --rerun Exec/again &&
	expect_exit 0 dl_apply "$SCRATCH/repo" &&
	expect_contains "$SCRATCH/stdout" "Exec/again updated (ran" &&
	test "$(lines "$SCRATCH/again.runs")" = 1 &&
	expect_exit 0 dl_apply "$SCRATCH/repo" &&
	test "$(lines "$SCRATCH/again.runs")" = 1
'

test_expect_success 'kill -9 mid-run of an idempotent Exec: the next pass runs it again, once' '
	job_yaml idem yes >repo/idem.yaml &&
	repo_commit repo idem &&
	kill_mid_run idem &&
	expect_exit 0 dl_plan "$SCRATCH/repo" &&
	expect_contains "$SCRATCH/stdout" "it is idempotent" &&
	expect_exit 0 dl_apply "$SCRATCH/repo" &&
	test "$(lines "$SCRATCH/idem.runs")" = 1 &&
	expect_exit 0 dl_apply "$SCRATCH/repo" &&
	test "$(lines "$SCRATCH/idem.runs")" = 1
'

# bad_exec SPEC-LINES: a revision with one Exec; it must be rejected
bad_exec() {
	repo_init "$SCRATCH/bad" >/dev/null 2>&1 || true
	{
		printf 'apiVersion: driftless/v1\nkind: Exec\nmetadata: {name: bad}\nspec:\n'
		cat
	} >"$SCRATCH/bad/bad.yaml"
	repo_commit "$SCRATCH/bad" bad >/dev/null
	test_must_fail dl apply --repo "$SCRATCH/bad" --root "$ROOT" --state "$SCRATCH/bad-state" "$@"
}

test_expect_success 'argv and env are checked: no shell, no PATH lookup, env names (M11)' '
	printf "  command: [sh, -c, \"id\"]\n" | bad_exec &&
	expect_contains "$SCRATCH/stderr" "'"'"'command'"'"' must start with an absolute path, not '"'"'sh'"'"'" &&
	printf "  command: []\n" | bad_exec &&
	expect_contains "$SCRATCH/stderr" "must name a program" &&
	printf "  command: \"/bin/true; id\"\n" | bad_exec &&
	expect_contains "$SCRATCH/stderr" "'"'"'command'"'"' must be a list of strings" &&
	printf "  command: [/usr/bin/../bin/true]\n" | bad_exec &&
	expect_contains "$SCRATCH/stderr" "command" &&
	printf "  command: [/bin/true]\n  env: {\"1BAD\": x}\n" | bad_exec &&
	expect_contains "$SCRATCH/stderr" "must match [A-Za-z_][A-Za-z0-9_]*" &&
	printf "  command: [/bin/true]\n  env: {X: [a]}\n" | bad_exec &&
	expect_contains "$SCRATCH/stderr" "'"'"'env.X'"'"' must be a string" &&
	printf "  command: [/bin/true, \"a\\\\nb\"]\n" | bad_exec &&
	expect_contains "$SCRATCH/stderr" "command" &&
	printf "  command: [/bin/true]\n  triggers: [File/nope]\n" | bad_exec &&
	expect_contains "$SCRATCH/stderr" "'"'"'triggers'"'"' names File/nope, which is not declared" &&
	printf "  command: [/bin/true]\n  timeout: soon\n" | bad_exec &&
	expect_contains "$SCRATCH/stderr" "'"'"'timeout'"'"' must be a duration" &&
	printf "  command: [/bin/true]\n  retries: \"-1\"\n" | bad_exec &&
	expect_contains "$SCRATCH/stderr" "'"'"'retries'"'"' must be a number" &&
	printf "  command: [/bin/true]\n  shell: true\n" | bad_exec &&
	expect_contains "$SCRATCH/stderr" "unknown field '"'"'spec.shell'"'"'"
'

test_expect_success 'local policy: policy.kinds must list Exec; policy.owners covers the run-as user (M10)' '
	cat >"$SCRATCH/nokinds.yaml" <<-Y &&
	policy:
	  kinds: [File, Directory]
	Y
	printf "  command: [/bin/true]\n" | bad_exec -c "$SCRATCH/nokinds.yaml" &&
	expect_contains "$SCRATCH/stderr" "kind Exec is denied by local policy rule '"'"'policy.kinds'"'"'" &&
	cat >"$SCRATCH/owners.yaml" <<-Y &&
	policy:
	  owners: [nobody]
	Y
	printf "  command: [/bin/true]\n" | bad_exec -c "$SCRATCH/owners.yaml" &&
	expect_contains "$SCRATCH/stderr" "it would run as root, which local policy rule '"'"'policy.owners'"'"' does not allow" &&
	printf "  command: [/bin/true]\n  user: daemon\n" | bad_exec -c "$SCRATCH/owners.yaml" &&
	expect_contains "$SCRATCH/stderr" "'"'"'user'"'"' '"'"'daemon'"'"' is denied by local policy rule '"'"'policy.owners'"'"'" &&
	printf "  command: [/bin/true]\n  user: \"-o\"\n" | bad_exec &&
	expect_contains "$SCRATCH/stderr" "user"
'

test_done
