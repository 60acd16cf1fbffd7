#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Transports and credentials (HARDENING G02, G03, S04): https with a token or
# a user and password, ssh with a deploy key and a pinned known_hosts entry
# (key type, key and port), redirects, the download cap and the deadline.
# shellcheck disable=SC2016
. "$(dirname "$0")/lib.sh"

command -v ssh-keygen >/dev/null || skip_all "needs ssh-keygen (openssh-client)"

mkdir -p "$SCRATCH/srv" "$ROOT/etc"
repo_init srv/infra.work
R=$SCRATCH/srv/infra.work
write_file "$R/motd.yaml" <<'Y'
apiVersion: driftless/v1
kind: File
metadata: {name: motd}
spec: {path: /etc/motd, content: "hello\n"}
Y
repo_commit "$R" one
git clone -q --bare "$R" "$SCRATCH/srv/infra.git"
# a repository whose pack is a few MiB of incompressible bytes
repo_init srv/big.work
head -c 3000000 /dev/urandom >"$SCRATCH/srv/big.work/blob.bin"
cp "$R/motd.yaml" "$SCRATCH/srv/big.work/"
repo_commit srv/big.work big
git clone -q --bare "$SCRATCH/srv/big.work" "$SCRATCH/srv/big.git"

TOKEN=ghp_canaryT0ken$RANDOM$RANDOM
make_test_ca "$SCRATCH/ca" || bail_out "cannot make a test CA"
start_git_http --tls "$SCRATCH/ca/server.pem" "$SCRATCH/ca/server.key" \
	--basic-auth "x-access-token:$TOKEN" "$SCRATCH/srv" || bail_out "cannot start https server"
TOKEN_URL=${GIT_HTTP_URL//127.0.0.1/localhost}
start_git_http --tls "$SCRATCH/ca/server.pem" "$SCRATCH/ca/server.key" \
	--basic-auth "deploy:pa55-w0rd-canary" "$SCRATCH/srv" || bail_out "cannot start https server"
PASS_URL=${GIT_HTTP_URL//127.0.0.1/localhost}
start_git_http "$SCRATCH/srv" || bail_out "cannot start http server"
HTTP_URL=$GIT_HTTP_URL
HTTP_PORT=${HTTP_URL##*:}
# redirects: to another host name, and from https to http
start_git_http --redirect "http://localhost:$HTTP_PORT" "$SCRATCH/srv" ||
	bail_out "cannot start the redirecting server"
REDIR_URL=$GIT_HTTP_URL
start_git_http --tls "$SCRATCH/ca/server.pem" "$SCRATCH/ca/server.key" \
	--redirect "http://localhost:$HTTP_PORT" "$SCRATCH/srv" ||
	bail_out "cannot start the redirecting https server"
REDIR_TLS_URL=${GIT_HTTP_URL//127.0.0.1/localhost}

mkdir -p "$SCRATCH/etc"
printf '%s\n' "$TOKEN" >"$SCRATCH/etc/token"
chmod 600 "$SCRATCH/etc/token"
printf 'pa55-w0rd-canary\n' >"$SCRATCH/etc/password"
chmod 600 "$SCRATCH/etc/password"

fresh() { rm -rf "$STATE" "$ROOT/etc/motd"; }
config() { # FILE LINES...: an agent.yaml with a source: section of LINES
	local f=$1
	shift
	{
		echo "source:"
		echo "  caFile: $SCRATCH/ca/ca.pem"
		for l in "$@"; do echo "  $l"; done
	} >"$f"
}
# every output a run leaves behind: stdout, stderr, status, history
no_leak() { # SECRET
	dl status --state "$STATE" -o json >"$SCRATCH/st.json" 2>&1 || true
	dl history --state "$STATE" -o json >"$SCRATCH/hist.json" 2>&1 || true
	for f in "$SCRATCH/stdout" "$SCRATCH/stderr" "$SCRATCH/st.json" "$SCRATCH/hist.json"; do
		expect_not_contains "$f" "$1" || return 1
	done
	if [ -f "$STATE/driftless.db" ]; then
		! grep -aqF -e "$1" "$STATE/driftless.db" || { echo "secret in the database"; return 1; }
	fi
}

test_expect_success 'https with source.auth.tokenFile' '
	fresh &&
	config c.yaml "auth: {tokenFile: $SCRATCH/etc/token}" &&
	expect_exit 0 dl_apply "$TOKEN_URL/infra.git" -c c.yaml &&
	test_cmp_text hello "$ROOT/etc/motd" &&
	no_leak "$TOKEN"
'

test_expect_success 'https with username and passwordFile' '
	fresh &&
	config c.yaml "auth: {username: deploy, passwordFile: $SCRATCH/etc/password}" &&
	expect_exit 0 dl_apply "$PASS_URL/infra.git" -c c.yaml &&
	test_cmp_text hello "$ROOT/etc/motd"
'

test_expect_success 'no credentials: a 401 says to set source.auth' '
	fresh &&
	config c.yaml &&
	test_must_fail dl_apply "$TOKEN_URL/infra.git" -c c.yaml &&
	expect_contains stderr "requires authentication (HTTP 401)" &&
	expect_missing "$ROOT/etc/motd"
'

test_expect_success 'S04: a wrong token is a 401 error that never shows the token' '
	fresh &&
	printf "wrong-%s\n" "$TOKEN" >"$SCRATCH/etc/bad-token" &&
	chmod 600 "$SCRATCH/etc/bad-token" &&
	config c.yaml "auth: {tokenFile: $SCRATCH/etc/bad-token}" &&
	test_must_fail dl_apply "$TOKEN_URL/infra.git" -c c.yaml &&
	expect_contains stderr "refused the credentials of '\''source.auth'\'' (HTTP 401)" &&
	no_leak "$TOKEN" &&
	expect_missing "$ROOT/etc/motd"
'

test_expect_success 'a token file others can read is refused, naming the setting' '
	fresh &&
	cp "$SCRATCH/etc/token" "$SCRATCH/etc/open-token" &&
	chmod 644 "$SCRATCH/etc/open-token" &&
	config c.yaml "auth: {tokenFile: $SCRATCH/etc/open-token}" &&
	test_must_fail dl_apply "$TOKEN_URL/infra.git" -c c.yaml &&
	expect_contains stderr "'\''source.auth.tokenFile'\''" &&
	expect_contains stderr "must not be accessible to group or others (mode 0644)" &&
	no_leak "$TOKEN"
'

test_expect_success 'credentials are never sent over plain http://' '
	fresh &&
	config c.yaml "auth: {tokenFile: $SCRATCH/etc/token}" &&
	test_must_fail dl_apply "$HTTP_URL/infra.git" -c c.yaml &&
	expect_contains stderr "never sent over plain http://" &&
	no_leak "$TOKEN"
'

test_expect_success 'source.auth errors carry FILE:LINE:COL' '
	printf "source:\n  auth: {tokenFile: relative/token, bogus: 1}\n  verify: {mode: sometimes}\n  maxFetchSize: lots\n  timeout: soon\n" >bad.yaml &&
	test_must_fail dl_apply "$HTTP_URL/infra.git" -c bad.yaml &&
	expect_contains stderr "bad.yaml:2:21: '\''source.auth.tokenFile'\'' must be an absolute path" &&
	expect_contains stderr "bad.yaml:2:37: unknown field '\''source.auth.bogus'\''" &&
	expect_contains stderr "bad.yaml:3:18: '\''source.verify.mode'\'' must be head or strict" &&
	expect_contains stderr "bad.yaml:3:11: '\''source.verify'\'' needs '\''allowedSigners'\''" &&
	expect_contains stderr "bad.yaml:4:17: '\''source.maxFetchSize'\'' must be a size" &&
	expect_contains stderr "bad.yaml:5:12: '\''source.timeout'\'' must be a duration"
'

test_expect_success 'G03: a redirect to another host is refused' '
	fresh &&
	test_must_fail dl_apply "$REDIR_URL/infra.git" &&
	expect_contains stderr "cannot redirect from '\''127.0.0.1'\'' to '\''localhost'\''" &&
	expect_missing "$ROOT/etc/motd"
'

test_expect_success 'G03: a redirect from https to http is refused, the token stays home' '
	fresh &&
	config c.yaml "auth: {tokenFile: $SCRATCH/etc/token}" &&
	test_must_fail dl_apply "$REDIR_TLS_URL/infra.git" -c c.yaml &&
	expect_contains stderr "cannot redirect from '\''https'\'' to '\''http'\''" &&
	no_leak "$TOKEN" &&
	expect_missing "$ROOT/etc/motd"
'

test_expect_success 'G02: a download over source.maxFetchSize is stopped' '
	fresh &&
	config c.yaml "maxFetchSize: 1M" &&
	test_must_fail dl_apply "$HTTP_URL/big.git" -c c.yaml &&
	expect_contains stderr "sent more than 1048576 bytes ('\''source.maxFetchSize'\'')" &&
	expect_missing "$ROOT/etc/motd" &&
	config c.yaml "maxFetchSize: 64M" &&
	expect_exit 0 dl_apply "$HTTP_URL/big.git" -c c.yaml
'

# a server that accepts and never answers
"$DL_PYTHON" -c '
import socket, sys, time
s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen(16)
open(sys.argv[1] + ".tmp", "w").write(str(s.getsockname()[1]))
import os; os.rename(sys.argv[1] + ".tmp", sys.argv[1])
held = []
while True:
    c, _ = s.accept()
    held.append(c)
' "$SCRATCH/hang.port" &
register_pid $!
wait_for 10 test -s "$SCRATCH/hang.port" || bail_out "the hanging server did not start"
HANG_PORT=$(cat "$SCRATCH/hang.port")

test_expect_success 'G02: source.timeout stops a server that never answers' '
	fresh &&
	config c.yaml "timeout: 2s" &&
	start=$(date +%s) &&
	test_must_fail dl_apply "http://127.0.0.1:$HANG_PORT/infra.git" -c c.yaml &&
	end=$(date +%s) &&
	test $((end - start)) -lt 30 &&
	expect_contains stderr "took longer than the deadline ('\''source.timeout'\'')" &&
	test_must_fail dl_apply "git://127.0.0.1:$HANG_PORT/infra.git" -c c.yaml &&
	expect_contains stderr "took longer than the deadline"
'

# ---- ssh: sshd on a free loopback port, its own host key and config ----

SSHD=$(command -v sshd || echo /usr/sbin/sshd)
# libgit2 1.5.1 leaks its known_hosts check on every ssh connect; the
# suppression in tests/lsan.supp needs whole stacks to name it (ASan builds)
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}fast_unwind_on_malloc=0"
if [ -x "$SSHD" ]; then
	S=$SCRATCH/sshd
	mkdir -p "$S" /run/sshd
	ssh-keygen -q -t ed25519 -N "" -f "$S/host_key"
	ssh-keygen -q -t ed25519 -N "" -f "$S/other_host_key"
	ssh-keygen -q -t ed25519 -N "" -C deploy -f "$SCRATCH/etc/deploy_key"
	ssh-keygen -q -t ed25519 -N "" -C stranger -f "$SCRATCH/etc/stranger_key"
	cp "$SCRATCH/etc/deploy_key.pub" "$S/authorized_keys"
	SSH_PORT=$(free_port)
	cat >"$S/sshd_config" <<-C
	Port $SSH_PORT
	ListenAddress 127.0.0.1
	HostKey $S/host_key
	PidFile $S/sshd.pid
	AuthorizedKeysFile $S/authorized_keys
	PermitRootLogin prohibit-password
	PasswordAuthentication no
	KbdInteractiveAuthentication no
	UsePAM no
	StrictModes no
	AllowUsers $(id -un)
	C
	"$SSHD" -D -e -f "$S/sshd_config" 2>"$S/sshd.log" &
	register_pid $!
	wait_for 10 dl_port_open "$SSH_PORT" || bail_out "sshd did not start: $(cat "$S/sshd.log")"
	SSH_URL="ssh://$(id -un)@localhost:$SSH_PORT$SCRATCH/srv/infra.git"
	echo "[localhost]:$SSH_PORT $(cut -d" " -f1,2 "$S/host_key.pub")" >"$SCRATCH/etc/known_hosts"
	echo "[localhost]:$SSH_PORT $(cut -d" " -f1,2 "$S/other_host_key.pub")" >"$SCRATCH/etc/known_hosts.wrong"
	echo "[localhost]:$((SSH_PORT + 1)) $(cut -d" " -f1,2 "$S/host_key.pub")" >"$SCRATCH/etc/known_hosts.port"
	HOST_FP=$(ssh-keygen -lf "$S/host_key.pub" | cut -d" " -f2)
	OTHER_FP=$(ssh-keygen -lf "$S/other_host_key.pub" | cut -d" " -f2)
	ssh_config() { # FILE KEY KNOWN_HOSTS
		config "$1" "auth: {sshKey: $2, knownHosts: $3}"
	}

	test_expect_success 'ssh with a deploy key and a pinned host key' '
		fresh &&
		ssh_config c.yaml "$SCRATCH/etc/deploy_key" "$SCRATCH/etc/known_hosts" &&
		expect_exit 0 dl_apply "$SSH_URL" -c c.yaml &&
		test_cmp_text hello "$ROOT/etc/motd" &&
		no_leak "$(sed -n 2p "$SCRATCH/etc/deploy_key")"
	'

	test_expect_success 'G03: a changed host key is refused with both fingerprints' '
		fresh &&
		ssh_config c.yaml "$SCRATCH/etc/deploy_key" "$SCRATCH/etc/known_hosts.wrong" &&
		test_must_fail dl_apply "$SSH_URL" -c c.yaml &&
		expect_contains stderr "does not match" &&
		expect_contains stderr "expected ssh-ed25519 $OTHER_FP" &&
		expect_contains stderr "received ssh-ed25519 $HOST_FP" &&
		expect_missing "$ROOT/etc/motd"
	'

	test_expect_success 'G03: the right key pinned for another port is refused' '
		fresh &&
		ssh_config c.yaml "$SCRATCH/etc/deploy_key" "$SCRATCH/etc/known_hosts.port" &&
		test_must_fail dl_apply "$SSH_URL" -c c.yaml &&
		expect_contains stderr "'\''[localhost]:$SSH_PORT'\'' has no entry" &&
		expect_contains stderr "$HOST_FP" &&
		expect_missing "$ROOT/etc/motd"
	'

	test_expect_success 'ssh without a pinned known_hosts is refused' '
		fresh &&
		config c.yaml &&
		test_must_fail dl_apply "$SSH_URL" -c c.yaml &&
		expect_contains stderr "set '\''source.auth.knownHosts'\''"
	'

	test_expect_success 'a missing key file is a clear error' '
		fresh &&
		ssh_config c.yaml "$SCRATCH/etc/no_such_key" "$SCRATCH/etc/known_hosts" &&
		test_must_fail dl_apply "$SSH_URL" -c c.yaml &&
		expect_contains stderr "cannot read '\''source.auth.sshKey'\'' ('\''$SCRATCH/etc/no_such_key'\'')"
	'

	test_expect_success 'S04: a key the server does not know is refused, and never printed' '
		fresh &&
		ssh_config c.yaml "$SCRATCH/etc/stranger_key" "$SCRATCH/etc/known_hosts" &&
		test_must_fail dl_apply "$SSH_URL" -c c.yaml &&
		expect_contains stderr "refused the key of '\''source.auth.sshKey'\''" &&
		no_leak "$(sed -n 2p "$SCRATCH/etc/stranger_key")"
	'

	test_expect_success 'a private key others can read is refused' '
		fresh &&
		cp "$SCRATCH/etc/deploy_key" "$SCRATCH/etc/open_key" &&
		chmod 640 "$SCRATCH/etc/open_key" &&
		ssh_config c.yaml "$SCRATCH/etc/open_key" "$SCRATCH/etc/known_hosts" &&
		test_must_fail dl_apply "$SSH_URL" -c c.yaml &&
		expect_contains stderr "'\''source.auth.sshKey'\''" &&
		expect_contains stderr "(mode 0640)"
	'
else
	test_skip 'ssh transport' 'needs sshd (openssh-server)'
fi

test_done
