"""scripts/device_hil.py's pure-Python parts on CPU (`--fake`: the lmdeploy test double): every
step runs and writes its files, at most 8 come back, the scale choice follows the estimate, and a
failed step does not stop the others."""

from __future__ import annotations

import importlib.util
import json
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def load_script():
    spec = importlib.util.spec_from_file_location("device_hil", REPO / "scripts/device_hil.py")
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    sys.modules["device_hil"] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_fake_run_writes_every_result(tmp_path: Path) -> None:
    dh = load_script()
    out = tmp_path / "out"
    code = dh.main(["--fake", "--out", str(out), "--model", str(tmp_path / "m"), "--questions", "2",
                    "--scales", "0.01", "--until", str(time.time() + 240), "--measure-s", "30",
                    "--hil-s", "30"])
    assert code == 0
    files = sorted(p.name for p in out.iterdir())
    assert len(files) <= 8
    assert {"device_hil.log", "summary.json", "steps.csv", "hil-traces.duckdb", "hil-live.duckdb",
            "validate.md"} <= set(files)
    assert "fake-14b-w4kv8-quick.yaml" in files, " ".join(files)
    summary = json.loads((out / "summary.json").read_text())
    steps = summary["steps"]
    assert all(s["ok"] for s in steps.values()), steps
    assert steps["store"]["scale"] == 0.01 and steps["store"]["estimate_s"] > 0
    assert summary["profile_used"] == "fake-14b-w4kv8-quick"
    for name in ("seed-2nd-place", "tuned-olympiad", "majority-n"):
        v = steps[f"hil:{name}"]["validate"]
        assert v["questions"] == 2 and v["same_answer"][1] >= 1
        assert v["same_answer"][0] == v["same_answer"][1]  # decisions do not depend on the clock here
    md = (out / "validate.md").read_text()
    assert md.count("| seed-2nd-place |") == 1 and md.count("| majority-n |") == 1

    from aimo.core.store import list_runs

    runs = [r for r in list_runs(out / "hil-live.duckdb") if r.kind == "solve"]
    assert len(runs) == 3 and all(r.gen_config["hil"]["length_scale"] == 0.01 for r in runs)


def test_a_failed_step_does_not_stop_the_rest(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    dh = load_script()

    def broken(*a, **k):
        raise RuntimeError("grid exploded")

    monkeypatch.setattr(dh, "measure", broken)
    out = tmp_path / "out"
    assert dh.main(["--fake", "--out", str(out), "--model", str(tmp_path / "m"), "--questions", "1",
                    "--scales", "0.01", "--policies", "majority-n", "--until", str(time.time() + 120)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["steps"]["measure"] == {**summary["steps"]["measure"], "ok": False}
    assert "grid exploded" in summary["steps"]["measure"]["error"]
    assert summary["profile_used"] == "h200-14b-w4kv8"  # falls back to the shipped 14B profile
    assert summary["steps"]["hil:majority-n"]["ok"]


def test_scale_choice_takes_the_largest_that_fits(tmp_path: Path) -> None:
    dh = load_script()
    from aimo.recorder.synth import synthesize_store
    from aimo.core.hardware import load_profile
    from aimo.core.policy import load_policy

    src = tmp_path / "s.duckdb"
    synthesize_store(src, n_problems=2, n_samples=16, seed=0)
    pols = [load_policy("majority-n")]
    prof = load_profile("h200-14b-w4kv8")
    _, big = dh.choose_scale(src, tmp_path, prof, pols, 0, 1e9, (0.1, 0.05))
    assert big.scale == 0.1
    _, small = dh.choose_scale(src, tmp_path, prof, pols, 0, big.estimate_s - 1, (0.1, 0.05))
    assert small.scale == 0.05 and small.tried["0.1"] * dh.MARGIN > big.estimate_s - 1
    _, none = dh.choose_scale(src, tmp_path, prof, pols, 0, 0.0, (0.1, 0.05))
    assert none.scale == 0.05  # nothing fits: the smallest


def test_profile_names_come_from_the_gpu() -> None:
    dh = load_script()
    assert dh.gpu_profile_name("1xNVIDIA H100 80GB HBM3") == "h100-14b-w4kv8"
    assert dh.gpu_profile_name("1xNVIDIA H200") == "h200-14b-w4kv8-quick"
    assert dh.gpu_profile_name(None) == "gpu-14b-w4kv8-quick"


def test_returned_files_validate_on_the_cpu_with_the_summary_answers(tmp_path: Path) -> None:
    """What the integrator runs on the returned $OUT: `aimo validate` per live run, answers from
    summary.json (stores without per-question result columns)."""
    dh = load_script()
    out = tmp_path / "out"
    assert dh.main(["--fake", "--out", str(out), "--model", str(tmp_path / "m"), "--questions", "2",
                    "--scales", "0.01", "--policies", "seed-2nd-place", "--skip-measure",
                    "--until", str(time.time() + 120)]) == 0
    from typer.testing import CliRunner

    from aimo.cli import app
    from aimo.core.store import list_runs

    (run,) = [r.run_id for r in list_runs(out / "hil-live.duckdb") if r.kind == "solve"]
    res = CliRunner().invoke(app, ["validate", "--live", str(out / "hil-live.duckdb"), "--live-run", run,
                                   "--traces", str(out / "hil-traces.duckdb"), "--hardware", "h200-14b-w4kv8",
                                   "--live-json", str(out / "summary.json"), "--json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    summary = json.loads((out / "summary.json").read_text())
    step = summary["steps"]["hil:seed-2nd-place"]
    assert data["answers_from"] == "json"
    assert [r["live_answer"] for r in data["rows"]] == [q["answer"] for q in step["solve"]["questions"]]
    assert [r["live_stop"] for r in data["rows"]] == [q["stop_reason"] for q in step["solve"]["questions"]]
