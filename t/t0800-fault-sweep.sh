#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Fault sweep (HARDENING F01, F03, F06): SIGKILL, ENOSPC, EIO and EROFS injected at
# the Nth call of every syscall an apply makes to the host and the state,
# for N = 1, 2, ... until the apply runs through. After each fault every
# managed file is its old or its new content (never empty or mixed), and the
# next plain apply converges without help: exact new state, no temporaries,
# a database that passes its integrity check.
# shellcheck disable=SC2016
. "$(dirname "$0")/lib.sh"

command -v strace >/dev/null || skip_all "needs strace"

repo_init repo
manifest() { # NAME CONTENT
	write_file "repo/$1.yaml" <<-Y
	apiVersion: driftless/v1
	kind: File
	metadata: {name: $1}
	spec: {path: /srv/app/$1.conf, content: "$2\n", mode: "0640"}
	Y
}
write_file repo/dir.yaml <<'Y'
apiVersion: driftless/v1
kind: Directory
metadata: {name: app}
spec: {path: /srv/app}
Y
for f in a b c d; do manifest "$f" "old $f"; done
repo_commit repo v1 && git -C repo tag v1
for f in a b c; do manifest "$f" "new $f"; done
git -C repo rm -q d.yaml && manifest e "new e"
repo_commit repo v2 && git -C repo tag v2
mkdir -p "$ROOT/srv"

SYSCALLS=openat,openat2,write,pwrite64,fsync,fdatasync,syncfs,rename,renameat,renameat2,linkat,unlinkat,mkdirat,fchmod,fchown,ftruncate

# state_ok: every file is old or new (or absent where it may be)
state_ok() {
	for f in a b c; do
		c=$(cat "$ROOT/srv/app/$f.conf" 2>/dev/null) || { echo "$f missing"; return 1; }
		[ "$c" = "old $f" ] || [ "$c" = "new $f" ] || { echo "$f holds [$c]"; return 1; }
	done
	if [ -e "$ROOT/srv/app/d.conf" ]; then test "$(cat "$ROOT/srv/app/d.conf")" = "old d" || return 1; fi
	if [ -e "$ROOT/srv/app/e.conf" ]; then test "$(cat "$ROOT/srv/app/e.conf")" = "new e" || return 1; fi
}

converged() {
	for f in a b c e; do test_cmp_text "new $f" "$ROOT/srv/app/$f.conf" || return 1; done &&
	expect_missing "$ROOT/srv/app/d.conf" &&
	expect_mode 640 "$ROOT/srv/app/a.conf" &&
	test -z "$(find "$ROOT" -name ".driftless-tmp.*")" &&
	test "$(sqlite3 "$STATE/driftless.db" "PRAGMA integrity_check")" = ok
}

# sweep HOW: HOW is an strace injection action (signal=KILL, error=ENOSPC, ...)
sweep() {
	local how=$1 n=1 done=0 runs=0
	while [ $n -le 200 ] && [ $done = 0 ]; do
		dl_apply repo --tag v1 >/dev/null 2>&1 || { echo "reset to v1 failed at N=$n"; return 1; }
		rc=0
		# LeakSanitizer cannot run under ptrace: no leak check in these runs
		ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" \
		strace -f -o /dev/null -e trace=$SYSCALLS -e inject=$SYSCALLS:$how:when=$n \
			"$DRIFTLESS" apply --repo repo --tag v2 --root "$ROOT" --state "$STATE" \
			>"$SCRATCH/out" 2>&1 || rc=$?
		[ $rc = 0 ] && done=1
		runs=$((runs + 1))
		state_ok || { echo "N=$n ($how): bad state after the fault"; cat "$SCRATCH/out"; return 1; }
		dl_apply repo --tag v2 >"$SCRATCH/out2" 2>&1 || { echo "N=$n ($how): no convergence"; cat "$SCRATCH/out2"; return 1; }
		converged || { echo "N=$n ($how): not converged"; cat "$SCRATCH/out" "$SCRATCH/out2"; return 1; }
		n=$((n + 1))
	done
	echo "$how: $runs fault points, the last run went through: $done"
	test $done = 1
}

test_expect_success 'the two revisions apply' '
	expect_exit 0 dl_apply repo --tag v1 &&
	expect_exit 0 dl_apply repo --tag v2 &&
	converged
'

test_expect_success 'F01/F03: SIGKILL at every syscall of an apply' '
	sweep signal=KILL
'

test_expect_success 'F06: ENOSPC at every syscall of an apply' '
	sweep error=ENOSPC
'

test_expect_success 'F06: EIO at every syscall of an apply' '
	sweep error=EIO
'

test_expect_success 'F06: EROFS (a read-only remount) at every syscall of an apply' '
	sweep error=EROFS
'

test_expect_success 'F06: a file system remounted read-only: apply fails cleanly, converges once writable' '
	mkdir -p "$SCRATCH/ro" &&
	if ! mount -t tmpfs -o size=1m tmpfs "$SCRATCH/ro" 2>/dev/null; then
		echo "cannot mount a tmpfs here; skipped"; exit 0
	fi
	mkdir -p "$SCRATCH/ro/srv" &&
	dl apply --repo repo --tag v1 --root "$SCRATCH/ro" --state "$SCRATCH/st-ro" >/dev/null &&
	mount -o remount,ro "$SCRATCH/ro" &&
	test_must_fail dl apply --repo repo --tag v2 --root "$SCRATCH/ro" --state "$SCRATCH/st-ro" &&
	expect_contains "$SCRATCH/stdout" "Read-only file system" &&
	test "$(cat "$SCRATCH/ro/srv/app/a.conf")" = "old a" &&
	test "$(sqlite3 "$SCRATCH/st-ro/driftless.db" "PRAGMA integrity_check")" = ok &&
	mount -o remount,rw "$SCRATCH/ro" &&
	expect_exit 0 dl apply --repo repo --tag v2 --root "$SCRATCH/ro" --state "$SCRATCH/st-ro" &&
	test "$(cat "$SCRATCH/ro/srv/app/a.conf")" = "new a" &&
	test -z "$(find "$SCRATCH/ro" -name ".driftless-tmp.*")" &&
	umount "$SCRATCH/ro"
'

test_expect_success 'F06: a full file system: the write fails, the old file stays, no temporary is left' '
	mkdir -p "$SCRATCH/small" &&
	if ! mount -t tmpfs -o size=64k tmpfs "$SCRATCH/small" 2>/dev/null; then
		echo "cannot mount a tmpfs here; skipped"; exit 0
	fi
	mkdir -p "$SCRATCH/small/srv" &&
	write_file repo2/big.yaml <<-Y &&
	apiVersion: driftless/v1
	kind: File
	metadata: {name: big}
	spec: {path: /srv/big, source: big.bin}
	Y
	echo small >repo2/big.bin && git init -q -b main repo2 &&
	git -C repo2 add -A && git -C repo2 -c user.name=t -c user.email=t@x commit -qm small &&
	dl apply --repo repo2 --root "$SCRATCH/small" --state "$SCRATCH/st2" >/dev/null &&
	head -c 200000 /dev/urandom >repo2/big.bin &&
	git -C repo2 add -A && git -C repo2 -c user.name=t -c user.email=t@x commit -qm big &&
	test_must_fail dl apply --repo repo2 --root "$SCRATCH/small" --state "$SCRATCH/st2" &&
	expect_contains stdout "No space left on device" &&
	test_cmp_text small "$SCRATCH/small/srv/big" &&
	test -z "$(find "$SCRATCH/small" -name ".driftless-tmp.*")" &&
	umount "$SCRATCH/small"
'

test_expect_success 'F10: a hard link to a file outside is replaced, never chmod-ed through' '
	mkdir -p "$SCRATCH/outside" && echo secret >"$SCRATCH/outside/secret" &&
	chmod 0600 "$SCRATCH/outside/secret" &&
	rm -f "$ROOT/srv/app/a.conf" &&
	ln "$SCRATCH/outside/secret" "$ROOT/srv/app/a.conf" &&
	expect_exit 0 dl_apply repo --tag v2 &&
	expect_contains stdout "hard link replaced" &&
	test_cmp_text "new a" "$ROOT/srv/app/a.conf" &&
	test_cmp_text secret "$SCRATCH/outside/secret" &&
	expect_mode 600 "$SCRATCH/outside/secret" &&
	test "$(stat -c %h "$SCRATCH/outside/secret")" = 1 &&
	: a mode-only difference on a hard link is not chmod-ed through either &&
	ln -f "$ROOT/srv/app/a.conf" "$SCRATCH/outside/alias" &&
	chmod 0600 "$ROOT/srv/app/a.conf" &&
	expect_exit 0 dl_apply repo --tag v2 &&
	expect_mode 640 "$ROOT/srv/app/a.conf" &&
	expect_mode 600 "$SCRATCH/outside/alias"
'

test_expect_success 'F10: directories swapped for symlinks while the agent writes: nothing outside changes' '
	canary_make "$SCRATCH/outside/a.conf" "outside a" &&
	canary_make "$SCRATCH/outside/b.conf" "outside b" &&
	app=$ROOT/srv/app &&
	(
		set +e
		end=$(( $(date +%s) + 8 ))
		while [ "$(date +%s)" -lt "$end" ]; do
			if mv -T "$app" "$app.x" 2>/dev/null; then
				ln -sT "$SCRATCH/outside" "$app" 2>/dev/null
				if [ -L "$app" ]; then rm -f "$app"; fi
				mv -T "$app.x" "$app" 2>/dev/null || rm -rf "$app.x"
			fi
		done
	) &
	swapper=$! &&
	i=0 &&
	while kill -0 $swapper 2>/dev/null; do
		tag=v$((i % 2 + 1))
		timeout 20 "$DRIFTLESS" apply --repo repo --tag $tag --root "$ROOT" --state "$STATE" >"$SCRATCH/race.out" 2>&1 || true
		i=$((i + 1))
	done &&
	echo "$i applies (every one rewriting files) raced against the swapper" &&
	test "$i" -gt 5 &&
	canary_check &&
	rm -rf "$ROOT/srv/app.x" &&
	if [ -L "$ROOT/srv/app" ]; then rm "$ROOT/srv/app"; fi &&
	expect_exit 0 dl_apply repo --tag v2 &&
	if [ -e "$ROOT/srv/app/d.conf" ]; then
		# One interleaving leaves d.conf: the swapper renamed the real
		# directory away, an apply of v2 made a new, empty /srv/app, found
		# d.conf gone from it and forgot it, and the swapper then renamed
		# the old directory back over the empty one. A file that comes
		# back after it was found gone is not the agent'"'"'s any more
		# (HACKING, prunes: "gone from a directory that is there, it is
		# forgotten"); it must then be
		# left alone and unowned, with the rest converged.
		test_cmp_text "old d" "$ROOT/srv/app/d.conf" &&
		test "$(sqlite3 "$STATE/driftless.db" "SELECT count(*) FROM inventory WHERE id = '"'"'File/d'"'"'")" = 0 &&
		mv "$ROOT/srv/app/d.conf" "$SCRATCH/d.conf.left"
	fi &&
	converged
'

test_done
