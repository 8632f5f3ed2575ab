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
if [[ $(id -u) -ne 0 ]]; then
    echo "install-test-deps: chromium is missing; run as root: apt-get update && apt-get install -y chromium" >&2
    exit 1
fi
echo "install-test-deps: installing Debian's chromium package" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >&2
apt-get install -y -qq --no-install-recommends chromium fonts-liberation >&2
browser=$(find_browser) || { echo "install-test-deps: chromium still missing after apt-get install" >&2; exit 1; }
echo "$browser"
