"""The GPU suite's checks, run on CPU against the lmdeploy test double (`AIMO_GPU_FAKE=1`), so a
broken check is found here and not on device time; and skipped, saying why, without it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _pytest_gpu(env_extra: dict[str, str]) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "AIMO_GPU_FAKE"}
    env.update(env_extra)
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-m", "gpu", "tests/gpu", "-q", "-rs",
         "-p", "no:cacheprovider"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_gpu_checks_pass_against_the_lmdeploy_double() -> None:
    run = _pytest_gpu({"AIMO_GPU_FAKE": "1"})
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    assert "6 passed" in run.stdout and "skipped" not in run.stdout, run.stdout[-2000:]


def test_gpu_checks_skip_without_lmdeploy_and_cuda() -> None:
    try:
        import torch

        if torch.cuda.is_available():
            pytest.skip("a CUDA device is here: the suite would run for real")
    except ImportError:
        pass
    run = _pytest_gpu({})
    assert run.returncode == 0, run.stdout[-4000:]
    assert "6 skipped" in run.stdout and ("lmdeploy is not installed" in run.stdout
                                          or "no CUDA device" in run.stdout)
