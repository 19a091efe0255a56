"""Plain data that flows between the trace store, the simulator and the live solver.

Per sample, the simulator needs only a few event arrays (answers with their token position,
time, value and source), never the raw chunks; these dataclasses are that contract.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from aimo.core.errors import InputError

SampleKind = Literal["cot", "code"]
FinishReason = Literal["stop", "length", "abort", "error"]
AnswerSource = Literal["boxed", "code"]

SOURCE_BOXED = 0
SOURCE_CODE = 1
SOURCE_CODES: dict[str, int] = {"boxed": SOURCE_BOXED, "code": SOURCE_CODE}
NO_VALUE = -1  # in `ans_value`: nothing parsed, or the code run failed


@dataclass(frozen=True)
class LogprobSetting:
    """How a run asked its engine for per-token logprobs, so timings can be corrected for the cost.

    `top_k`: logprobs of the k most likely tokens per step; `mode`: the engine's logprob mode
    (lmdeploy PyTorch `logprobs_mode`, e.g. 'raw_logprobs'; 'imported'/'synthetic' elsewhere);
    `backend`: the engine that produced them ('pytorch', 'turbomind', ...; None when unknown).
    """

    top_k: int
    mode: str
    backend: str | None = None

    def to_json(self) -> dict:
        """The setting as the JSON object stored in `runs.logprobs`."""
        return {"top_k": self.top_k, "mode": self.mode, "backend": self.backend}

    @classmethod
    def from_json(cls, data: dict) -> LogprobSetting:
        """Inverse of `to_json` (unknown keys ignored)."""
        return cls(int(data["top_k"]), str(data["mode"]), data.get("backend"))


@dataclass(frozen=True)
class RunInfo:
    """One run of the trace store (a recording, a live solve, an import or a synthetic store)."""

    run_id: str
    kind: Literal["record", "solve", "import", "synthetic"]
    model: str | None = None
    backend: str | None = None
    quantization: str | None = None
    hardware: str | None = None
    gen_config: dict = field(default_factory=dict)
    policy: dict | None = None
    notes: str | None = None
    logprobs: LogprobSetting | None = None  # how token confidence was asked for; None: it was not


@dataclass(frozen=True, eq=False)
class SampleTrace:
    """Event arrays of one recorded sample; answer arrays are sorted by token position.

    Units: tokens are cumulative generated tokens; times are seconds since question start
    (NaN where the source had no timestamps); `ans_value` is 0..999 or NO_VALUE.
    """

    sample: int
    kind: SampleKind
    n_tokens: int
    finish_reason: FinishReason
    prompt_tokens: int
    end_s: float
    ans_token: np.ndarray  # int32
    ans_time: np.ndarray  # float64
    ans_value: np.ndarray  # int16
    ans_source: np.ndarray  # int8: SOURCE_BOXED | SOURCE_CODE
    ans_code_ok: np.ndarray  # bool
    ans_exec_ms: np.ndarray  # float32 (NaN for boxed answers)
    # Per-token confidence (None when the store has none), float32, length n_tokens:
    # DeepConf's token confidence C_i = -mean of the top-k logprobs at token i (higher = surer)
    token_conf: np.ndarray | None = None
    # entropy (nats) of the renormalised top-k distribution at token i
    token_entropy: np.ndarray | None = None

    @property
    def n_answers(self) -> int:
        return int(self.ans_token.shape[0])


@dataclass(frozen=True, eq=False)
class ProblemTrace:
    """All recorded samples of one problem in one run, in sample-index order."""

    run_id: str
    problem_id: str
    position: int
    answer: int | None
    samples: tuple[SampleTrace, ...]

    def of_kind(self, kind: SampleKind) -> tuple[SampleTrace, ...]:
        return tuple(s for s in self.samples if s.kind == kind)


class MissingConfidence(InputError, ValueError):
    """A policy reads token confidence, but a sample of the traces has none (also a ValueError,
    which the simulator raised before: callers catching either see it)."""


def require_confidence(problems: Iterable[ProblemTrace], policy_name: str) -> None:
    """Refuse traces on which a confidence-reading policy cannot run: every sample must carry
    `token_conf` and `token_entropy`. The one check of the reference replay, the fast path and
    the live solver's replay engine, so all three refuse the same store with the same words.

    Raises:
        MissingConfidence: naming the run, the field (`sample_confidence.token_conf` or
            `.token_entropy`), the problem and the sample of the first sample without it.
    """
    for problem in problems:
        for s in problem.samples:
            if s.token_conf is not None and s.token_entropy is not None:
                continue
            column = "token_conf" if s.token_conf is None else "token_entropy"
            raise MissingConfidence(
                f"run {problem.run_id}", f"sample_confidence.{column}",
                f"policy {policy_name!r} reads token confidence, but sample {s.sample} of problem "
                f"{problem.problem_id!r} has no {column} (a store recorded without logprobs or "
                "before confidence was stored, or a partial import): record with --logprobs, "
                "synthesise with --confidence, or use a policy that reads no confidence")

