#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# bench/fleet.sh [N] [MAXPARALLEL...]: N agents (default 50) on this machine,
# one etcd and one Git server (smart HTTP) on loopback. For each
# maxParallel (default 5 and 50): push a commit and time until every host
# has applied it (read from etcd), and count the load it caused: requests
# to the Git server, and puts, ranges, txns and lease keepalives on etcd
# (from etcd's /metrics). Not part of the test suite.
set -eu
cd "$(dirname "$0")/.."
D=${DRIFTLESS:-$PWD/build/driftless}
n=${1:-50}
shift || true
pars=${*:-5 50}
W=$(mktemp -d /tmp/driftless-fleet-bench.XXXXXX)
pids=()
apids=()
cleanup() {
	for p in "${apids[@]}" "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	sleep 1
	rm -rf "$W"
}
trap cleanup EXIT
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
export ETCDCTL_API=3

cport=$(port) pport=$(port)
E=http://127.0.0.1:$cport
etcd --name bench --data-dir "$W/etcd" --listen-client-urls "$E" --advertise-client-urls "$E" \
	--listen-peer-urls "http://127.0.0.1:$pport" --initial-advertise-peer-urls "http://127.0.0.1:$pport" \
	--initial-cluster "bench=http://127.0.0.1:$pport" >"$W/etcd.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do etcdctl --endpoints "$E" endpoint health >/dev/null 2>&1 && break; sleep 0.2; done

mkdir -p "$W/srv"
git init -q -b main "$W/repo"
git -C "$W/repo" config user.email bench@driftless.invalid
git -C "$W/repo" config user.name bench
printf '%s\n' "apiVersion: driftless/v1" "kind: File" "metadata: {name: conf}" \
	"spec: {path: /srv/app.conf, content: \"gen0\\n\"}" >"$W/repo/app.yaml"
git -C "$W/repo" add -A && git -C "$W/repo" commit -qm gen0
git clone -q --bare "$W/repo" "$W/srv/infra.git"
python3 t/helpers/git-http.py --root "$W/srv" --port-file "$W/git.port" \
	--access-log "$W/git.log" >"$W/git-server.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do [ -s "$W/git.port" ] && break; sleep 0.1; done
URL=http://127.0.0.1:$(cat "$W/git.port")/infra.git

metric() {	# the sum of a metric's samples whose labels match $2
	curl -s "$E/metrics" | awk -v m="$1" -v l="$2" 'index($0, m) == 1 && index($0, l) { s += $NF } END { printf "%d", s }'
}
applied() {	# hosts whose published status has applied revision $1
	etcdctl --endpoints "$E" get --prefix /driftless/hosts/ --print-value-only 2>/dev/null |
		grep -c "\"applied\":\"$1\"" || true
}

run() {
	local par=$1 gen=$2
	for i in $(seq 1 "$n"); do
		mkdir -p "$W/h$i/root/srv"
		printf '%s\n' "fleet:" "  endpoints: [$E]" "  name: h$i" "  group: bench" \
			"  rollout: {maxParallel: $par}" >"$W/h$i.yaml"
	done
	# start every agent on the current head and wait until all are in
	for i in $(seq 1 "$n"); do
		"$D" agent -c "$W/h$i.yaml" --repo "$URL" --root "$W/h$i/root" --state "$W/h$i/state" \
			--interval "${INTERVAL:-10s}" >>"$W/h$i.log" 2>&1 &
		apids+=($!)
	done
	head=$(git -C "$W/repo" rev-parse HEAD)
	for _ in $(seq 1 600); do [ "$(applied "$head")" -ge "$n" ] && break; sleep 0.5; done
	sleep 2
	git0=$(wc -l <"$W/git.log")
	put0=$(metric grpc_server_handled_total 'grpc_method="Put"')
	rng0=$(metric grpc_server_handled_total 'grpc_method="Range"')
	txn0=$(metric grpc_server_handled_total 'grpc_method="Txn"')
	ka0=$(metric grpc_server_handled_total 'grpc_method="LeaseKeepAlive"')
	sed -i "s/gen[0-9]*/gen$gen/" "$W/repo/app.yaml"
	git -C "$W/repo" commit -qam "gen$gen"
	git -C "$W/repo" push -q "$W/srv/infra.git" main
	new=$(git -C "$W/repo" rev-parse HEAD)
	t0=$(date +%s%N)
	while [ "$(applied "$new")" -lt "$n" ]; do sleep 0.2; done
	t1=$(date +%s%N)
	ms=$(((t1 - t0) / 1000000))
	git1=$(wc -l <"$W/git.log")
	echo "maxParallel $par: $n hosts applied the commit in $((ms / 1000)).$(printf %03d $((ms % 1000))) s" \
		"(poll interval ${INTERVAL:-10s}); Git server: $((git1 - git0)) requests;" \
		"etcd: $(($(metric grpc_server_handled_total 'grpc_method="Put"') - put0)) puts," \
		"$(($(metric grpc_server_handled_total 'grpc_method="Range"') - rng0)) ranges," \
		"$(($(metric grpc_server_handled_total 'grpc_method="Txn"') - txn0)) txns," \
		"$(($(metric grpc_server_handled_total 'grpc_method="LeaseKeepAlive"') - ka0)) keepalive streams"
	for p in "${apids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${apids[@]}"; do wait "$p" 2>/dev/null || true; done
	apids=()
}

echo "$n agents, etcd $(etcd --version | head -1 | awk '{print $3}'), $(nproc) cores"
gen=1
for par in $pars; do
	apids=()
	run "$par" "$gen"
	gen=$((gen + 1))
done
