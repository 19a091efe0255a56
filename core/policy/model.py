"""The policy as plain data: frozen dataclasses that validate their own values.

A policy is everything the solver decides, and nothing it observes: how many samples of
which prompt kind, when to stop a sample, when enough samples agree, how to vote, how to
spread the time. Units: tokens are generated tokens of one sample; times are seconds.
Speed levels are numbered from 1, as in the seed table.

Each class checks its values in `__post_init__` and raises `InputError` whose `field` is
relative to the object (e.g. "rules[2].min_equal"); the YAML loader prefixes the path of
the object in the file, so the final message names the full path.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Literal, get_args

from aimo.core.errors import InputError
from aimo.core.policy.rules import ConsistencyRule, QuestionRule
from aimo.core.policy.sample_rules import validate as _validate_sample_rule
from aimo.core.traces import SampleKind

SOURCE = "<policy>"

MixOrder = Literal["interleave", "cot_first", "code_first"]
StopRuleName = str  # a registered sample-stop rule (core/policy/sample_rules.py)
AnswerSources = Literal["any", "boxed", "code"]
QuestionOrder = Literal["arrival", "index"]
TieBreak = Literal["larger", "smaller", "first"]
Extraction = Literal["exact", "robust"]
ConfidenceMetric = Literal["none", "inv_entropy", "mean", "tail", "lowest_group"]
BoxedZero = Literal["keep", "ignore"]
BoxScope = Literal["all", "last"]
CodeSeen = Literal["profile", "parallel", "serial", "inline"]
EarlyCount = Literal["valid", "history_if_none"]

KINDS: tuple[SampleKind, ...] = ("cot", "code")


def _fail(field_path: str, message: str) -> None:
    raise InputError(SOURCE, field_path, message)


def _one_of(name: str, value: object, literal: object) -> None:
    allowed = get_args(literal)
    if value not in allowed:
        _fail(name, f"must be one of {', '.join(map(repr, allowed))} (got {value!r})")


def _at_least(name: str, value: float, low: float) -> None:
    if value < low:
        _fail(name, f"must be ≥ {low}")


def _positive(name: str, value: float) -> None:
    if not value > 0:
        _fail(name, "must be > 0")


def _within(name: str, value: float, low: float, high: float) -> None:
    if not low <= value <= high:
        _fail(name, f"must be in [{low}, {high}]")


def _finite(name: str, value: float) -> None:
    if not math.isfinite(value):
        _fail(name, "must be a finite number")


# --------------------------------------------------------------------------- samples


@dataclass(frozen=True, slots=True)
class SampleMix:
    """Which prompt kind each of a question's N samples gets (N comes from the speed level).

    `interleave` spreads the kinds evenly, starting with `first_kind`; `cot_first` and
    `code_first` put all samples of one kind first. `cot_fraction` is the share of CoT samples.
    """

    order: MixOrder = "interleave"
    first_kind: SampleKind = "cot"
    cot_fraction: float = 0.5

    def __post_init__(self) -> None:
        _one_of("order", self.order, MixOrder)
        _one_of("first_kind", self.first_kind, SampleKind)
        _within("cot_fraction", self.cot_fraction, 0.0, 1.0)


@dataclass(frozen=True, slots=True)
class SampleStopRule:
    """When one sample stops early: `rule` names a registered rule (core/policy/sample_rules.py,
    which validates it and its parameters; `decisions.stop_condition_token` applies it). `k` is
    the parameter of the rules that declare it (≥ 1 for every rule, so existing files load)."""

    rule: StopRuleName
    k: int = 1
    grace_tokens: int = 0
    positive_only: bool = False
    sources: AnswerSources = "any"

    def __post_init__(self) -> None:
        _validate_sample_rule(self)
        _one_of("sources", self.sources, AnswerSources)
        _at_least("k", self.k, 1)
        _at_least("grace_tokens", self.grace_tokens, 0)


@dataclass(frozen=True, slots=True)
class ConfidenceStop:
    """Stop a sample whose lowest group confidence falls below a threshold (DeepConf).

    The group confidence at a check at token c ≥ `window` is the mean token confidence of the
    `window` tokens before c; the sample's lowest group confidence is the minimum over its check
    points so far. The threshold is `threshold`, or, with `warmup` = n > 0, the `percentile`-th
    percentile (linear) of the lowest group confidence of the question's first n samples that
    ended on their own (DeepConf online); until then no sample stops on confidence.
    See `decisions.confidence_stop_token`.
    """

    window: int = 2048
    threshold: float | None = None
    warmup: int = 0
    percentile: float = 10.0

    def __post_init__(self) -> None:
        _at_least("window", self.window, 1)
        _at_least("warmup", self.warmup, 0)
        _finite("percentile", self.percentile)
        _within("percentile", self.percentile, 0.0, 100.0)
        if self.threshold is not None:
            _finite("threshold", self.threshold)
            if self.warmup:
                _fail("warmup", "give either threshold or warmup, not both")
        elif not self.warmup:
            _fail("threshold", "give a fixed threshold, or warmup ≥ 1 to set it online")


@dataclass(frozen=True, slots=True)
class SampleStop:
    """Per-kind sample stop rules plus a token cap that ends any sample, and optionally a stop on
    low token confidence (needs traces with confidence)."""

    cot: SampleStopRule
    code: SampleStopRule
    max_tokens: int = 16384
    confidence: ConfidenceStop | None = None

    def __post_init__(self) -> None:
        _at_least("max_tokens", self.max_tokens, 1)

    def rule_for(self, kind: str) -> SampleStopRule:
        """The rule of a sample of prompt kind `kind` ("cot" or "code")."""
        if kind == "cot":
            return self.cot
        if kind == "code":
            return self.code
        raise ValueError(f"unknown sample kind {kind!r}")


# --------------------------------------------------------------------------- question stop


@dataclass(frozen=True, slots=True)
class ValidAnswer:
    """Which answer of a sample counts towards question-level consistency (one per sample)."""

    prefer_code: bool = True
    positive_only: bool = True


@dataclass(frozen=True, slots=True)
class QuestionStop:
    """Answer-count rules (`core.policy.rules`: consistency, ...) over the valid answers, in
    `order` ("arrival" or sample "index"); the first that holds stops the question."""

    order: QuestionOrder = "arrival"
    rules: tuple[QuestionRule, ...] = ()
    valid: ValidAnswer = field(default_factory=ValidAnswer)
    uncatchable: bool = False  # also stop once the leader cannot be caught (decisions)

    def __post_init__(self) -> None:
        _one_of("order", self.order, QuestionOrder)


# --------------------------------------------------------------------------- vote


@dataclass(frozen=True, slots=True)
class KindWeights:
    """Vote weight multiplier by the prompt kind of the sample that gave the answer."""

    cot: float = 1.0
    code: float = 1.0

    def __post_init__(self) -> None:
        for name in KINDS:
            value = getattr(self, name)
            _finite(name, value)
            _at_least(name, value, 0.0)

    def of(self, kind: str) -> float:
        return self.code if kind == "code" else self.cot


@dataclass(frozen=True, slots=True)
class Vote:
    """Weighted vote over each sample's final answers; see `decisions.vote`."""

    code_over_boxed: bool = True
    kind_weights: KindWeights = field(default_factory=KindWeights)
    small_max: int | None = 20
    round_multiple: int | None = 100
    small_or_round_weight: float = 0.6
    length_weight: float = 0.0
    tie_break: TieBreak = "larger"
    fallback: int = 49
    drop_negative: bool = True
    tie_tolerance: float = 1e-9
    final_read: bool = False
    confidence: ConfidenceMetric = "none"
    confidence_window: int = 2048
    keep_top: float = 1.0

    def __post_init__(self) -> None:
        _one_of("tie_break", self.tie_break, TieBreak)
        _finite("tie_tolerance", self.tie_tolerance)
        _within("tie_tolerance", self.tie_tolerance, 0.0, 0.5)
        _one_of("confidence", self.confidence, ConfidenceMetric)
        _at_least("confidence_window", self.confidence_window, 1)
        _finite("keep_top", self.keep_top)
        if not 0.0 < self.keep_top <= 1.0:
            _fail("keep_top", "must be in (0, 1]")
        if self.keep_top < 1.0 and self.confidence == "none":
            _fail("keep_top", "needs a confidence metric (vote.confidence) to rank answers by")
        if self.round_multiple is not None:
            _at_least("round_multiple", self.round_multiple, 1)
        _finite("small_or_round_weight", self.small_or_round_weight)
        _at_least("small_or_round_weight", self.small_or_round_weight, 0.0)
        _finite("length_weight", self.length_weight)
        _at_least("length_weight", self.length_weight, 0.0)
        _within("fallback", self.fallback, 0, 999)


# --------------------------------------------------------------------------- schedule


@dataclass(frozen=True, slots=True)
class EarlyTimeout:
    """Stop the question once more than `after_s` seconds passed and ≥ `min_answers` are valid."""

    after_s: float
    min_answers: int

    def __post_init__(self) -> None:
        _finite("after_s", self.after_s)
        _positive("after_s", self.after_s)
        _at_least("min_answers", self.min_answers, 0)


@dataclass(frozen=True, slots=True)
class SpeedLevel:
    """Per-question budget at one speed: sample count, answer quorum, timeouts (seconds)."""

    name: str
    samples: int
    min_answers: int
    timeout_s: float
    early_timeouts: tuple[EarlyTimeout, ...] = ()

    def __post_init__(self) -> None:
        if not self.name:
            _fail("name", "must not be empty")
        _at_least("samples", self.samples, 1)
        _at_least("min_answers", self.min_answers, 1)
        _finite("timeout_s", self.timeout_s)
        _positive("timeout_s", self.timeout_s)


@dataclass(frozen=True, slots=True)
class QuestionBudget:
    """Per-question time budget from the time left (AIMO-3 winners): a question times out after
    clamp(time_left − remaining × reserve_s, min_s, max_s) seconds (or its level's timeout_s if
    smaller); time_left counts to the cutoff, remaining = questions after this one."""

    reserve_s: float = 300.0
    min_s: float = 300.0
    max_s: float = 900.0

    def __post_init__(self) -> None:
        _finite("reserve_s", self.reserve_s)
        _at_least("reserve_s", self.reserve_s, 0.0)
        _finite("min_s", self.min_s)
        _positive("min_s", self.min_s)
        _finite("max_s", self.max_s)
        _at_least("max_s", self.max_s, self.min_s)


@dataclass(frozen=True, slots=True)
class Schedule:
    """Speed levels and the rule that re-picks the level from the time left per question.

    Re-evaluation happens when `done` (questions finished) is reeval_after,
    reeval_after + reeval_every, ...: avg = time_left / (questions − done); the new level is
    i + 1 for the first i with avg < thresholds_s[i], else the top level.
    Questions begun after `cutoff_s` (seconds since the competition start) get
    `cutoff_answer` without generation. `early_timeout_count`: what the early timeouts count,
    "valid" answers, or "history_if_none" (the seed's quirk: with no valid answer, every distinct
    positive answer any sample recorded; see `decisions.early_timeout_count`).
    """

    levels: tuple[SpeedLevel, ...]
    start_level: int
    reeval_after: int = 30
    reeval_every: int = 2
    thresholds_s: tuple[float, ...] = ()
    cutoff_s: float = 17820.0
    cutoff_answer: int = 210
    questions: int = 50
    early_timeout_count: EarlyCount = "valid"
    budget: QuestionBudget | None = None

    def __post_init__(self) -> None:
        _one_of("early_timeout_count", self.early_timeout_count, EarlyCount)
        if not self.levels:
            _fail("levels", "must hold at least one level")
        _within("start_level", self.start_level, 1, len(self.levels))
        _at_least("reeval_after", self.reeval_after, 0)
        _at_least("reeval_every", self.reeval_every, 1)
        if len(self.thresholds_s) != len(self.levels) - 1:
            _fail("thresholds_s", f"must hold len(levels) - 1 = {len(self.levels) - 1} values")
        for i, t in enumerate(self.thresholds_s):
            _finite(f"thresholds_s[{i}]", t)
            _positive(f"thresholds_s[{i}]", t)
            if i and t < self.thresholds_s[i - 1]:
                _fail(f"thresholds_s[{i}]", "must be ≥ the previous threshold")
        _finite("cutoff_s", self.cutoff_s)
        _positive("cutoff_s", self.cutoff_s)
        _within("cutoff_answer", self.cutoff_answer, 0, 999)
        _at_least("questions", self.questions, 1)

    def level(self, number: int) -> SpeedLevel:
        """The level numbered `number` (1-based)."""
        if not 1 <= number <= len(self.levels):
            raise ValueError(f"level {number} not in 1..{len(self.levels)}")
        return self.levels[number - 1]


# --------------------------------------------------------------------------- checks, generation


@dataclass(frozen=True, slots=True)
class Check:
    """Checks run when a sample's token count is a multiple of `every_tokens`, and at its end.

    What a check reads (docs/seed-policy.md): `boxes` "all" records every box of the text,
    "last" only the last box at each check (nothing if it does not parse, as the seed);
    `boxed_zero` "ignore" never records a boxed 0 (the seed's `if cot_answer:`); `code_overlap`
    when a code result is seen: "profile" (the hardware profile's mode), "parallel" (at the
    first check after it is ready), "serial" (the batch waits for it) or "inline" (seen at the
    dispatching check, the batch keeps decoding: the seed runs code inside the check).
    """

    every_tokens: int = 20
    boxes: BoxScope = "all"
    boxed_zero: BoxedZero = "keep"
    code_overlap: CodeSeen = "profile"

    def __post_init__(self) -> None:
        _at_least("every_tokens", self.every_tokens, 1)
        _one_of("boxes", self.boxes, BoxScope)
        _one_of("boxed_zero", self.boxed_zero, BoxedZero)
        _one_of("code_overlap", self.code_overlap, CodeSeen)

    def code_mode(self, profile_mode: str) -> str:
        """The code-visibility mode in force: this check's, or the profile's with "profile"."""
        return profile_mode if self.code_overlap == "profile" else self.code_overlap


SEED_COT_SYSTEM = (
    "You are a helpful math assistant. Please reason step by step to put the answer in \\boxed{}."
)
SEED_COT_SUFFIX = (
    "\nYou excel at reasoning.\nYou must put the final answer in \\boxed{}.\n"
    "If the final answer is greater than 1000, then take the modulo of 1000.\n"
    "Think carefully and thoroughly, avoid duplication."
)
SEED_CODE_SYSTEM = (
    "You are a helpful math assistant. Please provide the python code to solve the math problem "
    "and also put the final answer in \\boxed{}."
)
SEED_CODE_SUFFIX = (
    "\nYou excel at coding\nYou must provide the python code, avoid redundant analysis.\n"
    "If the final answer is greater than 1000, then take the modulo of 1000.\n"
    "The answer must be integer.\nThere is only one answer for each question.\n"
    "Import necessary libraries."
)


@dataclass(frozen=True, slots=True)
class Prompt:
    """A chat prompt: system message, and the suffix appended to the question as user message."""

    system: str
    user_suffix: str


@dataclass(frozen=True, slots=True)
class Prompts:
    """One prompt per sample kind (defaults: the seed's exact texts)."""

    cot: Prompt = Prompt(SEED_COT_SYSTEM, SEED_COT_SUFFIX)
    code: Prompt = Prompt(SEED_CODE_SYSTEM, SEED_CODE_SUFFIX)

    def of(self, kind: str) -> Prompt:
        return self.code if kind == "code" else self.cot


@dataclass(frozen=True, slots=True)
class Generation:
    """Sampling settings passed to the engine (live solver and recorder only)."""

    temperature: float = 0.9
    top_p: float = 0.95
    min_p: float = 0.1
    repetition_penalty: float = 1.05
    max_new_tokens: int = 16384
    prompts: Prompts = field(default_factory=Prompts)

    def __post_init__(self) -> None:
        _finite("temperature", self.temperature)
        _at_least("temperature", self.temperature, 0.0)
        _finite("top_p", self.top_p)
        if not 0.0 < self.top_p <= 1.0:
            _fail("top_p", "must be in (0, 1]")
        _within("min_p", self.min_p, 0.0, 1.0)
        _finite("repetition_penalty", self.repetition_penalty)
        _positive("repetition_penalty", self.repetition_penalty)
        _at_least("max_new_tokens", self.max_new_tokens, 1)


# --------------------------------------------------------------------------- the policy


@dataclass(frozen=True, slots=True)
class Policy:
    """A whole inference policy; hashable and comparable, so it can key caches."""

    name: str
    samples: SampleMix
    sample_stop: SampleStop
    question_stop: QuestionStop
    vote: Vote
    schedule: Schedule
    check: Check = field(default_factory=Check)
    extraction: Extraction = "exact"
    generation: Generation = field(default_factory=Generation)

    def __post_init__(self) -> None:
        if not self.name:
            _fail("name", "must not be empty")
        _one_of("extraction", self.extraction, Extraction)
        if self.sample_stop.max_tokens > self.generation.max_new_tokens:
            _fail(
                "sample_stop.max_tokens",
                f"must be ≤ generation.max_new_tokens ({self.generation.max_new_tokens})",
            )

    def level(self, number: int) -> SpeedLevel:
        """Speed level `number` (1-based) of the schedule."""
        return self.schedule.level(number)


def uses_confidence(policy: Policy) -> bool:
    """Whether the policy reads token confidence (a confidence stop or confidence votes), so
    its replay needs traces that carry it."""
    return policy.sample_stop.confidence is not None or policy.vote.confidence != "none"


def with_token_cap(policy: Policy, max_new_tokens: int) -> Policy:
    """`policy` with every sample capped at `max_new_tokens` (generation and sample stop), e.g. the
    cap a recording was made with, so a live run and its replay end samples at the same token."""
    _at_least("max_new_tokens", max_new_tokens, 1)
    return dataclasses.replace(
        policy,
        generation=dataclasses.replace(policy.generation, max_new_tokens=max_new_tokens),
        sample_stop=dataclasses.replace(
            policy.sample_stop, max_tokens=min(policy.sample_stop.max_tokens, max_new_tokens)
        ),
    )


__all__ = [
    "Check",
    "ConfidenceStop",
    "ConsistencyRule",
    "EarlyTimeout",
    "Generation",
    "KINDS",
    "KindWeights",
    "Policy",
    "Prompt",
    "Prompts",
    "QuestionBudget",
    "QuestionStop",
    "SampleMix",
    "SampleStop",
    "SampleStopRule",
    "Schedule",
    "SpeedLevel",
    "ValidAnswer",
    "Vote",
    "uses_confidence",
    "with_token_cap",
]
