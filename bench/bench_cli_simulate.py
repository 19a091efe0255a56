"""Wall time of the whole `aimo simulate --bootstrap N` command, start-up included, as a user runs it.

    python bench/bench_cli_simulate.py [--store out/demo-synthetic.duckdb] [--bootstrap 2000]
                                       [--repeats 3] [--extra=--reference]

Each repeat is a fresh subprocess (`python -m aimo simulate ...`), so Python start-up, imports,
loading the store, encoding it and the numba cache load are all counted. The first run also
fills numba's on-disk cache if it is cold; it is reported separately ("first") and the best of
the remaining repeats is the figure ("warm"), as wall time and as the child's CPU time. The
default store is written with `aimo synth` (50 problems x 32 samples, seed 0) when missing: the
store `aimo demo` uses.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import shlex
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_once(cmd: list[str]) -> tuple[float, float]:
    """(wall, CPU) seconds of one subprocess, CPU = user + system of the child (less inflated by
    other load on a shared machine than wall time); raises when the command fails."""
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    dt = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit(f"command failed ({proc.returncode}): {shlex.join(cmd)}\n{proc.stderr}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return dt, cpu


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--store", type=Path, default=ROOT / "out" / "demo-synthetic.duckdb")
    ap.add_argument("--bootstrap", type=int, default=2000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--extra", default="", help="extra arguments for `aimo simulate`")
    args = ap.parse_args()
    py = sys.executable
    if not args.store.exists():
        args.store.parent.mkdir(parents=True, exist_ok=True)
        run_once([py, "-m", "aimo", "synth", "--out", str(args.store)])
    cmd = [py, "-m", "aimo", "simulate", "--traces", str(args.store),
           "--bootstrap", str(args.bootstrap), *shlex.split(args.extra)]
    print(f"machine: {platform.node()} {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}")
    print(f"command: {shlex.join(cmd)}")
    runs = [run_once(cmd) for _ in range(max(1, args.repeats))]
    print(f"first: {runs[0][0]:.2f} s wall, {runs[0][1]:.2f} s CPU")
    if len(runs) > 1:
        rest = runs[1:]
        print(f"warm (best of {len(rest)}): {min(w for w, _ in rest):.2f} s wall, "
              f"{min(c for _, c in rest):.2f} s CPU; all (wall/CPU): "
              + ", ".join(f"{w:.2f}/{c:.2f}" for w, c in runs))
    print(f"load after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
