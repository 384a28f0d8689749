#!/usr/bin/env bash
# Portability checks (issue: one binary for every x86-64 CPU, a versioned SwiftPM dependency):
#  1. The release binary run under qemu-user as older x86-64 CPUs (Nehalem: SSE4.2, no AVX; Haswell:
#     AVX2 + FMA + F16C) picks the kernels those CPUs have and gives the same greedy tokens on the
#     tiny fixture models as natively on this machine.
#  2. The C kernels across levels and architectures (scripts/test-kernels-cross.sh): the x86-64
#     panel levels bit for bit alike, and the arm64 NEON kernels under qemu-aarch64 giving the same bits.
#  3. A consumer package that depends on a tagged clone of this repository by version
#     (`from: "0.1.0"`) imports QwenKit and QwenTokenizer and builds. SwiftPM refuses unsafe flags in
#     such a dependency, so this fails if the manifest carries any.
# Usage: scripts/test-portability.sh [--binary PATH]
set -euo pipefail
cd "$(dirname "$0")/.."
binary=.build/release/qwenkit
if [ "${1:-}" = --binary ]; then binary=$2; fi
: "${QWENKIT_FIXTURES:?set QWENKIT_FIXTURES to the shared/fixtures folder}"
scripts/setup-qemu.sh --arm64

fail() { echo "test-portability.sh: $*" >&2; exit 1; }
tokens() {  # tokens RUNNER... -- greedy token ids of a short run
    "$@" run -m "$model" --temperature 0 --json --max-tokens 12 "Write a haiku about portable code." |
        python3 -c 'import json, sys; print(json.load(sys.stdin)["tokens"])'
}
kernels() {  # the kernels line qwenkit bench prints
    "$@" bench -m "$model" -p 8 -n 2 -r 1 -t 1 | sed -n 's/^kernels: \([a-z0-9]*\).*/\1/p'
}

for folder in tiny-qwen3 tiny-qwen35; do
    model="$QWENKIT_FIXTURES/models/$folder/$folder-q8_0.gguf"
    native=$(tokens "$binary")
    [ -n "$native" ] || fail "no tokens natively on $folder"
    for cpu in Nehalem:generic Haswell:avx2; do
        name=${cpu%%:*} expected=${cpu##*:}
        got=$(kernels qemu-x86_64 -cpu "$name" "$binary" 2> /dev/null)
        [ "$got" = "$expected" ] || fail "as $name the binary chose '$got' kernels, expected $expected"
        emulated=$(tokens qemu-x86_64 -cpu "$name" "$binary" 2> /dev/null)
        [ "$emulated" = "$native" ] || fail "$folder as $name: $emulated, natively: $native"
        echo "portability: $folder as $name ($got kernels): same greedy tokens as natively"
    done
done

scripts/test-kernels-cross.sh

# A consumer package depending on this repository by version.
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
git clone -q . "$work/qwenkit"
git -C "$work/qwenkit" tag 0.1.0
mkdir -p "$work/consumer/Sources/Consumer"
cat > "$work/consumer/Package.swift" <<MANIFEST
// swift-tools-version: 6.0
import PackageDescription
let package = Package(
    name: "Consumer",
    platforms: [.macOS(.v15)],
    dependencies: [.package(url: "file://$work/qwenkit", from: "0.1.0")],
    targets: [
        .executableTarget(name: "Consumer", dependencies: [
            .product(name: "QwenKit", package: "qwenkit"),
            .product(name: "QwenTokenizer", package: "qwenkit"),
        ]),
    ]
)
MANIFEST
cat > "$work/consumer/Sources/Consumer/main.swift" <<'SOURCE'
import QwenKit
import QwenTokenizer

let config = SamplingParameters()
print("consumer built against QwenKit: temperature \(config.temperature)")
SOURCE
swift build --package-path "$work/consumer" > "$work/build.log" 2>&1 || { tail -30 "$work/build.log" >&2; fail "the consumer package did not build"; }
"$work/consumer/.build/debug/Consumer"
echo "portability: a package depending on QwenKit 0.1.0 by version builds"
