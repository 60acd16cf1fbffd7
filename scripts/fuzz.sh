#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# scripts/fuzz.sh [SECONDS]: build each libFuzzer target under fuzz/ with
# clang (ASan+UBSan) and run it for SECONDS (default 60) on its seed corpus.
set -eu
cd "$(dirname "$0")/.."
secs=${1:-60}
ok=0 bad=0
out=$(mktemp -d /tmp/driftless-fuzz.XXXXXX)
flags="-std=c17 -D_GNU_SOURCE -g -O1 -Isrc -Wall -Werror -Wno-format-nonliteral -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -pthread"
libs="src/lib/*.c src/core/*.c src/kinds/*.c src/source/*.c src/state/*.c src/fleet/proto.c src/daemon/supervise.c src/daemon/loop.c"
for target in fuzz/fuzz_*.c; do
	name=$(basename "$target" .c)
	corpus=fuzz/corpus/${name#fuzz_}
	extra=
	case $name in
	fuzz_webhook) extra=src/http/webhook.c ;;
	esac
	# shellcheck disable=SC2086
	clang $flags -DDRIFTLESS_VERSION='"fuzz"' "$target" $libs $extra \
		$(pkg-config --cflags --libs libfyaml libgit2 libssh2 libcrypto sqlite3 libsodium zlib) $(pkg-config --cflags gpgme libcurl libmicrohttpd) -ldl -o "$out/$name"
	mkdir -p "$out/corpus-$name"
	echo "== $name for ${secs}s"
	if "$out/$name" -max_total_time="$secs" -timeout=10 -rss_limit_mb=1024 \
		"$out/corpus-$name" "$corpus" >"$out/$name.log" 2>&1; then
		echo "ok $name: $(grep -o 'Done [0-9]* runs' "$out/$name.log" | tail -n1), no crash"
		ok=$((ok + 1))
	else
		echo "not ok $name:"
		tail -n 40 "$out/$name.log"
		bad=$((bad + 1))
	fi
done
rm -rf "$out"
echo "$ok passed, $bad failed"
[ "$bad" -eq 0 ]
