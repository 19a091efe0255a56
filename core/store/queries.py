"""Read queries on the store's tables that other packages need beyond loading traces: per-sample
answer statistics, tokens over time, question texts, the calibration measures.

Why here: every query on the store's schema lives in `core.store` (one place to change when the
schema does), and the other packages call these functions instead of writing SQL. Functions
that take a connection are meant to run several in one `read_connection` (one short open);
those that take a path open and close the store themselves.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pyarrow as pa

from aimo.core.store.connect import read_connection
from aimo.core.store.reader import _arrow

# One row per sample of a run: its final/first answers and the outcome of its last code block
# (definitions: recorder.summary).
SAMPLE_STATS = """
WITH a AS (
    SELECT problem_id, sample_idx,
           count(value) AS n_values,
           first(value ORDER BY token_pos, t_s NULLS LAST, rowid) FILTER (WHERE value IS NOT NULL)
               AS first_value,
           last(value ORDER BY token_pos, t_s NULLS LAST, rowid) FILTER (WHERE value IS NOT NULL)
               AS final_value,
           min(token_pos) FILTER (WHERE value IS NOT NULL) AS first_pos,
           count(*) FILTER (WHERE source = 'code') AS n_code,
           last(code_ok ORDER BY token_pos, t_s NULLS LAST, rowid) FILTER (WHERE source = 'code')
               AS code_ok,
           last(value ORDER BY token_pos, t_s NULLS LAST, rowid) FILTER (WHERE source = 'code')
               AS code_value
    FROM answers WHERE run_id = $run_id
    GROUP BY problem_id, sample_idx
)
SELECT s.problem_id, p.position, s.sample_idx, s.kind, s.n_tokens, s.finish_reason, s.start_s,
       p.answer AS truth,
       coalesce(a.n_values, 0) AS n_values, a.first_value, a.final_value, a.first_pos,
       coalesce(a.n_code, 0) AS n_code, a.code_ok, a.code_value
FROM samples s
JOIN problems p ON p.run_id = s.run_id AND p.problem_id = s.problem_id
JOIN questions_done d ON d.run_id = s.run_id AND d.problem_id = s.problem_id
LEFT JOIN a ON a.problem_id = s.problem_id AND a.sample_idx = s.sample_idx
WHERE s.run_id = $run_id
ORDER BY p.position, s.problem_id, s.sample_idx
"""
RUN_KEYS = "SELECT run_id, kind, status FROM runs ORDER BY created_at, run_id"
RUN_HARDWARE = "SELECT run_id, hardware, model, quantization FROM runs"
QUESTION_TEXTS = "SELECT problem_id, question FROM problems WHERE run_id = $run_id"
QUESTION_TEXT = "SELECT question FROM problems WHERE run_id = $run_id AND problem_id = $problem_id"
# Tokens-over-time points of one question: chunks without text, thinned to at most $points + 1
# per sample (every k-th chunk plus the last), only for a committed question.
CURVE_POINTS = """
WITH c AS (
    SELECT sample_idx, seq, t_s, n_tokens,
           max(seq) OVER (PARTITION BY sample_idx) AS last_seq
    FROM chunks
    WHERE run_id = $run_id AND problem_id = $problem_id
      AND EXISTS (SELECT 1 FROM questions_done d
                  WHERE d.run_id = $run_id AND d.problem_id = $problem_id)
)
SELECT sample_idx, seq, t_s, n_tokens FROM c
WHERE seq % greatest(1, CAST(ceil((last_seq + 1) / $points) AS BIGINT)) = 0 OR seq = last_seq
ORDER BY sample_idx, seq
"""

# Calibration measures (recorder.calibration): settings of each run, the time a token arrived,
# chunk text, answer rows, confidence rows and where a sample's final answer first appeared.
RUN_CONFIG = "SELECT run_id, gen_config::VARCHAR FROM runs ORDER BY created_at, run_id"
TIME_AT_TOKEN = """
WITH c AS (
    SELECT c.problem_id, c.sample_idx, c.n_tokens, c.t_s FROM chunks c
    WHERE c.run_id = $run_id AND c.t_s IS NOT NULL
    UNION ALL
    SELECT s.problem_id, s.sample_idx, 0, s.start_s FROM samples s
    WHERE s.run_id = $run_id AND s.start_s IS NOT NULL
),
lo AS (
    SELECT problem_id, sample_idx, max(n_tokens) AS k0, arg_max(t_s, n_tokens) AS t0
    FROM c WHERE n_tokens < $token GROUP BY problem_id, sample_idx
),
hi AS (
    SELECT problem_id, sample_idx, min(n_tokens) AS k1, arg_min(t_s, n_tokens) AS t1
    FROM c WHERE n_tokens >= $token GROUP BY problem_id, sample_idx
)
SELECT hi.problem_id, hi.sample_idx,
       CASE WHEN hi.k1 = $token THEN hi.t1
            ELSE lo.t0 + (hi.t1 - lo.t0) * ($token - lo.k0) / (hi.k1 - lo.k0) END AS t
FROM hi
JOIN questions_done d ON d.run_id = $run_id AND d.problem_id = hi.problem_id
LEFT JOIN lo ON lo.problem_id = hi.problem_id AND lo.sample_idx = hi.sample_idx
"""
CHUNK_TEXT = """
SELECT c.problem_id, c.sample_idx, c.n_tokens, c.text FROM chunks c
JOIN questions_done d ON d.run_id = c.run_id AND d.problem_id = c.problem_id
WHERE c.run_id = $run_id
ORDER BY c.problem_id, c.sample_idx, c.seq
"""
ANSWER_ROWS = """
SELECT a.problem_id, a.sample_idx, a.token_pos, a.source, a.value FROM answers a
JOIN questions_done d ON d.run_id = a.run_id AND d.problem_id = a.problem_id
WHERE a.run_id = $run_id
ORDER BY a.problem_id, a.sample_idx, a.token_pos, a.t_s NULLS LAST, a.rowid
"""
HAS_TEXT = "SELECT count(text) FROM chunks WHERE run_id = $run_id"
CONFIDENCE_ROWS = """
SELECT c.problem_id, c.sample_idx, c.n_tokens, c.token_conf, c.token_entropy
FROM sample_confidence c
JOIN questions_done d ON d.run_id = c.run_id AND d.problem_id = c.problem_id
WHERE c.run_id = $run_id
"""
FINAL_FIRST_POS = """
WITH f AS (
    SELECT problem_id, sample_idx,
           last(value ORDER BY token_pos, t_s NULLS LAST, rowid) FILTER (WHERE value IS NOT NULL)
               AS final_value
    FROM answers WHERE run_id = $run_id GROUP BY problem_id, sample_idx
)
SELECT a.problem_id, a.sample_idx, min(a.token_pos) AS final_pos
FROM answers a JOIN f ON f.problem_id = a.problem_id AND f.sample_idx = a.sample_idx
WHERE a.run_id = $run_id AND a.value = f.final_value
GROUP BY a.problem_id, a.sample_idx
"""
HAS_CONFIDENCE_ROWS = "SELECT count(*) FROM sample_confidence WHERE run_id = $run_id"


# --------------------------------------------------------------------------- runs and questions


def sample_stats(con: duckdb.DuckDBPyConnection, run_id: str) -> pd.DataFrame:
    """Per-sample answer statistics of one run (see SAMPLE_STATS); nullable columns as pandas NA."""
    return con.execute(SAMPLE_STATS, {"run_id": run_id}).df()


def run_keys(con: duckdb.DuckDBPyConnection) -> list[tuple[str, str, str]]:
    """(run_id, kind, status) of every run, oldest first."""
    return [tuple(r) for r in con.execute(RUN_KEYS).fetchall()]  # type: ignore[misc]


def run_hardware(con: duckdb.DuckDBPyConnection) -> list[tuple[str, Any, Any, Any]]:
    """(run_id, hardware, model, quantization) of every run, as recorded."""
    return [tuple(r) for r in con.execute(RUN_HARDWARE).fetchall()]  # type: ignore[misc]


def run_configs(con: duckdb.DuckDBPyConnection) -> dict[str, dict[str, Any]]:
    """Each run's `gen_config` (an empty mapping when NULL), oldest run first."""
    return {rid: json.loads(cfg) if cfg else {} for rid, cfg in con.execute(RUN_CONFIG).fetchall()}


def question_texts(path: str | Path, run_id: str) -> dict[str, str]:
    """Question texts of a run by problem id ("" where none was stored)."""
    with read_connection(path) as con:
        rows = con.execute(QUESTION_TEXTS, {"run_id": run_id}).fetchall()
    return {pid: q or "" for pid, q in rows}


def question_text(path: str | Path, run_id: str, problem_id: str) -> str:
    """The question text of one problem ("" when none is stored)."""
    with read_connection(path) as con:
        row = con.execute(QUESTION_TEXT, {"run_id": run_id, "problem_id": problem_id}).fetchone()
    return str(row[0]) if row and row[0] is not None else ""


def token_curve(path: str | Path, run_id: str, problem_id: str, points: int) -> pd.DataFrame:
    """Recorded tokens over time of one committed question (`sample_idx`, `seq`, `t_s`,
    `n_tokens`): about `points` chunks per sample plus each sample's last, read without text."""
    params = {"run_id": run_id, "problem_id": problem_id, "points": int(points)}
    with read_connection(path) as con:
        return con.execute(CURVE_POINTS, params).df()


# --------------------------------------------------------------------------- calibration measures


def times_at_token(con: duckdb.DuckDBPyConnection, run_id: str, token: int) -> pd.DataFrame:
    """Per committed sample (`problem_id`, `sample_idx`, `t`): when its `token`-th token arrived,
    interpolated between chunks ((0, start_s) is the first point)."""
    return con.execute(TIME_AT_TOKEN, {"run_id": run_id, "token": token}).df()


def has_chunk_text(con: duckdb.DuckDBPyConnection, run_id: str) -> bool:
    """Whether the run stored any chunk text."""
    row = con.execute(HAS_TEXT, {"run_id": run_id}).fetchone()
    return bool(row and row[0])


def chunk_texts(con: duckdb.DuckDBPyConnection, run_id: str) -> list[tuple[str, int, int, str]]:
    """(problem_id, sample_idx, n_tokens, text) of every chunk of the committed questions, in
    sample and chunk order."""
    return [tuple(r) for r in con.execute(CHUNK_TEXT, {"run_id": run_id}).fetchall()]  # type: ignore[misc]


def answer_rows(con: duckdb.DuckDBPyConnection, run_id: str) -> list[tuple[str, int, int, str, Any]]:
    """(problem_id, sample_idx, token_pos, source, value) of every answer of the committed
    questions, in sample and token order."""
    return [tuple(r) for r in con.execute(ANSWER_ROWS, {"run_id": run_id}).fetchall()]  # type: ignore[misc]


def confidence_rows(con: duckdb.DuckDBPyConnection, run_id: str) -> pa.Table:
    """The stored per-token confidence of the committed questions (`problem_id`, `sample_idx`,
    `n_tokens`, `token_conf`, `token_entropy`, still encoded: see core.store.confidence)."""
    return _arrow(con, CONFIDENCE_ROWS, {"run_id": run_id})


def has_confidence_rows(con: duckdb.DuckDBPyConnection, run_id: str) -> bool:
    """Whether the run stored any confidence rows (the table must exist: migrations.has_confidence)."""
    row = con.execute(HAS_CONFIDENCE_ROWS, {"run_id": run_id}).fetchone()
    return bool(row and row[0])


def final_first_positions(con: duckdb.DuckDBPyConnection, run_id: str) -> pd.DataFrame:
    """Per sample with a final answer (`problem_id`, `sample_idx`, `final_pos`): the first token
    position at which that final value appeared."""
    return con.execute(FINAL_FIRST_POS, {"run_id": run_id}).df()
