#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# A leak soak (E-BOUND): the agent runs thousands of full passes (fullResync
# of 40 ms) while files drift and are repaired and fetches are triggered;
# its resident memory between an early and a late sample stays within a
# small bound, and (ASan build) LeakSanitizer reports nothing at exit. The
# ASan build runs fewer passes.
# shellcheck disable=SC2016
. "$(dirname "$0")/lib.sh"

repo_init repo
for i in $(seq 1 50); do
	write_file "repo/f$i.yaml" <<-Y
	apiVersion: driftless/v1
	kind: File
	metadata: {name: f$i}
	spec: {path: /srv/f$i.conf, content: "f$i\n"}
	Y
done
repo_commit repo v1
git clone -q --bare repo "$SCRATCH/src.git"
mkdir -p "$ROOT/srv"
LOG=$SCRATCH/agent.log
CFG=$SCRATCH/agent.yaml
printf 'fullResync: 40ms\nsource:\n  interval: 1h\n' >"$CFG"

PASSES=2000 EARLY=200 GROWTH_KIB=4096
dl_is_asan && PASSES=600 EARLY=100 GROWTH_KIB=8192

rss() { awk '/VmRSS/ { print $2 }' "/proc/$1/status"; }
passes() { grep -c "^agent: revision .* applied:" "$LOG" || true; }

# wait_passes N SECONDS: until the log shows N passes, repairing drift and
# asking for fetches meanwhile
wait_passes() {
	local deadline=$(($(date +%s) + $2)) i=0
	while [ "$(passes)" -lt "$1" ]; do
		[ "$(date +%s)" -lt $deadline ] || { echo "only $(passes) passes of $1 in $2 s"; return 1; }
		kill -0 $pid || { echo "the agent died"; return 1; }
		i=$((i + 1))
		echo "drift $i" >"$ROOT/srv/f$((i % 50 + 1)).conf"
		[ $((i % 20)) = 0 ] && kill -USR1 $pid
		sleep 0.05
	done
}

test_expect_success "$PASSES passes with drift repairs leave memory flat and nothing leaked" '
	ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=1" \
		"$DRIFTLESS" agent -c "$CFG" --repo "$SCRATCH/src.git" --root "$ROOT" --state "$STATE" >"$LOG" 2>&1 &
	pid=$! && register_pid $pid &&
	wait_for 30 grep -q "applied:" "$LOG" &&
	wait_passes $EARLY 60 &&
	early=$(rss $pid) &&
	wait_passes $PASSES 170 &&
	late=$(rss $pid) &&
	repairs=$(grep -c "drift repaired" "$LOG" || true) &&
	echo "passes: $(passes), repairs: $repairs, RSS after $EARLY passes: $early KiB, at the end: $late KiB" &&
	test "$repairs" -gt $((PASSES / 10)) &&
	test $((late - early)) -lt $GROWTH_KIB &&
	kill -TERM $pid &&
	rc=0 && { wait $pid || rc=$?; } &&
	{ test "$rc" = 0 || { echo "agent exit status $rc"; tail -n 30 "$LOG"; exit 1; }; } &&
	! grep -E "LeakSanitizer|AddressSanitizer|runtime error" "$LOG"
'

test_done
