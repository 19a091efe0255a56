"""Fit a profile's decode coefficients from a recording's own chunk timestamps.

Each stretch between two chunk arrivals of one sample gives a per-token step time
`dt / dtokens`; at the middle of that stretch we know how many sequences of the question were
decoding (`b`) and how much context they held (`C`, prompts plus tokens so far, interpolated
from their own chunks). Least squares over those stretches, weighted by their tokens, gives
`a`, `beta`, `gamma` (non-negative; a coefficient the data cannot identify is taken from the
base profile and reported as fixed).
"""

from __future__ import annotations

import datetime as _dt
import itertools
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from core.hardware.profile import HardwareProfile, Provenance
from core.errors import InputError

CHUNK_COLUMNS = ("sample_idx", "t_s", "n_tokens")
GROUP_COLUMNS = ("run_id", "problem_id")


@dataclass(frozen=True, eq=False)
class StepObservations:
    """Per-stretch observations: `step_s` seconds per token while `batch` sequences held
    `context` tokens in all; `weight` is the stretch's token count. Arrays of equal length."""

    step_s: np.ndarray
    batch: np.ndarray
    context: np.ndarray
    weight: np.ndarray

    def __post_init__(self) -> None:
        n = len(self.step_s)
        if not (len(self.batch) == len(self.context) == len(self.weight) == n):
            raise ValueError("StepObservations arrays must have equal lengths")

    def __len__(self) -> int:
        return int(len(self.step_s))


@dataclass(frozen=True)
class FitResult:
    """A fitted profile and how well it explains the observations it was fitted on.

    `rmse_s`: token-weighted RMS error of the per-token step time (seconds);
    `median_rel_error`/`p90_rel_error`: of |predicted/observed - 1| over the stretches;
    `fixed`: decode coefficients not identifiable from the data, taken from the base (or 0).
    """

    profile: HardwareProfile
    rmse_s: float
    median_rel_error: float
    p90_rel_error: float
    n_points: int
    fixed: tuple[str, ...] = ()

    def render(self) -> str:
        """A few lines for a terminal."""
        p = self.profile
        lines = [
            f"profile {p.name}: a={p.a:.6g} s  beta={p.beta:.6g} s/seq  "
            f"gamma={p.gamma:.6g} s/token",
            f"  {self.n_points} stretches; rmse {self.rmse_s * 1e3:.3f} ms/token; "
            f"relative error median {self.median_rel_error:.1%}, p90 {self.p90_rel_error:.1%}",
        ]
        if self.fixed:
            lines.append("  not identifiable from the data, kept from the base: "
                         + ", ".join(self.fixed))
        return "\n".join(lines)


def observations_from_chunks(chunks: pd.DataFrame, samples: pd.DataFrame | None = None, *,
                             window_tokens: int = 16, source: str = "chunks") -> StepObservations:
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
    it = df.groupby(groups, sort=False) if groups else [((), df)]
    for _, g in it:
        parts.append(_question_observations(g, window_tokens))
    cols = [np.concatenate([p[i] for p in parts]) if parts else np.zeros(0) for i in range(4)]
    obs = StepObservations(step_s=cols[0], batch=cols[1], context=cols[2], weight=cols[3])
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


def fit_profile(obs: StepObservations | pd.DataFrame, *, name: str,
                base: HardwareProfile | None = None, samples: pd.DataFrame | None = None,
                window_tokens: int = 16, source: str = "recording",
                date: str | None = None) -> FitResult:
    """Least-squares fit of `a`, `beta`, `gamma` to a recording (chunks or observations).

    Args:
        obs: `StepObservations`, or a chunks DataFrame (see `observations_from_chunks`).
        name: name of the new profile.
        base: supplies everything the chunks cannot tell (prefill, start-up, max_batch,
            code_overlap, overhead) and any coefficient the data cannot identify. Without it:
            prefill 0, start-up 0, max_batch the largest batch seen, "parallel".
        samples, window_tokens: passed to `observations_from_chunks` for a DataFrame.
        source: what was fitted, for the provenance; `date` defaults to today.

    Raises:
        InputError: unusable input, or the data give no positive base step time.
    """
    if isinstance(obs, pd.DataFrame):
        obs = observations_from_chunks(obs, samples, window_tokens=window_tokens, source=source)
    y = np.asarray(obs.step_s, np.float64)
    b = np.asarray(obs.batch, np.float64)
    c = np.asarray(obs.context, np.float64)
    w = np.asarray(obs.weight, np.float64)
    good = np.isfinite(y) & np.isfinite(b) & np.isfinite(c) & np.isfinite(w) & (w > 0) & (b > 0)
    y, b, c, w = y[good], b[good], c[good], w[good]
    if len(y) < 3:
        raise InputError(source, "chunks", f"need at least 3 usable stretches to fit, got {len(y)}")

    fixed: list[str] = []
    fixed_vals = {"beta": base.beta if base else 0.0, "gamma": base.gamma if base else 0.0}
    free = ["a", "beta", "gamma"]
    if np.ptp(b) == 0:
        free.remove("beta")
        fixed.append("beta")
    if np.ptp(c) == 0:
        free.remove("gamma")
        fixed.append("gamma")
    coef = _nnls_small(y, b, c, w, free, fixed_vals)
    if coef is None:
        raise InputError(source, "chunks", "the data give no positive base step time (decode.a); "
                                           "check the timestamps")
    a, beta, gamma = coef

    pred = a + beta * b + gamma * c
    resid = pred - y
    rmse = float(np.sqrt(np.sum(w * resid**2) / np.sum(w)))
    rel = np.abs(pred / y - 1.0)
    med, p90 = float(np.median(rel)), float(np.quantile(rel, 0.9))

    day = date or _dt.date.today().isoformat()
    method = (f"least squares over {len(y)} chunk stretches (~{int(np.median(w))} tokens each): "
              "per-token step time dt/dtokens vs active sequences b and total context C at the "
              "stretch midpoint; non-negative coefficients")
    notes = (f"fit error: rmse {rmse * 1e3:.3f} ms/token, relative median {med:.1%}, "
             f"p90 {p90:.1%}; batch {int(b.min())}..{int(b.max())}, "
             f"context {int(c.min())}..{int(c.max())} tokens.")
    if fixed:
        origin = f"base {base.name}" if base else "zero"
        notes += f" Not identifiable, kept from {origin}: {', '.join(fixed)}."
    if base is not None:
        notes += (" Prefill, start-up, max_batch, code_overlap and overhead from base profile "
                  f"{base.name}.")
        profile = replace(base, name=name, a=a, beta=beta, gamma=gamma, calibration=(),
                          provenance=Provenance(source, day, method, notes),
                          description=f"fitted from {source} (base {base.name})")
    else:
        notes += " Prefill and start-up not measured here (0); max_batch = largest batch seen."
        profile = HardwareProfile(
            name=name, a=a, beta=beta, gamma=gamma, prefill_s_per_token=0.0, startup_s=0.0,
            max_batch=max(1, int(b.max())), provenance=Provenance(source, day, method, notes),
            description=f"fitted from {source}",
        )
    return FitResult(profile=profile, rmse_s=rmse, median_rel_error=med, p90_rel_error=p90,
                     n_points=int(len(y)), fixed=tuple(fixed))


def _nnls_small(y: np.ndarray, b: np.ndarray, c: np.ndarray, w: np.ndarray, free: list[str],
                fixed_vals: dict[str, float]) -> tuple[float, float, float] | None:
    """Weighted least squares with a > 0 and beta, gamma >= 0, by trying every subset of the
    free non-negative coefficients at zero (exact for three unknowns)."""
    sw = np.sqrt(w)
    cols = {"a": np.ones_like(y), "beta": b, "gamma": c}
    scale = {k: float(np.max(np.abs(v))) or 1.0 for k, v in cols.items()}
    optional = [k for k in free if k != "a"]
    best: tuple[float, tuple[float, float, float]] | None = None
    for r in range(len(optional), -1, -1):
        for active in itertools.combinations(optional, r):
            vals = {"a": 0.0, "beta": 0.0, "gamma": 0.0}
            for k in ("beta", "gamma"):
                if k not in free:
                    vals[k] = fixed_vals[k]
            names = ["a", *active]
            target = y - sum(vals[k] * cols[k] for k in ("beta", "gamma") if k not in free)
            X = np.column_stack([cols[k] / scale[k] for k in names]) * sw[:, None]
            sol, *_ = np.linalg.lstsq(X, target * sw, rcond=None)
            for k, v in zip(names, sol):
                vals[k] = float(v) / scale[k]
            if vals["a"] <= 0 or any(vals[k] < 0 for k in active):
                continue
            pred = vals["a"] + vals["beta"] * b + vals["gamma"] * c
            sse = float(np.sum(w * (pred - y) ** 2))
            if best is None or sse < best[0]:
                best = (sse, (vals["a"], vals["beta"], vals["gamma"]))
    return None if best is None else best[1]


# ---------------------------------------------------------------------------------------------
# reading a trace store (the only I/O here; read-only)

_CHUNKS_SQL = """
SELECT c.run_id, c.problem_id, c.sample_idx, c.t_s, c.n_tokens, s.prompt_tokens, s.start_s
FROM chunks c
JOIN samples s USING (run_id, problem_id, sample_idx)
WHERE ($run_id IS NULL OR c.run_id = $run_id) AND c.t_s IS NOT NULL
ORDER BY c.run_id, c.problem_id, c.sample_idx, c.seq
"""


def read_chunks(store: str | Path, *, run_id: str | None = None,
                problem_ids: Sequence[str] | None = None) -> pd.DataFrame:
    """Timed chunks of a trace store (all runs, or one), joined with their samples' prompt
    tokens, as the DataFrame `fit_profile` takes. Opens the store read-only.

    Raises:
        InputError: the file is missing or not a trace store, or the run has no timed chunks.
    """
    import duckdb

    path = Path(store)
    if not path.is_file():
        raise InputError(str(path), None, "trace store not found")
    try:
        with duckdb.connect(str(path), read_only=True) as con:
            df = con.execute(_CHUNKS_SQL, {"run_id": run_id}).df()
    except duckdb.Error as exc:
        raise InputError(str(path), "chunks", f"cannot read chunks: {exc}") from None
    if problem_ids is not None:
        df = df[df["problem_id"].isin(list(problem_ids))]
    if df.empty:
        what = f"run {run_id!r}" if run_id else "the store"
        raise InputError(str(path), "chunks.t_s", f"no timed chunks in {what}")
    return df.reset_index(drop=True)


def observation_errors(profile: HardwareProfile, obs: StepObservations) -> tuple[float, float, int]:
    """How well `profile`'s step model explains observed stretches: relative error |pred/obs − 1|
    median and p90, and the number of usable stretches (the "before" of a refit)."""
    y = np.asarray(obs.step_s, np.float64)
    b = np.asarray(obs.batch, np.float64)
    c = np.asarray(obs.context, np.float64)
    good = np.isfinite(y) & (y > 0) & np.isfinite(b) & (b > 0) & np.isfinite(c)
    if not good.any():
        return float("nan"), float("nan"), 0
    rel = np.abs((profile.a + profile.beta * b[good] + profile.gamma * c[good]) / y[good] - 1.0)
    return float(np.median(rel)), float(np.quantile(rel, 0.9)), int(good.sum())
