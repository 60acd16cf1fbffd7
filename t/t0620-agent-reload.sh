#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Reloads during fetches and passes (HARDENING C02 b): the agent gets SIGHUP
# over and over while it fetches from a slow git server, applies new
# revisions and repairs drift, with a config whose policy alternately
# accepts and rejects the revision. It must not crash (use after free shows
# in the ASan build), leak, or leave half a state; it converges at the end.
# shellcheck disable=SC2016
. "$(dirname "$0")/lib.sh"

mkdir -p "$SCRATCH/srv" "$ROOT/srv" "$ROOT/opt"
R=$SCRATCH/work
repo_init "$R"
files() {
	for i in $(seq 1 20); do
		write_file "$R/f$i.yaml" <<-Y
		apiVersion: driftless/v1
		kind: File
		metadata: {name: f$i}
		spec: {path: /srv/f$i.conf, content: "$1 f$i\n"}
		Y
	done
	# incompressible bytes, so that each fetch takes a while through the proxy
	head -c 262144 /dev/urandom >"$R/blob.bin"
}
files v0
repo_commit "$R" v0
git clone -q --bare "$R" "$SCRATCH/srv/infra.git"
start_git_daemon "$SCRATCH/srv" || bail_out "cannot start git daemon"
start_slow_proxy "${GIT_DAEMON_URL##*:}" 200000 || bail_out "cannot start the proxy"
URL=git://127.0.0.1:$SLOW_PROXY_PORT/infra.git
LOG=$SCRATCH/agent.log
CFG=$SCRATCH/agent.yaml

# good: the revision is within the policy; bad: the same revision is denied
good() { printf 'source:\n  interval: 1s\n  timeout: 30s\npolicy:\n  roots: [/srv]\n' >"$CFG.new"; mv "$CFG.new" "$CFG"; }
bad() { printf 'source:\n  interval: 2s\npolicy:\n  roots: [/opt]\n  maxFileSize: 1000\n' >"$CFG.new"; mv "$CFG.new" "$CFG"; }

ROUNDS=150
dl_is_asan && ROUNDS=100

test_expect_success 'C02: SIGHUP storms during slow fetches and passes' '
	good
	ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=16" \
		"$DRIFTLESS" agent -c "$CFG" --repo "$URL" --root "$ROOT" --state "$STATE" >"$LOG" 2>&1 &
	pid=$! && register_pid $pid &&
	wait_for 60 grep -q "revision .* applied" "$LOG" &&
	start=$(date +%s) &&
	for i in $(seq 1 $ROUNDS); do
		# good, bad, bad: a reload whose pass is rejected, then another one
		case $((i % 3)) in 0) good ;; *) bad ;; esac
		kill -HUP $pid
		echo "drift $i" >"$ROOT/srv/f$((i % 20 + 1)).conf"
		if [ $((i % 15)) = 0 ]; then
			files "v$i" && repo_commit "$R" "v$i" >/dev/null &&
			git -C "$R" push -q "$SCRATCH/srv/infra.git" main && kill -USR1 $pid
		fi
		sleep 0.1
		kill -0 $pid || { echo "the agent died at round $i"; exit 1; }
		[ $(($(date +%s) - start)) -lt 90 ] || { echo "rounds took too long"; exit 1; }
	done &&
	good && kill -HUP $pid &&
	files final && repo_commit "$R" final && git -C "$R" push -q "$SCRATCH/srv/infra.git" main &&
	kill -USR1 $pid &&
	wait_for 60 grep -qx "final f7" "$ROOT/srv/f7.conf" &&
	sleep 2 &&
	for i in $(seq 1 20); do test_cmp_text "final f$i" "$ROOT/srv/f$i.conf" || exit 1; done &&
	reloads=$(grep -c "configuration reloaded" "$LOG" || true) &&
	rejected=$(grep -c "rejected: .*outside the allowed roots" "$LOG" || true) &&
	echo "reloads: $reloads, rejections: $rejected" &&
	test "$reloads" -ge $ROUNDS && test "$rejected" -gt 0 &&
	kill -TERM $pid &&
	rc=0 && { wait $pid || rc=$?; } &&
	{ test "$rc" = 0 || { echo "agent exit status $rc"; tail -n 50 "$LOG"; exit 1; }; } &&
	! grep -E "AddressSanitizer|LeakSanitizer|runtime error" "$LOG" &&
	test "$(sqlite3 "$STATE/driftless.db" "PRAGMA integrity_check")" = ok &&
	test -z "$(find "$ROOT" -name ".driftless-tmp.*")" &&
	test -z "$(ls "$ROOT/opt")"
'

test_done
