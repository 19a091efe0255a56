"""Plain rows crossing the trace-store boundary: a writer's input, `list_runs`'s output."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np

from aimo.core.traces import LogprobSetting, RunInfo


@dataclass(frozen=True)
class ProblemRow:
    """One question of a run: its id, the order the run served it in, its text, its known answer
    (0..999, None when unknown)."""

    problem_id: str
    position: int
    question: str | None
    answer: int | None


@dataclass(frozen=True)
class RunSummary:
    """A `runs` row plus counts over its completed questions (those with a `questions_done` marker).

    `n_tokens` is the sum of generated tokens of those questions' samples; `created_at` is the
    store's local timestamp of `start_run`.
    """

    run_id: str
    kind: str
    model: str | None
    backend: str | None
    quantization: str | None
    hardware: str | None
    gen_config: dict
    policy: dict | None
    notes: str | None
    status: str
    created_at: datetime
    n_problems: int
    n_samples: int
    n_tokens: int
    n_answers: int
    logprobs: LogprobSetting | None = None  # NULL column or a store older than migration 003
    state: str = "finished"  # finished | failed | interrupted | running (core.store.run_state)
    writer_pid: int | None = None
    writer_host: str | None = None
    heartbeat_at: datetime | None = None
    finished_at: datetime | None = None
    budget_s: float | None = None

    @property
    def complete(self) -> bool:
        """Whether every question the run set out to write is in (its writer finished it)."""
        return self.state == "finished"

    @property
    def info(self) -> RunInfo:
        """The run as the `RunInfo` it was started with."""
        return RunInfo(
            run_id=self.run_id,
            kind=self.kind,  # type: ignore[arg-type]  # guarded by the schema's CHECK
            model=self.model,
            backend=self.backend,
            quantization=self.quantization,
            hardware=self.hardware,
            gen_config=dict(self.gen_config),
            policy=None if self.policy is None else dict(self.policy),
            notes=self.notes,
            logprobs=self.logprobs,
        )


@dataclass(frozen=True, eq=False)
class SampleConfidence:
    """Per-token confidence of one sample, as given to `TraceWriter.write_question`.

    `token_conf`: DeepConf's token confidence −mean(top-k logprobs) per generated token (≥ 0);
    `token_entropy`: entropy in nats of the renormalised top-k distribution per token, or None.
    Both have the sample's `n_tokens` values; the store keeps them as float16.
    """

    token_conf: np.ndarray
    token_entropy: np.ndarray | None = None


@dataclass(frozen=True)
class LiveResult:
    """What the live solver did with one question: the answer it submitted (0..999), why it
    stopped, the speed level it ran at, the competition clock when the question started, and
    when the loop decided its stop (`decided_s`, on the question's stream clock; None: it ended
    with every sample)."""

    final_answer: int | None
    stop_reason: str | None
    level: int | None
    start_s: float | None
    decided_s: float | None = None
