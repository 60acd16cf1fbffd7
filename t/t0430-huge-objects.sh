#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Huge objects and decompression bombs (HARDENING R05, E-BOUND): a blob over
# the pack object cap, a small object that inflates to a huge one, a tree
# with a million entries, a tree 2,049 folders deep and a very deep delta
# chain, each fetched from a git server and applied under a memory cap. A
# refusal is an error naming the limit; the previous revision stays
# applied; nothing crashes.
# shellcheck disable=SC2016
. "$(dirname "$0")/lib.sh"

mkdir -p "$SCRATCH/srv" "$ROOT/etc"
R=$SCRATCH/srv/infra.git
git init -q --bare -b main "$R"
# upload-pack keeps the deep delta chains it has (R05 d)
git -C "$R" config pack.depth 4095
W=$SCRATCH/work
repo_init "$W"
write_file "$W/motd.yaml" <<-'Y'
	apiVersion: driftless/v1
	kind: File
	metadata: {name: motd}
	spec: {path: /etc/motd, content: "good\n"}
	Y
repo_commit "$W" good
git -C "$W" push -q "$R" main
GOOD=$(repo_head "$W")
start_git_daemon "$SCRATCH/srv" || bail_out "cannot start git daemon"
URL=$GIT_DAEMON_URL/infra.git

# MiB of peak memory allowed: a little more in the ASan build (shadow, quarantine)
CAP=200
dl_is_asan && CAP=600
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=16:malloc_context_size=5"

# branch_with NAME: push a branch NAME whose commit is main's tree plus the
# entries on stdin (git mktree lines; plumbing only: no index, no work tree).
branch_with() {
	local root c
	root=$({ git -C "$W" ls-tree main; cat; } | git -C "$W" mktree) &&
		c=$(git -C "$W" commit-tree "$root" -p main -m "$1") &&
		git -C "$W" push -q "$R" "$c:refs/heads/$1"
}

# capped_apply ARGS...: apply from the server under the memory cap
capped_apply() {
	dl_capture dl_mem_capped "$CAP" timeout -k 5 120 "$DRIFTLESS" apply --repo "$URL" \
		--root "$ROOT" --state "$STATE" "$@"
	dl_not_crashed capped_apply "$@" && dl_maxrss_below "$CAP"
}

# the good revision is still the applied one, and the host holds it
still_good() {
	test_cmp_text good "$ROOT/etc/motd" &&
	dl status --state "$STATE" >"$SCRATCH/status" &&
	grep -q "$GOOD" "$SCRATCH/status"
}

test_expect_success 'the good revision applies under the cap' '
	capped_apply &&
	test "$DL_STATUS" = 0 &&
	still_good
'

test_expect_success 'R05 (a, b): a 300 MiB blob (300 KiB compressed) is fetched within the cap, never inflated' '
	oid=$(head -c 300M /dev/zero | git -C "$W" hash-object -w --stdin) &&
	m=$(printf "apiVersion: driftless/v1\nkind: File\nmetadata: {name: huge}\nspec: {path: /etc/huge, source: huge.bin}\n" |
		git -C "$W" hash-object -w --stdin) &&
	printf "100644 blob %s\thuge.bin\n100644 blob %s\thuge.yaml\n" "$oid" "$m" | branch_with huge &&
	capped_apply --branch huge &&
	test "$DL_STATUS" != 0 &&
	expect_contains "$SCRATCH/stderr" "'\''huge.bin'\'' is 314572800 bytes, more than the limit of" &&
	expect_missing "$ROOT/etc/huge" &&
	still_good
'

test_expect_success 'R05 (b): a manifest that inflates to 64 MiB is refused before it is read' '
	oid=$({ printf "# "; head -c 64M /dev/zero | tr "\\0" "x"; } | git -C "$W" hash-object -w --stdin) &&
	printf "100644 blob %s\tbomb.yaml\n" "$oid" | branch_with bomb &&
	capped_apply --branch bomb &&
	test "$DL_STATUS" != 0 &&
	expect_contains "$SCRATCH/stderr" "bomb.yaml" &&
	expect_contains "$SCRATCH/stderr" "more than the limit of" &&
	still_good
'

test_expect_success 'R05 (c): a tree with a million entries is refused within the cap' '
	empty=$(git -C "$W" hash-object -w --stdin </dev/null) &&
	tree=$(awk -v e="$empty" "BEGIN { for (i = 0; i <= 1000000; i++) printf \"100644 blob %s\\tf%07d.txt\\n\", e, i }" |
		git -C "$W" mktree) &&
	printf "040000 tree %s\twide\n" "$tree" | branch_with wide &&
	start=$(date +%s) &&
	capped_apply --branch wide &&
	test "$DL_STATUS" != 0 &&
	expect_contains "$SCRATCH/stderr" "more than 1000000 entries" &&
	echo "took $(($(date +%s) - start)) s" &&
	still_good
'

test_expect_success 'R05 (c): a tree nested 2,049 folders deep is refused, saying where' '
	empty=$(git -C "$W" hash-object -w --stdin </dev/null) &&
	t=$(printf "100644 blob %s\tx.txt\n" "$empty" | git -C "$W" mktree) &&
	for i in $(seq 2048); do
		t=$(printf "040000 tree %s\td\n" "$t" | git -C "$W" mktree) || return 1
	done &&
	printf "040000 tree %s\tnested\n" "$t" | branch_with nested &&
	capped_apply --branch nested &&
	test "$DL_STATUS" != 0 &&
	expect_contains "$SCRATCH/stderr" "folders nested more than 2048 deep, at '\''nested/d/d/d/" &&
	still_good
'

test_expect_success 'R05 (d): a 3000 deep delta chain is resolved within the cap' '
	{
		printf "reset refs/heads/deep\nfrom %s\n\n" "$GOOD" &&
		for i in $(seq 1 3000); do
			body=$(printf "apiVersion: driftless/v1\nkind: File\nmetadata: {name: deep}\nspec: {path: /etc/deep, content: \"%s\\\\n\"}\n# %s\n" "$i" "$(seq -s " " 1 100)")
			printf "commit refs/heads/deep\ncommitter T <t@t> %d +0000\ndata 2\nc\nM 100644 inline deep.yaml\ndata %d\n%s\n" \
				$((1000000000 + i)) ${#body} "$body"
		done
	} | git -C "$R" fast-import --quiet --depth=4000 &&
	depth=$(for idx in "$R"/objects/pack/*.idx; do git verify-pack -v "$idx"; done |
		awk "NF >= 7 && \$6 ~ /^[0-9]+\$/ { print \$6 }" | sort -n | tail -n 1) &&
	echo "deepest chain: $depth" && test "$depth" -gt 1000 &&
	start=$(date +%s) &&
	capped_apply --branch deep &&
	echo "took $(($(date +%s) - start)) s" &&
	test "$DL_STATUS" = 0 &&
	test_cmp_text 3000 "$ROOT/etc/deep"
'

test_done
