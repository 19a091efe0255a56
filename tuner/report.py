"""Held-out comparison: the tuned procedure vs the seed preset and plain baselines, same draws.

Why: a tuned policy's in-sample score is optimistic (it was chosen for it), so the table shows
every policy scored on problems it was not tuned on: for fold k, the policy chosen by the fold-k
study (tuned on the other folds' problems only) and each fixed preset are scored on fold k's
problems with the same seeded draws; replicates of all folds are pooled. Paired differences
against the seed use those shared draws.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from aimo.simulator.report import render_table
from aimo.core.policy import Policy
from aimo.tuner.objective import Evaluator, ObjectiveSpec, evaluate

Z90 = 1.645


@dataclass(frozen=True)
class HeldOutRow:
    """One policy (or procedure) scored held-out, pooled over folds."""

    name: str
    mean_score: float
    score_lo: float  # 5th percentile of the pooled competition scores
    score_hi: float  # 95th percentile
    mean_time_s: float
    p_overtime: float
    fold_means: tuple[float, ...]
    scores: tuple[int, ...]
    delta: tuple[float, float, float] | None = None  # vs the seed: mean and 90% CI of the mean
    aimo3_mean: float | None = None  # AIMO-3 scoring (paired replicates), when asked for
    aimo3_p: float | None = None  # P(AIMO-3 score ≥ aimo3_target)
    aimo3_target: float | None = None

    def as_dict(self) -> dict[str, object]:
        d = asdict(self)
        d.pop("scores")
        return d


@dataclass(frozen=True)
class FoldReport:
    """One cross-validation fold of a tuning run: the trial its study chose, that trial's train
    metrics (the metric user attributes) and the chosen policy's held-out mean score."""

    study: str
    trial: int
    train: dict[str, Any]
    test_mean: float


@dataclass(frozen=True)
class TuneReport:
    """What `aimo tune` stores on its final study (`tuner.study.REPORT_ATTR`): the held-out rows
    (without per-replicate scores), the exported trial with its metrics, the folds and the
    exported file. Readers take this type, not the stored mapping, so the attribute's layout is
    spelled out here only."""

    rows: tuple[HeldOutRow, ...]
    final_trial: int
    final_feasible: bool
    final_metrics: dict[str, Any]
    folds: tuple[FoldReport, ...]
    out: str

    def to_attr(self) -> dict[str, Any]:
        """The JSON-able mapping stored as the study's user attribute."""
        return {
            "rows": [r.as_dict() for r in self.rows],
            "final": {"trial": self.final_trial, "feasible": self.final_feasible,
                      **self.final_metrics},
            "folds": [asdict(f) for f in self.folds],
            "out": self.out,
        }

    @classmethod
    def from_attr(cls, attr: dict[str, Any]) -> TuneReport:
        """Read back what `to_attr` wrote (lists come back as tuples; `scores` is empty).

        Raises:
            KeyError, TypeError: not a mapping `to_attr` wrote.
        """
        rows = tuple(
            HeldOutRow(**{**r, "fold_means": tuple(r.get("fold_means", ())), "scores": (),
                          "delta": None if r.get("delta") is None else tuple(r["delta"])})
            for r in attr["rows"]
        )
        final = dict(attr["final"])
        trial, feasible = final.pop("trial"), final.pop("feasible")
        folds = tuple(FoldReport(**f) for f in attr.get("folds", ()))
        return cls(rows=rows, final_trial=int(trial), final_feasible=bool(feasible),
                   final_metrics=final, folds=folds, out=str(attr.get("out", "")))


def heldout_row(
    name: str, evaluator: Evaluator, policies: Sequence[Policy], specs: Sequence[ObjectiveSpec],
    aimo3_target: float | None = None,
) -> HeldOutRow:
    """Score `policies[k]` on fold k (`specs[k]`: its test problems and draws) and pool; with
    `aimo3_target` (paired specs) also the AIMO-3 score's mean and P(≥ target), pairs pooled."""
    summaries = [evaluate(evaluator, pol, spec) for pol, spec in zip(policies, specs, strict=True)]
    a3: dict[str, float | None] = {}
    if aimo3_target is not None:
        from aimo.simulator.aimo3 import aimo3_scores

        pairs = np.concatenate([aimo3_scores(s.scores) for s in summaries])
        a3 = {"aimo3_mean": float(pairs.mean()),
              "aimo3_p": float(np.mean(pairs >= aimo3_target)), "aimo3_target": aimo3_target}
    scores = np.concatenate([np.asarray(s.scores, dtype=float) for s in summaries])
    times = np.concatenate([np.asarray(s.times_s, dtype=float) for s in summaries])
    weights = np.array([s.replicates for s in summaries], dtype=float)
    return HeldOutRow(
        name=name, mean_score=float(scores.mean()),
        score_lo=float(np.percentile(scores, 5)), score_hi=float(np.percentile(scores, 95)),
        mean_time_s=float(times.mean()),
        p_overtime=float(np.average([s.p_overtime for s in summaries], weights=weights)),
        fold_means=tuple(s.mean_score for s in summaries),
        scores=tuple(int(x) for x in scores), **a3,  # type: ignore[arg-type]
    )


# two-sided 90% Student t quantiles (0.95) by degrees of freedom; 1.645 beyond the table
_T95 = {1: 6.314, 2: 2.920, 3: 2.353, 4: 2.132, 5: 2.015, 6: 1.943, 7: 1.895, 8: 1.860,
        9: 1.833, 10: 1.812, 12: 1.782, 15: 1.753, 20: 1.725, 30: 1.697}


def t95(df: int) -> float:
    """The 0.95 quantile of Student's t with `df` degrees of freedom (table; conservative between)."""
    if df <= 0:
        return math.inf
    keys = [k for k in sorted(_T95) if k <= df]
    return _T95[keys[-1]] if df <= 30 else Z90


def with_delta(row: HeldOutRow, reference: HeldOutRow) -> HeldOutRow:
    """`row` with its paired difference to `reference` (same draws): the mean over all
    replicates, and a 90% t-interval over the folds' mean differences.

    The interval is over folds, not replicates: replicates re-draw the same few problems, so
    their spread says nothing about new problems; folds hold different problems (and, for a
    tuned row, different tuning runs), so their spread does.
    """
    diff = np.asarray(row.scores, float) - np.asarray(reference.scores, float)
    mean = float(diff.mean())
    per_fold = np.asarray(row.fold_means) - np.asarray(reference.fold_means)
    k = len(per_fold)
    half = t95(k - 1) * float(per_fold.std(ddof=1)) / math.sqrt(k) if k > 1 else math.inf
    return HeldOutRow(**{**asdict(row), "scores": row.scores, "fold_means": row.fold_means,
                         "delta": (mean, mean - half, mean + half)})


def _hours(seconds: float) -> str:
    return f"{seconds:,.0f} s ({seconds / 3600:.2f} h)"


def render_comparison(rows: Sequence[HeldOutRow], *, folds: int, replicates: int,
                      n_questions: int) -> str:
    """The comparison table with a one-line legend."""
    headers = ["policy", "held-out score", "90% interval", "Δ vs seed (90% CI)", "mean time",
               "P(overtime)"]
    aimo3 = bool(rows) and rows[0].aimo3_mean is not None
    if aimo3:
        headers += ["AIMO-3 score", f"P(AIMO-3 ≥ {rows[0].aimo3_target:g})"]
    body = []
    for r in rows:
        delta = "-" if r.delta is None else (
            f"{r.delta[0]:+.2f} ({r.delta[1]:+.2f}..{r.delta[2]:+.2f})")
        body.append([r.name, f"{r.mean_score:.2f}", f"{r.score_lo:.0f}–{r.score_hi:.0f}", delta,
                     _hours(r.mean_time_s), f"{r.p_overtime:.3f}"])
        if aimo3:
            body[-1] += [f"{r.aimo3_mean:.2f}", f"{r.aimo3_p:.3f}"]
    legend = (
        f"held-out: nested {folds}-fold CV by problem; {n_questions}-question competitions drawn "
        f"from each fold's held-out problems, {replicates} replicates per fold, pooled; the same "
        "draws for every row. Δ: paired mean difference, 90% t-interval over the folds. 'tuned' = "
        "the tuning procedure: on fold k, the policy tuned on the other folds only."
    )
    if aimo3:
        legend += (" AIMO-3: replicates in pairs over the same questions (each problem run "
                   "twice), 1 point if both right, 0.5 if one.")
    return render_table(headers, body) + "\n" + legend


__all__ = ["FoldReport", "HeldOutRow", "TuneReport", "heldout_row", "render_comparison",
           "with_delta"]
