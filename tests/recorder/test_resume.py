"""`aimo synth --resume` and `aimo import --resume` after a SIGKILL mid-write: the run is shown
interrupted, readers refuse it, and the resumed store equals an uninterrupted one (issue 14)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from aimo.cli import app
from aimo.core.errors import InputError
from aimo.core.store import completed_questions, list_runs, load_problem_traces
from aimo.core.store.connect import read_connection

ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}


def _kill_when(args: list[str], store: Path, run_id: str, n_done: int) -> int:
    """Run `aimo ARGS`; SIGKILL it once `n_done` questions of `run_id` are committed in `store`;
    return how many were committed when it died."""
    proc = subprocess.Popen([sys.executable, "-m", "aimo.cli", *args], env=_env(), cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        if store.exists():
            try:
                if len(completed_questions(store, run_id, lock_timeout_s=5)) >= n_done:
                    break
            except InputError:
                pass  # the store is being created
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL, "finished before it was killed: make it bigger"
    return len(completed_questions(store, run_id))


def _dump(store: Path, run_id: str) -> dict[str, list]:
    """Every row of the run, without the columns that record when and by whom it was written."""
    with read_connection(store) as con:
        return {
            t: con.execute(f"SELECT * EXCLUDE (run_id{extra}) FROM {t} WHERE run_id = ? ORDER BY ALL",  # noqa: S608
                           [run_id]).fetchall()
            for t, extra in (("problems", ""), ("samples", ""), ("answers", ""), ("chunks", ""),
                             ("questions_done", ", committed_at"))
        }


def test_synth_killed_then_resumed_equals_an_uninterrupted_synthesis(tmp_path: Path) -> None:
    store, whole = tmp_path / "killed.duckdb", tmp_path / "whole.duckdb"
    args = ["synth", "--problems", "24", "--samples", "8", "--seed", "3"]
    run_id = "synthetic-r1-14b-s3"
    done = _kill_when([*args, "--out", str(store)], store, run_id, 3)
    assert 3 <= done < 24
    assert list_runs(store)[0].state == "interrupted"
    with pytest.raises(InputError, match="interrupted"):
        load_problem_traces(store)
    again = runner.invoke(app, [*args, "--out", str(store)])
    assert again.exit_code == 2 and "--resume" in again.output
    other = runner.invoke(app, [*args[:-1], "4", "--out", str(store), "--resume"])  # another seed
    assert other.exit_code == 2 and "no run 'synthetic-r1-14b-s4'" in other.output
    resumed = runner.invoke(app, [*args, "--out", str(store), "--resume"])
    assert resumed.exit_code == 0, resumed.output
    assert runner.invoke(app, [*args, "--out", str(whole)]).exit_code == 0
    assert list_runs(store)[0].state == "finished"
    assert _dump(store, run_id) == _dump(whole, run_id)


def _big_import(tmp_path: Path, n: int) -> tuple[Path, Path]:
    problems, samples = tmp_path / "problems.csv", tmp_path / "samples.jsonl"
    problems.write_text("id,question,answer\n" + "".join(f"p{i},q {i},{i % 1000}\n" for i in range(n)))
    lines = []
    for i in range(n):
        for k in range(4):
            lines.append(json.dumps({"problem_id": f"p{i}", "sample": k, "kind": "cot",
                                     "n_tokens": 100 + k, "answer": (i + k) % 1000,
                                     "text": "x" * 500, "end_s": 1.0 + k}))
    samples.write_text("\n".join(lines) + "\n")
    return problems, samples


def test_import_killed_then_resumed_equals_an_uninterrupted_import(tmp_path: Path) -> None:
    problems, samples = _big_import(tmp_path, 60)
    store, whole = tmp_path / "killed.duckdb", tmp_path / "whole.duckdb"
    args = ["import", "--problems", str(problems), "--samples", str(samples), "--run-id", "imp"]
    done = _kill_when([*args, "--out", str(store)], store, "imp", 5)
    assert 5 <= done < 60
    assert list_runs(store)[0].state == "interrupted"
    again = runner.invoke(app, [*args, "--out", str(store)])
    assert again.exit_code == 2 and "--resume" in again.output
    resumed = runner.invoke(app, [*args, "--out", str(store), "--resume"])
    assert resumed.exit_code == 0, resumed.output
    assert runner.invoke(app, [*args, "--out", str(whole)]).exit_code == 0
    assert list_runs(store)[0].state == "finished"
    assert _dump(store, "imp") == _dump(whole, "imp")
