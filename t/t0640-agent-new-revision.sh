#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# A new revision arrives mid-apply (HARDENING C03): while the agent applies
# a large revision R2 (200 files, with a slow Exec between the two halves),
# R3 is pushed and announced with SIGUSR1 and a signed webhook. R2 finishes
# whole, nothing of R3 is written while R2 is applied, then R3 is applied
# whole; the history holds R2 then R3, each applied, one after the other.
# The slow Exec writes what the files hold when it starts and when it ends,
# so the test sees the host in the middle of each pass.
# shellcheck disable=SC2016
# shellcheck disable=SC2317 # helpers are called from the eval'ed bodies
# shellcheck disable=SC2034 # variables are read by the eval'ed bodies
. "$(dirname "$0")/lib.sh"

command -v curl >/dev/null || skip_all "curl is needed"
[ -n "$DL_PYTHON" ] || skip_all "python3 is needed"

N=100	# files in each half
BIN=$SCRATCH/bin
SNAP=$SCRATCH/snap
mkdir -p "$BIN" "$SNAP" "$ROOT/srv"
# snap.py NAME SECONDS: note what every file holds in $SNAP/NAME.start,
# mark $SNAP/NAME.running, sleep, then note it again in $SNAP/NAME.end
cat >"$BIN/snap.py" <<'P'
import os, sys, time
snap, app, name, secs = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
def note(suffix):
    with open(os.path.join(snap, name + suffix + ".tmp"), "w") as f:
        for n in sorted(os.listdir(app)):
            if n.endswith(".conf"):
                f.write("%s %s\n" % (n, open(os.path.join(app, n)).read().strip()))
    os.rename(os.path.join(snap, name + suffix + ".tmp"), os.path.join(snap, name + suffix))
note(".start")
open(os.path.join(snap, name + ".running"), "w").close()
time.sleep(secs)
note(".end")
P

# revision REV SECONDS: half a (no dependencies), the Exec gate after all of
# a, half b after the gate; every file holds REV
revision() {
	local rev=$1 secs=$2 i deps=""
	{
		printf 'apiVersion: driftless/v1\nkind: Directory\nmetadata: {name: app}\n'
		printf 'spec: {path: /srv/app}\n'
		for i in $(seq -w 1 $N); do
			printf -- '---\napiVersion: driftless/v1\nkind: File\nmetadata: {name: a%s}\n' "$i"
			printf 'spec: {path: /srv/app/a%s.conf, content: "%s\\n"}\n' "$i" "$rev"
			deps="$deps${deps:+, }File/a$i"
		done
		printf -- '---\napiVersion: driftless/v1\nkind: Exec\nmetadata: {name: gate}\n'
		printf 'spec:\n  command: [%s, %s, %s, %s, %s, "%s"]\n' "$DL_PYTHON" "$BIN/snap.py" \
			"$SNAP" "$ROOT/srv/app" "$rev" "$secs"
		printf '  dependsOn: [%s]\n' "$deps"
		for i in $(seq -w 1 $N); do
			printf -- '---\napiVersion: driftless/v1\nkind: File\nmetadata: {name: b%s}\n' "$i"
			printf 'spec: {path: /srv/app/b%s.conf, content: "%s\\n", dependsOn: [Exec/gate]}\n' \
				"$i" "$rev"
		done
	} >repo/app.yaml
	repo_commit repo "$rev"
}

repo_init repo
revision r1 0
git clone -q --bare repo "$SCRATCH/srv.git"
git -C repo remote add origin "$SCRATCH/srv.git"
push() { git -C repo push -q origin main; }

SECRET="hook-$$-c03"
printf '%s\n' "$SECRET" >"$SCRATCH/hook.secret"
chmod 600 "$SCRATCH/hook.secret"
printf 'webhook: {provider: generic, secretFile: %s}\n' "$SCRATCH/hook.secret" >"$SCRATCH/agent.yaml"
PORT=$(free_port)
URL=http://127.0.0.1:$PORT
AGENT_LOG=$SCRATCH/agent.log
"$DRIFTLESS" agent -c "$SCRATCH/agent.yaml" --repo "$SCRATCH/srv.git" --root "$ROOT" \
	--state "$STATE" --interval 1h --listen "127.0.0.1:$PORT" >>"$AGENT_LOG" 2>&1 &
AGENT_PID=$!
register_pid "$AGENT_PID"
log_has() { grep -qF -e "$1" "$AGENT_LOG"; }
# all PREFIX REV FILE: every file of half PREFIX holds REV in the snapshot FILE
all() {
	local n
	n=$(grep -c "^$1[0-9]*\.conf $2\$" "$3") || true
	[ "$n" = "$N" ] || { echo "$3: $n of $N files $1* hold $2:"; cat "$3"; return 1; }
}
sig() { printf '%s' "$1" | openssl dgst -sha256 -hmac "$SECRET" | sed 's/^.*= //'; }
db() { sqlite3 "$STATE/driftless.db" "$1"; }

test_expect_success 'the agent applies the first revision' '
	wait_for 30 log_has "revision $(repo_head repo | cut -c1-12) applied" &&
	wait_for 5 test -f "$SNAP/r1.end" &&
	all a r1 "$SNAP/r1.end" && ! grep "^b" "$SNAP/r1.end" &&
	test "$(cat "$ROOT"/srv/app/b*.conf | grep -c "^r1$")" = $N
'

test_expect_success 'C03: R3 pushed and announced (SIGUSR1, webhook) while R2 is applied' '
	revision r2 3 && push && r2=$(repo_head repo) && echo "$r2" >"$SCRATCH/r2" &&
	kill -USR1 $AGENT_PID &&
	wait_for 30 test -f "$SNAP/r2.running" &&
	revision r3 0.5 && push && r3=$(repo_head repo) && echo "$r3" >"$SCRATCH/r3" &&
	kill -USR1 $AGENT_PID &&
	body="{\"after\":\"$r3\"}" &&
	{ curl -s -o /dev/null -w "%{http_code}" --max-time 30 -X POST \
		-H "Content-Type: application/json" -H "X-Delivery-Id: c03-1" \
		-H "X-Signature-256: sha256=$(sig "$body")" --data-binary "$body" \
		"$URL/hooks/generic" >"$SCRATCH/hook.code" 2>&1 & } &&
	! test -f "$SNAP/r2.end" &&
	wait_for 40 test -f "$SNAP/r3.end" &&
	wait_for 20 log_has "revision $(echo "$r3" | cut -c1-12) applied" &&
	wait_for 30 test -s "$SCRATCH/hook.code" &&
	test "$(cat "$SCRATCH/hook.code")" = 202
'

test_expect_success 'C03: R2 was never mixed with R3 while it was applied' '
	# when the gate of R2 started: a written, b not yet
	all a r2 "$SNAP/r2.start" && all b r1 "$SNAP/r2.start" &&
	# R3 arrived during the gate: nothing changed under it
	test_cmp "$SNAP/r2.start" "$SNAP/r2.end"
'

test_expect_success 'C03: R2 finished whole before R3 began, then R3 applied whole' '
	# when the gate of R3 started: a of R3, and every b of R2 (R2 was done)
	all a r3 "$SNAP/r3.start" && all b r2 "$SNAP/r3.start" &&
	for f in "$ROOT"/srv/app/*.conf; do
		test "$(cat "$f")" = r3 || { echo "$f: $(cat "$f")"; exit 1; }
	done &&
	test "$(ls "$ROOT/srv/app" | grep -c "\.conf$")" = $((2 * N))
'

test_expect_success 'C03: the history holds R2 then R3, both applied, in that order' '
	r2=$(cat "$SCRATCH/r2") && r3=$(cat "$SCRATCH/r3") &&
	db "SELECT id, commit_oid, result, updated, failed, skipped, started_ms, finished_ms
	    FROM passes WHERE command = '\''agent'\'' ORDER BY id" &&
	test "$(db "SELECT result || \" \" || updated || \" \" || failed || \" \" || skipped
		FROM passes WHERE commit_oid = '\''$r2'\''")" = "applied $((2 * N + 1)) 0 0" &&
	test "$(db "SELECT result || \" \" || updated || \" \" || failed || \" \" || skipped
		FROM passes WHERE commit_oid = '\''$r3'\''")" = "applied $((2 * N + 1)) 0 0" &&
	test "$(db "SELECT COUNT(*) FROM passes p2, passes p3
		WHERE p2.commit_oid = '\''$r2'\'' AND p3.commit_oid = '\''$r3'\''
		AND p3.id > p2.id AND p3.started_ms >= p2.finished_ms")" = 1 &&
	test "$(db "SELECT value FROM meta WHERE key = '\''applied_revision'\''")" = "$r3" &&
	test -z "$(db "SELECT value FROM meta WHERE key = '\''in_progress'\''")" &&
	# the log says the same, in the same order
	grep -o -e "new revision [0-9a-f]*" -e "revision [0-9a-f]* applied" "$AGENT_LOG" |
		grep -A3 "new revision $(echo "$r2" | cut -c1-12)" >order &&
	cat order &&
	test "$(sed -n 2p order)" = "revision $(echo "$r2" | cut -c1-12) applied" &&
	test "$(sed -n 3p order)" = "new revision $(echo "$r3" | cut -c1-12)" &&
	test "$(sed -n 4p order)" = "revision $(echo "$r3" | cut -c1-12) applied" &&
	log_has "webhook generic delivery c03-1 accepted"
'

test_expect_success 'the agent stops cleanly' '
	kill -TERM $AGENT_PID &&
	timeout 10 tail --pid=$AGENT_PID -f /dev/null &&
	log_has "agent: stopping"
'

test_done
