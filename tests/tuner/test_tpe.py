"""The tuner's TPE (tuner.tpe): the whole space in one multivariate model, and its speed-ups."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import optuna
import pytest

from aimo.tuner.space import default_space, load_space
from aimo.tuner.study import make_sampler, open_storage
from aimo.tuner.tpe import FlatTPESampler, fast_log_ndtr

optuna.logging.set_verbosity(optuna.logging.WARNING)


def test_fast_log_ndtr_matches_optunas_bit_for_bit() -> None:
    from optuna.samplers._tpe import _truncnorm

    fast = fast_log_ndtr()
    if fast is False:
        pytest.skip("numba or Optuna's _log_ndtr unavailable: the sampler uses Optuna's own")
    x = np.random.default_rng(0).normal(scale=15.0, size=5000)
    assert np.array_equal(fast(x), _truncnorm._log_ndtr(x))


def _study(tmp_path: Path, sampler: optuna.samplers.BaseSampler, n: int) -> optuna.Study:
    space = default_space()
    study = optuna.create_study(storage=open_storage(str(tmp_path / "t.journal")),
                                sampler=sampler, direction="maximize")
    study.enqueue_trial(space.base_params()[0])

    def objective(trial: optuna.Trial) -> float:
        values = space.suggest(trial)
        space.policy(values)
        return float(values["schedule.samples"]) - abs(float(values["samples.cot_fraction"]) - 0.5)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        study.optimize(objective, n_trials=n)
    return study


def test_whole_space_is_sampled_jointly_but_only_active_params_are_recorded(tmp_path: Path) -> None:
    space = default_space()
    sampler = make_sampler("tpe", 0, trials=40, space=space)
    assert isinstance(sampler, FlatTPESampler)
    dists, canonical = space.sampler_space()
    assert list(dists) == [p.name for p in space.params]  # nothing is statically inactive
    study = _study(tmp_path, sampler, 40)
    trials = study.get_trials()
    late = trials[-1]
    # the model sees every parameter of a late trial (drawn jointly), the trial records the active ones
    assert any(k not in late.params for k in dists)
    assert late.system_attrs.get("tpe:relative_params:0")
    rows = sampler._get_internal_repr(trials, dists, study)
    assert all(len(v) == len(trials) for v in rows.values())
    # trial 0 (the base, enqueued) has no drawn values: its inactive ones are canonical
    inactive = next(k for k in dists if k not in trials[0].params)
    assert rows[inactive][0] == dists[inactive].to_internal_repr(canonical[inactive])
    # the best trial of this toy objective is found: many samples
    assert study.best_trial.params["schedule.samples"] >= 28


def test_one_worker_flat_tpe_is_reproducible(tmp_path: Path) -> None:
    a = _study(tmp_path / "a", make_sampler("tpe", 5, trials=30), 30)
    b = _study(tmp_path / "b", make_sampler("tpe", 5, trials=30), 30)
    assert [t.params for t in a.get_trials()] == [t.params for t in b.get_trials()]


def test_fixed_parents_drop_parameters_that_can_never_be_active(tmp_path: Path) -> None:
    path = tmp_path / "narrow.yaml"
    path.write_text("fix:\n  sample_stop.cot.rule: never\n  schedule.adaptive: false\n", encoding="utf-8")
    dists, canonical = load_space(path).sampler_space()
    for gone in ["sample_stop.cot.rule", "sample_stop.cot.k_kth", "sample_stop.cot.grace_tokens",
                 "sample_stop.cot.sources", "schedule.threshold_scale", "schedule.reeval_every"]:
        assert gone not in dists
    assert "sample_stop.code.grace_tokens" in dists and set(canonical) == set(dists)
