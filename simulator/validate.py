"""`aimo validate`: what a recorded live run did against what the simulator predicts for it.

Why: the tuner's numbers are only as good as the simulator's clock, and users run on their own
hardware. Given a live run recorded with `aimo solve --record` (any backend: lmdeploy, or the
hardware-in-the-loop `hil` backend) and a trace store, this replays the store under the *live
run's* policy (read from the run) with a hardware profile, the same question order and the same
sample draw (`competition_draws` with the run's `hil.draw_seed`; recorded order for other runs),
and pairs the questions: answers, stop reasons, times; start-up; and the errors (median, p90,
signed median, total). `simulator.livecheck` holds the pairing and the error statistics (one
definition); this module reads the stores (`compare_stores`: the one entry point of `aimo
validate`, of `aimo profile fit --from-live` and of the dashboard's Validate page) and returns one
`Validation` result, which the renderers read: `render` (the CLI's text), `Validation.as_json`
(`--json`), `markdown_row`, `plot` (the PNG); the dashboard builds its table and charts from the
same object (`dashboard.frames`).

Start-up is counted as profiles count it (`startup_s` = the engine's build + its first batch's
stall): the live run's first-batch stall is measured from its chunk timestamps
(`simulator.live_timing.first_batch_stall`), added to the live start-up and taken out of the
first question's time, and the output says so. The run's abort latency (steps the engine decodes
after a stop decision) is measured and reported beside the profile's `abort_latency_steps`. The
run's engine stalls (`simulator.live_timing.engine_stalls`: silences of the engine while samples
decode, late first tokens) are reported with the time errors the simulator would have against
the live times less them: beside the errors proper, never instead of them.

Live answers and stop reasons come from the store's per-question results when it has them
(`questions_done.final_answer` / `stop_reason`), else from an `aimo solve --json` report given
with `json_report`, else they are *derived* by replaying the live run's own recorded samples under
its policy (flagged as such: exact for policies whose stops do not depend on time).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from aimo.core.hardware import HardwareProfile
from aimo.simulator.livecheck import LiveCheck, live_check
from aimo.simulator.live_timing import (AbortLatency, EngineStalls, FirstBatchStall, StepSpread,
                                        abort_latency, engine_stalls, first_batch_stall, step_spread)
from aimo.simulator.replay import replay_competition
from aimo.simulator.replay.results import CompetitionResult
from aimo.core.draws import competition_draws
from aimo.core.errors import InputError
from aimo.core.policy import Policy, policy_from_dict
from aimo.core.traces import ProblemTrace

TIME_STOPS = ("timeout", "cutoff", "after_cutoff", "error")


def decided_by_time(stop: str | None) -> bool:
    """A stop that depends on the clock (its answer may differ with any timing difference)."""
    return stop is not None and (stop in TIME_STOPS or stop.startswith("early:"))


@dataclass(frozen=True)
class LiveQuestion:
    """One question of a live run: its answer and stop reason (None: unknown) and its time."""

    problem_id: str
    position: int
    truth: int | None
    answer: int | None
    stop_reason: str | None
    time_s: float


@dataclass(frozen=True)
class LiveRun:
    """A recorded live run (`runs.kind = 'solve'`) as validation needs it."""

    path: str
    run_id: str
    policy: Policy
    draw_seed: int | None
    startup_s: float | None
    questions: tuple[LiveQuestion, ...]
    answers_from: str  # 'store' | 'json' | 'derived'
    backend: str | None = None
    hardware: str | None = None
    engine: dict[str, Any] = field(default_factory=dict)
    hil: dict[str, Any] | None = None
    stall: FirstBatchStall | None = None  # the first batch's stall (None: not measurable)
    latency: AbortLatency | None = None  # the abort latency measured from the store
    stalls: EngineStalls | None = None  # the engine's stalls measured from the store
    spread: StepSpread | None = None  # how much the live step moves between questions
    # the prompt tokens the live engine prefilled, per (problem, kind) (`predict` replays them)
    prompt_tokens: dict[tuple[str, str], int] = field(default_factory=dict)

    @property
    def stall_s(self) -> float:
        """The first-batch stall in seconds (0 when not measured)."""
        return 0.0 if self.stall is None else self.stall.stall_s

    @property
    def counted_startup_s(self) -> float | None:
        """Start-up as profiles count it: the engine's build plus the first batch's stall."""
        return None if self.startup_s is None else self.startup_s + self.stall_s


def _int_or_none(value: Any) -> int | None:
    """A nullable integer cell of a store frame as int or None."""
    return None if pd.isna(value) else int(value)


def read_live_run(path: str | Path, run_id: str | None = None, *,
                  json_report: str | Path | None = None) -> LiveRun:
    """Read a live run (kind 'solve') of a store.

    Raises:
        InputError: not a store, no solve run, several and no `run_id`, a run without a policy,
            an unreadable JSON report (naming the file and field).
    """
    from aimo.core.store import list_runs
    from aimo.core.store.chunk_times import load_live_timeline
    from aimo.core.store.live import prompt_lengths, question_results

    src = str(path)
    solves = [r for r in list_runs(path) if r.kind == "solve"]
    if run_id is not None:
        chosen = [r for r in solves if r.run_id == run_id]
        if not chosen:
            names = ", ".join(r.run_id for r in solves) or "none"
            raise InputError(src, "run", f"no live (solve) run {run_id!r}; solve runs: {names}")
    elif len(solves) != 1:
        names = ", ".join(r.run_id for r in solves) or "none"
        raise InputError(src, "run", f"{len(solves)} live (solve) runs; pick one with --live-run ({names})")
    else:
        chosen = solves
    run = chosen[0]
    if not run.policy:
        raise InputError(src, "runs.policy", f"run {run.run_id!r} has no recorded policy")
    policy = policy_from_dict(run.policy, source=f"{src}:runs.policy")
    gen = run.gen_config or {}
    hil = gen["hil"] if isinstance(gen.get("hil"), dict) else None
    engine: dict[str, Any] = gen["engine"] if isinstance(gen.get("engine"), dict) else {}
    frame = question_results(path, run.run_id)
    if frame.empty:
        raise InputError(src, "questions_done", f"run {run.run_id!r} has no completed questions")
    questions = [
        LiveQuestion(r.problem_id, int(r.position), _int_or_none(r.truth),
                     _int_or_none(r.final_answer), None if pd.isna(r.stop_reason) else r.stop_reason,
                     math.nan if pd.isna(r.wall_s) else float(r.wall_s))
        for r in frame.itertuples(index=False)
    ]
    answers_from = "store" if any(q.answer is not None for q in questions) else ""
    startup = None  # the engine's build and warm-up, else the clock at the first question
    first_start = frame["start_s"].iloc[0]
    if engine.get("startup_s") is not None:
        startup = float(engine["startup_s"])
    elif not pd.isna(first_start):
        startup = float(first_start)
    if json_report is not None:
        questions, startup_json = _from_json(json_report, questions, run.run_id)
        answers_from = "json"
        startup = startup_json if startup_json is not None else startup
    timeline = load_live_timeline(path, run.run_id)
    live = LiveRun(src, run.run_id, policy, hil.get("draw_seed") if hil else None, startup, tuple(questions),
                   answers_from or "derived", run.backend, run.hardware, engine, hil,
                   first_batch_stall(timeline), abort_latency(timeline), engine_stalls(timeline),
                   step_spread(timeline), prompt_lengths(path, run.run_id))
    return live


def _from_json(path: str | Path, questions: Sequence[LiveQuestion],
               run_id: str = "") -> tuple[list[LiveQuestion], float | None]:
    """Answers and stop reasons from an `aimo solve --json` report (text before the JSON is
    skipped), or from scripts/device_hil.py's summary.json (the step that recorded `run_id`)."""
    src = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
        report = json.loads(text[text.index("{"):])
        if "steps" in report and "questions" not in report:  # device_hil.py's summary.json
            found = [s["solve"] for s in report["steps"].values()
                     if isinstance(s, dict) and s.get("run_id") == run_id and "solve" in s]
            if not found:
                raise KeyError(f"no step recorded run {run_id!r}")
            report = {**found[0], "startup_s": None}  # a shared engine: its build is the start-up
        by_id = {q["problem_id"]: q for q in report["questions"]}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InputError(src, "questions", f"not an `aimo solve --json` report: {exc}") from None
    out = []
    for q in questions:
        j = by_id.get(q.problem_id)
        out.append(q if j is None else replace(q, answer=j.get("answer"), stop_reason=j.get("stop_reason")))
    startup = report.get("startup_s")
    return out, float(startup) if isinstance(startup, (int, float)) else None


def derive_answers(live: LiveRun, profile: HardwareProfile) -> LiveRun:
    """Answers and stop reasons re-derived by replaying the live run's own samples under its
    policy with `profile` (for stores without per-question results)."""
    from aimo.core.store import load_problem_traces

    # a live run cut short (interrupted) is validated on what it holds
    own = load_problem_traces(live.path, live.run_id, allow_incomplete=True)
    result = replay_competition(own, live.policy, profile)
    by_id = {q.problem_id: q for q in result.questions}
    qs = tuple(replace(q, answer=by_id[q.problem_id].answer, stop_reason=by_id[q.problem_id].stop_reason)
               if q.problem_id in by_id else q for q in live.questions)
    return replace(live, questions=qs)


def order_like(traces: Sequence[ProblemTrace], live: LiveRun) -> list[ProblemTrace]:
    """The store's problems in the live run's serving order; those the live run lacks follow in
    their recorded order (so the replayed competition has the live run's intended size).

    Raises:
        InputError: a live question the trace store does not hold."""
    by_id = {p.problem_id: p for p in traces}
    missing = [q.problem_id for q in live.questions if q.problem_id not in by_id]
    if missing:
        raise InputError("--traces", "problem_id",
                         f"the live run's questions {', '.join(missing[:5])} are not in the trace store")
    seen = {q.problem_id for q in live.questions}
    return [by_id[q.problem_id] for q in live.questions] + [p for p in traces if p.problem_id not in seen]


def with_live_prompts(traces: Sequence[ProblemTrace], live: LiveRun) -> list[ProblemTrace]:
    """`traces` with each sample's prompt length the live run's for its question and kind (where
    the live store has one): the simulator charges the prefill the live engine did. A hil run
    prefills the policy's real prompts, not the scaled store's made-up lengths; a recording of
    the same prompts has the live lengths already."""
    if not live.prompt_tokens:
        return list(traces)
    return [replace(p, samples=tuple(
        replace(s, prompt_tokens=live.prompt_tokens.get((p.problem_id, s.kind), s.prompt_tokens))
        for s in p.samples)) for p in traces]


def prompts_changed(traces: Sequence[ProblemTrace], live: LiveRun) -> int:
    """How many of the live run's questions' samples `with_live_prompts` gives another length."""
    asked = {q.problem_id for q in live.questions}
    return sum(1 for p in traces if p.problem_id in asked for s in p.samples
               if live.prompt_tokens.get((p.problem_id, s.kind), s.prompt_tokens) != s.prompt_tokens)


def predict(live: LiveRun, traces: Sequence[ProblemTrace], profile: HardwareProfile,
            budget_s: float = 5 * 3600.0) -> CompetitionResult:
    """The simulator's run of the live run's policy on `traces`: same order, same draw, the
    live run's prompt lengths (`with_live_prompts`)."""
    problems = with_live_prompts(order_like(traces, live), live)
    return replay_competition(problems, live.policy, profile, draws=competition_draws(problems, live.draw_seed),
                              budget_s=budget_s)


@dataclass(frozen=True)
class QuestionRow:
    """One question live and simulated."""

    problem_id: str
    truth: int | None
    live_answer: int | None
    sim_answer: int
    live_stop: str | None
    sim_stop: str
    live_s: float
    sim_s: float
    stall_s: float = 0.0  # the live time's engine stalls (`LiveRun.stalls`)

    @property
    def rel_error(self) -> float:
        return (self.sim_s - self.live_s) / self.live_s if self.live_s > 0 else math.nan

    @property
    def by_time(self) -> bool:
        return decided_by_time(self.live_stop) or decided_by_time(self.sim_stop)


@dataclass(frozen=True)
class Validation:
    """A live run against its prediction (`check` has the error statistics)."""

    live: LiveRun
    profile: str
    rows: tuple[QuestionRow, ...]
    check: LiveCheck
    skipped: tuple[str, ...]
    predicted_startup_s: float
    notes: tuple[str, ...] = ()
    abort_latency_steps: int = 0  # the profile's
    without_stalls: LiveCheck | None = None  # the same against live times less their stalls

    @property
    def same_answer(self) -> tuple[int, int]:
        """(agreeing, compared) over questions not decided by a timeout."""
        rows = [r for r in self.rows if not r.by_time and r.live_answer is not None]
        return sum(r.live_answer == r.sim_answer for r in rows), len(rows)

    @property
    def same_stop(self) -> tuple[int, int]:
        rows = [r for r in self.rows if r.live_stop is not None]
        return sum(r.live_stop == r.sim_stop for r in rows), len(rows)

    @property
    def total_error(self) -> float:
        return self.check.total_error

    def as_json(self) -> dict[str, Any]:
        """The summary and one entry per question (`aimo validate --json`)."""
        rows = [{"problem_id": r.problem_id, "truth": r.truth, "live_answer": r.live_answer,
                 "sim_answer": r.sim_answer, "live_stop": r.live_stop, "sim_stop": r.sim_stop,
                 "live_s": round(r.live_s, 4), "sim_s": round(r.sim_s, 4)} for r in self.rows]
        return {**self.summary(), "rows": rows}

    def summary(self) -> dict[str, Any]:
        """The headline numbers (JSON-ready)."""
        agree, n = self.same_answer
        stops, ns = self.same_stop
        c = self.check
        return {
            "live_run": self.live.run_id, "policy": self.live.policy.name, "profile": self.profile,
            "questions": len(c.pairs), "skipped": list(self.skipped), "answers_from": self.live.answers_from,
            "same_answer": [agree, n], "same_stop": [stops, ns],
            "time_error_median": _r(c.median_error), "time_error_p90": _r(c.p90_error),
            "time_error_signed_median": _r(c.signed_median_error),
            "live_total_s": round(c.live_total_s, 3), "sim_total_s": round(c.predicted_total_s, 3),
            "total_error": _r(self.total_error),
            "live_startup_s": _r3(self.live.counted_startup_s),
            "live_build_s": _r3(self.live.startup_s),
            "first_batch_stall_s": None if self.live.stall is None else round(self.live.stall.stall_s, 3),
            "sim_startup_s": self.predicted_startup_s,
            "abort_latency": None if self.live.latency is None else {
                k: self.live.latency.summary(k) for k in ("question", "sample")},
            "profile_abort_latency_steps": self.abort_latency_steps,
            "engine_stalls": self._stalls_summary(),
            "step_spread": None if self.live.spread is None else self.live.spread.summary(),
            "notes": list(self.notes),
        }


    def _stalls_summary(self) -> dict[str, Any] | None:
        """The live run's engine stalls and the errors without them (None: not measurable)."""
        if self.live.stalls is None:
            return None
        out: dict[str, Any] = dict(self.live.stalls.summary())
        c = self.without_stalls
        if c is not None:
            out["without"] = {"time_error_median": _r(c.median_error), "time_error_p90": _r(c.p90_error),
                              "total_error": _r(c.total_error)}
        return out


def _r3(x: float | None) -> float | None:
    return None if x is None else round(x, 3)


def _r(x: float) -> float | None:
    return None if not math.isfinite(x) else round(float(x), 4)


def validate(live: LiveRun, traces: Sequence[ProblemTrace], profile: HardwareProfile, *,
             skip_first: bool = False, budget_s: float = 5 * 3600.0) -> Validation:
    """Predict the live run and pair its questions (see the module docstring).

    `skip_first` leaves the first question out of the time errors (it carries lmdeploy's
    first-batch stall, which profiles count in `startup_s`)."""
    if live.answers_from == "derived":
        live = derive_answers(live, profile)
    predicted = predict(live, traces, profile, budget_s)
    times = {q.problem_id: q.time_s for q in live.questions if math.isfinite(q.time_s)}
    if live.stall is not None and live.stall.problem_id in times:  # counted in start-up instead
        times[live.stall.problem_id] -= live.stall.stall_s
    answers = {q.problem_id: q.answer for q in live.questions}
    skip = (live.questions[0].problem_id,) if skip_first and live.questions else ()
    check = live_check(live.policy.name, predicted, times, answers, live_startup_s=live.counted_startup_s,
                       skip=skip)
    stalled = live.stalls.by_question() if live.stalls is not None else {}
    without = None if live.stalls is None else live_check(
        live.policy.name, predicted, {p: t - stalled.get(p, 0.0) for p, t in times.items()}, answers,
        live_startup_s=live.counted_startup_s, skip=skip)
    sim = {q.problem_id: q for q in predicted.questions}
    rows = tuple(QuestionRow(q.problem_id, q.truth, q.answer, sim[q.problem_id].answer, q.stop_reason,
                             sim[q.problem_id].stop_reason, times.get(q.problem_id, q.time_s),
                             sim[q.problem_id].time_s, stalled.get(q.problem_id, 0.0))
                 for q in live.questions)
    return Validation(live, profile.name, rows, check, skip, profile.startup_s, _notes(live, profile, traces),
                      profile.abort_latency_steps, without)


def compare_stores(live: str | Path, traces: str | Path, hardware: str | Path, *,
                   live_run: str | None = None, traces_run: str | None = None,
                   json_report: str | Path | None = None, skip_first: bool = False,
                   budget_s: float = 5 * 3600.0) -> Validation:
    """Read a live run, a trace store and a hardware profile and `validate` the one against the
    other: what `aimo validate` and the dashboard's Validate page both call.

    Args:
        live: the store holding the live run (`aimo solve --record`).
        traces: the store the simulator replays (`traces_run`: its run, None = the only one; the
            live store and run themselves replay the live samples: self-replay).
        hardware: a bundled profile name or a profile YAML path.
        live_run: the live (solve) run, None = the only one.
        json_report: an `aimo solve --json` report with the live answers (stores without them).
        skip_first: leave the first question out of the time errors.

    Raises:
        InputError: a missing file or one that is not a store, no / an unknown solve run, an
            unknown profile, a trace store without completed questions or without a live
            question (each names the file and field).
    """
    from aimo.core.hardware import load_profile
    from aimo.core.store import load_problem_traces

    run = read_live_run(live, live_run, json_report=json_report)
    profile = load_profile(hardware)
    # self-replay: the live run's own samples (a real model's live run: the clock compared on the
    # very content it decoded); an interrupted live run is replayed on what it holds
    own = traces_run == run.run_id and Path(traces).resolve() == Path(live).resolve()
    problems = load_problem_traces(traces, traces_run, allow_incomplete=own)
    if not problems:
        raise InputError(str(traces), "questions_done", "no completed questions in the store")
    try:
        v = validate(run, problems, profile, skip_first=skip_first, budget_s=budget_s)
    except InputError as exc:  # order_like names the option; here the file is known
        if exc.source != "--traces":
            raise
        raise InputError(str(traces), exc.field, exc.message) from None
    if own:
        v = replace(v, notes=v.notes + (
            "self-replay: the simulator replays the live run's own samples, so answers and stops "
            "differ only where decisions hang on arrival order or the clock",))
    return v


def _notes(live: LiveRun, profile: HardwareProfile, traces: Sequence[ProblemTrace]) -> tuple[str, ...]:
    """Mismatches between the live run's set-up and the profile that bias the comparison."""
    out = []
    mb = live.engine.get("max_batch")
    if isinstance(mb, int) and mb != profile.max_batch:
        out.append(f"the live engine's max_batch {mb} differs from the profile's {profile.max_batch}")
    if live.backend and live.backend.startswith("hil") or live.engine.get("backend"):
        if profile.code_workers is None:
            out.append("the profile has no code_workers (the live sandbox pool has 4 workers)")
    if live.answers_from == "derived":
        out.append("live answers/stop reasons re-derived from the live run's own samples (the store "
                   "holds no per-question results)")
    if live.hil and live.hil.get("length_scale"):
        out.append(f"trace store lengths scaled by {live.hil['length_scale']:g}")
    changed = prompts_changed(traces, live)
    if changed:
        out.append(f"prompt lengths replayed as the live engine prefilled them ({changed} samples' "
                   "differ from the trace store's)")
    return tuple(out)


def headline(v: Validation) -> str:
    """What was compared: the live run, its backend and hardware, the profile, policy and draw."""
    return (f"live run {v.live.run_id} ({v.live.backend or '?'}, {v.live.hardware or '?'}) vs the simulator "
            f"with profile {v.profile}; policy {v.live.policy.name}; draw "
            f"{'recorded order' if v.live.draw_seed is None else f'seed {v.live.draw_seed}'}")


def render(v: Validation) -> str:
    """The per-question table and the summary, as plain text."""
    lines = [headline(v), "",
             f"{'question':<14} {'truth':>5} {'live':>5} {'sim':>5}  {'live stop':<16} {'sim stop':<16} "
             f"{'live s':>8} {'sim s':>8} {'error':>7}"]
    skipped = set(v.skipped)
    for r in v.rows:
        mark = "" if r.live_answer is None or r.live_answer == r.sim_answer else " *"
        err = "skip" if r.problem_id in skipped else (f"{100 * r.rel_error:+.1f}%" if math.isfinite(r.rel_error) else "-")
        stall = " (first-batch stall in start-up)" if v.live.stall and r.problem_id == v.live.stall.problem_id else ""
        lines.append(f"{r.problem_id:<14} {_v(r.truth):>5} {_v(r.live_answer):>5} {r.sim_answer:>5}  "
                     f"{(r.live_stop or '?'):<16} {r.sim_stop:<16} {r.live_s:8.2f} {r.sim_s:8.2f} {err:>7}{mark}{stall}")
    s = v.summary()
    agree, n = s["same_answer"]
    stops, ns = s["same_stop"]
    lines += ["",
              f"questions compared: {s['questions']}" + (f" (skipped {', '.join(v.skipped)})" if v.skipped else ""),
              f"same answer (questions not decided by a timeout): {agree}/{n}; same stop reason: {stops}/{ns}"
              f" (live answers from {v.live.answers_from})",
              f"question time error |median| {pct(s['time_error_median'])}, p90 {pct(s['time_error_p90'])}, "
              f"signed median {pct(s['time_error_signed_median'], sign=True)}",
              f"sum of question times: live {s['live_total_s']:.1f} s, simulated {s['sim_total_s']:.1f} s "
              f"(error {pct(s['total_error'], sign=True)})",
              _startup_line(v)]
    if v.live.latency is not None:
        lines += [v.live.latency.render(),
                  f"profile abort_latency_steps: {v.abort_latency_steps} (question stops land that many "
                  "steps after the decision)"]
    if v.live.stalls is not None:
        lines.append(v.live.stalls.render())
        w = s["engine_stalls"].get("without")
        if v.live.stalls.stalls and w is not None:
            lines.append(f"  the live times less their stalls (the step model has no term for them): "
                         f"question time error |median| {pct(w['time_error_median'])}, p90 "
                         f"{pct(w['time_error_p90'])}, total {pct(w['total_error'], sign=True)}")
    if v.live.spread is not None:
        lines.append(v.live.spread.render())
    lines += [f"note: {n_}" for n_ in v.notes]
    return "\n".join(lines)


def _startup_line(v: Validation) -> str:
    """How start-up was counted: build + first-batch stall on both sides."""
    live = v.live
    head = "start-up (engine build + first-batch stall, as profiles count it): live "
    if live.startup_s is None:
        stall = "" if live.stall is None else (f" (build unknown + {live.stall.render()}; "
                                               f"{live.stall.problem_id}'s time compared without it)")
        return head + f"?{stall}, profile {v.predicted_startup_s:.1f} s"
    if live.stall is None:
        return (head + f"{live.startup_s:.1f} s (build only: the stall is not measurable without timed "
                f"chunks), profile {v.predicted_startup_s:.1f} s")
    return (head + f"{live.counted_startup_s:.1f} s (build {live.startup_s:.1f} s + "
            f"{live.stall.render()}; {live.stall.problem_id}'s time compared without it), "
            f"profile {v.predicted_startup_s:.1f} s")


def secs(x: float | None) -> str:
    """Seconds to one decimal, "?" when unknown."""
    return "?" if x is None else f"{x:.1f} s"


def _v(x: int | None) -> str:
    return "-" if x is None else str(x)


def pct(x: float | None, sign: bool = False) -> str:
    """A ratio as a percentage to one decimal (signed with `sign`), "-" when unknown."""
    return "-" if x is None else (f"{100 * x:+.1f}%" if sign else f"{100 * x:.1f}%")


def markdown_row(v: Validation) -> str:
    """One row of the multi-run summary table (docs, the HIL table)."""
    s = v.summary()
    return (f"| {s['policy']} | {v.profile} | {s['questions']} | {s['same_answer'][0]}/{s['same_answer'][1]} | "
            f"{s['same_stop'][0]}/{s['same_stop'][1]} | {pct(s['time_error_median'])} / {pct(s['time_error_p90'])} | "
            f"{pct(s['time_error_signed_median'], True)} | {s['live_total_s']:.1f} / {s['sim_total_s']:.1f} s "
            f"({pct(s['total_error'], True)}) | "
            f"{secs(s['live_startup_s'])} / {s['sim_startup_s']:.0f} s |")


MARKDOWN_HEAD = ("| policy | profile | questions | same answer | same stop | time error median / p90 | "
                 "signed median | Σ question time live / sim | start-up live / profile |\n"
                 "|---|---|---|---|---|---|---|---|---|")


def plot(checks: Sequence[LiveCheck], out: str | Path) -> Path:
    """Per-question predicted vs live times (scatter) and cumulative times, one colour a run."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.5))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    top = 1.0
    for c, colour in zip(checks, colours * 4):
        live = np.array([p.live_s for p in c.pairs])
        pred = np.array([p.predicted_s for p in c.pairs])
        if live.size:
            top = max(top, float(max(live.max(), pred.max())) * 1.1)
        ax1.scatter(live, pred, s=18, color=colour, label=c.policy, alpha=0.75)
        x = np.arange(1, live.size + 1)
        ax2.plot(x, np.cumsum(live), color=colour, label=f"{c.policy} live")
        ax2.plot(x, np.cumsum(pred), color=colour, linestyle="--", label=f"{c.policy} predicted")
    ax1.plot([0, top], [0, top], color="grey", linewidth=0.8)
    ax1.set(xlabel="live question time (s)", ylabel="predicted question time (s)", title="per question",
            xlim=(0, top), ylim=(0, top))
    ax1.legend(fontsize=8)
    ax2.set(xlabel="questions", ylabel="cumulative time (s, start-up excluded)", title="cumulative")
    ax2.legend(fontsize=8)
    fig.tight_layout()
    path = Path(out)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


__all__ = ["LiveQuestion", "LiveRun", "MARKDOWN_HEAD", "QuestionRow", "Validation", "compare_stores",
           "decided_by_time", "derive_answers", "headline", "markdown_row", "order_like", "pct", "plot", "predict",
           "prompts_changed", "read_live_run", "render", "secs", "validate", "with_live_prompts"]
