"""aimo: record olympiad-math model generations once, then replay, tune and compare inference
policies offline, and run the chosen policy live. Start with `aimo demo`; every command has
--help. Defaults can come from AIMO_* environment variables (docs/cli.md)."""

from __future__ import annotations

import sys
from enum import Enum
from pathlib import Path
from typing import NoReturn, Optional

import typer

from aimo.core.settings import ENV
from aimo.runs_cmd import runs_app
from aimo.build_random_cmd import build_random
from aimo.core.errors import InputError

# Commands import their implementations inside their bodies: `aimo --help` and `aimo solve`
# stay quick and need none of the optional extras (tune, dashboard, gpu).
app = typer.Typer(add_completion=True, no_args_is_help=True, help=__doc__,
                  context_settings={"help_option_names": ["-h", "--help"]})

COMPILING = ("still working: the first run after an install or update compiles the simulator "
             "(~30-60 s; cached on disk afterwards) ...")


class Sampler(str, Enum):
    """Optuna samplers `aimo tune` offers."""

    tpe = "tpe"
    nsga2 = "nsga2"
    gp = "gp"


class Select(str, Enum):
    """How `aimo tune` scores a trial: mean, or a lower confidence bound."""

    mean = "mean"
    lcb = "lcb"


class SolveBackend(str, Enum):
    """Engines of `aimo solve`."""

    replay = "replay"
    synthetic = "synthetic"
    turbomind = "turbomind"
    pytorch = "pytorch"
    hil = "hil"


class KneeMode(str, Enum):
    """Whether a fitted step model has the knee term (`core.hardware.fit.choose_step_model`)."""

    auto = "auto"
    off = "off"
    on = "on"


class LmdeployBackend(str, Enum):
    """lmdeploy engines (record, profile measure)."""

    turbomind = "turbomind"
    pytorch = "pytorch"


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError, version

        try:
            typer.echo(f"aimo {version('aimo-policy-lab')}")
        except PackageNotFoundError:
            typer.echo("aimo (not installed: run `make setup`)")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                 help="Print the version and exit."),
    verbose: int = typer.Option(0, "--verbose", "-v", count=True,
                                help="More log output on stderr (-v info, -vv debug)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Only errors on stderr."),
) -> None:
    from aimo.core.settings import configure_logging, load_settings

    try:
        level = load_settings().log_level
    except InputError as exc:
        _fail(str(exc))
    configure_logging(-1 if quiet else verbose, level)


def _fail(message: str, code: int = 2) -> NoReturn:
    typer.secho(f"error: {message}", err=True, fg=typer.colors.RED)
    raise typer.Exit(code)


OVERTIME_HELP = ("How a run that passes the budget scores: zero (the competition's rule: the "
                 "notebook is killed) or answered (answers given before the budget count).")


def _pick_profile(hardware: Optional[str], traces: Path, run_id: Optional[str]) -> str:
    """The profile to use: the one given, else the store's bound/matching one (said on stderr)."""
    if hardware:
        return hardware
    from aimo.output import notice
    from aimo.simulator.profile_choice import NO_RUN, profile_for_store

    choice = profile_for_store(traces, run_id)
    if choice.reason != NO_RUN:  # several runs and no --run: the command reports that instead
        notice(f"hardware profile: {choice.name} ({choice.reason}; --hardware to change)")
    return choice.name


@app.command()
def synth(
    out: Path = typer.Option(..., help="DuckDB trace store to write (must not exist)."),
    problems: int = typer.Option(50, min=1, help="Number of problems."),
    samples: int = typer.Option(32, min=1, help="Samples per problem (half CoT, half code)."),
    seed: int = typer.Option(0, help="Random seed; the store is a pure function of it."),
    profile: str = typer.Option("r1-14b", help="Calibration profile of the synthetic model."),
    confidence: bool = typer.Option(False, "--confidence", help="Also store per-token confidence (DeepConf-calibrated; the rest is unchanged)."),
    resume: bool = typer.Option(False, "--resume", help="Continue an interrupted synthesis into --out (same settings)."),
) -> None:
    """Generate a synthetic trace store calibrated to a 14B R1-distill model on AIME-level problems."""
    from aimo.recorder.synth import synthesize_store

    try:
        summary = synthesize_store(out, n_problems=problems, n_samples=samples, seed=seed, profile=profile,
                                   confidence=confidence, resume=resume)
    except InputError as exc:
        _fail(str(exc))
    typer.echo(summary.render())


@app.command("import")
def import_(
    problems: Path = typer.Option(..., help="Problems CSV: id,question,answer."),
    samples: Path = typer.Option(..., help="Samples JSONL, one sample a line."),
    out: Path = typer.Option(..., help="DuckDB trace store to write into."),
    run_id: Optional[str] = typer.Option(None, help="Run id (default: derived from the file name)."),
    resume: bool = typer.Option(False, "--resume", help="Continue an interrupted import of the same run id."),
) -> None:
    """Import traces produced elsewhere (CSV of problems + JSONL of samples)."""
    from aimo.recorder.importer import import_traces

    try:
        summary = import_traces(problems, samples, out, run_id=run_id, resume=resume)
    except InputError as exc:
        _fail(str(exc))
    typer.echo(summary.render())


@app.command()
def simulate(
    traces: Path = typer.Option(..., envvar=ENV["traces"], help="DuckDB trace store."),
    run: Optional[str] = typer.Option(None, "--run", help="Run id (needed when the store has several)."),
    policy: str = typer.Option("seed-2nd-place", envvar=ENV["policy"], help="Preset name or policy YAML path."),
    hardware: Optional[str] = typer.Option(None, envvar=ENV["hardware"], help="Hardware profile name or YAML path (default: bound to the store, else matching the run's recorded hardware)."),
    budget_s: float = typer.Option(18000.0, envvar=ENV["budget_s"], help="Competition budget in seconds."),
    bootstrap: int = typer.Option(0, min=0, help="0: recorded samples in recorded order; N: N seeded replicates."),
    seed: int = typer.Option(0, help="Seed of the bootstrap draws."),
    reference: bool = typer.Option(False, "--reference", help="Bootstrap with the reference replay instead of the compiled fast path (same numbers, ~500x slower)."),
    export: Optional[Path] = typer.Option(None, "--export", help="Also write the rows (per question, or per replicate) to FILE.csv or FILE.parquet."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON (fields: docs/simulate-json.md)."),
    overtime_scores: str = typer.Option("zero", help=OVERTIME_HELP),
    allow_incomplete: bool = typer.Option(False, "--allow-incomplete", help="Use a failed or interrupted run's committed questions."),
    aimo3_score: bool = typer.Option(False, "--aimo3-score", help="AIMO-3 scoring: replicates in pairs over the same questions, 1 point if both right, 0.5 if one (needs an even --bootstrap)."),
    target: float = typer.Option(44.0, "--target", help="With --aimo3-score: report P(AIMO-3 score >= target)."),
) -> None:
    """Replay a trace store under a policy and a hardware profile: a 5-hour competition."""
    import json

    from aimo.output import notice, progress, say_if_slow, stdout_to_stderr
    from aimo.simulator import api

    if aimo3_score and (bootstrap < 2 or bootstrap % 2):
        _fail(f"--aimo3-score: --bootstrap must be an even number ≥ 2 (got {bootstrap})")
    try:
        with stdout_to_stderr():
            with say_if_slow(COMPILING if bootstrap and not reference else "", after_s=8.0):
                res = api.simulate(
                    traces, policy, hardware, run=run, bootstrap=bootstrap, seed=seed,
                    budget_s=budget_s, reference=reference,
                    overtime_rule=overtime_scores, allow_incomplete=allow_incomplete,
                    paired=aimo3_score,
                    progress=progress(f"bootstrap ({'reference' if reference else 'fast'})"))
            if not hardware:
                notice(f"hardware profile: {res.hardware} ({res.profile_reason}; --hardware to change)")
            if export is not None:
                path = res.export(export)
                typer.echo(f"wrote {path}")
    except InputError as exc:
        _fail(str(exc))
    except ValueError as exc:  # e.g. a policy reading confidence on a store without it
        _fail(f"{traces}: {exc}")
    if aimo3_score:
        from aimo.simulator.aimo3 import aimo3_summary, render_aimo3

        assert res.scores is not None
        aimo3 = aimo3_summary(res.scores, target)
        doc = res.to_json()
        doc["aimo3"] = {"pairs": aimo3.pairs, "mean": aimo3.mean, "target": aimo3.target,
                        "p_at_least_target": aimo3.p_at_least, "scores": list(aimo3.scores)}
        typer.echo(json.dumps(doc, indent=2) if as_json
                   else res.render() + "\n" + render_aimo3(aimo3))
        return
    typer.echo(json.dumps(res.to_json(), indent=2) if as_json else res.render())


app.add_typer(runs_app, name="runs")

profile_app = typer.Typer(no_args_is_help=True, help="Hardware time-model profiles: list, show, bind to a store, fit from a recording, measure on a GPU, build a random-weight model to measure.")
app.add_typer(profile_app, name="profile")


@profile_app.command("list")
def profile_list(
    traces: Optional[Path] = typer.Option(None, help="Also say which profile this store's run gets."),
    run: Optional[str] = typer.Option(None, "--run", help="Run id (when the store has several)."),
) -> None:
    """List the bundled hardware profiles with their calibration error and what they model."""
    from aimo.core.hardware import list_profiles, load_profile
    from aimo.core.hardware.calibrate import calibration_error

    rows = []
    for name in list_profiles():
        prof = load_profile(name)
        err = calibration_error(prof)
        cal = (f"median {err.median:.1%}, max {err.max:.1%} over {err.points} point{'s' if err.points != 1 else ''}"
               if err.points else "no calibration points")
        rows.append((name, cal, prof.description.split(",")[0]))
    w0, w1 = max(len(r[0]) for r in rows), max(len(r[1]) for r in rows)
    typer.echo(f"{'profile':<{w0}}  {'calibration error':<{w1}}  hardware")
    for name, cal, desc in rows:
        typer.echo(f"{name:<{w0}}  {cal:<{w1}}  {desc}")
    if traces is not None:
        from aimo.simulator.profile_choice import profile_for_store

        try:
            choice = profile_for_store(traces, run)
        except InputError as exc:
            _fail(str(exc))
        typer.echo(f"\n{traces}: {choice.name} ({choice.reason})")


@profile_app.command("bind")
def profile_bind(
    name: str = typer.Argument(..., help="Profile name or YAML path."),
    traces: Path = typer.Option(..., envvar=ENV["traces"], help="Trace store to bind it to."),
    run: Optional[str] = typer.Option(None, "--run", help="Bind to this run only (default: every run of the store)."),
) -> None:
    """Bind a profile to a store (or one run): simulate, tune, solve and the dashboard use it."""
    from aimo.simulator.profile_choice import bind_profile

    try:
        bind_profile(traces, name, run)
    except InputError as exc:
        _fail(str(exc))
    typer.echo(f"bound {name} to {traces}" + (f" (run {run})" if run else " (every run)"))


@profile_app.command("unbind")
def profile_unbind(
    traces: Path = typer.Option(..., envvar=ENV["traces"], help="Trace store."),
    run: Optional[str] = typer.Option(None, "--run", help="The run's binding (default: the store-wide one)."),
) -> None:
    """Remove a store's profile binding (the run's recorded hardware decides again)."""
    from aimo.simulator.profile_choice import unbind_profile

    try:
        removed = unbind_profile(traces, run)
    except InputError as exc:
        _fail(str(exc))
    typer.echo("binding removed" if removed else "no binding to remove")


@profile_app.command("show")
def profile_show(name: str = typer.Argument(..., help="Profile name or YAML path.")) -> None:
    """Print a profile's coefficients and its error against its calibration points."""
    from aimo.core.hardware import load_profile
    from aimo.core.hardware.calibrate import format_report

    try:
        typer.echo(format_report(load_profile(name)))
    except InputError as exc:
        _fail(str(exc))


@profile_app.command("fit")
def profile_fit(
    traces: Optional[Path] = typer.Option(None, help="Trace store with timestamped chunks (with --from-live: the replayed store, for question-time errors)."),
    csv_files: Optional[list[Path]] = typer.Option(None, "--csv", help="Step rows of a measurement (aimo profile measure --csv); repeatable. Refits --base."),
    quant_policy: Optional[int] = typer.Option(None, "--quant-policy", help="With --csv: the rows of this KV quant_policy (needed when the CSV holds several)."),
    run: Optional[str] = typer.Option(None, "--run", help="Run id (needed when the store has several)."),
    name: str = typer.Option(..., help="Name of the fitted profile."),
    base: Optional[str] = typer.Option(None, help="Profile to take non-decode settings from (with --csv: the profile refitted)."),
    out: Optional[Path] = typer.Option(None, help="YAML to write (default NAME.yaml; refused if it exists, unless --force)."),
    window_tokens: int = typer.Option(16, min=1, help="Tokens per fitted stretch."),
    knee: KneeMode = typer.Option(KneeMode.auto, "--knee", help="The step's knee term beta_above*max(0, b-knee_batch): auto (only where it lowers the held-out error), off, on."),
    from_live: Optional[Path] = typer.Option(None, "--from-live", help="Refit --base from a live run in this store (aimo solve --record); reports the error before and after."),
    with_live: Optional[Path] = typer.Option(None, "--with-live", help="With --csv: fit the measured rows and this store's live run's chunk stretches (--run) together, each weighing as much in all."),
    host_only: bool = typer.Option(False, "--host-only", help="With --from-live: keep --base's measured engine step and fit only what the live loop adds: decode.host_per_step, prefill_s_per_request, question_overhead_s."),
    force: bool = typer.Option(False, "--force", help="Replace --out if it exists."),
) -> None:
    """Fit the decode step model (a + beta*b + gamma*C, with a knee where the held-out error
    says so) from measured step rows or a recording's chunk timestamps; report the fit error by
    cell before and after, and how far the profile extrapolates."""
    from aimo.core.hardware import fit_profile, load_profile, read_chunks, save_profile
    from aimo.core.store.out_path import check_out_path

    if csv_files and (traces is not None or from_live is not None):
        _fail("--csv: fit from one source (--csv, --traces or --from-live; a live run beside "
              "--csv is --with-live)")
    if with_live is not None and not csv_files:
        _fail("--with-live: only with --csv (the live stretches are fitted beside measured rows)")
    if host_only and from_live is None:
        _fail("--host-only: only with --from-live (the host terms are what a live run adds)")
    if from_live is not None:
        from aimo.validate_cmd import fit_from_live

        if out is not None:
            try:
                check_out_path(out, "--out", overwrite=force)
            except InputError as exc:
                _fail(str(exc))
        return fit_from_live(from_live, run, name, base, out, window_tokens, traces,
                             host_only=host_only)
    try:
        check_out_path(out or Path(f"{name}.yaml"), "--out", overwrite=force)
    except InputError as exc:
        _fail(str(exc))
    if csv_files:
        from aimo.profile_fit import fit_from_csv

        return fit_from_csv(csv_files, quant_policy, name, base, out or Path(f"{name}.yaml"),
                            knee.value, sys.argv[3:] if sys.argv[1:3] == ["profile", "fit"] else [],
                            with_live=with_live, run=run, window_tokens=window_tokens)
    if traces is None:
        _fail("--traces: required (or --csv, or --from-live)")

    from aimo.profile_fit import report_chunk_fit

    try:
        base_prof = load_profile(base) if base else None
        chunks = read_chunks(traces, run_id=run)
        result = fit_profile(
            chunks, name=name, base=base_prof, knee=knee.value,  # type: ignore[arg-type]
            window_tokens=window_tokens, source=f"{traces}:{run or 'only run'}",
        )
        path = save_profile(result.profile, out or Path(f"{name}.yaml"))
    except InputError as exc:
        _fail(str(exc))
    typer.echo(result.render())
    report_chunk_fit(result, base_prof)
    typer.echo(f"wrote {path}")


@profile_app.command("measure")
def profile_measure(
    model: Path = typer.Option(..., help="Model directory (HF layout: config.json, tokenizer, weights)."),
    name: str = typer.Option(..., help="Name of the measured profile."),
    out: Path = typer.Option(..., help="Profile YAML to write."),
    backend: LmdeployBackend = typer.Option(LmdeployBackend.pytorch, help="lmdeploy backend."),
    quant_policy: int = typer.Option(8, help="KV cache: 8 int8, 4 int4, 0 16-bit."),
    grid: str = typer.Option("quick", help="Cell grid: quick (8 cells) | full (18 cells)."),
    cells: Optional[str] = typer.Option(None, help="Cells instead of --grid, e.g. 1x512,8x512,8x4096 (batch x prompt tokens)."),
    new_tokens: int = typer.Option(128, min=32, help="Tokens decoded per sequence in each cell."),
    max_batch: Optional[int] = typer.Option(None, min=1, help="Engine max_batch (default: the largest cell's batch)."),
    tp: int = typer.Option(1, min=1, help="GPUs the engine spans (tensor parallel)."),
    base: str = typer.Option("l4x4-14b-w4kv8", help="Profile to take start-up, max_batch, code overlap (and prefill, unless measured) from."),
    csv_out: Optional[Path] = typer.Option(None, "--csv", help="Also write the step rows to this CSV."),
    until: Optional[float] = typer.Option(None, help="Deadline (epoch seconds): cells that would not end by then are skipped."),
    force: bool = typer.Option(False, "--force", help="Replace --out / --csv if they exist."),
    fake: bool = typer.Option(False, "--fake", hidden=True, help="CPU dry run against the lmdeploy test double, which the caller has installed as `lmdeploy` (tests do)."),
) -> None:
    """Measure the engine's decode step latency over a (batch, prompt) grid on this GPU, fit
    a + beta*b + gamma*C, print the fit error and write the profile (docs/hardware.md)."""
    import dataclasses
    import math
    import time

    from aimo.core.hardware import load_profile, save_profile
    from aimo.recorder import profiling as sl

    if not model.is_dir():
        _fail(f"--model: no such model directory: {model}")
    backend = backend.value  # type: ignore[assignment]
    if quant_policy not in (0, 4, 8):
        _fail(f"--quant-policy: must be 0, 4 or 8, got {quant_policy}")
    try:
        chosen = sl.parse_cells(cells) if cells else sl.grid_cells(grid)
    except ValueError as exc:
        _fail(f"{'--cells' if cells else '--grid'}: {exc}")
    largest = max(c.batch for c in chosen)
    if max_batch is not None and max_batch < largest:
        _fail(f"--max-batch: {max_batch} is below the grid's largest batch {largest} (every "
              "sequence of a cell must decode at once)")
    if until is not None and until <= time.time():
        _fail(f"--until: {until:.0f} is in the past")
    from aimo.core.store.out_path import check_out_path

    for opt, path in (("--out", out), ("--csv", csv_out)):
        if path is not None and not path.parent.is_dir():
            _fail(f"{opt}: no such directory: {path.parent}")
        try:
            if path is not None:
                check_out_path(path, opt, overwrite=force)
        except InputError as exc:
            _fail(str(exc))
    try:
        base_prof = load_profile(base)
        dataclasses.replace(base_prof, name=name)  # checks the name before the engine starts
    except InputError as exc:
        _fail(str(exc))
    settings = sl.MeasureSettings(
        model=model, cells=chosen, backend=backend, quant_policy=quant_policy,
        new_tokens=new_tokens, max_batch=max_batch or largest, tp=tp,
        until=until if until is not None else math.inf,
    )
    typer.echo(f"measuring {len(chosen)} cells on {model} ({backend}, quant_policy {quant_policy}, "
               f"{new_tokens} new tokens)")
    if fake and not str(getattr(sys.modules.get("lmdeploy"), "__version__", "")).endswith("-fake"):
        _fail("--fake: the lmdeploy test double must be installed as `lmdeploy` first "
              "(tests/helpers/fake_lmdeploy.py: installed_fake_lmdeploy)")
    try:
        run = sl.run_measurement(settings, echo=typer.echo, fake=fake)
    except ImportError as exc:  # lmdeploy missing: the message names the [gpu] extra
        _fail(str(exc), code=1)
    if csv_out is not None:
        sl.write_rows_csv(csv_out, run.rows)
        typer.echo(f"wrote {len(run.rows)} rows to {csv_out}")
    try:
        fit = sl.fit_step_model(run.rows)
    except ValueError as exc:
        _fail(f"{model}: {exc}", code=1)
    ctx = dataclasses.replace(run.context, csv_path=str(csv_out) if csv_out else None)
    try:
        prof = sl.measured_profile(fit, run.rows, run.results, name=name, base=base_prof, ctx=ctx)
        path = save_profile(prof, out)
        load_profile(path)
    except InputError as exc:
        _fail(str(exc), code=1)
    typer.echo(fit.render())
    typer.echo(f"prefill_s_per_token {prof.prefill_s_per_token:g} "
               f"({'measured' if 'measured, median' in prof.provenance.notes else 'from ' + base})")
    typer.echo(f"wrote {path}")


profile_app.command("build-random")(build_random)


@app.command()
def tune(
    traces: Path = typer.Option(..., envvar=ENV["traces"], help="DuckDB trace store."),
    trials: int = typer.Option(..., help="Finished trials per study (K fold studies + 1 final)."),
    out: Path = typer.Option(..., help="Policy YAML to write (refused if it exists, unless --force)."),
    storage: Optional[str] = typer.Option(None, envvar=ENV["storage"], help="Journal file path (default <out>.journal), sqlite:///..., postgresql://..."),
    study: str = typer.Option("aimo-tune", help="Study name; same storage + name resumes."),
    folds: int = typer.Option(5, help="Nested CV folds by problem (>= 2)."),
    bootstrap: int = typer.Option(100, help="Replicates per trial and per held-out fold."),
    workers: int = typer.Option(1, help="Worker processes."),
    space: Optional[Path] = typer.Option(None, help="Search-space narrowing YAML (docs/tuner.md)."),
    seed: int = typer.Option(0, help="Seeds folds, draws and samplers."),
    sampler: Sampler = typer.Option(Sampler.tpe, help="Optuna sampler."),
    max_overtime: float = typer.Option(0.05, help="Constraint: P(overtime) <= this."),
    select: Select = typer.Option(Select.mean, help="Trial value: mean score, or its lower confidence bound."),
    multi_objective: bool = typer.Option(False, "--multi-objective", help="Also minimise mean time (Pareto front)."),
    hardware: Optional[str] = typer.Option(None, envvar=ENV["hardware"], help="Hardware profile (default: bound to the store, else matching the run's recorded hardware)."),
    budget_s: float = typer.Option(18000.0, envvar=ENV["budget_s"], help="Competition budget in seconds: caps the cutoff (budget less 1%)."),
    overtime_scores: str = typer.Option("zero", help=OVERTIME_HELP),
    run: Optional[str] = typer.Option(None, "--run", help="Run id (needed when the store has several)."),
    force: bool = typer.Option(False, "--force", help="Replace --out if it exists."),
    export: Optional[Path] = typer.Option(None, "--export", help="Also write the held-out table (one row per policy) to FILE.csv or FILE.parquet."),
    as_json: bool = typer.Option(False, "--json", help="Print the held-out table, the chosen trials and the output as JSON (docs/tuner.md)."),
    aimo3_score: bool = typer.Option(False, "--aimo3-score", help="Held-out rows also in AIMO-3 scoring (paired replicates; needs an even --bootstrap)."),
    target: float = typer.Option(44.0, "--target", help="With --aimo3-score: report P(AIMO-3 score >= target)."),
) -> None:
    """Search the policy space with Optuna; report held-out (nested CV) scores; export the winner."""
    import json

    from aimo.output import notice, stdout_to_stderr
    from aimo.tune_report import tune_frame, tune_json
    from aimo.simulator.api import check_export_path, export_frame
    from aimo.core.store.out_path import check_out_path
    from aimo.tuner.cli_impl import run_tune

    try:
        check_out_path(out, "--out", overwrite=None)  # existing: run_tune's --force rule
        if export is not None:
            check_export_path(export)  # before hours of tuning
        with stdout_to_stderr():
            chosen = _pick_profile(hardware, traces, run)
            result = run_tune(
                traces, trials, out, storage=storage, study=study, folds=folds,
                bootstrap=bootstrap, workers=workers, space=space, seed=seed,
                sampler=sampler.value, max_overtime=max_overtime, select=select.value,  # type: ignore[arg-type]
                multi_objective=multi_objective, hardware=chosen, budget_s=budget_s, run_id=run,
                overwrite=force, echo=notice if as_json else typer.echo,
                overtime_rule=overtime_scores,
                aimo3_target=target if aimo3_score else None)
            if export is not None:
                notice(f"wrote {export_frame(tune_frame(result), export)}")
    except InputError as exc:
        _fail(str(exc))
    if as_json:
        typer.echo(json.dumps(tune_json(result, traces=str(traces), hardware=chosen), indent=2))


@app.command()
def record(
    problems: Path = typer.Option(..., help="Problems CSV: id,question,answer."),
    model: str = typer.Option(..., help="Model directory (AWQ 4-bit checkpoint)."),
    backend: LmdeployBackend = typer.Option(LmdeployBackend.turbomind, help="lmdeploy backend."),
    samples: int = typer.Option(32, min=1, help="Samples per question: the first N of the prompt pool."),
    out: Path = typer.Option(..., help="DuckDB trace store (created; an existing run is resumed)."),
    prompts: str = typer.Option("cot:16,code:16", help="Prompt pool, kinds interleaved: kind:count,..."),
    max_new_tokens: Optional[int] = typer.Option(None, min=1, help="Token cap per sample (default: the policy's)."),
    policy: str = typer.Option("seed-2nd-place", help="Preset or YAML giving prompt texts and sampling."),
    tp: Optional[int] = typer.Option(None, min=1, help="Tensor-parallel GPUs (default: all)."),
    quant_policy: int = typer.Option(8, help="KV cache: 8 = int8, 0 = 16-bit."),
    model_format: str = typer.Option("awq", help="TurboMind weight format: awq, or 'none' for fp16."),
    max_batch: int = typer.Option(32, min=1, help="Requests decoded at once."),
    run_id: Optional[str] = typer.Option(None, help="Run id (default record-<model>-<csv stem>; reruns resume it)."),
    shard: Optional[str] = typer.Option(None, help="Record only shard i/N of the problems (stable split by id); join the stores with `aimo merge`."),
    logprobs: int = typer.Option(8, help="Top-k logprobs per token for the stored confidence (0 = off; costs decode time)."),
) -> None:
    """Record real lmdeploy generations into a trace store (every sample to its end; resumable)."""
    from aimo.recorder.record import run_record
    from aimo.recorder.shards import parse_shard
    from aimo.solver.engines.lmdeploy_engine import LmdeployUnavailableError

    options = {"tp": tp, "quant_policy": quant_policy, "max_batch": max_batch,
               "model_format": None if model_format == "none" else model_format}
    try:
        summary = run_record(problems, model, backend.value, samples, out, prompts=prompts,
                             max_new_tokens=max_new_tokens, policy=policy, run_id=run_id,
                             engine_options=options, logprobs=logprobs,
                             shard=None if shard is None else parse_shard(shard))
    except InputError as exc:
        _fail(str(exc))
    except LmdeployUnavailableError as exc:
        _fail(str(exc), code=3)
    typer.echo(summary.render())


@app.command()
def solve(
    problems: Optional[Path] = typer.Option(None, help="Problems CSV: id,question[,answer]; replay without it: the run's questions."),
    policy: str = typer.Option("seed-2nd-place", envvar=ENV["policy"], help="Preset name or policy YAML path."),
    model: Optional[str] = typer.Option(None, help="Model path (turbomind/pytorch)."),
    backend: SolveBackend = typer.Option(SolveBackend.replay, help="Engine: replay a store, synthetic, lmdeploy (turbomind/pytorch, [gpu] extra), or hil: lmdeploy timing with a store's content (docs/hil.md)."),
    traces: Optional[Path] = typer.Option(None, help="Trace store to replay."),
    run: Optional[str] = typer.Option(None, "--run", help="Run id (when the store has several)."),
    hardware: Optional[str] = typer.Option(None, envvar=ENV["hardware"], help="Hardware profile (replay default: bound to the store, else matching the run's hardware)."),
    speedup: float = typer.Option(float("inf"), help="Virtual seconds per wall second (inf: no sleeping)."),
    record: Optional[Path] = typer.Option(None, help="Trace store to record the run into (kind 'solve')."),
    tp: Optional[int] = typer.Option(None, help="Tensor-parallel GPUs (lmdeploy; default all visible)."),
    budget_s: float = typer.Option(18000.0, envvar=ENV["budget_s"], help="Competition budget in seconds: caps the cutoff (budget less 1%)."),
    overtime_scores: str = typer.Option("zero", help=OVERTIME_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print JSON (docs/simulate-json.md, mode 'solve')."),
    max_new_tokens: Optional[int] = typer.Option(None, min=1, help="Cap every sample at N tokens (e.g. the cap the replayed recording was made with)."),
    seed: Optional[int] = typer.Option(None, help="Sampling seed; hil: also the recorded-sample draw (default: recorded order)."),
    max_batch: int = typer.Option(32, min=1, help="lmdeploy/hil: requests decoded at once."),
    logprobs: int = typer.Option(0, min=0, max=1024, help="lmdeploy: top-k logprobs per token, recorded as confidence with --record (0 = off)."),
    resume: bool = typer.Option(False, "--resume", help="Continue the interrupted run of --record: its questions, time used and speed level."),
    record_run: Optional[str] = typer.Option(None, "--record-run", help="Run id to record as (or to resume)."),
    require_sandbox: bool = typer.Option(False, "--require-sandbox", help="Run no model code unless every sandbox layer is here (docs/sandbox.md); answers then come from boxes."),
) -> None:
    """Run the live solver over a problems CSV (lmdeploy, or the replay/synthetic CPU engines).
    One line per question goes to stderr as it is answered; the result is printed once at the end."""
    import json

    from aimo.output import notice, stdout_to_stderr
    from aimo.solver.loop import LoopOptions
    from aimo.core.policy import load_policy, uses_confidence, with_token_cap
    from aimo.solver.solve import EngineSpec, EngineUnavailable, run_solve

    try:
        if uses_confidence(load_policy(policy)) and not (
                backend is SolveBackend.replay
                or logprobs and backend in (SolveBackend.turbomind, SolveBackend.pytorch)):
            _fail(f"--policy {policy} reads token confidence: the live solver needs lmdeploy's "
                  "top-k logprobs (--backend turbomind|pytorch --logprobs K) or a replayed store "
                  "that has confidence (--backend replay); the synthetic and hil engines send "
                  "none (simulate such a policy with aimo simulate)")
        with stdout_to_stderr():  # engines' and libraries' prints and logs: never on stdout
            if max_new_tokens is not None:
                policy = with_token_cap(load_policy(policy), max_new_tokens)  # type: ignore[assignment]
            prof = None
            if hardware is None and backend is SolveBackend.replay and traces is not None:
                hardware = _pick_profile(None, traces, run)
            if hardware is not None or backend is SolveBackend.replay:
                from aimo.core.hardware import load_profile

                prof = load_profile(hardware or "l4x4-14b-w4kv8")
            options: dict = {"draw_seed": seed} if backend is SolveBackend.hil else {}
            if logprobs:
                options["logprobs"] = logprobs
            spec = EngineSpec(backend.value, model=model, tp=tp, seed=seed or 0,
                              max_batch=max_batch, options=options)
            report = run_solve(problems, policy, spec, record=record, hardware=prof,
                               speedup=speedup, traces=traces, run_id=run, budget_s=budget_s,
                               echo=notice, overtime_rule=overtime_scores,
                               resume=resume, record_run_id=record_run,
                               options=LoopOptions(top_k=logprobs) if logprobs else LoopOptions(),
                               require_sandbox=True if require_sandbox else None)
    except InputError as exc:
        _fail(str(exc))
    except EngineUnavailable as exc:
        _fail(str(exc), code=3)
    typer.echo(json.dumps(report.to_json(), indent=2) if as_json else report.render())


@app.command()
def merge(
    out: Path = typer.Argument(..., help="Trace store to write into (created if missing)."),
    stores: list[Path] = typer.Argument(..., help="Stores to merge (e.g. the shards of a recording)."),
) -> None:
    """Merge trace stores: runs and problems combined, duplicates refused, provenance kept."""
    from aimo.core.store.merge import merge_stores

    try:
        summary = merge_stores(out, stores)
    except InputError as exc:
        _fail(str(exc))
    typer.echo(summary.render())


@app.command()
def dashboard(
    traces: Path = typer.Option(..., help="DuckDB trace store to browse (may be being recorded)."),
    storage: Optional[str] = typer.Option(None, help="Optuna storage: journal file path or RDB URL."),
    study: Optional[str] = typer.Option(None, help="Study name within the storage."),
    port: int = typer.Option(8501, help="Port to serve on."),
    headless: bool = typer.Option(True, help="Do not open a browser window."),
    host: str = typer.Option("127.0.0.1", help="Address to listen on; 0.0.0.0 exposes the dashboard (no authentication) to the network."),
) -> None:
    """Open the Streamlit dashboard over traces, simulations and studies."""
    from aimo.dashboard import launch

    try:
        code = launch(traces, storage, port, headless, study=study, host=host)
    except InputError as exc:
        _fail(str(exc))
    raise typer.Exit(code)


@app.command()
def demo(
    traces: Optional[Path] = typer.Option(None, help="Trace store to use (default: a fresh synthetic one)."),
    run: Optional[str] = typer.Option(None, "--run", help="Run id when the store holds several."),
    out_dir: Path = typer.Option(Path("out"), help="Where the demo writes its files."),
    replicates: int = typer.Option(100, min=1, help="Bootstrap replicates for the seed policy."),
    hardware: Optional[str] = typer.Option(None, envvar=ENV["hardware"], help="Hardware profile (default: bound to the store, else matching the run's recorded hardware)."),
) -> None:
    """The main job on bundled data: the default synthetic store, its summary, the seed policy
    simulated on it under the 5-hour budget on its hardware profile, a short cross-validated
    tuning run, and the dashboard command to look at it all."""
    import shlex

    from aimo.recorder.summary import summarize_store
    from aimo.recorder.synth import synthesize_store
    from aimo.simulator import api

    try:
        if traces is None:
            traces = out_dir / "demo-synthetic.duckdb"
            if traces.exists():
                typer.echo(f"using existing synthetic store {traces}")
            else:
                typer.echo(f"generating the default synthetic store at {traces} ...")
                synthesize_store(traces, n_problems=50, n_samples=32, seed=0, profile="r1-14b")
        typer.echo(summarize_store(traces).render())
        from aimo.output import say_if_slow

        hardware = _pick_profile(hardware, traces, run)
        recorded = api.simulate(traces, "seed-2nd-place", hardware, run=run)
        typer.echo(f"\n== {recorded.policy} on {recorded.hardware}, recorded samples in recorded order ==")
        typer.echo(recorded.render().split("\n", 1)[1])
        with say_if_slow(COMPILING, after_s=8.0):
            boot = api.simulate(traces, "seed-2nd-place", hardware, run=run,
                                bootstrap=replicates, seed=0)
        typer.echo(boot.render().split("\n", 1)[1])
    except InputError as exc:
        _fail(str(exc))
    from aimo.tuner.cli_impl import run_demo_tune

    try:
        result = run_demo_tune(traces, out_dir, hardware=hardware, run_id=run, echo=typer.echo)
    except InputError as exc:
        _fail(str(exc))
    cmd = ["aimo", "dashboard", "--traces", str(traces), "--storage", result.storage,
           "--study", result.study]
    typer.echo(f"\nlook at it in the dashboard:\n  {shlex.join(cmd)}")


@app.command()
def bundle(
    policy: str = typer.Option(..., envvar=ENV["policy"], help="Preset name or policy YAML path to ship."),
    model: str = typer.Option(..., help="Model path as the notebook will see it (not copied), e.g. /kaggle/input/..."),
    out: Path = typer.Option(..., help="Folder to write (refused if not empty, unless --force)."),
    backend: LmdeployBackend = typer.Option(LmdeployBackend.turbomind, help="lmdeploy engine the notebook runs."),
    python_version: Optional[str] = typer.Option(None, help="Target Python for the wheels, e.g. 3.11 (default: this one)."),
    platform_tag: Optional[str] = typer.Option(None, "--platform", help="Target wheel platform, e.g. manylinux_2_28_x86_64 (default: this machine)."),
    force: bool = typer.Option(False, "--force", help="Replace a non-empty --out."),
) -> None:
    """An offline folder for a competition notebook: wheels of the project and its core
    dependencies, the policy, the model path, an entry script with predict (docs/solver.md)."""
    from aimo.bundle import make_bundle
    from aimo.output import notice

    try:
        res = make_bundle(policy, model, out, backend=backend.value, python_version=python_version,
                          platform_tag=platform_tag, force=force, echo=notice)
    except InputError as exc:
        _fail(str(exc))
    typer.echo(f"wrote {res.out}: policy {res.policy} (hash {res.digest}), {len(res.wheels)} "
               f"wheels, entry {res.out / 'aimo_entry.py'}; see {res.out / 'README.txt'}")


from aimo.policy_cmd import app as _policy_app  # noqa: E402 - a command group in its own module

app.add_typer(_policy_app, name="policy")


__import__("aimo.validate_cmd").validate_cmd.register(app)  # aimo validate, aimo scale-store (issue 15)


def main() -> None:  # pragma: no cover - thin wrapper for `python -m aimo`
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
