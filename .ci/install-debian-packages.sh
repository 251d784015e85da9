#!/usr/bin/env bash
# Installs the Debian packages the tests drive, when one is missing: chromium for the
# browser tests (tests/test_ui_browser.py; Playwright's own browser download cannot work
# here, the tests drive /usr/bin/chromium) and valgrind for the instruction counts
# (benchmarks/bench_instructions.py, tests/test_bench_instructions.py).
set -euo pipefail
if [ -x /usr/bin/chromium ] && [ -x /usr/bin/valgrind ]; then
    exit 0
fi
SUDO=""
if [ "$(id -u)" != "0" ]; then
    SUDO="sudo"
fi
$SUDO apt-get update
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y chromium valgrind
