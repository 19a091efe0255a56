"""What people expect of a command line: --version, python -m aimo, completion, real choices,
-v/-q on the library loggers, AIMO_* defaults, group help, a root help for users."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from aimo.cli import app

ROOT = Path(__file__).resolve().parents[2]
OLYMPIAD = ROOT / "data" / "traces" / "olympiad-tiny.duckdb"
runner = CliRunner()


def test_version_and_python_dash_m() -> None:
    res = runner.invoke(app, ["--version"])
    assert res.exit_code == 0 and res.output.startswith("aimo ")
    proc = subprocess.run([sys.executable, "-m", "aimo", "--help"], capture_output=True,
                          text=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 0 and "aimo demo" in proc.stdout
    assert "lazil" not in proc.stdout and "lazy" not in proc.stdout  # speaks to users
    assert "--install-completion" in proc.stdout


@pytest.mark.parametrize("args,choices", [
    (["tune", "--help"], ["tpe", "nsga2", "gp", "mean", "lcb"]),
    (["solve", "--help"], ["replay", "synthetic", "turbomind", "pytorch"]),
    (["record", "--help"], ["turbomind", "pytorch"]),
])
def test_choice_options_list_their_choices(args: list[str], choices: list[str]) -> None:
    res = runner.invoke(app, args, env={"COLUMNS": "200"})
    assert res.exit_code == 0
    for c in choices:
        assert c in res.output


def test_a_bad_choice_is_refused_by_name() -> None:
    res = runner.invoke(app, ["tune", "--traces", "x", "--trials", "1", "--out", "o.yaml",
                              "--sampler", "annealing"])
    assert res.exit_code == 2 and "annealing" in res.output


def test_group_alone_shows_its_help() -> None:
    for group, subs in (("profile", ("list", "bind", "show")),
                        ("policy", ("list", "show", "validate", "diff"))):
        res = runner.invoke(app, [group])
        assert "Usage" in res.output and all(s in res.output for s in subs)


@pytest.fixture
def restore_logging():
    """-v/-q change process-wide logger levels: put them back for the tests that follow."""
    from aimo.core.settings import LIBRARY_LOGGERS

    levels = {n: logging.getLogger(n).level for n in LIBRARY_LOGGERS}
    handlers = list(logging.getLogger().handlers)
    yield
    for n, lv in levels.items():
        logging.getLogger(n).setLevel(lv)
    logging.getLogger().handlers[:] = handlers


def test_verbose_and_quiet_set_the_library_loggers(restore_logging) -> None:
    runner.invoke(app, ["-v", "policy", "list"])
    assert logging.getLogger("lmdeploy").level == logging.INFO
    runner.invoke(app, ["-vv", "policy", "list"])
    assert logging.getLogger("aimo.solver").getEffectiveLevel() == logging.DEBUG
    runner.invoke(app, ["-q", "policy", "list"])
    assert logging.getLogger("lmdeploy").level == logging.ERROR
    assert all(h.stream is not sys.stdout for h in logging.getLogger().handlers
               if isinstance(h, logging.StreamHandler))
    default = logging.getLogger("aimo").level
    runner.invoke(app, ["policy", "list"])  # no -v/-q: levels left as they were
    assert logging.getLogger("aimo").level == default


def test_aimo_environment_defaults(tmp_path: Path) -> None:
    env = {"AIMO_TRACES": str(OLYMPIAD), "AIMO_POLICY": "fast-8", "AIMO_BUDGET_S": "9000"}
    res = runner.invoke(app, ["simulate", "--json"], env=env)
    assert res.exit_code == 0, res.output
    import json

    doc = json.loads(res.stdout)
    assert doc["policy"] == "fast-8" and doc["budget_s"] == 9000.0
    assert doc["traces"] == str(OLYMPIAD)


def test_a_bad_environment_value_names_the_variable(restore_logging) -> None:
    res = runner.invoke(app, ["policy", "list"], env={"AIMO_LOG_LEVEL": "LOUD"})
    assert res.exit_code == 2 and "AIMO_LOG_LEVEL" in res.output
    from aimo.core.settings import load_settings
    from aimo.core.errors import InputError

    with pytest.raises(InputError, match="AIMO_BUDGET_S"):
        load_settings({"AIMO_BUDGET_S": "-5"})
    assert load_settings({}).policy == "seed-2nd-place"
