"""The sample-stop rule registry: every registered rule is well-formed, every path applies its
registered step (the decisions, the fast path's table), and everything derived from the
registry is current."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rule_strategies import sample_stop_rules

from aimo.core.errors import InputError
from aimo.core.policy import (
    Answer,
    SampleStopRule,
    load_policy,
    policy_from_dict,
    policy_to_dict,
    stop_condition_token,
)
from aimo.core.policy.sample_rules import (
    SAMPLE_REGISTRY,
    counted_sources,
    rule_holds,
    step_args,
    with_sample_rules_markdown,
)
from aimo.data import DATA_DIR
from aimo.simulator.fast.encode import READS_RUN, READS_SAME, READS_SEEN, sample_table

KINDS = list(SAMPLE_REGISTRY)
DOCS = DATA_DIR.parent / "docs" / "policy.md"


def _rule(name: str, values: dict[str, object]) -> SampleStopRule:
    return SampleStopRule(rule=name, **values)  # type: ignore[arg-type]


@pytest.mark.parametrize("name", KINDS)
def test_examples_hold(name: str) -> None:
    kind = SAMPLE_REGISTRY[name]
    assert kind.examples, "declare a few examples with the rule"
    for (seen, same, run), values, expected in kind.examples:
        assert 1 <= run <= same <= seen, "an example must be a reachable count"
        assert rule_holds(_rule(name, dict(values)), seen, same, run) is expected


@pytest.mark.parametrize("name", KINDS)
def test_steps_compile_under_numba_and_agree(name: str) -> None:
    """A step is plain arithmetic on ints, as the question-stop steps are."""
    numba = pytest.importorskip("numba")
    kind = SAMPLE_REGISTRY[name]
    jitted = numba.njit(kind.step)
    for _, values, _ in kind.examples:
        args = step_args(_rule(name, dict(values)))
        for seen in range(1, 8):
            for same in range(1, seen + 1):
                for run in range(1, same + 1):
                    assert bool(jitted(seen, same, run, *args)) == bool(
                        kind.step(seen, same, run, *args))


def _expected_token(rule: SampleStopRule, answers: list[Answer]) -> int | None:
    """stop_condition_token from its definition: recount seen, same and run over each prefix."""
    sources = counted_sources(rule)
    if sources is None:
        return None
    counted: list[int] = []
    for i, a in enumerate(answers):
        ok = a.value is not None and (a.value > 0 if rule.positive_only else a.value >= 0)
        if not ok or (sources != "any" and a.source != sources):
            continue
        counted.append(a.value)  # type: ignore[arg-type]
        run = next((j for j, v in enumerate(reversed(counted)) if v != a.value), len(counted))
        if rule_holds(rule, len(counted), counted.count(a.value), run):  # type: ignore[arg-type]
            return max(b.token for b in answers[:i + 1])
    return None


answers_st = st.lists(
    st.builds(Answer, st.integers(0, 2000), st.none() | st.integers(-1, 4),
              st.sampled_from(["boxed", "code"])),
    max_size=12,
)


@given(sample_stop_rules(), answers_st)
@settings(max_examples=300, deadline=None)
def test_stop_condition_token_applies_the_step(rule: SampleStopRule,
                                               answers: list[Answer]) -> None:
    """decisions.stop_condition_token (live loop and reference replay) is the registered step
    over the counts of the counting answers."""
    assert stop_condition_token(rule, answers) == _expected_token(rule, answers)


@given(sample_stop_rules(), st.integers(1, 9))
@settings(max_examples=150, deadline=None)
def test_fast_path_table_is_the_step(rule: SampleStopRule, max_answers: int) -> None:
    """The kernel's look-up (encode.sample_table, read as kernel._sample_holds reads it) gives
    the step's verdict at every count a sample of `max_answers` answers reaches."""
    lookup = sample_table(rule, max_answers)
    for seen in range(1, max_answers + 1):
        for same in range(1, seen + 1):
            for run in range(1, same + 1):
                want = rule_holds(rule, seen, same, run)
                if not lookup.holds:
                    assert not want
                    continue
                if lookup.reads == READS_SEEN:  # one compare, no table
                    assert not lookup.table and (seen >= lookup.seen_min) is want, (seen, same, run)
                    continue
                table, c = lookup.table, lookup.table[0]
                j = same if lookup.reads == READS_SAME else run  # the kernel passes run when same is unread
                got = table[1 + (min(seen, c) * (c + 1) + min(j, c)) * (c + 1) + min(run, c)]
                assert bool(got) is want, (seen, same, run)


def test_threshold_rules_take_the_one_compare_and_the_others_their_table() -> None:
    """Which look-up each rule gets is told from its step's verdicts (not its name)."""
    reads = {r: sample_table(SampleStopRule(r, k=3), 9).reads
             for r in ("first_answer", "kth_answer", "first_code_success", "repeated_answer",
                       "streak_answer")}
    assert reads == {"first_answer": READS_SEEN, "kth_answer": READS_SEEN,
                     "first_code_success": READS_SEEN, "repeated_answer": READS_SAME,
                     "streak_answer": READS_RUN}
    assert sample_table(SampleStopRule("kth_answer", k=3), 9).seen_min == 3
    assert not sample_table(SampleStopRule("never"), 9).holds


def test_validation_comes_from_the_registry() -> None:
    with pytest.raises(InputError) as info:
        SampleStopRule("first_box")
    assert info.value.field == "rule"
    for name in KINDS:
        assert repr(name) in info.value.message
    for kind in SAMPLE_REGISTRY.values():
        for p in kind.params:
            with pytest.raises(InputError) as info:
                SampleStopRule(kind.name, **{p.name: int(p.low) - 1 if p.low > 1 else 0})
            assert info.value.field == p.name


@given(sample_stop_rules())
@settings(max_examples=100, deadline=None)
def test_rules_round_trip_through_the_policy_language(rule: SampleStopRule) -> None:
    seed = load_policy("seed-2nd-place")
    policy = dataclasses.replace(seed, sample_stop=dataclasses.replace(seed.sample_stop, cot=rule))
    assert policy_from_dict(policy_to_dict(policy)) == policy


def test_docs_table_is_generated_from_the_registry() -> None:
    text = DOCS.read_text(encoding="utf-8")
    assert with_sample_rules_markdown(text) == text, "run `python -m aimo.core.policy`"
    for name in KINDS:
        assert f"| `{name}` |" in text
