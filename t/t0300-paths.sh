#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Path escapes and local policy (HARDENING M09, M10, R01, R03): nothing
# outside the allowed roots is read or written.
# shellcheck disable=SC2016
. "$(dirname "$0")/lib.sh"

repo_init repo
write_file repo/ok.yaml <<'Y'
apiVersion: driftless/v1
kind: File
metadata: {name: ok}
spec: {path: /srv/app/ok.conf, content: "ok\n"}
Y
repo_commit repo good
mkdir -p "$ROOT/srv/app" "$ROOT/etc"
canary_make "$SCRATCH/outside/shadow.canary"
canary_make "$SCRATCH/outside/dir/keep"
write_file "$SCRATCH/policy.yaml" <<'Y'
policy:
  roots: [/srv, /etc/app]
Y

test_expect_success 'a good revision applies under the policy roots' '
	expect_exit 0 dl_apply repo -c "$SCRATCH/policy.yaml" &&
	test_cmp_text ok "$ROOT/srv/app/ok.conf"
'

reject() {
	printf '%s\n' "$1" >repo/bad.yaml &&
	shift &&
	repo_commit repo bad &&
	test_must_fail dl_apply repo -c "$SCRATCH/policy.yaml" &&
	for want in "$@"; do expect_contains "$SCRATCH/stderr" "$want" || return 1; done &&
	expect_contains "$SCRATCH/stderr" "nothing was applied" &&
	canary_check
}

test_expect_success 'M09: relative, dot-dot and kernel paths are refused' '
	reject "apiVersion: driftless/v1
kind: File
metadata: {name: a}
spec: {path: ../../etc/shadow, content: x}
---
apiVersion: driftless/v1
kind: File
metadata: {name: b}
spec: {path: /srv/app/../../etc/cron.d/x, content: x}
---
apiVersion: driftless/v1
kind: File
metadata: {name: c}
spec: {path: /proc/sys/kernel/core_pattern, content: x}
---
apiVersion: driftless/v1
kind: File
metadata: {name: d}
spec: {path: /dev/sda, content: x}" \
	"'\''path'\'' must be an absolute path" "'\''path'\'' must not contain '\''..'\''" \
	"'\''/proc/sys/kernel/core_pattern'\'' is denied by local policy" "'\''/dev/sda'\'' is denied by local policy"
'

test_expect_success 'M10: paths outside policy.roots are refused naming the rule' '
	reject "apiVersion: driftless/v1
kind: File
metadata: {name: sudo}
spec: {path: /etc/sudoers.d/evil, content: x}
---
apiVersion: driftless/v1
kind: File
metadata: {name: keys}
spec: {path: /root/.ssh/authorized_keys, content: x}" \
	"'\''/etc/sudoers.d/evil'\'' is outside the allowed roots of the local policy ('\''policy.roots'\'')" \
	"'\''/root/.ssh/authorized_keys'\'' is outside the allowed roots" &&
	expect_missing "$ROOT/etc/sudoers.d" && expect_missing "$ROOT/root"
'

test_expect_success 'M09: a source outside the repository or absolute is refused' '
	reject "apiVersion: driftless/v1
kind: File
metadata: {name: s1}
spec: {path: /srv/app/s1, source: ../../../../root/.ssh/id_ed25519}
---
apiVersion: driftless/v1
kind: File
metadata: {name: s2}
spec: {path: /srv/app/s2, source: /etc/shadow}" \
	"'\''source'\'' leaves the repository" "'\''source'\'' must be relative to the manifest"
'

test_expect_success 'R01: a symlink in the tree is never followed as content' '
	ln -s "$SCRATCH/outside/shadow.canary" repo/leak.txt &&
	ln -s ../ok.yaml repo/link.yaml &&
	reject "apiVersion: driftless/v1
kind: File
metadata: {name: leak}
spec: {path: /srv/app/leak, source: leak.txt}" \
	"'\''source'\'' names '\''leak.txt'\'', a symlink: symlink not allowed as source" \
	"link.yaml: manifest is a symlink" &&
	expect_not_contains "$SCRATCH/stderr" "canary" &&
	expect_missing "$ROOT/srv/app/leak" &&
	rm repo/leak.txt repo/link.yaml
'

test_expect_success 'R01: a source is never reached through a symlinked folder' '
	mkdir -p repo/real && echo inside >repo/real/f.conf &&
	ln -s real repo/lnk && ln -s "$SCRATCH/outside" repo/out &&
	reject "apiVersion: driftless/v1
kind: File
metadata: {name: via}
spec: {path: /srv/app/via, source: lnk/f.conf}
---
apiVersion: driftless/v1
kind: File
metadata: {name: out}
spec: {path: /srv/app/out, source: out/shadow.canary}" \
	"'\''source'\'' names '\''lnk/f.conf'\'', which does not exist in the commit" \
	"'\''source'\'' names '\''out/shadow.canary'\'', which does not exist in the commit" &&
	expect_missing "$ROOT/srv/app/via" &&
	expect_missing "$ROOT/srv/app/out" &&
	rm -r repo/real repo/lnk repo/out
'

test_expect_success 'R01: a Symlink resource pointing outside the roots is refused' '
	reject "apiVersion: driftless/v1
kind: Symlink
metadata: {name: l1}
spec: {path: /srv/app/l1, target: /etc/shadow}
---
apiVersion: driftless/v1
kind: Symlink
metadata: {name: l2}
spec: {path: /srv/app/l2, target: ../../../etc/shadow}" \
	"'\''target'\'' points at '\''/etc/shadow'\'', which is outside the allowed roots"
'

test_expect_success 'R01: a Directory source holding a symlink is refused' '
	mkdir -p repo/site && echo hi >repo/site/index.html &&
	ln -s /etc/shadow repo/site/shadow &&
	reject "apiVersion: driftless/v1
kind: Directory
metadata: {name: site}
spec: {path: /srv/site, source: site}" \
	"'\''source'\'' holds '\''site/shadow'\'', a symlink: symlink not allowed as source" &&
	rm repo/site/shadow
'

# commit_git_dir NAME: commit a tree whose site/ holds a NAME/config entry,
# which git add refuses, so it is built with mktree.
commit_git_dir() {
	blob=$(echo x | git -C repo hash-object -w --stdin) &&
	gt=$(printf "100644 blob %s\tconfig\n" "$blob" | git -C repo mktree) &&
	site=$(printf "040000 tree %s\t%s\n100644 blob %s\tindex.html\n" "$gt" "$1" "$blob" | git -C repo mktree) &&
	root=$( (git -C repo ls-tree HEAD | grep -v "	site\$"; printf "040000 tree %s\tsite\n" "$site") | git -C repo mktree) &&
	c=$(git -C repo commit-tree "$root" -p HEAD -m "git dir") &&
	git -C repo update-ref refs/heads/main "$c"
}

test_expect_success 'R03: .git entries in a mirrored folder are refused, in any spelling' '
	printf "%s\n" "apiVersion: driftless/v1
kind: Directory
metadata: {name: site}
spec: {path: /srv/site, source: site}" >repo/bad.yaml &&
	repo_commit repo site &&
	good=$(repo_head repo) &&
	for name in .GIT ".git " git~1 .Git.; do
		commit_git_dir "$name" &&
		test_must_fail dl_apply repo -c "$SCRATCH/policy.yaml" &&
		expect_contains "$SCRATCH/stderr" "is a git metadata name" || return 1
	done &&
	expect_missing "$ROOT/srv/site" &&
	git -C repo update-ref refs/heads/main "$good" &&
	git -C repo reset -q --hard &&
	git -C repo rm -q bad.yaml && repo_commit repo "no site"
'

test_expect_success 'R03: paths that differ only in case are refused' '
	reject "apiVersion: driftless/v1
kind: File
metadata: {name: c1}
spec: {path: /srv/app/App.conf, content: x}
---
apiVersion: driftless/v1
kind: File
metadata: {name: c2}
spec: {path: /srv/app/app.conf, content: x}" \
	"differ only in case"
'

test_expect_success 'F10: a symlinked parent directory on the host is never followed' '
	git -C repo rm -q bad.yaml &&
	write_file repo/esc.yaml <<-Y &&
	apiVersion: driftless/v1
	kind: File
	metadata: {name: esc}
	spec: {path: /srv/app/dir/keep, content: "pwned\n", adopt: true}
	Y
	repo_commit repo esc &&
	ln -s "$SCRATCH/outside/dir" "$ROOT/srv/app/dir" &&
	test_must_fail dl_apply repo -c "$SCRATCH/policy.yaml" &&
	expect_contains stdout "has a symlink in its path" &&
	canary_check &&
	rm "$ROOT/srv/app/dir"
'

test_expect_success 'F10: a symlink at the managed path is replaced, never followed' '
	ln -s "$SCRATCH/outside/shadow.canary" "$ROOT/srv/app/ok.conf.new" &&
	write_file repo/esc.yaml <<-Y &&
	apiVersion: driftless/v1
	kind: File
	metadata: {name: esc}
	spec: {path: /srv/app/ok.conf.new, content: "mine\n", adopt: true}
	Y
	repo_commit repo esc2 &&
	expect_exit 0 dl_apply repo -c "$SCRATCH/policy.yaml" &&
	test ! -L "$ROOT/srv/app/ok.conf.new" &&
	test_cmp_text mine "$ROOT/srv/app/ok.conf.new" &&
	canary_check
'

test_expect_success 'a Directory source mirrors the folder recursively and purge removes strays' '
	mkdir -p repo/site/css && echo body >repo/site/css/site.css && chmod +x repo/site/index.html &&
	write_file repo/site.yaml <<-Y &&
	apiVersion: driftless/v1
	kind: Directory
	metadata: {name: site}
	spec: {path: /srv/site, source: site, purge: true, mode: "0755"}
	Y
	repo_commit repo site &&
	mkdir -p "$ROOT/srv/site" && echo stray >"$ROOT/srv/site/stray.txt" &&
	expect_exit 0 dl_apply repo -c "$SCRATCH/policy.yaml" &&
	test_cmp repo/site/index.html "$ROOT/srv/site/index.html" &&
	test_cmp repo/site/css/site.css "$ROOT/srv/site/css/site.css" &&
	expect_mode 755 "$ROOT/srv/site/index.html" &&
	expect_mode 644 "$ROOT/srv/site/css/site.css" &&
	expect_missing "$ROOT/srv/site/stray.txt" &&
	oid=$(echo stray | git hash-object --stdin) &&
	test -f "$STATE/backups/${oid:0:2}/${oid:2}"
'

test_expect_success 'removing a file from a mirrored folder prunes it' '
	git -C repo rm -q site/css/site.css &&
	repo_commit repo "drop css" &&
	expect_exit 0 dl_apply repo -c "$SCRATCH/policy.yaml" &&
	expect_missing "$ROOT/srv/site/css"
'

test_expect_success 'M10: a kind outside policy.kinds is refused naming the rule' '
	printf "policy:\n  roots: [/srv]\n  kinds: [File, Directory]\n" >"$SCRATCH/kinds.yaml" &&
	write_file repo/link.yaml <<-Y &&
	apiVersion: driftless/v1
	kind: Symlink
	metadata: {name: lnk}
	spec: {path: /srv/app/lnk, target: ok.conf}
	Y
	repo_commit repo link &&
	test_must_fail dl_apply repo -c "$SCRATCH/kinds.yaml" &&
	expect_contains "$SCRATCH/stderr" "link.yaml:2:7: kind Symlink is denied by local policy rule '\''policy.kinds'\''" &&
	expect_missing "$ROOT/srv/app/lnk"
'

test_expect_success 'M10: owners and groups outside policy.owners/groups are refused' '
	printf "policy:\n  roots: [/srv]\n  owners: [nobody, \"65534\"]\n  groups: [nogroup]\n" >"$SCRATCH/owners.yaml" &&
	write_file repo/link.yaml <<-Y &&
	apiVersion: driftless/v1
	kind: File
	metadata: {name: rootowned}
	spec: {path: /srv/app/r, content: x, owner: root}
	---
	apiVersion: driftless/v1
	kind: File
	metadata: {name: uid0}
	spec: {path: /srv/app/u, content: x, owner: "0", group: root}
	---
	apiVersion: driftless/v1
	kind: File
	metadata: {name: fine}
	spec: {path: /srv/app/n, content: x, owner: "65534", group: nogroup}
	Y
	repo_commit repo owners &&
	test_must_fail dl_apply repo -c "$SCRATCH/owners.yaml" &&
	expect_contains "$SCRATCH/stderr" "'\''owner'\'' '\''root'\'' is denied by local policy rule '\''policy.owners'\''" &&
	expect_contains "$SCRATCH/stderr" "'\''owner'\'' '\''0'\'' is denied by local policy rule" &&
	expect_not_contains "$SCRATCH/stderr" "File/fine" &&
	expect_missing "$ROOT/srv/app/r"
'

test_expect_success 'source.verify without trust material is refused, not ignored' '
	printf "source:\n  verify: {mode: strict}\npolicy: /srv\n" >"$SCRATCH/bad.yaml" &&
	test_must_fail dl_apply repo -c "$SCRATCH/bad.yaml" &&
	expect_contains "$SCRATCH/stderr" "bad.yaml:2:11: '\''source.verify'\'' needs '\''allowedSigners'\'' or '\''gpgKeyring'\''" &&
	expect_contains "$SCRATCH/stderr" "bad.yaml:3:9: '\''policy'\'' must be a mapping"
'

test_expect_success 'R05: a source blob over policy.maxFileSize is refused before it is read' '
	printf "policy:\n  roots: [/srv]\n  maxFileSize: \"1000\"\n" >"$SCRATCH/small.yaml" &&
	head -c 5000 /dev/zero | tr "\\0" x >repo/big.txt &&
	write_file repo/link.yaml <<-Y &&
	apiVersion: driftless/v1
	kind: File
	metadata: {name: big}
	spec: {path: /srv/app/big, source: big.txt}
	Y
	repo_commit repo big &&
	test_must_fail dl_apply repo -c "$SCRATCH/small.yaml" &&
	expect_contains "$SCRATCH/stderr" "'\''source'\'' '\''big.txt'\'' is 5000 bytes, more than the limit of 1000" &&
	expect_missing "$ROOT/srv/app/big"
'

test_done
