"""Hardware profiles say under which engine, GPU, quantisation and sampling they hold."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from aimo.cli import app
from aimo.core.hardware import list_profiles, load_profile, save_profile
from aimo.core.errors import InputError


@pytest.mark.parametrize("name", ["h200-14b-w4kv8", "h200-olympiad-tiny-w4kv8", "h200-olympiad-tiny-w4kv8-fit",
                                  "l4x4-14b-w4kv8", "l4x4-14b-w4kv16", "l4x4-14b-fp16"])
def test_every_shipped_profile_states_its_conditions(name: str) -> None:
    p = load_profile(name).provenance
    assert p.engine.startswith("lmdeploy ") and p.gpu and p.quantization and p.date
    assert dict(p.sampling) == {"temperature": 0.9, "top_p": 0.95, "min_p": 0.1, "repetition_penalty": 1.05}


def test_all_shipped_profiles_are_covered() -> None:
    assert all(load_profile(n).provenance.gpu for n in list_profiles())


def test_conditions_round_trip_and_show(tmp_path: Path) -> None:
    p = load_profile("h200-14b-w4kv8")
    path = save_profile(dataclasses.replace(p, name="copy"), tmp_path / "copy.yaml")
    assert load_profile(path).provenance == p.provenance
    res = CliRunner().invoke(app, ["profile", "show", "h200-14b-w4kv8"])
    assert res.exit_code == 0
    assert ("holds for: engine lmdeploy pytorch 0.18.0; GPU 1xNVIDIA H200; quantization awq-w4/kv8; "
            "sampling temperature 0.9, top_p 0.95, min_p 0.1, repetition_penalty 1.05; measured on 2026-12-07") in res.output


def test_profiles_without_conditions_still_load_and_say_so(tmp_path: Path) -> None:
    data = yaml.safe_load(Path(load_profile.__globals__["HARDWARE_DIR"] / "h200-14b-w4kv8.yaml").read_text())
    for key in ("engine", "engine_version", "gpu", "quantization", "sampling"):
        del data["provenance"][key]
    path = tmp_path / "old.yaml"
    path.write_text(yaml.safe_dump(data))
    assert "engine not stated; GPU not stated" in load_profile(path).provenance.conditions()


@pytest.mark.parametrize("field,value,message", [
    ("sampling", {"temperature": "hot"}, "provenance.sampling.temperature"),
    ("sampling", [0.9], "provenance.sampling"),
    ("gpu", 3, "provenance.gpu"),
    ("engine_version", ["0.18"], "provenance.engine_version"),
])
def test_bad_conditions_name_the_field(tmp_path: Path, field: str, value: object, message: str) -> None:
    data = yaml.safe_load(Path(load_profile.__globals__["HARDWARE_DIR"] / "h200-14b-w4kv8.yaml").read_text())
    data["provenance"][field] = value
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(InputError) as err:
        load_profile(path)
    assert message in str(err.value) and "bad.yaml" in str(err.value)
