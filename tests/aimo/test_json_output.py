"""`--json` prints only JSON on stdout: an engine that prints, writes to fd 1 and logs through a
stdout handler (as lmdeploy does: "please install FlashAttention-3", "Failed to cancel
session") has all of it moved to stderr, in a real process (file descriptors included)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

NOISY = """
import logging, os, sys
import aimo.solver.solve as solve
lib = logging.getLogger("lmdeploy")
lib.addHandler(logging.StreamHandler(sys.stdout))   # bound to stdout at import, like a library
real_build = solve.build_engine

def noisy_build(*args, **kwargs):
    print("For higher performance, please install FlashAttention-3")
    os.write(1, b"Failed to cancel session 3 (fd 1)\\n")
    lib.warning("lmdeploy: a warning through a stdout handler")
    return real_build(*args, **kwargs)

solve.build_engine = noisy_build
from aimo.cli import main
sys.argv = ["aimo", *sys.argv[1:]]
main()
"""


def run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-c", NOISY, *args], capture_output=True, text=True,
                          env=env, cwd=tmp_path, timeout=300)


def test_solve_json_is_pure_json_with_a_noisy_engine(tmp_path: Path) -> None:
    csv = tmp_path / "p.csv"
    csv.write_text("id,question,answer\nq1,What is 2+2?,4\nq2,What is 3+3?,6\n")
    res = run(tmp_path, "solve", "--backend", "synthetic", "--problems", str(csv), "--json")
    assert res.returncode == 0, res.stderr
    doc = json.loads(res.stdout)  # nothing but the JSON document
    assert doc["n_questions"] == 2
    for noise in ("FlashAttention-3", "Failed to cancel session", "a warning through"):
        assert noise in res.stderr and noise not in res.stdout
    assert "q1" in res.stderr  # progress: one line per question on stderr


def test_solve_prints_the_result_once(tmp_path: Path) -> None:
    csv = tmp_path / "p.csv"
    csv.write_text("id,question,answer\nq1,What is 2+2?,4\n")
    res = run(tmp_path, "solve", "--backend", "synthetic", "--problems", str(csv))
    assert res.returncode == 0, res.stderr
    assert res.stdout.count("policy seed-2nd-place, backend synthetic") == 1
    assert "FlashAttention-3" not in res.stdout
