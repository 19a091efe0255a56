"""Fixtures of the dashboard tests: small trace stores and Optuna studies built in the test.

- `store`: a complete synthetic run (3 problems x 4 samples) plus a recording still in
  progress (`live`, status 'running', 2 committed questions);
- `study_journal`: a journal file with a two-objective study (`multi`, with per-fold held-out
  scores and the trial's policy in user attributes) and a single-objective one (`single`);
- `app`: an AppTest factory for one page, pointed at the store through the environment.
"""

from __future__ import annotations

import dataclasses
import os
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
APP = ROOT / "dashboard" / "app.py"
PAGES = ("runs", "traces", "simulate", "tune", "compare")
SYNTH_RUN = "synthetic-r1-14b-s1"
LIVE_RUN = "live"


def write_live_run(path: Path, n_questions: int, *, finish: bool = False) -> None:
    """Add run `live` (kind record) with `n_questions` committed questions, in this process."""
    from aimo.recorder.synth import run_info, synthesize_questions
    from aimo.recorder.synth_profiles import DEFAULT_PROFILE, get_profile
    from aimo.core.store import ProblemRow, TraceWriter

    prof = get_profile(DEFAULT_PROFILE)
    info = dataclasses.replace(run_info(prof, n_questions, 4, 7), run_id=LIVE_RUN, kind="record")
    writer = TraceWriter(path)
    writer.start_run(info)
    for q in synthesize_questions(n_questions, 4, 7, prof):
        problem = ProblemRow(q.spec.problem_id, q.spec.position, q.question, q.spec.answer)
        writer.write_question(info.run_id, problem, q.samples, q.chunks, q.answers, wall_s=q.wall_s)
    if finish:
        writer.finish_run(info.run_id)


@pytest.fixture
def live_writer() -> Callable[..., None]:
    """`write_live_run(path, n_questions, finish=False)`, for tests that add a run."""
    return write_live_run


@pytest.fixture(scope="session")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store with a complete synthetic run and a run still being recorded."""
    from aimo.recorder.synth import synthesize_store

    path = tmp_path_factory.mktemp("dash") / "traces.duckdb"
    summary = synthesize_store(path, n_problems=3, n_samples=4, seed=1)
    assert summary.run_id == SYNTH_RUN
    write_live_run(path, 2)
    return path


@pytest.fixture(scope="session")
def study_journal(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A journal file holding study `multi` (score, p_overtime) and study `single` (score)."""
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    from aimo.core.policy import load_policy, policy_to_dict

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    path = tmp_path_factory.mktemp("study") / "study.journal"
    storage = JournalStorage(JournalFileBackend(str(path)))
    base = policy_to_dict(load_policy("seed-2nd-place"))

    def objective(trial: optuna.Trial) -> tuple[float, float]:
        level = trial.suggest_int("start_level", 1, 5)
        every = trial.suggest_int("check_every", 5, 100, log=True)
        score = 30.0 + 2 * level - 0.02 * every
        folds = [score - 1.0, score + 0.5, score + 0.5]
        trial.set_user_attr("fold_scores", folds)
        trial.set_user_attr("heldout_mean", sum(folds) / len(folds))
        trial.set_user_attr(
            "policy",
            {
                **base,
                "name": f"trial-{trial.number}",
                "schedule": {**base["schedule"], "start_level": level},
            },
        )
        return score, 0.01 * level

    multi = optuna.create_study(
        study_name="multi",
        storage=storage,
        directions=["maximize", "minimize"],
        sampler=optuna.samplers.RandomSampler(seed=0),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        multi.set_metric_names(["score", "p_overtime"])
    multi.optimize(objective, n_trials=12)
    single = optuna.create_study(
        study_name="single",
        storage=storage,
        direction="maximize",
        sampler=optuna.samplers.RandomSampler(seed=1),
    )
    single.optimize(lambda t: objective(t)[0], n_trials=8)
    return path


@pytest.fixture(scope="session")
def tuner_journal(store: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real (tiny) `aimo tune` run on the store's synthetic run: studies `demo` (final) and
    `demo:fold1of2`, `demo:fold2of2`, with the held-out report. Skips without the tuner."""
    try:
        from aimo.tuner.cli_impl import run_tune
    except Exception as exc:  # noqa: BLE001 - the tuner is another component
        pytest.skip(f"tuner not importable: {exc}")
    out = tmp_path_factory.mktemp("tune")
    journal = out / "tune.journal"
    run_tune(
        store,
        3,
        out / "best.yaml",
        storage=str(journal),
        study="demo",
        folds=2,
        bootstrap=5,
        run_id="synthetic-r1-14b-s1",
        progress_bar=False,
        echo=lambda *args, **kwargs: None,
    )
    return journal


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> Callable[..., None]:
    """Point the app at a store / storage / study through its environment variables."""
    from aimo.dashboard import ui

    def set_env(
        traces: Path | str | None = None,
        storage: Path | str | None = None,
        study: str | None = None,
    ) -> None:
        for name, value in (
            (ui.ENV_TRACES, traces),
            (ui.ENV_STORAGE, storage),
            (ui.ENV_STUDY, study),
        ):
            if value is None:
                monkeypatch.delenv(name, raising=False)
            else:
                monkeypatch.setenv(name, str(value))

    return set_env


@pytest.fixture
def page() -> Iterator[Callable[..., object]]:
    """`page("traces")`: an AppTest of the app, switched to that page and run once."""
    from streamlit.testing.v1 import AppTest

    def open_page(name: str, *, timeout: float = 300, run: str | None = None) -> AppTest:
        at = AppTest.from_file(str(APP), default_timeout=timeout)
        if run is not None:
            at.session_state["run"] = run
        at.switch_page(f"views/{name}.py")
        return at.run()

    yield open_page


def pytest_configure(config: pytest.Config) -> None:
    os.environ.setdefault("STREAMLIT_BROWSER_GATHER_USAGE_STATS", "false")
