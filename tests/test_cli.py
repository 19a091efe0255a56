"""The `aimo` entry point: help works everywhere and unlanded commands say so plainly."""

from __future__ import annotations

import subprocess
import sys

from typer.testing import CliRunner

from aimo.cli import app

runner = CliRunner()


def test_help_lists_every_subcommand() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for name in ["synth", "import", "simulate", "tune", "record", "solve", "dashboard", "demo"]:
        assert name in result.output


def test_bad_input_names_the_file_and_exits_non_zero(tmp_path) -> None:
    missing = tmp_path / "missing.duckdb"
    result = runner.invoke(app, ["simulate", "--traces", str(missing)])
    assert result.exit_code == 2
    assert str(missing) in result.output


def test_import_simulator_without_gpu_or_browser_packages() -> None:
    code = (
        "import sys, simulator, solver, recorder, tuner;"
        "bad = [m for m in ('lmdeploy', 'torch', 'streamlit', 'plotly') if m in sys.modules];"
        "sys.exit(1 if bad else 0)"
    )
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
