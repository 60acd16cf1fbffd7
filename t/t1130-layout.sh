#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The three repository layouts of docs/repository-layout.md, as written
# there: trunk with overlays (layers and host variables), environment
# branches (a rewound branch refused), tag-pinned releases (--semver).
# shellcheck disable=SC2016
. "$(dirname "$0")/lib.sh"

repo_init infra
I=$SCRATCH/infra
mkdir -p "$I/base" "$I/roles/web/files" "$I/hosts/web-01" "$I/hosts/staging/web-01" "$I/hosts/prod/web-01"
write_file "$I/base/motd.yaml" <<'Y'
apiVersion: driftless/v1
kind: File
metadata: {name: motd}
spec: {path: /etc/motd, content: "welcome\n"}
Y
write_file "$I/roles/web/layer.yaml" <<'Y'
apiVersion: driftless/v1
kind: Layer
resources: [../../base, nginx.yaml]
Y
write_file "$I/roles/web/nginx.yaml" <<'Y'
apiVersion: driftless/v1
kind: File
metadata: {name: nginx-conf}
spec: {path: /etc/nginx.conf, source: files/nginx.conf}
Y
echo "worker_processes 2;" >"$I/roles/web/files/nginx.conf"
write_file "$I/hosts/web-01/layer.yaml" <<'Y'
apiVersion: driftless/v1
kind: Layer
resources: [../../roles/web, local.yaml]
patches:
  - target: {kind: File, name: motd}
    patch: {spec: {content: "web-01 (${vars.env})\n", template: true}}
Y
write_file "$I/hosts/web-01/local.yaml" <<'Y'
apiVersion: driftless/v1
kind: File
metadata: {name: local}
spec: {path: /etc/local.conf, content: "host = ${host.name}\n", template: true}
Y
for env in staging prod; do
	write_file "$I/hosts/$env/web-01/layer.yaml" <<-Y
	apiVersion: driftless/v1
	kind: Layer
	resources: [../../../roles/web]
	patches:
	  - target: {kind: File, name: motd}
	    patch: {spec: {content: "$env\n"}}
	Y
done
repo_commit infra "layout"
git clone -q --bare "$I" "$SCRATCH/infra.git"
git -C "$I" remote add origin "$SCRATCH/infra.git"
mkdir -p "$ROOT/etc"
write_file "$SCRATCH/agent.yaml" <<'Y'
vars: {env: prod}
Y

apply_to() { # apply_to NAME ARGS...: a host of its own
	local h=$1
	shift
	mkdir -p "$SCRATCH/$h/etc"
	dl apply --root "$SCRATCH/$h" --state "$SCRATCH/$h.state" "$@"
}

test_expect_success 'trunk with overlays: a host gets base + role + its own, patched, with variables' '
	expect_exit 0 apply_to web01 --repo "$SCRATCH/infra.git" --branch main --path hosts/web-01 -c "$SCRATCH/agent.yaml" &&
	test_cmp_text "web-01 (prod)" "$SCRATCH/web01/etc/motd" &&
	test_cmp_text "host = $(hostname)" "$SCRATCH/web01/etc/local.conf" &&
	test_cmp_text "worker_processes 2;" "$SCRATCH/web01/etc/nginx.conf" &&
	expect_exit 0 dl plan --repo "$SCRATCH/infra.git" --path hosts/web-01 -c "$SCRATCH/agent.yaml" \
		--root "$SCRATCH/web01" --state "$SCRATCH/web01.state" -o yaml &&
	expect_contains "$SCRATCH/stdout" "web-01 (prod)" &&
	for e in hosts/web-01 hosts/staging/web-01 hosts/prod/web-01 roles/web; do
		expect_exit 0 dl validate --repo "$SCRATCH/infra.git" --path $e || return 1
	done &&
	test_must_fail dl validate "$I" &&
	expect_contains "$SCRATCH/stderr" "is reached a second time"
'

test_expect_success 'trunk with overlays: staging and production differ by directory, one commit reaches both' '
	expect_exit 0 apply_to stg --repo "$SCRATCH/infra.git" --path hosts/staging/web-01 &&
	expect_exit 0 apply_to prd --repo "$SCRATCH/infra.git" --path hosts/prod/web-01 &&
	test_cmp_text staging "$SCRATCH/stg/etc/motd" && test_cmp_text prod "$SCRATCH/prd/etc/motd" &&
	echo "worker_processes 4;" >"$I/roles/web/files/nginx.conf" && repo_commit infra "web: 4 workers" &&
	git -C "$I" push -q origin main &&
	expect_exit 0 apply_to stg --repo "$SCRATCH/infra.git" --path hosts/staging/web-01 &&
	expect_exit 0 apply_to prd --repo "$SCRATCH/infra.git" --path hosts/prod/web-01 &&
	test_cmp_text "worker_processes 4;" "$SCRATCH/stg/etc/nginx.conf" &&
	test_cmp_text "worker_processes 4;" "$SCRATCH/prd/etc/nginx.conf"
'

test_expect_success 'environment branches: each host follows its branch; promotion is a merge' '
	git -C "$I" branch staging && git -C "$I" branch production &&
	git -C "$I" push -q origin staging production &&
	git -C "$I" checkout -q staging &&
	echo "worker_processes 8;" >"$I/roles/web/files/nginx.conf" && repo_commit infra "staging: 8 workers" &&
	git -C "$I" push -q origin staging &&
	expect_exit 0 apply_to envs --repo "$SCRATCH/infra.git" --branch staging --path hosts/web-01 -c "$SCRATCH/agent.yaml" &&
	expect_exit 0 apply_to envp --repo "$SCRATCH/infra.git" --branch production --path hosts/web-01 -c "$SCRATCH/agent.yaml" &&
	test_cmp_text "worker_processes 8;" "$SCRATCH/envs/etc/nginx.conf" &&
	test_cmp_text "worker_processes 4;" "$SCRATCH/envp/etc/nginx.conf" &&
	git -C "$I" checkout -q production && git -C "$I" merge -q --ff-only staging &&
	git -C "$I" push -q origin production &&
	expect_exit 0 apply_to envp --repo "$SCRATCH/infra.git" --branch production --path hosts/web-01 -c "$SCRATCH/agent.yaml" &&
	test_cmp_text "worker_processes 8;" "$SCRATCH/envp/etc/nginx.conf"
'

test_expect_success 'environment branches: a force-push that rewinds production is refused; a revert is the rollback' '
	git -C "$I" reset -q --hard HEAD~1 && git -C "$I" push -q -f origin production &&
	test_must_fail apply_to envp --repo "$SCRATCH/infra.git" --branch production --path hosts/web-01 -c "$SCRATCH/agent.yaml" &&
	expect_contains "$SCRATCH/stderr" "does not descend from the applied revision" &&
	test_cmp_text "worker_processes 8;" "$SCRATCH/envp/etc/nginx.conf" &&
	git -C "$I" reset -q --hard staging && git -C "$I" revert --no-edit HEAD >/dev/null &&
	git -C "$I" push -q -f origin production &&
	expect_exit 0 apply_to envp --repo "$SCRATCH/infra.git" --branch production --path hosts/web-01 -c "$SCRATCH/agent.yaml" &&
	test_cmp_text "worker_processes 4;" "$SCRATCH/envp/etc/nginx.conf"
'

test_expect_success 'tag-pinned releases: --semver ~1.4 takes the newest 1.4.x, --tag pins one' '
	git -C "$I" checkout -q main &&
	git -C "$I" tag -a -m r v1.4.0 && motd_rel() { sed -i "s/content: \"[^\"]*\"/content: \"$1\\\\n\"/" "$I/base/motd.yaml"; } &&
	motd_rel 1.4.3 && repo_commit infra 1.4.3 && git -C "$I" tag -a -m r v1.4.3 &&
	motd_rel 1.5.0 && repo_commit infra 1.5.0 && git -C "$I" tag -a -m r v1.5.0 &&
	git -C "$I" push -q origin main --tags &&
	expect_exit 0 apply_to rel --repo "$SCRATCH/infra.git" --semver "~1.4" --path roles/web &&
	test_cmp_text 1.4.3 "$SCRATCH/rel/etc/motd" &&
	expect_exit 0 dl status --state "$SCRATCH/rel.state" -o json &&
	python3 -c "import json,sys; d=json.load(open(sys.argv[1])); assert d[\"lastAppliedRevision\"]==sys.argv[2], d" \
		"$SCRATCH/stdout" "$(git -C "$I" rev-parse v1.4.3^{commit})" &&
	expect_exit 0 apply_to rel2 --repo "$SCRATCH/infra.git" --tag v1.5.0 --path roles/web &&
	test_cmp_text 1.5.0 "$SCRATCH/rel2/etc/motd"
'

test_done
