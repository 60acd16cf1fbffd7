#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The emergency hotfix path: suspend with a reason, fix by hand, list the
# drift, capture it into a commit, resume, and the audit report.
# shellcheck disable=SC2016
. "$(dirname "$0")/lib.sh"

repo_init repo
write_file repo/app.yaml <<'Y'
apiVersion: driftless/v1
kind: Directory
metadata: {name: app}
spec: {path: /srv/app, mode: "0755"}
---
# the main configuration comes from a file of the repository
apiVersion: driftless/v1
kind: File
metadata: {name: conf}
spec:
  path: /srv/app/app.conf
  source: files/app.conf
  mode: "0644"
---
apiVersion: driftless/v1
kind: File
metadata: {name: limits}
spec:
  path: /srv/app/limits.conf
  content: |
    workers = 4
    queue = 100
  mode: "0640"   # keep it private
---
apiVersion: driftless/v1
kind: File
metadata: {name: flag}
spec: {path: /srv/app/flag, content: "on\n", mode: "0644"}
---
apiVersion: driftless/v1
kind: Symlink
metadata: {name: current}
spec: {path: /srv/app/current, target: app.conf}
Y
write_file repo/files/app.conf <<'Y'
listen = 127.0.0.1:8080
Y
repo_commit repo v1
mkdir -p "$ROOT/srv"
git clone -q --bare repo "$SCRATCH/srv.git"
git -C repo remote add origin "$SCRATCH/srv.git"

AGENT_LOG=$SCRATCH/agent.log
PORT=$(free_port)
"$DRIFTLESS" agent --repo "$SCRATCH/srv.git" --root "$ROOT" --state "$STATE" --interval 1s \
	--listen "127.0.0.1:$PORT" >>"$AGENT_LOG" 2>&1 &
register_pid $!
log_has() { grep -qF -e "$1" "$AGENT_LOG"; }
content_is() { test "$(cat "$1" 2>/dev/null)" = "$2"; }

test_expect_success 'the agent applies the first revision' '
	wait_for 10 log_has "applied: 5 created" &&
	test_cmp repo/files/app.conf "$ROOT/srv/app/app.conf"
'

test_expect_success 'suspend needs a duration and a reason' '
	expect_exit 64 dl suspend --state "$STATE" --reason "x" &&
	expect_exit 64 dl suspend --state "$STATE" --for 10m &&
	expect_exit 64 dl suspend --state "$STATE" --for 10m --reason "" &&
	expect_exit 64 dl suspend --state "$STATE" --for 30d --reason "too long"
'

test_expect_success 'suspend tells the running agent, and history records who and why' '
	expect_exit 0 dl suspend --state "$STATE" --for 30m --reason "INC-42: queue overflow, raising limits" &&
	expect_contains "$SCRATCH/stdout" "suspended until" &&
	expect_contains "$SCRATCH/stderr" "told the running agent" &&
	wait_for 5 log_has "agent: suspended until" &&
	expect_exit 0 dl status --state "$STATE" &&
	head -n1 "$SCRATCH/stdout" | grep -q "^SUSPENDED until .* by $(id -un): INC-42: queue overflow" &&
	expect_exit 0 dl status --state "$STATE" -o json &&
	python3 -c "import json,sys; d=json.load(open(sys.argv[1])); assert d[\"suspended\"][\"reason\"].startswith(\"INC-42\"), d" "$SCRATCH/stdout" &&
	curl -sf "http://127.0.0.1:$PORT/" >"$SCRATCH/page.html" &&
	expect_contains "$SCRATCH/page.html" "SUSPENDED until" &&
	expect_contains "$SCRATCH/page.html" "INC-42: queue overflow, raising limits" &&
	curl -sf "http://127.0.0.1:$PORT/api/v1/status" >"$SCRATCH/api.json" &&
	python3 -c "import json,sys; d=json.load(open(sys.argv[1])); assert d[\"suspended\"][\"by\"], d" "$SCRATCH/api.json" &&
	expect_exit 0 dl history --state "$STATE" -o json &&
	python3 - "$SCRATCH/stdout" "$(id -un)" <<-PY
	import json, sys
	h = json.load(open(sys.argv[1]))
	rows = h if isinstance(h, list) else h.get("passes", h.get("history"))
	s = [r for r in rows if r.get("command") == "suspend"]
	assert s, rows
	assert s[0]["summary"] == "INC-42: queue overflow, raising limits", s[0]
	assert s[0]["author"].startswith(sys.argv[2]), s[0]
	PY
'

test_expect_success 'while suspended, hand edits are held, not repaired' '
	printf "workers = 16\nqueue = 1000\n" >"$ROOT/srv/app/limits.conf" &&
	printf "listen = 0.0.0.0:8080\n" >"$ROOT/srv/app/app.conf" &&
	chmod 0600 "$ROOT/srv/app/flag" &&
	ln -sfn limits.conf "$ROOT/srv/app/current" &&
	wait_for 5 log_has "File/limits: drift held, not repaired: suspended" &&
	sleep 1 &&
	content_is "$ROOT/srv/app/limits.conf" "workers = 16
queue = 1000" &&
	expect_mode 600 "$ROOT/srv/app/flag"
'

held_count_gt() { test "$(grep -cF "File/limits: drift held, not repaired" "$AGENT_LOG")" -gt "$1"; }
test_expect_success 'while suspended and idle (the applied pass freed), hand edits are still held' '
	n=$(grep -cF "File/limits: drift held, not repaired" "$AGENT_LOG") &&
	sleep 6 &&
	printf "workers = 32\n" >"$ROOT/srv/app/limits.conf" &&
	wait_for 5 held_count_gt "$n" &&
	sleep 1 &&
	content_is "$ROOT/srv/app/limits.conf" "workers = 32" &&
	printf "workers = 16\nqueue = 1000\n" >"$ROOT/srv/app/limits.conf"
'

test_expect_success 'drift lists every difference with since-when and why it stays' '
	expect_exit 0 dl drift --state "$STATE" &&
	expect_contains "$SCRATCH/stdout" "File/limits /srv/app/limits.conf (content)" &&
	expect_contains "$SCRATCH/stdout" "held by a suspension until" &&
	expect_contains "$SCRATCH/stdout" "+workers = 4" &&
	expect_contains "$SCRATCH/stdout" "drift: 4 resources differ" &&
	expect_exit 2 dl drift --state "$STATE" --exit-code &&
	expect_exit 0 dl drift --state "$STATE" -o json &&
	python3 - "$SCRATCH/stdout" <<-PY
	import json, sys
	d = json.load(open(sys.argv[1]))
	assert d["suspended"]["reason"].startswith("INC-42"), d
	ids = {r["id"]: r for r in d["resources"]}
	assert set(ids) == {"File/limits", "File/conf", "File/flag", "Symlink/current"}, ids
	assert ids["File/flag"]["changes"].startswith("mode"), ids["File/flag"]
	assert ids["File/limits"]["since"], ids["File/limits"]
	assert "suspension" in ids["File/conf"]["state"], ids["File/conf"]
	assert "-listen = 0.0.0.0:8080" in ids["File/conf"]["diff"], ids["File/conf"]
	PY
'

test_expect_success 'a new revision waits while suspended' '
	write_file repo/extra.yaml <<-Y &&
	apiVersion: driftless/v1
	kind: File
	metadata: {name: extra}
	spec: {path: /srv/app/extra, content: "x\n"}
	Y
	repo_commit repo "add extra" &&
	git -C repo push -q origin main &&
	wait_for 10 log_has "held: suspended" &&
	expect_missing "$ROOT/srv/app/extra"
'

test_expect_success 'capture refuses a clone that is not at the applied revision' '
	git clone -q "$SCRATCH/srv.git" "$SCRATCH/other" &&
	git -C "$SCRATCH/other" checkout -q --orphan lost &&
	git -C "$SCRATCH/other" -c user.name=t -c user.email=t@e commit -q -m lost &&
	test_must_fail dl capture --state "$STATE" --into "$SCRATCH/other" &&
	expect_contains "$SCRATCH/stderr" "is not the applied revision"
'

test_expect_success 'capture writes the hand fix into a commit of the clone, never pushing' '
	git clone -q "$SCRATCH/srv.git" "$SCRATCH/work" &&
	git -C "$SCRATCH/work" config user.name "Ops Person" &&
	git -C "$SCRATCH/work" config user.email ops@example.com &&
	before=$(git -C "$SCRATCH/srv.git" rev-parse main) &&
	expect_exit 0 dl capture --state "$STATE" --into "$SCRATCH/work" &&
	expect_contains "$SCRATCH/stdout" "captured 4 resources into commit" &&
	test "$(git -C "$SCRATCH/srv.git" rev-parse main)" = "$before" &&
	git -C "$SCRATCH/work" log -1 --format=%B >"$SCRATCH/msg" &&
	expect_contains "$SCRATCH/msg" "hotfix from $(hostname): capture 4 resources" &&
	expect_contains "$SCRATCH/msg" "INC-42: queue overflow" &&
	expect_contains "$SCRATCH/msg" "- File/limits /srv/app/limits.conf (content)" &&
	test "$(git -C "$SCRATCH/work" log -1 --format=%an)" = "Ops Person" &&
	test_cmp "$ROOT/srv/app/app.conf" "$SCRATCH/work/files/app.conf" &&
	git -C "$SCRATCH/work" status --porcelain >"$SCRATCH/st" && ! test -s "$SCRATCH/st" &&
	expect_contains "$SCRATCH/work/app.yaml" "# keep it private" &&
	expect_contains "$SCRATCH/work/app.yaml" "# the main configuration comes from a file" &&
	expect_exit 0 dl validate "$SCRATCH/work"
'

test_expect_success 'capture of one named resource, and of one that did not drift' '
	test_must_fail dl capture Directory/app --state "$STATE" --into "$SCRATCH/work" &&
	expect_contains "$SCRATCH/stderr" "has not drifted" &&
	test_must_fail dl capture File/nope --state "$STATE" --into "$SCRATCH/work" &&
	expect_contains "$SCRATCH/stderr" "is not a resource"
'

test_expect_success 'pushed and resumed, the captured commit applies as a no-op for the fixed files' '
	git -C "$SCRATCH/work" push -q origin HEAD:main &&
	expect_exit 0 dl resume --state "$STATE" &&
	expect_contains "$SCRATCH/stdout" "resumed by" &&
	wait_for 10 log_has "agent: resumed" &&
	wait_for 10 test -f "$ROOT/srv/app/extra" &&
	wait_for 10 content_is "$ROOT/srv/app/extra" x &&
	content_is "$ROOT/srv/app/limits.conf" "workers = 16
queue = 1000" &&
	expect_mode 600 "$ROOT/srv/app/flag" &&
	test "$(readlink "$ROOT/srv/app/current")" = limits.conf &&
	wait_for 10 eval "dl drift --state \"$STATE\" | grep -q \"drift: none\""
'

test_expect_success 'a suspension ends by itself at its deadline, and drift is repaired then' '
	expect_exit 0 dl suspend --state "$STATE" --for 2s --reason "short hold" &&
	wait_for 5 log_has "short hold" &&
	echo "off" >"$ROOT/srv/app/flag" &&
	sleep 0.5 &&
	content_is "$ROOT/srv/app/flag" off &&
	wait_for 10 content_is "$ROOT/srv/app/flag" on &&
	expect_exit 0 dl history --state "$STATE" &&
	expect_contains "$SCRATCH/stdout" "deadline"
'

test_expect_success 'resume with nothing suspended says so' '
	expect_exit 0 dl resume --state "$STATE" &&
	expect_contains "$SCRATCH/stdout" "nothing was suspended" &&
	curl -sf "http://127.0.0.1:$PORT/" >"$SCRATCH/page.html" &&
	expect_not_contains "$SCRATCH/page.html" "SUSPENDED" &&
	expect_exit 0 dl status --state "$STATE" -o json &&
	python3 -c "import json,sys; d=json.load(open(sys.argv[1])); assert d[\"suspended\"] is None, d" "$SCRATCH/stdout"
'

test_expect_success 'the report lists revisions, drift and suspensions, field by field (json)' '
	expect_exit 0 dl report --state "$STATE" --since 1d -o json &&
	python3 - "$SCRATCH/stdout" "$(git -C "$SCRATCH/work" rev-parse HEAD)" <<-PY
	import json, sys
	d = json.load(open(sys.argv[1]))
	assert d["host"] and d["since"] and d["until"], d
	revs = d["revisions"]
	first = [r for r in revs if r["summary"] == "v1"][0]
	assert first["created"] == 5 and first["result"] == "applied", first
	assert first["author"] == "Driftless Test <test@driftless.invalid>", first
	assert len(first["commit"]) == 40, first
	assert first["signature"] == "not verified (source.verify is off)", first
	assert {x["id"] for x in first["resources"]} >= {"File/conf", "File/limits"}, first
	assert all(x["outcome"] == "created" for x in first["resources"]), first
	hot = [r for r in revs if r["commit"] == sys.argv[2]]
	assert hot and hot[-1]["author"] == "Ops Person <ops@example.com>", hot
	assert hot[-1]["summary"].startswith("hotfix from "), hot
	held = [e for e in d["drift"] if e["outcome"] == "held"]
	assert {e["id"] for e in held} >= {"File/limits", "File/conf"}, d["drift"]
	rep = [e for e in d["drift"] if e["outcome"] == "repaired" and e["id"] == "File/flag"]
	assert rep, d["drift"]
	sus = d["suspensions"]
	assert [s["reason"] for s in sus] == ["INC-42: queue overflow, raising limits", "short hold"], sus
	assert sus[0]["endedBy"].startswith("resumed by"), sus[0]
	assert sus[1]["endedBy"] == "deadline", sus[1]
	PY
'

test_expect_success 'csv and html reports; dates bound the period' '
	expect_exit 0 dl report --state "$STATE" --since 2000-01-01 -o csv &&
	python3 - "$SCRATCH/stdout" <<-PY &&
	import csv, sys
	rows = list(csv.DictReader(open(sys.argv[1])))
	kinds = {r["record"] for r in rows}
	assert kinds == {"revision", "drift", "suspension"}, kinds
	s = [r for r in rows if r["record"] == "suspension"]
	assert s[0]["summary_or_reason"].startswith("INC-42"), s
	PY
	expect_exit 0 dl suspend --state "$STATE" --for 1m --reason "<script>alert(1)</script>" &&
	expect_exit 0 dl resume --state "$STATE" &&
	expect_exit 0 dl report --state "$STATE" --since 1d -o html &&
	expect_contains "$SCRATCH/stdout" "&lt;script&gt;alert(1)&lt;/script&gt;" &&
	expect_not_contains "$SCRATCH/stdout" "<script>" &&
	expect_contains "$SCRATCH/stdout" "INC-42: queue overflow" &&
	expect_exit 0 dl report --state "$STATE" --since 2000-01-01 --until 2000-01-02 -o json &&
	python3 -c "import json,sys; d=json.load(open(sys.argv[1])); assert not d[\"revisions\"] and not d[\"drift\"] and not d[\"suspensions\"], d" "$SCRATCH/stdout" &&
	expect_exit 64 dl report --state "$STATE" &&
	expect_exit 64 dl report --state "$STATE" --since yesterday
'

test_done
