"""Live results of a run as the store holds them: each question's final answer, stop reason, level
and time, and the run's score and budget burn-down. For `aimo runs show` and the dashboard."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from aimo.core.store.connect import DEFAULT_LOCK_TIMEOUT_S, read_connection
from aimo.core.store.migrations import has_decided
from aimo.core.store.reader import _resolve_run, list_runs

QUESTION_RESULTS = """
SELECT p.position, d.problem_id, p.answer AS truth, d.final_answer, d.stop_reason, d.level,
       d.start_s, d.wall_s, d.committed_at, {decided} AS decided_s
FROM questions_done d
JOIN problems p ON p.run_id = d.run_id AND p.problem_id = d.problem_id
WHERE d.run_id = $run_id
ORDER BY p.position, d.problem_id
"""


@dataclass(frozen=True)
class LiveScore:
    """A run's answers so far: how many were answered, how many of those with a known truth were
    right, the competition time used (start of the last question plus its time) and the budget."""

    run_id: str
    state: str
    answered: int
    with_truth: int
    correct: int
    time_used_s: float | None
    budget_s: float | None

    @property
    def budget_left_s(self) -> float | None:
        """Budget minus time used (None when either is unknown)."""
        if self.budget_s is None or self.time_used_s is None:
            return None
        return self.budget_s - self.time_used_s

    def render(self) -> str:
        """One line: 'live score 24/26 right of 26 answered, 1,234 s of 18,000 s used (finished)'."""
        used = "time unknown" if self.time_used_s is None else f"{self.time_used_s:,.0f} s"
        budget = "" if self.budget_s is None else f" of {self.budget_s:,.0f} s"
        return (f"live score {self.correct}/{self.with_truth} right of {self.answered} answered, "
                f"{used}{budget} used ({self.state})")


def question_results(
    path: str | Path, run_id: str | None = None, *, lock_timeout_s: float = DEFAULT_LOCK_TIMEOUT_S
) -> pd.DataFrame:
    """One row per committed question in serving order: position, problem_id, truth,
    final_answer, correct (None without a truth or an answer), stop_reason, level, start_s,
    wall_s, committed_at, decided_s. The live columns are NULL for runs that are not live
    solves (decided_s also for stores before v4)."""
    with read_connection(path, lock_timeout_s=lock_timeout_s) as con:
        run_id = _resolve_run(con, run_id, str(path))
        query = QUESTION_RESULTS.format(decided="d.decided_s" if has_decided(con) else "NULL::DOUBLE")
        frame = con.execute(query, {"run_id": run_id}).df()
    known = frame["truth"].notna() & frame["final_answer"].notna()
    frame["correct"] = (frame["truth"] == frame["final_answer"]).astype(object).where(known, None)
    frame.attrs["run_id"] = run_id
    return frame


PROMPT_LENGTHS = """
SELECT problem_id, kind, CAST(round(median(prompt_tokens)) AS INTEGER) AS prompt_tokens
FROM samples WHERE run_id = $run_id AND prompt_tokens > 0
GROUP BY problem_id, kind
"""


def prompt_lengths(path: str | Path, run_id: str, *,
                   lock_timeout_s: float = DEFAULT_LOCK_TIMEOUT_S) -> dict[tuple[str, str], int]:
    """The prompt tokens the run's engine prefilled, per (problem, prompt kind): the median over
    the question's samples of that kind (samples without a reported length left out)."""
    with read_connection(path, lock_timeout_s=lock_timeout_s) as con:
        rows = con.execute(PROMPT_LENGTHS, {"run_id": run_id}).fetchall()
    return {(str(p), str(k)): int(n) for p, k, n in rows}


def live_score(
    path: str | Path, run_id: str | None = None, *, lock_timeout_s: float = DEFAULT_LOCK_TIMEOUT_S
) -> LiveScore:
    """The run's live score, time used and budget (see `LiveScore`)."""
    frame = question_results(path, run_id, lock_timeout_s=lock_timeout_s)
    run_id = frame.attrs["run_id"]
    run = next(r for r in list_runs(path, lock_timeout_s=lock_timeout_s) if r.run_id == run_id)
    answered = frame[frame["final_answer"].notna()]
    with_truth = answered[answered["truth"].notna()]
    ends = (answered["start_s"] + answered["wall_s"]).dropna()
    return LiveScore(
        run_id=run_id,
        state=run.state,
        answered=len(answered),
        with_truth=len(with_truth),
        correct=int((with_truth["truth"] == with_truth["final_answer"]).sum()),
        time_used_s=float(ends.max()) if len(ends) else None,
        budget_s=run.budget_s,
    )




@dataclass(frozen=True)
class ResumePoint:
    """Where a restarted live run continues: the questions it committed, how many, the
    competition time they used (start of the last plus its time) and the speed level last used."""

    run_id: str
    done: frozenset[str]
    n_done: int
    time_used_s: float
    level: int | None


def resume_point(
    path: str | Path, run_id: str | None = None, *, kind: str = "solve",
    lock_timeout_s: float = DEFAULT_LOCK_TIMEOUT_S,
) -> ResumePoint:
    """The resume point of `run_id`, or of the store's only unfinished run of `kind`.

    Raises:
        InputError: no such run, a finished run, several unfinished runs (listed), or a run
            still being written by a live process.
    """
    from aimo.core.errors import InputError

    source = str(path)
    runs = [r for r in list_runs(path, lock_timeout_s=lock_timeout_s) if r.kind == kind]
    if run_id is None:
        open_runs = [r for r in runs if r.state in ("interrupted", "failed")]
        if len(open_runs) != 1:
            listed = ", ".join(f"{r.run_id} ({r.state})" for r in runs) or "none"
            what = "no" if not open_runs else "several"
            raise InputError(source, "run_id",
                             f"{what} interrupted {kind} runs to resume; pick one of: {listed}")
        run = open_runs[0]
    else:
        found = [r for r in runs if r.run_id == run_id]
        if not found:
            raise InputError(source, "run_id", f"no {kind} run {run_id!r} in the store")
        run = found[0]
    if run.state == "finished":
        raise InputError(source, "run_id", f"run {run.run_id!r} is finished; nothing to resume")
    if run.state == "running":
        raise InputError(source, "run_id", f"run {run.run_id!r} is being written by pid "
                         f"{run.writer_pid} on {run.writer_host}; stop it first")
    frame = question_results(path, run.run_id, lock_timeout_s=lock_timeout_s)
    ends = (frame["start_s"] + frame["wall_s"]).dropna()
    levels = frame["level"].dropna()
    return ResumePoint(
        run_id=run.run_id,
        done=frozenset(frame["problem_id"]),
        n_done=len(frame),
        time_used_s=float(ends.max()) if len(ends) else float(frame["wall_s"].fillna(0).sum()),
        level=int(levels.iloc[-1]) if len(levels) else None,
    )


__all__ = ["LiveScore", "ResumePoint", "live_score", "question_results", "resume_point"]
