"""Tuning runs end to end on a small synthetic store: nested CV, resume, constraint, export."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pytest

from aimo.recorder.synth import synthesize_store
from aimo.core.hardware import load_profile
from aimo.core.errors import InputError
from aimo.core.policy import load_policy, policy_hash
from aimo.core.store import load_problem_traces
from aimo.tuner.cli_impl import run_demo_tune, run_tune
from aimo.tuner.objective import Metrics, ObjectiveSpec, ReferenceEvaluator, evaluate, make_evaluator
from aimo.tuner.report import heldout_row
from aimo.tuner.study import (
    TuneConfig, load_study_summary, open_storage, plan_studies, select_best, heldout_spec,
)

optuna.logging.set_verbosity(optuna.logging.WARNING)
SMALL = dict(folds=2, bootstrap=6, progress_bar=False)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("tune") / "small.duckdb"
    synthesize_store(path, n_problems=12, n_samples=8, seed=1, progress=False)
    return path


def _quiet(_line: str) -> None:
    pass


def _trials(storage: str, name: str) -> list[Any]:
    return optuna.load_study(study_name=name, storage=open_storage(storage)).get_trials()


def test_run_tune_exports_a_loadable_policy_and_a_held_out_table(store: Path, tmp_path: Path) -> None:
    lines: list[str] = []
    result = run_tune(store, 5, tmp_path / "best.yaml", echo=lines.append, **SMALL)
    again = load_policy(result.out)
    assert again.name == "tuned-aimo-tune"
    assert result.out == tmp_path / "best.yaml" and (tmp_path / "best.journal").exists()
    final_policy_hash = _trials(result.storage, "aimo-tune")[result.final.number].user_attrs["policy_hash"]
    assert policy_hash(again) == final_policy_hash
    assert [r.name for r in result.rows] == ["seed-2nd-place", "tuned", "majority-n", "first-answer"]
    for row in result.rows:
        assert len(row.scores) == 2 * 6 and len(row.fold_means) == 2
        assert row.score_lo <= row.mean_score <= row.score_hi
        assert 0.0 <= row.p_overtime <= 1.0
    assert result.rows[0].delta is None and result.rows[1].delta is not None
    text = "\n".join(lines)
    for word in ["held-out score", "90% interval", "mean time", "P(overtime)", "seed-2nd-place",
                 "majority-n", "first-answer", "in-sample", "wrote"]:
        assert word in text
    summary = load_study_summary(result.storage, "aimo-tune")
    assert summary.report is not None and len(summary.report["rows"]) == 4
    assert summary.folds == ("aimo-tune:fold1of2", "aimo-tune:fold2of2")
    assert summary.best is not None and summary.best["number"] == result.final.number
    assert {"score_mean", "p_overtime", "sim_s", "sampler_s", "worker"} <= set(summary.trials[0])


def test_base_is_trial_zero_of_every_study(store: Path, tmp_path: Path) -> None:
    result = run_tune(store, 3, tmp_path / "b.yaml", echo=_quiet, **SMALL)
    seed_hash = policy_hash(load_policy("seed-2nd-place"))
    for name in ["aimo-tune:fold1of2", "aimo-tune:fold2of2", "aimo-tune"]:
        first = _trials(result.storage, name)[0]
        assert first.user_attrs["base"] is True
        assert first.user_attrs["policy_hash"] == seed_hash


def test_nested_cv_tunes_on_train_and_scores_on_test_only(store: Path) -> None:
    problems = load_problem_traces(store)
    ids = [p.problem_id for p in problems]
    config = TuneConfig(traces=str(store), storage="x.journal", study="s", trials=1, folds=3)
    plans = plan_studies(config, ids)
    assert [p.fold for p in plans] == [0, 1, 2, None]
    tests = [set(p.test) for p in plans[:3]]
    assert set().union(*tests) == set(range(len(ids)))
    for plan in plans[:3]:
        assert not set(plan.train) & set(plan.test)
        assert set(plan.train) | set(plan.test) == set(range(len(ids)))
    assert plans[3].train == tuple(range(len(ids))) and plans[3].test == ()

    seen: list[tuple[int, ...]] = []

    class Spy:
        def bootstrap(self, policy: Any, **kw: Any) -> Any:
            seen.append(tuple(kw["problem_subset"]))
            return make_evaluator(problems, load_profile("l4x4-14b-w4kv8")).bootstrap(policy, **kw)

    specs = [heldout_spec(config, p) for p in plans[:3]]
    heldout_row("x", Spy(), [load_policy("fast-8")] * 3, specs)
    assert seen == [p.test for p in plans[:3]]


def test_resume_continues_the_same_studies(store: Path, tmp_path: Path) -> None:
    storage = str(tmp_path / "s.journal")
    run_tune(store, 3, tmp_path / "a.yaml", storage=storage, study="r", echo=_quiet, **SMALL)
    first = [(t.number, t.params) for t in _trials(storage, "r")]
    assert len(first) == 3
    run_tune(store, 5, tmp_path / "b.yaml", storage=storage, study="r", echo=_quiet, **SMALL)
    after = _trials(storage, "r")
    assert len(after) == 5
    assert [(t.number, t.params) for t in after[:3]] == first
    run_tune(store, 5, tmp_path / "c.yaml", storage=storage, study="r", echo=_quiet, **SMALL)
    assert len(_trials(storage, "r")) == 5  # nothing left to do
    with pytest.raises(InputError) as err:
        run_tune(store, 5, tmp_path / "d.yaml", storage=storage, study="r", echo=_quiet,
                 folds=2, bootstrap=7, progress_bar=False)
    assert err.value.field == "--study" and "bootstrap" in err.value.message


def test_one_worker_runs_are_reproducible(store: Path, tmp_path: Path) -> None:
    a = run_tune(store, 6, tmp_path / "a.yaml", echo=_quiet, **SMALL)
    b = run_tune(store, 6, tmp_path / "b" / "b.yaml", echo=_quiet, **SMALL)
    assert policy_hash(load_policy(a.out)) == policy_hash(load_policy(b.out))
    assert [r.scores for r in a.rows] == [r.scores for r in b.rows]


def test_overtime_constraint_steers_the_selection(store: Path, tmp_path: Path) -> None:
    lines: list[str] = []
    # a budget shorter than the engine's start-up (90 s): every run passes it, nothing is
    # feasible (a budget that only binds the cutoff is met: the rest get the cutoff answer)
    result = run_tune(store, 3, tmp_path / "o.yaml", budget_s=60.0, max_overtime=0.0,
                      echo=lines.append, **SMALL)
    assert not result.final.feasible
    assert any("no trial met P(overtime)" in line for line in lines)
    trial = _trials(result.storage, "aimo-tune")[0]
    assert trial.constraints and all(v > 0 for v in trial.constraints.values())


def _study_with(rows: list[dict[str, float]]) -> Any:
    study = optuna.create_study(direction="maximize")
    for i, r in enumerate(rows):
        m = Metrics(mean_score=r["mean"], score_lo=0, score_hi=0, score_sd=r.get("sd", 1.0),
                    lcb=r["mean"] - 1.645 * r.get("sd", 1.0) / 10, mean_time_s=1.0,
                    p_overtime=r["p"], replicates=100)
        study.add_trial(optuna.trial.create_trial(
            params={"x": float(i)}, distributions={"x": optuna.distributions.FloatDistribution(0, 10)},
            value=r["mean"], user_attrs=m.attrs()))
    return study


def test_selection_rules() -> None:
    study = _study_with([
        {"mean": 30.0, "p": 0.0},              # 0: the base
        {"mean": 40.0, "p": 0.5},              # 1: best mean but infeasible
        {"mean": 33.0, "p": 0.01, "sd": 20},   # 2: best feasible mean, noisy
        {"mean": 32.5, "p": 0.0, "sd": 1},     # 3: best feasible lcb
        {"mean": 33.0, "p": 0.02, "sd": 20},   # 4: ties with 2 → the earlier one wins
    ])
    assert select_best(study, "mean", 0.05).number == 2
    assert select_best(study, "lcb", 0.05).number == 3
    strict = select_best(study, "mean", 0.0)
    assert (strict.number, strict.feasible) == (3, True)
    assert select_best(study, "mean", 1.0).number == 1
    none_ok = _study_with([{"mean": 30.0, "p": 0.3}, {"mean": 35.0, "p": 0.2}, {"mean": 36.0, "p": 0.4}])
    fallback = select_best(none_ok, "mean", 0.1)
    assert (fallback.number, fallback.feasible) == (1, False)  # the least overtime


def test_multi_objective_nsga2(store: Path, tmp_path: Path) -> None:
    lines: list[str] = []
    result = run_tune(store, 4, tmp_path / "m.yaml", sampler="nsga2", multi_objective=True,
                      select="lcb", echo=lines.append, **SMALL)
    study = optuna.load_study(study_name="aimo-tune", storage=open_storage(result.storage))
    assert len(study.directions) == 2
    assert all(len(t.values) == 2 for t in study.get_trials() if t.values)
    assert any(line.startswith("Pareto front") for line in lines)


def test_two_worker_processes_share_a_journal(store: Path, tmp_path: Path) -> None:
    result = run_tune(store, 4, tmp_path / "w.yaml", workers=2, echo=_quiet, **SMALL)
    for name in ["aimo-tune:fold1of2", "aimo-tune:fold2of2", "aimo-tune"]:
        trials = _trials(result.storage, name)
        done = [t for t in trials if t.state.is_finished()]
        assert 4 <= len(done) <= 5  # at most one overshoot per extra worker
    workers = {t.user_attrs.get("worker") for n in ["aimo-tune"] for t in _trials(result.storage, n)}
    assert len(workers - {None}) >= 1


def test_sqlite_storage(store: Path, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'tune.db'}"
    result = run_tune(store, 2, tmp_path / "q.yaml", storage=url, echo=_quiet, **SMALL)
    assert len(_trials(url, "aimo-tune")) == 2
    assert load_policy(result.out).name == "tuned-aimo-tune"


@pytest.mark.parametrize(("kwargs", "field"), [
    ({"folds": 1}, "--folds"),
    ({"folds": 99}, "--folds"),
    ({"sampler": "cmaes"}, "--sampler"),
    ({"select": "median"}, "--select"),
    ({"max_overtime": 1.5}, "--max-overtime"),
    ({"workers": 0}, "--workers"),
    ({"bootstrap": 1}, "--bootstrap"),
])
def test_bad_arguments_fail_before_tuning(store: Path, tmp_path: Path, kwargs: dict[str, Any],
                                          field: str) -> None:
    args = {**SMALL, **kwargs}
    with pytest.raises(InputError) as err:
        run_tune(store, 3, tmp_path / "x.yaml", echo=_quiet, **args)
    assert err.value.source == field
    assert not (tmp_path / "x.journal").exists()


def test_existing_out_is_not_overwritten(store: Path, tmp_path: Path) -> None:
    out = tmp_path / "mine.yaml"
    out.write_text("precious\n")
    with pytest.raises(InputError) as err:
        run_tune(store, 3, out, echo=_quiet, **SMALL)
    assert err.value.field == "--out"
    assert out.read_text() == "precious\n"


def test_gp_without_its_extras_is_refused_plainly(store: Path, tmp_path: Path) -> None:
    import importlib.util

    if importlib.util.find_spec("torch") and importlib.util.find_spec("scipy"):
        pytest.skip("torch and scipy are installed: GP is available")
    with pytest.raises(InputError, match="needs (torch|scipy)"):  # whichever is missing
        run_tune(store, 3, tmp_path / "g.yaml", sampler="gp", echo=_quiet, **SMALL)


def test_unknown_space_parameter_names_the_file(store: Path, tmp_path: Path) -> None:
    space = tmp_path / "narrow.yaml"
    space.write_text("fix:\n  schedule.colour: blue\n")
    with pytest.raises(InputError) as err:
        run_tune(store, 3, tmp_path / "x.yaml", space=space, echo=_quiet, **SMALL)
    assert err.value.source == str(space) and err.value.field == "fix.schedule.colour"


def test_reference_adapter_matches_the_fast_path(store: Path) -> None:
    problems = load_problem_traces(store)
    profile = load_profile("l4x4-14b-w4kv8")
    spec = ObjectiveSpec(subset=(0, 2, 5, 7), replicates=3, seed=11, n_questions=6)
    fast = evaluate(make_evaluator(problems, profile), load_policy("seed-2nd-place"), spec)
    ref = evaluate(ReferenceEvaluator(problems, profile), load_policy("seed-2nd-place"), spec)
    assert fast.scores == ref.scores
    assert np.allclose(fast.times_s, ref.times_s)


def test_demo_tune(store: Path, tmp_path: Path) -> None:
    lines: list[str] = []
    result = run_demo_tune(store, tmp_path, trials=3, folds=2, bootstrap=4, echo=lines.append)
    assert result.out == tmp_path / "demo-tuned.yaml"
    assert any("held-out score" in line for line in lines)
    again = run_demo_tune(store, tmp_path, trials=3, folds=2, bootstrap=4, echo=_quiet)
    assert len(_trials(again.storage, "demo")) == 3  # a fresh study each time, not a resume
