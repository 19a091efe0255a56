"""Optuna studies in the dashboard: the storage and study loaders (cached, read-only), the
trial tables, the policy a trial stands for, the tuner's held-out report and Optuna's figures.

Why: the Tune page reads any Optuna study, and an `aimo tune` study best of all. Storage is
opened by the tuner's own `tuner.study.open_storage` (read-only: a missing journal is an
error), and what the tuner stored is read through its structured accessors
(`tuner.study.tuner_settings`, `tuner.study.stored_report`), never by attribute names or
mapping keys spelled out here.
"""

from __future__ import annotations

import functools
import json
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import pandas as pd
import streamlit as st

from aimo.core.errors import InputError
from aimo.core.policy import Policy, policy_from_dict, policy_from_yaml
from aimo.dashboard.loaders import StoreVersion, store_version
from aimo.tuner.report import TuneReport
from aimo.tuner.study import open_storage, stored_report, tuner_settings


# --------------------------------------------------------------------------- loading


def storage_version(url: str) -> StoreVersion:
    """A journal file's size and mtime (a new trial changes it); RDB URLs give ()."""
    if "://" in url:
        return ()
    return store_version(url)


@st.cache_resource(show_spinner=False, max_entries=4)
def storage(url: str, version: StoreVersion) -> Any:
    """A cached Optuna storage (re-read when the journal file changes), opened by the tuner's
    `open_storage` without creating anything.

    Raises:
        InputError: a journal path that does not exist, or a storage Optuna cannot open.
    """
    del version
    return open_storage(url, create=False)


def study_names(url: str, version: StoreVersion) -> list[str]:
    """Names of the studies in a storage."""
    import optuna

    try:
        return sorted(optuna.get_all_study_names(storage(url, version)))
    except InputError:
        raise
    except Exception as exc:  # noqa: BLE001
        raise InputError(url, "storage", f"cannot list studies: {exc}") from None


def load_study(url: str, name: str, version: StoreVersion) -> Any:
    """The study, read-only: `optuna.load_study` on the cached storage, returning trials without
    deep copies (see `_read_only_study`).

    Raises:
        InputError: no study of that name.
    """
    import optuna

    try:
        optuna.load_study(study_name=name, storage=storage(url, version))  # checks the name
    except KeyError:
        raise InputError(url, "study", f"no study named {name!r}") from None
    return _read_only_study()(study_name=name, storage=storage(url, version))


@functools.cache
def _read_only_study() -> type:
    """A `optuna.Study` whose `trials` / `get_trials` never deep-copy.

    Why: Optuna's plots read `study.trials` once per parameter (the importance plot's hover
    text), and each read deep-copies every trial: 18 s for 60 trials x 53 parameters of an
    `aimo tune` study, 0.2 s without the copies. The dashboard never modifies a trial.
    """
    import optuna

    class ReadOnlyStudy(optuna.Study):
        @property
        def trials(self) -> list[Any]:
            return self.get_trials(deepcopy=False)

        def get_trials(self, deepcopy: bool = False, states: Any = None) -> list[Any]:
            return super().get_trials(deepcopy=False, states=states)

    return ReadOnlyStudy


# --------------------------------------------------------------------------- tables


def metric_names(study: Any) -> list[str]:
    """Names of the study's objectives: its own metric names; for an `aimo tune` study that set
    none, the tuner's (score, and mean time when multi-objective); else "objective i"."""
    if study.metric_names:
        return list(study.metric_names)
    n = len(study.directions)
    if tuner_settings(study) is not None and n <= 2:
        return ["score", "mean time s"][:n]
    return [f"objective {i}" for i in range(n)]


def _cell(value: Any) -> Any:
    """A readable dataframe scalar: floats to 5 significant digits, lists as "a · b · c",
    mappings as "key: value, ..." (never raw JSON with float noise such as 0.30000000000000004).
    """
    if isinstance(value, dict):
        return ", ".join(f"{k}: {_text(v)}" for k, v in sorted(value.items(), key=str))
    if isinstance(value, (list, tuple)):
        return " · ".join(_text(v) for v in value)
    return rounded(value)


def _text(value: Any) -> str:
    value = rounded(value)
    if isinstance(value, (list, tuple, dict)):
        return json.dumps(value, sort_keys=True, default=str)
    return f"{value:g}" if isinstance(value, float) else str(value)


def rounded(value: Any) -> Any:
    """`value` with every float (also inside lists and mappings) to 5 significant digits."""
    if isinstance(value, float):
        return float(f"{value:.5g}")
    if isinstance(value, (list, tuple)):
        return [rounded(v) for v in value]
    if isinstance(value, dict):
        return {k: rounded(v) for k, v in value.items()}
    return value


def trials_frame(study: Any) -> pd.DataFrame:
    """Completed trials: number, objective value(s), params (`param:` columns) and scalar user
    attributes (`attr:` columns; lists and dicts as JSON; the exported `policy` left out)."""
    import optuna

    names = metric_names(study)
    rows = []
    for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)):
        row: dict[str, Any] = {"trial": t.number}
        for name, value in zip(names, t.values or ()):
            row[name] = rounded(value)
        row.update({f"param:{k}": _cell(v) for k, v in t.params.items()})
        row.update({f"attr:{k}": _cell(v) for k, v in t.user_attrs.items() if k != "policy"})
        rows.append(row)
    return pd.DataFrame(rows)


def trial_tables(trial: Any, names: Sequence[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One trial as two readable tables: its parameters (`parameter`, `value`) and its
    objective values and user attributes (`name`, `value`), values as formatted text."""
    params = pd.DataFrame(
        [(k, _text(_cell(v))) for k, v in sorted(trial.params.items())],
        columns=["parameter", "value"],
    )
    rows = [(n, _text(v)) for n, v in zip(names, trial.values or ())]
    rows += [
        (k, _text(_cell(v))) for k, v in sorted(trial.user_attrs.items()) if k != "policy"
    ]
    return params, pd.DataFrame(rows, columns=["name", "value"])


def best_trials(study: Any, limit: int = 10) -> list[Any]:
    """The Pareto-optimal trials of a multi-objective study, or the `limit` best of a single one."""
    import optuna

    if len(study.directions) > 1:
        return list(study.best_trials)
    done = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    reverse = study.direction == optuna.study.StudyDirection.MAXIMIZE
    return sorted(done, key=lambda t: t.value, reverse=reverse)[:limit]


def trial_policy(trial: Any, study: Any, space_file: str | None = None) -> tuple[Policy, str]:
    """The policy a trial stands for, and a line saying where it came from.

    A study made by `aimo tune` (it carries `aimo_settings`) is rebuilt exactly as the tuner
    exports it: `tuner.space` fills the fixed and inactive parameters of its search space (the
    default one, or `space_file` when the study was tuned with `--space`; the space's
    fingerprint must match the study's), and the result's hash is checked against the trial's
    `policy_hash`. Any other study must store the policy in `trial.user_attrs["policy"]` (a
    policy mapping or YAML text).

    Raises:
        InputError: the policy cannot be rebuilt (other search space, no tuner, nothing stored,
            or it does not validate).
    """
    from aimo.core.policy import policy_hash

    source = f"{study.study_name}: trial {trial.number}"
    settings = tuner_settings(study)
    if settings is not None and trial.params:
        try:
            from aimo.tuner.space import load_space
        except Exception as exc:  # noqa: BLE001 - the tuner package is missing or broken
            raise InputError(source, "policy", f"the tuner cannot be imported: {exc}") from None
        space = load_space(space_file or None)
        want = settings.get("space")
        if want and space.fingerprint() != want:
            raise InputError(
                source,
                "space",
                f"the study was tuned on another search space "
                f"(fingerprint {want}, this one {space.fingerprint()}); give the "
                "--space file it was tuned with",
            )
        name = f"tuned-{study.study_name}-trial{trial.number}".replace(":", "-")
        policy = space.policy(space.values_of(trial.params), name=name)
        recorded = trial.user_attrs.get("policy_hash")
        if recorded and recorded != policy_hash(policy):
            raise InputError(
                source,
                "policy_hash",
                f"rebuilt policy hash {policy_hash(policy)} differs from the recorded {recorded}",
            )
        check = ", hash matches the trial's" if recorded else ""
        return (
            policy,
            f"rebuilt from the trial's parameters by tuner.space ({space.source} space{check})",
        )
    stored = trial.user_attrs.get("policy")
    if isinstance(stored, dict):
        return policy_from_dict(
            stored, source
        ), "the trial's stored policy (user attribute 'policy')"
    if isinstance(stored, str):
        return policy_from_yaml(
            stored, source
        ), "the trial's stored policy (user attribute 'policy')"
    raise InputError(
        source,
        "policy",
        "not a study made by `aimo tune` and the trial stores no policy (user attribute 'policy')",
    )


def heldout_report(study: Any) -> tuple[pd.DataFrame, pd.DataFrame] | None:
    """The nested-CV report `aimo tune` stores on its final study (`tuner.study.stored_report`)
    as two tables; None when the study has none. See `heldout_tables`."""
    report = stored_report(study)
    return None if report is None else heldout_tables(report)


def heldout_tables(report: TuneReport) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One row per policy (held-out mean score, 90% interval, paired difference to the seed
    with its 90% CI, mean time, P(overtime), per-fold means) and one row per fold (chosen trial,
    its train score, its held-out score)."""
    rows = [
        {
            "policy": r.name,
            "held-out score": r.mean_score,
            "90% interval": f"{r.score_lo:.1f}–{r.score_hi:.1f}",
            "Δ vs seed (90% CI)": "–"
            if r.delta is None
            else f"{r.delta[0]:+.2f} ({r.delta[1]:+.2f}..{r.delta[2]:+.2f})",
            "mean time h": r.mean_time_s / 3600.0,
            "P(overtime)": r.p_overtime,
            "per fold": _cell(list(r.fold_means)),
        }
        for r in report.rows
    ]
    folds = [
        {
            "fold study": f.study,
            "chosen trial": f.trial,
            "train score": f.train.get("score_mean"),
            "held-out score": f.test_mean,
        }
        for f in report.folds
    ]
    return pd.DataFrame(rows), pd.DataFrame(folds)


def exported_trial(study: Any) -> int | None:
    """The trial `aimo tune` exported from this study (its final study only), else None."""
    report = stored_report(study)
    return None if report is None else report.final_trial


# --------------------------------------------------------------------------- figures


STUDY_PLOTS = ("history", "pareto", "importances", "parallel")


PARALLEL_MAX_PARAMS = 8

IMPORTANCE_TOP = 15


def _ranked_params(study: Any, objective: int) -> dict[str, float]:
    """Parameter importances for reaching the best 10 % of trials (PED-ANOVA), largest first."""
    import optuna

    args = _importance_args(study, objective)
    return dict(
        optuna.importance.get_param_importances(
            study, evaluator=args["evaluator"], target=args["target"]
        )
    )


def _parallel(study: Any, objective: int, target: dict[str, Any]) -> Any:
    """Parallel coordinates over at most PARALLEL_MAX_PARAMS parameters, the most important ones
    (PED-ANOVA): an `aimo tune` study has ~50, unreadable side by side and slow to draw."""
    import optuna.visualization as vis

    names = sorted({k for t in study.get_trials(deepcopy=False) for k in t.params})
    if len(names) <= PARALLEL_MAX_PARAMS:
        return vis.plot_parallel_coordinate(study, **target)
    top = list(_ranked_params(study, objective))[:PARALLEL_MAX_PARAMS]
    fig = vis.plot_parallel_coordinate(study, params=top, **target)
    fig.update_layout(
        title=f"Parallel coordinates: the {len(top)} most important of {len(names)} parameters"
    )
    return fig


def _importance_args(study: Any, objective: int) -> dict[str, Any]:
    """Evaluator and target for `plot_param_importances`: PED-ANOVA ranks "lower is better", so
    a maximised objective is negated (as Optuna's documentation asks); the plot is labelled
    with the objective's name either way."""
    import optuna
    from optuna.importance import PedAnovaImportanceEvaluator

    names = metric_names(study)
    sign = -1.0 if study.directions[objective] == optuna.study.StudyDirection.MAXIMIZE else 1.0
    return {
        "evaluator": PedAnovaImportanceEvaluator(),
        "target": lambda t: sign * t.values[objective],
        "target_name": names[objective],
    }


@st.cache_data(show_spinner=False, max_entries=32)
def study_figure(
    url: str,
    name: str,
    version: StoreVersion,
    refresh: int,
    objective: int,
    kind: str,
    top: int = IMPORTANCE_TOP,
) -> Any:
    """One of Optuna's Plotly figures of a study (STUDY_PLOTS), or the reason it is not
    available (a string). `objective` picks the value single-target plots show in a
    multi-objective study; `refresh` only keys the cache (RDB storages have no version).

    Importances: PED-ANOVA (Optuna's evaluator that needs no scikit-learn), importance for
    reaching the best 10 % of trials of the chosen objective; the `top` largest are drawn.
    """
    del refresh
    import optuna.visualization as vis

    from aimo.dashboard import charts

    study = load_study(url, name, version)
    names = metric_names(study)
    multi = len(study.directions) > 1
    target: dict[str, Any] = {"target_name": names[objective]}
    if multi:
        target["target"] = lambda t: t.values[objective]
    builders: dict[str, Callable[[], Any]] = {
        "history": lambda: vis.plot_optimization_history(study, **target),
        "importances": lambda: charts.importance_bars(
            _ranked_params(study, objective), objective=names[objective], top=top
        ),
        "parallel": lambda: _parallel(study, objective, target),
        "pareto": lambda: vis.plot_pareto_front(study, target_names=names),
    }
    if kind == "pareto" and not multi:
        return "single-objective study: no Pareto front"
    if kind == "pareto" and len(names) > 3:
        return "Pareto front plots show 2 or 3 objectives"
    try:
        with warnings.catch_warnings():  # experimental-API and evaluator notices
            warnings.simplefilter("ignore")
            fig = builders[kind]()
    except Exception as exc:  # noqa: BLE001 - too few trials, one-valued params, ...
        return f"not available: {exc}"
    params = sorted({k for t in study.get_trials(deepcopy=False) for k in t.params})
    return charts.tidy_study_figure(fig, kind=kind, objective=names[objective], params=params)
