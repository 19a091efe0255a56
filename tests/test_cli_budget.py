"""The budget has one meaning on the command line: `solve --budget-s` caps the run, bad budgets,
speedups and overtime rules are refused cleanly (exit 2, no traceback) by simulate, solve and tune."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from aimo.cli import app

runner = CliRunner()
BAD_BUDGETS = ["0", "-600", "nan", "inf", "-inf"]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from aimo.recorder.synth import synthesize_store

    path = tmp_path_factory.mktemp("budget") / "s.duckdb"
    synthesize_store(path, n_problems=12, n_samples=8, seed=1)
    return path


def _clean_refusal(result, word: str) -> None:
    assert result.exit_code == 2, result.output
    assert word in result.output
    assert "Traceback" not in result.output and result.exception is None or isinstance(
        result.exception, SystemExit)


@pytest.mark.parametrize("budget", BAD_BUDGETS)
def test_simulate_refuses_bad_budgets(store: Path, budget: str) -> None:
    _clean_refusal(runner.invoke(app, ["simulate", "--traces", str(store), "--budget-s", budget]), "budget_s")


@pytest.mark.parametrize("budget", BAD_BUDGETS)
def test_solve_refuses_bad_budgets(store: Path, budget: str) -> None:
    _clean_refusal(runner.invoke(app, ["solve", "--traces", str(store), "--budget-s", budget]), "budget_s")


@pytest.mark.parametrize("budget", ["0", "nan", "inf"])
def test_tune_refuses_bad_budgets(store: Path, budget: str, tmp_path: Path) -> None:
    result = runner.invoke(app, ["tune", "--traces", str(store), "--trials", "1", "--out",
                                 str(tmp_path / "best.yaml"), "--budget-s", budget])
    _clean_refusal(result, "budget_s")


@pytest.mark.parametrize("speedup", ["0", "-1", "nan"])
def test_solve_refuses_bad_speedups_once(store: Path, speedup: str) -> None:
    result = runner.invoke(app, ["solve", "--traces", str(store), "--speedup", speedup])
    _clean_refusal(result, "speedup")
    errors = [ln for ln in result.output.splitlines() if ln.startswith("error")]
    assert len(errors) == 1  # one message, not one per question (stderr may also name the profile)


@pytest.mark.parametrize("command", ["simulate", "solve"])
def test_unknown_overtime_rule_is_refused(store: Path, command: str) -> None:
    result = runner.invoke(app, [command, "--traces", str(store), "--overtime-scores", "all"])
    _clean_refusal(result, "overtime_scores")


def test_solve_budget_caps_the_run(store: Path) -> None:
    result = runner.invoke(app, ["solve", "--traces", str(store), "--budget-s", "600", "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["total_time_s"] <= 600.0 and not out["overtime"]
    assert out["cutoff_s"] == pytest.approx(594.0)  # the budget less its 1% margin
    assert out["n_after_cutoff"] > 0  # reached the cutoff in time: answered, not overtime
    assert out["score"] == out["n_correct"] and out["overtime_rule"] == "zero"


def test_simulate_json_names_the_rule_and_scores_by_it(store: Path) -> None:
    result = runner.invoke(app, ["simulate", "--traces", str(store), "--budget-s", "600", "--json",
                                 "--overtime-scores", "answered"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["overtime_rule"] == "answered" and out["score"] == out["n_correct_in_budget"]
    assert not out["overtime"] and out["total_time_s"] <= 600.0
