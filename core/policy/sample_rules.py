"""The sample-stop rule registry: every rule of `sample_stop.cot` / `sample_stop.code`, declared once.

Why: a sample-stop rule used to be spelled out in the model's `Literal`, an if-chain of the
decisions, the fast path's STOP_* codes and kernel branches, the tuner's catalogue, the space
YAML, the docs and the tests. Here a rule is one `SampleRuleKind`: its name, which answers it
counts (`counts`), its parameters (`core.policy.rules.RuleParam`: type, valid range, default,
the tuner's range, the tests' range) and one scalar *step*

    step(seen, same, run, *values) -> bool

that says whether the rule holds right after a counting answer, when the sample has had `seen`
counting answers so far (this one included), `same` of them had this answer's value, and the
last `run` of them all had it (the streak ending here; answers that do not count neither
extend nor break it). So 1 ≤ run ≤ same ≤ seen. The Python paths call the step
(`decisions.stop_condition_token`: live loop and reference replay); the fast path tabulates it
per policy over every (seen, same, run) a sample of the store can reach
(`simulator.fast.encode.sample_table`) and the kernel reads the table, so the numba kernel holds
no per-rule code. `tests/solver/test_sample_rules.py` checks the declared `examples`, that every
step compiles under numba, and that everything derived from here is current.

The parameters are fields of `SampleStopRule` (`PARAM_FIELDS`; today `k`), so a policy file
keeps one flat syntax for every rule; a rule with a new kind of parameter adds that field.

Derived from this registry: `SampleStopRule.rule`'s validation and each parameter's range
(`validate`), the tuner's sample-stop dimensions and `data/spaces/default.yaml`'s sample-stop
block (`tuner.space`), docs/policy.md's sample-stop table (`sample_rules_markdown`; `python -m
aimo.core.policy` rewrites it) and the tests' strategies. Adding a rule is one
`register_sample_rule(SampleRuleKind(...))` call below (then regenerate the docs and the space
YAML; the tests say when they are stale).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from aimo.core.errors import InputError
from aimo.core.policy.rules import REQUIRED, RuleParam, with_generated

SOURCE = "<policy>"
PARAM_FIELDS = ("k",)  # SampleStopRule's fields that a rule may declare as its parameters
Counts = Literal["sources", "code", "nothing"]


@dataclass(frozen=True)
class SampleRuleKind:
    """A sample-stop rule (see the module doc). `counts`: which answers count — "sources" (the
    rule's `sources` key says), "code" (code answers only, whatever `sources` says) or "nothing"
    (the rule never holds). `short` names its tuner dimensions
    (`sample_stop.<kind>.<param>_<short>`); `examples`: ((seen, same, run), parameter values,
    expected step result), checked by the tests and shown in the docs."""

    name: str
    summary: str
    step: Callable[..., bool]
    examples: tuple[tuple[tuple[int, int, int], Mapping[str, Any], bool], ...]
    params: tuple[RuleParam, ...] = ()
    counts: Counts = "sources"
    short: str = ""


SAMPLE_REGISTRY: dict[str, SampleRuleKind] = {}


def register_sample_rule(kind: SampleRuleKind) -> SampleRuleKind:
    """Add `kind` to the registry (its parameters must be fields of `SampleStopRule`)."""
    if kind.name in SAMPLE_REGISTRY:
        raise ValueError(f"sample-stop rule {kind.name!r} registered twice")
    unknown = [p.name for p in kind.params if p.name not in PARAM_FIELDS]
    if unknown:
        raise ValueError(f"{kind.name}: parameters {unknown} are not SampleStopRule fields")
    if kind.params and not kind.short:
        raise ValueError(f"{kind.name}: a rule with parameters needs `short` (tuner names)")
    SAMPLE_REGISTRY[kind.name] = kind
    return kind


def sample_rule_names() -> tuple[str, ...]:
    """Every registered sample-stop rule, in registration order (the tuner's choice order)."""
    return tuple(SAMPLE_REGISTRY)


def sample_kind(rule: Any) -> SampleRuleKind:
    """The registered kind of a `SampleStopRule`."""
    return SAMPLE_REGISTRY[rule.rule]


def step_args(rule: Any) -> tuple[float, ...]:
    """The rule's parameter values in declared order, as its step takes them."""
    return tuple(getattr(rule, p.name) for p in sample_kind(rule).params)


def counted_sources(rule: Any) -> str | None:
    """Which answers count for `rule`: "any", "boxed" or "code"; None when none do."""
    counts = sample_kind(rule).counts
    if counts == "nothing":
        return None
    return "code" if counts == "code" else str(rule.sources)


def rule_holds(rule: Any, seen: int, same: int, run: int) -> bool:
    """The registered step of `rule` after a counting answer (see the module doc)."""
    return bool(sample_kind(rule).step(seen, same, run, *step_args(rule)))


def _fail(field: str, message: str) -> None:
    raise InputError(SOURCE, field, message)


def validate(rule: Any) -> None:
    """`SampleStopRule.__post_init__`'s check of `rule` and of its declared parameters."""
    if rule.rule not in SAMPLE_REGISTRY:
        _fail("rule", f"must be one of {', '.join(map(repr, SAMPLE_REGISTRY))} "
                      f"(got {rule.rule!r})")
    for p in sample_kind(rule).params:
        value = getattr(rule, p.name)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            _fail(p.name, f"must be a number (got {value!r})")
        if p.type is int and not float(value).is_integer():
            _fail(p.name, f"must be an integer (got {value!r})")
        if not math.isfinite(value):
            _fail(p.name, "must be a finite number")
        if value < p.low:
            _fail(p.name, f"must be ≥ {p.low:g}")
        if p.high is not None and value > p.high:
            _fail(p.name, f"must be ≤ {p.high:g}")


# --------------------------------------------------------------------------- docs


def _example_text(ex: tuple[tuple[int, int, int], Mapping[str, Any], bool]) -> str:
    (seen, same, run), values, result = ex
    args = "".join(f"{k}={v}, " for k, v in values.items())
    return (f"{args}seen={seen}, same={same}, run={run} → "
            f"{'holds' if result else 'does not hold'}")


_COUNTS_TEXT = {"sources": "as `sources` says", "code": "code answers only",
                "nothing": "none"}


def sample_rules_markdown() -> str:
    """docs/policy.md's table of the sample-stop rules (between the markers)."""
    out = [
        "The rules and their steps are declared once in `core/policy/sample_rules.py`. After each "
        "counting answer a rule sees seen (counting answers so far, this one included), same "
        "(how many of them had this value) and run (how many of the last ones in a row had it; "
        "answers that do not count neither extend nor break a run).",
        "",
        "| `rule` | parameters | counts | holds after a counting answer when … |",
        "|---|---|---|---|",
    ]
    for kind in SAMPLE_REGISTRY.values():
        params = "; ".join(
            f"`{p.name}`: {p.type_text()}"
            + (", required" if p.default is REQUIRED else f", default {p.default}")
            for p in kind.params) or "—"
        examples = "; ".join(_example_text(e) for e in kind.examples)
        out.append(f"| `{kind.name}` | {params} | {_COUNTS_TEXT[kind.counts]} | "
                   f"{kind.summary} (e.g. {examples}) |")
    return "\n".join(out) + "\n"


DOCS_BEGIN = "<!-- BEGIN sample-stop rules: generated by `python -m aimo.core.policy` -->"
DOCS_END = "<!-- END sample-stop rules -->"


def with_sample_rules_markdown(text: str) -> str:
    """`text` (docs/policy.md) with its generated sample-stop section replaced."""
    return with_generated(text, DOCS_BEGIN, DOCS_END, sample_rules_markdown(), "sample-stop ")


# --------------------------------------------------------------------------- the rules


def _first_step(seen: int, same: int, run: int) -> bool:
    """Any counting answer."""
    return seen >= 1


def _kth_step(seen: int, same: int, run: int, k: int) -> bool:
    """The k-th counting answer."""
    return seen >= k


def _repeated_step(seen: int, same: int, run: int, k: int) -> bool:
    """Some value has counted k times."""
    return same >= k


def _never_step(seen: int, same: int, run: int) -> bool:
    return False


register_sample_rule(SampleRuleKind(
    name="first_answer",
    summary="the first counting answer",
    step=_first_step,
    examples=(((1, 1, 1), {}, True),),
))

register_sample_rule(SampleRuleKind(
    name="first_code_success",
    summary=("the first counting code answer: the first moment the sample's latest code answer "
             "is a success (`sources` is ignored; seed: a code answer 0 or −1 never stops a code "
             "sample with `positive_only`)"),
    step=_first_step,
    counts="code",
    examples=(((1, 1, 1), {}, True),),
))

register_sample_rule(SampleRuleKind(
    name="kth_answer",
    summary="the k-th counting answer",
    step=_kth_step,
    params=(RuleParam("k", int, 1, default=1, search=(1, 4, None), probe=(1, 3),
                      help="k of kth_answer"),),
    short="kth",
    examples=(((1, 1, 1), {"k": 2}, False), ((2, 1, 1), {"k": 2}, True)),
))

register_sample_rule(SampleRuleKind(
    name="repeated_answer",
    summary="some value has counted k times within the sample",
    step=_repeated_step,
    params=(RuleParam("k", int, 2, search=(2, 4, None), probe=(2, 3),
                      help="k of repeated_answer"),),
    short="repeated",
    examples=(((3, 1, 1), {"k": 2}, False), ((3, 2, 1), {"k": 2}, True)),
))

register_sample_rule(SampleRuleKind(
    name="never",
    summary="never (the sample runs to its end or the token cap)",
    step=_never_step,
    counts="nothing",
    examples=(((1, 1, 1), {}, False),),
))


def _streak_step(seen: int, same: int, run: int, k: int) -> bool:
    """The last k counting answers had this value."""
    return run >= k


register_sample_rule(SampleRuleKind(
    name="streak_answer",
    summary=("the last k counting answers all had the same value: the sample has settled on "
             "it (where `repeated_answer` also stops on a value that comes back after others, "
             "e.g. 5, 7, 5)"),
    step=_streak_step,
    params=(RuleParam("k", int, 2, search=(2, 4, None), probe=(2, 3),
                      help="k of streak_answer"),),
    short="streak",
    examples=(((3, 2, 1), {"k": 2}, False), ((4, 2, 2), {"k": 2}, True),
              ((4, 3, 2), {"k": 3}, False)),
))


__all__ = [
    "PARAM_FIELDS", "SAMPLE_REGISTRY", "SampleRuleKind", "counted_sources", "register_sample_rule",
    "rule_holds", "sample_kind", "sample_rule_names", "sample_rules_markdown", "step_args",
    "validate", "with_sample_rules_markdown",
]
