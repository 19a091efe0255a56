"""How much `seed-2nd-place` moves now that it reads answers as the original submission does
(issue 13, docs/seed-policy.md): `aimo simulate --bootstrap N` on the default synthetic store
(`aimo synth`), the former reading against the corrected preset, then each quirk alone on top of
the former reading (its own measured effect).

    python bench/seed_original.py [--replicates 1000] [--hardware l4x4-14b-w4kv8]
    python bench/seed_original.py --traces data/traces/olympiad-tiny.duckdb \
        --hardware h200-olympiad-tiny-w4kv8      # a real (tiny-model) recording instead

Writes nothing outside a temporary directory; prints a Markdown table.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from aimo.simulator.fast import FastSimulator
from aimo.core.hardware import load_profile
from aimo.core.policy import Policy, dump_policy, load_policy
from aimo.core.store import load_problem_traces

REPO = Path(__file__).resolve().parents[1]


def legacy(seed: Policy) -> Policy:
    """The project's reading of the seed before issue 13 (arrival order, every box, boxed 0 kept,
    code seen per the profile, 1e-9 tie tolerance, no final read, valid-only early timeouts)."""
    return dataclasses.replace(
        seed, name="seed-2nd-place-former",
        question_stop=dataclasses.replace(seed.question_stop, order="arrival"),
        check=dataclasses.replace(seed.check, boxes="all", boxed_zero="keep",
                                  code_overlap="profile"),
        vote=dataclasses.replace(seed.vote, tie_tolerance=1e-9, final_read=False),
        schedule=dataclasses.replace(seed.schedule, early_timeout_count="valid"),
    )


def one_quirk(base: Policy, item: str) -> Policy:
    """`base` (the former reading) with one of the original's quirks switched on."""
    r = dataclasses.replace
    changes = {
        "1 boxed_zero: ignore": lambda p: r(p, check=r(p.check, boxed_zero="ignore")),
        "2 order: index": lambda p: r(p, question_stop=r(p.question_stop, order="index")),
        "3 final_read": lambda p: r(p, vote=r(p.vote, final_read=True)),
        "4 early_timeout_count: history_if_none":
            lambda p: r(p, schedule=r(p.schedule, early_timeout_count="history_if_none")),
        "5 boxes: last": lambda p: r(p, check=r(p.check, boxes="last")),
        "7 code_overlap: inline": lambda p: r(p, check=r(p.check, code_overlap="inline")),
        "9 tie_tolerance: 0": lambda p: r(p, vote=r(p.vote, tie_tolerance=0.0)),
        # not a policy element: a check every 20 chunks of 2 tokens (rule 8's bound)
        "8 every_tokens: 40 (2-token chunks)": lambda p: r(p, check=r(p.check, every_tokens=40)),
    }
    return r(changes[item](base), name=f"former + {item}")


def cli_bootstrap(traces: Path, policy: str, hardware: str, replicates: int) -> dict:
    """`aimo simulate --bootstrap N --json` (the command a user runs)."""
    cmd = [sys.executable, "-m", "aimo.cli", "simulate", "--traces", str(traces), "--policy",
           policy, "--hardware", hardware, "--bootstrap", str(replicates), "--json"]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, cwd=REPO).stdout
    return json.loads(out[out.index("{"):])["bootstrap"]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--replicates", type=int, default=1000)
    ap.add_argument("--hardware", default="l4x4-14b-w4kv8")
    ap.add_argument("--traces", type=Path, default=None,
                    help="an existing trace store (default: a fresh `aimo synth` store)")
    args = ap.parse_args(argv)
    seed = load_policy("seed-2nd-place")
    former = legacy(seed)
    with tempfile.TemporaryDirectory() as tmp:
        traces = args.traces.resolve() if args.traces else Path(tmp) / "synth.duckdb"
        if args.traces is None:
            subprocess.run([sys.executable, "-m", "aimo.cli", "synth", "--out", str(traces)],
                           check=True, capture_output=True, cwd=REPO)
        former_yaml = dump_policy(former, Path(tmp) / "former.yaml")
        rows = [("former reading (before issue 13)", cli_bootstrap(
                    traces, str(former_yaml), args.hardware, args.replicates)),
                ("seed-2nd-place (the original)", cli_bootstrap(
                    traces, "seed-2nd-place", args.hardware, args.replicates)),
                ("seed-2nd-place-arrival", cli_bootstrap(
                    traces, "seed-2nd-place-arrival", args.hardware, args.replicates))]
        sim = FastSimulator(load_problem_traces(traces), load_profile(args.hardware))
        items = ["1 boxed_zero: ignore", "2 order: index", "3 final_read",
                 "4 early_timeout_count: history_if_none", "5 boxes: last",
                 "7 code_overlap: inline", "9 tie_tolerance: 0",
                 "8 every_tokens: 40 (2-token chunks)"]
        for item in items:
            b = sim.bootstrap(one_quirk(former, item), replicates=args.replicates, seed=0)
            rows.append((f"former + {item}", {
                "mean_score": b.mean_score, "score_interval_90": [b.score_lo, b.score_hi],
                "mean_time_s": b.mean_time_s, "p_overtime": b.p_overtime}))
    base_score, base_time = rows[0][1]["mean_score"], rows[0][1]["mean_time_s"]
    store = args.traces or "aimo synth defaults (50 problems × 32 samples, seed 0)"
    print(f"store: {store}; "
          f"hardware {args.hardware}; {args.replicates} bootstrap replicates, seed 0\n")
    print("| policy | mean score | 90% interval | Δ score | mean time (s) | Δ time (s) "
          "| p(overtime) |")
    print("|---|---|---|---|---|---|---|")
    for name, b in rows:
        lo, hi = b["score_interval_90"]
        print(f"| {name} | {b['mean_score']:.3f} | {lo:g}–{hi:g} | "
              f"{b['mean_score'] - base_score:+.3f} | {b['mean_time_s']:.0f} | "
              f"{b['mean_time_s'] - base_time:+.0f} | {b['p_overtime']:.3f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
