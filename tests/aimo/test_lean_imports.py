"""The solver ships lean: `import solver` (and its Kaggle entry) and `aimo solve --help` load
none of the tool's optional extras (dashboard, tuner, compiled simulator, plots)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("streamlit", "plotly", "optuna", "numba", "matplotlib", "lmdeploy", "torch")
REPORT = "import atexit, sys; atexit.register(lambda: print('LOADED', [m for m in {heavy!r} if m in sys.modules], file=sys.stderr));"


def loaded(code: str) -> str:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-c", REPORT.format(heavy=HEAVY) + code],
                          capture_output=True, text=True, env=env, cwd=ROOT, timeout=120)
    line = [x for x in proc.stderr.splitlines() if x.startswith("LOADED")]
    assert line, proc.stderr
    return line[-1]


def test_import_solver_is_lean() -> None:
    assert loaded("import solver, solver.kaggle, solver.kaggle_server, solver.solve") == "LOADED []"


def test_solve_help_is_lean() -> None:
    code = ("import sys; sys.argv = ['aimo', 'solve', '--help'];"
            "from aimo.cli import main\ntry:\n    main()\nexcept SystemExit:\n    pass")
    assert loaded(code) == "LOADED []"


def test_core_dependencies_exclude_the_extras() -> None:
    import tomllib

    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    core = " ".join(meta["dependencies"])
    for name in ("streamlit", "plotly", "optuna", "numba", "matplotlib", "lmdeploy"):
        assert name not in core
    extras = meta["optional-dependencies"]
    assert {"tune", "dashboard", "gpu", "plots", "all"} <= set(extras)
