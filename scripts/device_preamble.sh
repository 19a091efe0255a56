# On the device machine, sourced from the repo root: `source scripts/device_preamble.sh || exit`.
# Unpacks the carried packages (prepared here by scripts/device_carry.sh) into /tmp/site and makes
# the project importable under its installed name, `aimo.<part>`, by linking each top-level folder
# into aimo/ as pyproject's package-dir maps it (aimo.core -> core/, ...): the device's copy of the
# tree is throw-away, and nothing is imported by path.
mkdir -p /tmp/site || return 1
if [ -f .devicecarry/site.tar.xz ]; then  # scripts/device_carry.sh: one tarball of installed files
    tar -xJf .devicecarry/site.tar.xz -C /tmp/site || return 1
else  # prepare-lmdeploy.sh's own layout: wheels plus lmdeploy's Python part
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site .devicecarry/whl/*.whl || return 1
    cp -r .devicecarry/site/lmdeploy /tmp/site/ || return 1
fi
python3 - <<'PY' || return 1
import os, tomllib  # the links follow pyproject's package-dir table, the one definition of the layout
table = tomllib.load(open("pyproject.toml", "rb"))["tool"]["setuptools"]["package-dir"]
for name, folder in table.items():
    link = os.path.join("aimo", name.split(".", 1)[1]) if name != "aimo" else None
    if link and not os.path.lexists(link):
        os.symlink(os.path.abspath(folder), link)
PY
export PYTHONPATH=/tmp/site:$PWD HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1
python3 -c "import aimo.core, aimo.data, duckdb, lmdeploy" || return 1
