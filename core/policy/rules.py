"""The question-stop rule registry: every answer-count rule of `question_stop.rules`, declared once.

Why: a rule used to be spelled out in the model, the decisions, the fast path's encoder and
kernel, the tuner's catalogue, the space YAML, the docs and the tests, and nothing failed when
one of them forgot it. Here a rule is one `RuleKind`: its name, its parameters (type, valid
range, default, the tuner's range, the tests' range) and one scalar *step*

    step(n, m, *values) -> bool

that says whether the rule holds when the question has `n` valid answers and the most frequent
value occurs `m` times among them (among the last `window` of them when the rule has a window
parameter that is set). Optional parameters that are not set reach the step as `ABSENT` (−1),
so a step is plain arithmetic on ints and floats: the Python paths call it
(`decisions.consistency_stop`: live loop and reference replay), the fast path tabulates it per
policy over every (n, m) a question can reach (`simulator.fast.encode`) and the kernel reads
the table — so the numba kernel, which its on-disk cache would not recompile when this file
changes, holds no per-rule code at all. A step must not decrease when m grows (a window never
raises m, and the kernel skips counting a window whose rule cannot hold with the overall m);
`tests/solver/test_rules.py` checks that, the declared `examples`, and that every step compiles
under numba, for every registered rule.

Derived from this registry: the policy language (one frozen dataclass per rule, built here,
selected in YAML by `rule: <name>`, "consistency" when absent), the tuner's catalogue and
`data/spaces/default.yaml`'s rule block (`tuner.space`), the rule tables of docs/policy.md
(`rules_markdown`; `python -m aimo.core.policy` rewrites them), and the tests' strategies.
Adding a rule is one `register(RuleKind(...))` call below (then regenerate the docs and the
space YAML; the tests say when they are stale).
"""

from __future__ import annotations

import dataclasses
import math
import re
import sys
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from aimo.core.errors import InputError

SOURCE = "<policy>"
ABSENT = -1  # an optional parameter that is not set, as a step sees it
DEFAULT_KIND = "consistency"  # the rule of an entry without `rule:` (and not written out)


class _Required:
    """The `default` of a parameter that has none (it must be given)."""

    def __repr__(self) -> str:
        return "REQUIRED"


REQUIRED: Any = _Required()


@dataclass(frozen=True)
class RuleParam:
    """One parameter of a rule.

    `low` / `high` bound valid values (`high` None: no upper bound), `at_least` names an earlier
    parameter whose value is a further lower bound; `optional` parameters may be null (absent).
    `search` is the tuner's range (low, high, step or None), None when the tuner does not search
    it through the default dimensions; `probe` is the range randomised tests draw from.
    """

    name: str
    type: type  # int or float
    low: float
    high: float | None = None
    default: Any = REQUIRED
    optional: bool = False
    at_least: str | None = None
    search: tuple[float, float, float | None] | None = None
    probe: tuple[float, float] = (0, 8)
    help: str = ""

    def type_text(self) -> str:
        """The type and range as the docs write it."""
        kind = "integer" if self.type is int else "number"
        if self.high is not None:
            text = f"{kind} in [{self.low:g}, {self.high:g}]"
        else:
            text = f"{kind} ≥ {'`' + self.at_least + '`' if self.at_least else f'{self.low:g}'}"
        return text + (", or null" if self.optional else "")


@dataclass(frozen=True)
class SearchDim:
    """One tuner dimension of a rule (named `question_stop.rule<i>.<name>` for the default rule,
    `question_stop.rule<i>.<rule>.<name>` for the others); `when`: (dimension, values) of this
    rule that make it active."""

    name: str
    kind: str  # "int" | "float" | "categorical"
    low: float | None = None
    high: float | None = None
    step: float | None = None
    choices: tuple[Any, ...] = ()
    when: tuple[str, tuple[Any, ...]] | None = None
    help: str = ""


@dataclass(frozen=True, slots=True)
class QuestionRule:
    """Base of every rule's dataclass (`RuleKind.cls`); the policy's `question_stop.rules` hold
    instances of its subclasses."""

    KIND: ClassVar[str] = ""

    def kind(self) -> RuleKind:
        return REGISTRY[self.KIND]

    def step_args(self) -> tuple[float, ...]:
        """The parameter values in declared order as the step takes them (None → ABSENT)."""
        return tuple(ABSENT if (v := getattr(self, p.name)) is None else v
                     for p in self.kind().params)

    def window(self) -> int | None:
        """The rule's window (count only the last k valid answers), None for all of them."""
        name = self.kind().window
        return None if name is None else getattr(self, name)

    def label(self, number: int) -> str:
        """The stop reason when this rule, the `number`-th of the question stop, holds."""
        return self.kind().label(number, self)

    def holds(self, valid_in_order: Sequence[int]) -> bool:
        """Whether the rule holds over the question's valid answers (in the question's order)."""
        n = len(valid_in_order)
        k = self.window()
        window = valid_in_order[-k:] if k is not None and k < n else valid_in_order
        m = max(Counter(window).values(), default=0)
        return bool(self.kind().step(n, m, *self.step_args()))


@dataclass(frozen=True)
class RuleKind:
    """A question-stop rule: see the module doc. `label(number, rule)` names a stop it causes;
    `examples`: (n, m, parameter values, expected step result), checked by the tests and shown
    in the docs; `search` / `from_search` / `to_search` override the tuner dimensions derived
    from the parameters' `search` ranges (see `search_dims`)."""

    name: str
    summary: str
    params: tuple[RuleParam, ...]
    step: Callable[..., bool]
    label: Callable[[int, Any], str]
    examples: tuple[tuple[int, int, Mapping[str, Any], bool], ...]
    window: str | None = None
    search: tuple[SearchDim, ...] | None = None
    from_search: Callable[[Mapping[str, Any]], dict[str, Any]] | None = None
    to_search: Callable[[Any], dict[str, Any]] | None = None
    cls: type = QuestionRule  # set by `register`

    def param(self, name: str) -> RuleParam:
        return next(p for p in self.params if p.name == name)


REGISTRY: dict[str, RuleKind] = {}


def _fail(field: str, message: str) -> None:
    raise InputError(SOURCE, field, message)


def _validate(self: QuestionRule) -> None:
    """__post_init__ of every rule dataclass: each parameter against its declared range."""
    for p in self.kind().params:
        value = getattr(self, p.name)
        if value is None:
            if not p.optional:
                _fail(p.name, "must be given (null is not allowed)")
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            _fail(p.name, f"must be a number (got {value!r})")
        if p.type is int and not float(value).is_integer():
            _fail(p.name, f"must be an integer (got {value!r})")
        if not math.isfinite(value):
            _fail(p.name, "must be a finite number")
        low = p.low
        if p.at_least is not None and getattr(self, p.at_least) is not None:
            low = max(low, getattr(self, p.at_least))
        if value < low:
            _fail(p.name, f"must be ≥ {low:g}")
        if p.high is not None and value > p.high:
            _fail(p.name, f"must be ≤ {p.high:g}")


def register(kind: RuleKind) -> RuleKind:
    """Add `kind` to the registry with its policy-language dataclass (fields in declared order,
    defaults as declared, validated on construction); returns it as registered."""
    if kind.name in REGISTRY:
        raise ValueError(f"question-stop rule {kind.name!r} registered twice")
    fields: list[tuple[str, Any] | tuple[str, Any, Any]] = []
    for p in kind.params:
        hint: Any = p.type | None if p.optional else p.type
        default = None if p.optional and p.default is REQUIRED else p.default
        fields.append((p.name, hint, dataclasses.field(default=default)) if default is not REQUIRED
                      else (p.name, hint))
    cls_name = "".join(w.capitalize() for w in kind.name.split("_")) + "Rule"
    cls = dataclasses.make_dataclass(
        cls_name, fields, bases=(QuestionRule,), frozen=True, slots=True,
        namespace={"KIND": kind.name, "__post_init__": _validate,
                   "__doc__": kind.summary, "__module__": __name__},
    )
    done = dataclasses.replace(kind, cls=cls)
    REGISTRY[kind.name] = done
    setattr(sys.modules[__name__], cls_name, cls)
    return done


def rule_class(name: str) -> type:
    """The dataclass of rule `name` (`InputError`-friendly lookup is the caller's)."""
    return REGISTRY[name].cls


def rule_names() -> tuple[str, ...]:
    """Every registered rule, the default first."""
    return tuple(REGISTRY)


# --------------------------------------------------------------------------- tuner dimensions


def search_dims(kind: RuleKind) -> tuple[SearchDim, ...]:
    """The tuner dimensions of `kind`: its own `search`, else one per parameter with a range."""
    if kind.search is not None:
        return kind.search
    return tuple(
        SearchDim(p.name, "int" if p.type is int else "float", low=p.search[0],
                  high=p.search[1], step=p.search[2], help=p.help)
        for p in kind.params if p.search is not None
    )


def rule_from_search(kind: RuleKind, values: Mapping[str, Any]) -> dict[str, Any]:
    """The rule's parameters (a policy-language mapping, `rule` key included unless the default
    rule) from the values of its tuner dimensions."""
    if kind.from_search is not None:
        params = kind.from_search(values)
    else:
        params = {p.name: (p.type(values[p.name]) if p.search is not None
                           else (None if p.default is REQUIRED else p.default))
                  for p in kind.params}
    return params if kind.name == DEFAULT_KIND else {"rule": kind.name, **params}


def search_of_rule(kind: RuleKind, rule: QuestionRule | None) -> dict[str, Any]:
    """The values of the kind's tuner dimensions that describe `rule` (None: canonical values,
    each dimension's lower end or first choice)."""
    dims = search_dims(kind)
    canonical = {d.name: (d.choices[0] if d.kind == "categorical" else
                          int(d.low) if d.kind == "int" else float(d.low))  # type: ignore[arg-type]
                 for d in dims}
    if rule is None or rule.KIND != kind.name:
        return canonical
    if kind.to_search is not None:
        return {**canonical, **kind.to_search(rule)}
    return {**canonical, **{d.name: getattr(rule, d.name) for d in dims}}


# --------------------------------------------------------------------------- docs


def _example_text(kind: RuleKind, ex: tuple[int, int, Mapping[str, Any], bool]) -> str:
    n, m, values, result = ex
    args = ", ".join(f"{k}={v}" for k, v in values.items())
    return f"{args}: n={n}, m={m} → {'holds' if result else 'does not hold'}"


def rules_markdown() -> str:
    """The docs' section on the question-stop rules (docs/policy.md, between the markers)."""
    out = [
        "Each entry of `rules` is one of the rules below, chosen by its `rule` key "
        f"(`{DEFAULT_KIND}` when the key is absent). A rule sees n, the number of valid "
        "answers, and m, how often the most frequent value occurs among them (among the last "
        "k with a window); the rules and their steps are declared once in "
        "`core/policy/rules.py`.",
        "",
    ]
    for kind in REGISTRY.values():
        out += [f"#### `rule: {kind.name}`", "", kind.summary, "",
                "| key | type | default | meaning |", "|---|---|---|---|"]
        for p in kind.params:
            default = ("required" if p.default is REQUIRED and not p.optional
                       else "null" if p.default is REQUIRED else f"{p.default}")
            out.append(f"| `{p.name}` | {p.type_text()} | {default} | {p.help} |")
        out += ["", "Examples: " + "; ".join(_example_text(kind, e) for e in kind.examples)
                + ".", ""]
    return "\n".join(out).rstrip() + "\n"


DOCS_BEGIN = "<!-- BEGIN question-stop rules: generated by `python -m aimo.core.policy` -->"
DOCS_END = "<!-- END question-stop rules -->"


def with_generated(text: str, begin: str, end: str, body: str, what: str) -> str:
    """`text` (docs/policy.md) with the section between the markers `begin` and `end` replaced
    by `body`; the one definition of a generated docs section (both rule registries use it)."""
    pattern = re.compile(re.escape(begin) + r"\n.*?" + re.escape(end), re.S)
    if not pattern.search(text):
        raise ValueError(f"docs/policy.md lacks the {what}generated-section markers")
    return pattern.sub(lambda _: f"{begin}\n{body}{end}", text)


def with_rules_markdown(text: str) -> str:
    """`text` (docs/policy.md) with its generated section replaced by `rules_markdown()`."""
    return with_generated(text, DOCS_BEGIN, DOCS_END, rules_markdown(), "")


# --------------------------------------------------------------------------- the rules


def _consistency_step(n: int, m: int, min_equal: int, max_answers: int, last_k: int,
                      min_answers: int) -> bool:
    """At most max_answers (ABSENT: any number), at least min_answers and min_equal valid
    answers, and some value min_equal times (in the last_k window: the caller's m)."""
    return ((max_answers < 0 or n <= max_answers) and n >= min_answers and n >= min_equal
            and m >= min_equal)


def _consistency_label(number: int, r: Any) -> str:
    parts = [f"rule{number}:{r.min_equal}"]
    if r.max_answers is not None:
        parts.append(f"≤{r.max_answers}")
    if r.last_k is not None:
        parts.append(f"last{r.last_k}")
    if r.min_answers:
        parts.append(f"≥{r.min_answers}")
    return "/".join(parts)


def _consistency_from_search(v: Mapping[str, Any]) -> dict[str, Any]:
    m = int(v["min_equal"])
    out: dict[str, Any] = {"min_equal": m, "max_answers": None, "last_k": None,
                           "min_answers": int(v["min_answers"])}
    if v["window"] != "none":
        out[v["window"]] = m + int(v["slack"])
    return out


def _consistency_to_search(r: Any) -> dict[str, Any]:
    window, slack = "none", 0
    if r.max_answers is not None:
        window, slack = "max_answers", r.max_answers - r.min_equal
    elif r.last_k is not None:
        window, slack = "last_k", r.last_k - r.min_equal
    return {"min_equal": r.min_equal, "window": window, "slack": slack,
            "min_answers": r.min_answers}


register(RuleKind(
    name="consistency",
    summary=("Holds when some value occurs at least `min_equal` times among the valid answers "
             "(among the last `last_k` in `order`, with a window), there are at most "
             "`max_answers` and at least `min_answers` of them. Stop reason "
             "`rule<i>:<min_equal>[/≤<max_answers>][/last<k>][/≥<min_answers>]`, e.g. "
             "`rule1:4/≤4`, `rule2:4/last5/≥5`."),
    params=(
        RuleParam("min_equal", int, 1, probe=(1, 4),
                  help="some value appears at least this often …"),
        RuleParam("max_answers", int, 1, optional=True, at_least="min_equal", probe=(1, 8),
                  help="… and there are at most this many valid answers"),
        RuleParam("last_k", int, 1, optional=True, at_least="min_equal", probe=(1, 7),
                  help="… counting only among the last k valid answers (in `order`)"),
        RuleParam("min_answers", int, 0, default=0, probe=(0, 5),
                  help="… and there are at least this many valid answers"),
    ),
    step=_consistency_step,
    label=_consistency_label,
    window="last_k",
    examples=(
        (4, 4, {"min_equal": 4, "max_answers": 4}, True),
        (5, 4, {"min_equal": 4, "max_answers": 4}, False),
        (5, 3, {"min_equal": 4, "last_k": 5, "min_answers": 5}, False),
        (6, 4, {"min_equal": 4, "last_k": 5, "min_answers": 5}, True),
    ),
    search=(
        SearchDim("min_equal", "int", 2, 10, help="some value appears this often"),
        SearchDim("window", "categorical", choices=("none", "max_answers", "last_k"),
                  help="none, among ≤ min_equal+slack valid answers, or among the last "
                       "min_equal+slack"),
        SearchDim("slack", "int", 0, 6, when=("window", ("max_answers", "last_k")),
                  help="max_answers or last_k minus min_equal"),
        SearchDim("min_answers", "int", 0, 12, help="and at least this many valid answers"),
    ),
    from_search=_consistency_from_search,
    to_search=_consistency_to_search,
))

ConsistencyRule: type = REGISTRY["consistency"].cls  # (also set by register; named for mypy)


def _leader_share_step(n: int, m: int, share: float, min_answers: int) -> bool:
    """At least min_answers valid answers, the most frequent value at least `share` of them."""
    return n >= min_answers and m >= share * n


def _leader_share_label(number: int, r: Any) -> str:
    return f"rule{number}:share{r.share:g}/≥{r.min_answers}"


register(RuleKind(
    name="leader_share",
    summary=("Holds once there are at least `min_answers` valid answers and the most frequent "
             "value is at least a `share` of them (m ≥ share · n): agreement measured against "
             "the answers seen so far, where `consistency` asks for a fixed count — 3 of 4, "
             "4 of 5 and 6 of 8 all stop at share 0.75. Stop reason "
             "`rule<i>:share<share>/≥<min_answers>`, e.g. `rule1:share0.75/≥4`."),
    params=(
        RuleParam("share", float, 0.0, 1.0, search=(0.5, 1.0, 0.05), probe=(0.3, 1.0),
                  help="the leading value's share of the valid answers …"),
        RuleParam("min_answers", int, 1, search=(2, 12, None), probe=(1, 6),
                  help="… once there are at least this many valid answers"),
    ),
    step=_leader_share_step,
    label=_leader_share_label,
    examples=(
        (4, 3, {"share": 0.75, "min_answers": 4}, True),
        (4, 2, {"share": 0.75, "min_answers": 4}, False),
        (3, 3, {"share": 0.75, "min_answers": 4}, False),
        (8, 6, {"share": 0.75, "min_answers": 4}, True),
        (8, 5, {"share": 0.75, "min_answers": 4}, False),
    ),
))


def write_docs(path: Path) -> bool:
    """Rewrite the generated section of the docs file at `path`; True when it changed."""
    text = path.read_text(encoding="utf-8")
    new = with_rules_markdown(text)
    if new != text:
        path.write_text(new, encoding="utf-8")
    return new != text


__all__ = [
    "ABSENT", "DEFAULT_KIND", "REGISTRY", "ConsistencyRule", "QuestionRule", "RuleKind",
    "RuleParam", "SearchDim", "register", "rule_class", "rule_from_search", "rule_names",
    "rules_markdown", "search_dims", "search_of_rule", "with_generated", "with_rules_markdown",
    "write_docs",
]
