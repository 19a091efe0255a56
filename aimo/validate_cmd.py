"""`aimo validate` (a live run against the simulator), `aimo scale-store` (a length-scaled copy of
a store for hardware-in-the-loop runs) and the `--from-live` part of `aimo profile fit`.

Registered on the main app by `register(app)` (one line in aimo/cli.py); implementations are
imported lazily so `aimo --help` stays fast. See docs/hil.md.
"""

from __future__ import annotations

import dataclasses

import json
from pathlib import Path
from typing import Any, NoReturn, Optional

import typer

from aimo.core.errors import InputError


def _fail(message: str, code: int = 2) -> NoReturn:
    typer.secho(f"error: {message}", err=True, fg=typer.colors.RED)
    raise typer.Exit(code)


def validate(
    live: Path = typer.Option(..., help="Trace store holding the live run (aimo solve --record)."),
    live_run: Optional[str] = typer.Option(None, "--live-run", help="Live run id (when the store has several solve runs)."),
    traces: Path = typer.Option(..., help="Trace store the simulator replays (for a hil run: the store it replayed)."),
    run: Optional[str] = typer.Option(None, "--run", help="Run id of --traces (when it has several)."),
    hardware: str = typer.Option(..., help="Hardware profile name or YAML path."),
    plot: Optional[Path] = typer.Option(None, help="Write a PNG: predicted vs live question times, cumulative times."),
    live_json: Optional[Path] = typer.Option(None, "--live-json", help="`aimo solve --json` report of the live run (answers, stop reasons) for stores without per-question results."),
    skip_first: bool = typer.Option(False, "--skip-first", help="Leave the first question out of the time errors (lmdeploy's first-batch stall)."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary and rows as JSON."),
    markdown: Optional[Path] = typer.Option(None, help="Append a summary row to this Markdown table (created with its header)."),
) -> None:
    """Replay the trace store under the live run's policy, order and sample draw; print live vs
    simulated answers, stop reasons and times per question, the errors and start-up."""
    from aimo.simulator.validate import MARKDOWN_HEAD, compare_stores, markdown_row, render
    from aimo.simulator.validate import plot as draw

    for opt, path in (("--plot", plot), ("--markdown", markdown)):
        if path is not None and not path.parent.is_dir():
            _fail(f"{opt}: no such directory: {path.parent}")
    try:  # the one comparison the dashboard's Validate page shows too
        v = compare_stores(live, traces, hardware, live_run=live_run, traces_run=run,
                           json_report=live_json, skip_first=skip_first)
    except InputError as exc:
        _fail(str(exc))
    typer.echo(json.dumps(v.as_json(), indent=2) if as_json else render(v))
    if markdown is not None:
        new = not markdown.exists()
        with markdown.open("a", encoding="utf-8") as fh:
            fh.write((MARKDOWN_HEAD + "\n" if new else "") + markdown_row(v) + "\n")
    if plot is not None:
        typer.echo(f"wrote {draw([v.check], plot)}", err=as_json)


def scale_store(
    traces: Path = typer.Option(..., help="Trace store to copy."),
    run: Optional[str] = typer.Option(None, "--run", help="Run id (when the store has several)."),
    length_scale: float = typer.Option(..., help="Multiply sample lengths and answer positions by this (0 < s <= 1), e.g. 0.25."),
    out: Path = typer.Option(..., help="New store to write (must not exist)."),
) -> None:
    """Write a length-scaled copy of a store's run (for hil runs that must fit the device time;
    the scale is recorded in the run, docs/hil.md)."""
    from aimo.recorder.scale import scale_store as scale

    try:
        typer.echo(scale(traces, out, length_scale, run_id=run).render())
    except InputError as exc:
        _fail(str(exc))


def fit_from_live(live: Path, run: Optional[str], name: str, base: Optional[str], out: Optional[Path],
                  window_tokens: int, traces: Optional[Path] = None, *, host_only: bool = False) -> None:
    """`aimo profile fit --from-live`: refit the step model from a live run's chunk times, the
    per-question overhead from its question ends (`core.hardware.fit.question_overhead`) and the
    abort latency from its stop decisions (`AbortLatency.steps_estimate`), and
    report the error before (the base profile) and after, per stretch and (with --traces) per
    question through `aimo validate`'s comparison. `host_only`: keep the base's measured engine
    step and fit only the live loop's host seconds per step on top of it
    (`core.hardware.fit.host_per_step`) and the per-question overhead."""
    from aimo.core.hardware import fit_profile, load_profile, observations_from_chunks, read_chunks, save_profile
    from aimo.core.hardware.fit import observation_errors, question_overhead
    from aimo.core.store.chunk_times import load_question_ends
    from aimo.simulator.validate import read_live_run
    from aimo.simulator.validate import validate as run_validate
    from aimo.core.store import load_problem_traces

    if base is None:
        _fail("--base: --from-live needs the profile to refit (its prefill, start-up and pool are kept)")
    target = out or Path(f"{name}.yaml")
    if target.exists():
        _fail(f"--out: {target} exists; pick another path (nothing is overwritten)")
    try:
        live_run = read_live_run(live, run)
        before = load_profile(base)
        chunks = read_chunks(live, run_id=live_run.run_id)
        obs = observations_from_chunks(chunks, window_tokens=window_tokens, source=f"{live}:{live_run.run_id}")
        if host_only:
            first = min(live_run.questions, key=lambda q: q.position).problem_id
            result = _host_fit(obs, chunks, first, before, name, f"live run {live}:{live_run.run_id}")
        else:
            result = fit_profile(obs, name=name, base=before, source=f"live run {live}:{live_run.run_id}")
        overhead = question_overhead(load_question_ends(live, live_run.run_id))
        problems = load_problem_traces(traces) if traces is not None else None
    except InputError as exc:
        _fail(str(exc))
    if overhead is not None:  # measured from the run's own question ends (docs/hardware.md)
        prov = result.profile.provenance
        result = dataclasses.replace(result, profile=dataclasses.replace(
            result.profile, question_overhead_s=round(overhead.seconds, 4),
            provenance=dataclasses.replace(prov, notes=f"{prov.notes} question_overhead_s: "
                                           f"{overhead.render()}.")))
    latency = None if live_run.latency is None else live_run.latency.steps_estimate()
    if latency is not None:  # measured from the run's stop decisions (simulator.live_timing)
        prov = result.profile.provenance
        q = live_run.latency.summary("question")  # type: ignore[union-attr]
        result = dataclasses.replace(result, profile=dataclasses.replace(
            result.profile, abort_latency_steps=latency,
            provenance=dataclasses.replace(prov, notes=f"{prov.notes} abort_latency_steps: the mean "
                                           f"steps ({q['steps_mean']}) that {q['n']} samples decoding at a "
                                           f"question stop's decision gained after it, rounded.")))
    med0, p900, n = observation_errors(before, obs)
    med1, p901, _ = observation_errors(result.profile, obs)
    typer.echo(result.render())
    typer.echo(overhead.render() + f" -> question_overhead_s {result.profile.question_overhead_s:g} s"
               if overhead is not None else
               "question overhead: too few questions without code runs to measure it (kept)")
    typer.echo(f"abort latency -> abort_latency_steps {latency}" if latency is not None else
               "abort latency: too few samples decoding at a question stop's decision to measure it "
               f"(kept {result.profile.abort_latency_steps})")
    typer.echo(f"step error over {n} stretches of live run {live_run.run_id}: before ({before.name}) "
               f"median {med0:.1%}, p90 {p900:.1%}; after ({name}) median {med1:.1%}, p90 {p901:.1%}")
    if problems is not None:
        for label, prof in (("before", before), ("after", result.profile)):
            try:
                s = run_validate(live_run, problems, prof).summary()
            except InputError as exc:
                _fail(str(exc))
            typer.echo(f"question times {label} ({prof.name}): |error| median {100 * (s['time_error_median'] or 0):.1f}%, "
                       f"p90 {100 * (s['time_error_p90'] or 0):.1f}%, total {100 * (s['total_error'] or 0):+.1f}%")
    typer.echo(f"wrote {save_profile(result.profile, target)}")


def _host_fit(obs: Any, chunks: Any, first: str | None, base: Any, name: str, source: str) -> Any:
    """The base profile with the live loop's host seconds per step and the engine's admission
    per request fitted on top of its measured engine step and per-token prefill
    (`--host-only`), as a `FitResult` for the report; `first`: the run's first served question,
    left out of the admission estimate (its first-batch stall)."""
    import numpy as np

    from aimo.core.hardware.fit import FitResult, host_per_step, observation_errors, prefill_per_request
    from aimo.core.hardware.timing import decode_coefficients, step_seconds

    host = host_per_step(obs, base)
    if host is None:
        _fail("--host-only: too few chunk stretches in the live run to fit the host time")
    typer.echo(host.render())
    profile = dataclasses.replace(base, name=name, host_per_step=round(host.seconds, 6))
    admit = prefill_per_request(chunks, profile, first=first)  # against the step with the host time
    notes = (f"{base.provenance.notes} decode.host_per_step = {profile.host_per_step:g} s: the live "
             f"control loop's host seconds per decode step on top of the measured engine step, "
             f"fitted from {source} (`aimo profile fit --from-live --host-only`): {host.render()}.")
    if admit is not None:
        typer.echo(admit.render())
        profile = dataclasses.replace(profile, prefill_s_per_request=round(admit.seconds, 5))
        notes += (f" prefill_s_per_request = {profile.prefill_s_per_request:g} s, from the same "
                  f"run: {admit.render()}.")
    else:
        typer.echo("prefill per request: too few questions to measure it (kept)")
    profile = dataclasses.replace(profile, provenance=dataclasses.replace(base.provenance, notes=notes))
    y, b, c, w = (np.asarray(x, np.float64) for x in (obs.step_s, obs.batch, obs.context, obs.weight))
    ok = np.isfinite(y) & (y > 0) & (b > 0) & (w > 0)
    pred = step_seconds(*decode_coefficients(profile), b[ok], c[ok])
    rmse = float(np.sqrt(np.sum(w[ok] * (pred - y[ok]) ** 2) / np.sum(w[ok])))
    med, p90, n = observation_errors(profile, obs)
    return FitResult(profile=profile, rmse_s=rmse, median_rel_error=med, p90_rel_error=p90,
                     n_points=n, observations=obs)


def register(app: typer.Typer) -> None:
    """Add `validate` and `scale-store` to the main app."""
    app.command("validate")(validate)
    app.command("scale-store")(scale_store)
