"""Hypothesis strategies for the question-stop rules, derived from the rule registry
(core/policy/rules.py): a newly registered rule is drawn by every randomised test at once."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from aimo.core.policy.rules import REGISTRY, QuestionRule, RuleKind, RuleParam


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
