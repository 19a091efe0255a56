"""The only writer of a trace store: one short read-write connection, one transaction a question.

A question's problem row, samples, chunks, answers and its `questions_done` marker commit together,
so a killed writer loses at most the question in flight; between questions the file is closed so
read-only readers (dashboard, simulator) can open it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import duckdb
import pyarrow as pa

from solver.errors import InputError
from solver.store.confidence import confidence_table
from solver.store.connect import (
    DEFAULT_LOCK_TIMEOUT_S,
    init_store,
    read_connection,
    write_connection,
)
from solver.store.frames import Frame, check_question, to_arrow
from solver.store.reader import COMPLETED_QUESTIONS
from solver.store.records import ProblemRow, SampleConfidence
from solver.traces import RunInfo

logger = logging.getLogger("solver.store")

RUN_ROW = """
SELECT kind, model, backend, quantization, hardware, logprobs::VARCHAR FROM runs
WHERE run_id = $run_id
"""
INSERT_RUN = """
INSERT INTO runs (run_id, kind, model, backend, quantization, hardware, gen_config, policy, notes,
                  logprobs)
VALUES ($run_id, $kind, $model, $backend, $quantization, $hardware, $gen_config, $policy, $notes,
        $logprobs)
"""
SET_RUN_STATUS = "UPDATE runs SET status = $status WHERE run_id = $run_id"
IS_DONE = "SELECT count(*) FROM questions_done WHERE run_id = $run_id AND problem_id = $problem_id"
# Resume rule: rows of a question without its marker are leftovers of an interrupted write.
DELETE_PARTIAL = tuple(
    f"""
DELETE FROM {table} WHERE run_id = $run_id
  AND problem_id NOT IN (SELECT problem_id FROM questions_done WHERE run_id = $run_id)
"""
    for table in ("chunks", "answers", "sample_confidence", "samples", "problems")
)
INSERT_PROBLEM = """
INSERT INTO problems (run_id, problem_id, position, question, answer)
VALUES ($run_id, $problem_id, $position, $question, $answer)
"""
INSERT_SAMPLES = """
INSERT INTO samples (run_id, problem_id, sample_idx, kind, prompt_tokens, start_s, end_s, n_tokens,
                     finish_reason)
SELECT $run_id, $problem_id, sample_idx, kind, prompt_tokens, start_s, end_s, n_tokens,
       finish_reason
FROM _incoming_samples
"""
INSERT_CHUNKS = """
INSERT INTO chunks (run_id, problem_id, sample_idx, seq, t_s, n_tokens, text)
SELECT $run_id, $problem_id, sample_idx, seq, t_s, n_tokens, text FROM _incoming_chunks
"""
INSERT_ANSWERS = """
INSERT INTO answers (run_id, problem_id, sample_idx, token_pos, t_s, source, value, code_ok,
                     exec_ms, error)
SELECT $run_id, $problem_id, sample_idx, token_pos, t_s, source, value, code_ok, exec_ms, error
FROM _incoming_answers
"""
INSERT_CONFIDENCE = """
INSERT INTO sample_confidence (run_id, problem_id, sample_idx, n_tokens, token_conf, token_entropy)
SELECT $run_id, $problem_id, sample_idx, n_tokens, token_conf, token_entropy
FROM _incoming_sample_confidence
"""
INSERT_DONE = """
INSERT INTO questions_done (run_id, problem_id, wall_s) VALUES ($run_id, $problem_id, $wall_s)
"""
RUN_STATUSES = ("running", "complete", "failed")
# The small tables gain one row group per question (each close checkpoints, and DuckDB appends a
# new row group to a persisted table). Every COMPACT_EVERY questions in the file, and when a run
# finishes, they are rewritten into few row groups: a cold `load_problem_traces` of a 200-question
# store took 0.45 s fragmented, 0.13 s compacted.
COMPACT_EVERY = 16
COUNT_DONE = "SELECT count(*) FROM questions_done"
COUNT_ROW_GROUPS = "SELECT count(DISTINCT row_group_id) FROM pragma_storage_info('samples')"
COMPACT_SMALL_TABLES = tuple(
    (
        f"CREATE TEMP TABLE _compact AS SELECT * FROM {table}",
        f"DELETE FROM {table}",
        f"INSERT INTO {table} SELECT * FROM _compact",
        "DROP TABLE _compact",
    )
    for table in ("problems", "samples", "answers", "questions_done")
)
# Vacuum would merge each question's trailing partial row group with the next question's rows at
# every checkpoint (on close), rewriting every chunk row once more: 3-5x slower closes.
WRITER_SETTINGS = "SET max_vacuum_tasks = 0"
# RunInfo fields that must match when a run is resumed: mixing them would corrupt its statistics.
_RESUME_FIELDS = ("kind", "model", "backend", "quantization", "hardware", "logprobs")


class TraceWriter:
    """Writes runs into one trace store, a question at a time.

    Holds no connection: each call opens the file read-write (waiting up to `lock_timeout_s` for
    readers to let go), does its work in one transaction and closes it. Not thread-safe; use one
    writer process per store.
    """

    def __init__(self, path: str | Path, *, lock_timeout_s: float = DEFAULT_LOCK_TIMEOUT_S) -> None:
        """Create the store (atomically) or migrate it forward; InputError if `path` is not one."""
        self.path = Path(path)
        self.lock_timeout_s = lock_timeout_s
        init_store(self.path, lock_timeout_s=lock_timeout_s)

    @contextmanager
    def _writing(self) -> Iterator[duckdb.DuckDBPyConnection]:
        with write_connection(self.path, lock_timeout_s=self.lock_timeout_s) as con:
            con.execute(WRITER_SETTINGS)
            yield con

    def start_run(self, run: RunInfo, *, resume: bool = False) -> None:
        """Insert the `runs` row with status 'running'.

        With `resume`, an existing run is kept (its identity fields must match), set back to
        'running', and the rows of its questions that have no `questions_done` marker are deleted.

        Raises:
            InputError: the run exists and `resume` is off, or resumed with other identity fields.
        """
        params = {
            "run_id": run.run_id,
            "kind": run.kind,
            "model": run.model,
            "backend": run.backend,
            "quantization": run.quantization,
            "hardware": run.hardware,
            "gen_config": json.dumps(run.gen_config, sort_keys=True),
            "policy": None if run.policy is None else json.dumps(run.policy, sort_keys=True),
            "notes": run.notes,
            "logprobs": None
            if run.logprobs is None
            else json.dumps(run.logprobs.to_json(), sort_keys=True),
        }
        with self._writing() as con:
            _begin(con)
            try:
                rows = con.execute(RUN_ROW, {"run_id": run.run_id}).fetchall()
                if not rows:
                    _execute(con, INSERT_RUN, params, self.path, "runs")
                elif not resume:
                    raise InputError(
                        str(self.path),
                        "run_id",
                        f"run {run.run_id!r} exists; resume it or pick another id",
                    )
                else:
                    for name, stored in zip(_RESUME_FIELDS, rows[0]):
                        if name == "logprobs" and stored is not None:
                            stored = json.dumps(json.loads(stored), sort_keys=True)
                        if stored != params[name]:
                            raise InputError(
                                str(self.path),
                                f"runs.{name}",
                                f"resuming run {run.run_id!r} with {params[name]!r}, "
                                f"stored {stored!r}",
                            )
                    for query in DELETE_PARTIAL:
                        con.execute(query, {"run_id": run.run_id})
                    con.execute(SET_RUN_STATUS, {"run_id": run.run_id, "status": "running"})
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise

    def done_questions(self, run_id: str) -> set[str]:
        """Problem ids of `run_id` whose rows are committed (with a `questions_done` marker)."""
        with read_connection(self.path, lock_timeout_s=self.lock_timeout_s) as con:
            rows = con.execute(COMPLETED_QUESTIONS, {"run_id": run_id}).fetchall()
        return {row[0] for row in rows}

    def write_question(
        self,
        run_id: str,
        problem: ProblemRow,
        samples: Frame,
        chunks: Frame,
        answers: Frame,
        *,
        wall_s: float | None = None,
        confidence: Mapping[int, SampleConfidence] | None = None,
    ) -> None:
        """Write one question of a started run in one transaction, ending with its done marker.

        The frames hold the columns of `samples`, `chunks` and `answers` minus run_id/problem_id
        (see `frames.py`); optional columns may be left out. Rows are inserted in bulk from Arrow.
        `confidence` maps sample_idx to its per-token arrays (samples left out have none).

        Raises:
            InputError: bad frames (naming `table.column`), an unknown run, or a question already
                written.
        """
        source = str(self.path)
        try:
            sample_table = to_arrow(samples, "samples", source)
            chunk_table = to_arrow(chunks, "chunks", source)
            answer_table = to_arrow(answers, "answers", source)
            check_question(sample_table, chunk_table, answer_table, source)
            conf_table = confidence_table(confidence or {}, sample_table, source)
        except InputError as exc:
            message = f"question {problem.problem_id!r}: {exc.message}"
            raise InputError(exc.source, exc.field, message) from None
        key = {"run_id": run_id, "problem_id": problem.problem_id}
        with self._writing() as con:
            _begin(con)
            try:
                if not con.execute(RUN_ROW, {"run_id": run_id}).fetchall():
                    message = f"unknown run {run_id!r}; call start_run first"
                    raise InputError(source, "run_id", message)
                if con.execute(IS_DONE, key).fetchall()[0][0]:
                    raise InputError(
                        source,
                        "problem_id",
                        f"question {problem.problem_id!r} of run {run_id!r} already written",
                    )
                problem_params = {
                    **key,
                    "position": problem.position,
                    "question": problem.question,
                    "answer": problem.answer,
                }
                _execute(con, INSERT_PROBLEM, problem_params, self.path, "problems")
                for name, table, query in (
                    ("samples", sample_table, INSERT_SAMPLES),
                    ("chunks", chunk_table, INSERT_CHUNKS),
                    ("answers", answer_table, INSERT_ANSWERS),
                    ("sample_confidence", conf_table, INSERT_CONFIDENCE),
                ):
                    _insert_arrow(con, f"_incoming_{name}", table, query, key, self.path, name)
                con.execute(INSERT_DONE, {**key, "wall_s": wall_s})
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise
            if con.execute(COUNT_DONE).fetchall()[0][0] % COMPACT_EVERY == 0:
                _compact(con)

    def finish_run(self, run_id: str, status: str = "complete") -> None:
        """Set the run's final status ('complete' or 'failed'; 'running' is accepted too).

        Raises:
            InputError: an unknown status or run.
        """
        if status not in RUN_STATUSES:
            message = f"bad status {status!r}; allowed: {', '.join(RUN_STATUSES)}"
            raise InputError(str(self.path), "runs.status", message)
        with self._writing() as con:
            if not con.execute(RUN_ROW, {"run_id": run_id}).fetchall():
                raise InputError(str(self.path), "run_id", f"unknown run {run_id!r}")
            con.execute(SET_RUN_STATUS, {"run_id": run_id, "status": status})
            if con.execute(COUNT_ROW_GROUPS).fetchall()[0][0] > 1:
                _compact(con)


def _compact(con: duckdb.DuckDBPyConnection) -> None:
    """Rewrite the small tables into few row groups, in one transaction, keeping row order.
    Only an optimisation: on any DuckDB error it is rolled back and skipped."""
    _begin(con)
    try:
        for statements in COMPACT_SMALL_TABLES:
            for statement in statements:
                con.execute(statement)
        con.execute("COMMIT")
    except duckdb.Error as exc:
        con.execute("ROLLBACK")
        logger.warning("could not compact the small tables: %s", exc)


def _begin(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("BEGIN TRANSACTION")


def _execute(
    con: duckdb.DuckDBPyConnection, query: str, params: dict, path: Path, table: str
) -> None:
    """Run one insert, turning a constraint violation into an InputError that names the table."""
    try:
        con.execute(query, params)
    except duckdb.ConstraintException as exc:
        raise InputError(str(path), table, f"constraint violated: {exc}") from exc


def _insert_arrow(
    con: duckdb.DuckDBPyConnection,
    view: str,
    table: pa.Table,
    query: str,
    params: dict,
    path: Path,
    name: str,
) -> None:
    """Bulk-insert an Arrow table through a registered view (DuckDB scans it zero-copy)."""
    con.register(view, table)
    try:
        _execute(con, query, params, path, name)
    finally:
        con.unregister(view)
