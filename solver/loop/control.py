"""The control loop of one question: read the stream, extract answers, run code, apply the policy.

Semantics (the simulator's, simulator/replay/question.py, which the fidelity test enforces):
- a sample is *checked* when its token count reaches its next multiple of `check.every_tokens`
  and when it ends; answers extracted from its text since the last check are detected at the
  check (in text order), and the latest new ```python block is dispatched to the code runner;
- a check then absorbs the sample's code results that are ready, and runs sample stop, question
  stop (consistency) and timeouts in that order; a sample's own end runs the consistency check
  only, and only on a natural end (`length` runs none);
- a code result of a sample that has ended is seen as soon as it is ready (replay streams wake
  the loop at that time; live streams are polled at every chunk);
- the question ends on a stop rule (every running sample is cancelled; the tokens they reached
  come back in their `abort` chunks) or when every sample ended and no code run is pending;
  the vote uses what each sample had shown by its last check (`QuestionTracker.finals`), unless
  `vote.final_read`: after the cancellation each cut-off sample is read once more (its abort
  chunk carries the text up to its tokens) and a new code block runs to its end, its execution
  time added to the question's (the seed on lmdeploy 0.7.2); the outcome's `decided_s` is when
  the loop decided the stop (recorded as `questions_done.decided_s`: the abort latency is the
  engine's steps after it); on a virtual clock the aborts land the stream's `abort_latency_s`
  after it (the profile's `abort_latency_steps`), which the question's time includes;
- the check's reading options (`check.boxes`, `check.boxed_zero`: `decisions.read_boxes`,
  `check.code_overlap: inline`: the check awaits its code run, so the whole loop is busy for it
  while the engine decodes on; chunks that arrive meanwhile are handled in order afterwards, at
  the clock of then: the simulator's `busy` clock) and the early timeouts' count
  (`decisions.early_timeout_count`) are the simulator's;
- token confidence (policies that read it) comes with the chunks: converted from the engine's
  top-k logprobs, or as is from engines that have it (the replay engine). A check reads the
  `confidence_grid` row of the sample's last grid point at or before its tokens, an ended sample
  (warm-up, vote) its end row, as the simulator does. A sample whose engine sent confidence for
  fewer tokens than that row needs (no logprobs, or a chunk without them) is never stopped on
  confidence and does not warm up the threshold, and its question votes without confidence
  weights or filtering (a warning says so): the solver still answers. The replay engine never
  gets there: `build_engine` refuses a store without confidence as the simulator does.

The stream is read in lockstep: the loop asks for the next item only after it has handled the
previous one, so on a replay stream decisions do not depend on asyncio scheduling. Code runs
never block the stream. On streams with a wall clock a watchdog cancels the question once the
engine clock passes the competition cutoff by `watchdog_grace_s` (e.g. a stalled engine). An
engine call that never returns (a hung `cancel_all` or stream) cannot hold the answer: the
session (`SolveSession`) gives up on the question at its deadline and answers with
`abandon()`, the vote of what the loop knew, without calling the engine.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import math
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from collections.abc import Callable
from typing import Any, Protocol

import numpy as np

from aimo.solver.engines.base import Chunk, QuestionStream
from aimo.solver.engines.replay import Wake
from aimo.solver.extraction import AnswerFound, CodeFound, StreamingExtractor
from aimo.solver.engines.logprobs import DEFAULT_TOP_K, token_confidence
from aimo.core.policy import (
    Answer,
    Policy,
    QuestionTracker,
    SampleStopRule,
    SpeedLevel,
    confidence_feature,
    confidence_grid,
    confidence_threshold,
    consistency_stop,
    uncatchable_among,
    lowest_group,
    early_timeout_count,
    read_boxes,
    sample_should_stop,
    timeout_stop,
    uses_confidence,
    vote,
)
from aimo.core.policy.decisions import CONF_LOW_STOP
from aimo.core.errors import AimoError
from aimo.core.results import QuestionOutcome, SampleEnd, SampleOutcome
from aimo.solver.loop.runners import CodeRunner, PendingRun

logger = logging.getLogger("aimo.solver.loop")


class Recorder(Protocol):
    """What the loop reports to a recorder (see `solver.loop.recording.RunRecorder`)."""

    def on_chunk(self, chunk: Chunk) -> None: ...

    def on_answer(self, sample: int, token: int, t: float | None, source: str, value: int | None,
                  code_ok: bool | None = None, exec_ms: float | None = None,
                  error: str | None = None) -> None: ...

    def on_sample_end(self, sample: int, kind: str, prompt_tokens: int, start_s: float | None,
                      end_s: float | None, n_tokens: int, finish_reason: str) -> None: ...


@dataclass(frozen=True)
class LoopOptions:
    """Knobs of the loop that are not policy: watchdog grace past the cutoff (engine seconds),
    how often the watchdog looks, how long to wait for a cancelled stream to drain, and how long
    an engine restart may take after a hang (wall seconds).

    Whatever the engine does, a question on a wall clock is answered by its deadline,
    min(cutoff, level timeout) + `watchdog_grace_s`, plus one `watchdog_poll_s`."""

    watchdog_grace_s: float = 5.0
    watchdog_poll_s: float = 1.0
    drain_timeout_s: float = 10.0
    restart_timeout_s: float = 300.0
    top_k: int = DEFAULT_TOP_K  # logprobs per token the engine sends (confidence policies)


class _Forced(AimoError):
    """The watchdog stopped the question while the loop waited for the stream."""


class _Sample:
    """Mutable per-sample state of the loop (private)."""

    __slots__ = ("index", "kind", "rule", "extractor", "boxed", "code", "last_code", "pending",
                 "next_grid", "tokens", "ended", "end", "end_s", "first_t", "finish", "n_answers",
                 "conf", "n_conf")

    def __init__(self, index: int, kind: str, rule: SampleStopRule, policy: Policy) -> None:
        self.index = index
        self.kind = kind
        self.rule = rule
        self.extractor = StreamingExtractor(policy.extraction)
        self.boxed: list[AnswerFound] = []  # extracted, not yet detected by a check
        self.code: CodeFound | None = None  # latest block closed since the last check
        self.last_code: str | None = None  # the block last dispatched
        self.pending: list[tuple[PendingRun, int]] = []  # (run, token of its block)
        self.next_grid = policy.check.every_tokens
        self.tokens = 0
        self.ended = False
        self.end: SampleEnd = "queued"
        self.end_s = math.nan
        self.first_t: float | None = None
        self.finish = "abort"
        self.n_answers = 0
        # token confidence and entropy as received, in pieces (confidence policies only)
        self.conf: list[tuple[np.ndarray, np.ndarray]] = []
        self.n_conf = 0  # tokens covered by `conf`


class _QuestionLoop:
    """One question's loop; `run` is the whole of its life (private; see `run_question`)."""

    def __init__(self, stream: QuestionStream, policy: Policy, level: SpeedLevel,
                 kinds: Sequence[str], runner: CodeRunner, cutoff_in_s: float,
                 recorder: Recorder | None, options: LoopOptions) -> None:
        self.stream = stream
        self.policy = policy
        self.level = level
        self.runner = runner
        self.cutoff_in_s = cutoff_in_s
        self.rec = recorder
        self.opt = options
        self.every = policy.check.every_tokens
        self.lockstep = bool(getattr(stream, "lockstep", False))
        kind_of = getattr(stream, "sample_kind", None)
        kinds = [kind_of(i) if kind_of else k for i, k in enumerate(kinds)]
        self.samples = [_Sample(i, k, policy.sample_stop.rule_for(k), policy) for i, k in enumerate(kinds)]
        self.tracker = QuestionTracker(kinds, policy.question_stop.valid)
        self.stop_time = math.nan
        self.forced: str | None = None
        self.forced_event = asyncio.Event()
        self.forced_task: asyncio.Future[Any] | None = None
        self.version = 0  # answers added so far (invalidates the consistency cache)
        self.checked_version = -1
        self.checked: str | None = None
        self.reads_confidence = uses_confidence(policy)
        self.cstop = policy.sample_stop.confidence
        self.warmup_lows: list[float] = []
        self.threshold = (None if self.cstop is None
                          else confidence_threshold(self.cstop, self.warmup_lows))
        self.conf_missing: set[int] = set()  # samples read without enough confidence

    # ------------------------------------------------------------------ decisions

    def add(self, s: _Sample, answer: Answer) -> None:
        self.tracker.add_answer(s.index, answer)
        s.n_answers += 1
        self.version += 1

    def consistency(self) -> str | None:
        """The consistency rule that holds, if any (cached: it depends on the answers only)."""
        if self.version != self.checked_version:
            ordered = self.tracker.valid_answers_ordered(self.policy.question_stop)
            self.checked = consistency_stop(self.policy.question_stop, self.level, ordered)
            self.checked_version = self.version
        return self.checked

    def timeout(self, now: float) -> str | None:
        count = early_timeout_count(self.policy.schedule, self.tracker.n_valid,
                                    self.tracker.n_history)
        return timeout_stop(self.level, now, count, now > self.cutoff_in_s)

    def question_check(self) -> str | None:
        """The simulator's question check: consistency, then (if asked) the uncatchable leader
        over the samples that ended with no code pending (`uncatchable_among`)."""
        stop = self.consistency()
        if stop is None and self.policy.question_stop.uncatchable:
            kw = self.policy.vote.kind_weights
            if uncatchable_among(
                (s.ended and not s.pending, self.tracker.valid_of(s.index), kw.of(s.kind))
                for s in self.samples
            ):
                stop = "uncatchable"
        return stop

    def confidence_at(self, s: _Sample, ended: bool) -> np.ndarray | None:
        """The sample's `confidence_grid` row as the simulator reads it: its end row once it
        ended on its own (`ended`), else the row of its last grid point at or before its tokens;
        None (and a warning, once a question) when the engine sent too little confidence."""
        upto = s.tokens if ended else s.tokens // self.every * self.every
        if s.n_conf < upto:
            if not self.conf_missing:  # once a question
                logger.warning(
                    "policy %r reads token confidence, but the engine sent it for %d of sample "
                    "%d's %d tokens: no confidence stop or warm-up for such samples, and this "
                    "question votes without confidence (run the engine with logprobs)",
                    self.policy.name, s.n_conf, s.index, upto)
            self.conf_missing.add(s.index)
            return None
        if len(s.conf) > 1:
            s.conf = [(np.concatenate([c for c, _ in s.conf]), np.concatenate([e for _, e in s.conf]))]
        conf, ent = s.conf[0] if s.conf else (np.zeros(0, np.float32), np.zeros(0, np.float32))
        cw = self.cstop.window if self.cstop is not None else 1
        grid = confidence_grid(conf, ent, upto, self.every, self.policy.vote.confidence_window, cw)
        return grid[-1]

    def warm_up(self, s: _Sample) -> None:
        """A sample ended on its own: DeepConf's warm-up takes its lowest group confidence."""
        if self.cstop is None or self.threshold is not None:
            return
        row = self.confidence_at(s, ended=True)
        if row is None:
            return
        self.warmup_lows.append(lowest_group(row, CONF_LOW_STOP))
        self.threshold = confidence_threshold(self.cstop, self.warmup_lows)

    def confidence_low(self, s: _Sample) -> bool:
        """The confidence stop at a check: the lowest group confidence up to the sample's last
        check point is below the threshold (known)."""
        if self.threshold is None:
            return False
        row = self.confidence_at(s, ended=False)
        return row is not None and bool(row[CONF_LOW_STOP] < self.threshold)

    def absorb(self, s: _Sample, now: float) -> bool:
        """Add the sample's code results that are ready at `now`; True if any was added."""
        if not s.pending:
            return False
        keep: list[tuple[PendingRun, int]] = []
        added = False
        for run, token in s.pending:
            if not run.ready(now):
                keep.append((run, token))
                continue
            out = run.result()
            self.add(s, Answer(token, out.value, "code"))
            added = True
            if self.rec is not None:
                t = run.ready_at if run.ready_at is not None else now
                value = out.value if out.value is not None and out.value >= 0 else None
                self.rec.on_answer(s.index, token, t, "code", value, out.ok, out.exec_ms, out.error)
        s.pending = keep
        return added

    def detect(self, s: _Sample) -> None:
        """Detect the answers extracted since the last check; dispatch the latest new block."""
        self.record_boxes(s)
        block, s.code = s.code, None
        if block is not None and block.code != s.last_code:
            s.last_code = block.code
            s.pending.append((self.submit(s, block.code), block.token))
        self.absorb(s, self.stream.now())

    def record_boxes(self, s: _Sample) -> None:
        """Record the boxes extracted since the last check, as the check reads them."""
        found = [Answer(a.token, a.value, "boxed") for a in s.boxed]
        for answer in read_boxes(self.policy.check, found):
            self.add(s, answer)
        s.boxed.clear()

    def submit(self, s: _Sample, code: str, mode: str | None = None) -> PendingRun:
        """Start a code run; the policy's `check.code_overlap` (or `mode`) overrides the
        stream's own unless it is "profile" (runners without a `mode` then work unchanged)."""
        mode = mode or self.policy.check.code_overlap
        if mode == "profile":
            return self.runner.submit(code, sample=s.index, stream=self.stream)
        return self.runner.submit(code, sample=s.index, stream=self.stream, mode=mode)

    async def settle_inline(self, s: _Sample) -> None:
        """`code_overlap: inline`: the check waits for its code run and sees the result."""
        if self.policy.check.code_overlap != "inline" or not s.pending:
            return
        for run, _ in s.pending:
            if not run.ready(self.stream.now()):
                await run.wait()
        self.absorb(s, self.stream.now())

    async def final_read(self, samples: Sequence[_Sample], time_s: float) -> float:
        """`vote.final_read`: each cut-off sample's last read (boxes up to its tokens, a new code
        block run synchronously); returns the question's time plus those runs' execution."""
        for s in samples:
            self.record_boxes(s)
            block, s.code = s.code, None
            if block is not None and block.code != s.last_code:
                s.last_code = block.code
                run = self.submit(s, block.code, mode="inline")
                await run.wait()
                out = run.result()
                self.add(s, Answer(block.token, out.value, "code"))
                exec_s = out.exec_ms / 1000.0 if math.isfinite(out.exec_ms) else 0.0
                time_s += exec_s
                if self.rec is not None:
                    value = out.value if out.value is not None and out.value >= 0 else None
                    self.rec.on_answer(s.index, block.token, time_s, "code", value, out.ok,
                                       out.exec_ms, out.error)
            if self.lockstep:  # replay: results ready by now count (live runs were cancelled)
                self.absorb(s, time_s)
        return time_s

    def end_sample(self, s: _Sample, end: SampleEnd, now: float) -> None:
        s.ended, s.end, s.end_s = True, end, now

    async def check(self, s: _Sample) -> str | None:
        """A grid check of a running sample: detect, sample stop, question stop, timeout."""
        self.detect(s)
        await self.settle_inline(s)
        self.tracker.set_tokens(s.index, s.tokens)
        if (s.n_answers and sample_should_stop(s.rule, self.tracker.view(s.index))) or (
            self.cstop is not None and self.confidence_low(s)
        ):
            self.end_sample(s, "sample_stop", self.stream.now())
            await self.stream.cancel(s.index)
        now = self.stream.now()
        stop = self.question_check() or self.timeout(now)
        if stop is not None:
            self.stop_time = now
        return stop

    def poll_ended(self) -> str | None:
        """Live streams: code results of ended samples count as soon as they are ready."""
        now = self.stream.now()
        added = False
        for s in self.samples:
            if s.ended and s.pending:
                added = self.absorb(s, now) or added
        if not added:
            return None
        stop = self.question_check()
        if stop is not None:
            self.stop_time = now
        return stop

    # ------------------------------------------------------------------ stream items

    def feed(self, s: _Sample, chunk: Chunk) -> None:
        """Extract from the chunk's text; answers wait for the sample's next check."""
        if s.first_t is None:
            s.first_t = chunk.t
        found = s.extractor.feed(chunk.text, max(chunk.n_tokens, s.tokens))
        if self.reads_confidence:
            if chunk.confidence is not None:
                piece = chunk.confidence
            elif chunk.logprobs is not None:
                piece = token_confidence(chunk.logprobs, self.opt.top_k)
            else:
                piece = None
            if piece is not None and len(piece[0]):
                s.conf.append(piece)
                s.n_conf += len(piece[0])
        s.tokens = max(s.tokens, chunk.n_tokens)
        if found.answers:
            if not s.ended:
                s.boxed.extend(found.answers)
            if self.rec is not None:
                for a in found.answers:
                    self.rec.on_answer(s.index, a.token, chunk.t, "boxed", a.value)
        if found.code_blocks and not s.ended:
            s.code = found.code_blocks[-1]

    async def on_chunk(self, chunk: Chunk) -> str | None:
        if self.rec is not None:
            self.rec.on_chunk(chunk)
        s = self.samples[chunk.sample]
        if s.ended:  # e.g. the abort chunk of a sample the loop stopped
            self.feed(s, chunk)
            return None
        self.feed(s, chunk)
        if chunk.finish_reason is not None:
            s.finish = chunk.finish_reason
            self.detect(s)
            await self.settle_inline(s)
            now = self.stream.now()
            natural = chunk.finish_reason != "length"
            self.end_sample(s, "finished" if natural else "length", now)
            self.warm_up(s)
            stop = self.question_check() if natural else None
            if stop is not None:
                self.stop_time = now
            return stop or (None if self.lockstep else self.poll_ended())
        if s.tokens >= s.next_grid:
            s.next_grid = (s.tokens // self.every + 1) * self.every
            stop = await self.check(s)
            if stop is not None:
                return stop
        return None if self.lockstep else self.poll_ended()

    def on_wake(self, wake: Wake) -> str | None:
        """A code result may be ready: ended samples see it now (the simulator's time event)."""
        now = max(self.stream.now(), wake.t)
        had = False
        for s in self.samples:
            if s.ended and s.pending:
                self.absorb(s, wake.t)
                had = True
        if wake.active == 0:  # only code runs remain: consistency, then timeouts
            stop = self.question_check() or self.timeout(now)
        else:
            stop = self.question_check() if had else None
        if stop is not None:
            self.stop_time = now
        return stop

    # ------------------------------------------------------------------ waiting

    async def next_item(self, it: AsyncIterator[Any]) -> Any:
        if self.lockstep:
            return await it.__anext__()
        if self.forced_task is None:
            self.forced_task = asyncio.ensure_future(self.forced_event.wait())
        nxt = asyncio.ensure_future(it.__anext__())
        try:
            await asyncio.wait({nxt, self.forced_task}, return_when=asyncio.FIRST_COMPLETED)
        except BaseException:
            nxt.cancel()
            raise
        if nxt.done():
            return nxt.result()
        nxt.cancel()
        await asyncio.wait([nxt], timeout=self.opt.drain_timeout_s)  # let the stream unwind
        raise _Forced

    async def wait_code(self) -> tuple[str | None, float]:
        """After the stream ended: wait for the pending code runs, one result at a time."""
        now = self.stream.now()
        while any(s.pending for s in self.samples):
            runs = [run for s in self.samples for run, _ in s.pending]
            known = [r.ready_at for r in runs if r.ready_at is not None and not r.ready(now)]
            if known and len(known) == len(runs):  # results with known times (replay)
                now = max(now, min(known))
            elif not any(r.ready(now) for r in runs):
                waits: list[asyncio.Future[Any]] = [asyncio.ensure_future(r.wait()) for r in runs]
                waits.append(asyncio.ensure_future(self.forced_event.wait()))
                try:
                    await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    for w in waits:
                        w.cancel()
                if self.forced is not None:
                    return self.forced, self.stream.now()
                now = max(now, self.stream.now())
            for s in self.samples:
                self.absorb(s, now)
            stop = self.question_check() or self.timeout(now)
            if stop is not None:
                return stop, now
        return None, now

    async def watchdog(self) -> None:
        """Cancel the question once the engine clock passes the cutoff by the grace period."""
        limit = self.cutoff_in_s + self.opt.watchdog_grace_s
        while True:
            left = limit - self.stream.now()
            if left < 0:
                self.forced = "cutoff"
                self.forced_event.set()
                logger.warning("watchdog: question past the cutoff by %.1f s; stopping it",
                               self.opt.watchdog_grace_s - left)
                try:
                    await self.stream.cancel_all()
                except Exception:  # the engine may be broken; the loop still answers
                    logger.exception("watchdog: cancel_all failed")
                return
            await asyncio.sleep(min(max(left, 0.001), self.opt.watchdog_poll_s))

    async def drain(self, it: AsyncIterator[Any]) -> None:
        """Read what a cancelled stream still sends (abort chunks carry the tokens reached)."""
        async def _all() -> None:
            async for item in it:
                if isinstance(item, Chunk):
                    if self.rec is not None:
                        self.rec.on_chunk(item)
                    self.feed(self.samples[item.sample], item)

        if self.lockstep:
            await _all()
            return
        try:
            await asyncio.wait_for(_all(), self.opt.drain_timeout_s)
        except (asyncio.TimeoutError, Exception) as exc:  # a broken engine must not block the answer
            logger.warning("stream did not drain cleanly: %r", exc)

    # ------------------------------------------------------------------ the question

    async def run(self) -> QuestionOutcome:
        it = self.stream.__aiter__()
        dog = None
        if not self.lockstep and math.isfinite(self.cutoff_in_s):
            dog = asyncio.ensure_future(self.watchdog())
        stop: str | None = None
        end_time = math.nan
        try:
            while stop is None:
                if self.forced is not None:
                    stop = self.forced
                    break
                try:
                    item = await self.next_item(it)
                except StopAsyncIteration:
                    break
                except _Forced:
                    stop = self.forced
                    break
                if isinstance(item, Wake):
                    stop = self.on_wake(item)
                else:
                    stop = await self.on_chunk(item)
            if stop is None:
                stop, end_time = await self.wait_code()
                if stop is not None:
                    self.stop_time = end_time
            if stop is not None and stop == self.forced:
                self.stop_time = self.stream.now()
        except Exception:
            logger.exception("engine failure during the question; answering with what is known")
            stop, self.stop_time = "error", self.stream.now()
        finally:
            if dog is not None:
                dog.cancel()
            if self.forced_task is not None:
                self.forced_task.cancel()
            for s in self.samples:  # runs nobody will read any more (queued ones are dropped)
                for run, _ in s.pending if stop is not None else ():
                    cancel = getattr(run, "cancel", None)
                    if cancel is not None:
                        cancel()
        if stop is None:
            for s in self.samples:  # a stream that ended without a sample's last chunk
                if not s.ended and s.first_t is not None:
                    self.end_sample(s, "finished", end_time)
            return self.outcome("all_done", end_time)
        time_s = self.stop_time if math.isfinite(self.stop_time) else self.stream.now()
        decided_s = time_s
        running = [s for s in self.samples if not s.ended]
        started = getattr(self.stream, "sample_start", None)
        never = {s.index for s in running
                 if (started(s.index) is None if started else s.first_t is None)}
        try:
            await self.stream.cancel_all()
            if self.lockstep:  # a virtual clock: the aborts landed this much later
                time_s += float(getattr(self.stream, "abort_latency_s", 0.0))
            await self.drain(it)
        except Exception:
            logger.exception("could not cancel the question's stream")
        if self.policy.vote.final_read:
            time_s = await self.final_read([s for s in running if s.index not in never], time_s)
        for s in running:
            self.end_sample(s, "queued" if s.index in never else "question_stop", time_s)
        return dataclasses.replace(self.outcome(stop, time_s), decided_s=decided_s)

    def abandon(self, time_s: float) -> QuestionOutcome:
        """The answer from what is known now, for a question whose engine hangs: no engine call,
        nothing recorded; samples still running end as `question_stop` (`queued` if never
        started), stop reason `deadline`."""
        for s in self.samples:
            if not s.ended:
                self.end_sample(s, "queued" if s.first_t is None else "question_stop", time_s)
        rec, self.rec = self.rec, None
        try:
            return self.outcome("deadline", time_s)
        finally:
            self.rec = rec

    def outcome(self, stop: str, time_s: float) -> QuestionOutcome:
        started = getattr(self.stream, "sample_start", None)
        source = getattr(self.stream, "source_sample", None)
        prompt_tokens = getattr(self.stream, "prompt_tokens", None)
        for s in self.samples:
            self.tracker.set_tokens(s.index, s.tokens if s.end != "queued" else 0)
        finals = self.tracker.finals()
        rule = self.policy.vote
        if rule.confidence != "none":  # each sample's metric at its last check
            rows = [None if s.end == "queued" else
                    self.confidence_at(s, ended=s.end in ("finished", "length"))
                    for s in self.samples]
            if any(row is None for s, row in zip(self.samples, rows) if s.end != "queued"):
                rule = dataclasses.replace(rule, confidence="none", keep_top=1.0)
            else:
                finals = tuple(
                    f if row is None else
                    dataclasses.replace(f, confidence=confidence_feature(rule.confidence, row))
                    for row, f in zip(rows, finals))
        outcomes = []
        for s, final in zip(self.samples, finals):
            queued = s.end == "queued"
            start = started(s.index) if started else s.first_t
            start_s = math.nan if queued or start is None else float(start)
            end_s = math.nan if queued else s.end_s
            tokens = 0 if queued else s.tokens
            outcomes.append(SampleOutcome(
                index=s.index, source_sample=source(s.index) if source else s.index, kind=s.kind,
                start_s=start_s, end_s=end_s, tokens=tokens, end=s.end, boxed=final.boxed,
                code=final.code,
            ))
            if self.rec is not None and not queued:
                finish = s.finish if s.end in ("finished", "length") else "abort"
                n_prompt = prompt_tokens(s.index) if prompt_tokens else None
                self.rec.on_sample_end(
                    s.index, s.kind, int(n_prompt or 0),
                    None if math.isnan(start_s) else start_s, None if math.isnan(end_s) else end_s,
                    tokens, finish,
                )
        return QuestionOutcome(vote(rule, finals), time_s, stop, tuple(outcomes))


async def run_question(
    stream: QuestionStream,
    policy: Policy,
    level: SpeedLevel,
    kinds: Sequence[str],
    runner: CodeRunner,
    *,
    cutoff_in_s: float = math.inf,
    recorder: Recorder | None = None,
    options: LoopOptions = LoopOptions(),
    on_loop: Callable[[Any], None] | None = None,
) -> QuestionOutcome:
    """Drive one started question to its answer.

    Args:
        stream: the question's running batch (from `Engine.start_question`).
        policy: the policy (stops, vote, check grid, extraction mode).
        level: the speed level in force (timeouts, min answers).
        kinds: the prompt kind of each sample (the stream's `sample_kind` wins when it has one).
        runner: where code blocks run.
        cutoff_in_s: seconds from the question's start to the competition's hard cutoff.
        recorder: receives every chunk, answer and sample end (optional).
        on_loop: gets the question's loop object before it runs (its `abandon(time_s)` answers
            from what is known if the caller gives up on a hung engine).
    Returns:
        The answer (always one: the policy's fallback when nothing voted), the question time on
        the stream's clock, the stop reason and per-sample outcomes.
    """
    loop = _QuestionLoop(stream, policy, level, kinds, runner, cutoff_in_s, recorder, options)
    if on_loop is not None:
        on_loop(loop)
    return await loop.run()


__all__ = ["LoopOptions", "Recorder", "run_question"]
