"""`SandboxPool`: several snippets at once, without blocking the caller or its event loop."""

from __future__ import annotations

import asyncio
import concurrent.futures
from types import TracebackType

from solver.sandbox._run import run_code
from solver.sandbox._types import ExecResult, SandboxLimits


class SandboxPool:
    """Runs snippets on `workers` threads, each supervising one sandboxed process.

    Threads suffice: they only wait on pipes and child processes. Safe to call from any thread
    and from asyncio. `close()` waits for running snippets (bounded by their limits) and cancels
    queued ones.
    """

    def __init__(self, workers: int = 4, limits: SandboxLimits = SandboxLimits(), *,
                 python: str | None = None) -> None:
        if workers < 1:
            raise ValueError(f"SandboxPool.workers: must be >= 1, got {workers}")
        self.limits = limits
        self._python = python
        self._executor = concurrent.futures.ThreadPoolExecutor(workers, thread_name_prefix="sandbox")

    def submit(self, code: str) -> concurrent.futures.Future[ExecResult]:
        """Queue `code`; the future resolves to its `ExecResult` (never to an exception)."""
        return self._executor.submit(run_code, code, self.limits, python=self._python)

    def hold(self, seconds: float) -> concurrent.futures.Future[None]:
        """Occupy one worker for `seconds` without running anything: a recorded code run's wait
        replayed on the live pool (hardware-in-the-loop runs queue exactly as real ones)."""
        import time  # here, not at the top: keeps this hook a one-place addition

        return self._executor.submit(time.sleep, max(0.0, float(seconds)))

    async def run(self, code: str) -> ExecResult:
        """Await `code`'s result from an asyncio loop without blocking the loop."""
        return await asyncio.wrap_future(self.submit(code))

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> SandboxPool:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
