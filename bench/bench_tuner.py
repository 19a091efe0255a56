"""Benchmark of the tuner: N trials × K folds × B bootstrap replicates on the default synthetic store.

Prints the wall time of a whole `run_tune` (K fold studies + the final study, N trials each,
then the held-out scoring of the tuned procedure, the seed and the baselines) and how the
workers' CPU time splits between the simulator, the sampler and the rest (Optuna storage,
building policies, Python). The issue's figure: 1,000 trials × 5 folds × 100 replicates, goal
≤ 10 minutes on a 2-core machine.

Run: `python bench/bench_tuner.py [--trials 1000] [--folds 5] [--bootstrap 100] [--workers 2]`
     `python bench/bench_tuner.py --sampler-only --trials 1000` (the sampler alone, cost vs history)
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import tempfile
import time
from pathlib import Path

from aimo.recorder.synth import synthesize_store
from aimo.tuner.cli_impl import run_tune
from aimo.tuner.study import open_storage, quiet_optuna


def _store(path: Path | None, tmp: Path) -> Path:
    if path is not None:
        return path
    out = tmp / "bench-default.duckdb"
    t0 = time.perf_counter()
    synthesize_store(out, n_problems=50, n_samples=32, seed=0, profile="r1-14b", progress=False)
    print(f"default synthetic store (r1-14b, 50 problems × 32 samples, seed 0) in "
          f"{time.perf_counter() - t0:.1f} s")
    return out


def sampler_only(trials: int, sampler_name: str, seed: int, tmp: Path, parallel: bool = True) -> None:
    """One study of `trials` trials on the real space, sampler, constraint and journal storage,
    with the simulator replaced by a cheap stand-in: the sampler's CPU cost as history grows.
    `parallel`: the sampler as several workers get it (TPE's constant liar on)."""
    import numpy as np
    import optuna

    from aimo.tuner.study import make_sampler, open_storage, quiet_optuna, timed
    from aimo.tuner.space import default_space

    quiet_optuna()
    space = default_space()
    sampler = timed(make_sampler(sampler_name, seed, trials=trials, parallel=parallel, space=space))
    study = optuna.create_study(storage=open_storage(str(tmp / "s.journal")), sampler=sampler,
                                direction="maximize")
    study.enqueue_trial(space.base_params()[0])
    marks = sorted({m for m in (50, 100, 250, 500, 750, 1000, trials) if m <= trials})
    window: list[float] = []

    def objective(trial: optuna.Trial) -> float:
        values = space.suggest(trial)
        space.policy(values)
        rng = np.random.default_rng(trial.number)
        trial.set_constraint("overtime", float(rng.uniform(-0.1, 0.02)))
        return float(values["schedule.samples"]) * 0.1 + float(rng.normal())

    t0 = time.process_time()
    for n in range(1, trials + 1):
        study.optimize(objective, n_trials=1)
        window.append(sampler.pop(n - 1))
        if n in marks:
            recent = window[-min(len(window), 50):]
            print(f"trials {n:5d}: sampler {1000 * float(np.mean(recent)):6.1f} ms CPU per trial "
                  f"(mean of the last {len(recent)}), process CPU so far {time.process_time() - t0:6.1f} s")
    print(f"sampler CPU over {trials} trials: {sum(window):.1f} s "
          f"({1000 * sum(window) / trials:.1f} ms per trial on average)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=1000, help="trials per study")
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--bootstrap", type=int, default=100)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--sampler", default="tpe")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--traces", type=Path, default=None, help="store (default: a fresh default one)")
    ap.add_argument("--sampler-only", action="store_true",
                    help="measure only the sampler's cost over one study of --trials trials")
    args = ap.parse_args()
    if args.sampler_only:
        with tempfile.TemporaryDirectory() as tmp_name:
            sampler_only(args.trials, args.sampler, args.seed, Path(tmp_name), args.workers > 1)
        return

    import optuna

    quiet_optuna()
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
          f"python {platform.python_version()}")
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        traces = _store(args.traces, tmp)
        storage = str(tmp / "bench.journal")
        lines: list[str] = []
        load0 = os.getloadavg()[0]
        self0 = resource.getrusage(resource.RUSAGE_SELF)
        kids0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        result = run_tune(
            traces, args.trials, tmp / "best.yaml", storage=storage, study="bench",
            folds=args.folds, bootstrap=args.bootstrap, workers=args.workers, seed=args.seed,
            sampler=args.sampler, echo=lines.append, progress_bar=False,
        )
        wall = time.perf_counter() - t0
        self1 = resource.getrusage(resource.RUSAGE_SELF)
        kids1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        load1 = os.getloadavg()[0]
        names = [*(f"bench:fold{k + 1}of{args.folds}" for k in range(args.folds)), "bench"]
        sim = sampler = 0.0
        n = pruned = 0
        # one storage for all studies: each fresh journal storage replays the whole file
        # (load_study_summary per study did that six times: ≈ 1.5 min after a 6,000-trial run)
        store = open_storage(storage)
        for name in names:
            for t in optuna.load_study(study_name=name, storage=store).get_trials(deepcopy=False):
                if t.state.name == "COMPLETE":
                    n += 1
                    sim += float(t.user_attrs.get("sim_s", 0.0))
                    sampler += float(t.user_attrs.get("sampler_s", 0.0))
                elif t.state.name == "PRUNED":
                    pruned += 1
        print("\n".join(lines))
    def cpu(a: resource.struct_rusage, b: resource.struct_rusage) -> float:
        return (b.ru_utime - a.ru_utime) + (b.ru_stime - a.ru_stime)

    main_cpu = cpu(self0, self1)
    worker_cpu = cpu(kids0, kids1) if args.workers > 1 else main_cpu
    other = max(0.0, worker_cpu - sim - sampler)
    studies = args.folds + 1
    idle = (worker_cpu + (main_cpu if args.workers > 1 else 0.0)) / min(2, os.cpu_count() or 2)
    print()
    print(f"== {args.trials} trials × {args.folds} folds × {args.bootstrap} replicates "
          f"({studies} studies: {args.folds} fold + 1 final), sampler {args.sampler}, "
          f"{args.workers} workers ==")
    print(f"finished trials: {n} complete + {pruned} pruned (target {studies * args.trials}); "
          f"competitions simulated ≤ {n * args.bootstrap:,} (cache hits skip some)")
    print(f"wall time: {wall:.1f} s in all = tuning {result.tuning_s:.1f} s + held-out scoring, "
          f"baselines and export {wall - result.tuning_s:.1f} s  (load average {load0:.1f} at "
          f"start, {load1:.1f} at end: other processes share these cores)")
    print(f"CPU time of the workers: {worker_cpu:.1f} s = simulator {sim:.1f} s "
          f"({100 * sim / worker_cpu:.0f}%) + sampler {sampler:.1f} s ({100 * sampler / worker_cpu:.0f}%)"
          f" + other (Optuna storage, policy building, start-up) {other:.1f} s "
          f"({100 * other / worker_cpu:.0f}%)" + (f"; main process {main_cpu:.1f} s (progress, "
          "held-out scoring, export)" if args.workers > 1 else " (one worker: the main process)"))
    print(f"per trial (CPU): simulator {1000 * sim / max(1, n):.1f} ms, sampler "
          f"{1000 * sampler / max(1, n):.1f} ms, all {1000 * worker_cpu / max(1, n + pruned):.1f} ms")
    print(f"on an otherwise idle 2-core machine ≈ {idle:.0f} s (all CPU time spread over 2 cores)")
    if (args.trials, args.folds, args.bootstrap) == (1000, 5, 100):
        print(f"goal ≤ 600 s for 1,000 × 5 × 100: {'met' if wall <= 600 else 'NOT met'} (wall), "
              f"{'met' if idle <= 600 else 'NOT met'} (idle-machine estimate)")

if __name__ == "__main__":
    main()
