#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Sources: local paths, file://, git://, http:// and https:// remotes; branch,
# tag and commit refs; an unchanged ref costs no pack; hostile refs (R06).
# shellcheck disable=SC2016
. "$(dirname "$0")/lib.sh"

mkdir -p "$SCRATCH/srv"
repo_init srv/infra.git.work
R=$SCRATCH/srv/infra.git.work
manifest() {
	write_file "$R/motd.yaml" <<-Y
	apiVersion: driftless/v1
	kind: File
	metadata: {name: motd}
	spec: {path: /etc/motd, content: "$1\n"}
	Y
}
manifest one
repo_commit "$R" one
git -C "$R" tag v1
git -C "$R" tag -a -m "annotated" v1a
manifest two
repo_commit "$R" two
git -C "$R" checkout -q -b staging
manifest staging
repo_commit "$R" staging
git -C "$R" checkout -q main
git clone -q --bare "$R" "$SCRATCH/srv/infra.git"
mkdir -p "$ROOT/etc"

start_git_daemon "$SCRATCH/srv" || bail_out "cannot start git daemon"
start_git_http "$SCRATCH/srv" || bail_out "cannot start git http server"
HTTP_URL=$GIT_HTTP_URL
HTTP_LOG=$GIT_HTTP_LOG
make_test_ca "$SCRATCH/ca" || bail_out "cannot make a test CA"
start_git_http --tls "$SCRATCH/ca/server.pem" "$SCRATCH/ca/server.key" "$SCRATCH/srv" ||
	bail_out "cannot start https server"
# mbedTLS matches DNS names, not IP addresses, against the certificate
HTTPS_URL=$(echo "$GIT_HTTP_URL" | sed "s/127.0.0.1/localhost/")

fresh() { rm -rf "$STATE" "$ROOT/etc/motd"; }

test_expect_success 'a local path follows the default branch' '
	fresh &&
	expect_exit 0 dl_apply "$R" &&
	test_cmp_text two "$ROOT/etc/motd"
'

test_expect_success 'file:// with --branch' '
	fresh &&
	expect_exit 0 dl_apply "file://$SCRATCH/srv/infra.git" --branch staging &&
	test_cmp_text staging "$ROOT/etc/motd"
'

test_expect_success 'git:// with --tag (lightweight and annotated)' '
	fresh &&
	expect_exit 0 dl_apply "$GIT_DAEMON_URL/infra.git" --tag v1 &&
	test_cmp_text one "$ROOT/etc/motd" &&
	expect_exit 0 dl_apply "$GIT_DAEMON_URL/infra.git" --tag v1a &&
	test_cmp_text one "$ROOT/etc/motd"
'

test_expect_success 'http:// with --commit pins a revision' '
	fresh &&
	c=$(git -C "$R" rev-parse v1) &&
	expect_exit 0 dl_apply "$HTTP_URL/infra.git" --commit "$c" &&
	test_cmp_text one "$ROOT/etc/motd" &&
	expect_exit 0 dl status --state "$STATE" &&
	expect_contains stdout "$c"
'

test_expect_success 'an unchanged ref costs one ref advertisement and no pack' '
	fresh &&
	expect_exit 0 dl_apply "$HTTP_URL/infra.git" &&
	before=$(grep -c "GET .*/info/refs" "$HTTP_LOG") &&
	packs=$(grep -c "POST .*git-upload-pack" "$HTTP_LOG") &&
	expect_exit 0 dl_apply "$HTTP_URL/infra.git" &&
	after=$(grep -c "GET .*/info/refs" "$HTTP_LOG") &&
	packs2=$(grep -c "POST .*git-upload-pack" "$HTTP_LOG") &&
	test "$packs" = "$packs2" &&
	test $((after - before)) -eq 1
'

test_expect_success 'https:// with the test CA from source.caFile' '
	fresh &&
	printf "source:\n  caFile: %s\n" "$SCRATCH/ca/ca.pem" >"$SCRATCH/agent.yaml" &&
	expect_exit 0 dl_apply "$HTTPS_URL/infra.git" -c "$SCRATCH/agent.yaml" &&
	test_cmp_text two "$ROOT/etc/motd"
'

test_expect_success 'https:// with an untrusted certificate is refused' '
	fresh &&
	test_must_fail dl_apply "$HTTPS_URL/infra.git" &&
	expect_missing "$ROOT/etc/motd"
'

test_expect_success 'a missing branch or tag is a clear error' '
	test_must_fail dl_apply "$R" --branch nope &&
	expect_contains "$SCRATCH/stderr" "'\''refs/heads/nope'\'' not found" &&
	test_must_fail dl_apply "$R" --tag nope &&
	expect_contains "$SCRATCH/stderr" "'\''refs/tags/nope'\'' not found"
'

test_expect_success 'R06: a tag named like the tracked branch is never taken for it' '
	fresh &&
	git -C "$R" tag main v1 &&
	expect_exit 0 dl_apply "$R" --branch main &&
	test_cmp_text two "$ROOT/etc/motd" &&
	git -C "$R" tag -d main
'

test_expect_success 'R06: hostile ref names are refused' '
	test_must_fail dl_apply "$R" --branch "main..x" &&
	expect_contains "$SCRATCH/stderr" "is not a valid ref name" &&
	test_must_fail dl_apply "$R" --branch "@{-1}" &&
	test_must_fail dl_apply "$R" --commit "HEAD~1" &&
	expect_contains "$SCRATCH/stderr" "hexadecimal commit id"
'

test_expect_success 'S04: credentials in the URL never appear in errors' '
	test_must_fail dl_apply "http://user:s3cr3tT0ken@127.0.0.1:1/infra.git" &&
	expect_not_contains "$SCRATCH/stderr" "s3cr3tT0ken" &&
	expect_contains "$SCRATCH/stderr" "127.0.0.1:1"
'

test_expect_success 'R07: hooks and filters in the fetched repository never run' '
	fresh &&
	printf "* filter=evil\n" >"$R/.gitattributes" &&
	repo_commit "$R" attrs &&
	git -C "$R" config filter.evil.smudge "touch $SCRATCH/pwned" &&
	expect_exit 0 dl_apply "$R" &&
	expect_missing "$SCRATCH/pwned" &&
	test -z "$(find "$STATE/git" -path "*/hooks/*" -type f ! -name "*.sample")"
'

test_expect_success 'the git cache is private to root' '
	test "$(stat -c %a "$STATE")" = 700
'

test_done
