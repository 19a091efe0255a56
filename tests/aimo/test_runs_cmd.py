"""`aimo runs` and resume: runs killed with SIGKILL are shown interrupted, refused by readers
unless asked, resumed without losing or repeating a question, deleted or marked failed (issue 14,
"Interrupted runs"; issue 16, "Live results that show")."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from aimo.cli import app
from aimo.core.store import list_runs
from aimo.core.store.live import question_results

ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
            "PYTHONUNBUFFERED": "1"}


def _problems(tmp_path: Path, n: int) -> Path:
    path = tmp_path / "problems.csv"
    path.write_text("id,question,answer\n" + "".join(f"p{i},question {i},{i}\n" for i in range(n)))
    return path


def _kill_after(args: list[str], lines: int, marker: str) -> None:
    """Run `aimo ARGS` in a process and SIGKILL it once `lines` output lines contain `marker`."""
    proc = subprocess.Popen([sys.executable, "-m", "aimo.cli", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=_env(), cwd=ROOT)
    assert proc.stdout is not None
    seen = 0
    for line in proc.stdout:
        seen += marker in line
        if seen >= lines:
            break
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL, "the command ended before it was killed"


def test_a_killed_live_solve_is_interrupted_refused_and_resumed_where_it_stopped(tmp_path: Path) -> None:
    problems, store = _problems(tmp_path, 10), tmp_path / "live.duckdb"
    base = ["solve", "--problems", str(problems), "--backend", "synthetic", "--record", str(store)]
    _kill_after([*base, "--speedup", "100", "--record-run", "live1"], 4, "problem=")
    (run,) = list_runs(store)
    assert (run.run_id, run.state) == ("live1", "interrupted")
    done_before = question_results(store, "live1")
    assert len(done_before) >= 4
    listed = runner.invoke(app, ["runs", "list", str(store)])
    assert listed.exit_code == 0 and "interrupted" in listed.output
    refused = runner.invoke(app, ["simulate", "--traces", str(store)])
    assert refused.exit_code == 2 and "interrupted" in refused.output and "Traceback" not in refused.output
    allowed = runner.invoke(app, ["simulate", "--traces", str(store), "--allow-incomplete"])
    assert allowed.exit_code == 0, allowed.output

    resumed = runner.invoke(app, [*base, "--resume"])
    assert resumed.exit_code == 0, resumed.output
    (run,) = list_runs(store)
    assert run.state == "finished"
    after = question_results(store, "live1")
    assert list(after["problem_id"]) == [f"p{i}" for i in range(10)]  # each once, in order
    assert list(after["position"]) == list(range(10))
    first_new = after.iloc[len(done_before)]
    used = float((done_before["start_s"] + done_before["wall_s"]).max())
    assert first_new["start_s"] >= used  # the clock went on from the time used
    assert first_new["level"] is not None and after["final_answer"].notna().all()
    shown = runner.invoke(app, ["runs", "show", str(store), "live1", "--json"])
    live = json.loads(shown.output)["live"]
    assert live["answered"] == 10 and live["with_truth"] == 10


def test_resume_refuses_a_finished_run_and_a_store_without_one(tmp_path: Path) -> None:
    problems, store = _problems(tmp_path, 2), tmp_path / "live.duckdb"
    base = ["solve", "--problems", str(problems), "--backend", "synthetic", "--record", str(store)]
    assert runner.invoke(app, base).exit_code == 0
    out = runner.invoke(app, [*base, "--resume"])
    assert out.exit_code == 2 and "no interrupted solve runs" in out.output
    run_id = list_runs(store)[0].run_id
    out = runner.invoke(app, [*base, "--resume", "--record-run", run_id])
    assert out.exit_code == 2 and "finished" in out.output


def test_delete_and_mark_failed(tmp_path: Path) -> None:
    problems, store = _problems(tmp_path, 2), tmp_path / "s.duckdb"
    base = ["solve", "--problems", str(problems), "--backend", "synthetic", "--record", str(store)]
    assert runner.invoke(app, [*base, "--record-run", "a"]).exit_code == 0
    assert runner.invoke(app, [*base, "--record-run", "b"]).exit_code == 0
    out = runner.invoke(app, ["runs", "mark-failed", str(store), "a"])
    assert out.exit_code == 0, out.output
    assert {r.run_id: r.state for r in list_runs(store)} == {"a": "failed", "b": "finished"}
    out = runner.invoke(app, ["runs", "delete", str(store), "a", "--yes"])
    assert out.exit_code == 0, out.output
    assert [r.run_id for r in list_runs(store)] == ["b"]
    out = runner.invoke(app, ["runs", "delete", str(store), "nope", "--yes"])
    assert out.exit_code == 2 and "unknown run 'nope'" in out.output
    out = runner.invoke(app, ["runs", "list", str(tmp_path / "absent.duckdb")])
    assert out.exit_code == 2 and "no such trace store" in out.output


@pytest.mark.parametrize("command", ["list", "flush"])
def test_runs_commands_commit_a_spool(tmp_path: Path, command: str) -> None:
    from aimo.core.store import TraceWriter, spool
    from aimo.core.traces import RunInfo
    from tests.store.store_worker import question_frames

    store = tmp_path / "s.duckdb"
    writer = TraceWriter(store)
    writer.start_run(RunInfo("r", "solve"))
    spool.append(store, {"op": "question", "run_id": "r", "wall_s": 1.0, "live": None,
                         "problem": {"problem_id": "q", "position": 0, "question": "?", "answer": 1}},
                 dict(zip(("samples", "chunks", "answers"), question_frames(0, 2, 3))))
    out = runner.invoke(app, ["runs", command, str(store)])
    assert out.exit_code == 0, out.output
    assert spool.pending(store) == [] and list_runs(store)[0].n_problems == 1
