"""Studies: storage by URL, samplers, the fold plan, worker processes, resume, summaries.

Why: a tuning run is K+1 Optuna studies in one storage — one per cross-validation fold (tuned on
that fold's train problems only) and a final one on all problems — so that the score reported
for the tuned policy is held out (nested CV, docs/tuner.md). Any number of processes, on one
machine or many (PostgreSQL), work through the same studies in order; each keeps going until a
study has `trials` finished trials, so re-running the same command resumes.

Storage URLs: a file path or `journal:PATH` → Optuna's JournalStorage on a JournalFileBackend
(default); `sqlite:///...`, `postgresql://...`, any SQLAlchemy URL → RDBStorage.
"""

from __future__ import annotations

import json
import logging
import multiprocessing as mp
import os
import socket
import time
import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_EXCEPTION, ProcessPoolExecutor, wait
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from aimo.simulator.crossval import kfold_by_problem
from aimo.simulator.replay.competition import DEFAULT_BUDGET_S
from aimo.core.errors import InputError
from aimo.tuner.objective import (
    COMPETITION_QUESTIONS, Metrics, ObjectiveSpec, Select, constraints_func, derive_seed,
)
from aimo.tuner.report import TuneReport

SAMPLERS = ("tpe", "nsga2", "gp")
SETTINGS_ATTR = "aimo_settings"
REPORT_ATTR = "aimo_report"
HEARTBEAT_S = 60
# derive_seed roles
ROLE_TUNE, ROLE_TEST, ROLE_SAMPLER = 0, 1, 2

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class TuneConfig:
    """Everything a worker needs to join a tuning run (plain data: it crosses process lines)."""

    traces: str
    storage: str
    study: str
    trials: int
    run_id: str | None = None
    hardware: str = "l4x4-14b-w4kv8"
    space_file: str | None = None
    folds: int = 5
    bootstrap: int = 100
    seed: int = 0
    sampler: str = "tpe"
    max_overtime: float = 0.05
    select: Select = "mean"
    multi_objective: bool = False
    budget_s: float = DEFAULT_BUDGET_S
    n_questions: int = COMPETITION_QUESTIONS
    workers: int = 1
    overtime_rule: str = "zero"

    def settings(self, space_fingerprint: str, run_id: str, n_problems: int) -> dict[str, Any]:
        """What must match when a study is resumed (trials, workers and storage may change)."""
        return {
            "run_id": run_id, "n_problems": n_problems, "hardware": self.hardware,
            "space": space_fingerprint, "folds": self.folds, "bootstrap": self.bootstrap,
            "seed": self.seed, "select": self.select, "max_overtime": self.max_overtime,
            "multi_objective": self.multi_objective, "budget_s": self.budget_s,
            "n_questions": self.n_questions, "overtime_rule": self.overtime_rule,
        }


@dataclass(frozen=True)
class StudyPlan:
    """One study of a run: its name, its fold (None: final) and problem indices."""

    name: str
    fold: int | None
    train: tuple[int, ...]
    test: tuple[int, ...]


def plan_studies(config: TuneConfig, problem_ids: Sequence[str]) -> tuple[StudyPlan, ...]:
    """K fold studies (`NAME:fold1of5`, …) then the final study (`NAME`), problems as indices."""
    index = {pid: i for i, pid in enumerate(problem_ids)}
    folds = kfold_by_problem(problem_ids, config.folds, seed=config.seed)
    plans = [
        StudyPlan(
            name=f"{config.study}:fold{f.index + 1}of{config.folds}", fold=f.index,
            train=tuple(index[p] for p in f.train), test=tuple(index[p] for p in f.test),
        )
        for f in folds
    ]
    plans.append(StudyPlan(config.study, None, tuple(range(len(problem_ids))), ()))
    return tuple(plans)


def _key(plan: StudyPlan) -> int:
    """A non-negative key per study for seed derivation: 0 final, k + 1 fold k."""
    return 0 if plan.fold is None else plan.fold + 1


def objective_spec(config: TuneConfig, plan: StudyPlan) -> ObjectiveSpec:
    """How trials of `plan`'s study are scored: its train problems, common draws per study."""
    return ObjectiveSpec(
        subset=plan.train, replicates=config.bootstrap,
        seed=derive_seed(config.seed, ROLE_TUNE, _key(plan)),
        n_questions=config.n_questions, budget_s=config.budget_s, select=config.select,
        max_overtime=config.max_overtime, multi_objective=config.multi_objective, fold=plan.fold,
        overtime_rule=config.overtime_rule,
    )


def heldout_spec(config: TuneConfig, plan: StudyPlan) -> ObjectiveSpec:
    """How a fold's held-out problems are scored (draws independent of the tuning draws)."""
    assert plan.fold is not None
    return ObjectiveSpec(
        subset=plan.test, replicates=config.bootstrap,
        seed=derive_seed(config.seed, ROLE_TEST, _key(plan)), n_questions=config.n_questions,
        budget_s=config.budget_s, select=config.select, max_overtime=config.max_overtime,
        fold=plan.fold, overtime_rule=config.overtime_rule,
    )


# --------------------------------------------------------------------------- storage and samplers


def redact(url: str) -> str:
    """The URL without its password, for messages."""
    if "://" in url and "@" in url:
        scheme, rest = url.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        user = creds.split(":", 1)[0]
        return f"{scheme}://{user}:***@{host}"
    return url


def is_rdb_url(url: str) -> bool:
    return "://" in url and not url.startswith("journal:")


def _journal_backend() -> type:
    """JournalFileBackend without the fsync after every record.

    Optuna writes one record per parameter and attribute (≈60 per trial here); an fsync each
    costs more than simulating the trial. Records are still written and flushed under the
    backend's lock, so every process on the machine sees them at once; only an operating-system
    crash (not a process crash) can lose the last ones.
    """
    from optuna.storages.journal import JournalFileBackend, JournalFileSymlinkLock

    class JournalFileNoSync(JournalFileBackend):
        def __init__(self, file_path: str) -> None:
            self._path = file_path
            self._file_lock = JournalFileSymlinkLock(file_path)
            super().__init__(file_path, lock_obj=self._file_lock)

        def append_logs(self, logs: list[dict[str, Any]]) -> None:
            text = "\n".join(json.dumps(log, separators=(",", ":")) for log in logs) + "\n"
            while not self._file_lock.acquire():
                time.sleep(0.001)
            try:
                with open(self._path, "ab") as f:
                    f.write(text.encode("utf-8"))
                    f.flush()
            finally:
                self._file_lock.release()

    return JournalFileNoSync


def _JournalFile(path: str) -> Any:  # noqa: N802 - reads as the class it builds
    return _journal_backend()(path)


def open_storage(url: str, *, create: bool = True) -> Any:
    """An Optuna storage for `url` (journal file path, `journal:PATH`, or an SQLAlchemy URL).

    `create=False` is for readers (the dashboard): a journal file that does not exist is an
    error instead of a new, empty storage.

    Raises:
        InputError: naming `--storage`, when the URL cannot be opened (e.g. a missing driver,
            a missing journal file with `create=False`, a file that is not a journal).
    """
    import optuna
    from optuna.storages import JournalStorage, RDBStorage

    if not is_rdb_url(url):
        path = Path(url.removeprefix("journal:"))
        if path.is_dir():
            raise InputError(str(path), "--storage", "is a directory; give a journal file path")
        if not create and not path.is_file():
            raise InputError(str(path), "--storage", "no such Optuna journal file")
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            return JournalStorage(_JournalFile(str(path)))
        except Exception as exc:  # noqa: BLE001 - Optuna's replay errors vary
            raise InputError(str(path), "--storage", f"not an Optuna journal file: {exc}") from None
    engine: dict[str, Any] = {"pool_pre_ping": True}
    if url.startswith("sqlite"):
        engine = {"connect_args": {"timeout": 60}}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return RDBStorage(url, engine_kwargs=engine, heartbeat_interval=HEARTBEAT_S,
                              grace_period=3 * HEARTBEAT_S)
    except ImportError as exc:
        hint = (" (PostgreSQL: SQLAlchemy's default driver is psycopg 3, pip install 'psycopg[binary]';"
                " or psycopg2 with a postgresql+psycopg2:// URL)" if "postgres" in url else "")
        raise InputError(redact(url), "--storage", f"missing database driver: {exc}{hint}") from None
    except (optuna.exceptions.StorageInternalError, Exception) as exc:  # noqa: BLE001 - DB errors vary
        raise InputError(redact(url), "--storage", f"cannot open storage: {exc}") from None


def _legacy_constraints() -> Any:
    """Optuna < 5 reads constraints through `constraints_func`; 5.0 deprecates it for
    `Trial.set_constraint`, which the objective calls (and which the samplers then read)."""
    import optuna

    return None if hasattr(optuna.trial.Trial, "set_constraint") else constraints_func


def make_sampler(name: str, seed: int, *, trials: int, parallel: bool = False,
                 space: Any = None) -> Any:
    """TPE (default), NSGA-II or GP, seeded, all honouring the overtime constraint.

    TPE is `tuner.tpe.FlatTPESampler`: Optuna's multivariate TPE over every parameter of
    `space` (default: the default space) jointly. `parallel` (several workers) turns on its
    constant liar, which keeps concurrent workers from suggesting the same point; alone it only
    costs (it re-reads every trial each time).

    Raises:
        InputError: an unknown name, or GP without its optional dependencies (torch, scipy).
    """
    import optuna

    legacy = _legacy_constraints()
    if name == "tpe":
        from aimo.tuner.space import default_space
        from aimo.tuner.tpe import FlatTPESampler

        dists, canonical = (space if space is not None else default_space()).sampler_space()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return FlatTPESampler(
                dists, canonical, seed=seed, constraints_func=legacy,
                n_startup_trials=max(10, min(25, trials // 10)), constant_liar=parallel,
            )
    if name == "nsga2":
        return optuna.samplers.NSGAIISampler(
            seed=seed, population_size=max(10, min(50, trials // 10)), constraints_func=legacy,
        )
    if name == "gp":
        import importlib.util

        missing = [m for m in ("torch", "scipy") if importlib.util.find_spec(m) is None]
        if missing:
            raise InputError("--sampler", "gp", f"needs {' and '.join(missing)} installed "
                             "(Optuna's GPSampler); use tpe or nsga2, or install them")
        return optuna.samplers.GPSampler(seed=seed, constraints_func=legacy)
    raise InputError("--sampler", None, f"unknown sampler {name!r} (expected one of: {', '.join(SAMPLERS)})")


def timed(sampler: Any) -> Any:
    """`sampler` behind a delegate that adds up the CPU seconds spent sampling, per trial number.

    `pop(number)` returns (and forgets) a trial's total; the objective stores it as the user
    attribute `sampler_s`, so runs can say how their time splits between sampler and simulator.
    """
    from optuna.samplers import BaseSampler

    class TimedSampler(BaseSampler):
        def __init__(self, inner: Any) -> None:
            self.inner = inner
            self.seconds: dict[int, float] = {}

        def _add(self, number: int, t0: float) -> None:
            self.seconds[number] = self.seconds.get(number, 0.0) + time.thread_time() - t0

        def pop(self, number: int) -> float:
            return self.seconds.pop(number, 0.0)

        def infer_relative_search_space(self, study: Any, trial: Any) -> Any:
            t0 = time.thread_time()
            try:
                return self.inner.infer_relative_search_space(study, trial)
            finally:
                self._add(trial.number, t0)

        def sample_relative(self, study: Any, trial: Any, search_space: Any) -> Any:
            t0 = time.thread_time()
            try:
                return self.inner.sample_relative(study, trial, search_space)
            finally:
                self._add(trial.number, t0)

        def sample_independent(self, study: Any, trial: Any, name: str, dist: Any) -> Any:
            t0 = time.thread_time()
            try:
                return self.inner.sample_independent(study, trial, name, dist)
            finally:
                self._add(trial.number, t0)

        def before_trial(self, study: Any, trial: Any) -> None:
            self.inner.before_trial(study, trial)

        def after_trial(self, study: Any, trial: Any, state: Any, values: Any) -> None:
            self.inner.after_trial(study, trial, state, values)

        def reseed_rng(self) -> None:
            self.inner.reseed_rng()

    return TimedSampler(sampler)


def directions(config: TuneConfig) -> list[Literal["maximize", "minimize"]]:
    return ["maximize", "minimize"] if config.multi_objective else ["maximize"]


# --------------------------------------------------------------------------- preparing and resuming


def _mismatch(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    return [f"{k}: stored {old.get(k)!r}, now {new.get(k)!r}"
            for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k)]


def prepare_studies(
    config: TuneConfig, storage: Any, plans: Sequence[StudyPlan], settings: dict[str, Any],
    base_params: dict[str, Any],
) -> None:
    """Create (or check and reopen) every study of the run and enqueue the base as trial 0.

    Raises:
        InputError: a study of that name exists with other settings (traces, folds, space, …).
    """
    import optuna

    for plan in plans:
        study = optuna.create_study(storage=storage, study_name=plan.name,
                                    directions=directions(config), load_if_exists=True)
        mine = {**settings, "fold": plan.fold, "train": list(plan.train), "test": list(plan.test)}
        stored = study.user_attrs.get(SETTINGS_ATTR)
        if stored is None:
            study.set_user_attr(SETTINGS_ATTR, mine)
        elif stored != mine:
            diff = "; ".join(_mismatch(stored, mine))
            raise InputError(redact(config.storage), "--study",
                             f"study {plan.name!r} exists with other settings ({diff}); "
                             "use another --study name or the original settings")
        if len(study.directions) != len(directions(config)):
            raise InputError(redact(config.storage), "--study",
                             f"study {plan.name!r} exists with {len(study.directions)} objective(s)")
        if not study.get_trials(deepcopy=False):
            study.enqueue_trial(base_params, user_attrs={"base": True}, skip_if_exists=True)


def finished_trials(study: Any) -> int:
    from optuna.trial import TrialState

    return len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED)))


# --------------------------------------------------------------------------- workers


def run_worker(
    config: TuneConfig, worker: int, progress: Callable[[], None] | None = None, *,
    parallel: bool | None = None,
) -> int:
    """Join the run as worker number `worker`: load the traces, then work through every study.

    Returns the number of trials this worker finished. Each study runs until it has
    `config.trials` finished (complete or pruned) trials, counted across all workers, so a
    study may end with a few more (one per concurrent worker at most).
    """
    import optuna
    from optuna.study import MaxTrialsCallback
    from optuna.trial import TrialState

    from aimo.core.hardware import load_profile
    from aimo.core.store import load_problem_traces
    from aimo.tuner.objective import TrialObjective, make_evaluator
    from aimo.tuner.space import load_space, space_for_store

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if parallel is None:  # other machines may join an RDB study at any time
        parallel = config.workers > 1 or is_rdb_url(config.storage)
    worker_id = f"{socket.gethostname()}:{os.getpid()}:{worker}"
    problems = load_problem_traces(config.traces, config.run_id)
    evaluator = make_evaluator(problems, load_profile(config.hardware))
    space = space_for_store(load_space(config.space_file), problems)
    storage = open_storage(config.storage)
    done = [0]

    def finished(_study: Any, _trial: Any) -> None:
        done[0] += 1
        if progress is not None:
            progress()

    for plan in plan_studies(config, [p.problem_id for p in problems]):
        sampler = timed(make_sampler(config.sampler,
                                     derive_seed(config.seed, ROLE_SAMPLER, worker, _key(plan)),
                                     trials=config.trials, parallel=parallel, space=space))
        study = optuna.load_study(study_name=plan.name, storage=storage, sampler=sampler)
        if finished_trials(study) >= config.trials:
            continue
        objective = TrialObjective(space, evaluator, objective_spec(config, plan),
                                   sampler_seconds=sampler.pop, worker=worker_id)
        stop = MaxTrialsCallback(config.trials, states=(TrialState.COMPLETE, TrialState.PRUNED))
        study.optimize(objective, callbacks=[stop, finished], gc_after_trial=False)
    return done[0]


def _worker_main(config: TuneConfig, worker: int) -> tuple[str, Any]:
    """Process entry point: InputError does not pickle (its __init__ takes three arguments)."""
    try:
        return "ok", run_worker(config, worker)
    except InputError as exc:
        return "input_error", (exc.source, exc.field, exc.message)


def count_progress(config: TuneConfig, storage: Any, plans: Sequence[StudyPlan]) -> int:
    """Finished trials over all studies of the run, each capped at `trials`."""
    import optuna

    total = 0
    for plan in plans:
        study = optuna.load_study(study_name=plan.name, storage=storage)
        total += min(config.trials, finished_trials(study))
    return total


def run_workers(
    config: TuneConfig, plans: Sequence[StudyPlan], progress: Progress | None = None,
    *, poll_s: float = 1.0,
) -> None:
    """Run `config.workers` workers on the run's studies and wait for them.

    One worker runs in this process; more run as spawned processes (each loads the traces
    itself) while this process reports progress by reading the storage.
    """
    total = config.trials * len(plans)
    if config.workers <= 1:
        storage = open_storage(config.storage)
        state = {"n": count_progress(config, storage, plans)}

        def tick() -> None:
            state["n"] = min(total, state["n"] + 1)
            if progress is not None:
                progress(state["n"], total)

        if progress is not None:
            progress(state["n"], total)
        run_worker(config, 0, tick)
        if progress is not None:
            progress(count_progress(config, storage, plans), total)
        return
    ctx = mp.get_context("spawn")
    storage = open_storage(config.storage)
    with ProcessPoolExecutor(max_workers=config.workers, mp_context=ctx) as pool:
        futures = [pool.submit(_worker_main, config, w) for w in range(config.workers)]
        pending = set(futures)
        while pending:
            finished, pending = wait(pending, timeout=poll_s, return_when=FIRST_EXCEPTION)
            if progress is not None:
                progress(count_progress(config, storage, plans), total)
            for fut in finished:
                status, payload = fut.result()  # re-raises a worker's unexpected exception
                if status == "input_error":
                    for other in pending:
                        other.cancel()
                    raise InputError(*payload)


# --------------------------------------------------------------------------- selection and summaries


@dataclass(frozen=True)
class Choice:
    """The trial selection picked: its number, params, metrics and whether it meets the constraint."""

    study: str
    number: int
    params: dict[str, Any]
    metrics: Metrics
    feasible: bool


def select_best(study: Any, select: Select, max_overtime: float) -> Choice:
    """Best complete trial: feasible first (P(overtime) ≤ max_overtime), then by the mean score
    or its LCB, ties to the earlier trial (the base is trial 0). With no feasible trial, the one
    least often overtime.

    Raises:
        InputError: the study has no complete trial.
    """
    from optuna.trial import TrialState

    trials = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
              if "score_mean" in t.user_attrs]
    if not trials:
        raise InputError(study.study_name, None, "no complete trial to select from")

    def key(t: Any) -> tuple[float, float, int]:
        m = Metrics.from_attrs(t.user_attrs)
        feasible = m.p_overtime <= max_overtime
        primary = m.value(select) if feasible else -m.p_overtime
        return (1.0 if feasible else 0.0, primary, -t.number)

    best = max(trials, key=key)
    m = Metrics.from_attrs(best.user_attrs)
    return Choice(study.study_name, best.number, dict(best.params), m, m.p_overtime <= max_overtime)


@dataclass(frozen=True)
class StudySummary:
    """A study in plain data for dashboards: settings, trial rows, selection, held-out report."""

    name: str
    directions: tuple[str, ...]
    settings: dict[str, Any]
    n_trials: dict[str, int]
    trials: tuple[dict[str, Any], ...]
    best: dict[str, Any] | None
    report: dict[str, Any] | None
    folds: tuple[str, ...]


def load_study_summary(storage_url: str, study_name: str) -> StudySummary:
    """Read one study (the final one of a run, or a fold's) without changing it.

    Each trial row: number, state, values, params, and the metrics user attributes
    (score_mean, score_lo, score_hi, score_lcb, mean_time_s, p_overtime, fold, policy_hash).
    `report` is the nested-CV comparison stored by `aimo tune` on the final study.

    Raises:
        InputError: the storage cannot be opened or has no such study.
    """
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = open_storage(storage_url)
    try:
        study = optuna.load_study(study_name=study_name, storage=storage)
    except KeyError:
        names = ", ".join(s.study_name for s in optuna.get_all_study_summaries(storage)) or "none"
        raise InputError(redact(storage_url), "study", f"no study {study_name!r} (studies: {names})") from None
    rows = []
    counts: dict[str, int] = {}
    for t in study.get_trials(deepcopy=False):
        counts[t.state.name] = counts.get(t.state.name, 0) + 1
        rows.append({"number": t.number, "state": t.state.name, "values": t.values,
                     "params": dict(t.params), **{k: v for k, v in t.user_attrs.items()}})
    settings = dict(study.user_attrs.get(SETTINGS_ATTR, {}))
    best = None
    if settings and any(r["state"] == "COMPLETE" and "score_mean" in r for r in rows):
        choice = select_best(study, settings.get("select", "mean"), settings.get("max_overtime", 1.0))
        best = {"number": choice.number, "params": choice.params, "feasible": choice.feasible,
                **asdict(choice.metrics)}
    all_names = [s.study_name for s in optuna.get_all_study_summaries(storage, include_best_trial=False)]
    folds = tuple(sorted(n for n in all_names if n.startswith(f"{study_name}:fold")))
    return StudySummary(
        name=study_name, directions=tuple(d.name.lower() for d in study.directions),
        settings=settings, n_trials=counts, trials=tuple(rows), best=best,
        report=study.user_attrs.get(REPORT_ATTR), folds=folds,
    )


def tuner_settings(study: Any) -> dict[str, Any] | None:
    """The settings `aimo tune` stored on a study it made (TuneConfig.settings), else None."""
    settings = study.user_attrs.get(SETTINGS_ATTR)
    return settings if isinstance(settings, dict) else None


def stored_report(study: Any) -> TuneReport | None:
    """The held-out report `aimo tune` stored on its final study, else None (a fold's study, a
    study of another tool, or one whose run did not finish)."""
    attr = study.user_attrs.get(REPORT_ATTR)
    if not isinstance(attr, dict) or not attr.get("rows"):
        return None
    return TuneReport.from_attr(attr)


def quiet_optuna() -> None:
    """Optuna logs every trial at INFO; the tuner reports progress itself."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    logging.getLogger("optuna").setLevel(logging.WARNING)


def wait_for_running(study: Any, timeout_s: float = 0.0) -> int:
    """Trials still running in `study` after waiting up to `timeout_s` (other machines' last ones)."""
    from optuna.trial import TrialState

    deadline = time.monotonic() + timeout_s
    while True:
        n = len(study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)))
        if n == 0 or time.monotonic() >= deadline:
            return n
        time.sleep(1.0)


__all__ = [
    "Choice", "SAMPLERS", "StudyPlan", "StudySummary", "TuneConfig", "count_progress",
    "directions", "load_study_summary", "make_sampler", "objective_spec", "open_storage",
    "plan_studies", "prepare_studies", "quiet_optuna", "redact", "run_worker", "run_workers",
    "select_best", "heldout_spec", "stored_report", "tuner_settings",
]
