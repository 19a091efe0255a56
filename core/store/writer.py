"""The only writer of a trace store: one short read-write connection, one transaction a question.

A question's problem row, samples, chunks, answers and its `questions_done` marker commit together,
so a killed writer loses at most the question in flight; between questions the file is closed so
read-only readers (dashboard, simulator) can open it.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import duckdb
import pyarrow as pa

from aimo.core.errors import InputError
from aimo.core.store import spool
from aimo.core.store.confidence import confidence_table
from aimo.core.store.connect import (
    DEFAULT_LOCK_TIMEOUT_S,
    StoreBusyError,
    init_store,
    read_connection,
    write_connection,
)
from aimo.core.store.frames import Frame, check_question, to_arrow
from aimo.core.store.reader import COMPLETED_QUESTIONS
from aimo.core.store.records import LiveResult, ProblemRow, SampleConfidence
from aimo.core.store.run_state import WriterMark, this_writer, writer_alive
from aimo.core.traces import RunInfo

logger = logging.getLogger("aimo.core.store")

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
SET_RUN_STATUS = """
UPDATE runs SET status = $status,
                finished_at = CASE WHEN $status = 'running' THEN NULL ELSE current_timestamp END
WHERE run_id = $run_id
"""
SET_WRITER = """
UPDATE runs SET writer_pid = $pid, writer_host = $host, heartbeat_at = current_timestamp,
                budget_s = coalesce($budget_s, budget_s)
WHERE run_id = $run_id
"""
HEARTBEAT = "UPDATE runs SET heartbeat_at = current_timestamp WHERE run_id = $run_id"
RUN_WRITER = "SELECT status, writer_pid, writer_host, heartbeat_at FROM runs WHERE run_id = $run_id"
DELETE_RUN = tuple(
    f"DELETE FROM {table} WHERE run_id = $run_id"
    for table in ("chunks", "answers", "sample_confidence", "samples", "problems",
                  "questions_done", "runs")
)
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
INSERT INTO questions_done (run_id, problem_id, wall_s, final_answer, stop_reason, level, start_s,
                            decided_s)
VALUES ($run_id, $problem_id, $wall_s, $final_answer, $stop_reason, $level, $start_s, $decided_s)
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

    With `spool_after_s` set (the live solver and the recorder), `write_question` and
    `finish_run` wait at most that long for the lock and otherwise append to the spool beside
    the store (`core.store.spool`), committed by the next write that gets the lock, by any
    later open of the store, or by `aimo runs`: the caller is never held up and nothing is lost.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        lock_timeout_s: float = DEFAULT_LOCK_TIMEOUT_S,
        spool_after_s: float | None = None,
    ) -> None:
        """Create the store (atomically) or migrate it forward and commit any spooled entries;
        InputError if `path` is not a store."""
        self.path = Path(path)
        self.lock_timeout_s = lock_timeout_s
        self.spool_after_s = spool_after_s
        init_store(self.path, lock_timeout_s=lock_timeout_s)
        self.flush(lock_timeout_s)

    @contextmanager
    def _writing(self, lock_timeout_s: float | None = None) -> Iterator[duckdb.DuckDBPyConnection]:
        timeout = self.lock_timeout_s if lock_timeout_s is None else lock_timeout_s
        with write_connection(self.path, lock_timeout_s=timeout, flush=False) as con:
            con.execute(WRITER_SETTINGS)
            yield con

    def flush(self, lock_timeout_s: float | None = None) -> int:
        """Commit the spooled entries if the lock comes within the timeout; return how many."""
        timeout = self.lock_timeout_s if lock_timeout_s is None else lock_timeout_s
        try:
            return flush_spool(self.path, lock_timeout_s=timeout)
        except StoreBusyError:
            return 0

    def start_run(self, run: RunInfo, *, resume: bool = False, budget_s: float | None = None) -> None:
        """Insert the `runs` row with status 'running', owned by this process (pid, host).

        With `resume`, an existing run is kept (its identity fields must match), set back to
        'running', and the rows of its questions that have no `questions_done` marker are deleted.

        Raises:
            InputError: the run exists and `resume` is off, resumed with other identity fields,
                or resumed while another live process still writes it.
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
        pid, host = this_writer()
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
                        f"run {run.run_id!r} exists; resume it (--resume) or pick another id",
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
                    _refuse_live_writer(con, run.run_id, self.path, pid, host)
                    for query in DELETE_PARTIAL:
                        con.execute(query, {"run_id": run.run_id})
                    con.execute(SET_RUN_STATUS, {"run_id": run.run_id, "status": "running"})
                con.execute(SET_WRITER, {"run_id": run.run_id, "pid": pid, "host": host,
                                         "budget_s": budget_s})
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
        live: LiveResult | None = None,
    ) -> str:
        """Write one question of a started run in one transaction, ending with its done marker.

        The frames hold the columns of `samples`, `chunks` and `answers` minus run_id/problem_id
        (see `frames.py`); optional columns may be left out. Rows are inserted in bulk from Arrow.
        `confidence` maps sample_idx to its per-token arrays (samples left out have none).
        `live` holds what the live solver answered. Returns 'committed', or 'spooled' when a
        spooling writer could not get the lock in time (see the class docstring).

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
        tables = {"samples": sample_table, "chunks": chunk_table, "answers": answer_table,
                  "sample_confidence": conf_table}
        if self.spool_after_s is None:
            with self._writing() as con:
                _write_question_on(con, self.path, run_id, problem, tables, wall_s, live)
            return "committed"
        if spool.pending(self.path):
            self.flush(self.spool_after_s)
        if not spool.pending(self.path):
            try:
                with self._writing(self.spool_after_s) as con:
                    _write_question_on(con, self.path, run_id, problem, tables, wall_s, live)
                return "committed"
            except StoreBusyError:
                pass
        meta = {
            "op": "question", "run_id": run_id, "problem": dataclasses.asdict(problem),
            "wall_s": wall_s, "live": None if live is None else dataclasses.asdict(live),
        }
        spool.append(self.path, meta, tables)
        logger.warning("store %s busy: question %s spooled to %s (committed when the lock frees)",
                       self.path, problem.problem_id, spool.spool_dir(self.path))
        return "spooled"

    def finish_run(self, run_id: str, status: str = "complete") -> str:
        """Set the run's final status ('complete' or 'failed'; 'running' is accepted too).

        Returns 'committed', or 'spooled' (spooling writer, store busy).

        Raises:
            InputError: an unknown status or run.
        """
        if status not in RUN_STATUSES:
            message = f"bad status {status!r}; allowed: {', '.join(RUN_STATUSES)}"
            raise InputError(str(self.path), "runs.status", message)
        if self.spool_after_s is not None:
            self.flush(self.spool_after_s)
            if spool.pending(self.path):
                spool.append(self.path, {"op": "status", "run_id": run_id, "status": status})
                return "spooled"
            try:
                with self._writing(self.spool_after_s) as con:
                    _set_status_on(con, self.path, run_id, status)
                return "committed"
            except StoreBusyError:
                spool.append(self.path, {"op": "status", "run_id": run_id, "status": status})
                return "spooled"
        with self._writing() as con:
            _set_status_on(con, self.path, run_id, status)
        return "committed"

    def delete_run(self, run_id: str) -> None:
        """Delete a run and every row of it, in one transaction.

        Raises:
            InputError: an unknown run, or one whose writer is still alive.
        """
        pid, host = this_writer()
        with self._writing() as con:
            _begin(con)
            try:
                if not con.execute(RUN_ROW, {"run_id": run_id}).fetchall():
                    raise InputError(str(self.path), "run_id", f"unknown run {run_id!r}")
                _refuse_live_writer(con, run_id, self.path, pid, host)
                for query in DELETE_RUN:
                    con.execute(query, {"run_id": run_id})
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise


def _refuse_live_writer(
    con: duckdb.DuckDBPyConnection, run_id: str, path: Path, pid: int, host: str
) -> None:
    """InputError when another live process is writing `run_id` (resume/delete would race it)."""
    status, w_pid, w_host, beat = con.execute(RUN_WRITER, {"run_id": run_id}).fetchall()[0]
    if status != "running" or (w_pid, w_host) == (pid, host):
        return
    mark = WriterMark(w_pid, w_host, beat)
    now = con.execute("SELECT current_timestamp::TIMESTAMP").fetchall()[0][0]
    if writer_alive(mark, now):
        raise InputError(
            str(path), "run_id",
            f"run {run_id!r} is being written by pid {w_pid} on {w_host}; stop it first "
            "(or `aimo runs mark-failed` once it is gone)",
        )


def _write_question_on(
    con: duckdb.DuckDBPyConnection,
    path: Path,
    run_id: str,
    problem: ProblemRow,
    tables: dict[str, pa.Table],
    wall_s: float | None,
    live: LiveResult | None,
    *,
    skip_if_done: bool = False,
) -> bool:
    """One question's transaction on an open read-write connection; False if skipped as done."""
    source = str(path)
    key = {"run_id": run_id, "problem_id": problem.problem_id}
    _begin(con)
    try:
        if not con.execute(RUN_ROW, {"run_id": run_id}).fetchall():
            message = f"unknown run {run_id!r}; call start_run first"
            raise InputError(source, "run_id", message)
        if con.execute(IS_DONE, key).fetchall()[0][0]:
            if skip_if_done:
                con.execute("ROLLBACK")
                return False
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
        _execute(con, INSERT_PROBLEM, problem_params, path, "problems")
        for name, query in (
            ("samples", INSERT_SAMPLES), ("chunks", INSERT_CHUNKS), ("answers", INSERT_ANSWERS),
            ("sample_confidence", INSERT_CONFIDENCE),
        ):
            if name in tables:  # a spool entry from before confidence has no such table
                _insert_arrow(con, f"_incoming_{name}", tables[name], query, key, path, name)
        done = {**key, "wall_s": wall_s, "final_answer": None, "stop_reason": None,
                "level": None, "start_s": None, "decided_s": None}
        if live is not None:
            done.update(dataclasses.asdict(live))
        _execute(con, INSERT_DONE, done, path, "questions_done")
        con.execute(HEARTBEAT, {"run_id": run_id})
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    if con.execute(COUNT_DONE).fetchall()[0][0] % COMPACT_EVERY == 0:
        _compact(con)
    return True


def _set_status_on(con: duckdb.DuckDBPyConnection, path: Path, run_id: str, status: str) -> None:
    if not con.execute(RUN_ROW, {"run_id": run_id}).fetchall():
        raise InputError(str(path), "run_id", f"unknown run {run_id!r}")
    con.execute(SET_RUN_STATUS, {"run_id": run_id, "status": status})
    if con.execute(COUNT_ROW_GROUPS).fetchall()[0][0] > 1:
        _compact(con)


def flush_spool(path: str | Path, *, lock_timeout_s: float = DEFAULT_LOCK_TIMEOUT_S) -> int:
    """Commit the spooled entries of the store `path`, oldest first; return how many committed.

    An entry the store refuses (its run was deleted, a bad frame) is moved aside as
    `rejected-<name>` in the spool folder and logged, never deleted.

    Raises:
        StoreBusyError: the lock did not come within `lock_timeout_s`.
    """
    p = Path(path)
    if not spool.pending(p):
        return 0
    committed = 0
    with write_connection(p, lock_timeout_s=lock_timeout_s, flush=False) as con:
        con.execute(WRITER_SETTINGS)
        for entry_path in spool.pending(p):
            entry = spool.read(entry_path)
            if entry is None:
                continue
            meta = entry.meta
            try:
                if meta.get("op") == "status":
                    _set_status_on(con, p, meta["run_id"], meta["status"])
                else:
                    live = meta.get("live")
                    tables = {name: to_arrow(entry.tables[name], name, str(p))
                              for name in ("samples", "chunks", "answers")}
                    if "sample_confidence" in entry.tables:
                        tables["sample_confidence"] = entry.tables["sample_confidence"]
                    check_question(tables["samples"], tables["chunks"], tables["answers"], str(p))
                    _write_question_on(
                        con, p, meta["run_id"], ProblemRow(**meta["problem"]), tables,
                        meta.get("wall_s"), None if live is None else LiveResult(**live),
                        skip_if_done=True,
                    )
            except (InputError, KeyError, TypeError, ValueError, duckdb.Error, pa.ArrowException) as exc:
                target = entry_path.with_name(f"{spool.REJECTED_PREFIX}{entry_path.name}")
                logger.error("spooled entry %s refused by the store (%s); kept as %s",
                             entry_path, exc, target)
                try:
                    entry_path.rename(target)
                except OSError:
                    pass
                continue
            spool.remove(entry_path)
            committed += 1
    if committed:
        logger.info("committed %d spooled entr%s into %s", committed, "y" if committed == 1 else "ies", p)
    return committed


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
