"""`SolveSession`: a competition as the live solver runs it, one question at a time.

For each question: the budget controller picks the speed level and checks the cutoff; the
prompts of the level's sample mix go to the engine; the control loop drives the stream to an
answer; the question's rows are recorded (if a recorder is given) and the clock advances.
Every question gets an answer: the cutoff answer after the cutoff, the policy's fallback if the
engine fails. On a wall clock an engine call cannot hold the answer hostage: the question is
given up at its deadline (`question_deadline_s`) and answered from what the loop knew; the
engine is restarted (its `restart` hook) before the next question. The budget caps the policy's
cutoff (`within_budget`). The batch runner (`solver.solve`) and the Kaggle entry (`solver.kaggle`) share it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from aimo.solver.engines.base import Engine, PromptSpec, SamplingSettings
from aimo.core.budget import (
    BudgetController,
    CompetitionClock,
    QuestionPlan,
    VirtualClock,
    WallClock,
    check_budget,
    within_budget,
)
from aimo.solver.loop.control import LoopOptions, Recorder, run_question
from aimo.core.results import QuestionOutcome, QuestionResult, SolveResult
from aimo.solver.loop.runners import CodeRunner
from aimo.core.scoring import check_overtime_rule
from aimo.core.policy import Policy, SpeedLevel, sample_kinds
from aimo.core.store import LiveResult, ProblemRow

logger = logging.getLogger("aimo.solver.session")

DEFAULT_BUDGET_S = 5 * 3600.0


def build_prompts(policy: Policy, question: str, kinds: Sequence[str]) -> list[PromptSpec]:
    """One prompt per sample: the kind's system message; the question followed by its suffix."""
    out = []
    for i, kind in enumerate(kinds):
        prompt = policy.generation.prompts.of(kind)
        out.append(PromptSpec(i, kind, prompt.system, question + prompt.user_suffix))  # type: ignore[arg-type]
    return out


def sampling_settings(policy: Policy, seed: int | None) -> SamplingSettings:
    """The policy's sampling settings; generation stops at the sample token cap."""
    g = policy.generation
    return SamplingSettings(
        temperature=g.temperature, top_p=g.top_p, min_p=g.min_p,
        repetition_penalty=g.repetition_penalty,
        max_new_tokens=min(g.max_new_tokens, policy.sample_stop.max_tokens), seed=seed,
    )


class RecorderSink(Recorder, Protocol):
    """A recorder that also commits questions (see `solver.loop.recording.RunRecorder`)."""

    def commit_question(self, problem: ProblemRow, wall_s: float | None,
                        live: LiveResult | None = None) -> None: ...

    def discard_question(self) -> None: ...


class SolveSession:
    """Answers questions in serving order under one policy, engine and code runner.

    Args:
        engine: the text-generation engine (started; the session does not close it).
        policy: the policy; `questions` overrides its schedule's competition size.
        runner: where code runs (`SandboxRunner` live, `RecordedRunner` on replay).
        clock: the competition clock; default `VirtualClock(engine.startup_s)` for engines with
            a virtual clock, else a `WallClock` started now.
        startup_s: reported start-up time (default: the engine's, or 0 for wall clocks).
        recorder: records every question (run kind chosen by its creator).
        seed: sampling seed of question `order` is `seed + order`.
        budget_s: the competition budget: it caps the policy's cutoff (`within_budget`).
        overtime_rule: how the result scores if the run passes the budget (`rule_score`).
    Not thread-safe; one question at a time.
    """

    def __init__(
        self,
        engine: Engine,
        policy: Policy,
        runner: CodeRunner,
        *,
        questions: int | None = None,
        clock: CompetitionClock | None = None,
        startup_s: float | None = None,
        recorder: RecorderSink | None = None,
        options: LoopOptions = LoopOptions(),
        seed: int = 0,
        budget_s: float = DEFAULT_BUDGET_S,
        overtime_rule: str = "zero",
    ) -> None:
        budget_s = check_budget(budget_s)
        self.overtime_rule = check_overtime_rule(overtime_rule)
        policy = within_budget(policy, budget_s)
        schedule = policy.schedule
        if questions is not None:
            schedule = dataclasses.replace(schedule, questions=questions)
            policy = dataclasses.replace(policy, schedule=schedule)
        self.engine = engine
        self.policy = policy
        self.runner = runner
        self.virtual = bool(getattr(engine, "virtual_clock", False))
        engine_startup = float(getattr(engine, "startup_s", 0.0))
        if clock is None:
            clock = VirtualClock(engine_startup) if self.virtual else WallClock()
        self.startup_s = engine_startup if startup_s is None and self.virtual else (startup_s or 0.0)
        self.overhead_s = float(getattr(engine, "question_overhead_s", 0.0)) if self.virtual else 0.0
        self.budget = BudgetController(schedule, clock)
        self.recorder = recorder
        self.options = options
        self.seed = seed
        self.budget_s = budget_s
        self.results: list[QuestionResult] = []
        self.needs_restart = False  # the engine hung on the last question
        self.restarts = 0
        self._generation = 0  # bumped by `give_up`: an abandoned `answer` must not count
        self._in_progress: QuestionPlan | None = None  # the plan of the question being answered
        # abandoned questions' tasks, held so that they are not garbage-collected mid-flight (their
        # `finally` blocks would then run at random times, in any thread); cancelled on shutdown
        self._abandoned: set[asyncio.Future[Any]] = set()

    def question_deadline_s(self, plan: QuestionPlan) -> float:
        """Wall seconds after which a question is answered whatever the engine does: the cutoff
        plus the watchdog's grace, or, earlier, the level timeout plus grace and one drain."""
        opt = self.options
        return max(0.0, min(plan.cutoff_in_s + opt.watchdog_grace_s,
                            plan.speed.timeout_s + opt.watchdog_grace_s + opt.drain_timeout_s))

    async def restart_engine(self) -> bool:
        """Call the engine's `restart` hook (bounded by `restart_timeout_s` and the time to the
        cutoff); True if it came back. A failed restart is tried again before the next question."""
        hook = getattr(self.engine, "restart", None)
        self.needs_restart = False
        if hook is None:
            return True
        left = self.policy.schedule.cutoff_s - self.budget.clock.elapsed()
        limit = max(0.0, min(self.options.restart_timeout_s, left))
        task = asyncio.ensure_future(hook())
        # asyncio.wait, not wait_for: the deadline must not depend on the hung call honouring
        # its cancellation
        done, _ = await asyncio.wait({task}, timeout=limit)
        error = task.exception() if task in done else asyncio.TimeoutError(f"no return in {limit:.0f} s")
        if error is not None:
            task.cancel()
            logger.error("engine restart failed (%r); trying again before the next question", error)
            self.needs_restart = True
            return False
        self.restarts += 1
        logger.warning("engine restarted after a hang (%d restart(s) so far)", self.restarts)
        return True

    async def answer(self, problem_id: str, question: str, *, truth: int | None = None) -> QuestionResult:
        """Solve the next question; always returns an answer (on a wall clock, by the question's
        deadline whatever the engine does)."""
        if self.needs_restart:
            await self.restart_engine()
        generation = self._generation
        plan = self.budget.plan()
        self._in_progress = plan
        if not plan.run:
            result = QuestionResult(
                problem_id=problem_id, order=plan.order, level=plan.level,
                answer=self.policy.schedule.cutoff_answer, truth=truth, start_s=plan.start_s,
                time_s=0.0, stop_reason="after_cutoff", samples=(),
            )
            self.budget.finish(0.0)
            self.results.append(result)
            return result
        kinds = sample_kinds(self.policy.samples, plan.speed.samples)
        wall0 = time.monotonic()
        outcome = await self._bounded(problem_id, question, kinds, plan, wall0)
        if generation != self._generation:  # the caller gave up on this question (`give_up`)
            return QuestionResult(problem_id, plan.order, plan.level, outcome.answer, truth,
                                  plan.start_s, outcome.time_s, "abandoned", outcome.samples)
        wall = time.monotonic() - wall0
        time_s = outcome.time_s + self.overhead_s if self.virtual else wall
        result = QuestionResult(
            problem_id=problem_id, order=plan.order, level=plan.level, answer=outcome.answer,
            truth=truth, start_s=plan.start_s, time_s=time_s, stop_reason=outcome.stop_reason,
            samples=outcome.samples,
        )
        self.budget.finish(time_s)
        self.results.append(result)
        if self.recorder is not None:
            live = LiveResult(result.answer, result.stop_reason, result.level, result.start_s,
                              outcome.decided_s)
            self._record(ProblemRow(problem_id, plan.order, question, truth), outcome, time_s, live)
        return result

    def give_up(self, problem_id: str, answer: int, *, truth: int | None = None) -> QuestionResult:
        """The caller stopped waiting for the question in progress (its event loop is blocked by
        the engine): count it with `answer` and stop-reason `deadline`, have the engine restarted
        before the next question; the blocked `answer`, if it ever returns, changes nothing."""
        self._generation += 1
        self.needs_restart = True
        plan = self._in_progress
        if plan is None or plan.order != self.budget.done:  # blocked before planning
            plan = self.budget.plan()
        start_s = plan.start_s
        time_s = 0.0 if self.virtual else max(0.0, self.budget.clock.elapsed() - start_s)
        result = QuestionResult(
            problem_id=problem_id, order=plan.order, level=plan.level, answer=answer,
            truth=truth, start_s=start_s, time_s=time_s, stop_reason="deadline", samples=(),
        )
        self.budget.finish(time_s)
        self.results.append(result)
        if self.recorder is not None:
            try:
                self.recorder.discard_question()
            except Exception:
                logger.exception("could not discard the abandoned question %s", problem_id)
        return result

    def _record(self, row: ProblemRow, outcome: QuestionOutcome, time_s: float,
                live: LiveResult | None = None) -> None:
        """Commit the question's rows; a recording failure never costs the answer."""
        assert self.recorder is not None
        try:
            if outcome.stop_reason != "deadline" and any(s.end != "queued" for s in outcome.samples):
                self.recorder.commit_question(row, wall_s=time_s, live=live)
            else:
                self.recorder.discard_question()
        except Exception:
            logger.exception("could not record question %s; the answer stands", row.problem_id)
            self.recorder.discard_question()

    async def _bounded(self, problem_id: str, question: str, kinds: Sequence[str],
                       plan: QuestionPlan, wall0: float) -> QuestionOutcome:
        """`_run`, given up at the question's deadline on a wall clock (a hung engine call)."""
        if self.virtual:
            return await self._run(problem_id, question, kinds, plan.speed, plan.cutoff_in_s, plan.order)
        loops: list = []
        task = asyncio.ensure_future(self._run(problem_id, question, kinds, plan.speed,
                                               plan.cutoff_in_s, plan.order, loops.append))
        done, _ = await asyncio.wait({task}, timeout=self.question_deadline_s(plan))
        if task in done:
            return task.result()
        task.cancel()  # not awaited: a hung engine call may never let it unwind
        self._abandoned.add(task)
        task.add_done_callback(self._abandoned.discard)
        self.needs_restart = True
        waited = time.monotonic() - wall0
        logger.error("question %s: the engine did not let the question end by its deadline "
                     "(%.1f s); answering from what is known, restarting the engine", problem_id, waited)
        if loops:
            return loops[0].abandon(waited)
        return QuestionOutcome(self.policy.vote.fallback % 1000, waited, "deadline", ())

    async def _run(self, problem_id: str, question: str, kinds: Sequence[str], speed: SpeedLevel,
                   cutoff_in_s: float, order: int, on_loop: Callable[[Any], None] | None = None
                   ) -> QuestionOutcome:
        prompts = build_prompts(self.policy, question, kinds)
        try:
            stream = await self.engine.start_question(
                problem_id, question, prompts, sampling_settings(self.policy, self.seed + order)
            )
        except Exception:
            logger.exception("engine failed to start question %s; answering the fallback", problem_id)
            return QuestionOutcome(self.policy.vote.fallback % 1000, 0.0, "error", ())
        return await run_question(
            stream, self.policy, speed, kinds, self.runner, cutoff_in_s=cutoff_in_s,
            recorder=self.recorder, options=self.options, on_loop=on_loop,
        )

    def result(self) -> SolveResult:
        """The competition so far."""
        return SolveResult(
            questions=tuple(self.results), startup_s=self.startup_s, budget_s=self.budget_s,
            cutoff_s=self.policy.schedule.cutoff_s, overtime_rule=self.overtime_rule,
        )


__all__ = ["DEFAULT_BUDGET_S", "RecorderSink", "SolveSession", "build_prompts", "sampling_settings"]
