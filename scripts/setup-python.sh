#!/usr/bin/env bash
# Creates the repository's Python virtual environment at .venv (once) and pip-installs into it
# the packages named on the command line, e.g. `scripts/setup-python.sh mcp-server-time openai`.
# Packages already installed are left as they are, so running it again is cheap.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
missing=()
for package in "$@"; do
    if ! .venv/bin/python -m pip show --quiet "$package" > /dev/null 2>&1; then
        missing+=("$package")
    fi
done
if [ ${#missing[@]} -gt 0 ]; then
    .venv/bin/python -m pip install --quiet --disable-pip-version-check "${missing[@]}"
fi
