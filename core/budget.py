"""The budget controller: the competition clock, the speed schedule and the hard cutoff.

Before each question it re-picks the speed level (`pick_level`, from the time left to the cutoff)
and says whether the question may run at all (`past_cutoff`: begun after the cutoff, it gets
`cutoff_answer` without generation) and how long it has until the cutoff; the control loop's
timeout checks and watchdog enforce that. The same order of operations as the simulator's
`replay_competition`: level first, then the cutoff test.

The budget has one meaning everywhere (`effective_cutoff`, used by the live solver, the reference
replay, the fast path and the tuner): it caps the run. The cutoff in force is
min(policy cutoff, budget − margin), the margin being `BUDGET_MARGIN` (1%) of the budget, kept
for the question running at the cutoff; a run whose total passes the budget is overtime.

Two clocks: `VirtualClock` (replay/synthetic engines: start-up plus the sum of question times,
all on the engine's virtual clock) and `WallClock` (live engines: monotonic seconds since the
competition started, so time between questions counts too).
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from aimo.core.errors import InputError
from aimo.core.policy import Policy, Schedule, SpeedLevel, past_cutoff, pick_level, question_budget_s

BUDGET_MARGIN = 0.01  # share of the budget kept after the cutoff (180 s of 5 hours)


def check_budget(budget_s: float, where: str = "--budget-s") -> float:
    """The budget as a float; InputError unless it is a finite number of seconds > 0."""
    try:
        value = float(budget_s)
    except (TypeError, ValueError):
        raise InputError(where, "budget_s", f"expected seconds > 0, got {budget_s!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise InputError(where, "budget_s", f"must be a finite number of seconds > 0 (got {budget_s!r})")
    return value


def effective_cutoff(cutoff_s: float, budget_s: float) -> float:
    """The cutoff in force: the policy's, or the budget less its margin when that is earlier."""
    return min(float(cutoff_s), float(budget_s) * (1.0 - BUDGET_MARGIN))


def within_budget(policy: Policy, budget_s: float) -> Policy:
    """`policy` with its schedule's cutoff capped by the budget (`effective_cutoff`)."""
    cutoff = effective_cutoff(policy.schedule.cutoff_s, budget_s)
    if cutoff == policy.schedule.cutoff_s:
        return policy
    return dataclasses.replace(policy, schedule=dataclasses.replace(policy.schedule, cutoff_s=cutoff))


class CompetitionClock(Protocol):
    """Seconds since the competition started."""

    def elapsed(self) -> float: ...

    def advance(self, seconds: float) -> None:
        """A question took `seconds` (a wall clock ignores this: it measures)."""


class VirtualClock:
    """Start-up plus the question times it is told about (engine clock seconds)."""

    def __init__(self, startup_s: float = 0.0) -> None:
        self._elapsed = float(startup_s)

    def elapsed(self) -> float:
        return self._elapsed

    def advance(self, seconds: float) -> None:
        self._elapsed += seconds


class WallClock:
    """Monotonic seconds since `start` (default: now), plus `offset_s` (time spent before it)."""

    def __init__(self, start: float | None = None, *, offset_s: float = 0.0,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self._monotonic = monotonic
        self._start = monotonic() if start is None else start
        self._offset = offset_s

    def elapsed(self) -> float:
        return self._offset + self._monotonic() - self._start

    def advance(self, seconds: float) -> None:
        return None


@dataclass(frozen=True)
class QuestionPlan:
    """What the controller allows the next question: its position, speed level, whether it runs
    at all, the competition clock at its start and the seconds left until the cutoff."""

    order: int
    level: int
    speed: SpeedLevel
    run: bool
    start_s: float
    cutoff_in_s: float


class BudgetController:
    """Tracks questions done and the speed level over a competition of `schedule.questions`.

    Not thread-safe; one per competition. Call `plan()` before a question and `finish(time_s)`
    after it (also for questions that did not run).
    """

    def __init__(self, schedule: Schedule, clock: CompetitionClock) -> None:
        self.schedule = schedule
        self.clock = clock
        self.level = schedule.start_level
        self.done = 0

    def plan(self) -> QuestionPlan:
        """The plan of the next question (re-picks the level at the schedule's re-evaluations)."""
        s = self.schedule
        now = self.clock.elapsed()
        self.level = pick_level(s, self.level, self.done, s.cutoff_s - now)
        speed = s.level(self.level)
        if s.budget is not None:  # the per-question budget from the time left (its timeout)
            speed = dataclasses.replace(
                speed, timeout_s=question_budget_s(s, speed, self.done, s.cutoff_s - now))
        return QuestionPlan(
            order=self.done, level=self.level, speed=speed,
            run=not past_cutoff(s, now), start_s=now, cutoff_in_s=s.cutoff_s - now,
        )

    def finish(self, time_s: float) -> None:
        """The question just planned is over after `time_s` seconds."""
        self.clock.advance(time_s)
        self.done += 1

    def resume_from(self, done: int, level: int | None) -> None:
        """Continue a restarted competition after `done` questions at speed `level` (the clock
        carries the time they used)."""
        self.done = done
        if level is not None:
            self.level = level


__all__ = ["BUDGET_MARGIN", "BudgetController", "check_budget", "effective_cutoff", "within_budget", "CompetitionClock", "QuestionPlan", "VirtualClock", "WallClock"]
