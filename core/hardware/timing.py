"""Closed-form time advance under a hardware profile (pure functions, plain arithmetic).

The one definition of a decode step's time (`step_seconds`): with `b` active sequences holding
`c` context tokens in all, a step takes `a + beta*b + beta_above*max(0, b - knee_batch) +
gamma*c` seconds (`beta_above = 0`, the default of every profile without a knee, is the linear
model `a + beta*b + gamma*c`, to the bit). Between two events of a simulation the batch is
constant, so step k (0-based) from `c0` context tokens costs `step_seconds(b, c0) + gamma*b*k`
and n steps take an arithmetic series (`steps_seconds`), inverted exactly by `steps_fitting`.

The three clocks call these scalar functions: the reference replay (`simulator.replay.question`)
and the replay engine (`solver.engines.replay`) through `steps_duration` / `steps_within` (which
take a profile), and the numba fast path (`simulator.fast.kernel`) by compiling them
(`numba.njit(step_seconds)`; core itself never imports numba). They use only `+ - * /`, `abs`,
`math.sqrt` and `math.floor` and call each other through module globals, so numba can compile
them unchanged; `step_seconds` also broadcasts over numpy arrays (the `*_array` versions and the
fit use that). A batch decoding on while the loop does not look (a question stop's busy time and
abort latency) is `decode_on` for both Python clocks; the kernel's bit-set loops do the same
arithmetic (a test holds them to it, bit for bit).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

if TYPE_CHECKING:
    from aimo.core.hardware.profile import CalibrationPoint, HardwareProfile


def step_seconds(a: Any, beta: Any, gamma: Any, knee_batch: Any, beta_above: Any, b: Any,
                 c: Any) -> Any:
    """Seconds of one decode step with `b` active sequences holding `c` context tokens in all.

    `a`: per-step base; `beta`: per sequence; `beta_above`: extra per sequence above
    `knee_batch` (0 = no knee); `gamma`: per context token. Scalars or numpy arrays."""
    over = b - knee_batch
    return a + beta * b + beta_above * (0.5 * (over + abs(over))) + gamma * c


def steps_seconds(a: float, beta: float, gamma: float, knee_batch: float, beta_above: float,
                  b: int, c0: float, n: int) -> float:
    """Seconds that `n` decode steps take with `b` active sequences and `c0` context tokens at
    the first step (each step adds `b` tokens of context)."""
    if n <= 0:
        return 0.0
    first = step_seconds(a, beta, gamma, knee_batch, beta_above, b, c0)
    return n * first + gamma * b * (n * (n - 1) / 2.0)


def steps_fitting(a: float, beta: float, gamma: float, knee_batch: float, beta_above: float,
                  b: int, c0: float, t: float) -> int:
    """Most whole steps that finish within `t` seconds (t finite): the n with
    `steps_seconds(n) <= t < steps_seconds(n + 1)`, exact in floating point."""
    if not t >= 0.0:  # also catches NaN
        return 0
    first = step_seconds(a, beta, gamma, knee_batch, beta_above, b, c0)
    g = gamma * b
    # n*first + g*n*(n-1)/2 = t  ->  (g/2) n^2 + (first - g/2) n - t = 0, stable root form
    h = first - g / 2.0
    disc = h * h + 2.0 * g * t
    den = h + math.sqrt(disc)
    n = 0
    if den > 0.0:
        n = int(math.floor(2.0 * t / den))
    if n < 0:
        n = 0
    while steps_seconds(a, beta, gamma, knee_batch, beta_above, b, c0, n + 1) <= t:
        n += 1
    while n > 0 and steps_seconds(a, beta, gamma, knee_batch, beta_above, b, c0, n) > t:
        n -= 1
    return n


def engine_coefficients(p: Any) -> tuple[float, float, float, float, float]:
    """`(a, beta, gamma, knee_batch, beta_above)` of the engine's own step, as measured
    (`aimo profile measure`) and as its calibration points are predicted."""
    return (float(p.a), float(p.beta), float(p.gamma), float(p.knee_batch),
            float(p.beta_above))


def decode_coefficients(p: Any) -> tuple[float, float, float, float, float]:
    """The coefficients the three clocks decode with, the leading arguments of the scalar
    functions above (and the fast path's profile array): the engine's step plus the live
    control loop's host seconds per step (`p.host_per_step`, 0 by default; the loop's work on
    the streamed chunks, which with the engine's self-adjusting chunk size come at about the
    same rate per step whatever the batch), added to `a`."""
    a, beta, gamma, knee, above = engine_coefficients(p)
    return (a + float(p.host_per_step), beta, gamma, knee, above)


def steps_duration(p: HardwareProfile, b: int, c0: float, n: int) -> float:
    """`steps_seconds` under profile `p`."""
    return steps_seconds(*decode_coefficients(p), b, c0, n)


def steps_within(p: HardwareProfile, b: int, c0: float, t: float) -> int:
    """`steps_fitting` under profile `p` (ValueError for an infinite `t`)."""
    if t == math.inf:
        raise ValueError("steps_within: t must be finite")
    return steps_fitting(*decode_coefficients(p), b, c0, t)


def prefill_seconds(per_token: float, per_request: float, tokens: int, requests: int) -> float:
    """Seconds to admit `requests` requests holding `tokens` prompt tokens in all: the prefill
    per token plus the engine's admission per request (`prefill_s_per_request`, 0 by default,
    which leaves the per-token prefill to the bit). The numba fast path compiles it."""
    t = per_token * tokens if tokens > 0 else 0.0
    return t + per_request * requests


def prefill_duration(p: HardwareProfile, prompt_tokens_total: int, requests: int = 0) -> float:
    """Seconds to prefill `prompt_tokens_total` prompt tokens (summed over the requests) of
    `requests` requests admitted together (`prefill_seconds` under profile `p`)."""
    return prefill_seconds(p.prefill_s_per_token, p.prefill_s_per_request, prompt_tokens_total,
                           requests)


def decode_on(p: HardwareProfile, prompts: Sequence[int], made: Sequence[int],
              caps: Sequence[int], now: float, *, until: float | None = None,
              steps: int = 0) -> tuple[list[int], float]:
    """A batch decodes on without the loop looking: either the whole steps that end by `until`
    (a question stop decided while an inline code run kept the loop busy) or `steps` steps (the
    abort latency), each sample up to its cap, the batch shrinking as samples reach theirs.

    One definition for the reference replay (`simulator.replay.question`) and the replay engine
    (`solver.engines.replay`), the same arithmetic as the fast path's `_decode_until` /
    `_decode_steps`. Samples are (prompt tokens, tokens made, cap); returns each sample's tokens
    made after it and the clock (`max(now, until)` with `until`)."""
    got = [int(m) for m in made]
    left = steps
    while until is not None or left > 0:
        act = [i for i, m in enumerate(got) if m < caps[i]]
        if not act:
            break
        b = len(act)
        ctx = float(sum(prompts[i] + got[i] for i in act))
        n = min(caps[i] - got[i] for i in act)
        k = min(steps_within(p, b, ctx, until - now), n) if until is not None else min(left, n)
        now += steps_duration(p, b, ctx, k)
        for i in act:
            got[i] += k
        if until is not None:
            if k < n:
                break
        else:
            left -= k
    return got, (now if until is None else max(now, until))


def steps_duration_array(p: HardwareProfile, b: np.ndarray | int, c0: np.ndarray | float,
                         n: np.ndarray | int) -> np.ndarray:
    """`steps_duration` broadcast over arrays (n <= 0 gives 0)."""
    b = np.asarray(b, dtype=np.float64)
    c0 = np.asarray(c0, dtype=np.float64)
    n = np.maximum(np.asarray(n, dtype=np.float64), 0.0)
    first = step_seconds(*decode_coefficients(p), b, c0)
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
    first = step_seconds(*decode_coefficients(p), b_, c0_)
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
    t += prefill_duration(p, sum(int(prompt_tokens[i]) for i in admit), len(admit))
    active.extend(i for i in admit if n_tokens[i] > 0)
    parts: list[list[np.ndarray]] = [[] for _ in range(n_req)]
    while active or queue:
        if not active:
            i = queue.pop(0)
            t += prefill_duration(p, int(prompt_tokens[i]), 1)
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
                t += prefill_duration(p, int(prompt_tokens[j]), 1)
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
        # the engine's own step and prefill: calibration points are measured without the live
        # loop, and their per-token prefill already holds the admission of their requests
        return (prefill_duration(p, b * pt.prompt_tokens)
                + steps_seconds(*engine_coefficients(p), b, c0, pt.n_tokens))
    if pt.kind == "rate":
        return 1.0 / p.step_s(b, float(b * (pt.prompt_tokens + pt.n_tokens)))
    raise ValueError(f"unknown calibration point kind {pt.kind!r}")
