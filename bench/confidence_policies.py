"""Does the tuner gain from the confidence and time-aware policy elements (issue 17)?

    python bench/confidence_policies.py [--trials 12] [--folds 3] [--bootstrap 20]
        [--conf-store PATH] [--long-store PATH] [--target 30] [--out-dir out/bench-confidence]

On two synthetic stores with token confidence — the default `r1-14b` profile and the
`long-reasoning` profile (samples as long as a public 8B model's: the 5-hour budget binds) —
`aimo tune` runs twice, held-out with nested CV as usual: once over the space without the new
elements (data/spaces/without-time-aware.yaml) and once over the whole default space. Every
held-out row (the tuned procedure, the seed, the presets) is scored on the tuner's own paired
draws (AIMO-3 scoring) and reported with the fast path's token totals: mean tokens and time,
and both as a change against `majority-n`. Then, among the final study's trials whose in-sample
score is at least majority-n's, the trial that generates the fewest tokens is compared with the
one that takes the least time: is the token-best policy still the time-best? Missing stores are
generated (a minute or two each). Prints markdown tables (docs/confidence.md holds a run).
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path
from typing import Any

import numpy as np

from aimo.simulator.fast import FastSimulator
from aimo.core.hardware import load_profile
from aimo.core.policy import Policy, load_policy
from aimo.core.store import load_problem_traces
from aimo.tuner.cli_impl import run_tune
from aimo.tuner.export import policy_of
from aimo.tuner.objective import COMPETITION_QUESTIONS, ObjectiveSpec
from aimo.tuner.space import SearchSpace, load_space, space_for_store
from aimo.tuner.study import (
    StudyPlan, TuneConfig, heldout_spec, objective_spec, open_storage, plan_studies,
)

REPO = Path(__file__).resolve().parent.parent
WITHOUT = REPO / "data" / "spaces" / "without-time-aware.yaml"
PRESET_ROWS = ("seed-2nd-place", "majority-n", "first-answer", "aimo3-winner", "deepconf-online")


def ensure_store(path: Path, profile: str, problems: int, samples: int) -> Path:
    """The store at `path`, generated with confidence if missing."""
    if not path.exists():
        from aimo.recorder.synth import synthesize_store

        print(f"generating {path} ({profile}, {problems} × {samples}, with confidence) …",
              flush=True)
        path.parent.mkdir(parents=True, exist_ok=True)
        synthesize_store(path, n_problems=problems, n_samples=samples, seed=0, profile=profile,
                         confidence=True, progress=False)
    return path


def pooled(sim: FastSimulator, policies: list[Policy], specs: list[ObjectiveSpec]) -> dict:
    """Metrics pooled over folds (as tuner.report.heldout_row does), plus mean tokens."""
    scores, times, toks = [], [], []
    for pol, spec in zip(policies, specs, strict=True):
        tok = np.zeros(spec.replicates, np.int64)
        s, t, _ = sim.bootstrap_arrays(pol, replicates=spec.replicates, seed=spec.seed,
                                       n_questions=spec.n_questions, budget_s=spec.budget_s,
                                       problem_subset=list(spec.subset), paired=spec.paired,
                                       tokens_out=tok)
        scores.append(s)
        times.append(t)
        toks.append(tok)
    s = np.concatenate(scores).astype(float)
    out: dict[str, Any] = {"score": float(s.mean()), "time": float(np.concatenate(times).mean()),
                           "tokens": float(np.concatenate(toks).mean())}
    if len(s) % 2 == 0:
        out["pairs"] = (s[0::2] + s[1::2]) / 2.0
    return out


def verdict(config: TuneConfig, plans: tuple[StudyPlan, ...], space: SearchSpace,
            sim: FastSimulator) -> str:
    """Among the final study's trials scoring ≥ majority-n in-sample: token-best vs time-best."""
    import optuna

    final_plan = plans[-1]
    spec = objective_spec(config, final_plan)
    study = optuna.load_study(study_name=final_plan.name, storage=open_storage(config.storage))
    maj = pooled(sim, [load_policy("majority-n")], [spec])
    cands = []
    for t in study.trials:
        if t.state.name != "COMPLETE":
            continue
        pol = space.policy(space.values_of(t.params), name=f"trial-{t.number}")
        m = pooled(sim, [pol], [spec])
        if m["score"] >= maj["score"]:
            cands.append((t.number, m))
    if len(cands) < 2:
        return (f"final study: {len(cands)} trial(s) score ≥ majority-n in-sample "
                f"({maj['score']:.2f}); no ranking to compare")
    by_tok = min(cands, key=lambda c: c[1]["tokens"])
    by_time = min(cands, key=lambda c: c[1]["time"])
    tok_rank = np.argsort(np.argsort([c[1]["tokens"] for c in cands]))
    time_rank = np.argsort(np.argsort([c[1]["time"] for c in cands]))
    rho = float(np.corrcoef(tok_rank, time_rank)[0, 1])
    pos = 1 + sorted(cands, key=lambda c: c[1]["time"]).index(by_tok)
    same = "the same policy" if by_tok[0] == by_time[0] else "a different policy"
    return (f"final study: {len(cands)} trials score ≥ majority-n in-sample "
            f"({maj['score']:.2f}); fewest tokens: trial {by_tok[0]} "
            f"({by_tok[1]['tokens'] / 1e6:.2f} M tokens, {by_tok[1]['time'] / 3600:.2f} h, "
            f"rank {pos} of {len(cands)} by time); least time: trial {by_time[0]} "
            f"({by_time[1]['tokens'] / 1e6:.2f} M, {by_time[1]['time'] / 3600:.2f} h) — {same}; "
            f"Spearman ρ(tokens, time) = {rho:.2f}")


def tune_variant(store: Path, label: str, space_file: Path | None, args: argparse.Namespace,
                 sim: FastSimulator, problems: list) -> tuple[list[tuple[str, dict]], str]:
    """One `aimo tune` run: its held-out rows with tokens, and the token-vs-time verdict."""
    out = Path(args.out_dir) / f"{store.stem}-{label}.yaml"
    journal = out.with_suffix(".journal")
    for leftover in (journal, journal.with_name(journal.name + ".lock")):
        leftover.unlink(missing_ok=True)
    study = f"{store.stem}-{label}"
    t0 = time.monotonic()
    lines: list[str] = []
    res = run_tune(store, args.trials, out, storage=str(journal), study=study, folds=args.folds,
                   bootstrap=args.bootstrap, space=space_file, seed=args.seed,
                   hardware=args.hardware, overwrite=True, echo=lines.append,
                   progress_bar=False, aimo3_target=args.target)
    print(f"  {label}: aimo tune took {time.monotonic() - t0:.0f} s", flush=True)
    config = TuneConfig(traces=str(store), storage=str(journal), study=study, trials=args.trials,
                        run_id=problems[0].run_id, hardware=args.hardware,
                        space_file=None if space_file is None else str(space_file),
                        folds=args.folds, bootstrap=args.bootstrap, seed=args.seed,
                        n_questions=COMPETITION_QUESTIONS)
    plans = plan_studies(config, [p.problem_id for p in problems])
    specs = [dataclasses.replace(heldout_spec(config, p), paired=True)
             for p in plans if p.fold is not None]
    space = space_for_store(load_space(space_file), problems)
    fold_pols = [policy_of(space, c, f"tuned-{i}") for i, c in enumerate(res.fold_choices)]
    rows = [("tuned", pooled(sim, fold_pols, specs))]
    rows += [(name, pooled(sim, [load_policy(name)] * len(specs), specs)) for name in PRESET_ROWS]
    for name, m in rows:  # the same draws as the tuner's own held-out rows
        if abs(m["score"] - res.row(name).mean_score) > 1e-9:
            raise SystemExit(f"{label}/{name}: bench and tuner disagree on the held-out score")
    return rows, verdict(config, plans, space, sim)


def table(rows: list[tuple[str, dict]], target: float) -> str:
    """Markdown: held-out score, AIMO-3 score, time, tokens, and changes vs majority-n."""
    maj = dict(rows)["majority-n"]
    out = [f"| policy | held-out score | AIMO-3 score | P(AIMO-3 ≥ {target:g}) | mean time | "
           "mean tokens | Δ tokens vs majority-n | Δ time vs majority-n |",
           "|---|---|---|---|---|---|---|---|"]
    for name, m in rows:
        pairs = m["pairs"]
        out.append(f"| {name} | {m['score']:.2f} | {pairs.mean():.2f} | "
                   f"{float(np.mean(pairs >= target)):.2f} | {m['time'] / 3600:.2f} h | "
                   f"{m['tokens'] / 1e6:.2f} M | {100 * (m['tokens'] / maj['tokens'] - 1):+.0f}% | "
                   f"{100 * (m['time'] / maj['time'] - 1):+.0f}% |")
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=12)
    ap.add_argument("--folds", type=int, default=3)
    ap.add_argument("--bootstrap", type=int, default=20, help="even: replicates pair up (AIMO-3)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--target", type=float, default=30.0)
    ap.add_argument("--hardware", default="l4x4-14b-w4kv8")
    ap.add_argument("--out-dir", default=str(REPO / "out" / "bench-confidence"))
    ap.add_argument("--conf-store", type=Path, default=None)
    ap.add_argument("--long-store", type=Path, default=None)
    ap.add_argument("--problems", type=int, default=50)
    ap.add_argument("--samples", type=int, default=32)
    ap.add_argument("--real-store", type=Path, default=None,
                    help="a recorded store with confidence (e.g. data/traces/olympiad-tiny-logprobs.duckdb): "
                         "benched too, under --hardware")
    ap.add_argument("--only", choices=["r1-14b", "long-reasoning", "recorded"], default=None)
    args = ap.parse_args()
    if args.bootstrap < 2 or args.bootstrap % 2:
        ap.error("--bootstrap must be an even number ≥ 2")
    out_dir = Path(args.out_dir)
    stores = [
        ("r1-14b", args.conf_store or out_dir / "r1-14b-confidence.duckdb"),
        ("long-reasoning", args.long_store or out_dir / "long-reasoning-confidence.duckdb"),
    ]
    if args.real_store is not None:
        if not args.real_store.exists():
            ap.error(f"--real-store {args.real_store}: no such file")
        stores.append(("recorded", args.real_store))
    profile = load_profile(args.hardware)
    for synth_profile, path in stores:
        if args.only and synth_profile != args.only:
            continue
        if synth_profile != "recorded":
            ensure_store(Path(path), synth_profile, args.problems, args.samples)
        problems = load_problem_traces(path)
        sim = FastSimulator(problems, profile)
        print(f"\n### {Path(path).name} ({synth_profile}, {len(problems)} problems), "
              f"{args.hardware}", flush=True)
        for label, space_file in (("without", WITHOUT), ("with", None)):
            rows, note = tune_variant(Path(path), label, space_file, args, sim, problems)
            title = ("tuned without the confidence / time-aware elements" if label == "without"
                     else "tuned with them (the default space)")
            print(f"\n{title}:\n\n{table(rows, args.target)}\n\n{note}", flush=True)


if __name__ == "__main__":
    main()
