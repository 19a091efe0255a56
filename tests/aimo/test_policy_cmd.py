"""`aimo policy list|show|validate|diff`."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from aimo.cli import app
from aimo.core.policy import list_presets

runner = CliRunner()


def test_list_shows_every_preset_with_levels_and_description() -> None:
    res = runner.invoke(app, ["policy", "list"])
    assert res.exit_code == 0
    for name in list_presets():
        assert name in res.stdout
    assert "10/12/15/16/17" in res.stdout and "AIMO-2 2nd-place" in res.stdout


def test_show_is_the_full_policy_and_reloads(tmp_path: Path) -> None:
    res = runner.invoke(app, ["policy", "show", "fast-8"])
    assert res.exit_code == 0 and "hash" in res.stdout.splitlines()[0]
    (tmp_path / "p.yaml").write_text(res.stdout)
    same = runner.invoke(app, ["policy", "diff", "fast-8", str(tmp_path / "p.yaml")])
    assert same.exit_code == 0, same.output
    doc = json.loads(runner.invoke(app, ["policy", "show", "fast-8", "--json"]).stdout)
    assert doc["name"] == "fast-8" and len(doc["hash"]) == 16


def test_validate_reports_each_file(tmp_path: Path) -> None:
    good, bad = tmp_path / "good.yaml", tmp_path / "bad.yaml"
    good.write_text("base: seed-2nd-place\nname: mine\n")
    bad.write_text("base: seed-2nd-place\nname: mine\nvote: {kind_weights: {cot: -1}}\n")
    res = runner.invoke(app, ["policy", "validate", str(good), str(bad), str(tmp_path / "nope.yaml")])
    assert res.exit_code == 2
    assert f"ok {good}" in res.stdout
    assert "bad.yaml" in res.stderr and "kind_weights" in res.stderr and "nope.yaml" in res.stderr
    assert runner.invoke(app, ["policy", "validate", str(good)]).exit_code == 0


def test_diff_names_the_fields_that_differ() -> None:
    res = runner.invoke(app, ["policy", "diff", "seed-2nd-place", "fast-8"])
    assert res.exit_code == 1
    assert "schedule.levels[0].samples: 10 -> 8" in res.stdout
    assert "schedule.levels[4].samples: 17 -> (absent)" in res.stdout
    rows = json.loads(runner.invoke(app, ["policy", "diff", "seed-2nd-place", "fast-8",
                                          "--json"]).stdout)
    assert {"field": "schedule.levels[0].samples", "a": 10, "b": 8} in rows
