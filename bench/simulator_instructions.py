"""Instructions and branch misses per competition of the simulator's fast path, counted by
valgrind (callgrind with its branch simulator) — exact where wall time on a shared machine
swings by ±25%, so kernel changes can be compared one against another.

    python bench/simulator_instructions.py [--replicates 100] [--store PATH] [--policy NAME|YAML]

Runs the seed preset's bootstrap (50 questions) once under `valgrind --tool=callgrind
--branch-sim=yes` and counts what the JIT-compiled code executed (valgrind files it under the
object "???"), divided by the competitions replayed (the warm-up one included). Needs
valgrind (Debian: `apt install valgrind`); takes about two minutes. The kernel is compiled for
the host CPU first (outside valgrind, which reports another CPU), into a cache the valgrind run
then loads.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import llvmlite.binding as llvm

REPO = Path(__file__).resolve().parent.parent


def run_bootstrap(store: Path, replicates: int, policy_spec: str = "seed-2nd-place") -> None:
    """The measured work: one warm-up competition, then `replicates` more."""
    from aimo.simulator.fast import FastSimulator
    from aimo.core.hardware import load_profile
    from aimo.core.policy import load_policy
    from aimo.core.store import load_problem_traces

    sim = FastSimulator(load_problem_traces(store), load_profile("l4x4-14b-w4kv8"))
    policy = load_policy(policy_spec)
    subset = list(range(min(50, len(sim.problems))))
    sim.bootstrap_arrays(policy, replicates=1, seed=0, problem_subset=subset)
    if replicates:
        sim.bootstrap_arrays(policy, replicates=replicates, seed=1, problem_subset=subset)


def jit_costs(callgrind_out: Path) -> tuple[int, int, int]:
    """Self cost (instructions, conditional branches, their misses) of code without an object
    file (the JIT) in a callgrind output."""
    names: dict[str, str] = {}
    ob = ""
    skip = False
    events: list[str] = []
    tot = [0, 0, 0]
    for line in callgrind_out.read_text().splitlines():
        if line.startswith("events:"):
            events = line.split()[1:]
        elif line.startswith(("ob=", "cob=")):
            m = re.match(r"c?ob=\((\d+)\)(?: (.*))?", line.strip())
            if m and m.group(2):
                names[m.group(1)] = m.group(2)
            if m and line.startswith("ob="):
                ob = m.group(1)
        elif line.startswith("calls="):
            skip = True  # the next cost line is the call's inclusive cost
        elif line[:1].isdigit() or line[:1] in "+-*":
            if skip:
                skip = False
                continue
            if names.get(ob) == "???":
                vals = dict(zip(events, (int(x) for x in line.split()[1:])))
                tot[0] += vals.get("Ir", 0)
                tot[1] += vals.get("Bc", 0)
                tot[2] += vals.get("Bcm", 0)
    return tot[0], tot[1], tot[2]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--replicates", type=int, default=100)
    ap.add_argument("--store", type=Path, default=REPO / "out" / "demo-synthetic.duckdb")
    ap.add_argument("--policy", default="seed-2nd-place", help="preset name or policy YAML")
    ap.add_argument("--cpu", default=None,
                    help="compile for this LLVM CPU (e.g. x86-64-v3) instead of the host's: "
                         "valgrind 3.19 cannot run AVX-512 code (SIGILL on such hosts)")
    ap.add_argument("--inner", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.inner:
        run_bootstrap(args.store, args.replicates, args.policy)
        return
    if shutil.which("valgrind") is None:
        sys.exit("valgrind not found (Debian: apt install valgrind)")
    if not args.store.exists():
        sys.exit(f"{args.store}: no such trace store (make demo writes out/demo-synthetic.duckdb)")
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, NUMBA_CACHE_DIR=str(Path(tmp) / "numba"),
                   NUMBA_CPU_NAME=args.cpu or llvm.get_host_cpu_name(),
                   NUMBA_CPU_FEATURES="" if args.cpu else llvm.get_host_cpu_features().flatten())
        me = [sys.executable, __file__, "--inner", "--store", str(args.store), "--policy",
              args.policy]
        print("compiling the kernel for the host CPU …", flush=True)
        subprocess.run(me + ["--replicates", "0"], env=env, check=True)
        out = Path(tmp) / "callgrind.out"
        print(f"callgrind: {args.replicates + 1} competitions (about two minutes) …", flush=True)
        subprocess.run(["valgrind", "--tool=callgrind", "--branch-sim=yes",
                        f"--callgrind-out-file={out}"] + me
                       + ["--replicates", str(args.replicates)],
                       env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        ir, bc, bcm = jit_costs(out)
    n = args.replicates + 1
    print(f"{args.policy}, 50 questions, {args.store.name}: per competition "
          f"{ir / n:,.0f} instructions, {bc / n:,.0f} conditional branches, "
          f"{bcm / n:,.0f} mispredicted (valgrind's branch simulator)")


if __name__ == "__main__":
    main()
