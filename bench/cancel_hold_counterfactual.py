"""Counterfactual: the H100 seed HIL runs replayed as if each sample stop held the control loop.

Why: until 2026-12-08 the live adapter's `cancel` awaited lmdeploy's `session.abort()` round trip,
so every sample stop held the control loop for it while the batch decoded on; the simulator's
cancels cost the loop nothing (docs/hil.md, "Why the seed missed on set 4"). The adapter no longer
waits. This script checks the diagnosis on the four recorded sets: it replays them with the
reference replay patched so that each sample stop keeps the loop busy `hold` seconds more (the
`busy` clock of inline code runs), and prints the seed's errors per hold. It is an experiment,
not a model the simulator ships: the patch lives only in this process.

    python bench/cancel_hold_counterfactual.py [--holds 0 0.012 0.02] [--latency 1]
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import sys
import types
from pathlib import Path

import duckdb

import aimo.simulator.replay.competition as competition
import aimo.simulator.replay.question as question
from aimo.core.hardware import load_profile
from aimo.core.store import load_problem_traces
from aimo.simulator.validate import read_live_run, validate

REPO = Path(__file__).resolve().parents[1]
SETS = (("1", "hil-h100"), ("2 (seed1)", "hil-h100-seed1"), ("3 (seed2)", "hil-h100-seed2"),
        ("4 (seed3)", "hil-h100-seed3"))
STOP = '''            end_sample(s, "sample_stop")
            start_queued()'''
HELD = '''            end_sample(s, "sample_stop")
            busy = decided() + CANCEL_HOLD_S
            start_queued()'''


def held_replay(hold: float) -> types.FunctionType:
    """`replay_question` whose sample stops keep the loop busy `hold` seconds (a patched copy)."""
    source = inspect.getsource(question)
    for old, new in ((STOP, HELD), ("        nonlocal threshold\n", "        nonlocal threshold, busy\n")):
        if source.count(old) != 1:
            raise SystemExit(f"the reference replay changed: cannot patch {old.strip()!r}")
        source = source.replace(old, new)
    module = types.ModuleType(f"held_question_{hold}")
    module.__dict__["CANCEL_HOLD_S"] = hold
    sys.modules[module.__name__] = module  # dataclasses look their module up
    exec(compile(source, "<held question>", "exec"), module.__dict__)  # noqa: S102 - our own source
    return module.__dict__["replay_question"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--holds", type=float, nargs="+", default=[0.0, 0.012, 0.02])
    ap.add_argument("--latency", type=int, default=1, help="abort_latency_steps")
    args = ap.parse_args()
    profile = dataclasses.replace(load_profile("h100-14b-w4kv8"), abort_latency_steps=args.latency)
    original = competition.replay_question
    print(f"h100-14b-w4kv8, abort_latency_steps {args.latency}; seed-2nd-place on each H100 set")
    print("| hold per sample stop | set | median / p90 | total | worst question |")
    print("|---|---|---|---|---|")
    try:
        for hold in args.holds:
            competition.replay_question = held_replay(hold) if hold else original
            for name, stem in SETS:
                live = REPO / f"data/traces/{stem}-live.duckdb"
                with duckdb.connect(str(live), read_only=True) as con:
                    run = con.execute("SELECT run_id FROM runs WHERE kind = 'solve' AND "
                                      "run_id LIKE 'solve-seed-2nd-place%'").fetchall()[0][0]
                v = validate(read_live_run(live, run),
                             load_problem_traces(REPO / f"data/traces/{stem}-traces.duckdb"), profile)
                s = v.summary()
                worst = max(v.rows, key=lambda r: abs(r.rel_error))
                print(f"| {1000 * hold:.0f} ms | {name} | {100 * s['time_error_median']:.1f}% / "
                      f"{100 * s['time_error_p90']:.1f}% | {100 * s['total_error']:+.1f}% | "
                      f"{worst.problem_id} {worst.sim_s:.2f} s sim vs {worst.live_s:.2f} s live |")
    finally:
        competition.replay_question = original


if __name__ == "__main__":
    main()
