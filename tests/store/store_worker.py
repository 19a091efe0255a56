"""Subprocess worker for the trace-store concurrency tests: a writer or a polling reader.

Run as a script (`python store_worker.py write|read ...`) so that each side is a separate
process with its own DuckDB file lock, as in production (recorder vs dashboard).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time

import numpy as np
import pyarrow as pa

from aimo.core.store import (
    ProblemRow,
    TraceWriter,
    completed_questions,
    load_problem_traces,
)
from aimo.core.traces import RunInfo


class BusyCounter(logging.Handler):
    """Counts the store's lock-retry log records, to show that the two sides really contended."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        if "busy" in record.getMessage():
            self.count += 1


def question_frames(k: int, n_samples: int, n_chunks: int) -> tuple[pa.Table, pa.Table, pa.Table]:
    """Deterministic frames of question `k`: `n_samples` samples of `n_chunks` chunks and two
    answers each."""
    rng = np.random.default_rng(k)
    idx = np.arange(n_samples, dtype=np.int32)
    samples = pa.table(
        {
            "sample_idx": idx,
            "kind": ["cot" if i % 2 == 0 else "code" for i in range(n_samples)],
            "n_tokens": np.full(n_samples, n_chunks * 2, np.int32),
            "finish_reason": ["stop"] * n_samples,
            "end_s": np.full(n_samples, n_chunks * 0.05),
        }
    )
    chunks = pa.table(
        {
            "sample_idx": np.repeat(idx, n_chunks),
            "seq": np.tile(np.arange(n_chunks, dtype=np.int32), n_samples),
            "t_s": np.tile(np.arange(n_chunks) * 0.05, n_samples),
            "n_tokens": np.tile(np.arange(1, n_chunks + 1, dtype=np.int32) * 2, n_samples),
            "text": ["ab"] * (n_samples * n_chunks),
        }
    )
    answers = pa.table(
        {
            "sample_idx": np.repeat(idx, 2),
            "token_pos": np.tile(np.array([n_chunks // 2, n_chunks], np.int32), n_samples),
            "source": ["boxed"] * (2 * n_samples),
            "value": rng.integers(0, 1000, 2 * n_samples).astype(np.int32),
        }
    )
    return samples, chunks, answers


def write(args: argparse.Namespace, counter: BusyCounter) -> dict:
    """Write questions 0..n-1 (skipping those already done), like a resumable recorder."""
    writer = TraceWriter(args.path, lock_timeout_s=args.lock_timeout)
    writer.start_run(RunInfo(args.run_id, "synthetic", model="worker"), resume=args.resume)
    done = writer.done_questions(args.run_id)
    for k in range(args.n):
        problem_id = f"q{k:03d}"
        if problem_id in done:
            continue
        samples, chunks, answers = question_frames(k, args.samples, args.chunks)
        problem = ProblemRow(problem_id, k, f"question {k}", k % 1000)
        writer.write_question(args.run_id, problem, samples, chunks, answers)
        print(f"wrote {problem_id}", flush=True)
        if args.pause:
            time.sleep(args.pause)
    writer.finish_run(args.run_id)
    return {"retries": counter.count}


def hold(args: argparse.Namespace, counter: BusyCounter) -> dict:
    """Hold a read-only connection (the file lock) for `--timeout` seconds, like a slow reader."""
    import duckdb

    con = duckdb.connect(args.path, read_only=True)
    print("holding", flush=True)
    time.sleep(args.timeout)
    con.close()
    return {"held_s": args.timeout}


def spool_write(args: argparse.Namespace, counter: BusyCounter) -> dict:
    """A live writer that spools when the store is busy; with --die, SIGKILLs itself after the
    last question (nothing flushed, the run left 'running')."""
    writer = TraceWriter(args.path, spool_after_s=0.3)
    writer.start_run(RunInfo(args.run_id, "synthetic", model="worker"), resume=args.resume)
    outcomes = []
    for k in range(args.n):
        samples, chunks, answers = question_frames(k, args.samples, args.chunks)
        problem = ProblemRow(f"q{k:03d}", k, f"question {k}", k % 1000)
        t0 = time.monotonic()
        outcome = writer.write_question(args.run_id, problem, samples, chunks, answers, wall_s=1.0)
        outcomes.append((outcome, time.monotonic() - t0))
        print(f"{outcome} q{k:03d}", flush=True)
        if k == 0 and args.wait_stdin:
            sys.stdin.readline()  # the test starts a holder, then lets the writer go on
    if args.die:
        os.kill(os.getpid(), 9)
    status = writer.finish_run(args.run_id)
    return {"outcomes": outcomes, "finish": status}


def read(args: argparse.Namespace, counter: BusyCounter) -> dict:
    """Poll the store until `n` questions are complete; record what each read saw."""
    deadline = time.monotonic() + args.timeout
    while not os.path.exists(args.path) and time.monotonic() < deadline:
        time.sleep(0.01)
    counts: list[int] = []
    loaded: list[int] = []
    while time.monotonic() < deadline:
        n = len(completed_questions(args.path, args.run_id, lock_timeout_s=args.lock_timeout))
        counts.append(n)
        if n:
            traces = load_problem_traces(args.path, args.run_id, lock_timeout_s=args.lock_timeout)
            if len(traces) < n or any(len(t.samples) != args.samples for t in traces):
                raise AssertionError(f"inconsistent read: {len(traces)} traces after {n} completed")
            loaded.append(len(traces))
        if n >= args.n:
            break
        time.sleep(args.interval)
    return {"counts": counts, "loaded": loaded, "retries": counter.count}


def main(argv: list[str]) -> int:
    """Parse arguments, run one side, print its JSON report on the last line."""
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["write", "read", "hold", "spool-write"])
    parser.add_argument("path")
    parser.add_argument("run_id")
    parser.add_argument("n", type=int)
    parser.add_argument("--samples", type=int, default=4)
    parser.add_argument("--chunks", type=int, default=200)
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--die", action="store_true", help="spool-write: SIGKILL itself at the end")
    parser.add_argument("--wait-stdin", action="store_true", help="spool-write: wait after q000")
    parser.add_argument("--pause", type=float, default=0.0, help="writer: sleep between questions")
    parser.add_argument("--interval", type=float, default=0.01, help="reader: sleep between reads")
    parser.add_argument("--timeout", type=float, default=45.0)
    parser.add_argument("--lock-timeout", type=float, default=30.0)
    args = parser.parse_args(argv)
    counter = BusyCounter()
    logger = logging.getLogger("aimo.core.store")
    logger.setLevel(logging.DEBUG)
    logger.addHandler(counter)
    modes = {"write": write, "read": read, "hold": hold, "spool-write": spool_write}
    report = modes[args.mode](args, counter)
    print(json.dumps(report), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
