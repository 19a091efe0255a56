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
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass

import numpy as np
import pandas as pd

from aimo.core.store.chunk_times import LiveTimeline

_EPS = 1e-6  # seconds: two recorded times are the same event


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


__all__ = ["AbortLatency", "FirstBatchStall", "LatencySample", "abort_latency", "first_batch_stall"]
