#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The state database under faults (HARDENING F07, F08): corrupt, missing or
# replaced databases are detected, moved aside and rebuilt; nothing of the
# host is lost, and pruning stays off until the inventory is trustworthy.
# shellcheck disable=SC2016
. "$(dirname "$0")/lib.sh"

repo_init repo
for i in 1 2 3; do
	write_file "repo/f$i.yaml" <<-Y
	apiVersion: driftless/v1
	kind: File
	metadata: {name: f$i}
	spec: {path: /srv/f$i.conf, content: "f$i\n"}
	Y
done
repo_commit repo v1
mkdir -p "$ROOT/srv"

test_expect_success 'the database passes its integrity check after every apply' '
	expect_exit 0 dl_apply repo &&
	test "$(sqlite3 "$STATE/driftless.db" "PRAGMA integrity_check")" = ok &&
	test "$(sqlite3 "$STATE/driftless.db" "PRAGMA journal_mode")" = wal
'

test_expect_success 'F08: a database zeroed at page 1 is moved aside and rebuilt' '
	dd if=/dev/zero of="$STATE/driftless.db" bs=4096 count=1 conv=notrunc 2>/dev/null &&
	echo hand >"$ROOT/srv/f1.conf" &&
	expect_exit 0 dl_apply repo &&
	expect_contains "$SCRATCH/stderr" "warning: the state database was unusable" &&
	ls "$STATE"/driftless.db.corrupt-* &&
	test_cmp_text f1 "$ROOT/srv/f1.conf" &&
	oid=$(echo hand | git hash-object --stdin) &&
	test -f "$STATE/backups/${oid:0:2}/${oid:2}" &&
	test "$(sqlite3 "$STATE/driftless.db" "PRAGMA integrity_check")" = ok
'

test_expect_success 'F08: damage inside a page no pass reads is found at start, even with mtime put back' '
	expect_exit 0 dl_apply repo &&
	expect_exit 0 dl_apply repo &&
	test -s "$STATE/driftless.db.checked" &&
	n=$(ls "$STATE" | grep -c "corrupt-") &&
	page=$(sqlite3 "$STATE/driftless.db" "SELECT rootpage FROM sqlite_master WHERE name = \"drift_events\"") &&
	psize=$(sqlite3 "$STATE/driftless.db" "PRAGMA page_size") &&
	cp -p "$STATE/driftless.db" "$SCRATCH/db.ref" &&
	printf "\377\377\377\377" | dd of="$STATE/driftless.db" bs=1 seek=$(( (page - 1) * psize )) conv=notrunc 2>/dev/null &&
	touch -r "$SCRATCH/db.ref" "$STATE/driftless.db" &&
	expect_exit 0 dl_apply repo &&
	expect_contains "$SCRATCH/stderr" "failed its integrity check" &&
	test "$(ls "$STATE" | grep -c "corrupt-")" -gt "$n" &&
	test "$(sqlite3 "$STATE/driftless.db" "PRAGMA integrity_check")" = ok
'

test_expect_success 'F08: what was adopted while rebuilding is never pruned' '
	git -C repo rm -q f3.yaml && repo_commit repo "drop f3" &&
	expect_exit 0 dl_apply repo &&
	test_cmp_text f3 "$ROOT/srv/f3.conf" &&
	expect_exit 0 dl history --state "$STATE" -n 1 &&
	expect_contains stdout "adopted, left on the host, no longer managed"
'

test_expect_success 'F08: after a clean pass, status no longer reports the rebuild' '
	expect_exit 0 dl status --state "$STATE" &&
	expect_not_contains stdout "state database was unusable"
'

test_expect_success 'F08: a database path replaced by a directory is moved aside' '
	rm -f "$STATE"/driftless.db-wal "$STATE"/driftless.db-shm &&
	mv "$STATE/driftless.db" "$SCRATCH/db.save" &&
	mkdir "$STATE/driftless.db" &&
	expect_exit 0 dl_apply repo &&
	expect_contains "$SCRATCH/stderr" "is not a regular file" &&
	test -f "$STATE/driftless.db"
'

test_expect_success 'F08: a deleted WAL or a missing database converges without help' '
	rm -f "$STATE/driftless.db-wal" &&
	expect_exit 0 dl_apply repo &&
	rm -f "$STATE/driftless.db" "$STATE/driftless.db-wal" "$STATE/driftless.db-shm" &&
	echo hand >"$ROOT/srv/f2.conf" &&
	expect_exit 0 dl_apply repo &&
	test_cmp_text f2 "$ROOT/srv/f2.conf"
'

test_expect_success 'status of a corrupt database is an error, not a rebuild (only the lock holder rebuilds)' '
	printf "garbage%.0s" $(seq 1 2000) >"$STATE/driftless.db" &&
	rm -f "$STATE/driftless.db-wal" "$STATE/driftless.db-shm" &&
	n=$(ls "$STATE" | grep -c "corrupt-") &&
	test_must_fail dl status --state "$STATE" &&
	test "$(ls "$STATE" | grep -c "corrupt-")" -eq "$n" &&
	expect_exit 0 dl_apply repo &&
	test "$(ls "$STATE" | grep -c "corrupt-")" -gt "$n"
'

test_expect_success 'G06: a git cache with a garbage config and HEAD is moved aside and fetched again' '
	cache=$(ls -d "$STATE"/git/*.git | head -n1) &&
	echo "garbage" >"$cache/HEAD" &&
	printf "[core\n\tbroken = \"\n" >"$cache/config" &&
	expect_exit 0 dl_apply repo &&
	ls -d "$STATE"/git/*.corrupt-* &&
	test_cmp_text f2 "$ROOT/srv/f2.conf"
'

test_expect_success 'the index snapshot taken before a write is never used after it' '
	expect_exit 0 dl_plan repo &&
	test -s "$STATE/driftless.db.index" &&
	cp "$STATE/driftless.db.index" "$SCRATCH/index.before" &&
	write_file repo/extra.yaml <<-Y &&
	apiVersion: driftless/v1
	kind: File
	metadata: {name: extra}
	spec: {path: /srv/extra.conf, content: "extra\n"}
	Y
	repo_commit repo "add extra" &&
	expect_exit 0 dl_apply repo &&
	test -f "$ROOT/srv/extra.conf" &&
	cp "$SCRATCH/index.before" "$STATE/driftless.db.index" &&
	git -C repo rm -q extra.yaml && repo_commit repo "drop extra" &&
	expect_exit 0 dl_apply repo &&
	expect_contains stdout "File/extra deleted" &&
	! test -e "$ROOT/srv/extra.conf"
'

test_expect_success 'a torn or damaged index snapshot is read past, from SQLite' '
	rm -f "$STATE/driftless.db.index" &&
	expect_exit 0 dl_plan repo &&
	mv stdout "$SCRATCH/plan.ref" &&
	cp "$STATE/driftless.db.index" "$SCRATCH/index.ref" &&
	size=$(stat -c %s "$STATE/driftless.db.index") &&
	truncate -s $((size / 2)) "$STATE/driftless.db.index" &&
	expect_exit 0 dl_plan repo &&
	test_cmp "$SCRATCH/plan.ref" stdout &&
	cmp "$SCRATCH/index.ref" "$STATE/driftless.db.index" &&
	printf "\001" | dd of="$STATE/driftless.db.index" bs=1 seek=$((size / 2)) conv=notrunc 2>/dev/null &&
	! cmp -s "$SCRATCH/index.ref" "$STATE/driftless.db.index" &&
	expect_exit 0 dl_plan repo &&
	test_cmp "$SCRATCH/plan.ref" stdout &&
	cmp "$SCRATCH/index.ref" "$STATE/driftless.db.index"
'

test_expect_success 'a pass that writes brings the snapshot up to date: the next reads no SQLite' '
	for i in 1 2 3; do
		printf "%s\n" "apiVersion: driftless/v1" "kind: File" "metadata: {name: x$i}" \
			"spec: {path: /srv/x$i.conf, content: \"x$i\"}" >"repo/x$i.yaml" || return 1
	done &&
	repo_commit repo "x1 x2 x3" &&
	expect_exit 0 dl_apply repo &&
	write_file repo/extra2.yaml <<-Y &&
	apiVersion: driftless/v1
	kind: File
	metadata: {name: extra2}
	spec: {path: /srv/extra2.conf, content: "extra2\n"}
	Y
	sed -i "s/content: \"x2/content: \"x2 changed/" repo/x2.yaml &&
	repo_commit repo "add extra2, change x2" &&
	expect_exit 0 dl_apply repo &&
	expect_contains stdout "File/extra2 created" &&
	echo hand >"$ROOT/srv/x1.conf" &&
	DRIFTLESS_TIMING=1 expect_exit 0 dl_apply repo &&
	expect_contains "$SCRATCH/stderr" "timing: index read from the snapshot" &&
	expect_contains stdout "File/x1 updated" &&
	expect_contains stdout "0 created, 1 updated, 0 deleted" &&
	git -C repo rm -q extra2.yaml && repo_commit repo "drop extra2" &&
	DRIFTLESS_TIMING=1 expect_exit 0 dl_apply repo &&
	expect_contains "$SCRATCH/stderr" "timing: index read from the snapshot" &&
	expect_contains stdout "File/extra2 deleted" &&
	expect_missing "$ROOT/srv/extra2.conf" &&
	DRIFTLESS_TIMING=1 expect_exit 0 dl_plan repo --exit-code &&
	expect_contains "$SCRATCH/stderr" "timing: index read from the snapshot" &&
	test "$(cat "$ROOT/srv/x2.conf")" = "x2 changed"
'

test_expect_success 'a write by another command in between: the snapshot is read from SQLite again' '
	sed -i "s/content: \"x3/content: \"x3 changed/" repo/x3.yaml && repo_commit repo "change x3" &&
	expect_exit 0 dl_apply repo &&
	sqlite3 "$STATE/driftless.db" "UPDATE meta SET value = '\''00000000000000000000000000000000'\'' WHERE key = '\''index_gen'\''" &&
	DRIFTLESS_TIMING=1 expect_exit 0 dl_plan repo --exit-code &&
	expect_contains "$SCRATCH/stderr" "timing: index read from the SQLite" &&
	DRIFTLESS_TIMING=1 expect_exit 0 dl_plan repo --exit-code &&
	expect_contains "$SCRATCH/stderr" "timing: index read from the snapshot"
'

test_expect_success 'G06: stale lock files left in the git cache by a killed fetch are cleared' '
	cache=$(ls -d "$STATE"/git/*.git | head -n1) &&
	ref=$(cd "$cache" && find refs -type f | head -n1) &&
	touch "$cache/$ref.lock" "$cache/packed-refs.lock" &&
	sed -i "s/content: \"f1/content: \"f1 v2/" repo/f1.yaml && repo_commit repo "f1 v2" &&
	expect_exit 0 dl_apply repo &&
	test_cmp_text "f1 v2" "$ROOT/srv/f1.conf" &&
	test -z "$(find "$cache" -name "*.lock")"
'

test_expect_success 'G06: a damaged object database is moved aside and fetched again' '
	cache=$(ls -d "$STATE"/git/*.git | head -n1) &&
	sed -i "s/f1 v2/f1 v3/" repo/f1.yaml && repo_commit repo "f1 v3" && cat repo/f1.yaml &&
	for f in "$cache"/objects/pack/*.pack; do
		[ -f "$f" ] || continue
		chmod u+w "$f" && dd if=/dev/urandom of="$f" bs=1 count=200 seek=100 conv=notrunc 2>/dev/null
	done &&
	find "$cache/objects" -type f -path "*/objects/??/*" | while read -r o; do chmod u+w "$o"; printf garbage >"$o"; done &&
	rm -f "$cache"/refs/driftless/heads/main &&
	expect_exit 0 dl_apply repo &&
	test_cmp_text "f1 v3" "$ROOT/srv/f1.conf"
'

test_done
