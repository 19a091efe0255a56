"""Benchmark of the DuckDB trace store: bulk chunk-insert rate, event-loader time, and what
per-token confidence (migration 003) costs in file size and load time.

Builds a realistic store in a temporary directory (lmdeploy-like streams: one chunk row per
1-4 tokens) and prints rows/s and load seconds; then the same questions again with float16
confidence arrays (token_conf and token_entropy for every token) and prints both stores' sizes and
load times, with and without reading the confidence. Run:
`python bench/bench_store.py [--quick] [--no-confidence]`.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

from aimo.core.store import (
    ProblemRow,
    SampleConfidence,
    TraceWriter,
    init_store,
    load_chunks,
    load_problem_traces,
    load_sample_text,
)
from aimo.core.store.writer import WRITER_SETTINGS
from aimo.core.traces import RunInfo

INSERT_CHUNKS = """
INSERT INTO chunks (run_id, problem_id, sample_idx, seq, t_s, n_tokens, text)
SELECT $run_id, $problem_id, sample_idx, seq, t_s, n_tokens, text FROM bench_chunks
"""


@dataclass(frozen=True)
class Question:
    """The three frames of one synthetic question."""

    problem: ProblemRow
    samples: pd.DataFrame
    chunks: pa.Table
    answers: pd.DataFrame


def make_confidence(rng: np.random.Generator, samples: pd.DataFrame) -> dict[int, SampleConfidence]:
    """Per-token arrays of every sample: token confidence around 12 (top-k of k=8 on a 14B-like
    model), entropy in 0..ln 8 with most tokens near 0, as the recorder would store them."""
    out: dict[int, SampleConfidence] = {}
    for idx, n in zip(samples["sample_idx"], samples["n_tokens"]):
        conf = rng.gamma(16.0, 0.75, int(n))
        entropy = np.minimum(rng.exponential(0.3, int(n)), np.log(8))
        out[int(idx)] = SampleConfidence(conf, entropy)
    return out


def write_store(path: Path, questions: list[Question], confidence: list | None) -> float:
    """Write one run of `questions` (with their confidence when given); return the wall time."""
    writer = TraceWriter(path)
    writer.start_run(RunInfo("bench", "synthetic", model="bench"))
    start = time.perf_counter()
    for i, q in enumerate(questions):
        conf = None if confidence is None else confidence[i]
        writer.write_question(
            "bench", q.problem, q.samples, q.chunks, q.answers, wall_s=1.0, confidence=conf
        )
    elapsed = time.perf_counter() - start
    writer.finish_run("bench")
    return elapsed


def bench_confidence(directory: Path, questions: list[Question], plain: Path, args) -> None:
    """(3): size and load time of the store with confidence against the one without."""
    rng = np.random.default_rng(args.seed + 1)
    confidence = [make_confidence(rng, q.samples) for q in questions]
    n_tok = sum(int(q.samples["n_tokens"].sum()) for q in questions)
    path = directory / "store-confidence.duckdb"
    write_s = write_store(path, questions, confidence)
    mib = {name: p.stat().st_size / 2**20 for name, p in (("plain", plain), ("conf", path))}
    print(
        f"(3) confidence (token_conf + token_entropy, float16, {n_tok:,} tokens): store "
        f"{mib['conf']:.1f} MiB vs {mib['plain']:.1f} MiB without "
        f"(+{mib['conf'] - mib['plain']:.1f} MiB; 2 arrays x 2 bytes x tokens = "
        f"{4 * n_tok / 2**20:.1f} MiB); writing took {write_s:.1f} s"
    )
    plain_s, plain_cpu = best_wall_and_cpu(args.repeats, lambda: load_problem_traces(plain))
    with_s, with_cpu = best_wall_and_cpu(args.repeats, lambda: load_problem_traces(path))
    skip_s, skip_cpu = best_wall_and_cpu(
        args.repeats, lambda: load_problem_traces(path, confidence=False)
    )
    print(
        f"    load_problem_traces, best of {args.repeats} wall (CPU) s: store without confidence "
        f"{plain_s:.3f} ({plain_cpu:.3f}); store with confidence: {with_s:.3f} ({with_cpu:.3f}) "
        f"reading it, {skip_s:.3f} ({skip_cpu:.3f}) with confidence=False"
    )


def make_vocab(rng: np.random.Generator, size: int = 8000) -> pa.Array:
    """A token vocabulary of word pieces (1-8 letters, most with a leading space, some digits,
    LaTeX and newlines), as an Arrow string array; frequent tokens come first."""
    letters = np.frombuffer(b"abcdefghijklmnopqrstuvwxyz", np.uint8)
    pieces = []
    for _ in range(size):
        word = letters[rng.integers(0, 26, int(rng.integers(1, 9)))].tobytes().decode()
        pieces.append((" " if rng.random() < 0.7 else "") + word)
    pieces[:12] = [" the", ",", ".", "\n", " of", " =", " $", "\\", "{", "}", " x", "2"]
    return pa.array(pieces, pa.string())


def _stream_text(rng: np.random.Generator, vocab: pa.Array, chunk_tokens: np.ndarray) -> pa.Array:
    """Chunk texts: chunk i concatenates `chunk_tokens[i]` Zipf-distributed vocabulary tokens."""
    ids = np.minimum(rng.zipf(1.2, int(chunk_tokens.sum())) - 1, len(vocab) - 1)
    tokens = vocab.take(pa.array(ids))  # one contiguous data buffer, token j at offsets[j:j+2]
    token_offsets = np.frombuffer(tokens.buffers()[1], np.int32)[: len(tokens) + 1]
    bounds = np.zeros(chunk_tokens.size + 1, np.int64)
    np.cumsum(chunk_tokens, out=bounds[1:])
    offsets = token_offsets[bounds] - token_offsets[0]
    data = tokens.buffers()[2][int(token_offsets[0]) :]
    offsets_buffer = pa.py_buffer(offsets.astype(np.int32))
    return pa.StringArray.from_buffers(chunk_tokens.size, offsets_buffer, data)


def make_question(
    rng: np.random.Generator, vocab: pa.Array, position: int, n_samples: int, mean_tokens: int
) -> Question:
    """One question of `n_samples` streams of about `mean_tokens` tokens, 1-4 tokens per chunk,
    ~30 tok/s, with 1-3 answers per sample."""
    idx_parts, seq_parts, tok_parts, time_parts = [], [], [], []
    sample_rows, answer_rows = [], []
    for s in range(n_samples):
        total = int(np.clip(rng.normal(mean_tokens, mean_tokens * 0.2), 500, 16384))
        steps = rng.integers(1, 5, total // 2 + 8)
        tokens = np.cumsum(steps)
        tokens = tokens[: np.searchsorted(tokens, total) + 1]
        tokens[-1] = total
        times = np.cumsum(np.diff(tokens, prepend=0) / 30.0 * rng.uniform(0.8, 1.2, tokens.size))
        idx_parts.append(np.full(tokens.size, s, np.int32))
        seq_parts.append(np.arange(tokens.size, dtype=np.int32))
        tok_parts.append(tokens.astype(np.int32))
        time_parts.append(times)
        kind = "cot" if s % 2 == 0 else "code"
        reason = "length" if total >= 16384 else "stop"
        sample_rows.append((s, kind, 150, 0.0, float(times[-1]), total, reason))
        for pos in np.sort(rng.integers(1, total + 1, rng.integers(1, 4))):
            source = "code" if kind == "code" and rng.random() < 0.5 else "boxed"
            value = None if rng.random() < 0.1 else int(rng.integers(0, 1000))
            t = float(times[np.searchsorted(tokens, pos)])
            exec_ms = 120.0 if source == "code" else None
            answer_rows.append((s, int(pos), t, source, value, source == "code", exec_ms))
    tokens_all = np.concatenate(tok_parts)
    seq_all = np.concatenate(seq_parts)
    steps_all = np.diff(tokens_all, prepend=0)
    steps_all[seq_all == 0] = tokens_all[seq_all == 0]
    chunks = pa.table(
        {
            "sample_idx": np.concatenate(idx_parts),
            "seq": seq_all,
            "t_s": np.concatenate(time_parts),
            "n_tokens": tokens_all,
            "text": _stream_text(rng, vocab, steps_all),
        }
    )
    samples = pd.DataFrame(
        sample_rows,
        columns=[
            "sample_idx", "kind", "prompt_tokens", "start_s", "end_s", "n_tokens", "finish_reason"
        ],
    )
    answers = pd.DataFrame(
        answer_rows,
        columns=["sample_idx", "token_pos", "t_s", "source", "value", "code_ok", "exec_ms"],
    )
    answer = int(rng.integers(0, 1000))
    problem = ProblemRow(f"p{position:03d}", position, f"Question {position}?", answer)
    return Question(problem, samples, chunks, answers)


def bench_raw_insert(
    directory: Path, questions: list[Question], repeats: int
) -> tuple[float, float]:
    """Best wall and CPU rows/s of Arrow -> chunks inserts: one transaction per question on one
    open connection with the writer's settings, the closing checkpoint included."""
    best_wall = best_cpu = 0.0
    for r in range(repeats):
        path = directory / f"raw{r}.duckdb"
        init_store(path)
        con = duckdb.connect(str(path))
        con.execute(WRITER_SETTINGS)
        rows = 0
        wall, cpu = time.perf_counter(), time.process_time()
        for q in questions:
            con.execute("BEGIN TRANSACTION")
            con.register("bench_chunks", q.chunks)
            con.execute(INSERT_CHUNKS, {"run_id": "raw", "problem_id": q.problem.problem_id})
            con.unregister("bench_chunks")
            con.execute("COMMIT")
            rows += q.chunks.num_rows
        con.close()
        best_wall = max(best_wall, rows / (time.perf_counter() - wall))
        best_cpu = max(best_cpu, rows / (time.process_time() - cpu))
    return best_wall, best_cpu


def best_of(repeats: int, fn: object) -> float:
    """Smallest wall time of `repeats` calls of `fn`."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()  # type: ignore[operator]
        times.append(time.perf_counter() - start)
    return min(times)


def best_wall_and_cpu(repeats: int, fn: object) -> tuple[float, float]:
    """Smallest wall time and smallest CPU time (this process, all threads) of `repeats` calls:
    the CPU figure is steadier than wall time on a loaded machine."""
    walls, cpus = [], []
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        fn()  # type: ignore[operator]
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return min(walls), min(cpus)


def main() -> None:
    """Parse options, build the store, print machine info and the figures."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="10 problems x 8 samples")
    parser.add_argument("--problems", type=int, default=50)
    parser.add_argument("--samples", type=int, default=32)
    parser.add_argument("--tokens", type=int, default=12_000, help="mean tokens per sample")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--no-confidence", action="store_true", help="skip (3), the store with confidence"
    )
    args = parser.parse_args()
    if args.quick:
        args.problems, args.samples, args.repeats = 10, 8, 3

    print(
        f"platform: {platform.platform()}  python {platform.python_version()}  "
        f"cpus: {os.cpu_count()}"
    )
    print(
        f"processor: {platform.processor() or platform.machine()}  duckdb {duckdb.__version__}  "
        f"pyarrow {pa.__version__}  load average: {' '.join(f'{x:.1f}' for x in os.getloadavg())}"
    )
    rng = np.random.default_rng(args.seed)
    start = time.perf_counter()
    vocab = make_vocab(rng)
    questions = [
        make_question(rng, vocab, i, args.samples, args.tokens) for i in range(args.problems)
    ]
    n_chunks = sum(q.chunks.num_rows for q in questions)
    n_answers = sum(len(q.answers) for q in questions)
    print(
        f"data: {args.problems} problems x {args.samples} samples x ~{args.tokens} tokens -> "
        f"{n_chunks:,} chunk rows, {n_answers:,} answers "
        f"(generated in {time.perf_counter() - start:.1f} s)"
    )
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        subset = questions[: max(1, len(questions) // 5)]
        raw_wall, raw_cpu = bench_raw_insert(directory, subset, args.repeats)
        print(
            f"(1) Arrow insert into chunks, {sum(q.chunks.num_rows for q in subset):,} rows, "
            "1 txn/question: "
            f"{raw_wall:,.0f} rows/s wall, {raw_cpu:,.0f} rows per CPU-second "
            f"(best of {args.repeats}; goal >= 1,000,000 rows/s)"
        )

        path = directory / "store.duckdb"
        writer = TraceWriter(path)
        run = RunInfo("bench", "synthetic", model="bench", gen_config={"seed": args.seed})
        writer.start_run(run)
        start, cpu = time.perf_counter(), time.process_time()
        for q in questions:
            writer.write_question("bench", q.problem, q.samples, q.chunks, q.answers, wall_s=1.0)
        elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
        writer.finish_run("bench")
        print(
            f"    TraceWriter.write_question (open, validate, 1 txn/question, close+checkpoint): "
            f"{n_chunks / elapsed:,.0f} chunk rows/s wall, {n_chunks / cpu:,.0f} per CPU-second, "
            f"{elapsed / len(questions) * 1000:.0f} ms/question"
        )
        print(f"    store file: {path.stat().st_size / 2**20:.1f} MiB (no confidence)")

        traces: list = []
        load_s = best_of(args.repeats, lambda: traces.append(load_problem_traces(path)))
        loaded = traces[-1]
        n_loaded = sum(len(t.samples) for t in loaded)
        print(
            f"(2) load_problem_traces: {load_s:.3f} s best of {args.repeats} "
            f"({len(loaded)} problems, {n_loaded} samples; goal < 1 s)"
        )
        chunks_s = best_of(args.repeats, lambda: load_chunks(path, "bench", "p000", 0))
        text_s = best_of(args.repeats, lambda: load_sample_text(path, "bench", "p000", 0))
        print(
            f"    load_chunks(one sample): {chunks_s * 1000:.0f} ms; "
            f"load_sample_text: {text_s * 1000:.0f} ms"
        )
        if not args.no_confidence:
            bench_confidence(directory, questions, path, args)


if __name__ == "__main__":
    main()
