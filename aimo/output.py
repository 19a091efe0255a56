"""Where the CLI's output goes: results on stdout, everything else (progress, notices, library
logs and prints) on stderr, so `--json` output always parses."""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any


def notice(text: str) -> None:
    """A line for the person at the terminal (stderr)."""
    print(text, file=sys.stderr, flush=True)


@contextlib.contextmanager
def stdout_to_stderr() -> Iterator[None]:
    """Send everything written to stdout meanwhile — Python prints, logging handlers bound to
    sys.stdout, C libraries writing to fd 1 — to stderr; the real stdout is restored after."""
    sys.stdout.flush()
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):  # a captured stream (tests): no fd to move
        fd = None
    saved = os.dup(fd) if fd is not None else None
    old = sys.stdout
    try:
        if fd is not None:
            sys.stderr.flush()
            os.dup2(sys.stderr.fileno(), fd)
        sys.stdout = sys.stderr
        yield
    finally:
        sys.stdout.flush()
        old.flush()  # what was written to the original object meanwhile belongs to stderr too
        sys.stdout = old
        if saved is not None and fd is not None:
            os.dup2(saved, fd)
            os.close(saved)


def progress(label: str, *, min_s: float = 1.0) -> Callable[[int, int], None]:
    """A (done, total) callback that draws progress on stderr: a rich bar on a terminal, else a
    line every 10%; nothing for work that ends within `min_s` seconds."""
    t0 = time.monotonic()
    state: dict[str, Any] = {"bar": None, "task": None, "next": 0.1}

    def update(done: int, total: int) -> None:
        if time.monotonic() - t0 < min_s:  # quick work (or its first second): no output
            return
        if sys.stderr.isatty():
            if state["bar"] is None:
                if done >= total:
                    return
                from rich.console import Console
                from rich.progress import Progress

                bar = Progress(console=Console(stderr=True), transient=True)
                bar.start()
                state["bar"], state["task"] = bar, bar.add_task(label, total=total)
            bar = state["bar"]
            bar.update(state["task"], completed=done)
            if done >= total:
                bar.stop()
            return
        if total and done / total >= float(state["next"]):
            notice(f"{label}: {done}/{total} ({time.monotonic() - t0:.0f} s)")
            state["next"] = float(state["next"]) + 0.1
            while total and done / total >= float(state["next"]):
                state["next"] = float(state["next"]) + 0.1

    return update


@contextlib.contextmanager
def say_if_slow(text: str, *, after_s: float = 3.0) -> Iterator[None]:
    """Print `text` on stderr if the block is still running after `after_s` seconds (work with no
    progress of its own, e.g. the simulator kernel compiling on its first run); '' says nothing."""
    import threading

    if not text:
        yield
        return
    timer = threading.Timer(after_s, notice, [text])
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        timer.cancel()
