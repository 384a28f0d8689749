#!/usr/bin/env bash
# The C kernels across levels and architectures (Tests/kernels/cross_check.c), built with clang
# outside SwiftPM:
#  1. x86-64: every level with panel kernels (AVX2, AVX-512 VNNI) writes the same activation bytes
#     and computes the same panel products, bit for bit.
#  2. arm64 under qemu-aarch64 (-cpu max: NEON with the dot-product instructions): the NEON panel
#     kernels give those same bits, and the NEON row dot products give level 0's; as a Cortex-A53
#     (no dot products) the dispatcher falls back to generic C.
# Needs clang; part 2 needs qemu-aarch64 and an arm64 sysroot (scripts/setup-qemu.sh --arm64
# installs Debian's libc6-dev-arm64-cross and libgcc-*-dev-arm64-cross) and is skipped, with a
# message, without them.
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "test-kernels-cross.sh: $*" >&2; exit 1; }
K=Sources/CQwenKernels
sources=(Tests/kernels/cross_check.c "$K"/Generic.c "$K"/AVX2.c "$K"/AVX512.c "$K"/NEON.c "$K"/Dispatch.c)
flags=(-O2 -std=c11 -Wno-psabi -I"$K"/include -I"$K")

[ "$(uname -m)" = x86_64 ] || fail "run on an x86-64 machine (it emulates arm64)"
clang "${flags[@]}" "${sources[@]}" -o "$work/x86" -lm
reference=""
for level in 1 2; do
    if ! "$work/x86" panels $level > "$work/panels-$level" 2> "$work/err"; then
        grep -q 'not available' "$work/err" && continue
        cat "$work/err" >&2; fail "x86-64 level $level failed"
    fi
    if [ -z "$reference" ]; then reference=$work/panels-$level
    else cmp -s "$reference" "$work/panels-$level" || fail "x86-64 level $level differs from $(basename "$reference")"; fi
    echo "kernels: x86-64 level $level panels: $(wc -l < "$work/panels-$level") cases"
done
[ -n "$reference" ] || { echo "kernels: this CPU has no panel level (no AVX2): skipped"; exit 0; }

sysroot=/usr/aarch64-linux-gnu
if ! command -v qemu-aarch64 > /dev/null || [ ! -d "$sysroot/include" ] || ! ls /usr/lib/gcc-cross/aarch64-linux-gnu/*/crtbeginT.o > /dev/null 2>&1; then
    echo "kernels: arm64 skipped (needs qemu-aarch64 and an arm64 sysroot: scripts/setup-qemu.sh --arm64)"
    exit 0
fi
clang --target=aarch64-linux-gnu --sysroot="$sysroot" --gcc-toolchain=/usr -static -fuse-ld=lld \
    "${flags[@]}" "${sources[@]}" -o "$work/arm64" -lm
qemu-aarch64 -cpu max "$work/arm64" panels 3 > "$work/panels-arm64"
cmp -s "$reference" "$work/panels-arm64" || fail "arm64 dotprod panels differ from x86-64's"
echo "kernels: arm64 dotprod panels (qemu-aarch64 -cpu max): the same bits as x86-64"
qemu-aarch64 -cpu max "$work/arm64" rows 3 || fail "arm64 dotprod row kernels differ from generic C"
if qemu-aarch64 -cpu cortex-a53 "$work/arm64" panels 3 2> /dev/null; then fail "a Cortex-A53 was offered dot products"; fi
qemu-aarch64 -cpu cortex-a53 "$work/arm64" rows 0 > /dev/null || fail "generic C failed on a Cortex-A53"
echo "kernels: arm64 without dot products (Cortex-A53): generic C"
