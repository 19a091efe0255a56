"""Plain-text tables and JSON of replay results for `aimo simulate` and the demo. Per competition
they are the live solver's renderers (core/report.py), so `aimo simulate --json` and
`aimo solve --json` print the same fields (docs/simulate-json.md); bootstrap summaries are added here.
"""

from __future__ import annotations

from typing import Any

from aimo.simulator.replay.results import BootstrapSummary
from aimo.core.report import competition_json, question_row, render_competition, render_table

__all__ = [
    "bootstrap_json", "competition_json", "question_row", "render_bootstrap", "render_competition",
    "render_table",
]


def bootstrap_json(summary: BootstrapSummary) -> dict[str, Any]:
    """The bootstrap summary as a JSON-ready dict."""
    return {
        "replicates": summary.replicates,
        "n_questions": summary.n_questions,
        "mean_score": summary.mean_score,
        "score_interval_90": [summary.score_lo, summary.score_hi],
        "mean_time_s": summary.mean_time_s,
        "p_overtime": summary.p_overtime,
        "scores": list(summary.scores),
    }


def render_bootstrap(summary: BootstrapSummary) -> str:
    """One paragraph: mean score and interval, mean time, overtime probability."""
    return (
        f"bootstrap {summary.replicates} replicates × {summary.n_questions} questions: "
        f"mean score {summary.mean_score:.2f} (90% interval {summary.score_lo:.0f}–{summary.score_hi:.0f}), "
        f"mean time {summary.mean_time_s:.0f} s, P(overtime) {summary.p_overtime:.3f}"
    )
