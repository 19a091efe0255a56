"""The garbage collector's pauses during a live solve, on the competition clock.

Why: lmdeploy's PyTorch engine runs as coroutines on a thread of the solver's own process, so a
full collection (which holds the GIL while it walks every object: the engine's, torch's and the
solver's) pauses decoding. The HIL runs show engine stalls of 0.1-0.6 s that the step model has
no term for (`simulator.live_timing.engine_stalls`); lmdeploy sets `gc.set_threshold(10000, 100,
100)`, so full collections are rare and long. Recording each collection's start and length on
the competition clock lets a run's stalls be matched with them (a question's `start_s` plus its
stream time) instead of guessed at. `aimo solve --json` reports the summary (`gc`).
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any


@dataclass(frozen=True)
class GcPause:
    """One collection: when it began (competition clock, seconds), how long it held the
    interpreter, and its generation (2: a full collection)."""

    at_s: float
    seconds: float
    generation: int


class GcPauses:
    """Records every collection while active (a context manager; `gc.callbacks`). Cheap: two
    clock reads a collection; the longest `keep` are kept whole, the rest as counts and sums."""

    def __init__(self, clock: Callable[[], float], *, keep: int = 20) -> None:
        self._clock = clock
        self._keep = keep
        self._started: float | None = None
        self._started_at = 0.0
        self.count = [0, 0, 0]
        self.total_s = [0.0, 0.0, 0.0]
        self.max_s = [0.0, 0.0, 0.0]
        self.longest: list[GcPause] = []

    def _callback(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
            self._started_at = self._clock()
            return
        if self._started is None:  # installed mid-collection: its start was not seen
            return
        seconds = time.perf_counter() - self._started
        self._started = None
        g = min(max(int(info.get("generation", 0)), 0), 2)
        self.count[g] += 1
        self.total_s[g] += seconds
        self.max_s[g] = max(self.max_s[g], seconds)
        if self._keep <= 0:
            return
        if len(self.longest) < self._keep or seconds > self.longest[-1].seconds:
            self.longest.append(GcPause(self._started_at, seconds, g))
            self.longest.sort(key=lambda p: -p.seconds)
            del self.longest[self._keep:]

    def __enter__(self) -> GcPauses:
        gc.callbacks.append(self._callback)
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._callback in gc.callbacks:
            gc.callbacks.remove(self._callback)

    def summary(self) -> dict[str, Any]:
        """Per generation: collections, seconds in all, the longest; the longest pauses with
        their start on the competition clock (JSON-ready)."""
        return {
            "threshold": list(gc.get_threshold()),
            "generations": [{"generation": g, "collections": self.count[g],
                             "seconds": round(self.total_s[g], 4), "max_s": round(self.max_s[g], 4)}
                            for g in range(3)],
            "longest": [{"at_s": round(p.at_s, 3), "seconds": round(p.seconds, 4),
                         "generation": p.generation} for p in self.longest],
        }

    def render(self) -> str:
        full = self.count[2]
        return (f"garbage collection: {sum(self.count)} collections, {full} full "
                f"({self.total_s[2]:.2f} s in all, longest {self.max_s[2] * 1000:.0f} ms)")


__all__ = ["GcPause", "GcPauses"]
