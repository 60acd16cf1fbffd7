#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Compaction: a pass that parses a big revision stores the desired state in
# the cache, frees everything the load made and goes on from the cache.
# DRIFTLESS_COMPACT_MIN=0 makes every parsing pass compact, so a small
# repository takes that path. Each case runs twice, on twin roots and
# states: A compacts, B never does; both must say and do exactly the same.
# shellcheck disable=SC2016
. "$(dirname "$0")/lib.sh"

repo_init repo
write_file repo/base.yaml <<'Y'
apiVersion: driftless/v1
kind: Directory
metadata: {name: app, labels: {tier: web}}
spec: {path: "/etc/app-${vars.env}", mode: "0750"}
---
apiVersion: driftless/v1
kind: File
metadata:
  name: conf
  annotations: {driftless/drift: report}
spec:
  path: /etc/app-${vars.env}/app.conf
  content: |
    port ${vars.port}
  mode: "0640"
  dependsOn: [Directory/app]
---
apiVersion: driftless/v1
kind: Symlink
metadata: {name: current}
spec: {path: "/etc/app-${vars.env}/current", target: app.conf}
---
apiVersion: driftless/v1
kind: File
metadata: {name: tmpl}
spec:
  path: /etc/app-${vars.env}/tmpl.conf
  template: true
  content: "env=${vars.env} port=${vars.port}\n"
---
apiVersion: driftless/v1
kind: File
metadata: {name: src}
spec: {path: "/etc/app-${vars.env}/src.conf", source: files/src.conf, mode: "0600"}
Y
write_file repo/tree.yaml <<'Y'
apiVersion: driftless/v1
kind: Directory
metadata: {name: share}
spec: {path: /srv/share, source: files/share, mode: "0755"}
Y
write_file repo/motd.yaml <<'Y'
apiVersion: driftless/v1
kind: File
metadata: {name: motd}
spec: {path: /etc/motd, content: "welcome\n"}
Y
write_file repo/files/src.conf <<'Y'
from a source
Y
write_file repo/files/share/a.txt <<'Y'
a
Y
write_file repo/files/share/sub/b.txt <<'Y'
b
Y
repo_commit repo v1
write_file cfg.yaml <<'Y'
vars: {env: prod, port: "8080"}
Y
for t in a b; do
	mkdir -p "$SCRATCH/r$t/etc" "$SCRATCH/r$t/srv"
done

# run_one A|B CMD ARGS...: CMD on root r$1 and state s$1; A compacts from
# zero resources, B never. Output to $1.out, $1.err (timing lines kept
# apart in $1.timing, durations and the twin's paths made equal), $1.rc.
run_one() {
	local t=$1 min rc=0
	shift
	case $t in a) min=0 ;; *) min=1000000000 ;; esac
	DRIFTLESS_COMPACT_MIN=$min DRIFTLESS_TIMING=1 dl "$@" --repo "$SCRATCH/repo" \
		--root "$SCRATCH/r$t" --state "$SCRATCH/s$t" -c "$SCRATCH/cfg.yaml" \
		>"$SCRATCH/$t.raw" 2>"$SCRATCH/$t.rawerr" || rc=$?
	echo "$rc" >"$SCRATCH/$t.rc"
	sed -e "s| in [0-9.]* *m\?s||g" -e "s|$SCRATCH/[rs]$t|TWIN|g" \
		"$SCRATCH/$t.raw" >"$SCRATCH/$t.out"
	grep "^timing:" "$SCRATCH/$t.rawerr" >"$SCRATCH/$t.timing" || :
	grep -v "^timing:" "$SCRATCH/$t.rawerr" |
		sed -e "s|$SCRATCH/[rs]$t|TWIN|g" >"$SCRATCH/$t.err" || :
}

# tree_of DIR: every path under DIR with its type, mode, size and target
tree_of() {
	(cd "$1" && find . -printf "%p %y %m %s %l\n" | LC_ALL=C sort)
}

# twin WANT_RC CMD ARGS...: run on both twins; same exit status WANT_RC,
# same output, same tree (contents too); the output is left in a.out, a.err
twin() {
	local want=$1
	shift
	run_one a "$@" && run_one b "$@" &&
		echo "--- A: rc $(cat a.rc)" && cat a.out a.err a.timing &&
		echo "--- B: rc $(cat b.rc)" && cat b.out b.err &&
		test "$(cat a.rc)" = "$want" && test "$(cat b.rc)" = "$want" &&
		test_cmp b.out a.out && test_cmp b.err a.err &&
		tree_of "$SCRATCH/rb" >b.tree && tree_of "$SCRATCH/ra" >a.tree &&
		test_cmp b.tree a.tree &&
		diff -r "$SCRATCH/rb" "$SCRATCH/ra" &&
		expect_not_contains b.timing "timing: compact"
}

test_expect_success 'a first apply that compacts does what one that does not does' '
	twin 0 apply &&
	expect_contains a.timing "timing: compact" &&
	expect_contains a.out "created" &&
	test -s sa/cache/desired.bin &&
	test_cmp_text "port \${vars.port}" ra/etc/app-prod/app.conf &&
	test_cmp_text "env=prod port=8080" ra/etc/app-prod/tmpl.conf &&
	test_cmp repo/files/share/sub/b.txt ra/srv/share/sub/b.txt &&
	expect_mode 600 ra/etc/app-prod/src.conf &&
	test "$(readlink ra/etc/app-prod/current)" = app.conf
'

test_expect_success 'the next pass is a no-op from the cache, on both' '
	twin 0 apply &&
	expect_not_contains a.timing "timing: compact" &&
	expect_contains a.timing "timing: cached" &&
	twin 0 plan --exit-code
'

test_expect_success 'a commit: the plan compacts, the apply uses what it stored; changes, prune, new blobs' '
	git -C repo rm -q motd.yaml &&
	sed -i "s/port \${vars.port}/port \${vars.port} changed/" repo/base.yaml &&
	echo "a2" >repo/files/share/a.txt &&
	echo "c" >repo/files/share/c.txt &&
	echo "source two" >repo/files/src.conf &&
	repo_commit repo v2 &&
	twin 2 plan --exit-code &&
	expect_contains a.timing "timing: compact" &&
	twin 0 apply &&
	expect_contains a.timing "timing: cached" &&
	expect_missing ra/etc/motd &&
	test_cmp_text "port \${vars.port} changed" ra/etc/app-prod/app.conf &&
	test_cmp_text "source two" ra/etc/app-prod/src.conf &&
	test_cmp_text "c" ra/srv/share/c.txt
'

test_expect_success 'a commit applied at once: compacts, then writes and prunes from the cache' '
	git -C repo rm -q files/share/c.txt &&
	sed -i "s/mode: \"0755\"/mode: \"0750\"/" repo/tree.yaml &&
	echo "source three" >repo/files/src.conf &&
	repo_commit repo v2b &&
	twin 0 apply &&
	expect_contains a.timing "timing: compact" &&
	expect_missing ra/srv/share/c.txt &&
	expect_mode 750 ra/srv/share &&
	test_cmp_text "source three" ra/etc/app-prod/src.conf &&
	twin 0 plan --exit-code
'

test_expect_success 'drift after a compacted pass is repaired, or reported, alike' '
	for t in a b; do
		echo tampered >"r$t/etc/app-prod/tmpl.conf" &&
		chmod 0666 "r$t/etc/app-prod/src.conf" &&
		echo tampered >"r$t/etc/app-prod/app.conf" &&
		rm "r$t/srv/share/sub/b.txt" || return 1
	done &&
	rm -rf sa/cache sb/cache &&
	twin 0 apply &&
	expect_contains a.timing "timing: compact" &&
	test_cmp_text "env=prod port=8080" ra/etc/app-prod/tmpl.conf &&
	expect_mode 600 ra/etc/app-prod/src.conf &&
	test_cmp repo/files/share/sub/b.txt ra/srv/share/sub/b.txt &&
	test_cmp_text tampered ra/etc/app-prod/app.conf
'

test_expect_success 'host variables change the compacted state as they change a parse' '
	write_file cfg.yaml <<-\Y &&
	vars: {env: prod, port: "9090"}
	Y
	twin 0 apply &&
	test_cmp_text "env=prod port=9090" ra/etc/app-prod/tmpl.conf
'

test_expect_success 'an invalid revision is never compacted; the same errors, the last good state stays' '
	printf "%s\n" "apiVersion: driftless/v1" "kind: File" "metadata: {name: late}" \
		"spec: {path: /etc/late.conf, content: \"x\", modee: \"0644\"}" >repo/late.yaml &&
	repo_commit repo bad &&
	twin 1 apply &&
	expect_not_contains a.timing "timing: compact" &&
	expect_contains a.err "late.yaml:4:" &&
	expect_missing ra/etc/late.conf &&
	test_cmp_text "env=prod port=9090" ra/etc/app-prod/tmpl.conf &&
	git -C repo rm -q late.yaml && repo_commit repo fixed &&
	twin 0 apply
'

test_expect_success 'a cache that cannot be written: the pass goes on without compacting' '
	echo x >repo/new.txt && repo_commit repo v3 &&
	for t in a b; do
		rm -rf "s$t/cache" && echo "not a folder" >"s$t/cache" || return 1
	done &&
	run_one a apply &&
	cat a.out a.err a.timing &&
	test "$(cat a.rc)" = 0 &&
	expect_not_contains a.timing "timing: compact" &&
	test_cmp_text "env=prod port=9090" ra/etc/app-prod/tmpl.conf &&
	rm -f sa/cache sb/cache
'

test_expect_success 'plan -o yaml shows the revision as parsed and never compacts' '
	echo y >repo/new.txt && repo_commit repo v4 &&
	twin 0 plan -o yaml &&
	expect_not_contains a.timing "timing: compact" &&
	expect_contains a.out "port \${vars.port} changed"
'

test_expect_success 'the agent compacts a new revision too: applied, and drift repaired from it' '
	rm -rf sa/cache &&
	git clone -q --bare repo "$SCRATCH/srv.git" &&
	git -C repo remote add origin "$SCRATCH/srv.git" || return 1
	DRIFTLESS_COMPACT_MIN=0 "$DRIFTLESS" agent --repo "$SCRATCH/srv.git" --root "$SCRATCH/ra" \
		--state "$SCRATCH/sa" -c "$SCRATCH/cfg.yaml" --interval 1s >>"$SCRATCH/agent.log" 2>&1 &
	pid=$! && register_pid "$pid" &&
	wait_for 15 grep -q "agent: revision .* applied" "$SCRATCH/agent.log" &&
	write_file repo/agent.yaml <<-\Y &&
	apiVersion: driftless/v1
	kind: File
	metadata: {name: by-agent}
	spec: {path: /etc/by-agent.conf, content: "from the agent\n", mode: "0640"}
	Y
	repo_commit repo "for the agent" && git -C repo push -q origin main &&
	wait_for 15 test -f ra/etc/by-agent.conf &&
	test_cmp_text "from the agent" ra/etc/by-agent.conf &&
	expect_mode 640 ra/etc/by-agent.conf &&
	echo tampered >ra/etc/by-agent.conf &&
	wait_for 5 grep -q "from the agent" ra/etc/by-agent.conf &&
	echo tampered >ra/etc/app-prod/tmpl.conf &&
	wait_for 5 grep -q "env=prod port=9090" ra/etc/app-prod/tmpl.conf &&
	kill -TERM "$pid" && { wait "$pid" || :; } &&
	! grep -q "ERROR\|error:" "$SCRATCH/agent.log"
'

test_done
