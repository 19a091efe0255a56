"""The search space: named parameters over the policy language, conditional, narrowable from YAML.

Why: the tuner must be able to reach every decision a policy expresses (sample mix, sample and
question stops, timeouts, vote weights, speed schedule, check granularity) while every point it
suggests is a valid `Policy`. Each parameter has a distribution and, optionally, a condition on an
earlier parameter (e.g. `grace_tokens` only when the rule is not `never`); inactive parameters
are never suggested and take a canonical value, so two points differing only there build the same
policy. The schedule is parameterised *relative to the base policy* (the seed preset by default):
the start level's samples, quorum and timeout are set, and the other levels move with it, so the
seed itself is one point of the space and is enqueued as the first trial.

The catalogue lives here; `data/spaces/default.yaml` documents it and loads to the same space.
A narrowing file (`load_space`) fixes some parameters and bounds others; see docs/tuner.md.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml

from aimo.data import DATA_DIR
from aimo.core.errors import InputError
from aimo.core.policy import Policy, load_policy, policy_from_dict, policy_to_dict, uses_confidence
from aimo.core.policy.rules import (
    DEFAULT_KIND, REGISTRY, QuestionRule, RuleKind, rule_from_search, search_dims, search_of_rule,
)
from aimo.core.policy.sample_rules import SAMPLE_REGISTRY, SampleRuleKind

SPACES_DIR = DATA_DIR / "spaces"
DEFAULT_SPACE_FILE = SPACES_DIR / "default.yaml"
DEFAULT_BASE = "seed-2nd-place"
MAX_RULES = 4
SOURCE = "<search space>"

ParamKind = Literal["int", "float", "categorical"]
STOP_RULES: tuple[str, ...] = tuple(SAMPLE_REGISTRY)
_STOPPING_RULES = tuple(n for n, k in SAMPLE_REGISTRY.items() if k.counts != "nothing")
_SOURCES_RULES = tuple(n for n, k in SAMPLE_REGISTRY.items() if k.counts == "sources")


@dataclass(frozen=True)
class Condition:
    """A parameter is active when `param` is active and its value is in `values` (or ≥ `at_least`)."""

    param: str
    values: tuple[Any, ...] = ()
    at_least: int | None = None

    def holds(self, value: Any) -> bool:
        if self.at_least is not None:
            return value is not None and value >= self.at_least
        return value in self.values

    def describe(self) -> str:
        if self.at_least is not None:
            return f"{self.param} >= {self.at_least}"
        return f"{self.param} in {list(self.values)}"


@dataclass(frozen=True)
class Param:
    """One dimension: an int/float range (optionally stepped or log) or a list of choices."""

    name: str
    kind: ParamKind
    low: float | None = None
    high: float | None = None
    step: float | None = None
    log: bool = False
    choices: tuple[Any, ...] = ()
    when: Condition | None = None
    help: str = ""

    def distribution(self) -> Any:
        """The Optuna distribution (imported lazily: `import tuner` stays light)."""
        from optuna.distributions import (
            CategoricalDistribution, FloatDistribution, IntDistribution,
        )

        if self.kind == "categorical":
            return CategoricalDistribution(self.choices)
        if self.kind == "int":
            return IntDistribution(int(self.low), int(self.high), log=self.log,  # type: ignore[arg-type]
                                   step=int(self.step or 1))
        return FloatDistribution(self.low, self.high, log=self.log, step=self.step)  # type: ignore[arg-type]

    def suggest(self, trial: Any) -> Any:
        """Ask an Optuna trial for this parameter's value."""
        if self.kind == "categorical":
            return trial.suggest_categorical(self.name, list(self.choices))
        if self.kind == "int":
            return trial.suggest_int(self.name, int(self.low), int(self.high),  # type: ignore[arg-type]
                                     step=int(self.step or 1), log=self.log)
        return trial.suggest_float(self.name, self.low, self.high, step=self.step, log=self.log)  # type: ignore[arg-type]

    def contains(self, value: Any) -> bool:
        """Whether `value` is a point of this dimension (type, range and grid)."""
        if self.kind == "categorical":
            return any(_same(value, c) for c in self.choices)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return False
        if self.kind == "int" and not float(value).is_integer():
            return False
        if not self.low <= value <= self.high:  # type: ignore[operator]
            return False
        if self.step:
            k = (value - self.low) / self.step  # type: ignore[operator]
            return abs(k - round(k)) < 1e-6
        return True

    def project(self, value: Any) -> Any:
        """The nearest point of this dimension (used to enqueue a base that lies outside it)."""
        if self.contains(value):
            return value
        if self.kind == "categorical":
            return self.choices[0]
        low, high = self.low, self.high
        assert low is not None and high is not None  # a numeric dimension has both bounds
        v = min(max(float(value), low), high)
        if self.step:
            v = low + round((v - low) / self.step) * self.step
            v = min(v, high)
        return int(round(v)) if self.kind == "int" else float(v)

    def describe(self) -> dict[str, Any]:
        """Plain data for docs, YAML and fingerprints."""
        out: dict[str, Any] = {}
        if self.kind == "categorical":
            out["choices"] = list(self.choices)
        else:
            out.update(type=self.kind, low=self.low, high=self.high)
            if self.step:
                out["step"] = self.step
            if self.log:
                out["log"] = True
        if self.when is not None:
            out["when"] = self.when.describe()
        return out


def _same(a: Any, b: Any) -> bool:
    """Equality that keeps True apart from 1 and None apart from 0."""
    return type(a) is type(b) and a == b or (
        isinstance(a, (int, float)) and isinstance(b, (int, float))
        and not isinstance(a, bool) and not isinstance(b, bool) and a == b
    )


# --------------------------------------------------------------------------- the catalogue


def _cat(name: str, choices: Sequence[Any], help: str, when: Condition | None = None) -> Param:
    return Param(name, "categorical", choices=tuple(choices), when=when, help=help)


def _int(name: str, low: int, high: int, help: str, *, step: int | None = None,
         when: Condition | None = None) -> Param:
    return Param(name, "int", low=low, high=high, step=step, when=when, help=help)


def _float(name: str, low: float, high: float, help: str, *, step: float | None = None,
           log: bool = False, when: Condition | None = None) -> Param:
    return Param(name, "float", low=low, high=high, step=step, log=log, when=when, help=help)


def _catalogue() -> tuple[Param, ...]:
    """Every parameter of the default space, in suggestion order (conditions look backwards)."""
    out = [
        _cat("samples.order", ["interleave", "cot_first", "code_first"], "layout of kinds over slots"),
        _cat("samples.first_kind", ["cot", "code"], "kind of slot 0 (and of the odd sample)"),
        _float("samples.cot_fraction", 0.0, 1.0, "share of CoT samples", step=0.05),
    ]
    for kind in ("cot", "code"):
        out += _sample_stop_params(kind)
    out += [
        _int("sample_stop.max_tokens", 4096, 16384, "token cap of any sample", step=512),
        _cat("question_stop.order", ["arrival", "index"], "order of valid answers for last_k"),
        _cat("question_stop.valid.prefer_code", [True, False], "code answer first as a sample's valid one"),
        _cat("question_stop.valid.positive_only", [True, False], "drop valid values ≤ 0"),
        _int("question_stop.n_rules", 0, MAX_RULES, "number of question-stop rules"),
    ]
    for i in range(1, MAX_RULES + 1):
        out += _rule_params(i)
    adaptive = Condition("schedule.adaptive", (True,))
    out += [
        _cat("vote.code_over_boxed", [True, False], "a sample with both keeps only its code answer"),
        _float("vote.kind_weights.code", 0.25, 4.0, "weight of code samples (CoT stays at the base's)",
               log=True),
        _cat("vote.small_max", [None, 0, 5, 10, 20, 50], "values ≤ this are small (null: none)"),
        _cat("vote.round_multiple", [None, 10, 100], "multiples of this are round (null: none)"),
        _float("vote.small_or_round_weight", 0.0, 1.5, "weight factor of small/round values", step=0.05),
        _float("vote.length_weight", 0.0, 3.0, "λ of exp(-λ·tokens/10000)", step=0.1),
        _cat("vote.tie_break", ["larger", "smaller", "first"], "among equal totals"),
        _int("schedule.samples", 4, 32, "samples at the start level (other levels shift with it)"),
        _int("schedule.min_answers", 1, 33, "quorum at the start level (others shift with it)"),
        _float("schedule.timeout_s", 240.0, 1200.0,
               "timeout at the start level; other levels and early timeouts scale with it", step=30.0),
        _cat("schedule.early_timeouts", [True, False], "keep the base's early timeouts"),
        _int("schedule.early_min_answers_delta", -4, 4, "added to each early timeout's min_answers",
             when=Condition("schedule.early_timeouts", (True,))),
        _cat("schedule.adaptive", [True, False], "all base levels with re-evaluation, or the start level only"),
        _float("schedule.threshold_scale", 0.5, 2.0, "multiplies the level thresholds", step=0.05,
               when=adaptive),
        _int("schedule.reeval_after", 0, 45, "first re-evaluation after this many questions", step=5,
             when=adaptive),
        _int("schedule.reeval_every", 1, 5, "then every this many questions", when=adaptive),
        _cat("check.every_tokens", [10, 20, 40, 80, 160, 320], "check granularity in tokens"),
    ]
    out += _confidence_params()
    return tuple(out)


def _sample_dim(kind: str, rule: SampleRuleKind, param: str) -> str:
    """Where a sample-stop rule's parameter is searched: sample_stop.<kind>.<param>_<short>
    (e.g. sample_stop.cot.k_kth)."""
    return f"sample_stop.{kind}.{param}_{rule.short}"


def _sample_stop_params(kind: str) -> list[Param]:
    """The sample-stop rule of prompt kind `kind`: which registered rule
    (core/policy/sample_rules.py), each rule's searched parameters, then the keys every rule
    that can stop shares (grace_tokens, positive_only) and `sources` for the rules it steers."""
    p = f"sample_stop.{kind}"
    out = [_cat(f"{p}.rule", STOP_RULES, f"when a {kind} sample stops")]
    for rule in SAMPLE_REGISTRY.values():
        for param in rule.params:
            if param.search is not None:
                low, high, step = param.search
                out.append(Param(_sample_dim(kind, rule, param.name),
                                 "int" if param.type is int else "float", low=low, high=high,
                                 step=step, help=param.help,
                                 when=Condition(f"{p}.rule", (rule.name,))))
    stopping = Condition(f"{p}.rule", _STOPPING_RULES)
    return out + [
        _int(f"{p}.grace_tokens", 0, 4000, "tokens generated after the condition", step=100,
             when=stopping),
        _cat(f"{p}.positive_only", [False, True], "only values > 0 count", when=stopping),
        _cat(f"{p}.sources", ["any", "boxed", "code"], "which answers count",
             when=Condition(f"{p}.rule", _SOURCES_RULES)),
    ]


def _rule_prefix(i: int, kind: RuleKind) -> str:
    """Where rule i's dimensions of `kind` are named: question_stop.rule<i>.<dim> for the
    default rule (the names predate the registry), question_stop.rule<i>.<rule>.<dim> else."""
    p = f"question_stop.rule{i}"
    return p if kind.name == DEFAULT_KIND else f"{p}.{kind.name}"


def _rule_params(i: int) -> list[Param]:
    """Rule i of the question stop: which registered rule, then that rule's dimensions
    (`core.policy.rules.search_dims`), active when rule i is on and of that kind."""
    p = f"question_stop.rule{i}"
    out = [_cat(f"{p}.rule", tuple(REGISTRY), "which question-stop rule (core/policy/rules.py)",
                when=Condition("question_stop.n_rules", at_least=i))]
    for kind in REGISTRY.values():
        prefix = _rule_prefix(i, kind)
        mine = Condition(f"{p}.rule", (kind.name,))
        for d in search_dims(kind):
            when = mine if d.when is None else Condition(f"{prefix}.{d.when[0]}", d.when[1])
            out.append(Param(f"{prefix}.{d.name}", d.kind,  # type: ignore[arg-type]
                             low=d.low, high=d.high, step=d.step, choices=d.choices, when=when,
                             help=d.help))
    return out


CONF_WINDOWS = (256, 512, 1024, 2048, 4096)
CONFIDENCE_PARAMS = ("sample_stop.confidence.mode", "vote.confidence")  # off switches (see below)


def _confidence_params() -> list[Param]:
    """The confidence and time-aware elements (issue 17): DeepConf sample stop, confidence vote
    weights and filtering, the uncatchable-leader stop, the per-question budget."""
    mode = Condition("sample_stop.confidence.mode", ("fixed", "online"))
    weighted = Condition("vote.confidence", ("inv_entropy", "mean", "tail", "lowest_group"))
    budget = Condition("schedule.budget", (True,))
    return [
        _cat("sample_stop.confidence.mode", ["off", "fixed", "online"],
             "stop a sample on low group confidence: off, fixed threshold, or DeepConf online"),
        _cat("sample_stop.confidence.window", CONF_WINDOWS, "group size in tokens", when=mode),
        _float("sample_stop.confidence.threshold", 0.1, 50.0, "fixed threshold", log=True,
               when=Condition("sample_stop.confidence.mode", ("fixed",))),
        _int("sample_stop.confidence.warmup", 1, 8, "warm-up samples that set the threshold",
             when=Condition("sample_stop.confidence.mode", ("online",))),
        _float("sample_stop.confidence.percentile", 0.0, 90.0,
               "percentile of the warm-up lowest group confidences", step=5.0,
               when=Condition("sample_stop.confidence.mode", ("online",))),
        _cat("vote.confidence", ["none", "inv_entropy", "mean", "tail", "lowest_group"],
             "vote weight × the sample's confidence metric"),
        _cat("vote.confidence_window", CONF_WINDOWS, "group size of tail / lowest_group",
             when=Condition("vote.confidence", ("tail", "lowest_group"))),
        _float("vote.keep_top", 0.1, 1.0, "only the most confident share of voters votes",
               step=0.05, when=weighted),
        _cat("question_stop.uncatchable", [False, True], "stop once the leader cannot be caught"),
        _cat("schedule.budget", [False, True],
             "per-question timeout clamp(time_left − remaining × reserve_s, min_s, max_s)"),
        _float("schedule.budget.reserve_s", 0.0, 900.0, "seconds kept per remaining question",
               step=30.0, when=budget),
        _float("schedule.budget.min_s", 60.0, 900.0, "smallest per-question budget", step=30.0,
               when=budget),
        _float("schedule.budget.max_s", 300.0, 1800.0, "largest per-question budget (≥ min_s)",
               step=60.0, when=budget),
    ]


CATALOGUE: tuple[Param, ...] = _catalogue()
_BY_NAME: dict[str, Param] = {p.name: p for p in CATALOGUE}


# --------------------------------------------------------------------------- values <-> policy


def _stop_rule(values: Mapping[str, Any], kind: str) -> dict[str, Any]:
    p = f"sample_stop.{kind}"
    rule = SAMPLE_REGISTRY[values[f"{p}.rule"]]
    out: dict[str, Any] = {"rule": rule.name, "k": 1, "grace_tokens": 0, "positive_only": False,
                           "sources": "any"}
    for param in rule.params:
        if param.search is not None:
            out[param.name] = param.type(values[_sample_dim(kind, rule, param.name)])
    if rule.name in _STOPPING_RULES:
        out["grace_tokens"] = int(values[f"{p}.grace_tokens"])
        out["positive_only"] = bool(values[f"{p}.positive_only"])
    if rule.name in _SOURCES_RULES:
        out["sources"] = values[f"{p}.sources"]
    return out


def _sample_stop_point(policy: Policy) -> dict[str, Any]:
    """`point_of` for the sample-stop rules: each registered rule's parameters read off the
    policy's rule (raised to the parameter's lower bound where the rule does not have it)."""
    v: dict[str, Any] = {}
    for kind in ("cot", "code"):
        r = policy.sample_stop.rule_for(kind)
        p = f"sample_stop.{kind}"
        v.update({f"{p}.rule": r.rule, f"{p}.grace_tokens": r.grace_tokens,
                  f"{p}.positive_only": r.positive_only, f"{p}.sources": r.sources})
        for rule in SAMPLE_REGISTRY.values():
            for param in rule.params:
                if param.search is not None:
                    v[_sample_dim(kind, rule, param.name)] = param.type(
                        max(param.low, getattr(r, param.name)))
    return v


def _rules(values: Mapping[str, Any]) -> list[dict[str, Any]]:
    rules = []
    for i in range(1, int(values["question_stop.n_rules"]) + 1):
        kind = REGISTRY[values[f"question_stop.rule{i}.rule"]]
        prefix = _rule_prefix(i, kind)
        dims = {d.name: values[f"{prefix}.{d.name}"] for d in search_dims(kind)}
        rules.append(rule_from_search(kind, dims))
    return rules


def _rules_point(rules: tuple[QuestionRule, ...]) -> dict[str, Any]:
    """`point_of` for the question-stop rules."""
    v: dict[str, Any] = {}
    for i in range(1, MAX_RULES + 1):
        rule = rules[i - 1] if i <= len(rules) else None
        v[f"question_stop.rule{i}.rule"] = DEFAULT_KIND if rule is None else rule.KIND
        for kind in REGISTRY.values():
            prefix = _rule_prefix(i, kind)
            v.update({f"{prefix}.{k}": x for k, x in search_of_rule(kind, rule).items()})
    return v


def _schedule(base: Mapping[str, Any], values: Mapping[str, Any]) -> dict[str, Any]:
    sched = dict(base)
    levels = base["levels"]
    start = base["start_level"] - 1
    ref = levels[start]
    d_samples = int(values["schedule.samples"]) - ref["samples"]
    d_quorum = int(values["schedule.min_answers"]) - ref["min_answers"]
    ratio = float(values["schedule.timeout_s"]) / ref["timeout_s"]
    early = bool(values["schedule.early_timeouts"])
    d_early = int(values["schedule.early_min_answers_delta"]) if early else 0
    adaptive = bool(values["schedule.adaptive"])
    kept = list(range(len(levels))) if adaptive else [start]
    new_levels = []
    for j in kept:
        lv = levels[j]
        timeout = float(values["schedule.timeout_s"]) if j == start else lv["timeout_s"] * ratio
        new_levels.append({
            "name": lv["name"],
            "samples": max(1, lv["samples"] + d_samples),
            "min_answers": max(1, lv["min_answers"] + d_quorum),
            "timeout_s": timeout,
            "early_timeouts": [
                {"after_s": e["after_s"] * ratio, "min_answers": max(0, e["min_answers"] + d_early)}
                for e in lv["early_timeouts"]
            ] if early else [],
        })
    sched["levels"] = new_levels
    if adaptive:
        scale = float(values["schedule.threshold_scale"])
        sched["thresholds_s"] = [t * scale for t in base["thresholds_s"]]
        sched["reeval_after"] = int(values["schedule.reeval_after"])
        sched["reeval_every"] = int(values["schedule.reeval_every"])
    else:
        sched["start_level"] = 1
        sched["thresholds_s"] = []
    return sched


def build_policy(base: Policy, values: Mapping[str, Any], name: str) -> Policy:
    """The policy at `values` (every active parameter given), starting from `base`.

    Deterministic repairs keep impossible combinations valid: level sizes and quorums are
    clamped to ≥ 1, early-timeout quorums to ≥ 0, the token cap to the base's max_new_tokens.

    Raises:
        InputError: the combination is still invalid (the tuner prunes such a trial).
    """
    d = policy_to_dict(base)
    d["name"] = name
    d["samples"] = {"order": values["samples.order"], "first_kind": values["samples.first_kind"],
                    "cot_fraction": float(values["samples.cot_fraction"])}
    cap = min(int(values["sample_stop.max_tokens"]), d["generation"]["max_new_tokens"])
    d["sample_stop"] = {"cot": _stop_rule(values, "cot"), "code": _stop_rule(values, "code"),
                        "max_tokens": cap, "confidence": _confidence_stop(values)}
    d["question_stop"] = {
        "order": values["question_stop.order"],
        "rules": _rules(values),
        "valid": {"prefer_code": bool(values["question_stop.valid.prefer_code"]),
                  "positive_only": bool(values["question_stop.valid.positive_only"])},
        "uncatchable": bool(values["question_stop.uncatchable"]),
    }
    vote = dict(d["vote"])
    vote.update(
        code_over_boxed=bool(values["vote.code_over_boxed"]),
        kind_weights={**vote["kind_weights"], "code": float(values["vote.kind_weights.code"])},
        small_max=values["vote.small_max"],
        round_multiple=values["vote.round_multiple"],
        small_or_round_weight=float(values["vote.small_or_round_weight"]),
        length_weight=float(values["vote.length_weight"]),
        tie_break=values["vote.tie_break"],
        confidence=values["vote.confidence"],
    )
    if vote["confidence"] in ("tail", "lowest_group"):
        vote["confidence_window"] = int(values["vote.confidence_window"])
    vote["keep_top"] = 1.0 if vote["confidence"] == "none" else float(values["vote.keep_top"])
    d["vote"] = vote
    d["schedule"] = _schedule(d["schedule"], values)
    d["schedule"]["budget"] = None
    if values["schedule.budget"]:
        lo = float(values["schedule.budget.min_s"])
        d["schedule"]["budget"] = {"reserve_s": float(values["schedule.budget.reserve_s"]),
                                   "min_s": lo,
                                   "max_s": max(lo, float(values["schedule.budget.max_s"]))}
    # the check's reading (boxes, boxed_zero, code_overlap), the vote's tie_tolerance and
    # final_read and the schedule's early_timeout_count describe how answers are read, not a
    # choice to search: they stay the base's (docs/seed-policy.md)
    d["check"] = {**d["check"], "every_tokens": int(values["check.every_tokens"])}
    return policy_from_dict(d, source=SOURCE)


def _confidence_stop(values: Mapping[str, Any]) -> dict[str, Any] | None:
    mode = values["sample_stop.confidence.mode"]
    if mode == "off":
        return None
    out: dict[str, Any] = {"window": int(values["sample_stop.confidence.window"])}
    if mode == "fixed":
        out["threshold"] = float(values["sample_stop.confidence.threshold"])
    else:
        out["warmup"] = int(values["sample_stop.confidence.warmup"])
        out["percentile"] = float(values["sample_stop.confidence.percentile"])
    return out


def _confidence_point(policy: Policy) -> dict[str, Any]:
    """`point_of` for the confidence and time-aware parameters."""
    c = policy.sample_stop.confidence
    b = policy.schedule.budget
    return {
        "sample_stop.confidence.mode": ("off" if c is None else
                                        "fixed" if c.threshold is not None else "online"),
        "sample_stop.confidence.window": 2048 if c is None else c.window,
        "sample_stop.confidence.threshold": (
            1.0 if c is None or c.threshold is None else c.threshold),
        "sample_stop.confidence.warmup": 4 if c is None or not c.warmup else c.warmup,
        "sample_stop.confidence.percentile": 10.0 if c is None else c.percentile,
        "vote.confidence": policy.vote.confidence,
        "vote.confidence_window": policy.vote.confidence_window,
        "vote.keep_top": policy.vote.keep_top,
        "question_stop.uncatchable": policy.question_stop.uncatchable,
        "schedule.budget": b is not None,
        "schedule.budget.reserve_s": 300.0 if b is None else b.reserve_s,
        "schedule.budget.min_s": 300.0 if b is None else b.min_s,
        "schedule.budget.max_s": 900.0 if b is None else b.max_s,
    }


def without_confidence(space: SearchSpace) -> SearchSpace:
    """`space` with the elements that read token confidence held off (for stores without it):
    the confidence sample stop and confidence votes; the time-aware elements stay searched."""
    if not uses_confidence(space.base):
        fixed = dict(space.fixed)
        fixed.update({"sample_stop.confidence.mode": "off", "vote.confidence": "none"})
        params = tuple(p for p in space.params if p.name not in CONFIDENCE_PARAMS)
        return dataclasses.replace(space, params=params, fixed=tuple(fixed.items()))
    raise InputError(space.source, "base", f"policy {space.base.name!r} reads token "
                     "confidence, but the trace store has none")


def store_has_confidence(problems: Sequence[Any]) -> bool:
    """Whether every sample of the store carries token confidence and entropy."""
    return all(s.token_conf is not None and s.token_entropy is not None
               for p in problems for s in p.samples)


def space_for_store(space: SearchSpace, problems: Sequence[Any]) -> SearchSpace:
    """The space as the tuner searches it on `problems`: `without_confidence` unless the store
    carries confidence (so no trial reads what the traces lack)."""
    return space if store_has_confidence(problems) else without_confidence(space)


def point_of(policy: Policy) -> dict[str, Any]:
    """The catalogue values that describe `policy` (every parameter, active or not).

    For a policy built on itself as the base this is exact: `build_policy(p, point_of(p))`
    equals `p` when p has at most MAX_RULES consistency rules, none with both a max_answers and
    a last_k, and kind weights whose CoT entry the space keeps.
    """
    v: dict[str, Any] = {
        "samples.order": policy.samples.order,
        "samples.first_kind": policy.samples.first_kind,
        "samples.cot_fraction": policy.samples.cot_fraction,
        "sample_stop.max_tokens": policy.sample_stop.max_tokens,
        "question_stop.order": policy.question_stop.order,
        "question_stop.valid.prefer_code": policy.question_stop.valid.prefer_code,
        "question_stop.valid.positive_only": policy.question_stop.valid.positive_only,
        "question_stop.n_rules": min(len(policy.question_stop.rules), MAX_RULES),
        "vote.code_over_boxed": policy.vote.code_over_boxed,
        "vote.kind_weights.code": policy.vote.kind_weights.code,
        "vote.small_max": policy.vote.small_max,
        "vote.round_multiple": policy.vote.round_multiple,
        "vote.small_or_round_weight": policy.vote.small_or_round_weight,
        "vote.length_weight": policy.vote.length_weight,
        "vote.tie_break": policy.vote.tie_break,
        "check.every_tokens": policy.check.every_tokens,
    }
    v.update(_sample_stop_point(policy))
    v.update(_rules_point(policy.question_stop.rules))
    s = policy.schedule
    ref = s.levels[s.start_level - 1]
    v.update({
        "schedule.samples": ref.samples,
        "schedule.min_answers": ref.min_answers,
        "schedule.timeout_s": ref.timeout_s,
        "schedule.early_timeouts": any(lv.early_timeouts for lv in s.levels),
        "schedule.early_min_answers_delta": 0,
        "schedule.adaptive": len(s.levels) > 1,
        "schedule.threshold_scale": 1.0,
        "schedule.reeval_after": s.reeval_after,
        "schedule.reeval_every": s.reeval_every,
    })
    v.update(_confidence_point(policy))
    return v


# --------------------------------------------------------------------------- the space


@dataclass(frozen=True)
class SearchSpace:
    """The parameters the tuner searches (`params`) and those it holds (`fixed`), over `base`.

    Immutable and cheap to rebuild; each worker process loads its own from the same file.
    """

    base: Policy
    params: tuple[Param, ...]
    fixed: tuple[tuple[str, Any], ...] = ()
    source: str = "default"

    @property
    def fixed_values(self) -> dict[str, Any]:
        return dict(self.fixed)

    def _defaults(self) -> dict[str, Any]:
        return point_of(self.base)

    def suggest(self, trial: Any) -> dict[str, Any]:
        """Every value needed to build a policy: fixed, suggested where active, canonical otherwise."""
        values = self._defaults()
        values.update(self.fixed)
        free = {p.name for p in self.params}
        for param in self._ordered():
            if param.name in free and self.is_active(param, values):
                values[param.name] = param.suggest(trial)
        return values

    def _ordered(self) -> tuple[Param, ...]:
        by_name = {p.name: p for p in self.params}
        return tuple(by_name.get(p.name, p) for p in CATALOGUE if p.name in by_name)

    def is_active(self, param: Param, values: Mapping[str, Any]) -> bool:
        """Whether `param` matters given the values chosen so far (conditions chain)."""
        cond = param.when
        if cond is None:
            return True
        parent = _BY_NAME[cond.param]
        return self.is_active(parent, values) and cond.holds(values.get(cond.param))

    def can_be_active(self, param: Param) -> bool:
        """False when a fixed value up `param`'s condition chain rules it out in every trial."""
        fixed, free = self.fixed_values, {p.name for p in self.params}
        cond = param.when
        while cond is not None:
            if cond.param not in free:
                value = fixed.get(cond.param, self._defaults().get(cond.param))
                if not cond.holds(value):
                    return False
            cond = _BY_NAME[cond.param].when
        return True

    def sampler_space(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """What a sampler modelling the whole space at once needs (`tuner.tpe.FlatTPESampler`):
        the Optuna distribution of every searched parameter that can be active, in catalogue
        order, and a canonical value inside each (the base's, projected) for trials that have
        none (the parameter was inactive there)."""
        point = self._defaults()
        point.update(self.fixed)
        dists: dict[str, Any] = {}
        canonical: dict[str, Any] = {}
        for param in self._ordered():
            if self.can_be_active(param):
                dists[param.name] = param.distribution()
                canonical[param.name] = param.project(point[param.name])
        return dists, canonical

    def values_of(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """Complete values from an Optuna trial's `params` (fixed and inactive ones filled in)."""
        values = self._defaults()
        values.update(self.fixed)
        values.update(params)
        return values

    def policy(self, values: Mapping[str, Any], name: str = "tuned") -> Policy:
        """Build the policy at `values` (see `build_policy`)."""
        return build_policy(self.base, values, name)

    def base_params(self) -> tuple[dict[str, Any], list[str]]:
        """Optuna params that reproduce the base policy (to enqueue), and what had to be moved.

        A base value outside a narrowed range is projected to the nearest point; each such
        move is listed (then the first trial is the base's projection, not the base itself).
        """
        point = self._defaults()
        point.update(self.fixed)
        free = {p.name for p in self.params}
        out: dict[str, Any] = {}
        moved: list[str] = []
        for param in self._ordered():
            if param.name not in free or not self.is_active(param, point):
                continue
            value = param.project(point[param.name])
            if not _same(value, point[param.name]):
                moved.append(f"{param.name}: {point[param.name]!r} -> {value!r}")
                point[param.name] = value
            out[param.name] = value
        return out, moved

    def fingerprint(self) -> str:
        """A stable hash of the base, the distributions and the fixed values (for resume checks)."""
        from aimo.core.policy import policy_hash

        data = {
            "base": policy_hash(self.base),
            "params": {p.name: p.describe() for p in self.params},
            "fixed": {k: v for k, v in self.fixed},
        }
        text = json.dumps(data, sort_keys=True, default=repr)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def describe(self) -> dict[str, Any]:
        """Plain data: base name, searched parameters with their ranges, fixed values."""
        return {
            "base": self.base.name,
            "params": {p.name: p.describe() for p in self._ordered()},
            "fixed": dict(self.fixed),
        }


def default_space(base: str | Policy = DEFAULT_BASE) -> SearchSpace:
    """Every catalogue parameter at its default range, over `base` (the seed preset by default)."""
    pol = load_policy(base) if isinstance(base, (str, Path)) else base
    return SearchSpace(base=pol, params=CATALOGUE, source="default")


# --------------------------------------------------------------------------- narrowing files


def _narrow(param: Param, spec: Any, source: str, key: str) -> Param:
    """`param` restricted by `spec` ({low, high} for numbers, {choices} for categoricals)."""
    if not isinstance(spec, Mapping):
        raise InputError(source, key, "must be a mapping ({low, high} or {choices})")
    allowed = {"choices"} if param.kind == "categorical" else {"low", "high", "type", "step", "log"}
    for k in spec:
        if k not in allowed:
            raise InputError(source, f"{key}.{k}", f"unknown key (expected one of: {', '.join(sorted(allowed))})")
    if param.kind == "categorical":
        if "choices" not in spec:
            return param
        choices = spec["choices"]
        if not isinstance(choices, list) or not choices:
            raise InputError(source, f"{key}.choices", "must be a non-empty list")
        for c in choices:
            if not param.contains(c):
                raise InputError(source, f"{key}.choices",
                                 f"{c!r} is not one of {list(param.choices)}")
        return dataclasses.replace(param, choices=tuple(choices))
    for k, want in (("type", param.kind), ("step", param.step), ("log", param.log or None)):
        if k in spec and spec[k] != want and not (k == "log" and spec[k] is False and not want):
            raise InputError(source, f"{key}.{k}", f"is fixed by the catalogue ({want!r})")
    low, high = spec.get("low", param.low), spec.get("high", param.high)
    for k, v in (("low", low), ("high", high)):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise InputError(source, f"{key}.{k}", f"must be a number (got {v!r})")
        if not param.low <= v <= param.high:  # type: ignore[operator]
            raise InputError(source, f"{key}.{k}",
                             f"must lie in the default range [{param.low}, {param.high}]")
        if param.kind == "int" and not float(v).is_integer():
            raise InputError(source, f"{key}.{k}", f"must be an integer (got {v!r})")
        if param.step and not param.contains(v):
            raise InputError(source, f"{key}.{k}", f"must be on the grid {param.low} + k·{param.step}")
    if low > high:
        raise InputError(source, f"{key}.low", f"must be ≤ high ({high})")
    cast = int if param.kind == "int" else float
    return dataclasses.replace(param, low=cast(low), high=cast(high))


def _check_fixed(param: Param, value: Any, source: str, key: str) -> Any:
    if param.kind == "categorical":
        if not param.contains(value):
            raise InputError(source, key, f"must be one of {list(param.choices)} (got {value!r})")
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InputError(source, key, f"must be a number (got {value!r})")
    if param.kind == "int":
        if not float(value).is_integer():
            raise InputError(source, key, f"must be an integer (got {value!r})")
        return int(value)
    return float(value)


def space_from_dict(data: Any, source: str) -> SearchSpace:
    """A space from parsed YAML: `base`, `fix: {param: value}`, `params: {param: {...}}`.

    Parameters not named under `params` keep their default range; a name in both is an error.

    Raises:
        InputError: naming `source` and the key, for an unknown parameter or a bad value.
    """
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise InputError(source, None, "a search space file must be a mapping")
    for key in data:
        if key not in ("base", "fix", "params"):
            raise InputError(source, str(key), "unknown key (expected one of: base, fix, params)")
    base_spec = data.get("base", DEFAULT_BASE)
    if not isinstance(base_spec, str) or not base_spec:
        raise InputError(source, "base", "must be a policy preset name or a path")
    here = Path(source)
    if base_spec.endswith((".yaml", ".yml")) and not Path(base_spec).is_absolute() and here.is_file():
        base_spec = str(here.parent / base_spec)
    base = load_policy(base_spec)
    sections: dict[str, Mapping[str, Any]] = {}
    for section in ("fix", "params"):
        body = data.get(section) or {}
        if not isinstance(body, Mapping):
            raise InputError(source, section, "must be a mapping of parameter names")
        for name in body:
            if name not in _BY_NAME:
                raise InputError(source, f"{section}.{name}",
                                 "unknown parameter (see data/spaces/default.yaml for the names)")
        sections[section] = body
    both = set(sections["fix"]) & set(sections["params"])
    if both:
        name = sorted(both)[0]
        raise InputError(source, f"params.{name}", "is also under fix; give it once")
    fixed = tuple(
        (name, _check_fixed(_BY_NAME[name], value, source, f"fix.{name}"))
        for name, value in sections["fix"].items()
    )
    params = tuple(
        _narrow(p, sections["params"][p.name], source, f"params.{p.name}")
        if p.name in sections["params"] else p
        for p in CATALOGUE if p.name not in sections["fix"]
    )
    return SearchSpace(base=base, params=params, fixed=fixed, source=source)


# --------------------------------------------------------------------------- the YAML's rule blocks


@dataclass(frozen=True)
class _Block:
    """A generated block of data/spaces/default.yaml: the catalogue's parameters it lists and
    the registry they come from."""

    title: str
    registry: str
    prefixes: tuple[str, ...]

    @property
    def begin(self) -> str:
        return (f"  # BEGIN {self.title}: generated by `python -m aimo.tuner.space` "
                f"({self.registry})")

    @property
    def end(self) -> str:
        return f"  # END {self.title}"

    def lines(self) -> str:
        out = [self.begin]
        for param in CATALOGUE:
            if param.name.startswith(self.prefixes):
                note = param.help + (f"; only when {param.when.describe()}" if param.when else "")
                out.append(f"  {param.name}: {_flow(param)}  # {note}")
        return "\n".join(out + [self.end]) + "\n"


_QUESTION_BLOCK = _Block("question-stop rules", "core/policy/rules.py",
                         ("question_stop.n_rules", "question_stop.rule"))
_SAMPLE_BLOCK = _Block("sample-stop rules", "core/policy/sample_rules.py",
                       ("sample_stop.cot.", "sample_stop.code."))


def _flow(param: Param) -> str:
    spec = {k: v for k, v in param.describe().items() if k != "when"}
    return yaml.safe_dump(spec, default_flow_style=True, sort_keys=False, width=1 << 20).strip()


def rules_yaml() -> str:
    """data/spaces/default.yaml's block of the question-stop rule parameters, one line each,
    derived from the catalogue (so from the rule registry)."""
    return _QUESTION_BLOCK.lines()


def sample_rules_yaml() -> str:
    """data/spaces/default.yaml's block of the sample-stop rule parameters (both prompt kinds),
    derived from the catalogue (so from the sample-stop rule registry)."""
    return _SAMPLE_BLOCK.lines()


def with_rules_yaml(text: str) -> str:
    """`text` (data/spaces/default.yaml) with its generated blocks (question-stop and
    sample-stop rules) replaced."""
    for block in (_QUESTION_BLOCK, _SAMPLE_BLOCK):
        start, end = text.find(block.begin + "\n"), text.find(block.end + "\n")
        if start < 0 or end < start:
            raise ValueError(f"the space YAML lacks the {block.title} block's markers")
        text = text[:start] + block.lines() + text[end + len(block.end) + 1:]
    return text


def load_space(path: str | Path | None = None) -> SearchSpace:
    """The default space (None) or the one a YAML file describes (see docs/tuner.md).

    Raises:
        InputError: missing or unreadable file, invalid YAML, unknown key or parameter, bad value.
    """
    if path is None:
        return default_space()
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(str(p), None, f"cannot read search space: {exc}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InputError(str(p), None, f"invalid YAML: {exc}") from None
    return space_from_dict(data, str(p))


if __name__ == "__main__":  # python -m aimo.tuner.space: rewrite default.yaml's rule blocks
    old = DEFAULT_SPACE_FILE.read_text(encoding="utf-8")
    new = with_rules_yaml(old)
    if new != old:
        DEFAULT_SPACE_FILE.write_text(new, encoding="utf-8")
    print(f"{DEFAULT_SPACE_FILE}: {'rewritten' if new != old else 'up to date'}")


__all__ = [
    "CATALOGUE", "DEFAULT_BASE", "DEFAULT_SPACE_FILE", "MAX_RULES", "Condition", "Param",
    "SearchSpace", "build_policy", "default_space", "load_space", "point_of", "rules_yaml",
    "sample_rules_yaml", "space_from_dict",
    "space_for_store", "store_has_confidence", "without_confidence",
]
