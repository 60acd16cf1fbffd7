#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The age format of src/lib/age.c against the age 1.1.1 tools, both ways,
# through the agetool test helper (tests/helpers/agetool.c); damaged, foreign
# and passphrase files fail with one clear line that quotes nothing of them.
# shellcheck disable=SC2016 # test bodies are single-quoted on purpose
# shellcheck disable=SC2034 # variables are read by the eval'ed bodies
# shellcheck disable=SC2317 # helpers are called from the eval'ed bodies
# shellcheck source=t/lib.sh
DL_NEEDS_BINARY=0
. "$(dirname "$0")/lib.sh"

# meson builds the helper next to the driftless binary and does not install it
AGETOOL=${AGETOOL:-$(dirname "$DRIFTLESS")/agetool}
[ -x "$AGETOOL" ] || bail_out "agetool not found at '$AGETOOL' (build with meson, or set AGETOOL)"
if ! command -v age >/dev/null || ! command -v age-keygen >/dev/null; then
	skip_all "the age and age-keygen tools are not installed"
fi

FIXTURES=$DL_SRCROOT/tests/unit/data/age
MARKER='PLAINTEXT-MARKER-5d1e0c'
SIZES='0 1 65535 65536 65537 1048576'

# plaintexts of each size (the marker first where it fits), one age key
for n in $SIZES; do
	{ [ "$n" -ge ${#MARKER} ] && printf '%s' "$MARKER"; head -c "$n" /dev/urandom; } |
		head -c "$n" >"$SCRATCH/p$n"
done
{ echo "$MARKER"; head -c 100000 /dev/urandom | base64; } >"$SCRATCH/secret.txt"
age-keygen -o "$SCRATCH/host.key" 2>/dev/null || bail_out "age-keygen failed"
HOST=$(age-keygen -y "$SCRATCH/host.key") || bail_out "age-keygen -y failed"

# flip FILE OFFSET: xor the byte at OFFSET with 0x01, in place.
flip() {
	local b
	b=$(od -An -tu1 -j "$2" -N1 "$1" | tr -d ' ')
	[ -n "$b" ] || return 1
	# shellcheck disable=SC2059 # the format is the escaped byte
	printf "$(printf '\\%03o' $((b ^ 1)))" |
		dd of="$1" bs=1 seek="$2" conv=notrunc status=none
}

# flip_b64 FILE OFFSET: change the base64 character at OFFSET into another
# one ('A', or 'B' for an 'A'), so that the text still parses.
flip_b64() {
	local c
	c=$(dd if="$1" bs=1 skip="$2" count=1 status=none)
	if [ "$c" = A ]; then c=B; else c=A; fi
	printf '%s' "$c" | dd of="$1" bs=1 seek="$2" conv=notrunc status=none
}

# clean_failure FILE: the failure left nothing on stdout and one line on
# stderr, which quotes neither the plaintext nor a base64 token of FILE.
clean_failure() {
	local tok
	if [ -s "$SCRATCH/stdout" ]; then
		echo "error: output despite the failure"
		return 1
	fi
	if [ "$(wc -l <"$SCRATCH/stderr")" != 1 ]; then
		echo "error: expected one line of error"
		return 1
	fi
	expect_contains "$SCRATCH/stderr" "agetool: age: " &&
		expect_not_contains "$SCRATCH/stderr" "$MARKER" || return 1
	for tok in $(tr -c 'A-Za-z0-9+/\n' '\n' <"$1" | grep -aE '^.{12,}$' | cut -c1-12 | head -n 100); do
		expect_not_contains "$SCRATCH/stderr" "$tok" || return 1
	done
}

# open_fails FILE MESSAGE: agetool open -i host.key fails cleanly on FILE with MESSAGE.
open_fails() {
	test_must_fail "$AGETOOL" open -i "$SCRATCH/host.key" <"$1" &&
		expect_contains "$SCRATCH/stderr" "$2" &&
		clean_failure "$1"
}

test_expect_success 'we open what age -r sealed, binary and armored' '
	for n in $SIZES; do
		age -r "$HOST" -o "c$n.age" "p$n" &&
		"$AGETOOL" open -i host.key <"c$n.age" >"o$n" &&
		cmp "p$n" "o$n" &&
		age -a -r "$HOST" -o "c$n.asc" "p$n" &&
		"$AGETOOL" open -i host.key <"c$n.asc" >"a$n" &&
		cmp "p$n" "a$n" || { echo "failed at $n bytes"; exit 1; }
	done
'

test_expect_success 'age -d opens what we sealed, binary and armored' '
	for n in $SIZES; do
		"$AGETOOL" seal -r "$HOST" <"p$n" >"s$n.age" &&
		age -d -i host.key "s$n.age" >"d$n" &&
		cmp "p$n" "d$n" &&
		"$AGETOOL" seal -a -r "$HOST" <"p$n" >"s$n.asc" &&
		head -n 1 "s$n.asc" | grep -qx -- "-----BEGIN AGE ENCRYPTED FILE-----" &&
		age -d -i host.key "s$n.asc" >"e$n" &&
		cmp "p$n" "e$n" || { echo "failed at $n bytes"; exit 1; }
	done
'

test_expect_success 'the files of age 1.1.1 in the unit-test fixtures open' '
	for f in hello.age hello.age.asc; do
		"$AGETOOL" open -i "$FIXTURES/key.txt" <"$FIXTURES/$f" >out &&
		cmp "$FIXTURES/hello.txt" out
	done &&
	"$AGETOOL" open -i "$FIXTURES/key.txt" <"$FIXTURES/empty.age" >out &&
	test ! -s out
'

test_expect_success 'our identity file works with age and age-keygen' '
	expect_exit 0 "$AGETOOL" keygen mine.key &&
	expect_mode 600 mine.key &&
	mine=$(cat "$SCRATCH/stdout") &&
	case "$mine" in age1*) ;; *) false ;; esac &&
	test "$(age-keygen -y mine.key)" = "$mine" &&
	grep -qx "# public key: $mine" mine.key &&
	grep -qE "^AGE-SECRET-KEY-1[02-9AC-HJ-NP-Z]{58}$" mine.key &&
	test "$("$AGETOOL" recipient mine.key)" = "$mine" &&
	test "$("$AGETOOL" recipient host.key)" = "$HOST" &&
	age -r "$mine" -o to-mine.age secret.txt &&
	"$AGETOOL" open -i mine.key <to-mine.age >out &&
	cmp secret.txt out &&
	"$AGETOOL" seal -r "$mine" <secret.txt >from-us.age &&
	age -d -i mine.key -o out2 from-us.age &&
	cmp secret.txt out2 &&
	test_must_fail "$AGETOOL" keygen mine.key &&
	expect_contains "$SCRATCH/stderr" "cannot create"
'

test_expect_success 'two hosts: each opens a file sealed for both' '
	"$AGETOOL" keygen web.key >web.pub &&
	age-keygen -o db.key 2>/dev/null &&
	age-keygen -y db.key >db.pub &&
	"$AGETOOL" seal -r "$(cat web.pub)" -r "$(cat db.pub)" <secret.txt >both.age &&
	test "$(grep -c "^-> X25519 " both.age)" = 2 &&
	for k in web db; do
		"$AGETOOL" open -i "$k.key" <both.age >"$k.out" &&
		cmp secret.txt "$k.out" &&
		age -d -i "$k.key" -o "$k.out2" both.age &&
		cmp secret.txt "$k.out2" || exit 1
	done &&
	age -a -r "$(cat web.pub)" -r "$(cat db.pub)" -o both.asc secret.txt &&
	for k in web db; do
		"$AGETOOL" open -i "$k.key" <both.asc >"$k.out3" &&
		cmp secret.txt "$k.out3" || exit 1
	done &&
	cat web.key db.key >two.key &&
	test "$("$AGETOOL" recipient two.key | wc -l)" = 2 &&
	"$AGETOOL" seal -r "$(cat db.pub)" <secret.txt >db-only.age &&
	"$AGETOOL" open -i two.key <db-only.age >out &&
	cmp secret.txt out
'

test_expect_success 'the wrong identity fails' '
	age-keygen -o other.key 2>/dev/null &&
	age -r "$HOST" -o for-host.age secret.txt &&
	test_must_fail "$AGETOOL" open -i other.key <for-host.age &&
	expect_contains "$SCRATCH/stderr" "age: no identity matches any recipient" &&
	clean_failure for-host.age
'

test_expect_success 'a flipped byte in the header, the MAC, the payload or the last chunk fails' '
	age -r "$HOST" -o good.age secret.txt &&
	"$AGETOOL" open -i host.key <good.age >out && cmp secret.txt out &&
	mac=$(grep -abo -- "--- " good.age | head -n 1 | cut -d: -f1) &&
	payload=$((mac + 48 + 16)) &&
	size=$(wc -c <good.age) &&
	cp good.age t-header.age && flip t-header.age 40 &&
	open_fails t-header.age "age: " &&
	cp good.age t-mac.age && flip_b64 t-mac.age $((mac + 10)) &&
	open_fails t-mac.age "age: header MAC mismatch (tampered or wrong file)" &&
	cp good.age t-nonce.age && flip t-nonce.age $((mac + 50)) &&
	open_fails t-nonce.age "age: payload authentication failed" &&
	cp good.age t-payload.age && flip t-payload.age $((payload + 100)) &&
	open_fails t-payload.age "age: payload authentication failed" &&
	cp good.age t-last.age && flip t-last.age $((size - 1)) &&
	open_fails t-last.age "age: payload authentication failed" &&
	age -a -r "$HOST" -o good.asc secret.txt &&
	cp good.asc t-armor.asc && flip t-armor.asc 200 &&
	open_fails t-armor.asc "age: "
'

test_expect_success 'truncated files fail' '
	age -r "$HOST" -o good.age secret.txt &&
	size=$(wc -c <good.age) &&
	mac=$(grep -abo -- "--- " good.age | head -n 1 | cut -d: -f1) &&
	for n in 10 60 $((mac + 20)) $((mac + 48)) $((mac + 60)) $((mac + 64)) \
		$((mac + 64 + 65536 + 16)) $((size - 1)); do
		head -c "$n" good.age >cut.age &&
		open_fails cut.age "age: " || { echo "failed at $n bytes"; exit 1; }
	done &&
	head -c $((mac + 64 + 65536 + 16)) good.age >cut.age &&
	open_fails cut.age "age: payload is truncated" &&
	age -a -r "$HOST" -o good.asc secret.txt &&
	head -n 5 good.asc >cut.asc &&
	open_fails cut.asc "age: armored input is truncated"
'

test_expect_success 'trailing garbage fails' '
	age -r "$HOST" -o good.age secret.txt &&
	{ cat good.age; printf x; } >trail.age &&
	open_fails trail.age "age: payload authentication failed" &&
	age -r "$HOST" -o full.age p65536 &&
	{ cat full.age; head -c 17 p65536; } >trail2.age &&
	open_fails trail2.age "age: trailing data after the payload" &&
	age -a -r "$HOST" -o good.asc secret.txt &&
	{ cat good.asc; echo garbage; } >trail.asc &&
	open_fails trail.asc "age: trailing data after the armored file" &&
	{ printf "\n  \n"; cat good.asc; printf " \n\n"; } >spaced.asc &&
	"$AGETOOL" open -i host.key <spaced.asc >out &&
	cmp secret.txt out
'

test_expect_success 'empty and non-age input fail' '
	: >empty &&
	open_fails empty "age: input is empty" &&
	printf "%s\n" "$MARKER" "just some text" >plain.txt &&
	open_fails plain.txt "age: input is not an age file" &&
	head -c 4096 /dev/urandom >noise &&
	printf "\001" | cat - noise >noise.bin &&
	open_fails noise.bin "age: input is not an age file" &&
	printf "age-encryption.org/v2\n" >v2.age &&
	open_fails v2.age "age: unsupported age format version"
'

test_expect_success 'passphrase (scrypt) files are refused' '
	open_fails "$FIXTURES/scrypt.age" "age: passphrase-encrypted age files are not supported"
'

test_expect_success 'usage errors exit 64' '
	expect_exit 64 "$AGETOOL" &&
	expect_exit 64 "$AGETOOL" seal &&
	expect_exit 64 "$AGETOOL" open &&
	test_must_fail "$AGETOOL" seal -r age1notarecipient </dev/null &&
	expect_contains "$SCRATCH/stderr" "not an age X25519 recipient"
'

test_done
