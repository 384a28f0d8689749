#!/usr/bin/env bash
# Prepares the browser test (Tests/browser/test_chat.py): Debian's `chromium` and
# `chromium-driver` from apt when they are missing (as root, else through sudo), and `selenium`
# from PyPI in the repository's venv (scripts/setup-python.sh). Idempotent. Prints the venv's
# python path.
set -euo pipefail
cd "$(dirname "$0")/.."

have_browser() {
    command -v chromium > /dev/null 2>&1 && command -v chromedriver > /dev/null 2>&1
}
if ! have_browser; then
    if [ "$(id -u)" = 0 ]; then
        as_root=()
    elif command -v sudo > /dev/null 2>&1; then
        as_root=(sudo)
    else
        echo "setup-browser.sh: chromium and chromium-driver are missing and neither root nor sudo can install them;" \
             "install them (apt-get install chromium chromium-driver) or set QWENKIT_SKIP_BROWSER=1" >&2
        exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    "${as_root[@]}" apt-get update -qq >&2
    "${as_root[@]}" apt-get install -y -qq --no-install-recommends chromium chromium-driver >&2
    have_browser || { echo "setup-browser.sh: chromium or chromedriver still missing after apt-get" >&2; exit 1; }
fi
scripts/setup-python.sh selenium
