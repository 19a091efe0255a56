"""Pure frame builders of the dashboard: pandas tables from trace arrays and simulation results.

Why a module of its own: these are plain functions of their arguments (no Streamlit, no store,
no cache), so they are tested directly and the cached loaders (`dashboard.loaders`) and pages
only call them. Definitions follow `recorder.summary` (a sample's answers are those with a
parsed value in token order; it is right when its final answer equals the problem's answer;
the majority vote is `recorder.summary.majority_votes`, not a copy of it).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from aimo.core.hardware import HardwareProfile, pace_batch
from aimo.core.report import question_row
from aimo.core.results import SolveResult as CompetitionResult
from aimo.core.traces import NO_VALUE, SOURCE_CODE, ProblemTrace, SampleTrace
from aimo.recorder.summary import majority_votes
from aimo.simulator.validate import Validation, pct, secs


# --------------------------------------------------------------------------- samples and problems


def _outcome(value: int | None, truth: int | None, *, code_failed: bool = False) -> str:
    if value is None:
        return "code failed" if code_failed else "no answer"
    if truth is None:
        return "unknown truth"
    return "right" if value == truth else "wrong"


def _valid(sample: SampleTrace) -> np.ndarray:
    return sample.ans_value != NO_VALUE


SAMPLE_COLUMNS = [
    "problem_id",
    "position",
    "sample_idx",
    "kind",
    "n_tokens",
    "end_s",
    "finish_reason",
    "truth",
    "n_values",
    "first_value",
    "first_token",
    "first_time",
    "final_value",
    "outcome",
    "first_outcome",
    "first_is_final",
]


def sample_rows(traces: Sequence[ProblemTrace]) -> pd.DataFrame:
    """One row per sample (SAMPLE_COLUMNS): its first and final parsed answers and outcomes.

    Definitions follow `recorder.summary`: a sample's answers are those with a parsed value in
    token order; it is right when its final answer equals the problem's answer.
    """
    rows = []
    for p in traces:
        for s in p.samples:
            valid = _valid(s)
            values = s.ans_value[valid]
            n = int(values.shape[0])
            first = int(values[0]) if n else None
            final = int(values[-1]) if n else None
            rows.append(
                (
                    p.problem_id,
                    p.position,
                    s.sample,
                    s.kind,
                    s.n_tokens,
                    s.end_s,
                    s.finish_reason,
                    p.answer,
                    n,
                    first,
                    int(s.ans_token[valid][0]) if n else None,
                    float(s.ans_time[valid][0]) if n else np.nan,
                    final,
                    _outcome(final, p.answer),
                    _outcome(first, p.answer),
                    None if not n else first == final,
                )
            )
    frame = pd.DataFrame(rows, columns=SAMPLE_COLUMNS)
    for column in ("first_value", "first_token", "final_value", "truth"):
        frame[column] = frame[column].astype("Int64")
    return frame


PROBLEM_COLUMNS = [
    "position",
    "problem_id",
    "truth",
    "samples",
    "pass_rate",
    "majority",
    "votes",
    "majority_outcome",
    "mean_tokens",
    "no_answer",
]


def problem_rows(samples: pd.DataFrame) -> pd.DataFrame:
    """One row per problem (PROBLEM_COLUMNS): pass rate, majority vote of final answers
    (`recorder.summary.majority_votes`: plurality, ties to the larger value), its outcome, mean
    length, samples without answer."""
    if samples.empty:
        return pd.DataFrame(columns=PROBLEM_COLUMNS)
    votes = majority_votes(samples).set_index("problem_id")
    work = samples.assign(
        right=(samples["outcome"] == "right").astype(float),
        known=samples["truth"].notna(),
        unanswered=(samples["n_values"] == 0).astype(int),
    )
    frame = work.groupby("problem_id", sort=False).agg(
        position=("position", "first"),
        truth=("truth", "first"),
        samples=("sample_idx", "size"),
        pass_rate=("right", "mean"),
        known=("known", "any"),
        mean_tokens=("n_tokens", "mean"),
        no_answer=("unanswered", "sum"),
    )
    frame.loc[~frame["known"], "pass_rate"] = np.nan
    frame["majority"] = votes["vote"].reindex(frame.index).astype("Int64")
    frame["votes"] = votes["votes"].reindex(frame.index).fillna(0).astype(int)
    frame["majority_outcome"] = [
        _outcome(None if pd.isna(m) else int(m), None if pd.isna(t) else int(t))
        for m, t in zip(frame["majority"], frame["truth"])
    ]
    frame = frame.reset_index().sort_values(["position", "problem_id"])
    return frame[PROBLEM_COLUMNS].reset_index(drop=True)


def has_timestamps(traces: Sequence[ProblemTrace]) -> bool:
    """Whether the run recorded times (any sample with a finite end time)."""
    return any(np.isfinite(s.end_s) for p in traces for s in p.samples)


# --------------------------------------------------------------------------- one question


def _thin(n: int, points: int) -> np.ndarray:
    """About `points` token counts from 1 to n (always including both ends)."""
    if n <= 0:
        return np.zeros(0, np.int64)
    return np.unique(np.linspace(1, n, num=min(n, points)).round().astype(np.int64))


def _events(
    problem: ProblemTrace, x_of: Callable[[SampleTrace, np.ndarray], np.ndarray]
) -> pd.DataFrame:
    """Answer events of one question with their x position, outcome and source."""
    rows = []
    for s in problem.samples:
        if not s.n_answers:
            continue
        xs = x_of(s, s.ans_token.astype(np.int64))
        for j in range(s.n_answers):
            value = int(s.ans_value[j])
            source = "code" if int(s.ans_source[j]) == SOURCE_CODE else "boxed"
            failed = source == "code" and (value == NO_VALUE or not bool(s.ans_code_ok[j]))
            rows.append(
                (
                    s.sample,
                    float(xs[j]),
                    int(s.ans_token[j]),
                    None if value == NO_VALUE else value,
                    source,
                    _outcome(
                        None if value == NO_VALUE else value, problem.answer, code_failed=failed
                    ),
                )
            )
    return pd.DataFrame(rows, columns=["sample_idx", "x", "tokens", "value", "source", "outcome"])


def question_view(
    problem: ProblemTrace,
    mode: str,
    *,
    chunks: pd.DataFrame | None = None,
    profile: HardwareProfile | None = None,
    points: int = 300,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Curves (`sample_idx`, `kind`, `x`, `tokens`) and answer events of one question.

    Args:
        mode: "recorded" (x = recorded seconds; `chunks` from `recorded_curves`, or the answer
            times and end time where the run stored no chunks), "profile" (x = seconds the
            `profile` predicts for the question's samples decoding together, via `pace_batch`),
            or "tokens" (x = token index; the curves are then the samples' lanes, y = sample).
    """
    kinds = {s.sample: s.kind for s in problem.samples}
    if mode == "profile":
        if profile is None:
            raise ValueError("mode 'profile' needs a profile")
        paced = pace_batch(
            profile,
            [s.prompt_tokens for s in problem.samples],
            [s.n_tokens for s in problem.samples],
        )
        times = {s.sample: t for s, t in zip(problem.samples, paced)}

        def x_of(s: SampleTrace, tok: np.ndarray) -> np.ndarray:
            t = times[s.sample]
            return np.where(
                tok > 0, t[np.clip(tok - 1, 0, max(len(t) - 1, 0))] if len(t) else 0.0, 0.0
            )

        parts = []
        for s in problem.samples:
            tok = _thin(s.n_tokens, points)
            parts.append(
                pd.DataFrame(
                    {
                        "sample_idx": s.sample,
                        "x": np.concatenate([[0.0], x_of(s, tok)]),
                        "tokens": np.concatenate([[0], tok]),
                    }
                )
            )
        curves = pd.concat(parts, ignore_index=True) if parts else _empty_curves()
    elif mode == "tokens":
        curves = pd.DataFrame(
            [(s.sample, x, s.sample) for s in problem.samples for x in (0, s.n_tokens)],
            columns=["sample_idx", "x", "tokens"],
        )
        events = _events(problem, lambda s, tok: tok.astype(float))
        events["tokens"] = events["sample_idx"]
        curves["kind"] = curves["sample_idx"].map(kinds)
        return curves, events
    else:
        x_of = _recorded_x
        if chunks is not None and len(chunks):
            curves = chunks.rename(columns={"t_s": "x"})[["sample_idx", "x", "tokens"]]
            start = pd.DataFrame({"sample_idx": sorted(kinds), "x": 0.0, "tokens": 0})
            curves = pd.concat([start, curves], ignore_index=True).sort_values(
                ["sample_idx", "tokens"], kind="stable"
            )
        else:
            rows = []
            for s in problem.samples:
                rows.append((s.sample, 0.0, 0))
                rows += [(s.sample, float(t), int(k)) for k, t in zip(s.ans_token, s.ans_time)]
                rows.append((s.sample, float(s.end_s), s.n_tokens))
            curves = pd.DataFrame(rows, columns=["sample_idx", "x", "tokens"])
        curves = curves.dropna(subset=["x"])
    events = _events(problem, x_of)
    curves = curves.assign(kind=curves["sample_idx"].map(kinds)).reset_index(drop=True)
    return curves, events.dropna(subset=["x"])


def _recorded_x(s: SampleTrace, tok: np.ndarray) -> np.ndarray:
    return s.ans_time


def _empty_curves() -> pd.DataFrame:
    return pd.DataFrame(columns=["sample_idx", "x", "tokens"])


# --------------------------------------------------------------------------- competitions


QUESTION_COLUMNS = [
    "order",
    "problem_id",
    "level",
    "answer",
    "truth",
    "correct",
    "start_s",
    "time_s",
    "stop_reason",
    "samples_started",
    "samples_stopped",
    "tokens",
]


def question_frame(result: CompetitionResult) -> pd.DataFrame:
    """Per-question rows of a competition (the columns of `core.report.question_row`)."""
    frame = pd.DataFrame([question_row(q) for q in result.questions], columns=QUESTION_COLUMNS)
    frame["order"] = frame["order"] + 1
    return frame


def compare_frame(a: CompetitionResult, b: CompetitionResult) -> pd.DataFrame:
    """Two competitions over the same questions side by side, one row per question."""
    rows = []
    for qa, qb in zip(a.questions, b.questions):
        rows.append(
            {
                "order": qa.order,
                "problem_id": qa.problem_id,
                "truth": qa.truth,
                "answer_a": qa.answer,
                "answer_b": qb.answer,
                "correct_a": qa.correct,
                "correct_b": qb.correct,
                "time_a": qa.time_s,
                "time_b": qb.time_s,
                "time_diff": qb.time_s - qa.time_s,
                "stop_a": qa.stop_reason,
                "stop_b": qb.stop_reason,
                "level_a": qa.level,
                "level_b": qb.level,
            }
        )
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------- validation


VALIDATION_COLUMNS = [
    "order",
    "problem_id",
    "truth",
    "live_answer",
    "sim_answer",
    "differs",
    "live_stop",
    "sim_stop",
    "by_time",
    "live_s",
    "sim_s",
    "error",
    "skipped",
    "stall_s",
]


def validation_rows(v: Validation) -> pd.DataFrame:
    """One row per question of `aimo validate`'s comparison (VALIDATION_COLUMNS), in the live
    run's serving order: truth, live and simulated answer (`differs`: both known and unequal,
    the CLI's `*`), stop reasons (`by_time`: either side decided by the clock, so the answers are
    not compared), times and the relative error (simulated − live) / live; `skipped` questions
    (`--skip-first`) are left out of the time errors and have no `error`; `stall_s`: the live
    time's engine stalls (`simulator.live_timing.engine_stalls`)."""
    skipped = set(v.skipped)
    rows = [
        (
            i + 1,
            r.problem_id,
            r.truth,
            r.live_answer,
            r.sim_answer,
            r.live_answer is not None and r.live_answer != r.sim_answer,
            r.live_stop,
            r.sim_stop,
            r.by_time,
            r.live_s,
            r.sim_s,
            np.nan if r.problem_id in skipped else r.rel_error,
            r.problem_id in skipped,
            r.stall_s,
        )
        for i, r in enumerate(v.rows)
    ]
    frame = pd.DataFrame(rows, columns=VALIDATION_COLUMNS)
    for column in ("truth", "live_answer", "sim_answer"):
        frame[column] = frame[column].astype("Int64")
    for column in ("live_s", "sim_s", "error", "stall_s"):
        frame[column] = frame[column].astype(float)
    return frame


VALIDATION_PAIR_COLUMNS = ["order", "problem_id", "live_s", "sim_s", "live_cum_s", "sim_cum_s"]


def validation_pairs(v: Validation) -> pd.DataFrame:
    """The questions whose times the comparison's errors cover (`check.pairs`, as the PNG of
    `aimo validate --plot` draws them): live and simulated time and their running sums (start-up
    excluded), VALIDATION_PAIR_COLUMNS."""
    pairs = v.check.pairs
    live = np.array([p.live_s for p in pairs], dtype=float)
    sim = np.array([p.predicted_s for p in pairs], dtype=float)
    return pd.DataFrame(
        {
            "order": np.arange(1, len(pairs) + 1),
            "problem_id": [p.problem_id for p in pairs],
            "live_s": live,
            "sim_s": sim,
            "live_cum_s": np.cumsum(live),
            "sim_cum_s": np.cumsum(sim),
        },
        columns=VALIDATION_PAIR_COLUMNS,
    )


@dataclass(frozen=True)
class Metric:
    """One headline number of a page: label, value as shown, and what it means."""

    label: str
    value: str
    help: str


def validation_metrics(v: Validation) -> list[Metric]:
    """The headline numbers of `aimo validate` (`Validation.summary`, formatted as the CLI's
    text): same answer, same stop, time error |median|, p90, signed median, Σ question time live
    vs simulated with the total error, start-up live vs the profile's."""
    s = v.summary()
    agree, n = s["same_answer"]
    stops, ns = s["same_stop"]
    return [
        Metric("Same answer", f"{agree}/{n}",
               "Questions not decided by a timeout (stop timeout, early:…, cutoff, after_cutoff, "
               f"error on either side) with a known live answer; live answers from "
               f"{s['answers_from']}."),
        Metric("Same stop reason", f"{stops}/{ns}", "Questions with a known live stop reason."),
        Metric("Time error |median|", pct(s["time_error_median"]),
               "Median of |simulated − live| / live over the questions compared."),
        Metric("Time error p90", pct(s["time_error_p90"]), "90th percentile of the same."),
        Metric("Signed median", pct(s["time_error_signed_median"], sign=True),
               "Median of (simulated − live) / live: negative = the simulator is too fast."),
        Metric("Σ question time live / sim",
               f"{s['live_total_s']:.1f} / {s['sim_total_s']:.1f} s",
               f"Sum of question times, start-up excluded; total error "
               f"{pct(s['total_error'], sign=True)}."),
        Metric("Total error", pct(s["total_error"], sign=True),
               "(Σ simulated − Σ live) / Σ live."),
        Metric("Start-up live / profile",
               f"{secs(s['live_startup_s'])} / {s['sim_startup_s']:.1f} s",
               "The live engine's build and warm-up against the profile's startup_s."),
    ] + _stall_metrics(s["engine_stalls"]) + _spread_metric(s["step_spread"])


def _spread_metric(spread: dict[str, Any] | None) -> list[Metric]:
    """How far the live step moves between questions (none when not measurable)."""
    if spread is None:
        return []
    return [Metric("Live step spread", f"{pct(spread['deviation_median'])} (p90 "
                   f"{pct(spread['deviation_p90'])})",
                   f"Each question's median live step against the run's "
                   f"({1000 * spread['median_step_s']:.2f} ms), over {spread['questions']} "
                   "questions, batch and context included. Where they move the step little (a "
                   "host-bound engine) it is noise no step model predicts question by question.")]


def _stall_metrics(stalls: dict[str, Any] | None) -> list[Metric]:
    """The live run's engine stalls and the errors against the live times less them (none when
    the store's chunks give no live step)."""
    if stalls is None:
        return []
    w = stalls.get("without") or {}
    return [
        Metric("Engine stalls", f"{stalls['n']} · {stalls['seconds']:.2f} s",
               f"Silences of the engine longer than {1000 * stalls['threshold_s']:.0f} ms "
               f"({stalls['steps']:g} live steps) while samples decode, and first tokens that much later than usual, in "
               f"{stalls['questions']} question(s). The step model has no term for them."),
        Metric("Without stalls: |median| / p90 / total",
               f"{pct(w.get('time_error_median'))} / {pct(w.get('time_error_p90'))} / "
               f"{pct(w.get('total_error'), sign=True)}",
               "The same errors against the live times less their stalls: how far the clock is off "
               "where the engine did not stall (beside the errors proper, not instead)."),
    ]


def default_trace_run(traces_runs: pd.DataFrame, live_gen_config: str | None) -> int:
    """Position in `traces_runs` (`loaders.runs_frame` of the trace store) of the run to replay
    by default: the one a hil live run replayed (its `gen_config.hil.run_id`) where the store
    holds it, else the newest finished run that is not itself a live solve, else the last run."""
    try:
        hil = json.loads(live_gen_config or "{}").get("hil")
    except (ValueError, AttributeError):
        hil = None
    ids = traces_runs["run_id"].tolist()
    if isinstance(hil, dict) and hil.get("run_id") in ids:
        return ids.index(hil["run_id"])
    recorded = [
        i for i, (kind, state) in enumerate(zip(traces_runs["kind"], traces_runs["state"]))
        if kind != "solve" and state == "finished"
    ]
    return recorded[-1] if recorded else max(len(ids) - 1, 0)
