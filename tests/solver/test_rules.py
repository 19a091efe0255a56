"""The question-stop rule registry: every registered rule is well-formed, its step keeps the
contract the paths rely on, and everything derived from the registry is current."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rule_strategies import question_rules

from aimo.core.errors import InputError
from aimo.core.policy import (
    ConsistencyRule,
    QuestionStop,
    SpeedLevel,
    consistency_stop,
    load_policy,
    policy_from_dict,
    policy_hash,
    policy_to_dict,
)
from aimo.core.policy.rules import (
    ABSENT,
    DEFAULT_KIND,
    REGISTRY,
    QuestionRule,
    rule_from_search,
    search_of_rule,
    with_rules_markdown,
)
from aimo.data import DATA_DIR

KINDS = list(REGISTRY)
SEED = load_policy("seed-2nd-place")
DOCS = DATA_DIR.parent / "docs" / "policy.md"


@pytest.mark.parametrize("name", KINDS)
def test_examples_hold(name: str) -> None:
    kind = REGISTRY[name]
    assert kind.examples, "declare a few examples with the rule"
    for n, m, values, expected in kind.examples:
        rule = kind.cls(**values)
        assert bool(kind.step(n, m, *rule.step_args())) is expected, (n, m, values)


@given(question_rules(), st.integers(0, 12), st.integers(0, 12))
@settings(max_examples=300, deadline=None)
def test_steps_do_not_decrease_in_m(rule: QuestionRule, n: int, m: int) -> None:
    """The kernel skips counting a window whose rule cannot hold with the overall m."""
    step, args = rule.kind().step, rule.step_args()
    if step(n, m, *args):
        assert step(n, m + 1, *args)


@pytest.mark.parametrize("name", KINDS)
def test_steps_compile_under_numba_and_agree(name: str) -> None:
    """A step is plain arithmetic: numba compiles it, with absent parameters as ABSENT."""
    numba = pytest.importorskip("numba")
    kind = REGISTRY[name]
    jitted = numba.njit(kind.step)
    for _, _, values, _ in kind.examples:
        args = kind.cls(**values).step_args()
        assert ABSENT in args or all(a is not None for a in args)
        for n in range(10):
            for m in range(n + 1):
                assert bool(jitted(n, m, *args)) == bool(kind.step(n, m, *args))


@given(question_rules(), st.lists(st.integers(1, 4), max_size=12))
@settings(max_examples=200, deadline=None)
def test_consistency_stop_applies_the_step(rule: QuestionRule, valid: list[int]) -> None:
    """decisions.consistency_stop (live loop and reference replay) is the registered step over
    n and the most frequent count of the rule's window."""
    from collections import Counter

    k = rule.window()
    window = valid[-k:] if k is not None else valid
    m = max(Counter(window).values(), default=0)
    level = SpeedLevel("l", 20, 99, 600.0)
    got = consistency_stop(QuestionStop("arrival", (rule,)), level, valid)
    assert (got == rule.label(1)) is bool(rule.kind().step(len(valid), m, *rule.step_args()))


@given(question_rules())
@settings(max_examples=100, deadline=None)
def test_rules_round_trip_through_the_policy_language(rule: QuestionRule) -> None:
    seed = SEED
    policy = dataclasses.replace(
        seed, question_stop=dataclasses.replace(seed.question_stop, rules=(rule,)))
    data = policy_to_dict(policy)
    written = data["question_stop"]["rules"][0]
    assert ("rule" in written) is (rule.KIND != DEFAULT_KIND)
    assert policy_from_dict(data) == policy


def test_default_rule_is_written_without_its_name() -> None:
    """Entries without `rule:` are the default rule, so existing policies keep their hashes."""
    seed = load_policy("seed-2nd-place")
    assert all("rule" not in r for r in policy_to_dict(seed)["question_stop"]["rules"])
    d = policy_to_dict(seed)
    d["question_stop"]["rules"] = [{"rule": DEFAULT_KIND, **r} for r in d["question_stop"]["rules"]]
    assert policy_hash(policy_from_dict(d)) == policy_hash(seed)
    assert isinstance(seed.question_stop.rules[0], ConsistencyRule)


def test_unknown_rule_names_the_field() -> None:
    d = policy_to_dict(load_policy("seed-2nd-place"))
    d["question_stop"]["rules"] = [{"rule": "nope", "min_equal": 2}]
    with pytest.raises(InputError) as info:
        policy_from_dict(d, "x.yaml")
    assert info.value.field == "question_stop.rules[0].rule"
    assert "consistency" in info.value.message


@given(question_rules())
@settings(max_examples=100, deadline=None)
def test_tuner_dimensions_describe_every_rule(rule: QuestionRule) -> None:
    """search_of_rule then rule_from_search gives the rule back where its dimensions can say it
    (the default rule's window and slack cannot hold both max_answers and last_k)."""
    kind = rule.kind()
    if None not in (getattr(rule, "max_answers", None), getattr(rule, "last_k", None)):
        return  # (only the default rule has both)
    data = rule_from_search(kind, search_of_rule(kind, rule))
    name = data.pop("rule", DEFAULT_KIND)
    assert REGISTRY[name].cls(**data) == rule


def test_docs_table_is_generated_from_the_registry() -> None:
    text = DOCS.read_text(encoding="utf-8")
    assert with_rules_markdown(text) == text, "run `python -m aimo.core.policy`"
    for name in KINDS:
        assert f"#### `rule: {name}`" in text
