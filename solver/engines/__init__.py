"""Engines: the interface the control loop drives (`base`), and its implementations.

CPU engines are imported here: `ReplayEngine` (recorded runs paced by a hardware time model) and
`SyntheticEngine` (seeded plausible samples). The lmdeploy engine (GPU, optional `[gpu]` extra) is
loaded lazily by `lmdeploy_engine_class()`, so `import solver.engines` works without lmdeploy.
"""

from __future__ import annotations

import importlib
import importlib.util
from typing import Any

from aimo.core.errors import AimoError
from aimo.solver.engines.base import Chunk, Engine, FinishReason, PromptSpec, QuestionStream, SamplingSettings
from aimo.solver.engines.replay import (
    PacedStream,
    RecordedCode,
    ReplayEngine,
    SampleScript,
    Wake,
    recorded_samples,
    script_from_trace,
)
from aimo.solver.engines.synthetic import SyntheticEngine, SyntheticParams, default_pace_profile

LMDEPLOY_BACKENDS = ("turbomind", "pytorch")


class EngineUnavailable(AimoError, RuntimeError):
    """The engine asked for cannot run here (e.g. lmdeploy is not installed)."""


def lmdeploy_engine_class() -> Any:
    """`solver.engines.lmdeploy_engine.LmdeployEngine`, imported on first use.

    Raises:
        EngineUnavailable: lmdeploy (the `[gpu]` extra) is not installed, or the adapter is missing.
    """
    if importlib.util.find_spec("lmdeploy") is None:
        raise EngineUnavailable(
            "the turbomind/pytorch backends need lmdeploy, which is not installed: "
            "pip install 'aimo-policy-lab[gpu]' (on a machine with a CUDA GPU)"
        )
    try:
        module = importlib.import_module("aimo.solver.engines.lmdeploy_engine")
    except ImportError as exc:
        raise EngineUnavailable(f"cannot load the lmdeploy engine adapter: {exc}") from exc
    return module.LmdeployEngine


__all__ = [
    "LMDEPLOY_BACKENDS",
    "Chunk",
    "Engine",
    "EngineUnavailable",
    "FinishReason",
    "PacedStream",
    "PromptSpec",
    "QuestionStream",
    "RecordedCode",
    "ReplayEngine",
    "SampleScript",
    "SamplingSettings",
    "SyntheticEngine",
    "SyntheticParams",
    "Wake",
    "default_pace_profile",
    "lmdeploy_engine_class",
    "recorded_samples",
    "script_from_trace",
]
