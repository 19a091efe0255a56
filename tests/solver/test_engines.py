"""CPU engines: one contract suite for every engine (replay, synthetic), then each one's specifics.

The replay engine must pace exactly like the simulator's time model and emit the recorded answers
where extraction finds them at their recorded token positions.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable

import numpy as np
import pytest
from replay_fixtures import flat_profile, problem, sample

from aimo.core.hardware import load_profile, pace_batch
from aimo.simulator.replay import recorded_draw
from aimo.solver.engines import (
    Chunk,
    EngineUnavailable,
    default_pace_profile,
    PromptSpec,
    ReplayEngine,
    SamplingSettings,
    SyntheticEngine,
    Wake,
    lmdeploy_engine_class,
    recorded_samples,
)
from aimo.solver.extraction import StreamingExtractor
from aimo.solver.loop import RecordedRunner
from aimo.solver.sandbox import SandboxPool

KINDS = ("cot", "code", "cot", "code")


def _prompts(kinds=KINDS) -> list[PromptSpec]:
    return [PromptSpec(i, k, "system", "question") for i, k in enumerate(kinds)]  # type: ignore[arg-type]


def _replay_problem():
    return problem("p0", 7, [
        sample(0, "cot", 300, [(45, 7, "boxed"), (250, 8, "boxed")], prompt_tokens=100),
        sample(1, "code", 500, [(60, 7, "code", True, 300.0), (400, None, "boxed")], prompt_tokens=120),
        sample(2, "cot", 90, [(90, 3, "boxed")], prompt_tokens=100),
        sample(3, "code", 1000, [(10, None, "code", False, 50.0)], finish="length", prompt_tokens=80),
    ])


def _replay_engine(**kw) -> ReplayEngine:
    profile = kw.pop("profile", flat_profile(0.01, beta=0.001, gamma=1e-6))
    return ReplayEngine([_replay_problem()], profile, chunk_tokens=20, **kw)


def _synthetic_engine(**kw) -> SyntheticEngine:
    return SyntheticEngine(seed=3, model=dataclasses.replace(default_pace_profile(), max_batch=kw.pop("max_batch", 32)), chunk_tokens=20, **kw)


ENGINES: dict[str, Callable[..., object]] = {"replay": _replay_engine, "synthetic": _synthetic_engine}


async def _collect(stream, on_chunk=None) -> list:
    items = []
    async for item in stream:
        items.append(item)
        if on_chunk is not None:
            await on_chunk(stream, item)
    return items


def _run(engine, on_chunk=None, *, max_new_tokens: int = 16384, kinds=KINDS) -> list:
    async def go():
        stream = await engine.start_question("p0", "question", _prompts(kinds),
                                             SamplingSettings(max_new_tokens=max_new_tokens))
        return await _collect(stream, on_chunk)
    return asyncio.run(go())


# ------------------------------------------------------------------------------ shared contract


@pytest.fixture(params=sorted(ENGINES))
def make_engine(request):
    return ENGINES[request.param]


def test_each_sample_ends_once_with_monotone_tokens_and_times(make_engine) -> None:
    chunks = [c for c in _run(make_engine()) if isinstance(c, Chunk)]
    for i in range(len(KINDS)):
        mine = [c for c in chunks if c.sample == i]
        assert mine, f"sample {i} produced nothing"
        assert [c.finish_reason is not None for c in mine] == [False] * (len(mine) - 1) + [True]
        assert all(a.n_tokens <= b.n_tokens for a, b in zip(mine, mine[1:]))
    times = [c.t for c in chunks]
    assert times == sorted(times)


def test_chunks_end_on_the_grid_except_answers_and_ends(make_engine) -> None:
    chunks = [c for c in _run(make_engine()) if isinstance(c, Chunk)]
    off_grid = [c for c in chunks if c.n_tokens % 20 and c.finish_reason is None]
    for c in off_grid:  # only chunks that carry an answer or a code block end off the grid
        assert "oxed{" in c.text or "```python" in c.text


def test_cancel_takes_effect_before_the_next_chunk(make_engine) -> None:
    seen_after: list[Chunk] = []

    async def on_chunk(stream, item):
        if isinstance(item, Chunk) and item.sample == 0 and item.n_tokens == 40:
            await stream.cancel(0)
            seen_after.append(item)
        elif seen_after and isinstance(item, Chunk) and item.sample == 0:
            seen_after.append(item)

    _run(make_engine(), on_chunk)
    assert len(seen_after) == 2
    abort = seen_after[1]
    assert abort.finish_reason == "abort" and abort.n_tokens == 40


def test_cancel_all_ends_every_sample_and_the_stream(make_engine) -> None:
    async def on_chunk(stream, item):
        if isinstance(item, Chunk) and item.n_tokens == 20 and item.sample == 1:
            await stream.cancel_all()

    items = _run(make_engine(), on_chunk)
    last = {}
    for c in items:
        if isinstance(c, Chunk):
            last[c.sample] = c
    assert set(last) == set(range(len(KINDS)))
    cut = items.index(next(c for c in items if isinstance(c, Chunk) and c.sample == 1 and c.n_tokens == 20))
    after = [c for c in items[cut + 1:] if isinstance(c, Chunk)]
    assert after and all(c.finish_reason == "abort" for c in after)


def test_restart_mid_question_leaves_a_working_engine(make_engine) -> None:
    engine = make_engine()

    async def go():
        stream = await engine.start_question("p0", "question", _prompts(KINDS), SamplingSettings())
        async for _ in stream:
            break  # a question abandoned mid-stream (a hang), then the restart hook
        await engine.restart()
        return await _collect(await engine.start_question("p0", "question", _prompts(KINDS), SamplingSettings()))

    again = [c for c in asyncio.run(go()) if isinstance(c, Chunk)]
    assert again == [c for c in _run(make_engine()) if isinstance(c, Chunk)]


def test_finite_speedup_sleeps_virtual_over_speedup(make_engine) -> None:
    virtual = [c for c in _run(make_engine()) if isinstance(c, Chunk)][-1].t
    speedup = virtual / 0.4  # aim at 0.4 s of wall time
    t0 = time.monotonic()
    _run(make_engine(speedup=speedup))
    assert time.monotonic() - t0 >= 0.35  # it slept (a floor; how fast it is, is not asserted)


def test_max_batch_queues_samples_until_a_slot_frees(make_engine) -> None:
    if make_engine is _replay_engine:
        engine = _replay_engine(profile=flat_profile(0.01, max_batch=2))
    else:
        engine = _synthetic_engine(max_batch=2)
    chunks = [c for c in _run(engine) if isinstance(c, Chunk)]
    ends = sorted(c.t for c in chunks if c.finish_reason)
    first = {i: min(c.t for c in chunks if c.sample == i) for i in range(len(KINDS))}
    assert sorted(first.values())[2] >= ends[0] - 1e-9  # the third sample starts after the first end


def test_lmdeploy_absent_is_reported_with_the_gpu_extra() -> None:
    try:
        lmdeploy_engine_class()
    except EngineUnavailable as exc:
        assert "[gpu]" in str(exc)


# ------------------------------------------------------------------------------ replay engine


def test_replay_paces_like_the_simulator_time_model() -> None:
    profile = dataclasses.replace(load_profile("l4x4-14b-w4kv8"), startup_s=0.0)
    traces = [sample(i, "cot", n, prompt_tokens=150) for i, n in enumerate((400, 1000, 700))]
    engine = ReplayEngine([problem("p0", None, traces)], profile, chunk_tokens=20)
    chunks = [c for c in _run(engine, kinds=("cot",) * 3) if isinstance(c, Chunk)]
    expected = pace_batch(profile, [150] * 3, [400, 1000, 700])
    for c in chunks:
        assert c.t == pytest.approx(expected[c.sample][c.n_tokens - 1], rel=1e-9)


def test_replay_extraction_finds_recorded_answers_at_recorded_tokens() -> None:
    chunks = [c for c in _run(_replay_engine()) if isinstance(c, Chunk)]
    extractors = {i: StreamingExtractor("exact") for i in range(len(KINDS))}
    found: dict[int, list[tuple[int, int | None]]] = {i: [] for i in extractors}
    blocks: dict[int, list[int]] = {i: [] for i in extractors}
    for c in chunks:
        got = extractors[c.sample].feed(c.text, c.n_tokens)
        found[c.sample].extend((a.token, a.value) for a in got.answers)
        blocks[c.sample].extend(b.token for b in got.code_blocks)
    assert found[0] == [(45, 7), (250, 8)]
    assert found[1] == [(400, None)] and blocks[1] == [60]
    assert found[2] == [(90, 3)]
    assert blocks[3] == [10]


def test_replay_token_cap_ends_with_length_and_drops_later_answers() -> None:
    chunks = [c for c in _run(_replay_engine(), max_new_tokens=200) if isinstance(c, Chunk)]
    ends = {c.sample: c for c in chunks if c.finish_reason}
    assert (ends[0].n_tokens, ends[0].finish_reason) == (200, "length")
    assert (ends[2].n_tokens, ends[2].finish_reason) == (90, "stop")
    assert "oxed{8}" not in "".join(c.text for c in chunks if c.sample == 0)


def test_replay_cancel_speeds_up_the_rest() -> None:
    profile = flat_profile(0.01, beta=0.01)  # step = 0.01 + 0.01·b
    engine = ReplayEngine([problem("p0", None, [sample(0, "cot", 2000), sample(1, "cot", 2000)])],
                          profile, chunk_tokens=100)

    async def on_chunk(stream, item):
        if isinstance(item, Chunk) and item.sample == 0 and item.n_tokens == 100:
            await stream.cancel(0)

    chunks = [c for c in _run(engine, on_chunk, kinds=("cot", "cot")) if isinstance(c, Chunk)]
    end = next(c for c in chunks if c.sample == 1 and c.finish_reason)
    assert end.t == pytest.approx(100 * 0.03 + 1900 * 0.02)


def test_replay_code_results_come_from_the_recording_on_the_virtual_clock() -> None:
    extractors = {i: StreamingExtractor("exact") for i in range(len(KINDS))}
    runs: dict[int, tuple[float, object]] = {}
    wakes: list[float] = []

    async def on_chunk(stream, item):
        if isinstance(item, Wake):
            wakes.append(item.t)
            return
        for block in extractors[item.sample].feed(item.text, item.n_tokens).code_blocks:
            runs[item.sample] = (stream.now(), RecordedRunner().submit(block.code, sample=item.sample, stream=stream))

    _run(_replay_engine(), on_chunk)
    t1, r1 = runs[1]
    assert (r1.result().value, r1.result().ok) == (7, True)
    assert r1.ready_at == pytest.approx(t1 + 0.3)
    assert any(w == pytest.approx(t1 + 0.3) for w in wakes)
    _, r3 = runs[3]
    assert (r3.result().value, r3.result().ok) == (-1, False)


def test_replay_serial_code_pauses_the_batch() -> None:
    profile = flat_profile(0.01, overlap="serial")
    engine = ReplayEngine([problem("p0", None, [sample(0, "code", 200, [(20, 5, "code", True, 1000.0)]),
                                                sample(1, "cot", 200)])], profile, chunk_tokens=20)

    async def on_chunk(stream, item):
        if isinstance(item, Chunk) and item.sample == 0:
            got = StreamingExtractor("exact").feed(item.text, item.n_tokens)
            for block in got.code_blocks:
                RecordedRunner().submit(block.code, sample=0, stream=stream)

    chunks = [c for c in _run(engine, on_chunk, kinds=("code", "cot")) if isinstance(c, Chunk)]
    end = next(c for c in chunks if c.sample == 1 and c.finish_reason)
    assert end.t == pytest.approx(2.0 + 1.0)


def test_recorded_samples_match_the_simulator_draw() -> None:
    p = problem("p", None, [sample(i, "cot", 10) for i in range(3)] + [sample(3, "code", 10)])
    kinds = ["cot", "code", "cot", "code", "cot", "cot"]
    assert [t.sample for t in recorded_samples(p, kinds)] == [t.sample for t in recorded_draw(p).take(kinds)]
    only_cot = problem("q", None, [sample(0, "cot", 10), sample(1, "cot", 10)])
    assert [t.sample for t in recorded_samples(only_cot, kinds)] == \
        [t.sample for t in recorded_draw(only_cot).take(kinds)]


def test_replay_unknown_question_is_an_input_error() -> None:
    from aimo.core.errors import InputError

    with pytest.raises(InputError, match="no recorded question"):
        asyncio.run(_replay_engine().start_question("nope", "", _prompts(), SamplingSettings()))


# ------------------------------------------------------------------------------ synthetic engine


def test_synthetic_is_a_pure_function_of_seed_and_ids() -> None:
    def texts(seed: int) -> list[tuple[int, int, str]]:
        engine = SyntheticEngine(seed=seed, chunk_tokens=20)
        return [(c.sample, c.n_tokens, c.text) for c in _run(engine) if isinstance(c, Chunk)]

    assert texts(1) == texts(1)
    assert texts(1) != texts(2)


def test_synthetic_code_prints_what_its_recording_says() -> None:
    engine = SyntheticEngine(seed=5, chunk_tokens=20)
    scripts = engine.scripts("p0", _prompts(("code",) * 6))
    pairs = [pair for s in scripts for pair in s.code]
    assert pairs
    with SandboxPool(1) as pool:
        from aimo.solver.extraction import prepare_code
        from aimo.solver.loop import outcome_of

        for code, recorded in pairs[:1]:
            out = outcome_of(pool.submit(prepare_code(code)).result())
            assert (out.value, out.ok) == (recorded.value, recorded.ok)


def test_synthetic_answers_cluster_on_the_truth() -> None:
    engine = SyntheticEngine(answers={"p0": 123}, seed=0, chunk_tokens=20)
    scripts = engine.scripts("p0", _prompts(("cot",) * 40))
    values = [int(t.split("{")[1].split("}")[0]) for s in scripts for _, t in s.inserts if "oxed{" in t]
    counts = np.bincount(values, minlength=1000)
    assert int(np.argmax(counts)) == 123


def test_default_pace_profile_is_the_l4_profile_without_startup() -> None:
    p = load_profile("l4x4-14b-w4kv8")
    m = default_pace_profile()
    assert m == dataclasses.replace(p, startup_s=0.0)
