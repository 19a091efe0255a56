"""Issue 14's bad inputs, each through the CLI as a user meets it: exit code 2, an error naming the
file and the field, no traceback, nothing written. (The fuzzing of the same surfaces is in
tests/aimo/test_cli_fuzz.py, tests/recorder/test_importer_fuzz.py, tests/solver/test_policy_fuzz.py.)"""

from __future__ import annotations

import json
import os
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

from aimo.cli import app
from aimo.core.store import list_runs

runner = CliRunner()
GOOD = {"problem_id": "p1", "sample": 0, "kind": "cot", "n_tokens": 10, "answer": 1}
IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


def _run(args: list[str]):  # type: ignore[no-untyped-def]
    result = runner.invoke(app, [str(a) for a in args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    return result


def _refused(args: list[str], *fragments: str) -> str:
    result = _run(args)
    assert result.exit_code == 2, result.output
    for fragment in fragments:
        assert fragment in result.output, result.output
    return result.output


@pytest.fixture()
def files(tmp_path: Path) -> dict[str, Path]:
    (tmp_path / "p.csv").write_text("id,question,answer\np1,q,1\n")
    (tmp_path / "ok.jsonl").write_text(json.dumps(GOOD) + "\n")
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    return {"csv": tmp_path / "p.csv", "jsonl": tmp_path / "ok.jsonl", "dir": tmp_path, "ro": ro}


def _jsonl(path: Path, text: str) -> Path:
    path.write_text(text + "\n")
    return path


@pytest.mark.parametrize("line, field, fragment", [
    ('{"problem_id": "p1", "sample": 0, "kind": "cot", "n_tokens": 3000000000, "answer": 1}',
     "'n_tokens'", "<= 2147483647"),
    ('{"problem_id": "p1", "sample": 0, "kind": "cot", "n_tokens": 1e23, "answer": 1}',
     "'n_tokens'", "<= 2147483647"),
    ('{"problem_id": "p1", "sample": 3000000000, "kind": "cot", "n_tokens": 5, "answer": 1}',
     "'sample'", "<= 2147483647"),
    ('{"problem_id": "p1", "sample": 0, "kind": "cot", "n_tokens": 10, "answer": 1, "answer": 2}',
     "'answer'", "key given twice"),
])
def test_jsonl_values_the_store_cannot_hold_are_refused(files: dict[str, Path], line: str, field: str,
                                                         fragment: str) -> None:
    samples = _jsonl(files["dir"] / "bad.jsonl", line)
    out = files["dir"] / "o.duckdb"
    _refused(["import", "--problems", files["csv"], "--samples", samples, "--out", out],
             "bad.jsonl:1", field, fragment)
    assert not out.exists()


def test_an_unclosed_quote_is_refused_by_import_and_solve(files: dict[str, Path]) -> None:
    csv = files["dir"] / "unclosed.csv"
    csv.write_text('id,question,answer\np1,"never closed,1\np2,q,2\np3,q,3\n')
    out = files["dir"] / "o.duckdb"
    _refused(["import", "--problems", csv, "--samples", files["jsonl"], "--out", out],
             "unclosed.csv:2", "unclosed quote")
    assert not out.exists()
    _refused(["solve", "--problems", csv, "--backend", "synthetic"], "unclosed.csv", "line 2", "unclosed quote")


def test_an_excel_byte_order_mark_is_accepted(files: dict[str, Path]) -> None:
    csv = files["dir"] / "excel.csv"
    csv.write_bytes(b"\xef\xbb\xbfid,question,answer\r\np1,q,1\r\n")
    out = files["dir"] / "o.duckdb"
    assert _run(["import", "--problems", csv, "--samples", files["jsonl"], "--out", out]).exit_code == 0
    assert list_runs(out)[0].n_problems == 1
    assert _run(["solve", "--problems", csv, "--backend", "synthetic"]).exit_code == 0
    jsonl = files["dir"] / "bom.jsonl"
    jsonl.write_bytes(b"\xef\xbb\xbf" + json.dumps(GOOD).encode() + b"\n")
    out2 = files["dir"] / "o2.duckdb"
    assert _run(["import", "--problems", csv, "--samples", jsonl, "--out", out2]).exit_code == 0


def _out_commands(files: dict[str, Path], out: Path) -> dict[str, list]:
    return {
        "import": ["import", "--problems", files["csv"], "--samples", files["jsonl"], "--out", out],
        "synth": ["synth", "--problems", "2", "--samples", "2", "--out", out],
        "solve --record": ["solve", "--problems", files["csv"], "--backend", "synthetic", "--record", out],
        "tune": ["tune", "--traces", files["dir"] / "none.duckdb", "--trials", "2", "--out", out],
        "profile fit": ["profile", "fit", "--traces", files["dir"] / "none.duckdb", "--name", "x", "--out", out],
    }


@pytest.mark.parametrize("command", ["import", "synth", "solve --record", "tune", "profile fit"])
@pytest.mark.parametrize("where", [
    "proc",
    "file-as-parent",
    pytest.param("read-only", marks=pytest.mark.skipif(IS_ROOT, reason="root writes anywhere")),
])
def test_an_unwritable_out_is_refused_before_any_work(files: dict[str, Path], command: str, where: str) -> None:
    out = {"proc": Path("/proc/x/out.duckdb"), "file-as-parent": files["csv"] / "out.duckdb",
           "read-only": files["ro"] / "out.duckdb"}[where]
    option = "--record" if command == "solve --record" else "--out"
    _refused(_out_commands(files, out)[command], str(out), option)
    assert files["csv"].read_text() == "id,question,answer\np1,q,1\n"


def test_profile_fit_and_measure_refuse_to_overwrite_without_force(files: dict[str, Path]) -> None:
    existing = files["dir"] / "mine.yaml"
    existing.write_text("precious\n")
    _refused(["profile", "fit", "--traces", files["dir"] / "none.duckdb", "--name", "x", "--out", existing],
             "mine.yaml", "--force")
    model = files["dir"] / "model"
    model.mkdir()
    _refused(["profile", "measure", "--model", model, "--name", "x", "--out", existing, "--fake"],
             "mine.yaml", "--force")
    assert existing.read_text() == "precious\n"
    forced = _run(["profile", "fit", "--traces", files["dir"] / "none.duckdb", "--name", "x",
                   "--out", existing, "--force"])
    assert "mine.yaml" not in forced.output and "no such trace store" in forced.output  # got past it


def test_a_csv_given_as_traces_is_named_as_not_a_store(files: dict[str, Path]) -> None:
    _refused(["simulate", "--traces", files["csv"]], "p.csv", "not a DuckDB trace store")
    _refused(["runs", "list", files["csv"]], "not a DuckDB trace store")


def test_a_store_with_a_dropped_column_is_refused_with_its_name(files: dict[str, Path]) -> None:
    out = files["dir"] / "o.duckdb"
    assert _run(["import", "--problems", files["csv"], "--samples", files["jsonl"], "--out", out]).exit_code == 0
    con = duckdb.connect(str(out))
    con.execute("ALTER TABLE samples DROP COLUMN finish_reason")
    con.close()
    _refused(["simulate", "--traces", out], "o.duckdb", "samples.finish_reason", "column missing")
    _refused(["runs", "list", out], "samples.finish_reason")


def test_a_failed_import_leaves_no_run_behind(files: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    from aimo.recorder.importer import import_traces
    from aimo.core.store import TraceWriter

    csv = files["dir"] / "two.csv"
    csv.write_text("id,question,answer\np1,q,1\np2,q,2\n")
    jsonl = _jsonl(files["dir"] / "two.jsonl", json.dumps(GOOD) + "\n" + json.dumps({**GOOD, "problem_id": "p2"}))
    out = files["dir"] / "o.duckdb"
    import_traces(files["csv"], files["jsonl"], out, run_id="kept")
    original = TraceWriter.write_question
    calls = []

    def failing(self, run_id, problem, *args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(problem.problem_id)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        return original(self, run_id, problem, *args, **kwargs)

    monkeypatch.setattr(TraceWriter, "write_question", failing)
    with pytest.raises(OSError):
        import_traces(csv, jsonl, out, run_id="broken")
    assert [r.run_id for r in list_runs(out)] == ["kept"]  # no 'failed' row, no half run


@pytest.mark.parametrize("override, field, fragment", [
    ({"schedule": {"levels": [{"name": "x", "samples": 100000000, "min_answers": 1, "timeout_s": 60}],
                   "start_level": 1}}, "schedule.levels[0].samples", "must be ≤ 1,024"),
    ({"schedule": {"cutoff_s": 1e9}}, "schedule.cutoff_s", "must be ≤ 86,400"),
    ({"schedule": {"cutoff_s": "1e9"}}, "schedule.cutoff_s", "must be ≤ 86,400"),
    ({"schedule": {"cutoff_s": 200000}}, "schedule.cutoff_s", "must be ≤ 86,400"),
])
def test_policy_values_beyond_sane_bounds_are_refused(files: dict[str, Path], override: dict, field: str,
                                                       fragment: str) -> None:
    import yaml

    policy = files["dir"] / "pol.yaml"
    policy.write_text(yaml.safe_dump({"base": "seed-2nd-place", **override}))
    if override["schedule"].get("cutoff_s") == "1e9":
        policy.write_text(policy.read_text().replace("'1e9'", "1e9"))  # YAML 1.1 reads it as text
    out = _refused(["simulate", "--traces", files["dir"] / "none.duckdb", "--policy", policy], "pol.yaml",
                   field, fragment)
    assert "not a number" not in out
