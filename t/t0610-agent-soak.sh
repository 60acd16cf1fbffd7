#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# A long-running agent does not grow: thousands of drift repairs and dozens
# of passes, then memory compared and (in the ASan build) LeakSanitizer's
# verdict at exit read from the agent's log.
# shellcheck disable=SC2016
. "$(dirname "$0")/lib.sh"

repo_init repo
for i in $(seq 1 200); do
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

rss() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }

# soak PID EDITS GAP COMMITS TAG: two rounds of EDITS hand edits GAP
# seconds apart and COMMITS pushed commits, each announced with SIGUSR1;
# the agent's RSS after each round in rss1 and rss2
soak() {
	local pid=$1 edits=$2 gap=$3 commits=$4 tag=$5 round i c
	for round in 1 2; do
		for i in $(seq 1 "$edits"); do
			echo "$tag$i" >"$ROOT/srv/f$((i % 200 + 1)).conf"
			sleep "$gap"
		done
		for c in $(seq 1 "$commits"); do
			sed -i "s/content: \"f1[^\\\\]*/content: \"f1 $tag round $round commit $c/" repo/f1.yaml &&
			repo_commit repo "$tag r$round c$c" && git -C repo push -q "$SCRATCH/src.git" main &&
			kill -USR1 "$pid" && sleep 0.3 || return 1
		done
		sleep 1
		eval "rss$round=$(rss "$pid")"
	done
}

test_expect_success 'thousands of repairs and passes leave memory flat and nothing leaked' '
	# ASan holds freed memory in quarantine; keep it small so RSS means something
	ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=1" \
		"$DRIFTLESS" agent --repo "$SCRATCH/src.git" --root "$ROOT" --state "$STATE" --interval 1s >"$LOG" 2>&1 &
	pid=$! && register_pid $pid &&
	wait_for 20 grep -q "applied:" "$LOG" &&
	soak $pid 500 0.01 5 x &&
	echo "RSS after round 1: $rss1 KiB, after round 2: $rss2 KiB" &&
	test $((rss2 - rss1)) -lt 4096 &&
	repairs=$(grep -c "drift repaired" "$LOG") &&
	echo "repairs: $repairs" && test "$repairs" -gt 800 &&
	kill -TERM $pid && timeout 20 tail --pid=$pid -f /dev/null &&
	! grep -q "LeakSanitizer" "$LOG" &&
	! grep -q "runtime error" "$LOG"
'

# DRIFTLESS_AGENT_COOL_MS=1: the applied pass is freed a millisecond after
# each pass or repair, so nearly every repair loads it again
# (agent_warm): the same soak, with that path taken hundreds of times.
test_expect_success 'the same with the applied pass freed after each use: repaired, flat, nothing leaked' '
	rm -rf "$STATE" "$ROOT/srv" && mkdir -p "$ROOT/srv" || return 1
	LOG2=$SCRATCH/agent2.log
	DRIFTLESS_AGENT_COOL_MS=1 ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=1" \
		"$DRIFTLESS" agent --repo "$SCRATCH/src.git" --root "$ROOT" --state "$STATE" --interval 1s >"$LOG2" 2>&1 &
	pid=$! && register_pid $pid &&
	wait_for 20 grep -q "applied:" "$LOG2" &&
	soak $pid 300 0.02 3 y &&
	echo "RSS after round 1: $rss1 KiB, after round 2: $rss2 KiB" &&
	test $((rss2 - rss1)) -lt 4096 &&
	repairs=$(grep -c "drift repaired" "$LOG2") &&
	echo "repairs: $repairs" && test "$repairs" -gt 500 &&
	for i in $(seq 1 200); do
		case $i in 1) continue ;; esac
		test "$(cat "$ROOT/srv/f$i.conf")" = "f$i" || { echo "f$i: $(cat "$ROOT/srv/f$i.conf")"; return 1; }
	done &&
	! grep -q "cannot load the applied revision" "$LOG2" &&
	kill -TERM $pid && timeout 20 tail --pid=$pid -f /dev/null &&
	! grep -q "LeakSanitizer" "$LOG2" &&
	! grep -q "runtime error" "$LOG2"
'

test_done
