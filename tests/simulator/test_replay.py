"""Reference replay: hand-worked questions and competitions whose times and decisions are known."""

from __future__ import annotations

import dataclasses
import math

import pytest
from replay_fixtures import flat_profile, problem, sample

from aimo.simulator.replay import bootstrap_competitions, replay_competition, replay_question, summarize
from aimo.core.policy import ConsistencyRule, SpeedLevel, load_policy

SEED = load_policy("seed-2nd-place")
LEVEL = SpeedLevel(name="test", samples=4, min_answers=99, timeout_s=1e6)


def with_rules(policy, *rules, order="arrival"):
    qs = dataclasses.replace(policy.question_stop, rules=tuple(rules), order=order)
    return dataclasses.replace(policy, question_stop=qs)


def test_lone_sample_without_answers_runs_to_its_end_and_gets_the_fallback() -> None:
    r = replay_question([sample(0, "cot", 1000)], SEED, LEVEL, flat_profile(0.01))
    assert r.time_s == pytest.approx(10.0)
    assert r.stop_reason == "all_done"
    assert r.answer == SEED.vote.fallback
    assert r.samples[0].tokens == 1000 and r.samples[0].end == "finished"


def test_cot_sample_stops_at_the_first_check_after_its_boxed_answer() -> None:
    r = replay_question([sample(0, "cot", 5000, [(105, 7, "boxed")])], SEED, LEVEL, flat_profile(0.01))
    s = r.samples[0]
    assert (s.tokens, s.end, s.boxed) == (120, "sample_stop", 7)  # checks every 20 tokens
    assert r.time_s == pytest.approx(1.2)
    assert r.answer == 7


def test_code_result_arrives_after_exec_time_and_is_seen_at_the_next_check() -> None:
    tr = sample(0, "code", 5000, [(105, 42, "code", True, 2000.0)])
    overlap = dataclasses.replace(SEED, check=dataclasses.replace(SEED.check, code_overlap="profile"))
    r = replay_question([tr], overlap, LEVEL, flat_profile(0.01))
    # dispatched at the check at token 120 (t = 1.2 s), ready at 3.2 s, seen at the check at 340
    assert r.samples[0].tokens == 340
    assert r.time_s == pytest.approx(3.4)
    serial = replay_question([tr], overlap, LEVEL, flat_profile(0.01, overlap="serial"))
    assert serial.samples[0].tokens == 120
    assert serial.time_s == pytest.approx(1.2 + 2.0)
    # the seed (inline): seen at its own check, which the loop takes once the run is over (the
    # batch not waiting; the sample stops at that check's tokens); the policy's mode wins
    for profile in (flat_profile(0.01), flat_profile(0.01, overlap="serial")):
        inline = replay_question([tr], SEED, LEVEL, profile)
        assert inline.samples[0].tokens == 120 and inline.time_s == pytest.approx(1.2 + 2.0)


def test_seed_quirk_code_answer_zero_never_stops_a_code_sample() -> None:
    tr = sample(0, "code", 600, [(105, 0, "code", True, 0.0)])
    r = replay_question([tr], SEED, LEVEL, flat_profile(0.01))
    assert r.samples[0].end == "finished" and r.samples[0].tokens == 600


def test_failed_code_is_minus_one_and_does_not_vote() -> None:
    tr = sample(0, "code", 600, [(105, None, "code", False, 10.0), (300, 5, "boxed")])
    r = replay_question([tr], SEED, LEVEL, flat_profile(0.01))
    assert r.samples[0].code == -1
    assert r.answer == SEED.vote.fallback  # code-over-boxed: the failed code hides the boxed 5


def test_four_equal_answers_stop_the_question_and_abort_the_rest() -> None:
    samples = [sample(i, "cot", 9000, [(100, 7, "boxed")]) for i in range(4)]
    samples.append(sample(4, "cot", 9000))  # no answer; must be aborted by the question stop
    level = dataclasses.replace(LEVEL, samples=5)
    policy = with_rules(SEED, ConsistencyRule(min_equal=4, max_answers=4))
    r = replay_question(samples, policy, level, flat_profile(0.01))
    assert r.stop_reason.startswith("rule1")
    assert r.samples[4].end == "question_stop" and r.samples[4].tokens == 100
    assert r.time_s == pytest.approx(1.0)
    assert r.answer == 7


def test_a_question_stop_lands_abort_latency_steps_later() -> None:
    """`abort_latency_steps` L: the running sample decodes L more steps after the decision, their
    time is the question's, and the final read reads their tokens (here a code block at 102 that
    a stop landing at once never sees: +0.5 s of synchronous run)."""
    samples = [sample(i, "cot", 9000, [(100, 7, "boxed")]) for i in range(4)]
    samples.append(sample(4, "code", 9000, [(102, 9, "code", True, 500.0)]))
    level = dataclasses.replace(LEVEL, samples=5)
    policy = with_rules(SEED, ConsistencyRule(min_equal=4, max_answers=4))
    assert policy.vote.final_read
    at_once = replay_question(samples, policy, level, flat_profile(0.01))
    assert (at_once.samples[4].tokens, at_once.samples[4].code) == (100, None)
    assert at_once.time_s == pytest.approx(1.0)
    late = dataclasses.replace(flat_profile(0.01), abort_latency_steps=3)
    r = replay_question(samples, policy, level, late)
    assert r.stop_reason.startswith("rule1") and r.samples[4].end == "question_stop"
    assert (r.samples[4].tokens, r.samples[4].code) == (103, 9)
    assert r.time_s == pytest.approx(1.0 + 3 * 0.01 + 0.5)
    assert [s.tokens for s in r.samples[:4]] == [100] * 4  # stopped samples do not move
    no_read = dataclasses.replace(policy, vote=dataclasses.replace(policy.vote, final_read=False))
    r = replay_question(samples, no_read, level, late)
    assert (r.samples[4].tokens, r.samples[4].code) == (103, None)
    assert r.time_s == pytest.approx(1.03)
    # a sample reaching its cap within the latency stops there; the others decode on
    capped = [*samples[:4], sample(4, "cot", 101), sample(5, "cot", 9000)]
    r = replay_question(capped, policy, dataclasses.replace(level, samples=6), late)
    assert [s.tokens for s in r.samples[4:]] == [101, 103]
    assert r.time_s == pytest.approx(1.03)


def test_stopping_a_sample_speeds_up_the_others() -> None:
    profile = flat_profile(0.01, beta=0.01)  # step = 0.01 + 0.01·b
    fast = sample(0, "cot", 5000, [(100, 3, "boxed")])
    slow = sample(1, "cot", 1000)
    r = replay_question([fast, slow], SEED, LEVEL, profile)
    # 100 steps at b=2 (0.03 s) then 900 steps at b=1 (0.02 s)
    assert r.time_s == pytest.approx(100 * 0.03 + 900 * 0.02)
    assert r.samples[1].end_s == pytest.approx(r.time_s)


def test_absolute_timeout_fires_at_the_first_check_after_it() -> None:
    level = dataclasses.replace(LEVEL, timeout_s=5.05)
    r = replay_question([sample(0, "cot", 100_000)], SEED, level, flat_profile(0.01))
    assert r.stop_reason == "timeout"
    assert r.samples[0].tokens == 520
    assert r.time_s == pytest.approx(5.2)


def test_token_cap_truncates_a_sample_and_hides_later_answers() -> None:
    policy = dataclasses.replace(SEED, sample_stop=dataclasses.replace(SEED.sample_stop, max_tokens=1000))
    r = replay_question([sample(0, "cot", 3000, [(2000, 9, "boxed")])], policy, LEVEL, flat_profile(0.01))
    assert r.samples[0].tokens == 1000 and r.samples[0].end == "length"
    assert r.answer == SEED.vote.fallback


def test_requests_beyond_max_batch_wait_for_a_free_slot() -> None:
    samples = [sample(i, "cot", 1000) for i in range(3)]
    r = replay_question(samples, SEED, dataclasses.replace(LEVEL, samples=3), flat_profile(0.01, max_batch=2))
    assert r.samples[2].start_s == pytest.approx(10.0)
    assert r.time_s == pytest.approx(20.0)


def test_arrival_and_index_order_differ_as_the_seed_quirk_says() -> None:
    samples = [
        sample(0, "cot", 2000, [(100, 5, "boxed")]),
        sample(1, "cot", 2000, [(200, 9, "boxed")]),
        sample(2, "cot", 2000, [(300, 5, "boxed")]),
        sample(3, "cot", 2000, [(100, 5, "boxed")]),
    ]
    rule = ConsistencyRule(min_equal=2, last_k=2, min_answers=3)
    no_sample_stop = dataclasses.replace(
        SEED, sample_stop=dataclasses.replace(SEED.sample_stop, cot=dataclasses.replace(SEED.sample_stop.cot, rule="never"))
    )
    by_index = replay_question(samples, with_rules(no_sample_stop, rule, order="index"), LEVEL, flat_profile(0.01))
    by_arrival = replay_question(samples, with_rules(no_sample_stop, rule), LEVEL, flat_profile(0.01))
    # with 4 valid answers, index order [5, 9, 5, 5] ends in two equal; arrival order [5, 5, 9, 5] does not
    assert by_index.stop_reason.startswith("rule") and by_index.time_s == pytest.approx(3.0)
    assert by_arrival.stop_reason == "all_done" and by_arrival.time_s == pytest.approx(20.0)


def test_competition_cutoff_gives_the_cutoff_answer_without_generation() -> None:
    problems = [problem(f"p{i}", 7, [sample(j, "cot" if j % 2 == 0 else "code", 100_000) for j in range(16)])
                for i in range(4)]
    schedule = dataclasses.replace(SEED.schedule, cutoff_s=1500.0)
    policy = dataclasses.replace(SEED, schedule=schedule)
    result = replay_competition(problems, policy, flat_profile(0.1))  # 16,384-token cap = 1,638 s
    reasons = [q.stop_reason for q in result.questions]
    assert reasons[0] == "timeout"  # level 3: 660 s
    assert reasons[1] == "timeout"
    assert reasons[2] == "cutoff"  # begun at ~1320 s, the cutoff at 1500 s stops it
    assert reasons[3] == "after_cutoff"
    assert result.questions[3].answer == SEED.schedule.cutoff_answer and result.questions[3].time_s == 0.0
    assert not result.overtime  # reaching the cutoff in time is not overtime
    assert result.score == result.n_correct


def test_budget_caps_the_cutoff() -> None:
    # the seed's cutoff (17,820 s) is beyond a 1,500 s budget: the budget less 1% rules
    problems = [problem(f"p{i}", 7, [sample(j, "cot" if j % 2 == 0 else "code", 100_000) for j in range(16)])
                for i in range(4)]
    result = replay_competition(problems, SEED, flat_profile(0.1), budget_s=1500.0)
    assert result.cutoff_s == pytest.approx(1485.0)
    assert [q.stop_reason for q in result.questions] == ["timeout", "timeout", "cutoff", "after_cutoff"]
    assert result.total_time_s <= 1500.0 and not result.overtime


def test_bootstrap_is_deterministic_per_seed_and_varies_across_seeds() -> None:
    problems = []
    for i in range(6):
        samples = [sample(j, "cot" if j % 2 == 0 else "code", 1000 + 137 * ((i * 31 + j * 17) % 23),
                          [(300 + 7 * j, (i * 3 + (j % 3 == 0)) % 1000, "boxed")]) for j in range(16)]
        problems.append(problem(f"p{i}", i * 3, samples, position=i))
    a = summarize(bootstrap_competitions(problems, SEED, flat_profile(0.01), replicates=8, seed=1))
    b = summarize(bootstrap_competitions(problems, SEED, flat_profile(0.01), replicates=8, seed=1))
    c = summarize(bootstrap_competitions(problems, SEED, flat_profile(0.01), replicates=8, seed=2))
    assert a == b
    assert a.times_s != c.times_s
    assert 0 <= a.score_lo <= a.mean_score <= a.score_hi <= 6
    assert not math.isnan(a.mean_time_s)
