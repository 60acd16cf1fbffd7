#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Self-test of t/lib.sh and t/run-tests.sh; needs git, python3 and openssl,
# not the driftless binary.
# shellcheck disable=SC2016 # test bodies are single-quoted on purpose
# shellcheck disable=SC2034 # variables are read by the eval'ed bodies
# shellcheck disable=SC2317 # helpers are called from the eval'ed bodies
# shellcheck source=t/lib.sh

DL_NEEDS_BINARY=0
. "$(dirname "$0")/lib.sh"

# sub_test NAME <<EOF: write a test script $SCRATCH/sub/NAME.sh that sources
# lib.sh, with the body from stdin; run_sub_test NAME runs it with TMPDIR in
# $SCRATCH/sub/tmp-NAME, output in $SCRATCH/sub/NAME.out, status in .rc.
sub_test() {
	mkdir -p "$SCRATCH/sub" &&
		{
			echo "DL_NEEDS_BINARY=0"
			echo ". '$DL_SRCROOT/t/lib.sh'"
			cat
		} >"$SCRATCH/sub/$1.sh"
}

run_sub_test() {
	local rc=0
	mkdir -p "$SCRATCH/sub/tmp-$1" &&
		TMPDIR=$SCRATCH/sub/tmp-$1 bash "$SCRATCH/sub/$1.sh" \
			>"$SCRATCH/sub/$1.out" 2>&1 || rc=$?
	echo "$rc" >"$SCRATCH/sub/$1.rc"
	cat "$SCRATCH/sub/$1.out"
}

test_expect_success 'a passing test passes' '
	true
'

test_expect_success 'bodies run in the scratch directory with ROOT and STATE' '
	test "$PWD" = "$SCRATCH" &&
	test -d "$ROOT" &&
	test "$ROOT" = "$SCRATCH/root" &&
	test "$STATE" = "$SCRATCH/state" &&
	test "$HOME" = "$SCRATCH/home" &&
	case "$SCRATCH" in "${TMPDIR:-/tmp}"/driftless-t0000-harness.*) ;; *) false ;; esac &&
	test "$DRIFTLESS" = "$DL_SRCROOT/build/driftless" ||
		test -n "$DRIFTLESS"
'

test_expect_success 'working directory changes do not leak between tests' '
	mkdir -p elsewhere &&
	cd elsewhere
'

test_expect_success '... as the next test starts in the scratch directory' '
	test "$PWD" = "$SCRATCH"
'

test_expect_success 'the library reports failures, known breakages and skips' '
	sub_test mixed <<-\EOF &&
	test_expect_success "passes" "true"
	test_expect_success "fails" "echo some-diagnostic-output; false"
	test_expect_failure "known to be broken" "false"
	test_expect_failure "known breakage now fixed" "true"
	test_skip "not here" "no such feature"
	test_expect_success "set -e stops a body at the first failure" "
		false
		true
	"
	test_done
	EOF
	run_sub_test mixed &&
	test "$(cat sub/mixed.rc)" = 1 &&
	expect_contains sub/mixed.out "ok 1 - passes" &&
	expect_contains sub/mixed.out "not ok 2 - fails" &&
	expect_contains sub/mixed.out "#	some-diagnostic-output" &&
	expect_contains sub/mixed.out "not ok 3 - known to be broken # TODO known breakage" &&
	expect_contains sub/mixed.out "ok 4 - known breakage now fixed # TODO known breakage vanished" &&
	expect_contains sub/mixed.out "ok 5 - not here # SKIP no such feature" &&
	expect_contains sub/mixed.out "not ok 6 - set -e stops a body at the first failure" &&
	expect_contains sub/mixed.out "1..6"
'

test_expect_success 'a script whose tests all pass exits 0 and cleans up' '
	sub_test clean <<-\EOF &&
	start_git_daemon "$SCRATCH" || bail_out "no daemon"
	echo "$GIT_DAEMON_PID" >"$DL_SRCROOT_PIDFILE"
	test_expect_success "writes into scratch" "
		echo hello >file && test -f \"\$SCRATCH/file\"
	"
	test_expect_success "a server started in a body" "
		start_git_daemon \"\$SCRATCH\" &&
		echo \"\$GIT_DAEMON_PID\" >>\"\$DL_SRCROOT_PIDFILE\"
	"
	test_done
	EOF
	export DL_SRCROOT_PIDFILE=$SCRATCH/sub/clean.pids &&
	run_sub_test clean &&
	test "$(cat sub/clean.rc)" = 0 &&
	expect_contains sub/clean.out "1..2" &&
	test "$(wc -l <sub/clean.pids)" = 2 &&
	for pid in $(cat sub/clean.pids)
	do
		if kill -0 "$pid" 2>/dev/null
		then
			echo "server $pid survived the script" && exit 1
		fi
	done &&
	test -z "$(ls -A sub/tmp-clean)"
'

test_expect_success 'DL_KEEP=1 keeps the scratch directory' '
	sub_test keep <<-\EOF &&
	test_expect_success "t" "echo kept >marker"
	test_done
	EOF
	DL_KEEP=1 run_sub_test keep &&
	test "$(cat sub/keep.rc)" = 0 &&
	expect_contains sub/keep.out "# scratch directory kept:" &&
	test "$(cat sub/tmp-keep/driftless-keep.*/marker)" = kept
'

test_expect_success 'a missing driftless binary bails out' '
	sub_test nobin <<-\EOF &&
	test_done
	EOF
	sed -i "s/^DL_NEEDS_BINARY=0$/DL_NEEDS_BINARY=1/" sub/nobin.sh &&
	DRIFTLESS=/nonexistent/driftless run_sub_test nobin &&
	test "$(cat sub/nobin.rc)" = 1 &&
	expect_contains sub/nobin.out "Bail out! driftless binary not found at '\''/nonexistent/driftless'\''"
'

test_expect_success 'expect_exit checks the exact status' '
	expect_exit 3 sh -c "echo out; echo err >&2; exit 3" &&
	test "$(cat "$SCRATCH/stdout")" = out &&
	test "$(cat "$SCRATCH/stderr")" = err &&
	expect_exit 0 true &&
	! expect_exit 0 sh -c "exit 3" &&
	! expect_exit 1 true
'

test_expect_success 'test_must_fail accepts clean failures only' '
	test_must_fail false &&
	test_must_fail sh -c "exit 2" &&
	! test_must_fail true &&
	! test_must_fail sh -c "exit 64" &&
	! test_must_fail sh -c "kill -SEGV \$\$" &&
	! test_must_fail sh -c "kill -ABRT \$\$"
'

test_expect_success 'output assertions' '
	expect_stderr_contains "bad thing" sh -c "echo \"error: bad thing\" >&2; exit 1" &&
	! expect_stderr_contains "other thing" sh -c "echo \"error: bad thing\" >&2; exit 1" &&
	expect_stdout_contains "manifests OK" echo "manifests OK" &&
	! expect_stdout_contains "x" sh -c "kill -SEGV \$\$" &&
	printf "a\nb\n" >f &&
	expect_contains f b &&
	! expect_contains f c &&
	expect_not_contains f c &&
	! expect_not_contains f a &&
	test_cmp_text "$(printf "a\nb")" f &&
	! test_cmp_text "a" f &&
	chmod 0640 f &&
	expect_mode 640 f &&
	! expect_mode 644 f &&
	expect_missing nothing-here &&
	ln -s nowhere dangling &&
	! expect_missing dangling
'

test_expect_success 'wait_for polls and gives up' '
	(sleep 0.3; touch later) &
	wait_for 5 test -e later &&
	! wait_for 1 test -e never
'

test_expect_success 'write_file creates parent directories' '
	write_file deep/down/file.yaml <<-\EOF &&
	apiVersion: driftless/v1
	EOF
	test "$(cat deep/down/file.yaml)" = "apiVersion: driftless/v1"
'

test_expect_success 'repo_init and repo_commit' '
	repo_init infra &&
	test "$(git -C infra symbolic-ref HEAD)" = refs/heads/main &&
	write_file infra/base/motd.yaml <<-\EOF &&
	kind: File
	EOF
	repo_commit infra "add motd" &&
	first=$(repo_head infra) &&
	repo_commit infra "nothing changed" &&
	test "$(git -C infra rev-list --count HEAD)" = 2 &&
	test "$(git -C infra rev-parse HEAD^)" = "$first" &&
	test "$(git -C infra log -1 --format=%an)" = "Driftless Test" &&
	git -C infra ls-files >files &&
	test_cmp_text base/motd.yaml files &&
	repo_init "$SCRATCH/absolute" &&
	repo_commit "$SCRATCH/absolute" "empty" &&
	test -n "$(repo_head absolute)"
'

test_expect_success 'dl, dl_apply and dl_plan pass exactly their arguments' '
	write_file fake-dl <<-\EOF &&
	#!/bin/sh
	for a in "$@"; do printf "[%s]" "$a"; done
	echo
	EOF
	chmod +x fake-dl &&
	DRIFTLESS=$SCRATCH/fake-dl &&
	test "$(dl version)" = "[version]" &&
	test "$(dl_apply "$SCRATCH/infra" --dry-run -o json)" = \
		"[apply][--repo][$SCRATCH/infra][--root][$ROOT][--state][$STATE][--dry-run][-o][json]" &&
	test "$(dl_plan "file://$SCRATCH/infra" --exit-code)" = \
		"[plan][--repo][file://$SCRATCH/infra][--root][$ROOT][--state][$STATE][--exit-code]"
'

test_expect_success 'dl is bounded by DL_CMD_TIMEOUT' '
	write_file slow-dl <<-\EOF &&
	#!/bin/sh
	exec sleep 30
	EOF
	chmod +x slow-dl &&
	DRIFTLESS=$SCRATCH/slow-dl DL_CMD_TIMEOUT=1 expect_exit 124 dl agent
'

# Git servers, started once for the tests below.
mkdir -p "$SCRATCH/srv"
if ! { repo_init "$SCRATCH/srv/infra" &&
	echo "welcome" >"$SCRATCH/srv/infra/motd" &&
	head -c 2000000 /dev/urandom >"$SCRATCH/srv/infra/big.bin" &&
	repo_commit "$SCRATCH/srv/infra" "first"; }; then
	bail_out "cannot create the served repository"
fi

start_git_daemon "$SCRATCH/srv" || bail_out "cannot start git daemon"
start_git_http "$SCRATCH/srv" || bail_out "cannot start git http server"
GIT_PLAIN_HTTP_URL=$GIT_HTTP_URL
GIT_PLAIN_HTTP_LOG=$GIT_HTTP_LOG
make_test_ca "$SCRATCH/ca" || bail_out "cannot make the test CA"
start_git_http --tls "$SCRATCH/ca/server.pem" "$SCRATCH/ca/server.key" \
	"$SCRATCH/srv" || bail_out "cannot start git https server"
GIT_HTTPS_URL=$GIT_HTTP_URL
start_git_http --basic-auth "fleet:s3cret" "$SCRATCH/srv" ||
	bail_out "cannot start git http server with auth"
GIT_AUTH_URL=$GIT_HTTP_URL

test_expect_success 'git daemon serves the repository on loopback' '
	case "$GIT_DAEMON_URL" in git://127.0.0.1:[0-9]*) ;; *) false ;; esac &&
	git ls-remote "$GIT_DAEMON_URL/infra" >refs &&
	expect_contains refs "$(repo_head srv/infra)	refs/heads/main" &&
	git clone -q "$GIT_DAEMON_URL/infra" clone-git &&
	cmp srv/infra/big.bin clone-git/big.bin
'

test_expect_success 'git daemon refuses a repository that does not exist' '
	test_must_fail git ls-remote "$GIT_DAEMON_URL/missing"
'

test_expect_success 'smart HTTP serves the repository, logged' '
	case "$GIT_PLAIN_HTTP_URL" in http://127.0.0.1:[0-9]*) ;; *) false ;; esac &&
	git ls-remote "$GIT_PLAIN_HTTP_URL/infra" >refs &&
	expect_contains refs "$(repo_head srv/infra)	refs/heads/main" &&
	git clone -q "$GIT_PLAIN_HTTP_URL/infra" clone-http &&
	cmp srv/infra/big.bin clone-http/big.bin &&
	expect_contains "$GIT_PLAIN_HTTP_LOG" "GET /infra/info/refs 200" &&
	expect_contains "$GIT_PLAIN_HTTP_LOG" "POST /infra/git-upload-pack 200"
'

test_expect_success 'smart HTTP: a fetch with nothing new downloads no pack' '
	: >"$GIT_PLAIN_HTTP_LOG" &&
	git -C clone-http fetch -q origin &&
	expect_contains "$GIT_PLAIN_HTTP_LOG" "GET /infra/info/refs 200" &&
	! grep -q "POST /infra/git-upload-pack 200 [0-9]\{4,\}" "$GIT_PLAIN_HTTP_LOG"
'

test_expect_success 'smart HTTP answers 404 for a missing repository' '
	test_must_fail git ls-remote "$GIT_PLAIN_HTTP_URL/missing" &&
	expect_contains "$GIT_PLAIN_HTTP_LOG" "GET /missing/info/refs 404"
'

test_expect_success 'smart HTTP accepts a chunked push' '
	git -C clone-http config http.postBuffer 1024 &&
	git -C srv/infra config receive.denyCurrentBranch ignore &&
	git -C srv/infra config http.receivepack true &&
	head -c 300000 /dev/urandom >clone-http/more.bin &&
	git -C clone-http add more.bin &&
	git -C clone-http -c user.name=T -c user.email=t@t.invalid \
		commit -q -m more &&
	git -C clone-http push -q origin main &&
	test "$(git -C srv/infra rev-parse main)" = "$(git -C clone-http rev-parse HEAD)"
'

test_expect_success 'test CA: a server certificate for 127.0.0.1 and localhost' '
	openssl verify -CAfile ca/ca.pem ca/server.pem &&
	openssl x509 -in ca/server.pem -noout -ext subjectAltName >san &&
	expect_contains san "IP Address:127.0.0.1" &&
	expect_contains san "DNS:localhost"
'

test_expect_success 'HTTPS with the test CA' '
	case "$GIT_HTTPS_URL" in https://127.0.0.1:[0-9]*) ;; *) false ;; esac &&
	GIT_SSL_CAINFO=$SCRATCH/ca/ca.pem git ls-remote "$GIT_HTTPS_URL/infra" >refs &&
	expect_contains refs "refs/heads/main" &&
	GIT_SSL_CAINFO=$SCRATCH/ca/ca.pem git clone -q "$GIT_HTTPS_URL/infra" clone-https &&
	cmp srv/infra/big.bin clone-https/big.bin
'

test_expect_success 'HTTPS without the test CA is refused' '
	expect_stderr_contains "certificate" \
		git ls-remote "$GIT_HTTPS_URL/infra" &&
	test "$DL_STATUS" != 0
'

test_expect_success 'HTTP basic auth is enforced' '
	test_must_fail git ls-remote "$GIT_AUTH_URL/infra" &&
	test_must_fail git ls-remote "${GIT_AUTH_URL%%://*}://fleet:wrong@${GIT_AUTH_URL#*://}/infra" &&
	git ls-remote "${GIT_AUTH_URL%%://*}://fleet:s3cret@${GIT_AUTH_URL#*://}/infra" >refs &&
	expect_contains refs "refs/heads/main"
'

test_expect_success 'canaries pass untouched' '
	canary_make outside/etc/shadow.canary &&
	canary_make outside/root/.canary "secret-canary-value" &&
	test "$(cat outside/root/.canary)" = secret-canary-value &&
	expect_mode 640 outside/etc/shadow.canary &&
	cat outside/etc/shadow.canary >/dev/null &&
	canary_check &&
	canary_check outside/root/.canary
'

test_expect_success 'canaries catch content, mode, mtime and replacement' '
	canary_make c/content && echo changed >c/content &&
	! canary_check c/content &&
	canary_make c/mode && chmod 0644 c/mode &&
	! canary_check c/mode &&
	canary_make c/chmod-back && chmod 0644 c/chmod-back && chmod 0640 c/chmod-back &&
	! canary_check c/chmod-back &&
	canary_make c/mtime && touch c/mtime &&
	! canary_check c/mtime &&
	canary_make c/replaced && cp -p c/replaced c/tmp && mv c/tmp c/replaced &&
	! canary_check c/replaced &&
	canary_make c/gone && rm c/gone &&
	! canary_check c/gone &&
	! canary_check c/never-made
'

test_expect_success 'run-tests.sh sums up scripts and fails on broken ones' '
	mkdir -p rt &&
	for name in t1000-good t1001-bad t1002-noplan t1003-skipped
	do
		{
			echo "DL_NEEDS_BINARY=0"
			echo ". \"$DL_SRCROOT/t/lib.sh\""
		} >rt/$name.sh || exit 1
	done &&
	cat >>rt/t1000-good.sh <<-\EOF &&
	test_expect_success one true
	test_expect_success two true
	test_expect_failure broken false
	test_done
	EOF
	cat >>rt/t1001-bad.sh <<-\EOF &&
	test_expect_success one true
	test_expect_success two false
	test_done
	EOF
	cat >>rt/t1002-noplan.sh <<-\EOF &&
	test_expect_success one true
	exit 0
	EOF
	cat >>rt/t1003-skipped.sh <<-\EOF &&
	skip_all "needs something absent"
	EOF
	expect_exit 1 env TMPDIR="$SCRATCH/rt" "$DL_SRCROOT/t/run-tests.sh" \
		"$SCRATCH"/rt/t1000-good.sh "$SCRATCH"/rt/t1001-bad.sh \
		"$SCRATCH"/rt/t1002-noplan.sh "$SCRATCH"/rt/t1003-skipped.sh &&
	test "$(tail -n 1 "$SCRATCH/stdout")" = "4 passed, 2 failed" &&
	expect_contains "$SCRATCH/stdout" "t1001-bad.sh" &&
	expect_contains "$SCRATCH/stdout" "not ok 2 - two" &&
	expect_contains "$SCRATCH/stdout" "no plan" &&
	expect_contains "$SCRATCH/stdout" "t1003-skipped.sh                 skipped" &&
	expect_exit 0 env TMPDIR="$SCRATCH/rt" "$DL_SRCROOT/t/run-tests.sh" -j2 \
		"$SCRATCH"/rt/t1000-good.sh "$SCRATCH"/rt/t1003-skipped.sh &&
	test "$(tail -n 1 "$SCRATCH/stdout")" = "2 passed, 0 failed"
'

test_done
