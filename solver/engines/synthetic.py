"""Synthetic engine (CPU): plausible samples from a seeded generator, paced like the replay engine.

For demos and tests of the live path without a GPU or recordings: each sample is right with
probability `p_right` (else one of a few distractors, so votes cluster as they do for a real
model), CoT samples box their answer near their end, code samples write a ```python block that
prints it (real code: the sandbox runner gets the same answer as `recorded_code` says) and box it
after. Everything is a pure function of (`seed`, question id, sample index).
"""

from __future__ import annotations

import dataclasses
import math
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from aimo.solver.engines.base import PromptSpec, SamplingSettings
from aimo.core.hardware import HardwareProfile, load_profile
from aimo.solver.engines.replay import PacedStream, RecordedCode, SampleScript


@dataclass(frozen=True)
class SyntheticParams:
    """The generator's knobs: output length (log-normal: median tokens, log sd), accuracy, how
    often a sample gives an answer at all, code failures, code run time (ms) and prompt length."""

    median_tokens: float = 3000.0
    log_sd: float = 0.6
    p_right: float = 0.55
    p_answer: float = 0.9
    p_code_fail: float = 0.1
    exec_ms: tuple[float, float] = (50.0, 1500.0)
    prompt_tokens: int = 150
    distractors: int = 3


def _seed_of(*parts: object) -> list[int]:
    return [zlib.crc32(str(p).encode()) for p in parts]


def synthetic_truth(seed: int, question_id: str) -> int:
    """The answer the synthetic model is right about for `question_id` (when not given)."""
    return int(np.random.default_rng(_seed_of("truth", seed, question_id)).integers(0, 1000))


def sample_script(
    rng: np.random.Generator, kind: str, index: int, truth: int, distractors: Sequence[int],
    params: SyntheticParams,
) -> SampleScript:
    """One synthetic sample of prompt kind `kind`."""
    n = max(20, int(params.median_tokens * math.exp(params.log_sd * rng.standard_normal())))
    right = rng.random() < params.p_right
    value = truth if right or not distractors else int(rng.choice(list(distractors)))
    inserts: list[tuple[int, str]] = []
    code: list[tuple[str, RecordedCode]] = []
    finish = "stop"
    if rng.random() < params.p_answer:
        if kind == "code":
            at = max(1, int(n * rng.uniform(0.4, 0.8)))
            fail = rng.random() < params.p_code_fail
            body = f"# sample {index}\n" + ("print(undefined_name)" if fail else f"print({value})")
            lo, hi = params.exec_ms
            exec_ms = float(rng.uniform(lo, hi))
            err = "NameError: name 'undefined_name' is not defined" if fail else None
            code.append((body, RecordedCode(-1 if fail else value, not fail, exec_ms, err)))
            inserts.append((at, f"\n```python\n{body}\n```\n"))
        at = max(1, int(n * rng.uniform(0.85, 1.0)))
        inserts.append((at, f" so the answer is \\boxed{{{value}}}. "))
    inserts.sort(key=lambda x: x[0])
    return SampleScript(kind, params.prompt_tokens, n, finish, tuple(inserts), tuple(code), index)  # type: ignore[arg-type]


DEFAULT_PACE_PROFILE = "l4x4-14b-w4kv8"


def default_pace_profile() -> HardwareProfile:
    """The synthetic engine's default clock: the shipped `l4x4-14b-w4kv8` profile without its
    start-up (a synthetic question starts at once)."""
    return dataclasses.replace(load_profile(DEFAULT_PACE_PROFILE), startup_s=0.0)


class SyntheticEngine:
    """Generates plausible samples per question (see module docstring), paced by `model`.

    Args:
        answers: the true answer per question id (default: `synthetic_truth`).
        seed: the generator's seed.
        model: time model (default `default_pace_profile()`); chunk_tokens/speedup as for
            `ReplayEngine`.
    """

    name = "synthetic"
    backend = "synthetic"
    virtual_clock = True

    def __init__(
        self,
        *,
        answers: Mapping[str, int] | None = None,
        seed: int = 0,
        model: HardwareProfile | None = None,
        params: SyntheticParams = SyntheticParams(),
        chunk_tokens: int = 20,
        speedup: float = math.inf,
    ) -> None:
        self.answers = dict(answers or {})
        self.seed = seed
        self.model = model if model is not None else default_pace_profile()
        self.params = params
        self.chunk_tokens = chunk_tokens
        self.speedup = speedup
        self.startup_s = float(self.model.startup_s)
        self.question_overhead_s = float(self.model.question_overhead_s)

    def truth(self, question_id: str) -> int:
        return self.answers.get(question_id, synthetic_truth(self.seed, question_id))

    def scripts(self, question_id: str, prompts: Sequence[PromptSpec]) -> list[SampleScript]:
        """The samples a question's prompts would generate (pure function of seed and ids)."""
        truth = self.truth(question_id)
        qrng = np.random.default_rng(_seed_of("question", self.seed, question_id))
        distractors = [int(v) for v in qrng.integers(0, 1000, size=self.params.distractors) if v != truth]
        return [
            sample_script(np.random.default_rng(_seed_of("sample", self.seed, question_id, p.sample)),
                          p.kind, p.sample, truth, distractors, self.params)
            for p in prompts
        ]

    async def start_question(
        self, question_id: str, question: str, prompts: Sequence[PromptSpec], sampling: SamplingSettings
    ) -> PacedStream:
        return PacedStream(self.scripts(question_id, prompts), self.model, chunk_tokens=self.chunk_tokens,
                           max_new_tokens=sampling.max_new_tokens, speedup=self.speedup)

    async def restart(self) -> None:
        """Nothing to rebuild: every question gets a fresh stream (see `Engine.restart`)."""
        return None

    async def close(self) -> None:
        return None


__all__ = ["SyntheticEngine", "SyntheticParams", "sample_script", "synthetic_truth"]
