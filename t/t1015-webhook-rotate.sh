#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Secrets rotated by a reload (HARDENING C02 b): after the webhook secret
# file, the config or the API token file changes and the agent gets SIGHUP,
# a delivery signed with the old secret is refused (401) and one signed
# with the new secret is accepted (202); the old API token is refused and
# the new one accepted. Both secrets are accepted while the file holds both
# (a rotation window). A file the agent must refuse (mode 0644, empty)
# leaves the secrets in force, so a bad edit never locks anyone out.
# shellcheck disable=SC2016
# shellcheck disable=SC2317 # helpers are called from the eval'ed bodies
# shellcheck disable=SC2034 # variables are read by the eval'ed bodies
. "$(dirname "$0")/lib.sh"

command -v curl >/dev/null || skip_all "curl is needed"

repo_init repo
write_file repo/app.yaml <<'Y'
apiVersion: driftless/v1
kind: File
metadata: {name: conf}
spec: {path: /srv/app.conf, content: "gen1\n"}
Y
repo_commit repo v1
mkdir -p "$ROOT/srv"

OLD="old-$$-hook-secret"
NEW="new-$$-hook-secret"
OTHER="other-$$-hook-secret"
OLD_TOKEN="old-$$-api-token"
NEW_TOKEN="new-$$-api-token"
# put FILE CONTENT...: replace FILE (mode 0600) with one line per CONTENT
put() {
	local f=$1
	shift
	printf '%s\n' "$@" >"$f.tmp" && chmod 600 "$f.tmp" && mv -f "$f.tmp" "$f"
}
put "$SCRATCH/hook.secret" "$OLD"
put "$SCRATCH/other.secret" "$OTHER"
put "$SCRATCH/api.token" "$OLD_TOKEN"
config() { # SECRET_FILE
	printf 'webhook: {provider: generic, secretFile: %s}\napiTokenFile: %s\n' \
		"$1" "$SCRATCH/api.token" >"$SCRATCH/agent.yaml"
}
config "$SCRATCH/hook.secret"

PORT=$(free_port)
URL=http://127.0.0.1:$PORT
AGENT_LOG=$SCRATCH/agent.log
"$DRIFTLESS" agent -c "$SCRATCH/agent.yaml" --repo "$SCRATCH/repo" --root "$ROOT" \
	--state "$STATE" --interval 1h --listen "127.0.0.1:$PORT" >>"$AGENT_LOG" 2>&1 &
AGENT_PID=$!
register_pid "$AGENT_PID"

log_has() { grep -qF -e "$1" "$AGENT_LOG"; }
reloads() { grep -c "agent: configuration reloaded" "$AGENT_LOG"; }
reloads_past() { test "$(reloads)" -gt "$1"; }
healthy() { test "$(curl -s -o /dev/null -w '%{http_code}' "$URL/healthz")" = 200; }
BODY='{"ref":"refs/heads/main"}'
DELIVERY=0
# hook SECRET: a delivery signed with SECRET; prints the status code
hook() {
	local s
	DELIVERY=$((DELIVERY + 1))
	s=$(printf '%s' "$BODY" | openssl dgst -sha256 -hmac "$1" | sed 's/^.*= //')
	curl -s -o /dev/null -w '%{http_code}' --max-time 10 -X POST \
		-H "Content-Type: application/json" -H "X-Delivery-Id: rot-$$-$RANDOM-$DELIVERY" \
		-H "X-Signature-256: sha256=$s" --data-binary "$BODY" "$URL/hooks/generic"
}
# sync TOKEN: POST /api/v1/sync with TOKEN; prints the status code
sync() {
	curl -s -o /dev/null -w '%{http_code}' --max-time 10 -X POST \
		-H "Authorization: Bearer $1" "$URL/api/v1/sync"
}
# expect CODE CMD...: CMD prints CODE
expect() {
	local want=$1 got
	shift
	got=$("$@")
	[ "$got" = "$want" ] || { echo "error: $* answered $got, expected $want"; return 1; }
}
# hup: SIGHUP, and wait until the agent has reloaded
hup() {
	local n
	n=$(reloads)
	kill -HUP "$AGENT_PID" &&
		wait_for 20 reloads_past "$n" &&
		wait_for 5 healthy
}

test_expect_success 'the agent starts with the old secret and the old token' '
	wait_for 20 test -f "$ROOT/srv/app.conf" &&
	wait_for 10 healthy &&
	expect 202 hook "$OLD" &&
	expect 401 hook "$NEW" &&
	expect 202 sync "$OLD_TOKEN" &&
	expect 401 sync "$NEW_TOKEN"
'

test_expect_success 'C02(b): a rotation window: both secrets in the file, both accepted' '
	put "$SCRATCH/hook.secret" "$NEW" "$OLD" &&
	hup &&
	expect 202 hook "$NEW" &&
	expect 202 hook "$OLD" &&
	log_has "http: credentials read again: 2 webhook secret(s), API token set"
'

test_expect_success 'C02(b): the secret file and the token file rotated, SIGHUP: old refused, new accepted' '
	put "$SCRATCH/hook.secret" "$NEW" &&
	put "$SCRATCH/api.token" "$NEW_TOKEN" &&
	hup &&
	expect 401 hook "$OLD" &&
	expect 202 hook "$NEW" &&
	expect 401 sync "$OLD_TOKEN" &&
	expect 202 sync "$NEW_TOKEN" &&
	log_has "http: credentials read again: 1 webhook secret(s), API token set"
'

test_expect_success 'C02(b): the config names another secret file, SIGHUP: only that one is accepted' '
	config "$SCRATCH/other.secret" &&
	hup &&
	expect 401 hook "$NEW" &&
	expect 401 hook "$OLD" &&
	expect 202 hook "$OTHER" &&
	expect 202 sync "$NEW_TOKEN"
'

test_expect_success 'C02(b): a secret file that must be refused leaves the secrets in force' '
	put "$SCRATCH/other.secret" "$NEW" && chmod 644 "$SCRATCH/other.secret" &&
	hup &&
	log_has "agent: webhook secrets and API token not read again: '\''webhook.secretFile'\'': '\''$SCRATCH/other.secret'\'' is accessible by group or others" &&
	expect 202 hook "$OTHER" &&
	expect 401 hook "$NEW" &&
	: >"$SCRATCH/empty.token" && chmod 600 "$SCRATCH/empty.token" &&
	put "$SCRATCH/other.secret" "$NEW" &&
	sed -i "s|apiTokenFile: .*|apiTokenFile: $SCRATCH/empty.token|" "$SCRATCH/agent.yaml" &&
	hup &&
	log_has "agent: webhook secrets and API token not read again: '\''apiTokenFile'\'': '\''$SCRATCH/empty.token'\'' is empty" &&
	expect 202 hook "$OTHER" &&
	expect 401 hook "$NEW" &&
	expect 202 sync "$NEW_TOKEN"
'

test_expect_success 'no secret or token reaches the log' '
	for s in "$OLD" "$NEW" "$OTHER" "$OLD_TOKEN" "$NEW_TOKEN"; do
		expect_not_contains "$AGENT_LOG" "$s" || exit 1
	done
'

test_expect_success 'the agent stops cleanly' '
	kill -TERM $AGENT_PID &&
	timeout 10 tail --pid=$AGENT_PID -f /dev/null &&
	log_has "agent: stopping"
'

test_done
