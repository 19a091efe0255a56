#!/usr/bin/env bash
# Install Debian's headless-capable Chromium for the dashboard's end-to-end browser test
# (tests/dashboard/test_browser_e2e.py). Idempotent: does nothing when chromium is already there.
# Needs root (or passwordless sudo); CI calls it before `make test`.
set -euo pipefail

if command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; then
    echo "ci-chromium: $(chromium --version 2>/dev/null || chromium-browser --version) already installed"
    exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        SUDO="sudo -n"
    else
        echo "ci-chromium: need root or sudo to install chromium" >&2
        exit 1
    fi
fi

export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends chromium chromium-driver fonts-dejavu-core
echo "ci-chromium: installed $(chromium --version)"
