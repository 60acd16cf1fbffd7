#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Enough resources for the plan to stat them ahead on worker threads
# (core/apply.c, PRESTAT_MIN): what it finds must be exactly what a
# one-by-one plan finds, for every kind of difference.
# shellcheck disable=SC2016
. "$(dirname "$0")/lib.sh"

repo_init repo
for m in 0 1 2; do
	for i in $(seq $((m * 800)) $((m * 800 + 799))); do
		printf -- '---\napiVersion: driftless/v1\nkind: File\nmetadata: {name: f%d}\nspec: {path: /srv/d%d/f%d.conf, content: "f%d\\n", mode: "0644"}\n' \
			"$i" "$((i % 7))" "$i" "$i"
	done >"repo/m$m.yaml"
done
cat >>repo/m2.yaml <<'Y'
---
apiVersion: driftless/v1
kind: Directory
metadata: {name: dir}
spec: {path: /srv/dir, mode: "0755"}
---
apiVersion: driftless/v1
kind: Symlink
metadata: {name: link}
spec: {path: /srv/link, target: d1/f1.conf}
Y
repo_commit repo v1
mkdir -p "$ROOT"/srv/d0 "$ROOT"/srv/d1 "$ROOT"/srv/d2 "$ROOT"/srv/d3 "$ROOT"/srv/d4 "$ROOT"/srv/d5 "$ROOT"/srv/d6

test_expect_success 'first apply creates all 2,402 resources' '
	expect_exit 0 dl_apply repo &&
	expect_contains stdout "2402 created" &&
	test_cmp_text f1999 "$ROOT/srv/d4/f1999.conf"
'

test_expect_success 'a no-op plan of them finds nothing' '
	sleep 2 &&
	expect_exit 0 dl_plan repo &&
	expect_contains stdout "0 to create, 0 to update, 0 to delete, 2402 unchanged"
'

test_expect_success 'a no-op in JSON still lists every resource, and apply counts them all' '
	expect_exit 0 dl_plan repo -o json &&
	test "$(grep -o "\"action\":\"none\"" stdout | wc -l)" -eq 2402 &&
	expect_exit 0 dl_apply repo -o json &&
	test "$(grep -o "\"outcome\":\"unchanged\"" stdout | wc -l)" -eq 2402 &&
	expect_contains stdout "\"unchanged\":2402" &&
	expect_exit 0 dl_apply repo &&
	expect_contains stdout "0 created, 0 updated, 0 deleted, 2402 unchanged, 0 failed"
'

test_expect_success 'each kind of difference is found, and only those' '
	echo hand >"$ROOT/srv/d5/f5.conf" &&
	chmod 600 "$ROOT/srv/d3/f17.conf" &&
	rm "$ROOT/srv/d2/f100.conf" &&
	rm "$ROOT/srv/d5/f2000.conf" && ln -s /etc/passwd "$ROOT/srv/d5/f2000.conf" &&
	rm "$ROOT/srv/d6/f2001.conf" && mkdir "$ROOT/srv/d6/f2001.conf" &&
	rmdir "$ROOT/srv/dir" && rm "$ROOT/srv/link" && ln -s d2/f2.conf "$ROOT/srv/link" &&
	expect_exit 1 dl_plan repo &&
	grep "^[+~!-] " stdout | sort >"$SCRATCH/changes" &&
	test "$(wc -l <"$SCRATCH/changes")" -eq 7 &&
	grep "^~ update File/f5 .*(content)" "$SCRATCH/changes" &&
	grep "^~ update File/f17 .*(mode 0600 -> 0644)" "$SCRATCH/changes" &&
	grep "^+ create File/f100 " "$SCRATCH/changes" &&
	grep "^~ update File/f2000 .*(symlink -> file)" "$SCRATCH/changes" &&
	grep "^! File/f2001 .*is a directory" "$SCRATCH/changes" &&
	grep "^+ create Directory/dir " "$SCRATCH/changes" &&
	grep "^~ update Symlink/link .*d2/f2.conf" "$SCRATCH/changes" &&
	expect_contains stdout "2395 unchanged"
'

test_expect_success 'apply repairs them; a directory in the way of a File is refused by name' '
	expect_exit 1 dl_apply repo &&
	expect_contains stdout "f2001" &&
	test_cmp_text f5 "$ROOT/srv/d5/f5.conf" &&
	expect_mode 644 "$ROOT/srv/d3/f17.conf" &&
	test_cmp_text f100 "$ROOT/srv/d2/f100.conf" &&
	test -f "$ROOT/srv/d5/f2000.conf" && ! test -L "$ROOT/srv/d5/f2000.conf" &&
	test_cmp_text f2000 "$ROOT/srv/d5/f2000.conf" &&
	test -d "$ROOT/srv/dir" &&
	test "$(readlink "$ROOT/srv/link")" = d1/f1.conf
'

test_expect_success 'once the directory is gone, everything converges' '
	rmdir "$ROOT/srv/d6/f2001.conf" &&
	expect_exit 0 dl_apply repo &&
	test_cmp_text f2001 "$ROOT/srv/d6/f2001.conf" &&
	sleep 2 &&
	expect_exit 0 dl_plan repo &&
	expect_contains stdout "2402 unchanged"
'

test_expect_success 'creations are linked whole a chunk at a time: a kill at any link leaves each file absent or whole' '
	for n in 1 700 1100 2000; do
		rm -rf "$ROOT/srv" "$STATE" &&
		mkdir -p "$ROOT"/srv/d0 "$ROOT"/srv/d1 "$ROOT"/srv/d2 "$ROOT"/srv/d3 "$ROOT"/srv/d4 "$ROOT"/srv/d5 "$ROOT"/srv/d6 || return 1
		strace -f -o /dev/null -e trace=linkat -e inject=linkat:signal=KILL:when=$n \
			"$DRIFTLESS" apply --repo repo --root "$ROOT" --state "$STATE" >/dev/null 2>&1 || true
		made=$(find "$ROOT/srv" -name "f*.conf" | wc -l)
		echo "kill at link $n: $made files there"
		for f in $(find "$ROOT/srv" -name "f*.conf"); do
			i=$(basename "$f" .conf) && i=${i#f} &&
			test "$(cat "$f")" = "f$i" || { echo "$f: [$(cat "$f")]"; return 1; }
		done
		test -z "$(find "$ROOT" -name ".driftless-tmp.*")" || return 1
		expect_exit 0 dl_apply repo || return 1
		test "$(find "$ROOT/srv" -name "f*.conf" | wc -l)" -eq 2400 || return 1
		test "$(sqlite3 "$STATE/driftless.db" "PRAGMA integrity_check")" = ok || return 1
	done
'

test_done
