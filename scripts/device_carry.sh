#!/usr/bin/env bash
# Here (CPU box): prepare `.devicecarry/` for a device call. The device tool copies the tracked tree
# plus the carry, 64 MiB in all, so everything the device image lacks (lmdeploy's Python part and
# the wheels prepare-lmdeploy.sh fetched: duckdb, ...) travels as ONE xz tarball of the installed
# files (23 MB instead of 32 MB of wheels); scripts/device_preamble.sh unpacks it into /tmp/site.
# Usage: bash scripts/device_carry.sh [extra packages for prepare-lmdeploy.sh...]
set -euo pipefail
cd "$(dirname "$0")/.."
bash ../shared/device/prepare-lmdeploy.sh duckdb "$@"
tmp=$(mktemp -d)
for w in .devicecarry/whl/*.whl; do unzip -q -o "$w" -d "$tmp"; done
cp -r .devicecarry/site/lmdeploy "$tmp/"
tar -cJf .devicecarry/site.tar.xz -C "$tmp" .
rm -rf "$tmp" .devicecarry/whl .devicecarry/site .devicecarry/duckdb.tar.xz
du -sh .devicecarry
