"""Weighted least squares, the one solver behind every fit of the time model.

`lsq` solves min sum_i w_i * r_i^2 over named columns, with r_i the residual `pred_i - y_i`,
relative to `y_i` when `rel` (step times spanning 1-30 ms weigh alike), columns scaled to unit
size for the solve; `nonneg_lsq` adds sign constraints exactly (every subset of the constrained
columns pinned to zero is tried; fine for the few columns a step model has). Used by the step
model fits (`core.hardware.fit`) and the published-figure calibration (`core.hardware.calibrate`).
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class RelError:
    """|predicted / observed - 1| over the rows: median, 90th percentile, maximum."""

    median: float
    p90: float
    max: float

    def render(self) -> str:
        return f"median {self.median:.1%}, p90 {self.p90:.1%}, max {self.max:.1%}"


def rel_errors(y: np.ndarray, pred: np.ndarray) -> RelError:
    """`RelError` of a prediction (NaN figures for no rows)."""
    e = np.abs(np.asarray(pred, np.float64) / np.asarray(y, np.float64) - 1)
    if e.size == 0:
        return RelError(float("nan"), float("nan"), float("nan"))
    return RelError(float(np.median(e)), float(np.quantile(e, 0.9)), float(e.max()))


def _row_scale(y: np.ndarray, rel: bool, weight: np.ndarray | None) -> np.ndarray:
    s = 1.0 / y if rel else np.ones_like(y)
    return s if weight is None else s * np.sqrt(np.asarray(weight, np.float64))


def lsq(y: np.ndarray, cols: Mapping[str, np.ndarray], *, rel: bool = True,
        weight: np.ndarray | None = None, offset: np.ndarray | float = 0.0
        ) -> tuple[dict[str, float], np.ndarray]:
    """Least squares of `y - offset` on the columns (rows weighted by `weight`, residuals
    relative to `y` when `rel`); returns the coefficients by column name and the prediction
    (offset included)."""
    y = np.asarray(y, np.float64)
    names = list(cols)
    X = np.column_stack([np.asarray(cols[k], np.float64) * np.ones_like(y) for k in names])
    scale = np.max(np.abs(X), axis=0)
    scale[scale == 0] = 1.0
    rs = _row_scale(y, rel, weight)
    target = y - offset
    sol, *_ = np.linalg.lstsq(X / scale * rs[:, None], target * rs, rcond=None)
    sol = sol / scale
    return dict(zip(names, map(float, sol))), offset + X @ sol


def nonneg_lsq(y: np.ndarray, cols: Mapping[str, np.ndarray], *, nonneg: Sequence[str],
               positive: Sequence[str] = (), rel: bool = True, weight: np.ndarray | None = None,
               offset: np.ndarray | float = 0.0
               ) -> tuple[dict[str, float], tuple[str, ...]] | None:
    """`lsq` with the `nonneg` columns >= 0 and the `positive` ones > 0, exactly: the best
    (least weighted squared residual) of the fits with every subset of `nonneg` pinned to 0.
    Returns the coefficients (pinned ones 0.0) and the pinned names, or None when no subset
    gives a feasible fit."""
    y = np.asarray(y, np.float64)
    rs = _row_scale(y, rel, weight)
    optional = [k for k in cols if k in nonneg]
    best: tuple[float, dict[str, float], tuple[str, ...]] | None = None
    for r in range(len(optional) + 1):
        for pinned in itertools.combinations(optional, r):
            free = {k: v for k, v in cols.items() if k not in pinned}
            if not free:
                continue
            coef, pred = lsq(y, free, rel=rel, weight=weight, offset=offset)
            if any(coef[k] < 0 for k in free if k in nonneg):
                continue
            if any(coef.get(k, 0.0) <= 0 for k in positive):
                continue
            sse = float(np.sum(((pred - y) * rs) ** 2))
            if best is None or sse < best[0] - 1e-15 * abs(best[0]):
                best = (sse, {k: coef.get(k, 0.0) for k in cols}, tuple(pinned))
    return None if best is None else (best[1], best[2])
