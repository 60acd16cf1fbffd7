#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# bench/gen.sh DIR N SHAPE: make a Git repository DIR with N managed files.
#   SHAPE=files: one File manifest per file (content from a source: blob)
#   SHAPE=dirs:  a few Directory manifests mirroring large folders
set -eu
dir=$1 n=$2 shape=${3:-files}
rm -rf "$dir" && mkdir -p "$dir" && cd "$dir"
git init -q -b main .
git config user.name bench && git config user.email bench@driftless.invalid
python3 - "$n" "$shape" <<'PY'
import os, sys
n, shape = int(sys.argv[1]), sys.argv[2]
per = 1000
os.makedirs("files", exist_ok=True)
if shape == "files":
    for d in range((n + per - 1) // per):
        os.makedirs(f"files/d{d}", exist_ok=True)
        with open(f"dir-{d}.yaml", "w") as m:
            m.write(f"apiVersion: driftless/v1\nkind: Directory\nmetadata: {{name: d{d}}}\n"
                    f"spec: {{path: /srv/bench/d{d}}}\n")
    for i in range(n):
        d = i // per
        with open(f"files/d{d}/f{i}.conf", "w") as f:
            f.write(f"# file {i}\nkey = {i}\n" + "x" * 200 + "\n")
        with open(f"m{i // 100}.yaml", "a") as m:
            m.write(f"---\napiVersion: driftless/v1\nkind: File\nmetadata: {{name: f{i}}}\n"
                    f"spec:\n  path: /srv/bench/d{d}/f{i}.conf\n  source: files/d{d}/f{i}.conf\n"
                    f"  mode: \"0644\"\n")
else:
    for d in range((n + per - 1) // per):
        os.makedirs(f"files/d{d}", exist_ok=True)
        with open(f"dir-{d}.yaml", "w") as m:
            m.write(f"apiVersion: driftless/v1\nkind: Directory\nmetadata: {{name: d{d}}}\n"
                    f"spec: {{path: /srv/bench/d{d}, source: files/d{d}}}\n")
    for i in range(n):
        with open(f"files/d{i // per}/f{i}.conf", "w") as f:
            f.write(f"# file {i}\nkey = {i}\n" + "x" * 200 + "\n")
with open("root.yaml", "w") as m:
    m.write("apiVersion: driftless/v1\nkind: Directory\nmetadata: {name: bench}\n"
            "spec: {path: /srv/bench}\n")
PY
git add -A && git commit -qm "bench: $n files ($shape)"
