"""Hypothesis strategies for the question-stop and sample-stop rules, derived from the rule
registries (core/policy/rules.py, core/policy/sample_rules.py): a newly registered rule is drawn
by every randomised test at once."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from aimo.core.policy.model import SampleStopRule
from aimo.core.policy.rules import REGISTRY, QuestionRule, RuleKind, RuleParam
from aimo.core.policy.sample_rules import SAMPLE_REGISTRY


def _value(draw: st.DrawFn, p: RuleParam, low: float) -> Any:
    high = max(p.probe[1], low)
    if p.type is int:
        return draw(st.integers(int(low), int(high)))
    # a grid (so that steps meet their boundaries exactly) or any float of the range
    grid = [low + (high - low) * i / 20 for i in range(21)]
    return draw(st.one_of(st.sampled_from(grid), st.floats(low, high)))


@st.composite
def rule_of(draw: st.DrawFn, kind: RuleKind) -> QuestionRule:
    """A valid rule of `kind`: every parameter inside its probe range, optional ones sometimes
    absent, `at_least` bounds respected."""
    values: dict[str, Any] = {}
    for p in kind.params:
        if p.optional and draw(st.booleans()):
            values[p.name] = None
            continue
        low = max(p.low, p.probe[0])
        if p.at_least is not None and values.get(p.at_least) is not None:
            low = max(low, values[p.at_least])
        values[p.name] = _value(draw, p, low)
    return kind.cls(**values)  # type: ignore[no-any-return]


@st.composite
def question_rules(draw: st.DrawFn) -> QuestionRule:
    """A valid rule of any registered kind."""
    return draw(rule_of(draw(st.sampled_from(list(REGISTRY.values())))))


@st.composite
def sample_stop_rules(draw: st.DrawFn, names: list[str] | None = None) -> SampleStopRule:
    """A valid sample-stop rule of any registered kind (core/policy/sample_rules.py), or of one
    of `names`: its declared parameters inside their probe ranges, `k` drawn anyway for rules
    that do not declare it (it must not matter), and every common key."""
    kind = SAMPLE_REGISTRY[draw(st.sampled_from(names or list(SAMPLE_REGISTRY)))]
    values: dict[str, Any] = {"k": draw(st.integers(1, 3))}
    for p in kind.params:
        values[p.name] = _value(draw, p, max(p.low, p.probe[0]))
    return SampleStopRule(rule=kind.name, grace_tokens=draw(st.sampled_from([0, 0, 7, 40])),
                          positive_only=draw(st.booleans()),
                          sources=draw(st.sampled_from(["any", "boxed", "code"])), **values)
