"""Replay fidelity — the contract between the live solver and the simulator (docs/solver.md, "Fidelity").

The live solver (`solver.solve.run_solve`: budget controller, control loop, recorded code runner)
drives the replay engine over a synthetic trace store; the simulator replays the same store with
recorded draws (`aimo simulate --bootstrap 0`). Per question they must agree on the speed level,
the stop reason, every sample's end and token count and final answers, and the answer; question
and sample times must agree within 2% (in practice they agree to ~1e-15).

The tests at the end pin cases where the simulator once skipped a check that would have decided
something (found by a randomised comparison); they now agree.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import pytest
from fidelity_checks import close as _close
from fidelity_checks import compare as _compare
from fidelity_checks import max_time_error as _max_time_error
from fidelity_checks import variant
from replay_fixtures import flat_profile, problem, sample

from aimo.recorder.synth import synthesize_store
from aimo.core.hardware import HardwareProfile, load_profile
from aimo.simulator.fast import FastSimulator
from aimo.simulator.replay import recorded_draw, replay_competition, replay_question
from aimo.solver.engines import PromptSpec, ReplayEngine, SamplingSettings
from aimo.solver.loop import RecordedRunner, run_question
from aimo.core.policy import (
    ConsistencyRule,
    EarlyTimeout,
    Policy,
    QuestionBudget,
    SpeedLevel,
    load_policy,
)
from aimo.core.policy.rules import REGISTRY
from aimo.solver.solve import run_solve
from aimo.core.store import load_problem_traces

L4 = load_profile("l4x4-14b-w4kv8")


POLICIES: dict[str, Policy] = {
    "seed-2nd-place": load_policy("seed-2nd-place"),
    "majority-n": load_policy("majority-n"),
    "first-answer": load_policy("first-answer"),
    "fast-8": load_policy("fast-8"),
    "seed-2nd-place-arrival": load_policy("seed-2nd-place-arrival"),
    # the seed's reading with code results seen after their run (the profile's overlap)
    "seed-overlap": variant("seed-overlap", "seed-2nd-place", check={"code_overlap": "profile"}),
    # the project's former reading of the seed (every box, boxed 0 kept, no final read)
    "seed-legacy": variant("seed-legacy", "seed-2nd-place-arrival", check={
        "boxes": "all", "boxed_zero": "keep", "code_overlap": "profile"},
        vote={"tie_tolerance": 1e-9, "final_read": False},
        schedule={"early_timeout_count": "valid"}),
    # a tight cutoff and early re-evaluation: the speed schedule, the in-flight cutoff and
    # questions begun after it
    "seed-tight": variant("seed-tight", "seed-2nd-place", schedule={
        "cutoff_s": 1500.0, "reeval_after": 2, "reeval_every": 1, "thresholds_s": (100.0, 200.0, 300.0, 400.0)}),
    # the time-aware elements (issue 17): the uncatchable-leader stop and a per-question budget
    # that binds (clamp(time_left − remaining × 60 s, 40 s, 300 s) under a 1500 s cutoff)
    "time-aware": variant("time-aware", "majority-n", question_stop={"uncatchable": True},
                           schedule={"cutoff_s": 1500.0, "budget": QuestionBudget(60.0, 40.0, 300.0)}),
    "seed-uncatchable": variant("seed-uncatchable", "seed-2nd-place", question_stop={"uncatchable": True}),
    # every registered question-stop rule (core/policy/rules.py), at its first example's values
    **{f"rule-{k.name}": variant(f"rule-{k.name}", "majority-n", question_stop={
        "rules": (k.cls(**k.examples[0][2]),)}) for k in REGISTRY.values()},
}
PROFILES: dict[str, HardwareProfile] = {
    "l4": L4,
    # more samples than batch slots: queued samples start when others stop or end
    "queued": dataclasses.replace(L4, name="l4-queued", max_batch=6, prefill_s_per_token=0.0),
    "serial": dataclasses.replace(L4, name="l4-serial", code_overlap="serial"),
    # code runs wait for one of 2 workers (the live sandbox pool), first dispatched first served
    "pool": dataclasses.replace(L4, name="l4-pool", code_workers=2),
    # a question stop lands 2 steps after the decision (the cut samples decode on, read after)
    "late-abort": dataclasses.replace(L4, name="l4-late-abort", abort_latency_steps=2),
}
CASES = [(p, "l4") for p in POLICIES] + [("seed-2nd-place", "queued"), ("first-answer", "serial"),
                                         ("majority-n", "pool"), ("seed-overlap", "pool"),
                                         ("seed-overlap", "serial"), ("seed-2nd-place", "serial"),
                                         ("time-aware", "queued"), ("time-aware", "pool"),
                                         ("seed-2nd-place", "late-abort"), ("seed-tight", "late-abort"),
                                         ("first-answer", "late-abort")]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("fidelity") / "traces.duckdb"
    synthesize_store(path, n_problems=8, n_samples=16, seed=7, progress=False)
    return path


@pytest.mark.parametrize(("policy_name", "profile_name"), CASES)
def test_live_solver_makes_the_simulators_decisions(store: Path, policy_name: str, profile_name: str) -> None:
    policy, profile = POLICIES[policy_name], PROFILES[profile_name]
    problems = load_problem_traces(store)
    sim = replay_competition(problems, policy, profile)
    live = run_solve(None, policy, "replay", traces=store, hardware=profile, echo=None).result
    assert _compare(sim, live) == []
    assert live.score == sim.score
    assert _close(sim.total_time_s, live.total_time_s)
    print(f"{policy_name} on {profile_name}: max question time error {_max_time_error(sim, live):.2e}")


def test_time_compressed_run_makes_the_same_decisions(store: Path) -> None:
    policy = POLICIES["fast-8"]
    problems = load_problem_traces(store)
    sim = replay_competition(problems, policy, L4)
    virtual = sim.total_time_s - sim.startup_s
    speedup = virtual / 1.0  # about one second of wall time
    t0 = time.monotonic()
    live = run_solve(None, policy, "replay", traces=store, hardware=L4, speedup=speedup, echo=None).result
    wall = time.monotonic() - t0
    assert wall >= 0.9
    assert _compare(sim, live) == []


def test_problem_subset_from_a_csv_keeps_the_csv_order(store: Path, tmp_path: Path) -> None:
    problems = load_problem_traces(store)
    chosen = [problems[3], problems[0], problems[5]]
    csv = tmp_path / "subset.csv"
    csv.write_text("id,question,answer\n" + "".join(f"{p.problem_id},q,\n" for p in chosen), encoding="utf-8")
    policy = POLICIES["seed-2nd-place"]
    sim = replay_competition(chosen, policy, L4)
    live = run_solve(csv, policy, "replay", traces=store, hardware=L4, echo=None).result
    assert _compare(sim, live) == []


# ------------------------------------------------------------------------------ known divergences


def _one_question(samples, policy: Policy, level: SpeedLevel, profile: HardwareProfile, kinds):
    import asyncio

    engine = ReplayEngine([problem("p", None, samples)], profile, chunk_tokens=policy.check.every_tokens)

    async def go():
        prompts = [PromptSpec(i, k, "", "") for i, k in enumerate(kinds)]
        stream = await engine.start_question("p", "", prompts, SamplingSettings(max_new_tokens=16384))
        return await run_question(stream, policy, level, kinds, RecordedRunner())
    return asyncio.run(go()), replay_question(samples, policy, level, profile)


def test_formerly_divergent_timeout_crossed_during_a_serial_pause() -> None:
    """Sample 0 ends at token 20 and its code runs 5 s serially, crossing the 1 s timeout. The loop
    stops at sample 1's check at token 20 of the same step (t = 5.2 s); the simulator once skipped sample
    1's checks until its end and finished "all_done" at 55 s."""
    policy = load_policy("majority-n")
    level = SpeedLevel(name="t", samples=2, min_answers=99, timeout_s=1.0)
    samples = [sample(0, "code", 20, [(20, 5, "code", True, 5000.0)]), sample(1, "cot", 5000)]
    live, sim = _one_question(samples, policy, level, flat_profile(0.01, overlap="serial"), ("code", "cot"))
    assert live.stop_reason == "timeout" and live.time_s == pytest.approx(5.2)
    assert (sim.stop_reason, sim.time_s) == (live.stop_reason, pytest.approx(live.time_s))


def test_formerly_divergent_early_timeout_after_an_ended_samples_code_result() -> None:
    """The early timeout (1 s, ≥ 2 valid) passes with one valid answer; at 2.205 s sample 0's code
    result (sample 0 ended at token 40) makes two. The loop stops at the next grid check (2.4 s);
    the simulator only checks consistency at the result and then nothing until sample 1 ends."""
    policy = load_policy("majority-n")
    level = SpeedLevel(name="t", samples=2, min_answers=99, timeout_s=1e6,
                       early_timeouts=(EarlyTimeout(after_s=1.0, min_answers=2),))
    samples = [sample(0, "code", 40, [(20, 5, "code", True, 2005.0)]),
               sample(1, "cot", 5000, [(50, 7, "boxed")])]
    live, sim = _one_question(samples, policy, level, flat_profile(0.01), ("code", "cot"))
    assert live.stop_reason.startswith("early") and live.time_s == pytest.approx(2.4)
    assert (sim.stop_reason, sim.time_s) == (live.stop_reason, pytest.approx(live.time_s))


def test_formerly_divergent_timeout_armed_only_for_end_checks() -> None:
    """One slot: sample 0 (100 tokens) passes the 0.95 s timeout and ends at 1.0 s; sample 1 then
    starts. The loop stops at sample 1's first check (1.2 s); the simulator's armed check was sample
    0's end, so it runs sample 1 to its end."""
    policy = load_policy("majority-n")
    level = SpeedLevel(name="t", samples=2, min_answers=99, timeout_s=0.95)
    samples = [sample(0, "cot", 100), sample(1, "cot", 5000)]
    live, sim = _one_question(samples, policy, level, flat_profile(0.01, max_batch=1), ("cot", "cot"))
    assert live.stop_reason == "timeout" and live.time_s == pytest.approx(1.2)
    assert (sim.stop_reason, sim.time_s) == (live.stop_reason, pytest.approx(live.time_s))


def test_formerly_divergent_queued_sample_started_after_the_stop() -> None:
    """One slot, 0.1 s prefills: sample 0 ends at token 60 (0.7 s) with the answer that stops the
    question. The loop answers at 0.7 s with sample 1 never started; the simulator starts sample
    1 after the stop and reports 0.8 s."""
    policy = load_policy("majority-n")
    rule = dataclasses.replace(policy.question_stop, rules=(ConsistencyRule(min_equal=1, max_answers=1),))
    policy = dataclasses.replace(policy, question_stop=rule)
    level = SpeedLevel(name="t", samples=2, min_answers=99, timeout_s=1e6)
    samples = [sample(0, "cot", 60, [(50, 7, "boxed")], prompt_tokens=100),
               sample(1, "cot", 1000, prompt_tokens=100)]
    profile = dataclasses.replace(flat_profile(0.01, max_batch=1), prefill_s_per_token=0.001)
    live, sim = _one_question(samples, policy, level, profile, ("cot", "cot"))
    assert live.time_s == pytest.approx(0.7) and live.samples[1].end == "queued"
    assert (sim.time_s, sim.samples[1].end) == (pytest.approx(live.time_s), live.samples[1].end)


@pytest.mark.parametrize(("workers", "expected_s"), [(None, 3.2), (1, 9.2), (2, 6.2), (3, 3.2)])
def test_code_workers_queue_runs_first_dispatched_first_served(workers, expected_s) -> None:
    """Three code samples close their blocks at token 20 (0.2 s) and each run takes 3 s; every sample
    ends there, so the question ends with the last result: one worker serialises the runs (0.2 +
    9 s), two run two then one (0.2 + 6 s), three or no limit run all at once (0.2 + 3 s). The
    live loop with the recorded runner and the simulator agree."""
    policy = load_policy("majority-n")
    level = SpeedLevel(name="t", samples=3, min_answers=99, timeout_s=1e6)
    samples = [sample(i, "code", 20, [(20, 5, "code", True, 3000.0)]) for i in range(3)]
    profile = dataclasses.replace(flat_profile(0.01), code_workers=workers)
    live, sim = _one_question(samples, policy, level, profile, ("code",) * 3)
    assert live.stop_reason == "all_done" and live.time_s == pytest.approx(expected_s)
    assert (sim.stop_reason, sim.time_s) == (live.stop_reason, pytest.approx(live.time_s))


def _inline_seed_question() -> tuple[Policy, SpeedLevel]:
    """The seed with one level of 3 samples, code first, and one rule: two equal answers of at
    most two (the inline-code questions below)."""
    seed = load_policy("seed-2nd-place")
    level = SpeedLevel(name="t", samples=3, min_answers=99, timeout_s=1e6)
    policy = dataclasses.replace(
        seed, samples=dataclasses.replace(seed.samples, order="interleave", first_kind="code"),
        question_stop=dataclasses.replace(
            seed.question_stop, rules=(ConsistencyRule(min_equal=2, max_answers=2),)),
        schedule=dataclasses.replace(seed.schedule, levels=(level,), start_level=1,
                                     thresholds_s=()))
    return policy, level


def test_inline_code_runs_serialize_and_delay_the_stop() -> None:
    """`check.code_overlap: inline` (the seed): the loop is busy while a check's code runs, the batch
    decodes on. Code samples 0 and 2 close a block at token 20 (0.2 s; runs of 1 s and 2 s); sample
    0's check runs its code until 1.2 s, sample 2's check of the same step is taken then and runs
    until 3.2 s, when its answer makes the question stop (two equal). Meanwhile CoT sample 1 decoded
    to token 320, so the final read runs its block of token 100 (0.5 s): 3.7 s. Before the loop was
    modelled busy, every path said 0.2 s. Reference, fast path and the live loop on the replay
    engine agree."""
    policy, level = _inline_seed_question()
    samples = [sample(0, "code", 2000, [(20, 42, "code", True, 1000.0)]),
               sample(1, "cot", 2000, [(100, 7, "code", True, 500.0)]),
               sample(2, "code", 2000, [(20, 42, "code", True, 2000.0)])]
    profile = flat_profile(0.01)
    live, sim = _one_question(samples, policy, level, profile, ("code", "cot", "code"))
    assert (sim.stop_reason, sim.answer, sim.time_s) == ("rule1:2/≤2", 42, pytest.approx(3.7))
    assert [(s.tokens, s.end, s.code) for s in sim.samples] == [
        (20, "sample_stop", 42), (320, "question_stop", 7), (20, "sample_stop", 42)]
    assert [s.end_s for s in sim.samples] == [pytest.approx(1.2), pytest.approx(3.7),
                                              pytest.approx(3.2)]
    assert (live.stop_reason, live.answer, live.time_s) == (
        sim.stop_reason, sim.answer, pytest.approx(sim.time_s, rel=1e-12))
    assert [(s.tokens, s.end, s.code, pytest.approx(s.end_s)) for s in live.samples] == [
        (s.tokens, s.end, s.code, s.end_s) for s in sim.samples]
    _fast_agrees(samples, policy, profile, sim)


def _fast_agrees(samples, policy: Policy, profile: HardwareProfile, sim) -> None:
    """The fast path replays the one-level `policy` on `samples` exactly as the reference did."""
    prob = problem("p", None, samples)
    fast = FastSimulator([prob], profile).competition(policy).to_result().questions[0]
    ref = replay_competition([prob], policy, profile, draws=[recorded_draw(prob)]).questions[0]
    assert (ref.stop_reason, ref.answer, ref.time_s) == (sim.stop_reason, sim.answer, sim.time_s)
    assert (fast.stop_reason, fast.answer, fast.time_s) == (ref.stop_reason, ref.answer, ref.time_s)
    assert [(s.tokens, s.end, s.code, s.end_s) for s in fast.samples] == [
        (s.tokens, s.end, s.code, s.end_s) for s in ref.samples]


def test_inline_run_past_the_timeout_decides_it_when_the_loop_is_free() -> None:
    """A code sample's block at token 20 (0.2 s) runs inline for 2 s, past the 1 s timeout: the
    dispatching check decides the timeout at 2.2 s, when the loop is free, and both samples (no
    sample stop) have decoded to token 220 by then (the zero-time reading stopped at 1.2 s, the
    first grid check after the timeout)."""
    base = load_policy("majority-n")
    level = SpeedLevel(name="t", samples=2, min_answers=99, timeout_s=1.0)
    policy = dataclasses.replace(
        base, samples=dataclasses.replace(base.samples, order="interleave", first_kind="code",
                                          cot_fraction=0.5),
        check=dataclasses.replace(base.check, every_tokens=20, code_overlap="inline"),
        schedule=dataclasses.replace(base.schedule, levels=(level,), start_level=1,
                                     thresholds_s=()))
    samples = [sample(0, "code", 5000, [(20, 5, "code", True, 2000.0)]), sample(1, "cot", 5000)]
    profile = flat_profile(0.01)
    live, sim = _one_question(samples, policy, level, profile, ("code", "cot"))
    assert (sim.stop_reason, sim.time_s) == ("timeout", pytest.approx(2.2))
    assert [s.tokens for s in sim.samples] == [220, 220]
    assert (live.stop_reason, live.time_s) == (sim.stop_reason, pytest.approx(sim.time_s))
    assert [s.tokens for s in live.samples] == [s.tokens for s in sim.samples]
    _fast_agrees(samples, policy, profile, sim)


def test_question_stop_landing_late_is_read_by_every_path() -> None:
    """`abort_latency_steps` 15: the inline question above stops at 3.2 s, the stop lands 15 steps
    later (3.35 s), by when CoT sample 1 has reached token 335 and the final read runs its block of
    token 330 (0.5 s): 3.85 s; a stop landing at once (latency 0) never sees that block (3.2 s).
    Reference, fast path and the live loop on the replay engine agree."""
    policy, level = _inline_seed_question()
    samples = [sample(0, "code", 2000, [(20, 42, "code", True, 1000.0)]),
               sample(1, "cot", 2000, [(330, 7, "code", True, 500.0)]),
               sample(2, "code", 2000, [(20, 42, "code", True, 2000.0)])]
    kinds = ("code", "cot", "code")
    live0, sim0 = _one_question(samples, policy, level, flat_profile(0.01), kinds)
    assert (sim0.time_s, sim0.samples[1].tokens, sim0.samples[1].code) == (
        pytest.approx(3.2), 320, None)
    assert (live0.time_s, live0.samples[1].tokens) == (pytest.approx(3.2), 320)
    profile = dataclasses.replace(flat_profile(0.01), abort_latency_steps=15)
    live, sim = _one_question(samples, policy, level, profile, kinds)
    assert (sim.stop_reason, sim.answer, sim.time_s) == ("rule1:2/≤2", 42, pytest.approx(3.85))
    assert [(s.tokens, s.end, s.code) for s in sim.samples] == [
        (20, "sample_stop", 42), (335, "question_stop", 7), (20, "sample_stop", 42)]
    assert (live.stop_reason, live.answer, live.time_s) == (
        sim.stop_reason, sim.answer, pytest.approx(sim.time_s, rel=1e-12))
    assert [(s.tokens, s.end, s.code, pytest.approx(s.end_s)) for s in live.samples] == [
        (s.tokens, s.end, s.code, s.end_s) for s in sim.samples]
    _fast_agrees(samples, policy, profile, sim)
