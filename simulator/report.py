"""Plain-text tables and JSON of replay results, shared by `aimo simulate`, `aimo solve` and the demo.

JSON fields are documented in docs/simulate-json.md; keep the two in step.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from simulator.replay.results import BootstrapSummary, CompetitionResult, QuestionResult


def question_row(q: QuestionResult) -> dict[str, Any]:
    """One question as a JSON-ready dict."""
    return {
        "problem_id": q.problem_id,
        "order": q.order,
        "level": q.level,
        "answer": q.answer,
        "truth": q.truth,
        "correct": q.correct,
        "start_s": round(q.start_s, 3),
        "time_s": round(q.time_s, 3),
        "stop_reason": q.stop_reason,
        "samples_started": q.samples_started,
        "samples_stopped": q.samples_stopped,
        "tokens": q.tokens,
    }


def competition_json(result: CompetitionResult) -> dict[str, Any]:
    """Totals and per-question rows of one competition."""
    return {
        "score": result.score,
        "n_questions": len(result.questions),
        "n_known_answers": sum(1 for q in result.questions if q.truth is not None),
        "total_time_s": round(result.total_time_s, 3),
        "startup_s": result.startup_s,
        "budget_s": result.budget_s,
        "cutoff_s": result.cutoff_s,
        "overtime": result.overtime,
        "n_after_cutoff": result.n_after_cutoff,
        "questions": [question_row(q) for q in result.questions],
    }


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


def _fmt(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.1f}"
    return str(value)


def render_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A fixed-width text table (no colour codes, so it reads the same in logs and pipes)."""
    cells = [[_fmt(v) for v in row] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.rjust(w) for c, w in zip(r, widths)) for r in cells]
    return "\n".join(lines)


def render_competition(result: CompetitionResult) -> str:
    """Per-question table and totals of one competition."""
    headers = ["#", "problem", "lvl", "answer", "truth", "ok", "time_s", "started", "stopped", "tokens", "stop"]
    rows = [
        [q.order + 1, q.problem_id, q.level, q.answer, q.truth, q.correct, q.time_s,
         q.samples_started, q.samples_stopped, q.tokens, q.stop_reason]
        for q in result.questions
    ]
    known = sum(1 for q in result.questions if q.truth is not None)
    total = (
        f"score {result.score}/{known} known answers ({len(result.questions)} questions); "
        f"total time {result.total_time_s:.0f} s of {result.budget_s:.0f} s budget "
        f"(start-up {result.startup_s:.0f} s); overtime: {_fmt(result.overtime)}; "
        f"questions after cutoff: {result.n_after_cutoff}"
    )
    return render_table(headers, rows) + "\n" + total


def render_bootstrap(summary: BootstrapSummary) -> str:
    """One paragraph: mean score and interval, mean time, overtime probability."""
    return (
        f"bootstrap {summary.replicates} replicates × {summary.n_questions} questions: "
        f"mean score {summary.mean_score:.2f} (90% interval {summary.score_lo:.0f}–{summary.score_hi:.0f}), "
        f"mean time {summary.mean_time_s:.0f} s, P(overtime) {summary.p_overtime:.3f}"
    )
