"""The live solver's control loop: per-question loop, code runners, budget controller, recording.

`run_question` drives one started question to its answer with the policy's shared decision code;
`SolveSession` runs a competition (speed schedule, cutoff, recording); `RunRecorder` writes a run
into a trace store. See docs/solver.md.
"""

from __future__ import annotations

from aimo.core.budget import BudgetController, CompetitionClock, QuestionPlan, VirtualClock, WallClock
from aimo.solver.loop.control import LoopOptions, Recorder, run_question
from aimo.solver.loop.recording import RunRecorder
from aimo.core.results import QuestionOutcome, QuestionResult, SampleOutcome, SolveResult
from aimo.solver.loop.runners import (
    CodeOutcome,
    CodeRunner,
    PendingRun,
    RecordedRunner,
    SandboxRunner,
    outcome_of,
)
from aimo.solver.loop.session import DEFAULT_BUDGET_S, SolveSession, build_prompts, sampling_settings

__all__ = [
    "DEFAULT_BUDGET_S",
    "BudgetController",
    "CodeOutcome",
    "CodeRunner",
    "CompetitionClock",
    "LoopOptions",
    "PendingRun",
    "QuestionOutcome",
    "QuestionPlan",
    "QuestionResult",
    "Recorder",
    "RecordedRunner",
    "RunRecorder",
    "SampleOutcome",
    "SandboxRunner",
    "SolveResult",
    "SolveSession",
    "VirtualClock",
    "WallClock",
    "build_prompts",
    "outcome_of",
    "run_question",
    "sampling_settings",
]
