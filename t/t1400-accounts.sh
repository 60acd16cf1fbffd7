#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# User and Group through the real useradd/usermod/userdel/groupadd/groupmod/
# groupdel with --prefix, in a scratch root: create, modify, drift, prune
# only what driftless created, adoption, bad names (HARDENING M08, M11),
# local policy (M10), and the host's own account files never touched.
# shellcheck disable=SC2016
# shellcheck disable=SC2317 # helpers are called from the eval'ed bodies
. "$(dirname "$0")/lib.sh"

[ "$(id -u)" = 0 ] || skip_all "needs root (useradd --prefix)"
for t in useradd usermod userdel groupadd groupmod groupdel; do
	[ -x "/usr/sbin/$t" ] || skip_all "/usr/sbin/$t is missing"
done

# A minimal account database, as a fresh system has it.
mkdir -p "$ROOT/etc" "$ROOT/srv"
cat >"$ROOT/etc/passwd" <<'P'
root:x:0:0:root:/root:/bin/bash
daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin
www-data:x:33:33:www-data:/var/www:/usr/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin
P
cat >"$ROOT/etc/group" <<'G'
root:x:0:
daemon:x:1:
www-data:x:33:
users:x:100:
nogroup:x:65534:
G
sed 's/:.*/:*:19000:0:99999:7:::/' "$ROOT/etc/passwd" >"$ROOT/etc/shadow"
sed 's/:.*/:*::/' "$ROOT/etc/group" >"$ROOT/etc/gshadow"
chmod 640 "$ROOT/etc/shadow" "$ROOT/etc/gshadow"
cat >"$ROOT/etc/login.defs" <<'L'
UID_MIN 1000
UID_MAX 60000
SYS_UID_MIN 100
SYS_UID_MAX 999
GID_MIN 1000
GID_MAX 60000
SYS_GID_MIN 100
SYS_GID_MAX 999
USERGROUPS_ENAB yes
ENCRYPT_METHOD SHA512
L
mkdir -p "$ROOT/etc/skel" && echo "# skel" >"$ROOT/etc/skel/.profile"

# The host's own account files: byte-identical at the end.
host_sums() {
	md5sum /etc/passwd /etc/group /etc/shadow /etc/gshadow 2>/dev/null
}
host_sums >"$SCRATCH/host.sums"

# line FILE NAME: the line of NAME in ROOT/etc/FILE
line() {
	grep "^$2:" "$ROOT/etc/$1"
}

repo_init repo
write_file repo/users.yaml <<'Y'
apiVersion: driftless/v1
kind: User
metadata: {name: alice}
spec:
  uid: 2001
  groups: [devs, users]
  shell: /bin/sh
  comment: Alice Example
---
apiVersion: driftless/v1
kind: User
metadata: {name: svc}
spec:
  name: svc_app
  system: true
  group: app
  home: /srv/app
  shell: /usr/sbin/nologin
---
apiVersion: driftless/v1
kind: File
metadata: {name: app-conf}
spec:
  path: /srv/app.conf
  content: "owned by a user of this pass\n"
  owner: svc_app
  group: app
  mode: "0640"
Y
# the groups come later in file order: the implicit dependency orders them first
write_file repo/zz-groups.yaml <<'Y'
apiVersion: driftless/v1
kind: Group
metadata: {name: devs}
spec: {gid: 3000}
---
apiVersion: driftless/v1
kind: Group
metadata: {name: app}
spec: {system: true}
Y
repo_commit repo init

test_expect_success 'plan shows the accounts to create, groups first' '
	expect_exit 0 dl_plan repo &&
	expect_contains stdout "+ create Group/devs (group '\''devs'\'', gid 3000)" &&
	expect_contains stdout "+ create User/alice (user '\''alice'\'', uid 2001)" &&
	expect_contains stdout "+ create User/svc (user '\''svc_app'\'')" &&
	grep -n "Group/app\|User/svc\|File/app-conf" stdout >order &&
	test "$(cut -d" " -f3 order | tr "\n" " ")" = "Group/app User/svc File/app-conf " &&
	test "$(grep -c "Group/devs\|User/alice" stdout)" = 2 &&
	test "$(grep -n Group/devs stdout | cut -d: -f1)" -lt "$(grep -n User/alice stdout | cut -d: -f1)" &&
	expect_missing "$ROOT/home"
'

test_expect_success 'apply creates groups, users and a file owned by a new user' '
	expect_exit 0 dl_apply repo &&
	expect_contains stdout "5 created" &&
	line group devs | grep -q "^devs:x:3000:alice$" &&
	line group users | grep -q "^users:x:100:alice$" &&
	line passwd alice | grep -q "^alice:x:2001:2001:Alice Example:/home/alice:/bin/sh$" &&
	appgid=$(line group app | cut -d: -f3) &&
	svc=$(line passwd svc_app) &&
	test "$(echo "$svc" | cut -d: -f4)" = "$appgid" &&
	test "$(echo "$svc" | cut -d: -f3)" -lt 1000 &&
	test "$(echo "$svc" | cut -d: -f6-)" = "/srv/app:/usr/sbin/nologin" &&
	test "$(stat -c "%u:%g" "$ROOT/srv/app.conf")" = "$(echo "$svc" | cut -d: -f3):$appgid" &&
	test -f "$ROOT/home/alice/.profile" &&
	test "$(stat -c %u "$ROOT/home/alice")" = 2001 &&
	expect_missing "$ROOT/srv/app" &&
	line shadow alice | grep -q "^alice:!:"
'

test_expect_success 'a second apply changes nothing' '
	expect_exit 0 dl_apply repo &&
	expect_contains stdout "0 created, 0 updated, 0 deleted, 5 unchanged" &&
	expect_exit 0 dl_plan repo --exit-code
'

test_expect_success 'drift: a hand-edited shell and a dropped membership are repaired' '
	sed -i "s|^alice:\(.*\):/bin/sh$|alice:\1:/bin/bash|; s|^devs:x:3000:alice$|devs:x:3000:|" \
		"$ROOT/etc/passwd" "$ROOT/etc/group" &&
	expect_exit 2 dl_plan repo --exit-code &&
	expect_contains stdout "~ update User/alice (shell /bin/bash -> /bin/sh, groups [users] -> [devs,users])" &&
	expect_exit 0 dl_apply repo &&
	expect_contains stdout "~ User/alice updated (shell /bin/bash -> /bin/sh, groups [users] -> [devs,users])" &&
	line passwd alice | grep -q ":/bin/sh$" &&
	line group devs | grep -q ":alice$" &&
	expect_exit 0 dl history --state "$STATE" -n 1 &&
	expect_contains stdout "User/alice"
'

test_expect_success 'a changed spec goes through usermod and groupmod' '
	sed -i "s/comment: Alice Example/comment: Alice E./; s/groups: \[devs, users\]/groups: [devs]/" \
		repo/users.yaml &&
	sed -i "s/gid: 3000/gid: 3100/" repo/zz-groups.yaml &&
	repo_commit repo "modify" &&
	expect_exit 0 dl_apply repo &&
	expect_contains stdout "~ Group/devs updated (gid 3000 -> 3100)" &&
	expect_contains stdout "comment '\''Alice Example'\'' -> '\''Alice E.'\''" &&
	expect_contains stdout "groups [devs,users] -> [devs]" &&
	line group devs | grep -q "^devs:x:3100:alice$" &&
	line group users | grep -q "^users:x:100:$" &&
	line passwd alice | grep -q ":Alice E.:" &&
	expect_exit 0 dl_apply repo &&
	expect_contains stdout "0 updated"
'

test_expect_success 'a pre-existing account needs adopt to be changed' '
	write_file repo/adopt.yaml <<-Y &&
	apiVersion: driftless/v1
	kind: User
	metadata: {name: www-data}
	spec: {shell: /bin/sh}
	---
	apiVersion: driftless/v1
	kind: User
	metadata: {name: daemon}
	spec: {}
	Y
	repo_commit repo "take over www-data" &&
	expect_exit 1 dl_apply repo &&
	expect_contains stdout "! User/www-data failed: User '\''www-data'\'' already exists and was not created by driftless; set '\''adopt: true'\'' to take it over" &&
	line passwd www-data | grep -q ":/usr/sbin/nologin$" &&
	sed -i "s|spec: {shell: /bin/sh}|spec: {shell: /bin/sh, adopt: true}|" repo/adopt.yaml &&
	repo_commit repo "adopt www-data" &&
	expect_exit 0 dl_apply repo &&
	expect_contains stdout "~ User/www-data updated (shell /usr/sbin/nologin -> /bin/sh)" &&
	line passwd www-data | grep -q ":/bin/sh$" &&
	test "$(sqlite3 "$STATE/driftless.db" "SELECT created FROM inventory WHERE id = '\''User/www-data'\''")" = 0 &&
	test "$(sqlite3 "$STATE/driftless.db" "SELECT created FROM inventory WHERE id = '\''User/daemon'\''")" = 0
'

test_expect_success 'a renamed account: the old one is removed first, the new one created' '
	sed -i "s/name: svc_app/name: svc_web/" repo/users.yaml &&
	sed -i "s/owner: svc_app/owner: svc_web/" repo/users.yaml &&
	repo_commit repo "rename" &&
	expect_exit 0 dl_apply repo &&
	expect_contains stdout "- User/svc deleted (user '\''svc_app'\''" &&
	expect_contains stdout "+ User/svc created (user '\''svc_web'\'')" &&
	! line passwd svc_app &&
	line passwd svc_web &&
	test "$(stat -c %u "$ROOT/srv/app.conf")" = "$(line passwd svc_web | cut -d: -f3)" &&
	test "$(sqlite3 "$STATE/driftless.db" "SELECT content FROM inventory WHERE id = '\''User/svc'\''")" = svc_web
'

test_expect_success 'prune removes only the accounts driftless created, users before groups' '
	git -C repo rm -q users.yaml zz-groups.yaml adopt.yaml &&
	write_file repo/keep.yaml <<-Y &&
	apiVersion: driftless/v1
	kind: File
	metadata: {name: keep}
	spec: {path: /srv/keep, content: "keep\n"}
	Y
	repo_commit repo "prune" &&
	expect_exit 0 dl_apply repo &&
	expect_contains stdout "- User/alice deleted" &&
	expect_contains stdout "- User/svc deleted" &&
	expect_contains stdout "- Group/devs deleted" &&
	expect_contains stdout "- Group/app deleted" &&
	test "$(grep -n "User/svc deleted" stdout | cut -d: -f1)" -lt "$(grep -n "Group/app deleted" stdout | cut -d: -f1)" &&
	test "$(grep -n "User/alice deleted" stdout | cut -d: -f1)" -lt "$(grep -n "Group/devs deleted" stdout | cut -d: -f1)" &&
	! line passwd alice && ! line passwd svc_web && ! line group devs && ! line group app &&
	! line group alice &&
	line passwd www-data | grep -q ":/bin/sh$" &&
	line passwd daemon &&
	test -d "$ROOT/home/alice" &&
	test "$(sqlite3 "$STATE/driftless.db" "SELECT count(*) FROM inventory WHERE kind IN ('\''User'\'', '\''Group'\'')")" = 0
'

test_expect_success 'ensure: absent removes an account that exists' '
	write_file repo/gone.yaml <<-Y &&
	apiVersion: driftless/v1
	kind: User
	metadata: {name: nobody}
	spec: {ensure: absent}
	---
	apiVersion: driftless/v1
	kind: Group
	metadata: {name: never-there}
	spec: {ensure: absent}
	Y
	repo_commit repo "absent" &&
	expect_exit 0 dl_apply repo &&
	expect_contains stdout "- User/nobody deleted (user '\''nobody'\'', uid 65534)" &&
	! line passwd nobody &&
	expect_exit 0 dl_apply repo &&
	expect_contains stdout "0 deleted"
'

test_expect_success 'a failed group skips the user that needs it, with the reason' '
	write_file repo/dep.yaml <<-Y &&
	apiVersion: driftless/v1
	kind: Group
	metadata: {name: clash}
	spec: {gid: 33}
	---
	apiVersion: driftless/v1
	kind: User
	metadata: {name: bob}
	spec: {group: clash}
	---
	apiVersion: driftless/v1
	kind: User
	metadata: {name: carol}
	spec: {}
	Y
	repo_commit repo "clash" &&
	expect_exit 1 dl_apply repo &&
	expect_contains stdout "! Group/clash failed: groupadd failed (exit status 4): groupadd: GID '\''33'\'' already exists" &&
	expect_contains stdout "! User/bob skipped: dependency Group/clash failed" &&
	expect_contains stdout "+ User/carol created" &&
	! line passwd bob && line passwd carol &&
	git -C repo rm -q dep.yaml && repo_commit repo "no clash" &&
	expect_exit 0 dl_apply repo &&
	! line passwd carol
'

# reject FILE-CONTENT EXPECTED...: bad.yaml must be rejected by validate and
# apply with each EXPECTED on stderr, and the account files stay as they are.
reject() {
	local content=$1
	shift
	printf '%s\n' "$content" >repo/bad.yaml &&
	repo_commit repo "bad" &&
	before=$(cat "$ROOT/etc/passwd" "$ROOT/etc/group") &&
	test_must_fail dl validate --repo repo &&
	for want in "$@"; do expect_contains "$SCRATCH/stderr" "$want" || return 1; done &&
	test_must_fail dl_apply repo &&
	for want in "$@"; do expect_contains "$SCRATCH/stderr" "$want" || return 1; done &&
	expect_contains "$SCRATCH/stderr" "nothing was applied" &&
	test "$before" = "$(cat "$ROOT/etc/passwd" "$ROOT/etc/group")" &&
	git -C repo rm -q bad.yaml && repo_commit repo "no bad"
}

test_expect_success 'M11: option-like and separator names are rejected at their position' '
	reject "apiVersion: driftless/v1
kind: User
metadata: {name: u1}
spec: {name: -oNonUnique}
---
apiVersion: driftless/v1
kind: User
metadata: {name: u2}
spec:
  name: \"evil:0:0\"
---
apiVersion: driftless/v1
kind: Group
metadata: {name: g1}
spec: {name: \"a b\"}
---
apiVersion: driftless/v1
kind: User
metadata: {name: u3}
spec: {groups: [ok, \"-G\"], comment: \"x:y\"}" \
	"bad.yaml:4:14: User/u1: user name '\''-oNonUnique'\'' must be a number or a name" \
	"bad.yaml:10:9: document 2: User/u2: user name '\''evil:0:0'\''" \
	"bad.yaml:15:14: document 3: Group/g1: group name '\''a b'\''" \
	"bad.yaml:20:16: document 4: User/u3: '\''groups'\'' names '\''-G'\''" \
	"bad.yaml:20:37: document 4: User/u3: '\''comment'\'' must not contain '\'':'\''"
'

test_expect_success 'M08: control characters and bad ids are rejected' '
	reject "apiVersion: driftless/v1
kind: User
metadata: {name: u4}
spec: {name: \"deploy\\n\", uid: abc}
---
apiVersion: driftless/v1
kind: Group
metadata: {name: g2}
spec: {gid: \"-1\"}
---
apiVersion: driftless/v1
kind: User
metadata: {name: u5}
spec: {uid: 99999999999, shell: bin/sh}" \
	"bad.yaml:4:14: document 1: User/u4: '\''name'\'' must not contain the control character U+000A" \
	"bad.yaml:4:31: User/u4: '\''uid'\'' '\''abc'\'' must be a number like 1000" \
	"bad.yaml:9:13: document 2: Group/g2: '\''gid'\'' '\''-1'\'' must be a number like 1000" \
	"bad.yaml:14:13: document 3: User/u5: '\''uid'\'' '\''99999999999'\''" \
	"bad.yaml:14:33: document 3: User/u5: '\''shell'\'' must be an absolute path"
'

test_expect_success 'M10: uid 0, the root user and the root group are denied by default' '
	reject "apiVersion: driftless/v1
kind: User
metadata: {name: toor}
spec: {uid: 0}
---
apiVersion: driftless/v1
kind: User
metadata: {name: root}
spec: {shell: /bin/sh}
---
apiVersion: driftless/v1
kind: User
metadata: {name: eve}
spec: {group: root, groups: [sudo]}
---
apiVersion: driftless/v1
kind: Group
metadata: {name: wheel}
spec: {gid: 0}" \
	"bad.yaml:4:13: User/toor: '\''uid'\'' 0 is denied by local policy rule '\''policy.allowRootAccounts'\''" \
	"bad.yaml:6:1: document 2: User/root: user '\''root'\'' is denied by local policy rule '\''policy.allowRootAccounts'\''" \
	"bad.yaml:14:15: document 3: User/eve: '\''group'\'' '\''root'\'' is denied by local policy rule '\''policy.allowRootAccounts'\''" \
	"bad.yaml:19:13: document 4: Group/wheel: '\''gid'\'' 0 is denied by local policy rule '\''policy.allowRootAccounts'\''"
'

test_expect_success 'M10: an existing uid-0 account is refused at observe, and policy.groups limits memberships' '
	echo "toor:x:0:0::/root:/bin/sh" >>"$ROOT/etc/passwd" &&
	write_file repo/toor.yaml <<-Y &&
	apiVersion: driftless/v1
	kind: User
	metadata: {name: toor}
	spec: {shell: /bin/bash, adopt: true}
	Y
	repo_commit repo "toor" &&
	expect_exit 1 dl_apply repo &&
	expect_contains stdout "! User/toor failed: user '\''toor'\'' has uid 0: denied by local policy rule '\''policy.allowRootAccounts'\''" &&
	line passwd toor | grep -q ":/bin/sh$" &&
	printf "policy:\n  groups: [users]\n" >"$SCRATCH/groups.yaml" &&
	write_file repo/toor.yaml <<-Y &&
	apiVersion: driftless/v1
	kind: User
	metadata: {name: dave}
	spec: {groups: [users, daemon]}
	Y
	repo_commit repo "dave" &&
	test_must_fail dl_apply repo -c "$SCRATCH/groups.yaml" &&
	expect_contains "$SCRATCH/stderr" "'\''groups'\'' '\''daemon'\'' is denied by local policy rule '\''policy.groups'\''" &&
	! line passwd dave &&
	git -C repo rm -q toor.yaml && repo_commit repo "no dave"
'

test_expect_success 'M10: allowRootAccounts lets Git manage root; policy.kinds can deny accounts' '
	write_file repo/root.yaml <<-Y &&
	apiVersion: driftless/v1
	kind: User
	metadata: {name: root}
	spec: {shell: /bin/sh, adopt: true}
	Y
	repo_commit repo "root shell" &&
	printf "policy:\n  allowRootAccounts: true\n" >"$SCRATCH/root.yaml" &&
	expect_exit 0 dl_apply repo -c "$SCRATCH/root.yaml" &&
	expect_contains stdout "~ User/root updated (shell /bin/bash -> /bin/sh)" &&
	line passwd root | grep -q ":/bin/sh$" &&
	printf "policy:\n  kinds: [File, Directory]\n" >"$SCRATCH/kinds.yaml" &&
	test_must_fail dl_apply repo -c "$SCRATCH/kinds.yaml" &&
	expect_contains "$SCRATCH/stderr" "root.yaml:2:7: kind User is denied by local policy rule '\''policy.kinds'\''" &&
	git -C repo rm -q root.yaml && repo_commit repo "root unmanaged" &&
	expect_exit 0 dl_apply repo &&
	line passwd root
'

test_expect_success 'the host'\''s own account files are untouched' '
	host_sums >"$SCRATCH/host.after" &&
	test_cmp "$SCRATCH/host.sums" "$SCRATCH/host.after"
'

test_done
