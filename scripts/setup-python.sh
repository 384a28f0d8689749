#!/usr/bin/env bash
# Creates the repository's Python virtual environment (.venv/, ignored by git) for the end-to-end
# tests: the real `openai` SDK and `jsonschema` from PyPI, plus any packages named on the command
# line (e.g. `scripts/setup-python.sh mcp-server-time`). Idempotent: what is installed stays.
# Prints the venv's python path.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${QWENKIT_VENV:-.venv}"
PYTHON="${PYTHON:-python3}"
if [ ! -x "$VENV/bin/python" ]; then
    "$PYTHON" -m venv "$VENV" >&2
fi
missing=()
if ! "$VENV/bin/python" -c "import openai, jsonschema" 2>/dev/null; then
    missing+=("openai>=1.40" "jsonschema>=4")
fi
for package in "$@"; do
    if ! "$VENV/bin/python" -m pip show --quiet "$package" > /dev/null 2>&1; then
        missing+=("$package")
    fi
done
if [ ${#missing[@]} -gt 0 ]; then
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "${missing[@]}" >&2
fi
echo "$VENV/bin/python"
