"""Simulator-vs-live comparison: the arithmetic, and the committed loop report's numbers."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from aimo.simulator.livecheck import QuestionPair, live_check, wilson
from aimo.core.results import QuestionResult, SolveResult

REPO = Path(__file__).resolve().parents[2]


def _q(pid: str, answer: int, truth: int, t: float) -> QuestionResult:
    return QuestionResult(pid, 0, 1, answer, truth, 0.0, t, "all_done", ())


def test_wilson_interval_matches_known_values_and_edges() -> None:
    iv = wilson(12, 50)
    assert iv.value == pytest.approx(0.24)
    assert (iv.low, iv.high) == pytest.approx((0.1565, 0.3496), abs=2e-3)  # z = 1.645
    assert wilson(0, 10).low == 0.0 and wilson(10, 10).high == 1.0
    assert wilson(0, 0).value != wilson(0, 0).value  # nan


def test_live_check_pairs_skips_and_summarises() -> None:
    predicted = SolveResult((_q("a", 1, 1, 2.0), _q("b", 2, 3, 4.0), _q("c", 5, 5, 1.0),
                             _q("d", 7, 7, 9.0)), 10.0, 100.0, 90.0)
    live_times = {"a": 4.0, "b": 4.0, "c": 2.0}  # "d" not finished live
    live_answers = {"a": 1, "b": 3, "c": 6}
    check = live_check("p", predicted, live_times, live_answers, live_startup_s=5.0, skip=("c",))
    assert [p.problem_id for p in check.pairs] == ["a", "b"]
    assert [p.rel_error for p in check.pairs] == [-0.5, 0.0]
    assert check.median_error == 0.25 and check.signed_median_error == -0.25
    assert check.predicted_total_s == 6.0 and check.live_total_s == 8.0
    assert check.accuracy("predicted").value == 0.5 and check.accuracy("live").value == 1.0
    assert check.answers_agree == 0.5
    assert QuestionPair("x", None, 1.0, 0.0, 1, None).rel_error != 0.0  # nan, not a crash


def test_committed_loop_report_is_what_the_bundled_data_gives(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    spec = importlib.util.spec_from_file_location("olympiad_report",
                                                  REPO / "scripts/olympiad_report.py")
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(module)
    assert module.main(["--out", str(tmp_path)]) == 0
    fresh = (tmp_path / "report-table.md").read_text()
    assert fresh == (REPO / "docs/olympiad-loop/report-table.md").read_text()
    assert (tmp_path / "times.png").stat().st_size > 10_000
    rows = [r for r in fresh.splitlines() if r.startswith("| h200")]
    assert len(rows) == 6 and all("| 49 |" in r or "| 25 |" in r for r in rows)
