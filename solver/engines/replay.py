"""Replay engine (CPU): a recorded run's samples streamed as a batch paced by a hardware time model.

Why: the live solver must make the same decisions as the simulator on the same recordings (the
fidelity contract, tests/test_fidelity.py). So this engine reproduces the simulator's time model
exactly, on a *virtual* clock: a decode step costs the one step-time function's seconds
(`core.hardware.timing.step_seconds`, called through `steps_duration`/`steps_within` as the
simulator does), queued samples start (after their prefill) when a slot
frees, and a cancelled sample speeds up the rest at once. `speedup` compresses time: the stream
sleeps `virtual / speedup` wall seconds (`inf`: never sleeps).

Lockstep: the stream is an async generator that computes the next item only when the consumer
asks for it, and advances its clock only between items; a `cancel` issued while the consumer
handles an item takes effect before the next item, so decisions never depend on asyncio
scheduling. Chunks end on every sample's check grid (multiples of `chunk_tokens` from the
sample's start), at the token of every recorded answer (so extraction sees the recorded token
positions) and at the sample's end. Each chunk's text is synthesised: filler, a `\\boxed{v}` for
a boxed answer, a ```python block for a code answer (`recorded_code` gives its recorded result).
When the recording has token confidence, each chunk (abort chunks too) carries the recorded
confidence and entropy of its new tokens (`Chunk.confidence`), so the loop reads the values the
simulator reads.

Beyond the `QuestionStream` protocol a paced stream offers: `Wake` items (yielded when the clock
reaches a time asked for with `wake_at`, before any later chunk), `pause(seconds)` (a serial code
run stalls the batch), `block(seconds)` (an inline code run keeps the control loop busy while the
batch decodes on: `now()` is the loop's clock, max(batch clock, busy), chunks carry the batch's
time, and `cancel_all` first lets the batch decode until `now()`, then the profile's
`abort_latency_steps` more steps, whose seconds it leaves in `abort_latency_s`),
`sample_start`, `source_sample`, `sample_kind`, `prompt_tokens`, `recorded_code`; and
`lockstep = virtual_clock = True`.
"""

from __future__ import annotations

import asyncio
import heapq
import math
import time
from collections import deque
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from aimo.core.draws import recorded_draw
from aimo.core.errors import InputError
from aimo.core.hardware import HardwareProfile, decode_on, steps_duration, steps_within
from aimo.core.hardware.timing import prefill_seconds
from aimo.core.traces import SOURCE_CODE, ProblemTrace, SampleTrace
from aimo.solver.engines.base import Chunk, FinishReason, PromptSpec, SamplingSettings

_EPS = 1e-9  # the simulator's tolerance on time comparisons
_YIELD_EVERY = 64  # with no sleeping, let other tasks run every this many items


@dataclass(frozen=True)
class Wake:
    """The virtual clock reached `t` (asked for with `wake_at`); `active` samples still decode."""

    t: float
    active: int


@dataclass(frozen=True)
class RecordedCode:
    """The recorded outcome of one code block: code answer value (None: no number), success,
    execution time and error text."""

    value: int | None
    ok: bool
    exec_ms: float
    error: str | None = None


@dataclass(frozen=True)
class SampleScript:
    """What one sample will generate: its length, how it ends, the text inserted at token
    positions (sorted by token), and the recorded results of its code blocks."""

    kind: str
    prompt_tokens: int
    n_tokens: int
    finish_reason: FinishReason
    inserts: tuple[tuple[int, str], ...] = ()
    code: tuple[tuple[str, RecordedCode], ...] = ()
    source_sample: int = 0
    # the recorded per-token confidence and entropy (float32, n_tokens each), or None
    confidence: tuple[np.ndarray, np.ndarray] | None = None


_FILLER = ("Let me think. ", "So we have ", "which gives ", "Check: ", "Then ", "Hence ")


def filler(sample: int, token: int) -> str:
    """Deterministic filler text of a chunk (no braces, backslashes or fences)."""
    return _FILLER[(sample + token) % len(_FILLER)]


class _Slot:
    """Mutable state of one sample inside a paced stream (private)."""

    __slots__ = ("index", "script", "cap", "finish", "state", "g", "start_s", "marks", "mi",
                 "inserts", "ii", "sent")

    def __init__(self, index: int, script: SampleScript, every: int, max_new_tokens: int) -> None:
        self.index = index
        self.script = script
        self.cap = max(0, min(script.n_tokens, max_new_tokens))
        long = script.n_tokens > max_new_tokens
        self.finish: FinishReason = "length" if long else script.finish_reason
        self.state = "queued"  # queued | active | done
        self.g = 0
        self.start_s: float | None = None
        self.inserts = [(max(0, t), text) for t, text in script.inserts if t <= self.cap]
        marks = set(range(every, self.cap, every)) | {t for t, _ in self.inserts} | {self.cap}
        self.marks = sorted(marks)
        self.mi = 0
        self.ii = 0
        self.sent = 0  # tokens whose confidence went out with a chunk

    def confidence_until(self, token: int) -> tuple[np.ndarray, np.ndarray] | None:
        """The recorded confidence of the tokens after the last chunk's, up to `token`."""
        conf = self.script.confidence
        if conf is None:
            return None
        start, self.sent = self.sent, max(self.sent, token)
        return conf[0][start:token], conf[1][start:token]


class PacedStream:
    """One question's batch on a virtual clock (see the module docstring). Not thread-safe."""

    lockstep = True
    virtual_clock = True

    def __init__(
        self,
        scripts: Sequence[SampleScript],
        model: HardwareProfile,
        *,
        chunk_tokens: int,
        max_new_tokens: int,
        speedup: float = math.inf,
    ) -> None:
        if chunk_tokens < 1:
            raise ValueError(f"chunk_tokens must be >= 1, got {chunk_tokens}")
        if not speedup > 0:
            raise ValueError(f"speedup must be > 0, got {speedup}")
        self._model = model
        self._slots = [_Slot(i, s, chunk_tokens, max_new_tokens) for i, s in enumerate(scripts)]
        self._code = {c: r for s in scripts for c, r in s.code}
        self._speedup = speedup
        self._now = 0.0  # the batch's clock
        self._busy = 0.0  # the control loop is busy (inline code) until then
        self.abort_latency_s = 0.0  # seconds the batch decoded after the stop decision (cancel_all)
        self._wakes: list[float] = []
        self._out: deque[Chunk] = deque()
        self._closed = False
        self._wall0 = time.monotonic()
        self._items = 0
        self._start_queued()

    # ---------------------------------------------------------------- QuestionStream

    def __aiter__(self) -> AsyncIterator[Chunk | Wake]:
        return self._run()

    async def cancel(self, sample: int) -> None:
        """Stop `sample` now; queued samples take its slot (after their prefill)."""
        s = self._slots[sample]
        if s.state == "done":
            return
        was_active = s.state == "active"
        self._abort(s)
        if was_active and not self._closed:
            self._start_queued()

    async def cancel_all(self) -> None:
        """Stop every sample decided at `now()` (the batch decodes until then, as the
        simulator's `coast(until=…)`); the aborts land `abort_latency_steps` steps later (its
        `coast(steps=…)`; their seconds in `abort_latency_s`, which the loop adds to the
        question's time); pending wakes are dropped and the stream ends after the aborts."""
        if self._busy > self._now:
            self._coast(until=self._busy)
        self.abort_latency_s = self._coast(steps=getattr(self._model, "abort_latency_steps", 0))
        self._closed = True
        self._wakes.clear()
        for s in self._slots:
            if s.state != "done":
                self._abort(s)

    def now(self) -> float:
        """Virtual seconds since the batch was submitted, on the control loop's clock: the
        batch's, or later while an inline code run keeps the loop busy."""
        return max(self._now, self._busy)

    # ---------------------------------------------------------------- extras

    def wake_at(self, t: float) -> None:
        """Yield `Wake(t)` once the clock reaches `t`, before any chunk later than `t`."""
        if t > self._now + _EPS and not self._closed:
            heapq.heappush(self._wakes, t)

    def pause(self, seconds: float) -> None:
        """Stall the batch for `seconds` (a serial code run)."""
        if seconds > 0:
            self._now += seconds

    def block(self, seconds: float) -> None:
        """The control loop runs code for `seconds` from `now()` (an inline run); the batch
        decodes on meanwhile."""
        self._busy = self.now() + max(0.0, seconds)

    def sample_start(self, sample: int) -> float | None:
        """When `sample` started decoding (after its prefill), or None if it never started."""
        return self._slots[sample].start_s

    def source_sample(self, sample: int) -> int:
        """The recorded sample index behind slot `sample`."""
        return self._slots[sample].script.source_sample

    def prompt_tokens(self, sample: int) -> int:
        return self._slots[sample].script.prompt_tokens

    def sample_kind(self, sample: int) -> str:
        """The kind whose rules apply to `sample` (the recorded sample's kind)."""
        return self._slots[sample].script.kind

    @property
    def code_overlap(self) -> str:
        return self._model.code_overlap

    @property
    def code_workers(self) -> int | None:
        """At most this many code runs at once (None: no limit); see `RecordedRunner`."""
        return getattr(self._model, "code_workers", None)

    def recorded_code(self, code: str) -> RecordedCode | None:
        """The recorded result of a code block this stream emitted (None for unknown code)."""
        return self._code.get(code)

    # ---------------------------------------------------------------- internals

    def _start_queued(self) -> None:
        running = sum(1 for s in self._slots if s.state == "active")
        room = max(0, self._model.max_batch - running)
        starting = [s for s in self._slots if s.state == "queued"][:room]
        if not starting:
            return
        tokens = sum(s.script.prompt_tokens for s in starting)
        self._now += prefill_seconds(self._model.prefill_s_per_token,
                                     getattr(self._model, "prefill_s_per_request", 0.0), tokens,
                                     len(starting))
        for s in starting:
            s.state, s.start_s = "active", self._now

    def _coast(self, until: float | None = None, steps: int = 0) -> float:
        """Active samples decode on without the loop (the simulator's, one definition:
        `core.hardware.timing.decode_on`): to `until`, or `steps` more steps, each up to its cap;
        their text is read by the abort chunks. Returns the seconds it took."""
        act = [s for s in self._slots if s.state == "active"]
        before = self._now
        made, self._now = decode_on(self._model, [s.script.prompt_tokens for s in act],
                                    [s.g for s in act], [s.cap for s in act], self._now,
                                    until=until, steps=steps)
        for s, g in zip(act, made):
            s.g = g
        return self._now - before

    def _text_until(self, s: _Slot, token: int) -> str:
        parts = [filler(s.index, token)] if token > 0 else []
        while s.ii < len(s.inserts) and s.inserts[s.ii][0] <= token:
            parts.append(s.inserts[s.ii][1])
            s.ii += 1
        return "".join(parts)

    def _abort(self, s: _Slot) -> None:
        text = self._text_until(s, s.g) if s.state == "active" else ""
        s.state = "done"
        self._out.append(Chunk(s.index, text, s.g, self._now, "abort",
                               confidence=s.confidence_until(s.g)))

    def _chunk(self, s: _Slot) -> Chunk:
        text = self._text_until(s, s.g)
        s.mi += 1
        finish: FinishReason | None = None
        if s.g >= s.cap:
            finish, s.state = s.finish, "done"
        return Chunk(s.index, text, s.g, self._now, finish, confidence=s.confidence_until(s.g))

    async def _pace(self) -> None:
        self._items += 1
        if self._speedup != math.inf:
            delay = self._wall0 + self._now / self._speedup - time.monotonic()
            if delay > 0.001:
                await asyncio.sleep(delay)
                return
        if self._items % _YIELD_EVERY == 0:
            await asyncio.sleep(0)

    async def _run(self) -> AsyncIterator[Chunk | Wake]:
        m = self._model
        while True:
            while self._out:
                await self._pace()
                yield self._out.popleft()
            active = [s for s in self._slots if s.state == "active"]
            if self._closed or not active:
                if self._closed or not self._wakes:
                    return
                t = heapq.heappop(self._wakes)
                self._now = max(self._now, t)
                await self._pace()
                yield Wake(t, 0)
                continue
            b = len(active)
            ctx = float(sum(s.script.prompt_tokens + s.g for s in active))
            n = min(s.marks[s.mi] - s.g for s in active)
            dt = steps_duration(m, b, ctx, n)
            if self._wakes and self._now + dt > self._wakes[0] + _EPS:
                t = heapq.heappop(self._wakes)
                k = min(steps_within(m, b, ctx, t - self._now), n)
                self._now += steps_duration(m, b, ctx, k)
                for s in active:
                    s.g += k
                await self._pace()
                yield Wake(t, b)
                continue
            self._now += dt
            for s in active:
                s.g += n
            for s in active:
                while self._out:
                    await self._pace()
                    yield self._out.popleft()
                if self._closed:
                    break
                if s.state != "active" or s.g != s.marks[s.mi]:
                    continue
                chunk = self._chunk(s)
                await self._pace()
                yield chunk
            if not self._closed and any(s.state == "queued" for s in self._slots):
                self._start_queued()


# ------------------------------------------------------------------------------------ replay


def recorded_samples(problem: ProblemTrace, kinds: Sequence[str]) -> tuple[SampleTrace, ...]:
    """Which recorded samples fill slots of the given kinds: the simulator's draw,
    `core.draws.recorded_draw(problem).take(kinds)` (`NoRecordedSamples` for a problem without
    recordings)."""
    return recorded_draw(problem).take(kinds)


def script_from_trace(trace: SampleTrace) -> SampleScript:
    """The script that replays `trace`: a box per boxed answer, a code block per code answer.

    The script keeps the trace's kind, which differs from the slot's prompt kind only when a
    problem lacks recordings of that kind (the simulator then also uses the trace's kind), and
    its token confidence when it has both arrays."""
    inserts: list[tuple[int, str]] = []
    code: list[tuple[str, RecordedCode]] = []
    for j in range(trace.n_answers):
        token = int(trace.ans_token[j])
        value = int(trace.ans_value[j])
        if int(trace.ans_source[j]) == SOURCE_CODE:
            ok = bool(trace.ans_code_ok[j])
            exec_ms = float(trace.ans_exec_ms[j])
            body = f"# recorded run {trace.sample}.{j}\n" + (
                f"print({value})" if ok and value >= 0 else
                "print('no number')" if ok else "raise SystemExit('recorded failure')"
            )
            result = RecordedCode(
                value=(value if value >= 0 else None) if ok else -1,
                ok=ok,
                exec_ms=exec_ms if math.isfinite(exec_ms) else 0.0,
                error=None if ok else "recorded failure",
            )
            inserts.append((token, f"\n```python\n{body}\n```\n"))
            code.append((body, result))
        else:
            inserts.append((token, f" \\boxed{{{value if value >= 0 else '?'}}} "))
    return SampleScript(
        kind=trace.kind,
        prompt_tokens=int(trace.prompt_tokens),
        n_tokens=int(trace.n_tokens),
        finish_reason=trace.finish_reason,
        inserts=tuple(inserts),
        code=tuple(code),
        source_sample=int(trace.sample),
        confidence=(None if trace.token_conf is None or trace.token_entropy is None
                    else (trace.token_conf, trace.token_entropy)),
    )


class ReplayEngine:
    """Streams recorded samples of a trace store's run, paced by `model` (see module docstring).

    Args:
        problems: the run's problems (`core.store.load_problem_traces`), matched by problem id.
        model: the hardware time model (`core.hardware.HardwareProfile`).
        chunk_tokens: the chunk grid; use the policy's `check.every_tokens`.
        speedup: virtual seconds per wall second (`math.inf`: no sleeping).
    Contract: one question at a time; `startup_s` and `question_overhead_s` are the model's, on
    the virtual clock (the caller adds them to its competition clock).
    """

    name = "replay"
    backend = "replay"
    virtual_clock = True

    def __init__(
        self,
        problems: Sequence[ProblemTrace] | Mapping[str, ProblemTrace],
        model: HardwareProfile,
        *,
        chunk_tokens: int = 20,
        speedup: float = math.inf,
    ) -> None:
        if isinstance(problems, Mapping):
            self._problems = dict(problems)
        else:
            self._problems = {p.problem_id: p for p in problems}
        self.model = model
        self.chunk_tokens = chunk_tokens
        self.speedup = speedup
        self.startup_s = float(model.startup_s)
        self.question_overhead_s = float(model.question_overhead_s)

    @classmethod
    def from_store(
        cls, path: str | Path, model: HardwareProfile, *, run_id: str | None = None, chunk_tokens: int = 20,
        speedup: float = math.inf,
    ) -> ReplayEngine:
        """Load a run's event arrays from a trace store (InputError if it is not one)."""
        from aimo.core.store import load_problem_traces

        return cls(load_problem_traces(path, run_id), model, chunk_tokens=chunk_tokens, speedup=speedup)

    @property
    def problem_ids(self) -> list[str]:
        return list(self._problems)

    def problem(self, question_id: str) -> ProblemTrace:
        try:
            return self._problems[question_id]
        except KeyError:
            raise InputError("replay traces", "problem_id",
                             f"no recorded question {question_id!r}") from None

    async def start_question(
        self, question_id: str, question: str, prompts: Sequence[PromptSpec], sampling: SamplingSettings
    ) -> PacedStream:
        chosen = recorded_samples(self.problem(question_id), [p.kind for p in prompts])
        scripts = [script_from_trace(t) for t in chosen]
        return PacedStream(scripts, self.model, chunk_tokens=self.chunk_tokens,
                           max_new_tokens=sampling.max_new_tokens, speedup=self.speedup)

    async def restart(self) -> None:
        """Nothing to rebuild: every question gets a fresh stream (see `Engine.restart`)."""
        return None

    async def close(self) -> None:
        return None


__all__ = [
    "PacedStream", "RecordedCode", "ReplayEngine", "SampleScript", "Wake",
    "filler", "recorded_samples", "script_from_trace",
]
