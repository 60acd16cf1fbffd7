#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The agent: continuous reconciliation, drift repair in milliseconds, last
# known good revision, single instance, crash recovery, coalescing, flapping.
# shellcheck disable=SC2016
. "$(dirname "$0")/lib.sh"

repo_init repo
write_file repo/app.yaml <<'Y'
apiVersion: driftless/v1
kind: Directory
metadata: {name: app}
spec: {path: /srv/app, mode: "0755"}
---
apiVersion: driftless/v1
kind: File
metadata: {name: conf}
spec: {path: /srv/app/app.conf, content: "gen1\n", mode: "0644"}
---
apiVersion: driftless/v1
kind: File
metadata: {name: rep, annotations: {driftless/drift: report}}
spec: {path: /srv/app/report.conf, content: "git\n"}
---
apiVersion: driftless/v1
kind: File
metadata: {name: ign, annotations: {driftless/drift: ignore}}
spec: {path: /srv/app/ignore.conf, content: "git\n"}
Y
repo_commit repo v1
mkdir -p "$ROOT/srv"
git clone -q --bare repo "$SCRATCH/srv.git"
git -C repo remote add origin "$SCRATCH/srv.git"

AGENT_LOG=$SCRATCH/agent.log
# agent_start [ARGS]: start the agent on the bare repository in the background
agent_start() {
	"$DRIFTLESS" agent --repo "${AGENT_REPO:-$SCRATCH/srv.git}" --root "$ROOT" --state "$STATE" \
		--interval "${AGENT_INTERVAL:-1s}" "$@" >>"$AGENT_LOG" 2>&1 &
	AGENT_PID=$!
	echo "$AGENT_PID" >"$SCRATCH/agent.pid"
	register_pid "$AGENT_PID"
}
agent_pid() { cat "$SCRATCH/agent.pid"; }
agent_stop() {
	kill -TERM "$(agent_pid)" 2>/dev/null
	timeout 10 tail --pid="$(agent_pid)" -f /dev/null
}
push() { git -C repo push -q origin main; }
log_has() { grep -qF -e "$1" "$AGENT_LOG"; }
content_is() { test "$(cat "$1" 2>/dev/null)" = "$2"; }

test_expect_success 'the agent applies the revision at start' '
	agent_start &&
	wait_for 10 test -f "$ROOT/srv/app/app.conf" &&
	test_cmp_text gen1 "$ROOT/srv/app/app.conf" &&
	wait_for 5 log_has "applied: 4 created"
'

test_expect_success 'a second agent on the same state refuses to start, naming the holder' '
	test_must_fail dl agent --repo "$SCRATCH/srv.git" --root "$ROOT" --state "$STATE" &&
	expect_contains "$SCRATCH/stderr" "another driftless (pid $(agent_pid)) holds" 
'

test_expect_success 'a hand edit is repaired before a reader can notice' '
	echo "hand edit" >"$ROOT/srv/app/app.conf" &&
	wait_for 2 content_is "$ROOT/srv/app/app.conf" gen1 &&
	wait_for 2 log_has "File/conf: drift repaired (content) /srv/app/app.conf" &&
	chmod 0600 "$ROOT/srv/app/app.conf" &&
	wait_for 2 expect_mode 644 "$ROOT/srv/app/app.conf" &&
	rm "$ROOT/srv/app/app.conf" &&
	wait_for 2 test -f "$ROOT/srv/app/app.conf"
'

test_expect_success 'drift events are recorded with what changed, before and after' '
	expect_exit 0 dl status --state "$STATE" -o json &&
	python3 -c "
import json,sys
d=json.load(open(sys.argv[1]))
assert d[\"agent\"][\"running\"], d
ev=[e for e in d[\"recentDrift\"] if e[\"id\"]==\"File/conf\" and e[\"action\"]==\"repaired\"]
assert len(ev)>=3, d
c=[e for e in ev if e[\"changes\"]==\"content\"][0]
assert c[\"before\"].startswith(\"file 0644\") and c[\"after\"].startswith(\"file 0644\"), c
assert c[\"before\"].split()[-1]!=c[\"after\"].split()[-1], c
m=[e for e in ev if e[\"changes\"]==\"mode 0600 -> 0644\"][0]
assert m[\"before\"].startswith(\"file 0600\"), m
" "$SCRATCH/stdout"
'

test_expect_success 'report policy: drift is reported, not repaired; ignore: nothing at all' '
	echo hand >"$ROOT/srv/app/report.conf" &&
	echo hand >"$ROOT/srv/app/ignore.conf" &&
	wait_for 2 log_has "File/rep: drift reported, not repaired (content)" &&
	sleep 0.3 &&
	test_cmp_text hand "$ROOT/srv/app/report.conf" &&
	test_cmp_text hand "$ROOT/srv/app/ignore.conf" &&
	! log_has "File/ign: drift"
'

# The agent frees the applied pass 5 s after its last use and loads it
# again for the next repair: from the desired-state cache its pass left, or
# from Git when that file is gone or damaged.
log_count_gt() { test "$(grep -cF -e "$1" "$AGENT_LOG")" -gt "$2"; }
test_expect_success 'after the agent has idled and freed its pass, drift is still repaired' '
	n=$(grep -cF "File/conf: drift repaired" "$AGENT_LOG") &&
	r=$(grep -cF "File/rep: drift reported" "$AGENT_LOG") &&
	sleep 6 &&
	echo "idle edit" >"$ROOT/srv/app/app.conf" &&
	wait_for 2 content_is "$ROOT/srv/app/app.conf" gen1 &&
	wait_for 2 log_count_gt "File/conf: drift repaired" "$n" &&
	echo hand2 >"$ROOT/srv/app/report.conf" &&
	echo hand2 >"$ROOT/srv/app/ignore.conf" &&
	wait_for 2 log_count_gt "File/rep: drift reported" "$r" &&
	test_cmp_text hand2 "$ROOT/srv/app/report.conf" &&
	! log_has "File/ign: drift" &&
	! log_has "cannot load the applied revision"
'

test_expect_success 'with its desired-state cache gone or damaged, the revision is read from Git again' '
	sleep 6 &&
	rm "$STATE/cache/desired.bin" &&
	chmod 0700 "$ROOT/srv/app" &&
	wait_for 2 expect_mode 755 "$ROOT/srv/app" &&
	wait_for 2 log_count_gt "Directory/app: drift repaired (mode 0700 -> 0755)" 0 &&
	test -s "$STATE/cache/desired.bin" &&
	sleep 6 &&
	printf "junk" >"$STATE/cache/desired.bin" &&
	chmod 0711 "$ROOT/srv/app" &&
	wait_for 2 expect_mode 755 "$ROOT/srv/app" &&
	wait_for 2 log_count_gt "Directory/app: drift repaired (mode 0711 -> 0755)" 0 &&
	! log_has "cannot load the applied revision"
'

test_expect_success 'a pushed commit is applied on the next poll' '
	sed -i "s/gen1/gen2/" repo/app.yaml && repo_commit repo v2 && push &&
	wait_for 10 content_is "$ROOT/srv/app/app.conf" gen2
'

test_expect_success 'SIGUSR1 fetches at once' '
	sed -i "s/gen2/gen3/" repo/app.yaml && repo_commit repo v3 && push &&
	kill -USR1 "$(agent_pid)" &&
	wait_for 3 content_is "$ROOT/srv/app/app.conf" gen3
'

test_expect_success 'an invalid revision is rejected; the last good one stays enforced' '
	sed -i "s/mode: \"0644\"/mode: 0644/" repo/app.yaml && repo_commit repo broken && push &&
	kill -USR1 "$(agent_pid)" &&
	wait_for 5 log_has "rejected: app.yaml:9:" &&
	expect_exit 0 dl status --state "$STATE" -o json &&
	python3 -c "
import json,sys
d=json.load(open(sys.argv[1]))
assert d[\"rejectedRevision\"]==sys.argv[2], d
assert d[\"lastAppliedRevision\"]!=sys.argv[2], d
" "$SCRATCH/stdout" "$(repo_head repo)" &&
	echo tamper >"$ROOT/srv/app/app.conf" &&
	wait_for 2 content_is "$ROOT/srv/app/app.conf" gen3 &&
	expect_exit 0 dl status --state "$STATE" -o json &&
	python3 -c "
import json,sys
d=json.load(open(sys.argv[1]))
assert d[\"rejectedRevision\"]==sys.argv[2], (\"a drift repair must not forget the rejection\", d)
" "$SCRATCH/stdout" "$(repo_head repo)" &&
	sleep 1.5 && test "$(grep -c "rejected: app.yaml:9:" "$AGENT_LOG")" = 1
'

test_expect_success 'the fixed revision is applied' '
	sed -i "s/mode: 0644/mode: \"0640\"/" repo/app.yaml && repo_commit repo fixed && push &&
	kill -USR1 "$(agent_pid)" &&
	wait_for 5 expect_mode 640 "$ROOT/srv/app/app.conf"
'

test_expect_success 'many triggers at once are coalesced into one running and one pending fetch' '
	before=$(grep -c "agent: new revision" "$AGENT_LOG") &&
	sed -i "s/gen3/gen4/" repo/app.yaml && repo_commit repo v4 && push &&
	for i in $(seq 1 50); do kill -USR1 "$(agent_pid)"; done &&
	wait_for 5 content_is "$ROOT/srv/app/app.conf" gen4 &&
	sleep 0.5 &&
	after=$(grep -c "agent: new revision" "$AGENT_LOG") &&
	test $((after - before)) -eq 1 &&
	kill -0 "$(agent_pid)"
'

test_expect_success 'a file that keeps being changed by another writer is backed off, reported once' '
	end=$(( $(date +%s) + 4 )) &&
	n=0 &&
	while [ "$(date +%s)" -lt "$end" ]; do echo "writer $n" >"$ROOT/srv/app/app.conf"; n=$((n + 1)); sleep 0.02; done &&
	repairs=$(grep -c "File/conf: drift repaired" "$AGENT_LOG") &&
	test "$(grep -c "File/conf: keeps being changed by someone else" "$AGENT_LOG")" -eq 1 &&
	echo "writes: $n, repairs so far: $repairs" &&
	test "$repairs" -lt 20 &&
	wait_for 20 content_is "$ROOT/srv/app/app.conf" gen4
'

test_expect_success 'SIGTERM stops the agent cleanly' '
	agent_stop &&
	! kill -0 "$(agent_pid)" 2>/dev/null &&
	log_has "agent: stopping"
'

test_expect_success 'with the source unreachable the host is still held to the last good revision' '
	mv "$SCRATCH/srv.git" "$SCRATCH/srv.moved" &&
	echo "while down" >"$ROOT/srv/app/app.conf" &&
	agent_start &&
	wait_for 5 content_is "$ROOT/srv/app/app.conf" gen4 &&
	wait_for 5 log_has "fetch failed" &&
	expect_exit 0 dl status --state "$STATE" &&
	expect_contains stdout "source:             stale since" &&
	echo again >"$ROOT/srv/app/app.conf" &&
	wait_for 2 content_is "$ROOT/srv/app/app.conf" gen4
'

test_expect_success 'when the source comes back, new commits flow again' '
	mv "$SCRATCH/srv.moved" "$SCRATCH/srv.git" &&
	sed -i "s/gen4/gen5/" repo/app.yaml && repo_commit repo v5 && push &&
	kill -USR1 "$(agent_pid)" &&
	wait_for 20 content_is "$ROOT/srv/app/app.conf" gen5 &&
	wait_for 5 log_has "source reachable again" &&
	agent_stop
'

test_expect_success 'kill -9 in the middle of a pass: the next start converges' '
	for i in $(seq 1 300); do
		printf "%s\n" "---" "apiVersion: driftless/v1" "kind: File" "metadata: {name: m$i}" \
			"spec: {path: /srv/app/m$i.conf, content: \"m$i\"}"
	done >repo/many.yaml &&
	repo_commit repo many && push &&
	strace -f -o /dev/null -e trace=rename,renameat,renameat2,linkat \
		-e inject=rename,renameat,renameat2,linkat:signal=KILL:when=100 \
		"$DRIFTLESS" agent --repo "$SCRATCH/srv.git" --root "$ROOT" --state "$STATE" \
		>>"$AGENT_LOG" 2>&1 || true
	test ! -f "$ROOT/srv/app/m300.conf" &&
	agent_start &&
	wait_for 10 test -f "$ROOT/srv/app/m300.conf" &&
	wait_for 5 log_has "recovering from an interrupted apply" &&
	test -z "$(find "$ROOT" -name ".driftless-tmp.*")" &&
	content_is "$ROOT/srv/app/m150.conf" m150 &&
	agent_stop
'

test_expect_success 'a revision that crashed the agent three times is skipped until a newer one' '
	head=$(git -C "$SCRATCH/srv.git" rev-parse main) &&
	sed -i "s/gen5/gen6/" repo/app.yaml && repo_commit repo v6 && push &&
	new=$(git -C "$SCRATCH/srv.git" rev-parse main) &&
	sqlite3 "$STATE/driftless.db" "INSERT OR REPLACE INTO meta VALUES ('\''attempts:$new'\'', '\''3'\'')" &&
	agent_start &&
	wait_for 5 log_has "revision ${new:0:12} stopped the agent 3 times" &&
	sleep 0.5 &&
	test_cmp_text gen5 "$ROOT/srv/app/app.conf" &&
	expect_exit 0 dl status --state "$STATE" &&
	expect_contains stdout "bad revision:       $new" &&
	sed -i "s/gen6/gen7/" repo/app.yaml && repo_commit repo v7 && push &&
	kill -USR1 "$(agent_pid)" &&
	wait_for 5 content_is "$ROOT/srv/app/app.conf" gen7 &&
	agent_stop
'

test_done
