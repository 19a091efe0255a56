"""The search space: every point is a valid policy, the presets are points, narrowing files."""

from __future__ import annotations

import warnings
from pathlib import Path

import optuna
import pytest

from aimo.core.errors import InputError
from aimo.core.policy import list_presets, load_policy, policy_hash
from aimo.tuner.space import (
    CATALOGUE, DEFAULT_SPACE_FILE, SPACES_DIR, build_policy, default_space, load_space, point_of,
)

optuna.logging.set_verbosity(optuna.logging.WARNING)


def _write(tmp_path: Path, text: str, name: str = "space.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_default_yaml_documents_exactly_the_catalogue() -> None:
    from_file = load_space(DEFAULT_SPACE_FILE)
    built_in = default_space()
    assert from_file.params == built_in.params
    assert from_file.fixed == ()
    assert from_file.fingerprint() == built_in.fingerprint()
    text = DEFAULT_SPACE_FILE.read_text(encoding="utf-8")
    for param in CATALOGUE:
        assert f"  {param.name}:" in text


@pytest.mark.parametrize("preset", list_presets())
def test_every_preset_is_a_point_of_its_own_space(preset: str) -> None:
    space = default_space(preset)
    params, moved = space.base_params()
    assert moved == []
    rebuilt = space.policy(space.values_of(params), name=space.base.name)
    assert policy_hash(rebuilt) == policy_hash(space.base)


def test_seed_is_enqueued_as_it_is() -> None:
    space = default_space()
    params, _ = space.base_params()
    assert params["schedule.samples"] == 15 and params["question_stop.n_rules"] == 4
    assert params["sample_stop.code.rule"] == "first_code_success"
    assert "sample_stop.code.sources" not in params  # inactive for first_code_success
    assert "sample_stop.cot.k_kth" not in params


@pytest.mark.parametrize("sampler", ["random", "tpe", "flat-tpe"])
def test_every_suggested_point_builds_a_valid_policy(sampler: str) -> None:
    from aimo.tuner.study import make_sampler

    space = default_space()
    samp = (optuna.samplers.RandomSampler(seed=3) if sampler == "random"
            else optuna.samplers.TPESampler(seed=3, n_startup_trials=5) if sampler == "tpe"
            else make_sampler("tpe", 3, trials=50, space=space))
    study = optuna.create_study(sampler=samp)
    hashes = set()

    def objective(trial: optuna.Trial) -> float:
        values = space.suggest(trial)
        policy = space.policy(values, name=f"t{trial.number}")  # raises on an invalid point
        hashes.add(policy_hash(policy))
        return float(len(policy.schedule.levels) + policy.check.every_tokens)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        study.optimize(objective, n_trials=300 if sampler == "random" else 40)
    assert len(hashes) > 30


def test_conditional_parameters_are_asked_only_when_active() -> None:
    space = default_space()
    values = point_of(space.base)
    values.update({"sample_stop.cot.rule": "never", "question_stop.n_rules": 1,
                   "question_stop.rule1.window": "none", "schedule.adaptive": False,
                   "schedule.early_timeouts": False})
    active = {p.name for p in CATALOGUE if space.is_active(p, values)}
    assert "sample_stop.cot.grace_tokens" not in active
    assert "sample_stop.cot.sources" not in active
    assert "question_stop.rule1.slack" not in active
    assert "question_stop.rule2.min_equal" not in active
    assert "schedule.threshold_scale" not in active
    assert "schedule.early_min_answers_delta" not in active
    # FixedTrial raises on any parameter it was not given: suggest asks for the active ones only
    trial = optuna.trial.FixedTrial({k: values[k] for k in active})
    assert space.suggest(trial)["sample_stop.cot.rule"] == "never"


def test_inactive_values_do_not_change_the_policy() -> None:
    space = default_space()
    values = point_of(space.base)
    values["sample_stop.cot.rule"] = "never"
    a = space.policy({**values, "sample_stop.cot.grace_tokens": 0})
    b = space.policy({**values, "sample_stop.cot.grace_tokens": 3000, "sample_stop.cot.sources": "code"})
    assert policy_hash(a) == policy_hash(b)


def test_repairs_keep_extreme_points_valid() -> None:
    space = default_space()
    values = point_of(space.base)
    values.update({"schedule.samples": 4, "schedule.min_answers": 1, "schedule.adaptive": True,
                   "schedule.early_min_answers_delta": -4, "schedule.timeout_s": 240.0})
    policy = space.policy(values)
    assert [lv.samples for lv in policy.schedule.levels] == [1, 1, 4, 5, 6]
    assert all(lv.min_answers >= 1 for lv in policy.schedule.levels)
    assert all(e.min_answers >= 0 for lv in policy.schedule.levels for e in lv.early_timeouts)
    single = space.policy({**values, "schedule.adaptive": False})
    assert len(single.schedule.levels) == 1 and single.schedule.start_level == 1
    assert single.schedule.levels[0].timeout_s == 240.0


def test_rules_follow_window_and_slack() -> None:
    values = point_of(load_policy("seed-2nd-place"))
    values.update({"question_stop.n_rules": 2, "question_stop.rule1.min_equal": 3,
                   "question_stop.rule1.window": "last_k", "question_stop.rule1.slack": 2,
                   "question_stop.rule2.window": "none"})
    policy = build_policy(load_policy("seed-2nd-place"), values, "x")
    r1, r2 = policy.question_stop.rules
    assert (r1.min_equal, r1.last_k, r1.max_answers) == (3, 5, None)
    assert r2.last_k is None and r2.max_answers is None


def test_narrowing_fixes_and_bounds(tmp_path: Path) -> None:
    path = _write(tmp_path, """
base: seed-2nd-place
fix: {samples.order: interleave, check.every_tokens: 40, schedule.samples: 12}
params:
  samples.cot_fraction: {low: 0.25, high: 0.75}
  sample_stop.cot.rule: {choices: [first_answer, never]}
""")
    space = load_space(path)
    names = {p.name for p in space.params}
    assert "samples.order" not in names and "check.every_tokens" not in names
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(40):
        trial = study.ask()
        values = space.suggest(trial)
        assert 0.25 <= values["samples.cot_fraction"] <= 0.75
        assert values["sample_stop.cot.rule"] in ("first_answer", "never")
        policy = space.policy(values)
        assert policy.check.every_tokens == 40
        assert policy.schedule.levels[policy.schedule.start_level - 1].samples == 12
        study.tell(trial, 0.0)
    params, moved = space.base_params()
    assert "check.every_tokens" not in params
    assert moved == []  # the seed lies inside these bounds; fixed values are not moved


def test_base_outside_the_bounds_is_projected(tmp_path: Path) -> None:
    path = _write(tmp_path, "params:\n  schedule.samples: {low: 20, high: 24}\n")
    params, moved = load_space(path).base_params()
    assert params["schedule.samples"] == 20
    assert moved == ["schedule.samples: 15 -> 20"]


def test_bundled_narrowing_example_loads() -> None:
    space = load_space(SPACES_DIR / "narrow-example.yaml")
    assert dict(space.fixed)["samples.order"] == "interleave"
    assert space.base_params()[1] == []


@pytest.mark.parametrize(("text", "field"), [
    ("params:\n  samples.colour: {choices: [red]}\n", "params.samples.colour"),
    ("fix:\n  no.such.param: 3\n", "fix.no.such.param"),
    ("sampler: tpe\n", "sampler"),
    ("params:\n  schedule.samples: {low: 2, high: 10}\n", "params.schedule.samples.low"),
    ("params:\n  schedule.samples: {low: 10, high: 8}\n", "params.schedule.samples.low"),
    ("params:\n  schedule.samples: {low: 10, hi: 12}\n", "params.schedule.samples.hi"),
    ("params:\n  schedule.timeout_s: {low: 245, high: 600}\n", "params.schedule.timeout_s.low"),
    ("params:\n  sample_stop.cot.rule: {choices: [first_answer, sometimes]}\n",
     "params.sample_stop.cot.rule.choices"),
    ("fix:\n  schedule.samples: 12.5\n", "fix.schedule.samples"),
    ("fix:\n  vote.tie_break: random\n", "fix.vote.tie_break"),
    ("fix: {schedule.samples: 12}\nparams: {schedule.samples: {low: 10, high: 12}}\n",
     "params.schedule.samples"),
])
def test_bad_narrowing_names_file_and_key(tmp_path: Path, text: str, field: str) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(InputError) as err:
        load_space(path)
    assert err.value.source == str(path)
    assert err.value.field == field


def test_unreadable_or_invalid_files(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="cannot read"):
        load_space(tmp_path / "missing.yaml")
    with pytest.raises(InputError, match="invalid YAML"):
        load_space(_write(tmp_path, "params: {a: [\n"))
    with pytest.raises(InputError, match="unknown policy preset"):
        load_space(_write(tmp_path, "base: no-such-preset\n"))


def test_base_path_is_relative_to_the_space_file(tmp_path: Path) -> None:
    (tmp_path / "pol").mkdir()
    _write(tmp_path / "pol", "base: fast-8\nname: mine\n", "mine.yaml")
    space = load_space(_write(tmp_path, "base: pol/mine.yaml\n"))
    assert space.base.name == "mine"
    assert space.base.schedule.levels[0].samples == 8


def test_fingerprint_changes_with_the_space(tmp_path: Path) -> None:
    a = load_space(_write(tmp_path, "params: {schedule.samples: {low: 8, high: 16}}\n", "a.yaml"))
    b = load_space(_write(tmp_path, "params: {schedule.samples: {low: 8, high: 17}}\n", "b.yaml"))
    assert a.fingerprint() != b.fingerprint() != default_space().fingerprint()


def test_default_yaml_rule_block_is_generated_from_the_registry() -> None:
    """A rule registered in core/policy/rules.py but missing from the YAML fails here (and in
    test_default_yaml_documents_exactly_the_catalogue)."""
    from aimo.core.policy.rules import REGISTRY
    from aimo.tuner.space import with_rules_yaml

    text = DEFAULT_SPACE_FILE.read_text(encoding="utf-8")
    assert with_rules_yaml(text) == text, "run `python -m aimo.tuner.space`"
    for name in REGISTRY:
        assert name in text


def test_every_registered_rule_is_searched() -> None:
    """Each registered question-stop rule is a choice of every rule slot, and a point that picks
    it builds a policy holding that rule."""
    from aimo.core.policy.rules import REGISTRY

    space = default_space()
    for name in REGISTRY:
        values = point_of(space.base)
        values.update({"question_stop.n_rules": 1, "question_stop.rule1.rule": name})
        active = {p.name for p in CATALOGUE if space.is_active(p, values)}
        assert "question_stop.rule1.rule" in active
        policy = space.policy(values)
        assert [r.KIND for r in policy.question_stop.rules] == [name]


def test_default_yaml_sample_block_is_generated_from_the_registry() -> None:
    """A sample-stop rule registered in core/policy/sample_rules.py but missing from the YAML's
    sample-stop block fails here."""
    from aimo.core.policy.sample_rules import SAMPLE_REGISTRY
    from aimo.tuner.space import sample_rules_yaml

    text = DEFAULT_SPACE_FILE.read_text(encoding="utf-8")
    block = sample_rules_yaml()
    assert block in text, "run `python -m aimo.tuner.space`"
    for name in SAMPLE_REGISTRY:
        assert name in block


@pytest.mark.parametrize("kind", ["cot", "code"])
def test_every_registered_sample_rule_is_searched(kind: str) -> None:
    """Each registered sample-stop rule is a choice of sample_stop.<kind>.rule; a point that
    picks it (with each searched parameter at its upper end) builds a policy holding that rule,
    and point_of reads the rule back."""
    from aimo.core.policy.sample_rules import SAMPLE_REGISTRY

    space = default_space()
    for rule in SAMPLE_REGISTRY.values():
        values = point_of(space.base)
        values[f"sample_stop.{kind}.rule"] = rule.name
        for p in rule.params:
            if p.search is not None:
                values[f"sample_stop.{kind}.{p.name}_{rule.short}"] = p.type(p.search[1])
        active = {p.name for p in CATALOGUE if space.is_active(p, values)}
        assert f"sample_stop.{kind}.rule" in active
        built = space.policy(values).sample_stop.rule_for(kind)
        assert built.rule == rule.name
        for p in rule.params:
            if p.search is not None:
                assert getattr(built, p.name) == p.search[1]
                name = f"sample_stop.{kind}.{p.name}_{rule.short}"
                assert name in active and point_of(space.policy(values))[name] == p.search[1]
        assert (f"sample_stop.{kind}.sources" in active) is (rule.counts == "sources")
