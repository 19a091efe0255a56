"""Closed-form time advance under a hardware profile (pure functions, plain arithmetic).

Between two events of a simulation the batch is constant: with `b` active sequences holding
`c0` context tokens in all at the first step, step k (0-based) costs
`a + beta*b + gamma*(c0 + b*k)` seconds, so n steps take an arithmetic series. The scalar
functions use only `+ - * /`, `math.sqrt` and `math.floor` so that a compiled fast path (numba)
can copy them line by line; the `*_array` versions broadcast over numpy arrays.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Sequence

import numpy as np

if TYPE_CHECKING:
    from core.hardware.profile import CalibrationPoint, HardwareProfile


def steps_duration(p: HardwareProfile, b: int, c0: float, n: int) -> float:
    """Seconds that `n` decode steps take with `b` active sequences and `c0` context tokens
    at the first step (each step adds `b` tokens of context)."""
    if n <= 0:
        return 0.0
    first = p.a + p.beta * b + p.gamma * c0
    return n * first + p.gamma * b * (n * (n - 1) / 2.0)


def steps_within(p: HardwareProfile, b: int, c0: float, t: float) -> int:
    """Most whole steps that finish within `t` seconds: the n with
    `steps_duration(n) <= t < steps_duration(n + 1)` (exact in floating point)."""
    if not t >= 0.0:  # also catches NaN
        return 0
    if t == math.inf:
        raise ValueError("steps_within: t must be finite")
    first = p.a + p.beta * b + p.gamma * c0
    g = p.gamma * b
    # n*first + g*n*(n-1)/2 = t  ->  (g/2) n^2 + (first - g/2) n - t = 0, stable root form
    h = first - g / 2.0
    disc = h * h + 2.0 * g * t
    den = h + math.sqrt(disc)
    n = int(math.floor(2.0 * t / den)) if den > 0.0 else 0
    if n < 0:
        n = 0
    while steps_duration(p, b, c0, n + 1) <= t:
        n += 1
    while n > 0 and steps_duration(p, b, c0, n) > t:
        n -= 1
    return n


def prefill_duration(p: HardwareProfile, prompt_tokens_total: int) -> float:
    """Seconds to prefill `prompt_tokens_total` prompt tokens (summed over the requests)."""
    if prompt_tokens_total <= 0:
        return 0.0
    return p.prefill_s_per_token * prompt_tokens_total


def steps_duration_array(p: HardwareProfile, b: np.ndarray | int, c0: np.ndarray | float,
                         n: np.ndarray | int) -> np.ndarray:
    """`steps_duration` broadcast over arrays (n <= 0 gives 0)."""
    b = np.asarray(b, dtype=np.float64)
    c0 = np.asarray(c0, dtype=np.float64)
    n = np.maximum(np.asarray(n, dtype=np.float64), 0.0)
    first = p.a + p.beta * b + p.gamma * c0
    return n * first + p.gamma * b * (n * (n - 1.0) / 2.0)


def steps_within_array(p: HardwareProfile, b: np.ndarray | int, c0: np.ndarray | float,
                       t: np.ndarray | float) -> np.ndarray:
    """`steps_within` broadcast over arrays (int64), with the same exact off-by-one fix."""
    b_, c0_, t_ = np.broadcast_arrays(np.asarray(b, dtype=np.float64),
                                      np.asarray(c0, dtype=np.float64),
                                      np.asarray(t, dtype=np.float64))
    if not np.all(np.isfinite(t_[~np.isnan(t_)])):
        raise ValueError("steps_within_array: t must be finite")
    tt = np.where(t_ >= 0.0, t_, 0.0)
    first = p.a + p.beta * b_ + p.gamma * c0_
    g = p.gamma * b_
    h = first - g / 2.0
    den = h + np.sqrt(h * h + 2.0 * g * tt)
    with np.errstate(divide="ignore", invalid="ignore"):
        n = np.where(den > 0.0, np.floor(2.0 * tt / den), 0.0)
    n = np.maximum(n, 0.0)
    for _ in range(64):  # the root is off by at most a step or two; loop until exact
        up = steps_duration_array(p, b_, c0_, n + 1.0) <= tt
        down = (n > 0) & (steps_duration_array(p, b_, c0_, n) > tt)
        if not (up.any() or down.any()):
            break
        n = n + up - down
    return n.astype(np.int64)


def step_times(p: HardwareProfile, b: int, c0: float, n: int) -> np.ndarray:
    """End time of each of `n` steps (relative to the first step's start), shape (n,)."""
    k = np.arange(1, n + 1, dtype=np.float64)
    return steps_duration_array(p, b, c0, k)


def pace_batch(p: HardwareProfile, prompt_tokens: Sequence[int], n_tokens: Sequence[int]
               ) -> list[np.ndarray]:
    """Reference pacing of fixed-length requests submitted together: for request i, the time
    (seconds from submission) at which each of its `n_tokens[i]` tokens is produced.

    Semantics (the simulator's reference): the first `max_batch` requests are prefilled together,
    then decode as one batch; when a request finishes, the next queued one takes its slot after
    its own prefill, which stalls the batch. Nothing stops early; start-up and per-question
    overhead are not included.
    """
    n_req = len(n_tokens)
    out = [np.zeros(0, np.float64) for _ in range(n_req)]
    queue = [i for i in range(n_req)]
    active: list[int] = []
    done_tokens = [0] * n_req
    t = 0.0
    admit = [queue.pop(0) for _ in range(min(p.max_batch, len(queue)))]
    t += prefill_duration(p, sum(int(prompt_tokens[i]) for i in admit))
    active.extend(i for i in admit if n_tokens[i] > 0)
    parts: list[list[np.ndarray]] = [[] for _ in range(n_req)]
    while active or queue:
        if not active:
            i = queue.pop(0)
            t += prefill_duration(p, int(prompt_tokens[i]))
            if n_tokens[i] > 0:
                active.append(i)
            continue
        b = len(active)
        c0 = float(sum(int(prompt_tokens[i]) + done_tokens[i] for i in active))
        m = min(int(n_tokens[i]) - done_tokens[i] for i in active)
        times = t + step_times(p, b, c0, m)
        for i in active:
            parts[i].append(times)
            done_tokens[i] += m
        t = float(times[-1])
        finished = [i for i in active if done_tokens[i] >= n_tokens[i]]
        active = [i for i in active if done_tokens[i] < n_tokens[i]]
        for _ in finished:
            if queue:
                j = queue.pop(0)
                t += prefill_duration(p, int(prompt_tokens[j]))
                if n_tokens[j] > 0:
                    active.append(j)
    for i in range(n_req):
        if parts[i]:
            out[i] = np.concatenate(parts[i])
    return out


def predict_point(p: HardwareProfile, pt: CalibrationPoint) -> float:
    """The model's value for a calibration point, in the point's units (seconds or tok/s)."""
    b = pt.batch
    if pt.kind == "elapsed":
        c0 = float(b * pt.prompt_tokens)
        return prefill_duration(p, b * pt.prompt_tokens) + steps_duration(p, b, c0, pt.n_tokens)
    if pt.kind == "rate":
        return 1.0 / p.step_s(b, float(b * (pt.prompt_tokens + pt.n_tokens)))
    raise ValueError(f"unknown calibration point kind {pt.kind!r}")
