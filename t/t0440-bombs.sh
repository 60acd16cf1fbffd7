#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Understated-size bombs (HARDENING R05 b, E-BOUND): an object whose header
# claims a few bytes but whose zlib stream inflates to 300 MiB, once as an
# entry of a pack (written by hand, with its own index, into the served
# repository: git's upload-pack sends a packed object as it is) and once as
# a loose object. Each is fetched over git:// (git daemon) and file://
# (libgit2's local transport) and applied under a memory cap. The fetch or
# the read is refused, memory stays far below the inflated size, and the
# previous revision stays applied.
# shellcheck disable=SC2016
# shellcheck disable=SC2317 # helpers are called from the eval'ed bodies
# shellcheck disable=SC2034 # variables are read by the eval'ed bodies
. "$(dirname "$0")/lib.sh"

[ -n "$DL_PYTHON" ] || skip_all "python3 is needed"

mkdir -p "$SCRATCH/srv" "$ROOT/etc"
R=$SCRATCH/srv/infra.git
git init -q --bare -b main "$R"
# pushed objects stay loose, so that the test can replace them one by one;
# no delta search, so upload-pack never reads the lying object's data
git -C "$R" config receive.unpackLimit 100000
git -C "$R" config pack.window 0
W=$SCRATCH/work
repo_init "$W"
write_file "$W/motd.yaml" <<-'Y'
	apiVersion: driftless/v1
	kind: File
	metadata: {name: motd}
	spec: {path: /etc/motd, content: "good\n"}
	Y
repo_commit "$W" good
git -C "$W" push -q "$R" main
GOOD=$(repo_head "$W")
start_git_daemon "$SCRATCH/srv" || bail_out "cannot start git daemon"

CAP=200
dl_is_asan && CAP=600
BOMB_MIB=300
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=16:malloc_context_size=5"

# branch_with NAME: push a branch NAME whose commit is main's tree plus the
# entries on stdin (git mktree lines)
branch_with() {
	local root c
	root=$({ git -C "$W" ls-tree main; cat; } | git -C "$W" mktree) &&
		c=$(git -C "$W" commit-tree "$root" -p main -m "$1") &&
		git -C "$W" push -q "$R" "$c:refs/heads/$1"
}

# loose_path REPO OID: where OID is stored as a loose object
loose_path() { echo "$1/objects/$(echo "$2" | cut -c1-2)/$(echo "$2" | cut -c3-)"; }

# pack_lie REPO NAME: a branch NAME whose File source is a packed object
# that lies; prints its id
pack_lie() {
	local oid
	oid=$(bomb_branch "$2" "said small (pack)" "$1") &&
	rm -f "$(loose_path "$1" "$oid")" &&
	lie "$1/objects/pack" pack "$oid" "said small (pack)" >&2 &&
	echo "$oid"
}

# loose_lie REPO NAME: the same with a loose object that lies
loose_lie() {
	local oid
	oid=$(bomb_branch "$2" "said small (loose)" "$1") &&
	lie "$(loose_path "$1" "$oid")" loose "$oid" "said small (loose)" >&2 &&
	echo "$oid"
}

# bomb_branch NAME CONTENT [REPO]: a branch NAME with a File whose source
# is a blob holding CONTENT, pushed honestly (a loose object) to REPO
# (default $R); prints the blob's id
bomb_branch() {
	local oid m R=${3:-$R}
	oid=$(printf '%s' "$2" | git -C "$W" hash-object -w --stdin) &&
	m=$(printf "apiVersion: driftless/v1\nkind: File\nmetadata: {name: %s}\nspec: {path: /etc/%s, source: %s.bin}\n" \
		"$1" "$1" "$1" | git -C "$W" hash-object -w --stdin) &&
	printf "100644 blob %s\t%s.bin\n100644 blob %s\t%s.yaml\n" "$oid" "$1" "$m" "$1" |
		R=$R branch_with "$1" >&2 &&
	test -f "$(loose_path "$R" "$oid")" &&
	echo "$oid"
}

# lie OUT MODE OID CONTENT: write the lying object for OID: its header
# says blob of len(CONTENT) bytes, its zlib stream inflates to CONTENT and
# then BOMB_MIB MiB of zeros. MODE loose: OUT is the loose object file;
# MODE pack: OUT is the pack's directory, the pack and a v2 index are
# written there.
lie() {
	"$DL_PYTHON" - "$@" "$BOMB_MIB" <<-'P'
	import binascii, hashlib, os, struct, sys, zlib
	out, mode, oid, content, mib = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4].encode(), int(sys.argv[5])
	z = zlib.compressobj(9)
	def stream(prefix):
	    data = [z.compress(prefix + content)]
	    chunk = bytes(1 << 20)
	    for _ in range(mib):
	        data.append(z.compress(chunk))
	    data.append(z.flush())
	    return b"".join(data)
	if mode == "loose":
	    data = stream(b"blob %d\0" % len(content))
	    os.chmod(out, 0o644)
	    with open(out, "wb") as f:
	        f.write(data)
	    sys.exit(0)
	# one pack entry: type 3 (blob), the size said small
	n = len(content)
	hdr = bytearray([(3 << 4) | (n & 15) | (0x80 if n >> 4 else 0)])
	n >>= 4
	while n:
	    hdr.append((n & 0x7f) | (0x80 if n >> 7 else 0))
	    n >>= 7
	entry = bytes(hdr) + stream(b"")
	pack = b"PACK" + struct.pack(">II", 2, 1) + entry
	pack += hashlib.sha1(pack).digest()
	bid = binascii.unhexlify(oid)
	fan = [0] * 256
	for i in range(bid[0], 256):
	    fan[i] = 1
	idx = b"\xfftOc" + struct.pack(">I", 2) + b"".join(struct.pack(">I", c) for c in fan)
	idx += bid + struct.pack(">I", binascii.crc32(entry) & 0xffffffff) + struct.pack(">I", 12)
	idx += pack[-20:]
	idx += hashlib.sha1(idx).digest()
	name = os.path.join(out, "pack-" + pack[-20:].hex())
	with open(name + ".pack", "wb") as f:
	    f.write(pack)
	with open(name + ".idx", "wb") as f:
	    f.write(idx)
	P
}


PACK_OID=$(pack_lie "$R" packlie) || bail_out "cannot write the lying pack"
LOOSE_OID=$(loose_lie "$R" looselie) || bail_out "cannot write the lying loose object"

# capped_apply URL ARGS...: apply from URL under the memory cap
capped_apply() {
	local url=$1
	shift
	dl_capture dl_mem_capped "$CAP" timeout -k 5 120 "$DRIFTLESS" apply --repo "$url" \
		--root "$ROOT" --state "$STATE" "$@"
	dl_not_crashed capped_apply "$@" && dl_maxrss_below "$CAP"
}

# the good revision is still the applied one, and the host holds it
still_good() {
	test_cmp_text good "$ROOT/etc/motd" &&
	dl status --state "$STATE" >"$SCRATCH/status" &&
	grep -q "$GOOD" "$SCRATCH/status" &&
	expect_missing "$ROOT/etc/packlie" &&
	expect_missing "$ROOT/etc/looselie"
}

test_expect_success 'the lies are real: the headers say 17 and 18 bytes, git reads otherwise' '
	test "$(git -C "$R" cat-file -t "$PACK_OID")" = blob &&
	test "$(git -C "$R" cat-file -s "$PACK_OID")" = 17 &&
	test_must_fail git -C "$R" cat-file blob "$PACK_OID" &&
	test "$(git -C "$R" cat-file -s "$LOOSE_OID")" = 18 &&
	# git streams a loose blob to its end: more than its header says
	! git -C "$R" cat-file blob "$LOOSE_OID" 2>/dev/null | cmp -s - <(printf "said small (loose)")
'

URL=$GIT_DAEMON_URL/infra.git
test_expect_success '(git://) the good revision applies under the cap' '
	capped_apply "$URL" &&
	test "$DL_STATUS" = 0 &&
	still_good
'

test_expect_success "R05 (b, git://) a packed object that says 17 bytes and inflates to $BOMB_MIB MiB" '
	capped_apply "$URL" --branch packlie &&
	test "$DL_STATUS" != 0 &&
	expect_contains "$SCRATCH/stderr" "$PACK_OID" &&
	still_good
'

test_expect_success "R05 (b, git://) a loose object that says 18 bytes: the server refuses to send it" '
	capped_apply "$URL" --branch looselie &&
	test "$DL_STATUS" != 0 &&
	expect_contains "$SCRATCH/stderr" "cannot fetch from" &&
	still_good
'

test_expect_success '(git://) the good revision still applies after both' '
	capped_apply "$URL" &&
	test "$DL_STATUS" = 0 &&
	still_good
'

# The local transport (file://, a path) reads the source's objects itself,
# for every ref of it, not only the one fetched.
L=$SCRATCH/local/infra.git
mkdir -p "$SCRATCH/local"
git init -q --bare -b main "$L"
git -C "$L" config receive.unpackLimit 100000
git -C "$W" push -q "$L" main

test_expect_success '(file://) the good revision applies under the cap' '
	rm -rf "$STATE" &&
	capped_apply "file://$L" &&
	test "$DL_STATUS" = 0 &&
	still_good
'

test_expect_success "R05 (b, file://) a packed object that says 17 bytes and inflates to $BOMB_MIB MiB" '
	pack_lie "$L" packlie &&
	capped_apply "file://$L" --branch packlie &&
	test "$DL_STATUS" != 0 &&
	expect_contains "$SCRATCH/stderr" "error inflating zlib stream" &&
	still_good
'

test_expect_success "R05 (b, file:// and a path) a loose object that says 18 bytes: refused before libgit2 reads it" '
	git -C "$L" update-ref -d refs/heads/packlie &&
	rm -f "$L"/objects/pack/pack-* &&
	oid=$(loose_lie "$L" looselie) &&
	for url in "file://$L" "$L"; do
		capped_apply "$url" --branch looselie &&
		test "$DL_STATUS" != 0 &&
		expect_contains "$SCRATCH/stderr" "'\''$url'\'' holds a malformed loose object $oid (its header understates its size" &&
		still_good || exit 1
	done
'

test_expect_success "R05 (b, file://) the same with only a few bytes too many (a heap overflow in libgit2 1.5)" '
	oid=$(git -C "$L" rev-parse looselie:looselie.bin) &&
	"$DL_PYTHON" -c "import sys, zlib; sys.stdout.buffer.write(zlib.compress(b\"blob 18\\0said small (loose)\" + b\"A\" * 40))" \
		>"$(loose_path "$L" "$oid")" &&
	capped_apply "file://$L" --branch looselie &&
	test "$DL_STATUS" != 0 &&
	expect_contains "$SCRATCH/stderr" "holds a malformed loose object $oid" &&
	capped_apply "file://$L" &&
	test "$DL_STATUS" != 0 &&
	still_good
'

test_expect_success '(file://) once the lying object is gone the good revision applies' '
	git -C "$L" update-ref -d refs/heads/looselie &&
	rm -f "$(loose_path "$L" "$LOOSE_OID")" &&
	capped_apply "file://$L" &&
	test "$DL_STATUS" = 0 &&
	still_good
'

test_done
