"""Reference event-driven replay of one question: recorded samples decode as a batch whose step
time follows the hardware profile, and the shared policy code decides stops and the vote.

Semantics (the contract the live solver and the fast path follow):
- every active sample gains one token per decode step; a step of `b` sequences holding `C`
  context tokens costs `L(b, C)`; between two events the batch is constant (closed form);
- a sample is *checked* on its grid (every `check.every_tokens` generated tokens) and when it
  ends; a check detects the recorded answers whose token is at or before it, dispatches the
  latest newly closed code block, then runs sample stop, question stop and timeouts in that
  order; checks where nothing can change are skipped, since they would decide nothing (a
  DeepConf threshold set by a sample that ends in a step makes the grid checks of the samples
  after it in that step's slot order count: they are decided with it, as the live loop does);
- a code result arrives `exec_ms` after dispatch (profile `code_overlap: parallel`; with
  `code_workers` it first waits for a free worker, first dispatched first served) and is seen
  at the sample's next check, or at once if the sample has ended; with `serial` the batch
  waits for it;
- the policy's `check.code_overlap` overrides the profile's mode; `inline` (the seed: code runs
  inside the check) keeps the control loop busy while the batch decodes on (the GPU is not
  paused): a check at batch time `t` that dispatches a run of `exec_s` makes the loop busy until
  `busy = max(t, busy) + exec_s` and sees the result then. Every check's decisions (sample stop,
  question stop, timeouts, the `end_s` of a sample it ends) are taken at `max(t, busy)`: checks
  whose event falls while the loop is busy are taken, in event order, once it is free, each with
  the answers up to its sample's tokens at its event (the live loop reads the chunks buffered
  meanwhile in order, each chunk's tokens, the wall clock); a time threshold passed by `busy`
  arms the next check like one passed by the batch. A question stop taken at `d` lets the running
  samples decode until `d` (the whole steps that end by then, each up to its cap): the question's
  time is `d` and the final read (below) reads those tokens; an `all_done` question ends once the
  loop is free. The question stop lands `profile.abort_latency_steps` (L) steps later: from the
  decision (after the decode until `d`) the running samples decode L more whole steps, each up
  to its cap; their time is the question's and the final read reads their tokens. Bounds: a
  sample stop takes the sample out of the batch at its decision (the live engine decodes it for
  the same latency: one more sequence in those L steps, β·L seconds, tokens never read); a
  sample stopped at a late decision leaves the batch at its check's event (the live engine
  decodes it until the decision; those tokens are neither counted nor read);
- `check.boxes: last` records only the last box found since the previous check, and
  `check.boxed_zero: ignore` records a boxed 0 as nothing (`decisions.read_boxes`);
- early timeouts count `decisions.early_timeout_count` (valid answers, or the answer histories);
- a question ends when a stop rule fires, or when every sample has ended and no code is pending;
  the vote then uses what each sample had shown by its last check, except with
  `vote.final_read`: a stop rule's cancellation ends each running sample with one more read of
  its text (answers up to its tokens at the stop), its new code block run synchronously (the
  clock waits `exec_ms`, samples in index order, after the loop is free), as the seed's lmdeploy
  0.7.2 does.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from aimo.core.hardware import (HardwareProfile, decode_on, prefill_duration, steps_duration,
                                steps_within)
from aimo.simulator.replay.results import SampleOutcome
from aimo.core.policy import (
    CODE_FAILURE,
    Answer,
    Policy,
    QuestionTracker,
    SpeedLevel,
    confidence_feature,
    confidence_grid,
    confidence_row,
    confidence_stop_token,
    confidence_threshold,
    consistency_stop,
    uncatchable_among,
    lowest_group,
    check_token,
    code_mode,
    early_timeout_count,
    read_boxes,
    sample_should_stop,
    stop_condition_token,
    timeout_stop,
    uses_confidence,
    vote,
)
from aimo.core.policy.decisions import CONF_LOW_STOP
from aimo.core.policy.model import SampleStopRule
from aimo.core.traces import SOURCE_CODE, AnswerSource, SampleTrace

_EPS = 1e-9


@dataclass(frozen=True)
class QuestionReplay:
    """What one question's replay produced (times relative to the question's start)."""

    answer: int
    time_s: float
    stop_reason: str
    samples: tuple[SampleOutcome, ...]


class _Slot:
    """Mutable per-sample state of the replay loop (private; never escapes the function)."""

    __slots__ = (
        "index", "trace", "kind", "cap", "end_kind", "state", "g", "start_s", "end_s", "next_ans",
        "pending", "end_reason", "rule", "grid", "conf_tok",
    )

    def __init__(self, index: int, trace: SampleTrace, cap: int, rule: SampleStopRule) -> None:
        self.index = index
        self.trace = trace
        self.kind = trace.kind
        self.cap = min(trace.n_tokens, cap)
        self.end_kind = "length" if trace.n_tokens > cap or trace.finish_reason == "length" else "finished"
        self.state = "queued"  # queued | active | done
        self.g = 0
        self.start_s = math.nan
        self.end_s = math.nan
        self.next_ans = 0  # next recorded answer not yet seen by a check
        self.pending: list[tuple[float, Answer]] = []  # (ready time, code answer)
        self.end_reason = "queued"
        self.rule = rule
        self.grid: np.ndarray | None = None  # confidence_grid, when the policy reads confidence
        self.conf_tok: int | None = None  # confidence_stop_token, once the threshold is known


def _answer_at(trace: SampleTrace, j: int) -> Answer:
    value = int(trace.ans_value[j])
    source: AnswerSource = "code" if int(trace.ans_source[j]) == SOURCE_CODE else "boxed"
    if source == "code" and not bool(trace.ans_code_ok[j]):
        return Answer(token=int(trace.ans_token[j]), value=CODE_FAILURE, source="code")
    value = value if value >= 0 else None  # type: ignore[assignment]
    return Answer(token=int(trace.ans_token[j]), value=value, source=source)


def replay_question(
    samples: Sequence[SampleTrace],
    policy: Policy,
    level: SpeedLevel,
    profile: HardwareProfile,
    *,
    cutoff_in_s: float = math.inf,
) -> QuestionReplay:
    """Replay one question with `samples` (already chosen, in slot order) under `policy` at `level`.

    Args:
        samples: the recorded samples to run, one per slot; their kinds decide the stop rules.
        policy: the policy (sample/question stop, vote, check granularity, token cap).
        level: the speed level in force for this question (timeouts, min answers).
        profile: the hardware time model.
        cutoff_in_s: seconds from the question's start until the competition's hard cutoff.
    """
    every = policy.check.every_tokens
    cap = policy.sample_stop.max_tokens
    rules = {"cot": policy.sample_stop.cot, "code": policy.sample_stop.code}
    slots = [_Slot(i, s, cap, rules[s.kind]) for i, s in enumerate(samples)]
    mode = code_mode(policy.check, profile.code_overlap)
    serial_code = mode == "serial"
    inline_code = mode == "inline"
    # parallel code with a pool: when each worker frees up (runs start first dispatched, first served)
    workers_free = [0.0] * profile.code_workers if profile.code_workers else None
    tracker = QuestionTracker([s.kind for s in slots], policy.question_stop.valid)
    cstop = policy.sample_stop.confidence
    if uses_confidence(policy):
        for s in slots:
            tr = s.trace
            if tr.token_conf is None or tr.token_entropy is None:
                raise ValueError(f"policy {policy.name!r} reads token confidence, but sample "
                                 f"{tr.sample} has none (record or synthesise it)")
            s.grid = confidence_grid(tr.token_conf, tr.token_entropy, s.cap, every,
                                     policy.vote.confidence_window,
                                     cstop.window if cstop is not None else 1)
    warmup_lows: list[float] = []
    threshold = None if cstop is None else confidence_threshold(cstop, warmup_lows)

    def set_conf_tokens() -> None:
        for s in slots:
            s.conf_tok = confidence_stop_token(
                s.grid, every, s.cap, threshold)  # type: ignore[arg-type]

    if threshold is not None:
        set_conf_tokens()
    kw = policy.vote.kind_weights
    now = 0.0  # the batch's clock (decode steps, prefills, serial code runs)
    busy = 0.0  # `inline`: the control loop is busy running code until this time
    stop_reason: str | None = None
    thresholds = sorted(
        {t for t in [level.timeout_s, cutoff_in_s, *(e.after_s for e in level.early_timeouts)] if t > 0}
    )
    armed_global = False  # a time threshold passed: the next check of any sample must run
    noticed = 0.0  # latest time event already noticed (code result ready, threshold passed)
    armed_upto = 0.0  # thresholds at or before this time have armed a check already

    def decided() -> float:
        """When the loop takes the current check's decisions: at its event, or once it is free."""
        return max(now, busy)

    def coast(until: float | None = None, steps: int = 0) -> None:
        """The batch decodes on without the loop (`core.hardware.timing.decode_on`): to a
        question stop decided at `until` while the loop was busy, or `steps` more steps (the
        abort latency); running samples gain those whole steps, each up to its cap."""
        nonlocal now
        act = [s for s in slots if s.state == "active"]
        made, now = decode_on(profile, [s.trace.prompt_tokens for s in act],
                              [s.g for s in act], [s.cap for s in act], now,
                              until=until, steps=steps)
        for s, g in zip(act, made):
            s.g = g

    def active() -> list[_Slot]:
        return [s for s in slots if s.state == "active"]

    def start_queued() -> None:
        nonlocal now
        running = sum(1 for s in slots if s.state == "active")
        starting = [s for s in slots if s.state == "queued"][: max(0, profile.max_batch - running)]
        if not starting:
            return
        now += prefill_duration(profile, sum(s.trace.prompt_tokens for s in starting),
                                len(starting))
        for s in starting:
            s.state, s.start_s = "active", now

    def question_check() -> str | None:
        ordered = tracker.valid_answers_ordered(policy.question_stop)
        reason = consistency_stop(policy.question_stop, level, ordered)
        if reason is None and policy.question_stop.uncatchable:
            if uncatchable_among(
                (s.state == "done" and not s.pending, tracker.valid_of(s.index), kw.of(s.kind))
                for s in slots
            ):
                reason = "uncatchable"
        return reason

    def timeout_check() -> str | None:
        count = early_timeout_count(policy.schedule, tracker.n_valid, tracker.n_history)
        t = decided()
        return timeout_stop(level, t, count, t > cutoff_in_s)

    def absorb_ready_code(s: _Slot) -> None:
        upto = max(now, noticed) + _EPS
        ready = [p for p in s.pending if p[0] <= upto]
        if ready:
            s.pending = [p for p in s.pending if p[0] > upto]
            for _, a in ready:
                tracker.add_answer(s.index, a)

    def detect(s: _Slot, sync: bool = False) -> None:
        """See recorded answers up to the sample's current token; dispatch the latest new code
        (`sync`: run it synchronously, the clock waiting, as the final read does)."""
        nonlocal now, busy
        tr = s.trace
        newest_code: Answer | None = None
        boxes: list[Answer] = []
        while s.next_ans < tr.n_answers and int(tr.ans_token[s.next_ans]) <= s.g:
            a = _answer_at(tr, s.next_ans)
            if a.source == "code":
                newest_code = a
                exec_s = float(tr.ans_exec_ms[s.next_ans]) / 1000.0
                exec_s = 0.0 if not math.isfinite(exec_s) else exec_s
            else:
                boxes.append(a)
            s.next_ans += 1
        for a in read_boxes(policy.check, boxes):
            tracker.add_answer(s.index, a)
        if newest_code is not None:
            if serial_code or sync:
                now += exec_s
                tracker.add_answer(s.index, newest_code)
            elif inline_code:
                busy = decided() + exec_s
                tracker.add_answer(s.index, newest_code)
            elif workers_free is not None:
                w = min(range(len(workers_free)), key=workers_free.__getitem__)
                workers_free[w] = max(now, workers_free[w]) + exec_s
                s.pending.append((workers_free[w], newest_code))
            else:
                s.pending.append((now + exec_s, newest_code))
        absorb_ready_code(s)

    def end_sample(s: _Slot, reason: str) -> None:
        s.state, s.end_s, s.end_reason = "done", decided(), reason

    def check(s: _Slot, ended: bool) -> str | None:
        """One check of sample `s`; returns a question stop reason or None."""
        nonlocal threshold
        detect(s)
        if ended:
            end_sample(s, s.end_kind)
            if cstop is not None and threshold is None:  # a warm-up sample of DeepConf online
                warmup_lows.append(lowest_group(s.grid[-1], CONF_LOW_STOP))  # type: ignore[index]
                threshold = confidence_threshold(cstop, warmup_lows)
                if threshold is not None:
                    set_conf_tokens()
            if s.end_kind == "finished":
                return question_check()
            return None
        tracker.set_tokens(s.index, s.g)
        if sample_should_stop(s.rule, tracker.view(s.index)) or (
            s.conf_tok is not None and s.g >= s.conf_tok
        ):
            end_sample(s, "sample_stop")
            start_queued()
        return question_check() or timeout_check()

    def next_check_token(s: _Slot) -> int:
        """The next token of `s` at which a check could change something."""
        nxt = s.cap
        tr = s.trace
        grid = policy.check
        if s.next_ans < tr.n_answers:
            nxt = min(nxt, check_token(grid, int(tr.ans_token[s.next_ans])))
        holds = stop_condition_token(s.rule, tracker.view(s.index).answers)
        if holds is not None:
            nxt = min(nxt, check_token(grid, holds + s.rule.grace_tokens))
        if s.conf_tok is not None:
            nxt = min(nxt, max(s.conf_tok, check_token(grid, s.g + 1)))
        if armed_global or any(p[0] <= max(now, noticed) + _EPS for p in s.pending):
            nxt = min(nxt, check_token(grid, s.g + 1))
        return max(nxt, s.g + 1) if nxt > s.g else s.g

    def absorb_ended_code() -> str | None:
        """Code results of ended samples count as soon as they arrive; a timeout they make hold is
        decided at the next check of any sample."""
        nonlocal armed_global
        reason = None
        for s in slots:
            if s.state == "done" and s.pending:
                before = len(s.pending)
                absorb_ready_code(s)
                if len(s.pending) < before:
                    reason = reason or question_check()
                    armed_global = True
        return reason

    start_queued()
    # A question whose samples all produced nothing still takes its prefill time.
    while stop_reason is None:
        # Events inside a jump of the clock (a prefill, a serial code run) are noticed now.
        crossed = [t for t in thresholds if armed_upto < t <= decided() + _EPS]
        if crossed:
            armed_global, armed_upto = True, max(crossed)
        stop_reason = absorb_ended_code()
        if stop_reason is not None:
            break
        act = active()
        pending_times = [p[0] for s in slots for p in s.pending]
        if not act:
            if not pending_times:
                break
            # Only code runs remain: wait for the next result, then apply it.
            now = max(now, min(pending_times))
            for s in slots:
                absorb_ready_code(s)
            stop_reason = question_check() or timeout_check()
            continue
        b = len(act)
        ctx = float(sum(s.trace.prompt_tokens + s.g for s in act))
        targets = [next_check_token(s) for s in act]
        n_steps = min(t - s.g for t, s in zip(targets, act))
        horizon = max(now, noticed) + _EPS
        time_events = [t for t in thresholds if t > horizon] + [p for p in pending_times if p > horizon]
        t_event = min(time_events) if time_events else math.inf
        dt = steps_duration(profile, b, ctx, n_steps)
        if now + dt > t_event + _EPS:
            k = steps_within(profile, b, ctx, t_event - now)
            k = min(k, n_steps)
            now += steps_duration(profile, b, ctx, k)
            for s in act:
                s.g += k
            # The clock stays on the step boundary; the event is seen at the next check after it.
            noticed = t_event
            if t_event in thresholds:
                armed_global, armed_upto = True, max(armed_upto, t_event)
            stop_reason = absorb_ended_code()
            if stop_reason is not None:
                now = t_event
            continue
        now += dt
        for s in act:
            s.g += n_steps
        for s, t in zip(act, targets):
            if stop_reason is not None:
                break
            if s.state != "active":
                continue
            # A clock jump earlier in this step (prefill, serial code) can make a grid check due.
            crossed = [x for x in thresholds if armed_upto < x <= decided() + _EPS]
            if crossed:
                armed_global, armed_upto = True, max(crossed)
            ready = any(p[0] <= now + _EPS for p in s.pending)
            # its confidence stop is due: the threshold was set by a sample that ended earlier
            # in this step (the target was chosen before it was known)
            conf_due = s.conf_tok is not None and s.g >= s.conf_tok
            if s.g != t and not (s.g % every == 0 and (armed_global or ready or conf_due)):
                continue
            ended = s.g >= s.cap
            stop_reason = check(s, ended=ended)
            if not ended:  # an armed check is used up only by a check that ran the timeouts
                armed_global = False
        if stop_reason is None and any(s.state == "queued" for s in slots):
            start_queued()
    if stop_reason is None:
        now = decided()  # the question ends once the loop has taken its last decision
        stop_reason = "all_done"
    else:
        if busy > now:
            coast(until=busy)
        coast(steps=profile.abort_latency_steps)
        if policy.vote.final_read:
            for s in slots:
                if s.state == "active":
                    detect(s, sync=True)
        for s in slots:
            if s.state == "active":
                end_sample(s, "question_stop")

    for s in slots:
        tracker.set_tokens(s.index, s.g)
    finals = tracker.finals()
    if policy.vote.confidence != "none":
        # a sample's confidence at its last check: a sample cut by the question stop shows its
        # last grid point even when it reached its end in the stopping step (never checked)
        finals = tuple(
            dataclasses.replace(f, confidence=confidence_feature(
                policy.vote.confidence,
                s.grid[s.g // every if s.end_reason == "question_stop"  # type: ignore[index]
                       else confidence_row(s.cap, every, s.g)]))
            for s, f in zip(slots, finals)
        )
    outcomes = []
    for s, final in zip(slots, finals):
        boxed, code = final.boxed, final.code
        outcomes.append(
            SampleOutcome(
                index=s.index, source_sample=s.trace.sample, kind=s.kind,
                start_s=s.start_s if s.state != "queued" else math.nan,
                end_s=s.end_s if s.state == "done" else math.nan,
                tokens=s.g, end=s.end_reason, boxed=boxed, code=code,  # type: ignore[arg-type]
            )
        )
    return QuestionReplay(
        answer=vote(policy.vote, finals), time_s=now, stop_reason=stop_reason, samples=tuple(outcomes)
    )


def chosen_kinds_count(kinds: Sequence[str]) -> dict[str, int]:
    """How many samples of each kind a slot list asks for."""
    out = {"cot": 0, "code": 0}
    for k in kinds:
        out[k] += 1
    return out


__all__ = ["QuestionReplay", "replay_question", "chosen_kinds_count", "np"]
