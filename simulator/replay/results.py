"""Result objects of a replay. Per sample, per question and per competition they are the live
solver's own types (core/results.py), so a replay and a live solve compare like for like and
print the same JSON; only the bootstrap summary belongs to the simulator.
"""

from __future__ import annotations

from dataclasses import dataclass

from aimo.core.results import QuestionResult, SampleEnd, SampleOutcome
from aimo.core.results import SolveResult as CompetitionResult

__all__ = ["BootstrapSummary", "CompetitionResult", "QuestionResult", "SampleEnd", "SampleOutcome"]


@dataclass(frozen=True)
class BootstrapSummary:
    """Mean and 90% interval of the score over replicates, mean time and overtime probability."""

    replicates: int
    n_questions: int
    mean_score: float
    score_lo: float  # 5th percentile
    score_hi: float  # 95th percentile
    mean_time_s: float
    p_overtime: float
    scores: tuple[int, ...]
    times_s: tuple[float, ...]
