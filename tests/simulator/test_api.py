"""The notebook API: three lines from a store to a DataFrame, the fast path's bootstrap equal to
the reference's for a seed, the profile chosen from the run, exports, bad input named."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from aimo.simulator import api
from aimo.core.errors import InputError

ROOT = Path(__file__).resolve().parents[2]
OLYMPIAD = ROOT / "data" / "traces" / "olympiad-tiny.duckdb"


def test_three_lines_to_a_dataframe() -> None:
    res = api.simulate(OLYMPIAD, policy="seed-2nd-place", bootstrap=50, seed=3)
    frame = res.to_pandas()
    assert list(frame.columns[:4]) == ["replicate", "score", "time_s", "overtime"]
    assert len(frame) == 50 and frame["score"].mean() == pytest.approx(res.summary.mean_score)
    assert res.engine == "fast" and res.hardware == "h200-olympiad-tiny-w4kv8"
    assert "recorded hardware" in res.profile_reason


def test_fast_bootstrap_equals_the_reference() -> None:
    fast = api.simulate(OLYMPIAD, bootstrap=6, seed=11, hardware="l4x4-14b-w4kv8")
    ref = api.simulate(OLYMPIAD, bootstrap=6, seed=11, hardware="l4x4-14b-w4kv8", reference=True)
    assert (fast.engine, ref.engine) == ("fast", "reference")
    np.testing.assert_array_equal(fast.scores, ref.scores)
    np.testing.assert_allclose(fast.times_s, ref.times_s, rtol=1e-9)
    fj, rj = fast.to_json()["bootstrap"], ref.to_json()["bootstrap"]
    assert fj.pop("mean_time_s") == pytest.approx(rj.pop("mean_time_s"), rel=1e-9)
    assert fj == rj


def test_reference_reports_progress() -> None:
    seen: list[tuple[int, int]] = []
    api.simulate(OLYMPIAD, bootstrap=3, seed=0, reference=True,
                 progress=lambda d, t: seen.append((d, t)))
    assert seen == [(1, 3), (2, 3), (3, 3)]


def test_recorded_mode_rows_and_export(tmp_path: Path) -> None:
    res = api.simulate(OLYMPIAD, policy="fast-8")
    frame = res.to_pandas()
    assert len(frame) == 50 and {"problem_id", "answer", "correct", "time_s"} <= set(frame.columns)
    assert frame["correct"].sum() == res.competition.score
    csv = res.export(tmp_path / "rows.csv")
    parquet = res.export(tmp_path / "rows.parquet")
    assert pd.read_csv(csv)["problem_id"].tolist() == frame["problem_id"].tolist()
    assert pd.read_parquet(parquet)["time_s"].tolist() == frame["time_s"].tolist()
    with pytest.raises(InputError, match=r"\.csv or \.parquet"):
        res.export(tmp_path / "rows.xlsx")
    with pytest.raises(InputError, match="no such directory"):
        res.export(tmp_path / "missing" / "rows.csv")


def test_bad_inputs_are_named(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="missing.duckdb"):
        api.simulate(tmp_path / "missing.duckdb")
    with pytest.raises(InputError, match="no-such-policy"):
        api.simulate(OLYMPIAD, policy="no-such-policy")
    with pytest.raises(InputError, match="bootstrap"):
        api.simulate(OLYMPIAD, bootstrap=-1)
    not_store = tmp_path / "x.duckdb"
    not_store.write_bytes(b"not a database")
    with pytest.raises(InputError):
        api.simulate(not_store)


def test_binding_wins_over_the_match(tmp_path: Path) -> None:
    from aimo.simulator.profile_choice import bind_profile

    store = tmp_path / "s.duckdb"
    shutil.copy(OLYMPIAD, store)
    bind_profile(store, "h200-14b-w4kv8")
    res = api.simulate(store, bootstrap=2)
    assert res.hardware == "h200-14b-w4kv8" and "bound" in res.profile_reason
