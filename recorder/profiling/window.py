"""The decode window of one measured cell: step times over the stretch where every sequence
decodes, cut into sub-windows with the context at each midpoint."""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class WindowRow:
    """One sub-window: `step_s` seconds per decode step over `steps` steps (mean over the
    sequences) while the batch held `context_total` tokens in all (at the midpoint)."""

    step_s: float
    context_total: float
    steps: float
    t_lo: float
    t_hi: float


@dataclass(frozen=True)
class Window:
    """The stretch in which every sequence of a cell decodes, and its sub-window rows.

    `steps`: decode steps in it (mean over sequences); `t0`/`t1`: its ends (None when the chunks
    give none); `step_s_all`: seconds per step over the whole window (None when too short)."""

    rows: tuple[WindowRow, ...] = ()
    steps: float = 0.0
    t0: float | None = None
    t1: float | None = None
    step_s_all: float | None = None


def window_rows(per: Mapping[int, Sequence[tuple[float, int]]], prompts: Mapping[int, int],
                min_steps: int = 24, max_rows: int = 4, skip_steps: int = 2) -> Window:
    """Step times over the stretch where every sequence decodes.

    `per[s]` = [(t, cumulative tokens)] of sample s (chunk times, increasing). The window starts
    `skip_steps` tokens after the last sample's first chunk and ends at the first sample's last
    chunk; it is cut into at most `max_rows` sub-windows of >= `min_steps` steps (none when the
    window holds fewer than `min_steps / 2`). Each row: step_s = dt / mean tokens over the
    samples, context_total = sum over samples of prompt + tokens at the sub-window's middle
    (tokens interpolated linearly between chunks)."""
    samples = sorted(per)
    if not samples or not all(per[s] for s in samples):
        return Window()
    ts = {s: np.array([c[0] for c in per[s]], dtype=float) for s in samples}
    ns = {s: np.array([c[1] for c in per[s]], dtype=float) for s in samples}
    last_start = max(samples, key=lambda s: ts[s][0])
    n_first = ns[last_start][0]
    k = int(np.searchsorted(ns[last_start], n_first + skip_steps))
    if k >= len(ts[last_start]):
        return Window()
    t0 = float(ts[last_start][k])
    t1 = float(min(ts[s][-1] for s in samples))

    def n_at(s: int, t: float) -> float:
        return float(np.interp(t, ts[s], ns[s]))

    steps = float(np.mean([n_at(s, t1) - n_at(s, t0) for s in samples]))
    if t1 <= t0 or steps < min_steps / 2:
        return Window(steps=steps, t0=t0, t1=t1)
    n_rows = max(1, min(max_rows, int(steps // min_steps)))
    edges = np.linspace(t0, t1, n_rows + 1)
    rows = []
    for lo, hi in itertools.pairwise(edges):
        dn = float(np.mean([n_at(s, hi) - n_at(s, lo) for s in samples]))
        mid = 0.5 * (lo + hi)
        ctx = sum(prompts[s] + n_at(s, mid) for s in samples)
        rows.append(WindowRow(step_s=float(hi - lo) / dn, context_total=float(ctx), steps=dn,
                              t_lo=float(lo), t_hi=float(hi)))
    return Window(rows=tuple(rows), steps=steps, t0=t0, t1=t1, step_s_all=(t1 - t0) / steps)

