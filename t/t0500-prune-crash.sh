#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Prune safety (HARDENING M12) and crash consistency of one apply (F01, F03).
# shellcheck disable=SC2016
. "$(dirname "$0")/lib.sh"

repo_init repo
for i in $(seq 1 30); do
	write_file "repo/f$i.yaml" <<-Y
	apiVersion: driftless/v1
	kind: File
	metadata: {name: f$i}
	spec: {path: /srv/app/f$i.conf, content: "old $i\n"}
	Y
done
write_file repo/dir.yaml <<'Y'
apiVersion: driftless/v1
kind: Directory
metadata: {name: app}
spec: {path: /srv/app}
Y
repo_commit repo v1
mkdir -p "$ROOT/srv"

test_expect_success 'the first revision applies' '
	expect_exit 0 dl_apply repo &&
	test_cmp_text "old 7" "$ROOT/srv/app/f7.conf"
'

test_expect_success 'M12(a): a commit that deletes every manifest is refused' '
	git -C repo rm -q "*.yaml" && repo_commit repo "delete all" &&
	test_must_fail dl_apply repo &&
	expect_contains "$SCRATCH/stderr" "would remove every managed resource (31); refusing" &&
	test_cmp_text "old 7" "$ROOT/srv/app/f7.conf" &&
	git -C repo reset -q --hard HEAD~1
'

test_expect_success 'M12(b): a branch retargeted to an empty orphan is refused' '
	t=$(git -C repo mktree </dev/null) &&
	c=$(git -C repo commit-tree "$t" -m orphan) &&
	git -C repo update-ref refs/heads/empty "$c" &&
	test_must_fail dl_apply repo --branch empty &&
	expect_contains "$SCRATCH/stderr" "would remove every managed resource" &&
	test_cmp_text "old 7" "$ROOT/srv/app/f7.conf"
'

test_expect_success 'M12(c): an entry path that matches nothing is an error' '
	test_must_fail dl_apply repo --path hosts/typo &&
	expect_contains "$SCRATCH/stderr" "entry directory '\''hosts/typo'\'' does not exist" &&
	test_cmp_text "old 7" "$ROOT/srv/app/f7.conf"
'

test_expect_success 'M12: allowEmpty in the config lets the empty revision prune everything' '
	printf "allowEmpty: true\n" >"$SCRATCH/allow.yaml" &&
	expect_exit 0 dl_apply repo --branch empty -c "$SCRATCH/allow.yaml" &&
	expect_missing "$ROOT/srv/app" &&
	expect_exit 0 dl_apply repo &&
	test_cmp_text "old 7" "$ROOT/srv/app/f7.conf"
'

test_expect_success 'driftless/prune "false" keeps the file on the host' '
	write_file repo/keep.yaml <<-Y &&
	apiVersion: driftless/v1
	kind: File
	metadata: {name: keep, annotations: {driftless/prune: "false"}}
	spec: {path: /srv/app/keep.conf, content: "keep\n"}
	Y
	repo_commit repo keep && expect_exit 0 dl_apply repo &&
	git -C repo rm -q keep.yaml && repo_commit repo "drop keep" &&
	expect_exit 0 dl_apply repo &&
	test_cmp_text keep "$ROOT/srv/app/keep.conf"
'

test_expect_success 'unmanaged files in a pruned directory are never deleted' '
	echo mine >"$ROOT/srv/app/operator-notes" &&
	git -C repo rm -q "*.yaml" && repo_commit repo "delete all again" &&
	expect_exit 0 dl_apply repo -c "$SCRATCH/allow.yaml" &&
	test_cmp_text mine "$ROOT/srv/app/operator-notes" &&
	expect_missing "$ROOT/srv/app/f1.conf" &&
	expect_contains stdout "= Directory/app kept /srv/app: directory '\''/srv/app'\'' is not empty; left in place" &&
	git -C repo revert --no-edit HEAD >/dev/null && rm "$ROOT/srv/app/operator-notes" &&
	expect_exit 0 dl_apply repo
'

# F01/F03: SIGKILL at the Nth rename of an apply that rewrites every file;
# afterwards each file is old or new, never empty or mixed, and the next run
# removes temporaries and converges.
test_expect_success 'F01/F03: kill -9 mid-apply, at many points, always converges' '
	for i in $(seq 1 30); do sed -i "s/old $i/new $i/" "repo/f$i.yaml"; done &&
	repo_commit repo v2 &&
	git -C repo tag v2 && git -C repo tag v1 HEAD~1 &&
	for n in 1 2 5 13 29; do
		dl_apply repo --tag v1 >/dev/null 2>&1 || true
		strace -f -o /dev/null -e trace=rename,renameat,renameat2 \
			-e inject=rename,renameat,renameat2:signal=KILL:when=$n \
			"$DRIFTLESS" apply --repo repo --tag v2 --root "$ROOT" --state "$STATE" >/dev/null 2>&1 || true
		for i in $(seq 1 30); do
			c=$(cat "$ROOT/srv/app/f$i.conf") &&
			{ test "$c" = "old $i" || test "$c" = "new $i"; } || { echo "f$i: [$c]"; return 1; }
		done
		expect_exit 0 dl status --state "$STATE" -o json || return 1
		expect_exit 0 dl_apply repo --tag v2 || return 1
		expect_contains "$SCRATCH/stderr" "recovering from an interrupted apply" || return 1
		test -z "$(find "$ROOT" -name ".driftless-tmp.*")" || { echo "temp left"; return 1; }
		for i in $(seq 1 30); do test_cmp_text "new $i" "$ROOT/srv/app/f$i.conf" || return 1; done
		test "$(sqlite3 "$STATE/driftless.db" "PRAGMA integrity_check")" = ok || return 1
	done
'

test_expect_success 'F03: a kill -9 before the first file leaves nothing to adopt by hand' '
	git -C repo rm -q f30.yaml && repo_commit repo "rm f30" &&
	for i in 31 32 33; do
		write_file "repo/n$i.yaml" <<-Y
		apiVersion: driftless/v1
		kind: File
		metadata: {name: n$i}
		spec: {path: /srv/app/n$i.conf, content: "n$i\n"}
		Y
	done &&
	repo_commit repo v3 &&
	strace -f -o /dev/null -e trace=rename,renameat,renameat2,linkat \
		-e inject=rename,renameat,renameat2,linkat:signal=KILL:when=2 \
		"$DRIFTLESS" apply --repo repo --root "$ROOT" --state "$STATE" >/dev/null 2>&1 || true;
	test -f "$ROOT/srv/app/n31.conf" && ! test -f "$ROOT/srv/app/n32.conf" &&
	expect_exit 0 dl_apply repo &&
	test_cmp_text n33 "$ROOT/srv/app/n33.conf" &&
	expect_missing "$ROOT/srv/app/f30.conf"
'

test_done
