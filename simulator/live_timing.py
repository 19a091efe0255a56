"""What a live run's timestamps say about its engine beyond the step time: the first batch's stall
and the abort latency (`aimo validate` reports both).

Why: the simulator's clock must match the real engine's. Two effects live outside the decode
step model and are measured here from the store (`core.store.chunk_times.load_live_timeline`):

- **first-batch stall**: lmdeploy's first batch on a fresh engine waits seconds for its first
  chunk (kernels, graphs). Profiles count it in `startup_s` (build + stall; `scripts/device_hil.py`
  measures both); a live run's first question carries it. `first_batch_stall` measures it as
  the first question's first-chunk delay less the median first-chunk delay of the others, so
  `aimo validate` counts it in live start-up, as the profile does, and compares the first
  question without it.
- **abort latency**: a stop lands some engine steps after the loop decided it (the step in flight
  finishes); the cut samples decode meanwhile. `abort_latency` counts, for every sample still
  decoding at a decision, the tokens it gained after it (= steps) and the seconds to its last
  one. The decision is `questions_done.decided_s` where recorded (stores from v4); before that
  it is reconstructed: a question stop's samples end at the question's time, which is the
  decision plus the final read's code runs, each recorded at the clock after it (so walking
  back over the code answers recorded at that clock gives the decision); a sample stop's
  decision is its `end_s`. The profile's `abort_latency_steps` models the question stop's
  latency (a sample stop's only adds one sequence to those steps: β·L seconds).
- **engine stalls**: stretches in which the engine sent nothing while samples were decoding
  (between a sample's first and last chunk), longer than `STALL_STEPS` live steps, and first
  tokens that came that much later than the run's usual first token. The step model has no term
  for them (the H100 runs show them around aborts, 0.13-0.9 s, and as rare 3-4 s waits for a
  question's first token), so `aimo validate` reports them and the time errors without them,
  beside the errors proper: a user can tell the clock's error from the engine's hiccups.
- **step spread**: each question's median live step against the run's median (`step_spread`),
  batch and context included: on the 26M olympiad model, whose step the batch moves by at most
  5%, it is a median 9.7% (mostly the engine's noise, which no step model predicts question by
  question); on the 14B-shaped H100 runs 1.0-4.5% (mostly batch and context, which it does).
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass

import numpy as np
import pandas as pd

from aimo.core.store.chunk_times import LiveTimeline

_EPS = 1e-6  # seconds: two recorded times are the same event
STALL_STEPS = 10.0  # a silence longer than this many live steps is a stall


@dataclass(frozen=True)
class FirstBatchStall:
    """The first question's first-chunk delay, the median of the other questions', and the
    stall (their difference, at least 0); seconds on the questions' stream clocks."""

    problem_id: str
    first_delay_s: float
    typical_delay_s: float

    @property
    def stall_s(self) -> float:
        return max(0.0, self.first_delay_s - self.typical_delay_s)

    def render(self) -> str:
        return (f"first-batch stall {self.stall_s:.2f} s ({self.problem_id}'s first chunk after "
                f"{self.first_delay_s:.2f} s, the other questions' median {self.typical_delay_s:.2f} s)")


def first_batch_stall(timeline: LiveTimeline) -> FirstBatchStall | None:
    """The run's first-batch stall (None with fewer than two questions with chunks)."""
    first = timeline.chunks.groupby("problem_id")["t_s"].min()
    order = [p for p in timeline.questions["problem_id"] if p in first.index]
    if len(order) < 2:
        return None
    rest = [float(first[p]) for p in order[1:]]
    return FirstBatchStall(order[0], float(first[order[0]]), float(np.median(rest)))


@dataclass(frozen=True)
class LatencySample:
    """One sample still decoding when a stop was decided: the tokens (= engine steps) it gained
    after the decision and the seconds from the decision to its last new token."""

    problem_id: str
    sample: int
    kind: str  # 'question' | 'sample' (which stop)
    steps: int
    seconds: float


@dataclass(frozen=True)
class AbortLatency:
    """Every sample decoding at a stop decision, and how many decisions were recorded (not
    reconstructed)."""

    samples: tuple[LatencySample, ...]
    recorded_decisions: int
    question_stops: int

    def of(self, kind: str) -> tuple[LatencySample, ...]:
        return tuple(s for s in self.samples if s.kind == kind)

    def summary(self, kind: str) -> dict[str, object]:
        """n, steps histogram / median / mean / p90 / max, seconds median / p90 (JSON-ready)."""
        rows = self.of(kind)
        if not rows:
            return {"n": 0}
        steps = np.array([r.steps for r in rows], float)
        secs = np.array([r.seconds for r in rows], float)
        return {
            "n": len(rows), "steps": {int(k): v for k, v in sorted(Counter(steps.astype(int)).items())},
            "steps_median": float(np.median(steps)), "steps_mean": round(float(steps.mean()), 2),
            "steps_p90": float(np.quantile(steps, 0.9)), "steps_max": int(steps.max()),
            "seconds_median": round(float(np.median(secs)), 4),
            "seconds_p90": round(float(np.quantile(secs, 0.9)), 4),
        }

    def steps_estimate(self, min_samples: int = 20) -> int | None:
        """The profile's `abort_latency_steps` from this run: the mean steps a sample decoding at
        a question stop's decision gained after it, rounded (the model gives every cut sample the
        same L, so its expected value is the estimate; the median of a mostly 0-or-1 count flips
        between runs). None with fewer than `min_samples` such samples."""
        rows = self.of("question")
        if len(rows) < min_samples:
            return None
        return int(round(float(np.mean([r.steps for r in rows]))))

    def render(self) -> str:
        lines = []
        for kind in ("question", "sample"):
            s = self.summary(kind)
            if not s["n"]:
                lines.append(f"abort latency, {kind} stops: no sample decoding at a decision")
                continue
            hist = ", ".join(f"{k}: {v}" for k, v in s["steps"].items())  # type: ignore[attr-defined]
            lines.append(
                f"abort latency, {kind} stops ({s['n']} samples decoding at the decision): steps "
                f"median {s['steps_median']:g}, mean {s['steps_mean']:g}, p90 {s['steps_p90']:g}, "
                f"max {s['steps_max']} ({{{hist}}}); last new token {1000 * s['seconds_median']:.1f} ms "  # type: ignore[operator]
                f"after it (median), p90 {1000 * s['seconds_p90']:.1f} ms")  # type: ignore[operator]
        how = (f"{self.recorded_decisions} of {self.question_stops} question-stop decisions recorded "
               "(questions_done.decided_s), the rest reconstructed")
        return "\n".join(lines + [f"  ({how})"])


def _reconstructed_decision(end_s: float, code: pd.DataFrame) -> float:
    """The decision behind a question stop that ended at `end_s`: walk back over the final read's
    code runs (each recorded at the clock after it)."""
    d = end_s
    times = code["t_s"].to_numpy(float)
    execs = code["exec_ms"].to_numpy(float) / 1000.0
    used = np.zeros(len(times), bool)
    while True:
        hit = np.flatnonzero(~used & (np.abs(times - d) < _EPS) & np.isfinite(execs))
        if not hit.size:
            return d
        used[hit[0]] = True
        d -= execs[hit[0]]


def abort_latency(timeline: LiveTimeline) -> AbortLatency:
    """The abort latency of every sample decoding at a stop decision (see the module)."""
    chunks = {k: g for k, g in timeline.chunks.groupby(["problem_id", "sample_idx"])}
    code = {k: g for k, g in timeline.code.groupby("problem_id")}
    samples = {k: g for k, g in timeline.samples.groupby("problem_id")}
    out: list[LatencySample] = []
    recorded = stops = 0
    for q in timeline.questions.itertuples(index=False):
        rows = samples.get(q.problem_id)
        if rows is None:
            continue
        aborted = rows[(rows["finish_reason"] == "abort") & rows["end_s"].notna()]
        question_stop = isinstance(q.stop_reason, str) and q.stop_reason != "all_done" and len(aborted)
        decision = stop_end = math.nan
        if question_stop:
            stops += 1
            stop_end = float(aborted["end_s"].max())
            if not pd.isna(q.decided_s):
                decision, recorded = float(q.decided_s), recorded + 1
            else:
                empty = pd.DataFrame({"t_s": [], "exec_ms": []})
                decision = _reconstructed_decision(stop_end, code.get(q.problem_id, empty))
        for r in aborted.itertuples(index=False):
            by_question = bool(question_stop) and abs(float(r.end_s) - stop_end) < _EPS
            at = decision if by_question else float(r.end_s)
            ch = chunks.get((q.problem_id, r.sample_idx))
            if ch is None:
                continue
            t = ch["t_s"].to_numpy(float)
            n = ch["n_tokens"].to_numpy(int)
            if not (t > at + 1e-9).any():
                continue  # it had ended (or been stopped) before the decision
            after = t > at + 1e-9
            reached = int(n[~after].max()) if (~after).any() else 0
            top = int(n[after].max())
            # seconds to the chunk that brought the last new token (0: no token after the decision)
            secs = float(t[after & (n == top)].min() - at) if top > reached else 0.0
            out.append(LatencySample(q.problem_id, int(r.sample_idx), "question" if by_question else "sample",
                                     int(r.n_tokens) - reached, secs))
    return AbortLatency(tuple(out), recorded, stops)


@dataclass(frozen=True)
class Stall:
    """One engine stall: where (question, stream clock) and the seconds lost (the silence less
    the step that would have been there; a late first token: its delay less the usual one)."""

    problem_id: str
    at_s: float
    seconds: float
    kind: str  # 'decoding' | 'first token'


@dataclass(frozen=True)
class EngineStalls:
    """A run's engine stalls, the live step they are measured against and the threshold."""

    stalls: tuple[Stall, ...]
    step_s: float
    threshold_s: float

    def by_question(self) -> dict[str, float]:
        """Seconds lost per question (questions without a stall absent)."""
        out: dict[str, float] = {}
        for s in self.stalls:
            out[s.problem_id] = out.get(s.problem_id, 0.0) + s.seconds
        return out

    @property
    def seconds(self) -> float:
        return float(sum(s.seconds for s in self.stalls))

    def largest(self, k: int = 3) -> tuple[Stall, ...]:
        return tuple(sorted(self.stalls, key=lambda s: -s.seconds)[:k])

    def summary(self) -> dict[str, object]:
        """n, questions, seconds, the step and threshold, the largest three (JSON-ready)."""
        return {
            "n": len(self.stalls), "questions": len(self.by_question()), "steps": STALL_STEPS,
            "seconds": round(self.seconds, 3), "step_s": round(self.step_s, 5),
            "threshold_s": round(self.threshold_s, 4),
            "largest": [{"problem_id": s.problem_id, "kind": s.kind, "at_s": round(s.at_s, 3),
                         "seconds": round(s.seconds, 3)} for s in self.largest()],
        }

    def render(self) -> str:
        head = (f"engine stalls (nothing sent for > {1000 * self.threshold_s:.0f} ms = "
                f"{STALL_STEPS:g} live steps of {1000 * self.step_s:.1f} ms while samples decode, or a "
                "first token that much later than usual): ")
        if not self.stalls:
            return head + "none"
        big = ", ".join(f"{s.problem_id} {s.seconds:.2f} s ({s.kind} at {s.at_s:.2f} s)"
                        for s in self.largest())
        return head + (f"{len(self.stalls)} in {len(self.by_question())} question(s), "
                       f"{self.seconds:.2f} s in all; largest: {big}")


def _seconds_per_token(timeline: LiveTimeline) -> pd.DataFrame:
    """Seconds per token between consecutive chunks of one sample that a token or more apart:
    problem_id, per_token."""
    ch = timeline.chunks.sort_values(["problem_id", "sample_idx", "t_s"])
    by = ch.groupby(["problem_id", "sample_idx"])
    dt = by["t_s"].diff().to_numpy(float)
    dn = by["n_tokens"].diff().to_numpy(float)
    ok = dn > 0
    return pd.DataFrame({"problem_id": ch["problem_id"].to_numpy()[ok], "per_token": dt[ok] / dn[ok]})


def live_step_s(timeline: LiveTimeline) -> float | None:
    """The run's typical live decode step: the median seconds per token between consecutive
    chunks of one sample (None without two chunks of a sample a token apart)."""
    per = _seconds_per_token(timeline)["per_token"]
    step = float(per.median()) if len(per) else math.nan
    return step if math.isfinite(step) and step > 0 else None  # equal stamps: nothing to measure


@dataclass(frozen=True)
class StepSpread:
    """How much the live step moves from question to question: each question's median seconds
    per token against the run's median of them, batch and context included. Where the batch and
    context move the step little (a host-bound engine), it is noise that one step time per batch
    and context cannot predict question by question; elsewhere it is mostly what the model
    follows."""

    median_step_s: float
    deviation_median: float  # median |question step / median - 1|
    deviation_p90: float
    questions: int

    def render(self) -> str:
        return (f"live step per question (the first left out): median {1000 * self.median_step_s:.2f} ms, "
                f"|deviation| median {100 * self.deviation_median:.1f}%, p90 {100 * self.deviation_p90:.1f}% "
                f"over {self.questions} questions (batch and context included)")

    def summary(self) -> dict[str, object]:
        return {"median_step_s": round(self.median_step_s, 6),
                "deviation_median": round(self.deviation_median, 4),
                "deviation_p90": round(self.deviation_p90, 4), "questions": self.questions}


def step_spread(timeline: LiveTimeline) -> StepSpread | None:
    """The run's `StepSpread`, its first question (start-up's warm-up) left out; None with fewer
    than two questions that have a live step."""
    per = _seconds_per_token(timeline)
    first = timeline.questions["problem_id"].iloc[0] if len(timeline.questions) else None
    steps = per[per["problem_id"] != first].groupby("problem_id")["per_token"].median().to_numpy(float)
    steps = steps[np.isfinite(steps) & (steps > 0)]
    if steps.size < 2:
        return None
    mid = float(np.median(steps))
    dev = np.abs(steps / mid - 1.0)
    return StepSpread(mid, float(np.median(dev)), float(np.quantile(dev, 0.9)), int(steps.size))


def engine_stalls(timeline: LiveTimeline, steps: float = STALL_STEPS) -> EngineStalls | None:
    """The run's engine stalls (see the module; the first question's first token is the
    first-batch stall, counted in start-up, not here). None without a measurable live step."""
    step = live_step_s(timeline)
    if step is None:
        return None
    threshold = steps * step
    out: list[Stall] = []
    first = timeline.chunks.groupby("problem_id")["t_s"].min()
    order = [p for p in timeline.questions["problem_id"] if p in first.index]
    usual = float(np.median([first[p] for p in order[1:]])) if len(order) > 1 else math.nan
    for pid in order[1:]:
        late = float(first[pid]) - usual
        if late > threshold:
            out.append(Stall(pid, usual, late, "first token"))
    for pid, g in timeline.chunks.groupby("problem_id", sort=False):
        t = np.sort(g["t_s"].to_numpy(float))
        if t.size < 2:
            continue
        span = g.groupby("sample_idx")["t_s"].agg(["min", "max"])
        lo, hi = span["min"].to_numpy(float), span["max"].to_numpy(float)
        for i in np.flatnonzero(np.diff(t) > threshold):
            if ((lo <= t[i]) & (hi >= t[i + 1])).any():  # some sample was decoding through it
                out.append(Stall(str(pid), float(t[i]), float(t[i + 1] - t[i]) - step, "decoding"))
    return EngineStalls(tuple(out), step, threshold)


__all__ = ["AbortLatency", "EngineStalls", "FirstBatchStall", "LatencySample", "STALL_STEPS", "Stall",
           "StepSpread", "abort_latency", "engine_stalls", "first_batch_stall", "live_step_s",
           "step_spread"]
