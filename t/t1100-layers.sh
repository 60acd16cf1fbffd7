#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Layers (layer.yaml): base + role + host overlay composed explicitly, JSON
# merge patches (nested maps, null deletes), nested layers, plan -o yaml,
# validate on a layered entry, and every layer error at FILE:LINE:COL with
# the whole revision rejected.
# shellcheck disable=SC2016
. "$(dirname "$0")/lib.sh"

R=$SCRATCH/infra
repo_init infra
write_file "$R/base/motd.yaml" <<-'Y'
	apiVersion: driftless/v1
	kind: File
	metadata: {name: motd}
	spec:
	  path: /etc/motd
	  content: "base\n"
	  mode: "0644"
	---
	apiVersion: driftless/v1
	kind: Directory
	metadata: {name: etc-app}
	spec: {path: /etc/app, mode: "0755"}
	Y
write_file "$R/base/issue.yml" <<-'Y'
	apiVersion: driftless/v1
	kind: File
	metadata:
	  name: issue
	  annotations: {driftless/drift: report}
	spec: {path: /etc/issue, source: files/issue, mode: "0600"}
	Y
write_file "$R/base/files/issue" <<-'Y'
	issue from base
	Y
write_file "$R/roles/web/layer.yaml" <<-'Y'
	apiVersion: driftless/v1
	kind: Layer
	resources: [../../base, nginx.yaml]
	patches:
	  - target: {kind: File, name: motd}
	    patch: {spec: {content: "web role\n"}}
	Y
write_file "$R/roles/web/nginx.yaml" <<-'Y'
	apiVersion: driftless/v1
	kind: File
	metadata: {name: nginx}
	spec:
	  path: /etc/app/nginx.conf
	  content: "listen 80;\n"
	  dependsOn: [Directory/etc-app]
	Y
write_file "$R/roles/web/unlisted.yaml" <<-'Y'
	apiVersion: driftless/v1
	kind: File
	metadata: {name: unlisted}
	spec: {path: /etc/unlisted, content: "never\n"}
	Y
write_file "$R/hosts/web-01/layer.yaml" <<-'Y'
	apiVersion: driftless/v1
	kind: Layer
	metadata: {name: web-01}
	resources:
	  - ../../roles/web
	  - local.yaml
	patches:
	  - target: {kind: File, name: motd}
	    patch:
	      spec: {content: "production\n", mode: null}
	  - target: {kind: File, name: issue}
	    patch:
	      metadata: {annotations: {driftless/drift: null, driftless/prune: "false"}}
	      spec: {source: files/issue, mode: "0640"}
	  - target: {kind: Directory}
	    patch: {spec: {mode: "0750"}}
	Y
write_file "$R/hosts/web-01/files/issue" <<-'Y'
	issue of web-01
	Y
write_file "$R/hosts/web-01/local.yaml" <<-'Y'
	apiVersion: driftless/v1
	kind: File
	metadata: {name: local}
	spec: {path: /etc/app/local.conf, content: "local\n"}
	Y
repo_commit infra "layers"
mkdir -p "$ROOT/etc"

test_expect_success 'a host overlay composes base and role, patches apply innermost first' '
	expect_exit 0 dl_apply "$R" --path hosts/web-01 &&
	test_cmp_text production "$ROOT/etc/motd" &&
	test_cmp_text "listen 80;" "$ROOT/etc/app/nginx.conf" &&
	test_cmp_text local "$ROOT/etc/app/local.conf" &&
	expect_mode 750 "$ROOT/etc/app" &&
	expect_missing "$ROOT/etc/unlisted"
'

test_expect_success 'a patched source is relative to the layer; a null deletes a key' '
	test_cmp_text "issue of web-01" "$ROOT/etc/issue" &&
	expect_mode 640 "$ROOT/etc/issue" &&
	expect_mode 644 "$ROOT/etc/motd"
'

test_expect_success 'nested maps: annotations merged key by key' '
	expect_exit 0 dl plan --repo "$R" --path hosts/web-01 --root "$ROOT" --state "$STATE" -o yaml &&
	awk "/^# File\/issue /,/^---/" stdout >issue.yaml &&
	expect_contains issue.yaml "driftless/prune: \"false\"" &&
	expect_not_contains issue.yaml "driftless/drift"
'

test_expect_success 'the role alone applies its own patch, not the host one' '
	mkdir -p "$SCRATCH/root2" &&
	expect_exit 0 dl plan --repo "$R" --path roles/web --root "$SCRATCH/root2" \
		--state "$SCRATCH/state2" -o yaml &&
	expect_contains stdout "web role" &&
	expect_not_contains stdout production
'

test_expect_success 'plan -o yaml shows the composed manifests, byte-identical twice' '
	dl plan --repo "$R" --path hosts/web-01 --root "$ROOT" --state "$STATE" -o yaml >one.yaml &&
	rm -rf "$STATE/cache" &&
	dl plan --repo "$R" --path hosts/web-01 --root "$ROOT" --state "$STATE" -o yaml >two.yaml &&
	test_cmp one.yaml two.yaml &&
	cat >expect.yaml <<-\EOF &&
	---
	# File/issue from base/issue.yml:1:1
	apiVersion: driftless/v1
	kind: File
	metadata:
	  name: issue
	  annotations:
	    driftless/prune: "false"
	spec:
	  path: "/etc/issue"
	  source: "hosts/web-01/files/issue"
	  mode: "0640"
	---
	# File/motd from base/motd.yaml:1:1
	apiVersion: driftless/v1
	kind: File
	metadata:
	  name: motd
	spec:
	  path: "/etc/motd"
	  content: |
	    production
	---
	# Directory/etc-app from base/motd.yaml:9:1
	apiVersion: driftless/v1
	kind: Directory
	metadata:
	  name: etc-app
	spec:
	  path: "/etc/app"
	  mode: "0750"
	---
	# File/nginx from roles/web/nginx.yaml:1:1
	apiVersion: driftless/v1
	kind: File
	metadata:
	  name: nginx
	spec:
	  path: "/etc/app/nginx.conf"
	  content: |
	    listen 80;
	  dependsOn: ["Directory/etc-app"]
	---
	# File/local from hosts/web-01/local.yaml:1:1
	apiVersion: driftless/v1
	kind: File
	metadata:
	  name: local
	spec:
	  path: "/etc/app/local.conf"
	  content: |
	    local
	EOF
	test_cmp expect.yaml one.yaml
'

test_expect_success 'plan -o yaml reads back as the same manifests' '
	repo_init again &&
	grep -v "source:" one.yaml | grep -v "^# " >again/all.yaml &&
	sed -i "s|  mode: \"0640\"|  content: \"x\"\n  mode: \"0640\"|" again/all.yaml &&
	repo_commit again "round trip" &&
	dl plan --repo again --root "$ROOT" --state "$SCRATCH/state3" -o yaml >back.yaml &&
	grep -v "^# " back.yaml >back.clean &&
	test_cmp again/all.yaml back.clean
'

test_expect_success 'validate works on a layered entry (and on the working copy)' '
	expect_exit 0 dl validate --repo "$R" --path hosts/web-01 &&
	expect_contains stdout "manifests OK (5 resources" &&
	expect_exit 0 dl validate "$R" --path hosts/web-01 &&
	expect_contains stdout "manifests OK (5 resources"
'

# bad DIR LAYER-YAML: write hosts/DIR/layer.yaml (plus what the test set up)
bad_layer() {
	write_file "$R/hosts/$1/layer.yaml"
}

# rejected DIR EXPECTED...: validate and apply of hosts/DIR fail with each
# EXPECTED on stderr; nothing on the host changes, the applied revision stays
rejected() {
	local dir=$1
	shift
	repo_commit infra "bad $dir" &&
	before=$(find "$ROOT" -printf "%p %m %s %T@\n" | sort) &&
	test_must_fail dl validate "$R" --path "hosts/$dir" &&
	for want in "$@"; do expect_contains "$SCRATCH/stderr" "$want" || return 1; done &&
	test_must_fail dl_apply "$R" --path "hosts/$dir" &&
	for want in "$@"; do expect_contains "$SCRATCH/stderr" "$want" || return 1; done &&
	expect_contains "$SCRATCH/stderr" "nothing was applied" &&
	after=$(find "$ROOT" -printf "%p %m %s %T@\n" | sort) &&
	test "$before" = "$after"
}

test_expect_success 'a patch target that matches nothing' '
	bad_layer nomatch <<-\Y &&
	apiVersion: driftless/v1
	kind: Layer
	resources: [../../base]
	patches:
	  - target: {kind: File, name: motd}
	    patch: {spec: {content: ok}}
	  - target: {kind: File, name: nope}
	    patch: {spec: {content: x}}
	Y
	rejected nomatch "hosts/nomatch/layer.yaml:7:13: patch target File/nope matches no resource of this layer"
'

test_expect_success 'a cycle among layers is named' '
	bad_layer cyc-a <<-\Y &&
	apiVersion: driftless/v1
	kind: Layer
	resources: [../cyc-b]
	Y
	bad_layer cyc-b <<-\Y &&
	apiVersion: driftless/v1
	kind: Layer
	resources: [../../base, ../cyc-a]
	Y
	rejected cyc-a "hosts/cyc-b/layer.yaml:3:25: layer cycle: hosts/cyc-a -> hosts/cyc-b -> hosts/cyc-a"
'

test_expect_success 'a layer including itself is a cycle' '
	bad_layer self <<-\Y &&
	apiVersion: driftless/v1
	kind: Layer
	resources: [.]
	Y
	rejected self "hosts/self/layer.yaml:3:13: layer cycle: hosts/self -> hosts/self"
'

test_expect_success 'paths outside the repository and absolute paths' '
	bad_layer escape <<-\Y &&
	apiVersion: driftless/v1
	kind: Layer
	resources:
	  - ../../..
	  - /etc/passwd
	  - ../../base/../../../etc
	Y
	rejected escape "hosts/escape/layer.yaml:4:5: '\''resources'\'' entry '\''../../..'\'' leaves the repository" \
		"hosts/escape/layer.yaml:5:5: '\''resources'\'' entry '\''/etc/passwd'\'' is absolute" \
		"hosts/escape/layer.yaml:6:5: '\''resources'\'' entry '\''../../base/../../../etc'\'' leaves the repository"
'

test_expect_success 'a symlink as a layer entry, on the way to one, and as layer.yaml' '
	mkdir -p "$R/hosts/link" "$R/hosts/link-file" "$R/hosts/linked-layer" &&
	ln -s ../../base "$R/hosts/link/base" &&
	ln -s ../../base/motd.yaml "$R/hosts/link/motd.yaml" &&
	bad_layer link <<-\Y &&
	apiVersion: driftless/v1
	kind: Layer
	resources: [base, motd.yaml, base/files]
	Y
	ln -s ../link/layer.yaml "$R/hosts/linked-layer/layer.yaml" &&
	rejected link "hosts/link/layer.yaml:3:13: '\''resources'\'' entry '\''hosts/link/base'\'' is a symlink; symlinks are never followed" \
		"hosts/link/layer.yaml:3:19: '\''resources'\'' entry '\''hosts/link/motd.yaml'\'' is a symlink" \
		"hosts/link/layer.yaml:3:30: '\''resources'\'' entry '\''hosts/link/base/files'\'' goes through '\''hosts/link/base'\'', a symlink" &&
	rejected linked-layer "hosts/linked-layer/layer.yaml: layer.yaml is a symlink; symlinks are never followed"
'

test_expect_success 'a patch may not change kind or metadata.name' '
	bad_layer rename <<-\Y &&
	apiVersion: driftless/v1
	kind: Layer
	resources: [../../base]
	patches:
	  - target: {kind: File, name: motd}
	    patch: {kind: Symlink}
	  - target: {name: etc-app}
	    patch:
	      metadata: {name: other-app}
	Y
	rejected rename "hosts/rename/layer.yaml:6:19: a patch may not change '\''kind'\'' of File/motd" \
		"hosts/rename/layer.yaml:9:24: a patch may not change '\''metadata.name'\'' of Directory/etc-app"
'

test_expect_success 'unknown keys in layer.yaml, and errors in patched values point at the layer' '
	bad_layer unknown <<-\Y &&
	apiVersion: driftless/v1
	kind: Layer
	resource: [../../base]
	resources: [../../base, missing.yaml, ../../base/files/issue]
	patches:
	  - target: {kind: File, name: motd}
	    patch: {spec: {mode: 644, colour: red}}
	    when: always
	Y
	rejected unknown "hosts/unknown/layer.yaml:3:1: unknown field '\''resource'\'' in layer.yaml" \
		"hosts/unknown/layer.yaml:4:25: '\''resources'\'' entry '\''hosts/unknown/missing.yaml'\'' does not exist in the commit" \
		"hosts/unknown/layer.yaml:4:39: '\''resources'\'' entry '\''base/files/issue'\'' is not a manifest" \
		"hosts/unknown/layer.yaml:7:26: File/motd: '\''mode'\'' must be a quoted octal string" \
		"hosts/unknown/layer.yaml:7:31: File/motd: unknown field '\''spec.colour'\'' for kind File" \
		"hosts/unknown/layer.yaml:8:5: unknown field '\''patches[].when'\'' in layer.yaml"
'

test_expect_success 'the same resource reached twice is a duplicate' '
	bad_layer twice <<-\Y &&
	apiVersion: driftless/v1
	kind: Layer
	resources: [../../base, ../../roles/web]
	Y
	rejected twice "base/motd.yaml:3:18: document 1: duplicate resource File/motd: '\''base/motd.yaml'\'' is reached a second time, through roles/web/layer.yaml:3:13"
'

test_expect_success 'a rejected layer leaves the applied revision in force and says why' '
	expect_exit 0 dl status --state "$STATE" &&
	expect_contains stdout "rejected" &&
	test_cmp_text production "$ROOT/etc/motd"
'

test_expect_success 'a plain directory composes a layer found below it' '
	repo_init plain &&
	write_file plain/top.yaml <<-\Y &&
	apiVersion: driftless/v1
	kind: File
	metadata: {name: top}
	spec: {path: /etc/top, content: "top\n"}
	Y
	write_file plain/sub/layer.yaml <<-\Y &&
	apiVersion: driftless/v1
	kind: Layer
	resources: [listed.yaml]
	patches:
	  - target: {name: listed}
	    patch: {spec: {content: "patched\n"}}
	Y
	write_file plain/sub/listed.yaml <<-\Y &&
	apiVersion: driftless/v1
	kind: File
	metadata: {name: listed}
	spec: {path: /etc/listed, content: "listed\n"}
	Y
	write_file plain/sub/skipped.yaml <<-\Y &&
	not: a manifest
	Y
	repo_commit plain "plain" &&
	expect_exit 0 dl plan --repo plain --root "$ROOT" --state "$SCRATCH/state4" -o yaml &&
	expect_contains stdout "File/top" &&
	expect_contains stdout "patched" &&
	expect_not_contains stdout "skipped"
'

test_done
