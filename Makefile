# Two entry points for a fresh clone: `make demo` (main job on bundled data) and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup demo lint test test-fast bench clean

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[all,test]'
	touch $(STAMP)

# torch pinned to the CPU build this machine kind keeps on disk (an unpinned one is the CUDA build)
TRAIN_STAMP := $(VENV)/.installed-train
$(TRAIN_STAMP): $(STAMP)
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[all,test,train]'
	touch $(TRAIN_STAMP)

setup: $(STAMP)

demo: $(STAMP)
	$(BIN)/aimo demo

# ruff (bug-finding rules) and mypy, both configured in pyproject.toml; mypy runs through
# scripts/typecheck.py, which links the folders into the installed `aimo.*` layout first
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/python scripts/typecheck.py

# Lint first; then real parts (Debian chromium, a local PostgreSQL: needs root), then the whole suite;
# the PostgreSQL is stopped afterwards, whatever the outcome (trap).
test: lint $(STAMP) $(TRAIN_STAMP)
	trap 'bash scripts/ci-postgres.sh stop >&2 || true' EXIT; \
	env $$(bash scripts/test-services.sh) $(BIN)/python -m pytest -q

# The pure suite: no sandboxed runs, compiles, torch, subprocess CLIs, browser, PostgreSQL, GPU,
# network or wall-clock deadlines (markers in pyproject.toml); `make test` runs everything.
# On every core (pytest-xdist), and with bytecode caching on even where the environment turns it
# off (PYTHONDONTWRITEBYTECODE): otherwise each run re-compiles every module and re-rewrites
# every test's asserts, ~40% of the suite's time on a 2-core box.
FAST := not (slow or browser or postgres or gpu or network or realtime)
test-fast: $(STAMP)
	env -u PYTHONDONTWRITEBYTECODE $(BIN)/python -m pytest -q -n auto -m "$(FAST)"

bench: $(STAMP)
	$(BIN)/python bench/bench_store.py
	$(BIN)/python bench/bench_simulator.py
	$(BIN)/python bench/bench_cli_simulate.py
	$(BIN)/python bench/bench_tuner.py --trials 100

clean:
	rm -rf $(VENV) build *.egg-info
