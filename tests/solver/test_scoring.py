"""The budget's one meaning (effective cutoff, validation) and the competition's scoring rule."""

from __future__ import annotations

import math

import numpy as np
import pytest

from aimo.core.errors import InputError
from aimo.core.budget import check_budget, effective_cutoff, within_budget
from aimo.core.results import QuestionResult, SolveResult
from aimo.core.scoring import rule_score
from aimo.core.policy import load_policy


@pytest.mark.parametrize("bad", [0, 0.0, -1, -600.0, math.nan, math.inf, -math.inf, "x", None])
def test_bad_budgets_are_refused(bad: object) -> None:
    with pytest.raises(InputError, match="budget_s"):
        check_budget(bad)  # type: ignore[arg-type]


def test_effective_cutoff_is_the_earlier_of_policy_and_budget() -> None:
    assert effective_cutoff(17820.0, 18000.0) == 17820.0
    assert effective_cutoff(17820.0, 600.0) == pytest.approx(594.0)
    seed = load_policy("seed-2nd-place")
    assert within_budget(seed, 18000.0) is seed
    assert within_budget(seed, 1200.0).schedule.cutoff_s == pytest.approx(1188.0)


def test_rule_score_scalars_and_arrays() -> None:
    assert rule_score(30, 28, False) == 30
    assert rule_score(30, 28, True) == 0
    assert rule_score(30, 28, True, "answered") == 28
    out = rule_score(np.array([30, 31]), np.array([28, 31]), np.array([True, False]))
    assert list(out) == [0, 31] and out.dtype == np.int64
    with pytest.raises(InputError, match="overtime_scores"):
        rule_score(1, 1, False, "all")


def _q(order: int, start: float, time_s: float, stop: str = "rule1") -> QuestionResult:
    return QuestionResult(f"p{order}", order, 1, 7, 7, start, time_s, stop, ())


def test_overtime_is_passing_the_budget_not_reaching_the_cutoff() -> None:
    in_time = SolveResult((_q(0, 10, 80), _q(1, 90, 0, "after_cutoff")), 10.0, 100.0, 89.0)
    assert not in_time.overtime and in_time.score == 2
    late = SolveResult((_q(0, 10, 80), _q(1, 90, 20)), 10.0, 100.0, 89.0)
    assert late.overtime and late.score == 0 and late.n_correct == 2
    kept = SolveResult(late.questions, 10.0, 100.0, 89.0, overtime_rule="answered")
    assert kept.score == kept.n_correct_in_budget == 1
