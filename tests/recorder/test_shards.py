"""Recording on many machines: `--shard i/N` splits problems the same way everywhere, two recorder
processes write their own stores, and `aimo merge` joins them (duplicates refused, all or nothing,
provenance kept)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

from aimo.cli import app
from aimo.core.store.merge import merge_stores
from aimo.recorder.shards import Shard, parse_shard, select_shard, shard_of
from aimo.core.errors import InputError
from aimo.core.store import list_runs, load_problem_traces

REPO = Path(__file__).resolve().parents[2]
N_PROBLEMS = 9

# one recorder process: the lmdeploy test double, every sample boxes 42 then runs to its cap
RECORD_ONE_SHARD = textwrap.dedent(
    """
    import sys
    sys.path.insert(0, {helpers!r})
    from fake_lmdeploy import make_fake_lmdeploy
    sys.modules["lmdeploy"] = make_fake_lmdeploy(
        turbomind_available=False,
        script=lambda i, p: [t for t in "So \\\\boxed{{42}} ok"][:12])
    from aimo.recorder.record import run_record
    from aimo.recorder.shards import Shard
    run_record({csv!r}, "/models/tiny", "pytorch", 2, {out!r}, max_new_tokens=12,
               engine_options={{"tp": 1, "max_batch": 2}}, run_code=False,
               show_progress=False, shard=Shard({i}, 2))
    """
)


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Two real recorder processes, one per shard, running at the same time (once per module)."""
    tmp_path = tmp_path_factory.mktemp("shards")
    problems = tmp_path / "problems.csv"
    rows = ["id,question,answer"] + [f"p{k},What is {k}+1?,{k + 1}" for k in range(N_PROBLEMS)]
    problems.write_text("\n".join(rows) + "\n")
    outs = [tmp_path / f"shard{i}.duckdb" for i in (1, 2)]
    procs = [
        subprocess.Popen([sys.executable, "-c", RECORD_ONE_SHARD.format(
            helpers=str(REPO / "tests" / "helpers"), csv=str(problems), out=str(out), i=i)],
            cwd=REPO, stderr=subprocess.PIPE, text=True)
        for i, out in zip((1, 2), outs)
    ]
    for p in procs:
        _, err = p.communicate(timeout=240)
        assert p.returncode == 0, err[-2000:]
    return outs


@pytest.fixture()
def shards(recorded: list[Path], tmp_path: Path) -> list[Path]:
    """A fresh copy of the two shard stores for one test."""
    copies = [tmp_path / p.name for p in recorded]
    for src, dst in zip(recorded, copies):
        dst.write_bytes(src.read_bytes())
    return copies


def _count(path: Path, sql: str) -> int:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return int(con.execute(sql).fetchone()[0])
    finally:
        con.close()


def test_shards_partition_the_problems_whatever_the_order() -> None:
    ids = [f"q{k}" for k in range(200)]
    parts = [select_shard(ids, Shard(i, 3), key=str) for i in (1, 2, 3)]
    assert sorted(sum(parts, [])) == sorted(ids)  # every problem once
    assert all(40 < len(p) < 95 for p in parts)  # a fair split
    reordered = [select_shard(list(reversed(ids)), Shard(i, 3), key=str) for i in (1, 2, 3)]
    assert [sorted(p) for p in parts] == [sorted(p) for p in reordered]
    assert shard_of("q7", 3) == shard_of("q7", 3)


@pytest.mark.parametrize("text", ["0/2", "3/2", "1/0", "a/2", "1", "-1/2", ""])
def test_bad_shard_is_refused_naming_the_option(text: str) -> None:
    with pytest.raises(InputError, match="--shard"):
        parse_shard(text)


def test_two_recorders_then_one_merge(shards: list[Path], tmp_path: Path) -> None:
    outs = shards
    counts = [_count(o, "SELECT count(*) FROM questions_done") for o in outs]
    assert sum(counts) == N_PROBLEMS and all(counts)
    merged = tmp_path / "merged.duckdb"
    summary = merge_stores(merged, outs)
    (run,) = summary.runs
    assert run.questions == N_PROBLEMS and run.status == "complete"
    traces = load_problem_traces(merged, run.run_id)
    assert sorted(t.problem_id for t in traces) == sorted(f"p{k}" for k in range(N_PROBLEMS))
    assert sorted(t.position for t in traces) == list(range(N_PROBLEMS))  # CSV places kept
    assert all(len(t.samples) == 2 for t in traces)
    # every row of every table arrived once
    for table in ("samples", "chunks", "answers", "problems"):
        assert _count(merged, f"SELECT count(*) FROM {table}") == sum(
            _count(o, f"SELECT count(*) FROM {table}") for o in outs)
    config = list_runs(merged)[0].gen_config
    assert "shard" not in config
    assert sorted(m["shard"] for m in config["merged_from"]) == ["1/2", "2/2"]
    assert sum(m["questions"] for m in config["merged_from"]) == N_PROBLEMS


def test_merge_refuses_duplicates_and_changes_nothing(shards: list[Path], tmp_path: Path) -> None:
    outs = shards
    merged = tmp_path / "merged.duckdb"
    merge_stores(merged, outs[:1])
    before = _count(merged, "SELECT count(*) FROM chunks")
    with pytest.raises(InputError, match="already in the target"):
        merge_stores(merged, outs[1:])  # same run id: join shards in one merge, not two
    assert _count(merged, "SELECT count(*) FROM chunks") == before
    with pytest.raises(InputError, match="listed twice"):
        merge_stores(tmp_path / "m2.duckdb", [outs[0], outs[0]])
    copy = tmp_path / "copy.duckdb"
    copy.write_bytes(outs[0].read_bytes())
    with pytest.raises(InputError, match="also in"):
        merge_stores(tmp_path / "m3.duckdb", [outs[0], copy])
    assert _count(tmp_path / "m3.duckdb", "SELECT count(*) FROM runs") == 0  # all or nothing


def test_merge_refuses_runs_recorded_with_other_settings(shards: list[Path], tmp_path: Path) -> None:
    outs = shards
    con = duckdb.connect(str(outs[1]))
    con.execute("UPDATE runs SET gen_config = json_merge_patch(gen_config, '{\"samples\": 3}')")
    con.close()
    with pytest.raises(InputError, match="gen_config"):
        merge_stores(tmp_path / "m.duckdb", outs)
    con = duckdb.connect(str(outs[1]))
    con.execute("UPDATE runs SET hardware = 'other GPU'")
    con.close()
    with pytest.raises(InputError, match="runs.hardware"):
        merge_stores(tmp_path / "m.duckdb", outs)


def test_merge_cli_errors_are_clean(tmp_path: Path) -> None:
    runner = CliRunner()
    not_a_store = tmp_path / "x.csv"
    not_a_store.write_text("a,b\n1,2\n")
    result = runner.invoke(app, ["merge", str(tmp_path / "out.duckdb"), str(not_a_store)])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert str(not_a_store) in result.output
    result = runner.invoke(app, ["merge", str(tmp_path / "out.duckdb"), str(tmp_path / "nope")])
    assert result.exit_code == 2 and "no such trace store" in result.output
    result = runner.invoke(app, ["record", "--problems", "p.csv", "--model", "m", "--out",
                                 str(tmp_path / "o.duckdb"), "--shard", "3/2"])
    assert result.exit_code == 2 and "--shard" in result.output


def test_merge_keeps_a_quote_in_the_path(shards: list[Path], tmp_path: Path) -> None:
    outs = shards
    odd = tmp_path / "it's shard.duckdb"
    outs[0].rename(odd)
    summary = merge_stores(tmp_path / "m.duckdb", [odd, outs[1]])
    assert summary.runs[0].questions == N_PROBLEMS
    assert json.dumps(summary.runs[0].sources).count("it's") == 1
