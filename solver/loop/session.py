"""`SolveSession`: a competition as the live solver runs it, one question at a time.

For each question: the budget controller picks the speed level and checks the cutoff; the
prompts of the level's sample mix go to the engine; the control loop drives the stream to an
answer; the question's rows are recorded (if a recorder is given) and the clock advances.
Every question gets an answer: the cutoff answer after the cutoff, the policy's fallback if the
engine fails. The batch runner (`solver.solve`) and the Kaggle entry (`solver.kaggle`) share it.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Sequence
from typing import Protocol

from solver.engines.base import Engine, PromptSpec, SamplingSettings
from solver.loop.budget import BudgetController, CompetitionClock, VirtualClock, WallClock
from solver.loop.control import LoopOptions, Recorder, run_question
from solver.loop.results import QuestionOutcome, QuestionResult, SolveResult
from solver.loop.runners import CodeRunner
from solver.policy import Policy, SpeedLevel, sample_kinds
from solver.store import LiveResult, ProblemRow

logger = logging.getLogger("solver.session")

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
    ) -> None:
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

    async def answer(self, problem_id: str, question: str, *, truth: int | None = None) -> QuestionResult:
        """Solve the next question; always returns an answer."""
        plan = self.budget.plan()
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
        outcome = await self._run(problem_id, question, kinds, plan.speed, plan.cutoff_in_s, plan.order)
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
            live = LiveResult(result.answer, result.stop_reason, result.level, result.start_s)
            self._record(ProblemRow(problem_id, plan.order, question, truth), outcome, time_s, live)
        return result

    def _record(self, row: ProblemRow, outcome: QuestionOutcome, time_s: float,
                live: LiveResult | None = None) -> None:
        """Commit the question's rows; a recording failure never costs the answer."""
        assert self.recorder is not None
        try:
            if any(s.end != "queued" for s in outcome.samples):
                self.recorder.commit_question(row, wall_s=time_s, live=live)
            else:
                self.recorder.discard_question()
        except Exception:
            logger.exception("could not record question %s; the answer stands", row.problem_id)
            self.recorder.discard_question()

    async def _run(self, problem_id: str, question: str, kinds: Sequence[str], speed: SpeedLevel,
                   cutoff_in_s: float, order: int) -> QuestionOutcome:
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
            recorder=self.recorder, options=self.options,
        )

    def result(self) -> SolveResult:
        """The competition so far."""
        return SolveResult(
            questions=tuple(self.results), startup_s=self.startup_s, budget_s=self.budget_s,
            cutoff_s=self.policy.schedule.cutoff_s,
        )


__all__ = ["DEFAULT_BUDGET_S", "RecorderSink", "SolveSession", "build_prompts", "sampling_settings"]
