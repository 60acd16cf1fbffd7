#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# scripts/fuzz.sh [SECONDS]: build each libFuzzer target under fuzz/ with
# clang (ASan+UBSan) and run it for SECONDS (default 60) on its seed corpus.
set -eu
cd "$(dirname "$0")/.."
secs=${1:-60}
out=$(mktemp -d /tmp/driftless-fuzz.XXXXXX)
flags="-std=c17 -D_GNU_SOURCE -g -O1 -Isrc -fsanitize=fuzzer,address,undefined"
libs="src/lib/err.c src/lib/buf.c src/lib/arena.c src/lib/diag.c src/lib/hmap.c"
for target in fuzz/fuzz_*.c; do
	name=$(basename "$target" .c)
	corpus=fuzz/corpus/${name#fuzz_}
	# shellcheck disable=SC2086
	clang $flags "$target" $libs src/source/yaml.c $(pkg-config --cflags --libs libfyaml) -o "$out/$name"
	mkdir -p "$out/corpus-$name"
	echo "== $name for ${secs}s"
	"$out/$name" -max_total_time="$secs" -timeout=10 -rss_limit_mb=1024 \
		"$out/corpus-$name" "$corpus"
done
rm -rf "$out"
