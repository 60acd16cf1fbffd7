#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# bench/run.sh [N...]: time driftless against N managed files (default 10000),
# each figure next to a reference run in the same script on the same tree:
#   no-op apply and plan       -> `git status --porcelain` on the checkout
#   first apply (with fsync)   -> `git clone` of the repository plus `sync`
#                                 (fetch, index and write the same files)
#   one-file commit, CLI apply -> the first apply (a full pass)
# Uses hyperfine and /usr/bin/time (Debian packages hyperfine, time) and
# strace for the share of the first apply spent in sync calls. Prints
# markdown rows for bench/RESULTS.md. Not part of the test suite.
# SHAPES="files dirs" (default) picks the repository shapes (bench/gen.sh).
set -eu
cd "$(dirname "$0")/.."
D=${DRIFTLESS:-$PWD/build/driftless}
W=$(mktemp -d /tmp/driftless-bench.XXXXXX)
trap 'rm -rf "$W"' EXIT
for t in hyperfine strace; do
	command -v $t >/dev/null || { echo "bench: needs $t (apt-get install $t)" >&2; exit 1; }
done

row() { printf '| %s | %s | %s | %s |\n' "$1" "$2" "$3" "$4"; }
median() { # hyperfine JSON -> median seconds
	python3 -c 'import json,sys; print("%.4f" % json.load(open(sys.argv[1]))["results"][0]["median"])' "$1"
}
ratio() { python3 -c "print('%.2f' % ($1 / $2))"; }
# timed CMD...: "SECONDS PEAK_KIB" of one run (after a sync, so that earlier
# runs' dirty pages are not this one's to write)
timed() { sync; { /usr/bin/time -f "%e %M" "$@" >/dev/null 2>"$W/timed.err"; } 2>&1; tail -n1 "$W/timed.err"; }

echo "| measurement | result | reference | ratio |"
echo "|---|---|---|---|"
for n in "${@:-10000}"; do
	for shape in ${SHAPES:-files dirs}; do
		repo=$W/repo-$n-$shape root=$W/root-$n-$shape state=$W/state-$n-$shape
		bench/gen.sh "$repo" "$n" "$shape" >/dev/null
		mkdir -p "$root/srv"
		args="--repo $repo --root $root --state $state"

		# first apply, against git clone + sync of the same repository
		first=$(timed "$D" apply $args)
		rm -rf "$W/clone"
		clone=$(timed sh -c "git clone -q '$repo' '$W/clone' && sync")
		rm -rf "$W/clone"
		row "first apply, $n files ($shape)" "${first%% *} s, peak RSS ${first##* } KiB" \
			"git clone + sync: ${clone%% *} s" "$(ratio "${first%% *}" "${clone%% *}")"
		# the same first apply again, for its stages and its time in sync calls
		# (--seccomp-bpf: only the sync calls stop under strace, so the stages
		# are not slowed by it)
		rm -rf "$root" "$state" && mkdir -p "$root/srv" && sync
		DRIFTLESS_TIMING=1 strace --seccomp-bpf -f -c -e trace=fsync,fdatasync,syncfs -o "$W/sync.txt" \
			"$D" apply $args 2>"$W/stages" >/dev/null
		syncs=$(awk '$NF == "total" {print $2}' "$W/sync.txt")
		stages=$(awk '/^timing:/ && $2 != "start" && $4 == "ms" {printf "%s%s %s ms", sep, $2, $3; sep=", "}' "$W/stages")
		row "  stages of that first apply ($shape)" "$stages" "in sync calls: ${syncs:-0} s" ""

		"$D" apply $args >/dev/null	# settles the racily-clean stat cache entries
		sleep 2
		"$D" apply $args >/dev/null
		hyperfine -N -w 3 -r 21 --export-json "$W/git.json" "git -C $repo status --porcelain" >/dev/null 2>&1
		hyperfine -N -w 3 -r 21 --export-json "$W/apply.json" "$D apply $args" >/dev/null 2>&1
		hyperfine -N -w 3 -r 21 --export-json "$W/plan.json" "$D plan $args" >/dev/null 2>&1
		g=$(median "$W/git.json") a=$(median "$W/apply.json") p=$(median "$W/plan.json")
		row "no-op apply, $n files ($shape)" "$a s" "git status: $g s" "$(ratio "$a" "$g")"
		row "no-op plan, $n files ($shape)" "$p s" "git status: $g s" "$(ratio "$p" "$g")"
		peak=$(timed "$D" apply $args)
		row "  peak RSS of a no-op apply ($shape)" "${peak##* } KiB" "" ""

		# one changed manifest (files shape: a mode; dirs: a mirrored file)
		for i in 1 2 3; do
			if [ "$shape" = files ]; then
				sed -i "0,/mode: \"0644\"/s//mode: \"0640\"/" "$repo/m$((i * 7)).yaml"
			else
				echo "changed $i" >>"$repo/files/d$i/f$((i * 1000 + 5)).conf"
			fi
			git -C "$repo" commit -qam "one file $i"
			one=$(timed "$D" apply $args)
			row "one-file commit $i, $n files ($shape)" "${one%% *} s, peak RSS ${one##* } KiB" \
				"first apply: ${first%% *} s" "$(python3 -c "print('%.1f %%' % (100 * ${one%% *} / ${first%% *}))")"
		done
		rm -rf "$repo" "$root" "$state"
	done
done
