"""Check the simulator against a live run: per-question time, total time and accuracy.

Why: a replay is only worth tuning on if it predicts what the live solver does. The prediction
replays the *recording* (other samples of the same model) with a policy and a hardware profile;
the live run is `aimo solve --record`'s run of the same policy on the same problems. Pure
functions over results and plain numbers; reading stores and files is the caller's job.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from aimo.simulator.replay.results import CompetitionResult

Z90 = 1.6448536269514722  # two-sided 90%


@dataclass(frozen=True)
class QuestionPair:
    """One question as predicted and as run live."""

    problem_id: str
    truth: int | None
    predicted_s: float
    live_s: float
    predicted_answer: int
    live_answer: int | None

    @property
    def rel_error(self) -> float:
        """(predicted − live) / live: negative = the simulator is too fast."""
        return (self.predicted_s - self.live_s) / self.live_s if self.live_s > 0 else math.nan


@dataclass(frozen=True)
class Interval:
    """A proportion (or mean) with a 90% interval."""

    value: float
    low: float
    high: float

    def render(self, scale: float = 1.0, digits: int = 1) -> str:
        return (f"{self.value * scale:.{digits}f} "
                f"({self.low * scale:.{digits}f}–{self.high * scale:.{digits}f})")


@dataclass(frozen=True)
class LiveCheck:
    """Predicted vs live for one policy over the questions both have."""

    policy: str
    pairs: tuple[QuestionPair, ...]
    predicted_total_s: float  # sum of per-question times (start-up excluded)
    live_total_s: float
    predicted_startup_s: float
    live_startup_s: float | None

    @property
    def abs_rel_errors(self) -> np.ndarray:
        return np.abs([p.rel_error for p in self.pairs])

    @property
    def median_error(self) -> float:
        return float(np.median(self.abs_rel_errors)) if self.pairs else math.nan

    @property
    def p90_error(self) -> float:
        return float(np.quantile(self.abs_rel_errors, 0.9)) if self.pairs else math.nan

    @property
    def total_error(self) -> float:
        """(Σ predicted − Σ live) / Σ live question time: negative = the simulator is too fast."""
        live = self.live_total_s
        return (self.predicted_total_s - live) / live if live > 0 else math.nan

    @property
    def signed_median_error(self) -> float:
        return float(np.median([p.rel_error for p in self.pairs])) if self.pairs else math.nan

    def accuracy(self, which: str) -> Interval:
        """Share right of the known answers, `which` = 'predicted' or 'live' (Wilson 90%)."""
        known = [p for p in self.pairs if p.truth is not None]
        right = sum((p.predicted_answer if which == "predicted" else p.live_answer) == p.truth
                    for p in known)
        return wilson(right, len(known))

    @property
    def answers_agree(self) -> float:
        """Share of questions where prediction and live run gave the same answer."""
        same = sum(p.predicted_answer == p.live_answer for p in self.pairs)
        return same / len(self.pairs) if self.pairs else math.nan


def wilson(successes: int, n: int, z: float = Z90) -> Interval:
    """Wilson score interval of a proportion (sound at 0 and n, unlike the normal one)."""
    if n == 0:
        return Interval(math.nan, math.nan, math.nan)
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return Interval(p, max(0.0, centre - half), min(1.0, centre + half))


def pair_questions(
    predicted: CompetitionResult,
    live_times: Mapping[str, float],
    live_answers: Mapping[str, int | None],
) -> tuple[QuestionPair, ...]:
    """The questions of `predicted` that the live run finished, in the prediction's order."""
    out = []
    for q in predicted.questions:
        if q.problem_id in live_times:
            out.append(QuestionPair(q.problem_id, q.truth, q.time_s, live_times[q.problem_id],
                                    q.answer, live_answers.get(q.problem_id)))
    return tuple(out)


def live_check(
    policy: str,
    predicted: CompetitionResult,
    live_times: Mapping[str, float],
    live_answers: Mapping[str, int | None],
    *,
    live_startup_s: float | None = None,
    skip: Sequence[str] = (),
) -> LiveCheck:
    """Compare `predicted` with the live run's per-question times and answers.

    `skip`: problem ids left out of the comparison (e.g. the first question of a live run, which
    waits for lmdeploy's first-batch stall: start-up, not a question's work).
    """
    pairs = tuple(p for p in pair_questions(predicted, live_times, live_answers)
                  if p.problem_id not in skip)
    return LiveCheck(policy, pairs, sum(p.predicted_s for p in pairs),
                     sum(p.live_s for p in pairs), predicted.startup_s, live_startup_s)


__all__ = ["Interval", "LiveCheck", "QuestionPair", "live_check", "pair_questions", "wilson"]
