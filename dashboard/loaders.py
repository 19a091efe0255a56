"""Cached loaders of the dashboard over the trace store, bundled policies and profiles.

Why one module: pages stay UI-only and every expensive read is cached in one place. Loaders are
`st.cache_data` (values copied per call) or `st.cache_resource` (shared read-only objects such
as trace arrays) with hashable arguments only: paths, run ids, policy YAML text. The frames they
cache are built by `dashboard.frames` (pure functions).

Freshness: a store being recorded changes under us. Every store loader takes a `version`
(`store_version`: size and mtime of the file and its WAL), so a committed question invalidates
the cache without ever opening the file to find out. Reads go through `core.store`, which
opens the file read-only, retries the writer's lock and closes at once, so neither side ever
sees a lock error.

Scale: nothing here loads the `chunks` table except `recorded_curves` (one question, without
text, thinned in SQL) and `sample_text` (one sample, on demand).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import streamlit as st

from aimo.core.hardware import HardwareProfile, list_profiles, load_profile
from aimo.core.policy import Policy, load_policy, policy_from_yaml, policy_to_yaml
from aimo.core.store import list_runs, load_problem_traces, load_sample_text, read_connection
from aimo.core.store.queries import sample_stats, token_curve
from aimo.core.traces import ProblemTrace
from aimo.dashboard.frames import problem_rows, sample_rows
from aimo.recorder.summary import run_stats
from aimo.simulator.validate import Validation, compare_stores

StoreVersion = tuple[int, ...]


# --------------------------------------------------------------------------- store: versions


def store_version(path: str | Path) -> StoreVersion:
    """Size and modification time of the store and its WAL: changes whenever a writer commits.

    Cheap (two `stat` calls, no DuckDB open); a missing file gives zeros.
    """
    out: list[int] = []
    for p in (Path(path), Path(f"{path}.wal")):
        try:
            st_ = p.stat()
            out += [st_.st_size, st_.st_mtime_ns]
        except OSError:
            out += [0, 0]
    return tuple(out)


# --------------------------------------------------------------------------- store: runs


RUN_COLUMNS = [
    "run_id",
    "kind",
    "status",
    "state",
    "model",
    "backend",
    "quantization",
    "hardware",
    "problems",
    "samples",
    "tokens",
    "answers",
    "mean_tokens",
    "created_at",
    "notes",
    "gen_config",
    "policy",
]


ACCURACY_COLUMNS = ["run_id", "sample_accuracy", "majority_accuracy", "first_final", "no_answer"]


@st.cache_data(show_spinner=False, max_entries=16)
def runs_frame(path: str, version: StoreVersion) -> pd.DataFrame:
    """One row per run (RUN_COLUMNS): identity and counts over completed questions.

    One read of the store (`list_runs`); every page calls it, so it stays small.

    Raises:
        InputError: missing file, not a trace store, or a store at another schema version.
    """
    del version  # part of the cache key only
    rows = [
        {
            "run_id": r.run_id,
            "kind": r.kind,
            "status": r.status,
            "state": r.state,  # finished | failed | interrupted | running (core.store.run_state)
            "model": r.model,
            "backend": r.backend,
            "quantization": r.quantization,
            "hardware": r.hardware,
            "problems": r.n_problems,
            "samples": r.n_samples,
            "tokens": r.n_tokens,
            "answers": r.n_answers,
            "mean_tokens": r.n_tokens / r.n_samples if r.n_samples else np.nan,
            "created_at": r.created_at,
            "notes": r.notes,
            "gen_config": json.dumps(r.gen_config, sort_keys=True),
            "policy": None if r.policy is None else json.dumps(r.policy, sort_keys=True),
        }
        for r in list_runs(path)
    ]
    return pd.DataFrame(rows, columns=RUN_COLUMNS)


@st.cache_data(show_spinner=False, max_entries=16)
def runs_accuracy(
    path: str, runs: tuple[tuple[str, str, str], ...], version: StoreVersion
) -> pd.DataFrame:
    """Accuracy of each run (ACCURACY_COLUMNS) as `recorder.summary` defines it: share of samples
    whose final answer is right, of problems whose majority vote is right, of answered samples
    whose first answer is the final one, and samples without any answer. `runs` holds
    (run_id, kind, status) triples; one read of the store for all of them."""
    del version
    rows = []
    with read_connection(path) as con:
        for run_id, kind, status in runs:
            s = run_stats(run_id, kind, status, sample_stats(con, run_id))
            rows.append(
                {
                    "run_id": run_id,
                    "sample_accuracy": s.sample_accuracy,
                    "majority_accuracy": s.majority_accuracy,
                    "first_final": s.first_final,
                    "no_answer": s.no_answer,
                }
            )
    frame = pd.DataFrame(rows, columns=ACCURACY_COLUMNS)
    for column in ("sample_accuracy", "majority_accuracy", "first_final"):
        frame[column] = pd.to_numeric(frame[column], errors="coerce")
    return frame


@st.cache_data(show_spinner=False, max_entries=16)
def live_score(path: str, run_id: str, version: StoreVersion):  # type: ignore[no-untyped-def]
    """The live solver's score, time used and budget of a `solve` run (core.store.live)."""
    del version
    from aimo.core.store.live import live_score as query

    return query(path, run_id)


@st.cache_data(show_spinner=False, max_entries=16)
def live_questions(path: str, run_id: str, version: StoreVersion) -> pd.DataFrame:
    """A live run's questions in serving order: the solver's final answer, whether it is right,
    stop reason, level, start and time (core.store.live.question_results)."""
    del version
    from aimo.core.store.live import question_results

    frame = question_results(path, run_id)
    columns = ["position", "problem_id", "truth", "final_answer", "correct", "stop_reason",
               "level", "start_s", "wall_s"]
    return frame[columns].reset_index(drop=True)


# --------------------------------------------------------------------------- store: traces


@st.cache_resource(show_spinner=False, max_entries=4)
def problem_traces(path: str, run_id: str, version: StoreVersion) -> list[ProblemTrace]:
    """Event arrays of every completed question of a run (shared, read-only: not copied).
    Incomplete runs are loaded too: the page says which state the run is in."""
    del version
    return load_problem_traces(path, run_id, allow_incomplete=True)


@st.cache_data(show_spinner=False, max_entries=8)
def samples_frame(path: str, run_id: str, version: StoreVersion) -> pd.DataFrame:
    """`sample_rows` of a run (cached)."""
    return sample_rows(problem_traces(path, run_id, version))


@st.cache_data(show_spinner=False, max_entries=8)
def problems_frame(path: str, run_id: str, version: StoreVersion) -> pd.DataFrame:
    """`problem_rows` of a run (cached)."""
    return problem_rows(samples_frame(path, run_id, version))


@st.cache_data(show_spinner=False, max_entries=32)
def recorded_curves(
    path: str, run_id: str, problem_id: str, version: StoreVersion, points: int = 300
) -> pd.DataFrame:
    """Recorded tokens over time of one question: `sample_idx`, `t_s`, `tokens`, about `points`
    rows per sample, read from the chunks table without the text."""
    del version
    frame = token_curve(path, run_id, problem_id, points)
    return frame.rename(columns={"n_tokens": "tokens"})[["sample_idx", "t_s", "tokens"]]


@st.cache_data(show_spinner=False, max_entries=64)
def sample_text(
    path: str, run_id: str, problem_id: str, sample_idx: int, version: StoreVersion
) -> str:
    """The full text of one sample, rebuilt from its chunks."""
    del version
    return load_sample_text(path, run_id, problem_id, sample_idx)


# --------------------------------------------------------------------------- policies, profiles


@st.cache_data(show_spinner=False)
def preset_yaml(name: str) -> str:
    """Canonical YAML of a bundled preset (every field spelled out, ready to edit)."""
    return policy_to_yaml(load_policy(name))


def parse_policy(text: str, source: str) -> Policy:
    """Validate policy YAML text; InputError names `source` and the field."""
    return policy_from_yaml(text, source)


@st.cache_resource(show_spinner=False)
def profile(name: str) -> HardwareProfile:
    """A bundled hardware profile by name."""
    return load_profile(name)


def profile_names() -> list[str]:
    """Names of the bundled hardware profiles."""
    return list(list_profiles())


# --------------------------------------------------------------------------- validation


@st.cache_resource(show_spinner=False, max_entries=8)
def validation(
    live: str,
    live_run: str | None,
    live_version: StoreVersion,
    traces: str,
    traces_run: str | None,
    traces_version: StoreVersion,
    hardware: str,
    hardware_version: StoreVersion,
    json_report: str | None = None,
    skip_first: bool = False,
) -> Validation:
    """`aimo validate`'s comparison (`simulator.validate.compare_stores`, the same call) of a
    live run against the replay of a trace store's run with a hardware profile (a bundled name
    or a YAML path). Shared, read-only (a frozen result); the versions (`store_version` of each
    file: a YAML profile's too) key the cache, so a store that grows or an edited profile is
    compared afresh.

    Raises:
        InputError: as `compare_stores` (names the file and field).
    """
    del live_version, traces_version, hardware_version  # part of the cache key only
    return compare_stores(
        live, traces, hardware, live_run=live_run, traces_run=traces_run,
        json_report=json_report or None, skip_first=skip_first,
    )
