"""One draw module (`core.draws`): the reference bootstrap, the dashboard's competition, the
replay engine and the folds make their seeded choices through it, and a problem without
recordings is one error everywhere."""

from __future__ import annotations

import numpy as np
import pytest
from replay_fixtures import flat_profile, problem, sample

from aimo.core.draws import (
    NoRecordedSamples,
    fold_permutation,
    question_order,
    random_draw,
    recorded_draw,
    replicate_draw,
)
from aimo.core.errors import InputError
from aimo.core.policy import load_policy
from aimo.simulator.crossval import kfold_by_problem
from aimo.simulator.replay import bootstrap_competitions
from aimo.solver.engines.replay import recorded_samples

PROBLEMS = [problem(f"p{i}", i, [sample(j, "cot" if j % 3 else "code", 50 + 10 * j,
                                        [(40, i, "boxed")]) for j in range(6)])
            for i in range(5)]
KINDS = ("cot", "cot", "code", "cot")


def _samples(draws: list) -> list[list[int]]:
    return [[t.sample for t in d.take(KINDS)] for d in draws]


@pytest.mark.parametrize("n_questions", [None, 5, 3, 8])
def test_bootstrap_serves_the_replicate_draws(n_questions: int | None) -> None:
    """The reference bootstrap's competitions are `replicate_draw`s from one generator."""
    captured: list[tuple[list[str], list[list[int]]]] = []

    def spy(chosen, policy, profile, *, draws, budget_s, overtime_rule):  # noqa: ANN001, ANN202
        captured.append(([p.problem_id for p in chosen], _samples(draws)))
        from aimo.simulator.replay import replay_competition
        return replay_competition(chosen, policy, profile, draws=draws, budget_s=budget_s)

    bootstrap_competitions(PROBLEMS, load_policy("majority-n"), flat_profile(), replicates=3,
                           seed=7, n_questions=n_questions, replay=spy)
    rng = np.random.default_rng(7)
    for ids, samples in captured:
        idx, draws = replicate_draw(PROBLEMS, rng, n_questions)
        assert ids == [PROBLEMS[i].problem_id for i in idx]
        assert samples == _samples(draws)


def test_dashboard_competition_is_one_replicate_draw() -> None:
    pytest.importorskip("streamlit")
    from aimo.dashboard import simulation as data

    for n in (5, 3):
        order, draws = data.competition_problems(PROBLEMS, n, 11)
        want_order, want_draws = replicate_draw(PROBLEMS, np.random.default_rng(11), n)
        assert order == want_order and _samples(draws) == _samples(want_draws)


def test_question_order_is_a_permutation_or_drawn_with_replacement() -> None:
    assert sorted(question_order(np.random.default_rng(0), 5, 5)) == list(range(5))
    drawn = question_order(np.random.default_rng(0), 5, 12)
    assert len(drawn) == 12 and set(drawn) <= set(range(5))


def test_random_draw_permutes_within_each_kind() -> None:
    d = random_draw(PROBLEMS[0], np.random.default_rng(3))
    assert sorted(t.sample for t in d.cot) == [t.sample for t in PROBLEMS[0].of_kind("cot")]
    assert sorted(t.sample for t in d.code) == [t.sample for t in PROBLEMS[0].of_kind("code")]


def test_replay_engine_takes_the_recorded_draw() -> None:
    for p in PROBLEMS[:2]:
        assert recorded_samples(p, KINDS) == recorded_draw(p).take(KINDS)


def test_a_problem_without_samples_is_one_error_everywhere() -> None:
    empty = problem("empty", 1, [])
    with pytest.raises(NoRecordedSamples) as engine_err:
        recorded_samples(empty, KINDS)
    with pytest.raises(NoRecordedSamples) as draw_err:
        recorded_draw(empty).take(KINDS)
    for err in (engine_err.value, draw_err.value):
        assert isinstance(err, InputError) and isinstance(err, ValueError)
        assert "problem empty" in str(err) and "no recorded samples" in str(err)


def test_folds_deal_the_fold_permutation() -> None:
    ids = [f"q{i}" for i in range(10)]
    perm = fold_permutation(10, 5)
    folds = kfold_by_problem(ids, 2, seed=5)
    assert set(folds[0].test) == {ids[j] for j in perm[:5]}
