#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# bench/run.sh [N...]: time driftless against N managed files (default 10000)
# next to `git status` on a checkout of the same tree, in the same run.
# Uses hyperfine (Debian package hyperfine) and /usr/bin/time; prints
# markdown rows for bench/RESULTS.md. Not part of the test suite.
set -eu
cd "$(dirname "$0")/.."
D=${DRIFTLESS:-$PWD/build/driftless}
W=$(mktemp -d /tmp/driftless-bench.XXXXXX)
trap 'rm -rf "$W"' EXIT
command -v hyperfine >/dev/null || { echo "bench: needs hyperfine (apt-get install hyperfine)" >&2; exit 1; }

row() { printf '| %s | %s | %s |\n' "$1" "$2" "$3"; }
median() { # hyperfine JSON -> median seconds
	python3 -c 'import json,sys; print("%.4f" % json.load(open(sys.argv[1]))["results"][0]["median"])' "$1"
}

echo "| measurement | median seconds | ratio to git status |"
echo "|---|---|---|"
for n in "${@:-10000}"; do
	for shape in files dirs; do
		repo=$W/repo-$n-$shape root=$W/root-$n-$shape state=$W/state-$n-$shape
		bench/gen.sh "$repo" "$n" "$shape" >/dev/null
		mkdir -p "$root/srv"
		args="--repo $repo --root $root --state $state"
		first=$( { /usr/bin/time -f "%e %M" "$D" apply $args >/dev/null; } 2>&1 | tail -n1)
		row "first apply, $n files ($shape)" "${first%% *}" "peak RSS ${first##* } KiB"
		"$D" apply $args >/dev/null	# settles the racily-clean stat cache entries
		sleep 2
		"$D" apply $args >/dev/null
		hyperfine -N -w 3 -r 15 --export-json "$W/git.json" "git -C $repo status --porcelain" >/dev/null 2>&1
		hyperfine -N -w 3 -r 15 --export-json "$W/apply.json" "$D apply $args" >/dev/null 2>&1
		hyperfine -N -w 3 -r 15 --export-json "$W/plan.json" "$D plan $args" >/dev/null 2>&1
		g=$(median "$W/git.json") a=$(median "$W/apply.json") p=$(median "$W/plan.json")
		row "git status, $n files ($shape)" "$g" "1.00"
		row "no-op apply, $n files ($shape)" "$a" "$(python3 -c "print('%.2f' % ($a / $g))")"
		row "no-op plan, $n files ($shape)" "$p" "$(python3 -c "print('%.2f' % ($p / $g))")"
	done
done
