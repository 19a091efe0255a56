"""lmdeploy adapter logic on CPU, against a test double of lmdeploy injected into sys.modules.

Real lmdeploy cannot run here (it needs a GPU); `tests/helpers/fake_lmdeploy.py` mimics the
behaviours the adapter relies on. The real path runs on the GPU machine (scripts/device_smoke.py,
docs/gpu-notes.md).
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections import defaultdict

import pytest
from fake_lmdeploy import (
    FakeTokenizer,
    PytorchEngineConfig,
    TurbomindEngineConfig,
    make_fake_lmdeploy,
)

from aimo.solver.engines.base import Chunk, PromptSpec, SamplingSettings
from aimo.solver.engines.lmdeploy_engine import (
    GPU_EXTRA_INSTALL,
    LmdeployEngine,
    LmdeployUnavailableError,
    render_prompt,
)

SAMPLING = SamplingSettings(max_new_tokens=30, seed=7)


def specs(n: int, first: int = 0) -> list[PromptSpec]:
    kinds = ("cot", "code")
    return [
        PromptSpec(first + i, kinds[i % 2], f"system {kinds[i % 2]}", "What is 1+1?")
        for i in range(n)
    ]


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch):
    module = make_fake_lmdeploy(tokenizer=FakeTokenizer())
    monkeypatch.setitem(sys.modules, "lmdeploy", module)
    return module


def engine(backend: str = "pytorch", **kw) -> LmdeployEngine:
    return LmdeployEngine("/models/tiny", backend, tp=1, **kw)  # type: ignore[arg-type]


async def collect(stream, on_chunk=None) -> list[Chunk]:
    out = []
    async for chunk in stream:
        out.append(chunk)
        if on_chunk is not None:
            await on_chunk(chunk)
    return out


def by_sample(chunks: list[Chunk]) -> dict[int, list[Chunk]]:
    out: dict[int, list[Chunk]] = defaultdict(list)
    for c in chunks:
        out[c.sample].append(c)
    return dict(out)


def test_stream_chunks_are_tagged_with_sample_tokens_and_time(fake) -> None:
    async def main():
        eng = engine()
        stream = await eng.start_question("q1", "What is 1+1?", specs(4, first=10), SAMPLING)
        chunks = await collect(stream)
        await eng.close()
        return eng, stream, chunks

    _, stream, chunks = asyncio.run(main())
    per = by_sample(chunks)
    assert sorted(per) == [10, 11, 12, 13]  # PromptSpec.sample, not the prompt position
    for sample, cs in per.items():
        assert [c.n_tokens for c in cs] == list(range(1, 31))
        assert all(c.finish_reason is None for c in cs[:-1])
        assert cs[-1].finish_reason == "length"
        assert "".join(c.text for c in cs) == "".join(f"w{k} " for k in range(30))
        times = [c.t for c in cs]
        assert times == sorted(times) and times[0] >= 0.0
        assert stream.prompt_tokens(sample) and stream.prompt_tokens(sample) > 0
    assert stream.now() >= max(c.t for c in chunks)
    assert fake.built[0].closed


def test_sampling_and_engine_settings_reach_lmdeploy(fake) -> None:
    async def main():
        eng = engine("pytorch", quant_policy=8, max_batch=16, cache_max_entry_count=0.5)
        stream = await eng.start_question("q", "Q", specs(2, first=3), SAMPLING)
        await collect(stream)
        await eng.close()
        return eng

    eng = asyncio.run(main())
    pipe = fake.built[0]
    cfg = pipe.backend_config
    assert isinstance(cfg, PytorchEngineConfig)
    assert cfg.kwargs == dict(
        tp=1,
        quant_policy=8,
        max_batch_size=16,
        session_len=32768 + 8192 + 128,
        cache_max_entry_count=0.5,
        max_prefill_token_num=8192,
        enable_prefix_caching=True,
    )
    call = pipe.calls[0]
    g = call["gen_config"][0]
    assert (
        g.do_sample,
        g.temperature,
        g.top_p,
        g.min_p,
        g.repetition_penalty,
        g.max_new_tokens,
    ) == (True, 0.9, 0.95, 0.1, 1.05, 30)
    assert [c.random_seed for c in call["gen_config"]] == [10, 11]  # seed + sample index
    assert len({id(s) for s in call["sessions"]}) == 2
    assert eng.run_config()["backend"] == "pytorch" and eng.quantization == "awq-w4/kv8"


def test_turbomind_config_carries_model_format(fake) -> None:
    eng = engine("turbomind", model_format="awq")
    cfg = fake.built[0].backend_config
    assert isinstance(cfg, TurbomindEngineConfig) and cfg.model_format == "awq"
    assert eng.backend == "turbomind" and not eng.fell_back


def test_silent_turbomind_fallback_is_detected(monkeypatch: pytest.MonkeyPatch, caplog) -> None:
    monkeypatch.setitem(sys.modules, "lmdeploy", make_fake_lmdeploy(turbomind_available=False))
    with caplog.at_level(logging.WARNING, logger="aimo.solver.engines.lmdeploy_engine"):
        eng = engine("turbomind")
    assert eng.requested_backend == "turbomind"
    assert eng.backend == "pytorch" and eng.fell_back
    assert eng.run_config()["requested_backend"] == "turbomind"
    assert any("runs pytorch" in r.getMessage() for r in caplog.records)


def test_missing_lmdeploy_names_the_gpu_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "lmdeploy", None)  # makes `import lmdeploy` raise ImportError
    with pytest.raises(LmdeployUnavailableError) as info:
        engine()
    assert "[gpu]" in str(info.value) and GPU_EXTRA_INSTALL in str(info.value)
    assert isinstance(info.value, ImportError)


def test_cancel_aborts_that_sample_only(fake) -> None:
    async def main():
        eng = engine()
        stream = await eng.start_question("q", "Q", specs(4), SamplingSettings(max_new_tokens=200))

        async def on_chunk(c: Chunk) -> None:
            if c.sample == 1 and c.n_tokens == 5:
                await stream.cancel(1)
                await stream.cancel(1)  # idempotent

        chunks = await collect(stream, on_chunk)
        await eng.close()
        return fake.built[0], stream, chunks

    pipe, _, chunks = asyncio.run(main())
    per = by_sample(chunks)
    assert per[1][-1].finish_reason == "abort"
    assert per[1][-1].n_tokens < 200
    assert [c.finish_reason for c in per[1]].count("abort") == 1
    for s in (0, 2, 3):
        assert per[s][-1].finish_reason == "length" and per[s][-1].n_tokens == 200
    assert pipe.sessions[1].aborted and pipe.sessions[1].abort_calls >= 1
    assert not any(pipe.sessions[i].abort_calls for i in (0, 2, 3))


def test_cancel_returns_before_lmdeploy_has_handled_the_abort(fake) -> None:
    """`session.abort()` returns only after lmdeploy's engine loop handled it (~a step: on the
    H100 runs each sample stop held the control loop 10-30 ms, and a question's seven in a row
    delayed its stop decision by 86 ms, 10 tokens, enough to reach a code block the simulator's
    samples did not: docs/hil.md). The loop must not wait for it: `cancel` returns at once, the
    abort is carried out behind it and the sample still ends with 'abort'."""
    import threading

    fake.abort_gate = gate = threading.Event()

    async def main():
        eng = engine()
        stream = await eng.start_question("q", "Q", specs(3), SamplingSettings(max_new_tokens=400))
        returned: list[bool] = []

        async def on_chunk(c: Chunk) -> None:
            if c.sample == 1 and c.n_tokens == 5 and not returned:
                # bounded only so a regression fails instead of hanging: the gate is still shut
                try:
                    await asyncio.wait_for(stream.cancel(1), timeout=10)
                    returned.append(not gate.is_set())
                finally:
                    gate.set()

        chunks = await collect(stream, on_chunk)
        await eng.close()
        return fake.built[0], chunks, returned

    try:
        pipe, chunks, returned = asyncio.run(main())
    finally:
        gate.set()  # a failure above must not leave an abort thread blocked
    assert returned == [True]  # cancel came back while lmdeploy still held the abort
    per = by_sample(chunks)
    assert per[1][-1].finish_reason == "abort" and per[1][-1].n_tokens < 400
    assert pipe.sessions[1].aborted
    assert per[0][-1].finish_reason == per[2][-1].finish_reason == "length"


def test_an_abort_in_flight_is_not_reissued_on_top_of_itself(fake) -> None:
    """While lmdeploy still holds a sample's abort, the sample's further output does not queue
    more aborts behind it (each would hold an abort thread); once it returns it takes."""
    import threading

    fake.abort_gate = gate = threading.Event()
    fake.step_s = 0.002

    async def main():
        eng = engine()
        stream = await eng.start_question("q", "Q", specs(2), SamplingSettings(max_new_tokens=2000))
        seen = {"after": 0}

        async def on_chunk(c: Chunk) -> None:
            if c.sample == 1 and c.n_tokens >= 5 and not seen["after"]:
                await asyncio.wait_for(stream.cancel(1), timeout=10)  # fails, never hangs
                seen["after"] = 1
            elif c.sample == 1 and seen["after"]:
                seen["after"] += 1  # output while the abort is held (re-issue wanted by the old code)
                if seen["after"] == 60:
                    gate.set()

        chunks = await collect(stream, on_chunk)
        await eng.close()
        return fake.built[0], stream, chunks, seen

    try:
        pipe, stream, chunks, seen = asyncio.run(main())
    finally:
        gate.set()
    assert seen["after"] >= 60  # it kept decoding for many re-issue intervals while held
    assert by_sample(chunks)[1][-1].finish_reason == "abort"
    assert pipe.sessions[1].abort_calls == 1 and stream.abort_counts()[1] == 1


def test_cancel_of_a_queued_request_is_reissued_once_it_runs(fake) -> None:
    """lmdeploy ignores abort() for a request still waiting for a slot; the adapter re-issues it."""
    fake.step_s = 0.002

    async def main():
        eng = engine(max_batch=2)
        stream = await eng.start_question("q", "Q", specs(4), SamplingSettings(max_new_tokens=60))
        await stream.cancel(3)  # waits behind samples 0 and 1
        chunks = await collect(stream)
        await eng.close()
        return fake.built[0], stream, chunks

    pipe, stream, chunks = asyncio.run(main())
    per = by_sample(chunks)
    assert per[3][-1].finish_reason == "abort"
    assert per[3][-1].n_tokens < 60
    session = pipe.sessions[3]
    # the first abort was lost, a later one took
    assert session.noop_aborts >= 1 and session.aborted
    assert stream.abort_counts()[3] >= 2
    assert (
        per[0][-1].finish_reason == per[1][-1].finish_reason == per[2][-1].finish_reason == "length"
    )


def test_cancel_all_ends_every_sample_with_abort(fake) -> None:
    async def main():
        eng = engine(max_batch=3)
        stream = await eng.start_question(
            "q", "Q", specs(5), SamplingSettings(max_new_tokens=10_000)
        )

        async def on_chunk(c: Chunk) -> None:
            if c.n_tokens == 3 and c.sample == 0:
                await stream.cancel_all()

        chunks = await collect(stream, on_chunk)
        await eng.close()
        return chunks

    per = by_sample(asyncio.run(main()))
    assert sorted(per) == [0, 1, 2, 3, 4]
    assert all(cs[-1].finish_reason == "abort" and cs[-1].n_tokens < 10_000 for cs in per.values())


def test_a_new_question_shuts_the_abandoned_batch_down(fake) -> None:
    async def main():
        eng = engine(max_batch=2)
        first = await eng.start_question(
            "q1", "Q", specs(3), SamplingSettings(max_new_tokens=100_000)
        )
        async for c in first:
            if c.n_tokens >= 2:
                break  # the consumer walks away mid-stream
        second = await eng.start_question("q2", "Q", specs(2), SamplingSettings(max_new_tokens=5))
        assert first.finished
        chunks = await collect(second)
        await eng.close()
        return fake.built[0], chunks

    pipe, chunks = asyncio.run(main())
    assert all(s.aborted for s in pipe.sessions[:3])
    assert {c.sample for c in chunks if c.finish_reason == "length"} == {0, 1}


def test_chat_template_rendering() -> None:
    spec = PromptSpec(0, "cot", "Be brief.", "What is 2+2?")
    text, pre = render_prompt(spec, FakeTokenizer())
    assert (text, pre) == ("<|system|>Be brief.<|user|>What is 2+2?<|assistant|>", False)
    messages, pre = render_prompt(spec, None)  # no template: lmdeploy applies the model's own
    assert pre is True and messages == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "What is 2+2?"},
    ]
    assert render_prompt(PromptSpec(0, "cot", "", "Q"), None)[0] == [
        {"role": "user", "content": "Q"}
    ]


def test_prompts_go_through_the_model_tokenizer_template(fake) -> None:
    async def main():
        eng = engine()
        await collect(
            await eng.start_question("q", "Q", specs(2), SamplingSettings(max_new_tokens=2))
        )
        await eng.close()

    asyncio.run(main())
    call = fake.built[0].calls[0]
    assert call["do_preprocess"] is False
    assert call["prompts"][0] == "<|system|>system cot<|user|>What is 1+1?<|assistant|>"
    assert call["prompts"][1].startswith("<|system|>system code")


def test_duplicate_sample_indices_are_refused(fake) -> None:
    async def main():
        eng = engine()
        with pytest.raises(ValueError, match="duplicate"):
            await eng.start_question("q", "Q", [specs(1)[0], specs(1)[0]], SAMPLING)
        await eng.close()

    asyncio.run(main())


def test_import_solver_does_not_import_lmdeploy() -> None:
    import subprocess

    code = "import solver.engines.lmdeploy_engine, sys; assert 'lmdeploy' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_generation_overrides_reach_every_request(fake) -> None:
    async def main():
        eng = engine(generation_overrides={"ignore_eos": True})
        await collect(
            await eng.start_question("q", "Q", specs(2), SamplingSettings(max_new_tokens=3))
        )
        eng.generation_overrides = {}
        await collect(
            await eng.start_question("q2", "Q", specs(1), SamplingSettings(max_new_tokens=3))
        )
        await eng.close()

    asyncio.run(main())
    first, second = fake.built[0].calls
    assert [g.ignore_eos for g in first["gen_config"]] == [True, True]
    assert second["gen_config"][0].ignore_eos is False


def test_reissued_aborts_back_off_while_the_request_waits(fake) -> None:
    """A cancelled request queued for long is not re-aborted every 50 ms the whole time."""
    fake.step_s = 0.005

    async def main():
        eng = engine(max_batch=1)
        stream = await eng.start_question("q", "Q", specs(2), SamplingSettings(max_new_tokens=120))
        await stream.cancel(1)  # behind sample 0 for ~0.6 s
        chunks = await collect(stream)
        await eng.close()
        return stream, chunks

    stream, chunks = asyncio.run(main())
    per = by_sample(chunks)
    assert per[1][-1].finish_reason == "abort" and per[1][-1].n_tokens <= 2
    assert 2 <= stream.abort_counts()[1] <= 8


# --------------------------------------------------------------------------- logprobs (issue 17)


def test_logprobs_build_the_pytorch_engine_with_raw_mode_and_ride_on_chunks(fake) -> None:
    from fake_lmdeploy import default_logprob_script

    from aimo.core.traces import LogprobSetting

    async def main():
        eng = engine("pytorch", logprobs=3)
        stream = await eng.start_question("q", "Q", specs(2), SAMPLING)
        chunks = await collect(stream)
        await eng.close()
        return eng, chunks

    eng, chunks = asyncio.run(main())
    pipe = fake.built[0]
    assert pipe.backend_config.kwargs["logprobs_mode"] == "raw_logprobs"
    assert [g.logprobs for g in pipe.calls[0]["gen_config"]] == [3, 3]
    assert eng.logprob_setting == LogprobSetting(3, "raw_logprobs", "pytorch")
    assert eng.run_config()["logprobs"] == 3
    for sample, cs in by_sample(chunks).items():
        steps = [d for c in cs if c.logprobs for d in c.logprobs]
        assert steps == [default_logprob_script(sample, p, 3) for p in range(30)]  # one a token


def test_without_logprobs_nothing_is_asked_and_chunks_carry_none(fake) -> None:
    async def main():
        eng = engine("pytorch")
        chunks = await collect(await eng.start_question("q", "Q", specs(1), SAMPLING))
        await eng.close()
        return eng, chunks

    eng, chunks = asyncio.run(main())
    assert "logprobs_mode" not in fake.built[0].backend_config.kwargs
    assert fake.built[0].calls[0]["gen_config"][0].logprobs is None
    assert eng.logprob_setting is None and all(c.logprobs is None for c in chunks)


def test_turbomind_logprobs_are_marked_processed(fake) -> None:
    eng = engine("turbomind", logprobs=8)
    assert "logprobs_mode" not in fake.built[0].backend_config.kwargs
    assert eng.logprob_setting is not None and eng.logprob_setting.mode == "processed"


@pytest.mark.parametrize("k", [-1, 1025])
def test_bad_logprobs_setting_is_refused(fake, k: int) -> None:
    with pytest.raises(ValueError, match="logprobs"):
        engine("pytorch", logprobs=k)
def test_restart_after_a_hung_abort_gives_a_working_engine(fake, monkeypatch: pytest.MonkeyPatch) -> None:
    """An abort that never returns hangs the next start_question (it waits for the abandoned
    batch; `cancel_all` itself returns once the aborts are issued); `restart` abandons the
    pipeline (its close hangs too) and builds a new one."""
    import threading

    from fake_lmdeploy import FakePipeline, FakeSession

    stuck = threading.Event()
    real_abort = FakeSession.abort
    monkeypatch.setattr(FakeSession, "abort", lambda self: stuck.wait(60))
    monkeypatch.setattr(FakePipeline, "close", lambda self: stuck.wait(60))

    async def main():
        eng = engine(max_batch=2)
        first = await eng.start_question("q1", "Q", specs(2), SamplingSettings(max_new_tokens=100_000))
        async for c in first:
            if c.n_tokens >= 2:
                break
        # asyncio.wait, not wait_for: a deadline must not depend on the hung call honouring
        # its cancellation (Python < 3.12's wait_for can swallow it)
        hung_cancel = asyncio.ensure_future(first.cancel_all())
        hung_start = asyncio.ensure_future(eng.start_question("q2", "Q", specs(2), SAMPLING))
        done, _ = await asyncio.wait({hung_cancel, hung_start}, timeout=0.5)
        assert done == {hung_cancel}  # the aborts are issued (and hang); the next question waits
        monkeypatch.setattr(FakeSession, "abort", real_abort)  # the new pipeline's sessions work
        await asyncio.wait_for(eng.restart(close_timeout_s=0.2), 5.0)
        second = await eng.start_question("q3", "Q", specs(2), SamplingSettings(max_new_tokens=5))
        chunks = await collect(second)
        stuck.set()  # let the old pipeline's calls return
        await asyncio.wait({hung_cancel, hung_start}, timeout=10)
        for task in (hung_cancel, hung_start):
            task.cancel()
        return eng, chunks

    try:
        eng, chunks = asyncio.run(main())
    finally:
        stuck.set()
    assert eng.restarts == 1 and len(fake.built) == 2
    assert {c.sample for c in chunks if c.finish_reason == "length"} == {0, 1}
