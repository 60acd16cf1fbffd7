#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Refs: --semver picks the highest matching tag (annotated tags too,
# pre-releases only when asked for); no match is a clear error. A remote
# that went backwards (force-push) is refused by apply and the agent, the
# last good revision staying, until source.allowRewind says otherwise; a
# pin change is deliberate.
# shellcheck disable=SC2016
. "$(dirname "$0")/lib.sh"

mkdir -p "$SCRATCH/srv"
W=$SCRATCH/work
repo_init work
motd() {
	write_file "$W/motd.yaml" <<-Y
	apiVersion: driftless/v1
	kind: File
	metadata: {name: motd}
	spec: {path: /etc/motd, content: "$1\n"}
	Y
	repo_commit work "$1"
}
motd 1.0.0 && git -C "$W" tag v1.0.0
motd 1.2.0 && git -C "$W" tag v1.2.0
motd 1.2.5 && git -C "$W" tag -a -m "release 1.2.5" v1.2.5
motd 1.3.0 && git -C "$W" tag 1.3.0
motd 1.4.0-rc.1 && git -C "$W" tag -a -m "rc" v1.4.0-rc.1
motd 2.0.0 && git -C "$W" tag v2.0.0
motd not-a-version && git -C "$W" tag latest && git -C "$W" tag v3.0 && git -C "$W" tag v01.0.0
git clone -q --bare "$W" "$SCRATCH/srv/infra.git"
mkdir -p "$ROOT/etc"
start_git_daemon "$SCRATCH/srv" || bail_out "cannot start git daemon"
URL=$GIT_DAEMON_URL/infra.git

fresh() { rm -rf "$STATE" "$ROOT/etc/motd"; }

test_expect_success '--semver ^1.2 picks the highest 1.x release (a tag without v)' '
	fresh &&
	expect_exit 0 dl_apply "$URL" --semver "^1.2" &&
	test_cmp_text 1.3.0 "$ROOT/etc/motd" &&
	expect_exit 0 dl history --state "$STATE" -o json &&
	expect_contains stdout "\"ref\":\"refs/tags/1.3.0\""
'

test_expect_success '--semver ~1.2.0 picks an annotated tag' '
	expect_exit 0 dl_apply "$URL" --semver "~1.2.0" &&
	test_cmp_text 1.2.5 "$ROOT/etc/motd"
'

test_expect_success 'comparators, x-ranges and *' '
	expect_exit 0 dl_apply "$URL" --semver ">=1.0.0 <1.2.5" &&
	test_cmp_text 1.2.0 "$ROOT/etc/motd" &&
	expect_exit 0 dl_apply "$URL" --semver "1.x" &&
	test_cmp_text 1.3.0 "$ROOT/etc/motd" &&
	expect_exit 0 dl_apply "$URL" --semver "*" &&
	test_cmp_text 2.0.0 "$ROOT/etc/motd"
'

test_expect_success 'a pre-release only when the range names one' '
	expect_exit 0 dl_apply "$URL" --semver ">=1.4.0-rc.1 <2" &&
	test_cmp_text 1.4.0-rc.1 "$ROOT/etc/motd" &&
	expect_exit 0 dl_apply "$URL" --semver "^1.3" &&
	test_cmp_text 1.3.0 "$ROOT/etc/motd"
'

test_expect_success 'no matching tag is a clear error' '
	test_must_fail dl_apply "$URL" --semver "^4" &&
	expect_contains "$SCRATCH/stderr" "no tag of '\''$URL'\'' matches semver range '\''^4'\'' (6 version tags, the highest '\''v2.0.0'\'')"
'

test_expect_success 'a bad range is a usage error, in flags and in the config' '
	expect_exit 64 dl_apply "$URL" --semver "^1.x.3" &&
	expect_contains "$SCRATCH/stderr" "'\''^1.x.3'\'' is not a semver range" &&
	printf "source:\n  url: %s\n  semver: \">= 1 <\"\n" "$URL" >bad.yaml &&
	test_must_fail dl apply -c bad.yaml --root "$ROOT" --state "$STATE" &&
	expect_contains "$SCRATCH/stderr" "bad.yaml:3:11: '\''source.semver'\'': '\''>= 1 <'\'' is not a semver range" &&
	printf "source:\n  url: %s\n  semver: \"^1\"\n  tag: v1.0.0\n" "$URL" >bad.yaml &&
	test_must_fail dl apply -c bad.yaml --root "$ROOT" --state "$STATE" &&
	expect_contains "$SCRATCH/stderr" "'\''source.semver'\'' goes alone"
'

test_expect_success 'source.semver in the config' '
	printf "source:\n  url: %s\n  semver: \"~1.2\"\n" "$URL" >cfg.yaml &&
	expect_exit 0 dl apply -c cfg.yaml --root "$ROOT" --state "$STATE" &&
	test_cmp_text 1.2.5 "$ROOT/etc/motd"
'

test_expect_success 'a range that falls back to a lower version is refused; a higher one off a branch is not' '
	S4=$SCRATCH/state-sv && R4=$SCRATCH/root-sv && mkdir -p "$R4/etc" &&
	expect_exit 0 dl apply --repo "$URL" --semver "^1" --root "$R4" --state "$S4" &&
	test_cmp_text 1.3.0 "$R4/etc/motd" &&
	git -C "$SCRATCH/srv/infra.git" tag -d 1.3.0 >/dev/null &&
	test_must_fail dl apply --repo "$URL" --semver "^1" --root "$R4" --state "$S4" &&
	expect_contains "$SCRATCH/stderr" "the remote went backwards: the highest matching tag is now '\''v1.2.5'\''" &&
	expect_contains "$SCRATCH/stderr" "older than the applied '\''1.3.0'\''" &&
	test_cmp_text 1.3.0 "$R4/etc/motd" &&
	git -C "$W" checkout -q -b release-1.x v1.2.5 &&
	motd 1.5.0 && git -C "$W" tag v1.5.0 && git -C "$W" checkout -q main &&
	git -C "$W" push -q "$SCRATCH/srv/infra.git" v1.5.0 &&
	expect_exit 0 dl apply --repo "$URL" --semver "^1" --root "$R4" --state "$S4" &&
	test_cmp_text 1.5.0 "$R4/etc/motd"
'

# ---- a remote that went backwards ----

repo_init hist
H=$SCRATCH/hist
hmotd() {
	write_file "$H/motd.yaml" <<-Y
	apiVersion: driftless/v1
	kind: File
	metadata: {name: motd}
	spec: {path: /etc/motd, content: "$1\n"}
	Y
	repo_commit hist "$1"
}
hmotd A && A=$(repo_head hist)
hmotd B && B=$(repo_head hist)
git clone -q --bare "$H" "$SCRATCH/srv/hist.git"
git -C "$H" remote add origin "$SCRATCH/srv/hist.git"
HURL=$GIT_DAEMON_URL/hist.git
S2=$SCRATCH/state-rw
R2=$SCRATCH/root-rw
mkdir -p "$R2/etc" "$SCRATCH/root-agent/etc"

test_expect_success 'a fast-forward is applied' '
	expect_exit 0 dl apply --repo "$HURL" --root "$R2" --state "$S2" &&
	test_cmp_text B "$R2/etc/motd"
'

test_expect_success 'a force-push that rewinds the branch is refused' '
	git -C "$H" reset -q --hard "$A" &&
	hmotd C && C=$(repo_head hist) &&
	git -C "$H" push -q -f origin main &&
	test_must_fail dl apply --repo "$HURL" --root "$R2" --state "$S2" &&
	expect_contains "$SCRATCH/stderr" "the remote went backwards: ${C:0:12} does not descend from the applied revision ${B:0:12}" &&
	expect_contains "$SCRATCH/stderr" "source.allowRewind" &&
	expect_contains "$SCRATCH/stderr" "nothing was applied" &&
	test_cmp_text B "$R2/etc/motd" &&
	test_must_fail dl plan --repo "$HURL" --root "$R2" --state "$S2" &&
	expect_contains "$SCRATCH/stderr" "the remote went backwards" &&
	expect_exit 0 dl status --state "$S2" &&
	expect_contains stdout "the remote went backwards" &&
	expect_exit 0 dl history --state "$S2" &&
	expect_contains stdout rejected
'

test_expect_success 'a pin, or another branch, is deliberate' '
	expect_exit 0 dl apply --repo "$HURL" --root "$R2" --state "$S2" --commit "$A" &&
	test_cmp_text A "$R2/etc/motd" &&
	git -C "$H" push -q origin "$B:refs/heads/old" &&
	expect_exit 0 dl apply --repo "$HURL" --root "$R2" --state "$S2" --branch old &&
	test_cmp_text B "$R2/etc/motd"
'

test_expect_success 'source.allowRewind lets a rewound branch through' '
	printf "source:\n  url: %s\n  branch: old\n" "$HURL" >rw.yaml &&
	git -C "$H" push -q -f origin "$A:refs/heads/old" &&
	test_must_fail dl apply -c rw.yaml --root "$R2" --state "$S2" &&
	expect_contains "$SCRATCH/stderr" "the remote went backwards" &&
	printf "  allowRewind: true\n" >>rw.yaml &&
	expect_exit 0 dl apply -c rw.yaml --root "$R2" --state "$S2" &&
	expect_contains "$SCRATCH/stderr" "accepted because of '\''source.allowRewind'\''" &&
	test_cmp_text A "$R2/etc/motd"
'

AGENT_LOG=$SCRATCH/agent.log
agent_start() {
	"$DRIFTLESS" agent --root "$SCRATCH/root-agent" --state "$S3" --interval 1s "$@" >>"$AGENT_LOG" 2>&1 &
	echo $! >"$SCRATCH/agent.pid"
	register_pid "$!"
}
agent_stop() {
	kill -TERM "$(cat "$SCRATCH/agent.pid")" 2>/dev/null
	timeout 10 tail --pid="$(cat "$SCRATCH/agent.pid")" -f /dev/null
}
log_has() { grep -qF -e "$1" "$AGENT_LOG"; }
S3=$SCRATCH/state-agent

test_expect_success 'the agent refuses a rewound remote and keeps the last good revision' '
	C=$(git -C "$H" rev-parse main) &&
	git -C "$H" push -q -f origin "$B:refs/heads/main" &&
	printf "source:\n  url: %s\n" "$HURL" >agent.yaml &&
	agent_start -c agent.yaml &&
	wait_for 10 log_has "revision ${B:0:12} applied" &&
	git -C "$H" push -q -f origin "$C:refs/heads/main" &&
	wait_for 10 log_has "the remote went backwards" &&
	test_cmp_text B "$SCRATCH/root-agent/etc/motd" &&
	agent_stop &&
	expect_exit 0 dl status --state "$S3" &&
	expect_contains stdout "the remote went backwards"
'

test_expect_success 'with source.allowRewind the agent applies it' '
	C=$(git -C "$H" rev-parse main) &&
	printf "  allowRewind: true\n" >>agent.yaml &&
	agent_start -c agent.yaml &&
	wait_for 10 log_has "revision ${C:0:12} applied" &&
	log_has "accepted because of '\''source.allowRewind'\''" &&
	test_cmp_text C "$SCRATCH/root-agent/etc/motd" &&
	agent_stop
'

test_done
