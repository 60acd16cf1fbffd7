#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The parse cache (cache/parsed.bin): a manifest whose blob did not change
# is not parsed again, and what comes out is exactly what a parse gives:
# same plan, same messages, new parses for changed blobs, policy and host
# variables; files with errors and files under a layer are never kept.
# shellcheck disable=SC2016
. "$(dirname "$0")/lib.sh"

repo_init repo
write_file repo/base/base.yaml <<'Y'
apiVersion: driftless/v1
kind: Directory
metadata: {name: app, labels: {tier: web}}
spec: {path: "/etc/app-${vars.env}", mode: "0750"}
---
apiVersion: driftless/v1
kind: File
metadata:
  name: conf
  annotations: {driftless/drift: report, driftless/prune: "false"}
spec:
  path: /etc/app-${vars.env}/app.conf
  content: |
    port ${vars.port}
    two lines
  mode: "0640"
  dependsOn: [Directory/app]
---
apiVersion: driftless/v1
kind: Symlink
metadata: {name: current}
spec: {path: "/etc/app-${vars.env}/current", target: app.conf}
Y
write_file repo/base/more.yaml <<'Y'
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
spec: {path: "/etc/app-${vars.env}/src.conf", source: files/src.conf}
Y
write_file repo/base/files/src.conf <<'Y'
from a source
Y
mkdir -p repo/roles/web
write_file repo/roles/web/layer.yaml <<'Y'
apiVersion: driftless/v1
kind: Layer
resources: [../../base]
patches:
  - target: {kind: File, name: tmpl}
    patch: {spec: {content: "patched ${vars.env}\n"}}
Y
repo_commit repo v1
mkdir -p "$ROOT/etc"
write_file cfg.yaml <<'Y'
vars: {env: prod, port: "8080"}
Y

# plan_both NAME: plan -o yaml with the caches, then without, must agree
plan_both() {
	dl_plan repo --path base -c cfg.yaml -o yaml >"$SCRATCH/$1.cached" 2>&1
	rm -rf "$STATE/cache"
	dl_plan repo --path base -c cfg.yaml -o yaml >"$SCRATCH/$1.fresh" 2>&1
	test_cmp "$SCRATCH/$1.fresh" "$SCRATCH/$1.cached"
}

test_expect_success 'a parse is kept per file, and a kept one plans exactly like a parse' '
	expect_exit 0 dl_apply repo --path base -c cfg.yaml &&
	test -s "$STATE/cache/parsed.bin" &&
	expect_exit 0 dl_apply repo --path base -c cfg.yaml &&
	sed -i "s/two lines/three lines/" repo/base/base.yaml && repo_commit repo v2 &&
	plan_both v2 &&
	expect_contains "$SCRATCH/v2.cached" "three lines" &&
	expect_contains "$SCRATCH/v2.cached" "driftless/drift: report" &&
	expect_exit 0 dl_apply repo --path base -c cfg.yaml &&
	test_cmp_text "port \${vars.port}
three lines" "$ROOT/etc/app-prod/app.conf"
'

test_expect_success 'a kept file is really not parsed again; a changed byte in it is a miss' '
	expect_exit 0 dl_apply repo --path base -c cfg.yaml &&
	rm "$STATE/cache/desired.bin" &&
	DRIFTLESS_TIMING=1 expect_exit 0 dl_plan repo --path base -c cfg.yaml &&
	expect_contains "$SCRATCH/stderr" "parse cache: 2 of 2 manifest files kept" &&
	grep -c "env=" "$STATE/cache/parsed.bin" &&
	sed -i "s/env=/ENV=/" "$STATE/cache/parsed.bin" &&
	rm "$STATE/cache/desired.bin" &&
	DRIFTLESS_TIMING=1 expect_exit 0 dl_plan repo --path base -c cfg.yaml -o yaml &&
	expect_contains "$SCRATCH/stderr" "parse cache: 1 of 2 manifest files kept" &&
	expect_not_contains stdout "ENV=" &&
	expect_contains stdout "env=prod port=8080"
'

test_expect_success 'host variables and local policy are part of the key' '
	expect_exit 0 dl_apply repo --path base -c cfg.yaml &&
	write_file cfg2.yaml <<-\Y &&
	vars: {env: prod, port: "9090"}
	Y
	test_cmp_text "env=prod port=8080" "$ROOT/etc/app-prod/tmpl.conf" &&
	expect_exit 0 dl_apply repo --path base -c cfg2.yaml &&
	test_cmp_text "env=prod port=9090" "$ROOT/etc/app-prod/tmpl.conf" &&
	write_file cfg3.yaml <<-\Y &&
	vars: {env: prod, port: "9090"}
	policy: {kinds: [File, Directory]}
	Y
	expect_exit 1 dl_apply repo --path base -c cfg3.yaml &&
	expect_contains "$SCRATCH/stderr" "kind Symlink is denied by local policy"
'

test_expect_success 'a duplicate between a kept file and a new one reads the same either way' '
	expect_exit 0 dl_apply repo --path base -c cfg.yaml &&
	write_file repo/base/zz-dup.yaml <<-\Y &&
	apiVersion: driftless/v1
	kind: File
	metadata: {name: conf}
	spec: {path: /etc/other.conf, content: "x\n"}
	Y
	repo_commit repo dup &&
	expect_exit 1 dl_plan repo --path base -c cfg.yaml &&
	cp "$SCRATCH/stderr" "$SCRATCH/dup.cached" &&
	rm -rf "$STATE/cache" &&
	expect_exit 1 dl_plan repo --path base -c cfg.yaml &&
	test_cmp "$SCRATCH/stderr" "$SCRATCH/dup.cached" &&
	expect_contains "$SCRATCH/stderr" "duplicate resource File/conf" &&
	git -C repo rm -q base/zz-dup.yaml && repo_commit repo "no dup"
'

test_expect_success 'a file with an error is never kept; fixed, it parses again' '
	expect_exit 0 dl_apply repo --path base -c cfg.yaml &&
	printf "%s\n" "apiVersion: driftless/v1" "kind: File" "metadata: {name: late}" \
		"spec: {path: /etc/late.conf, content: \"x\", modee: \"0644\"}" >repo/base/late.yaml &&
	repo_commit repo bad &&
	expect_exit 1 dl_plan repo --path base -c cfg.yaml &&
	expect_contains "$SCRATCH/stderr" "unknown field '\''spec.modee'\''" &&
	expect_exit 1 dl_plan repo --path base -c cfg.yaml &&
	expect_contains "$SCRATCH/stderr" "unknown field '\''spec.modee'\''" &&
	sed -i "s/, modee: \"0644\"//" repo/base/late.yaml && repo_commit repo fixed &&
	plan_both fixed &&
	expect_contains "$SCRATCH/fixed.cached" "File/late"
'

test_expect_success 'files composed by a layer are parsed every time, with its patches' '
	expect_exit 0 dl_apply repo --path base -c cfg.yaml &&
	expect_exit 0 dl_plan repo -c cfg.yaml --path roles/web -o yaml &&
	expect_contains stdout "patched prod" &&
	expect_exit 0 dl_plan repo -c cfg.yaml --path base -o yaml &&
	expect_not_contains stdout "patched prod" &&
	expect_exit 0 dl_plan repo -c cfg.yaml --path roles/web -o yaml &&
	expect_contains stdout "patched prod"
'

test_expect_success 'a damaged parse cache is ignored' '
	expect_exit 0 dl_apply repo --path base -c cfg.yaml &&
	size=$(stat -c %s "$STATE/cache/parsed.bin") &&
	truncate -s $((size - 7)) "$STATE/cache/parsed.bin" &&
	rm -f "$STATE/cache/desired.bin" &&
	plan_both damaged
'

test_expect_success 'a folder without manifests is walked once; one added to it later is read' '
	mkdir -p repo/base/files/deep/er &&
	for i in 1 2 3; do echo "$i" >"repo/base/files/deep/er/t$i.txt" || return 1; done &&
	write_file repo/base/nested/deeper/n.yaml <<-\Y &&
	apiVersion: driftless/v1
	kind: File
	metadata: {name: nested}
	spec: {path: /etc/nested.conf, content: "nested\n"}
	Y
	repo_commit repo "text files" &&
	expect_exit 0 dl_apply repo --path base -c cfg.yaml &&
	expect_contains stdout "File/nested created" &&
	memo=$(ls "$STATE"/git/*.git/driftless-memo) &&
	test -s "$memo" &&
	write_file repo/base/files/deep/er/late.yaml <<-\Y &&
	apiVersion: driftless/v1
	kind: File
	metadata: {name: late-in-files}
	spec: {path: /etc/late-in-files.conf, content: "late\n"}
	Y
	repo_commit repo "a manifest among the text files" &&
	expect_exit 0 dl_apply repo --path base -c cfg.yaml &&
	expect_contains stdout "File/late-in-files created" &&
	expect_contains stdout " 0 deleted" &&
	test_cmp_text late "$ROOT/etc/late-in-files.conf" &&
	test_cmp_text nested "$ROOT/etc/nested.conf" &&
	git -C repo rm -q base/files/deep/er/late.yaml && repo_commit repo "gone again" &&
	expect_exit 0 dl_apply repo --path base -c cfg.yaml &&
	expect_contains stdout "File/late-in-files deleted"
'

test_expect_success 'a damaged or foreign memo is read past: the walk and the sizes are done again' '
	memo=$(ls "$STATE"/git/*.git/driftless-memo) &&
	expect_exit 0 dl_plan repo --path base -c cfg.yaml -o yaml &&
	mv stdout "$SCRATCH/memo.ref" &&
	size=$(stat -c %s "$memo") &&
	printf "\377" | dd of="$memo" bs=1 seek=$((size / 2)) conv=notrunc 2>/dev/null &&
	rm -rf "$STATE/cache" &&
	expect_exit 0 dl_plan repo --path base -c cfg.yaml -o yaml &&
	test_cmp "$SCRATCH/memo.ref" stdout &&
	echo "not a memo at all, just some bytes; long enough to have a header" >"$memo" &&
	rm -rf "$STATE/cache" &&
	expect_exit 0 dl_plan repo --path base -c cfg.yaml -o yaml &&
	test_cmp "$SCRATCH/memo.ref" stdout &&
	rm -f "$memo" && ln -s "$SCRATCH/elsewhere" "$memo" &&
	echo "not the memo" >"$SCRATCH/elsewhere" &&
	rm -rf "$STATE/cache" &&
	expect_exit 0 dl_plan repo --path base -c cfg.yaml -o yaml &&
	test_cmp "$SCRATCH/memo.ref" stdout &&
	test_cmp_text "not the memo" "$SCRATCH/elsewhere"
'

test_expect_success 'a source size the memo remembers is held to a lower limit all the same' '
	head -c 3000 /dev/zero | tr "\0" x >repo/base/files/big.conf &&
	write_file repo/base/big.yaml <<-\Y &&
	apiVersion: driftless/v1
	kind: File
	metadata: {name: big}
	spec: {path: /etc/big.conf, source: files/big.conf}
	Y
	repo_commit repo "a 3000-byte source" &&
	expect_exit 0 dl_apply repo --path base -c cfg.yaml &&
	write_file small.yaml <<-\Y &&
	vars: {env: prod, port: "8080"}
	policy: {maxFileSize: 2000}
	Y
	expect_exit 1 dl_plan repo --path base -c small.yaml &&
	expect_contains "$SCRATCH/stderr" "is 3000 bytes, more than the limit of 2000" &&
	git -C repo rm -q base/big.yaml base/files/big.conf && repo_commit repo "no big" &&
	expect_exit 0 dl_apply repo --path base -c cfg.yaml
'

test_done
