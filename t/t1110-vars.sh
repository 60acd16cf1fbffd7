#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Host variables: ${host.name}, ${host.os}, ${host.arch} and ${vars.KEY}
# (agent.yaml) in string fields and in templates; $${ escapes; no re-scan;
# errors at FILE:LINE:COL; the policy checks the substituted path; the
# desired-state cache follows the variables; validate checks syntax only.
# shellcheck disable=SC2016
. "$(dirname "$0")/lib.sh"

R=$SCRATCH/infra
repo_init infra
write_file "$R/app.yaml" <<-'Y'
	apiVersion: driftless/v1
	kind: Directory
	metadata: {name: app}
	spec: {path: "/etc/app-${vars.env}"}
	---
	apiVersion: driftless/v1
	kind: File
	metadata: {name: conf}
	spec:
	  path: /etc/app-${vars.env}/${host.name}.conf
	  content: "port ${vars.port}\n"
	---
	apiVersion: driftless/v1
	kind: File
	metadata: {name: inline}
	spec:
	  path: /etc/app-${vars.env}/inline.conf
	  template: true
	  content: |
	    host=${host.name} os=${host.os} arch=${host.arch}
	    port=${vars.port} literal=$${vars.port} twice=${vars.loop}
	---
	apiVersion: driftless/v1
	kind: File
	metadata: {name: from-source}
	spec:
	  path: /etc/app-${vars.env}/source.conf
	  source: files/source.conf.tmpl
	  template: true
	Y
write_file "$R/files/source.conf.tmpl" <<-'Y'
	# rendered for ${host.name}
	env = ${vars.env}
	shell = $${SHELL}
	Y
repo_commit infra "vars"
mkdir -p "$ROOT/etc"
printf 'NAME="Test OS"\nID="testos"\nVERSION_ID=1\n' >"$ROOT/etc/os-release"
HOST=$(hostname)
ARCH=$(uname -m)

write_file cfg.yaml <<-'Y'
	vars:
	  env: prod
	  port: "8080"
	  loop: "${vars.env}"
	Y

test_expect_success 'variables in paths; content only in templates' '
	expect_exit 0 dl_apply "$R" -c cfg.yaml &&
	test -d "$ROOT/etc/app-prod" &&
	test_cmp_text "port \${vars.port}" "$ROOT/etc/app-prod/$HOST.conf"
'

test_expect_success 'an inline template: host facts, vars, $${ and no re-scan' '
	printf "%s\n" "host=$HOST os=testos arch=$ARCH" \
		"port=8080 literal=\${vars.port} twice=\${vars.env}" >expect &&
	test_cmp expect "$ROOT/etc/app-prod/inline.conf"
'

test_expect_success 'a source file with template: true is rendered' '
	printf "%s\n" "# rendered for $HOST" "env = prod" "shell = \${SHELL}" >expect &&
	test_cmp expect "$ROOT/etc/app-prod/source.conf"
'

test_expect_success 'plan -o yaml shows the substituted values, escaped to read back' '
	expect_exit 0 dl_plan "$R" -c cfg.yaml -o yaml &&
	expect_contains stdout "path: \"/etc/app-prod/$HOST.conf\"" &&
	expect_contains stdout "twice=\$\${vars.env}" &&
	expect_contains stdout "    port \${vars.port}"
'

test_expect_success 'the cache is used for the same variables and missed when they change' '
	DRIFTLESS_TIMING=1 dl_apply "$R" -c cfg.yaml 2>timing &&
	expect_contains timing "timing: cached" &&
	sed -i "s/env: prod/env: stage/" cfg.yaml &&
	DRIFTLESS_TIMING=1 dl_apply "$R" -c cfg.yaml 2>timing &&
	expect_not_contains timing "timing: cached" &&
	test_cmp_text "port \${vars.port}" "$ROOT/etc/app-stage/$HOST.conf" &&
	grep -q "env = stage" "$ROOT/etc/app-stage/source.conf" &&
	expect_missing "$ROOT/etc/app-prod/source.conf"
'

test_expect_success 'the os comes from the root, not the machine' '
	printf "ID=otheros\n" >"$ROOT/etc/os-release" &&
	expect_exit 0 dl_apply "$R" -c cfg.yaml &&
	grep -q "os=otheros" "$ROOT/etc/app-stage/inline.conf" &&
	rm "$ROOT/etc/os-release" &&
	expect_exit 0 dl_apply "$R" -c cfg.yaml &&
	grep -q "os=linux" "$ROOT/etc/app-stage/inline.conf"
'

# rejected MANIFEST EXPECTED...: add bad.yaml; apply fails with each EXPECTED,
# nothing changes; then bad.yaml goes again
rejected() {
	local content=$1
	shift
	printf "%s\n" "$content" >"$R/bad.yaml" &&
	repo_commit infra bad &&
	before=$(find "$ROOT" -printf "%p %m %s %T@\n" | sort) &&
	test_must_fail dl_apply "$R" -c cfg.yaml &&
	for want in "$@"; do expect_contains "$SCRATCH/stderr" "$want" || return 1; done &&
	expect_contains "$SCRATCH/stderr" "nothing was applied" &&
	after=$(find "$ROOT" -printf "%p %m %s %T@\n" | sort) &&
	test "$before" = "$after" &&
	git -C "$R" rm -q bad.yaml && repo_commit infra "no bad"
}

test_expect_success 'an unknown variable is an error naming it at FILE:LINE:COL' '
	rejected "apiVersion: driftless/v1
kind: File
metadata: {name: bad}
spec:
  path: /etc/\${vars.nope}
  content: x" "bad.yaml:5:9: File/bad: '\''path'\'' unknown variable '\''vars.nope'\'' (not set in '\''vars'\'' of the agent config)"
'

test_expect_success 'unterminated, malformed and unknown host variables' '
	rejected "apiVersion: driftless/v1
kind: File
metadata: {name: bad}
spec:
  path: /etc/\${vars.env
  owner: \${whoami}
  group: \${host.kernel}
  content: x" "bad.yaml:5:9: File/bad: '\''path'\'' unterminated '\''\${'\''" \
		"bad.yaml:6:10: File/bad: '\''owner'\'' '\''\${whoami}'\'' is not a variable" \
		"bad.yaml:7:10: File/bad: '\''group'\'' unknown variable '\''host.kernel'\''"
'

test_expect_success 'an unknown variable in a template source points into the source' '
	printf "one\ntwo \${vars.nope}\n" >"$R/files/bad.tmpl" &&
	rejected "apiVersion: driftless/v1
kind: File
metadata: {name: bad}
spec: {path: /etc/bad, source: files/bad.tmpl, template: true}" \
		"files/bad.tmpl:2:5: File/bad: template unknown variable '\''vars.nope'\''"
'

test_expect_success 'a substituted path is checked again by the local policy' '
	cp cfg.yaml cfg.orig &&
	printf "  dir: srv\n  up: \"../..\"\npolicy: {roots: [/etc]}\n" >>cfg.yaml &&
	rejected "apiVersion: driftless/v1
kind: File
metadata: {name: bad}
spec: {path: \"/\${vars.dir}/x\", content: x}
---
apiVersion: driftless/v1
kind: File
metadata: {name: bad2}
spec: {path: \"/etc/\${vars.up}/root/x\", content: x}" \
		"bad.yaml:4:14: File/bad: '\''path'\'' '\''/srv/x'\'' is outside the allowed roots" \
		"bad.yaml:9:14: document 2: File/bad2: '\''path'\'' must not contain '\''..'\''"
	ret=$?
	cp cfg.orig cfg.yaml
	return $ret
'

test_expect_success 'validate checks the syntax of variables only (no host)' '
	write_file v/ok.yaml <<-\Y &&
	apiVersion: driftless/v1
	kind: File
	metadata: {name: ok}
	spec: {path: "/etc/${vars.anything}/${host.name}", content: "${vars.x}", template: true}
	Y
	expect_exit 0 dl validate v &&
	write_file v/ok.yaml <<-\Y &&
	apiVersion: driftless/v1
	kind: File
	metadata: {name: ok}
	spec: {path: "/etc/${vars.anything", content: x}
	Y
	test_must_fail dl validate v &&
	expect_contains "$SCRATCH/stderr" "ok.yaml:4:14: File/ok: '\''path'\'' unterminated"
'

test_expect_success 'bad vars in agent.yaml are config errors' '
	printf "vars:\n  1env: x\n  ok: {a: b}\n  e-v: y\n" >badcfg.yaml &&
	test_must_fail dl_apply "$R" -c badcfg.yaml &&
	expect_contains "$SCRATCH/stderr" "badcfg.yaml:2:3: '\''vars'\'' key '\''1env'\'' must start with a letter" &&
	expect_contains "$SCRATCH/stderr" "badcfg.yaml:3:7: '\''vars.ok'\'' must be a string" &&
	expect_contains "$SCRATCH/stderr" "badcfg.yaml:4:3: '\''vars'\'' key '\''e-v'\'' may hold only"
'

test_expect_success 'capture never writes host values over a template or ${...}' '
	git clone -q "$R" clone &&
	echo "hand edit" >"$ROOT/etc/app-stage/inline.conf" &&
	test_must_fail dl capture File/inline --into clone --state "$STATE" -c cfg.yaml &&
	expect_contains "$SCRATCH/stderr" "File/inline is a template" &&
	echo "port 9090" >"$ROOT/etc/app-stage/$HOST.conf" &&
	expect_exit 0 dl capture File/conf --into clone --state "$STATE" -c cfg.yaml &&
	grep -q "content: \"port 9090\\\\n\"" clone/app.yaml &&
	grep -q "path: /etc/app-\${vars.env}/\${host.name}.conf" clone/app.yaml
'

test_done
