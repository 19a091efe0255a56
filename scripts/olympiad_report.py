"""The closing-the-loop report: the simulator's prediction from the recording vs the live runs.

Reads the bundled recording (data/traces/olympiad-tiny.duckdb), the live runs recorded by
`aimo solve --record` on the GPU machine (data/traces/olympiad-live.duckdb) and the hardware
profiles; writes docs/olympiad-loop/report-table.md (tables) and docs/olympiad-loop/times.png.

Live answers: the seed run's come from its `--json` report; the tuned run was cut by the call's
time limit before its report was printed, so its answers are re-derived by replaying the live
run's own samples with the tuned policy (that policy stops nothing on time: no question-stop rule,
its 480 s timeout never reached, sample stops by token), which gives the answers it submitted.

Run: `python scripts/olympiad_report.py` (a few seconds, CPU).
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from aimo.core.hardware import load_profile
from aimo.simulator.livecheck import LiveCheck
from aimo.simulator.validate import plot as validation_plot
from aimo.simulator.validate import read_live_run, validate
from aimo.core.store import load_problem_traces, read_connection

REPO = Path(__file__).resolve().parents[1]
RECORDING = REPO / "data/traces/olympiad-tiny.duckdb"
LIVE = REPO / "data/traces/olympiad-live.duckdb"
SEED_JSON = REPO / "data/measurements/olympiad-loop/live-seed-2nd-place.json"
POLICIES = {"seed-2nd-place": "seed-2nd-place",
            "tuned-olympiad": str(REPO / "data/policies/olympiad-tuned.yaml")}
PROFILES = ("h200-olympiad-tiny-w4kv8", "h200-olympiad-tiny-w4kv8-fit")
NO_POOL = "h200-olympiad-tiny-w4kv8, code_workers unset"  # the model before the live runs


def live_runs(path: Path) -> dict[str, str]:
    """policy name -> live run id (kind solve)."""
    with read_connection(path) as con:
        rows = con.execute("SELECT run_id FROM runs WHERE kind = 'solve'").fetchall()
    return {name: r for (r,) in rows for name in POLICIES if r.startswith(f"solve-{name}-")}


def checks(profile_name: str) -> list[LiveCheck]:
    """`aimo validate`'s comparison (simulator/validate.py) of each live run, first question left
    out (lmdeploy's first-batch stall). The seed run's answers come from its --json report; the
    tuned run's are re-derived from its own samples (its report was cut off); live start-up is
    the report's (the tuned run has none)."""
    if profile_name == NO_POOL:  # every code run starts at once (no sandbox-pool limit)
        profile = dataclasses.replace(load_profile(PROFILES[0]), code_workers=None)
    else:
        profile = load_profile(profile_name)
    recording = load_problem_traces(RECORDING)
    runs = live_runs(LIVE)
    out = []
    for name in POLICIES:
        seed = name == "seed-2nd-place"
        live = read_live_run(LIVE, runs[name], json_report=SEED_JSON if seed else None)
        live = dataclasses.replace(live, startup_s=live.startup_s if seed else None)
        out.append(validate(live, recording, profile, skip_first=True).check)
    return out


def table(rows: list[tuple[str, list[LiveCheck]]]) -> str:
    head = ("| profile | policy | questions | live accuracy (90%) | predicted accuracy (90%) | "
            "same answer | time error median / p90 | signed median | Σ question time live / "
            "predicted | start-up live / profile |\n|---|---|---|---|---|---|---|---|---|---|")
    lines = [head]
    for profile, cs in rows:
        for c in cs:
            start = (f"{c.live_startup_s:.1f} s / {c.predicted_startup_s:.0f} s"
                     if c.live_startup_s is not None else f"– / {c.predicted_startup_s:.0f} s")
            lines.append(
                f"| {profile} | {c.policy} | {len(c.pairs)} | {c.accuracy('live').render(100)}% | "
                f"{c.accuracy('predicted').render(100)}% | {100 * c.answers_agree:.0f}% | "
                f"{100 * c.median_error:.0f}% / {100 * c.p90_error:.0f}% | "
                f"{100 * c.signed_median_error:+.0f}% | {c.live_total_s:.1f} s / "
                f"{c.predicted_total_s:.1f} s | {start} |")
    return "\n".join(lines)


def plot(cs: list[LiveCheck], out: Path) -> None:
    validation_plot(cs, out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=REPO / "docs/olympiad-loop")
    a = ap.parse_args(argv)
    a.out.mkdir(parents=True, exist_ok=True)
    rows = [(p, checks(p)) for p in (*PROFILES, NO_POOL)]
    text = table(rows)
    (a.out / "report-table.md").write_text(text + "\n")
    plot(rows[0][1], a.out / "times.png")
    print(text)
    print(f"wrote {a.out / 'report-table.md'} and {a.out / 'times.png'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
