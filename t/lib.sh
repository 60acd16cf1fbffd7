# shellcheck shell=bash
# SPDX-License-Identifier: MIT
# The TAP test library every t/tNNNN-topic.sh sources: scratch dirs, test
# runners, assertions, Git repositories and Git servers on loopback.
#
# A test script looks like this:
#
#	#!/usr/bin/env bash
#	. "$(dirname "$0")/lib.sh"
#
#	test_expect_success 'apply creates the motd' '
#		repo_init infra &&
#		write_file infra/motd.yaml <<-EOF &&
#		...
#		EOF
#		repo_commit infra "add motd" &&
#		dl_apply "$SCRATCH/infra" &&
#		test_cmp_text "welcome" "$ROOT/etc/motd"
#	'
#
#	test_done
#
# Each body runs in a subshell, with `set -e`, in $SCRATCH as the working
# directory; its output is kept and shown (as TAP "# " lines) only when it
# fails, or always with DL_VERBOSE=1. Because the body is a subshell, the
# variables it sets and the directory it changes to do not carry over to the
# next test; files on disk do. Start shared servers at the top level.
#
# Environment knobs: DRIFTLESS (binary; default build/driftless), DL_KEEP=1
# (keep the scratch directory), DL_VERBOSE=1 (show every body's output),
# DL_CMD_TIMEOUT (seconds one driftless run may take, default 120),
# TMPDIR (where scratch directories go).
#
# A script that does not need the driftless binary sets DL_NEEDS_BINARY=0
# before sourcing this file; otherwise a missing binary bails out at once.

# ---------------------------------------------------------------------------
# Setup

DL_SRCROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd) || exit 1
DL_TESTNAME=$(basename "$0" .sh)

case "${DRIFTLESS:-}" in
"") DRIFTLESS=$DL_SRCROOT/build/driftless ;;
/*) ;;
*) DRIFTLESS=$PWD/$DRIFTLESS ;;
esac
export DRIFTLESS

# Resolve the real interpreter now, before HOME changes (pyenv shims).
DL_PYTHON=$(python3 -c 'import sys; print(sys.executable)' 2>/dev/null) ||
	DL_PYTHON=
DL_GIT_EXEC_PATH=$(git --exec-path 2>/dev/null) || DL_GIT_EXEC_PATH=

SCRATCH=$(mktemp -d "${TMPDIR:-/tmp}/driftless-$DL_TESTNAME.XXXXXX") || {
	echo "Bail out! cannot create a scratch directory"
	exit 1
}
SCRATCH=$(cd "$SCRATCH" && pwd -P)
ROOT=$SCRATCH/root
STATE=$SCRATCH/state
export SCRATCH ROOT STATE
mkdir -p "$ROOT" "$SCRATCH/home" "$SCRATCH/.dl"

# A hermetic environment: no user or system Git configuration, no prompts,
# stable locale and time zone, stdin closed.
export HOME=$SCRATCH/home
unset XDG_CONFIG_HOME GIT_DIR GIT_WORK_TREE GIT_INDEX_FILE GIT_OBJECT_DIRECTORY \
	GIT_ALTERNATE_OBJECT_DIRECTORIES GIT_CEILING_DIRECTORIES GIT_ASKPASS \
	SSH_ASKPASS GIT_SSL_CAINFO GIT_SSL_NO_VERIFY GIT_PROXY_COMMAND \
	http_proxy https_proxy HTTP_PROXY HTTPS_PROXY ALL_PROXY all_proxy
export GIT_CONFIG_NOSYSTEM=1 GIT_TERMINAL_PROMPT=0 GIT_PAGER=cat PAGER=cat
export LC_ALL=C TZ=UTC
export no_proxy='*' NO_PROXY='*'
exec </dev/null
set +e

DL_TEST_COUNT=0
DL_TEST_FAILED=0
DL_TEST_FIXED=0
DL_TEST_BROKEN=0

# Process ids to stop at exit, one a line; a file, so that servers started
# inside a test body (a subshell) are still cleaned up.
DL_PIDFILE=$SCRATCH/.dl/pids
: >"$DL_PIDFILE"

dl_cleanup() {
	local pid n
	while read -r pid; do
		[ -n "$pid" ] && kill "$pid" 2>/dev/null
	done <"$DL_PIDFILE"
	while read -r pid; do
		[ -n "$pid" ] || continue
		n=0
		while kill -0 "$pid" 2>/dev/null && [ $n -lt 50 ]; do
			sleep 0.1
			n=$((n + 1))
		done
		kill -9 "$pid" 2>/dev/null
	done <"$DL_PIDFILE"
	# A safety net for what a test started and did not register (or what
	# escaped into a session of its own): anything still naming the scratch
	# directory is stopped, and said so, since it is a test bug.
	if pgrep -f -- "$SCRATCH/" >/dev/null 2>&1; then
		echo "# stray processes of this test stopped:"
		pgrep -af -- "$SCRATCH/" | sed 's/^/#   /' | cut -c1-200
		pkill -KILL -f -- "$SCRATCH/" 2>/dev/null
	fi
	cd / || true
	# A test that mounted something (a small tmpfs for ENOSPC, say) and
	# died before unmounting: detach it, never delete through it.
	awk -v d="$SCRATCH/" 'index($5, d) == 1 { print $5 }' \
		/proc/self/mountinfo 2>/dev/null | sort -r |
		while read -r m; do umount -l "$m" 2>/dev/null; done
	if [ "${DL_KEEP:-0}" = 1 ]; then
		echo "# scratch directory kept: $SCRATCH"
	else
		chmod -R u+rwx "$SCRATCH" 2>/dev/null
		rm -rf --one-file-system "$SCRATCH"
	fi
}
trap dl_cleanup EXIT
trap 'exit 129' HUP
trap 'exit 130' INT
trap 'exit 143' TERM

# register_pid PID: stop PID (TERM, then KILL after 5 s) when the script exits.
register_pid() {
	echo "$1" >>"$DL_PIDFILE"
}

# bail_out MESSAGE: abort the whole script (TAP "Bail out!").
bail_out() {
	echo "Bail out! $*"
	exit 1
}

# say MESSAGE: a TAP diagnostic line (goes to the test output).
say() {
	echo "# $*"
}

if [ "${DL_NEEDS_BINARY:-1}" != 0 ] && ! [ -x "$DRIFTLESS" ]; then
	bail_out "driftless binary not found at '$DRIFTLESS' (run make, or set DRIFTLESS)"
fi

cd "$SCRATCH" || bail_out "cannot enter $SCRATCH"

# ---------------------------------------------------------------------------
# Running tests

# dl_run_body BODY: run BODY in a subshell with set -e; output into a file.
dl_run_body() {
	DL_BODY_OUT=$SCRATCH/.dl/body.out
	(
		cd "$SCRATCH" || exit 1
		set -e
		eval "$1"
	) >"$DL_BODY_OUT" 2>&1
}

dl_show_failure() {
	{
		echo "failed body:"
		printf '%s\n' "$1"
		echo "output:"
		cat "$DL_BODY_OUT"
	} | sed 's/^/#	/'
}

dl_show_verbose() {
	if [ "${DL_VERBOSE:-0}" = 1 ] && [ -s "$DL_BODY_OUT" ]; then
		sed 's/^/#	/' "$DL_BODY_OUT"
	fi
}

# test_expect_success DESC BODY: BODY must exit 0.
test_expect_success() {
	[ $# -eq 2 ] || bail_out "test_expect_success needs 2 arguments, got $#"
	DL_TEST_COUNT=$((DL_TEST_COUNT + 1))
	# Not "if dl_run_body": set -e is ignored in a tested context.
	dl_run_body "$2"
	# shellcheck disable=SC2181
	if [ $? -eq 0 ]; then
		echo "ok $DL_TEST_COUNT - $1"
		dl_show_verbose
	else
		DL_TEST_FAILED=$((DL_TEST_FAILED + 1))
		echo "not ok $DL_TEST_COUNT - $1"
		dl_show_failure "$2"
	fi
}

# test_expect_failure DESC BODY: a known breakage, BODY is expected to fail
# (TAP TODO). It does not fail the script; if it passes, that is reported.
test_expect_failure() {
	[ $# -eq 2 ] || bail_out "test_expect_failure needs 2 arguments, got $#"
	DL_TEST_COUNT=$((DL_TEST_COUNT + 1))
	dl_run_body "$2"
	# shellcheck disable=SC2181
	if [ $? -eq 0 ]; then
		DL_TEST_FIXED=$((DL_TEST_FIXED + 1))
		echo "ok $DL_TEST_COUNT - $1 # TODO known breakage vanished"
	else
		DL_TEST_BROKEN=$((DL_TEST_BROKEN + 1))
		echo "not ok $DL_TEST_COUNT - $1 # TODO known breakage"
	fi
	dl_show_verbose
}

# test_skip DESC REASON: record a skipped test.
test_skip() {
	DL_TEST_COUNT=$((DL_TEST_COUNT + 1))
	echo "ok $DL_TEST_COUNT - $1 # SKIP ${2:-}"
}

# skip_all REASON: skip the whole script (call before any test).
skip_all() {
	echo "1..0 # SKIP $*"
	exit 0
}

# test_done: print the plan and exit 0 when no test failed.
test_done() {
	echo "1..$DL_TEST_COUNT"
	[ "$DL_TEST_BROKEN" -eq 0 ] || say "$DL_TEST_BROKEN known breakage(s)"
	[ "$DL_TEST_FIXED" -eq 0 ] ||
		say "$DL_TEST_FIXED known breakage(s) vanished; use test_expect_success"
	if [ "$DL_TEST_FAILED" -eq 0 ]; then
		exit 0
	fi
	say "failed $DL_TEST_FAILED of $DL_TEST_COUNT"
	exit 1
}

# ---------------------------------------------------------------------------
# Assertions: each prints why on failure and returns non-zero.

# dl_capture CMD...: run CMD, stdout to $SCRATCH/stdout, stderr to
# $SCRATCH/stderr (both also copied to the test output); sets DL_STATUS.
dl_capture() {
	DL_STATUS=0
	"$@" >"$SCRATCH/stdout" 2>"$SCRATCH/stderr" || DL_STATUS=$?
	if [ -s "$SCRATCH/stdout" ]; then
		echo "--- stdout of: $*"
		cat "$SCRATCH/stdout"
	fi
	if [ -s "$SCRATCH/stderr" ]; then
		echo "--- stderr of: $*"
		cat "$SCRATCH/stderr"
	fi
	return 0
}

# expect_exit CODE CMD...: CMD must exit with exactly CODE. Its stdout and
# stderr are left in $SCRATCH/stdout and $SCRATCH/stderr.
expect_exit() {
	local want=$1
	shift
	dl_capture "$@"
	if [ "$DL_STATUS" -ne "$want" ]; then
		echo "error: expected exit status $want, got $DL_STATUS: $*"
		return 1
	fi
}

# test_must_fail CMD...: CMD must fail cleanly: non-zero, not 64 (usage),
# not timed out (124), not found (126, 127), not killed by a signal
# (129-192). Output is left in $SCRATCH/stdout and $SCRATCH/stderr.
test_must_fail() {
	dl_capture "$@"
	case "$DL_STATUS" in
	0) echo "error: command succeeded unexpectedly: $*" ;;
	64) echo "error: usage error (64) where a failure was expected: $*" ;;
	*) dl_not_crashed "$@" && return 0 ;;
	esac
	return 1
}

# expect_stdout_contains STRING CMD...: CMD (any exit status, unless it
# crashed: see dl_not_crashed) must print STRING (fixed string) on stdout.
expect_stdout_contains() {
	local want=$1
	shift
	dl_capture "$@"
	dl_not_crashed "$@" || return 1
	expect_contains "$SCRATCH/stdout" "$want"
}

# expect_stderr_contains STRING CMD...: same, for stderr.
expect_stderr_contains() {
	local want=$1
	shift
	dl_capture "$@"
	dl_not_crashed "$@" || return 1
	expect_contains "$SCRATCH/stderr" "$want"
}

# dl_not_crashed CMD...: DL_STATUS must not say timed out, not found or
# killed by a signal.
dl_not_crashed() {
	case "$DL_STATUS" in
	124) echo "error: command timed out: $*" ;;
	126 | 127) echo "error: command not found or not runnable: $*" ;;
	129 | 1[3-8][0-9] | 19[0-2])
		echo "error: command died of signal $((DL_STATUS - 128)): $*" ;;
	*) return 0 ;;
	esac
	return 1
}

# expect_contains FILE STRING: FILE must contain the fixed STRING.
expect_contains() {
	if ! grep -qF -e "$2" "$1"; then
		echo "error: '$1' does not contain '$2'; it holds:"
		cat "$1"
		return 1
	fi
}

# expect_not_contains FILE STRING: FILE must not contain the fixed STRING.
expect_not_contains() {
	if grep -qF -e "$2" "$1"; then
		echo "error: '$1' contains '$2':"
		grep -nF -e "$2" "$1"
		return 1
	fi
}

# test_cmp EXPECTED ACTUAL: the two files must be identical (diff -u shown).
test_cmp() {
	diff -u "$1" "$2"
}

# test_cmp_text TEXT FILE: FILE must hold exactly TEXT plus one newline.
test_cmp_text() {
	printf '%s\n' "$1" >"$SCRATCH/.dl/expect"
	diff -u "$SCRATCH/.dl/expect" "$2"
}

# expect_mode MODE PATH: PATH's permission bits, in octal (e.g. 644, 4755).
expect_mode() {
	local got
	got=$(stat -c %a -- "$2") || return 1
	if [ "$got" != "$1" ]; then
		echo "error: mode of '$2' is $got, expected $1"
		return 1
	fi
}

# expect_missing PATH: nothing (not even a dangling symlink) at PATH.
expect_missing() {
	if [ -e "$1" ] || [ -L "$1" ]; then
		echo "error: '$1' exists:"
		ls -ld -- "$1"
		return 1
	fi
}

# wait_for SECONDS CMD...: poll CMD every 0.1 s until it succeeds; fail
# after SECONDS.
wait_for() {
	local limit=$1 n=0
	shift
	while ! "$@" >/dev/null 2>&1; do
		n=$((n + 1))
		if [ $n -gt $((limit * 10)) ]; then
			echo "error: timed out after ${limit}s waiting for: $*"
			return 1
		fi
		sleep 0.1
	done
}

# ---------------------------------------------------------------------------
# Files and Git repositories

# write_file PATH: write stdin to PATH, creating parent directories.
write_file() {
	mkdir -p -- "$(dirname -- "$1")" && cat >"$1"
}

dl_repo_dir() {
	case "$1" in
	/*) echo "$1" ;;
	*) echo "$SCRATCH/$1" ;;
	esac
}

# repo_init NAME: a new Git repository $SCRATCH/NAME (or an absolute path),
# branch main, with a committer identity.
repo_init() {
	local dir
	dir=$(dl_repo_dir "$1")
	git init -q -b main -- "$dir" &&
		git -C "$dir" config user.name "Driftless Test" &&
		git -C "$dir" config user.email "test@driftless.invalid" &&
		git -C "$dir" config commit.gpgsign false
}

# repo_commit NAME MESSAGE: commit everything in the repository (git add -A);
# an empty commit when nothing changed.
repo_commit() {
	local dir
	dir=$(dl_repo_dir "$1")
	git -C "$dir" add -A &&
		git -C "$dir" commit -q --allow-empty -m "$2"
}

# repo_head NAME: print the commit id of HEAD.
repo_head() {
	git -C "$(dl_repo_dir "$1")" rev-parse HEAD
}

# ---------------------------------------------------------------------------
# Running driftless

# dl ARGS...: run the driftless binary with exactly ARGS, bounded by
# DL_CMD_TIMEOUT seconds (exit 124 on timeout). The binary stays in the
# script's process group, so run-tests.sh's timeout reaches it too. For a
# background agent: `dl agent ... & register_pid $!` (a TERM to that pid is
# passed on to driftless).
dl() {
	timeout --foreground -k 5 "${DL_CMD_TIMEOUT:-120}" "$DRIFTLESS" "$@"
}

# dl_apply REPO [ARGS...]: apply REPO (path or URL) to $ROOT with $STATE.
dl_apply() {
	local repo=$1
	shift
	dl apply --repo "$repo" --root "$ROOT" --state "$STATE" "$@"
}

# dl_plan REPO [ARGS...]: plan REPO against $ROOT with $STATE.
dl_plan() {
	local repo=$1
	shift
	dl plan --repo "$repo" --root "$ROOT" --state "$STATE" "$@"
}

# ---------------------------------------------------------------------------
# Canaries: files outside the root that must never change.

DL_CANARIES=$SCRATCH/.dl/canaries

dl_canary_print() {
	local sum="-"
	if [ -f "$1" ] && ! [ -L "$1" ]; then
		sum=$(sha256sum <"$1" | cut -d' ' -f1) || return 1
	fi
	printf '%s %s\n' "$sum" \
		"$(stat -c 'type=%F mode=%a uid=%u gid=%g size=%s ino=%i mtime=%y ctime=%z' -- "$1")"
}

# canary_make PATH [CONTENT]: create a canary file (parents too, mode 0640,
# an old mtime) and record its content hash and metadata. An existing PATH
# is recorded as it is.
canary_make() {
	local path=$1
	if ! [ -e "$path" ] && ! [ -L "$path" ]; then
		mkdir -p -- "$(dirname -- "$path")" || return 1
		printf '%s\n' "${2:-canary $path $$ $RANDOM}" >"$path" || return 1
		chmod 0640 "$path" &&
			touch -d '2001-02-03 04:05:06' "$path" || return 1
	fi
	printf '%s\t%s\n' "$path" "$(dl_canary_print "$path")" >>"$DL_CANARIES"
}

# canary_check [PATH...]: each PATH (default: every canary made) must be
# byte- and metadata-identical to when it was recorded.
canary_check() {
	local path rec now bad=0 checked=0
	[ -f "$DL_CANARIES" ] || { echo "error: no canary recorded"; return 1; }
	while IFS=$'\t' read -r path rec; do
		if [ $# -gt 0 ]; then
			case " $* " in *" $path "*) ;; *) continue ;; esac
		fi
		checked=$((checked + 1))
		if ! [ -e "$path" ] && ! [ -L "$path" ]; then
			echo "error: canary '$path' is gone"
			bad=1
			continue
		fi
		now=$(dl_canary_print "$path")
		if [ "$now" != "$rec" ]; then
			echo "error: canary '$path' changed"
			echo "  before: $rec"
			echo "  after:  $now"
			bad=1
		fi
	done <"$DL_CANARIES"
	if [ "$checked" -eq 0 ]; then
		echo "error: no canary matched: $*"
		return 1
	fi
	return $bad
}

# ---------------------------------------------------------------------------
# Git servers on loopback

# free_port: print a TCP port that was free on 127.0.0.1 a moment ago.
free_port() {
	"$DL_PYTHON" -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])'
}

dl_port_open() {
	(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# start_git_daemon PARENT: serve every repository below PARENT over git://
# on 127.0.0.1; sets GIT_DAEMON_URL (git://127.0.0.1:PORT; a repository
# $PARENT/infra is $GIT_DAEMON_URL/infra) and GIT_DAEMON_PID.
start_git_daemon() {
	local parent try port pid n
	parent=$(cd "$1" && pwd -P) || return 1
	[ -n "$DL_PYTHON" ] || { echo "error: python3 is needed"; return 1; }
	[ -x "$DL_GIT_EXEC_PATH/git-daemon" ] ||
		{ echo "error: git-daemon not found"; return 1; }
	for try in 1 2 3; do
		port=$(free_port) || return 1
		"$DL_GIT_EXEC_PATH/git-daemon" --reuseaddr --export-all \
			--informative-errors --base-path="$parent" \
			--listen=127.0.0.1 --port="$port" \
			>>"$SCRATCH/git-daemon.log" 2>&1 &
		pid=$!
		register_pid "$pid"
		n=0
		while [ $n -lt 100 ]; do
			kill -0 "$pid" 2>/dev/null || break
			if dl_port_open "$port"; then
				GIT_DAEMON_URL=git://127.0.0.1:$port
				GIT_DAEMON_PID=$pid
				export GIT_DAEMON_URL GIT_DAEMON_PID
				return 0
			fi
			sleep 0.1
			n=$((n + 1))
		done
		kill "$pid" 2>/dev/null
		echo "warning: git daemon on port $port did not answer (try $try)"
	done
	echo "error: cannot start git daemon; log:"
	cat "$SCRATCH/git-daemon.log"
	return 1
}

# start_git_http [--tls CERT KEY] [--basic-auth USER:PASS] [--bearer TOKEN]
#   [--redirect BASE] PARENT: serve every repository below PARENT over Git smart HTTP (or
# HTTPS) on 127.0.0.1. Sets GIT_HTTP_URL (http[s]://127.0.0.1:PORT; a
# repository $PARENT/infra is $GIT_HTTP_URL/infra), GIT_HTTP_PID and
# GIT_HTTP_LOG (access log, one "METHOD PATH STATUS BYTES" line a request).
start_git_http() {
	local scheme=http args=() parent dir pid n
	while [ $# -gt 1 ]; do
		case "$1" in
		--tls) args+=(--tls "$2" "$3"); scheme=https; shift 3 ;;
		--basic-auth | --bearer | --redirect) args+=("$1" "$2"); shift 2 ;;
		*) break ;;
		esac
	done
	parent=$(cd "$1" && pwd -P) || return 1
	[ -n "$DL_PYTHON" ] || { echo "error: python3 is needed"; return 1; }
	dir=$(mktemp -d "$SCRATCH/.dl/http.XXXXXX") || return 1
	"$DL_PYTHON" "$DL_SRCROOT/t/helpers/git-http.py" --root "$parent" \
		--port-file "$dir/port" --access-log "$dir/access.log" \
		--error-log "$dir/error.log" "${args[@]}" \
		>>"$dir/server.log" 2>&1 &
	pid=$!
	register_pid "$pid"
	n=0
	while [ $n -lt 100 ]; do
		if ! kill -0 "$pid" 2>/dev/null; then
			echo "error: git http server exited; log:"
			cat "$dir/server.log"
			return 1
		fi
		if [ -s "$dir/port" ] && dl_port_open "$(cat "$dir/port")"; then
			GIT_HTTP_URL=$scheme://127.0.0.1:$(cat "$dir/port")
			GIT_HTTP_PID=$pid
			GIT_HTTP_LOG=$dir/access.log
			export GIT_HTTP_URL GIT_HTTP_PID GIT_HTTP_LOG
			return 0
		fi
		sleep 0.1
		n=$((n + 1))
	done
	echo "error: git http server did not answer within 10 s; log:"
	cat "$dir/server.log"
	return 1
}

# make_test_ca DIR: a throw-away CA (DIR/ca.pem, DIR/ca.key) and a server
# certificate it signed (DIR/server.pem, DIR/server.key) for 127.0.0.1 and
# localhost. Use with start_git_http --tls DIR/server.pem DIR/server.key and
# GIT_SSL_CAINFO=DIR/ca.pem (git) or SSL_CERT_FILE=DIR/ca.pem (OpenSSL).
make_test_ca() {
	local dir=$1 serial
	mkdir -p -- "$dir" || return 1
	printf '%s\n' \
		"basicConstraints=critical,CA:FALSE" \
		"keyUsage=critical,digitalSignature,keyEncipherment" \
		"extendedKeyUsage=serverAuth" \
		"subjectAltName=IP:127.0.0.1,DNS:localhost" >"$dir/server.ext"
	serial=0x$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')
	if ! openssl req -x509 -new -nodes -days 30 \
		-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
		-subj "/CN=driftless test CA" \
		-addext "basicConstraints=critical,CA:TRUE" \
		-addext "keyUsage=critical,keyCertSign,cRLSign" \
		-keyout "$dir/ca.key" -out "$dir/ca.pem" 2>"$dir/openssl.log" ||
		! openssl req -new -nodes \
			-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
			-subj "/CN=127.0.0.1" \
			-keyout "$dir/server.key" -out "$dir/server.csr" \
			2>>"$dir/openssl.log" ||
		! openssl x509 -req -in "$dir/server.csr" -days 30 \
			-CA "$dir/ca.pem" -CAkey "$dir/ca.key" -set_serial "$serial" \
			-extfile "$dir/server.ext" -out "$dir/server.pem" \
			2>>"$dir/openssl.log"; then
		echo "error: openssl failed:"
		cat "$dir/openssl.log"
		return 1
	fi
}

# ---------------------------------------------------------------------------
# Builds, memory caps and network sinks

# dl_is_asan: true when $DRIFTLESS is the AddressSanitizer build (tests run
# fewer rounds there, and cannot use an address-space limit).
dl_is_asan() {
	grep -qa __asan_init "$DRIFTLESS" 2>/dev/null
}

# dl_mem_capped MIB CMD...: run CMD with its memory capped at MIB MiB and
# its peak resident memory (KiB, of CMD and its reaped children) written to
# $SCRATCH/.dl/maxrss; returns CMD's exit status (128+N for signal N). The
# cap is a systemd scope's MemoryMax= when systemd runs, else RLIMIT_AS
# (not in the ASan build, whose shadow memory needs terabytes of address
# space). Either way a test can compare the peak with MIB (dl_maxrss_below).
dl_mem_capped() {
	local mib=$1 as=1
	shift
	dl_is_asan && as=0
	if [ "$(systemctl is-system-running 2>/dev/null)" = running ] ||
		[ "$(systemctl is-system-running 2>/dev/null)" = degraded ]; then
		as=0
		set -- systemd-run --quiet --scope -p "MemoryMax=${mib}M" -p MemorySwapMax=0 -- "$@"
	fi
	"$DL_PYTHON" -c 'import os, resource, sys
mib, out, use_as, argv = int(sys.argv[1]), sys.argv[2], sys.argv[3] == "1", sys.argv[4:]
pid = os.fork()
if pid == 0:
    if use_as:
        resource.setrlimit(resource.RLIMIT_AS, (mib << 20, mib << 20))
    try:
        os.execvp(argv[0], argv)
    finally:
        os._exit(127)
_, st, ru = os.wait4(pid, 0)
with open(out, "w") as f:
    f.write("%d\n" % ru.ru_maxrss)
sys.exit(os.WEXITSTATUS(st) if os.WIFEXITED(st) else 128 + os.WTERMSIG(st))' \
		"$mib" "$SCRATCH/.dl/maxrss" "$as" "$@"
}

# dl_maxrss_below MIB: the peak resident memory of the last dl_mem_capped
# run was below MIB MiB.
dl_maxrss_below() {
	local kib
	kib=$(cat "$SCRATCH/.dl/maxrss" 2>/dev/null) || { echo "error: no dl_mem_capped run"; return 1; }
	echo "peak resident memory: $((kib / 1024)) MiB (bound: $1 MiB)"
	if [ "$kib" -ge $(($1 * 1024)) ]; then
		echo "error: peak resident memory $((kib / 1024)) MiB is over $1 MiB"
		return 1
	fi
}

# start_tcp_sink: a TCP listener on 127.0.0.1 that accepts connections,
# closes them and counts them; sets TCP_SINK_PORT and TCP_SINK_LOG (one line
# per connection). For URLs that must never be contacted.
start_tcp_sink() {
	local dir pid n=0
	dir=$(mktemp -d "$SCRATCH/.dl/sink.XXXXXX") || return 1
	: >"$dir/conns"
	"$DL_PYTHON" -c 'import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", 0))
s.listen(64)
open(sys.argv[1] + ".tmp", "w").write("%d\n" % s.getsockname()[1])
import os
os.rename(sys.argv[1] + ".tmp", sys.argv[1])
while True:
    c, a = s.accept()
    with open(sys.argv[2], "a") as f:
        f.write("connection from %s:%d\n" % a)
    c.close()' "$dir/port" "$dir/conns" >"$dir/log" 2>&1 &
	pid=$!
	register_pid "$pid"
	while ! [ -s "$dir/port" ] && [ $n -lt 100 ]; do
		sleep 0.1
		n=$((n + 1))
	done
	[ -s "$dir/port" ] || { echo "error: tcp sink did not start"; cat "$dir/log"; return 1; }
	TCP_SINK_PORT=$(cat "$dir/port")
	TCP_SINK_LOG=$dir/conns
	export TCP_SINK_PORT TCP_SINK_LOG
}

# start_slow_proxy PORT RATE: a TCP proxy on 127.0.0.1 to 127.0.0.1:PORT that
# passes the server's bytes on at about RATE bytes a second (a slow git
# server in front of start_git_daemon's); sets SLOW_PROXY_PORT.
start_slow_proxy() {
	local dir pid n=0
	dir=$(mktemp -d "$SCRATCH/.dl/proxy.XXXXXX") || return 1
	"$DL_PYTHON" -c 'import os, socket, sys, threading, time
target, rate, portfile = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
def pipe(src, dst, slow):
    try:
        while True:
            b = src.recv(4096 if slow else 65536)
            if not b:
                break
            dst.sendall(b)
            if slow:
                time.sleep(len(b) / rate)
    except OSError:
        pass
    for s in (src, dst):
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", 0))
s.listen(64)
open(portfile + ".tmp", "w").write("%d\n" % s.getsockname()[1])
os.rename(portfile + ".tmp", portfile)
while True:
    c, _ = s.accept()
    try:
        u = socket.create_connection(("127.0.0.1", target))
    except OSError:
        c.close()
        continue
    threading.Thread(target=pipe, args=(c, u, False), daemon=True).start()
    threading.Thread(target=pipe, args=(u, c, True), daemon=True).start()' \
		"$1" "$2" "$dir/port" >"$dir/log" 2>&1 &
	pid=$!
	register_pid "$pid"
	while ! [ -s "$dir/port" ] && [ $n -lt 100 ]; do
		sleep 0.1
		n=$((n + 1))
	done
	[ -s "$dir/port" ] || { echo "error: proxy did not start"; cat "$dir/log"; return 1; }
	SLOW_PROXY_PORT=$(cat "$dir/port")
	export SLOW_PROXY_PORT
}
