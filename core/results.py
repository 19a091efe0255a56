"""What the live solver reports: per sample, per question, per competition.

The field names mirror the simulator's `SampleOutcome`, `QuestionResult` and `CompetitionResult`
(simulator/replay/results.py) one for one, so the fidelity test compares them field by field
and `aimo solve --json` prints the same fields as `aimo simulate --json`. Defined here because
the solver must not import the simulator.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from aimo.core.scoring import rule_score

SampleEnd = Literal["finished", "length", "sample_stop", "question_stop", "queued"]


@dataclass(frozen=True)
class SampleOutcome:
    """How one sample ran within its question (times in seconds since the question started)."""

    index: int  # slot in the question's batch (0..N-1)
    source_sample: int  # the engine's sample (replay: the recorded sample index)
    kind: str
    start_s: float  # NaN if it never started
    end_s: float  # NaN if it never started
    tokens: int
    end: SampleEnd
    boxed: int | None  # latest boxed answer seen by its last check
    code: int | None  # latest code answer seen (-1: the code failed)


@dataclass(frozen=True)
class QuestionOutcome:
    """What one question's control loop produced (times relative to the question's start)."""

    answer: int
    time_s: float
    stop_reason: str
    samples: tuple[SampleOutcome, ...]
    decided_s: float | None = None  # when the loop decided the stop (None: all_done)


@dataclass(frozen=True)
class QuestionResult:
    """One question of a solve: answer, time, why it stopped (fields as the simulator's)."""

    problem_id: str
    order: int
    level: int
    answer: int
    truth: int | None
    start_s: float  # competition clock when the question began
    time_s: float  # time the question took (engine clock, plus per-question overhead)
    stop_reason: str
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
class SolveResult:
    """A whole solve (a competition): per-question results and totals under the budget.

    `score` follows the competition's rule (core/scoring.py): 0 for an overtime run
    unless `overtime_rule` is `answered` (then the answers given by the budget count).
    """

    questions: tuple[QuestionResult, ...]
    startup_s: float
    budget_s: float
    cutoff_s: float
    overtime_rule: str = "zero"

    @property
    def n_correct(self) -> int:
        """Correct answers, whenever they were given (the score if the budget did not count)."""
        return sum(1 for q in self.questions if q.correct)

    @property
    def n_correct_in_budget(self) -> int:
        """Correct answers of questions that ended by the budget."""
        return sum(1 for q in self.questions if q.correct and q.start_s + q.time_s <= self.budget_s)

    @property
    def score(self) -> int:
        """The score under the competition's rule (`rule_score`)."""
        return rule_score(self.n_correct, self.n_correct_in_budget, self.overtime, self.overtime_rule)

    @property
    def total_time_s(self) -> float:
        return self.startup_s + sum(q.time_s for q in self.questions)

    @property
    def n_after_cutoff(self) -> int:
        return sum(1 for q in self.questions if q.stop_reason == "after_cutoff")

    @property
    def overtime(self) -> bool:
        """The run passed its budget (reaching the cutoff in time is not overtime)."""
        return self.total_time_s > self.budget_s


__all__ = ["QuestionOutcome", "QuestionResult", "SampleEnd", "SampleOutcome", "SolveResult"]
