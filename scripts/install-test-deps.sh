#!/usr/bin/env bash
# Installs what the tests need from Debian's packages: headless Chromium, which renders /docs in
# tests/integration/test_operations.py. Idempotent: skips apt when a chromium binary is already on PATH.
# Prints the browser's path on success.
set -euo pipefail

find_browser() {
    local name
    for name in chromium chromium-browser; do
        if command -v "$name" >/dev/null 2>&1; then
            command -v "$name"
            return 0
        fi
    done
    return 1
}

if browser=$(find_browser); then
    echo "$browser"
    exit 0
fi
"$(dirname "$0")/apt-install.sh" install-test-deps chromium fonts-liberation
browser=$(find_browser) || { echo "install-test-deps: chromium still missing after apt-get install" >&2; exit 1; }
echo "$browser"
