"""Pure decision functions: the single source of truth for both drivers.

The live solver calls them on what it has seen in real streams; the simulator calls them on
recorded events. No I/O, no global state; the only mutable object, `QuestionTracker`, is a
deterministic bookkeeper of one question that the driver owns.

Answer values: 0..999 a parsed value; `CODE_FAILURE` (−1) a code run that failed or timed
out; None nothing parsed (a box whose content is not a number, code output without a
number). An answer whose value is None is not an answer anywhere below: it never stops a
sample, never hides another answer and never votes.
"""

from __future__ import annotations

import dataclasses
import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from aimo.core.policy.model import (
    Check,
    ConfidenceStop,
    CodeSeen,
    QuestionStop,
    SampleMix,
    SampleStopRule,
    Schedule,
    SpeedLevel,
    ValidAnswer,
    Vote,
)
from aimo.core.policy.sample_rules import counted_sources, rule_holds
from aimo.core.traces import AnswerSource

CODE_FAILURE = -1


@dataclass(frozen=True, slots=True)
class Answer:
    """One answer of a sample: generated-token position, value (see module doc), source."""

    token: int
    value: int | None
    source: AnswerSource


@dataclass(frozen=True, slots=True)
class SampleView:
    """What a check sees of one sample: its answers in the order they became known."""

    index: int
    kind: str
    tokens: int
    answers: tuple[Answer, ...]


@dataclass(frozen=True, slots=True)
class SampleFinal:
    """A sample's latest boxed and latest code answer (None if it has none) for the vote."""

    kind: str
    n_tokens: int
    boxed: int | None
    code: int | None
    confidence: float | None = None  # the vote's confidence metric (`confidence_feature`)


# --------------------------------------------------------------------------- sample mix


def _count_first(p: float, i: int) -> int:
    """How many of the first i samples get the first kind when its share is p (Bresenham)."""
    return min(i, max(0, math.ceil(i * p - 1e-9)))


def sample_kinds(mix: SampleMix, n: int) -> tuple[str, ...]:
    """The prompt kind of each of n samples, in sample-index order.

    `interleave`: sample i gets `first_kind` iff ceil((i+1)·p) > ceil(i·p), p being the share
    of `first_kind`; so the first sample is `first_kind` (if p > 0), the counts are as even
    as possible, and the result for n is a prefix of the result for n + 1. The seed
    (cot first, 0.5) gives cot, code, cot, …; 15 → 8 cot + 7 code.
    `cot_first` / `code_first`: the same counts, one kind after the other.
    """
    if n < 0:
        raise ValueError("n must be ≥ 0")
    first = mix.first_kind
    other = "code" if first == "cot" else "cot"
    p = mix.cot_fraction if first == "cot" else 1.0 - mix.cot_fraction
    seq = tuple(first if _count_first(p, i + 1) > _count_first(p, i) else other for i in range(n))
    if mix.order == "interleave":
        return seq
    n_cot = seq.count("cot")
    if mix.order == "cot_first":
        return ("cot",) * n_cot + ("code",) * (n - n_cot)
    return ("code",) * (n - n_cot) + ("cot",) * n_cot


# --------------------------------------------------------------------------- sample stop


def _counts(value: int | None, positive_only: bool) -> bool:
    return value is not None and (value > 0 if positive_only else value >= 0)


def stop_condition_token(rule: SampleStopRule, answers: Sequence[Answer]) -> int | None:
    """Token at which the rule's condition first held, given answers in the order known; else None.

    Answers are considered one by one; an answer "counts" if its source is one the rule counts
    (`sample_rules.counted_sources`: the rule's `sources`, code only for first_code_success,
    none for never) and its value is ≥ 0 (> 0 with `positive_only`). After each counting answer
    the rule's registered step (core/policy/sample_rules.py) is asked with seen (counting
    answers so far), same (how many of them had this value) and run (how many of the last ones
    in a row had it); the condition holds at the first answer where the step does.
    The token returned is the largest token position among the answers seen up to that one
    (the same as that answer's token when tokens do not decrease). The result for a list is
    the result for any prefix where it is not None, so a driver may call it with all answers
    of a recorded sample. The caller adds `grace_tokens` and aligns to the check grid
    (`check_token`; `sample_should_stop` tells whether a sample at a check stops).
    """
    sources = counted_sources(rule)
    if sources is None:
        return None
    reached = 0
    seen = 0
    run = 0
    last: int | None = None
    per_value: Counter[int] = Counter()
    for a in answers:
        reached = max(reached, a.token)
        if sources != "any" and a.source != sources:
            continue
        if a.value is None or not _counts(a.value, rule.positive_only):
            continue
        seen += 1
        per_value[a.value] += 1
        run = run + 1 if a.value == last else 1
        last = a.value
        if rule_holds(rule, seen, per_value[a.value], run):
            return reached
    return None


def sample_should_stop(rule: SampleStopRule, view: SampleView) -> bool:
    """True when the rule's condition held at token T and the sample reached T + grace_tokens."""
    held = stop_condition_token(rule, view.answers)
    return held is not None and view.tokens >= held + rule.grace_tokens


def check_token(check: Check, token: int) -> int:
    """The first check point at or after `token`: the one definition of the check grid.

    Checks run after every `every_tokens` generated tokens, so the grid is every_tokens,
    2·every_tokens, …: a sample is never checked before it generated a token, and an answer or
    a stop condition at token 0 is acted on at the first check, token every_tokens (the live
    loop's first grid point, the replay's and the kernel's `_grid`)."""
    every = check.every_tokens
    return max(every, -(-token // every) * every)


def read_boxes(check: Check, boxes: Sequence[Answer]) -> list[Answer]:
    """The boxed answers a check records out of those found since the previous check.

    boxes "all": every one; "last": only the last (the seed parses only the last box of the text,
    so one that does not parse records nothing: it is kept with value None, which counts nowhere);
    boxed_zero "ignore": a value 0 becomes None (the seed's `if cot_answer:`). Kept as Answers
    (not dropped) so every driver adds the same answers in the same order.
    """
    chosen = list(boxes[-1:]) if check.boxes == "last" else list(boxes)
    if check.boxed_zero == "ignore":
        chosen = [dataclasses.replace(a, value=None) if a.value == 0 else a for a in chosen]
    return chosen


def code_mode(check: Check, profile_mode: str) -> CodeSeen:
    """When a dispatched code result is seen: the check's `code_overlap`, else the profile's."""
    return check.code_mode(profile_mode)  # type: ignore[return-value]


# --------------------------------------------------------------------------- answers of a sample


def _latest(answers: Sequence[Answer], source: str | None) -> int | None:
    for a in reversed(answers):
        if a.value is not None and (source is None or a.source == source):
            return a.value
    return None


def sample_final(kind: str, n_tokens: int, answers: Sequence[Answer]) -> SampleFinal:
    """The sample's latest boxed and latest code answer (None values skipped) for `vote`."""
    return SampleFinal(kind, n_tokens, _latest(answers, "boxed"), _latest(answers, "code"))


def valid_answer(valid: ValidAnswer, answers: Sequence[Answer]) -> int | None:
    """The sample's one answer for question-level consistency, or None.

    prefer_code (seed): the latest code answer if the sample has any code answer, else the
    latest boxed answer; then dropped if negative (or ≤ 0 with positive_only). So a sample
    whose latest code answer is −1 contributes nothing even if it has a boxed answer.
    Without prefer_code: the latest answer of either source, then the same filter.
    """
    if valid.prefer_code:
        value = _latest(answers, "code")
        if value is None:
            value = _latest(answers, "boxed")
    else:
        value = _latest(answers, None)
    return value if _counts(value, valid.positive_only) else None


# --------------------------------------------------------------------------- question stop


def consistency_stop(
    qs: QuestionStop, level: SpeedLevel, valid_in_order: Sequence[int]
) -> str | None:
    """Name of the first question-stop rule that holds (e.g. "rule1:4/≤4"), "min_answers" when
    there are ≥ level.min_answers valid answers, else None.

    `valid_in_order` is the question's valid answers in `qs.order` (see
    `QuestionTracker.valid_answers_ordered`); only `last_k` rules depend on that order.
    """
    for number, rule in enumerate(qs.rules, 1):
        if rule.holds(valid_in_order):  # the rule's registered step (core.policy.rules)
            return rule.label(number)
    if len(valid_in_order) >= level.min_answers:
        return "min_answers"
    return None


def timeout_stop(
    level: SpeedLevel, elapsed_s: float, n_valid: int, cutoff_passed: bool
) -> str | None:
    """Why the question stops on time, or None: an early timeout ("early:480s/≥6": elapsed >
    after_s and ≥ min_answers valid), "timeout" (elapsed > timeout_s) or "cutoff"."""
    for e in level.early_timeouts:
        if elapsed_s > e.after_s and n_valid >= e.min_answers:
            return f"early:{e.after_s:g}s/≥{e.min_answers}"
    if elapsed_s > level.timeout_s:
        return "timeout"
    if cutoff_passed:
        return "cutoff"
    return None


def early_timeout_count(s: Schedule, n_valid: int, n_history: int) -> int:
    """The answer count early timeouts compare with `min_answers`: the valid answers, or, with
    `early_timeout_count: history_if_none` and no valid answer, every distinct positive answer
    the samples recorded (the seed rebuilds its list from the answer histories when it is empty;
    see `QuestionTracker.n_history`)."""
    if s.early_timeout_count == "history_if_none" and n_valid == 0:
        return n_history
    return n_valid


# --------------------------------------------------------------------------- vote


def _weight(v: Vote, kind: str, n_tokens: int, value: int) -> float:
    w = v.kind_weights.of(kind)
    small = v.small_max is not None and value <= v.small_max
    round_ = v.round_multiple is not None and value % v.round_multiple == 0
    if small or round_:
        w *= v.small_or_round_weight
    if v.length_weight:
        w *= math.exp(-v.length_weight * n_tokens / 10000.0)
    return w


def _cast(v: Vote, f: SampleFinal) -> list[int]:
    """The values sample `f` votes for (steps 1–2 of `vote`)."""
    values = [f.code, f.boxed]
    if v.code_over_boxed and f.code is not None and f.boxed is not None:
        values = [f.code]
    return [x for x in values if x is not None and not (v.drop_negative and x < 0)]


def kept_by_confidence(keep_top: float, confidences: Sequence[float | None]) -> list[bool]:
    """DeepConf filtering: of the samples with a confidence (the ones that cast a vote), keep
    the ceil(keep_top · n) most confident; ties go to the lower sample index. A sample ranks by
    how many others beat it (higher confidence, or equal and earlier)."""
    idx = [i for i, c in enumerate(confidences) if c is not None]
    keep = math.ceil(keep_top * len(idx) - 1e-9)
    out = [False] * len(confidences)
    for i in idx:
        ci: float = confidences[i]  # type: ignore[assignment]
        rank = len([j for j in idx
                    if confidences[j] > ci or (confidences[j] == ci and j < i)])  # type: ignore[operator]
        out[i] = rank < keep
    return out


def vote(v: Vote, finals: Sequence[SampleFinal]) -> int:
    """The question's answer, in 0..999.

    1. with code_over_boxed, a sample that has both a code and a boxed answer keeps only the
       code one — even a −1, which step 2 then drops, so the sample casts no vote (seed);
    2. candidates: each sample's code and boxed answer, negatives dropped (drop_negative);
    3. weight = kind_weights[sample kind] × (small_or_round_weight if value ≤ small_max or
       value % round_multiple == 0, 0 included) × exp(−length_weight · n_tokens / 10000);
    4. highest total wins (totals within `tie_tolerance` relative are tied; 0 = exact float
       comparison, as the seed); ties by `tie_break`:
       larger / smaller value, or first = the value whose first candidate came first
       (sample order, code before boxed); no candidate → fallback. Result % 1000.
    With a confidence metric (`v.confidence`), each weight is further multiplied by the
    sample's `confidence` (the last factor), and with keep_top < 1 only the most confident
    voting samples vote (`kept_by_confidence`).
    """
    cast = [_cast(v, f) for f in finals]
    use_conf = v.confidence != "none"
    if use_conf and any(f.confidence is None for f, c in zip(finals, cast) if c):
        raise ValueError("vote.confidence: a voting sample has no confidence (traces without it?)")
    kept = [True] * len(finals)
    if use_conf and v.keep_top < 1.0:
        kept = kept_by_confidence(v.keep_top, [f.confidence if c else None
                                               for f, c in zip(finals, cast)])
    totals: dict[int, float] = {}
    for f, values, keep in zip(finals, cast, kept):
        if not keep:
            continue
        for value in values:
            w = _weight(v, f.kind, f.n_tokens, value)
            if use_conf:
                w *= f.confidence  # type: ignore[operator]
            totals[value] = totals.get(value, 0.0) + w
    if not totals:
        return v.fallback % 1000
    best = max(totals.values())
    tied = [value for value, t in totals.items() if t >= best - v.tie_tolerance * max(1.0, best)]
    if v.tie_break == "larger":
        winner = max(tied)
    elif v.tie_break == "smaller":
        winner = min(tied)
    else:
        winner = tied[0]  # dicts keep first-insertion order
    return winner % 1000


# --------------------------------------------------------------------------- schedule


def pick_level(s: Schedule, current: int, done: int, time_left_s: float) -> int:
    """The speed level (1-based) for the next question.

    Only when done == reeval_after + j·reeval_every (j ≥ 0) and done < questions:
    avg = time_left_s / (questions − done); first i with avg < thresholds_s[i] → level i + 1,
    else the top level. Otherwise `current` is kept.
    """
    if done < s.reeval_after or (done - s.reeval_after) % s.reeval_every or done >= s.questions:
        return current
    avg = time_left_s / (s.questions - done)
    for i, threshold in enumerate(s.thresholds_s):
        if avg < threshold:
            return i + 1
    return len(s.levels)


def past_cutoff(s: Schedule, elapsed_s: float) -> bool:
    """Whether the global cutoff has passed, `elapsed_s` counted from the competition start."""
    return elapsed_s > s.cutoff_s


def question_budget_s(s: Schedule, level: SpeedLevel, done: int, time_left_s: float) -> float:
    """The timeout of the question served after `done` others: the level's timeout_s, or with
    `s.budget` the smaller of it and clamp(time_left − remaining × reserve_s, min_s, max_s),
    remaining = s.questions − done − 1 (the questions after this one)."""
    if s.budget is None:
        return level.timeout_s
    b = s.budget
    x = time_left_s - (s.questions - done - 1) * b.reserve_s
    x = min(b.max_s, x)
    x = max(b.min_s, x)
    return min(level.timeout_s, x)


def leader_uncatchable(secure: Sequence[tuple[int, float]], open_weight: float) -> bool:
    """True when the leading answer cannot be caught: its secured vote total exceeds the
    runner-up's by more than `open_weight`, the weight the samples still running or queued could
    still add. `secure`: (valid answer, kind weight) of each sample that ended with no code
    result pending, in sample order (totals summed in that order)."""
    totals: dict[int, float] = {}
    for value, w in secure:
        totals[value] = totals.get(value, 0.0) + w
    if not totals:
        return False
    ranked = sorted(totals.values(), reverse=True)
    second = ranked[1] if len(ranked) > 1 else 0.0
    return ranked[0] > second + open_weight


def uncatchable_among(samples: Iterable[tuple[bool, int | None, float]]) -> bool:
    """`leader_uncatchable` over (settled, valid answer, kind weight) per sample in sample order:
    a settled sample (ended, no code result pending) secures its valid answer; every other
    sample's weight is still open. The one reading of the rule for every clock."""
    secure: list[tuple[int, float]] = []
    open_weight = 0.0
    for settled, value, weight in samples:
        if settled:
            if value is not None:
                secure.append((value, weight))
        else:
            open_weight += weight
    return leader_uncatchable(secure, open_weight)


# --------------------------------------------------------------------------- confidence

# columns of `confidence_grid`
CONF_MEAN, CONF_ENTROPY, CONF_TAIL, CONF_LOW_VOTE, CONF_LOW_STOP = range(5)
N_CONF = 5
MIN_ENTROPY = 1e-3  # inv_entropy = 1 / max(mean entropy, MIN_ENTROPY)


def confidence_grid(conf: np.ndarray, entropy: np.ndarray, cap: int, every: int,
                    vote_window: int, stop_window: int) -> np.ndarray:
    """A sample's confidence summaries at its check points, float64[K + 1, N_CONF].

    Row k is token t_k = min(k · every, cap), K = ceil(cap / every) (so row K is the end).
    Columns: CONF_MEAN mean token confidence of tokens [0, t_k) (0 when t_k = 0); CONF_ENTROPY
    their mean entropy; CONF_TAIL mean confidence of the last `vote_window` tokens before t_k
    (all of them when fewer); CONF_LOW_VOTE / CONF_LOW_STOP the lowest group confidence so far:
    the minimum over rows j ≤ k with t_j ≥ w of the mean confidence of tokens [t_j − w, t_j),
    w the vote's / the stop's window (+inf while no row has a full window). Only tokens
    before t_k enter row k, so a live solver computes the same rows from what it has seen.
    """
    if cap < 0 or len(conf) < cap or len(entropy) < cap:
        raise ValueError(f"confidence arrays hold {len(conf)} / {len(entropy)} tokens, "
                         f"fewer than the {cap} tokens replayed")
    c = np.asarray(conf[:cap], np.float64)
    e = np.asarray(entropy[:cap], np.float64)
    if not (np.all(np.isfinite(c)) and np.all(np.isfinite(e))):
        raise ValueError("confidence arrays must be finite")
    cs = np.concatenate([[0.0], np.cumsum(c)])
    es = np.concatenate([[0.0], np.cumsum(e)])
    k_end = -(-cap // every)
    t = np.minimum(np.arange(k_end + 1, dtype=np.int64) * every, cap)
    t1 = np.maximum(t, 1)
    out = np.empty((k_end + 1, N_CONF), np.float64)
    out[:, CONF_MEAN] = cs[t] / t1
    out[:, CONF_ENTROPY] = es[t] / t1
    a = np.maximum(t - vote_window, 0)
    out[:, CONF_TAIL] = (cs[t] - cs[a]) / np.maximum(t - a, 1)
    for col, w in ((CONF_LOW_VOTE, vote_window), (CONF_LOW_STOP, stop_window)):
        a = np.maximum(t - w, 0)
        full = np.where(t >= w, (cs[t] - cs[a]) / float(w), np.inf)
        out[:, col] = np.minimum.accumulate(full)
    return out


def confidence_row(cap: int, every: int, tokens: int) -> int:
    """The `confidence_grid` row a sample of `tokens` generated tokens shows: its last check
    point (the end once it reached `cap`)."""
    return -(-cap // every) if tokens >= cap else tokens // every


def lowest_group(row: np.ndarray, col: int = CONF_LOW_VOTE) -> float:
    """Lowest group confidence of a grid row; the mean confidence while no window is full."""
    low = float(row[col])
    return low if low < math.inf else float(row[CONF_MEAN])


def confidence_feature(metric: str, row: np.ndarray) -> float:
    """The vote's confidence metric of a sample from its grid row (higher = more confident):
    inv_entropy 1 / max(mean entropy, MIN_ENTROPY), mean, tail (last window) or lowest_group."""
    if metric == "inv_entropy":
        return 1.0 / max(float(row[CONF_ENTROPY]), MIN_ENTROPY)
    if metric == "mean":
        return float(row[CONF_MEAN])
    if metric == "tail":
        return float(row[CONF_TAIL])
    if metric == "lowest_group":
        return lowest_group(row)
    raise ValueError(f"unknown confidence metric {metric!r}")


def percentile_linear(values: Sequence[float], p: float) -> float:
    """The p-th percentile (0..100) with linear interpolation, as numpy's default method."""
    xs = sorted(values)
    h = (len(xs) - 1) * p / 100.0
    lo = int(math.floor(h))
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (h - lo) * (xs[hi] - xs[lo])


def confidence_threshold(stop: ConfidenceStop, warmup_lows: Sequence[float]) -> float | None:
    """The confidence stop's threshold: fixed, or once `stop.warmup` samples ended on their own,
    the percentile of their lowest group confidence (`warmup_lows`, first ones first); else None."""
    if stop.threshold is not None:
        return stop.threshold
    if len(warmup_lows) < stop.warmup:
        return None
    return percentile_linear(warmup_lows[: stop.warmup], stop.percentile)


def confidence_stop_token(grid: np.ndarray, every: int, cap: int, threshold: float) -> int | None:
    """The first check point t_k < cap whose lowest group confidence (stop window) is below
    `threshold`, or None: a sample checked at token c ≥ that point stops on confidence."""
    low = grid[:, CONF_LOW_STOP]
    for k in range(len(low)):
        if k * every >= cap:
            break
        if low[k] < threshold:
            return k * every
    return None


# --------------------------------------------------------------------------- question state


class QuestionTracker:
    """Deterministic bookkeeping of one question: answers and tokens per sample, and the
    arrival order of valid answers, so both `order` views of the valid answers are at hand.

    Arrival order: a sample takes its place (at the end) when its valid answer goes from None
    to a value (ties: call order). If its valid answer later changes value it keeps its place
    with the new value. If it goes back to None (e.g. its latest code answer became −1) it
    loses its place; becoming valid again puts it at the end, as a new arrival.

    `n_history` counts the answers the seed keeps in its per-sample histories that are > 0: an
    answer is kept when its value is not None and differs from the sample's previous kept value
    of the same source (code failures −1 included in that comparison).
    """

    def __init__(self, kinds: Sequence[str], valid: ValidAnswer) -> None:
        self._kinds = tuple(kinds)
        self._rule = valid
        self._answers: list[list[Answer]] = [[] for _ in self._kinds]
        self._tokens = [0] * len(self._kinds)
        self._valid: list[int | None] = [None] * len(self._kinds)
        self._arrival: list[int] = []  # samples with a valid answer, in arrival order
        self._history = 0  # kept history answers > 0 (see the class doc)

    @property
    def kinds(self) -> tuple[str, ...]:
        return self._kinds

    def add_answer(self, sample: int, answer: Answer) -> bool:
        """Record an answer of `sample`; True when the sample's valid answer changed."""
        if answer.value is not None and answer.value > 0:
            if answer.value != _latest(self._answers[sample], answer.source):
                self._history += 1
        self._answers[sample].append(answer)
        self._tokens[sample] = max(self._tokens[sample], answer.token)
        old = self._valid[sample]
        new = valid_answer(self._rule, self._answers[sample])
        self._valid[sample] = new
        if old is None and new is not None:
            self._arrival.append(sample)
        elif old is not None and new is None:
            self._arrival.remove(sample)
        return new != old

    def set_tokens(self, sample: int, tokens: int) -> None:
        """Record how many tokens `sample` has generated."""
        self._tokens[sample] = tokens

    def view(self, sample: int) -> SampleView:
        """The sample as a check sees it now."""
        answers = tuple(self._answers[sample])
        return SampleView(sample, self._kinds[sample], self._tokens[sample], answers)

    def valid_of(self, sample: int) -> int | None:
        return self._valid[sample]

    @property
    def n_valid(self) -> int:
        return len(self._arrival)

    @property
    def n_history(self) -> int:
        """Distinct-from-previous answers > 0 of every sample's boxed and code history."""
        return self._history

    def valid_answers_ordered(self, order: QuestionStop | str) -> list[int]:
        """Valid answers in arrival order ("arrival") or sample-index order ("index")."""
        key = order.order if isinstance(order, QuestionStop) else order
        if key == "index":
            return [v for v in self._valid if v is not None]
        if key == "arrival":
            return [self._valid[s] for s in self._arrival]  # type: ignore[misc]
        raise ValueError(f"unknown order {key!r}")

    def finals(self) -> tuple[SampleFinal, ...]:
        """Each sample's final answers, in sample-index order, for `vote`."""
        return tuple(
            sample_final(k, self._tokens[i], self._answers[i]) for i, k in enumerate(self._kinds)
        )


__all__ = [
    "CODE_FAILURE",
    "Answer",
    "QuestionTracker",
    "SampleFinal",
    "SampleView",
    "check_token",
    "confidence_feature",
    "confidence_grid",
    "confidence_row",
    "confidence_stop_token",
    "confidence_threshold",
    "consistency_stop",
    "kept_by_confidence",
    "leader_uncatchable",
    "uncatchable_among",
    "lowest_group",
    "percentile_linear",
    "question_budget_s",
    "code_mode",
    "early_timeout_count",
    "past_cutoff",
    "pick_level",
    "read_boxes",
    "sample_final",
    "sample_kinds",
    "sample_should_stop",
    "stop_condition_token",
    "timeout_stop",
    "valid_answer",
    "vote",
]
