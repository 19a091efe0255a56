"""The one engine interface the control loop drives: start a batch of prompts for a question,
stream chunks tagged with sample index, cumulative tokens and a timestamp, cancel one or all.

Implementations: lmdeploy (TurboMind / PyTorch backends, GPU), replay (a recorded run paced by a
hardware profile, CPU), synthetic (CPU). One shared test suite runs against every CPU engine.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

import numpy as np

FinishReason = Literal["stop", "length", "abort", "error"]


@dataclass(frozen=True)
class PromptSpec:
    """One sample's prompt: its kind decides which policy rules apply to it."""

    sample: int
    kind: Literal["cot", "code"]
    system: str
    user: str


@dataclass(frozen=True)
class SamplingSettings:
    """Sampling settings taken from the policy's `generation` block."""

    temperature: float = 0.9
    top_p: float = 0.95
    min_p: float = 0.1
    repetition_penalty: float = 1.05
    max_new_tokens: int = 16384
    seed: int | None = None


@dataclass(frozen=True)
class Chunk:
    """A piece of one sample's stream.

    `n_tokens` is the sample's cumulative generated tokens after this chunk; `t` is seconds since
    the question's batch was submitted, on the engine's clock (wall clock for real engines, the
    virtual clock for the replay engine); `finish_reason` is set on the sample's last chunk;
    `logprobs` (None unless asked for) holds one dict per new token; `confidence` (engines that
    already have it: the replay engine, from the store) the new tokens' token confidence and
    top-k entropy, float32 arrays of one value a token (`solver.engines.logprobs` defines both).
    """

    sample: int
    text: str
    n_tokens: int
    t: float
    finish_reason: FinishReason | None = None
    # the engine's top-k logprobs of this chunk's new tokens, one {token_id: logprob} a token,
    # when the run asked for them (solver.engines.logprobs turns them into confidence)
    logprobs: Sequence[Mapping[int, float]] | None = None
    confidence: tuple[np.ndarray, np.ndarray] | None = None


class QuestionStream(Protocol):
    """The running batch of one question."""

    def __aiter__(self) -> AsyncIterator[Chunk]: ...

    async def cancel(self, sample: int) -> None:
        """Stop one sample; its stream ends with finish_reason 'abort'. Idempotent."""

    async def cancel_all(self) -> None:
        """Stop every sample still running."""

    def now(self) -> float:
        """Seconds since the batch was submitted, on the engine's clock."""


class Engine(Protocol):
    """A text-generation engine (contract: one question's batch at a time)."""

    name: str
    backend: str  # the backend that actually runs (e.g. 'turbomind', 'pytorch', 'replay')

    async def start_question(
        self, question_id: str, question: str, prompts: Sequence[PromptSpec], sampling: SamplingSettings
    ) -> QuestionStream: ...

    async def restart(self) -> None:
        """Make the engine usable again after a hang: drop the current batch without waiting
        for it and rebuild what a stuck call may hold (the solver calls it before the next
        question when the last one hit its deadline)."""

    async def close(self) -> None: ...
