"""Widgets and page plumbing shared by the dashboard's pages: configuration, the store and run
pickers, error display, the in-progress banner and the policy / profile pickers.

Why: every page needs "which store, which run, is it still being recorded" and must turn bad
input into a message (st.error) rather than a traceback; doing it once keeps pages UI-only
and short. Data access stays in `dashboard.loaders` (and the other data modules).
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import streamlit as st

from aimo.dashboard import loaders
from aimo.core.errors import InputError
from aimo.core.policy import Policy, list_presets
from aimo.core.store import StoreBusyError

ENV_TRACES = "AIMO_DASHBOARD_TRACES"
ENV_STORAGE = "AIMO_DASHBOARD_STORAGE"
ENV_STUDY = "AIMO_DASHBOARD_STUDY"

# Session-state keys (the `run` and `problem` widgets are bound to the URL's query parameters).
K_TRACES = "traces_path"
K_STORAGE = "storage_url"
K_STUDY = "study_name"
K_RUN = "run"
K_REFRESH = "refresh_count"


@dataclass(frozen=True)
class Config:
    """Where the dashboard looks first: a trace store, an Optuna storage and a study name."""

    traces: str = ""
    storage: str = ""
    study: str = ""


def read_config(argv: Sequence[str], environ: Mapping[str, str] = os.environ) -> Config:
    """Options after `streamlit run dashboard/app.py --` win over the AIMO_DASHBOARD_* variables,
    which win over the shared AIMO_TRACES / AIMO_STORAGE (core/settings.py)."""
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--traces", default=None)
    parser.add_argument("--storage", default=None)
    parser.add_argument("--study", default=None)
    args, _ = parser.parse_known_args(list(argv))
    from aimo.core.settings import Settings, load_settings  # the shared AIMO_TRACES / AIMO_STORAGE

    try:
        shared = load_settings(environ)
    except InputError:  # a bad AIMO_BUDGET_S is the CLI's to report, not the browser's
        shared = Settings()
    return Config(
        traces=args.traces or environ.get(ENV_TRACES, "") or shared.traces or "",
        storage=args.storage or environ.get(ENV_STORAGE, "") or shared.storage or "",
        study=args.study or environ.get(ENV_STUDY, ""),
    )


def init_state(config: Config) -> None:
    """Seed the session's text inputs from the configuration once per session."""
    st.session_state.setdefault(K_TRACES, config.traces)
    st.session_state.setdefault(K_STORAGE, config.storage)
    st.session_state.setdefault(K_STUDY, config.study)
    st.session_state.setdefault(K_REFRESH, 0)


def show_error(exc: BaseException) -> None:
    """An input problem as a message on the page: busy store as a warning, the rest as errors."""
    if isinstance(exc, StoreBusyError):
        st.warning(f"The trace store is busy (a writer held it too long); try again. {exc}")
    elif isinstance(exc, InputError):
        st.error(str(exc))
    else:
        st.error(f"{type(exc).__name__}: {exc}")


# --------------------------------------------------------------------------- store and run


@dataclass(frozen=True)
class RunContext:
    """The store and run a page works on. `version` keys the caches (see `loaders.store_version`)."""

    path: str
    version: loaders.StoreVersion
    runs: pd.DataFrame
    run: pd.Series

    @property
    def run_id(self) -> str:
        return str(self.run["run_id"])

    @property
    def in_progress(self) -> bool:
        return self.run.get("state", self.run["status"]) == "running"


def _runs(path: str) -> tuple[loaders.StoreVersion, pd.DataFrame]:
    version = loaders.store_version(path)
    return version, loaders.runs_frame(path, version)


def store_sidebar() -> None:
    """Sidebar: the trace-store path and the run picker (bound to `?run=` in the URL)."""
    st.text_input(
        "Trace store (DuckDB file)",
        key=K_TRACES,
        help="Path of the trace store on the machine that runs the dashboard.",
    )
    path = st.session_state.get(K_TRACES, "")
    if not path:
        return
    try:
        _, runs = _runs(path)
    except Exception:  # noqa: BLE001 - the page body shows the error
        return
    if runs.empty:
        return
    run_ids = runs["run_id"].tolist()
    finished = [i for i, state in enumerate(runs["state"]) if state == "finished"]
    # Plain ids as labels: a bound widget writes its label into the URL (?run=...).
    st.selectbox(
        "Run",
        run_ids,
        index=finished[-1] if finished else len(run_ids) - 1,
        key=K_RUN,
        bind="query-params",
        help="The newest finished run by default; the choice is kept in the URL (?run=...).",
    )
    status = runs.loc[runs["run_id"] == st.session_state.get(K_RUN), "state"]
    if len(status):
        st.caption(f"state: {status.iloc[0]}")
    if st.button("Refresh", help="Reload the store (new questions of a run in progress)."):
        st.session_state[K_REFRESH] += 1  # the rerun re-reads the store's version


def run_context(*, need_questions: bool = True) -> RunContext:
    """The selected store and run, or a message on the page and `st.stop()`.

    Shows: an error for a missing path, a file that is not a trace store, a store without runs;
    an in-progress notice for a run still being recorded; an info when the run has no
    completed question yet (and `need_questions`).
    """
    path = st.session_state.get(K_TRACES, "")
    if not path:
        st.error(
            "No trace store given: start with `aimo dashboard --traces FILE` or enter a "
            "path in the sidebar."
        )
        st.stop()
    try:
        version, runs = _runs(path)
    except Exception as exc:  # noqa: BLE001 - any bad input becomes a message
        show_error(exc)
        st.stop()
    if runs.empty:
        st.error(f"{path}: the trace store holds no runs yet (record, import or synthesize one).")
        st.stop()
    run_id = st.session_state.get(K_RUN)
    chosen = runs[runs["run_id"] == run_id]
    finished = runs[runs["state"] == "finished"] if "state" in runs else runs
    run = chosen.iloc[0] if len(chosen) else (finished if len(finished) else runs).iloc[-1]
    ctx = RunContext(path=path, version=version, runs=runs, run=run)
    if ctx.in_progress:
        st.info(
            f"Run **{ctx.run_id}** is in progress (still being recorded): "
            f"{int(run['problems'])} question(s) committed so far. The page shows the "
            "committed questions; press Refresh in the sidebar for newer ones."
        )
    elif run.get("state") == "interrupted":
        st.warning(
            f"Run **{ctx.run_id}** was interrupted (its writer is gone); its committed questions "
            "are shown. Resume it, or close it with `aimo runs mark-failed`."
        )
    elif run["status"] == "failed":
        st.warning(
            f"Run **{ctx.run_id}** ended with status 'failed'; its committed questions are shown."
        )
    if need_questions and int(run["problems"]) == 0:
        st.info(f"Run {ctx.run_id} has no completed question yet.")
        st.stop()
    return ctx


def problem_traces(ctx: RunContext) -> list:
    """The run's event traces, or an error message and `st.stop()`."""
    try:
        return loaders.problem_traces(ctx.path, ctx.run_id, ctx.version)
    except Exception as exc:  # noqa: BLE001
        show_error(exc)
        st.stop()


# --------------------------------------------------------------------------- policy and profile


def policy_editor(
    prefix: str, *, label: str = "Policy", default: str = "seed-2nd-place"
) -> tuple[Policy, str] | None:
    """Preset picker, YAML upload and an editable YAML text area.

    Returns the validated policy and its canonical YAML (a hashable cache key), or None after
    showing the validation error (which names the source and the field).
    """
    presets = list_presets()
    preset_key, text_key = f"{prefix}_preset", f"{prefix}_yaml"
    upload_key, seen_key = f"{prefix}_upload", f"{prefix}_upload_seen"

    def load_preset() -> None:
        st.session_state[text_key] = loaders.preset_yaml(st.session_state[preset_key])
        st.session_state[f"{prefix}_source"] = f"preset {st.session_state[preset_key]}"

    index = presets.index(default) if default in presets else 0
    preset = st.selectbox(
        f"{label}: preset", presets, index=index, key=preset_key, on_change=load_preset
    )
    assert preset is not None  # a widget with options always returns one
    if text_key not in st.session_state:
        st.session_state[text_key] = loaders.preset_yaml(preset)
        st.session_state[f"{prefix}_source"] = f"preset {preset}"
    upload = st.file_uploader(
        f"{label}: or upload a YAML file", type=["yaml", "yml"], key=upload_key
    )
    if upload is not None and st.session_state.get(seen_key) != upload.file_id:
        st.session_state[seen_key] = upload.file_id
        st.session_state[text_key] = upload.getvalue().decode("utf-8", errors="replace")
        st.session_state[f"{prefix}_source"] = upload.name
    with st.expander(f"{label}: edit YAML", expanded=False):
        text = st.text_area(f"{label} YAML", key=text_key, height=360)
    source = st.session_state.get(f"{prefix}_source", "policy")
    try:
        policy = loaders.parse_policy(text or "", f"{source} (editor)")
    except InputError as exc:
        st.error(f"Invalid policy: {exc}")
        return None
    from aimo.core.policy import policy_to_yaml

    return policy, policy_to_yaml(policy)


def profile_picker(
    key: str, *, label: str = "Hardware profile", default: str = "l4x4-14b-w4kv8",
    ctx: RunContext | None = None,
) -> str:
    """A bundled hardware profile name; with `ctx`, the run's bound or matching profile is
    preselected (`simulator.profile_choice`) and the choice is kept per run."""
    names = loaders.profile_names()
    help_text = None
    if ctx is not None:
        from aimo.simulator.profile_choice import profile_for_store

        try:
            choice = profile_for_store(ctx.path, ctx.run_id)
            default, help_text = choice.name, f"Preselected: {choice.name} ({choice.reason})."
        except InputError:
            pass
        key = f"{key}:{ctx.run_id}"
    if default not in names:  # a bound profile given as a YAML path
        names = [default, *names] if ctx is not None and Path(default).is_file() else names
    index = names.index(default) if default in names else 0
    return str(st.selectbox(label, names, index=index, key=key, help=help_text))


def file_name(text: str) -> str:
    """A safe download file name stem."""
    keep = "".join(c if c.isalnum() or c in "-_." else "-" for c in text)
    return keep.strip("-.") or "policy"


def here() -> Path:
    """The dashboard package directory."""
    return Path(__file__).resolve().parent
