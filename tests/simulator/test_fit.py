"""One fit of the step model (`core.hardware.fit`, solver `core.hardware.lsq`): the knee goes in
only where the held-out error says so, `aimo profile fit --csv` reports the error by cell before
and after and the extrapolation, and no other module solves least squares or opens DuckDB for it."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from aimo.cli import app
from aimo.core.hardware import load_profile, save_profile
from aimo.core.hardware.fit import KNEE, LINEAR, StepModel, choose_step_model, fit_step_model
from aimo.core.hardware.observations import observations_from_rows
from aimo.core.hardware.rows import StepRow, read_rows_csv, write_rows_csv

ROOT = Path(__file__).resolve().parents[2]
EVIDENCE = ROOT / "data/measurements/h200-2026-12-07/steps.csv"
CELLS = [(1, 512), (4, 512), (8, 512), (16, 512), (32, 512), (1, 8192), (4, 4096), (8, 2048),
         (16, 1024), (32, 2048), (16, 8192), (32, 8192)]


def rows_of(model: StepModel, noise: float, seed: int = 0) -> list[StepRow]:
    rng = np.random.default_rng(seed)
    out = []
    for b, p in CELLS:
        for k in range(4):
            c = b * (p + 16 + 32 * k)
            y = float(model.predict(b, c)) * (1 + noise * rng.standard_normal())
            out.append(StepRow(8, b, float(c), y, p, 31.0, "g"))
    return out


def test_a_linear_step_gets_no_knee() -> None:
    for seed in range(5):
        fit = fit_step_model(rows_of(StepModel(0.011, 4.5e-5, 7.2e-8), noise=0.01, seed=seed))
        assert fit.knee_batch == 0 and fit.beta_above == 0.0 and fit.model.form == LINEAR


def test_a_kneed_step_gets_its_knee_back() -> None:
    true = StepModel(0.011, 0.0, 7.2e-8, knee_batch=16, beta_above=1.2e-4)
    fit = fit_step_model(rows_of(true, noise=0.003))
    assert fit.model.form == KNEE and fit.knee_batch == 16
    assert fit.beta_above == pytest.approx(1.2e-4, rel=0.1)
    assert fit.choice is not None and fit.choice.knee_held_out.median < fit.choice.linear_held_out.median
    off = fit_step_model(rows_of(true, noise=0.003), knee="off")
    assert off.model.form == LINEAR and off.rel_error.median > fit.rel_error.median


def test_the_h200_evidence_chooses_the_knee_on_held_out_error() -> None:
    rows = read_rows_csv(EVIDENCE, 8)
    choice, _ = choose_step_model(observations_from_rows(rows), rel=True)
    assert choice.chosen.knee_batch == 16 and choice.chosen.has_knee
    assert choice.knee_held_out.median < 0.02 < 0.035 < choice.linear_held_out.median
    assert choice.knee_held_out.p90 < choice.linear_held_out.p90


def test_the_shipped_profile_is_the_evidence_refit() -> None:
    p = load_profile("h200-14b-w4kv8")
    fit = fit_step_model(read_rows_csv(EVIDENCE, 8))
    assert StepModel.of(p) == fit.model
    assert str(EVIDENCE.relative_to(ROOT)) in p.provenance.method
    assert "aimo profile fit --csv" in p.provenance.method


def test_profile_fit_csv_reports_cells_and_extrapolation(tmp_path: Path) -> None:
    base = dataclasses.replace(load_profile("h200-14b-w4kv8"), knee_batch=0, beta_above=0.0,
                               beta=4.5e-5, a=0.011)
    save_profile(base, tmp_path / "base.yaml")
    csv = write_rows_csv(tmp_path / "s.csv", read_rows_csv(EVIDENCE, 8))
    out = tmp_path / "new.yaml"
    res = CliRunner().invoke(app, ["profile", "fit", "--csv", str(csv), "--base",
                                   str(tmp_path / "base.yaml"), "--name", "new", "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "error by cell" in res.output and "32x8192" in res.output
    assert "before" in res.output and "after" in res.output
    assert "extrapolation: measured b 1..32" in res.output and "context extrapolated" in res.output
    got = load_profile(out)
    assert got.has_knee and got.knee_batch == 16 and "knee at b=16" in got.provenance.notes
    assert (got.startup_s, got.prefill_s_per_token) == (base.startup_s, base.prefill_s_per_token)
    off = CliRunner().invoke(app, ["profile", "fit", "--csv", str(csv), "--base", "h200-14b-w4kv8",
                                   "--name", "lin", "--out", str(tmp_path / "l.yaml"), "--knee", "off"])
    assert off.exit_code == 0 and not load_profile(tmp_path / "l.yaml").has_knee


def live_stretches(model: StepModel, batches: range, noise: float, seed: int = 1):
    """A live run's chunk stretches as observations (500 per batch size, weight 16 tokens)."""
    from aimo.core.hardware.observations import StepObservations

    rng = np.random.default_rng(seed)
    b = np.repeat(np.array(list(batches), float), 500)
    c = b * rng.uniform(300, 1200, b.size)
    y = model.predict(b, c) * (1 + noise * rng.standard_normal(b.size))
    return StepObservations(step_s=y, batch=b, context=c, weight=np.full(b.size, 16.0))


def test_a_live_run_beside_the_grid_places_the_knee_the_grid_cannot() -> None:
    """The H100 case: the grid has b 1, 8 and 32 only, so a step flat up to b 11 and steeper
    above looks linear to it; a live run's stretches at b 1-15 show where it turns, and the joint
    fit (each weighing as much in all) gets both, with the knee on held-out error (inside the
    live range, not at its edge)."""
    true = StepModel(0.0114, 0.0, 7.8e-8, knee_batch=11, beta_above=1.2e-4)
    grid = [(b, p) for b in (1, 8, 32) for p in (512, 4096)]
    rng = np.random.default_rng(3)
    rows = [StepRow(8, b, float(b * (p + 16 + 32 * k)),
                    float(true.predict(b, b * (p + 16 + 32 * k))) * (1 + 0.003 * rng.standard_normal()),
                    p, 31.0, "g") for b, p in grid for k in range(4)]
    alone = fit_step_model(rows)
    live = live_stretches(true, range(1, 16), noise=0.01)
    joint = fit_step_model(rows, live=live)
    assert joint.model.form == KNEE and joint.knee_batch == 11
    assert joint.beta_above == pytest.approx(1.2e-4, rel=0.15)
    assert joint.live_stretches == len(live) and joint.live_error is not None
    alone_live = np.median(np.abs(alone.model.predict(live.batch, live.context) / live.step_s - 1))
    assert joint.live_error.median < alone_live  # the grid alone misses the live batches
    assert "and 7500 live stretches" in joint.render() and "over the live stretches" in joint.render()


def test_the_shipped_h100_profile_is_the_grid_and_the_hil_run_fitted_together() -> None:
    """`h100-14b-w4kv8`: the H100 grid with set 1's majority-n live run (docs/hil.md), knee at 15."""
    from aimo.core.hardware.observations import observations_from_chunks, read_chunks

    p = load_profile("h100-14b-w4kv8")
    grid = ROOT / "data/measurements/h100-2026-12-07-hil/steps.csv"
    run = "solve-majority-n-hil-20261207T213311788545Z"
    live = observations_from_chunks(read_chunks(ROOT / "data/traces/hil-h100-live.duckdb", run_id=run),
                                    by_question=True)
    assert len(set(live.group)) == 10  # held out a question at a time (the run's 10 questions)
    fit = fit_step_model(read_rows_csv(grid, 8), live=live)
    assert StepModel.of(p) == fit.model and p.knee_batch == 15
    assert fit.choice is not None and "one live question left out" in fit.choice.held_out_by
    assert "--with-live data/traces/hil-h100-live.duckdb" in p.provenance.method and run in p.provenance.method


def test_profile_fit_with_live_needs_the_grid(tmp_path: Path) -> None:
    res = CliRunner().invoke(app, ["profile", "fit", "--with-live", str(ROOT / "data/traces/hil-h100-live.duckdb"),
                                   "--base", "h100-14b-w4kv8", "--name", "x", "--out", str(tmp_path / "x.yaml")])
    assert res.exit_code == 2 and "--with-live: only with --csv" in res.output
    missing = CliRunner().invoke(app, ["profile", "fit", "--csv", str(EVIDENCE), "--with-live",
                                       str(tmp_path / "absent.duckdb"), "--base", "h200-14b-w4kv8",
                                       "--name", "x", "--out", str(tmp_path / "x.yaml")])
    assert missing.exit_code == 2 and "absent.duckdb" in missing.output
    several = CliRunner().invoke(app, ["profile", "fit", "--csv", str(EVIDENCE), "--with-live",
                                       str(ROOT / "data/traces/hil-h100-live.duckdb"), "--base",
                                       "h200-14b-w4kv8", "--name", "x", "--out", str(tmp_path / "x.yaml")])
    assert several.exit_code == 2 and "--run:" in several.output and "holds 3 runs" in several.output
    assert not (tmp_path / "x.yaml").exists()


def test_profile_fit_csv_needs_a_base(tmp_path: Path) -> None:
    res = CliRunner().invoke(app, ["profile", "fit", "--csv", str(EVIDENCE), "--name", "x",
                                   "--out", str(tmp_path / "x.yaml")])
    assert res.exit_code == 2 and "--base" in res.output


def test_a_knee_profile_round_trips_and_an_old_one_stays_linear(tmp_path: Path) -> None:
    p = load_profile("h200-14b-w4kv8")
    assert load_profile(save_profile(p, tmp_path / "p.yaml")) == p
    old = load_profile("l4x4-14b-w4kv8")
    assert (old.knee_batch, old.beta_above) == (0, 0.0) and "knee" not in (
        ROOT / "data/hardware/l4x4-14b-w4kv8.yaml").read_text()


def test_one_least_squares_solver_and_no_direct_duckdb_in_the_fit() -> None:
    solvers = [p for pkg in ("core", "recorder", "simulator", "solver", "aimo", "tuner", "dashboard")
               for p in (ROOT / pkg).rglob("*.py") if "linalg.lstsq" in p.read_text()]
    assert solvers == [ROOT / "core/hardware/lsq.py"]
    for name in ("fit.py", "observations.py", "calibrate.py", "lsq.py"):
        assert "duckdb.connect" not in (ROOT / "core/hardware" / name).read_text()


def test_question_overhead_from_question_ends() -> None:
    import pandas as pd

    from aimo.core.hardware.fit import question_overhead

    ends = pd.DataFrame({
        "problem_id": [f"q{i}" for i in range(8)],
        "wall_s": [9.0, 1.02, 2.03, 1.5 + 6.0, 0.52, 0.73, 0.62, 0.44],
        "last_end_s": [1.0, 1.0, 2.0, 1.5, 0.5, 0.7, 0.6, 0.42],
        "n_code": [0, 0, 0, 2, 0, 0, 0, 0],
    })
    got = question_overhead(ends)
    # the first (stall) and the code question (its tail is code execution) are left out
    assert got is not None and got.questions == 6
    assert got.seconds == pytest.approx(0.02)
    assert question_overhead(ends.iloc[:5]) is None  # too few questions


def test_the_olympiad_profile_overhead_is_the_live_runs() -> None:
    from aimo.core.hardware.fit import question_overhead
    from aimo.core.store.chunk_times import load_question_ends

    run = "solve-seed-2nd-place-pytorch-20261128T083708237918Z"
    got = question_overhead(load_question_ends(ROOT / "data/traces/olympiad-live.duckdb", run))
    p = load_profile("h200-olympiad-tiny-w4kv8")
    assert got is not None and p.question_overhead_s == round(got.seconds, 4) > 0
    assert run in p.provenance.notes


def test_host_per_step_is_the_median_live_excess_over_the_engine_step() -> None:
    """`host_per_step` fits what live stretches take above the base's engine step: a constant per
    step comes back whatever the batch, far-off stretches (a code run) do not move it, and any
    host term already in the base is not subtracted twice."""
    from aimo.core.hardware.fit import host_per_step
    from aimo.core.hardware.observations import StepObservations

    base = dataclasses.replace(load_profile("h200-olympiad-tiny-w4kv8"), host_per_step=0.5)
    rng = np.random.default_rng(0)
    b = rng.integers(1, 18, 400).astype(float)
    c = rng.uniform(500, 4000, 400)
    y = base.a + base.beta * b + 0.0009 + rng.normal(0, 1e-4, 400)
    y[:20] += 0.2  # stretches spanning a stall of the loop
    got = host_per_step(StepObservations(y, b, c, np.full(400, 16.0)), base)
    assert got is not None and got.seconds == pytest.approx(0.0009, abs=5e-5)
    assert all(x == pytest.approx(0.0009, abs=1.5e-4) for _, _, x in got.by_batch)
    assert "host per step 0.90 ms" in got.render()
    few = StepObservations(y[:5], b[:5], c[:5], np.ones(5))
    assert host_per_step(few, base) is None


def test_the_olympiad_profile_host_time_is_the_seed_runs(tmp_path) -> None:
    """The shipped `host_per_step` is what `aimo profile fit --from-live --host-only` fits on the
    seed run (docs/hil.md), and the fit keeps the base's measured engine step."""
    run = "solve-seed-2nd-place-pytorch-20261128T083708237918Z"
    out = tmp_path / "host.yaml"
    res = CliRunner().invoke(app, ["profile", "fit", "--from-live",
                                   str(ROOT / "data/traces/olympiad-live.duckdb"), "--run", run,
                                   "--base", "h200-olympiad-tiny-w4kv8", "--host-only",
                                   "--name", "host", "--out", str(out)])
    assert res.exit_code == 0, res.output
    fitted, shipped = load_profile(out), load_profile("h200-olympiad-tiny-w4kv8")
    assert fitted.host_per_step == shipped.host_per_step > 0
    assert fitted.prefill_s_per_request == shipped.prefill_s_per_request > 0
    assert (fitted.a, fitted.beta, fitted.gamma) == (shipped.a, shipped.beta, shipped.gamma)
    res = CliRunner().invoke(app, ["profile", "fit", "--host-only", "--name", "x"])
    assert res.exit_code == 2 and "--from-live" in res.output


def test_prefill_per_request_is_the_mean_first_token_beyond_the_charged_prefill() -> None:
    """Per question (the first left out): mean first-token time less the base's prefill and one
    step, over the requests; the median over questions."""
    import pandas as pd

    from aimo.core.hardware.fit import prefill_per_request
    from aimo.core.hardware.timing import decode_coefficients, step_seconds

    base = load_profile("h200-olympiad-tiny-w4kv8")
    rows = []
    for q in range(8):
        n = 10 + q % 3
        charged = base.prefill_s_per_token * 100 * n + float(
            step_seconds(*decode_coefficients(base), n, 100.0 * n))
        for i in range(n):  # requests join one by one, 4 ms apart: mean (n - 1) * 2 ms
            t0 = charged + 0.004 * i + (8.0 if q == 0 else 0.0)
            rows += [dict(problem_id=f"q{q}", sample_idx=i, t_s=t0 + k * 0.005, n_tokens=k + 1,
                          prompt_tokens=100) for k in range(3)]
    got = prefill_per_request(pd.DataFrame(rows), base, first="q0")
    want = np.median([0.002 * (10 + q % 3 - 1) / (10 + q % 3) for q in range(1, 8)])
    assert got is not None and got.questions == 7 and got.seconds == pytest.approx(want)
    assert prefill_per_request(pd.DataFrame(rows[:60]), base, first="q0") is None  # too few
    # exactly the named first served question is left out, whatever its name's order
    assert prefill_per_request(pd.DataFrame(rows), base, first="q3", min_questions=8) is None
    every = prefill_per_request(pd.DataFrame(rows), base, first=None, min_questions=8)
    assert every is not None and every.questions == 8
