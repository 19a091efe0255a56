"""`RunRecorder`: buffers one question's chunks, answers and sample ends, and commits them to a trace
store in one transaction (`core.store.TraceWriter.write_question`).

Independent of the policy, so `aimo solve` (run kind `solve`) and `aimo record` (kind `record`)
share it. Per-chunk work is a few list appends; the Arrow tables are built once per question.
When the run asked for logprobs (`RunInfo.logprobs`), each chunk's per-token dicts are kept and
turned into the sample's confidence arrays at commit (`solver.engines.logprobs`).
Not thread-safe: one recorder per run, fed from one event loop.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from aimo.solver.engines.base import Chunk
from aimo.solver.engines.logprobs import token_confidence
from aimo.core.store import LiveResult, ProblemRow, SampleConfidence, TraceWriter
from aimo.core.traces import RunInfo

# How long a question's commit may wait for a reader to let go of the store before it is spooled
# beside the store instead (core.store.spool): the solve never waits longer than this.
SPOOL_AFTER_S = 0.5

_SAMPLE_TYPES = {
    "sample_idx": pa.int32(), "kind": pa.string(), "prompt_tokens": pa.int32(),
    "start_s": pa.float64(), "end_s": pa.float64(), "n_tokens": pa.int32(),
    "finish_reason": pa.string(),
}
_CHUNK_TYPES = {
    "sample_idx": pa.int32(), "seq": pa.int32(), "t_s": pa.float64(), "n_tokens": pa.int32(),
    "text": pa.string(),
}
_ANSWER_TYPES = {
    "sample_idx": pa.int32(), "token_pos": pa.int32(), "t_s": pa.float64(), "source": pa.string(),
    "value": pa.int32(), "code_ok": pa.bool_(), "exec_ms": pa.float64(), "error": pa.string(),
}


def _table(columns: dict[str, list], types: dict[str, pa.DataType]) -> pa.Table:
    return pa.table({name: pa.array(columns[name], types[name]) for name in types})


class RunRecorder:
    """Records a run into the DuckDB trace store at `path`, a question at a time.

    Args:
        path: the store (created if missing).
        run: the run's identity; `start_run` is called at once (`resume` keeps an existing run
            and drops its uncommitted questions).
    Times are seconds since the question started; answer values 0..999 or None (nothing parsed,
    or a failed code run: `code_ok` False).
    """

    def __init__(self, path: str | Path, run: RunInfo, *, resume: bool = False,
                 budget_s: float | None = None, spool_after_s: float = SPOOL_AFTER_S) -> None:
        writer = TraceWriter(path, spool_after_s=spool_after_s)
        writer.start_run(run, resume=resume, budget_s=budget_s)
        self._attach(writer, run)

    def _attach(self, writer: TraceWriter, run: RunInfo) -> None:
        """Write into `writer`'s started `run` with fresh counters and an empty question buffer."""
        self.writer = writer
        self.run = run
        self.confidence_missing = 0  # samples whose engine gave fewer logprobs than tokens
        self.spooled = 0
        self._reset()

    def question(self) -> RunRecorder:
        """A recorder for one question that shares this run's writer but has its own buffer: a
        question's late code results land in it while the next question streams (aimo record
        overlaps them). Commit it with its own `commit_question`."""
        child = object.__new__(RunRecorder)  # the run is started already: no __init__
        child._attach(self.writer, self.run)
        return child

    def _reset(self) -> None:
        self._seq: dict[int, int] = {}
        self._samples: dict[str, list] = {k: [] for k in _SAMPLE_TYPES}
        self._chunks: dict[str, list] = {k: [] for k in _CHUNK_TYPES}
        self._answers: dict[str, list] = {k: [] for k in _ANSWER_TYPES}
        self._logprobs: dict[int, list] = {}

    @property
    def path(self) -> Path:
        return self.writer.path

    def on_chunk(self, chunk: Chunk) -> None:
        """One chunk of the question in flight (its seq is numbered per sample from 0)."""
        seq = self._seq.get(chunk.sample, 0)
        self._seq[chunk.sample] = seq + 1
        c = self._chunks
        c["sample_idx"].append(chunk.sample)
        c["seq"].append(seq)
        c["t_s"].append(chunk.t)
        c["n_tokens"].append(chunk.n_tokens)
        c["text"].append(chunk.text)
        if chunk.logprobs is not None and self.run.logprobs is not None:
            self._logprobs.setdefault(chunk.sample, []).extend(chunk.logprobs)

    def on_answer(self, sample: int, token: int, t: float | None, source: str, value: int | None,
                  code_ok: bool | None = None, exec_ms: float | None = None,
                  error: str | None = None) -> None:
        """One answer: a box (source 'boxed') or a finished code run (source 'code')."""
        a = self._answers
        a["sample_idx"].append(sample)
        a["token_pos"].append(token)
        a["t_s"].append(t)
        a["source"].append(source)
        a["value"].append(value if value is not None and 0 <= value <= 999 else None)
        a["code_ok"].append(code_ok)
        a["exec_ms"].append(exec_ms)
        a["error"].append(None if error is None else error[:2000])

    def on_sample_end(self, sample: int, kind: str, prompt_tokens: int, start_s: float | None,
                      end_s: float | None, n_tokens: int, finish_reason: str) -> None:
        """One sample's row (call once per sample that started)."""
        s = self._samples
        s["sample_idx"].append(sample)
        s["kind"].append(kind)
        s["prompt_tokens"].append(prompt_tokens)
        s["start_s"].append(start_s)
        s["end_s"].append(end_s)
        s["n_tokens"].append(n_tokens)
        s["finish_reason"].append(finish_reason)

    def commit_question(self, problem: ProblemRow, wall_s: float | None,
                        live: LiveResult | None = None) -> None:
        """Write the buffered question in one transaction and start a fresh buffer.

        `live` is what the solver answered (kind 'solve'). If a reader holds the store, the
        question is spooled beside it and committed later (never dropped, never waited for).
        Chunks and answers of samples without a sample row (never started) are dropped.
        """
        known = set(self._samples["sample_idx"])
        chunks, answers = self._chunks, self._answers
        if any(i not in known for i in chunks["sample_idx"]):
            keep = [j for j, i in enumerate(chunks["sample_idx"]) if i in known]
            chunks = {k: [v[j] for j in keep] for k, v in chunks.items()}
        if any(i not in known for i in answers["sample_idx"]):
            keep = [j for j, i in enumerate(answers["sample_idx"]) if i in known]
            answers = {k: [v[j] for j in keep] for k, v in answers.items()}
        try:
            outcome = self.writer.write_question(
                self.run.run_id, problem, _table(self._samples, _SAMPLE_TYPES),
                _table(chunks, _CHUNK_TYPES), _table(answers, _ANSWER_TYPES), wall_s=wall_s,
                confidence=self._confidence(),
                live=live,
            )
            self.spooled += outcome == "spooled"
        finally:
            self._reset()

    def _confidence(self) -> dict[int, SampleConfidence] | None:
        """Each ended sample's confidence from its logprob dicts: the first n_tokens of them (an
        engine may add the stop token's); a sample with fewer than n_tokens dicts has none."""
        if self.run.logprobs is None:
            return None
        out: dict[int, SampleConfidence] = {}
        for sample, n in zip(self._samples["sample_idx"], self._samples["n_tokens"]):
            steps = self._logprobs.get(sample, [])
            if len(steps) < n:
                self.confidence_missing += 1
                continue
            conf, entropy = token_confidence(steps[:n], self.run.logprobs.top_k)
            out[sample] = SampleConfidence(conf, entropy)
        return out

    def discard_question(self) -> None:
        """Drop the buffered question (e.g. it was not generated)."""
        self._reset()

    def finish(self, status: str = "complete") -> None:
        """Mark the run complete (or 'failed'); spooled behind its questions if the store is busy."""
        self.writer.finish_run(self.run.run_id, status)


__all__ = ["RunRecorder"]
