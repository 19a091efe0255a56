"""Pick the strongest isolation that works on this machine, by trying each in turn once."""

from __future__ import annotations

import functools
import os
import sys
import threading

from solver.sandbox._cgroup import pids_base
from solver.sandbox._execute import execute
from solver.sandbox._types import Isolation, SandboxLimits

_TRIAL_LIMITS = SandboxLimits(timeout_s=20, cpu_s=10, memory_mb=512, file_mb=1, max_procs=8)
_lock = threading.Lock()
_best: dict[str, Isolation] = {}


def candidates() -> list[Isolation]:
    """Isolations worth trying here, strongest first (uid changes and namespaces need root)."""
    cg = pids_base() is not None
    if os.geteuid() != 0:
        return [Isolation(cgroup_pids=cg)]
    return [
        Isolation(netns=True, mountns=True, pidns=True, drop_uid=True, cgroup_pids=cg),
        Isolation(netns=True, pidns=True, drop_uid=True, cgroup_pids=cg),
        Isolation(drop_uid=True, cgroup_pids=cg),
        Isolation(netns=True, mountns=True, pidns=True, cgroup_pids=cg),
        Isolation(netns=True, pidns=True, cgroup_pids=cg),
        Isolation(cgroup_pids=cg),
    ]


@functools.lru_cache(maxsize=None)
def works(isolation: Isolation, python: str) -> bool:
    """Does a trivial snippet run correctly under `isolation` with this interpreter?"""
    result = execute("print('ok')", _TRIAL_LIMITS, isolation, python)
    return result.ok and result.stdout == "ok\n"


def detect_isolation(python: str | None = None) -> Isolation:
    """The strongest working isolation for `python` (default: this interpreter); cached.

    Thread-safe; the first call costs one trial run per candidate that fails (~50 ms each).
    """
    python = python or sys.executable
    with _lock:
        if python not in _best:
            _best[python] = next((c for c in candidates() if works(c, python)), Isolation())
        return _best[python]
