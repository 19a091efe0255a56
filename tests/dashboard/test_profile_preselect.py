"""The Simulate and Compare pages preselect the run's profile: the one bound to the store, else
the bundled profile matching the run's recorded hardware (not always the 4xL4 default)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from aimo.simulator.profile_choice import bind_profile

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def h200_store(tmp_path: Path) -> Path:
    dst = tmp_path / "olympiad-tiny.duckdb"
    shutil.copy(ROOT / "data" / "traces" / "olympiad-tiny.duckdb", dst)
    return dst


def picked(at, page: str) -> str:
    prefix = {"simulate": "sim_profile", "compare": "cmp_profile"}[page]
    boxes = [s for s in at.selectbox if str(s.key).startswith(prefix)]
    assert len(boxes) == 1, [s.key for s in at.selectbox]
    return str(boxes[0].value)


@pytest.mark.parametrize("name", ["simulate", "compare"])
def test_pages_preselect_the_matching_then_the_bound_profile(h200_store: Path, env, page,
                                                             name: str) -> None:
    env(traces=h200_store)
    at = page(name)
    assert not at.exception, [e.value for e in at.exception]
    assert picked(at, name) == "h200-olympiad-tiny-w4kv8"
    bind_profile(h200_store, "h200-14b-w4kv8")
    at = page(name)
    assert picked(at, name) == "h200-14b-w4kv8"


def test_synthetic_store_keeps_the_l4_profile(store: Path, env, page) -> None:
    env(traces=store)
    at = page("simulate", run="synthetic-r1-14b-s1")
    assert picked(at, "simulate") == "l4x4-14b-w4kv8"
