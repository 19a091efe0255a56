"""Plain-text tables and JSON of a solve, with the field names of `aimo simulate --json`
(docs/simulate-json.md; simulator/report.py renders the simulator's results the same way).

Kept in the solver because the solver must not import the simulator; the two must stay in step.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from aimo.core.results import QuestionResult, SolveResult


def question_row(q: QuestionResult) -> dict[str, Any]:
    """One question as a JSON-ready dict (same fields as the simulator's `question_row`)."""
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


def competition_json(result: SolveResult) -> dict[str, Any]:
    """Totals and per-question rows (same fields as the simulator's `competition_json`)."""
    return {
        "score": result.score,
        "overtime_rule": result.overtime_rule,
        "n_correct": result.n_correct,
        "n_correct_in_budget": result.n_correct_in_budget,
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


def _fmt(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.1f}"
    return str(value)


def render_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A fixed-width text table (no colour codes)."""
    cells = [[_fmt(v) for v in row] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.rjust(w) for c, w in zip(r, widths)) for r in cells]
    return "\n".join(lines)


HEADERS = ["#", "problem", "lvl", "answer", "truth", "ok", "time_s", "started", "stopped", "tokens", "stop"]


def question_cells(q: QuestionResult) -> list[object]:
    return [q.order + 1, q.problem_id, q.level, q.answer, q.truth, q.correct, q.time_s,
            q.samples_started, q.samples_stopped, q.tokens, q.stop_reason]


def render_question(q: QuestionResult) -> str:
    """One line per question, for progress output."""
    return "  ".join(f"{h}={_fmt(v)}" for h, v in zip(HEADERS, question_cells(q)))


def render_competition(result: SolveResult) -> str:
    """Per-question table and totals."""
    known = sum(1 for q in result.questions if q.truth is not None)
    over = "" if not result.overtime else (
        f" (overtime: scores {'nothing' if result.overtime_rule == 'zero' else 'the answers given by the budget'}; "
        f"{result.n_correct} correct in all)")
    total = (
        f"score {result.score}/{known} known answers{over} ({len(result.questions)} questions); "
        f"total time {result.total_time_s:.0f} s of {result.budget_s:.0f} s budget "
        f"(start-up {result.startup_s:.0f} s); overtime: {_fmt(result.overtime)}; "
        f"questions after cutoff: {result.n_after_cutoff}"
    )
    return render_table(HEADERS, [question_cells(q) for q in result.questions]) + "\n" + total


__all__ = ["competition_json", "question_row", "render_competition", "render_question", "render_table"]
