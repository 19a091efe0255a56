"""Small hand-built traces and profiles for replay tests (no store needed)."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import numpy as np

from aimo.core.hardware import HardwareProfile, load_profile
from aimo.core.traces import SOURCE_BOXED, SOURCE_CODE, ProblemTrace, SampleTrace

AnswerSpec = tuple[int, int | None, str] | tuple[int, int | None, str, bool, float]


def sample(index: int, kind: str, n_tokens: int, answers: Sequence[AnswerSpec] = (),
           *, finish: str = "stop", prompt_tokens: int = 0) -> SampleTrace:
    """A recorded sample; answers are (token, value, source[, code_ok, exec_ms])."""
    rows = [a if len(a) == 5 else (*a, a[2] == "boxed" or a[1] is not None, 0.0) for a in answers]
    rows.sort(key=lambda r: r[0])
    return SampleTrace(
        sample=index, kind=kind, n_tokens=n_tokens, finish_reason=finish,  # type: ignore[arg-type]
        prompt_tokens=prompt_tokens, end_s=math.nan,
        ans_token=np.array([r[0] for r in rows], np.int32),
        ans_time=np.full(len(rows), np.nan),
        ans_value=np.array([-1 if r[1] is None else r[1] for r in rows], np.int16),
        ans_source=np.array([SOURCE_CODE if r[2] == "code" else SOURCE_BOXED for r in rows], np.int8),
        ans_code_ok=np.array([bool(r[3]) for r in rows], np.bool_),
        ans_exec_ms=np.array([r[4] for r in rows], np.float32),
    )


def problem(pid: str, answer: int | None, samples: Sequence[SampleTrace], position: int = 0) -> ProblemTrace:
    return ProblemTrace(run_id="test", problem_id=pid, position=position, answer=answer,
                        samples=tuple(samples))


def flat_profile(step_s: float = 0.01, *, max_batch: int = 64, overlap: str = "parallel",
                 beta: float = 0.0, gamma: float = 0.0) -> HardwareProfile:
    """A profile whose decode step costs `step_s` (+ beta·b + gamma·C), with no prefill/start-up."""
    base = load_profile("l4x4-14b-w4kv8")
    return dataclasses.replace(
        base, name="flat-test", a=step_s, beta=beta, gamma=gamma, prefill_s_per_token=0.0,
        startup_s=0.0, max_batch=max_batch, code_overlap=overlap, question_overhead_s=0.0,
    )
