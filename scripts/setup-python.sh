#!/usr/bin/env bash
# Creates the Python virtual environment the end-to-end server tests use (.venv/, ignored by git)
# and installs the real `openai` SDK and `jsonschema` from PyPI into it. Idempotent: an existing
# venv that already has both packages is left as it is. Prints the venv's python path.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${QWENKIT_VENV:-.venv}"
PYTHON="${PYTHON:-python3}"
if [ ! -x "$VENV/bin/python" ]; then
    "$PYTHON" -m venv "$VENV" >&2
fi
if ! "$VENV/bin/python" -c "import openai, jsonschema" 2>/dev/null; then
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "openai>=1.40" "jsonschema>=4" >&2
fi
echo "$VENV/bin/python"
