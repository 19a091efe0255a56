"""Replay of recorded traces under a policy and a hardware profile (reference path)."""

from aimo.simulator.replay.competition import (
    DEFAULT_BUDGET_S,
    bootstrap_competitions,
    replay_competition,
    summarize,
)
from aimo.simulator.replay.question import QuestionReplay, replay_question
from aimo.simulator.replay.results import (
    BootstrapSummary,
    CompetitionResult,
    QuestionResult,
    SampleOutcome,
)
from aimo.core.draws import SampleDraw, random_draw, recorded_draw

__all__ = [
    "DEFAULT_BUDGET_S", "BootstrapSummary", "CompetitionResult", "QuestionReplay", "QuestionResult",
    "SampleDraw", "SampleOutcome", "bootstrap_competitions", "random_draw", "recorded_draw",
    "replay_competition", "replay_question", "summarize",
]
