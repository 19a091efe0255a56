"""A wall-clock engine double whose calls hang on demand, for the "answer always on time" tests.

Each question takes the next entry of `hangs` (then None):
- None: every sample writes `\\boxed{7}` and finishes after a few chunks;
- "start": `start_question` never returns;
- "stream": the stream stalls (its next item never comes) and `cancel` / `cancel_all` never
  return either;
- "cancel_all": the samples keep writing `\\boxed{7}` forever and `cancel` / `cancel_all` never
  return (the question stops on a rule or the cutoff, then the cancel hangs);
- "block": the stream's next item blocks the event loop's *thread* (a synchronous call into a
  stuck engine) until `release` is set.
`restart()` counts its calls; after it the engine works again.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any

from aimo.solver.engines.base import Chunk


async def _forever() -> None:
    await asyncio.Event().wait()


class HangingStream:
    lockstep = False

    def __init__(self, n: int, hang: str | None, release: threading.Event, *, dt: float = 0.01) -> None:
        self.n = n
        self.hang = hang
        self.release = release
        self.dt = dt
        self.t0 = time.monotonic()
        self.pos = [0] * n
        self.done = [False] * n

    def now(self) -> float:
        return time.monotonic() - self.t0

    async def cancel(self, sample: int) -> None:
        if self.hang in ("stream", "cancel_all"):
            await _forever()
        self.done[sample] = True

    async def cancel_all(self) -> None:
        for i in range(self.n):
            await self.cancel(i)

    def __aiter__(self) -> AsyncIterator[Chunk]:
        return self._run()

    async def _run(self) -> AsyncIterator[Chunk]:
        while True:
            if self.hang == "stream" and self.now() > 0.05:
                await _forever()
            if self.hang == "block" and self.now() > 0.05:
                self.release.wait(600)  # blocks the loop's thread
                self.hang = None
            alive = [i for i in range(self.n) if not self.done[i]]
            if not alive:
                return
            await asyncio.sleep(self.dt)
            for i in alive:
                self.pos[i] += 1
                last = self.hang is None and self.pos[i] >= 3
                self.done[i] = self.done[i] or last
                text = "\\boxed{7} " if self.pos[i] == 1 else "x "
                yield Chunk(i, text, self.pos[i] * 20, self.now(), "stop" if last else None)


class HangingEngine:
    name = backend = "hanging"

    def __init__(self, hangs: Sequence[str | None]) -> None:
        self.hangs = list(hangs)
        self.started = 0
        self.restarts = 0
        self.release = threading.Event()

    async def start_question(self, question_id: str, question: str, prompts: Sequence[Any],
                             sampling: Any) -> HangingStream:
        hang = self.hangs[self.started] if self.started < len(self.hangs) else None
        self.started += 1
        if hang == "start":
            await _forever()
        return HangingStream(len(prompts), hang, self.release)

    async def restart(self) -> None:
        self.restarts += 1

    async def close(self) -> None:
        return None
