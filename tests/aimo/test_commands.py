"""`aimo simulate/profile/tune/demo` as a user runs them: the profile they pick and say, exports,
JSON, the demo's closing dashboard command and readable files."""

from __future__ import annotations

import json
import shutil
import stat
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from aimo.cli import app

ROOT = Path(__file__).resolve().parents[2]
OLYMPIAD = ROOT / "data" / "traces" / "olympiad-tiny.duckdb"
runner = CliRunner()


@pytest.fixture
def store(tmp_path: Path) -> Path:
    dst = tmp_path / "olympiad.duckdb"
    shutil.copy(OLYMPIAD, dst)
    return dst


def test_simulate_picks_and_says_the_matching_profile(store: Path) -> None:
    res = runner.invoke(app, ["simulate", "--traces", str(store), "--bootstrap", "20", "--json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["hardware"] == "h200-olympiad-tiny-w4kv8" and doc["bootstrap"]["replicates"] == 20
    assert "hardware profile: h200-olympiad-tiny-w4kv8" in res.stderr
    explicit = runner.invoke(app, ["simulate", "--traces", str(store), "--hardware",
                                   "l4x4-14b-w4kv8"])
    assert "hardware l4x4-14b-w4kv8" in explicit.stdout and "hardware profile:" not in explicit.stderr


def test_simulate_reference_flag_gives_the_same_json(store: Path) -> None:
    args = ["simulate", "--traces", str(store), "--bootstrap", "4", "--seed", "2", "--json"]
    fast = json.loads(runner.invoke(app, args).stdout)
    ref = json.loads(runner.invoke(app, [*args, "--reference"]).stdout)
    assert fast["bootstrap"]["scores"] == ref["bootstrap"]["scores"]


def test_simulate_export(store: Path, tmp_path: Path) -> None:
    out = tmp_path / "reps.parquet"
    res = runner.invoke(app, ["simulate", "--traces", str(store), "--bootstrap", "7",
                              "--export", str(out)])
    assert res.exit_code == 0, res.output
    frame = pd.read_parquet(out)
    assert len(frame) == 7 and {"score", "time_s", "overtime", "policy"} <= set(frame.columns)
    bad = runner.invoke(app, ["simulate", "--traces", str(store), "--export", str(tmp_path / "x.txt")])
    assert bad.exit_code == 2 and "x.txt" in bad.output and ".csv or .parquet" in bad.output


def test_profile_list_bind_and_unbind(store: Path) -> None:
    res = runner.invoke(app, ["profile", "list", "--traces", str(store)], env={"COLUMNS": "200"})
    assert res.exit_code == 0
    assert "calibration error" in res.stdout and "median" in res.stdout
    assert "h200-olympiad-tiny-w4kv8 (matches" in res.stdout
    res = runner.invoke(app, ["profile", "bind", "l4x4-14b-fp16", "--traces", str(store)])
    assert res.exit_code == 0, res.output
    sim = runner.invoke(app, ["simulate", "--traces", str(store), "--json"])
    assert json.loads(sim.stdout)["hardware"] == "l4x4-14b-fp16"
    assert "bound to the store" in sim.stderr
    bad = runner.invoke(app, ["profile", "bind", "nope", "--traces", str(store)])
    assert bad.exit_code == 2 and "nope" in bad.output
    assert "binding removed" in runner.invoke(app, ["profile", "unbind", "--traces", str(store)]).stdout


def test_tune_json_and_export(store: Path, tmp_path: Path) -> None:
    out, table = tmp_path / "best.yaml", tmp_path / "heldout.csv"
    res = runner.invoke(app, ["tune", "--traces", str(store), "--trials", "2", "--folds", "2",
                              "--bootstrap", "3", "--out", str(out), "--json",
                              "--export", str(table)])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["hardware"] == "h200-olympiad-tiny-w4kv8" and doc["out"] == str(out)
    assert [r["name"] for r in doc["rows"]][:2] == ["seed-2nd-place", "tuned"]
    assert doc["final"]["trial"] >= 0 and len(doc["folds"]) == 2
    frame = pd.read_csv(table)
    assert frame["name"].tolist() == [r["name"] for r in doc["rows"]]
    assert {"fold_1", "fold_2", "delta_vs_seed"} <= set(frame.columns)
    assert stat.S_IMODE(out.stat().st_mode) & 0o044  # readable by others (umask allowing)


def test_tune_refuses_a_bad_export_before_tuning(store: Path, tmp_path: Path) -> None:
    res = runner.invoke(app, ["tune", "--traces", str(store), "--trials", "2", "--out",
                              str(tmp_path / "b.yaml"), "--export", str(tmp_path / "t.json")])
    assert res.exit_code == 2 and "t.json" in res.output
    assert not (tmp_path / "b.yaml").exists()


def test_demo_ends_with_its_dashboard_command_and_readable_files(store: Path,
                                                                 tmp_path: Path) -> None:
    out = tmp_path / "demo"
    res = runner.invoke(app, ["demo", "--traces", str(store), "--out-dir", str(out),
                              "--replicates", "5"])
    assert res.exit_code == 0, res.output
    last = res.stdout.strip().splitlines()[-1].strip()
    assert last.startswith(f"aimo dashboard --traces {store}")
    assert "--storage" in last and "--study demo" in last
    for f in out.iterdir():
        assert stat.S_IMODE(f.stat().st_mode) & 0o044, f
