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
def simulate() -> None:
    """Replay a trace store under a policy and a hardware profile (issue 3)."""
    _not_landed("simulate", 3)


@app.command()
def tune() -> None:
    """Search the policy space with Optuna, cross-validated (issue 5)."""
    _not_landed("tune", 5)


@app.command()
def record() -> None:
    """Record real lmdeploy generations into a trace store (issue 4)."""
    _not_landed("record", 4)


@app.command()
def solve() -> None:
    """Run the live solver over a problems CSV (issue 4)."""
    _not_landed("solve", 4)


@app.command()
def dashboard() -> None:
    """Open the Streamlit dashboard over traces, simulations and studies (issue 6)."""
    _not_landed("dashboard", 6)


@app.command()
def demo(
    traces: Optional[Path] = typer.Option(None, help="Trace store to use (default: a fresh synthetic one)."),
    out_dir: Path = typer.Option(Path("out"), help="Where the demo writes its files."),
) -> None:
    """The main job on bundled data: build the default synthetic store and summarise it."""
    from recorder.summary import summarize_store
    from recorder.synth import synthesize_store

    try:
        if traces is None:
            traces = out_dir / "demo-synthetic.duckdb"
            if traces.exists():
                typer.echo(f"using existing synthetic store {traces}")
            else:
                typer.echo(f"generating the default synthetic store at {traces} ...")
                synthesize_store(traces, n_problems=50, n_samples=32, seed=0, profile="r1-14b")
        typer.echo(summarize_store(traces).render())
    except InputError as exc:
        _fail(str(exc))


def main() -> None:  # pragma: no cover - thin wrapper for `python -m aimo`
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
