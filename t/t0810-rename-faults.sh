#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Atomic rename impossible (HARDENING F09): a managed file that is the
# target of a bind mount (rename over it fails with EBUSY), and a rename
# that fails with EXDEV (injected with strace on that one file). That
# resource fails with an error naming its path; the others still converge;
# no temporary is left anywhere; the inventory and the history stay true;
# the next pass after the fault is gone converges.
# shellcheck disable=SC2016
# shellcheck disable=SC2317 # helpers are called from the eval'ed bodies
. "$(dirname "$0")/lib.sh"

[ "$(id -u)" = 0 ] || skip_all "needs root (mount --bind)"

MNT=$ROOT/etc/busy.conf
cleanup_mount() {
	while mountpoint -q "$MNT" 2>/dev/null; do umount "$MNT" 2>/dev/null || break; done
}
trap 'cleanup_mount; dl_cleanup' EXIT

repo_init repo
revision() { # TAG: three files whose content names the revision
	for f in a busy c; do
		write_file "repo/$f.yaml" <<-Y
		apiVersion: driftless/v1
		kind: File
		metadata: {name: $f}
		spec: {path: /etc/$f.conf, content: "$1 $f\n", mode: "0644"}
		Y
	done
	repo_commit repo "$1" && git -C repo tag "$1"
}
revision v1
revision v2
revision v3
mkdir -p "$ROOT/etc" "$SCRATCH/outside"

no_temporaries() {
	left=$(find "$ROOT" "$SCRATCH/outside" -name ".driftless-tmp.*" 2>/dev/null)
	[ -z "$left" ] || { echo "temporaries left: $left"; return 1; }
}

db_ok() {
	test "$(sqlite3 "$STATE/driftless.db" "PRAGMA integrity_check")" = ok
}

# the digest the inventory holds for busy equals the one it had at v1
inv_digest() {
	sqlite3 "$STATE/driftless.db" "SELECT digest FROM inventory WHERE id = 'File/$1'"
}

test_expect_success 'v1 applies' '
	expect_exit 0 dl_apply repo --tag v1 &&
	test_cmp_text "v1 busy" "$ROOT/etc/busy.conf" &&
	inv_digest busy >"$SCRATCH/busy.v1" &&
	test -s "$SCRATCH/busy.v1"
'

test_expect_success 'F09 EBUSY: a bind-mounted target fails alone, naming its path' '
	printf "mounted\n" >"$SCRATCH/outside/src" &&
	mount --bind "$SCRATCH/outside/src" "$MNT" &&
	test_must_fail dl_apply repo --tag v2 &&
	expect_contains "$SCRATCH/stdout" "/etc/busy.conf" &&
	expect_contains "$SCRATCH/stdout" "cannot atomically replace '\''/etc/busy.conf'\'' (EBUSY)" &&
	test_cmp_text "v2 a" "$ROOT/etc/a.conf" &&
	test_cmp_text "v2 c" "$ROOT/etc/c.conf" &&
	test_cmp_text "mounted" "$MNT" &&
	test_cmp_text "mounted" "$SCRATCH/outside/src" &&
	no_temporaries && db_ok &&
	h=$(sqlite3 "$STATE/driftless.db" "SELECT result FROM passes ORDER BY id DESC LIMIT 1") &&
	test "$h" = partial &&
	o=$(sqlite3 "$STATE/driftless.db" "SELECT outcome FROM outcomes WHERE pass_id =
		(SELECT MAX(id) FROM passes) AND res_id = '\''File/busy'\''") &&
	test "$o" = failed &&
	inv_digest busy >"$SCRATCH/busy.now" &&
	test_cmp "$SCRATCH/busy.v1" "$SCRATCH/busy.now"
'

test_expect_success 'F09 EBUSY: a second pass fails the same way and converges the rest' '
	test_must_fail dl_apply repo --tag v2 &&
	expect_contains "$SCRATCH/stdout" "cannot atomically replace '\''/etc/busy.conf'\'' (EBUSY)" &&
	no_temporaries && db_ok &&
	test_cmp_text "mounted" "$SCRATCH/outside/src"
'

test_expect_success 'F09 EBUSY: once the mount is gone the next pass converges' '
	umount "$MNT" &&
	! mountpoint -q "$MNT" &&
	expect_exit 0 dl_apply repo --tag v2 &&
	for f in a busy c; do test_cmp_text "v2 $f" "$ROOT/etc/$f.conf" || exit 1; done &&
	test_cmp_text "mounted" "$SCRATCH/outside/src" &&
	no_temporaries && db_ok &&
	h=$(sqlite3 "$STATE/driftless.db" "SELECT result FROM passes ORDER BY id DESC LIMIT 1") &&
	test "$h" = applied
'

if command -v strace >/dev/null; then
test_expect_success 'F09 EXDEV: a rename that crosses file systems fails alone, naming its path' '
	rc=0 &&
	ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" \
	strace -f -o "$SCRATCH/strace.log" -P busy.conf \
		-e trace=rename,renameat,renameat2 \
		-e inject=rename,renameat,renameat2:error=EXDEV \
		"$DRIFTLESS" apply --repo repo --tag v3 --root "$ROOT" --state "$STATE" \
		>"$SCRATCH/out" 2>&1 || rc=$? &&
	cat "$SCRATCH/out" "$SCRATCH/strace.log" &&
	test "$rc" -ne 0 && test "$rc" -lt 124 &&
	grep -q "EXDEV (Invalid cross-device link) (INJECTED)" "$SCRATCH/strace.log" &&
	expect_contains "$SCRATCH/out" "/etc/busy.conf" &&
	grep -Eq "EXDEV|cross-device" "$SCRATCH/out" &&
	test_cmp_text "v3 a" "$ROOT/etc/a.conf" &&
	test_cmp_text "v3 c" "$ROOT/etc/c.conf" &&
	test_cmp_text "v2 busy" "$ROOT/etc/busy.conf" &&
	no_temporaries && db_ok &&
	h=$(sqlite3 "$STATE/driftless.db" "SELECT result FROM passes ORDER BY id DESC LIMIT 1") &&
	test "$h" = partial
'

test_expect_success 'F09 EXDEV: the next pass converges' '
	expect_exit 0 dl_apply repo --tag v3 &&
	for f in a busy c; do test_cmp_text "v3 $f" "$ROOT/etc/$f.conf" || exit 1; done &&
	no_temporaries && db_ok
'
else
test_skip 'F09 EXDEV' 'needs strace'
fi

test_done
