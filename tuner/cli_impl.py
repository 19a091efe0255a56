"""`aimo tune` and the tuning part of `aimo demo`: the whole run, from traces to best.yaml.

Why: the CLI stays a thin parser; this module checks every input before any tuning starts
(a bad flag must not cost hours), runs the studies, scores the result held-out against the seed
and the plain baselines on the same traces and budget, exports the winner, and prints the table.
"""

from __future__ import annotations

import dataclasses
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aimo.simulator.replay.competition import DEFAULT_BUDGET_S
from aimo.core.errors import InputError
from aimo.tuner.objective import COMPETITION_QUESTIONS, Metrics, Select
from aimo.tuner.report import (
    FoldReport, HeldOutRow, TuneReport, heldout_row, render_comparison, with_delta,
)
from aimo.tuner.study import SAMPLERS, Choice, TuneConfig

Echo = Callable[[str], None]
BASELINES = ("majority-n", "first-answer")
TIME_AWARE_BASELINES = ("aimo3-winner", "deepconf-online")  # rows when the store has confidence
SEED_PRESET = "seed-2nd-place"
DEFAULT_STUDY = "aimo-tune"
DEFAULT_HARDWARE = "l4x4-14b-w4kv8"


@dataclass(frozen=True)
class TuneResult:
    """What a tuning run produced: the exported file, the held-out rows, the rendered table."""

    out: Path
    storage: str
    study: str
    policy_name: str
    final: Choice
    rows: tuple[HeldOutRow, ...]
    fold_choices: tuple[Choice, ...]
    table: str
    elapsed_s: float  # the whole call
    tuning_s: float  # of which the workers' phase (the studies)

    def row(self, name: str) -> HeldOutRow:
        return next(r for r in self.rows if r.name == name)


def _stderr(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


class _Progress:
    """A rich bar when stderr is a terminal, else a line per 10% (and at most every 30 s)."""

    def __init__(self, echo: Echo, label: str, *, bar: bool | None = None) -> None:
        self.echo = echo
        self.label = label
        self.bar = sys.stderr.isatty() if bar is None else bar
        self.t0 = time.monotonic()
        self.last_line = -1.0
        self.last_decile = -1
        self._rich: Any = None
        self._task: Any = None

    def __enter__(self) -> _Progress:
        if self.bar:
            from rich.console import Console
            from rich.progress import (
                BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn, TimeRemainingColumn,
            )

            self._rich = Progress("[progress.description]{task.description}", BarColumn(),
                                  MofNCompleteColumn(), TimeElapsedColumn(), TimeRemainingColumn(),
                                  console=Console(stderr=True), transient=False)
            self._rich.__enter__()
            self._task = self._rich.add_task(self.label, total=None)
        return self

    def __call__(self, done: int, total: int) -> None:
        if self._rich is not None:
            self._rich.update(self._task, completed=done, total=total)
            return
        decile = (10 * done) // max(1, total)
        now = time.monotonic() - self.t0
        if decile > self.last_decile or now - self.last_line >= 30:
            self.last_decile, self.last_line = decile, now
            self.echo(f"{self.label}: {done}/{total} trials ({100 * done / max(1, total):.0f}%), "
                      f"{now:.0f} s")

    def __exit__(self, *exc: object) -> None:
        if self._rich is not None:
            self._rich.__exit__(None, None, None)


def _check_args(trials: int, folds: int, bootstrap: int, workers: int, max_overtime: float,
                select: str, sampler: str, n_problems: int) -> None:
    checks = [
        (trials >= 1, "--trials", "must be ≥ 1"),
        (2 <= folds <= n_problems, "--folds",
         f"must be in 2..{n_problems} (the number of problems): held-out scores need ≥ 2 folds"),
        (bootstrap >= 2, "--bootstrap", "must be ≥ 2"),
        (workers >= 1, "--workers", "must be ≥ 1"),
        (0.0 <= max_overtime <= 1.0, "--max-overtime", "must be a probability in [0, 1]"),
        (select in ("mean", "lcb"), "--select", "must be mean or lcb"),
        (sampler in SAMPLERS, "--sampler", f"must be one of {', '.join(SAMPLERS)}"),
    ]
    for ok, flag, message in checks:
        if not ok:
            raise InputError(flag, None, message)


def run_tune(
    traces: str | Path,
    trials: int,
    out: str | Path,
    *,
    storage: str | None = None,
    study: str = DEFAULT_STUDY,
    folds: int = 5,
    bootstrap: int = 100,
    workers: int = 1,
    space: str | Path | None = None,
    seed: int = 0,
    sampler: str = "tpe",
    max_overtime: float = 0.05,
    select: Select = "mean",
    multi_objective: bool = False,
    hardware: str = DEFAULT_HARDWARE,
    budget_s: float = DEFAULT_BUDGET_S,
    run_id: str | None = None,
    overwrite: bool = False,
    overtime_rule: str = "zero",
    echo: Echo = print,
    progress_bar: bool | None = None,
    aimo3_target: float | None = None,
) -> TuneResult:
    """Tune a policy on a trace store, score the procedure held-out, export the winner.

    Args:
        traces: DuckDB trace store. `run_id` picks a run when it holds several.
        trials: finished trials per study (K fold studies + 1 final study).
        out: policy YAML to write (refused if it exists, unless `overwrite`).
        storage: Optuna storage URL; default a journal file beside `out` (`<out>.journal`).
        study: study name; the fold studies are `<study>:fold<k>of<K>`. Same storage + name
            resumes (the settings must match).
        folds: K of the nested cross-validation by problem (≥ 2).
        bootstrap: replicates per trial evaluation and per held-out fold evaluation.
        workers: processes working on the studies (spawned; each loads the traces).
        space: a narrowing YAML (default: data/spaces/default.yaml's space over the seed).
        seed: seeds folds, draws and samplers; with one worker the run is reproducible.
        sampler: tpe | nsga2 | gp.
        max_overtime: constraint P(overtime) ≤ this.
        select: `mean` or `lcb` (lower confidence bound) for the trial value and the selection.
        multi_objective: also minimise the mean competition time (Pareto front).
        budget_s: the competition budget (caps the cutoff; a finite number of seconds > 0).
        overtime_rule: `zero` (an overtime competition scores nothing) or `answered`.
        aimo3_target: also score the held-out rows the AIMO-3 way (paired replicates; needs an
            even `bootstrap`) and report P(score ≥ this).
        echo: where lines go (the table, notes); progress goes to stderr.

    Raises:
        InputError: any bad input, before tuning starts, naming the flag or file.
    """
    t0 = time.monotonic()
    from aimo.core.hardware import load_profile
    from aimo.core.policy import load_policy
    from aimo.core.store import load_problem_traces
    from aimo.tuner.export import check_out, export_policy, policy_of
    from aimo.tuner.objective import make_evaluator
    from aimo.tuner.space import load_space, space_for_store
    from aimo.tuner.study import (
        REPORT_ATTR, make_sampler, open_storage, plan_studies, prepare_studies, quiet_optuna,
        redact, run_workers, select_best, heldout_spec, wait_for_running,
    )

    import optuna

    from aimo.core.budget import check_budget
    from aimo.core.scoring import check_overtime_rule

    quiet_optuna()
    budget_s = check_budget(budget_s)
    check_overtime_rule(overtime_rule)
    out_path = check_out(out, overwrite=overwrite)
    space_obj = load_space(space)
    profile = load_profile(hardware)
    problems = load_problem_traces(traces, run_id)
    if not problems:
        raise InputError(str(traces), None, "no completed questions in the store")
    # the confidence elements need confidence in the store; the fingerprint stays the file's
    # space's (what the dashboard rebuilds; the hold follows from the store, which the settings
    # pin, and holds parameters at the base's own values)
    fingerprint = space_obj.fingerprint()
    space_obj = space_for_store(space_obj, problems)
    _check_args(trials, folds, bootstrap, workers, max_overtime, select, sampler, len(problems))
    if aimo3_target is not None and bootstrap % 2:
        raise InputError("--bootstrap", None, "must be even with --aimo3-score (replicates pair up)")
    make_sampler(sampler, seed, trials=trials, space=space_obj)  # gp without torch: fails here
    storage_url = storage or str(out_path.with_suffix(".journal"))
    config = TuneConfig(
        traces=str(traces), storage=storage_url, study=study, trials=trials,
        run_id=problems[0].run_id, hardware=hardware,
        space_file=None if space is None else str(space), folds=folds, bootstrap=bootstrap,
        seed=seed, sampler=sampler, max_overtime=max_overtime, select=select,
        multi_objective=multi_objective, budget_s=budget_s, n_questions=COMPETITION_QUESTIONS,
        workers=workers, overtime_rule=overtime_rule,
    )
    store = open_storage(storage_url)
    plans = plan_studies(config, [p.problem_id for p in problems])
    settings = config.settings(fingerprint, problems[0].run_id, len(problems))
    base_params, moved = space_obj.base_params()
    if moved:
        echo(f"note: the base {space_obj.base.name} lies outside the space; trial 0 is its "
             f"projection ({'; '.join(moved)})")
    prepare_studies(config, store, plans, settings, base_params)
    echo(f"tuning {len(problems)} problems of {traces} (run {problems[0].run_id}) on {profile.name}: "
         f"{folds} fold studies + 1 final, {trials} trials each, {bootstrap} replicates per trial, "
         f"sampler {sampler}, {workers} worker(s); storage {redact(storage_url)}, study {study}")

    t_tune = time.monotonic()
    with _Progress(_stderr, "tuning", bar=progress_bar) as bar:
        run_workers(config, plans, bar)
    tuning_s = time.monotonic() - t_tune

    evaluator = make_evaluator(problems, profile)
    fold_plans = [p for p in plans if p.fold is not None]
    final_plan = plans[-1]
    fold_choices, fold_policies = [], []
    for plan in fold_plans:
        st = optuna.load_study(study_name=plan.name, storage=store)
        choice = select_best(st, select, max_overtime)
        fold_choices.append(choice)
        fold_policies.append(policy_of(space_obj, choice, f"tuned-{plan.name}"))
    specs = [heldout_spec(config, p) for p in fold_plans]
    if aimo3_target is not None:  # each problem run twice: replicates pair up on the same draws
        specs = [dataclasses.replace(s, paired=True) for s in specs]

    final_study = optuna.load_study(study_name=final_plan.name, storage=store)
    still = wait_for_running(final_study, timeout_s=0.0)
    final = select_best(final_study, select, max_overtime)
    name = f"tuned-{study}"
    final_policy = policy_of(space_obj, final, name)

    seed_policy = load_policy(SEED_PRESET)
    seed_row = heldout_row(SEED_PRESET, evaluator, [seed_policy] * folds, specs, aimo3_target)
    rows = [seed_row, with_delta(heldout_row("tuned", evaluator, fold_policies, specs,
                                             aimo3_target), seed_row)]
    extra = [] if space_obj.base.name == SEED_PRESET else [space_obj.base.name]
    from aimo.tuner.space import store_has_confidence

    if store_has_confidence(problems):
        extra += [p for p in TIME_AWARE_BASELINES if p != space_obj.base.name]
    for preset in [*extra, *BASELINES]:
        pol = space_obj.base if preset == space_obj.base.name else load_policy(preset)
        rows.append(with_delta(heldout_row(preset, evaluator, [pol] * folds, specs, aimo3_target),
                               seed_row))

    path = export_policy(final_policy, out_path, overwrite=overwrite)
    table = render_comparison(rows, folds=folds, replicates=bootstrap,
                              n_questions=COMPETITION_QUESTIONS)
    notes = _notes(final, fold_choices, still, max_overtime)
    if multi_objective:
        notes.append(_pareto(final_study))
    report = TuneReport(
        rows=tuple(rows), final_trial=final.number, final_feasible=final.feasible,
        final_metrics=final.metrics.attrs(),
        folds=tuple(FoldReport(study=c.study, trial=c.number, train=c.metrics.attrs(),
                               test_mean=rows[1].fold_means[i])
                    for i, c in enumerate(fold_choices)),
        out=str(path),
    )
    final_study.set_user_attr(REPORT_ATTR, report.to_attr())
    echo("")
    echo(table)
    for line in notes:
        echo(line)
    echo(f"wrote {path} (policy {name}: trial {final.number} of study {study}, tuned on all "
         f"{len(problems)} problems; its held-out estimate is the 'tuned' row)")
    return TuneResult(
        out=path, storage=storage_url, study=study, policy_name=name, final=final,
        rows=tuple(rows), fold_choices=tuple(fold_choices), table=table,
        elapsed_s=time.monotonic() - t0, tuning_s=tuning_s,
    )


def _notes(final: Choice, folds: list[Choice], running: int, max_overtime: float) -> list[str]:
    m: Metrics = final.metrics
    lines = [
        f"exported policy, in-sample (all problems, the data it was chosen on — optimistic): "
        f"score {m.mean_score:.2f} ({m.score_lo:.0f}–{m.score_hi:.0f}), mean time "
        f"{m.mean_time_s:,.0f} s, P(overtime) {m.p_overtime:.3f}",
        "per fold, train score of the chosen trial → " + ", ".join(
            f"fold {i + 1}: trial {c.number} {c.metrics.mean_score:.2f}" for i, c in enumerate(folds)),
    ]
    infeasible = [c.study for c in [*folds, final] if not c.feasible]
    if infeasible:
        lines.append(f"warning: no trial met P(overtime) ≤ {max_overtime} in {', '.join(infeasible)}; "
                     "the least-overtime trial was taken")
    if running:
        lines.append(f"note: {running} trial(s) of the final study were still running elsewhere "
                     "and were not considered")
    return lines


def _pareto(study: Any) -> str:
    front = sorted(study.best_trials, key=lambda t: -t.values[0])
    cells = ", ".join(f"#{t.number}: {t.values[0]:.2f} in {t.values[1]:,.0f} s" for t in front[:8])
    more = f" (+{len(front) - 8} more)" if len(front) > 8 else ""
    return f"Pareto front of the final study (score vs mean time), {len(front)} trials: {cells}{more}"


def run_demo_tune(
    traces: str | Path | None = None,
    out_dir: str | Path = "out",
    *,
    trials: int = 24,
    folds: int = 3,
    bootstrap: int = 40,
    workers: int = 1,
    seed: int = 0,
    hardware: str = DEFAULT_HARDWARE,
    run_id: str | None = None,
    echo: Echo = print,
) -> TuneResult:
    """A short tuning for `aimo demo` (about a minute on 2 cores once the kernel is compiled).

    Uses `out_dir/demo-synthetic.duckdb` (generated if missing) unless `traces` is given, starts
    a fresh study each time (its journal `out_dir/demo-tune.journal` is the demo's scratch) and
    writes `out_dir/demo-tuned.yaml`.
    """
    out_dir = Path(out_dir)
    if traces is None:
        traces = out_dir / "demo-synthetic.duckdb"
        if not Path(traces).exists():
            from aimo.recorder.synth import synthesize_store

            echo(f"generating the default synthetic store at {traces} ...")
            synthesize_store(traces, n_problems=50, n_samples=32, seed=0, profile="r1-14b")
    journal = out_dir / "demo-tune.journal"
    for leftover in (journal, journal.with_name(journal.name + ".lock")):
        leftover.unlink(missing_ok=True)
    echo(f"\n== a short tuning demo: {trials} trials per study, {folds}-fold nested CV, "
         f"{bootstrap} replicates (aimo tune for a real run) ==")
    return run_tune(
        traces, trials, out_dir / "demo-tuned.yaml", storage=str(journal), study="demo",
        folds=folds, bootstrap=bootstrap, workers=workers, seed=seed, overwrite=True, echo=echo,
        hardware=hardware, run_id=run_id,
    )


__all__ = ["TuneResult", "run_demo_tune", "run_tune"]
