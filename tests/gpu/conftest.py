"""The real lmdeploy path on a GPU (`python -m pytest -m gpu tests/gpu`, docs/gpu-notes.md): one
tiny AWQ Qwen2 built on the spot and one engine for the module, shared by the checks.

Skipped unless lmdeploy is importable and CUDA is there. `AIMO_GPU_FAKE=1` runs the same checks
on CPU against the lmdeploy test double (tests/helpers/fake_lmdeploy.py) instead, so the checks
themselves are tested before device time is spent on them (tests/test_gpu_suite.py)."""

from __future__ import annotations

import asyncio
import importlib.util
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

FAKE = os.environ.get("AIMO_GPU_FAKE") == "1"


def _cuda() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


def _why_skip() -> str | None:
    if FAKE:
        return None
    if importlib.util.find_spec("lmdeploy") is None:
        return "lmdeploy is not installed (the [gpu] extra; AIMO_GPU_FAKE=1 for the test double)"
    if not _cuda():
        return "no CUDA device (AIMO_GPU_FAKE=1 runs these against the lmdeploy test double)"
    return None


def pytest_report_header(config: pytest.Config) -> str:
    """What the GPU checks ran on, in the session header."""
    if FAKE:
        return "gpu checks: lmdeploy test double (AIMO_GPU_FAKE=1)"
    parts = []
    for name in ("torch", "lmdeploy"):
        try:
            parts.append(f"{name} {getattr(__import__(name), '__version__', '?')}")
        except ImportError:
            parts.append(f"{name} missing")
    if _cuda():
        import torch

        parts.append(torch.cuda.get_device_name(0))
    return "gpu checks: " + ", ".join(parts)


@pytest.fixture(scope="session")
def lmdeploy_module() -> Iterator[Any]:
    """The real lmdeploy, or the test double installed as `lmdeploy` (no TurboMind build, as
    on the lent GPU image)."""
    reason = _why_skip()
    if reason:
        pytest.skip(reason)
    if not FAKE:
        import lmdeploy

        yield lmdeploy
        return
    from fake_lmdeploy import FakeTokenizer, installed_fake_lmdeploy

    def like_a_random_model(index: int, prompt: Any) -> list[str]:
        """Gibberish that ends on EOS after 60-200 tokens (unless ignore_eos), as the tiny
        random model's samples do."""
        return [f"w{k} " for k in range(60 + (index * 37) % 141)]

    with installed_fake_lmdeploy(step_s=0.0005, tokenizer=FakeTokenizer(),
                                 script=like_a_random_model) as fake:
        yield fake


@pytest.fixture(scope="session")
def model_dir(lmdeploy_module: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny random Qwen2, AWQ-packed (recorder/tiny_model.py: hidden 256, 4 layers)."""
    from aimo.recorder.tiny_model import build_tiny_qwen2

    return build_tiny_qwen2(tmp_path_factory.mktemp("model") / "tiny-qwen2-awq")


def _make_engine(model: Path, backend: str = "pytorch", **options: Any) -> Any:
    """The smoke settings: tp 1, int8 KV cache, AWQ weights, max_batch 16, half the free memory."""
    from aimo.solver.engines.lmdeploy_engine import LmdeployEngine

    settings: dict[str, Any] = dict(tp=1, quant_policy=8, model_format="awq", max_batch=16,
                                    cache_max_entry_count=0.5)
    return LmdeployEngine(str(model), backend, **{**settings, **options})


@pytest.fixture(scope="session")
def make_engine(lmdeploy_module: Any) -> Any:
    """`make_engine(model, backend='pytorch', **options)`: an engine with the smoke settings."""
    return _make_engine


@pytest.fixture(scope="session")
def engine(model_dir: Path) -> Iterator[Any]:
    """One PyTorch engine for the session (a start costs about a minute on the GPU)."""
    eng = _make_engine(model_dir)
    try:
        yield eng
    finally:
        asyncio.run(eng.close())
