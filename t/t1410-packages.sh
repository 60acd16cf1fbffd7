#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Package through the real apt-get and dpkg, in a throw-away root with its
# own dpkg database and a local apt repository of .deb files built here:
# pin, latest, absent, one apt transaction per pass, prune only what
# driftless installed, a refused collateral removal, an interrupted dpkg
# state with its remedy, bad names (HARDENING M11), and the host's own
# package set never touched.
# shellcheck disable=SC2016
# shellcheck disable=SC2317 # helpers are called from the eval'ed bodies
. "$(dirname "$0")/lib.sh"

[ "$(id -u)" = 0 ] || skip_all "needs root (dpkg --root)"
for t in apt-get apt-cache dpkg dpkg-deb dpkg-query dpkg-scanpackages; do
	command -v "$t" >/dev/null || skip_all "$t is missing"
done

# The host's package database and log, to compare at the end.
md5sum /var/lib/dpkg/status >"$SCRATCH/host.sums"

# mkdeb NAME VERSION [DEPENDS]: a tiny package with /opt/NAME/VERSION.
DEBS=$SCRATCH/debs
mkdeb() {
	local d=$SCRATCH/build/$1-$2
	mkdir -p "$d/DEBIAN" "$d/opt/$1" "$DEBS"
	echo "$1 $2" >"$d/opt/$1/VERSION"
	{
		echo "Package: $1"
		echo "Version: $2"
		echo "Architecture: all"
		echo "Maintainer: Driftless Test <test@driftless.invalid>"
		[ -z "${3:-}" ] || echo "Depends: $3"
		echo "Description: driftless test package $1"
	} >"$d/DEBIAN/control"
	dpkg-deb --root-owner-group -Zgzip -b "$d" "$DEBS/$1_$2_all.deb" >/dev/null
}
mkdeb dltest-hello 1.0
mkdeb dltest-hello 2.0
mkdeb dltest-world 1.0 dltest-hello
mkdeb dltest-pre 1.0
(cd "$DEBS" && dpkg-scanpackages -m . /dev/null >Packages 2>/dev/null) ||
	bail_out "dpkg-scanpackages failed"

# A root with an empty dpkg database and apt pointed at the local repository.
mkdir -p "$ROOT/var/lib/dpkg/updates" "$ROOT/var/lib/dpkg/info" "$ROOT/var/log/apt" \
	"$ROOT/etc/apt/apt.conf.d" "$ROOT/etc/apt/preferences.d" "$ROOT/etc/apt/sources.list.d" \
	"$ROOT/var/lib/apt/lists/partial" "$ROOT/var/cache/apt/archives/partial" "$ROOT/srv"
: >"$ROOT/var/lib/dpkg/status"
: >"$ROOT/var/lib/dpkg/available"
echo "deb [trusted=yes] file:$DEBS ./" >"$ROOT/etc/apt/sources.list"

# transactions: how many apt transactions ran in the root so far
transactions() {
	grep -c '^Start-Date:' "$ROOT/var/log/apt/history.log" 2>/dev/null || echo 0
}
# installed NAME: its version in the root's dpkg database, or nothing
installed() {
	dpkg-query --admindir="$ROOT/var/lib/dpkg" -W -f='${Status} ${Version}\n' "$1" 2>/dev/null |
		sed -n 's/^install ok installed //p'
}
pkgs() {
	write_file repo/packages.yaml
	repo_commit repo "$1"
}

repo_init repo
pkgs "pin and present" <<'Y'
apiVersion: driftless/v1
kind: Package
metadata: {name: dltest-hello}
spec: {version: "1.0"}
---
apiVersion: driftless/v1
kind: Package
metadata: {name: world}
spec: {name: dltest-world}
---
apiVersion: driftless/v1
kind: File
metadata: {name: hello-conf}
spec:
  path: /srv/hello.conf
  content: "configured after the package\n"
  dependsOn: [Package/dltest-hello]
Y

test_expect_success 'plan is read-only: dpkg-query and apt-cache only' '
	expect_exit 0 dl_plan repo &&
	expect_contains stdout "+ create Package/dltest-hello (install 1.0)" &&
	expect_contains stdout "+ create Package/world (install)" &&
	test "$(transactions)" = 0 &&
	test ! -s "$ROOT/var/lib/dpkg/status" &&
	expect_missing "$STATE/apt.conf"
'

test_expect_success 'apply installs a pinned version and a dependency in one transaction' '
	expect_exit 0 dl_apply repo &&
	expect_contains stdout "+ Package/dltest-hello created (install 1.0)" &&
	expect_contains stdout "+ Package/world created (install)" &&
	expect_contains stdout "+ File/hello-conf created /srv/hello.conf" &&
	test "$(installed dltest-hello)" = 1.0 &&
	test "$(installed dltest-world)" = 1.0 &&
	test_cmp_text "dltest-hello 1.0" "$ROOT/opt/dltest-hello/VERSION" &&
	test "$(transactions)" = 1 &&
	grep -q "^Commandline: .*install -- dltest-hello=1.0 dltest-world$" "$ROOT/var/log/apt/history.log" &&
	grep -q "Dir \"$ROOT/\";" "$STATE/apt.conf"
'

test_expect_success 'a second apply changes nothing and runs no transaction' '
	expect_exit 0 dl_apply repo &&
	expect_contains stdout "0 created, 0 updated, 0 deleted, 3 unchanged" &&
	expect_exit 0 dl_plan repo --exit-code &&
	test "$(transactions)" = 1
'

test_expect_success 'latest upgrades, absent removes: still one transaction' '
	pkgs "latest and absent" <<-Y &&
	apiVersion: driftless/v1
	kind: Package
	metadata: {name: dltest-hello}
	spec: {ensure: latest}
	---
	apiVersion: driftless/v1
	kind: Package
	metadata: {name: world}
	spec: {name: dltest-world, ensure: absent}
	Y
	expect_exit 0 dl_plan repo &&
	expect_contains stdout "~ update Package/dltest-hello (version 1.0 -> 2.0)" &&
	expect_contains stdout "- delete Package/world (remove 1.0)" &&
	expect_exit 0 dl_apply repo &&
	expect_contains stdout "~ Package/dltest-hello updated (version 1.0 -> 2.0)" &&
	expect_contains stdout "- Package/world deleted (remove 1.0)" &&
	test "$(installed dltest-hello)" = 2.0 &&
	test -z "$(installed dltest-world)" &&
	test "$(transactions)" = 2 &&
	grep -q "^Commandline: .*install -- dltest-hello dltest-world-$" "$ROOT/var/log/apt/history.log" &&
	expect_exit 0 dl_apply repo &&
	expect_contains stdout "0 updated, 0 deleted" &&
	test "$(transactions)" = 2
'

test_expect_success 'a pin below the installed version downgrades' '
	sed -i "s/spec: {ensure: latest}/spec: {version: \"1.0\"}/" repo/packages.yaml &&
	repo_commit repo "downgrade" &&
	expect_exit 0 dl_apply repo &&
	expect_contains stdout "~ Package/dltest-hello updated (version 2.0 -> 1.0)" &&
	test "$(installed dltest-hello)" = 1.0
'

test_expect_success 'a version that does not exist fails with apt'\''s reason; its dependents skip' '
	write_file repo/pin.yaml <<-Y &&
	apiVersion: driftless/v1
	kind: Package
	metadata: {name: dltest-pre}
	spec: {version: "9.9"}
	---
	apiVersion: driftless/v1
	kind: File
	metadata: {name: pre-conf}
	spec: {path: /srv/pre.conf, content: "x\n", dependsOn: [Package/dltest-pre]}
	---
	apiVersion: driftless/v1
	kind: File
	metadata: {name: other}
	spec: {path: /srv/other, content: "independent\n"}
	Y
	repo_commit repo "bad pin" &&
	expect_exit 1 dl_apply repo &&
	expect_contains stdout "! Package/dltest-pre failed: '\''dltest-pre'\'' was not installed: apt-get install (simulated) failed (exit status 100): " &&
	expect_contains stdout "Version '\''9.9'\'' for '\''dltest-pre'\'' was not found" &&
	expect_contains stdout "! File/pre-conf skipped /srv/pre.conf: dependency Package/dltest-pre failed" &&
	expect_contains stdout "+ File/other created /srv/other" &&
	expect_missing "$ROOT/srv/pre.conf" &&
	test -z "$(installed dltest-pre)" &&
	git -C repo rm -q pin.yaml && repo_commit repo "no pin" &&
	expect_exit 0 dl_apply repo
'

test_expect_success 'apt is never allowed to remove a package nobody asked to remove' '
	pkgs "world back" <<-Y &&
	apiVersion: driftless/v1
	kind: Package
	metadata: {name: dltest-world}
	spec: {}
	---
	apiVersion: driftless/v1
	kind: Package
	metadata: {name: dltest-hello}
	spec: {version: "1.0"}
	Y
	expect_exit 0 dl_apply repo &&
	test "$(installed dltest-world)" = 1.0 &&
	n=$(transactions) &&
	pkgs "hello absent" <<-Y &&
	apiVersion: driftless/v1
	kind: Package
	metadata: {name: dltest-world}
	spec: {}
	---
	apiVersion: driftless/v1
	kind: Package
	metadata: {name: dltest-hello}
	spec: {ensure: absent}
	Y
	expect_exit 1 dl_apply repo &&
	expect_contains stdout "apt would also remove dltest-world, which no Package asks to remove; nothing was changed" &&
	pkgs "world needs hello" <<-Y &&
	apiVersion: driftless/v1
	kind: Package
	metadata: {name: dltest-world}
	spec: {}
	Y
	expect_exit 1 dl_apply repo &&
	expect_contains stdout "! Package/dltest-hello failed: '\''dltest-hello'\'' is still installed (1.0): apt would also remove dltest-world" &&
	test "$(installed dltest-hello)" = 1.0 &&
	test "$(installed dltest-world)" = 1.0 &&
	test "$(transactions)" = "$n"
'

test_expect_success 'prune removes what driftless installed, never a package that was there before' '
	dpkg --root="$ROOT" --log="$ROOT/var/log/dpkg.log" -i "$DEBS/dltest-pre_1.0_all.deb" >/dev/null &&
	pkgs "pre declared" <<-Y &&
	apiVersion: driftless/v1
	kind: Package
	metadata: {name: dltest-world}
	spec: {}
	---
	apiVersion: driftless/v1
	kind: Package
	metadata: {name: dltest-hello}
	spec: {}
	---
	apiVersion: driftless/v1
	kind: Package
	metadata: {name: dltest-pre}
	spec: {}
	Y
	expect_exit 0 dl_apply repo &&
	test "$(sqlite3 "$STATE/driftless.db" "SELECT created FROM inventory WHERE id = '\''Package/dltest-pre'\''")" = 0 &&
	test "$(sqlite3 "$STATE/driftless.db" "SELECT created || content FROM inventory WHERE id = '\''Package/dltest-world'\''")" = 1dltest-world &&
	n=$(transactions) &&
	pkgs "nothing declared" <<-Y &&
	apiVersion: driftless/v1
	kind: File
	metadata: {name: keep}
	spec: {path: /srv/keep, content: "keep\n"}
	Y
	expect_exit 0 dl_apply repo &&
	expect_contains stdout "- Package/dltest-world deleted (remove 1.0)" &&
	expect_contains stdout "- Package/dltest-hello deleted (remove 1.0)" &&
	test -z "$(installed dltest-world)" &&
	test -z "$(installed dltest-hello)" &&
	test "$(installed dltest-pre)" = 1.0 &&
	grep -q "^Commandline: .*install -- dltest-hello- dltest-world-$" "$ROOT/var/log/apt/history.log" &&
	test "$(transactions)" = $((n + 1))
'

test_expect_success 'an interrupted dpkg is reported with its remedy; other kinds go on' '
	pkgs "hello latest" <<-Y &&
	apiVersion: driftless/v1
	kind: Package
	metadata: {name: dltest-hello}
	spec: {ensure: latest}
	---
	apiVersion: driftless/v1
	kind: File
	metadata: {name: keep}
	spec: {path: /srv/keep, content: "kept\n"}
	Y
	dpkg --root="$ROOT" --log="$ROOT/var/log/dpkg.log" --unpack "$DEBS/dltest-hello_2.0_all.deb" >/dev/null &&
	n=$(transactions) &&
	expect_exit 1 dl_apply repo &&
	expect_contains stdout "! Package/dltest-hello failed: dpkg was interrupted and needs '\''dpkg --root=$ROOT --configure -a'\''" &&
	expect_contains stdout "unpacked but not yet configured" &&
	expect_contains stdout "~ File/keep updated /srv/keep" &&
	test_cmp_text kept "$ROOT/srv/keep" &&
	test "$(transactions)" = "$n" &&
	dpkg --root="$ROOT" --log="$ROOT/var/log/dpkg.log" --configure -a >/dev/null &&
	expect_exit 0 dl_apply repo &&
	expect_contains stdout "0 created, 0 updated" &&
	test "$(installed dltest-hello)" = 2.0
'

test_expect_success 'a journal left in updates/ is an interrupted dpkg too' '
	echo "Package: dltest-hello" >"$ROOT/var/lib/dpkg/updates/0001" &&
	expect_exit 1 dl_plan repo &&
	expect_contains stdout "its journal (/var/lib/dpkg/updates) was not integrated" &&
	rm "$ROOT/var/lib/dpkg/updates/0001" &&
	expect_exit 0 dl_plan repo --exit-code
'

test_expect_success 'M11: option-like names and bad versions are rejected at their position' '
	printf "%s\n" "apiVersion: driftless/v1
kind: Package
metadata: {name: p1}
spec: {name: --allow-unauthenticated}
---
apiVersion: driftless/v1
kind: Package
metadata: {name: p2}
spec: {name: Foo, version: \"-1\"}
---
apiVersion: driftless/v1
kind: Package
metadata: {name: p3}
spec: {version: \"1.0\", ensure: latest}
---
apiVersion: driftless/v1
kind: Package
metadata: {name: p4}
spec: {version: \"1.0; rm -rf /\"}" >repo/bad.yaml &&
	repo_commit repo bad &&
	n=$(transactions) &&
	test_must_fail dl_apply repo &&
	expect_contains "$SCRATCH/stderr" "bad.yaml:4:14: Package/p1: package name '\''--allow-unauthenticated'\'' must be a Debian package name" &&
	expect_contains "$SCRATCH/stderr" "bad.yaml:9:14: document 2: Package/p2: package name '\''Foo'\'' must be a Debian package name" &&
	expect_contains "$SCRATCH/stderr" "bad.yaml:9:28: document 2: Package/p2: '\''version'\'' '\''-1'\'' must start with a digit" &&
	expect_contains "$SCRATCH/stderr" "bad.yaml:14:17: document 3: Package/p3: '\''version'\'' pins a package only with '\''ensure: present'\''" &&
	expect_contains "$SCRATCH/stderr" "bad.yaml:19:17: document 4: Package/p4: '\''version'\'' '\''1.0; rm -rf /'\'' must be a Debian version" &&
	expect_contains "$SCRATCH/stderr" "nothing was applied" &&
	test "$(transactions)" = "$n" &&
	git -C repo rm -q bad.yaml && repo_commit repo "no bad"
'

test_expect_success 'the host'\''s own package database is untouched' '
	md5sum -c "$SCRATCH/host.sums" &&
	! grep -q dltest- /var/log/dpkg.log 2>/dev/null &&
	! grep -q dltest- /var/log/apt/history.log 2>/dev/null
'

test_done
