#!/usr/bin/env bash
# Browser test of the chat page: installs Chromium, its driver and Selenium when missing
# (scripts/setup-browser.sh), then runs Tests/browser/test_chat.py against the release binary.
# Usage: scripts/test-browser.sh [--binary PATH] [--model MODEL] [--screenshots docs/screenshots]
set -euo pipefail
cd "$(dirname "$0")/.."
python=$(scripts/setup-browser.sh)
exec "$python" Tests/browser/test_chat.py "$@"
