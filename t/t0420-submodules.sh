#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Submodules (HARDENING R04): a hostile .gitmodules and gitlinks (mode
# 160000) in the tree are never followed: no process is started, nothing is
# contacted, nothing of the submodules reaches the cache or the host. A
# revision that names a gitlink as content is rejected.
# shellcheck disable=SC2016
. "$(dirname "$0")/lib.sh"

command -v strace >/dev/null || skip_all "strace is needed"
start_tcp_sink || bail_out "cannot start the tcp sink"
SINK=127.0.0.1:$TCP_SINK_PORT

# A private repository a submodule URL points at; its commit is what the
# gitlinks record, so a fetcher that followed them would bring it in.
repo_init private
echo "private-canary-$$" >"$SCRATCH/private/secret.txt"
repo_commit private private
PRIV=$(repo_head private)
git clone -q --bare private "$SCRATCH/srv/private.git"

R=$SCRATCH/srv/infra.work
repo_init "$R"
write_file "$R/motd.yaml" <<-'Y'
	apiVersion: driftless/v1
	kind: File
	metadata: {name: motd}
	spec: {path: /etc/motd, content: "hello\n"}
	Y
long=$(printf 'a%.0s' $(seq 1 1100))
# every hostile spelling of the catalogue, one entry each
{
	printf '[submodule "../../modules/evil"]\n\tpath = evil\n\turl = -uattacker\n'
	printf '[submodule "private"]\n\tpath = priv\n\turl = file:///root/private.git\n'
	printf '[submodule "private2"]\n\tpath = priv2\n\turl = file://%s\n' "$SCRATCH/srv/private.git"
	printf '[submodule "ext"]\n\tpath = ext\n\turl = ext::sh -c touch%% %s\n' "$SCRATCH/pwned-ext"
	printf '[submodule "nohost"]\n\tpath = nohost\n\turl = https:///evil.example\n'
	printf '[submodule "sink"]\n\tpath = sink\n\turl = http://%s/evil.git\n' "$SINK"
	printf '[submodule "sinkgit"]\n\tpath = sinkgit\n\turl = git://%s/evil.git\n' "$SINK"
	printf '[submodule "cr"]\n\tpath = "cr\r"\n\turl = ssh://%s/cr.git\n' "$SINK"
	printf '[submodule "long"]\n\tpath = long\n\turl = http://%s/%s\n' "$SINK" "$long"
	printf '[submodule "app"]\n\tpath = app/gl.yaml\n\turl = git://%s/gl.git\n' "$SINK"
} >"$R/.gitmodules"
git -C "$R" add -A
for p in evil priv priv2 ext nohost sink sinkgit long app/gl.yaml; do
	printf '160000 %s\t%s\n' "$PRIV" "$p"
done | git -C "$R" update-index --index-info
printf '160000 %s\tcr\r\n' "$PRIV" | git -C "$R" update-index --index-info
git -C "$R" commit -q -m "hostile submodules"
git -C "$R" ls-tree -r HEAD | grep -q "^160000 commit $PRIV" || bail_out "no gitlink in the tree"

# Revisions that use a gitlink as content, each on a branch of its own.
# (Never `git add -A` from here on: it would drop the gitlinks, whose paths
# are not in the work tree.)
commit_paths() {
	local msg=$1
	shift
	git -C "$R" add -- "$@" && git -C "$R" commit -q -m "$msg"
}
content_branch() {
	git -C "$R" checkout -q -b "$1" main &&
		write_file "$R/bad.yaml" &&
		commit_paths "$1" bad.yaml &&
		git -C "$R" checkout -q main
}
content_branch file-source <<-'Y'
	apiVersion: driftless/v1
	kind: File
	metadata: {name: sub}
	spec: {path: /etc/sub.conf, source: evil}
	Y
content_branch file-through <<-'Y'
	apiVersion: driftless/v1
	kind: File
	metadata: {name: sub}
	spec: {path: /etc/sub.conf, source: evil/secret.txt}
	Y
git -C "$R" checkout -q -b dir-source main
mkdir -p "$R/tree"
echo plain >"$R/tree/plain.txt"
git -C "$R" add tree
printf '160000 %s\ttree/mod\n' "$PRIV" | git -C "$R" update-index --index-info
write_file "$R/bad.yaml" <<-'Y'
	apiVersion: driftless/v1
	kind: Directory
	metadata: {name: tree}
	spec: {path: /srv/tree, source: tree}
	Y
commit_paths dir-source bad.yaml
git -C "$R" checkout -q -b layer main
write_file "$R/lay/layer.yaml" <<-'Y'
	apiVersion: driftless/v1
	kind: Layer
	resources: [../motd.yaml, mod]
	Y
git -C "$R" add lay
printf '160000 %s\tlay/mod\n' "$PRIV" | git -C "$R" update-index --index-info
git -C "$R" commit -q -m layer
git -C "$R" checkout -q main
git clone -q --bare "$R" "$SCRATCH/srv/infra.git"
for b in file-source file-through dir-source layer; do
	git -C "$R" ls-tree -r "$b" | grep -q "^160000 commit $PRIV	evil" ||
		bail_out "branch $b lost its gitlinks"
done
mkdir -p "$ROOT/etc" "$ROOT/srv"
canary_make "$SCRATCH/outside/etc/shadow.canary"
canary_make "$SCRATCH/srv/private.git/config"
start_git_daemon "$SCRATCH/srv" || bail_out "cannot start git daemon"

CACHE() { ls -d "$STATE"/git/*.git | grep -v corrupt | head -n 1; }

# nothing of the submodules anywhere: not the private commit in the cache,
# no modules directory, no worktree, nothing on the host but the motd
nothing_followed() {
	c=$(CACHE) &&
	! git --git-dir="$c" cat-file -e "$PRIV" 2>/dev/null &&
	test -z "$(find "$STATE" -name modules -o -name "*.gitmodules*" -o -name secret.txt)" &&
	! grep -rqF "private-canary-$$" "$STATE" "$ROOT" &&
	test "$(cd "$ROOT" && find . -mindepth 1 ! -type d | sort)" = "./etc/motd" &&
	expect_missing "$SCRATCH/pwned-ext" &&
	test ! -s "$TCP_SINK_LOG" &&
	canary_check
}

test_expect_success 'R04: hostile submodules are never followed (file://, traced)' '
	rm -rf "$STATE" &&
	# LeakSanitizer cannot run under ptrace
	ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" \
	expect_exit 0 strace -f -qq -o "$SCRATCH/trace" -e trace=execve,connect \
		"$DRIFTLESS" apply --repo "file://$SCRATCH/srv/infra.git" --root "$ROOT" --state "$STATE" &&
	test_cmp_text hello "$ROOT/etc/motd" &&
	# the one execve is driftless itself; no socket of any internet family
	test "$(grep -c "execve(" "$SCRATCH/trace")" = 1 &&
	! grep -E "AF_INET|AF_INET6" "$SCRATCH/trace" &&
	nothing_followed
'

test_expect_success 'R04: hostile submodules are never followed (git://, apply and plan)' '
	rm -rf "$STATE" "$ROOT/etc/motd" &&
	expect_exit 0 dl_apply "$GIT_DAEMON_URL/infra.git" &&
	test_cmp_text hello "$ROOT/etc/motd" &&
	expect_exit 0 dl_plan "$GIT_DAEMON_URL/infra.git" &&
	nothing_followed
'

test_expect_success 'R04: the agent never follows them either' '
	rm -rf "$STATE" "$ROOT/etc/motd"
	"$DRIFTLESS" agent --repo "$GIT_DAEMON_URL/infra.git" --root "$ROOT" --state "$STATE" \
		--interval 1s >"$SCRATCH/agent.log" 2>&1 &
	pid=$! && register_pid $pid &&
	wait_for 20 grep -q "revision .* applied" "$SCRATCH/agent.log" &&
	kill -USR1 $pid && sleep 1.5 &&
	kill -TERM $pid && timeout 20 tail --pid=$pid -f /dev/null &&
	cat "$SCRATCH/agent.log" &&
	test_cmp_text hello "$ROOT/etc/motd" &&
	! grep -q "LeakSanitizer\|runtime error" "$SCRATCH/agent.log" &&
	nothing_followed
'

# rejected: the motd of main stays, nothing else is written
rejected() {
	test_must_fail dl_apply "$GIT_DAEMON_URL/infra.git" "$@" &&
	test_cmp_text hello "$ROOT/etc/motd" &&
	nothing_followed
}

test_expect_success 'R04: a File whose source is a gitlink is rejected' '
	rejected --branch file-source &&
	expect_contains "$SCRATCH/stderr" "bad.yaml" &&
	expect_contains "$SCRATCH/stderr" "'\''evil'\'', which is not a regular file"
'

test_expect_success 'R04: a File whose source goes through a gitlink is rejected' '
	rejected --branch file-through &&
	expect_contains "$SCRATCH/stderr" "'\''evil/secret.txt'\'', which does not exist in the commit"
'

test_expect_success 'R04: a mirrored Directory holding a gitlink is rejected' '
	rejected --branch dir-source &&
	expect_contains "$SCRATCH/stderr" "'\''tree/mod'\'', a submodule, which is not supported" &&
	expect_missing "$ROOT/srv/tree"
'

test_expect_success 'R04: a layer resource that is a gitlink is rejected' '
	rejected --branch layer --path lay &&
	expect_contains "$SCRATCH/stderr" "'\''resources'\'' entry '\''lay/mod'\'' is a submodule, which is not supported"
'

test_expect_success 'R04: a gitlink as the entry directory is rejected' '
	rejected --path evil &&
	expect_contains "$SCRATCH/stderr" "entry directory '\''evil'\'' does not exist"
'

test_done
