"""`aimo runs`: list, show, delete and mark-failed the runs of a trace store, and commit spools.

Every command opens the store, which first commits what a writer spooled while the store was busy
(core.store.spool); `aimo runs flush` does only that.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import NoReturn

import typer

from aimo.core.errors import InputError

runs_app = typer.Typer(
    no_args_is_help=True,
    help="Runs of a trace store: list, show (with the live score), delete, mark-failed, flush.",
)

STORE = typer.Argument(..., help="DuckDB trace store.")
RUN = typer.Argument(..., help="Run id (see `aimo runs list`).")


def _fail(message: str, code: int = 2) -> NoReturn:
    typer.secho(f"error: {message}", err=True, fg=typer.colors.RED)
    raise typer.Exit(code)


def _existing(store: Path) -> Path:
    if not store.is_file():
        _fail(f"{store}: no such trace store")
    return store


def _summary_json(run) -> dict:  # type: ignore[no-untyped-def]
    return {
        "run_id": run.run_id, "kind": run.kind, "state": run.state, "status": run.status,
        "questions": run.n_problems, "samples": run.n_samples, "tokens": run.n_tokens,
        "model": run.model, "backend": run.backend, "hardware": run.hardware,
        "created_at": str(run.created_at), "finished_at": None if run.finished_at is None else str(run.finished_at),
        "writer": None if run.writer_pid is None else f"{run.writer_pid}@{run.writer_host}",
        "heartbeat_at": None if run.heartbeat_at is None else str(run.heartbeat_at),
        "budget_s": run.budget_s,
    }


@runs_app.command("list")
def runs_list(
    store: Path = STORE,
    as_json: bool = typer.Option(False, "--json", help="Print JSON: one object per run."),
) -> None:
    """Every run with its state: finished, failed, interrupted (writer gone) or running."""
    from aimo.core.store import list_runs, spool

    try:
        runs = list_runs(_existing(store))
    except InputError as exc:
        _fail(str(exc))
    if as_json:
        typer.echo(json.dumps([_summary_json(r) for r in runs], indent=2))
    else:
        typer.echo(f"{'run_id':40s} {'kind':9s} {'state':11s} {'questions':>9s} {'samples':>8s}  created")
        for r in runs:
            typer.echo(f"{r.run_id:40s} {r.kind:9s} {r.state:11s} {r.n_problems:9d} {r.n_samples:8d}  "
                       f"{r.created_at:%Y-%m-%d %H:%M:%S}")
        if not runs:
            typer.echo("(no runs)")
    left, refused = spool.pending(store), spool.rejected(store)
    if left:
        typer.echo(f"{len(left)} spooled entries still waiting for the store's lock "
                   f"({spool.spool_dir(store)})", err=True)
    if refused:
        typer.echo(f"{len(refused)} spooled entries the store refused are kept in "
                   f"{spool.spool_dir(store)} (rejected-*)", err=True)


@runs_app.command("show")
def runs_show(store: Path = STORE, run: str = RUN,
              as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """One run: identity, state, writer, and for live solves each question's answer and the score."""
    from aimo.core.store import list_runs
    from aimo.core.store.live import live_score, question_results

    try:
        found = [r for r in list_runs(_existing(store)) if r.run_id == run]
        if not found:
            raise InputError(str(store), "run_id", f"unknown run {run!r}")
        summary = found[0]
        frame = question_results(store, run)
        score = live_score(store, run)
    except InputError as exc:
        _fail(str(exc))
    live = frame["final_answer"].notna().any()
    if as_json:
        out = _summary_json(summary)
        if live:
            out["live"] = {"answered": score.answered, "correct": score.correct,
                           "with_truth": score.with_truth, "time_used_s": score.time_used_s}
            cols = ["problem_id", "truth", "final_answer", "stop_reason", "level", "start_s", "wall_s"]
            out["questions"] = json.loads(frame[cols].to_json(orient="records"))
        typer.echo(json.dumps(out, indent=2))
        return
    for key, value in _summary_json(summary).items():
        typer.echo(f"{key:13s} {value}")
    if live:
        typer.echo(score.render())
        shown = frame[["position", "problem_id", "truth", "final_answer", "stop_reason", "level",
                       "start_s", "wall_s"]]
        typer.echo(shown.to_string(index=False))


@runs_app.command("delete")
def runs_delete(store: Path = STORE, run: str = RUN,
                yes: bool = typer.Option(False, "--yes", help="Do not ask for confirmation.")) -> None:
    """Delete a run and all its rows (refused while a live process writes it)."""
    from aimo.core.store import TraceWriter

    _existing(store)
    if not yes and not typer.confirm(f"delete run {run!r} from {store}?"):
        _fail("not deleted", code=1)
    try:
        TraceWriter(store, spool_after_s=None).delete_run(run)
    except InputError as exc:
        _fail(str(exc))
    typer.echo(f"deleted run {run} from {store}")


@runs_app.command("mark-failed")
def runs_mark_failed(store: Path = STORE, run: str = RUN) -> None:
    """Set an interrupted run's status to failed (refused while a live process writes it)."""
    from aimo.core.store import list_runs
    from aimo.core.store.writer import TraceWriter

    try:
        found = [r for r in list_runs(_existing(store)) if r.run_id == run]
        if not found:
            raise InputError(str(store), "run_id", f"unknown run {run!r}")
        if found[0].state == "running":
            raise InputError(str(store), "run_id", f"run {run!r} is being written by pid "
                             f"{found[0].writer_pid} on {found[0].writer_host}; stop it first")
        TraceWriter(store).finish_run(run, "failed")
    except InputError as exc:
        _fail(str(exc))
    typer.echo(f"marked run {run} failed")


@runs_app.command("flush")
def runs_flush(store: Path = STORE) -> None:
    """Commit what a writer spooled while the store was busy (waits for the lock up to 30 s)."""
    from aimo.core.store import flush_spool, spool

    try:
        n = flush_spool(_existing(store))
    except InputError as exc:
        _fail(str(exc))
    typer.echo(f"committed {n} spooled entries into {store}")
    if spool.rejected(store):
        typer.echo(f"{len(spool.rejected(store))} refused entries kept in {spool.spool_dir(store)}", err=True)
