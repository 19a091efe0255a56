"""Tests of the DuckDB trace store: schema and migrations, writes, the event loader, lookups, and
the one-writer / many-readers design across real processes (including a SIGKILLed writer)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

from aimo.core.errors import InputError
from aimo.core.store import (
    LATEST_VERSION,
    ProblemRow,
    StoreBusyError,
    TraceWriter,
    completed_questions,
    list_runs,
    load_chunks,
    load_problem_traces,
    load_sample_text,
    read_connection,
    write_connection,
)
from aimo.core.store.migrations import MIGRATIONS, apply_migrations, discover_migrations
from aimo.core.traces import NO_VALUE, SOURCE_BOXED, SOURCE_CODE, RunInfo

WORKER = Path(__file__).with_name("store_worker.py")
RUN = RunInfo("r1", "record", model="m14b", backend="turbomind", gen_config={"temperature": 0.9})


def samples_frame(n: int = 2) -> pd.DataFrame:
    """`n` finished samples, alternating cot/code, without the optional columns."""
    return pd.DataFrame(
        {
            "sample_idx": list(range(n)),
            "kind": ["cot" if i % 2 == 0 else "code" for i in range(n)],
            "n_tokens": [10 * (i + 1) for i in range(n)],
            "finish_reason": ["stop"] * n,
        }
    )


def chunks_frame(n_samples: int = 2, n_chunks: int = 3) -> pd.DataFrame:
    """`n_chunks` chunks "c0", "c1", ... per sample."""
    return pd.DataFrame(
        {
            "sample_idx": np.repeat(np.arange(n_samples), n_chunks),
            "seq": np.tile(np.arange(n_chunks), n_samples),
            "n_tokens": np.tile(np.arange(1, n_chunks + 1), n_samples),
            "text": [f"c{j}" for _ in range(n_samples) for j in range(n_chunks)],
        }
    )


def answers_frame(rows: list[tuple] | None = None) -> pd.DataFrame:
    """Answers as (sample_idx, token_pos, source, value) rows; by default one boxed answer."""
    rows = [(0, 5, "boxed", 7)] if rows is None else rows
    return pd.DataFrame(rows, columns=["sample_idx", "token_pos", "source", "value"])


def write_simple(writer: TraceWriter, problem_id: str, position: int, run_id: str = "r1") -> None:
    problem = ProblemRow(problem_id, position, "Q", 7)
    writer.write_question(run_id, problem, samples_frame(), chunks_frame(), answers_frame())


def _tables(con: duckdb.DuckDBPyConnection) -> set[str]:
    rows = con.execute("SELECT table_name FROM information_schema.tables").fetchall()
    return {r[0] for r in rows}


@pytest.fixture()
def store(tmp_path: Path) -> Path:
    """A store with run r1 started and nothing written."""
    path = tmp_path / "t.duckdb"
    TraceWriter(path).start_run(RUN)
    return path


# --- schema, migrations, not-a-store --------------------------------------------------------------


def test_new_store_records_its_migrations_and_leaves_no_temp_files(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "new.duckdb"
    TraceWriter(path)
    with read_connection(path) as con:
        rows = con.execute("SELECT version, name, applied_at FROM schema_migrations").fetchall()
    assert [(v, n) for v, n, _ in rows] == [(m.version, m.name) for m in MIGRATIONS]
    assert [(v, n) for v, n, _ in rows][:2] == [(1, "init"), (2, "run_status_live_results")]
    assert rows[0][2] is not None
    assert LATEST_VERSION == MIGRATIONS[-1].version >= 3
    assert sorted(p.name for p in path.parent.iterdir()) == ["new.duckdb"]


def test_migrations_apply_in_order_once(tmp_path: Path) -> None:
    (tmp_path / "001_first.sql").write_text("CREATE TABLE a (x INTEGER);")
    (tmp_path / "002_second.sql").write_text(
        "ALTER TABLE a ADD COLUMN y INTEGER; INSERT INTO a VALUES (1, 2);"
    )
    migrations = discover_migrations(tmp_path)
    con = duckdb.connect()
    assert apply_migrations(con, migrations) == [1, 2]
    assert apply_migrations(con, migrations) == []
    recorded = con.execute("SELECT version, name FROM schema_migrations ORDER BY version")
    assert recorded.fetchall() == [(1, "first"), (2, "second")]
    assert con.execute("SELECT * FROM a").fetchall() == [(1, 2)]


def test_failed_migration_is_rolled_back(tmp_path: Path) -> None:
    (tmp_path / "001_ok.sql").write_text("CREATE TABLE a (x INTEGER);")
    (tmp_path / "002_bad.sql").write_text("CREATE TABLE b (x INTEGER); SELECT * FROM missing;")
    con = duckdb.connect()
    with pytest.raises(duckdb.Error):
        apply_migrations(con, discover_migrations(tmp_path))
    assert con.execute("SELECT version FROM schema_migrations").fetchall() == [(1,)]
    assert "b" not in _tables(con)


def test_migration_numbers_may_have_gaps(tmp_path: Path) -> None:
    (tmp_path / "001_a.sql").write_text("CREATE TABLE a (x INTEGER);")
    (tmp_path / "003_c.sql").write_text("CREATE TABLE c (x INTEGER);")
    con = duckdb.connect()
    assert apply_migrations(con, discover_migrations(tmp_path)) == [1, 3]


@pytest.mark.parametrize(
    "names", [["001_a.sql", "001_b.sql"], ["000_a.sql"], ["1_a.sql"], ["001_A-b.sql"]]
)
def test_bad_migration_files_are_rejected(tmp_path: Path, names: list[str]) -> None:
    for name in names:
        (tmp_path / name).write_text("SELECT 1;")
    with pytest.raises(InputError):
        discover_migrations(tmp_path)


def test_text_file_is_not_a_store(tmp_path: Path) -> None:
    path = tmp_path / "notes.duckdb"
    path.write_text("hello\n" * 100)
    for call in (
        lambda: load_problem_traces(path),
        lambda: list_runs(path),
        lambda: TraceWriter(path),
    ):
        with pytest.raises(InputError) as info:
            call()
        assert info.value.source == str(path)
        assert "DuckDB" in info.value.message
    assert path.read_text() == "hello\n" * 100


def test_foreign_duckdb_file_is_not_a_store_and_is_left_untouched(tmp_path: Path) -> None:
    path = tmp_path / "other.duckdb"
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE users (name VARCHAR); INSERT INTO users VALUES ('ann')")
    con.close()
    for call in (lambda: list_runs(path), lambda: TraceWriter(path)):
        with pytest.raises(InputError, match="not a trace store") as info:
            call()
        assert info.value.source == str(path)
    con = duckdb.connect(str(path), read_only=True)
    tables = _tables(con)
    con.close()
    assert tables == {"users"}


def test_missing_file_is_an_error_for_readers_and_not_created(tmp_path: Path) -> None:
    path = tmp_path / "absent.duckdb"
    with pytest.raises(InputError, match="no such trace store") as info:
        load_problem_traces(path)
    assert info.value.source == str(path)
    assert not path.exists()


def test_store_from_a_newer_schema_is_refused(store: Path) -> None:
    with write_connection(store) as con:
        con.execute("INSERT INTO schema_migrations (version, name) VALUES (99, 'future')")
    with pytest.raises(InputError) as info:
        list_runs(store)
    assert info.value.field == "schema_migrations.version"
    with pytest.raises(InputError):
        TraceWriter(store)


# --- writing --------------------------------------------------------------------------------------


def test_start_run_twice_needs_resume_and_matching_identity(store: Path) -> None:
    writer = TraceWriter(store)
    with pytest.raises(InputError) as info:
        writer.start_run(RUN)
    assert info.value.field == "run_id"
    with pytest.raises(InputError) as info:
        writer.start_run(RunInfo("r1", "record", model="other", backend="turbomind"), resume=True)
    assert info.value.field == "runs.model"
    writer.start_run(RUN, resume=True)
    assert [r.status for r in list_runs(store)] == ["running"]


def test_write_question_requires_a_started_run_and_refuses_duplicates(store: Path) -> None:
    writer = TraceWriter(store)
    with pytest.raises(InputError) as info:
        write_simple(writer, "p1", 0, run_id="nope")
    assert info.value.field == "run_id"
    write_simple(writer, "p1", 0)
    with pytest.raises(InputError) as info:
        write_simple(writer, "p1", 0)
    assert info.value.field == "problem_id"
    with read_connection(store) as con:
        assert con.execute("SELECT count(*) FROM chunks").fetchall() == [(6,)]
        assert con.execute("SELECT count(*) FROM samples").fetchall() == [(2,)]


@pytest.mark.parametrize(
    ("table", "mutate", "field"),
    [
        ("chunks", lambda f: f.drop(columns=["n_tokens"]), "chunks.n_tokens"),
        ("chunks", lambda f: f.assign(tokens=1), "chunks.tokens"),
        ("samples", lambda f: f.assign(kind=["cot", "essay"]), "samples.kind"),
        ("samples", lambda f: f.assign(sample_idx=[0, 0]), "samples.sample_idx"),
        ("samples", lambda f: f.assign(n_tokens=[1, None]), "samples.n_tokens"),
        ("samples", lambda f: f.assign(n_tokens=["a", "b"]), "samples.n_tokens"),
        ("answers", lambda f: f.assign(sample_idx=5), "answers.sample_idx"),
        ("answers", lambda f: f.assign(value=1000), "answers.value"),
        ("answers", lambda f: f.assign(source="guess"), "answers.source"),
        ("chunks", lambda f: f.assign(sample_idx=9), "chunks.sample_idx"),
    ],
)
def test_bad_frames_name_table_and_column_and_write_nothing(
    store: Path, table: str, mutate: object, field: str
) -> None:
    frames = {"samples": samples_frame(), "chunks": chunks_frame(), "answers": answers_frame()}
    frames[table] = mutate(frames[table])  # type: ignore[operator]
    with pytest.raises(InputError) as info:
        TraceWriter(store).write_question("r1", ProblemRow("p1", 0, None, None), **frames)
    assert info.value.field == field
    assert info.value.source == str(store)
    assert "question 'p1'" in info.value.message
    assert completed_questions(store, "r1") == set()


def test_a_failing_insert_rolls_the_whole_question_back(store: Path) -> None:
    writer = TraceWriter(store)
    with pytest.raises(InputError) as info:  # answer 1234 violates the problems CHECK
        writer.write_question(
            "r1", ProblemRow("p1", 0, "Q", 1234), samples_frame(), chunks_frame(), answers_frame()
        )
    assert info.value.field == "problems"
    with read_connection(store) as con:
        for table in ("problems", "samples", "chunks", "answers", "questions_done"):
            assert con.execute(f"SELECT count(*) FROM {table}").fetchall() == [(0,)], table
    write_simple(writer, "p1", 0)  # the same question can then be written
    assert completed_questions(store, "r1") == {"p1"}


def test_resume_deletes_rows_of_questions_without_marker(store: Path) -> None:
    writer = TraceWriter(store)
    write_simple(writer, "p1", 0)
    with write_connection(store) as con:  # what an interrupted non-atomic writer could leave
        con.execute("INSERT INTO problems VALUES ('r1', 'p2', 1, 'Q', 3)")
        con.execute(
            "INSERT INTO samples (run_id, problem_id, sample_idx, kind, n_tokens, finish_reason) "
            "VALUES ('r1', 'p2', 0, 'cot', 5, 'stop')"
        )
        con.execute("INSERT INTO chunks VALUES ('r1', 'p2', 0, 0, 0.1, 5, 'partial')")
        con.execute(
            "INSERT INTO answers (run_id, problem_id, sample_idx, token_pos, source, value) "
            "VALUES ('r1', 'p2', 0, 5, 'boxed', 3)"
        )
    assert [t.problem_id for t in load_problem_traces(store)] == ["p1"]
    assert list_runs(store)[0].n_samples == 2
    writer.start_run(RUN, resume=True)
    with read_connection(store) as con:
        for table in ("problems", "samples", "chunks", "answers"):
            rows = con.execute(f"SELECT count(*) FROM {table} WHERE problem_id = 'p2'").fetchall()
            assert rows == [(0,)], table
        p1_chunks = con.execute("SELECT count(*) FROM chunks WHERE problem_id = 'p1'")
        assert p1_chunks.fetchall() == [(6,)]
    write_simple(writer, "p2", 1)
    assert completed_questions(store, "r1") == {"p1", "p2"}


def test_finish_run_sets_status(store: Path) -> None:
    writer = TraceWriter(store)
    writer.finish_run("r1", "failed")
    assert list_runs(store)[0].status == "failed"
    with pytest.raises(InputError) as info:
        writer.finish_run("r1", "done")
    assert info.value.field == "runs.status"
    with pytest.raises(InputError):
        writer.finish_run("zz")


def test_arrow_tables_are_accepted(store: Path) -> None:
    import pyarrow as pa

    writer = TraceWriter(store)
    writer.write_question(
        "r1",
        ProblemRow("p1", 0, None, None),
        pa.Table.from_pandas(samples_frame()),
        pa.Table.from_pandas(chunks_frame()),
        pa.Table.from_pandas(answers_frame()),
    )
    assert completed_questions(store, "r1") == {"p1"}


# --- the event loader -----------------------------------------------------------------------------


def test_loader_returns_exact_event_arrays(store: Path) -> None:
    writer = TraceWriter(store)
    samples = pd.DataFrame(
        {
            "sample_idx": [0, 1, 2],
            "kind": ["cot", "code", "cot"],
            "prompt_tokens": [120, 130, 140],
            "end_s": [10.0, None, 3.0],
            "n_tokens": [400, 500, 60],
            "finish_reason": ["stop", "length", "abort"],
        }
    )
    answers = pd.DataFrame(  # deliberately not in token order
        [
            (1, 300, 5.0, "code", 42, True, 12.5),
            (0, 100, None, "boxed", None, None, None),
            (1, 50, 2.0, "boxed", 7, None, None),
            (0, 20, 1.0, "boxed", 999, None, None),
            (1, 300, 6.0, "code", None, False, 30000.0),
        ],
        columns=["sample_idx", "token_pos", "t_s", "source", "value", "code_ok", "exec_ms"],
    )
    chunks = chunks_frame(3, 4)
    writer.write_question("r1", ProblemRow("a", 1, "QA", 42), samples, chunks, answers, wall_s=12.0)
    writer.write_question(
        "r1", ProblemRow("b", 0, "QB", None), samples_frame(1), chunks_frame(1), answers_frame()
    )
    writer.write_question(
        "r1", ProblemRow("c", 2, "QC", 5), samples_frame(0), chunks_frame(0), answers_frame([])
    )
    traces = load_problem_traces(store)
    assert [(t.problem_id, t.position, t.answer, len(t.samples)) for t in traces] == [
        ("b", 0, None, 1),
        ("a", 1, 42, 3),
        ("c", 2, 5, 0),
    ]
    a = traces[1]
    assert a.run_id == "r1"
    s0, s1, s2 = a.samples
    assert (s0.sample, s0.kind, s0.n_tokens, s0.finish_reason, s0.prompt_tokens, s0.end_s) == (
        0, "cot", 400, "stop", 120, 10.0
    )
    assert (s1.kind, s1.finish_reason) == ("code", "length") and np.isnan(s1.end_s)
    np.testing.assert_array_equal(s0.ans_token, [20, 100])
    np.testing.assert_array_equal(s0.ans_value, [999, NO_VALUE])
    np.testing.assert_array_equal(s0.ans_time, [1.0, np.nan])
    np.testing.assert_array_equal(s0.ans_source, [SOURCE_BOXED, SOURCE_BOXED])
    np.testing.assert_array_equal(s1.ans_token, [50, 300, 300])
    np.testing.assert_array_equal(s1.ans_time, [2.0, 5.0, 6.0])
    np.testing.assert_array_equal(s1.ans_value, [7, 42, NO_VALUE])
    np.testing.assert_array_equal(s1.ans_source, [SOURCE_BOXED, SOURCE_CODE, SOURCE_CODE])
    np.testing.assert_array_equal(s1.ans_code_ok, [False, True, False])
    np.testing.assert_array_equal(s1.ans_exec_ms, np.array([np.nan, 12.5, 30000.0], np.float32))
    assert s2.n_answers == 0 and s2.finish_reason == "abort"
    for s in a.samples:
        assert s.ans_token.dtype == np.int32 and s.ans_time.dtype == np.float64
        assert s.ans_value.dtype == np.int16 and s.ans_source.dtype == np.int8
        assert s.ans_code_ok.dtype == np.bool_ and s.ans_exec_ms.dtype == np.float32
        assert not s.ans_token.flags.writeable
    assert a.of_kind("code") == (s1,)


def test_loader_never_reads_chunks(store: Path) -> None:
    write_simple(TraceWriter(store), "p1", 0)
    with write_connection(store) as con:  # a chunks "table" that fails whenever it is scanned
        con.execute("ALTER TABLE chunks RENAME TO chunks_real")
        con.execute(
            "CREATE VIEW chunks AS "
            "SELECT * FROM chunks_real WHERE error('chunks were read') IS NULL"
        )
    with pytest.raises(duckdb.Error, match="chunks were read"):
        load_chunks(store, "r1", "p1")
    traces = load_problem_traces(store, "r1")
    assert [t.problem_id for t in traces] == ["p1"]
    assert traces[0].samples[0].ans_value.tolist() == [7]


def test_loader_run_selection(store: Path) -> None:
    writer = TraceWriter(store)
    write_simple(writer, "p1", 0)
    assert len(load_problem_traces(store)) == 1
    writer.start_run(RunInfo("r2", "synthetic"))
    with pytest.raises(InputError, match="r1, r2") as info:
        load_problem_traces(store)
    assert info.value.field == "run_id"
    with pytest.raises(InputError, match="unknown run"):
        load_problem_traces(store, "r3")
    assert load_problem_traces(store, "r2") == []
    empty = store.with_name("empty.duckdb")
    TraceWriter(empty)
    with pytest.raises(InputError, match="no runs"):
        load_problem_traces(empty)


def test_small_tables_are_compacted_without_changing_what_loads(store: Path) -> None:
    from aimo.core.store.writer import COMPACT_EVERY, COUNT_ROW_GROUPS

    writer = TraceWriter(store)
    tie = answers_frame([(0, 5, "boxed", 5), (0, 5, "boxed", 6), (0, 5, "boxed", 4)])  # same token
    n = COMPACT_EVERY + 3
    for k in range(n):
        problem = ProblemRow(f"p{k:02d}", k, None, None)
        writer.write_question("r1", problem, samples_frame(), chunks_frame(), tie)
    with read_connection(store) as con:
        assert 1 <= con.execute(COUNT_ROW_GROUPS).fetchall()[0][0] <= 4  # compacted at 16
    writer.finish_run("r1")
    with read_connection(store) as con:
        assert con.execute(COUNT_ROW_GROUPS).fetchall()[0][0] == 1
        assert con.execute("SELECT count(*) FROM samples").fetchall() == [(2 * n,)]
    traces = load_problem_traces(store)
    assert [t.problem_id for t in traces] == [f"p{k:02d}" for k in range(n)]
    assert all(t.samples[0].ans_value.tolist() == [5, 6, 4] for t in traces)  # write order kept


# --- lookups --------------------------------------------------------------------------------------


def test_list_runs_counts_completed_questions(store: Path) -> None:
    writer = TraceWriter(store)
    write_simple(writer, "p1", 0)
    write_simple(writer, "p2", 1)
    writer.finish_run("r1")
    writer.start_run(RunInfo("r2", "synthetic", policy={"k": 1}, notes="n"))
    runs = list_runs(store)
    assert [r.run_id for r in runs] == ["r1", "r2"]
    r1, r2 = runs
    counts = (r1.n_problems, r1.n_samples, r1.n_tokens, r1.n_answers, r1.status)
    assert counts == (2, 4, 60, 2, "complete")
    assert (r2.n_problems, r2.n_samples, r2.n_tokens, r2.status) == (0, 0, 0, "running")
    assert r1.info == RUN
    assert r2.info.policy == {"k": 1} and r2.info.notes == "n"


def test_load_chunks_and_text_follow_seq_order(store: Path) -> None:
    chunks = chunks_frame(2, 4).sample(frac=1.0, random_state=3)  # shuffled rows
    TraceWriter(store).write_question(
        "r1", ProblemRow("p1", 0, None, None), samples_frame(), chunks, answers_frame()
    )
    frame = load_chunks(store, "r1", "p1")
    assert list(frame.columns) == ["sample_idx", "seq", "t_s", "n_tokens", "text"]
    keys = frame[["sample_idx", "seq"]].values.tolist()
    assert keys == [[s, q] for s in range(2) for q in range(4)]
    assert frame["t_s"].isna().all()
    one = load_chunks(store, "r1", "p1", 1)
    assert one["sample_idx"].tolist() == [1] * 4
    assert one["text"].tolist() == ["c0", "c1", "c2", "c3"]
    assert load_sample_text(store, "r1", "p1", 0) == "c0c1c2c3"
    for args, field in (
        (("r9", "p1", 0), "run_id"),
        (("r1", "p9", 0), "problem_id"),
        (("r1", "p1", 7), "sample_idx"),
    ):
        with pytest.raises(InputError) as info:
            load_sample_text(store, *args)
        assert info.value.field == field


def test_sample_text_with_null_chunks_is_empty(store: Path) -> None:
    chunks = chunks_frame().drop(columns=["text"])
    problem = ProblemRow("p1", 0, None, None)
    TraceWriter(store).write_question("r1", problem, samples_frame(), chunks, answers_frame())
    assert load_sample_text(store, "r1", "p1", 1) == ""


# --- locking and processes ------------------------------------------------------------------------


def _hold_write_lock(path: Path, seconds: float) -> subprocess.Popen:
    """A separate process that holds the store read-write for `seconds`, once it has printed."""
    code = (
        "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); print('locked', flush=True); "
        "time.sleep(float(sys.argv[2])); c.close()"
    )
    command = [sys.executable, "-c", code, str(path), str(seconds)]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "locked"
    return proc


def test_reader_waits_for_a_writer_lock_then_reads(store: Path) -> None:
    proc = _hold_write_lock(store, 1.0)
    start = time.monotonic()
    try:
        assert completed_questions(store, "r1", lock_timeout_s=20.0) == set()
    finally:
        proc.wait(timeout=30)
    assert time.monotonic() - start > 0.3


def test_lock_timeout_raises_store_busy_naming_the_file(store: Path) -> None:
    proc = _hold_write_lock(store, 1.5)
    try:
        with pytest.raises(StoreBusyError) as info:
            list_runs(store, lock_timeout_s=0.3)
        with pytest.raises(StoreBusyError):
            TraceWriter(store, lock_timeout_s=0.3)
    finally:
        proc.wait(timeout=30)
    assert info.value.source == str(store)
    assert isinstance(info.value, InputError)


def _worker(*args: str) -> list[str]:
    return [sys.executable, str(WORKER), *args]


def _spawn(*args: str) -> subprocess.Popen:
    pipe = subprocess.PIPE
    return subprocess.Popen(_worker(*args), stdout=pipe, stderr=pipe, text=True)


def _report(output: str) -> dict:
    return json.loads(output.strip().splitlines()[-1])


def test_writer_and_reader_processes_run_concurrently(tmp_path: Path) -> None:
    path = str(tmp_path / "live.duckdb")
    size = ("--samples", "2", "--chunks", "50")
    writer = _spawn("write", path, "live", "40", *size)
    reader = _spawn("read", path, "live", "40", *size, "--interval", "0.03")
    w_out, w_err = writer.communicate(timeout=120)
    r_out, r_err = reader.communicate(timeout=120)
    assert writer.returncode == 0, w_err
    assert reader.returncode == 0, r_err
    seen = _report(r_out)
    counts = seen["counts"]
    assert counts[-1] == 40
    assert all(a <= b for a, b in zip(counts, counts[1:])), counts
    assert any(0 < c < 40 for c in counts), "the reader never overlapped the writer"
    assert seen["retries"] + _report(w_out)["retries"] > 0, "the two processes never contended"
    assert len(completed_questions(path, "live")) == 40


def test_killed_writer_resumes_without_duplicates(tmp_path: Path) -> None:
    path = tmp_path / "kill.duckdb"
    n, n_samples, n_chunks = 15, 4, 500
    args = ["--samples", str(n_samples), "--chunks", str(n_chunks)]
    writer = _spawn("write", str(path), "k", str(n), *args)
    assert writer.stdout is not None
    for _ in range(3):  # wait until a few questions are committed, then kill mid-run
        assert writer.stdout.readline().startswith("wrote ")
    os.kill(writer.pid, signal.SIGKILL)
    writer.wait(timeout=30)
    partial = completed_questions(path, "k")
    assert 3 <= len(partial) < n
    command = _worker("write", str(path), "k", str(n), "--resume", *args)
    resumed = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert resumed.returncode == 0, resumed.stderr
    rewritten = sum(line.startswith("wrote ") for line in resumed.stdout.splitlines())
    assert rewritten == n - len(partial)
    with read_connection(path) as con:
        q = "SELECT count(*), count(DISTINCT (problem_id, sample_idx, seq)) FROM chunks"
        assert con.execute(q).fetchall() == [(n * n_samples * n_chunks,) * 2]
        q = "SELECT count(*), count(DISTINCT (problem_id, sample_idx)) FROM samples"
        assert con.execute(q).fetchall() == [(n * n_samples,) * 2]
        assert con.execute("SELECT count(*) FROM answers").fetchall() == [(n * n_samples * 2,)]
        assert con.execute("SELECT count(*) FROM problems").fetchall() == [(n,)]
    traces = load_problem_traces(path)
    assert [t.problem_id for t in traces] == [f"q{k:03d}" for k in range(n)]
    assert list_runs(path)[0].status == "complete"


def test_compact_copy_keeps_every_table_and_row(tmp_path: Path) -> None:
    from aimo.core.store.compact import compact_copy, main

    src = Path(__file__).resolve().parents[2] / "data" / "traces" / "gpu-smoke.duckdb"
    dst = tmp_path / "copy.duckdb"
    dst.write_bytes(b"stale")  # replaced, not appended to
    compact_copy(src, dst)
    with duckdb.connect(str(src), read_only=True) as a, duckdb.connect(str(dst), read_only=True) as b:
        tables = [t for (t,) in a.execute("SELECT table_name FROM information_schema.tables "
                                          "ORDER BY 1").fetchall()]
        assert tables == [t for (t,) in b.execute("SELECT table_name FROM "
                                                  "information_schema.tables ORDER BY 1").fetchall()]
        for t in tables:
            assert a.execute(f"SELECT count(*) FROM {t}").fetchall() == \
                b.execute(f"SELECT count(*) FROM {t}").fetchall(), t
    def summary(path: Path, run: str) -> list:
        return [(p.problem_id, [(s.sample, s.n_tokens, s.end_s, s.ans_token.tolist(),
                                 s.ans_value.tolist()) for s in p.samples])
                for p in load_problem_traces(path, run)]

    for run in ("gpu-smoke", "gpu-smoke-fixed"):
        assert summary(dst, run) == summary(src, run)
    fresh = tmp_path / "fresh.duckdb"
    assert main([str(dst), str(fresh)]) == 0 and fresh.exists()
    assert main([str(dst)]) == 2
