"""Code runners: how the control loop executes a sample's ```python block without blocking the stream.

`submit` returns at once with a `PendingRun`; the loop polls `ready(now)` at the sample's checks
and reads `result()` once ready. Two implementations:
- `SandboxRunner` (live): `solver.sandbox.SandboxPool` on worker threads; ready when the run ends.
- `RecordedRunner` (replay): the recorded value/success, ready `exec_ms` later on the replay
  stream's virtual clock (`code_overlap: serial` instead pauses the stream for the execution;
  `inline` blocks the control loop for it, `stream.block(exec)`, the batch decoding on: the seed
  runs code inside the check, and the result is ready when the loop is free again).
A `mode` passed to `submit` (the policy's `check.code_overlap`) overrides the stream's.
"""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass
from typing import Any, Protocol

from aimo.solver.extraction import code_answer, prepare_code
from aimo.core.policy import CODE_FAILURE
from aimo.solver.sandbox import ExecResult, SandboxPool

_EPS = 1e-9


@dataclass(frozen=True)
class CodeOutcome:
    """A code run's answer: value 0..999, CODE_FAILURE (−1) when it failed or timed out, None
    when it succeeded without a number; `exec_ms` its execution time; `error` the error text."""

    value: int | None
    ok: bool
    exec_ms: float
    error: str | None = None


class PendingRun(Protocol):
    """A submitted run. `ready_at`: when the result is (or will be) known on the stream's clock,
    None while unknown (live runs)."""

    @property
    def ready_at(self) -> float | None: ...

    def ready(self, now: float) -> bool: ...

    def result(self) -> CodeOutcome: ...

    async def wait(self) -> None: ...


class CodeRunner(Protocol):
    """Starts code runs for the loop; `stream` is the question's stream (clock, recordings)."""

    def submit(self, code: str, *, sample: int, stream: Any,
               mode: str | None = None) -> PendingRun: ...


def outcome_of(result: ExecResult) -> CodeOutcome:
    """The code answer of a sandbox result (the seed's rule: −1 on failure, last number % 1000);
    no answer (None) for a run the sandbox refused, so the sample's boxed answer still votes."""
    if result.refused:
        return CodeOutcome(None, False, 0.0, result.error)
    return CodeOutcome(code_answer(result.stdout, result.ok), result.ok, result.exec_ms, result.error)


class _LiveRun:
    """A run on the sandbox pool; ready once its future is done (never raises from `result`)."""

    def __init__(self, future: asyncio.Future[ExecResult], stream: Any) -> None:
        self._future = future
        self._stream = stream
        self._ready_at: float | None = None
        future.add_done_callback(self._done)

    def _done(self, _: object) -> None:
        self._ready_at = float(self._stream.now())

    @property
    def ready_at(self) -> float | None:
        return self._ready_at

    def ready(self, now: float) -> bool:
        return self._future.done()

    def result(self) -> CodeOutcome:
        if self._future.cancelled():
            return CodeOutcome(CODE_FAILURE, False, 0.0, "cancelled")
        exc = self._future.exception()
        if exc is not None:
            return CodeOutcome(CODE_FAILURE, False, 0.0, f"runner error: {exc!r}")
        return outcome_of(self._future.result())

    async def wait(self) -> None:
        await asyncio.wait([self._future])

    def cancel(self) -> None:
        self._future.cancel()


class SandboxRunner:
    """Runs each block (with the seed's import prefix) in a sandboxed process on `pool`."""

    def __init__(self, pool: SandboxPool) -> None:
        self.pool = pool

    def submit(self, code: str, *, sample: int, stream: Any,
               mode: str | None = None) -> PendingRun:
        """Start the run (live runs always overlap; with `inline` the loop awaits the result)."""
        future = asyncio.wrap_future(self.pool.submit(prepare_code(code)))
        return _LiveRun(future, stream)


@dataclass
class _TimedRun:
    """A run whose result is known in advance and visible from `ready_at` on the stream clock."""

    outcome: CodeOutcome
    ready_at: float

    def ready(self, now: float) -> bool:
        return self.ready_at <= now + _EPS

    def result(self) -> CodeOutcome:
        return self.outcome

    async def wait(self) -> None:
        return None


UNKNOWN_CODE = CodeOutcome(CODE_FAILURE, False, 0.0, "no recorded result for this code")


class RecordedRunner:
    """Returns recorded results (`stream.recorded_code(code)`) after the recorded execution time,
    on the stream's virtual clock: `parallel` overlap asks the stream to wake at `now + exec`,
    `serial` pauses the stream for `exec` and the result is ready at once. With
    `stream.code_workers` = N, a run first waits for one of N workers (first submitted, first
    served; a question's stream starts with every worker free), as on the live sandbox pool."""

    def __init__(self) -> None:
        self._stream: Any = None
        self._free: list[float] = []  # when each worker of the current stream frees up

    def _start_time(self, stream: Any, now: float, exec_s: float) -> float:
        workers = getattr(stream, "code_workers", None)
        if not workers:
            return now
        if stream is not self._stream:
            self._stream, self._free = stream, [0.0] * workers
        w = min(range(len(self._free)), key=self._free.__getitem__)
        start = max(now, self._free[w])
        self._free[w] = start + exec_s
        return start

    def submit(self, code: str, *, sample: int, stream: Any,
               mode: str | None = None) -> PendingRun:
        recorded = stream.recorded_code(code)
        outcome = UNKNOWN_CODE if recorded is None else CodeOutcome(
            recorded.value, recorded.ok, recorded.exec_ms, recorded.error
        )
        exec_s = outcome.exec_ms / 1000.0 if math.isfinite(outcome.exec_ms) else 0.0
        exec_s = max(0.0, exec_s)
        mode = mode or getattr(stream, "code_overlap", "parallel")
        if mode == "inline":
            block = getattr(stream, "block", None)
            if block is not None:
                block(exec_s)
            return _TimedRun(outcome, stream.now())
        if mode == "serial":
            stream.pause(exec_s)
            return _TimedRun(outcome, stream.now())
        ready_at = self._start_time(stream, stream.now(), exec_s) + exec_s
        stream.wake_at(ready_at)
        return _TimedRun(outcome, ready_at)


__all__ = ["CodeOutcome", "CodeRunner", "PendingRun", "RecordedRunner", "SandboxRunner", "UNKNOWN_CODE",
           "outcome_of"]
