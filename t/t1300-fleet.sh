#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Fleets through a real etcd on loopback: three agents (own --root and
# --state each) on one bare repository register and publish, a new commit
# rolls out one host at a time, a failing host halts the rollout until the
# halt is cleared, a killed agent disappears and frees its slot, agents
# keep repairing drift while etcd is down and come back with it; TLS with
# client certificates and etcd authentication.
# shellcheck disable=SC2016
. "$(dirname "$0")/lib.sh"

if ! command -v etcd >/dev/null || ! command -v etcdctl >/dev/null; then
	skip_all "etcd and etcdctl are needed (Debian: etcd-server, etcd-client)"
fi
export ETCDCTL_API=3

ETCD_CPORT=$(free_port) || bail_out "no free port"
ETCD_PPORT=$(free_port) || bail_out "no free port"
ETCD_URL=http://127.0.0.1:$ETCD_CPORT
# start_etcd: (re)start the test's etcd on its ports and data directory
start_etcd() {
	etcd --name t1300 --data-dir "$SCRATCH/etcd" \
		--listen-client-urls "$ETCD_URL" --advertise-client-urls "$ETCD_URL" \
		--listen-peer-urls "http://127.0.0.1:$ETCD_PPORT" \
		--initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PPORT" \
		--initial-cluster "t1300=http://127.0.0.1:$ETCD_PPORT" \
		>>"$SCRATCH/etcd.log" 2>&1 &
	ETCD_PID=$!
	echo "$ETCD_PID" >"$SCRATCH/etcd.pid"
	register_pid "$ETCD_PID"
	wait_for 20 ectl endpoint health
}
ectl() { timeout 10 etcdctl --endpoints "$ETCD_URL" "$@"; }
start_etcd || bail_out "etcd did not start; log: $(tail -5 "$SCRATCH/etcd.log")"

repo_init repo
write_file repo/app.yaml <<'Y'
apiVersion: driftless/v1
kind: Directory
metadata: {name: app}
spec: {path: /srv/app, mode: "0755"}
---
apiVersion: driftless/v1
kind: File
metadata: {name: conf}
spec: {path: /srv/app/app.conf, content: "gen1\n", mode: "0644"}
Y
repo_commit repo v1
git clone -q --bare repo "$SCRATCH/srv.git"
git -C repo remote add origin "$SCRATCH/srv.git"
push() { git -C repo push -q origin main; }
bump() { sed -i "s/gen[0-9]*/$1/" repo/app.yaml && repo_commit repo "$1" && push; }

# write_config NAME [SETTLE]: $SCRATCH/NAME.yaml, a member of group web
write_config() {
	cat >"$SCRATCH/$1.yaml" <<EOF
fleet:
  endpoints: [$ETCD_URL]
  name: $1
  group: web
  leaseTTL: 3s
  timeout: 2s
  rollout: {maxParallel: 1, settle: ${2:-1s}}
EOF
}
# agent_start NAME: an agent on its own root and state, log in $SCRATCH/NAME.log
agent_start() {
	mkdir -p "$SCRATCH/$1/root/srv"
	"$DRIFTLESS" agent -c "$SCRATCH/$1.yaml" --repo "$SCRATCH/srv.git" \
		--root "$SCRATCH/$1/root" --state "$SCRATCH/$1/state" --interval 1s \
		>>"$SCRATCH/$1.log" 2>&1 &
	echo $! >"$SCRATCH/$1.pid"
	register_pid $!
}
pid_of() { cat "$SCRATCH/$1.pid"; }
log_has() { grep -qF -e "$2" "$SCRATCH/$1.log"; }
content_is() { test "$(cat "$SCRATCH/$1/root/srv/app/app.conf" 2>/dev/null)" = "$2"; }

# fleet_json: `fleet status -o json` into $SCRATCH/fleet.json
fleet_json() {
	"$DRIFTLESS" fleet status -c "$SCRATCH/h1.yaml" -o json >"$SCRATCH/fleet.json"
}
# on_rev REV HOST...: each HOST is registered and has applied REV
on_rev() {
	local rev=$1
	shift
	fleet_json && python3 - "$SCRATCH/fleet.json" "$rev" "$@" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
hosts = {h["name"]: h for h in d["hosts"]}
for name in sys.argv[3:]:
    assert name in hosts and hosts[name]["applied"] == sys.argv[2], (name, hosts.get(name))
PY
}
# start_tls_etcd: a second etcd, https with client certificates only
# (certificates from $SCRATCH/ca; etcd's JSON gateway connects to its own
# gRPC server with the server certificate, which therefore needs the
# clientAuth usage too); sets TLS_PORT
start_tls_etcd() {
	local pport
	TLS_PORT=$(free_port) && pport=$(free_port) || return 1
	etcd --name tls --data-dir "$SCRATCH/etcd-tls" \
		--listen-client-urls "https://127.0.0.1:$TLS_PORT" \
		--advertise-client-urls "https://127.0.0.1:$TLS_PORT" \
		--listen-peer-urls "http://127.0.0.1:$pport" --initial-advertise-peer-urls "http://127.0.0.1:$pport" \
		--initial-cluster "tls=http://127.0.0.1:$pport" \
		--cert-file "$SCRATCH/ca/etcd.pem" --key-file "$SCRATCH/ca/etcd.key" \
		--trusted-ca-file "$SCRATCH/ca/ca.pem" --client-cert-auth >>"$SCRATCH/etcd-tls.log" 2>&1 &
	register_pid $!
}
tls() {
	timeout 10 etcdctl --endpoints "https://127.0.0.1:$TLS_PORT" --cacert "$SCRATCH/ca/ca.pem" \
		--cert "$SCRATCH/ca/client.pem" --key "$SCRATCH/ca/client.key" "$@"
}
# all_idle REV: fleet status shows h1..h3 idle and healthy on REV
all_idle() {
	expect_exit 0 dl fleet status -c "$SCRATCH/h1.yaml" &&
		for h in h1 h2 h3; do grep -q "^$h  *web  *idle  *ok  *${1:0:12} " "$SCRATCH/stdout" || return 1; done
}
halt_json() {
	ectl get /driftless/rollout/web/halt --print-value-only >"$SCRATCH/halt.json" &&
		test -s "$SCRATCH/halt.json"
}
host_gone() { fleet_json && ! grep -q "\"name\":\"$1\"" "$SCRATCH/fleet.json"; }

# watch_slots: record every change of the group's rollout keys, in etcd's order
watch_slots() {
	timeout 300 etcdctl --endpoints "$ETCD_URL" watch --prefix /driftless/rollout/web/ \
		>"$SCRATCH/watch.log" 2>&1 &
	echo $! >"$SCRATCH/watch.pid"
	register_pid $!
	sleep 0.5
}
# slots_held_once HOSTS: in the watch, no two slots were held at once and
# each of HOSTS took one for REV
slots_held_once() {
	python3 - "$SCRATCH/watch.log" "$@" <<'PY'
import json, sys
lines = open(sys.argv[1]).read().split("\n")
rev, want = sys.argv[2], set(sys.argv[3:])
held, took, i = {}, [], 0
while i < len(lines):
    if lines[i] == "PUT" and "/slot/" in lines[i + 1]:
        v = json.loads(lines[i + 2])
        held[lines[i + 1]] = v["host"]
        assert len(held) <= 1, ("two slots at once", held)
        if v["revision"] == rev:
            took.append(v["host"])
        i += 3
    elif lines[i] == "DELETE":
        held.pop(lines[i + 1], None)
        i += 2
    else:
        i += 1
assert want <= set(took), (took, want)
assert len(took) == len(set(took)), ("a host took two slots", took)
print("slot order:", took)
PY
}

for h in h1 h2 h3; do write_config $h; done

# h2_published_idle: h2's status in etcd, once its settle time is over
h2_published_idle() {
	ectl get /driftless/hosts/web/h2 --print-value-only >"$SCRATCH/h2.json" &&
	python3 -c "
import json,sys
d=json.load(open(sys.argv[1]))
assert d[\"name\"]==\"h2\" and d[\"group\"]==\"web\" and d[\"health\"]==\"ok\", d
assert d[\"result\"]==\"applied\" and d[\"resources\"]==2 and d[\"state\"]==\"idle\", d
" "$SCRATCH/h2.json"
}

test_expect_success 'three agents register and publish their status' '
	agent_start h1 && agent_start h2 && agent_start h3 &&
	v1=$(repo_head repo) &&
	wait_for 30 on_rev "$v1" h1 h2 h3 &&
	content_is h1 gen1 && content_is h2 gen1 && content_is h3 gen1 &&
	log_has h1 "fleet: registered in etcd at $ETCD_URL as web/h1" &&
	wait_for 10 h2_published_idle
'

test_expect_success 'fleet status lists the hosts with their revisions' '
	v1=$(repo_head repo) &&
	wait_for 10 all_idle "$v1" &&
	expect_contains "$SCRATCH/stdout" "group web: 3 hosts, no rollout in progress"
'

test_expect_success 'fleet status refuses a config without fleet, and bad fleet settings with FILE:LINE:COL' '
	echo "prune: true" >"$SCRATCH/plain.yaml" &&
	test_must_fail dl fleet status -c "$SCRATCH/plain.yaml" &&
	expect_contains "$SCRATCH/stderr" "no fleet configured" &&
	printf "%s\n" "fleet:" "  endpoints: [ftp://x]" "  group: a/b" "  maxUnavailable: 2" \
		"  rollout: {maxParallel: 0}" "  auth: {username: u}" >"$SCRATCH/bad.yaml" &&
	test_must_fail dl fleet status -c "$SCRATCH/bad.yaml" &&
	expect_contains "$SCRATCH/stderr" "bad.yaml:2:15: '\''fleet.endpoints'\'' entries must be" &&
	expect_contains "$SCRATCH/stderr" "bad.yaml:3:10: '\''fleet.group'\'' must be" &&
	expect_contains "$SCRATCH/stderr" "bad.yaml:4:3: unknown field '\''fleet.maxUnavailable'\''" &&
	expect_contains "$SCRATCH/stderr" "bad.yaml:5:26: '\''fleet.rollout.maxParallel'\''" &&
	expect_contains "$SCRATCH/stderr" "bad.yaml:6:9: '\''fleet.auth'\'' needs" &&
	expect_exit 64 dl fleet &&
	expect_exit 64 dl fleet frobnicate
'

test_expect_success 'with maxParallel 1 a new commit rolls out one host at a time' '
	watch_slots &&
	bump gen2 && v2=$(repo_head repo) &&
	wait_for 40 on_rev "$v2" h1 h2 h3 &&
	content_is h1 gen2 && content_is h2 gen2 && content_is h3 gen2 &&
	slots_held_once "$v2" h1 h2 h3 &&
	for h in h1 h2 h3; do
		test "$(grep -c "took rollout slot 0 of 1 in group web for revision ${v2:0:12}" "$SCRATCH/$h.log")" = 1 || exit 1
	done
'

test_expect_success 'a host that fails the new revision halts the rollout for the others' '
	for h in h1 h2 h3; do echo "not ours" >"$SCRATCH/$h/root/srv/app/new.conf"; done &&
	cat >>repo/app.yaml <<-\Y &&
	---
	apiVersion: driftless/v1
	kind: File
	metadata: {name: new}
	spec: {path: /srv/app/new.conf, content: "new\n"}
	Y
	bump gen3 && v3=$(repo_head repo) && v2=$(git -C repo rev-parse HEAD~1) &&
	wait_for 30 halt_json &&
	first=$(python3 -c "import json,sys; d=json.load(open(sys.argv[1])); assert d[\"revision\"]==sys.argv[2], d; print(d[\"host\"])" "$SCRATCH/halt.json" "$v3") &&
	echo "$first" >"$SCRATCH/first" &&
	others=$(printf "%s\n" h1 h2 h3 | grep -vx "$first") &&
	for h in $others; do wait_for 20 log_has $h "rollout of revision ${v3:0:12} in group web is halted: $first failed it" || exit 1; done &&
	sleep 3 &&
	on_rev "$v2" $others &&
	for h in $others; do content_is $h gen2 || exit 1; done &&
	expect_exit 0 dl fleet status -c "$SCRATCH/h1.yaml" &&
	expect_contains "$SCRATCH/stdout" "HALTED: revision ${v3:0:12} failed on $first" &&
	grep -q "halted" "$SCRATCH/stdout"
'

test_expect_success 'the others keep repairing drift while they wait' '
	for h in $(printf "%s\n" h1 h2 h3 | grep -vx "$(cat "$SCRATCH/first")"); do
		echo tamper >"$SCRATCH/$h/root/srv/app/app.conf" &&
		wait_for 5 content_is $h gen2 || exit 1
	done
'

test_expect_success 'once the halt is cleared, the rollout goes on' '
	v3=$(repo_head repo) &&
	for h in h1 h2 h3; do rm -f "$SCRATCH/$h/root/srv/app/new.conf"; done &&
	ectl del /driftless/rollout/web/halt &&
	others=$(printf "%s\n" h1 h2 h3 | grep -vx "$(cat "$SCRATCH/first")") &&
	wait_for 40 on_rev "$v3" $others &&
	for h in $others; do content_is $h gen3 && test -f "$SCRATCH/$h/root/srv/app/new.conf" || exit 1; done &&
	expect_exit 0 dl fleet status -c "$SCRATCH/h1.yaml" &&
	expect_not_contains "$SCRATCH/stdout" "HALTED"
'

test_expect_success 'a revision whose health check fails after applying halts the rollout' '
	dead=$(free_port) &&
	cat >repo/svc.yaml <<-Y &&
	apiVersion: driftless/v1
	kind: Service
	metadata: {name: probe}
	spec:
	  exec: [/usr/bin/sleep, "300"]
	  healthCheck: {tcp: "127.0.0.1:$dead", interval: 200ms, retries: "1"}
	Y
	repo_commit repo "a service whose health check fails" && push && v4=$(repo_head repo) &&
	wait_for 30 halt_json &&
	python3 -c "import json,sys; d=json.load(open(sys.argv[1])); assert d[\"revision\"]==sys.argv[2], d; assert \"health check\" in json.dumps(d), d" "$SCRATCH/halt.json" "$v4" &&
	first=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))[\"host\"])" "$SCRATCH/halt.json") &&
	sleep 2 &&
	fleet_json && python3 - "$SCRATCH/fleet.json" "$v4" "$first" <<-PY &&
	import json, sys
	hosts = {h["name"]: h for h in json.load(open(sys.argv[1]))["hosts"]}
	on = [n for n, h in hosts.items() if h["applied"] == sys.argv[2]]
	assert on == [sys.argv[3]], ("only the first host may have it", on)
	PY
	git -C repo rm -q svc.yaml && repo_commit repo "drop the probe" && push && v5=$(repo_head repo) &&
	wait_for 40 on_rev "$v5" h1 h2 h3 &&
	ectl del /driftless/rollout/web/halt >/dev/null
'

test_expect_success 'a killed agent disappears when its lease expires and frees its slot' '
	write_config h4 60s && agent_start h4 &&
	wait_for 30 log_has h4 "keeping rollout slot 0 for 60 s to settle" &&
	bump gen4 && v4=$(repo_head repo) &&
	sleep 3 &&
	for h in h1 h2 h3; do content_is $h gen3 || exit 1; done &&
	kill -9 "$(pid_of h4)" &&
	wait_for 15 host_gone h4 &&
	wait_for 40 on_rev "$v4" h1 h2 h3
'

test_expect_success 'etcd stopped: agents keep repairing drift and work alone' '
	kill -TERM "$(cat "$SCRATCH/etcd.pid")" &&
	timeout 20 tail --pid="$(cat "$SCRATCH/etcd.pid")" -f /dev/null &&
	for h in h1 h2 h3; do wait_for 15 log_has $h "fleet: etcd unreachable" || exit 1; done &&
	echo tamper >"$SCRATCH/h2/root/srv/app/app.conf" &&
	wait_for 5 content_is h2 gen4 &&
	expect_exit 0 dl status --state "$SCRATCH/h2/state" &&
	expect_contains "$SCRATCH/stdout" "etcd unreachable since" &&
	test_must_fail dl fleet status -c "$SCRATCH/h1.yaml" &&
	expect_contains "$SCRATCH/stderr" "cannot reach etcd at $ETCD_URL" &&
	bump gen5 &&
	wait_for 10 log_has h1 "waits: etcd is unreachable" &&
	sleep 2 &&
	content_is h1 gen4 && content_is h2 gen4 && content_is h3 gen4
'

test_expect_success 'etcd back: the agents register again and the waiting revision rolls out' '
	v5=$(repo_head repo) &&
	start_etcd &&
	for h in h1 h2 h3; do wait_for 40 log_has $h "fleet: etcd reachable again" || exit 1; done &&
	wait_for 40 on_rev "$v5" h1 h2 h3 &&
	content_is h1 gen5 && content_is h2 gen5 && content_is h3 gen5 &&
	expect_exit 0 dl status --state "$SCRATCH/h2/state" &&
	expect_contains "$SCRATCH/stdout" "registered in etcd at"
'

test_expect_success 'a stopped agent leaves the fleet at once (its lease is revoked)' '
	kill -TERM "$(pid_of h3)" &&
	timeout 10 tail --pid="$(pid_of h3)" -f /dev/null &&
	log_has h3 "fleet: left the fleet" &&
	host_gone h3
'

test_expect_success 'TLS with a client certificate' '
	make_test_ca "$SCRATCH/ca" &&
	printf "%s\n" "basicConstraints=critical,CA:FALSE" "extendedKeyUsage=clientAuth" \
		>"$SCRATCH/ca/client.ext" &&
	openssl req -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -subj "/CN=h9" \
		-keyout "$SCRATCH/ca/client.key" -out "$SCRATCH/ca/client.csr" 2>/dev/null &&
	openssl x509 -req -in "$SCRATCH/ca/client.csr" -days 30 -CA "$SCRATCH/ca/ca.pem" \
		-CAkey "$SCRATCH/ca/ca.key" -set_serial 0x1234 -extfile "$SCRATCH/ca/client.ext" \
		-out "$SCRATCH/ca/client.pem" 2>/dev/null &&
	printf "%s\n" "basicConstraints=critical,CA:FALSE" "extendedKeyUsage=serverAuth,clientAuth" \
		"subjectAltName=IP:127.0.0.1,DNS:localhost" >"$SCRATCH/ca/etcd.ext" &&
	openssl req -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -subj "/CN=127.0.0.1" \
		-keyout "$SCRATCH/ca/etcd.key" -out "$SCRATCH/ca/etcd.csr" 2>/dev/null &&
	openssl x509 -req -in "$SCRATCH/ca/etcd.csr" -days 30 -CA "$SCRATCH/ca/ca.pem" \
		-CAkey "$SCRATCH/ca/ca.key" -set_serial 0x1235 -extfile "$SCRATCH/ca/etcd.ext" \
		-out "$SCRATCH/ca/etcd.pem" 2>/dev/null &&
	start_tls_etcd &&
	wait_for 20 tls endpoint health &&
	tls put /driftless/hosts/tls/h9 "{\"name\":\"h9\",\"group\":\"tls\",\"state\":\"idle\"}" &&
	printf "%s\n" "fleet:" "  endpoints: [https://127.0.0.1:$TLS_PORT]" "  tls:" \
		"    caFile: $SCRATCH/ca/ca.pem" "    certFile: $SCRATCH/ca/client.pem" \
		"    keyFile: $SCRATCH/ca/client.key" >"$SCRATCH/tls.yaml" &&
	expect_exit 0 dl fleet status -c "$SCRATCH/tls.yaml" &&
	grep -q "^h9  *tls  *idle" "$SCRATCH/stdout" &&
	grep -v "certFile\|keyFile" "$SCRATCH/tls.yaml" >"$SCRATCH/tls-nocert.yaml" &&
	test_must_fail dl fleet status -c "$SCRATCH/tls-nocert.yaml" &&
	expect_contains "$SCRATCH/stderr" "cannot reach etcd at https://127.0.0.1:$TLS_PORT" &&
	grep -v "caFile" "$SCRATCH/tls.yaml" >"$SCRATCH/tls-noca.yaml" &&
	test_must_fail dl fleet status -c "$SCRATCH/tls-noca.yaml"
'

on_rev_auth() {
	"$DRIFTLESS" fleet status -c "$SCRATCH/auth.yaml" -o json >"$SCRATCH/fleet.json" &&
	grep -q "\"name\":\"h5\",\"group\":\"web\".*\"applied\":\"$(repo_head repo)\"" "$SCRATCH/fleet.json"
}

test_expect_success 'etcd authentication: username and a password file' '
	printf "s3cret-pw\n" >"$SCRATCH/etcd-password" && chmod 600 "$SCRATCH/etcd-password" &&
	ectl user add root --new-user-password=s3cret-pw &&
	ectl auth enable &&
	cp "$SCRATCH/h1.yaml" "$SCRATCH/auth.yaml" &&
	printf "%s\n" "  auth: {username: root, passwordFile: $SCRATCH/etcd-password}" >>"$SCRATCH/auth.yaml" &&
	sed -i "s/name: h1/name: h5/" "$SCRATCH/auth.yaml" &&
	expect_exit 0 dl fleet status -c "$SCRATCH/auth.yaml" &&
	test_must_fail dl fleet status -c "$SCRATCH/h1.yaml" &&
	expect_contains "$SCRATCH/stderr" "etcd: " &&
	cp "$SCRATCH/auth.yaml" "$SCRATCH/h5.yaml" && agent_start h5 &&
	wait_for 30 log_has h5 "registered in etcd at $ETCD_URL as web/h5" &&
	wait_for 30 on_rev_auth &&
	! grep -rq "s3cret-pw" "$SCRATCH"/h*.log &&
	chmod 644 "$SCRATCH/etcd-password" &&
	test_must_fail dl fleet status -c "$SCRATCH/auth.yaml"
'

test_done
