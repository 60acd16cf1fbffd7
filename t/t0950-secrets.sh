#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Secrets: age ciphertext in Git, plaintext only in the managed file. Host
# identities, sealing for several hosts, interoperability with the age tool,
# failures that reject the revision, and a canary that no sink may show.
# shellcheck disable=SC2016
. "$(dirname "$0")/lib.sh"

command -v age >/dev/null || skip_all "the age tool is not installed"

CANARY='CANARY-pw-7f3a9c1e-do-not-leak'
KEYS=$SCRATCH/keys
mkdir -p "$KEYS" "$ROOT/etc/app"

test_expect_success 'keygen writes a private identity and prints its recipient' '
	expect_exit 0 dl secret keygen --identity "$KEYS/web.key" &&
	grep -qE "^age1[02-9ac-hj-np-z]{58}$" "$SCRATCH/stdout" &&
	cp "$SCRATCH/stdout" "$KEYS/web.pub" &&
	expect_mode 600 "$KEYS/web.key" &&
	expect_exit 0 dl secret keygen --identity "$KEYS/db.key" &&
	cp "$SCRATCH/stdout" "$KEYS/db.pub" &&
	expect_exit 0 dl secret keygen --identity "$KEYS/other.key" &&
	cp "$SCRATCH/stdout" "$KEYS/other.pub" &&
	! cmp -s "$KEYS/web.pub" "$KEYS/db.pub"
'

test_expect_success 'keygen never replaces an identity; recipient prints it again' '
	cp "$KEYS/web.key" "$KEYS/web.key.orig" &&
	test_must_fail dl secret keygen --identity "$KEYS/web.key" &&
	expect_contains "$SCRATCH/stderr" "already exists" &&
	test_cmp "$KEYS/web.key.orig" "$KEYS/web.key" &&
	expect_exit 0 dl secret recipient --identity "$KEYS/web.key" &&
	test_cmp "$KEYS/web.pub" "$SCRATCH/stdout"
'

test_expect_success 'the age tool decrypts what seal made for two hosts, with either key' '
	printf "%s\n" "$CANARY" >"$SCRATCH/plain" &&
	dl secret seal -r "$(cat "$KEYS/web.pub")" -r "$(cat "$KEYS/db.pub")" "$SCRATCH/plain" >"$SCRATCH/sealed.age" &&
	head -n1 "$SCRATCH/sealed.age" | grep -q "^-----BEGIN AGE ENCRYPTED FILE-----$" &&
	age -d -i "$KEYS/web.key" -o "$SCRATCH/out1" "$SCRATCH/sealed.age" &&
	age -d -i "$KEYS/db.key" -o "$SCRATCH/out2" "$SCRATCH/sealed.age" &&
	test_cmp "$SCRATCH/plain" "$SCRATCH/out1" &&
	test_cmp "$SCRATCH/plain" "$SCRATCH/out2" &&
	! age -d -i "$KEYS/other.key" -o "$SCRATCH/out3" "$SCRATCH/sealed.age" 2>/dev/null &&
	! grep -qF "$CANARY" "$SCRATCH/sealed.age"
'

test_expect_success 'seal reads stdin, --binary writes the binary format; bad recipients are usage errors' '
	printf "%s\n" "$CANARY" | dl secret seal --binary -r "$(cat "$KEYS/web.pub")" >"$SCRATCH/bin.age" &&
	head -c 21 "$SCRATCH/bin.age" | grep -q "^age-encryption.org/v1" &&
	age -d -i "$KEYS/web.key" "$SCRATCH/bin.age" >"$SCRATCH/out4" &&
	test_cmp "$SCRATCH/plain" "$SCRATCH/out4" &&
	expect_exit 64 dl secret seal -r age1notarecipient "$SCRATCH/plain" &&
	expect_exit 64 dl secret seal "$SCRATCH/plain"
'

# The repository: one Secret inline (sealed by driftless for both hosts),
# one from a source file (sealed by the age tool, binary, for web only).
repo_init repo
{
	cat <<'Y'
apiVersion: driftless/v1
kind: Secret
metadata: {name: db-password}
spec:
  path: /etc/app/db-password
  content: |
Y
	sed 's/^/    /' "$SCRATCH/sealed.age"
	cat <<'Y'
---
apiVersion: driftless/v1
kind: Secret
metadata: {name: api-key}
spec:
  path: /etc/app/api-key
  source: secrets/api-key.age
  mode: "0640"
---
apiVersion: driftless/v1
kind: File
metadata: {name: app-conf}
spec: {path: /etc/app/app.conf, content: "db = local\n"}
Y
} >repo/app.yaml
mkdir -p repo/secrets
printf 'key-%s\n' "$CANARY" | age -r "$(cat "$KEYS/web.pub")" -o repo/secrets/api-key.age
repo_commit repo "secrets v1"

web() { dl "$@" --root "$ROOT" --state "$STATE" --identity "$KEYS/web.key"; }

# no_leak FILE...: none of the files holds the canary (or a line of it)
no_leak() {
	local f
	for f in "$@"; do
		if grep -rqaF -e "$CANARY" "$f"; then
			echo "error: the secret leaked into $f:"
			grep -rnaF -e "$CANARY" "$f" | head -n 5
			return 1
		fi
	done
}

test_expect_success 'validate checks that Secrets are encrypted, without an identity' '
	expect_exit 0 dl validate "$SCRATCH/repo" &&
	expect_contains "$SCRATCH/stdout" "manifests OK"
'

test_expect_success 'apply writes each plaintext at its mode; stdout and stderr do not show it' '
	expect_exit 0 web apply --repo "$SCRATCH/repo" &&
	no_leak "$SCRATCH/stdout" "$SCRATCH/stderr" &&
	test_cmp "$SCRATCH/plain" "$ROOT/etc/app/db-password" &&
	expect_mode 600 "$ROOT/etc/app/db-password" &&
	expect_mode 640 "$ROOT/etc/app/api-key" &&
	test "$(cat "$ROOT/etc/app/api-key")" = "key-$CANARY"
'

test_expect_success 'the second host decrypts the shared secret with its own key' '
	mkdir -p "$SCRATCH/db-root/etc/app" &&
	git -C repo rm -q secrets/api-key.age &&
	python3 - repo/app.yaml <<-PY &&
	import sys
	p = sys.argv[1]
	docs = open(p).read().split("---\n")
	open(p, "w").write("---\n".join(d for d in docs if "api-key" not in d))
	PY
	repo_commit repo "db host view" &&
	expect_exit 0 dl apply --repo "$SCRATCH/repo" --root "$SCRATCH/db-root" --state "$SCRATCH/db-state" \
		--identity "$KEYS/db.key" &&
	test_cmp "$SCRATCH/plain" "$SCRATCH/db-root/etc/app/db-password" &&
	expect_mode 600 "$SCRATCH/db-root/etc/app/db-password" &&
	git -C repo revert --no-edit HEAD >/dev/null
'

test_expect_success 'plan and history, text and JSON, show digests, never the plaintext' '
	printf "hand edit %s\n" "$CANARY" >"$ROOT/etc/app/db-password" &&
	expect_exit 2 web plan --repo "$SCRATCH/repo" --exit-code &&
	expect_contains "$SCRATCH/stdout" "<redacted sha256:" &&
	no_leak "$SCRATCH/stdout" "$SCRATCH/stderr" &&
	expect_exit 2 web plan --repo "$SCRATCH/repo" --exit-code -o json &&
	expect_contains "$SCRATCH/stdout" "<redacted sha256:" &&
	no_leak "$SCRATCH/stdout" "$SCRATCH/stderr" &&
	expect_exit 0 web apply --repo "$SCRATCH/repo" &&
	no_leak "$SCRATCH/stdout" "$SCRATCH/stderr" &&
	test_cmp "$SCRATCH/plain" "$ROOT/etc/app/db-password" &&
	for o in text json; do
		expect_exit 0 dl history --state "$STATE" -o $o && no_leak "$SCRATCH/stdout" &&
		expect_exit 0 dl status --state "$STATE" -o $o && no_leak "$SCRATCH/stdout" || return 1
	done
'

test_expect_success 'the state directory holds digests only (database, cache, backups excepted)' '
	sqlite3 "$STATE/driftless.db" .dump >"$SCRATCH/dump.sql" &&
	expect_contains "$SCRATCH/dump.sql" "Secret/db-password" &&
	! no_leak "$SCRATCH/plain" >/dev/null &&
	no_leak "$SCRATCH/dump.sql" &&
	find "$STATE" -path "$STATE/backups" -prune -o -type f -print >"$SCRATCH/state-files" &&
	while read -r f; do no_leak "$f" || exit 1; done <"$SCRATCH/state-files"
'

test_expect_success 'the hand-edited plaintext that was replaced is backed up privately' '
	test -d "$STATE/backups" &&
	test "$(stat -c %a "$STATE/backups")" = 700
'

git -C repo rev-parse HEAD >"$SCRATCH/good"
bad_commit() {
	# bad_commit NAME CONTENT-FILE: the good revision with db-password's
	# ciphertext replaced
	git -C repo reset -q --hard "$(cat "$SCRATCH/good")" &&
	python3 - repo/app.yaml "$2" <<-'PY'
	import sys
	p, c = sys.argv[1], sys.argv[2]
	docs = open(p).read().split("---\n")
	body = open(c, "rb").read().decode("latin-1")
	new = ("apiVersion: driftless/v1\nkind: Secret\nmetadata: {name: db-password}\nspec:\n"
	       "  path: /etc/app/db-password\n  content: " + __import__("json").dumps(body) + "\n")
	docs = [new if "db-password" in d else d for d in docs]
	open(p, "w").write("---\n".join(docs))
	PY
	repo_commit repo "$1"
}

# rejected NAME: apply of HEAD fails, names the problem, changes nothing
rejected() {
	cp "$ROOT/etc/app/db-password" "$SCRATCH/before" &&
	test_must_fail web apply --repo "$SCRATCH/repo" &&
	expect_contains "$SCRATCH/stderr" "$1" &&
	no_leak "$SCRATCH/stdout" "$SCRATCH/stderr" &&
	test_cmp "$SCRATCH/before" "$ROOT/etc/app/db-password" &&
	expect_mode 600 "$ROOT/etc/app/db-password" &&
	sqlite3 "$STATE/driftless.db" .dump >"$SCRATCH/dump.sql" && no_leak "$SCRATCH/dump.sql"
}

# no_cipher: the error quotes no line of the ciphertext
no_cipher() {
	local line
	while read -r line; do
		case "$line" in -----*|"") continue ;; esac
		if grep -qF -e "$line" "$SCRATCH/stderr"; then
			echo "error: the ciphertext is quoted in the error: $line"
			return 1
		fi
	done <"$1"
}

test_expect_success 'a secret sealed for another host is rejected with the last good state kept' '
	printf "%s\n" "other-$CANARY" | dl secret seal -r "$(cat "$KEYS/other.pub")" >"$SCRATCH/other.age" &&
	bad_commit "for another host" "$SCRATCH/other.age" &&
	rejected "no identity matches" &&
	no_cipher "$SCRATCH/other.age" &&
	expect_contains "$SCRATCH/stderr" "app.yaml:"
'

test_expect_success 'truncated ciphertext is rejected' '
	head -c 300 "$SCRATCH/bin.age" >"$SCRATCH/trunc.age" &&
	bad_commit truncated "$SCRATCH/trunc.age" &&
	rejected "cannot decrypt"
'

test_expect_success 'one flipped byte in the header, the MAC or the payload is rejected' '
	size=$(stat -c %s "$SCRATCH/bin.age") &&
	for off in 30 $((size - 40)) $((size - 20)) $((size - 1)); do
		cp "$SCRATCH/bin.age" "$SCRATCH/flip.age" &&
		printf "\\x$(printf %x $(( ($(od -An -tu1 -j$off -N1 "$SCRATCH/bin.age") ^ 1) )))" |
			dd of="$SCRATCH/flip.age" bs=1 seek=$off conv=notrunc status=none &&
		bad_commit "flip $off" "$SCRATCH/flip.age" &&
		rejected "cannot decrypt" || return 1
	done
'

test_expect_success 'plaintext where ciphertext is required is refused without echoing it' '
	printf "%s\n" "plain-$CANARY" >"$SCRATCH/plain2" &&
	bad_commit plaintext "$SCRATCH/plain2" &&
	rejected "is not age-encrypted" &&
	test_must_fail dl validate "$SCRATCH/repo" &&
	expect_contains "$SCRATCH/stderr" "is not age-encrypted" &&
	no_leak "$SCRATCH/stderr"
'

test_expect_success 'an oversized ciphertext is refused before decrypting' '
	git -C repo reset -q --hard "$(cat "$SCRATCH/good")" &&
	{ printf "age-encryption.org/v1\n"; head -c $((65 * 1024 * 1024)) /dev/zero; } >repo/secrets/api-key.age &&
	repo_commit repo "huge" &&
	rejected "more than the" &&
	git -C repo reset -q --hard "$(cat "$SCRATCH/good")"
'

test_expect_success 'an identity readable by others is refused' '
	cp "$KEYS/web.key" "$KEYS/loose.key" && chmod 0644 "$KEYS/loose.key" &&
	printf "x" >>"$ROOT/etc/app/db-password" &&
	test_must_fail dl apply --repo "$SCRATCH/repo" --root "$ROOT" --state "$STATE" --identity "$KEYS/loose.key" &&
	expect_contains "$SCRATCH/stderr" "readable by group or others" &&
	! grep -q "AGE-SECRET-KEY" "$SCRATCH/stderr" &&
	expect_exit 0 web apply --repo "$SCRATCH/repo" &&
	test_cmp "$SCRATCH/plain" "$ROOT/etc/app/db-password"
'

test_expect_success 'the age tool can open what a host would write: its identity works with age -d' '
	printf "x\n" | age -r "$(cat "$KEYS/web.pub")" -a >"$SCRATCH/x.age" &&
	age -d -i "$KEYS/web.key" "$SCRATCH/x.age" >"$SCRATCH/x" &&
	test_cmp_text x "$SCRATCH/x"
'

test_expect_success 'policy can forbid Secrets altogether' '
	cat >"$SCRATCH/nosecret.yaml" <<-Y &&
	policy: {kinds: [File, Directory, Symlink]}
	Y
	test_must_fail web plan --repo "$SCRATCH/repo" -c "$SCRATCH/nosecret.yaml" &&
	expect_contains "$SCRATCH/stderr" "Secret"
'

test_expect_success 'capture never writes a secret into Git; drift shows only digests' '
	printf "%s hand\n" "$CANARY" >"$ROOT/etc/app/db-password" &&
	expect_exit 0 dl drift --state "$STATE" --identity "$KEYS/web.key" &&
	expect_contains "$SCRATCH/stdout" "Secret/db-password" &&
	expect_contains "$SCRATCH/stdout" "<redacted sha256:" &&
	no_leak "$SCRATCH/stdout" "$SCRATCH/stderr" &&
	expect_exit 0 dl drift --state "$STATE" --identity "$KEYS/web.key" -o json &&
	no_leak "$SCRATCH/stdout" &&
	git clone -q repo "$SCRATCH/clone" &&
	test_must_fail dl capture --state "$STATE" --identity "$KEYS/web.key" --into "$SCRATCH/clone" &&
	expect_contains "$SCRATCH/stderr" "plaintext never goes to Git" &&
	no_leak "$SCRATCH/stderr" "$SCRATCH/clone" &&
	test "$(git -C "$SCRATCH/clone" rev-list --count HEAD)" = "$(git -C repo rev-list --count HEAD)" &&
	expect_exit 0 dl report --state "$STATE" --since 1d -o json && no_leak "$SCRATCH/stdout" &&
	expect_exit 0 web apply --repo "$SCRATCH/repo" &&
	test_cmp "$SCRATCH/plain" "$ROOT/etc/app/db-password"
'

AGENT_LOG=$SCRATCH/agent.log
RLOG=$SCRATCH/received.jsonl
"$DL_PYTHON" "$DL_SRCROOT/t/helpers/notify-receiver.py" --port-file "$SCRATCH/recv.port" \
	--log "$RLOG" >"$SCRATCH/receiver.log" 2>&1 &
register_pid $!
n=0
while ! [ -s "$SCRATCH/recv.port" ] && [ $n -lt 100 ]; do sleep 0.1; n=$((n + 1)); done
[ -s "$SCRATCH/recv.port" ] || bail_out "the notification receiver did not start"
PORT=$(free_port)
write_file "$SCRATCH/agent.yaml" <<Y
listen: 127.0.0.1:$PORT
notify:
  - {url: "http://127.0.0.1:$(cat "$SCRATCH/recv.port")/slack", format: slack}
  - {url: "http://127.0.0.1:$(cat "$SCRATCH/recv.port")/json", format: json}
Y
test_expect_success 'the agent repairs drift of a secret and logs only digests' '
	git clone -q --bare repo "$SCRATCH/srv.git" || return 1
	"$DRIFTLESS" agent -c "$SCRATCH/agent.yaml" --repo "$SCRATCH/srv.git" --root "$ROOT" --state "$STATE" \
		--identity "$KEYS/web.key" --interval 1s >>"$AGENT_LOG" 2>&1 &
	register_pid $! &&
	wait_for 10 grep -q "agent: started" "$AGENT_LOG" &&
	sleep 1 &&
	printf "%s drifted\n" "$CANARY" >"$ROOT/etc/app/db-password" &&
	wait_for 5 cmp -s "$SCRATCH/plain" "$ROOT/etc/app/db-password" &&
	wait_for 5 grep -q "Secret/db-password: drift repaired" "$AGENT_LOG" &&
	expect_mode 600 "$ROOT/etc/app/db-password" &&
	no_leak "$AGENT_LOG" &&
	expect_exit 0 dl status --state "$STATE" -o json && no_leak "$SCRATCH/stdout" &&
	sqlite3 "$STATE/driftless.db" .dump >"$SCRATCH/dump.sql" && no_leak "$SCRATCH/dump.sql"
'

test_expect_success 'after the agent has idled and freed its pass, a secret is still repaired' '
	sleep 6 &&
	printf "%s idle\n" "$CANARY" >"$ROOT/etc/app/db-password" &&
	wait_for 5 cmp -s "$SCRATCH/plain" "$ROOT/etc/app/db-password" &&
	wait_for 5 test "$(grep -c "Secret/db-password: drift repaired" "$AGENT_LOG")" -ge 2 &&
	expect_mode 600 "$ROOT/etc/app/db-password" &&
	no_leak "$AGENT_LOG"
'

test_expect_success 'the HTTP surface and notifications never show the secret' '
	for u in / /api/v1/status /api/v1/resources /api/v1/history /metrics /readyz; do
		curl -s "http://127.0.0.1:$PORT$u" >"$SCRATCH/http.out" &&
		test -s "$SCRATCH/http.out" && no_leak "$SCRATCH/http.out" || return 1
	done &&
	wait_for 10 grep -q drift "$RLOG" &&
	no_leak "$RLOG" "$AGENT_LOG"
'

test_done
