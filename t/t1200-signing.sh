#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Signed commits (HARDENING G07, G08, G09): source.verify with an SSH
# allowed_signers file or a GPG keyring, modes head and strict. A refused
# revision is rejected: nothing is applied, the last good revision stays in
# force, and status and history say why.
# shellcheck disable=SC2016
. "$(dirname "$0")/lib.sh"

command -v ssh-keygen >/dev/null || skip_all "needs ssh-keygen (openssh-client)"

K=$SCRATCH/keys
mkdir -p "$K" "$ROOT/etc"
ssh-keygen -q -t ed25519 -N "" -C alice -f "$K/alice"
ssh-keygen -q -t ed25519 -N "" -C mallory -f "$K/mallory"
echo "alice@example.com namespaces=\"git\" $(cut -d" " -f1,2 "$K/alice.pub")" >"$K/allowed_signers"
ALICE_FP=$(ssh-keygen -lf "$K/alice.pub" | cut -d" " -f2)
MALLORY_FP=$(ssh-keygen -lf "$K/mallory.pub" | cut -d" " -f2)

repo_init repo
motd() { # CONTENT
	write_file repo/motd.yaml <<-Y
	apiVersion: driftless/v1
	kind: File
	metadata: {name: motd}
	spec: {path: /etc/motd, content: "$1\n"}
	Y
}
# commit_as KEY MESSAGE: commit everything, signed with KEY ("" for unsigned)
commit_as() {
	git -C repo add -A &&
	if [ -n "$1" ]; then
		git -C repo -c gpg.format=ssh -c user.signingkey="$1" commit -q -S --allow-empty -m "$2"
	else
		git -C repo commit -q --allow-empty -m "$2"
	fi
}

verify_config() { # MODE [EXTRA LINE]
	{
		echo "source:"
		echo "  verify: {allowedSigners: $K/allowed_signers, mode: $1}"
		[ -z "${2:-}" ] || echo "  $2"
	} >"$SCRATCH/agent.yaml"
}
motd_is() { test "$(cat "$ROOT/etc/motd" 2>/dev/null)" = "$1"; }
apply_v() { dl_apply "$SCRATCH/repo" -c "$SCRATCH/agent.yaml" "$@"; }
status_has() { # TEXT
	dl status --state "$STATE" >"$SCRATCH/status.txt" 2>&1
	expect_contains "$SCRATCH/status.txt" "$1"
}
history_has() { # TEXT
	dl history --state "$STATE" -o json >"$SCRATCH/history.json" 2>&1
	expect_contains "$SCRATCH/history.json" "$1"
}

test_expect_success 'a commit signed by an allowed signer is applied (head)' '
	motd one && commit_as "$K/alice" one &&
	verify_config head &&
	expect_exit 0 apply_v &&
	test_cmp_text one "$ROOT/etc/motd"
'

test_expect_success 'G07: an unsigned commit is refused; the last good revision stays' '
	motd two && commit_as "" two &&
	bad=$(repo_head repo) &&
	test_must_fail apply_v &&
	expect_contains stderr "commit ${bad:0:12} is not signed" &&
	expect_contains stderr "rejected: 1 problem; nothing was applied" &&
	test_cmp_text one "$ROOT/etc/motd" &&
	status_has "rejected revision:  $bad" &&
	status_has "is not signed" &&
	history_has "is not signed"
'

test_expect_success 'the audit report shows each revision'\''s signature status' '
	expect_exit 0 dl report --state "$STATE" --since 1d -o json &&
	python3 - "$SCRATCH/stdout" <<-PY
	import json, sys
	revs = json.load(open(sys.argv[1]))["revisions"]
	assert [r["signature"] for r in revs if r["result"] == "applied"][0] == "verified (head)", revs
	assert [r["signature"] for r in revs if r["result"] == "rejected"][-1] == "refused", revs
	PY
'

test_expect_success 'plan refuses the same revision' '
	test_must_fail dl_plan "$SCRATCH/repo" -c "$SCRATCH/agent.yaml" &&
	expect_contains stderr "is not signed"
'

test_expect_success 'G07: a commit signed by a key outside allowed signers is refused' '
	motd three && commit_as "$K/mallory" three &&
	test_must_fail apply_v &&
	expect_contains stderr "key ssh-ed25519 $MALLORY_FP is not in allowed signers" &&
	test_cmp_text one "$ROOT/etc/motd"
'

test_expect_success 'G09: a tampered signed commit is refused' '
	motd four && commit_as "$K/alice" four &&
	git -C repo cat-file commit HEAD | sed "s/^four$/four, or so they say/" >forged &&
	forged=$(git -C repo hash-object -t commit -w --stdin <forged) &&
	git -C repo update-ref refs/heads/main "$forged" &&
	test_must_fail apply_v &&
	expect_contains stderr "commit ${forged:0:12}: bad signature from key $ALICE_FP" &&
	test_cmp_text one "$ROOT/etc/motd"
'

test_expect_success 'G09: a signature over another namespace is refused' '
	git -C repo reset -q --hard HEAD~1 2>/dev/null || true &&
	git -C repo cat-file commit HEAD >raw &&
	sed "/^gpgsig /,/END SSH SIGNATURE/d" raw >payload &&
	ssh-keygen -q -Y sign -n file -f "$K/alice" payload &&
	{ sed -n "1,/^committer /p" payload &&
	  sed "1s/^/gpgsig /; 2,\$s/^/ /" payload.sig &&
	  sed -n "/^\$/,\$p" payload; } >resigned &&
	id=$(git -C repo hash-object -t commit -w --stdin <resigned) &&
	git -C repo update-ref refs/heads/main "$id" &&
	test_must_fail apply_v &&
	expect_contains stderr "namespace '\''file'\'', not '\''git'\''"
'

test_expect_success 'G09: a signature key file in the repository has no effect' '
	motd five &&
	cp "$K/mallory.pub" repo/allowed_signers &&
	echo "m@x $(cut -d" " -f1,2 "$K/mallory.pub")" >repo/allowed_signers &&
	commit_as "$K/mallory" five &&
	test_must_fail apply_v &&
	expect_contains stderr "is not in allowed signers" &&
	git -C repo rm -q allowed_signers
'

test_expect_success 'a new signed commit on top applies again (head mode ignores history)' '
	motd six && commit_as "$K/alice" six &&
	expect_exit 0 apply_v &&
	test_cmp_text six "$ROOT/etc/motd" &&
	expect_exit 0 dl status --state "$STATE" &&
	expect_not_contains stdout "rejected revision"
'

test_expect_success 'G08: strict mode refuses a signed head over an unsigned commit, naming it' '
	verify_config strict &&
	motd seven && commit_as "" seven && unsigned=$(repo_head repo) &&
	motd eight && commit_as "$K/alice" eight &&
	test_must_fail apply_v &&
	expect_contains stderr "commit ${unsigned:0:12} is not signed" &&
	test_cmp_text six "$ROOT/etc/motd" &&
	verify_config head &&
	expect_exit 0 apply_v &&
	test_cmp_text eight "$ROOT/etc/motd"
'

test_expect_success 'G08: strict mode applies when every commit since the last applied is signed' '
	verify_config strict &&
	motd nine && commit_as "$K/alice" nine &&
	motd ten && commit_as "$K/alice" ten &&
	expect_exit 0 apply_v &&
	test_cmp_text ten "$ROOT/etc/motd"
'

test_expect_success 'G08: strict mode checks the commits a merge brings in' '
	git -C repo checkout -q -b side &&
	write_file repo/side.txt <<<"side" && commit_as "" "unsigned side" && side=$(repo_head repo) &&
	git -C repo checkout -q main &&
	git -C repo -c gpg.format=ssh -c user.signingkey="$K/alice" merge -q -S --no-ff -m merge side &&
	test_must_fail apply_v &&
	expect_contains stderr "commit ${side:0:12} is not signed" &&
	test_cmp_text ten "$ROOT/etc/motd"
'

test_expect_success 'G07: an expired allowed signer is refused' '
	git -C repo reset -q --hard HEAD~1 &&
	motd eleven && commit_as "$K/alice" eleven &&
	echo "alice@example.com valid-before=\"20200101\" $(cut -d" " -f1,2 "$K/alice.pub")" >"$K/expired" &&
	printf "source:\n  verify: {allowedSigners: %s}\n" "$K/expired" >"$SCRATCH/agent.yaml" &&
	test_must_fail apply_v &&
	expect_contains stderr "expired at 2020-01-01"
'

test_expect_success 'an allowed signers file others can write is refused' '
	cp "$K/allowed_signers" "$K/open" && chmod 666 "$K/open" &&
	printf "source:\n  verify: {allowedSigners: %s}\n" "$K/open" >"$SCRATCH/agent.yaml" &&
	test_must_fail apply_v &&
	expect_contains stderr "'\''source.verify.allowedSigners'\''" &&
	expect_contains stderr "must not be writable by group or others"
'

# ---- the agent keeps the last good revision ----

test_expect_success 'the agent rejects an unsigned revision and keeps enforcing the last good one' '
	rm -rf "$STATE" && rm -f "$ROOT/etc/motd" &&
	verify_config head &&
	git clone -q --bare repo "$SCRATCH/srv.git"
	"$DRIFTLESS" agent -c "$SCRATCH/agent.yaml" --repo "$SCRATCH/srv.git" --root "$ROOT" \
		--state "$STATE" --interval 1s >"$SCRATCH/agent.log" 2>&1 &
	echo $! >"$SCRATCH/agent.pid" && register_pid "$(cat "$SCRATCH/agent.pid")" &&
	wait_for 15 test -f "$ROOT/etc/motd" &&
	test_cmp_text eleven "$ROOT/etc/motd" &&
	motd twelve && commit_as "" twelve && bad=$(repo_head repo) &&
	git -C repo push -q "$SCRATCH/srv.git" main &&
	wait_for 15 grep -q "rejected: commit ${bad:0:12} is not signed" "$SCRATCH/agent.log" &&
	test_cmp_text eleven "$ROOT/etc/motd" &&
	echo "hand edit" >"$ROOT/etc/motd" &&
	wait_for 5 motd_is eleven &&
	wait_for 10 status_has "rejected revision:  $bad" &&
	history_has "is not signed"
'
kill "$(cat "$SCRATCH/agent.pid")" 2>/dev/null
timeout 10 tail --pid="$(cat "$SCRATCH/agent.pid")" -f /dev/null

# ---- GPG (gpgme) ----

if command -v gpg >/dev/null; then
	export GNUPGHOME=$SCRATCH/gnupg
	mkdir -p "$GNUPGHOME" && chmod 700 "$GNUPGHOME"
	gpg --batch --passphrase "" --quick-gen-key "Alice <alice@example.com>" ed25519 sign never \
		>/dev/null 2>&1
	gpg --batch --passphrase "" --quick-gen-key "Mallory <m@example.com>" ed25519 sign never \
		>/dev/null 2>&1
	GPG_ALICE=$(gpg --list-keys --with-colons alice@example.com | awk -F: '/^fpr/ {print $10; exit}')
	GPG_MALLORY=$(gpg --list-keys --with-colons m@example.com | awk -F: '/^fpr/ {print $10; exit}')
	gpg --export "$GPG_ALICE" >"$K/keyring.gpg"
	gpg_commit() { # FPR MESSAGE
		git -C repo add -A &&
		git -C repo -c gpg.format=openpgp -c user.signingkey="$1" commit -q -S --allow-empty -m "$2"
	}
	gpg_config() {
		printf "source:\n  verify: {gpgKeyring: %s, mode: head}\n" "$K/keyring.gpg" >"$SCRATCH/agent.yaml"
	}

	test_expect_success 'gpg: a commit signed by a key in the keyring is applied' '
		rm -rf "$STATE" "$ROOT/etc/motd" && gpg_config &&
		motd gpg-one && gpg_commit "$GPG_ALICE" gpg-one &&
		expect_exit 0 apply_v &&
		test_cmp_text gpg-one "$ROOT/etc/motd"
	'

	test_expect_success 'gpg: a key outside the keyring is refused' '
		motd gpg-two && gpg_commit "$GPG_MALLORY" gpg-two &&
		test_must_fail apply_v &&
		expect_contains stderr "is not in the keyring" &&
		test_cmp_text gpg-one "$ROOT/etc/motd"
	'

	test_expect_success 'gpg: a tampered commit is refused' '
		motd gpg-three && gpg_commit "$GPG_ALICE" gpg-three &&
		git -C repo cat-file commit HEAD | sed "s/^gpg-three$/gpg-3/" >forged &&
		forged=$(git -C repo hash-object -t commit -w --stdin <forged) &&
		git -C repo update-ref refs/heads/main "$forged" &&
		test_must_fail apply_v &&
		expect_contains stderr "commit ${forged:0:12}: bad GPG signature" &&
		test_cmp_text gpg-one "$ROOT/etc/motd"
	'

	test_expect_success 'gpg: an SSH-signed commit needs allowedSigners' '
		motd gpg-four && commit_as "$K/alice" gpg-four &&
		test_must_fail apply_v &&
		expect_contains stderr "has an SSH signature, and no '\''allowedSigners'\''"
	'

	test_expect_success 'gpg and ssh signers together' '
		printf "source:\n  verify: {gpgKeyring: %s, allowedSigners: %s}\n" "$K/keyring.gpg" \
			"$K/allowed_signers" >"$SCRATCH/agent.yaml" &&
		expect_exit 0 apply_v &&
		test_cmp_text gpg-four "$ROOT/etc/motd" &&
		test -z "$(find "$STATE" -maxdepth 1 -name "gnupg.*")"
	'
else
	test_skip 'gpg signatures' 'needs gpg'
fi

test_done
