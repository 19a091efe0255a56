"""Sandboxed execution of untrusted, LLM-written Python snippets.

Each snippet runs in its own interpreter process (`python -I`) with a wall-clock timeout that
kills the whole process tree, a memory and process limit on that tree, rlimits, a fresh temp
working dir, a scrubbed environment, no network and capped output. Layers are detected once:
without privilege Landlock, seccomp and no-new-privs; with root also namespaces and a fresh
uid. `describe_layers()` names those in force (as does each `ExecResult.isolation`);
docs/sandbox.md says what each one stops.
"""

from __future__ import annotations

from aimo.solver.sandbox._detect import describe_layers, detect_isolation
from aimo.solver.sandbox._pool import SandboxPool
from aimo.solver.sandbox._run import run_code
from aimo.solver.sandbox._types import ExecResult, Isolation, SandboxLimits

__all__ = ["ExecResult", "Isolation", "SandboxLimits", "SandboxPool", "describe_layers", "detect_isolation",
           "run_code"]
