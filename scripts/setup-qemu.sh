#!/usr/bin/env bash
# Installs Debian's qemu-user (qemu-x86_64, qemu-aarch64) if it is missing: the portability test
# runs the release binary as older x86-64 CPUs with it.
set -euo pipefail
if command -v qemu-x86_64 > /dev/null; then exit 0; fi
sudo=""
if [ "$(id -u)" != 0 ]; then sudo="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq > /dev/null
$sudo apt-get install -y -qq qemu-user > /dev/null
command -v qemu-x86_64 > /dev/null || { echo "setup-qemu.sh: qemu-x86_64 not installed" >&2; exit 1; }
