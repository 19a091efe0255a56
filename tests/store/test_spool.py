"""The writer never waits on, and never loses data to, a reader holding the store: it spools
beside the store and any later open commits the spool (issue 14, "No data lost to a busy reader").
Every test uses a real second process holding DuckDB's file lock."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from aimo.core.errors import InputError
from aimo.core.store import ProblemRow, TraceWriter, list_runs, load_problem_traces
from aimo.core.store import spool
from aimo.core.traces import RunInfo
from tests.store.store_worker import question_frames

WORKER = Path(__file__).with_name("store_worker.py")
RUN = RunInfo("live", "solve", model="m")


def _env() -> dict[str, str]:
    root = str(Path(__file__).resolve().parents[2])
    return {**os.environ, "PYTHONPATH": root + os.pathsep + os.environ.get("PYTHONPATH", "")}


def _holder(path: Path, seconds: float) -> subprocess.Popen:
    """A separate process holding a read-only connection to `path` for `seconds`."""
    proc = subprocess.Popen(
        [sys.executable, str(WORKER), "hold", str(path), "x", "0", "--timeout", str(seconds)],
        stdout=subprocess.PIPE, text=True, env=_env(),
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "holding"
    return proc


def _write(writer: TraceWriter, k: int, run_id: str = "live") -> str:
    samples, chunks, answers = question_frames(k, 3, 5)
    problem = ProblemRow(f"q{k:03d}", k, f"question {k}", k)
    return writer.write_question(run_id, problem, samples, chunks, answers, wall_s=2.0)


def test_questions_are_spooled_while_a_reader_holds_the_store_and_committed_after(tmp_path: Path) -> None:
    path = tmp_path / "live.duckdb"
    writer = TraceWriter(path, spool_after_s=0.3)
    writer.start_run(RUN)
    assert _write(writer, 0) == "committed"
    holder = _holder(path, 8.0)  # longer than the five questions below take
    waits = []
    for k in range(1, 6):
        t0 = time.monotonic()
        assert _write(writer, k) == "spooled"
        waits.append(time.monotonic() - t0)
    assert max(waits) < 5.0  # the old writer waited 30 s and then dropped the question
    assert len(spool.pending(path)) == 5
    assert writer.finish_run("live") == "spooled"
    holder.wait(timeout=30)
    (run,) = list_runs(path)  # a reader's open commits the spool
    assert (run.n_problems, run.status, run.state) == (6, "complete", "finished")
    assert not spool.spool_dir(path).exists()
    assert [t.problem_id for t in load_problem_traces(path)] == [f"q{k:03d}" for k in range(6)]


def test_next_write_commits_the_spool_once_the_lock_frees(tmp_path: Path) -> None:
    path = tmp_path / "live.duckdb"
    writer = TraceWriter(path, spool_after_s=0.3)
    writer.start_run(RUN)
    holder = _holder(path, 3.0)
    assert _write(writer, 0) == "spooled"
    holder.wait(timeout=30)
    assert _write(writer, 1) == "committed"
    assert spool.pending(path) == []
    with pytest.raises(InputError, match="already written"):  # the spooled one is in the store
        _write(writer, 0)


def test_a_killed_writer_loses_nothing_it_spooled_and_the_run_is_interrupted(tmp_path: Path) -> None:
    path = tmp_path / "live.duckdb"
    writer_proc = subprocess.Popen(
        [sys.executable, str(WORKER), "spool-write", str(path), "live", "4", "--die",
         "--wait-stdin", "--samples", "3", "--chunks", "5"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=_env(),
    )
    assert writer_proc.stdout is not None and writer_proc.stdin is not None
    assert writer_proc.stdout.readline().split() == ["committed", "q000"]
    holder = _holder(path, 8.0)
    writer_proc.stdin.write("go\n")
    writer_proc.stdin.flush()
    rest = [writer_proc.stdout.readline().split() for _ in range(3)]
    writer_proc.wait(timeout=60)
    assert writer_proc.returncode == -9  # killed with three questions only in the spool
    assert [r[0] for r in rest] == ["spooled"] * 3
    holder.wait(timeout=30)
    (run,) = list_runs(path)
    assert (run.n_problems, run.status, run.state) == (4, "running", "interrupted")
    with pytest.raises(InputError, match="interrupted"):
        load_problem_traces(path)
    assert len(load_problem_traces(path, allow_incomplete=True)) == 4


def test_an_entry_the_store_refuses_is_kept_aside_not_deleted(tmp_path: Path) -> None:
    path = tmp_path / "live.duckdb"
    writer = TraceWriter(path, spool_after_s=0.3)
    writer.start_run(RUN)
    holder = _holder(path, 3.0)
    assert _write(writer, 0, run_id="no-such-run") == "spooled"
    holder.wait(timeout=30)
    list_runs(path)
    assert spool.pending(path) == []
    assert len(spool.rejected(path)) == 1
    meta = json.loads((spool.rejected(path)[0] / "meta.json").read_text())
    assert meta["problem"]["problem_id"] == "q000"


def test_a_v1_store_is_migrated_on_first_read_and_its_running_run_is_interrupted(tmp_path: Path) -> None:
    import duckdb

    from aimo.core.store.migrations import LATEST_VERSION, MIGRATIONS, apply_migrations

    path = tmp_path / "v1.duckdb"
    con = duckdb.connect(str(path))
    apply_migrations(con, MIGRATIONS[:1])
    con.execute("INSERT INTO runs (run_id, kind) VALUES ('old', 'record')")  # status 'running'
    con.close()
    (run,) = list_runs(path)
    assert run.state == "interrupted"  # no writer recorded: nobody is writing it
    con = duckdb.connect(str(path), read_only=True)
    assert con.execute("SELECT max(version) FROM schema_migrations").fetchall()[0][0] == LATEST_VERSION
    con.close()
