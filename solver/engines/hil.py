"""Hardware-in-the-loop (HIL) engine: real lmdeploy requests whose *content* comes from a trace store.

Why: the simulator's clock can only be trusted where a live run on the real engine was compared
with it. A real model's answers are not reproducible, so each sample here is a real lmdeploy
request (the policy's prompts and sampling settings, `ignore_eos`) that runs for exactly the
recorded sample's length (`max_new_tokens` = its `n_tokens`, capped by the policy) — real decode,
prefill, queueing, chunking and aborts — while the text the control loop sees is the recorded
sample's: the replay engine's script (`script_from_trace`, one definition of how recorded answers
become text), emitted when the real stream's cumulative token count reaches each recorded answer's
token. A sample that the recording ended with EOS ends with `stop` (lmdeploy says `length`), so the
loop's end-of-sample rules fire as they would have.

Which recorded samples fill a question's slots: `core.draws.competition_draws` —
the same draw `aimo validate` replays — so a simulator replay of the same store, policy and seed
uses the same samples. Code blocks are not run: `HilRunner` holds one worker of the live
`SandboxPool` for the recorded execution time and then returns the recorded result, so code runs
queue on the pool's workers as real ones do.

The stream is a live stream (wall clock, no lockstep): the control loop makes every decision in
real time and its cancels abort real requests.
"""

from __future__ import annotations

import logging
import math
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

from aimo.solver.engines.base import Chunk, FinishReason, PromptSpec, SamplingSettings
from aimo.solver.engines.replay import RecordedCode, SampleScript, filler, script_from_trace
from aimo.core.errors import InputError
from aimo.solver.loop.runners import CodeOutcome, PendingRun, UNKNOWN_CODE, _LiveRun
from aimo.core.traces import ProblemTrace

logger = logging.getLogger("aimo.solver.hil")


def request_tokens(script: SampleScript, cap: int) -> int:
    """`max_new_tokens` of the real request replaying `script` under the policy's cap `cap`
    (at least 1: lmdeploy needs one token)."""
    return max(1, min(int(script.n_tokens), int(cap)))


def final_reason(script: SampleScript, cap: int) -> FinishReason:
    """How a sample that ran its whole length ends: as recorded, or `length` when the cap cut it
    (the replay engine's rule)."""
    return "length" if script.n_tokens > cap else script.finish_reason


class _Cursor:
    """Which of a script's inserts have been emitted (private)."""

    __slots__ = ("script", "next", "inserts")

    def __init__(self, script: SampleScript, cap: int) -> None:
        self.script = script
        self.inserts = [(max(0, t), text) for t, text in script.inserts if t <= cap]
        self.next = 0

    def text_until(self, sample: int, token: int) -> str:
        """Filler for the chunk plus every recorded insert at or before `token` not yet emitted."""
        parts = [filler(sample, token)] if token > 0 else []
        while self.next < len(self.inserts) and self.inserts[self.next][0] <= token:
            parts.append(self.inserts[self.next][1])
            self.next += 1
        return "".join(parts)


class HilStream:
    """One question's real lmdeploy batch with the recorded samples' text (see module docstring).

    Offers the extras the loop and `HilRunner` read: `sample_kind`, `source_sample`,
    `prompt_tokens` (lmdeploy's), `recorded_code`, `code_workers`."""

    lockstep = False
    virtual_clock = False

    def __init__(self, inner: Any, scripts: Sequence[SampleScript], samples: Sequence[int], cap: int,
                 code_workers: int | None = None) -> None:
        self._inner = inner
        self._scripts = {i: s for i, s in zip(samples, scripts)}
        self._cursors = {i: _Cursor(s, cap) for i, s in zip(samples, scripts)}
        self._limit = {i: request_tokens(s, cap) for i, s in zip(samples, scripts)}
        self._final = {i: final_reason(s, cap) for i, s in zip(samples, scripts)}
        self._code = {c: r for s in scripts for c, r in s.code}
        self.code_workers = code_workers

    def __aiter__(self) -> AsyncIterator[Chunk]:
        return self._chunks()

    async def _chunks(self) -> AsyncIterator[Chunk]:
        async for chunk in self._inner:
            yield self.translate(chunk)

    def translate(self, chunk: Chunk) -> Chunk:
        """The real chunk with the recorded text up to its token count and the recorded ending."""
        i = chunk.sample
        text = self._cursors[i].text_until(i, chunk.n_tokens)
        finish = chunk.finish_reason
        if finish == "length" and chunk.n_tokens >= self._limit[i]:
            finish = self._final[i]
        elif finish == "stop":
            logger.warning("sample %s ended on EOS at %s tokens despite ignore_eos", i, chunk.n_tokens)
        return Chunk(i, text, chunk.n_tokens, chunk.t, finish)

    async def cancel(self, sample: int) -> None:
        await self._inner.cancel(sample)

    async def cancel_all(self) -> None:
        await self._inner.cancel_all()

    def now(self) -> float:
        return float(self._inner.now())

    def sample_kind(self, sample: int) -> str:
        """The recorded sample's kind (its rules apply, as in the simulator)."""
        return self._scripts[sample].kind

    def source_sample(self, sample: int) -> int:
        return self._scripts[sample].source_sample

    def prompt_tokens(self, sample: int) -> int | None:
        get = getattr(self._inner, "prompt_tokens", None)
        return get(sample) if get is not None else None

    def recorded_code(self, code: str) -> RecordedCode | None:
        return self._code.get(code)

    async def shutdown(self) -> None:
        await self._inner.shutdown()


class HilEngine:
    """`Engine` over a real lmdeploy engine, replaying a trace store's samples (module docstring).

    Args:
        inner: an `LmdeployEngine` (built with `generation_overrides={'ignore_eos': True}`).
        problems: the recorded run's problems, matched by problem id.
        draws: per problem id, the draw (`SampleDraw`) whose `take(kinds)` fills the slots.
        code_workers: the sandbox pool's size (reported on the streams).
        owns_inner: `close()` closes `inner` (False: an engine shared by several runs).
    """

    name = "hil"
    virtual_clock = False

    def __init__(self, inner: Any, problems: Sequence[ProblemTrace], draws: Mapping[str, Any], *,
                 code_workers: int | None = None, owns_inner: bool = True) -> None:
        self.inner = inner
        self.owns_inner = owns_inner
        self._problems = {p.problem_id: p for p in problems}
        self._draws = dict(draws)
        self.code_workers = code_workers
        self.startup_s = float(getattr(inner, "startup_s", 0.0))

    @property
    def backend(self) -> str:
        return f"hil-{getattr(self.inner, 'backend', 'unknown')}"

    @property
    def quantization(self) -> str | None:
        return getattr(self.inner, "quantization", None)

    @property
    def hardware(self) -> str | None:
        return getattr(self.inner, "hardware", None)

    def run_config(self) -> dict[str, Any]:
        run_config = getattr(self.inner, "run_config", None)
        return run_config() if callable(run_config) else {}

    async def start_question(self, question_id: str, question: str, prompts: Sequence[PromptSpec],
                             sampling: SamplingSettings) -> HilStream:
        if question_id not in self._problems:
            raise InputError("hil traces", "problem_id", f"no recorded question {question_id!r}")
        try:
            chosen = self._draws[question_id].take([p.kind for p in prompts])
        except ValueError as exc:
            raise InputError("hil traces", f"problem {question_id}", str(exc)) from None
        scripts = [script_from_trace(t) for t in chosen]
        cap = sampling.max_new_tokens
        overrides = {p.sample: {"max_new_tokens": request_tokens(s, cap)} for p, s in zip(prompts, scripts)}
        inner = await self.inner.start_question(question_id, question, prompts, sampling,
                                                sample_overrides=overrides)
        return HilStream(inner, scripts, [p.sample for p in prompts], cap, self.code_workers)

    async def close(self) -> None:
        if self.owns_inner:
            await self.inner.close()


class _HeldRun(_LiveRun):
    """A recorded code result, ready when its hold on a sandbox worker ends."""

    def __init__(self, future: Any, stream: Any, outcome: CodeOutcome) -> None:
        super().__init__(future, stream)
        self._outcome = outcome

    def result(self) -> CodeOutcome:
        if self._future.cancelled():
            return CodeOutcome(-1, False, 0.0, "cancelled")
        return self._outcome


class HilRunner:
    """Code runner of HIL runs: the recorded result after the recorded execution time, waited on
    one worker of the live sandbox pool (queueing as real runs do); no code is executed."""

    def __init__(self, pool: Any) -> None:
        self.pool = pool

    def submit(self, code: str, *, sample: int, stream: Any,
               mode: str | None = None) -> PendingRun:
        """Hold a pool worker for the recorded run time (as live runs, `inline` is the loop's
        wait: the loop awaits the result)."""
        import asyncio

        recorded = stream.recorded_code(code)
        outcome = UNKNOWN_CODE if recorded is None else CodeOutcome(
            recorded.value, recorded.ok, recorded.exec_ms, recorded.error)
        wait_s = outcome.exec_ms / 1000.0 if math.isfinite(outcome.exec_ms) else 0.0
        return _HeldRun(asyncio.wrap_future(self.pool.hold(wait_s)), stream, outcome)


def build_hil_engine(model: str, problems: Sequence[ProblemTrace], *, draw_seed: int | None,
                     lmdeploy_options: Mapping[str, Any], code_workers: int | None = None,
                     lmdeploy_engine: Any = None) -> HilEngine:
    """Start lmdeploy on `model` (ignore_eos) and wrap it with the draws of `draw_seed`; with
    `lmdeploy_engine` (started with ignore_eos, e.g. shared by several runs) use that one and
    leave it open.

    Raises:
        EngineUnavailable: lmdeploy is not installed.
    """
    from aimo.core.draws import competition_draws  # the simulator's draw, one definition
    from aimo.solver.engines import lmdeploy_engine_class

    draws = dict(zip((p.problem_id for p in problems), competition_draws(problems, draw_seed)))
    if lmdeploy_engine is not None:
        if not getattr(lmdeploy_engine, "generation_overrides", {}).get("ignore_eos"):
            raise ValueError("a shared lmdeploy engine for hil runs needs generation_overrides ignore_eos")
        return HilEngine(lmdeploy_engine, problems, draws, code_workers=code_workers, owns_inner=False)
    cls = lmdeploy_engine_class()
    opts = dict(lmdeploy_options)
    overrides = {**dict(opts.pop("generation_overrides", None) or {}), "ignore_eos": True}
    inner = cls(model_path=model, generation_overrides=overrides, **opts)
    return HilEngine(inner, problems, draws, code_workers=code_workers)


__all__ = ["HilEngine", "HilRunner", "HilStream", "build_hil_engine", "final_reason", "request_tokens"]
