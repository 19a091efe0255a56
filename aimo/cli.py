"""`aimo` subcommands. Each command imports its implementation lazily so start-up stays fast and
`aimo --help` works without the GPU extra."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import NoReturn, Optional

import typer

from solver.errors import InputError

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__)

DEFAULT_DEMO_STORE = Path("out/demo-synthetic.duckdb")


def _fail(message: str, code: int = 2) -> NoReturn:
    typer.secho(f"error: {message}", err=True, fg=typer.colors.RED)
    raise typer.Exit(code)


def _not_landed(command: str, issue: int) -> NoReturn:
    _fail(f"`aimo {command}` is not implemented yet (tracked in issue {issue}).", code=3)


@app.command()
def synth(
    out: Path = typer.Option(..., help="DuckDB trace store to write (must not exist)."),
    problems: int = typer.Option(50, min=1, help="Number of problems."),
    samples: int = typer.Option(32, min=1, help="Samples per problem (half CoT, half code)."),
    seed: int = typer.Option(0, help="Random seed; the store is a pure function of it."),
    profile: str = typer.Option("r1-14b", help="Calibration profile of the synthetic model."),
) -> None:
    """Generate a synthetic trace store calibrated to a 14B R1-distill model on AIME-level problems."""
    from recorder.synth import synthesize_store

    try:
        summary = synthesize_store(out, n_problems=problems, n_samples=samples, seed=seed, profile=profile)
    except InputError as exc:
        _fail(str(exc))
    typer.echo(summary.render())


@app.command("import")
def import_(
    problems: Path = typer.Option(..., help="Problems CSV: id,question,answer."),
    samples: Path = typer.Option(..., help="Samples JSONL, one sample a line."),
    out: Path = typer.Option(..., help="DuckDB trace store to write into."),
    run_id: Optional[str] = typer.Option(None, help="Run id (default: derived from the file name)."),
) -> None:
    """Import traces produced elsewhere (CSV of problems + JSONL of samples)."""
    from recorder.importer import import_traces

    try:
        summary = import_traces(problems, samples, out, run_id=run_id)
    except InputError as exc:
        _fail(str(exc))
    typer.echo(summary.render())


@app.command()
def simulate(
    traces: Path = typer.Option(..., help="DuckDB trace store."),
    run: Optional[str] = typer.Option(None, "--run", help="Run id (needed when the store has several)."),
    policy: str = typer.Option("seed-2nd-place", help="Preset name or policy YAML path."),
    hardware: str = typer.Option("l4x4-14b-w4kv8", help="Hardware profile name or YAML path."),
    budget_s: float = typer.Option(18000.0, help="Competition budget in seconds."),
    bootstrap: int = typer.Option(0, min=0, help="0: recorded samples in recorded order; N: N seeded replicates."),
    seed: int = typer.Option(0, help="Seed of the bootstrap draws."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON (fields: docs/simulate-json.md)."),
) -> None:
    """Replay a trace store under a policy and a hardware profile: a 5-hour competition."""
    import json

    from simulator.hardware import load_profile
    from simulator.report import (
        bootstrap_json, competition_json, render_bootstrap, render_competition,
    )
    from simulator.replay import bootstrap_competitions, replay_competition, summarize
    from solver.policy import load_policy
    from solver.store import load_problem_traces

    try:
        pol = load_policy(policy)
        prof = load_profile(hardware)
        problems = load_problem_traces(traces, run)
    except InputError as exc:
        _fail(str(exc))
    if not problems:
        _fail(f"{traces}: no completed questions in the store")
    head = {"traces": str(traces), "run_id": problems[0].run_id, "policy": pol.name,
            "hardware": prof.name, "budget_s": budget_s}
    if bootstrap == 0:
        result = replay_competition(problems, pol, prof, budget_s=budget_s)
        if as_json:
            typer.echo(json.dumps({**head, "mode": "recorded", **competition_json(result)}, indent=2))
        else:
            typer.echo(f"policy {pol.name} on {traces} (run {problems[0].run_id}), hardware {prof.name}")
            typer.echo(render_competition(result))
        return
    results = bootstrap_competitions(
        problems, pol, prof, replicates=bootstrap, seed=seed, budget_s=budget_s
    )
    summary = summarize(results)
    if as_json:
        typer.echo(json.dumps({**head, "mode": "bootstrap", "seed": seed,
                               "bootstrap": bootstrap_json(summary)}, indent=2))
    else:
        typer.echo(f"policy {pol.name} on {traces} (run {problems[0].run_id}), hardware {prof.name}")
        typer.echo(render_bootstrap(summary))


profile_app = typer.Typer(help="Hardware time-model profiles: list, show, fit from a recording, measure on a GPU.")
app.add_typer(profile_app, name="profile")


@profile_app.command("list")
def profile_list() -> None:
    """List the bundled hardware profiles."""
    from simulator.hardware import list_profiles

    for name in list_profiles():
        typer.echo(name)


@profile_app.command("show")
def profile_show(name: str = typer.Argument(..., help="Profile name or YAML path.")) -> None:
    """Print a profile's coefficients and its error against its calibration points."""
    from simulator.hardware import load_profile
    from simulator.hardware.calibrate import format_report

    try:
        typer.echo(format_report(load_profile(name)))
    except InputError as exc:
        _fail(str(exc))


@profile_app.command("fit")
def profile_fit(
    traces: Path = typer.Option(..., help="Trace store with timestamped chunks."),
    run: Optional[str] = typer.Option(None, "--run", help="Run id (needed when the store has several)."),
    name: str = typer.Option(..., help="Name of the fitted profile."),
    base: Optional[str] = typer.Option(None, help="Profile to take non-decode settings from."),
    out: Optional[Path] = typer.Option(None, help="YAML to write (default NAME.yaml)."),
    window_tokens: int = typer.Option(16, min=1, help="Tokens per fitted stretch."),
) -> None:
    """Fit a + beta*b + gamma*C from a recording's own chunk timestamps; report the fit error."""
    from simulator.hardware import fit_profile, load_profile, read_chunks, save_profile

    try:
        chunks = read_chunks(traces, run_id=run)
        result = fit_profile(
            chunks, name=name, base=load_profile(base) if base else None,
            window_tokens=window_tokens, source=f"{traces}:{run or 'only run'}",
        )
        path = save_profile(result.profile, out or Path(f"{name}.yaml"))
    except InputError as exc:
        _fail(str(exc))
    typer.echo(result.render())
    typer.echo(f"wrote {path}")


@profile_app.command("measure")
def profile_measure(
    model: Path = typer.Option(..., help="Model directory (HF layout: config.json, tokenizer, weights)."),
    name: str = typer.Option(..., help="Name of the measured profile."),
    out: Path = typer.Option(..., help="Profile YAML to write."),
    backend: str = typer.Option("pytorch", help="lmdeploy backend: pytorch | turbomind."),
    quant_policy: int = typer.Option(8, help="KV cache: 8 int8, 4 int4, 0 16-bit."),
    grid: str = typer.Option("quick", help="Cell grid: quick (8 cells) | full (18 cells)."),
    cells: Optional[str] = typer.Option(None, help="Cells instead of --grid, e.g. 1x512,8x512,8x4096 (batch x prompt tokens)."),
    new_tokens: int = typer.Option(128, min=32, help="Tokens decoded per sequence in each cell."),
    max_batch: Optional[int] = typer.Option(None, min=1, help="Engine max_batch (default: the largest cell's batch)."),
    tp: int = typer.Option(1, min=1, help="GPUs the engine spans (tensor parallel)."),
    base: str = typer.Option("l4x4-14b-w4kv8", help="Profile to take start-up, max_batch, code overlap (and prefill, unless measured) from."),
    csv_out: Optional[Path] = typer.Option(None, "--csv", help="Also write the step rows to this CSV."),
    until: Optional[float] = typer.Option(None, help="Deadline (epoch seconds): cells that would not end by then are skipped."),
    fake: bool = typer.Option(False, "--fake", hidden=True, help="CPU dry run against the lmdeploy test double."),
) -> None:
    """Measure the engine's decode step latency over a (batch, prompt) grid on this GPU, fit
    a + beta*b + gamma*C, print the fit error and write the profile (docs/hardware.md)."""
    import dataclasses
    import math
    import time

    from recorder import step_latency as sl
    from simulator.hardware import load_profile, save_profile

    if not model.is_dir():
        _fail(f"--model: no such model directory: {model}")
    if backend not in ("pytorch", "turbomind"):
        _fail(f"--backend: must be pytorch or turbomind, got {backend!r}")
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
    for opt, path in (("--out", out), ("--csv", csv_out)):
        if path is not None and not path.parent.is_dir():
            _fail(f"{opt}: no such directory: {path.parent}")
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


@app.command()
def tune(
    traces: Path = typer.Option(..., help="DuckDB trace store."),
    trials: int = typer.Option(..., help="Finished trials per study (K fold studies + 1 final)."),
    out: Path = typer.Option(..., help="Policy YAML to write (refused if it exists, unless --force)."),
    storage: Optional[str] = typer.Option(None, help="Journal file path (default <out>.journal), sqlite:///..., postgresql://..."),
    study: str = typer.Option("aimo-tune", help="Study name; same storage + name resumes."),
    folds: int = typer.Option(5, help="Nested CV folds by problem (>= 2)."),
    bootstrap: int = typer.Option(100, help="Replicates per trial and per held-out fold."),
    workers: int = typer.Option(1, help="Worker processes."),
    space: Optional[Path] = typer.Option(None, help="Search-space narrowing YAML (docs/tuner.md)."),
    seed: int = typer.Option(0, help="Seeds folds, draws and samplers."),
    sampler: str = typer.Option("tpe", help="tpe | nsga2 | gp"),
    max_overtime: float = typer.Option(0.05, help="Constraint: P(overtime) <= this."),
    select: str = typer.Option("mean", help="mean | lcb"),
    multi_objective: bool = typer.Option(False, "--multi-objective", help="Also minimise mean time (Pareto front)."),
    hardware: str = typer.Option("l4x4-14b-w4kv8", help="Hardware profile."),
    budget_s: float = typer.Option(18000.0, help="Competition budget in seconds."),
    run: Optional[str] = typer.Option(None, "--run", help="Run id (needed when the store has several)."),
    force: bool = typer.Option(False, "--force", help="Replace --out if it exists."),
) -> None:
    """Search the policy space with Optuna; report held-out (nested CV) scores; export the winner."""
    from tuner.cli_impl import run_tune

    try:
        run_tune(traces, trials, out, storage=storage, study=study, folds=folds, bootstrap=bootstrap,
                 workers=workers, space=space, seed=seed, sampler=sampler, max_overtime=max_overtime,
                 select=select, multi_objective=multi_objective, hardware=hardware, budget_s=budget_s,
                 run_id=run, overwrite=force, echo=typer.echo)
    except InputError as exc:
        _fail(str(exc))


@app.command()
def record(
    problems: Path = typer.Option(..., help="Problems CSV: id,question,answer."),
    model: str = typer.Option(..., help="Model directory (AWQ 4-bit checkpoint)."),
    backend: str = typer.Option("turbomind", help="lmdeploy backend: turbomind or pytorch."),
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
) -> None:
    """Record real lmdeploy generations into a trace store (every sample to its end; resumable)."""
    from recorder.record import run_record
    from solver.engines.lmdeploy_engine import LmdeployUnavailableError

    options = {"tp": tp, "quant_policy": quant_policy, "max_batch": max_batch,
               "model_format": None if model_format == "none" else model_format}
    try:
        summary = run_record(problems, model, backend, samples, out, prompts=prompts,
                             max_new_tokens=max_new_tokens, policy=policy, run_id=run_id,
                             engine_options=options)
    except InputError as exc:
        _fail(str(exc))
    except LmdeployUnavailableError as exc:
        _fail(str(exc), code=3)
    typer.echo(summary.render())


@app.command()
def solve(
    problems: Optional[Path] = typer.Option(None, help="Problems CSV: id,question[,answer]; replay without it: the run's questions."),
    policy: str = typer.Option("seed-2nd-place", help="Preset name or policy YAML path."),
    model: Optional[str] = typer.Option(None, help="Model path (turbomind/pytorch)."),
    backend: str = typer.Option("replay", help="replay | synthetic | turbomind | pytorch."),
    traces: Optional[Path] = typer.Option(None, help="Trace store to replay."),
    run: Optional[str] = typer.Option(None, "--run", help="Run id (when the store has several)."),
    hardware: Optional[str] = typer.Option(None, help="Hardware profile (replay default l4x4-14b-w4kv8)."),
    speedup: float = typer.Option(float("inf"), help="Virtual seconds per wall second (inf: no sleeping)."),
    record: Optional[Path] = typer.Option(None, help="Trace store to record the run into (kind 'solve')."),
    tp: Optional[int] = typer.Option(None, help="Tensor-parallel GPUs (lmdeploy; default all visible)."),
    budget_s: float = typer.Option(18000.0, help="Competition budget in seconds."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON (docs/simulate-json.md, mode 'solve')."),
    max_new_tokens: Optional[int] = typer.Option(None, min=1, help="Cap every sample at N tokens (e.g. the cap the replayed recording was made with)."),
    require_sandbox: bool = typer.Option(False, "--require-sandbox", help="Run no model code unless every sandbox layer is here (docs/sandbox.md); answers then come from boxes."),
) -> None:
    """Run the live solver over a problems CSV (lmdeploy, or the replay/synthetic CPU engines)."""
    import json

    from solver.policy import load_policy, with_token_cap
    from solver.solve import EngineSpec, EngineUnavailable, run_solve

    try:
        if max_new_tokens is not None:
            policy = with_token_cap(load_policy(policy), max_new_tokens)  # type: ignore[assignment]
        prof = None
        if hardware is not None or backend == "replay":
            from simulator.hardware import load_profile

            prof = load_profile(hardware or "l4x4-14b-w4kv8")
        report = run_solve(problems, policy, EngineSpec(backend, model=model, tp=tp), record=record,
                           hardware=prof, speedup=speedup, traces=traces, run_id=run, budget_s=budget_s,
                           echo=None if as_json else typer.echo,
                           **({"require_sandbox": True} if require_sandbox else {}))
    except InputError as exc:
        _fail(str(exc))
    except EngineUnavailable as exc:
        _fail(str(exc), code=3)
    typer.echo(json.dumps(report.to_json(), indent=2) if as_json else report.render())


@app.command()
def dashboard(
    traces: Path = typer.Option(..., help="DuckDB trace store to browse (may be being recorded)."),
    storage: Optional[str] = typer.Option(None, help="Optuna storage: journal file path or RDB URL."),
    study: Optional[str] = typer.Option(None, help="Study name within the storage."),
    port: int = typer.Option(8501, help="Port to serve on."),
    headless: bool = typer.Option(True, help="Do not open a browser window."),
) -> None:
    """Open the Streamlit dashboard over traces, simulations and studies."""
    from dashboard import launch

    try:
        code = launch(traces, storage, port, headless, study=study)
    except InputError as exc:
        _fail(str(exc))
    raise typer.Exit(code)


@app.command()
def demo(
    traces: Optional[Path] = typer.Option(None, help="Trace store to use (default: a fresh synthetic one)."),
    run: Optional[str] = typer.Option(None, "--run", help="Run id when the store holds several."),
    out_dir: Path = typer.Option(Path("out"), help="Where the demo writes its files."),
    replicates: int = typer.Option(100, min=1, help="Bootstrap replicates for the seed policy."),
    hardware: str = typer.Option("l4x4-14b-w4kv8", help="Hardware profile (e.g. h200-olympiad-tiny-w4kv8 for data/traces/olympiad-tiny.duckdb)."),
) -> None:
    """The main job on bundled data: the default synthetic store, its summary, the seed policy
    simulated on it under the 5-hour 4×L4 budget, and a short cross-validated tuning run."""
    from recorder.summary import summarize_store
    from recorder.synth import synthesize_store
    from simulator.hardware import load_profile
    from simulator.replay import bootstrap_competitions, replay_competition, summarize
    from simulator.report import render_bootstrap, render_competition
    from solver.policy import load_policy
    from solver.store import load_problem_traces

    try:
        if traces is None:
            traces = out_dir / "demo-synthetic.duckdb"
            if traces.exists():
                typer.echo(f"using existing synthetic store {traces}")
            else:
                typer.echo(f"generating the default synthetic store at {traces} ...")
                synthesize_store(traces, n_problems=50, n_samples=32, seed=0, profile="r1-14b")
        typer.echo(summarize_store(traces).render())
        problems = load_problem_traces(traces, run)
        policy = load_policy("seed-2nd-place")
        profile = load_profile(hardware)
    except InputError as exc:
        _fail(str(exc))
    typer.echo(f"\n== {policy.name} on {profile.name}, recorded samples in recorded order ==")
    typer.echo(render_competition(replay_competition(problems, policy, profile)))
    summary = summarize(
        bootstrap_competitions(problems, policy, profile, replicates=replicates, seed=0)
    )
    typer.echo(render_bootstrap(summary))
    from tuner.cli_impl import run_demo_tune

    try:
        run_demo_tune(traces, out_dir, hardware=hardware, run_id=run, echo=typer.echo)
    except InputError as exc:
        _fail(str(exc))


def main() -> None:  # pragma: no cover - thin wrapper for `python -m aimo`
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
