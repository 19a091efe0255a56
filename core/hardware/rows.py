"""Measured step rows: the table a step-latency measurement writes (one row per decode
sub-window: seconds per step at a batch and context), its CSV form, and the calibration points
a profile carries from it.

Plain data and file I/O only; measuring is `recorder.profiling`, fitting `core.hardware.fit`.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from aimo.core.hardware.profile import CalibrationPoint

CSV_COLUMNS = ("quant_policy", "batch", "context_total", "step_s", "prompt_tokens", "steps", "gpu")


@dataclass(frozen=True)
class StepRow:
    """One CSV row: a sub-window's seconds per step `step_s` with `batch` sequences holding
    `context_total` tokens, in a cell of `prompt_tokens` per sequence, over `steps` steps."""

    quant_policy: int
    batch: int
    context_total: float
    step_s: float
    prompt_tokens: int
    steps: float
    gpu: str

    @property
    def cell(self) -> tuple[int, int]:
        """(batch, prompt tokens): the grid cell the row was measured in."""
        return self.batch, self.prompt_tokens


def csv_line(row: StepRow) -> list[Any]:
    """A row as written to CSV (`CSV_COLUMNS`; context rounded, step in s to 6 decimals)."""
    return [row.quant_policy, row.batch, round(row.context_total), f"{row.step_s:.6f}",
            row.prompt_tokens, round(row.steps, 1), row.gpu]


def write_rows_csv(path: str | Path, rows: Sequence[StepRow], *, append: bool = False) -> Path:
    """Write (or append to) a step CSV with header `CSV_COLUMNS`."""
    path = Path(path)
    new = not (append and path.exists() and path.stat().st_size > 0)
    with path.open("a" if append else "w", newline="") as fh:
        w = csv.writer(fh)
        if new:
            w.writerow(CSV_COLUMNS)
        w.writerows(csv_line(r) for r in rows)
    return path


def read_rows_csv(path: str | Path, quant_policy: int | None = None) -> list[StepRow]:
    """Rows of a step CSV (those of `quant_policy` only, when given)."""
    out = []
    with Path(path).open(newline="") as fh:
        for r in csv.DictReader(fh):
            row = StepRow(int(r["quant_policy"]), int(r["batch"]), float(r["context_total"]),
                          float(r["step_s"]), int(r["prompt_tokens"]), float(r["steps"]),
                          r.get("gpu", "") or "")
            if quant_policy is None or row.quant_policy == quant_policy:
                out.append(row)
    return out


def rows_arrays(rows: Sequence[StepRow]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(step_s, batch, context_total) arrays of the rows."""
    y = np.array([r.step_s for r in rows], dtype=float)
    b = np.array([r.batch for r in rows], dtype=float)
    c = np.array([r.context_total for r in rows], dtype=float)
    return y, b, c


def calibration_points(rows: Sequence[StepRow]) -> tuple[CalibrationPoint, ...]:
    """One `rate` calibration point per cell (batch, prompt tokens): tokens per second per
    sequence = 1 / mean step over its rows, at the mean generated tokens of its rows."""
    cells: dict[tuple[int, int], list[StepRow]] = {}
    for r in rows:
        cells.setdefault(r.cell, []).append(r)
    points = []
    for (bb, pt), rs in cells.items():
        step = float(np.mean([r.step_s for r in rs]))
        ctx = float(np.mean([r.context_total for r in rs]))
        points.append(CalibrationPoint(
            label=f"b={bb}, prompt {pt}: step {step * 1e3:.2f} ms (measured)", kind="rate",
            batch=bb, prompt_tokens=pt, n_tokens=max(1, round(ctx / bb - pt)),
            observed=round(1.0 / step, 3), weight=1.0))
    return tuple(points)
