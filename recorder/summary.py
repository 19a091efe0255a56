"""Per-run summary of a trace store: size, length, accuracy, voting and answer stability.

Definitions (shared with `recorder.calibration`): a sample's *answers* are its answer rows with a
parsed value, in token order (then time, then insertion); its *first* and *final* answers are the
first and last of those. A sample is *right* when its final answer equals the problem's answer.
Majority vote is the plain plurality of final answers, ties to the larger value. Only questions
with a `questions_done` marker count.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from aimo.core.store.queries import run_keys, sample_stats

def majority_votes(stats: pd.DataFrame) -> pd.DataFrame:
    """Per problem: the plurality final answer (ties to the larger value; NA when none) and the truth.

    One row per (position, problem_id), sorted; `truth` is the problem's first row's. Vectorised
    (a count per problem and value, then the top one): the dashboard builds it for every run it
    shows, so it must not loop over problems in Python.
    """
    columns = ["problem_id", "position", "vote", "votes", "truth"]
    if stats.empty:
        return pd.DataFrame(columns=columns)
    problems = stats.drop_duplicates(["position", "problem_id"]).sort_values(
        ["position", "problem_id"], kind="stable")
    finals = stats.dropna(subset=["final_value"])
    counts = finals.groupby(["position", "problem_id", "final_value"]).size().reset_index(name="n")
    top = counts.sort_values(["position", "problem_id", "n", "final_value"],
                             ascending=[True, True, False, False], kind="stable")
    top = top.drop_duplicates(["position", "problem_id"]).set_index(["position", "problem_id"])
    keys = pd.MultiIndex.from_frame(problems[["position", "problem_id"]])
    vote, votes = top["final_value"].reindex(keys), top["n"].reindex(keys)
    return pd.DataFrame(
        {
            "problem_id": problems["problem_id"].tolist(),
            "position": problems["position"].tolist(),
            "vote": [None if pd.isna(v) else int(v) for v in vote],
            "votes": [0 if pd.isna(n) else int(n) for n in votes],
            "truth": [None if pd.isna(t) else int(t) for t in problems["truth"]],
        },
        columns=columns,
    )


@dataclass(frozen=True)
class RunStats:
    """Summary figures of one run; accuracies are None when no problem has a known answer."""

    run_id: str
    kind: str
    status: str
    n_problems: int
    n_samples: int
    mean_tokens: float
    sample_accuracy: float | None
    majority_accuracy: float | None
    first_final: float | None
    no_answer: int


def run_stats(run_id: str, kind: str, status: str, stats: pd.DataFrame) -> RunStats:
    """Reduce a run's per-sample statistics to its summary figures."""
    n = len(stats)
    known = stats[stats["truth"].notna()]
    right = (known["final_value"] == known["truth"]).fillna(False)
    votes = majority_votes(stats)
    voted = votes[votes["truth"].notna()]
    answered = stats[stats["n_values"] > 0]
    return RunStats(
        run_id=run_id,
        kind=kind,
        status=status,
        n_problems=int(stats["problem_id"].nunique()),
        n_samples=n,
        mean_tokens=float(stats["n_tokens"].mean()) if n else float("nan"),
        sample_accuracy=float(right.mean()) if len(known) else None,
        majority_accuracy=float((voted["vote"] == voted["truth"]).mean()) if len(voted) else None,
        first_final=float((answered["first_value"] == answered["final_value"]).mean())
        if len(answered) else None,
        no_answer=int((stats["n_values"] == 0).sum()),
    )


@dataclass(frozen=True)
class StoreSummary:
    """Summary of every run of a store, rendered as a plain-text table."""

    path: Path
    runs: tuple[RunStats, ...]

    def render(self) -> str:
        header = ("run", "kind", "status", "problems", "samples", "mean tok", "right", "maj vote",
                  "1st=final", "no answer")
        rows = [header] + [
            (
                r.run_id, r.kind, r.status, str(r.n_problems), str(r.n_samples),
                "-" if np.isnan(r.mean_tokens) else f"{r.mean_tokens:,.0f}",
                _pct(r.sample_accuracy), _pct(r.majority_accuracy), _pct(r.first_final),
                str(r.no_answer),
            )
            for r in self.runs
        ]
        widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
        lines = [f"trace store {self.path}: {len(self.runs)} run(s)"]
        for j, row in enumerate(rows):
            cells = [c.ljust(w) if i < 3 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths))]
            lines.append("  ".join(cells).rstrip())
            if j == 0:
                lines.append("  ".join("-" * w for w in widths))
        return "\n".join(lines)


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.1%}"


def summarize_store(path: str | Path) -> StoreSummary:
    """Summarise every run of the trace store at `path` (opened read-only, briefly).

    Raises:
        InputError: the file is missing, not a DuckDB file or not a trace store.
    """
    from aimo.core.store import read_connection

    with read_connection(path) as con:
        runs = run_keys(con)
        stats = [(run_id, kind, status, sample_stats(con, run_id)) for run_id, kind, status in runs]
    return StoreSummary(Path(path), tuple(run_stats(*item) for item in stats))
