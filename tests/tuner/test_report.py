"""The tuner's stored report: `TuneReport.to_attr` is what `aimo tune` stores on its final study,
and `from_attr` reads back every field but the per-replicate scores (which are not stored)."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from aimo.tuner.report import FoldReport, HeldOutRow, TuneReport


def _row(name: str, delta: tuple[float, float, float] | None) -> HeldOutRow:
    return HeldOutRow(name=name, mean_score=30.5, score_lo=27.0, score_hi=34.0,
                      mean_time_s=9000.0, p_overtime=0.02, fold_means=(30.0, 31.0),
                      scores=(30, 31, 30, 31), delta=delta)


def test_the_stored_report_reads_back_through_json() -> None:
    report = TuneReport(
        rows=(_row("seed-2nd-place", None), _row("tuned", (1.5, -0.5, 3.5))),
        final_trial=7, final_feasible=True, final_metrics={"score_mean": 31.0, "p_overtime": 0.01},
        folds=(FoldReport("demo:fold1of2", 3, {"score_mean": 29.0}, 30.0),
               FoldReport("demo:fold2of2", 5, {"score_mean": 32.0}, 31.0)),
        out="best.yaml",
    )
    stored = json.loads(json.dumps(report.to_attr()))  # Optuna keeps user attributes as JSON
    assert "scores" not in stored["rows"][0]
    back = TuneReport.from_attr(stored)
    assert back == replace(report, rows=tuple(replace(r, scores=()) for r in report.rows))


def test_a_mapping_of_another_shape_is_refused() -> None:
    with pytest.raises((KeyError, TypeError)):
        TuneReport.from_attr({"rows": [{"name": "x"}]})
