#!/usr/bin/env bash
# Runs the whole test suite on a fresh machine: fetches the default model if it is missing,
# then builds optimized (numeric tests are 10–50× slower in debug builds) and runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."

# The shared reference fixtures: $QWENKIT_FIXTURES, else ../shared/fixtures beside the repository.
if [ -z "${QWENKIT_FIXTURES:-}" ]; then
    for candidate in ../shared/fixtures /work/shared/fixtures; do
        if [ -d "$candidate" ]; then
            QWENKIT_FIXTURES=$(cd "$candidate" && pwd)
            break
        fi
    done
fi
if [ -z "${QWENKIT_FIXTURES:-}" ] || [ ! -d "$QWENKIT_FIXTURES" ]; then
    echo "test.sh: cannot find the reference fixtures; set QWENKIT_FIXTURES to the shared/fixtures folder" >&2
    exit 1
fi
export QWENKIT_FIXTURES

scripts/fetch-default-model.sh > /dev/null
# The agent's MCP round-trip test talks to a real MCP server from PyPI.
scripts/setup-python.sh mcp-server-time > /dev/null
export QWENKIT_REQUIRE_MCP=1
swift build -c release --build-tests -Xswiftc -enable-testing
swift test -c release -Xswiftc -enable-testing --skip-build "$@"

# One binary for every x86-64 CPU (qemu as Nehalem and Haswell) and a versioned SwiftPM dependency.
# QWENKIT_SKIP_PORTABILITY=1 skips it.
if [ "${QWENKIT_SKIP_PORTABILITY:-0}" != 1 ]; then
    scripts/test-portability.sh --binary .build/release/qwenkit
fi

# The server end to end with the real `openai` Python SDK (a venv in .venv/). QWENKIT_SKIP_E2E=1 skips it.
if [ "${QWENKIT_SKIP_E2E:-0}" != 1 ]; then
    scripts/test-e2e.sh --binary .build/release/qwenkit
fi

# The chat page in a real headless Chromium (Debian's chromium + chromium-driver, driven by
# Selenium; installed by scripts/setup-browser.sh). QWENKIT_SKIP_BROWSER=1 skips it.
if [ "${QWENKIT_SKIP_BROWSER:-0}" != 1 ]; then
    scripts/test-browser.sh --binary .build/release/qwenkit
fi

# The fuzz targets (docs/SECURITY.md, "Fuzzing"): a sanitizer build in .build-fuzz, every committed
# crash and seed input replayed, then 30 s of fuzzing per target. QWENKIT_SKIP_FUZZ=1 skips it;
# QWENKIT_FUZZ_SECONDS sets the time per target.
if [ "${QWENKIT_SKIP_FUZZ:-0}" != 1 ]; then
    scripts/fuzz.sh --replay
    scripts/fuzz.sh --no-build --seconds "${QWENKIT_FUZZ_SECONDS:-30}"
fi
