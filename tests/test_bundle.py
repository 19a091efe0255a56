"""`aimo bundle` makes a folder that installs with no index at all into a clean venv, and whose
entry answers a question in the inference server's DataFrame form (the synthetic engine stands
in for lmdeploy). Needs PyPI (or the machine's pip mirror) at bundle time only; ~1 minute."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

CHECK = """
import json, os, sys
os.environ["AIMO_BACKEND"] = "synthetic"          # set before the entry: it wins over the bundle
sys.path.insert(0, sys.argv[1])
import aimo_entry
aimo_entry.install()                              # already installed: a no-op
import pandas as pd
frame = aimo_entry.predict(pd.Series(["q1"]), pd.Series(["What is 2+2?"]))
mods = [m for m in ("streamlit", "plotly", "optuna", "numba", "matplotlib") if m in sys.modules]
print(json.dumps({"columns": list(frame.columns), "id": str(frame["id"][0]),
                  "answer": int(frame["answer"][0]), "policy": os.environ["AIMO_POLICY"],
                  "heavy": mods}))
"""


@pytest.mark.network
@pytest.mark.timeout(1200)  # pip download + a fresh venv: minutes on a busy machine
def test_bundle_installs_offline_and_predicts(tmp_path: Path) -> None:
    out = tmp_path / "bundle"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    made = subprocess.run(
        [sys.executable, "-m", "aimo", "bundle", "--policy", "fast-8", "--model",
         "/kaggle/input/some-model", "--backend", "pytorch", "--out", str(out)],
        capture_output=True, text=True, env=env, cwd=ROOT, timeout=600)
    assert made.returncode == 0, made.stderr
    manifest = json.loads((out / "bundle.json").read_text())
    assert manifest["policy"] == "fast-8" and manifest["model"] == "/kaggle/input/some-model"
    assert any(w.startswith("aimo_policy_lab-") for w in manifest["wheels"])
    assert not any(w.split("-")[0] in ("streamlit", "plotly", "optuna", "numba", "matplotlib")
                   for w in manifest["wheels"])

    clean = tmp_path / "venv"
    venv.create(clean, with_pip=True)
    py = clean / "bin" / "python"
    # no index, no machine-wide pip config (its find-links/mirrors): only the bundle's wheels
    offline = {"PATH": os.environ.get("PATH", ""), "PIP_CONFIG_FILE": os.devnull,
               "HOME": str(tmp_path)}
    inst = subprocess.run(
        [str(py), "-m", "pip", "install", "--quiet", "--no-index", "--find-links",
         str(out / "wheels"), "aimo-policy-lab"],
        capture_output=True, text=True, env=offline, timeout=600)
    assert inst.returncode == 0, inst.stderr
    run = subprocess.run([str(py), "-c", CHECK, str(out)], capture_output=True, text=True,
                         env=offline, cwd=tmp_path, timeout=300)
    assert run.returncode == 0, run.stderr
    got = json.loads(run.stdout.strip().splitlines()[-1])
    assert got["columns"] == ["id", "answer"] and got["id"] == "q1"
    assert 0 <= got["answer"] <= 999
    assert got["policy"] == str(out / "policy.yaml") and got["heavy"] == []
    help_ = subprocess.run([str(clean / "bin" / "aimo"), "solve", "--help"], capture_output=True,
                           text=True, env=offline, timeout=120)
    assert help_.returncode == 0 and "--backend" in help_.stdout


def test_bundle_refuses_a_non_empty_out_and_a_bad_policy(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from aimo.cli import app

    (tmp_path / "x").write_text("keep me")
    res = CliRunner().invoke(app, ["bundle", "--policy", "fast-8", "--model", "m",
                                   "--out", str(tmp_path)])
    assert res.exit_code == 2 and "not empty" in res.output
    assert (tmp_path / "x").read_text() == "keep me"
    res = CliRunner().invoke(app, ["bundle", "--policy", "no-such-policy", "--model", "m",
                                   "--out", str(tmp_path / "new")])
    assert res.exit_code == 2 and "no-such-policy" in res.output
    assert not (tmp_path / "new").exists()


def test_bundle_refuses_a_file_as_out_and_cleans_up_after_a_failed_pip(tmp_path: Path) -> None:
    from aimo.bundle import make_bundle
    from aimo.core.errors import InputError

    a_file = tmp_path / "f"
    a_file.write_text("x")
    with pytest.raises(InputError, match="not a folder"):
        make_bundle("fast-8", "m", a_file)
    with pytest.raises(InputError, match="--model"):
        make_bundle("fast-8", " ", tmp_path / "b")

    def failing_pip(cmd) -> None:
        raise InputError("pip", None, "pip failed (exit 1): no network")

    out = tmp_path / "half"
    with pytest.raises(InputError, match="no network"):
        make_bundle("fast-8", "m", out, run=failing_pip, echo=lambda _: None)
    assert not out.exists()
