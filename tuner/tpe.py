"""The tuner's TPE: Optuna's multivariate TPE over the whole search space at once, made cheap.

Why: the search space is conditional (a rule's `k` only for `kth_answer`, a consistency rule's
fields only up to `n_rules`, …; docs/tuner.md). Optuna's answer, `TPESampler(group=True)`,
splits the space into the groups of parameters that were suggested together — 19 here — and
runs one TPE per group, each re-reading, re-splitting and re-encoding the whole history: about
205 CPU-s per 1,000-trial study, which made the sampler two thirds of a 1,000 × 5 × 100 run.
The groups are also modelled independently of each other.

This sampler keeps the declaration as it is (a trial suggests, and records as its params, only
its active parameters) but models every trial as one point of the *whole* space: the relative
search space is every searched parameter, sampled jointly in one multivariate TPE per trial.
A trial's inactive parameters enter the model at the value the sampler drew for them (kept in
the trial's system attributes, as Optuna's constant liar already does) or, where it drew none
(trial 0, the random start-up trials), at their canonical value. Inactive dimensions carry no
signal, so they only add a little noise to the acquisition; the active ones are modelled jointly.

Two implementation speed-ups, neither changing what is sampled:
- the encoded history (`_get_internal_repr`) is cached per finished trial, which never changes,
  instead of being re-encoded in Python for every trial;
- Optuna's truncated-normal mass calls `_log_ndtr` element by element in Python
  (`np.frompyfunc`); during our sampling it is swapped for a numba ufunc of the same formula,
  checked against Optuna's own at start-up (bit-identical on a grid; otherwise not used).
Both rely on Optuna internals (5.x); if those are missing the sampler falls back to Optuna's
code paths (slower, same result).
"""

from __future__ import annotations

import contextlib
import json
import math
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np
from optuna.distributions import BaseDistribution
from optuna.samplers import TPESampler

try:  # Optuna's key for the relative params of a trial (the constant liar reads it)
    from optuna.samplers._tpe.sampler import _RELATIVE_PARAMS_KEY, _SYSTEM_ATTR_MAX_LENGTH
except ImportError:  # pragma: no cover - other Optuna versions
    _RELATIVE_PARAMS_KEY, _SYSTEM_ATTR_MAX_LENGTH = "tpe:relative_params", 2045


# --------------------------------------------------------------------------- fast _log_ndtr

_FAST_NDTR: Any = None  # None: not tried yet; False: unavailable; else the ufunc


def _build_log_ndtr() -> Any:
    """Optuna's `_log_ndtr_single` (optuna/samplers/_tpe/_truncnorm.py) as a numba ufunc."""
    import numba

    @numba.njit(cache=True)
    def _ndtr1(a: float) -> float:
        x = a / 2**0.5
        if x < -1 / 2**0.5:
            return 0.5 * math.erfc(-x)
        if x < 1 / 2**0.5:
            return 0.5 + 0.5 * math.erf(x)
        return 1.0 - 0.5 * math.erfc(x)

    @numba.vectorize(["float64(float64)"], cache=True)
    def log_ndtr(a: float) -> float:  # pragma: no cover - compiled
        if a > 6:
            return -_ndtr1(-a)
        if a > -20:
            return math.log(_ndtr1(a))
        log_lhs = -0.5 * a**2 - math.log(-a) - 0.5 * math.log(2 * math.pi)
        last_total = 0.0
        rhs = 1.0
        numerator = 1.0
        denom_factor = 1.0
        denom_cons = 1 / a**2
        sign = 1
        i = 0
        while abs(last_total - rhs) > 2.220446049250313e-16:
            i += 1
            last_total = rhs
            sign = -sign
            denom_factor *= denom_cons
            numerator *= 2 * i - 1
            rhs += sign * numerator * denom_factor
        return log_lhs + math.log(rhs)

    return log_ndtr


def fast_log_ndtr() -> Any:
    """The numba `_log_ndtr`, or False when numba or Optuna's function is missing or they differ."""
    global _FAST_NDTR
    if _FAST_NDTR is None:
        _FAST_NDTR = False
        try:
            from optuna.samplers._tpe import _truncnorm

            original = _truncnorm._log_ndtr
            fast = _build_log_ndtr()
            grid = np.concatenate([np.linspace(-60.0, 60.0, 2401),
                                   [-1e4, -20.0001, -20.0, -19.9999, 5.9999, 6.0, 6.0001, 0.0]])
            if np.array_equal(original(grid), fast(grid)):
                _FAST_NDTR = fast
        except Exception:  # noqa: BLE001 - any failure: Optuna's own code path
            _FAST_NDTR = False
    return _FAST_NDTR


@contextlib.contextmanager
def _fast_truncnorm() -> Iterator[None]:
    fast = fast_log_ndtr()
    if fast is False:
        yield
        return
    from optuna.samplers._tpe import _truncnorm

    original = _truncnorm._log_ndtr
    _truncnorm._log_ndtr = lambda a: fast(np.asarray(a, dtype=np.float64))
    try:
        yield
    finally:
        _truncnorm._log_ndtr = original


# --------------------------------------------------------------------------- the sampler


class FlatTPESampler(TPESampler):
    """Multivariate TPE over every parameter of `distributions` jointly (see the module doc).

    Args:
        distributions: the searched parameters and their Optuna distributions, in a fixed order.
        canonical: a value inside each distribution, used for a trial that has no value for a
            parameter (inactive and not drawn by the sampler).
        **kwargs: TPESampler's (seed, n_startup_trials, n_ei_candidates, constant_liar, …).
    """

    def __init__(self, distributions: Mapping[str, BaseDistribution], canonical: Mapping[str, Any],
                 **kwargs: Any) -> None:
        super().__init__(multivariate=True, group=False, **kwargs)
        self._flat = {k: d for k, d in distributions.items() if not d.single()}
        self._canonical = {k: canonical[k] for k in self._flat}
        self._column = {k: i for i, k in enumerate(self._flat)}
        self._rows: dict[int, np.ndarray] = {}  # trial id → internal repr of a finished trial

    def infer_relative_search_space(self, study: Any, trial: Any) -> dict[str, BaseDistribution]:
        return dict(self._flat)

    def sample_relative(self, study: Any, trial: Any,
                        search_space: dict[str, BaseDistribution]) -> dict[str, Any]:
        params = super().sample_relative(study, trial, search_space)
        if params and not self._constant_liar:  # the constant liar already stored them
            text = json.dumps(params)
            for i in range(0, len(text), _SYSTEM_ATTR_MAX_LENGTH):
                study._storage.set_trial_system_attr(
                    trial._trial_id, f"{_RELATIVE_PARAMS_KEY}:{i // _SYSTEM_ATTR_MAX_LENGTH}",
                    text[i:i + _SYSTEM_ATTR_MAX_LENGTH])
        return params

    def _drawn(self, trial: Any) -> dict[str, Any]:
        parts, i = [], 0
        while part := trial.system_attrs.get(f"{_RELATIVE_PARAMS_KEY}:{i}"):
            parts.append(part)
            i += 1
        if not parts:
            return {}
        try:
            return dict(json.loads("".join(parts)))
        except json.JSONDecodeError:  # another worker still writing its chunks
            return {}

    def _row(self, trial: Any) -> np.ndarray:
        finished = trial.state.is_finished()
        row = self._rows.get(trial._trial_id) if finished else None
        if row is None:
            values = {**self._canonical, **self._drawn(trial), **trial.params}
            row = np.empty(len(self._flat))
            for name, dist in self._flat.items():
                try:
                    row[self._column[name]] = dist.to_internal_repr(values[name])
                except (ValueError, TypeError):  # e.g. a JSON round trip changed a choice's type
                    row[self._column[name]] = dist.to_internal_repr(self._canonical[name])
            if finished:
                self._rows[trial._trial_id] = row
        return row

    def _get_internal_repr(self, trials: list[Any], search_space: dict[str, BaseDistribution],
                           study: Any) -> dict[str, np.ndarray]:
        if not all(k in self._column and search_space[k] == self._flat[k] for k in search_space):
            return super()._get_internal_repr(trials, search_space, study)
        if not trials:
            return {k: np.asarray([], dtype=float) for k in search_space}
        table = np.stack([self._row(t) for t in trials])
        return {k: table[:, self._column[k]] for k in search_space}

    def _sample(self, study: Any, trial: Any,
                search_space: dict[str, BaseDistribution]) -> dict[str, Any]:
        with _fast_truncnorm():
            return super()._sample(study, trial, search_space)


__all__ = ["FlatTPESampler", "fast_log_ndtr"]
