#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The status page in a real browser (headless Chromium, Debian's chromium):
# the DOM the browser built from `GET /` shows the applied revision, the
# suspension banner with its reason as text, the drifted resource as
# drifted; HTML in a reason, a path and a commit summary stays text (no
# element made, no script run); a screenshot is a real picture. A control
# run loads the same page with its escaping undone, to show the checks do
# catch an element or a script that got through.
#
# Skipped when no browser is installed (apt-get install chromium). Every
# browser run is bounded (DL_BROWSER_TIMEOUT seconds, default 30). With
# DL_ARTIFACTS=DIR the screenshot and the DOM are copied to DIR.
# shellcheck disable=SC2016
. "$(dirname "$0")/lib.sh"

command -v curl >/dev/null || skip_all "curl is needed"
[ -n "$DL_PYTHON" ] || skip_all "python3 is needed"
BROWSER=
for b in chromium chromium-browser google-chrome-stable google-chrome; do
	if command -v "$b" >/dev/null; then
		BROWSER=$(command -v "$b")
		break
	fi
done
[ -n "$BROWSER" ] || skip_all "no browser installed (apt-get install chromium)"

# browser ARGS... URL: one headless run with a fresh profile; its stderr
# (D-Bus noise and all) goes to $SCRATCH/browser.log
browser() {
	local profile
	profile=$(mktemp -d "$SCRATCH/.dl/profile.XXXXXX") || return 1
	echo "--- $BROWSER $*" >>"$SCRATCH/browser.log"
	timeout -k 5 "${DL_BROWSER_TIMEOUT:-30}" "$BROWSER" --headless=new --no-sandbox \
		--disable-gpu --disable-dev-shm-usage --no-first-run --no-default-browser-check \
		--disable-extensions --disable-background-networking --disable-component-update \
		--disable-sync --user-data-dir="$profile" "$@" 2>>"$SCRATCH/browser.log"
}
show_browser_log() { echo "--- browser log (tail)"; tail -n 20 "$SCRATCH/browser.log"; }

# check-dom.py DOM TITLE REVISION REASON SUMMARY PATH: assertions on the DOM
# the browser serialized (--dump-dom); prints every failed check
cat >"$SCRATCH/check-dom.py" <<'PY'
import sys
from html.parser import HTMLParser

VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link",
        "meta", "source", "track", "wbr"}

class Node:
    def __init__(self, tag, attrs, parent):
        self.tag, self.attrs, self.parent, self.kids = tag, dict(attrs), parent, []
    def text(self):
        return "".join(k if isinstance(k, str) else k.text() for k in self.kids)
    def walk(self):
        yield self
        for k in self.kids:
            if not isinstance(k, str):
                yield from k.walk()
    def elems(self, tag):
        return [k for k in self.kids if not isinstance(k, str) and k.tag == tag]

class Tree(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.root = self.cur = Node("#document", [], None)
    def handle_starttag(self, tag, attrs):
        n = Node(tag, attrs, self.cur)
        self.cur.kids.append(n)
        if tag not in VOID:
            self.cur = n
    def handle_startendtag(self, tag, attrs):
        self.cur.kids.append(Node(tag, attrs, self.cur))
    def handle_endtag(self, tag):
        c = self.cur
        while c is not self.root and c.tag != tag:
            c = c.parent
        if c is not self.root:
            self.cur = c.parent
    def handle_data(self, data):
        self.cur.kids.append(data)

dom, title, rev, reason, summary, path = sys.argv[1:7]
t = Tree()
t.feed(open(dom, encoding="utf-8").read())
t.close()
nodes = list(t.root.walk())
bad = []
def check(ok, msg):
    if not ok:
        bad.append(msg)

got = [n.text() for n in nodes if n.tag == "title"]
check(got == [title], "title is %r, expected %r (a script ran?)" % (got, title))
for n in nodes:
    check(n.tag not in ("script", "b", "img", "iframe", "object", "embed"),
          "a <%s> element is in the DOM: %r" % (n.tag, n.text()[:80]))
    for a in n.attrs:
        check(not a.startswith("on"), "an event handler attribute %s on <%s>" % (a, n.tag))

sus = [n for n in nodes if n.attrs.get("id") == "suspended"]
check(len(sus) == 1, "%d elements with id=suspended, expected 1" % len(sus))
if sus:
    txt = sus[0].text()
    check("SUSPENDED until" in txt, "the banner does not say SUSPENDED until: %r" % txt)
    check(reason in txt, "the banner does not show the reason %r as text: %r" % (reason, txt))
    check(not any(k.tag != "code" for k in sus[0].walk() if k is not sus[0]),
          "the banner holds elements other than <code>: %r" %
          [k.tag for k in sus[0].walk() if k is not sus[0]])

# table rows as lists of cell texts
rows = []
for tr in (n for n in nodes if n.tag == "tr"):
    rows.append([c.text() for c in tr.kids if not isinstance(c, str) and c.tag in ("th", "td")])
check(["applied revision", rev] in rows, "no row 'applied revision' with %s" % rev)
res = {r[1]: r for r in rows if len(r) == 5 and r[0] in ("in-sync", "drifted", "failed")}
check(res.get("File/rep", [None])[0] == "drifted", "File/rep is not listed as drifted: %r" % res.get("File/rep"))
check(res.get("File/conf", [None])[0] == "in-sync", "File/conf is not in-sync: %r" % res.get("File/conf"))
check(res.get("File/esc", [None, None, None])[2] == path,
      "File/esc's path is not the text %r: %r" % (path, res.get("File/esc")))
check(any(len(r) == 8 and r[5] == summary for r in rows),
      "no history row with the summary %r as text" % summary)
text = t.root.text()
check("1 drifted" in text, "the resource counts do not say 1 drifted")

for m in bad:
    print("check-dom: " + m)
sys.exit(1 if bad else 0)
PY
check_dom() {
	"$DL_PYTHON" "$SCRATCH/check-dom.py" "$1" "driftless on $(hostname)" "$(repo_head repo)" \
		"$REASON" "$SUMMARY" "/srv/app/<b>x&y.conf"
}

REASON='INC-7 <b>x</b> & "quotes"'
SUMMARY='fix <script>document.title="pwned"</script><img src=x onerror="document.title=1"> & more'
repo_init repo
write_file repo/app.yaml <<'Y'
apiVersion: driftless/v1
kind: Directory
metadata: {name: app}
spec: {path: /srv/app}
---
apiVersion: driftless/v1
kind: File
metadata: {name: conf}
spec: {path: /srv/app/app.conf, content: "gen1\n"}
---
apiVersion: driftless/v1
kind: File
metadata: {name: esc}
spec: {path: "/srv/app/<b>x&y.conf", content: "escaped\n"}
---
apiVersion: driftless/v1
kind: File
metadata: {name: rep, annotations: {driftless/drift: report}}
spec: {path: /srv/app/report.conf, content: "report\n"}
Y
repo_commit repo "$SUMMARY"
mkdir -p "$ROOT/srv"
git clone -q --bare repo "$SCRATCH/srv.git"
PORT=$(free_port)
URL=http://127.0.0.1:$PORT
AGENT_LOG=$SCRATCH/agent.log
log_has() { grep -qF -e "$1" "$AGENT_LOG"; }
ready() { test "$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$URL/readyz")" = 200; }

test_expect_success 'the browser runs headless, runs scripts in a page without CSP, dumps the DOM' '
	printf "%s\n" "<!doctype html><title>before</title><p id=x>a &lt;b&gt; text</p>" \
		"<script>document.title=\"after\"</script>" >smoke.html &&
	browser --dump-dom "file://$SCRATCH/smoke.html" >smoke.dom || { show_browser_log; false; } &&
	cat smoke.dom &&
	expect_contains smoke.dom "<title>after</title>" &&
	expect_contains smoke.dom "a &lt;b&gt; text"
'

test_expect_success 'an agent with a drifted report resource and a suspension with HTML in its reason' '
	{ "$DRIFTLESS" agent --repo "$SCRATCH/srv.git" --root "$ROOT" --state "$STATE" --interval 60s \
		--listen "127.0.0.1:$PORT" >>"$AGENT_LOG" 2>&1 & } &&
	echo $! >"$SCRATCH/agent.pid" && register_pid "$(cat "$SCRATCH/agent.pid")" &&
	wait_for 20 test -f "$ROOT/srv/app/report.conf" &&
	wait_for 10 ready &&
	echo hand >"$ROOT/srv/app/report.conf" &&
	wait_for 10 log_has "File/rep: drift reported, not repaired" &&
	expect_exit 0 dl suspend --state "$STATE" --for 10m --reason "$REASON" &&
	curl -s --max-time 10 -o page.html "$URL/" &&
	expect_contains page.html "id=\"suspended\""
'

test_expect_success 'the DOM shows the revision, the banner with the reason as text, the drifted resource' '
	browser --dump-dom "$URL/" >page.dom || { show_browser_log; false; } &&
	test -s page.dom &&
	check_dom page.dom &&
	if [ -n "${DL_ARTIFACTS:-}" ]; then mkdir -p "$DL_ARTIFACTS" && cp page.dom "$DL_ARTIFACTS/t1030-page.dom.html"; fi
'

test_expect_success 'a screenshot of the page is a real 1200x900 PNG' '
	browser --screenshot="$SCRATCH/page.png" --window-size=1200,900 --hide-scrollbars "$URL/" ||
		{ show_browser_log; false; } &&
	"$DL_PYTHON" -c "
import struct,sys,os
d=open(sys.argv[1],\"rb\").read()
assert d[:8]==b\"\\x89PNG\\r\\n\\x1a\\n\", d[:8]
w,h=struct.unpack(\">II\",d[16:24])
print(\"screenshot: %dx%d, %d bytes\" % (w,h,len(d)))
assert (w,h)==(1200,900), (w,h)
assert len(d)>20000, len(d)
" page.png &&
	if [ -n "${DL_ARTIFACTS:-}" ]; then mkdir -p "$DL_ARTIFACTS" && cp page.png "$DL_ARTIFACTS/t1030-page.png"; fi
'

test_expect_success 'control: the same page with its escaping undone fails the DOM checks' '
	sed -e "s/&lt;/</g" -e "s/&gt;/>/g" -e "s/&quot;/\"/g" -e "s/&#39;/'\''/g" -e "s/&amp;/\\&/g" \
		page.html >unescaped.html &&
	expect_contains unescaped.html "<b>x</b>" &&
	browser --dump-dom "file://$SCRATCH/unescaped.html" >unescaped.dom || { show_browser_log; false; } &&
	! check_dom unescaped.dom >control.out &&
	cat control.out &&
	expect_contains control.out "title is [" &&
	expect_contains control.out "a <b> element is in the DOM" &&
	expect_contains control.out "a <script> element is in the DOM" &&
	expect_contains control.out "an event handler attribute onerror" &&
	expect_contains control.out "the banner holds elements other than <code>"
'

test_expect_success 'the page loads were logged, and the agent stops on SIGTERM' '
	log_has "\"GET /\" 200" &&
	pid=$(cat "$SCRATCH/agent.pid") &&
	kill -TERM $pid &&
	timeout 10 tail --pid=$pid -f /dev/null &&
	log_has "agent: stopping" &&
	! grep -E "Sanitizer|runtime error" "$AGENT_LOG"
'

test_done
