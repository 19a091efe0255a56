"""Simulation runs of the dashboard: one competition or a bootstrap of a run's traces under a
policy, on the compiled simulator (`simulator.fast`) or the reference replay, cached.

Why a module of its own: the pages' "what would this policy score" questions are the one place
the dashboard runs the simulator; both paths give the same decisions and times (the fast
path's differential test), so the choice is a speed setting, made here. Paired differences of
two bootstraps use the tuner's own interval (`tuner.report.with_delta`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import streamlit as st

from aimo.core.budget import check_budget
from aimo.core.draws import recorded_draw, replicate_draw
from aimo.core.policy import policy_from_yaml
from aimo.core.scoring import check_overtime_rule
from aimo.core.traces import ProblemTrace
from aimo.dashboard.loaders import StoreVersion, problem_traces, profile
from aimo.simulator.replay import (
    BootstrapSummary,
    CompetitionResult,
    bootstrap_competitions,
    replay_competition,
    summarize,
)

# Reference-path bootstrap costs ~0.1 s per 50-question competition; keep the page responsive.
REFERENCE_MAX_REPLICATES = 20
FAST_DEFAULT_REPLICATES = 200


def fast_available() -> bool:
    """Whether the compiled simulator (`simulator.fast`) can be imported here."""
    try:
        import aimo.simulator.fast  # noqa: F401
    except Exception:  # noqa: BLE001 - numba missing or broken: use the reference path
        return False
    return os.environ.get("AIMO_DASHBOARD_SIMULATOR", "fast") != "reference"


@st.cache_resource(show_spinner=False, max_entries=4)
def fast_simulator(path: str, run_id: str, version: StoreVersion, profile_name: str) -> Any:
    """A `simulator.fast.FastSimulator` over a run's traces (encoding done once per version)."""
    from aimo.simulator.fast import FastSimulator

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
    from aimo.tuner.report import HeldOutRow, with_delta

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
