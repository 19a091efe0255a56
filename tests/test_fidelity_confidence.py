"""Replay fidelity of the confidence path (issue 17): the live loop against the simulator.

The live solver (`run_solve`, backend `replay`: budget controller, control loop, recorded code
runner, the replay engine on a virtual clock) and the simulator's reference replay
(`replay_competition`, recorded draws) run the same synthetic store with token confidence
under policies that read it: the DeepConf-online and AIMO-3-winner presets, a fixed-threshold
confidence stop with tail-confidence votes and top-η filtering, and an eager online threshold.
Per question they must agree on the answer, the stop reason, every sample's end and tokens —
so on the same set of confidence-stopped samples and the token at which each stop fired —
and on times within 2% (`fidelity_checks.compare`).

Granularity. The live loop checks a sample when a chunk brings its tokens to or past its next
multiple of `check.every_tokens`, and decides the confidence stop on the `confidence_grid` row
of the last grid point at or before its tokens. The replay engine cuts chunks on exactly that
grid (`chunk_tokens = check.every_tokens`; also at recorded answers and the end), so every
check sits on a grid point and a stop fires at the simulator's token: the tests demand equal
tokens (no tolerance) at 20- and 40-token grids. On lmdeploy, whose chunks are as long as its
stream makes them, the same decision can only be acted on at the end of the chunk that crosses
the grid point, i.e. up to one chunk later than the simulator's token.

Hostile stores: a policy reading confidence over a store where some or all samples lack it is
refused by both paths (and the fast path) with one `MissingConfidence` error naming the run,
the field and the sample, and by both commands with that one line (exit 2, no traceback). An
engine that sends no confidence mid-run (the loop's fallback) still answers: no confidence stop,
a plain vote, a warning.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import shutil
from pathlib import Path

import duckdb
import numpy as np
import pytest
from fidelity_checks import compare, variant
from replay_fixtures import flat_profile, problem, sample
from typer.testing import CliRunner

from aimo.cli import app
from aimo.core.hardware import HardwareProfile, load_profile
from aimo.core.policy import ConsistencyRule, Policy, SpeedLevel, load_policy
from aimo.core.policy.model import ConfidenceStop
from aimo.core.store import load_problem_traces
from aimo.core.traces import MissingConfidence
from aimo.recorder.synth import synthesize_store
from aimo.simulator.fast import FastSimulator
from aimo.simulator.replay import replay_competition, replay_question
from aimo.solver.engines import PromptSpec, ReplayEngine, SamplingSettings
from aimo.solver.loop import RecordedRunner, run_question
from aimo.solver.solve import run_solve

L4 = load_profile("l4x4-14b-w4kv8")


POLICIES: dict[str, Policy] = {
    "deepconf-online": load_policy("deepconf-online"),
    "aimo3-winner": load_policy("aimo3-winner"),
    # a fixed threshold near the store's median lowest 256-token group confidence (so about
    # half the samples stop), votes weighted by the last 256 tokens' confidence over the 75%
    # most confident, checked every 40 tokens
    "conf-fixed": variant(
        "conf-fixed", "majority-n",
        sample_stop={"confidence": ConfidenceStop(window=256, threshold=10.0)},
        vote={"confidence": "tail", "confidence_window": 256, "keep_top": 0.75},
        check={"every_tokens": 40}),
    # an online threshold after 2 warm-up samples at their median: many stops, some decided in
    # the decode step in which the threshold is set
    "deepconf-eager": variant(
        "deepconf-eager", "deepconf-online",
        sample_stop={"confidence": ConfidenceStop(window=256, warmup=2, percentile=50.0)}),
}
PROFILES: dict[str, HardwareProfile] = {
    "l4": L4,
    # more samples than batch slots: a stopped sample's slot goes to a queued one, whose grid
    # is offset from the others'
    "queued": dataclasses.replace(L4, name="l4-queued", max_batch=6, prefill_s_per_token=0.0),
}
CASES = [(p, q) for p in POLICIES for q in PROFILES]
# policies whose confidence stop fires on this store (majority-n, their base, stops no sample
# on answers: every sample stop is a confidence stop)
STOPPING = {"deepconf-online", "conf-fixed", "deepconf-eager"}


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("conf-fidelity") / "traces.duckdb"
    synthesize_store(path, n_problems=8, n_samples=16, seed=7, progress=False, confidence=True)
    return path


def _confidence_stops(result) -> dict[str, set[tuple[int, int]]]:
    """Per question, (sample, tokens) of every sample stopped by the sample-stop rules."""
    return {q.problem_id: {(s.index, s.tokens) for s in q.samples if s.end == "sample_stop"}
            for q in result.questions}


@pytest.mark.parametrize(("policy_name", "profile_name"), CASES)
def test_live_loop_makes_the_simulators_confidence_decisions(
        store: Path, policy_name: str, profile_name: str) -> None:
    policy, profile = POLICIES[policy_name], PROFILES[profile_name]
    sim = replay_competition(load_problem_traces(store), policy, profile)
    live = run_solve(None, policy, "replay", traces=store, hardware=profile, echo=None).result
    assert compare(sim, live) == []
    stops = _confidence_stops(sim)
    assert _confidence_stops(live) == stops
    every = policy.check.every_tokens
    fired = [tokens for per_question in stops.values() for _, tokens in per_question]
    assert all(tokens % every == 0 for tokens in fired)  # on the check grid
    if policy_name in STOPPING:
        assert fired, "the store should make this policy stop samples on confidence"
    else:
        assert not fired
    assert live.score == sim.score


def test_fast_path_makes_the_same_decisions_when_the_threshold_is_set_mid_step(store: Path) -> None:
    """DeepConf online on the queued profile: in question syn-007 the 4th warm-up sample (1)
    ends in the decode step in which sample 3 reaches a grid point below the new threshold.
    The live loop stops sample 3 there (token 4260); the reference and the fast path once
    skipped that check, chosen before the threshold was known, and stopped it at 4280."""
    problems = load_problem_traces(store)
    policy, profile = POLICIES["deepconf-online"], PROFILES["queued"]
    ref = replay_competition(problems, policy, profile)
    question = next(q for q in ref.questions if q.problem_id == "syn-007")
    assert (question.samples[3].end, question.samples[3].tokens) == ("sample_stop", 4260)
    assert question.samples[1].end_s == pytest.approx(question.samples[3].end_s)
    fast = FastSimulator(problems, profile).competition(policy).to_result()
    assert compare(ref, fast) == []


def _with_confidence(trace, conf: list[float]):
    c = np.asarray(conf, np.float32)
    return dataclasses.replace(trace, token_conf=c, token_entropy=np.ones_like(c))


def _cut_at_its_end() -> tuple[list, Policy]:
    """Three samples checked every 20 tokens, votes weighted by mean confidence, 2 equal answers
    stop. A (slot 0) ends at token 35 with a 5, the second 5 (C showed one at its check at 20):
    the question stops. B (slot 1) shows a 9 at its check at 20 (confidence 1 there) and reaches
    its own end, 35, in the same step, after A: it is cut, its end never checked. Its vote
    weighs its confidence at its last check, 1 (5 wins, 2 + 2 against 1); the reference and
    the fast path once read its end row, (20 × 1 + 15 × 10) / 35 ≈ 4.9, and answered 9."""
    a = _with_confidence(sample(0, "cot", 35, [(30, 5, "boxed")]), [2.0] * 35)
    b = _with_confidence(sample(1, "code", 35, [(10, 9, "boxed")]), [1.0] * 20 + [10.0] * 15)
    c = _with_confidence(sample(2, "cot", 1000, [(10, 5, "boxed")]), [2.0] * 1000)
    base = load_policy("majority-n")
    level = SpeedLevel(name="t", samples=3, min_answers=99, timeout_s=1e6)
    policy = dataclasses.replace(
        base, name="cut-at-its-end",
        question_stop=dataclasses.replace(base.question_stop, rules=(ConsistencyRule(min_equal=2),)),
        vote=dataclasses.replace(base.vote, confidence="mean", small_max=None, round_multiple=None),
        schedule=dataclasses.replace(base.schedule, levels=(level,), thresholds_s=()))
    return [a, b, c], policy


def test_a_sample_cut_in_the_step_it_ends_votes_with_its_last_checks_confidence() -> None:
    samples, policy = _cut_at_its_end()
    level, profile = policy.schedule.level(1), flat_profile(0.01)
    kinds = [s.kind for s in samples]
    engine = ReplayEngine([problem("p", 5, samples)], profile, chunk_tokens=20)

    async def go():
        prompts = [PromptSpec(i, k, "", "") for i, k in enumerate(kinds)]
        stream = await engine.start_question("p", "", prompts, SamplingSettings(max_new_tokens=16384))
        return await run_question(stream, policy, level, kinds, RecordedRunner())

    live = asyncio.run(go())
    sim = replay_question(samples, policy, level, profile)
    expected = [("finished", 35), ("question_stop", 35), ("question_stop", 35)]
    assert [(s.end, s.tokens) for s in live.samples] == expected
    assert [(s.end, s.tokens) for s in sim.samples] == expected
    assert (sim.answer, sim.stop_reason) == (live.answer, live.stop_reason) == (5, "rule1:2")
    ref = replay_competition([problem("p", 5, samples)], policy, profile)
    fast = FastSimulator([problem("p", 5, samples)], profile).competition(policy).to_result()
    assert ref.questions[0].answer == 5
    assert compare(ref, fast) == []


# ------------------------------------------------------------------------------ hostile stores


def _without_confidence(store: Path, tmp_path: Path, where: str, column: str | None = None) -> Path:
    """A copy of `store` whose `sample_confidence` rows matching `where` are gone (or, with
    `column`, that column is NULL in them)."""
    path = tmp_path / "partial.duckdb"
    shutil.copy(store, path)
    con = duckdb.connect(str(path))
    if column is None:
        con.execute(f"DELETE FROM sample_confidence WHERE {where}")
    else:
        con.execute(f"UPDATE sample_confidence SET {column} = NULL WHERE {where}")
    con.close()
    return path


@pytest.fixture(scope="module")
def old_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("conf-fidelity-old") / "old.duckdb"
    synthesize_store(path, n_problems=3, n_samples=8, seed=7, progress=False)
    return path


@pytest.mark.parametrize(("case", "field", "sample"), [
    ("old", "sample_confidence.token_conf", "sample 0 of problem 'syn-001'"),
    ("partial", "sample_confidence.token_conf", "sample 5 of problem 'syn-003'"),
    ("no-entropy", "sample_confidence.token_entropy", "sample 2 of problem 'syn-002'"),
])
@pytest.mark.parametrize("policy_name", ["deepconf-online", "aimo3-winner", "conf-fixed"])
def test_a_store_lacking_confidence_is_refused_alike_by_every_path(
        store: Path, old_store: Path, tmp_path: Path, case: str, field: str, sample: str,
        policy_name: str) -> None:
    path = {
        "old": lambda: old_store,
        "partial": lambda: _without_confidence(
            store, tmp_path, "problem_id = 'syn-003' AND sample_idx = 5"),
        "no-entropy": lambda: _without_confidence(
            store, tmp_path, "problem_id = 'syn-002' AND sample_idx = 2", "token_entropy"),
    }[case]()
    policy = POLICIES[policy_name]
    problems = load_problem_traces(path)
    errors = []
    with pytest.raises(MissingConfidence) as err:
        replay_competition(problems, policy, L4)
    errors.append(err.value)
    with pytest.raises(MissingConfidence) as err:
        run_solve(None, policy, "replay", traces=path, hardware=L4, echo=None)
    errors.append(err.value)
    with pytest.raises(MissingConfidence) as err:
        FastSimulator(problems, L4).competition(policy)
    errors.append(err.value)
    assert len({str(e) for e in errors}) == 1
    e = errors[0]
    assert e.field == field and sample in e.message and repr(policy.name) in e.message
    assert isinstance(e, ValueError)  # what callers of the simulator caught before


def test_both_commands_refuse_a_partial_store_in_one_line(store: Path, tmp_path: Path) -> None:
    path = _without_confidence(store, tmp_path, "problem_id = 'syn-004' AND sample_idx = 0")
    runner = CliRunner()
    lines = []
    for command in (["simulate"], ["solve", "--backend", "replay"]):
        result = runner.invoke(app, [*command, "--traces", str(path), "--policy", "deepconf-online",
                                     "--hardware", "l4x4-14b-w4kv8"])
        assert result.exit_code == 2, result.output
        assert "Traceback" not in result.output and isinstance(result.exception, SystemExit)
        (line,) = [ln for ln in result.output.splitlines() if ln.startswith("error:")]
        assert "sample_confidence.token_conf" in line and "problem 'syn-004'" in line
        lines.append(line)
    assert lines[0] == lines[1]


def test_solve_command_replays_a_confidence_policy(store: Path) -> None:
    """The replay backend sends the store's confidence, so `aimo solve` runs such a policy."""
    result = CliRunner().invoke(app, ["solve", "--backend", "replay", "--traces", str(store),
                                      "--policy", "aimo3-winner",
                                      "--hardware", "l4x4-14b-w4kv8", "--json"])
    assert result.exit_code == 0, result.output


def _plain(policy: Policy) -> Policy:
    """`policy` without the elements that read confidence (what the loop falls back to)."""
    return dataclasses.replace(
        policy, sample_stop=dataclasses.replace(policy.sample_stop, confidence=None),
        vote=dataclasses.replace(policy.vote, confidence="none", keep_top=1.0))


@pytest.mark.parametrize("policy_name", ["deepconf-online", "conf-fixed"])
def test_live_loop_without_confidence_from_its_engine_answers_with_a_plain_vote(
        old_store: Path, policy_name: str, caplog: pytest.LogCaptureFixture) -> None:
    """An engine that sends no confidence (a live engine without logprobs; here a replay engine
    over a store without it, which `run_solve` would refuse): the loop stops no sample on
    confidence, votes without confidence, warns — and answers as the simulator does for the
    policy without those elements."""
    policy = POLICIES[policy_name]
    problem = load_problem_traces(old_store)[1]
    level = policy.schedule.level(1)
    kinds = [s.kind for s in problem.samples]
    engine = ReplayEngine([problem], L4, chunk_tokens=policy.check.every_tokens)

    async def go():
        prompts = [PromptSpec(i, k, "", "") for i, k in enumerate(kinds)]
        stream = await engine.start_question(problem.problem_id, "", prompts,
                                             SamplingSettings(max_new_tokens=16384))
        return await run_question(stream, policy, level, kinds, RecordedRunner())

    with caplog.at_level(logging.WARNING, logger="aimo.solver.loop"):
        live = asyncio.run(go())
    sim = replay_question(problem.samples, _plain(policy), level, L4)
    assert (live.answer, live.stop_reason) == (sim.answer, sim.stop_reason)
    assert [(s.end, s.tokens) for s in live.samples] == [(s.end, s.tokens) for s in sim.samples]
    assert live.time_s == pytest.approx(sim.time_s)
    assert any("reads token confidence" in r.message and "votes without confidence" in r.message
               for r in caplog.records)
