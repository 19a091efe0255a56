# On the device machine, sourced from the repo root: `source scripts/device_preamble.sh || exit`.
# Installs the carried wheels (prepared here by scripts/device_carry.sh) into /tmp/site and makes
# the project importable under its installed name, `aimo.<part>`, by linking each top-level folder
# into aimo/ as pyproject's package-dir maps it (aimo.core -> core/, ...): the device's copy of the
# tree is throw-away, and nothing is imported by path.
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .devicecarry/whl/*.whl || return 1
cp -r .devicecarry/site/lmdeploy /tmp/site/ || return 1
if [ -f .devicecarry/duckdb.tar.xz ]; then tar -xJf .devicecarry/duckdb.tar.xz -C /tmp/site || return 1; fi
for part in core solver simulator recorder tuner dashboard data; do ln -sfn "$PWD/$part" "aimo/$part"; done
export PYTHONPATH=/tmp/site:$PWD HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1
python3 -c "import aimo.core, aimo.data, duckdb, lmdeploy" || return 1
