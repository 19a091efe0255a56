"""The real lmdeploy path end to end (was scripts/device_smoke.py): the adapter's streaming and
aborts, `aimo record` with resume, the live control loop's timeout cancels, `aimo solve`'s runner
recording a solve run, and the TurboMind request that falls back to PyTorch. Figures (tokens/s,
abort latency) are not asserted: docs/gpu-notes.md reports what was measured."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from aimo.core.policy import load_policy, sample_kinds
from aimo.data import PROBLEMS_DIR
from aimo.recorder.record import load_problems, prompt_specs, run_record
from aimo.solver.engines.base import Chunk, PromptSpec, SamplingSettings

pytestmark = pytest.mark.gpu

PROBLEMS = PROBLEMS_DIR / "smoke.csv"  # 4 easy questions
FIXED = {"ignore_eos": True}  # the random model emits EOS early: fixed lengths where it matters


@contextlib.contextmanager
def overrides(engine: Any, values: dict[str, Any]) -> Iterator[None]:
    """The engine's generation overrides for one check, restored after it."""
    saved = engine.generation_overrides
    engine.generation_overrides = dict(values)
    try:
        yield
    finally:
        engine.generation_overrides = saved


def specs(n: int, question: str) -> list[PromptSpec]:
    """The seed's prompts, cot and code alternating."""
    kinds = [("cot", "code")[i % 2] for i in range(n)]
    return prompt_specs(load_policy("seed-2nd-place"), kinds, question)


def test_engine_runs_on_pytorch(engine: Any) -> None:
    assert engine.backend == "pytorch" and not engine.fell_back
    assert engine.startup_s > 0
    assert engine.run_config()["backend"] == "pytorch"


def test_stream_tags_samples_and_aborts_a_running_and_a_queued_sample(engine: Any) -> None:
    """20 prompts with max_batch 16: every chunk names its sample with cumulative tokens; a running
    sample cancelled at 40 tokens and a queued one cancelled at once both end `abort` (the queued
    one through the adapter's re-issued abort); the rest run to their end."""
    n, running, queued, cut = 20, 2, 19, 40

    async def go() -> dict[int, list[Chunk]]:
        stream = await engine.start_question(
            "stream-check", "What is 17 + 25?", specs(n, "What is 17 + 25?"),
            SamplingSettings(max_new_tokens=300, seed=0))
        await stream.cancel(queued)
        cancelled = False
        per: dict[int, list[Chunk]] = defaultdict(list)
        async for c in stream:
            per[c.sample].append(c)
            if c.sample == running and not cancelled and c.n_tokens >= cut:
                cancelled = True
                await stream.cancel(running)
        return per

    with overrides(engine, FIXED):
        per = asyncio.run(go())
    assert sorted(per) == list(range(n))
    for chunks in per.values():
        tokens = [c.n_tokens for c in chunks]
        assert tokens == sorted(tokens)
        assert all(c.finish_reason is None for c in chunks[:-1])
    ends = {s: chunks[-1].finish_reason for s, chunks in per.items()}
    assert ends[running] == "abort" and ends[queued] == "abort"
    assert all(ends[s] in ("length", "stop") for s in per if s not in (running, queued))
    assert per[running][-1].n_tokens < 300


def test_record_then_resume_has_nothing_left(engine: Any, model_dir: Path, tmp_path: Path) -> None:
    """`aimo record`'s code path (natural ends) into a store, then a rerun that resumes with
    every question done; the compact copy holds the same run."""
    from aimo.core.store import list_runs
    from aimo.core.store.compact import compact_copy

    store = tmp_path / "gpu-smoke.duckdb"
    kw: dict[str, Any] = dict(prompts="cot:2,code:2", max_new_tokens=256, engine=engine,
                              run_id="gpu-smoke", show_progress=False)
    with overrides(engine, {}):
        summary = run_record(PROBLEMS, str(model_dir), "pytorch", 4, store, **kw)
        again = run_record(PROBLEMS, str(model_dir), "pytorch", 4, store, **kw)
    problems = [p.problem_id for p in load_problems(PROBLEMS)]
    assert sorted(summary.written) == sorted(problems)
    assert list(again.written) == [] and sorted(again.skipped) == sorted(problems)
    (run,) = list_runs(store)
    assert (run.status, run.n_problems, run.n_samples) == ("complete", 4, 16)
    assert run.backend == "pytorch" and run.n_tokens > 0
    compact = tmp_path / "compact.duckdb"
    compact_copy(store, compact)
    assert [(r.run_id, r.n_samples, r.n_tokens) for r in list_runs(compact)] == [
        ("gpu-smoke", 16, run.n_tokens)]


def test_control_loop_timeout_cancels_the_running_samples(engine: Any) -> None:
    """The live loop with the seed preset and a 2 s question timeout: with a random model no
    answer ever agrees, so the timeout stops the question and the loop's cancels end every
    sample that was still running."""
    from aimo.solver.loop.control import run_question
    from aimo.solver.loop.runners import SandboxRunner
    from aimo.solver.sandbox import SandboxPool

    policy = load_policy("seed-2nd-place")
    level = dataclasses.replace(policy.level(policy.schedule.start_level), timeout_s=2.0,
                                early_timeouts=())
    kinds = sample_kinds(policy.samples, level.samples)
    problem = load_problems(PROBLEMS)[0]
    sampling = SamplingSettings(temperature=policy.generation.temperature,
                                top_p=policy.generation.top_p, min_p=policy.generation.min_p,
                                max_new_tokens=8000)

    async def go() -> Any:
        with SandboxPool(2) as pool:
            stream = await engine.start_question(
                problem.problem_id, problem.question,
                prompt_specs(policy, kinds, problem.question), sampling)
            return await run_question(stream, policy, level, kinds, SandboxRunner(pool))

    with overrides(engine, FIXED):
        outcome = asyncio.run(go())
    assert outcome.stop_reason == "timeout"
    assert len(outcome.samples) == len(kinds)
    assert all(s.end != "length" for s in outcome.samples)  # none ran out: all were stopped
    assert any(s.end == "question_stop" for s in outcome.samples)


def test_solve_runner_records_a_solve_run(model_dir: Path, tmp_path: Path) -> None:
    """`aimo solve`'s runner with the seed preset on its own engine, recorded (kind 'solve')."""
    from aimo.core.store import list_runs
    from aimo.solver.solve import EngineSpec, run_solve

    store = tmp_path / "gpu-solve.duckdb"
    spec = EngineSpec("pytorch", model=str(model_dir), tp=1, max_batch=16,
                      options={"cache_max_entry_count": 0.5, "model_format": "awq"})
    lines: list[str] = []
    report = run_solve(PROBLEMS, "seed-2nd-place", spec, record=store, budget_s=900.0,
                       echo=lines.append)
    answers = [q.answer for q in report.result.questions]
    assert len(answers) == 4 and all(isinstance(a, int) for a in answers)
    (run,) = [r for r in list_runs(store) if r.kind == "solve"]
    assert run.n_problems == 4 and lines


def test_turbomind_request_falls_back_to_pytorch_and_says_so(model_dir: Path, make_engine: Any) -> None:
    """The lent image has no TurboMind build: lmdeploy runs PyTorch and the adapter reports it."""
    eng = make_engine(model_dir, "turbomind", max_batch=4, cache_max_entry_count=0.3)

    async def go() -> dict[int, str | None]:
        stream = await eng.start_question("fallback", "Q", specs(2, "What is 2+2?"),
                                          SamplingSettings(max_new_tokens=32))
        ends = {c.sample: c.finish_reason async for c in stream if c.finish_reason}
        await eng.close()
        return ends

    assert (eng.requested_backend, eng.backend, eng.fell_back) == ("turbomind", "pytorch", True)
    assert sorted(asyncio.run(go())) == [0, 1]
