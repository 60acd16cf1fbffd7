#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Push webhooks: a signed delivery triggers a fetch of the configured remote
# and ref only; bad or missing signatures, replays, other providers' paths,
# oversized bodies and floods do not cause extra fetches. Fetches are
# counted in the log of a `git daemon --verbose` (one "Request upload-pack"
# per connection: libgit2 makes one for a fetch that finds nothing new, two
# for one that downloads a new commit).
# shellcheck disable=SC2016
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
mkdir -p "$ROOT/srv" "$SCRATCH/git"
git clone -q --bare repo "$SCRATCH/git/srv.git"
git -C repo remote add origin "$SCRATCH/git/srv.git"
GD_LOG=$SCRATCH/git-daemon-verbose.log
for _ in 1 2 3; do
	gport=$(free_port)
	"$DL_GIT_EXEC_PATH/git-daemon" --reuseaddr --export-all --verbose --base-path="$SCRATCH/git" \
		--listen=127.0.0.1 --port="$gport" >>"$GD_LOG" 2>&1 &
	register_pid $!
	n=0
	while [ $n -lt 50 ] && ! dl_port_open "$gport"; do sleep 0.1; n=$((n + 1)); done
	dl_port_open "$gport" && break
done
dl_port_open "$gport" || bail_out "cannot start git daemon"
GIT_URL=git://127.0.0.1:$gport/srv.git

SECRET="hook-$$-It-is-a-secret-to-everybody"
printf '%s\n' "$SECRET" >"$SCRATCH/hook.secret"
chmod 600 "$SCRATCH/hook.secret"
PORT=$(free_port)
URL=http://127.0.0.1:$PORT
AGENT_LOG=$SCRATCH/agent.log

# agent_start PROVIDER [YAML LINES]: the agent with a webhook receiver for
# PROVIDER; polls only every hour, so every fetch here comes from a hook
agent_start() {
	{
		printf 'webhook: {provider: %s, secretFile: %s}\n' "$1" "$SCRATCH/hook.secret"
	} >"$SCRATCH/agent.yaml"
	"$DRIFTLESS" agent -c "$SCRATCH/agent.yaml" --repo "$GIT_URL" --root "$ROOT" \
		--state "$STATE" --interval 1h --listen "127.0.0.1:$PORT" >>"$AGENT_LOG" 2>&1 &
	echo $! >"$SCRATCH/agent.pid"
	register_pid "$(cat "$SCRATCH/agent.pid")"
}
agent_pid() { cat "$SCRATCH/agent.pid"; }
agent_stop() {
	kill -TERM "$(agent_pid)" 2>/dev/null
	timeout 10 tail --pid="$(agent_pid)" -f /dev/null
}
push() { git -C repo push -q origin main; }
log_has() { grep -qF -e "$1" "$AGENT_LOG"; }
content_is() { test "$(cat "$1" 2>/dev/null)" = "$2"; }
# fetches: connections the Git server saw
fetches() { grep -c "Request upload-pack for '/srv.git'" "$GD_LOG"; }
healthy() { test "$(curl -s -o /dev/null -w '%{http_code}' "$URL/healthz")" = 200; }
# started: answering, and the fetch every start makes has ended (counting
# fetches before that races with it)
started() {
	healthy &&
	curl -s "$URL/metrics" | grep -q '^driftless_fetches_total{result="ok"} [1-9]'
}
sig() { printf '%s' "$1" | openssl dgst -sha256 -hmac "$SECRET" | sed 's/^.*= //'; }
# hook PATH BODY [CURL ARGS]: POST BODY as JSON; body into $SCRATCH/body,
# prints the status code
hook() {
	local path=$1 body=$2
	shift 2
	curl -s -o "$SCRATCH/body" -w '%{http_code}' --max-time 10 -X POST \
		-H "Content-Type: application/json" --data-binary "$body" "$@" "$URL$path"
}
expect_code() {
	local want=$1 got
	shift
	got=$(hook "$@")
	if [ "$got" != "$want" ]; then
		echo "error: expected HTTP $want, got $got for $*"
		cat "$SCRATCH/body"
		return 1
	fi
}
# settle: wait until the Git server has seen no request for 2 s
settle() {
	local last=-1 same=0 n
	while [ $same -lt 4 ]; do
		n=$(wc -l <"$GD_LOG")
		if [ "$n" = "$last" ]; then same=$((same + 1)); else same=0; fi
		last=$n
		sleep 0.5
	done
}
# still N: the fetch count stays at N for a while
still() { sleep "${2:-1}"; test "$(fetches)" -eq "$1"; }
# shellcheck disable=SC2034 # used in the test bodies
BODY='{"ref":"refs/heads/other","after":"1111111111111111111111111111111111111111","repository":{"clone_url":"https://evil.example/x.git"}}'

test_expect_success 'a webhook without a secret file, and not insecure, is refused at start' '
	printf "webhook: {provider: github}\n" >nosecret.yaml &&
	test_must_fail dl agent -c nosecret.yaml --repo "$GIT_URL" --root "$ROOT" --state "$STATE" &&
	expect_contains stderr "nosecret.yaml:1:10: '\''webhook.secretFile'\'' is required; set '\''webhook.insecure: true'\''" &&
	printf "webhook: {provider: bitbucket, secretFile: /x}\n" >bad.yaml &&
	test_must_fail dl agent -c bad.yaml --repo "$GIT_URL" --root "$ROOT" --state "$STATE" &&
	expect_contains stderr "'\''webhook.provider'\'' must be github, gitlab, gitea or generic" &&
	: >"$SCRATCH/empty.secret" && chmod 600 "$SCRATCH/empty.secret" &&
	printf "webhook: {provider: github, secretFile: %s}\n" "$SCRATCH/empty.secret" >empty.yaml &&
	test_must_fail dl agent -c empty.yaml --repo "$GIT_URL" --root "$ROOT" --state "$STATE" &&
	expect_contains stderr "'\''webhook.secretFile'\'': '\''$SCRATCH/empty.secret'\'' is empty"
'

test_expect_success 'the agent starts with a GitHub receiver and applies the revision' '
	agent_start github &&
	wait_for 10 content_is "$ROOT/srv/app.conf" gen1 &&
	wait_for 5 healthy &&
	log_has "http: listening on 127.0.0.1:$PORT, webhook github"
'

test_expect_success 'a validly signed delivery triggers a fetch that applies the new commit' '
	sed -i s/gen1/gen2/ repo/app.yaml && repo_commit repo v2 && push &&
	n=$(fetches) &&
	expect_code 202 /hooks/github "$BODY" -H "X-Hub-Signature-256: sha256=$(sig "$BODY")" \
		-H "X-GitHub-Event: push" -H "X-GitHub-Delivery: d-1" &&
	wait_for 10 content_is "$ROOT/srv/app.conf" gen2 &&
	settle &&
	test "$(fetches)" -ge $((n + 1)) && test "$(fetches)" -le $((n + 2)) &&
	curl -s "$URL/metrics" | grep -qx "driftless_fetches_total{result=\"ok\"} 2" &&
	log_has "webhook github delivery d-1 accepted (secret 1 of 1)"
'

test_expect_success 'the payload never steers: the configured ref is fetched, not the one in the body' '
	expect_exit 0 dl status --state "$STATE" -o json &&
	"$DL_PYTHON" -c "
import json,sys
d=json.load(open(sys.argv[1]))
assert d[\"lastAppliedRevision\"]==sys.argv[2], d
" stdout "$(repo_head repo)" &&
	! grep -q -e evil.example -e refs/heads/other "$GD_LOG" "$AGENT_LOG"
'

test_expect_success 'bad, missing, sha1-only or wrong-secret signatures are 401 and fetch nothing' '
	sleep 1.1 &&
	n=$(fetches) &&
	expect_code 401 /hooks/github "$BODY" -H "X-GitHub-Delivery: d-2" &&
	expect_code 401 /hooks/github "$BODY" -H "X-Hub-Signature: sha1=0123456789012345678901234567890123456789" &&
	good=$(sig "$BODY") &&
	expect_code 401 /hooks/github "$BODY" -H "X-Hub-Signature-256: sha256=${good%?}" &&
	expect_code 401 /hooks/github "$BODY" -H "X-Hub-Signature-256: $good" &&
	expect_code 401 /hooks/github "$BODY " -H "X-Hub-Signature-256: sha256=$good" &&
	other=$(printf "%s" "$BODY" | openssl dgst -sha256 -hmac "not-$SECRET" | sed "s/^.*= //") &&
	expect_code 401 /hooks/github "$BODY" -H "X-Hub-Signature-256: sha256=$other" &&
	expect_contains body "{\"error\":\"unauthorized\"}" &&
	still "$n" &&
	log_has "refused: malformed signature" &&
	log_has "refused: signature or token does not match"
'

test_expect_success 'a replayed delivery id is answered but fetches nothing' '
	n=$(fetches) &&
	expect_code 200 /hooks/github "$BODY" -H "X-Hub-Signature-256: sha256=$(sig "$BODY")" -H "X-GitHub-Delivery: d-1" &&
	expect_contains body duplicate &&
	still "$n" &&
	log_has "delivery d-1 was seen before; ignored"
'

test_expect_success 'a ping is answered and fetches nothing' '
	n=$(fetches) &&
	expect_code 200 /hooks/github "{}" -H "X-Hub-Signature-256: sha256=$(sig "{}")" -H "X-GitHub-Event: ping" &&
	expect_contains body pong &&
	still "$n"
'

test_expect_success 'another provider'\''s path is 404 (the provider is configured, never sniffed)' '
	expect_code 404 /hooks/gitlab "$BODY" -H "X-Gitlab-Token: $SECRET" &&
	expect_code 404 /hooks/gitea "$BODY" -H "X-Gitea-Signature: $(sig "$BODY")" &&
	expect_code 404 /hooks/generic "$BODY" -H "X-Signature-256: sha256=$(sig "$BODY")" &&
	expect_code 404 /hooks/bitbucket "$BODY"
'

test_expect_success 'limits come before authentication: size, method, content type' '
	n=$(fetches) &&
	"$DL_PYTHON" "$DL_SRCROOT/t/helpers/http-probe.py" early "$PORT" /hooks/github \
		"Content-Type: application/json" "X-Hub-Signature-256: sha256=$(sig "$BODY")" >out &&
	cat out && test "$(cut -d" " -f1 out)" = 413 &&
	head -c 1048577 /dev/zero >big &&
	test "$(curl -s -o /dev/null -w "%{http_code}" -X POST -H "Content-Type: application/json" \
		-H "X-Hub-Signature-256: sha256=$(openssl dgst -sha256 -hmac "$SECRET" big | sed "s/^.*= //")" \
		--data-binary @big "$URL/hooks/github")" = 413 &&
	test "$(curl -s -o /dev/null -w "%{http_code}" "$URL/hooks/github")" = 405 &&
	test "$(curl -s -o /dev/null -w "%{http_code}" -X POST -H "Content-Type: text/plain" \
		-H "X-Hub-Signature-256: sha256=$(sig "$BODY")" --data-binary "$BODY" "$URL/hooks/github")" = 415 &&
	still "$n" &&
	curl -s "$URL/metrics" >metrics &&
	grep -qx "driftless_webhook_deliveries_total{result=\"unauthorized\"} [1-9][0-9]*" metrics &&
	grep -qx "driftless_webhook_deliveries_total{result=\"duplicate\"} 1" metrics &&
	grep -qx "driftless_webhook_deliveries_total{result=\"rejected\"} 4" metrics
'

test_expect_success 'a flood of 100 valid deliveries causes at most 2 fetches' '
	sleep 1.1 &&
	n=$(fetches) &&
	"$DL_PYTHON" "$DL_SRCROOT/t/helpers/http-probe.py" flood "$PORT" "$SECRET" 100 8 >out &&
	cat out &&
	grep -qx "202 100" out &&
	sleep 1.5 && settle &&
	after=$(fetches) &&
	echo "fetches: $n before, $after after" &&
	test "$after" -gt "$n" && test "$after" -le $((n + 2)) &&
	curl -s "$URL/metrics" | grep "driftless_fetches_total" &&
	healthy
'

test_expect_success 'the secret never appears in the log' '
	expect_not_contains "$AGENT_LOG" "$SECRET" &&
	agent_stop
'

test_expect_success 'GitLab: the token header is compared with the secret' '
	agent_start gitlab &&
	wait_for 5 started &&
	n=$(fetches) &&
	expect_code 401 /hooks/gitlab "$BODY" -H "X-Gitlab-Token: ${SECRET%?}x" &&
	expect_code 401 /hooks/gitlab "$BODY" -H "X-Gitlab-Token: $SECRET-" &&
	expect_code 404 /hooks/github "$BODY" -H "X-Hub-Signature-256: sha256=$(sig "$BODY")" &&
	still "$n" 0.5 &&
	sed -i s/gen2/gen3/ repo/app.yaml && repo_commit repo v3 && push &&
	expect_code 202 /hooks/gitlab "$BODY" -H "X-Gitlab-Token: $SECRET" -H "X-Gitlab-Event-UUID: u-1" &&
	wait_for 10 content_is "$ROOT/srv/app.conf" gen3 &&
	expect_code 200 /hooks/gitlab "$BODY" -H "X-Gitlab-Token: $SECRET" -H "X-Gitlab-Event-UUID: u-1" &&
	agent_stop
'

test_expect_success 'Gitea/Forgejo: bare hex; generic: sha256= in X-Signature-256' '
	agent_start gitea &&
	wait_for 5 healthy &&
	sed -i s/gen3/gen4/ repo/app.yaml && repo_commit repo v4 && push &&
	expect_code 401 /hooks/gitea "$BODY" -H "X-Gitea-Signature: sha256=$(sig "$BODY")" &&
	expect_code 202 /hooks/gitea "$BODY" -H "X-Gitea-Signature: $(sig "$BODY")" -H "X-Gitea-Delivery: g-1" &&
	wait_for 10 content_is "$ROOT/srv/app.conf" gen4 &&
	agent_stop &&
	agent_start generic &&
	wait_for 5 healthy &&
	sed -i s/gen4/gen5/ repo/app.yaml && repo_commit repo v5 && push &&
	expect_code 401 /hooks/generic "$BODY" -H "X-Signature-256: $(sig "$BODY")" &&
	expect_code 202 /hooks/generic "$BODY" -H "X-Signature-256: sha256=$(sig "$BODY")" -H "X-Delivery-Id: x-1" &&
	wait_for 10 content_is "$ROOT/srv/app.conf" gen5 &&
	agent_stop
'

test_expect_success 'insecure: true accepts unsigned deliveries, and says so at start' '
	printf "webhook: {provider: github, insecure: true}\n" >"$SCRATCH/insecure.yaml" &&
	{ "$DRIFTLESS" agent -c "$SCRATCH/insecure.yaml" --repo "$GIT_URL" --root "$ROOT" \
		--state "$STATE" --interval 1h --listen "127.0.0.1:$PORT" >>"$AGENT_LOG" 2>&1 & } &&
	echo $! >"$SCRATCH/agent.pid" && register_pid "$(agent_pid)" &&
	wait_for 5 healthy &&
	log_has "'\''webhook.insecure'\'' is set: anyone who can reach" &&
	expect_code 202 /hooks/github "$BODY" &&
	agent_stop
'

test_done
