"""The garbage collector's pauses during a live solve (`solver.loop.gc_pauses`): every collection
counted by generation, the longest kept with their start on the competition clock, and reported by
a live `aimo solve` (not by a replay on a virtual clock)."""

from __future__ import annotations

import gc
import sys
from pathlib import Path

import pytest
from fake_lmdeploy import FakeTokenizer, make_fake_lmdeploy
from hil_store import write_hil_store

from aimo.core.hardware import load_profile
from aimo.solver.loop.gc_pauses import GcPauses
from aimo.solver.solve import EngineSpec, run_solve


def test_each_collection_is_counted_and_the_longest_kept_on_the_given_clock() -> None:
    ticks = iter(range(100, 1000))
    with GcPauses(lambda: float(next(ticks)), keep=2) as pauses:
        for _ in range(3):
            gc.collect(2)
        gc.collect(0)
    gc.collect(2)  # after the block: not seen
    assert pauses.count[2] == 3 and pauses.count[0] >= 1
    assert pauses.total_s[2] > 0 and pauses.max_s[2] <= pauses.total_s[2]
    assert len(pauses.longest) == 2 and pauses.longest[0].seconds >= pauses.longest[1].seconds
    assert all(100 <= p.at_s < 1000 for p in pauses.longest)  # the clock it was given
    s = pauses.summary()
    assert s["generations"][2]["collections"] == 3 and len(s["longest"]) == 2
    assert s["threshold"] == list(gc.get_threshold())
    assert "3 full" in pauses.render()
    assert pauses._callback not in gc.callbacks  # removed on leaving
    with GcPauses(lambda: 0.0, keep=0) as counts_only:  # keeps none, still counts
        gc.collect(2)
    assert counts_only.count[2] == 1 and counts_only.longest == []


def test_a_live_solve_reports_its_pauses_and_a_replay_does_not(monkeypatch: pytest.MonkeyPatch,
                                                               tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "lmdeploy", make_fake_lmdeploy(tokenizer=FakeTokenizer(), step_s=0.001))
    store = write_hil_store(tmp_path / "traces.duckdb")
    live = run_solve(None, "majority-n", EngineSpec("hil", model="/m", tp=1, seed=3,
                                                    options={"draw_seed": 3}), traces=store, echo=None)
    report = live.to_json()
    assert [g["generation"] for g in report["gc"]["generations"]] == [0, 1, 2]
    assert all(p["at_s"] >= 0 for p in report["gc"]["longest"])
    replay = run_solve(None, "majority-n", EngineSpec("replay"), traces=store, echo=None,
                       hardware=load_profile("h100-14b-w4kv8"))
    assert "gc" not in replay.to_json()
