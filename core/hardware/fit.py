"""The one fit of the decode step model, from a recording's chunks or a measurement's rows.

The model is `core.hardware.timing.step_seconds`: `a + beta*b + gamma*C`, plus, where the
measurements say so, `beta_above*max(0, b - knee_batch)` (per-step overhead flat up to a batch
size, steeper above). `fit_step` fits it by least squares (`core.hardware.lsq`) with `a > 0` and
the other coefficients >= 0, on relative error (measured rows: steps of 11-32 ms weigh alike) or
absolute error weighted by tokens (chunk stretches). `choose_step_model` decides whether the
knee term goes in: it fits the linear model and the knee at every measured batch size, scores
each on held-out error (a grid cell, or a fold of stretches, predicted by a fit without it) and
takes the knee only when it lowers the held-out median by at least `KNEE_MARGIN` (relative) and
`KNEE_MIN_GAIN` (absolute) without raising the p90, with at least `KNEE_MIN_GROUPS` cells on
each side of the knee. `fit_step_model` (a measurement's rows; `aimo profile measure`, `aimo profile fit
--csv`) and `fit_profile` (a recording's chunks; `aimo profile fit --traces`) both go through
it. Reports: the error by cell before and after (`cell_table`), and how far a profile
extrapolates beyond what was measured (`Coverage.extrapolation`).

What a live run adds on top of the measured engine (`aimo profile fit --from-live`):
`question_overhead` (tail after the last sample), `host_per_step` (the control loop's time per
decode step) and `prefill_per_request` (the engine's admission of each request), each a
median over the run so that stalls and code runs do not carry it.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np
import pandas as pd

from aimo.core.errors import InputError
from aimo.core.hardware.lsq import RelError, lsq, nonneg_lsq, rel_errors
from aimo.core.hardware.observations import (
    StepObservations,
    observations_from_chunks,
    observations_from_rows,
    read_chunks,
    with_live_stretches,
)
from aimo.core.hardware.profile import HardwareProfile, Provenance
from aimo.core.hardware.rows import StepRow, calibration_points
from aimo.core.hardware.timing import decode_coefficients, engine_coefficients, step_seconds

LINEAR = "a+beta*b+gamma*C"
KNEE = "a+beta*b+beta_above*max(0,b-knee_batch)+gamma*C"
KNEE_MARGIN = 0.10  # the knee must cut the held-out median error by >= 10% (relative) ...
KNEE_MIN_GAIN = 0.005  # ... and by >= 0.5 percentage points (noise on a flat step does not)
KNEE_MIN_GROUPS = 2  # held-out groups (cells) needed on each side of a knee
KneeMode = Literal["auto", "off", "on"]
SEQ_TOKENS = 16384  # tokens of one long sample (the seed's max_new_tokens): the context in use

__all__ = [
    "KNEE", "LINEAR", "Coverage", "FitResult", "KneeChoice", "ModelFit", "QuestionOverhead",
    "RelError", "StepFit",
    "StepModel", "StepObservations", "cell_table", "choose_step_model", "fit_models",
    "fit_profile", "fit_step", "fit_step_model", "lsq", "observation_errors",
    "host_per_step", "HostPerStep", "observations_from_chunks", "observations_from_rows",
    "PrefillPerRequest", "prefill_per_request", "question_overhead", "read_chunks",
    "refit_profile",
    "rel_errors",
]


# ------------------------------------------------------------------------------- the model


@dataclass(frozen=True)
class StepModel:
    """Decode coefficients of `step_seconds` (`beta_above = 0`: the linear model)."""

    a: float
    beta: float
    gamma: float
    knee_batch: int = 0
    beta_above: float = 0.0

    @classmethod
    def of(cls, p: HardwareProfile) -> StepModel:
        return cls(p.a, p.beta, p.gamma, p.knee_batch, p.beta_above)

    @property
    def has_knee(self) -> bool:
        return self.beta_above > 0.0

    @property
    def form(self) -> str:
        return KNEE if self.has_knee else LINEAR

    def predict(self, b: Any, c: Any) -> Any:
        """Seconds per step at batch `b` and context `c` (scalars or arrays)."""
        return step_seconds(self.a, self.beta, self.gamma, self.knee_batch, self.beta_above,
                            b, c)

    def rounded(self, digits: int = 4) -> StepModel:
        """Coefficients rounded to `digits` significant digits (as profiles store them)."""
        def sig(x: float) -> float:
            return float(f"{x:.{digits}g}")

        return StepModel(sig(self.a), sig(self.beta), sig(self.gamma), self.knee_batch,
                         sig(self.beta_above))

    def describe(self) -> str:
        text = f"a={self.a:.4g} s, beta={self.beta:.4g} s/seq, gamma={self.gamma:.4g} s/token"
        if self.has_knee:
            text += f", beta_above={self.beta_above:.4g} s/seq above b={self.knee_batch}"
        return text


def _arrays(obs: StepObservations) -> tuple[np.ndarray, ...]:
    y = np.asarray(obs.step_s, np.float64)
    b = np.asarray(obs.batch, np.float64)
    c = np.asarray(obs.context, np.float64)
    w = np.asarray(obs.weight, np.float64)
    good = (np.isfinite(y) & (y > 0) & np.isfinite(b) & (b > 0) & np.isfinite(c)
            & np.isfinite(w) & (w > 0))
    return y[good], b[good], c[good], w[good], obs.groups()[good]


def fit_step(y: np.ndarray, b: np.ndarray, c: np.ndarray, w: np.ndarray | None = None, *,
             rel: bool, knee_batch: int = 0, fixed: Mapping[str, float] | None = None
             ) -> tuple[StepModel, tuple[str, ...]] | None:
    """Least squares of the step model (the knee term with `knee_batch > 0`), `a > 0`, the rest
    >= 0; coefficients in `fixed` are held at their values. Returns the model and the
    coefficients pinned to 0 by their sign constraint, or None (no fit with `a > 0`)."""
    fixed = dict(fixed or {})
    cols = {"a": np.ones_like(y), "beta": b, "gamma": c}
    if knee_batch > 0:
        over = b - knee_batch
        cols["beta_above"] = 0.5 * (over + np.abs(over))
    offset = sum((fixed[k] * cols[k] for k in fixed if k in cols), np.zeros_like(y))
    free = {k: v for k, v in cols.items() if k not in fixed}
    res = nonneg_lsq(y, free, nonneg=("beta", "gamma", "beta_above"), positive=("a",), rel=rel,
                     weight=w, offset=offset)
    if res is None:
        return None
    coef, pinned = res
    vals = {**{k: 0.0 for k in cols}, **{k: v for k, v in fixed.items() if k in cols}, **coef}
    beta_above = vals.get("beta_above", 0.0)
    model = StepModel(vals["a"], vals["beta"], vals["gamma"],
                      knee_batch if beta_above > 0 else 0, beta_above)
    return model, tuple(k for k in pinned if k != "beta_above")


def held_out_error(y: np.ndarray, b: np.ndarray, c: np.ndarray, w: np.ndarray,
                   groups: np.ndarray, *, rel: bool, knee_batch: int = 0,
                   fixed: Mapping[str, float] | None = None) -> RelError | None:
    """Relative error of each group's observations predicted by a fit without that group
    (None with fewer than 2 groups, or when a fit fails)."""
    labels = np.unique(groups)
    if len(labels) < 2:
        return None
    pred = np.empty_like(y)
    for g in labels:
        test = groups == g
        got = fit_step(y[~test], b[~test], c[~test], w[~test], rel=rel, knee_batch=knee_batch,
                       fixed=fixed)
        if got is None:
            return None
        pred[test] = got[0].predict(b[test], c[test])
    return rel_errors(y, pred)


@dataclass(frozen=True)
class KneeChoice:
    """The linear model and the best knee with their held-out errors, and which was chosen."""

    linear: StepModel
    linear_held_out: RelError | None
    knee: StepModel | None
    knee_held_out: RelError | None
    chosen: StepModel
    held_out_by: str
    reason: str

    def render(self) -> str:
        def err(e: RelError | None) -> str:
            return e.render() if e is not None else "not computable"

        lines = [f"held-out error ({self.held_out_by}): {LINEAR} {err(self.linear_held_out)}"]
        if self.knee is not None:
            lines.append(f"  knee at b={self.knee.knee_batch}: {err(self.knee_held_out)}")
        lines.append(f"  chosen: {self.chosen.form} ({self.reason})")
        return "\n".join(lines)


def _score(e: RelError | None) -> float:
    return np.inf if e is None else e.median + e.p90


def choose_step_model(obs: StepObservations, *, rel: bool, mode: KneeMode = "auto",
                      fixed: Mapping[str, float] | None = None, held_out_by: str = "cell"
                      ) -> tuple[KneeChoice, tuple[str, ...]]:
    """Fit the linear model and (unless `mode='off'`) the knee at each measured batch size
    between the smallest and the largest; keep the knee (`mode='auto'`) when its held-out
    median is at least `KNEE_MARGIN` lower and its p90 not higher, or always (`'on'`).
    Returns the choice and the coefficients pinned to 0 in the chosen fit.

    Raises:
        ValueError: fewer than 3 usable observations, or no fit with `a > 0`."""
    y, b, c, w, groups = _arrays(obs)
    if len(y) < 3:
        raise ValueError(f"need at least 3 usable observations to fit, got {len(y)}")
    lin = fit_step(y, b, c, w, rel=rel, fixed=fixed)
    if lin is None:
        raise ValueError("the data give no positive base step time (decode.a)")
    lin_cv = held_out_error(y, b, c, w, groups, rel=rel, fixed=fixed)
    knees = [int(k) for k in np.unique(b) if b.min() < k < b.max() and float(k).is_integer()
             and len(np.unique(groups[b > k])) >= KNEE_MIN_GROUPS
             and len(np.unique(groups[b <= k])) >= KNEE_MIN_GROUPS]
    if mode == "off" or not knees or (fixed and "beta" in fixed):
        why = "knee not tried" if mode == "off" else "too few cells on each side of a knee"
        return KneeChoice(lin[0], lin_cv, None, None, lin[0], held_out_by, why), lin[1]
    scored = [(held_out_error(y, b, c, w, groups, rel=rel, knee_batch=k, fixed=fixed), k)
              for k in knees]
    best_cv, best_k = min(scored, key=lambda t: _score(t[0]))
    knee = fit_step(y, b, c, w, rel=rel, knee_batch=best_k, fixed=fixed)
    if knee is None or not knee[0].has_knee:
        return (KneeChoice(lin[0], lin_cv, None, best_cv, lin[0], held_out_by,
                           "the knee term fits to 0"), lin[1])
    better = (best_cv is not None and lin_cv is not None
              and best_cv.median <= (1 - KNEE_MARGIN) * lin_cv.median
              and best_cv.median <= lin_cv.median - KNEE_MIN_GAIN
              and best_cv.p90 <= lin_cv.p90)
    if mode == "on" or better:
        why = "forced" if mode == "on" and not better else (
            f"held-out median {lin_cv.median:.1%} -> {best_cv.median:.1%}, "  # type: ignore[union-attr]
            f"p90 {lin_cv.p90:.1%} -> {best_cv.p90:.1%}")  # type: ignore[union-attr]
        return KneeChoice(lin[0], lin_cv, knee[0], best_cv, knee[0], held_out_by, why), knee[1]
    return (KneeChoice(lin[0], lin_cv, knee[0], best_cv, lin[0], held_out_by,
                       "the knee does not lower the held-out error enough"),
            lin[1])


# ------------------------------------------------------------------------------ reports


@dataclass(frozen=True)
class Coverage:
    """The batch sizes and contexts (tokens in all) the observations span."""

    batch_min: int
    batch_max: int
    context_min: float
    context_max: float

    @classmethod
    def of(cls, obs: StepObservations) -> Coverage:
        b, c = np.asarray(obs.batch, np.float64), np.asarray(obs.context, np.float64)
        return cls(int(b.min()), int(b.max()), float(c.min()), float(c.max()))

    def render(self) -> str:
        return (f"b {self.batch_min}..{self.batch_max}, "
                f"C {self.context_min / 1e3:.1f}k..{self.context_max / 1e3:.1f}k tokens")

    def extrapolation(self, p: HardwareProfile, seq_tokens: int = SEQ_TOKENS) -> str:
        """How far `p` is used beyond the measured range: batches up to `max_batch`, contexts up
        to `max_batch` sequences of `seq_tokens` tokens."""
        used_c = p.max_batch * seq_tokens
        parts = [f"measured {self.render()}; used up to b {p.max_batch}, "
                 f"C {used_c / 1e3:.0f}k ({p.max_batch} x {seq_tokens:,}-token samples)"]
        if p.max_batch > self.batch_max:
            parts.append(f"batch extrapolated {p.max_batch / self.batch_max:.1f}x")
        if used_c > self.context_max:
            parts.append(f"context extrapolated {used_c / self.context_max:.1f}x")
        if len(parts) == 1:
            parts.append("no extrapolation")
        return "; ".join(parts)


def cell_table(obs: StepObservations, models: Mapping[str, StepModel]) -> str:
    """Per group (grid cell, else batch size): observations, mean observed step and each
    model's relative error of the mean (weighted by the observations' weights)."""
    y, b, c, w, groups = _arrays(obs)
    if obs.group is None:
        groups = np.array([f"b={int(x)}" for x in b])
    names = list(models)
    head = f"  {'cell':<12} {'n':>4} {'observed':>10}" + "".join(f" {n:>10}" for n in names)
    lines = [head]
    keys = sorted(np.unique(groups), key=lambda g: (b[groups == g].min(), c[groups == g].min()))
    for g in keys:
        m = groups == g
        obs_s = float(np.average(y[m], weights=w[m]))
        errs = []
        for model in models.values():
            pred = float(np.average(model.predict(b[m], c[m]), weights=w[m]))
            errs.append(f" {pred / obs_s - 1:>+10.1%}")
        lines.append(f"  {g:<12} {int(m.sum()):>4} {obs_s * 1e3:>8.2f}ms" + "".join(errs))
    for name, model in models.items():
        lines.append(f"  {name}: over all observations {rel_errors(y, model.predict(b, c)).render()}")
    return "\n".join(lines)


def observation_errors(profile: HardwareProfile, obs: StepObservations) -> tuple[float, float, int]:
    """How well `profile`'s step model explains observed stretches: relative error |pred/obs − 1|
    median and p90, and the number of usable stretches (the "before" of a refit)."""
    y, b, c, _, _ = _arrays(obs)
    if not len(y):
        return float("nan"), float("nan"), 0
    rel = np.abs(step_seconds(*decode_coefficients(profile), b, c) / y - 1.0)
    return float(np.median(rel)), float(np.quantile(rel, 0.9)), int(len(y))


# ----------------------------------------------------------------- a measurement's rows


@dataclass(frozen=True)
class ModelFit:
    """A fitted model: its coefficients by name and its relative error."""

    coef: Mapping[str, float]
    rel_error: RelError

    def to_dict(self) -> dict[str, Any]:
        return {"coef": dict(self.coef), "rel_error": self.rel_error.__dict__}


def fit_models(y: np.ndarray, b: np.ndarray, c: np.ndarray) -> dict[str, ModelFit]:
    """The profile's linear model (`LINEAR`) and alternatives, relative least squares each
    (unconstrained, for the report): a b*C term, a C/b term, a b^2 term, a hinge at b=16, a
    per-batch-size a_b (with one gamma, and with a gamma_b per batch size)."""
    one = np.ones_like(y)
    ub = np.unique(b)
    models: dict[str, dict[str, np.ndarray]] = {
        LINEAR: {"a": one, "beta": b, "gamma": c},
        "+delta*b*C": {"a": one, "beta": b, "gamma": c, "delta": b * c},
        "+eta*C/b": {"a": one, "beta": b, "gamma": c, "eta": c / b},
        "+beta2*b^2": {"a": one, "beta": b, "gamma": c, "beta2": b * b},
        "a+beta16*max(0,b-16)+gamma*C": {"a": one, "beta16": np.maximum(0, b - 16), "gamma": c},
        "a_b per batch size+gamma*C": {**{f"a_b{int(k)}": (b == k) * 1.0 for k in ub},
                                       "gamma": c},
        "a_b+gamma_b*C per batch size": {
            **{f"a_b{int(k)}": (b == k) * 1.0 for k in ub},
            **{f"gamma_b{int(k)}": (b == k) * c for k in ub}},
    }
    out = {}
    for name, cols in models.items():
        coef, pred = lsq(y, cols)
        out[name] = ModelFit(coef, rel_errors(y, pred))
    return out


@dataclass(frozen=True)
class StepFit:
    """The profile's decode coefficients (rounded to 4 significant digits, a > 0, the rest
    >= 0), their relative error over the rows, the coefficients pinned to 0 by their sign, the
    knee choice with its held-out errors, and the alternative models."""

    a: float
    beta: float
    gamma: float
    rel_error: RelError
    n_rows: int
    zeroed: tuple[str, ...] = ()
    alternatives: Mapping[str, ModelFit] = field(default_factory=dict, repr=False)
    knee_batch: int = 0
    beta_above: float = 0.0
    choice: KneeChoice | None = field(default=None, repr=False)
    live_error: RelError | None = None  # over the live stretches fitted with the rows (if any)
    live_stretches: int = 0

    @property
    def model(self) -> StepModel:
        return StepModel(self.a, self.beta, self.gamma, self.knee_batch, self.beta_above)

    def step_s(self, b: float, c: float) -> float:
        return float(self.model.predict(b, c))

    def render(self) -> str:
        """Coefficients and fit error, as `aimo profile measure` and `fit --csv` print them."""
        with_live = f" and {self.live_stretches} live stretches" if self.live_stretches else ""
        lines = [f"fit {self.model.form} over {self.n_rows} rows{with_live}: {self.model.describe()}",
                 f"fit error (relative){' over the rows' if with_live else ''}: "
                 f"{self.rel_error.render()}"]
        if self.live_error is not None:
            lines.append(f"fit error (relative) over the live stretches: {self.live_error.render()}")
        if self.zeroed:
            lines.append(f"  {', '.join(self.zeroed)} came out negative: pinned to 0, refitted")
        if self.choice is not None:
            lines.append(self.choice.render())
        return "\n".join(lines)


def fit_step_model(rows: Sequence[StepRow], *, knee: KneeMode = "auto",
                   live: StepObservations | None = None) -> StepFit:
    """Fit the step model on relative error to a measurement's rows, with the knee where the
    held-out error (leave one grid cell out) says so (`choose_step_model`). With `live` (a live
    run's chunk stretches) the fit is over both (`with_live_stretches`: the grid keeps the long
    contexts and large batches the live run never reached, the live run the batches it ran at),
    and a fold of the stretches is held out like a cell.

    Raises:
        ValueError: fewer than 3 rows, a row with step_s <= 0, or no fit with a > 0."""
    if len(rows) < 3:
        raise ValueError(f"need at least 3 step rows to fit {LINEAR}, got {len(rows)}")
    measured = observations_from_rows(rows)
    if np.any(measured.step_s <= 0):
        raise ValueError("step rows need step_s > 0")
    obs = measured if live is None else with_live_stretches(measured, live)
    held = "one cell left out" if live is None else "one cell or one live question left out"
    choice, zeroed = choose_step_model(obs, rel=True, mode=knee, held_out_by=held)
    m = choice.chosen.rounded()
    y, b, c = measured.step_s, measured.batch, measured.context
    live_error = None if live is None else rel_errors(live.step_s, m.predict(live.batch, live.context))
    return StepFit(m.a, m.beta, m.gamma, rel_errors(y, m.predict(b, c)), len(rows), zeroed,
                   fit_models(y, b, c), m.knee_batch, m.beta_above, choice, live_error,
                   0 if live is None else len(live))


def refit_profile(base: HardwareProfile, fit: StepFit, rows: Sequence[StepRow], *, name: str,
                  sources: Sequence[str], command: str, date: str | None = None,
                  live_source: str | None = None) -> HardwareProfile:
    """`base` with the decode coefficients of `fit` and the calibration points of `rows`; the
    provenance keeps base's source and conditions, and says how and from what it was refitted
    (`sources`: the CSV files; `live_source`: the live run whose stretches were fitted with
    them; `command`: the command that did it)."""
    obs = observations_from_rows(rows)
    cov = Coverage.of(obs)
    before = rel_errors(obs.step_s, StepModel.of(base).predict(obs.batch, obs.context))
    day = date or _dt.date.today().isoformat()
    prov = base.provenance
    method = (f"refitted on {day} with `{command}`: {fit.model.form} by least squares on "
              f"relative error over {fit.n_rows} sub-window rows of {', '.join(sources)} "
              f"({len(set(obs.groups()))} cells, {cov.render()})"
              + (f" and {fit.live_stretches} chunk stretches of the live run {live_source} "
                 f"(weighing as much in all as the rows; held out a question at a time)"
                 if live_source else "")
              + f", coefficients >= 0 rounded "
              f"to 4 digits; the knee term kept only if it lowers the leave-one-cell-out "
              f"error (median by >= {KNEE_MARGIN:.0%} and {KNEE_MIN_GAIN:.1%} points, p90 not "
              f"higher). Before: {prov.method}")
    choice = fit.choice.render().replace("\n ", ";") if fit.choice else ""
    live = (f" Over the live stretches: {fit.live_error.render()}."
            if fit.live_error is not None else "")
    notes = (f"Refit: {choice}. In-sample error "
             f"{fit.rel_error.render()} (the base coefficients on the same rows: "
             f"{before.render()}).{live} Extrapolation: {cov.extrapolation(base)}. "
             f"Earlier notes: {prov.notes}")
    return replace(
        base, name=name, a=fit.a, beta=fit.beta, gamma=fit.gamma, knee_batch=fit.knee_batch,
        beta_above=fit.beta_above, calibration=calibration_points(rows),
        provenance=replace(prov, method=method, notes=notes, date=day),
    )


# ---------------------------------------------------------------- a recording's chunks


@dataclass(frozen=True)
class FitResult:
    """A fitted profile and how well it explains the observations it was fitted on.

    `rmse_s`: token-weighted RMS error of the per-token step time (seconds);
    `median_rel_error`/`p90_rel_error`: of |predicted/observed - 1| over the stretches;
    `fixed`: decode coefficients not identifiable from the data, taken from the base (or 0);
    `choice`: the linear model and the knee with their held-out errors."""

    profile: HardwareProfile
    rmse_s: float
    median_rel_error: float
    p90_rel_error: float
    n_points: int
    fixed: tuple[str, ...] = ()
    choice: KneeChoice | None = None
    observations: StepObservations | None = field(default=None, repr=False, compare=False)

    def render(self) -> str:
        """A few lines for a terminal."""
        p = self.profile
        lines = [
            f"profile {p.name}: {StepModel.of(p).describe()}",
            f"  {self.n_points} stretches; rmse {self.rmse_s * 1e3:.3f} ms/token; "
            f"relative error median {self.median_rel_error:.1%}, p90 {self.p90_rel_error:.1%}",
        ]
        if self.fixed:
            lines.append("  not identifiable from the data, kept from the base: "
                         + ", ".join(self.fixed))
        if self.choice is not None:
            lines.append("  " + self.choice.render().replace("\n", "\n  "))
        return "\n".join(lines)


def fit_profile(obs: StepObservations | pd.DataFrame, *, name: str,
                base: HardwareProfile | None = None, samples: pd.DataFrame | None = None,
                window_tokens: int = 16, source: str = "recording",
                date: str | None = None, knee: KneeMode = "auto") -> FitResult:
    """Least-squares fit of the step model to a recording (chunks or observations): absolute
    error of the per-token step time, weighted by tokens; the knee by held-out error over 5
    interleaved folds of the stretches (`choose_step_model`).

    Args:
        obs: `StepObservations`, or a chunks DataFrame (see `observations_from_chunks`).
        name: name of the new profile.
        base: supplies everything the chunks cannot tell (prefill, start-up, max_batch,
            code_overlap, overhead) and any coefficient the data cannot identify. Without it:
            prefill 0, start-up 0, max_batch the largest batch seen, "parallel".
        samples, window_tokens: passed to `observations_from_chunks` for a DataFrame.
        source: what was fitted, for the provenance; `date` defaults to today.
        knee: "auto" (where the held-out error says so), "off" or "on".

    Raises:
        InputError: unusable input, or the data give no positive base step time.
    """
    if isinstance(obs, pd.DataFrame):
        obs = observations_from_chunks(obs, samples, window_tokens=window_tokens, source=source)
    y, b, c, w, _ = _arrays(obs)
    if len(y) < 3:
        raise InputError(source, "chunks", f"need at least 3 usable stretches to fit, got {len(y)}")
    fixed: dict[str, float] = {}
    if np.ptp(b) == 0:
        fixed["beta"] = base.beta if base else 0.0
    if np.ptp(c) == 0:
        fixed["gamma"] = base.gamma if base else 0.0
    try:
        choice, _ = choose_step_model(obs, rel=False, mode=knee, fixed=fixed,
                                      held_out_by="5 interleaved folds of stretches")
    except ValueError:
        raise InputError(source, "chunks", "the data give no positive base step time (decode.a); "
                                           "check the timestamps") from None
    m = choice.chosen
    pred = m.predict(b, c)
    rmse = float(np.sqrt(np.sum(w * (pred - y) ** 2) / np.sum(w)))
    err = rel_errors(y, pred)
    med, p90 = err.median, err.p90

    day = date or _dt.date.today().isoformat()
    method = (f"least squares over {len(y)} chunk stretches (~{int(np.median(w))} tokens each): "
              "per-token step time dt/dtokens vs active sequences b and total context C at the "
              f"stretch midpoint; non-negative coefficients; {m.form}")
    notes = (f"fit error: rmse {rmse * 1e3:.3f} ms/token, relative median {med:.1%}, "
             f"p90 {p90:.1%}; batch {int(b.min())}..{int(b.max())}, "
             f"context {int(c.min())}..{int(c.max())} tokens. "
             + choice.render().replace("\n ", ";") + ".")
    if fixed:
        origin = f"base {base.name}" if base else "zero"
        notes += f" Not identifiable, kept from {origin}: {', '.join(fixed)}."
    decode: dict[str, Any] = dict(a=m.a, beta=m.beta, gamma=m.gamma, knee_batch=m.knee_batch,
                  beta_above=m.beta_above)
    if base is not None:
        notes += (" Prefill, start-up, max_batch, code_overlap and overhead from base profile "
                  f"{base.name}.")
        profile = replace(base, name=name, **decode, calibration=(),
                          provenance=Provenance(source, day, method, notes),
                          description=f"fitted from {source} (base {base.name})")
    else:
        notes += " Prefill and start-up not measured here (0); max_batch = largest batch seen."
        profile = HardwareProfile(
            name=name, **decode, prefill_s_per_token=0.0, startup_s=0.0,
            max_batch=max(1, int(b.max())), provenance=Provenance(source, day, method, notes),
            description=f"fitted from {source}",
        )
    return FitResult(profile=profile, rmse_s=rmse, median_rel_error=med, p90_rel_error=p90,
                     n_points=int(len(y)), fixed=tuple(fixed), choice=choice, observations=obs)


# ------------------------------------------------------------ per-question overhead (live)


@dataclass(frozen=True)
class QuestionOverhead:
    """Seconds a live question took after its last sample ended (vote, bookkeeping, commit: what
    no decode step holds), median and quartiles over `questions` questions."""

    seconds: float
    p25: float
    p75: float
    questions: int

    def render(self) -> str:
        return (f"question overhead {self.seconds * 1e3:.1f} ms (median of last sample end -> "
                f"question end over {self.questions} questions without code runs, the first "
                f"left out; quartiles {self.p25 * 1e3:.1f}-{self.p75 * 1e3:.1f} ms)")


def question_overhead(ends: pd.DataFrame, *, min_questions: int = 5) -> QuestionOverhead | None:
    """The per-question overhead (`question_overhead_s`) from a live run's question ends
    (`core.store.chunk_times.load_question_ends`): wall_s - last_end_s, median over questions
    without code runs (their tail is code execution, which the simulator models from the
    recorded run times) after the first (lmdeploy's first-batch stall). None with fewer than
    `min_questions` such questions."""
    use = ends.iloc[1:]
    use = use[(use["n_code"] == 0) & use["last_end_s"].notna() & use["wall_s"].notna()]
    tail = (use["wall_s"] - use["last_end_s"]).to_numpy(np.float64)
    tail = tail[np.isfinite(tail) & (tail >= 0)]
    if len(tail) < min_questions:
        return None
    return QuestionOverhead(float(np.median(tail)), float(np.quantile(tail, 0.25)),
                            float(np.quantile(tail, 0.75)), int(len(tail)))


# ------------------------------------------------------------ live loop's host time per step


@dataclass(frozen=True)
class HostPerStep:
    """The live control loop's host seconds per decode step (`decode.host_per_step`): what a
    live step costs above the engine's measured step `step_seconds(*engine_coefficients(base),
    b, C)`, the token-weighted median of that excess over the run's chunk stretches (a median:
    stretches that span a code run or a stall of the loop are far off). `by_batch` gives the
    same median per batch band, the check of the form: a constant per step (the loop's per-chunk
    work, chunks coming at about the same rate per step whatever the batch) against one that
    grows with `b` (per token)."""

    seconds: float
    stretches: int
    by_batch: tuple[tuple[str, int, float], ...]  # (band, stretches, median excess s)

    def render(self) -> str:
        bands = ", ".join(f"b {band}: {x * 1e3:.2f} ms ({n})" for band, n, x in self.by_batch)
        return (f"host per step {self.seconds * 1e3:.2f} ms (token-weighted median of live step - "
                f"engine step over {self.stretches} stretches; by batch: {bands})")


def _weighted_median(x: np.ndarray, w: np.ndarray) -> float:
    order = np.argsort(x, kind="stable")
    cw = np.cumsum(w[order])
    return float(x[order][int(np.searchsorted(cw, cw[-1] / 2.0))])


HOST_BANDS = ((1, 3), (4, 9), (10, 15), (16, 32), (33, 1 << 30))


def host_per_step(obs: StepObservations, base: HardwareProfile, *,
                  min_stretches: int = 20) -> HostPerStep | None:
    """Fit `HostPerStep` to live-run observations against the engine step of `base` (its
    measured a, beta, gamma and knee; any host term of `base` is left out). None with fewer than
    `min_stretches` usable stretches; the value is clipped at 0."""
    y, b, c, w, _ = _arrays(obs)
    if len(y) < min_stretches:
        return None
    excess = y - np.asarray(step_seconds(*engine_coefficients(base), b, c), np.float64)
    bands = []
    for lo, hi in HOST_BANDS:
        m = (b >= lo) & (b <= hi)
        if m.sum() >= min_stretches:
            label = f"{lo}-{hi}" if hi < 1 << 30 else f">={lo}"
            bands.append((label, int(m.sum()), _weighted_median(excess[m], w[m])))
    return HostPerStep(max(0.0, _weighted_median(excess, w)), int(len(y)), tuple(bands))


# ------------------------------------------------------------ per-request admission (live)


@dataclass(frozen=True)
class PrefillPerRequest:
    """The live engine's seconds per submitted request before decoding starts
    (`prefill_s_per_request`), beyond the measured per-token prefill: per question, the mean
    first-token time of its samples less what the profile charges for it (the prompts' prefill
    and one step), over the number of requests; median and quartiles over `questions`."""

    seconds: float
    p25: float
    p75: float
    questions: int
    first_token_s: float  # median over questions of the mean first-token time
    charged_s: float  # median over questions of what the base charges for it

    def render(self) -> str:
        return (f"prefill per request {self.seconds * 1e3:.2f} ms (mean first token "
                f"{self.first_token_s * 1e3:.1f} ms live vs {self.charged_s * 1e3:.1f} ms charged, "
                f"median over {self.questions} questions, the first left out; quartiles "
                f"{self.p25 * 1e3:.2f}-{self.p75 * 1e3:.2f} ms per request)")


def prefill_per_request(chunks: pd.DataFrame, base: HardwareProfile, *, first: str | None,
                        min_questions: int = 5) -> PrefillPerRequest | None:
    """Fit `PrefillPerRequest` from a live run's timed chunks (`read_chunks`: problem_id,
    sample_idx, t_s from the question's start, prompt_tokens), against `base`'s per-token
    prefill and its step (engine and host) for the whole batch. `first`, the run's first served
    question (the engine's first-batch stall, which profiles count in `startup_s`), is left out;
    None with fewer than `min_questions` others. Clipped at 0."""
    df = chunks[chunks["t_s"].notna() & (chunks["problem_id"] != first)]
    if df.empty:
        return None
    order = list(dict.fromkeys(df["problem_id"]))
    starts = df.groupby(["problem_id", "sample_idx"], sort=False).agg(
        t=("t_s", "min"), prompt=("prompt_tokens", "first")).reset_index()
    per, live, charged = [], [], []
    for pid in order:
        q = starts[starts["problem_id"] == pid]
        n, prompts = len(q), float(q["prompt"].sum())
        cost = base.prefill_s_per_token * prompts + float(
            step_seconds(*decode_coefficients(base), n, prompts))
        mean = float(q["t"].mean())
        per.append((mean - cost) / n)
        live.append(mean)
        charged.append(cost)
    if len(per) < min_questions:
        return None
    arr = np.asarray(per, np.float64)
    return PrefillPerRequest(max(0.0, float(np.median(arr))), float(np.quantile(arr, 0.25)),
                             float(np.quantile(arr, 0.75)), len(per), float(np.median(live)),
                             float(np.median(charged)))
