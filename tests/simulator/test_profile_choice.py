"""The profile a run gets: its binding, else the bundled profile matching its recorded hardware,
model and quantization, else the default with a reason that says so."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from aimo.simulator.profile_choice import (
    DEFAULT_PROFILE,
    RunHardware,
    bind_profile,
    choose_profile,
    profile_for_store,
    unbind_profile,
)
from aimo.core.errors import InputError

ROOT = Path(__file__).resolve().parents[2]
TRACES = ROOT / "data" / "traces"


@pytest.mark.parametrize("hardware,model,quant,expected", [
    ("1xNVIDIA H200", "data/models/olympiad-tiny-awq", "awq-w4/kv8", "h200-olympiad-tiny-w4kv8"),
    ("1xNVIDIA H200", "/models/DeepSeek-R1-Distill-Qwen-14B-AWQ", "awq-w4/kv8", "h200-14b-w4kv8"),
    ("4xL4 (TP4)", "/m/r1-14b-awq", "awq-w4/kv16", "l4x4-14b-w4kv16"),
    ("4xL4", "/m/r1-14b", "fp16", "l4x4-14b-fp16"),
    ("4xL4", "/m/r1-14b-awq", "awq-w4/kv8", "l4x4-14b-w4kv8"),
])
def test_matching_profile(hardware: str, model: str, quant: str, expected: str) -> None:
    choice = choose_profile(RunHardware("r", hardware, model, quant))
    assert choice.name == expected and choice.matched


@pytest.mark.parametrize("hardware", [None, "", "8xA100 80GB", "some laptop"])
def test_no_match_falls_back_loudly(hardware: str | None) -> None:
    choice = choose_profile(RunHardware("r", hardware, "m", None))
    assert choice.name == DEFAULT_PROFILE and not choice.matched
    assert "default" in choice.reason


def test_bundled_stores() -> None:
    assert profile_for_store(TRACES / "olympiad-tiny.duckdb").name == "h200-olympiad-tiny-w4kv8"
    live = TRACES / "olympiad-live.duckdb"
    from aimo.core.store import list_runs

    for run in list_runs(live):
        assert profile_for_store(live, run.run_id).name == "h200-olympiad-tiny-w4kv8"


def test_bind_unbind_and_hostile_binds(tmp_path: Path) -> None:
    store = tmp_path / "s.duckdb"
    shutil.copy(TRACES / "olympiad-live.duckdb", store)
    from aimo.core.store import list_runs

    first, second = (r.run_id for r in list_runs(store))
    bind_profile(store, "l4x4-14b-fp16")  # store-wide
    bind_profile(store, "h200-14b-w4kv8", first)  # one run wins over the store-wide one
    assert profile_for_store(store, first).name == "h200-14b-w4kv8"
    assert profile_for_store(store, second).name == "l4x4-14b-fp16"
    with pytest.raises(InputError, match="no-such-profile"):
        bind_profile(store, "no-such-profile")
    with pytest.raises(InputError, match="no run 'ghost'"):
        bind_profile(store, "l4x4-14b-fp16", "ghost")
    with pytest.raises(InputError):
        bind_profile(tmp_path / "missing.duckdb", "l4x4-14b-fp16")
    assert unbind_profile(store, first) and not unbind_profile(store, first)
    assert profile_for_store(store, first).name == "l4x4-14b-fp16"
    assert unbind_profile(store)
    assert profile_for_store(store, first).name == "h200-olympiad-tiny-w4kv8"
    # the store still reads as a trace store everywhere
    assert len(list_runs(store)) == 2
