"""`SandboxPool`: several snippets at once, without blocking the caller or its event loop."""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
from types import TracebackType

from aimo.solver.sandbox._detect import detect_isolation
from aimo.solver.sandbox._layers import announce, missing
from aimo.solver.sandbox._run import run_code
from aimo.solver.sandbox._types import ExecResult, SandboxLimits

REQUIRE_ENV = "AIMO_REQUIRE_SANDBOX"


class SandboxPool:
    """Runs snippets on `workers` threads, each supervising one sandboxed process.

    Threads suffice: they only wait on pipes and child processes. Safe to call from any thread
    and from asyncio. `close()` waits for running snippets (bounded by their limits) and cancels
    queued ones. On creation it detects the layers and prints them once per process (stderr),
    with a warning if some are missing; with `require_layers` (default: env AIMO_REQUIRE_SANDBOX=1)
    it then refuses every snippet (`ExecResult.refused`: the answer comes from boxes only).
    """

    def __init__(self, workers: int = 4, limits: SandboxLimits = SandboxLimits(), *,
                 python: str | None = None, require_layers: bool | None = None) -> None:
        if workers < 1:
            raise ValueError(f"SandboxPool.workers: must be >= 1, got {workers}")
        self.limits = limits
        self._python = python
        self.isolation = detect_isolation(python)
        announce(self.isolation)
        if require_layers is None:
            require_layers = os.environ.get(REQUIRE_ENV, "").strip().lower() in ("1", "true", "yes")
        lacking = missing(self.isolation) if require_layers else ()
        self.refusal = f"sandbox refused: layers missing here: {', '.join(lacking)}" if lacking else None
        self._executor = concurrent.futures.ThreadPoolExecutor(workers, thread_name_prefix="sandbox")

    def submit(self, code: str) -> concurrent.futures.Future[ExecResult]:
        """Queue `code`; the future resolves to its `ExecResult` (never to an exception)."""
        if self.refusal is not None:
            future: concurrent.futures.Future[ExecResult] = concurrent.futures.Future()
            future.set_result(ExecResult(False, "", "", 0.0, False, False, None, self.refusal,
                                         self.isolation.describe(), refused=True))
            return future
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
