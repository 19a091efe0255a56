"""Result objects of a replay: per sample, per question, per competition, and bootstrap summaries.

Plain frozen data so the tuner can keep thousands of them and the dashboard can plot them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

SampleEnd = Literal["finished", "length", "sample_stop", "question_stop", "queued"]


@dataclass(frozen=True)
class SampleOutcome:
    """How one sample ran within its question (times are seconds since the question started)."""

    index: int  # slot in the question's batch (0..N-1)
    source_sample: int  # sample index in the trace store
    kind: str
    start_s: float
    end_s: float
    tokens: int
    end: SampleEnd
    boxed: int | None  # latest boxed answer known when the question ended
    code: int | None  # latest code answer known (-1: the code failed)


@dataclass(frozen=True)
class QuestionResult:
    """One question of a competition: what was answered, how long it took, why it stopped."""

    problem_id: str
    order: int  # 0-based position in the competition
    level: int
    answer: int
    truth: int | None
    start_s: float  # competition clock when the question began
    time_s: float  # wall time the question took (prefill + decode + waits)
    stop_reason: str  # e.g. "all_done", "rule1", "min_answers", "timeout", "early_timeout", "cutoff", "after_cutoff"
    samples: tuple[SampleOutcome, ...]

    @property
    def correct(self) -> bool | None:
        return None if self.truth is None else self.answer == self.truth

    @property
    def tokens(self) -> int:
        return sum(s.tokens for s in self.samples)

    @property
    def samples_started(self) -> int:
        return sum(1 for s in self.samples if s.end != "queued")

    @property
    def samples_stopped(self) -> int:
        return sum(1 for s in self.samples if s.end in ("sample_stop", "question_stop"))


@dataclass(frozen=True)
class CompetitionResult:
    """A whole competition: per-question results and totals under the budget."""

    questions: tuple[QuestionResult, ...]
    startup_s: float
    budget_s: float
    cutoff_s: float

    @property
    def score(self) -> int:
        return sum(1 for q in self.questions if q.correct)

    @property
    def total_time_s(self) -> float:
        return self.startup_s + sum(q.time_s for q in self.questions)

    @property
    def n_after_cutoff(self) -> int:
        return sum(1 for q in self.questions if q.stop_reason == "after_cutoff")

    @property
    def overtime(self) -> bool:
        """Ran out of time: a question was reached after the cutoff, or the budget was exceeded."""
        return self.n_after_cutoff > 0 or self.total_time_s > self.budget_s


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
