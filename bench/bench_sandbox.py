"""Sandbox start-to-result time of a trivial and a numpy/sympy snippet, per isolation.

    python bench/bench_sandbox.py [--runs 20] [--best-only]

Modes: `best` (what `run_code` picks here), and with --best-only skipped: `unprivileged`
(Landlock + seccomp + tree watch, no namespaces) and `bare` (no namespaces, no Landlock, no
seccomp: roughly the old fallback). Prints the median and p90 wall time per snippet in ms.
`--best-only` uses only the public API, so it also runs against older sandbox code
(PYTHONPATH=<older checkout>) for a before/after figure. Wall time on a shared machine is noisy:
compare modes from the same run, which interleaves them.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from typing import Callable

from aimo.solver.sandbox import SandboxLimits, run_code

SNIPPETS = {
    "print": "print(sum(range(10)))",
    "numpy+sympy": ("import numpy as np, sympy as sp\n"
                    "x = sp.symbols('x')\n"
                    "print(int(np.sum([int(r) for r in sp.solve(x**2 - 5*x + 6, x)])))\n"),
}
LIMITS = SandboxLimits(timeout_s=60)


def _modes(best_only: bool) -> dict[str, Callable[[str], object]]:
    modes: dict[str, Callable[[str], object]] = {"best": lambda code: run_code(code, LIMITS)}
    if not best_only:
        from aimo.solver.sandbox import Isolation
        from aimo.solver.sandbox._execute import execute
        from aimo.solver.sandbox._layers import unprivileged

        iso = unprivileged()
        modes["unprivileged"] = lambda code: execute(code, LIMITS, iso, sys.executable)
        modes["bare"] = lambda code: execute(code, LIMITS, Isolation(), sys.executable)
    return modes


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--best-only", action="store_true")
    args = ap.parse_args()
    modes = _modes(args.best_only)
    for fn in modes.values():  # warm: detection, imports, page cache
        fn("pass")
    times: dict[tuple[str, str], list[float]] = {(m, s): [] for m in modes for s in SNIPPETS}
    for _ in range(args.runs):
        for s, code in SNIPPETS.items():
            for m, fn in modes.items():
                t0 = time.perf_counter()
                r = fn(code)
                times[(m, s)].append((time.perf_counter() - t0) * 1000)
                assert r.ok, r
    print(f"{'mode':<14}{'snippet':<14}{'median ms':>10}{'p90 ms':>10}")
    for (m, s), ts in times.items():
        ts.sort()
        print(f"{m:<14}{s:<14}{statistics.median(ts):>10.1f}{ts[int(0.9 * (len(ts) - 1))]:>10.1f}")


if __name__ == "__main__":
    main()
