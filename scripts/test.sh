#!/usr/bin/env bash
# Run the unit tests (meson) and the end-to-end tests (t/) for each build
# directory given, then print one summary line: "N passed, N failed".
set -u
cd "$(dirname "$0")/.."
passed=0 failed=0
# sanitizer findings are failures, not log noise
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0
export LSAN_OPTIONS=suppressions=$PWD/tests/lsan.supp:print_suppressions=0
for b in "$@"; do
	echo "== unit tests ($b)"
	out=$(meson test -C "$b" --print-errorlogs 2>&1)
	rc=$?
	echo "$out" | grep -E '^ *[0-9]+/[0-9]+ ' || true
	ok=$(echo "$out" | sed -n 's/^Ok: *\([0-9]*\).*/\1/p' | tail -n1)
	bad=$(echo "$out" | sed -n 's/^Fail: *\([0-9]*\).*/\1/p' | tail -n1)
	to=$(echo "$out" | sed -n 's/^Timeout: *\([0-9]*\).*/\1/p' | tail -n1)
	ok=${ok:-0} bad=${bad:-0} to=${to:-0}
	if [ "$rc" -ne 0 ] && [ "$bad" -eq 0 ] && [ "$to" -eq 0 ]; then
		echo "$out" | tail -n 30
		bad=1
	fi
	[ "$bad" -gt 0 ] && echo "$out" | tail -n 60
	passed=$((passed + ok)) failed=$((failed + bad + to))
	echo "== end-to-end tests ($b)"
	log=$(mktemp)
	DRIFTLESS="$PWD/$b/driftless" t/run-tests.sh >"$log" 2>&1
	cat "$log"
	summary=$(tail -n1 "$log")
	rm -f "$log"
	p=$(echo "$summary" | sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed.*/\1/p')
	f=$(echo "$summary" | sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed.*/\2/p')
	if [ -z "$p" ]; then
		echo "end-to-end runner printed no summary" >&2
		p=0 f=1
	fi
	passed=$((passed + p)) failed=$((failed + f))
done
# a short bounded run of every fuzz target (longer runs: make fuzz)
if [ -n "${DL_FUZZ_SECONDS:-20}" ] && [ "${DL_FUZZ_SECONDS:-20}" != 0 ] && command -v clang >/dev/null; then
	echo "== fuzz targets (${DL_FUZZ_SECONDS:-20} s each)"
	log=$(mktemp)
	scripts/fuzz.sh "${DL_FUZZ_SECONDS:-20}" >"$log" 2>&1
	grep -E '^(ok|not ok) ' "$log" || tail -n 40 "$log"
	p=$(tail -n1 "$log" | sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed.*/\1/p')
	f=$(tail -n1 "$log" | sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed.*/\2/p')
	[ -n "$p" ] || { tail -n 40 "$log"; p=0 f=1; }
	passed=$((passed + p)) failed=$((failed + f))
	rm -f "$log"
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
