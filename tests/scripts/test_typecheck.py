"""scripts/typecheck.py: mypy sees `aimo.<part>` as the folder `<part>/`, so a wrong type across
modules is reported (without the link tree, `from aimo.core... import` is unresolved and Any)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "typecheck.py"


def _typecheck_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("typecheck_script", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_tree_links_every_part_to_its_folder(tmp_path: Path) -> None:
    """Each package-dir entry is linked: aimo's own files one by one, each part as its folder."""
    tc = _typecheck_module()
    (tmp_path / "pyproject.toml").write_text(
        '[tool.setuptools.package-dir]\n"aimo" = "aimo"\n"aimo.core" = "core"\n')
    for folder in ("aimo", "core"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "__init__.py").write_text("")
    (tmp_path / "aimo" / "cli.py").write_text("")
    (tmp_path / "aimo" / "__pycache__").mkdir()
    shown = tc.build_tree(tmp_path)
    package = tmp_path / tc.TREE / "aimo"
    assert sorted(p.name for p in package.iterdir()) == ["__init__.py", "cli.py", "core"]
    assert (package / "core").resolve() == (tmp_path / "core").resolve()
    assert (package / "cli.py").resolve() == (tmp_path / "aimo" / "cli.py").resolve()
    text = f"{tc.TREE}/aimo/core/x.py:1: error\n{tc.TREE}/aimo/cli.py:2: error\n"
    assert tc.rewrite(text, shown) == "core/x.py:1: error\naimo/cli.py:2: error\n"


def test_wrong_argument_type_across_modules_is_reported(tmp_path: Path) -> None:
    """A module calling aimo.core with a wrong argument type fails the check, at the caller."""
    pytest.importorskip("mypy")
    probe = tmp_path / "probe.py"
    probe.write_text("from aimo.core.errors import InputError\n\n"
                     "InputError('file', None, 3)\n")
    run = subprocess.run(
        [sys.executable, str(SCRIPT), "--cache-dir", str(tmp_path / "cache"),
         "--follow-imports", "silent", str(probe)],
        capture_output=True, text=True, timeout=240)
    assert run.returncode == 1, run.stdout + run.stderr
    assert 'Argument 3 to "InputError" has incompatible type "int"; expected "str"' in run.stdout
