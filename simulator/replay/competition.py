"""A whole competition: questions served in order, the speed schedule reading the time left, the
hard cutoff, engine start-up; and bootstrap replicates over sample draws and question orders.

Pure functions of their inputs (randomness only from the `seed`), returning result objects.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

import numpy as np

from aimo.core.hardware import HardwareProfile
from aimo.simulator.replay.question import replay_question
from aimo.simulator.replay.results import BootstrapSummary, CompetitionResult, QuestionResult
from aimo.core.draws import SampleDraw, recorded_draw, replicate_draw
from aimo.core.budget import within_budget
from aimo.core.scoring import check_overtime_rule
from aimo.core.policy import (
    Policy,
    past_cutoff,
    pick_level,
    question_budget_s,
    sample_kinds,
    uses_confidence,
)
from aimo.core.traces import ProblemTrace, require_confidence

DEFAULT_BUDGET_S = 5 * 3600.0


def replay_competition(
    problems: Sequence[ProblemTrace],
    policy: Policy,
    profile: HardwareProfile,
    *,
    draws: Sequence[SampleDraw] | None = None,
    budget_s: float = DEFAULT_BUDGET_S,
    overtime_rule: str = "zero",
) -> CompetitionResult:
    """Run `problems` in the given order as one competition.

    Args:
        problems: the questions in serving order.
        policy: the policy under test.
        profile: the hardware time model.
        draws: per problem, which recorded samples fill the slots (default: recorded order).
        budget_s: the whole budget: it caps the cutoff (`core.budget.effective_cutoff`);
            a total past it is overtime (reaching the cutoff in time is not).
        overtime_rule: how an overtime run scores (`core.scoring`; default `zero`).
    Raises:
        MissingConfidence: the policy reads token confidence and a sample of `problems` has
            none (`core.traces.require_confidence`, the check the live replay engine makes).
    """
    check_overtime_rule(overtime_rule)
    if uses_confidence(policy):
        require_confidence(problems, policy.name)
    policy = within_budget(policy, budget_s)
    schedule = dataclasses.replace(policy.schedule, questions=len(problems))
    draws = draws if draws is not None else [recorded_draw(p) for p in problems]
    clock = profile.startup_s
    level = schedule.start_level
    results: list[QuestionResult] = []
    for order, (problem, draw) in enumerate(zip(problems, draws)):
        level = pick_level(schedule, level, order, schedule.cutoff_s - clock)
        if past_cutoff(schedule, clock):
            results.append(
                QuestionResult(
                    problem_id=problem.problem_id, order=order, level=level,
                    answer=schedule.cutoff_answer, truth=problem.answer, start_s=clock, time_s=0.0,
                    stop_reason="after_cutoff", samples=(),
                )
            )
            continue
        speed = schedule.levels[level - 1]
        if schedule.budget is not None:  # the per-question budget from the time left
            speed = dataclasses.replace(speed, timeout_s=question_budget_s(
                schedule, speed, order, schedule.cutoff_s - clock))
        chosen = draw.take(sample_kinds(policy.samples, speed.samples))
        q = replay_question(chosen, policy, speed, profile, cutoff_in_s=schedule.cutoff_s - clock)
        time_s = q.time_s + profile.question_overhead_s
        results.append(
            QuestionResult(
                problem_id=problem.problem_id, order=order, level=level, answer=q.answer,
                truth=problem.answer, start_s=clock, time_s=time_s, stop_reason=q.stop_reason,
                samples=q.samples,
            )
        )
        clock += time_s
    return CompetitionResult(
        questions=tuple(results), startup_s=profile.startup_s, budget_s=budget_s,
        cutoff_s=schedule.cutoff_s, overtime_rule=overtime_rule,
    )


CompetitionFn = Callable[..., CompetitionResult]


def bootstrap_competitions(
    problems: Sequence[ProblemTrace],
    policy: Policy,
    profile: HardwareProfile,
    *,
    replicates: int,
    seed: int,
    n_questions: int | None = None,
    budget_s: float = DEFAULT_BUDGET_S,
    replay: CompetitionFn = replay_competition,
    overtime_rule: str = "zero",
    paired: bool = False,
) -> list[CompetitionResult]:
    """`replicates` competitions, each with a seeded question order and sample draw.

    With `n_questions` equal to the number of problems (default) every replicate serves each
    problem once in a random order; otherwise problems are drawn with replacement. With
    `paired`, replicates 2i and 2i + 1 serve the same questions in the same order (only the
    sample draws differ): each problem run twice, as AIMO-3 scores (`simulator.aimo3`).
    """
    rng = np.random.default_rng(seed)
    out = []
    idx: list[int] = []
    for r in range(replicates):
        # the second run of a pair: the same questions (idx), fresh sample draws
        again = paired and r % 2 == 1
        idx, draws = replicate_draw(problems, rng, n_questions, order=idx if again else None)
        chosen = [problems[i] for i in idx]
        out.append(replay(chosen, policy, profile, draws=draws, budget_s=budget_s,
                          overtime_rule=overtime_rule))
    return out


def summarize(results: Sequence[CompetitionResult]) -> BootstrapSummary:
    """Mean score (each run scored by its overtime rule) with a 90% percentile interval, mean
    total time and overtime probability."""
    scores = np.array([r.score for r in results], dtype=float)
    times = np.array([r.total_time_s for r in results], dtype=float)
    return BootstrapSummary(
        replicates=len(results),
        n_questions=len(results[0].questions) if results else 0,
        mean_score=float(scores.mean()),
        score_lo=float(np.percentile(scores, 5)),
        score_hi=float(np.percentile(scores, 95)),
        mean_time_s=float(times.mean()),
        p_overtime=float(np.mean([r.overtime for r in results])),
        scores=tuple(int(s) for s in scores),
        times_s=tuple(float(t) for t in times),
    )
