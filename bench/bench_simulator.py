"""Competition simulations per second: the reference replay and the numba fast path side by side
(same traces, same policy, same bootstrap draws), and how the fast path's cost grows with samples
per question and with questions per competition.

    python bench/bench_simulator.py [--replicates 2000] [--reference-replicates 4] [--store PATH]

The trace store is built in memory with `recorder.synth` (100 problems × 32 samples, seed 0:
lengths ≈ 2k–16k tokens, ≈ 2.3 answers per sample, about half right) or loaded from `--store`.
Rates are competitions per CPU-second of this one process (best of `--repeats`), so other load
on the machine inflates them less than wall time would; wall-clock rates are printed too.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import platform
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from aimo.simulator.fast import FastSimulator
from aimo.core.hardware import load_profile
from aimo.simulator.replay import bootstrap_competitions, summarize
from aimo.core.policy import Policy, load_policy
from aimo.core.traces import NO_VALUE, SOURCE_BOXED, SOURCE_CODE, ProblemTrace, SampleTrace

PRESETS = ("seed-2nd-place", "majority-n", "first-answer", "fast-8")


# ------------------------------------------------------------------------------ traces


def synthetic_problems(n_problems: int, n_samples: int, seed: int) -> list[ProblemTrace]:
    """`recorder.synth` questions as in-memory traces (no DuckDB), answers in token order."""
    from aimo.recorder.synth import synthesize_questions

    problems = []
    for q in synthesize_questions(n_problems, n_samples, seed=seed):
        smp = q.samples.to_pydict()
        ans = q.answers.to_pydict()
        rows: dict[int, list[int]] = {}
        for j, idx in enumerate(ans["sample_idx"]):
            rows.setdefault(idx, []).append(j)
        samples = []
        for i, idx in enumerate(smp["sample_idx"]):
            js = sorted(rows.get(idx, []), key=lambda j: (ans["token_pos"][j], ans["t_s"][j]))
            value = [NO_VALUE if ans["value"][j] is None else ans["value"][j] for j in js]
            exec_ms = [math.nan if ans["exec_ms"][j] is None else ans["exec_ms"][j] for j in js]
            samples.append(SampleTrace(
                sample=idx, kind=smp["kind"][i], n_tokens=smp["n_tokens"][i],
                finish_reason=smp["finish_reason"][i], prompt_tokens=smp["prompt_tokens"][i],
                end_s=smp["end_s"][i],
                ans_token=np.asarray([ans["token_pos"][j] for j in js], np.int32),
                ans_time=np.asarray([ans["t_s"][j] for j in js], np.float64),
                ans_value=np.asarray(value, np.int16),
                ans_source=np.asarray([SOURCE_CODE if ans["source"][j] == "code" else SOURCE_BOXED
                                       for j in js], np.int8),
                ans_code_ok=np.asarray([bool(ans["code_ok"][j]) for j in js], np.bool_),
                ans_exec_ms=np.asarray(exec_ms, np.float32),
            ))
        problems.append(ProblemTrace("synthetic", q.spec.problem_id, q.spec.position,
                                     q.spec.answer, tuple(samples)))
    return problems


def store_stats(problems: Sequence[ProblemTrace]) -> str:
    tokens = np.array([s.n_tokens for p in problems for s in p.samples])
    answers = np.array([s.n_answers for p in problems for s in p.samples])
    right = np.mean([any(int(v) == p.answer for v in s.ans_value[-1:])
                     for p in problems for s in p.samples])
    n = len(problems[0].samples) if problems else 0
    return (f"{len(problems)} problems × {n} samples; tokens p5/p50/p95 "
            f"{np.percentile(tokens, 5):,.0f}/{np.percentile(tokens, 50):,.0f}/"
            f"{np.percentile(tokens, 95):,.0f}; {answers.mean():.2f} answers per sample; "
            f"{right:.0%} of samples end on the right answer")


# ------------------------------------------------------------------------------ timing


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def timed(fn: Callable[[], object], count: int, repeats: int) -> tuple[float, float]:
    """Best (CPU-time, wall-time) rate of `count` items over `repeats` runs of `fn`."""
    best_cpu = best_wall = math.inf
    for _ in range(repeats):
        c0, w0 = time.process_time(), time.perf_counter()
        fn()
        best_cpu = min(best_cpu, time.process_time() - c0)
        best_wall = min(best_wall, time.perf_counter() - w0)
    return count / max(best_cpu, 1e-9), count / max(best_wall, 1e-9)


def one_level(policy: Policy, samples: int) -> Policy:
    """The policy held at its start level, with `samples` samples per question."""
    level = dataclasses.replace(policy.schedule.level(policy.schedule.start_level),
                                samples=samples)
    schedule = dataclasses.replace(policy.schedule, levels=(level,), start_level=1,
                                   thresholds_s=())
    return dataclasses.replace(policy, schedule=schedule)


# ------------------------------------------------------------------------------ main


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--replicates", type=int, default=2000, help="fast-path competitions per run")
    ap.add_argument("--reference-replicates", type=int, default=4,
                    help="reference competitions per run (it is ~1000× slower)")
    ap.add_argument("--repeats", type=int, default=3, help="runs per figure; the best is kept")
    ap.add_argument("--store", type=Path, default=None,
                    help="a DuckDB trace store to use instead of the in-memory synthetic one")
    args = ap.parse_args(argv)

    import numba

    print(f"machine: {platform.platform()}; {cpu_name()}; {os.cpu_count()} CPUs; "
          f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"python {platform.python_version()}, numpy {np.__version__}, numba {numba.__version__}")
    t0 = time.perf_counter()
    if args.store is not None:
        from aimo.core.store import load_problem_traces

        problems = load_problem_traces(args.store)
        source = str(args.store)
    else:
        problems = synthetic_problems(100, 32, seed=0)
        source = "aimo.recorder.synth in memory, seed 0"
    print(f"traces: {source}: {store_stats(problems)} ({time.perf_counter() - t0:.1f} s)")
    profile = load_profile("l4x4-14b-w4kv8")
    seed = load_policy("seed-2nd-place")
    n50 = list(range(min(50, len(problems))))

    t0 = time.perf_counter()
    sim = FastSimulator(problems, profile)
    t_encode = time.perf_counter() - t0
    t0 = time.perf_counter()
    sim.bootstrap(seed, replicates=1, seed=0, problem_subset=n50)
    print(f"fast path: encode {t_encode:.2f} s; first call {time.perf_counter() - t0:.1f} s "
          "(numba compile on a cold cache, else cache load)")

    # same draws, same results: the reference's summary for a seed equals the fast path's
    served = [problems[i] for i in n50]
    ref_summary = summarize(bootstrap_competitions(
        served, seed, profile, replicates=args.reference_replicates, seed=7))
    same = sim.bootstrap(seed, replicates=args.reference_replicates, seed=7,
                         problem_subset=n50) == ref_summary
    print(f"same bootstrap summary as the reference for seed 7 "
          f"({args.reference_replicates} replicates): {same}")

    R, RR, rep = args.replicates, args.reference_replicates, args.repeats
    print()
    print(f"competitions per CPU-second, one core, best of {rep} "
          "(wall-clock rate in brackets); bootstrap replicates: same order and sample draws")
    print(f"{'configuration':44s} {'reference':>16s} {'fast path':>20s} {'speed-up':>9s}")

    def row(label: str, policy: Policy, subset: Sequence[int] | None,
            n_questions: int | None = None, reference: bool = True,
            budget_s: float = 18000.0) -> None:
        chosen = problems if subset is None else [problems[i] for i in subset]
        f_cpu, f_wall = timed(lambda: sim.bootstrap(
            policy, replicates=R, seed=1, problem_subset=subset, n_questions=n_questions,
            budget_s=budget_s), R, rep)
        if reference:
            r_cpu, r_wall = timed(lambda: bootstrap_competitions(
                chosen, policy, profile, replicates=RR, seed=1, n_questions=n_questions,
                budget_s=budget_s), RR, 1)
            ref = f"{r_cpu:7.2f} [{r_wall:6.2f}]"
            gain = f"×{f_cpu / r_cpu:,.0f}"
        else:
            ref, gain = "", ""
        nq = n_questions or len(chosen)
        per_q = 1e6 / f_cpu / nq
        print(f"{label:44s} {ref:>16s} {f_cpu:9,.0f} [{f_wall:7,.0f}] {gain:>9s}"
              f"   {1e6 / f_cpu:6.0f} µs/competition, {per_q:5.2f} µs/question")

    for name in PRESETS:
        row(f"{name}, 50 questions", load_policy(name), n50)
    f_cpu, f_wall = timed(lambda: [sim.competition(seed, order=n50) for _ in range(200)], 200,
                          rep)
    print(f"{'seed-2nd-place, 50 q, single competition()':44s} {'':>16s} "
          f"{f_cpu:9,.0f} [{f_wall:7,.0f}]   (one Python call per competition, "
          "per-slot details)")

    print()
    print("cost vs samples per question (seed-2nd-place rules, one level, 50 questions):")
    for n in (8, 15, 32):
        row(f"  {n:2d} samples per question", one_level(seed, n), n50)
    print("cost vs questions per competition (seed-2nd-place, each problem served once; cutoff\n"
          "and budget scaled with the questions, so the time per question stays the same):")
    for nq in (25, 50, 100):
        if nq <= len(problems):
            scale = nq / 50
            pol = dataclasses.replace(seed, schedule=dataclasses.replace(
                seed.schedule, cutoff_s=seed.schedule.cutoff_s * scale))
            row(f"  {nq:3d} questions", pol, list(range(nq)), budget_s=18000.0 * scale)


if __name__ == "__main__":
    main()
