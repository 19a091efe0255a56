"""Sandboxed execution of untrusted, LLM-written Python snippets.

Each snippet runs in its own interpreter process (`python -I`) with a wall-clock timeout that
kills the whole process tree, rlimits (CPU, address space, file size, processes), a fresh temp
working dir, a scrubbed environment, no network and capped output. Isolation mechanisms
(namespaces, unprivileged uid, pids cgroup, audit hook) are detected once and the strongest
that works is used; each result names them in `ExecResult.isolation`.
"""

from __future__ import annotations

from solver.sandbox._detect import detect_isolation
from solver.sandbox._pool import SandboxPool
from solver.sandbox._run import run_code
from solver.sandbox._types import ExecResult, Isolation, SandboxLimits

__all__ = ["ExecResult", "Isolation", "SandboxLimits", "SandboxPool", "detect_isolation", "run_code"]
