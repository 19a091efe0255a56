"""Every data access of the dashboard: cached loaders over the trace store, simulations and
Optuna studies, plus the pure frame builders they use.

Why one module: pages stay UI-only and every expensive step is cached in one place. Loaders are
`st.cache_data` (values copied per call) or `st.cache_resource` (shared read-only objects such
as trace arrays and simulators) with hashable arguments only: paths, run ids, policy YAML text.

Freshness: a store being recorded changes under us. Every store loader takes a `version`
(`store_version`: size and mtime of the file and its WAL), so a committed question invalidates
the cache without ever opening the file to find out. Reads go through `core.store`, which
opens the file read-only, retries the writer's lock and closes at once, so neither side ever
sees a lock error.

Scale: nothing here loads the `chunks` table except `token_curves` (one question, without
text, thinned in SQL) and `sample_text` (one sample, on demand).
"""

from __future__ import annotations

import functools
import json
import os
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import streamlit as st

from recorder.summary import run_stats, sample_stats
from core.hardware import HardwareProfile, list_profiles, load_profile, pace_batch
from simulator.replay import (
    BootstrapSummary,
    CompetitionResult,
    bootstrap_competitions,
    replay_competition,
    summarize,
)
from core.draws import recorded_draw, replicate_draw
from core.errors import InputError
from core.budget import check_budget
from core.scoring import check_overtime_rule
from core.policy import Policy, load_policy, policy_from_dict, policy_from_yaml, policy_to_yaml
from core.store import list_runs, load_problem_traces, load_sample_text, read_connection
from core.traces import NO_VALUE, SOURCE_CODE, ProblemTrace, SampleTrace

StoreVersion = tuple[int, ...]

# Reference-path bootstrap costs ~0.1 s per 50-question competition; keep the page responsive.
REFERENCE_MAX_REPLICATES = 20
FAST_DEFAULT_REPLICATES = 200

# Study attributes `aimo tune` writes (tuner.study.SETTINGS_ATTR / REPORT_ATTR): the settings
# mark a study the tuner made; the report is its nested cross-validation (held-out) summary.
TUNER_SETTINGS_ATTR = "aimo_settings"
TUNER_REPORT_ATTR = "aimo_report"

# Tokens-over-time points of one question: chunks without text, thinned to at most $points + 1
# per sample (every k-th chunk plus the last), only for a committed question.
CURVE_POINTS = """
WITH c AS (
    SELECT sample_idx, seq, t_s, n_tokens,
           max(seq) OVER (PARTITION BY sample_idx) AS last_seq
    FROM chunks
    WHERE run_id = $run_id AND problem_id = $problem_id
      AND EXISTS (SELECT 1 FROM questions_done d
                  WHERE d.run_id = $run_id AND d.problem_id = $problem_id)
)
SELECT sample_idx, seq, t_s, n_tokens FROM c
WHERE seq % greatest(1, CAST(ceil((last_seq + 1) / $points) AS BIGINT)) = 0 OR seq = last_seq
ORDER BY sample_idx, seq
"""


# --------------------------------------------------------------------------- store: versions


def store_version(path: str | Path) -> StoreVersion:
    """Size and modification time of the store and its WAL: changes whenever a writer commits.

    Cheap (two `stat` calls, no DuckDB open); a missing file gives zeros.
    """
    out: list[int] = []
    for p in (Path(path), Path(f"{path}.wal")):
        try:
            st_ = p.stat()
            out += [st_.st_size, st_.st_mtime_ns]
        except OSError:
            out += [0, 0]
    return tuple(out)


# --------------------------------------------------------------------------- store: runs


RUN_COLUMNS = [
    "run_id",
    "kind",
    "status",
    "state",
    "model",
    "backend",
    "quantization",
    "hardware",
    "problems",
    "samples",
    "tokens",
    "answers",
    "mean_tokens",
    "created_at",
    "notes",
    "gen_config",
    "policy",
]
ACCURACY_COLUMNS = ["run_id", "sample_accuracy", "majority_accuracy", "first_final", "no_answer"]


@st.cache_data(show_spinner=False, max_entries=16)
def runs_frame(path: str, version: StoreVersion) -> pd.DataFrame:
    """One row per run (RUN_COLUMNS): identity and counts over completed questions.

    One read of the store (`list_runs`); every page calls it, so it stays small.

    Raises:
        InputError: missing file, not a trace store, or a store at another schema version.
    """
    del version  # part of the cache key only
    rows = [
        {
            "run_id": r.run_id,
            "kind": r.kind,
            "status": r.status,
            "state": r.state,  # finished | failed | interrupted | running (core.store.run_state)
            "model": r.model,
            "backend": r.backend,
            "quantization": r.quantization,
            "hardware": r.hardware,
            "problems": r.n_problems,
            "samples": r.n_samples,
            "tokens": r.n_tokens,
            "answers": r.n_answers,
            "mean_tokens": r.n_tokens / r.n_samples if r.n_samples else np.nan,
            "created_at": r.created_at,
            "notes": r.notes,
            "gen_config": json.dumps(r.gen_config, sort_keys=True),
            "policy": None if r.policy is None else json.dumps(r.policy, sort_keys=True),
        }
        for r in list_runs(path)
    ]
    return pd.DataFrame(rows, columns=RUN_COLUMNS)


@st.cache_data(show_spinner=False, max_entries=16)
def runs_accuracy(
    path: str, runs: tuple[tuple[str, str, str], ...], version: StoreVersion
) -> pd.DataFrame:
    """Accuracy of each run (ACCURACY_COLUMNS) as `recorder.summary` defines it: share of samples
    whose final answer is right, of problems whose majority vote is right, of answered samples
    whose first answer is the final one, and samples without any answer. `runs` holds
    (run_id, kind, status) triples; one read of the store for all of them."""
    del version
    rows = []
    with read_connection(path) as con:
        for run_id, kind, status in runs:
            s = run_stats(run_id, kind, status, sample_stats(con, run_id))
            rows.append(
                {
                    "run_id": run_id,
                    "sample_accuracy": s.sample_accuracy,
                    "majority_accuracy": s.majority_accuracy,
                    "first_final": s.first_final,
                    "no_answer": s.no_answer,
                }
            )
    frame = pd.DataFrame(rows, columns=ACCURACY_COLUMNS)
    for column in ("sample_accuracy", "majority_accuracy", "first_final"):
        frame[column] = pd.to_numeric(frame[column], errors="coerce")
    return frame


@st.cache_data(show_spinner=False, max_entries=16)
def live_score(path: str, run_id: str, version: StoreVersion):  # type: ignore[no-untyped-def]
    """The live solver's score, time used and budget of a `solve` run (core.store.live)."""
    del version
    from core.store.live import live_score as query

    return query(path, run_id)


@st.cache_data(show_spinner=False, max_entries=16)
def live_questions(path: str, run_id: str, version: StoreVersion) -> pd.DataFrame:
    """A live run's questions in serving order: the solver's final answer, whether it is right,
    stop reason, level, start and time (core.store.live.question_results)."""
    del version
    from core.store.live import question_results

    frame = question_results(path, run_id)
    columns = ["position", "problem_id", "truth", "final_answer", "correct", "stop_reason",
               "level", "start_s", "wall_s"]
    return frame[columns].reset_index(drop=True)


# --------------------------------------------------------------------------- store: traces


@st.cache_resource(show_spinner=False, max_entries=4)
def problem_traces(path: str, run_id: str, version: StoreVersion) -> list[ProblemTrace]:
    """Event arrays of every completed question of a run (shared, read-only: not copied).
    Incomplete runs are loaded too: the page says which state the run is in."""
    del version
    return load_problem_traces(path, run_id, allow_incomplete=True)


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


@st.cache_data(show_spinner=False, max_entries=8)
def samples_frame(path: str, run_id: str, version: StoreVersion) -> pd.DataFrame:
    """`sample_rows` of a run (cached)."""
    return sample_rows(problem_traces(path, run_id, version))


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


def plurality(samples: pd.DataFrame) -> pd.DataFrame:
    """Per problem (index `problem_id`): the plurality final answer `vote` (ties to the larger
    value) and its `votes`; same definition as `recorder.summary.majority_votes`, vectorised."""
    finals = samples.dropna(subset=["final_value"])
    counts = finals.groupby(["problem_id", "final_value"]).size().reset_index(name="votes")
    counts = counts.sort_values(
        ["problem_id", "votes", "final_value"], ascending=[True, False, False]
    )
    top = counts.drop_duplicates("problem_id").set_index("problem_id")
    return top.rename(columns={"final_value": "vote"})[["vote", "votes"]]


def problem_rows(samples: pd.DataFrame) -> pd.DataFrame:
    """One row per problem (PROBLEM_COLUMNS): pass rate, plurality vote of final answers (ties to
    the larger value, as `recorder.summary`), its outcome, mean length, samples without answer."""
    if samples.empty:
        return pd.DataFrame(columns=PROBLEM_COLUMNS)
    votes = plurality(samples)
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


@st.cache_data(show_spinner=False, max_entries=8)
def problems_frame(path: str, run_id: str, version: StoreVersion) -> pd.DataFrame:
    """`problem_rows` of a run (cached)."""
    return problem_rows(samples_frame(path, run_id, version))


def has_timestamps(traces: Sequence[ProblemTrace]) -> bool:
    """Whether the run recorded times (any sample with a finite end time)."""
    return any(np.isfinite(s.end_s) for p in traces for s in p.samples)


# --------------------------------------------------------------------------- store: one question


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


@st.cache_data(show_spinner=False, max_entries=32)
def recorded_curves(
    path: str, run_id: str, problem_id: str, version: StoreVersion, points: int = 300
) -> pd.DataFrame:
    """Recorded tokens over time of one question: `sample_idx`, `t_s`, `tokens`, about `points`
    rows per sample, read from the chunks table without the text."""
    del version
    params = {"run_id": run_id, "problem_id": problem_id, "points": int(points)}
    with read_connection(path) as con:
        frame = con.execute(CURVE_POINTS, params).df()
    return frame.rename(columns={"n_tokens": "tokens"})[["sample_idx", "t_s", "tokens"]]


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


@st.cache_data(show_spinner=False, max_entries=64)
def sample_text(
    path: str, run_id: str, problem_id: str, sample_idx: int, version: StoreVersion
) -> str:
    """The full text of one sample, rebuilt from its chunks."""
    del version
    return load_sample_text(path, run_id, problem_id, sample_idx)


# --------------------------------------------------------------------------- policies, profiles


@st.cache_data(show_spinner=False)
def preset_yaml(name: str) -> str:
    """Canonical YAML of a bundled preset (every field spelled out, ready to edit)."""
    return policy_to_yaml(load_policy(name))


def parse_policy(text: str, source: str) -> Policy:
    """Validate policy YAML text; InputError names `source` and the field."""
    return policy_from_yaml(text, source)


@st.cache_resource(show_spinner=False)
def profile(name: str) -> HardwareProfile:
    """A bundled hardware profile by name."""
    return load_profile(name)


def profile_names() -> list[str]:
    """Names of the bundled hardware profiles."""
    return list(list_profiles())


# --------------------------------------------------------------------------- simulation


def fast_available() -> bool:
    """Whether the compiled simulator (`simulator.fast`) can be imported here."""
    try:
        import simulator.fast  # noqa: F401
    except Exception:  # noqa: BLE001 - numba missing or broken: use the reference path
        return False
    return os.environ.get("AIMO_DASHBOARD_SIMULATOR", "fast") != "reference"


@st.cache_resource(show_spinner=False, max_entries=4)
def fast_simulator(path: str, run_id: str, version: StoreVersion, profile_name: str) -> Any:
    """A `simulator.fast.FastSimulator` over a run's traces (encoding done once per version)."""
    from simulator.fast import FastSimulator

    return FastSimulator(problem_traces(path, run_id, version), profile(profile_name))


def competition_problems(
    traces: Sequence[ProblemTrace], n_questions: int, seed: int | None
) -> tuple[list[int], list[Any] | None]:
    """Question order (indices into `traces`) and sample draws of one competition: store order
    (seed None; problems reused cyclically when fewer than `n_questions`; draws None = recorded
    order) or a seeded draw made exactly as one bootstrap replicate makes it."""
    if not traces:
        raise ValueError("no completed questions")
    if seed is None:
        return [i % len(traces) for i in range(n_questions)], None
    return replicate_draw(traces, np.random.default_rng(seed), n_questions)


@st.cache_data(show_spinner=False, max_entries=32)
def competition(
    path: str,
    run_id: str,
    version: StoreVersion,
    policy_yaml: str,
    profile_name: str,
    n_questions: int,
    seed: int | None,
    budget_s: float,
    fast: bool = False,
    overtime_rule: str = "zero",
) -> CompetitionResult:
    """One competition under the policy, with per-sample detail for the Gantt view.

    `fast` runs it in the compiled simulator (same decisions and times as the reference path,
    proven by its differential test); otherwise `replay_competition`. Its score follows
    `overtime_rule` (core.scoring: an overtime run scores 0 by default).

    Raises:
        InputError: a budget that is not a finite number of seconds > 0, an unknown rule.
    """
    budget_s = check_budget(budget_s, "Budget")
    check_overtime_rule(overtime_rule, "Overtime scores")
    policy = policy_from_yaml(policy_yaml, "<policy>")
    traces = problem_traces(path, run_id, version)
    order, draws = competition_problems(traces, n_questions, seed)
    if fast:
        sim = fast_simulator(path, run_id, version, profile_name)
        return sim.competition(policy, order=order, draws=draws, budget_s=budget_s,
                               overtime_rule=overtime_rule).to_result()
    chosen = [traces[i] for i in order]
    draws = draws if draws is not None else [recorded_draw(p) for p in chosen]
    return replay_competition(chosen, policy, profile(profile_name), draws=draws, budget_s=budget_s,
                              overtime_rule=overtime_rule)


@st.cache_data(show_spinner=False, max_entries=32)
def bootstrap(
    path: str,
    run_id: str,
    version: StoreVersion,
    policy_yaml: str,
    profile_name: str,
    n_questions: int,
    replicates: int,
    seed: int,
    budget_s: float,
    fast: bool,
    overtime_rule: str = "zero",
) -> BootstrapSummary:
    """Bootstrap summary (score interval, mean time, P(overtime)) over seeded competitions.

    `fast` uses the compiled simulator (identical numbers for a seed); otherwise the reference
    path runs at most REFERENCE_MAX_REPLICATES replicates. Scores follow `overtime_rule`.

    Raises:
        InputError: a budget that is not a finite number of seconds > 0, an unknown rule.
    """
    budget_s = check_budget(budget_s, "Budget")
    check_overtime_rule(overtime_rule, "Overtime scores")
    policy = policy_from_yaml(policy_yaml, "<policy>")
    if fast:
        sim = fast_simulator(path, run_id, version, profile_name)
        return sim.bootstrap(
            policy, replicates=replicates, seed=seed, n_questions=n_questions, budget_s=budget_s,
            overtime_rule=overtime_rule,
        )
    traces = problem_traces(path, run_id, version)
    results = bootstrap_competitions(
        traces,
        policy,
        profile(profile_name),
        replicates=min(replicates, REFERENCE_MAX_REPLICATES),
        seed=seed,
        n_questions=n_questions,
        budget_s=budget_s,
        overtime_rule=overtime_rule,
    )
    return summarize(results)


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
    """Per-question rows of a competition (the columns of `simulator.report.question_row`)."""
    from simulator.report import question_row

    frame = pd.DataFrame([question_row(q) for q in result.questions], columns=QUESTION_COLUMNS)
    frame["order"] = frame["order"] + 1
    return frame


PAIRED_BATCHES = 10


@dataclass(frozen=True)
class PairedDelta:
    """B minus A on the same bootstrap draws: the mean score difference with a 90% interval of
    that mean, and the 5th–95th percentile of the difference in single competitions."""

    mean: float
    lo: float
    hi: float
    p5: float
    p95: float
    diffs: tuple[float, ...]
    batches: int


def paired_delta(
    a: BootstrapSummary, b: BootstrapSummary, batches: int = PAIRED_BATCHES
) -> PairedDelta:
    """The paired difference of two bootstraps made with the same seed (replicate i of both
    plays the same questions and samples), through the tuner's own `tuner.report.with_delta`:
    the mean over all replicates, and a 90% t-interval over `batches` consecutive batches of
    replicates (independent estimates of the mean; the tuner's folds play that part).

    Raises:
        ValueError: the two bootstraps have different replicate counts (not paired).
    """
    from tuner.report import HeldOutRow, with_delta

    if a.replicates != b.replicates or len(a.scores) != len(b.scores):
        raise ValueError(
            f"not paired: {a.replicates} and {b.replicates} replicates"
        )
    k = max(1, min(batches, len(a.scores) // 2))

    def row(name: str, s: BootstrapSummary) -> HeldOutRow:
        parts = np.array_split(np.asarray(s.scores, dtype=float), k)
        return HeldOutRow(
            name=name, mean_score=s.mean_score, score_lo=s.score_lo, score_hi=s.score_hi,
            mean_time_s=s.mean_time_s, p_overtime=s.p_overtime,
            fold_means=tuple(float(x.mean()) for x in parts), scores=tuple(s.scores),
        )

    delta = with_delta(row("B", b), row("A", a)).delta
    assert delta is not None
    diffs = np.asarray(b.scores, dtype=float) - np.asarray(a.scores, dtype=float)
    return PairedDelta(
        mean=delta[0], lo=delta[1], hi=delta[2],
        p5=float(np.percentile(diffs, 5)), p95=float(np.percentile(diffs, 95)),
        diffs=tuple(float(x) for x in diffs), batches=k,
    )


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


# --------------------------------------------------------------------------- Optuna studies


def storage_version(url: str) -> StoreVersion:
    """A journal file's size and mtime (a new trial changes it); RDB URLs give ()."""
    if "://" in url:
        return ()
    return store_version(url)


def open_storage(url: str) -> Any:
    """Optuna storage for a journal file path or an RDB URL (sqlite:///…, postgresql://…).

    Raises:
        InputError: a journal path that does not exist, or a storage Optuna cannot open.
    """
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    if "://" in url:
        try:
            return optuna.storages.RDBStorage(url)
        except Exception as exc:  # noqa: BLE001 - driver or URL errors: report, do not crash
            raise InputError(url, "storage", f"cannot open the study storage: {exc}") from None
    p = Path(url)
    if not p.is_file():
        raise InputError(url, "storage", "no such Optuna journal file")
    try:
        return JournalStorage(JournalFileBackend(str(p)))
    except Exception as exc:  # noqa: BLE001
        raise InputError(url, "storage", f"not an Optuna journal file: {exc}") from None


@st.cache_resource(show_spinner=False, max_entries=4)
def storage(url: str, version: StoreVersion) -> Any:
    """A cached Optuna storage (re-read when the journal file changes)."""
    del version
    return open_storage(url)


def study_names(url: str, version: StoreVersion) -> list[str]:
    """Names of the studies in a storage."""
    import optuna

    try:
        return sorted(optuna.get_all_study_names(storage(url, version)))
    except InputError:
        raise
    except Exception as exc:  # noqa: BLE001
        raise InputError(url, "storage", f"cannot list studies: {exc}") from None


def load_study(url: str, name: str, version: StoreVersion) -> Any:
    """The study, read-only: `optuna.load_study` on the cached storage, returning trials without
    deep copies (see `_read_only_study`).

    Raises:
        InputError: no study of that name.
    """
    import optuna

    try:
        optuna.load_study(study_name=name, storage=storage(url, version))  # checks the name
    except KeyError:
        raise InputError(url, "study", f"no study named {name!r}") from None
    return _read_only_study()(study_name=name, storage=storage(url, version))


@functools.cache
def _read_only_study() -> type:
    """A `optuna.Study` whose `trials` / `get_trials` never deep-copy.

    Why: Optuna's plots read `study.trials` once per parameter (the importance plot's hover
    text), and each read deep-copies every trial: 18 s for 60 trials x 53 parameters of an
    `aimo tune` study, 0.2 s without the copies. The dashboard never modifies a trial.
    """
    import optuna

    class ReadOnlyStudy(optuna.Study):
        @property
        def trials(self) -> list[Any]:
            return self.get_trials(deepcopy=False)

        def get_trials(self, deepcopy: bool = False, states: Any = None) -> list[Any]:
            return super().get_trials(deepcopy=False, states=states)

    return ReadOnlyStudy


def metric_names(study: Any) -> list[str]:
    """Names of the study's objectives: its own metric names; for an `aimo tune` study that set
    none, the tuner's (score, and mean time when multi-objective); else "objective i"."""
    if study.metric_names:
        return list(study.metric_names)
    n = len(study.directions)
    if isinstance(study.user_attrs.get(TUNER_SETTINGS_ATTR), dict) and n <= 2:
        return ["score", "mean time s"][:n]
    return [f"objective {i}" for i in range(n)]


def _cell(value: Any) -> Any:
    """A readable dataframe scalar: floats to 5 significant digits, lists as "a · b · c",
    mappings as "key: value, ..." (never raw JSON with float noise such as 0.30000000000000004).
    """
    if isinstance(value, dict):
        return ", ".join(f"{k}: {_text(v)}" for k, v in sorted(value.items(), key=str))
    if isinstance(value, (list, tuple)):
        return " · ".join(_text(v) for v in value)
    return rounded(value)


def _text(value: Any) -> str:
    value = rounded(value)
    if isinstance(value, (list, tuple, dict)):
        return json.dumps(value, sort_keys=True, default=str)
    return f"{value:g}" if isinstance(value, float) else str(value)


def rounded(value: Any) -> Any:
    """`value` with every float (also inside lists and mappings) to 5 significant digits."""
    if isinstance(value, float):
        return float(f"{value:.5g}")
    if isinstance(value, (list, tuple)):
        return [rounded(v) for v in value]
    if isinstance(value, dict):
        return {k: rounded(v) for k, v in value.items()}
    return value


def trials_frame(study: Any) -> pd.DataFrame:
    """Completed trials: number, objective value(s), params (`param:` columns) and scalar user
    attributes (`attr:` columns; lists and dicts as JSON; the exported `policy` left out)."""
    import optuna

    names = metric_names(study)
    rows = []
    for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)):
        row: dict[str, Any] = {"trial": t.number}
        for name, value in zip(names, t.values or ()):
            row[name] = rounded(value)
        row.update({f"param:{k}": _cell(v) for k, v in t.params.items()})
        row.update({f"attr:{k}": _cell(v) for k, v in t.user_attrs.items() if k != "policy"})
        rows.append(row)
    return pd.DataFrame(rows)


def trial_tables(trial: Any, names: Sequence[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One trial as two readable tables: its parameters (`parameter`, `value`) and its
    objective values and user attributes (`name`, `value`), values as formatted text."""
    params = pd.DataFrame(
        [(k, _text(_cell(v))) for k, v in sorted(trial.params.items())],
        columns=["parameter", "value"],
    )
    rows = [(n, _text(v)) for n, v in zip(names, trial.values or ())]
    rows += [
        (k, _text(_cell(v))) for k, v in sorted(trial.user_attrs.items()) if k != "policy"
    ]
    return params, pd.DataFrame(rows, columns=["name", "value"])


def best_trials(study: Any, limit: int = 10) -> list[Any]:
    """The Pareto-optimal trials of a multi-objective study, or the `limit` best of a single one."""
    import optuna

    if len(study.directions) > 1:
        return list(study.best_trials)
    done = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    reverse = study.direction == optuna.study.StudyDirection.MAXIMIZE
    return sorted(done, key=lambda t: t.value, reverse=reverse)[:limit]


def trial_policy(trial: Any, study: Any, space_file: str | None = None) -> tuple[Policy, str]:
    """The policy a trial stands for, and a line saying where it came from.

    A study made by `aimo tune` (it carries `aimo_settings`) is rebuilt exactly as the tuner
    exports it: `tuner.space` fills the fixed and inactive parameters of its search space (the
    default one, or `space_file` when the study was tuned with `--space`; the space's
    fingerprint must match the study's), and the result's hash is checked against the trial's
    `policy_hash`. Any other study must store the policy in `trial.user_attrs["policy"]` (a
    policy mapping or YAML text).

    Raises:
        InputError: the policy cannot be rebuilt (other search space, no tuner, nothing stored,
            or it does not validate).
    """
    from core.policy import policy_hash

    source = f"{study.study_name}: trial {trial.number}"
    settings = study.user_attrs.get(TUNER_SETTINGS_ATTR)
    if isinstance(settings, dict) and trial.params:
        try:
            from tuner.space import load_space
        except Exception as exc:  # noqa: BLE001 - the tuner package is missing or broken
            raise InputError(source, "policy", f"the tuner cannot be imported: {exc}") from None
        space = load_space(space_file or None)
        want = settings.get("space")
        if want and space.fingerprint() != want:
            raise InputError(
                source,
                "space",
                f"the study was tuned on another search space "
                f"(fingerprint {want}, this one {space.fingerprint()}); give the "
                "--space file it was tuned with",
            )
        name = f"tuned-{study.study_name}-trial{trial.number}".replace(":", "-")
        policy = space.policy(space.values_of(trial.params), name=name)
        recorded = trial.user_attrs.get("policy_hash")
        if recorded and recorded != policy_hash(policy):
            raise InputError(
                source,
                "policy_hash",
                f"rebuilt policy hash {policy_hash(policy)} differs from the recorded {recorded}",
            )
        check = ", hash matches the trial's" if recorded else ""
        return (
            policy,
            f"rebuilt from the trial's parameters by tuner.space ({space.source} space{check})",
        )
    stored = trial.user_attrs.get("policy")
    if isinstance(stored, dict):
        return policy_from_dict(
            stored, source
        ), "the trial's stored policy (user attribute 'policy')"
    if isinstance(stored, str):
        return policy_from_yaml(
            stored, source
        ), "the trial's stored policy (user attribute 'policy')"
    raise InputError(
        source,
        "policy",
        "not a study made by `aimo tune` and the trial stores no policy (user attribute 'policy')",
    )


def heldout_report(study: Any) -> tuple[pd.DataFrame, pd.DataFrame] | None:
    """The nested-CV report `aimo tune` stores on its final study: one row per policy (held-out
    mean score, 90% interval, paired difference to the seed with its 90% CI, mean time,
    P(overtime), per-fold means) and one row per fold (chosen trial, its train score, its
    held-out score). None when the study has no report."""
    report = study.user_attrs.get(TUNER_REPORT_ATTR)
    if not isinstance(report, dict) or not report.get("rows"):
        return None
    rows = []
    for r in report["rows"]:
        delta = r.get("delta")
        rows.append(
            {
                "policy": r.get("name"),
                "held-out score": r.get("mean_score"),
                "90% interval": f"{r.get('score_lo', float('nan')):.1f}–{r.get('score_hi', float('nan')):.1f}",
                "Δ vs seed (90% CI)": "–"
                if not delta
                else f"{delta[0]:+.2f} ({delta[1]:+.2f}..{delta[2]:+.2f})",
                "mean time h": (r.get("mean_time_s") or float("nan")) / 3600.0,
                "P(overtime)": r.get("p_overtime"),
                "per fold": _cell(list(r.get("fold_means", []))),
            }
        )
    folds = [
        {
            "fold study": f.get("study"),
            "chosen trial": f.get("trial"),
            "train score": (f.get("train") or {}).get("score_mean"),
            "held-out score": f.get("test_mean"),
        }
        for f in report.get("folds", [])
    ]
    return pd.DataFrame(rows), pd.DataFrame(folds)


STUDY_PLOTS = ("history", "pareto", "importances", "parallel")


PARALLEL_MAX_PARAMS = 8
IMPORTANCE_TOP = 15


def _ranked_params(study: Any, objective: int) -> dict[str, float]:
    """Parameter importances for reaching the best 10 % of trials (PED-ANOVA), largest first."""
    import optuna

    args = _importance_args(study, objective)
    return dict(
        optuna.importance.get_param_importances(
            study, evaluator=args["evaluator"], target=args["target"]
        )
    )


def _parallel(study: Any, objective: int, target: dict[str, Any]) -> Any:
    """Parallel coordinates over at most PARALLEL_MAX_PARAMS parameters, the most important ones
    (PED-ANOVA): an `aimo tune` study has ~50, unreadable side by side and slow to draw."""
    import optuna.visualization as vis

    names = sorted({k for t in study.get_trials(deepcopy=False) for k in t.params})
    if len(names) <= PARALLEL_MAX_PARAMS:
        return vis.plot_parallel_coordinate(study, **target)
    top = list(_ranked_params(study, objective))[:PARALLEL_MAX_PARAMS]
    fig = vis.plot_parallel_coordinate(study, params=top, **target)
    fig.update_layout(
        title=f"Parallel coordinates: the {len(top)} most important of {len(names)} parameters"
    )
    return fig


def _importance_args(study: Any, objective: int) -> dict[str, Any]:
    """Evaluator and target for `plot_param_importances`: PED-ANOVA ranks "lower is better", so
    a maximised objective is negated (as Optuna's documentation asks); the plot is labelled
    with the objective's name either way."""
    import optuna
    from optuna.importance import PedAnovaImportanceEvaluator

    names = metric_names(study)
    sign = -1.0 if study.directions[objective] == optuna.study.StudyDirection.MAXIMIZE else 1.0
    return {
        "evaluator": PedAnovaImportanceEvaluator(),
        "target": lambda t: sign * t.values[objective],
        "target_name": names[objective],
    }


@st.cache_data(show_spinner=False, max_entries=32)
def study_figure(
    url: str,
    name: str,
    version: StoreVersion,
    refresh: int,
    objective: int,
    kind: str,
    top: int = IMPORTANCE_TOP,
) -> Any:
    """One of Optuna's Plotly figures of a study (STUDY_PLOTS), or the reason it is not
    available (a string). `objective` picks the value single-target plots show in a
    multi-objective study; `refresh` only keys the cache (RDB storages have no version).

    Importances: PED-ANOVA (Optuna's evaluator that needs no scikit-learn), importance for
    reaching the best 10 % of trials of the chosen objective; the `top` largest are drawn.
    """
    del refresh
    import optuna.visualization as vis

    from dashboard import charts

    study = load_study(url, name, version)
    names = metric_names(study)
    multi = len(study.directions) > 1
    target: dict[str, Any] = {"target_name": names[objective]}
    if multi:
        target["target"] = lambda t: t.values[objective]
    builders: dict[str, Callable[[], Any]] = {
        "history": lambda: vis.plot_optimization_history(study, **target),
        "importances": lambda: charts.importance_bars(
            _ranked_params(study, objective), objective=names[objective], top=top
        ),
        "parallel": lambda: _parallel(study, objective, target),
        "pareto": lambda: vis.plot_pareto_front(study, target_names=names),
    }
    if kind == "pareto" and not multi:
        return "single-objective study: no Pareto front"
    if kind == "pareto" and len(names) > 3:
        return "Pareto front plots show 2 or 3 objectives"
    try:
        with warnings.catch_warnings():  # experimental-API and evaluator notices
            warnings.simplefilter("ignore")
            fig = builders[kind]()
    except Exception as exc:  # noqa: BLE001 - too few trials, one-valued params, ...
        return f"not available: {exc}"
    params = sorted({k for t in study.get_trials(deepcopy=False) for k in t.params})
    return charts.tidy_study_figure(fig, kind=kind, objective=names[objective], params=params)
