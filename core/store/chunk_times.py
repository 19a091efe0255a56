"""Timed chunks of a trace store, for fitting the time model (`core.hardware.fit.read_chunks`),
and a live run's timeline (its first-batch stall and abort latency, `simulator.live_timing`).

Read through the store's lock-waiting reader (`read_connection`), like every other query.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import duckdb
import pandas as pd

from aimo.core.errors import InputError
from aimo.core.store.connect import DEFAULT_LOCK_TIMEOUT_S, read_connection

TIMED_CHUNKS = """
SELECT c.run_id, c.problem_id, c.sample_idx, c.t_s, c.n_tokens, s.prompt_tokens, s.start_s
FROM chunks c
JOIN samples s USING (run_id, problem_id, sample_idx)
WHERE ($run_id IS NULL OR c.run_id = $run_id) AND c.t_s IS NOT NULL
ORDER BY c.run_id, c.problem_id, c.sample_idx, c.seq
"""


def load_timed_chunks(path: str | Path, run_id: str | None = None, *,
                      lock_timeout_s: float = DEFAULT_LOCK_TIMEOUT_S) -> pd.DataFrame:
    """Chunks with a timestamp (all runs, or one), joined with their samples' prompt tokens and
    start: run_id, problem_id, sample_idx, t_s, n_tokens, prompt_tokens, start_s.

    Raises:
        InputError: the file is missing or not a trace store (or has no chunks table).
    """
    try:
        with read_connection(path, lock_timeout_s=lock_timeout_s) as con:
            return con.execute(TIMED_CHUNKS, {"run_id": run_id}).df()
    except duckdb.Error as exc:
        raise InputError(str(path), "chunks", f"cannot read chunks: {exc}") from None


QUESTION_ENDS = """
SELECT q.problem_id, q.start_s, q.wall_s, max(s.end_s) AS last_end_s,
       (SELECT count(*) FROM answers a WHERE a.run_id = q.run_id AND a.problem_id = q.problem_id
        AND a.source = 'code') AS n_code
FROM questions_done q
JOIN samples s USING (run_id, problem_id)
WHERE q.run_id = $run_id
GROUP BY q.run_id, q.problem_id, q.start_s, q.wall_s
ORDER BY q.start_s NULLS LAST, q.problem_id
"""


def load_question_ends(path: str | Path, run_id: str, *,
                       lock_timeout_s: float = DEFAULT_LOCK_TIMEOUT_S) -> pd.DataFrame:
    """Per committed question of a live run, in serving order: problem_id, start_s (competition
    clock), wall_s (question time), last_end_s (its last sample's end, question clock), n_code
    (code answers). For the per-question overhead (`core.hardware.fit.question_overhead`).

    Raises:
        InputError: the file is missing or not a trace store of the current schema.
    """
    try:
        with read_connection(path, lock_timeout_s=lock_timeout_s) as con:
            return con.execute(QUESTION_ENDS, {"run_id": run_id}).df()
    except duckdb.Error as exc:
        raise InputError(str(path), "questions_done", f"cannot read question times: {exc}") from None


TIMELINE_SAMPLES = """
SELECT problem_id, sample_idx, start_s, end_s, n_tokens, finish_reason
FROM samples WHERE run_id = $run_id ORDER BY problem_id, sample_idx
"""
TIMELINE_CHUNKS = """
SELECT problem_id, sample_idx, t_s, n_tokens
FROM chunks WHERE run_id = $run_id AND t_s IS NOT NULL ORDER BY problem_id, sample_idx, seq
"""
TIMELINE_CODE = """
SELECT problem_id, sample_idx, t_s, exec_ms
FROM answers WHERE run_id = $run_id AND source = 'code' ORDER BY problem_id, t_s
"""


@dataclass(frozen=True)
class LiveTimeline:
    """The timestamps of one live run, on each question's stream clock: its samples (start_s,
    end_s, n_tokens, finish_reason), its timed chunks (t_s, n_tokens), its code answers (t_s,
    exec_ms) and its questions (`core.store.live.question_results`: stop_reason, wall_s,
    decided_s, in serving order)."""

    samples: pd.DataFrame
    chunks: pd.DataFrame
    code: pd.DataFrame
    questions: pd.DataFrame


def load_live_timeline(path: str | Path, run_id: str, *,
                       lock_timeout_s: float = DEFAULT_LOCK_TIMEOUT_S) -> LiveTimeline:
    """The run's timeline (see `LiveTimeline`), for the first-batch stall and the abort latency
    (`simulator.live_timing`).

    Raises:
        InputError: the file is missing or not a trace store, or no such run.
    """
    from aimo.core.store.live import question_results

    params = {"run_id": run_id}
    try:
        with read_connection(path, lock_timeout_s=lock_timeout_s) as con:
            samples = con.execute(TIMELINE_SAMPLES, params).df()
            chunks = con.execute(TIMELINE_CHUNKS, params).df()
            code = con.execute(TIMELINE_CODE, params).df()
    except duckdb.Error as exc:
        raise InputError(str(path), "chunks", f"cannot read the run's timeline: {exc}") from None
    return LiveTimeline(samples, chunks, code, question_results(path, run_id, lock_timeout_s=lock_timeout_s))
