"""What the time model is fitted to: per-stretch step times with the batch state.

Two sources: a recording's own chunk timestamps (`observations_from_chunks`, `read_chunks`:
each stretch between two chunk arrivals of a sample gives a per-token step time `dt / dtokens`,
with the number of decoding sequences `b` and their context `C` at its midpoint) and a
step-latency measurement's rows (`observations_from_rows`: one row per decode sub-window of a
grid cell). Either way a `StepObservations`, with a group label per observation for held-out
errors (a grid cell, or an interleaved fold of the stretches).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from aimo.core.errors import InputError
from aimo.core.hardware.rows import StepRow

CHUNK_COLUMNS = ("sample_idx", "t_s", "n_tokens")
GROUP_COLUMNS = ("run_id", "problem_id")
CHUNK_FOLDS = 5  # held-out folds of chunk stretches (interleaved: stretch i is in fold i % 5)


@dataclass(frozen=True, eq=False)
class StepObservations:
    """Per-stretch observations: `step_s` seconds per token while `batch` sequences held
    `context` tokens in all; `weight` is the stretch's weight in the fit (its token count, or 1
    for a measured row); `group` labels what is held out together (None: interleaved folds).
    Arrays of equal length."""

    step_s: np.ndarray
    batch: np.ndarray
    context: np.ndarray
    weight: np.ndarray
    group: np.ndarray | None = None

    def __post_init__(self) -> None:
        n = len(self.step_s)
        if not (len(self.batch) == len(self.context) == len(self.weight) == n):
            raise ValueError("StepObservations arrays must have equal lengths")
        if self.group is not None and len(self.group) != n:
            raise ValueError("StepObservations.group must have one label per observation")

    def __len__(self) -> int:
        return int(len(self.step_s))

    def groups(self) -> np.ndarray:
        """The held-out group of each observation (interleaved folds when none is given)."""
        if self.group is not None:
            return np.asarray(self.group)
        return (np.arange(len(self)) % CHUNK_FOLDS).astype(str)


def observations_from_rows(rows: Sequence[StepRow]) -> StepObservations:
    """A measurement's rows as observations, grouped by grid cell ('BxP'), weight 1 each."""
    return StepObservations(
        step_s=np.array([r.step_s for r in rows], np.float64),
        batch=np.array([r.batch for r in rows], np.float64),
        context=np.array([r.context_total for r in rows], np.float64),
        weight=np.ones(len(rows)),
        group=np.array([f"{r.batch}x{r.prompt_tokens}" for r in rows]),
    )


def with_live_stretches(measured: StepObservations, live: StepObservations, *,
                        label: str = "live") -> StepObservations:
    """A measurement's rows and a live run's chunk stretches as one set of observations: the
    stretches weigh as much in all as the rows in the fit (so neither the grid's long contexts
    nor the live run's many stretches drown the other) and are held out beside the grid's cells
    by their own groups (a question at a time, from `observations_from_chunks(by_question=True)`),
    else in `CHUNK_FOLDS` interleaved folds."""
    total = float(np.sum(measured.weight))
    w = np.asarray(live.weight, np.float64)
    w = w / w.sum() * total if w.sum() > 0 else w
    folds = (np.array([f"{label}:{g}" for g in live.group]) if live.group is not None
             else np.array([f"{label}{i % CHUNK_FOLDS}" for i in range(len(live))]))
    return StepObservations(
        step_s=np.concatenate([measured.step_s, live.step_s]),
        batch=np.concatenate([measured.batch, live.batch]),
        context=np.concatenate([measured.context, live.context]),
        weight=np.concatenate([measured.weight, w]),
        group=np.concatenate([measured.groups(), folds]),
    )


def observations_from_chunks(chunks: pd.DataFrame, samples: pd.DataFrame | None = None, *,
                             window_tokens: int = 16, source: str = "chunks",
                             by_question: bool = False) -> StepObservations:
    """Per-stretch step times with the batch state, from recorded chunks.

    Args:
        chunks: one row per chunk: `sample_idx`, `t_s` (seconds since question start),
            `n_tokens` (cumulative generated tokens); `prompt_tokens` per row or via `samples`;
            optional `run_id`/`problem_id` to hold several questions (each its own clock).
        samples: per-sample `sample_idx` (+ group columns) and `prompt_tokens`, when `chunks`
            lacks them. `start_s` is accepted but not needed (see below).
        window_tokens: merge consecutive chunks of a sample into stretches of about this many
            tokens, which damps arrival-time jitter of the stream.
        source: name for error messages.
        by_question: label each stretch with its question (held out together by the fits),
            instead of interleaved folds, whose neighbouring stretches are nearly the same.

    A sample counts as decoding from its first chunk to its last: its recorded `start_s` is when
    the request was submitted, which with a queue (more requests than `max_batch`) is long
    before it was admitted. The first chunk's stretch holds prefill and is skipped.

    Raises:
        InputError: a missing column, or no usable stretch (no timestamps).
    """
    if window_tokens < 1:
        raise InputError(source, "window_tokens", "must be >= 1")
    df = _chunk_frame(chunks, samples, source)
    groups = [c for c in GROUP_COLUMNS if c in df.columns]
    parts: list[tuple[np.ndarray, ...]] = []
    labels: list[np.ndarray] = []
    it = df.groupby(groups, sort=False) if groups else [((), df)]
    for key, g in it:
        part = _question_observations(g, window_tokens)
        parts.append(part)
        name = "/".join(str(k) for k in (key if isinstance(key, tuple) else (key,))) or "question"
        labels.append(np.full(len(part[0]), name, dtype=object))
    cols = [np.concatenate([p[i] for p in parts]) if parts else np.zeros(0) for i in range(4)]
    group = np.concatenate(labels).astype(str) if by_question and labels else None
    obs = StepObservations(step_s=cols[0], batch=cols[1], context=cols[2], weight=cols[3],
                           group=group)
    if len(obs) == 0:
        raise InputError(source, "t_s", "no usable chunk stretches "
                                        "(need timestamps and >= 2 chunks per sample)")
    return obs


def _chunk_frame(chunks: pd.DataFrame, samples: pd.DataFrame | None, source: str) -> pd.DataFrame:
    if not isinstance(chunks, pd.DataFrame):
        raise InputError(source, None, "chunks must be a pandas DataFrame")
    for col in CHUNK_COLUMNS:
        if col not in chunks.columns:
            raise InputError(source, col, "missing column")
    df = chunks
    if "prompt_tokens" not in df.columns:
        if samples is None or not {"prompt_tokens", "sample_idx"} <= set(samples.columns):
            raise InputError(source, "prompt_tokens",
                             "missing column (in the chunks or the samples)")
        keys = [c for c in ("run_id", "problem_id", "sample_idx")
                if c in df.columns and c in samples.columns]
        df = df.merge(samples[keys + ["prompt_tokens"]].drop_duplicates(keys), on=keys, how="left")
    df = df.copy()
    for col in ("t_s", "n_tokens", "prompt_tokens"):
        df[col] = pd.to_numeric(df[col], errors="coerce")
    if df["prompt_tokens"].isna().any():
        raise InputError(source, "prompt_tokens", "missing for some samples")
    df = df[df["t_s"].notna() & df["n_tokens"].notna()]
    return df


def _question_observations(g: pd.DataFrame, window: int) -> tuple[np.ndarray, ...]:
    """Stretches of one question: (step_s, b, C, tokens)."""
    g = g.sort_values(["sample_idx", "t_s", "n_tokens"], kind="stable")
    samp_t: list[np.ndarray] = []
    samp_n: list[np.ndarray] = []
    prompts: list[float] = []
    st_t0: list[np.ndarray] = []
    st_t1: list[np.ndarray] = []
    st_dn: list[np.ndarray] = []
    for _, s in g.groupby("sample_idx", sort=False):
        t = s["t_s"].to_numpy(np.float64)
        n = s["n_tokens"].to_numpy(np.float64)
        n = np.maximum.accumulate(n)
        samp_t.append(t)
        samp_n.append(n)
        prompts.append(float(s["prompt_tokens"].iloc[0]))
        if len(t) < 2:
            continue
        bucket = np.floor((n - n[0]) / window)
        keep = np.r_[True, np.diff(bucket) > 0]
        kt, kn = t[keep], n[keep]
        dt, dn = np.diff(kt), np.diff(kn)
        ok = (dt > 0) & (dn > 0)
        st_t0.append(kt[:-1][ok])
        st_t1.append(kt[1:][ok])
        st_dn.append(dn[ok])
    if not st_t0:
        return tuple(np.zeros(0) for _ in range(4))
    t0, t1, dn = np.concatenate(st_t0), np.concatenate(st_t1), np.concatenate(st_dn)
    mid = (t0 + t1) / 2.0
    b = np.zeros_like(mid)
    c = np.zeros_like(mid)
    for t, n, prompt in zip(samp_t, samp_n, prompts):
        if len(t) == 0:
            continue
        on = (mid >= t[0]) & (mid <= t[-1])
        b += on
        c += np.where(on, prompt + np.interp(mid, t, n), 0.0)
    return (t1 - t0) / dn, b, c, dn


def read_chunks(store: str | Path, *, run_id: str | None = None,
                problem_ids: Sequence[str] | None = None) -> pd.DataFrame:
    """Timed chunks of a trace store (all runs, or one), joined with their samples' prompt
    tokens, as the DataFrame `fit_profile` takes. Read through `core.store` (read-only, waiting
    out a writer's lock).

    Raises:
        InputError: the file is missing or not a trace store, or the run has no timed chunks.
    """
    from aimo.core.store.chunk_times import load_timed_chunks

    path = Path(store)
    df = load_timed_chunks(path, run_id)
    if problem_ids is not None:
        df = df[df["problem_id"].isin(list(problem_ids))]
    if df.empty:
        what = f"run {run_id!r}" if run_id else "the store"
        raise InputError(str(path), "chunks.t_s", f"no timed chunks in {what}")
    return df.reset_index(drop=True)
