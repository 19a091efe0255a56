"""`aimo profile fit`: the one fit (`core.hardware.fit`) from a measurement's step rows (`--csv`)
or a recording's chunk times (`--traces`), with the fit error by cell before and after and how
far the profile extrapolates beyond what was measured."""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn, Optional

import typer

from aimo.core.errors import InputError


def _fail(message: str, code: int = 2) -> NoReturn:
    typer.secho(f"error: {message}", err=True, fg=typer.colors.RED)
    raise typer.Exit(code)


def read_measured_rows(csvs: Sequence[Path], quant_policy: Optional[int]) -> list:
    """The step rows of the CSV files (one quant_policy: the given one, else the only one)."""
    from aimo.core.hardware.rows import read_rows_csv

    rows = []
    for path in csvs:
        if not path.is_file():
            _fail(f"--csv: no such file: {path}")
        try:
            rows.extend(read_rows_csv(path))
        except (KeyError, ValueError) as exc:
            _fail(f"--csv: {path}: not a step-row CSV ({exc})")
    policies = sorted({r.quant_policy for r in rows})
    if quant_policy is None:
        if len(policies) > 1:
            _fail(f"--quant-policy: the CSV holds rows of quant_policy {policies}; pick one")
        return rows
    picked = [r for r in rows if r.quant_policy == quant_policy]
    if not picked:
        _fail(f"--quant-policy: no rows of quant_policy {quant_policy} (the CSV has {policies})")
    return picked


def fit_from_csv(csvs: Sequence[Path], quant_policy: Optional[int], name: str,
                 base_name: Optional[str], out: Path, knee: str, argv: Sequence[str], *,
                 with_live: Optional[Path] = None, run: Optional[str] = None,
                 window_tokens: int = 16) -> None:
    """Refit `base_name` from measured step rows (and, with `with_live`, a live run's chunk
    stretches beside them); print the fit, the knee choice, the error by cell before (the base)
    and after (and by batch size over the live stretches), the extrapolation; write the profile
    to `out`."""
    from aimo.core.hardware import load_profile, read_chunks, save_profile
    from aimo.core.hardware.fit import Coverage, StepModel, cell_table, fit_step_model, refit_profile
    from aimo.core.hardware.observations import observations_from_chunks, observations_from_rows

    if base_name is None:
        _fail("--base: --csv refits a profile (its prefill, start-up and pool are kept); name it")
    rows = read_measured_rows(csvs, quant_policy)
    live = None
    try:
        base = load_profile(base_name)
        if with_live is not None:
            if run is None:
                from aimo.core.store import list_runs

                runs = [r.run_id for r in list_runs(with_live)]
                if len(runs) != 1:
                    _fail(f"--run: {with_live} holds {len(runs)} runs; name the live run to fit "
                          f"beside the rows ({', '.join(runs) or 'none'})")
            live = observations_from_chunks(read_chunks(with_live, run_id=run),
                                            window_tokens=window_tokens, source=str(with_live),
                                            by_question=True)
        fit = fit_step_model(rows, knee=knee, live=live)  # type: ignore[arg-type]
        command = "aimo profile fit " + " ".join(shlex.quote(a) for a in argv)
        prof = refit_profile(base, fit, rows, name=name, sources=[str(p) for p in csvs],
                             command=command,
                             live_source=None if with_live is None else f"{run or '(the only run)'} in {with_live}")
    except ValueError as exc:
        _fail(f"--csv: {exc}", code=1)
    except InputError as exc:
        _fail(str(exc))
    obs = observations_from_rows(rows)
    typer.echo(fit.render())
    typer.echo(f"error by cell (mean step, prediction error), before = {base.name}, after = {name}:")
    typer.echo(cell_table(obs, {"before": StepModel.of(base), "after": fit.model}))
    if live is not None:
        typer.echo("error by batch size over the live stretches:")
        typer.echo(cell_table(live, {"before": StepModel.of(base), "after": fit.model}))
    typer.echo(f"extrapolation: {Coverage.of(obs).extrapolation(prof)}")
    typer.echo(f"wrote {save_profile(prof, out)}")


def report_chunk_fit(result: object, base: object | None) -> None:
    """After a `--traces` fit: the error by batch size before (the base, if any) and after, and
    the extrapolation."""
    from aimo.core.hardware.fit import Coverage, StepModel, cell_table

    obs = result.observations  # type: ignore[attr-defined]
    if obs is None:
        return
    models = {"after": StepModel.of(result.profile)}  # type: ignore[attr-defined]
    if base is not None:
        models = {"before": StepModel.of(base), **models}  # type: ignore[arg-type]
    typer.echo("error by batch size (mean step, prediction error):")
    typer.echo(cell_table(obs, models))
    typer.echo(f"extrapolation: {Coverage.of(obs).extrapolation(result.profile)}")  # type: ignore[attr-defined]
