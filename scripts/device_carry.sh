#!/usr/bin/env bash
# Here (CPU box): prepare `.devicecarry/` for a device call. The device tool copies the tracked tree
# plus the carry, 64 MiB in all, so the big duckdb wheel travels as an xz tarball of its files.
# Usage: bash scripts/device_carry.sh [extra packages for prepare-lmdeploy.sh...]
set -euo pipefail
cd "$(dirname "$0")/.."
bash ../shared/device/prepare-lmdeploy.sh duckdb "$@"
whl=$(ls .devicecarry/whl/duckdb-*.whl)
tmp=$(mktemp -d)
unzip -q "$whl" -d "$tmp"
tar -cJf .devicecarry/duckdb.tar.xz -C "$tmp" .
rm -rf "$tmp" "$whl"
du -sh .devicecarry
