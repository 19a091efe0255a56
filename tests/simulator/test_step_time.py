"""One step-time function (`core.hardware.timing.step_seconds`) behind all three clocks: the
reference replay, the replay engine and the numba fast path give identical step times, with and
without the optional knee term and the live loop's host time per step, and a profile without
either times steps as the linear model did."""

from __future__ import annotations

import asyncio
import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from replay_fixtures import problem, sample

import aimo.solver.engines.replay as replay_engine
from aimo.core.hardware import HardwareProfile, load_profile, timing
from aimo.core.hardware.timing import decode_coefficients, step_seconds, steps_duration, steps_within
from aimo.simulator.fast import kernel
from aimo.simulator.replay import question as reference
from aimo.solver.engines import Chunk, PromptSpec, ReplayEngine, SamplingSettings

BASE = load_profile("l4x4-14b-w4kv8")


@st.composite
def step_profiles(draw: st.DrawFn) -> HardwareProfile:
    return dataclasses.replace(
        BASE, name="random", a=draw(st.floats(1e-4, 0.05)), beta=draw(st.floats(0.0, 2e-3)),
        gamma=draw(st.floats(0.0, 5e-6)), knee_batch=draw(st.integers(0, 40)),
        beta_above=draw(st.sampled_from([0.0, 0.0, 1e-4, 3e-3])),
        host_per_step=draw(st.sampled_from([0.0, 0.0, 9e-4])))


def last_chunk_time(p: HardwareProfile) -> float:
    """The replay engine's time of the last chunk of 8 samples of 300 tokens (100-token prompts)
    decoded together under `p`."""
    traces = [sample(i, "cot", 300, prompt_tokens=100) for i in range(8)]
    engine = ReplayEngine([problem("p0", None, traces)], p, chunk_tokens=300)

    async def run() -> float:
        prompts = [PromptSpec(i, "cot", "", "q") for i in range(8)]
        stream = await engine.start_question("p0", "q", prompts, SamplingSettings())
        return max([c.t async for c in stream if isinstance(c, Chunk)])

    return asyncio.run(run())


def test_every_clock_calls_the_core_functions() -> None:
    """No copy of the formula: the engine imports core's, the kernel compiles core's."""
    assert replay_engine.steps_duration is timing.steps_duration
    assert replay_engine.steps_within is timing.steps_within
    assert reference.steps_duration is timing.steps_duration
    assert reference.steps_within is timing.steps_within
    assert kernel._steps_duration.py_func is timing.steps_seconds
    assert kernel._steps_within.py_func is timing.steps_fitting
    assert replay_engine.decode_on is timing.decode_on  # decoding on without the loop
    assert reference.decode_on is timing.decode_on
    assert not hasattr(replay_engine, "PaceModel") and not hasattr(replay_engine, "TimeModel")


@settings(max_examples=300, deadline=None)
@given(p=step_profiles(), b=st.integers(1, 64), c0=st.floats(0.0, 5e5), n=st.integers(0, 5000),
       t=st.floats(0.0, 500.0))
def test_compiled_and_python_clocks_agree_bit_for_bit(p: HardwareProfile, b: int, c0: float,
                                                      n: int, t: float) -> None:
    coef = decode_coefficients(p)
    assert kernel._steps_duration(*coef, b, c0, n) == steps_duration(p, b, c0, n)
    assert kernel._steps_within(*coef, b, c0, t) == steps_within(p, b, c0, t)
    k = steps_within(p, b, c0, t)
    assert steps_duration(p, b, c0, k) <= t < steps_duration(p, b, c0, k + 1)


def _one_step_at_a_time(p: HardwareProfile, prompts: list[int], made: list[int],
                        caps: list[int], now: float, until: float | None,
                        steps: int) -> tuple[list[int], float]:
    """`decode_on` the slow way: a step at a time, the batch re-counted before each."""
    got = list(made)
    left = steps
    while until is not None or left > 0:
        act = [i for i, m in enumerate(got) if m < caps[i]]
        if not act:
            break
        dt = steps_duration(p, len(act), float(sum(prompts[i] + got[i] for i in act)), 1)
        if until is not None and now + dt > until:
            break
        now += dt
        left -= 1
        for i in act:
            got[i] += 1
    return got, (now if until is None else max(now, until))


@st.composite
def coasting_batches(draw: st.DrawFn) -> tuple[list[int], list[int], list[int]]:
    n = draw(st.integers(0, 12))
    prompts = draw(st.lists(st.integers(0, 4000), min_size=n, max_size=n))
    caps = draw(st.lists(st.integers(0, 60), min_size=n, max_size=n))
    made = [draw(st.integers(0, c)) for c in caps]
    return prompts, made, caps


@settings(max_examples=300, deadline=None)
@given(p=step_profiles(), batch=coasting_batches(), now=st.floats(0.0, 100.0),
       ahead=st.one_of(st.none(), st.floats(-1.0, 2.0)), steps=st.integers(0, 80))
def test_decoding_on_without_the_loop_is_the_steps_one_at_a_time(
        p: HardwareProfile, batch: tuple[list[int], list[int], list[int]], now: float,
        ahead: float | None, steps: int) -> None:
    """`decode_on` (a question stop's busy time and abort latency, both Python clocks) gives the
    tokens and time of stepping one step at a time, and the fast path's two loops give the same
    tokens and the same clock to the bit."""
    prompts, made, caps = batch
    until = None if ahead is None else now + ahead
    got, t = timing.decode_on(p, prompts, made, caps, now, until=until, steps=steps)
    want, t_want = _one_step_at_a_time(p, prompts, made, caps, now, until, steps)
    assert got == want
    assert t == pytest.approx(t_want, rel=1e-9, abs=1e-12)
    assert all(m <= g <= c for m, g, c in zip(made, got, caps))

    sl = np.zeros((max(len(caps), 1), kernel.N_S), np.int32)
    start = 10_000  # question steps so far; an active slot holds steps - S_G0 tokens
    for i, (pr, m, c) in enumerate(zip(prompts, made, caps)):
        sl[i, kernel.S_PROMPT], sl[i, kernel.S_CAP], sl[i, kernel.S_G0] = pr, c, start - m
    active = np.uint64((1 << len(caps)) - 1)
    coef = decode_coefficients(p)
    if until is None:
        k_now, k_steps = kernel._decode_steps(steps, now, start, active, sl, *coef)
    else:
        k_now, k_steps = kernel._decode_until(until, now, start, active, sl, *coef)
    assert k_now == t
    assert [min(k_steps - int(sl[i, kernel.S_G0]), c) for i, c in enumerate(caps)] == got


@settings(max_examples=200, deadline=None)
@given(p=step_profiles(), b=st.integers(1, 64), c0=st.floats(0.0, 5e5), n=st.integers(0, 3000))
def test_without_a_knee_the_linear_model_is_unchanged(p: HardwareProfile, b: int, c0: float,
                                                      n: int) -> None:
    lin = dataclasses.replace(p, beta_above=0.0, host_per_step=0.0)
    first = lin.a + lin.beta * b + lin.gamma * c0  # the formula before the knee existed
    old = 0.0 if n <= 0 else n * first + lin.gamma * b * (n * (n - 1) / 2.0)
    assert steps_duration(lin, b, c0, n) == old
    assert lin.step_s(b, c0) == first


def test_the_knee_adds_per_sequence_time_above_the_knee_only() -> None:
    p = dataclasses.replace(BASE, a=0.01, beta=0.0, gamma=0.0, knee_batch=16, beta_above=1e-3)
    assert [p.step_s(b, 0.0) for b in (1, 16, 17, 32)] == pytest.approx([0.01, 0.01, 0.011, 0.026],
                                                                        rel=1e-12)
    arr = step_seconds(*decode_coefficients(p), np.array([1.0, 16.0, 17.0, 32.0]), 0.0)
    assert arr.tolist() == [p.step_s(b, 0.0) for b in (1, 16, 17, 32)]


def test_replay_engine_paces_a_knee_profile_with_the_same_function() -> None:
    p = dataclasses.replace(BASE, startup_s=0.0, knee_batch=4, beta_above=2e-3)
    want = p.prefill_s_per_token * 800 + steps_duration(p, 8, 800.0, 300)
    assert last_chunk_time(p) == want


def test_the_host_time_per_step_is_in_every_clock_but_not_in_the_engine_step() -> None:
    """`decode.host_per_step` (the live loop's host time, issue 15) adds to every decode step of
    the clocks, through `decode_coefficients`; the engine's own step (`step_s`, calibration
    points) stays as measured, and a profile without it is unchanged."""
    p = dataclasses.replace(BASE, a=0.004, beta=2e-5, gamma=0.0, host_per_step=0.0009)
    assert steps_duration(p, 15, 0.0, 100) == pytest.approx(100 * (0.0049 + 15 * 2e-5), rel=1e-12)
    assert p.step_s(15, 0.0) == pytest.approx(0.004 + 15 * 2e-5, rel=1e-12)
    assert decode_coefficients(dataclasses.replace(p, host_per_step=0.0)) == \
        timing.engine_coefficients(p)
    again = HardwareProfile.from_dict(p.to_dict())
    assert again.host_per_step == 0.0009 and "host_per_step" not in BASE.to_dict()["decode"]
    assert last_chunk_time(dataclasses.replace(p, startup_s=0.0)) == (
        p.prefill_s_per_token * 800 + steps_duration(p, 8, 800.0, 300))
    with pytest.raises(Exception, match="host_per_step"):
        dataclasses.replace(p, host_per_step=-1.0)


def test_each_admitted_request_costs_prefill_s_per_request_in_every_clock() -> None:
    """`prefill_s_per_request` (the engine's admission per request, issue 15) is charged per
    request admitted, on top of the per-token prefill, by the reference replay, the replay
    engine and the compiled function; 0 (every profile without it) leaves the prefill as it was
    to the bit."""
    p = dataclasses.replace(BASE, startup_s=0.0, prefill_s_per_request=0.0033)
    assert kernel._prefill_seconds.py_func is timing.prefill_seconds
    for tokens, requests in ((0, 0), (0, 3), (800, 8), (123, 1)):
        want = timing.prefill_seconds(p.prefill_s_per_token, 0.0033, tokens, requests)
        assert kernel._prefill_seconds(p.prefill_s_per_token, 0.0033, tokens, requests) == want
        assert timing.prefill_duration(BASE, tokens, requests) == (
            BASE.prefill_s_per_token * tokens if tokens > 0 else 0.0)
    assert timing.prefill_duration(p, 800, 8) == pytest.approx(
        p.prefill_s_per_token * 800 + 8 * 0.0033, rel=1e-12)
    assert HardwareProfile.from_dict(p.to_dict()).prefill_s_per_request == 0.0033
    assert "prefill_s_per_request" not in BASE.to_dict()
    assert last_chunk_time(p) == (timing.prefill_duration(p, 800, 8)
                                  + steps_duration(p, 8, 800.0, 300))
    with pytest.raises(Exception, match="prefill_s_per_request"):
        dataclasses.replace(p, prefill_s_per_request=-1.0)
