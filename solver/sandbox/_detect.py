"""Pick the strongest isolation that works on this machine, by trying each in turn once."""

from __future__ import annotations

import dataclasses
import functools
import os
import sys
import threading

from aimo.solver.sandbox._execute import execute, sweep_stale
from aimo.solver.sandbox._layers import unprivileged
from aimo.solver.sandbox._types import Isolation, SandboxLimits

_TRIAL_LIMITS = SandboxLimits(timeout_s=20, cpu_s=10, memory_mb=512, file_mb=1, max_procs=8)
_lock = threading.Lock()
_best: dict[str, Isolation] = {}


def candidates() -> list[Isolation]:
    """Isolations worth trying here, strongest first (uid changes and namespaces need root);
    the unprivileged layers join every one, and the last resort has none of them."""
    base = unprivileged()
    full = dataclasses.replace(base, netns=True, mountns=True, pidns=True, drop_uid=True)
    return [*([full] if os.geteuid() == 0 else []), base, Isolation()]


@functools.cache
def works(isolation: Isolation, python: str) -> bool:
    """Does a trivial snippet run correctly under `isolation` with this interpreter?"""
    result = execute("print('ok')", _TRIAL_LIMITS, isolation, python)
    return result.ok and result.stdout == "ok\n"


def detect_isolation(python: str | None = None) -> Isolation:
    """The strongest working isolation for `python` (default: this interpreter); cached.

    Thread-safe; the first call sweeps run folders left by dead callers, and costs one trial run
    per candidate that fails (~50 ms each).
    """
    python = python or sys.executable
    with _lock:
        if not _best:
            sweep_stale()
        if python not in _best:
            _best[python] = next((c for c in candidates() if works(c, python)), Isolation())
        return _best[python]


def describe_layers(python: str | None = None) -> tuple[str, ...]:
    """Names of the layers snippets run under here (detecting them on first use)."""
    return detect_isolation(python).describe()
