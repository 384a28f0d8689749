#!/usr/bin/env bash
# End-to-end test of `qwenkit serve` with the real `openai` Python SDK: sets up the venv
# (scripts/setup-python.sh) and runs Tests/e2e/test_openai.py against the release binary.
# Usage: scripts/test-e2e.sh [--binary PATH] [--model MODEL]
set -euo pipefail
cd "$(dirname "$0")/.."
python=$(scripts/setup-python.sh)
exec "$python" Tests/e2e/test_openai.py "$@"
