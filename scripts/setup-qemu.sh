#!/usr/bin/env bash
# Installs Debian's qemu-user (qemu-x86_64, qemu-aarch64) if it is missing: the portability test
# runs the release binary as older x86-64 CPUs with it.
# --arm64 also installs an arm64 C sysroot (libc6-dev-arm64-cross and the newest
# libgcc-N-dev-arm64-cross), for the C kernels cross-checked under qemu-aarch64
# (scripts/test-kernels-cross.sh).
set -euo pipefail
arm64=0
if [ "${1:-}" = --arm64 ]; then arm64=1; fi
have_sysroot() { ls /usr/lib/gcc-cross/aarch64-linux-gnu/*/crtbeginT.o > /dev/null 2>&1 && [ -d /usr/aarch64-linux-gnu/include ]; }
if command -v qemu-x86_64 > /dev/null && command -v qemu-aarch64 > /dev/null && { [ $arm64 = 0 ] || have_sysroot; }; then exit 0; fi
sudo=""
if [ "$(id -u)" != 0 ]; then sudo="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq > /dev/null
packages=(qemu-user)
if [ $arm64 = 1 ]; then
    libgcc=$(apt-cache search --names-only '^libgcc-[0-9]+-dev-arm64-cross$' | cut -d' ' -f1 | sort -V | tail -1)
    [ -n "$libgcc" ] || { echo "setup-qemu.sh: no libgcc-N-dev-arm64-cross package" >&2; exit 1; }
    packages+=(libc6-dev-arm64-cross "$libgcc")
fi
$sudo apt-get install -y -qq "${packages[@]}" > /dev/null
command -v qemu-x86_64 > /dev/null || { echo "setup-qemu.sh: qemu-x86_64 not installed" >&2; exit 1; }
if [ $arm64 = 1 ] && ! have_sysroot; then echo "setup-qemu.sh: the arm64 sysroot is incomplete" >&2; exit 1; fi
