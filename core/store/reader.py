"""Read-side of the trace store: the fast event loader for the simulator and small lookups for the
dashboard. Every function opens the store read-only, reads into memory and closes it at once.

Only completed questions (those with a `questions_done` marker) are visible. The event loader
never touches the `chunks` table.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

from aimo.core.errors import InputError
from aimo.core.store.confidence import decode_column
from aimo.core.store.connect import DEFAULT_LOCK_TIMEOUT_S, read_connection
from aimo.core.store.migrations import has_confidence
from aimo.core.store.records import RunSummary
from aimo.core.traces import (
    NO_VALUE,
    SOURCE_BOXED,
    SOURCE_CODE,
    LogprobSetting,
    ProblemTrace,
    SampleTrace,
)
from aimo.core.store.run_state import WriterMark, run_state

logger = logging.getLogger("aimo.core.store")

COMPLETED_QUESTIONS = "SELECT problem_id FROM questions_done WHERE run_id = $run_id"
RUN_IDS = "SELECT run_id FROM runs ORDER BY created_at, run_id"

# Event loader: three ordered queries over completed questions, keyed the same way
# (position, problem_id, sample_idx) so that answers split per sample by counts alone.
LOAD_PROBLEMS = """
SELECT p.problem_id, p.position, p.answer, count(s.sample_idx) AS n_samples
FROM problems p
JOIN questions_done d ON d.run_id = p.run_id AND d.problem_id = p.problem_id
LEFT JOIN samples s ON s.run_id = p.run_id AND s.problem_id = p.problem_id
WHERE p.run_id = $run_id
GROUP BY p.problem_id, p.position, p.answer
ORDER BY p.position, p.problem_id
"""
LOAD_SAMPLES = """
WITH n_ans AS (
    SELECT problem_id, sample_idx, count(*) AS n FROM answers
    WHERE run_id = $run_id GROUP BY problem_id, sample_idx
)
SELECT s.sample_idx, s.kind, s.n_tokens, s.finish_reason, s.prompt_tokens, s.end_s,
       coalesce(n_ans.n, 0) AS n_answers
FROM samples s
JOIN problems p ON p.run_id = s.run_id AND p.problem_id = s.problem_id
JOIN questions_done d ON d.run_id = s.run_id AND d.problem_id = s.problem_id
LEFT JOIN n_ans ON n_ans.problem_id = s.problem_id AND n_ans.sample_idx = s.sample_idx
WHERE s.run_id = $run_id
ORDER BY p.position, s.problem_id, s.sample_idx
"""
LOAD_ANSWERS = """
SELECT a.token_pos::INTEGER AS token_pos,
       a.t_s::DOUBLE AS t_s,
       coalesce(a.value, $no_value)::SMALLINT AS value,
       (CASE a.source WHEN 'code' THEN $source_code ELSE $source_boxed END)::TINYINT AS source,
       coalesce(a.code_ok, false) AS code_ok,
       a.exec_ms::FLOAT AS exec_ms
FROM answers a
JOIN samples s
  ON s.run_id = a.run_id AND s.problem_id = a.problem_id AND s.sample_idx = a.sample_idx
JOIN problems p ON p.run_id = a.run_id AND p.problem_id = a.problem_id
JOIN questions_done d ON d.run_id = a.run_id AND d.problem_id = a.problem_id
WHERE a.run_id = $run_id
ORDER BY p.position, a.problem_id, a.sample_idx, a.token_pos, a.t_s NULLS LAST, a.rowid
"""
# Read in storage order, without joins: sorting rows that carry large blobs costs 3-4x the scan.
# The loader maps the rows to samples by (problem_id, sample_idx).
LOAD_CONFIDENCE = """
SELECT problem_id, sample_idx, n_tokens, token_conf, token_entropy
FROM sample_confidence WHERE run_id = $run_id
"""
LIST_RUNS = """
WITH done AS (SELECT run_id, problem_id FROM questions_done),
q AS (SELECT run_id, count(*) AS n FROM done GROUP BY run_id),
s AS (
    SELECT s.run_id, count(*) AS n, sum(s.n_tokens) AS tokens
    FROM samples s JOIN done d ON d.run_id = s.run_id AND d.problem_id = s.problem_id
    GROUP BY s.run_id
),
a AS (
    SELECT a.run_id, count(*) AS n
    FROM answers a JOIN done d ON d.run_id = a.run_id AND d.problem_id = a.problem_id
    GROUP BY a.run_id
)
SELECT r.run_id, r.kind, r.model, r.backend, r.quantization, r.hardware, r.gen_config::VARCHAR,
       r.policy::VARCHAR, r.notes, r.status, r.created_at,
       coalesce(q.n, 0), coalesce(s.n, 0), coalesce(s.tokens, 0)::BIGINT, coalesce(a.n, 0),
       r.writer_pid, r.writer_host, r.heartbeat_at, r.finished_at, r.budget_s,
       current_timestamp::TIMESTAMP,
       {logprobs}
FROM runs r
LEFT JOIN q ON q.run_id = r.run_id
LEFT JOIN s ON s.run_id = r.run_id
LEFT JOIN a ON a.run_id = r.run_id
ORDER BY r.created_at, r.run_id
"""
SAMPLE_EXISTS = """
SELECT count(*) FROM samples
WHERE run_id = $run_id AND problem_id = $problem_id AND sample_idx = $sample_idx
"""
LOAD_CHUNKS = """
SELECT sample_idx, seq, t_s, n_tokens, text FROM chunks
WHERE run_id = $run_id AND problem_id = $problem_id
ORDER BY sample_idx, seq
"""
LOAD_SAMPLE_CHUNKS = """
SELECT sample_idx, seq, t_s, n_tokens, text FROM chunks
WHERE run_id = $run_id AND problem_id = $problem_id AND sample_idx = $sample_idx
ORDER BY seq
"""
LOAD_SAMPLE_TEXT = """
SELECT coalesce(string_agg(text, '' ORDER BY seq), '') FROM chunks
WHERE run_id = $run_id AND problem_id = $problem_id AND sample_idx = $sample_idx
"""


def _arrow(con: duckdb.DuckDBPyConnection, query: str, params: dict) -> pa.Table:
    """Run `query` and return its result as an Arrow table (one copy, through a relation)."""
    relation = con.sql(query, params=params)
    fetch = getattr(relation, "to_arrow_table", None) or relation.arrow  # name varies by version
    return fetch()


def _column(table: pa.Table, name: str, dtype: type) -> np.ndarray:
    """One column as a read-only numpy array of `dtype`; NULL floats become NaN."""
    values: np.ndarray = np.asarray(table.column(name).to_numpy(), dtype=dtype)
    values.flags.writeable = False
    return values


def _resolve_run(con: duckdb.DuckDBPyConnection, run_id: str | None, source: str) -> str:
    run_ids = [row[0] for row in con.execute(RUN_IDS).fetchall()]
    if run_id is None:
        if len(run_ids) == 1:
            return run_ids[0]
        if not run_ids:
            raise InputError(source, "run_id", "the store holds no runs")
        listed = ", ".join(run_ids)
        raise InputError(source, "run_id", f"the store holds several runs, pick one of: {listed}")
    if run_id not in run_ids:
        listed = ", ".join(run_ids) or "none"
        raise InputError(source, "run_id", f"unknown run {run_id!r}; runs: {listed}")
    return run_id


RUN_STATE = """
SELECT status, writer_pid, writer_host, heartbeat_at, current_timestamp::TIMESTAMP,
       (SELECT count(*) FROM questions_done WHERE run_id = $run_id)
FROM runs WHERE run_id = $run_id
"""


def _check_complete(
    con: duckdb.DuckDBPyConnection, run_id: str, source: str, allow_incomplete: bool
) -> None:
    """Refuse a failed or interrupted run, warn on one still running, unless `allow_incomplete`."""
    status, pid, host, beat, now, n_done = con.execute(RUN_STATE, {"run_id": run_id}).fetchall()[0]
    state = run_state(status, WriterMark(pid, host, beat), now)
    if state == "finished" or allow_incomplete:
        return
    if state == "running":
        logger.warning("%s: run %r is still being written (%d questions so far); "
                       "results cover those only", source, run_id, n_done)
        return
    raise InputError(
        source, "run_id",
        f"run {run_id!r} is {state} ({n_done} questions committed): resume it, delete it "
        "(`aimo runs delete`), or use what it holds with `aimo simulate --allow-incomplete`",
    )


def load_problem_traces(
    path: str | Path,
    run_id: str | None = None,
    *,
    lock_timeout_s: float = DEFAULT_LOCK_TIMEOUT_S,
    confidence: bool = True,
    allow_incomplete: bool = False,
) -> list[ProblemTrace]:
    """Event arrays of every completed question of a run, ordered by position, samples by index.

    `run_id` None picks the only run. Answer arrays are sorted by token position (then time);
    they are read-only views into shared arrays. With `confidence`, `token_conf` and
    `token_entropy` are filled where the store has them (float32 views, None otherwise: samples
    without a row, stores older than migration 003); without it they stay None and the
    `sample_confidence` table is not read.

    A run that failed or was interrupted is refused and one still being written is loaded with
    a warning, unless `allow_incomplete`.

    Raises:
        InputError: not a store, `run_id` unknown / ambiguous (the message lists the run ids),
            an incomplete run, or a confidence blob whose length does not match its sample.
    """
    source = str(path)
    with read_connection(path, lock_timeout_s=lock_timeout_s) as con:
        run_id = _resolve_run(con, run_id, source)
        _check_complete(con, run_id, source, allow_incomplete)
        key = {"run_id": run_id}
        problems = _arrow(con, LOAD_PROBLEMS, key)
        samples = _arrow(con, LOAD_SAMPLES, key)
        codes = {"no_value": NO_VALUE, "source_code": SOURCE_CODE, "source_boxed": SOURCE_BOXED}
        answers = _arrow(con, LOAD_ANSWERS, {**key, **codes})
        conf = _arrow(con, LOAD_CONFIDENCE, key) if confidence and has_confidence(con) else None
    arrays = _confidence_arrays(conf, problems, samples, source)
    return _assemble(run_id, problems, samples, answers, arrays)


def _confidence_arrays(
    table: pa.Table | None, problems: pa.Table, samples: pa.Table, source: str
) -> tuple[list[np.ndarray | None], list[np.ndarray | None]] | None:
    """Per-sample (token_conf, token_entropy) lists in LOAD_SAMPLES order, or None.

    Rows of `sample_confidence` are decoded in storage order (one conversion per column) and
    handed to the samples by key; rows of unfinished questions are ignored.
    """
    if table is None:
        return None
    problem_ids = np.repeat(
        np.asarray(problems.column("problem_id").to_pylist(), dtype=object),
        problems.column("n_samples").to_numpy(),
    ).tolist()
    keys = zip(problem_ids, samples.column("sample_idx").to_pylist())
    row_of = {
        key: j
        for j, key in enumerate(
            zip(table.column("problem_id").to_pylist(), table.column("sample_idx").to_pylist())
        )
    }
    stored = table.column("n_tokens").to_pylist()
    conf = decode_column(table.column("token_conf"), stored, source, "sample_confidence.token_conf")
    entropy = decode_column(
        table.column("token_entropy"), stored, source, "sample_confidence.token_entropy"
    )
    out_conf: list[np.ndarray | None] = []
    out_entropy: list[np.ndarray | None] = []
    for key, n in zip(keys, samples.column("n_tokens").to_pylist()):
        j = row_of.get(key)
        if j is None:
            out_conf.append(None)
            out_entropy.append(None)
            continue
        if stored[j] != n:
            message = (
                f"question {key[0]!r} sample {key[1]}: confidence of {stored[j]} tokens "
                f"for a sample of {n} tokens"
            )
            raise InputError(source, "sample_confidence.n_tokens", message)
        out_conf.append(conf[j])
        out_entropy.append(entropy[j])
    return out_conf, out_entropy


def _assemble(
    run_id: str,
    problems: pa.Table,
    samples: pa.Table,
    answers: pa.Table,
    confidence: tuple[list[np.ndarray | None], list[np.ndarray | None]] | None = None,
) -> list[ProblemTrace]:
    """Split the ordered result tables into ProblemTrace / SampleTrace objects."""
    ends = np.cumsum(samples.column("n_answers").to_numpy()).tolist()
    starts = [0, *ends[:-1]]
    arrays = {
        "ans_token": _column(answers, "token_pos", np.int32),
        "ans_time": _column(answers, "t_s", np.float64),
        "ans_value": _column(answers, "value", np.int16),
        "ans_source": _column(answers, "source", np.int8),
        "ans_code_ok": _column(answers, "code_ok", np.bool_),
        "ans_exec_ms": _column(answers, "exec_ms", np.float32),
    }
    parts = {name: [values[a:b] for a, b in zip(starts, ends)] for name, values in arrays.items()}
    idx = samples.column("sample_idx").to_pylist()
    kinds = samples.column("kind").to_pylist()
    n_tokens = samples.column("n_tokens").to_pylist()
    reasons = samples.column("finish_reason").to_pylist()
    prompt = samples.column("prompt_tokens").to_pylist()
    end_s = np.asarray(samples.column("end_s").to_numpy(), dtype=np.float64).tolist()
    none: list[np.ndarray | None] = [None] * len(idx)
    conf, entropy = confidence if confidence is not None else (none, none)
    sample_traces = [
        SampleTrace(
            sample=idx[j],
            kind=kinds[j],
            n_tokens=n_tokens[j],
            finish_reason=reasons[j],
            prompt_tokens=prompt[j],
            end_s=end_s[j],
            ans_token=parts["ans_token"][j],
            ans_time=parts["ans_time"][j],
            ans_value=parts["ans_value"][j],
            ans_source=parts["ans_source"][j],
            ans_code_ok=parts["ans_code_ok"][j],
            ans_exec_ms=parts["ans_exec_ms"][j],
            token_conf=conf[j],
            token_entropy=entropy[j],
        )
        for j in range(len(idx))
    ]
    traces: list[ProblemTrace] = []
    start = 0
    for problem_id, position, answer, count in zip(
        problems.column("problem_id").to_pylist(),
        problems.column("position").to_pylist(),
        problems.column("answer").to_pylist(),
        problems.column("n_samples").to_pylist(),
    ):
        traces.append(
            ProblemTrace(
                run_id=run_id,
                problem_id=problem_id,
                position=position,
                answer=answer,
                samples=tuple(sample_traces[start : start + count]),
            )
        )
        start += count
    return traces


def completed_questions(
    path: str | Path, run_id: str, *, lock_timeout_s: float = DEFAULT_LOCK_TIMEOUT_S
) -> set[str]:
    """Problem ids of `run_id` that are committed; empty when the run has not started yet."""
    with read_connection(path, lock_timeout_s=lock_timeout_s) as con:
        return {row[0] for row in con.execute(COMPLETED_QUESTIONS, {"run_id": run_id}).fetchall()}


def list_runs(
    path: str | Path, *, lock_timeout_s: float = DEFAULT_LOCK_TIMEOUT_S
) -> list[RunSummary]:
    """Every run of the store, oldest first, with counts over its completed questions."""
    with read_connection(path, lock_timeout_s=lock_timeout_s) as con:
        logprobs = "r.logprobs::VARCHAR" if has_confidence(con) else "NULL"
        rows = con.execute(LIST_RUNS.format(logprobs=logprobs)).fetchall()
    return [
        RunSummary(
            run_id=r[0],
            kind=r[1],
            model=r[2],
            backend=r[3],
            quantization=r[4],
            hardware=r[5],
            gen_config=json.loads(r[6]) if r[6] is not None else {},
            policy=json.loads(r[7]) if r[7] is not None else None,
            notes=r[8],
            status=r[9],
            created_at=r[10],
            n_problems=int(r[11]),
            n_samples=int(r[12]),
            n_tokens=int(r[13]),
            n_answers=int(r[14]),
            state=run_state(r[9], WriterMark(r[15], r[16], r[17]), r[20]),
            writer_pid=r[15],
            writer_host=r[16],
            heartbeat_at=r[17],
            finished_at=r[18],
            budget_s=r[19],
            logprobs=LogprobSetting.from_json(json.loads(r[21])) if r[21] is not None else None,
        )
        for r in rows
    ]


def _check_sample(
    con: duckdb.DuckDBPyConnection,
    source: str,
    run_id: str,
    problem_id: str,
    sample_idx: int | None,
) -> None:
    """InputError unless the run exists, the question is completed and the sample (if given)
    exists."""
    _resolve_run(con, run_id, source)
    done = {row[0] for row in con.execute(COMPLETED_QUESTIONS, {"run_id": run_id}).fetchall()}
    if problem_id not in done:
        message = f"no completed question {problem_id!r} in run {run_id!r}"
        raise InputError(source, "problem_id", message)
    if sample_idx is not None:
        params = {"run_id": run_id, "problem_id": problem_id, "sample_idx": sample_idx}
        if not con.execute(SAMPLE_EXISTS, params).fetchall()[0][0]:
            message = f"no sample {sample_idx} in question {problem_id!r}"
            raise InputError(source, "sample_idx", message)


def load_chunks(
    path: str | Path,
    run_id: str,
    problem_id: str,
    sample_idx: int | None = None,
    *,
    lock_timeout_s: float = DEFAULT_LOCK_TIMEOUT_S,
) -> pd.DataFrame:
    """The raw stream of one question (or one sample): sample_idx, seq, t_s, n_tokens, text,
    ordered by sample and seq. For the dashboard and hardware-profile fitting.

    Raises:
        InputError: unknown run, question not completed, or unknown sample.
    """
    source = str(path)
    with read_connection(path, lock_timeout_s=lock_timeout_s) as con:
        _check_sample(con, source, run_id, problem_id, sample_idx)
        if sample_idx is None:
            table = _arrow(con, LOAD_CHUNKS, {"run_id": run_id, "problem_id": problem_id})
        else:
            params = {"run_id": run_id, "problem_id": problem_id, "sample_idx": sample_idx}
            table = _arrow(con, LOAD_SAMPLE_CHUNKS, params)
    return table.to_pandas()


def load_sample_text(
    path: str | Path,
    run_id: str,
    problem_id: str,
    sample_idx: int,
    *,
    lock_timeout_s: float = DEFAULT_LOCK_TIMEOUT_S,
) -> str:
    """The full generated text of one sample, rebuilt from its chunks in seq order.

    Raises:
        InputError: unknown run, question not completed, or unknown sample.
    """
    source = str(path)
    with read_connection(path, lock_timeout_s=lock_timeout_s) as con:
        _check_sample(con, source, run_id, problem_id, sample_idx)
        params = {"run_id": run_id, "problem_id": problem_id, "sample_idx": sample_idx}
        text: str = con.execute(LOAD_SAMPLE_TEXT, params).fetchall()[0][0]
    return text
