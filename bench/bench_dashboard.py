"""Render time of every dashboard page on a large trace store, measured with Streamlit's AppTest.

Why: the dashboard must stay responsive (each page under 2 s) on a store of 50 problems x 32
samples x ~10-12k tokens. This builds such a store with `recorder.synth.synthesize_store`
(default 50 x 32, ~10k tokens mean, 64-token chunks; `--chunk-tokens 4` writes the same
questions with lmdeploy-like 4-token chunks, ~16x the chunk rows) and a 60-trial two-objective
study shaped like an `aimo tune` study (45 parameters; `--tuner` runs the real tuner instead),
then renders each page:

- cold: all Streamlit caches cleared, a new session (first visit after a store changed);
- warm: a new session with the caches filled (every later visitor);
- rerun: the same session again (an interaction that changes nothing expensive).

The figure is the script run (router, sidebar and page: every query, simulation, figure and
element the server produces), timed around Streamlit's `ScriptRunner._run_script`. AppTest's own
per-session set-up (a scan of installed packages for components, which a server does once at
start-up) is shown apart as "AppTest wall". Drawing in the browser is not included (see the e2e
test). One warm-up pass first pays the process-level one-time costs (imports, loading the
compiled simulator from numba's cache), which no page view pays twice. The load average is
printed because the figures are wall-clock times. Run:

    .venv/bin/python bench/bench_dashboard.py [--store FILE] [--chunk-tokens N] [--repeat 3] [--tuner]
"""

from __future__ import annotations

import argparse
import dataclasses
import faulthandler
import os
import shutil
import signal
import statistics
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
APP = ROOT / "dashboard" / "app.py"
PAGES = ("runs", "traces", "simulate", "tune", "compare")
LIMIT_S = 2.0


def build_store(path: Path, n_problems: int, n_samples: int, chunk_tokens: int | None) -> None:
    """A synthetic store; with `chunk_tokens`, the default profile re-chunked that finely."""
    from aimo.recorder.synth import synthesize_store

    if chunk_tokens is None:
        print(synthesize_store(path, n_problems=n_problems, n_samples=n_samples, seed=0).render())
        return
    from aimo.recorder.synth import run_info, synthesize_questions
    from aimo.recorder.synth_profiles import DEFAULT_PROFILE, get_profile
    from aimo.core.store import ProblemRow, TraceWriter

    prof = dataclasses.replace(get_profile(DEFAULT_PROFILE), chunk_tokens=chunk_tokens)
    info = run_info(prof, n_problems, n_samples, 0)
    writer = TraceWriter(path)
    writer.start_run(info)
    rows = 0
    for q in synthesize_questions(n_problems, n_samples, 0, prof):
        problem = ProblemRow(q.spec.problem_id, q.spec.position, q.question, q.spec.answer)
        writer.write_question(info.run_id, problem, q.samples, q.chunks, q.answers, wall_s=q.wall_s)
        rows += q.chunks.num_rows
    writer.finish_run(info.run_id)
    print(f"store {path}: {n_problems} x {n_samples}, {rows:,} chunks of {chunk_tokens} tokens")


def build_study(
    path: Path, store: Path, n_trials: int = 60, *, tuner: bool = False
) -> tuple[str, str]:
    """(journal path, study name): with `tuner`, a real two-objective `aimo tune` run (n_trials
    per study, 2 folds); else a stand-in study of the same shape (45 parameters)."""
    if not tuner:
        return build_fake_study(path, n_trials), "bench"
    from aimo.core.store import list_runs
    from aimo.tuner.cli_impl import run_tune

    run_id = list_runs(store)[-1].run_id
    t0 = time.perf_counter()
    run_tune(
        store,
        n_trials,
        path.with_suffix(".yaml"),
        storage=str(path),
        study="bench",
        folds=2,
        bootstrap=20,
        multi_objective=True,
        run_id=run_id,
        progress_bar=False,
        echo=lambda *a, **k: None,
    )
    print(f"aimo tune study: 3 studies x {n_trials} trials in {time.perf_counter() - t0:.1f} s")
    return str(path), "bench"


def build_fake_study(path: Path, n_trials: int, n_params: int = 45) -> str:
    """A two-objective journal study shaped like an `aimo tune` study: `n_params` int, float and
    categorical parameters, bootstrap-style user attributes and the trial's policy."""
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    from aimo.core.policy import load_policy, policy_to_dict

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    base = policy_to_dict(load_policy("seed-2nd-place"))
    storage = JournalStorage(JournalFileBackend(str(path)))
    study = optuna.create_study(
        study_name="bench",
        storage=storage,
        directions=["maximize", "minimize"],
        sampler=optuna.samplers.TPESampler(seed=0),
    )
    study.set_metric_names(["score", "mean_time_s"])

    def objective(trial: optuna.Trial) -> tuple[float, float]:
        score, time_s = 30.0, 9000.0
        for i in range(n_params):
            if i % 3 == 0:
                x = trial.suggest_int(f"p{i:02d}.int", 1, 20)
            elif i % 3 == 1:
                x = trial.suggest_float(f"p{i:02d}.float", 0.0, 1.0)
            else:
                x = float(trial.suggest_categorical(f"p{i:02d}.cat", ["a", "b", "c"]) == "a")
            score += x * (0.3 if i < 5 else 0.01)
            time_s += 40.0 * x
        start = trial.suggest_int("start_level", 1, 5)
        policy = {
            **base,
            "name": f"bench-{trial.number}",
            "schedule": {**base["schedule"], "start_level": start},
        }
        for name, value in (
            ("score_mean", score),
            ("score_lo", score - 2),
            ("score_hi", score + 2),
            ("p_overtime", 0.01 * start),
            ("mean_time_s", time_s),
        ):
            trial.set_user_attr(name, value)
        trial.set_user_attr("policy", policy)
        return score, time_s

    study.optimize(objective, n_trials=n_trials)
    return str(path)


_SCRIPT_S: list[float] = []


def _time_script_runs() -> None:
    """Record the duration of every script run (the server-side render) in _SCRIPT_S."""
    from streamlit.runtime.scriptrunner import script_runner

    original = script_runner.ScriptRunner._run_script

    def timed(self, rerun_data):
        t0 = time.perf_counter()
        try:
            return original(self, rerun_data)
        finally:
            _SCRIPT_S.append(time.perf_counter() - t0)

    script_runner.ScriptRunner._run_script = timed


def _run(at, timeout: float) -> tuple[float, float]:
    """(script seconds, AppTest wall seconds) of one `at.run()`; reruns it triggers included."""
    del _SCRIPT_S[:]
    t0 = time.perf_counter()
    at.run(timeout=timeout)
    wall = time.perf_counter() - t0
    if at.exception:
        raise RuntimeError(f"{[e.value for e in at.exception]}")
    if at.error:
        raise RuntimeError(f"error shown: {[e.value for e in at.error]}")
    return sum(_SCRIPT_S), wall


def render(
    page: str, *, clear: bool, timeout: float, query: dict[str, str] | None = None
) -> tuple[tuple[float, float], tuple[float, float]]:
    """(first render, rerun) of one page in a new AppTest session, each (script s, wall s)."""
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    if clear:
        st.cache_data.clear()
        st.cache_resource.clear()
    at = AppTest.from_file(str(APP), default_timeout=timeout)
    at.query_params.update(query or {})
    at.switch_page(f"views/{page}.py")
    first = _run(at, timeout)
    again = _run(at, timeout)
    return first, again


def main(argv: list[str] | None = None) -> int:
    faulthandler.register(signal.SIGUSR1, all_threads=True)  # `kill -USR1 PID`: where is it?
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", type=Path, help="existing trace store (default: build one)")
    parser.add_argument("--problems", type=int, default=50)
    parser.add_argument("--samples", type=int, default=32)
    parser.add_argument("--chunk-tokens", type=int, default=None)
    parser.add_argument(
        "--repeat", type=int, default=3, help="measurements per page (median shown)"
    )
    parser.add_argument("--timeout", type=float, default=300.0)
    parser.add_argument(
        "--tuner",
        action="store_true",
        help="study from a real `aimo tune` run (default: a stand-in of its shape)",
    )
    args = parser.parse_args(argv)

    tmp = Path(tempfile.mkdtemp(prefix="bench-dashboard-"))
    try:
        return _bench(args, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _bench(args: argparse.Namespace, tmp: Path) -> int:
    """Build what is missing under `tmp`, warm up, then measure every page."""
    store = args.store
    if store is None:
        store = tmp / "store.duckdb"
        t0 = time.perf_counter()
        build_store(store, args.problems, args.samples, args.chunk_tokens)
        print(f"built in {time.perf_counter() - t0:.1f} s")
    journal, study = build_study(tmp / "study.journal", store, tuner=args.tuner)
    os.environ["AIMO_DASHBOARD_TRACES"] = str(store)
    os.environ["AIMO_DASHBOARD_STORAGE"] = journal
    os.environ["AIMO_DASHBOARD_STUDY"] = study

    import warnings

    warnings.simplefilter("ignore")
    _time_script_runs()
    t0 = time.perf_counter()
    for page in PAGES:  # warm-up: imports, numba cache load, first plotly import
        render(page, clear=True, timeout=args.timeout)
    print(f"warm-up pass (process one-time costs): {time.perf_counter() - t0:.1f} s\n")

    from aimo.core.store import list_runs

    runs = list_runs(store)
    run = runs[-1]
    print(
        f"store {store}: run {run.run_id}, {run.n_problems} problems, {run.n_samples} samples, "
        f"{run.n_tokens / max(run.n_samples, 1):,.0f} tokens per sample on average, "
        f"{Path(store).stat().st_size / 1e6:.0f} MB"
    )
    load = os.getloadavg()
    print(
        f"machine: {os.cpu_count()} CPUs, load average {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f}"
    )
    print(
        f"\n{'page':<10}{'cold s':>9}{'warm s':>9}{'rerun s':>9}{'AppTest wall cold/warm s':>28}"
        f"   (script run, median of {args.repeat}; limit {LIMIT_S} s)"
    )
    worst = 0.0
    for page in PAGES:
        cold, warm, rerun, wall_cold, wall_warm = [], [], [], [], []
        for _ in range(args.repeat):
            (script, wall), (again, _) = render(page, clear=True, timeout=args.timeout)
            cold.append(script)
            wall_cold.append(wall)
            rerun.append(again)
            (script, wall), _ = render(page, clear=False, timeout=args.timeout)
            warm.append(script)
            wall_warm.append(wall)
        row = [statistics.median(x) for x in (cold, warm, rerun)]
        walls = f"{statistics.median(wall_cold):.3f} / {statistics.median(wall_warm):.3f}"
        worst = max(worst, *row)
        flag = "" if max(row) < LIMIT_S else "  <-- over the limit"
        print(f"{page:<10}{row[0]:>9.3f}{row[1]:>9.3f}{row[2]:>9.3f}{walls:>28}{flag}")
    print("\nTune page by open tab (only the open tab's figure is built), cold / warm s:")
    for tab in ("History", "Pareto front", "Importances", "Parallel coordinates"):
        query = {"plot": tab}
        cold = statistics.median(
            render("tune", clear=True, timeout=args.timeout, query=query)[0][0]
            for _ in range(args.repeat)
        )
        warm = render("tune", clear=False, timeout=args.timeout, query=query)[0][0]
        worst = max(worst, cold, warm)
        print(f"  {tab:<22}{cold:>8.3f}{warm:>8.3f}")
    load = os.getloadavg()
    print(
        f"\nslowest script run: {worst:.3f} s ({'within' if worst < LIMIT_S else 'OVER'} the "
        f"{LIMIT_S} s limit); load average now {load[0]:.1f}"
    )
    return 0 if worst < LIMIT_S else 1


if __name__ == "__main__":
    raise SystemExit(main())
