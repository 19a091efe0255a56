"""Competition simulations per second: reference path vs numba fast path, side by side on the same
traces and policy; and how the fast path's cost grows with samples per question and questions.

    python bench/bench_simulator.py [--store out/demo-synthetic.duckdb] [--replicates 2000]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import tempfile
import time
from pathlib import Path

from simulator.fast import FastSimulator
from simulator.hardware import load_profile
from simulator.replay import bootstrap_competitions
from solver.policy import Policy, load_policy
from solver.store import load_problem_traces


def one_level(policy: Policy, samples: int) -> Policy:
    """The policy fixed at its start level, with `samples` samples per question."""
    level = dataclasses.replace(policy.schedule.level(policy.schedule.start_level), samples=samples)
    schedule = dataclasses.replace(policy.schedule, levels=(level,), start_level=1, thresholds_s=())
    return dataclasses.replace(policy, schedule=schedule)


def rate(fn, count: int) -> float:
    start = time.perf_counter()
    fn()
    return count / (time.perf_counter() - start)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--store", type=Path, default=None, help="trace store (default: a fresh synthetic 50×32)")
    ap.add_argument("--replicates", type=int, default=2000)
    ap.add_argument("--reference-replicates", type=int, default=10)
    args = ap.parse_args()
    store = args.store
    if store is None:
        from recorder.synth import synthesize_store

        store = Path(tempfile.mkdtemp()) / "bench.duckdb"
        synthesize_store(store, n_problems=50, n_samples=32, seed=0)
    print(f"machine: {platform.platform()}, {os.cpu_count()} CPUs; store {store}")
    problems = load_problem_traces(store)
    profile = load_profile("l4x4-14b-w4kv8")
    seed = load_policy("seed-2nd-place")
    fast = FastSimulator(problems, profile)
    t0 = time.perf_counter()
    fast.bootstrap(seed, replicates=2, seed=0)
    print(f"first fast call (numba compile or cache load): {time.perf_counter() - t0:.1f} s")
    ref = rate(lambda: bootstrap_competitions(problems, seed, profile,
                                              replicates=args.reference_replicates, seed=1),
               args.reference_replicates)
    fst = rate(lambda: fast.bootstrap(seed, replicates=args.replicates, seed=1), args.replicates)
    print(f"seed-2nd-place, {len(problems)} questions, one core: reference {ref:,.1f} /s, "
          f"fast {fst:,.0f} /s (×{fst / ref:,.0f})")
    for n in (8, 15, 32):
        pol = one_level(seed, n)
        r = rate(lambda: fast.bootstrap(pol, replicates=args.replicates // 2, seed=2), args.replicates // 2)
        print(f"  samples/question {n:>3}: fast {r:,.0f} competitions/s")
    for q in (25, 50, 100):
        r = rate(lambda: fast.bootstrap(seed, replicates=args.replicates // 2, seed=3, n_questions=q),
                 args.replicates // 2)
        print(f"  questions {q:>3}: fast {r:,.0f} competitions/s")


if __name__ == "__main__":
    main()
