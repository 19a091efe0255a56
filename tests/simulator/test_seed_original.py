"""The original 2nd-place submission's quirks (issue 13, docs/seed-policy.md), one hand-made case
each, through the reference replay and the fast path (which must agree), with the preset's
setting and with the project's former reading of the seed (`LEGACY`)."""

from __future__ import annotations

import dataclasses

import pytest
from replay_fixtures import flat_profile, problem, sample

from aimo.simulator.fast import FastSimulator
from aimo.core.hardware import HardwareProfile
from aimo.simulator.replay import recorded_draw, replay_competition
from aimo.simulator.replay.results import QuestionResult
from aimo.core.policy import (
    ConsistencyRule,
    Policy,
    SampleFinal,
    SampleMix,
    load_policy,
    vote,
)
from aimo.core.traces import SampleTrace

SEED = load_policy("seed-2nd-place")
# the project's reading of the seed before issue 13 (arrival order aside)
LEGACY = dataclasses.replace(
    SEED, name="seed-legacy",
    check=dataclasses.replace(SEED.check, boxes="all", boxed_zero="keep", code_overlap="parallel"),
    vote=dataclasses.replace(SEED.vote, tie_tolerance=1e-9, final_read=False),
    schedule=dataclasses.replace(SEED.schedule, early_timeout_count="valid"),
)


def one_level(policy: Policy, n: int, cot_fraction: float, **question_stop) -> Policy:
    """`policy` with only the seed's normal level, `n` samples of which a share are CoT."""
    lv = dataclasses.replace(policy.schedule.level(3), samples=n)
    return dataclasses.replace(
        policy,
        samples=SampleMix("interleave", "cot" if cot_fraction > 0 else "code", cot_fraction),
        schedule=dataclasses.replace(policy.schedule, levels=(lv,), start_level=1, thresholds_s=()),
        question_stop=dataclasses.replace(policy.question_stop, **question_stop),
    )


def both(samples: list[SampleTrace], policy: Policy,
         profile: HardwareProfile | None = None) -> QuestionResult:
    """One question through the reference and the fast path; they must agree."""
    profile = profile or flat_profile(0.01)
    prob = problem("q", 5, samples)
    ref = replay_competition([prob], policy, profile, draws=[recorded_draw(prob)]).questions[0]
    fast = FastSimulator([prob], profile).competition(policy).to_result().questions[0]
    assert (fast.answer, fast.stop_reason, fast.level) == (ref.answer, ref.stop_reason, ref.level)
    assert fast.time_s == pytest.approx(ref.time_s, rel=1e-12, abs=1e-12)
    assert [(s.tokens, s.end, s.boxed, s.code) for s in fast.samples] == [
        (s.tokens, s.end, s.boxed, s.code) for s in ref.samples]
    return ref


# 1. a boxed 0 is never recorded (`if cot_answer:`)
def test_boxed_zero_never_votes_nor_stops() -> None:
    votes = [sample(i, "cot", 200, [(100, v, "boxed")]) for i, v in enumerate([0, 0, 5])]
    assert both(votes, one_level(SEED, 3, 1.0)).answer == 5
    assert both(votes, one_level(LEGACY, 3, 1.0)).answer == 0
    single = [sample(0, "cot", 200, [(100, 0, "boxed")])]
    seed = both(single, one_level(SEED, 1, 1.0))
    assert seed.answer == 49 and seed.samples[0].end == "finished"  # not stopped by the box
    legacy = both(single, one_level(LEGACY, 1, 1.0))
    assert legacy.answer == 0 and legacy.samples[0].end == "sample_stop"


# 3. a question stop's cut-off samples are read once more; a new code block runs synchronously
def test_final_read_of_cut_off_samples_joins_the_vote() -> None:
    rule = (ConsistencyRule(1, max_answers=1),)  # the first valid answer stops the question
    cases = [sample(0, "cot", 1000, [(40, 7, "boxed")]), sample(1, "cot", 1000, [(35, 9, "boxed")])]
    seed = both(cases, one_level(SEED, 2, 1.0, rules=rule))
    legacy = both(cases, one_level(LEGACY, 2, 1.0, rules=rule))
    assert seed.stop_reason == legacy.stop_reason == "rule1:1/≤1"
    assert [s.boxed for s in seed.samples] == [7, 9] and seed.answer == 9  # 0.6 each: larger
    assert [s.boxed for s in legacy.samples] == [7, None] and legacy.answer == 7
    # sample 1 (code) closed a block at token 30; the final read runs it: 2 s more
    code = [cases[0], sample(1, "code", 1000, [(30, 9, "code", True, 2000.0)])]
    seed = both(code, one_level(SEED, 2, 0.5, rules=rule))
    legacy = both(code, one_level(LEGACY, 2, 0.5, rules=rule))
    assert seed.samples[1].code == 9 and seed.answer == 9
    assert seed.time_s == pytest.approx(legacy.time_s + 2.0)


# 4. early timeouts with no valid answer count the answer histories
def test_early_timeout_counts_the_histories_when_nothing_is_valid() -> None:
    # three code samples whose code failed (−1: never valid) and that then boxed 7 and 8:
    # no valid answer, six history answers > 0 → the seed stops at the 480 s early timeout
    # (≥ 6), the valid count only at the 660 s timeout
    runs = [sample(i, "code", 16384, [(100, None, "code", False, 0.0), (200, 7, "boxed"),
                                      (300, 8, "boxed")]) for i in range(3)]
    profile = flat_profile(0.05)
    seed = both(runs, one_level(SEED, 3, 0.0), profile)
    legacy = both(runs, one_level(LEGACY, 3, 0.0), profile)
    # (a check every 20 tokens = 1 s: the first check after the threshold decides)
    assert seed.stop_reason == "early:480s/≥6" and 480 < seed.time_s <= 481
    assert legacy.stop_reason == "timeout" and 660 < legacy.time_s <= 661


# 5. only the last box is parsed at a check; if it does not parse, nothing is recorded
def test_unparseable_last_box_records_nothing() -> None:
    runs = [sample(0, "cot", 100, [(5, 7, "boxed"), (10, None, "boxed")])]
    seed = both(runs, one_level(SEED, 1, 1.0))
    legacy = both(runs, one_level(LEGACY, 1, 1.0))
    assert seed.answer == 49 and seed.samples[0].tokens == 100  # ran to its end
    assert legacy.answer == 7 and legacy.samples[0].tokens == 20  # stopped at the first check


# 7. code runs inside the check: its answer is seen at that check, which the loop takes once the
# run is over (5 s later; the batch decodes on meanwhile)
def test_inline_code_is_seen_at_its_check() -> None:
    runs = [sample(0, "code", 2000, [(20, 42, "code", True, 5000.0)])]
    seed = both(runs, one_level(SEED, 1, 0.0))
    legacy = both(runs, one_level(LEGACY, 1, 0.0))
    assert seed.samples[0].tokens == 20 and seed.time_s == pytest.approx(5.2)
    assert seed.samples[0].end_s == pytest.approx(5.2)
    assert legacy.samples[0].tokens > 500  # the first check after the result, 5 s later
    assert seed.answer == legacy.answer == 42


# 9. vote totals compared exactly (no tolerance), as the original's sort
def test_vote_ties_are_exact_float_comparisons() -> None:
    finals = [SampleFinal("cot", 100, 100, None)] * 10 + [SampleFinal("cot", 100, 50, None)] * 6
    assert sum([0.6] * 10) == 5.999999999999999 < 6.0
    assert vote(SEED.vote, finals) == 50  # 5.999999999999999 < 6.0: 50 wins
    assert vote(LEGACY.vote, finals) == 100  # within 1e-9: a tie, the larger wins
