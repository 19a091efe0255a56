#!/usr/bin/env bash
# Brings up what the real-part tests need before `pytest`: Debian's chromium (dashboard e2e) and a
# throw-away PostgreSQL on 127.0.0.1 (tuner's shared-study test; password logins only, socket in
# a private folder; `make test` stops it afterwards: `bash scripts/ci-postgres.sh stop`).
# Prints the env to export.
# Needs root; without it the scripts say so and those tests skip locally (never under CI=true).
set -uo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" != "0" ]; then
  echo "test-services: not root — chromium/PostgreSQL not set up; their tests skip outside CI" >&2
  exit 0
fi
bash scripts/ci-chromium.sh >&2 || { echo "test-services: chromium install failed" >&2; exit 1; }
url_line=$(bash scripts/ci-postgres.sh | tail -n 1) || { echo "test-services: PostgreSQL failed" >&2; exit 1; }
echo "$url_line" >&2
echo "${url_line#*export }"
