"""`run_code`: one snippet, blocking, under the best isolation available here."""

from __future__ import annotations

import sys
import time

from aimo.solver.sandbox._detect import detect_isolation
from aimo.solver.sandbox._execute import execute
from aimo.solver.sandbox._types import ExecResult, SandboxLimits


def run_code(code: str, limits: SandboxLimits = SandboxLimits(), *,
             python: str | None = None) -> ExecResult:
    """Run untrusted `code` in its own sandboxed interpreter process and wait for it.

    Args:
        code: Python source, run as `__main__` of a file in a read-only directory; the working
            directory is a fresh, private, writable temp dir removed afterwards.
        limits: wall clock, CPU, memory, file size, process and output caps.
        python: interpreter to run it with (default `sys.executable`), started with `-I`.

    Returns:
        An `ExecResult`; never raises for anything the snippet does (sandbox failures are
        reported as `ok=False` with `error="sandbox ..."`). Thread-safe.
    """
    python = python or sys.executable
    start = time.monotonic()
    try:
        isolation = detect_isolation(python)
    except Exception as exc:  # noqa: BLE001
        return ExecResult(False, "", "", (time.monotonic() - start) * 1000, False, False, None,
                          f"sandbox error: {exc!r}")
    return execute(code, limits, isolation, python)
