"""The confidence and time-aware policy elements: validation, YAML, and the pure decisions."""

from __future__ import annotations

import math

import numpy as np
import pytest

from aimo.core.errors import InputError
from aimo.core.policy import (
    QuestionBudget,
    SampleFinal,
    Vote,
    confidence_feature,
    confidence_grid,
    confidence_row,
    confidence_stop_token,
    confidence_threshold,
    kept_by_confidence,
    leader_uncatchable,
    load_policy,
    percentile_linear,
    policy_from_yaml,
    policy_to_yaml,
    question_budget_s,
    uses_confidence,
    vote,
)
from aimo.core.policy.decisions import CONF_LOW_STOP, CONF_LOW_VOTE, CONF_MEAN, CONF_TAIL
from aimo.core.policy.model import ConfidenceStop


@pytest.mark.parametrize(("yaml_text", "field", "message"), [
    ("sample_stop: {confidence: {window: 0, threshold: 1.0}}", "sample_stop.confidence.window", "≥ 1"),
    ("sample_stop: {confidence: {window: 64}}", "sample_stop.confidence.threshold", "warmup"),
    ("sample_stop: {confidence: {threshold: 1.0, warmup: 3}}", "sample_stop.confidence.warmup",
     "not both"),
    ("sample_stop: {confidence: {warmup: 3, percentile: 101}}",
     "sample_stop.confidence.percentile", "[0.0, 100.0]"),
    ("sample_stop: {confidence: {threshold: .nan}}", "sample_stop.confidence.threshold", "finite"),
    ("sample_stop: {confidence: {warmup: -1, threshold: 2.0}}", "sample_stop.confidence.warmup",
     "≥ 0"),
    ("vote: {confidence: entropy}", "vote.confidence", "must be one of"),
    ("vote: {keep_top: 0.5}", "vote.keep_top", "needs a confidence metric"),
    ("vote: {confidence: mean, keep_top: 0}", "vote.keep_top", "(0, 1]"),
    ("vote: {confidence: mean, keep_top: 1.5}", "vote.keep_top", "(0, 1]"),
    ("vote: {confidence_window: 0}", "vote.confidence_window", "≥ 1"),
    ("question_stop: {uncatchable: 1}", "question_stop.uncatchable", "true or false"),
    ("schedule: {budget: {min_s: 0}}", "schedule.budget.min_s", "> 0"),
    ("schedule: {budget: {min_s: 500, max_s: 400}}", "schedule.budget.max_s", "≥ 500"),
    ("schedule: {budget: {reserve_s: -1}}", "schedule.budget.reserve_s", "≥ 0"),
    ("schedule: {budget: {reserve: 300}}", "schedule.budget.reserve", "unknown key"),
])
def test_bad_values_name_the_field(yaml_text: str, field: str, message: str) -> None:
    with pytest.raises(InputError) as err:
        policy_from_yaml("base: seed-2nd-place\n" + yaml_text, source="p.yaml")
    assert err.value.field == field
    assert message in err.value.message
    assert "p.yaml" in str(err.value)


@pytest.mark.parametrize("name", ["aimo3-winner", "deepconf-online"])
def test_presets_round_trip_through_yaml(name: str) -> None:
    policy = load_policy(name)
    assert uses_confidence(policy)
    assert policy_from_yaml(policy_to_yaml(policy)) == policy


def test_aimo3_winner_is_as_published() -> None:
    p = load_policy("aimo3-winner")
    assert p.schedule.level(1).samples == 8
    assert [(r.min_equal, r.max_answers, r.last_k) for r in p.question_stop.rules] == [(4, None, None)]
    assert p.vote.confidence == "inv_entropy"
    assert p.schedule.budget == QuestionBudget(300.0, 300.0, 900.0)
    assert not uses_confidence(load_policy("seed-2nd-place"))


def test_question_budget_is_the_clamp_and_never_above_the_level() -> None:
    s = load_policy("aimo3-winner").schedule
    lv = s.level(1)
    # 50 questions, 10 done: 39 after this one; 17820 − 1000 − 39 × 300 = 5120 → 900 (max)
    assert question_budget_s(s, lv, 10, 17820.0 - 1000.0) == 900.0
    # 40 done, 9 after it: 3000 − 2700 = 300 → 300; 2900 − 2700 = 200 → 300 (min)
    assert question_budget_s(s, lv, 40, 3000.0) == 300.0
    assert question_budget_s(s, lv, 40, 2900.0) == 300.0
    short = type(lv)(name="x", samples=8, min_answers=9, timeout_s=120.0)
    assert question_budget_s(s, short, 10, 1e9) == 120.0


def test_question_budget_middle_of_the_clamp() -> None:
    s = load_policy("aimo3-winner").schedule
    assert question_budget_s(s, s.level(1), 45, 2000.0) == pytest.approx(800.0)


def test_leader_uncatchable_counts_secure_votes_against_the_open_ones() -> None:
    assert not leader_uncatchable([], 0.0)
    assert leader_uncatchable([(7, 1.0)], 0.0)
    assert not leader_uncatchable([(7, 1.0)], 1.0)  # a tie is catching up
    assert leader_uncatchable([(7, 1.0), (7, 1.0), (3, 1.0)], 0.5)
    assert not leader_uncatchable([(7, 1.0), (7, 1.0), (3, 1.0)], 1.0)
    assert leader_uncatchable([(7, 2.0), (3, 1.0), (3, 0.5)], 0.25)


def test_confidence_grid_rows_windows_and_lowest_group() -> None:
    conf = np.array([2.0, 2.0, 1.0, 1.0, 3.0, 3.0, 3.0], np.float32)
    ent = np.ones(7, np.float32)
    g = confidence_grid(conf, ent, cap=7, every=2, vote_window=4, stop_window=2)
    # rows at tokens 0, 2, 4, 6, 7
    assert g.shape == (5, 5)
    assert list(g[:, CONF_MEAN]) == [0.0, 2.0, 1.5, 2.0, 15.0 / 7]
    assert list(g[:, CONF_TAIL]) == [0.0, 2.0, 1.5, 2.0, 2.5]
    assert list(g[:, CONF_LOW_STOP]) == [math.inf, 2.0, 1.0, 1.0, 1.0]
    assert list(g[:, CONF_LOW_VOTE]) == [math.inf, math.inf, 1.5, 1.5, 1.5]
    assert confidence_row(7, 2, 7) == 4 and confidence_row(7, 2, 5) == 2
    assert confidence_stop_token(g, 2, 7, 1.5) == 4
    assert confidence_stop_token(g, 2, 7, 0.5) is None
    assert confidence_stop_token(g, 2, 4, 1.5) is None  # token 4 is the end, not a check
    assert confidence_feature("inv_entropy", g[4]) == 1.0
    assert confidence_feature("lowest_group", g[1]) == 2.0  # no full window yet: the mean


def test_confidence_grid_refuses_short_or_broken_arrays() -> None:
    with pytest.raises(ValueError, match="fewer than"):
        confidence_grid(np.ones(3), np.ones(3), 4, 2, 2, 2)
    with pytest.raises(ValueError, match="finite"):
        confidence_grid(np.array([1.0, np.nan]), np.ones(2), 2, 1, 1, 1)


@pytest.mark.parametrize("p", [0.0, 10.0, 33.3, 50.0, 90.0, 100.0])
def test_percentile_is_numpys_linear(p: float) -> None:
    values = [3.2, 1.0, 2.5, 7.75, 2.5]
    assert percentile_linear(values, p) == pytest.approx(float(np.percentile(values, p)), abs=1e-12)


def test_online_threshold_waits_for_the_warm_up() -> None:
    stop = ConfidenceStop(window=8, warmup=3, percentile=50.0)
    assert confidence_threshold(stop, [1.0, 2.0]) is None
    assert confidence_threshold(stop, [1.0, 2.0, 4.0, 0.1]) == 2.0  # the first three only
    assert confidence_threshold(ConfidenceStop(threshold=0.7), []) == 0.7


def test_keep_top_and_confidence_weights_decide_the_vote() -> None:
    assert kept_by_confidence(0.5, [3.0, None, 1.0, 2.0, 2.0]) == [True, False, False, True, False]
    v = Vote(code_over_boxed=True, small_max=None, round_multiple=None, confidence="mean")
    finals = [SampleFinal("cot", 10, 5, None, 1.0), SampleFinal("cot", 10, 5, None, 1.0),
              SampleFinal("cot", 10, 9, None, 2.5)]
    assert vote(v, finals) == 9  # 2.5 > 1 + 1
    filtered = Vote(small_max=None, round_multiple=None, confidence="mean", keep_top=0.34)
    assert vote(filtered, finals) == 9
    plain = Vote(small_max=None, round_multiple=None)
    assert vote(plain, finals) == 5
    with pytest.raises(ValueError, match="no confidence"):
        vote(v, [SampleFinal("cot", 10, 5, None)])
