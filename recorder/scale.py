"""A length-scaled copy of a trace store's run: every sample and answer position times `scale`.

Why: a hardware-in-the-loop run (docs/hil.md) decodes every recorded token on the real GPU; a
synthetic r1-14b store's 2k–16k-token samples take far longer than the device time one call has.
Scaling lengths (and answer positions, so answers keep their relative place) by e.g. 0.25 keeps
the store's answer structure while its batch × context stays in the profile's measured range. The
copy is written to disk, and both the HIL run and the simulator replay *that* store, so the
comparison is like for like; its run records `length_scale` (multiplied through repeated scaling)
and where it came from.

What changes: `n_tokens` → max(1, round(n·scale)); `token_pos` → min(n', max(1, ceil(pos·scale)));
decode times (`start_s`, `end_s`, a boxed answer's `t_s`, a code answer's time before its run)
scale alike; code execution times (`exec_ms`) and prompt lengths are kept. Chunks are not copied
(their text and times belonged to the unscaled stream; the simulator never reads them).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa

from aimo.core.errors import InputError
from aimo.core.traces import SOURCE_CODE, ProblemTrace, RunInfo, SampleTrace


@dataclass(frozen=True)
class ScaleSummary:
    """What `scale_store` wrote."""

    path: Path
    run_id: str
    scale: float
    questions: int
    tokens_before: int
    tokens_after: int

    def render(self) -> str:
        return (f"wrote {self.path} (run {self.run_id}): {self.questions} questions, length scale "
                f"{self.scale:g}, {self.tokens_before:,} -> {self.tokens_after:,} generated tokens")


def scaled_tokens(n: int, scale: float) -> int:
    """A sample's scaled length (at least one token)."""
    return max(1, int(round(n * scale)))


def scaled_position(pos: int, scale: float, n_scaled: int) -> int:
    """An answer's scaled token position, within the scaled sample."""
    return min(n_scaled, max(1, int(math.ceil(pos * scale - 1e-9))))


def _t(x: float, scale: float) -> float | None:
    return None if not math.isfinite(x) else round(x * scale, 6)


def _question_tables(p: ProblemTrace, scale: float) -> tuple[pa.Table, pa.Table, pa.Table]:
    s_rows: dict[str, list] = {k: [] for k in ("sample_idx", "kind", "prompt_tokens", "start_s", "end_s",
                                               "n_tokens", "finish_reason")}
    a_rows: dict[str, list] = {k: [] for k in ("sample_idx", "token_pos", "t_s", "source", "value",
                                               "code_ok", "exec_ms", "error")}
    for s in p.samples:
        n = scaled_tokens(int(s.n_tokens), scale)
        for key, v in zip(s_rows, (s.sample, s.kind, int(s.prompt_tokens), None, _t(float(s.end_s), scale),
                                   n, s.finish_reason)):
            s_rows[key].append(v)
        _answers(s, scale, n, a_rows)
    samples = pa.table({
        "sample_idx": pa.array(s_rows["sample_idx"], pa.int32()), "kind": pa.array(s_rows["kind"], pa.string()),
        "prompt_tokens": pa.array(s_rows["prompt_tokens"], pa.int32()),
        "start_s": pa.array(s_rows["start_s"], pa.float64()), "end_s": pa.array(s_rows["end_s"], pa.float64()),
        "n_tokens": pa.array(s_rows["n_tokens"], pa.int32()),
        "finish_reason": pa.array(s_rows["finish_reason"], pa.string()),
    })
    chunks = pa.table({"sample_idx": pa.array([], pa.int32()), "seq": pa.array([], pa.int32()),
                       "t_s": pa.array([], pa.float64()), "n_tokens": pa.array([], pa.int32()),
                       "text": pa.array([], pa.string())})
    answers = pa.table({
        "sample_idx": pa.array(a_rows["sample_idx"], pa.int32()),
        "token_pos": pa.array(a_rows["token_pos"], pa.int32()), "t_s": pa.array(a_rows["t_s"], pa.float64()),
        "source": pa.array(a_rows["source"], pa.string()), "value": pa.array(a_rows["value"], pa.int32()),
        "code_ok": pa.array(a_rows["code_ok"], pa.bool_()), "exec_ms": pa.array(a_rows["exec_ms"], pa.float64()),
        "error": pa.array(a_rows["error"], pa.string()),
    })
    return samples, chunks, answers


def _answers(s: SampleTrace, scale: float, n: int, out: dict[str, list]) -> None:
    for j in range(s.n_answers):
        code = int(s.ans_source[j]) == SOURCE_CODE
        exec_ms = float(s.ans_exec_ms[j])
        t = float(s.ans_time[j])
        run_s = exec_ms / 1000.0 if code and math.isfinite(exec_ms) else 0.0
        t_s = None if not math.isfinite(t) else round((t - run_s) * scale + run_s, 6)
        value = int(s.ans_value[j])
        row = (s.sample, scaled_position(int(s.ans_token[j]), scale, n), t_s, "code" if code else "boxed",
               value if value >= 0 else None, bool(s.ans_code_ok[j]) if code else None,
               exec_ms if code and math.isfinite(exec_ms) else None,
               None if not code or bool(s.ans_code_ok[j]) else "recorded failure")
        for key, v in zip(out, row):
            out[key].append(v)


def scale_store(src: str | Path, out: str | Path, scale: float, *, run_id: str | None = None) -> ScaleSummary:
    """Write a new store at `out` with `src`'s run scaled by `scale` (0 < scale ≤ 1).

    Raises:
        InputError: a bad scale, `out` exists, or `src` is not a store (naming the file and field).
    """
    from aimo.core.store import ProblemRow, TraceWriter, list_runs, load_problem_traces

    if not (isinstance(scale, (int, float)) and math.isfinite(scale) and 0 < scale <= 1):
        raise InputError("<scale>", "length_scale", f"must be in (0, 1], got {scale!r}")
    dst = Path(out)
    if dst.exists():
        raise InputError(str(dst), "out", "already exists; a scaled copy is written to a new store")
    problems = load_problem_traces(src, run_id)
    if not problems:
        raise InputError(str(src), None, "no completed questions in the store")
    rid = problems[0].run_id
    source = next(r for r in list_runs(src) if r.run_id == rid)
    before = float((source.gen_config or {}).get("length_scale") or 1.0)
    info = RunInfo(
        run_id=f"{rid}-x{scale:g}", kind=source.kind if source.kind != "solve" else "import",  # type: ignore[arg-type]
        model=source.model, backend=source.backend, quantization=source.quantization,
        hardware=source.hardware,
        gen_config={**(source.gen_config or {}), "length_scale": before * scale,
                    "scaled_from": {"store": str(src), "run_id": rid, "scale": scale}},
        notes=f"lengths of {rid} scaled by {scale:g} (recorder/scale.py)",
    )
    dst.parent.mkdir(parents=True, exist_ok=True)
    tokens_before = tokens_after = 0
    try:
        writer = TraceWriter(dst)
        writer.start_run(info)
        for p in problems:
            samples, chunks, answers = _question_tables(p, scale)
            writer.write_question(info.run_id, ProblemRow(p.problem_id, p.position, _question(src, rid, p), p.answer),
                                  samples, chunks, answers, wall_s=None)
            tokens_before += sum(int(s.n_tokens) for s in p.samples)
            tokens_after += int(np.sum(samples.column("n_tokens").to_numpy()))
        writer.finish_run(info.run_id)
    except BaseException:
        for leftover in (dst, dst.with_name(dst.name + ".wal")):
            leftover.unlink(missing_ok=True)
        raise
    return ScaleSummary(dst, info.run_id, scale, len(problems), tokens_before, tokens_after)


def _question(src: str | Path, run_id: str, p: ProblemTrace) -> str:
    """The question text of `p` (kept: a HIL run's prompts are built from it)."""
    from aimo.core.store.queries import question_text

    return question_text(src, run_id, p.problem_id)


__all__ = ["ScaleSummary", "scale_store", "scaled_position", "scaled_tokens"]
