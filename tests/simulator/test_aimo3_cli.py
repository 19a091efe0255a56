"""`aimo simulate --aimo3-score` and the confidence policies at the CLI, hostile inputs included."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from aimo.cli import app
from aimo.recorder.synth import synthesize_store

runner = CliRunner()


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    d = tmp_path_factory.mktemp("aimo3")
    bare, conf = d / "bare.duckdb", d / "conf.duckdb"
    synthesize_store(bare, n_problems=4, n_samples=8, seed=3, progress=False)
    synthesize_store(conf, n_problems=4, n_samples=8, seed=3, progress=False, confidence=True)
    return bare, conf


def test_aimo3_score_pairs_replicates(stores: tuple[Path, Path]) -> None:
    _, conf = stores
    result = runner.invoke(app, ["simulate", "--traces", str(conf), "--policy", "aimo3-winner",
                                 "--bootstrap", "4", "--aimo3-score", "--target", "2", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    scores = data["bootstrap"]["scores"]
    a3 = data["aimo3"]
    assert a3["pairs"] == 2 and a3["target"] == 2.0
    assert a3["scores"] == [(scores[0] + scores[1]) / 2, (scores[2] + scores[3]) / 2]
    text = runner.invoke(app, ["simulate", "--traces", str(conf), "--policy", "deepconf-online",
                               "--bootstrap", "2", "--aimo3-score"])
    assert text.exit_code == 0 and "AIMO-3 score" in text.output


@pytest.mark.parametrize("bootstrap", ["0", "3"])
def test_aimo3_score_needs_an_even_bootstrap(stores: tuple[Path, Path], bootstrap: str) -> None:
    result = runner.invoke(app, ["simulate", "--traces", str(stores[1]), "--bootstrap", bootstrap,
                                 "--aimo3-score"])
    assert result.exit_code == 2 and "even number" in result.output


@pytest.mark.parametrize("bootstrap", ["0", "2"])
def test_confidence_policy_on_a_store_without_confidence_is_refused(
    stores: tuple[Path, Path], bootstrap: str
) -> None:
    result = runner.invoke(app, ["simulate", "--traces", str(stores[0]), "--policy",
                                 "deepconf-online", "--bootstrap", bootstrap])
    assert result.exit_code == 2
    assert "confidence" in result.output and "Traceback" not in result.output


def test_live_solver_refuses_a_confidence_policy_without_logprobs(tmp_path: Path,
                                                                  stores: tuple[Path, Path]) -> None:
    csv = tmp_path / "p.csv"
    csv.write_text("id,question,answer\nq1,What is 1+1?,2\n", encoding="utf-8")
    result = runner.invoke(app, ["solve", "--problems", str(csv), "--policy", "aimo3-winner",
                                 "--backend", "synthetic"])
    assert result.exit_code == 2 and "logprobs" in result.output
