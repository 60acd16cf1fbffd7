#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The life of a revision: apply, change in a commit, drift, prune, history.
# shellcheck disable=SC2016
. "$(dirname "$0")/lib.sh"

repo_init repo
write_file repo/base.yaml <<'Y'
apiVersion: driftless/v1
kind: Directory
metadata: {name: etc-app}
spec:
  path: /etc/app
  mode: "0750"
---
apiVersion: driftless/v1
kind: File
metadata:
  name: app-conf
  labels: {role: web}
spec:
  path: /etc/app/app.conf
  source: files/app.conf
  mode: "0640"
---
apiVersion: driftless/v1
kind: Symlink
metadata: {name: current}
spec:
  path: /etc/app/current
  target: app.conf
Y
write_file repo/motd.yaml <<'Y'
apiVersion: driftless/v1
kind: File
metadata: {name: motd}
spec:
  path: /etc/motd
  content: "welcome\n"
  mode: "0644"
Y
write_file repo/files/app.conf <<'Y'
listen = 127.0.0.1:8080
workers = 4
Y
repo_commit repo init
mkdir -p "$ROOT/etc"

test_expect_success 'first apply creates every resource with its mode' '
	expect_exit 0 dl_apply repo &&
	expect_contains stdout "4 created" &&
	test_cmp repo/files/app.conf "$ROOT/etc/app/app.conf" &&
	test_cmp_text welcome "$ROOT/etc/motd" &&
	expect_mode 750 "$ROOT/etc/app" &&
	expect_mode 640 "$ROOT/etc/app/app.conf" &&
	expect_mode 644 "$ROOT/etc/motd" &&
	test "$(readlink "$ROOT/etc/app/current")" = app.conf
'

test_expect_success 'a second apply changes nothing and plan --exit-code says so' '
	expect_exit 0 dl_apply repo &&
	expect_contains stdout "0 created, 0 updated, 0 deleted, 4 unchanged" &&
	expect_exit 0 dl_plan repo --exit-code &&
	expect_contains stdout "0 to create, 0 to update, 0 to delete"
'

test_expect_success 'a revision validated before is validated again under a narrower policy' '
	printf "policy:\n  roots: [/srv]\n" >"$SCRATCH/narrow.yaml" &&
	test_must_fail dl_apply repo -c "$SCRATCH/narrow.yaml" &&
	expect_contains "$SCRATCH/stderr" "'\''/etc/motd'\'' is outside the allowed roots" &&
	expect_exit 0 dl_apply repo
'

test_expect_success 'a corrupt desired-state cache is a miss, not an error' '
	test -f "$STATE/cache/desired.bin" &&
	head -c 100 "$STATE/cache/desired.bin" >"$SCRATCH/torn" &&
	cp "$SCRATCH/torn" "$STATE/cache/desired.bin" &&
	expect_exit 0 dl_apply repo &&
	expect_contains stdout "4 unchanged"
'

test_expect_success 'a desired-state cache with a changed byte is a miss: its sum is checked' '
	expect_exit 0 dl_apply repo &&
	grep -q /etc/motd "$STATE/cache/desired.bin" &&
	sed -i "s|/etc/motd|/etc/mote|" "$STATE/cache/desired.bin" &&
	expect_exit 0 dl_apply repo &&
	expect_contains stdout "0 created, 0 updated, 0 deleted, 4 unchanged" &&
	test ! -e "$ROOT/etc/mote" &&
	test_cmp_text welcome "$ROOT/etc/motd"
'

test_expect_success 'a changed byte in the cache'\''s last records (not strings) is a miss too' '
	expect_exit 0 dl_apply repo &&
	DRIFTLESS_TIMING=1 expect_exit 0 dl_plan repo &&
	expect_contains "$SCRATCH/stderr" "timing: cached" &&
	size=$(stat -c %s "$STATE/cache/desired.bin") &&
	last=$(od -An -tu1 -j $((size - 1)) -N1 "$STATE/cache/desired.bin" | tr -d " ") &&
	printf "$(printf "\\%03o" $(((last + 1) & 255)))" |
		dd of="$STATE/cache/desired.bin" bs=1 seek=$((size - 1)) conv=notrunc 2>/dev/null &&
	test "$(stat -c %s "$STATE/cache/desired.bin")" = "$size" &&
	DRIFTLESS_TIMING=1 expect_exit 0 dl_apply repo &&
	expect_not_contains "$SCRATCH/stderr" "timing: cached" &&
	expect_contains "$SCRATCH/stderr" "timing: parse" &&
	expect_contains stdout "0 created, 0 updated, 0 deleted, 4 unchanged"
'

test_expect_success 'plan shows a unified diff of a hand edit and exits 2' '
	echo "hacked" >>"$ROOT/etc/motd" &&
	expect_exit 2 dl_plan repo --exit-code &&
	expect_contains stdout "~ update File/motd /etc/motd (content)" &&
	expect_contains stdout "-hacked" &&
	test_cmp_text "welcome
hacked" "$ROOT/etc/motd"
'

test_expect_success 'apply repairs drift and backs up the foreign content' '
	expect_exit 0 dl_apply repo &&
	test_cmp_text welcome "$ROOT/etc/motd" &&
	oid=$(printf "welcome\nhacked\n" | git hash-object --stdin) &&
	test -f "$STATE/backups/${oid:0:2}/${oid:2}" &&
	test "$(cat "$STATE/backups/${oid:0:2}/${oid:2}")" = "welcome
hacked"
'

test_expect_success 'apply repairs a mode change' '
	chmod 0666 "$ROOT/etc/app/app.conf" &&
	expect_exit 0 dl_apply repo &&
	expect_contains stdout "mode 0666 -> 0640" &&
	expect_mode 640 "$ROOT/etc/app/app.conf"
'

test_expect_success 'a changed source file in a new commit is applied' '
	echo "workers = 8" >>repo/files/app.conf &&
	repo_commit repo "more workers" &&
	expect_exit 0 dl_apply repo &&
	expect_contains stdout "~ File/app-conf updated /etc/app/app.conf (content)" &&
	test_cmp repo/files/app.conf "$ROOT/etc/app/app.conf"
'

test_expect_success 'the file is replaced atomically (new inode, no temp files left)' '
	ino1=$(stat -c %i "$ROOT/etc/app/app.conf") &&
	echo "workers = 9" >>repo/files/app.conf &&
	repo_commit repo "even more" &&
	expect_exit 0 dl_apply repo &&
	ino2=$(stat -c %i "$ROOT/etc/app/app.conf") &&
	test "$ino1" != "$ino2" &&
	test -z "$(find "$ROOT" -name ".driftless-tmp.*")"
'

test_expect_success 'a manifest removed from Git is pruned' '
	git -C repo rm -q motd.yaml &&
	repo_commit repo "drop motd" &&
	expect_exit 0 dl_apply repo &&
	expect_contains stdout "- File/motd deleted /etc/motd" &&
	expect_missing "$ROOT/etc/motd"
'

test_expect_success 'history lists every pass with its commit and author' '
	expect_exit 0 dl history --state "$STATE" &&
	expect_contains stdout "drop motd" &&
	expect_contains stdout "Driftless Test <test@driftless.invalid>" &&
	expect_contains stdout "deleted   File/motd" &&
	expect_exit 0 dl history --state "$STATE" -o json &&
	python3 -c "import json,sys; d=json.load(open(sys.argv[1])); assert d[\"passes\"][0][\"summary\"]==\"drop motd\", d" "$SCRATCH/stdout"
'

test_expect_success 'status shows the applied revision, as text and JSON' '
	head=$(repo_head repo) &&
	expect_exit 0 dl status --state "$STATE" &&
	expect_contains stdout "applied revision:   $head" &&
	expect_exit 0 dl status --state "$STATE" -o json &&
	python3 -c "import json,sys; d=json.load(open(sys.argv[1])); assert d[\"lastAppliedRevision\"]==sys.argv[2], d; assert d[\"managedResources\"]==3, d" "$SCRATCH/stdout" "$head"
'

test_expect_success 'apply -o json is one JSON document with outcomes' '
	echo tweak >>"$ROOT/etc/app/app.conf" &&
	expect_exit 0 dl_apply repo -o json &&
	python3 -c "
import json,sys
d=json.load(open(sys.argv[1]))
r={x[\"id\"]:x for x in d[\"resources\"]}
assert r[\"File/app-conf\"][\"outcome\"]==\"updated\", d
assert d[\"counts\"][\"updated\"]==1, d
" "$SCRATCH/stdout"
'

test_expect_success 'dry-run changes nothing' '
	echo tweak >>"$ROOT/etc/app/app.conf" &&
	cp "$ROOT/etc/app/app.conf" "$SCRATCH/before" &&
	expect_exit 0 dl_apply repo --dry-run &&
	expect_contains stdout "dry run" &&
	test_cmp "$SCRATCH/before" "$ROOT/etc/app/app.conf"
'

test_expect_success 'a pre-existing file is not taken over without adopt: true' '
	echo "theirs" >"$ROOT/etc/issue" &&
	write_file repo/issue.yaml <<-Y &&
	apiVersion: driftless/v1
	kind: File
	metadata: {name: issue}
	spec: {path: /etc/issue, content: "ours\n"}
	Y
	repo_commit repo issue &&
	test_must_fail dl_apply repo &&
	expect_contains stdout "set '\''adopt: true'\''" &&
	test_cmp_text theirs "$ROOT/etc/issue"
'

test_expect_success 'adopt: true takes it over with a backup, and prune never deletes it' '
	sed -i "s/content: \"ours\\\\n\"}/content: \"ours\\\\n\", adopt: true}/" repo/issue.yaml &&
	cat repo/issue.yaml &&
	repo_commit repo adopt &&
	expect_exit 0 dl_apply repo &&
	test_cmp_text ours "$ROOT/etc/issue" &&
	oid=$(echo theirs | git hash-object --stdin) &&
	test -f "$STATE/backups/${oid:0:2}/${oid:2}" &&
	git -C repo rm -q issue.yaml &&
	repo_commit repo "drop issue" &&
	expect_exit 0 dl_apply repo &&
	test_cmp_text ours "$ROOT/etc/issue"
'

test_expect_success 'driftless/drift report: drift is shown and recorded, not repaired' '
	write_file repo/rep.yaml <<-Y &&
	apiVersion: driftless/v1
	kind: File
	metadata: {name: rep, annotations: {driftless/drift: report}}
	spec: {path: /etc/rep, content: "git\n"}
	---
	apiVersion: driftless/v1
	kind: File
	metadata: {name: ign, annotations: {driftless/drift: ignore}}
	spec: {path: /etc/ign, content: "git\n"}
	Y
	repo_commit repo drift-policies &&
	expect_exit 0 dl_apply repo &&
	echo hand >"$ROOT/etc/rep" && echo hand >"$ROOT/etc/ign" &&
	expect_exit 0 dl_apply repo &&
	expect_contains stdout "? File/rep /etc/rep drifted (content), policy '\''report'\'': not repaired" &&
	expect_not_contains stdout "File/ign" &&
	test_cmp_text hand "$ROOT/etc/rep" && test_cmp_text hand "$ROOT/etc/ign" &&
	expect_exit 0 dl history --state "$STATE" -n 1 &&
	expect_contains stdout "drift reported, not repaired"
'

test_expect_success 'a changed spec is applied even under a report policy' '
	sed -i "0,/git/s/git/git v2/" repo/rep.yaml &&
	repo_commit repo rep-v2 &&
	expect_exit 0 dl_apply repo &&
	test_cmp_text "git v2" "$ROOT/etc/rep"
'

test_expect_success 'a create that fails leaves no inventory claim on the path' '
	write_file repo/later.yaml <<-Y &&
	apiVersion: driftless/v1
	kind: File
	metadata: {name: later}
	spec: {path: /etc/nodir/later, content: "x\n"}
	Y
	repo_commit repo later &&
	test_must_fail dl_apply repo &&
	mkdir "$ROOT/etc/nodir" && echo theirs >"$ROOT/etc/nodir/later" &&
	test_must_fail dl_apply repo &&
	expect_contains stdout "set '\''adopt: true'\''" &&
	test_cmp_text theirs "$ROOT/etc/nodir/later" &&
	git -C repo rm -q later.yaml && repo_commit repo "no later" &&
	expect_exit 0 dl_apply repo &&
	test_cmp_text theirs "$ROOT/etc/nodir/later"
'

test_expect_success 'a pruned file whose folder is away stays owned; one already gone is forgotten' '
	mkdir -p "$ROOT/etc/gdir" &&
	write_file repo/gone.yaml <<-Y &&
	apiVersion: driftless/v1
	kind: File
	metadata: {name: g}
	spec: {path: /etc/gdir/g.conf, content: "g\n"}
	---
	apiVersion: driftless/v1
	kind: File
	metadata: {name: h}
	spec: {path: /etc/gdir/h.conf, content: "h\n"}
	Y
	repo_commit repo gone &&
	expect_exit 0 dl_apply repo &&
	git -C repo rm -q gone.yaml && repo_commit repo "no gone" &&
	mv "$ROOT/etc/gdir" "$ROOT/etc/gdir.away" &&
	expect_exit 0 dl_apply repo &&
	expect_not_contains stdout "File/g deleted" &&
	expect_contains stdout "0 deleted" &&
	mv "$ROOT/etc/gdir.away" "$ROOT/etc/gdir" &&
	rm "$ROOT/etc/gdir/h.conf" &&
	expect_exit 0 dl_apply repo &&
	expect_contains stdout "- File/g deleted /etc/gdir/g.conf" &&
	expect_missing "$ROOT/etc/gdir/g.conf" &&
	echo mine >"$ROOT/etc/gdir/h.conf" &&
	expect_exit 0 dl_apply repo &&
	test_cmp_text mine "$ROOT/etc/gdir/h.conf"
'

test_expect_success 'usage errors exit 64' '
	expect_exit 64 dl apply --bogus &&
	expect_exit 64 dl frobnicate &&
	expect_exit 64 dl apply --repo x --branch a --tag b &&
	expect_exit 64 dl plan --root "$ROOT" --state "$STATE"
'

test_expect_success 'a command that stops at once (a bad config) never dies while libgit2 starts' '
	printf "source:\n  timeout: soon\n" >badcfg.yaml &&
	for i in $(seq 1 40); do
		rc=0
		"$DRIFTLESS" apply --repo repo -c badcfg.yaml --root "$ROOT" --state "$STATE" \
			>/dev/null 2>&1 || rc=$?
		test "$rc" -lt 128 || { echo "run $i died with $rc"; return 1; }
	done
'

test_done
