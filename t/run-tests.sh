#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Runs the end-to-end test scripts t/t[0-9]*.sh and sums up their TAP output.
#
# usage: t/run-tests.sh [-j N] [-v] [SCRIPT...]
#
# Without SCRIPT, every t/t[0-9]*.sh runs, in sorted order. -j N runs up to N
# scripts at once; -v streams each script's output as it runs (sequential
# runs only). A script counts as failed when it prints "not ok" (TODO tests
# aside), bails out, exits non-zero, times out (DL_SCRIPT_TIMEOUT seconds,
# default 900) or ends without a plan matching its test count. The last line
# printed is always "N passed, N failed", counting test cases (a broken
# script adds one failure of its own); the exit status is 0 only when
# nothing failed.

set -u
export LC_ALL=C # sorted globs, plain messages

here=$(cd "$(dirname "$0")" && pwd)
jobs=1
verbose=0

usage() {
	echo "usage: t/run-tests.sh [-j N] [-v] [SCRIPT...]" >&2
	exit 64
}

while [ $# -gt 0 ]; do
	case "$1" in
	-j) [ $# -ge 2 ] || usage; jobs=$2; shift 2 ;;
	-j[0-9]*) jobs=${1#-j}; shift ;;
	-v) verbose=1; shift ;;
	-h | --help) usage ;;
	--) shift; break ;;
	-*) usage ;;
	*) break ;;
	esac
done
case "$jobs" in
'' | *[!0-9]* | 0) usage ;;
esac

scripts=()
if [ $# -gt 0 ]; then
	for s in "$@"; do
		case "$s" in
		*/*) scripts+=("$s") ;;
		*) scripts+=("$here/$s") ;;
		esac
	done
else
	for s in "$here"/t[0-9]*.sh; do
		[ -f "$s" ] && scripts+=("$s")
	done
fi
if [ ${#scripts[@]} -eq 0 ]; then
	echo "no test scripts found"
	echo "0 passed, 0 failed"
	exit 1
fi

results=$(mktemp -d "${TMPDIR:-/tmp}/driftless-results.XXXXXX") || exit 1
timeout_s=${DL_SCRIPT_TIMEOUT:-900}

# run_one INDEX SCRIPT: run SCRIPT; output and exit status into $results.
run_one() {
	local out=$results/$1.out rc=0
	if ! [ -f "$2" ]; then
		echo "Bail out! no such script: $2" >"$out"
		echo 1 >"$results/$1.rc"
		return
	fi
	if [ "$verbose" = 1 ] && [ "$jobs" = 1 ]; then
		timeout -k 10 "$timeout_s" bash "$2" </dev/null 2>&1 | tee "$out"
		rc=${PIPESTATUS[0]}
	else
		timeout -k 10 "$timeout_s" bash "$2" </dev/null >"$out" 2>&1 || rc=$?
	fi
	echo "$rc" >"$results/$1.rc"
}

i=0
running=0
for s in "${scripts[@]}"; do
	if [ "$jobs" = 1 ]; then
		[ "$verbose" = 1 ] && echo "*** $(basename "$s")"
		run_one "$i" "$s"
	else
		run_one "$i" "$s" &
		running=$((running + 1))
		if [ "$running" -ge "$jobs" ]; then
			wait -n
			running=$((running - 1))
		fi
	fi
	i=$((i + 1))
done
wait

total_pass=0
total_fail=0
total_skip=0
total_todo=0
bad_scripts=()
i=0
for s in "${scripts[@]}"; do
	name=$(basename "$s")
	out=$results/$i.out
	rc=$(cat "$results/$i.rc" 2>/dev/null || echo 1)
	i=$((i + 1))

	pass=$(grep -Ec '^ok [0-9]+( |$)' "$out")
	skip=$(grep -Ec '^ok [0-9]+.*# (SKIP|skip)' "$out")
	fixed=$(grep -Ec '^ok [0-9]+.*# TODO' "$out")
	fail=$(grep -Ec '^not ok [0-9]+( |$)' "$out")
	todo=$(grep -Ec '^not ok [0-9]+.*# TODO' "$out")
	pass=$((pass - skip))
	fail=$((fail - todo))
	ntests=$((pass + skip + fail + todo))
	plan=$(sed -n 's/^1\.\.\([0-9][0-9]*\).*/\1/p' "$out" | tail -n 1)

	problem=
	if grep -q '^Bail out!' "$out"; then
		problem=$(grep -m1 '^Bail out!' "$out")
	elif [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
		problem="timed out after ${timeout_s}s"
	elif [ -z "$plan" ]; then
		problem="no plan (died after $ntests tests, exit $rc)"
	elif [ "$plan" != "$ntests" ]; then
		problem="plan 1..$plan but $ntests tests ran"
	elif [ "$rc" != 0 ] && [ "$fail" -eq 0 ]; then
		problem="exit status $rc"
	fi
	if [ -n "$problem" ]; then
		fail=$((fail + 1))
	fi

	total_pass=$((total_pass + pass))
	total_fail=$((total_fail + fail))
	total_skip=$((total_skip + skip))
	total_todo=$((total_todo + todo))

	extra=
	[ "$skip" -eq 0 ] || extra="$extra, $skip skipped"
	[ "$todo" -eq 0 ] || extra="$extra, $todo known breakage"
	[ "$fixed" -eq 0 ] || extra="$extra, $fixed known breakage vanished"
	if [ "$fail" -eq 0 ]; then
		if [ "$plan" = 0 ] && [ "$ntests" -eq 0 ]; then
			printf '%-32s skipped%s\n' "$name" \
				"$(sed -n 's/^1\.\.0 *# *SKIP */: /p' "$out" | head -n 1)"
		else
			printf '%-32s ok (%d passed%s)\n' "$name" "$pass" "$extra"
		fi
	else
		printf '%-32s FAILED (%d passed, %d failed%s)%s\n' "$name" \
			"$pass" "$fail" "$extra" "${problem:+: $problem}"
		bad_scripts+=("$name")
		if [ "$verbose" = 0 ] || [ "$jobs" != 1 ]; then
			lines=$(wc -l <"$out")
			if [ "$lines" -gt 400 ]; then
				echo "    ... (first $((lines - 400)) lines cut; full log in $out)"
			fi
			tail -n 400 "$out" | sed 's/^/    /'
		fi
	fi
done

if [ ${#bad_scripts[@]} -eq 0 ]; then
	rm -rf "$results"
else
	echo "failed scripts: ${bad_scripts[*]} (logs in $results)"
fi
if [ "$total_skip" -gt 0 ] || [ "$total_todo" -gt 0 ]; then
	echo "($total_skip skipped, $total_todo known breakages not counted)"
fi
echo "$total_pass passed, $total_fail failed"
[ "$total_fail" -eq 0 ]
