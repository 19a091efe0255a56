"""The tuner scores by the competition's rule: an overtime competition scores 0 (or, with
`overtime_rule="answered"`, only the answers given before the budget), in the objective and in
the held-out report, on the fast path and the reference path alike."""

from __future__ import annotations

from dataclasses import replace

import pytest
from replay_fixtures import problem, sample

from aimo.core.hardware import load_profile
from aimo.simulator.replay import bootstrap_competitions
from aimo.core.policy import load_policy
from aimo.tuner.objective import Metrics, ObjectiveSpec, evaluate, make_evaluator
from aimo.tuner.report import heldout_row
from aimo.tuner.study import TuneConfig

POLICY = load_policy("majority-n")


def _problems() -> list:
    # every sample answers right; each question takes minutes, so a short budget binds
    return [problem(f"p{i}", 7, [sample(j, "cot" if j % 2 == 0 else "code", 3000 + 100 * j,
                                        [(200 + 10 * j, 7, "boxed")]) for j in range(8)])
            for i in range(10)]


@pytest.mark.parametrize("fast", [True, False])
@pytest.mark.parametrize("rule", ["zero", "answered"])
def test_objective_and_report_score_by_the_rule(fast: bool, rule: str) -> None:
    problems = _problems()
    # a per-question overhead beyond the budget's 1% margin makes runs overtime
    profile = replace(load_profile("l4x4-14b-w4kv8"), question_overhead_s=60.0)
    budget = 900.0
    spec = ObjectiveSpec(subset=tuple(range(10)), replicates=6, seed=3, n_questions=10,
                         budget_s=budget, overtime_rule=rule)
    evaluator = make_evaluator(problems, profile, fast=fast)
    summary = evaluate(evaluator, POLICY, spec)
    runs = bootstrap_competitions(problems, POLICY, profile, replicates=6, seed=3, n_questions=10,
                                  budget_s=budget)
    assert any(r.overtime for r in runs)
    expect = [(r.n_correct_in_budget if rule == "answered" else (0 if r.overtime else r.n_correct))
              for r in runs]
    assert list(summary.scores) == expect
    assert summary.p_overtime == pytest.approx(sum(r.overtime for r in runs) / 6)
    metrics = Metrics.from_summary(summary)
    assert metrics.mean_score == pytest.approx(sum(expect) / 6)
    row = heldout_row("majority-n", evaluator, [POLICY], [spec])
    assert row.mean_score == pytest.approx(sum(expect) / 6) and row.p_overtime == summary.p_overtime


def test_the_rule_is_part_of_a_studys_settings() -> None:
    a = TuneConfig(traces="t", storage="s", study="x", trials=1)
    b = replace(a, overtime_rule="answered")
    assert a.settings("f", "r", 10)["overtime_rule"] == "zero"
    assert a.settings("f", "r", 10) != b.settings("f", "r", 10)  # a resume cannot mix rules
