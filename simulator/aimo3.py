"""AIMO-3 scoring: each problem is run twice; 1 point if both runs are right, 0.5 if one is.

Why: the AIMO-3 private leaderboard scored every problem on two independent runs and was decided
by ties at 44/50, so a policy's chance of reaching a target score matters as much as its mean.
Replicates 2i and 2i + 1 of a paired bootstrap (`bootstrap_competitions(..., paired=True)`,
`FastSimulator.bootstrap_arrays(..., paired=True)`) serve the same questions with independent
sample draws, so the pair's AIMO-3 score is Σ_p (right_p,1 + right_p,2) / 2 = (S_2i + S_2i+1) / 2.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Aimo3Summary:
    """AIMO-3 scores of paired replicates: their mean and P(score ≥ target)."""

    pairs: int
    mean: float
    p_at_least: float
    target: float
    scores: tuple[float, ...]


def aimo3_scores(scores: Sequence[float] | np.ndarray) -> np.ndarray:
    """Per pair of consecutive replicates (same questions), the AIMO-3 score (S1 + S2) / 2."""
    s = np.asarray(scores, dtype=float)
    if len(s) < 2 or len(s) % 2:
        raise ValueError(f"AIMO-3 scoring needs an even number (≥ 2) of paired replicates, "
                         f"got {len(s)}")
    return (s[0::2] + s[1::2]) / 2.0


def aimo3_summary(scores: Sequence[float] | np.ndarray, target: float) -> Aimo3Summary:
    """`aimo3_scores` summarised: mean, and the share of pairs scoring ≥ `target`."""
    a = aimo3_scores(scores)
    return Aimo3Summary(pairs=len(a), mean=float(a.mean()),
                        p_at_least=float(np.mean(a >= target)), target=float(target),
                        scores=tuple(float(x) for x in a))


def render_aimo3(s: Aimo3Summary) -> str:
    """One line for the simulate and tune reports."""
    return (f"AIMO-3 score (each problem run twice: 1 if both right, 0.5 if one), {s.pairs} pairs: "
            f"mean {s.mean:.2f}, P(score ≥ {s.target:g}) = {s.p_at_least:.3f}")


__all__ = ["Aimo3Summary", "aimo3_scores", "aimo3_summary", "render_aimo3"]
