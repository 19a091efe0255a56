"""The fast path (numba) makes the same decisions as the reference replay.

Differential tests: randomised policies, traces and hardware profiles through both
`simulator.replay.replay_competition` and `simulator.fast.FastSimulator.competition`, compared
question by question and sample by sample (answers, stop reasons, levels, tokens and sample ends
exactly; times to 1e-6 relative); presets on a larger random store; and bootstrap summaries,
which must agree exactly for a seed because both paths consume the same random numbers.
"""

from __future__ import annotations

import math
import time
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rule_strategies import question_rules, sample_stop_rules

from aimo.simulator.fast import FastSimulator
from aimo.core.hardware import HardwareProfile, Provenance, load_profile
from aimo.simulator.replay import (
    CompetitionResult,
    bootstrap_competitions,
    random_draw,
    recorded_draw,
    replay_competition,
    summarize,
)
from aimo.core.policy import (
    Check,
    ConfidenceStop,
    EarlyTimeout,
    KindWeights,
    Policy,
    QuestionBudget,
    QuestionStop,
    SampleMix,
    SampleStop,
    SampleStopRule,
    Schedule,
    SpeedLevel,
    ValidAnswer,
    Vote,
    load_policy,
)
from aimo.core.policy.sample_rules import SAMPLE_REGISTRY
from aimo.core.traces import SOURCE_BOXED, SOURCE_CODE, ProblemTrace, SampleTrace

REL = 1e-6
PRESETS = ("seed-2nd-place", "majority-n", "first-answer", "fast-8")
PROV = Provenance("test", "2026-01-01", "made up")


# ------------------------------------------------------------------------------ comparison


def _close(a: float, b: float) -> bool:
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return a == b or abs(a - b) <= REL * max(abs(a), abs(b), 1e-9)


def assert_same(ref: CompetitionResult, fast: CompetitionResult) -> None:
    """Everything the reference reports, exactly, except times (1e-6 relative)."""
    assert len(ref.questions) == len(fast.questions)
    for r, f in zip(ref.questions, fast.questions):
        where = f"question {r.order} ({r.problem_id})"
        assert (f.problem_id, f.order, f.level, f.truth) == (
            r.problem_id, r.order, r.level, r.truth), where
        assert f.stop_reason == r.stop_reason, where
        assert f.answer == r.answer, where
        assert _close(f.time_s, r.time_s), (where, f.time_s, r.time_s)
        assert _close(f.start_s, r.start_s), (where, f.start_s, r.start_s)
        assert (f.tokens, f.samples_started, f.samples_stopped) == (
            r.tokens, r.samples_started, r.samples_stopped), where
        assert len(f.samples) == len(r.samples), where
        for rs, fs in zip(r.samples, f.samples):
            w = f"{where} slot {rs.index}"
            assert (fs.index, fs.source_sample, fs.kind, fs.tokens, fs.end, fs.boxed, fs.code) == (
                rs.index, rs.source_sample, rs.kind, rs.tokens, rs.end, rs.boxed, rs.code), w
            assert _close(fs.start_s, rs.start_s) and _close(fs.end_s, rs.end_s), (
                w, (fs.start_s, fs.end_s), (rs.start_s, rs.end_s))
    assert fast.score == ref.score
    assert (fast.n_correct, fast.n_correct_in_budget) == (ref.n_correct, ref.n_correct_in_budget)
    assert _close(fast.total_time_s, ref.total_time_s)
    assert fast.overtime == ref.overtime
    assert fast.n_after_cutoff == ref.n_after_cutoff


def run_both(problems: list[ProblemTrace], policy: Policy, profile: HardwareProfile, *,
             order: list[int] | None = None, draw_seed: int | None = None,
             budget_s: float = 18000.0, sim: FastSimulator | None = None) -> CompetitionResult:
    """Run one competition through both paths, assert they agree; return the reference's."""
    order = list(range(len(problems))) if order is None else order
    served = [problems[i] for i in order]
    if draw_seed is None:
        draws = [recorded_draw(p) for p in served]
    else:
        rng = np.random.default_rng(draw_seed)
        draws = [random_draw(p, rng) for p in served]
    ref = replay_competition(served, policy, profile, draws=draws, budget_s=budget_s)
    sim = sim if sim is not None else FastSimulator(problems, profile)
    fast = sim.competition(policy, order=np.asarray(order), draws=draws, budget_s=budget_s)
    assert_same(ref, fast.to_result())
    # the summary arrays agree with the detailed result
    res = fast.to_result()
    assert fast.stop_reasons == tuple(q.stop_reason for q in res.questions)
    assert list(fast.tokens) == [q.tokens for q in res.questions]
    return ref


# ------------------------------------------------------------------------------ random data


def confidence_arrays(rng: np.random.Generator, n_tokens: int,
                      right: bool) -> tuple[np.ndarray, np.ndarray]:
    """Token confidence (−mean top-k logprob) and entropy: a noisy level, lower for wrong
    samples, with a dip (a stretch of low confidence) in some of them."""
    level = rng.uniform(1.2, 2.4) if right else rng.uniform(0.8, 2.0)
    conf = np.clip(level + rng.normal(0.0, 0.6, n_tokens), 0.0, None)
    if n_tokens > 4 and rng.random() < 0.5:
        a = int(rng.integers(0, n_tokens - 2))
        b = min(n_tokens, a + int(rng.integers(2, max(3, n_tokens // 3))))
        conf[a:b] *= rng.uniform(0.2, 0.7)
    ent = np.clip(2.5 - conf + rng.normal(0.0, 0.3, n_tokens), 0.0, None)
    return conf.astype(np.float32), ent.astype(np.float32)




def make_sample(rng: np.random.Generator, index: int, kind: str, *, n_tokens: int,
                n_answers: int, truth: int, p_right: float, prompt: int,
                p_length: float = 0.05) -> SampleTrace:
    """A recorded sample with answers at random (sorted) token positions."""
    tok = np.sort(rng.integers(0, n_tokens + 1, size=n_answers)).astype(np.int32)
    src = np.where(rng.random(n_answers) < (0.6 if kind == "code" else 0.1),
                   SOURCE_CODE, SOURCE_BOXED).astype(np.int8)
    right = rng.random() < p_right
    vals = []
    for _ in range(n_answers):
        u = rng.random()
        if u < 0.1:
            vals.append(-1)  # nothing parsed
        elif right and u < 0.8:
            vals.append(truth)
        else:
            vals.append(int(rng.choice([0, 1, 7, 20, 100, 210, 500, 999, truth,
                                        int(rng.integers(0, 1000))])))
    ok = rng.random(n_answers) < 0.8
    exec_ms = np.where(src == SOURCE_CODE, rng.uniform(0, 4000, n_answers), np.nan)
    conf, ent = confidence_arrays(rng, n_tokens, right)
    return SampleTrace(
        sample=index, kind=kind, n_tokens=n_tokens,  # type: ignore[arg-type]
        finish_reason="length" if rng.random() < p_length else "stop", prompt_tokens=prompt,
        end_s=math.nan, ans_token=tok, ans_time=np.full(n_answers, math.nan),
        ans_value=np.asarray(vals, np.int16), ans_source=src, ans_code_ok=ok,
        ans_exec_ms=exec_ms.astype(np.float32), token_conf=conf, token_entropy=ent,
    )


def random_store(seed: int, n_problems: int, n_samples: int, *, min_tokens: int = 2000,
                 max_tokens: int = 16000) -> list[ProblemTrace]:
    """A seeded store of plausible traces: lengths min..max tokens, 1–3 answers, ~half right."""
    rng = np.random.default_rng(seed)
    problems = []
    for p in range(n_problems):
        truth = int(rng.integers(0, 1000))
        p_right = float(rng.uniform(0.1, 0.9))
        prompt = int(rng.integers(80, 300))
        samples = tuple(
            make_sample(rng, i, "cot" if i % 2 == 0 else "code",
                        n_tokens=int(rng.integers(min_tokens, max_tokens + 1)),
                        n_answers=int(rng.integers(1, 4)), truth=truth, p_right=p_right,
                        prompt=prompt)
            for i in range(n_samples)
        )
        problems.append(ProblemTrace("run", f"p{p:03d}", p, truth if p % 7 else None, samples))
    return problems


@st.composite
def sample_traces(draw: st.DrawFn, index: int, kind: str) -> SampleTrace:
    n_tokens = draw(st.integers(0, 300))
    n_answers = draw(st.integers(0, 4))
    toks = sorted(draw(st.lists(st.integers(0, max(n_tokens, 0)), min_size=n_answers,
                                max_size=n_answers)))
    values = draw(st.lists(st.sampled_from([-1, 0, 1, 3, 20, 100, 210, 500, 999]),
                           min_size=n_answers, max_size=n_answers))
    sources = draw(st.lists(st.sampled_from([SOURCE_BOXED, SOURCE_CODE]), min_size=n_answers,
                            max_size=n_answers))
    ok = draw(st.lists(st.booleans(), min_size=n_answers, max_size=n_answers))
    exec_ms = draw(st.lists(st.one_of(st.just(math.nan), st.just(0.0), st.floats(0, 3000)),
                            min_size=n_answers, max_size=n_answers))
    exec_ms = [e if s == SOURCE_CODE else math.nan for e, s in zip(exec_ms, sources)]
    conf, ent = confidence_arrays(np.random.default_rng(draw(st.integers(0, 2**31))), n_tokens,
                                  draw(st.booleans()))
    return SampleTrace(
        sample=index, kind=kind, n_tokens=n_tokens,  # type: ignore[arg-type]
        finish_reason=draw(st.sampled_from(["stop", "stop", "length"])),
        prompt_tokens=draw(st.integers(0, 200)), end_s=math.nan,
        ans_token=np.asarray(toks, np.int32), ans_time=np.full(n_answers, math.nan),
        ans_value=np.asarray(values, np.int16), ans_source=np.asarray(sources, np.int8),
        ans_code_ok=np.asarray(ok, bool), ans_exec_ms=np.asarray(exec_ms, np.float32),
        token_conf=conf, token_entropy=ent,
    )


@st.composite
def problem_sets(draw: st.DrawFn) -> list[ProblemTrace]:
    problems = []
    for p in range(draw(st.integers(1, 4))):
        kinds = draw(st.lists(st.sampled_from(["cot", "code"]), min_size=1, max_size=7))
        samples = tuple(draw(sample_traces(i, k)) for i, k in enumerate(kinds))
        truth = draw(st.one_of(st.none(), st.sampled_from([0, 3, 20, 100, 210, 999])))
        problems.append(ProblemTrace("run", f"p{p}", p, truth, samples))
    return problems


@st.composite
def levels(draw: st.DrawFn, number: int) -> SpeedLevel:
    early = draw(st.lists(
        st.builds(EarlyTimeout, after_s=st.floats(0.05, 25.0), min_answers=st.integers(0, 5)),
        max_size=3))
    return SpeedLevel(
        name=f"level{number}", samples=draw(st.integers(1, 9)),
        min_answers=draw(st.integers(1, 8)), timeout_s=draw(st.floats(0.05, 40.0)),
        early_timeouts=tuple(early),
    )


@st.composite
def confidence_stops(draw: st.DrawFn) -> ConfidenceStop | None:
    window = draw(st.sampled_from([1, 5, 40, 200]))
    return draw(st.one_of(
        st.none(),
        st.builds(ConfidenceStop, window=st.just(window), threshold=st.floats(0.3, 2.6)),
        st.builds(ConfidenceStop, window=st.just(window), warmup=st.integers(1, 4),
                  percentile=st.sampled_from([0.0, 10.0, 50.0, 90.0, 100.0]))))


@st.composite
def policies(draw: st.DrawFn, confidence: bool = False) -> Policy:
    """Random policies; with `confidence`, also the confidence and time-aware elements."""
    n_levels = draw(st.integers(1, 3))
    lv = tuple(draw(levels(i)) for i in range(n_levels))
    thresholds = sorted(draw(st.lists(st.floats(0.5, 60.0), min_size=n_levels - 1,
                                      max_size=n_levels - 1)))
    schedule = Schedule(
        levels=lv, start_level=draw(st.integers(1, n_levels)),
        reeval_after=draw(st.integers(0, 3)), reeval_every=draw(st.integers(1, 3)),
        thresholds_s=tuple(thresholds), cutoff_s=draw(st.floats(1.0, 400.0)),
        cutoff_answer=draw(st.integers(0, 999)),
        early_timeout_count=draw(st.sampled_from(["valid", "history_if_none"])),
    )
    vote = Vote(
        code_over_boxed=draw(st.booleans()),
        kind_weights=KindWeights(cot=draw(st.sampled_from([0.0, 0.5, 1.0, 2.0])),
                                 code=draw(st.sampled_from([0.0, 1.0, 1.5]))),
        small_max=draw(st.one_of(st.none(), st.integers(0, 50))),
        round_multiple=draw(st.one_of(st.none(), st.sampled_from([1, 7, 100]))),
        small_or_round_weight=draw(st.sampled_from([0.0, 0.6, 1.0, 1.3])),
        length_weight=draw(st.sampled_from([0.0, 0.0, 0.5, 3.0])),
        tie_break=draw(st.sampled_from(["larger", "smaller", "first"])),
        fallback=draw(st.integers(0, 999)), drop_negative=draw(st.booleans()),
        tie_tolerance=draw(st.sampled_from([1e-9, 0.0, 0.1])),
        final_read=draw(st.booleans()),
    )
    cstop = None
    uncatchable = False
    if confidence:
        metric = draw(st.sampled_from(["none", "inv_entropy", "mean", "tail", "lowest_group"]))
        vote = replace(vote, confidence=metric,
                       confidence_window=draw(st.sampled_from([1, 7, 50, 400])),
                       keep_top=1.0 if metric == "none" else draw(
                           st.sampled_from([1.0, 0.5, 0.34, 0.1])))
        cstop = draw(confidence_stops())
        uncatchable = draw(st.booleans())
        schedule = replace(schedule, budget=draw(st.one_of(st.none(), st.builds(
            lambda r, lo, extra: QuestionBudget(reserve_s=r, min_s=lo, max_s=lo + extra),
            st.floats(0.0, 20.0), st.floats(0.05, 10.0), st.floats(0.0, 30.0)))))
    return Policy(
        name="random",
        samples=SampleMix(order=draw(st.sampled_from(["interleave", "cot_first", "code_first"])),
                          first_kind=draw(st.sampled_from(["cot", "code"])),
                          cot_fraction=draw(st.sampled_from([0.0, 0.3, 0.5, 1.0]))),
        sample_stop=SampleStop(cot=draw(sample_stop_rules()), code=draw(sample_stop_rules()),
                               max_tokens=draw(st.one_of(st.integers(1, 320), st.just(16384))),
                               confidence=cstop),
        question_stop=QuestionStop(
            order=draw(st.sampled_from(["arrival", "index"])),
            rules=tuple(draw(st.lists(question_rules(), max_size=4))),
            valid=ValidAnswer(prefer_code=draw(st.booleans()), positive_only=draw(st.booleans())),
            uncatchable=uncatchable,
        ),
        vote=vote, schedule=schedule, check=Check(
            every_tokens=draw(st.integers(1, 50)), boxes=draw(st.sampled_from(["all", "last"])),
            boxed_zero=draw(st.sampled_from(["keep", "ignore"])),
            code_overlap=draw(st.sampled_from(["profile", "profile", "parallel", "serial",
                                               "inline"]))),
    )


@st.composite
def profiles(draw: st.DrawFn) -> HardwareProfile:
    return HardwareProfile(
        name="random", a=draw(st.floats(0.001, 0.05)), beta=draw(st.floats(0.0, 0.002)),
        gamma=draw(st.sampled_from([0.0, 1e-7, 3e-6])),
        prefill_s_per_token=draw(st.sampled_from([0.0, 2e-4, 1e-3])),
        startup_s=draw(st.sampled_from([0.0, 5.0, 60.0])), max_batch=draw(st.integers(1, 10)),
        provenance=PROV, code_overlap=draw(st.sampled_from(["parallel", "serial"])),
        question_overhead_s=draw(st.sampled_from([0.0, 0.0, 1.5])),
        code_workers=draw(st.sampled_from([None, None, 1, 2, 4])),
        knee_batch=draw(st.sampled_from([0, 2, 4, 16])),
        beta_above=draw(st.sampled_from([0.0, 0.0, 0.001, 0.02])),
        abort_latency_steps=draw(st.sampled_from([0, 0, 1, 3, 40])),
        host_per_step=draw(st.sampled_from([0.0, 0.0, 0.0009, 0.01])),
        prefill_s_per_request=draw(st.sampled_from([0.0, 0.0, 0.0033, 0.05])),
    )


# ------------------------------------------------------------------------------ tests


@pytest.fixture(scope="module", autouse=True)
def compiled() -> None:
    """Compile (or load from the numba cache) once, outside any timed test."""
    t0 = time.perf_counter()
    problems = random_store(1, 2, 4, min_tokens=50, max_tokens=200)
    sim = FastSimulator(problems, load_profile("l4x4-14b-w4kv8"))
    policy = load_policy("seed-2nd-place")
    sim.competition(policy)
    sim.bootstrap(policy, replicates=1, seed=0)
    print(f"fast path ready in {time.perf_counter() - t0:.1f} s (compile or cache load)")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(problems=problem_sets(), policy=policies(), profile=profiles(), data=st.data())
def test_random_policies_traces_profiles_match_reference(
    problems: list[ProblemTrace], policy: Policy, profile: HardwareProfile, data: st.DataObject
) -> None:
    n = len(problems)
    order = data.draw(st.one_of(st.just(list(range(n))), st.permutations(list(range(n))),
                                st.lists(st.integers(0, n - 1), min_size=1, max_size=6)))
    draw_seed = data.draw(st.one_of(st.none(), st.integers(0, 2**31)))
    budget = data.draw(st.sampled_from([18000.0, 60.0, 200.0]))
    run_both(problems, policy, profile, order=order, draw_seed=draw_seed, budget_s=budget)


@pytest.mark.parametrize("rule", list(SAMPLE_REGISTRY))
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(problems=problem_sets(), policy=policies(), profile=profiles(), data=st.data())
def test_every_sample_stop_rule_matches_reference(
    rule: str, problems: list[ProblemTrace], policy: Policy, profile: HardwareProfile,
    data: st.DataObject
) -> None:
    """Each registered sample-stop rule (core/policy/sample_rules.py) on both prompt kinds, so a
    newly registered rule is compared on every run, not only when drawn among the others."""
    stops = replace(policy.sample_stop, cot=data.draw(sample_stop_rules([rule])),
                    code=data.draw(sample_stop_rules([rule])))
    draw_seed = data.draw(st.one_of(st.none(), st.integers(0, 2**31)))
    run_both(problems, replace(policy, sample_stop=stops), profile, draw_seed=draw_seed)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(problems=problem_sets(), policy=policies(confidence=True), profile=profiles(),
       data=st.data())
def test_confidence_and_time_aware_policies_match_reference(
    problems: list[ProblemTrace], policy: Policy, profile: HardwareProfile, data: st.DataObject
) -> None:
    """The confidence stop (fixed and online threshold), confidence votes with DeepConf
    filtering, the uncatchable-leader stop and the per-question budget, at random."""
    n = len(problems)
    order = data.draw(st.one_of(st.just(list(range(n))), st.permutations(list(range(n))),
                                st.lists(st.integers(0, n - 1), min_size=1, max_size=6)))
    draw_seed = data.draw(st.one_of(st.none(), st.integers(0, 2**31)))
    budget = data.draw(st.sampled_from([18000.0, 60.0, 200.0]))
    run_both(problems, policy, profile, order=order, draw_seed=draw_seed, budget_s=budget)


@pytest.mark.parametrize("preset", ["aimo3-winner", "deepconf-online"])
def test_confidence_presets_on_a_larger_store_match_reference(preset: str) -> None:
    problems = random_store(13, 20, 16, min_tokens=500, max_tokens=6000)
    profile = load_profile("l4x4-14b-w4kv8")
    policy = load_policy(preset)
    sim = FastSimulator(problems, profile)
    ref = run_both(problems, policy, profile, draw_seed=2, sim=sim)
    tight = replace(policy, schedule=replace(policy.schedule, cutoff_s=900.0))
    run_both(problems, tight, profile, draw_seed=6, budget_s=1000.0, sim=sim)
    ref_b = summarize(bootstrap_competitions(problems, policy, profile, replicates=3, seed=9))
    assert sim.bootstrap(policy, replicates=3, seed=9) == ref_b
    assert ref.questions


def test_policy_reading_confidence_refuses_traces_without_it() -> None:
    problems = random_store(14, 2, 4, min_tokens=100, max_tokens=300)
    bare = [replace(p, samples=tuple(replace(s, token_conf=None, token_entropy=None)
                                     for s in p.samples)) for p in problems]
    policy = load_policy("deepconf-online")
    profile = load_profile("l4x4-14b-w4kv8")
    with pytest.raises(ValueError, match="confidence"):
        replay_competition(bare, policy, profile)
    with pytest.raises(ValueError, match="confidence"):
        FastSimulator(bare, profile).competition(policy)
    run_both(bare, load_policy("seed-2nd-place"), profile)  # no confidence read: fine


def test_rules_of_every_kind_on_one_question() -> None:
    """A hand-made question where code results are pending when samples end, repeated values,
    None values and failures all occur, under parallel and serial code and a small batch."""
    rng = np.random.default_rng(5)
    samples = tuple(make_sample(rng, i, "code" if i % 3 else "cot", n_tokens=int(n),
                                n_answers=4, truth=7, p_right=0.6, prompt=40, p_length=0.3)
                    for i, n in enumerate(rng.integers(20, 400, size=9)))
    problems = [ProblemTrace("run", "q", 0, 7, samples)]
    base = load_policy("seed-2nd-place")
    for overlap, workers in (("parallel", None), ("serial", None), ("parallel", 1),
                             ("parallel", 2)):
        for batch in (1, 3, 32):
            profile = HardwareProfile(
                name="t", a=0.02, beta=3e-4, gamma=1e-7, prefill_s_per_token=1e-3,
                startup_s=0.0, max_batch=batch, provenance=PROV, code_overlap=overlap,
                code_workers=workers,
            )
            for every in (1, 20, 64):
                policy = replace(base, check=Check(every_tokens=every))
                run_both(problems, policy, profile)


def test_abort_latency_matches_reference() -> None:
    """Question stops that land some steps after the decision (`abort_latency_steps`), with
    and without a final read and with the inline busy loop, on a batch where samples reach their
    caps within those steps."""
    rng = np.random.default_rng(11)
    samples = tuple(make_sample(rng, i, "code" if i % 2 else "cot", n_tokens=int(n),
                                n_answers=5, truth=3, p_right=0.7, prompt=30, p_length=0.2)
                    for i, n in enumerate(rng.integers(30, 300, size=12)))
    problems = [ProblemTrace("run", "q", 0, 3, samples)]
    seed = load_policy("seed-2nd-place")
    for latency in (1, 2, 7, 500):
        profile = HardwareProfile(
            name="t", a=0.012, beta=5e-5, gamma=8e-8, prefill_s_per_token=1e-4, startup_s=0.0,
            max_batch=8, provenance=PROV, code_workers=4, abort_latency_steps=latency)
        for overlap in ("inline", "parallel", "serial"):
            for final_read in (True, False):
                policy = replace(seed, check=replace(seed.check, code_overlap=overlap),
                                 vote=replace(seed.vote, final_read=final_read))
                run_both(problems, policy, profile)


@pytest.mark.parametrize("preset", PRESETS)
def test_presets_on_a_larger_store_match_reference(preset: str) -> None:
    problems = random_store(11, 30, 16)
    profile = load_profile("l4x4-14b-w4kv8")
    policy = load_policy(preset)
    sim = FastSimulator(problems, profile)
    ref = run_both(problems, policy, profile, sim=sim)
    assert len({q.stop_reason for q in ref.questions}) >= 1
    rng = np.random.default_rng(3)
    run_both(problems, policy, profile, order=list(rng.permutation(30)), draw_seed=4, sim=sim)
    # a tight budget: the speed levels move and late questions fall after the cutoff
    tight = replace(policy, schedule=replace(policy.schedule, cutoff_s=1800.0))
    run_both(problems, tight, profile, draw_seed=5, budget_s=1900.0, sim=sim)


@pytest.mark.parametrize("preset", ["seed-2nd-place", "majority-n"])
def test_bootstrap_summary_identical_to_reference(preset: str) -> None:
    problems = random_store(12, 12, 10)
    profile = load_profile("l4x4-14b-w4kv8")
    policy = load_policy(preset)
    sim = FastSimulator(problems, profile)
    ref = summarize(bootstrap_competitions(problems, policy, profile, replicates=6, seed=42))
    assert sim.bootstrap(policy, replicates=6, seed=42) == ref
    # drawn with replacement, and on a fold of the problems
    ref = summarize(bootstrap_competitions(problems, policy, profile, replicates=4, seed=7,
                                           n_questions=20))
    assert sim.bootstrap(policy, replicates=4, seed=7, n_questions=20) == ref
    fold = [1, 4, 5, 9, 10]
    ref = summarize(bootstrap_competitions([problems[i] for i in fold], policy, profile,
                                           replicates=5, seed=8, budget_s=3000.0))
    assert sim.bootstrap(policy, replicates=5, seed=8, budget_s=3000.0,
                         problem_subset=fold) == ref


@pytest.mark.parametrize("rule", ["zero", "answered"])
def test_overtime_scoring_rule_identical_to_reference(rule: str) -> None:
    # a per-question overhead beyond the budget's 1% margin makes most runs overtime
    problems = random_store(12, 12, 10)
    profile = replace(load_profile("l4x4-14b-w4kv8"), question_overhead_s=60.0)
    policy = load_policy("seed-2nd-place")
    sim = FastSimulator(problems, profile)
    runs = bootstrap_competitions(problems, policy, profile, replicates=8, seed=1,
                                  budget_s=800.0, overtime_rule=rule)
    ref = summarize(runs)
    fast = sim.bootstrap(policy, replicates=8, seed=1, budget_s=800.0, overtime_rule=rule)
    assert fast == ref
    assert 0.5 < ref.p_overtime < 1.0
    for r in runs:
        if not r.overtime:
            assert r.score == r.n_correct == r.n_correct_in_budget
        elif rule == "zero":  # the competition's rule: an overtime run scores nothing
            assert r.score == 0 and r.n_correct > 0
        else:  # the answers given before the budget count
            assert 0 < r.score == r.n_correct_in_budget < r.n_correct + 1
    run_both(problems, policy, profile, draw_seed=3, budget_s=800.0, sim=sim)


def test_problem_without_samples_of_a_kind_falls_back_like_the_reference() -> None:
    rng = np.random.default_rng(9)
    only_cot = tuple(make_sample(rng, i, "cot", n_tokens=300, n_answers=2, truth=5, p_right=0.5,
                                 prompt=30) for i in range(3))
    only_code = tuple(make_sample(rng, i, "code", n_tokens=250, n_answers=2, truth=5,
                                  p_right=0.5, prompt=30) for i in range(2))
    problems = [ProblemTrace("run", "a", 0, 5, only_cot), ProblemTrace("run", "b", 1, 5, only_code)]
    profile = replace(load_profile("l4x4-14b-w4kv8"), max_batch=4)
    run_both(problems, load_policy("seed-2nd-place"), profile)
    run_both(problems, load_policy("majority-n"), profile, draw_seed=1)


def test_problem_without_samples_raises_like_the_reference() -> None:
    problems = random_store(4, 2, 3, min_tokens=100, max_tokens=300)
    problems.append(ProblemTrace("run", "empty", 2, 5, ()))
    profile = load_profile("l4x4-14b-w4kv8")
    policy = load_policy("fast-8")
    with pytest.raises(ValueError, match="no recorded samples"):
        replay_competition(problems, policy, profile)
    sim = FastSimulator(problems, profile)
    with pytest.raises(ValueError, match="no recorded samples"):
        sim.competition(policy)
    with pytest.raises(ValueError, match="no recorded samples"):
        sim.bootstrap(policy, replicates=2, seed=0)
    run_both(problems, policy, profile, order=[1, 0])  # the others still replay


def test_bad_inputs_are_reported() -> None:
    problems = random_store(2, 3, 4, min_tokens=100, max_tokens=300)
    sim = FastSimulator(problems, load_profile("l4x4-14b-w4kv8"))
    policy = load_policy("fast-8")
    with pytest.raises(ValueError, match="order"):
        sim.competition(policy, order=[0, 3])
    with pytest.raises(ValueError, match="draws"):
        sim.competition(policy, order=[0], draws=[])
    with pytest.raises(ValueError, match="problem_subset"):
        sim.bootstrap(policy, replicates=2, seed=0, problem_subset=[5])
    other = random_store(3, 1, 2)
    with pytest.raises(ValueError, match="not in this simulator"):
        sim.competition(policy, order=[0], draws=[recorded_draw(other[0])])


def one_level_policy(base: Policy, samples: int, min_answers: int) -> Policy:
    """`base` held at one speed level of `samples` samples."""
    level = replace(base.schedule.level(base.schedule.start_level), samples=samples,
                    min_answers=min_answers)
    return replace(base, schedule=replace(base.schedule, levels=(level,), start_level=1,
                                          thresholds_s=()))


@pytest.mark.parametrize("samples", [63, 64])
def test_widest_slot_sets_match_reference(samples: int) -> None:
    """The kernel keeps the active slots as one 64-bit set: its top bits (slots 32…63) take
    part, in slot order, like the rest; batches smaller than the slots start them in waves."""
    problems = random_store(21, 3, 40, min_tokens=200, max_tokens=3000)
    base = load_policy("majority-n")
    policy = one_level_policy(base, samples, min_answers=samples)
    for batch in (64, 20):
        profile = replace(load_profile("l4x4-14b-w4kv8"), max_batch=batch)
        ref = run_both(problems, policy, profile, draw_seed=3)
        assert max(len(q.samples) for q in ref.questions) == samples


def test_more_slots_than_the_bit_set_are_refused() -> None:
    problems = random_store(22, 1, 4, min_tokens=50, max_tokens=200)
    sim = FastSimulator(problems, load_profile("l4x4-14b-w4kv8"))
    policy = one_level_policy(load_policy("majority-n"), 65, min_answers=1)
    with pytest.raises(ValueError, match="at most 64 samples"):
        sim.bootstrap(policy, replicates=1, seed=0)
    with pytest.raises(ValueError, match="at most 64 samples"):
        sim.competition(policy)


@pytest.mark.parametrize("n_questions", [None, 20])
def test_paired_bootstrap_and_token_totals_match_reference(n_questions: int | None) -> None:
    """AIMO-3 pairs: replicates 2i and 2i + 1 serve the same questions with fresh sample draws,
    in both paths; the fast path's per-replicate token totals are the reference's."""
    problems = random_store(12, 12, 10)
    profile = load_profile("l4x4-14b-w4kv8")
    policy = load_policy("aimo3-winner")
    sim = FastSimulator(problems, profile)
    ref = bootstrap_competitions(problems, policy, profile, replicates=6, seed=42, paired=True,
                                 n_questions=n_questions)
    toks = np.zeros(6, np.int64)
    scores, totals, _ = sim.bootstrap_arrays(policy, replicates=6, seed=42, paired=True,
                                             n_questions=n_questions, tokens_out=toks)
    assert list(scores) == [r.score for r in ref]
    assert list(toks) == [sum(q.tokens for q in r.questions) for r in ref]
    assert all(_close(float(t), r.total_time_s) for t, r in zip(totals, ref))
    for a, b in zip(ref[0::2], ref[1::2]):
        assert [q.problem_id for q in a.questions] == [q.problem_id for q in b.questions]
    assert [q.problem_id for q in ref[0].questions] != [q.problem_id for q in ref[2].questions]
    drawn = [tuple(s.source_sample for q in r.questions for s in q.samples) for r in ref]
    assert drawn[0] != drawn[1]  # fresh sample draws within a pair


def _settling_trace() -> list[ProblemTrace]:
    """One CoT sample whose boxed answers are 5, 7, 5, (a code failure), 5 at tokens 10..40."""
    values, tokens = [5, 7, 5, -1, 5], [10, 20, 30, 35, 40]
    sources = [SOURCE_BOXED, SOURCE_BOXED, SOURCE_BOXED, SOURCE_CODE, SOURCE_BOXED]
    sample = SampleTrace(
        sample=0, kind="cot", n_tokens=300, finish_reason="stop", prompt_tokens=10,
        end_s=math.nan, ans_token=np.asarray(tokens, np.int32),
        ans_time=np.full(5, math.nan), ans_value=np.asarray(values, np.int16),
        ans_source=np.asarray(sources, np.int8), ans_code_ok=np.asarray([True] * 5),
        ans_exec_ms=np.asarray([math.nan, math.nan, math.nan, 0.0, math.nan], np.float32),
        token_conf=None, token_entropy=None,
    )
    return [ProblemTrace("run", "settle", 0, 5, (sample,))]


@pytest.mark.parametrize(("rule", "stop_token"), [
    (SampleStopRule("streak_answer", k=2), 40),  # 5, 7 | 5, (−1 does not count), 5: a run of 2
    (SampleStopRule("streak_answer", k=3), None),
    (SampleStopRule("repeated_answer", k=2), 30),  # 5 came back
])
def test_streak_answer_stops_where_the_answers_settle(rule: SampleStopRule,
                                                      stop_token: int | None) -> None:
    """streak_answer (registered in core/policy/sample_rules.py alone) stops the sample at the
    second 5 in a row, where repeated_answer stops at the first repeat, on both paths."""
    base = load_policy("seed-2nd-place")
    level = SpeedLevel("one", samples=1, min_answers=2, timeout_s=900.0)  # no quorum: 1 sample
    policy = replace(
        base, sample_stop=replace(base.sample_stop, cot=rule, code=rule),
        question_stop=replace(base.question_stop, rules=()), check=Check(every_tokens=1),
        schedule=replace(base.schedule, levels=(level,), start_level=1, thresholds_s=()))
    ref = run_both(_settling_trace(), policy, load_profile("l4x4-14b-w4kv8"))
    (sample,) = ref.questions[0].samples
    if stop_token is None:
        assert (sample.end, sample.tokens) == ("finished", 300)
    else:
        assert (sample.end, sample.tokens) == ("sample_stop", stop_token)
