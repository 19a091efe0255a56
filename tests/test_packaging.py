"""The installed package: one import name, `aimo`, whose subpackages are the top-level folders
(pyproject's package-dir), every code folder listed, so a wheel holds what the checkout holds."""

from __future__ import annotations

import sys
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

REPO = Path(__file__).resolve().parents[1]


def _setuptools() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]


def test_every_folder_maps_under_aimo() -> None:
    dirs = _setuptools()["package-dir"]
    assert all(name == "aimo" or name.startswith("aimo.") for name in dirs)
    assert set(dirs.values()) == {"aimo", "core", "solver", "simulator", "recorder", "tuner",
                                  "dashboard", "data"}


def test_every_code_folder_is_a_listed_package() -> None:
    """A folder with Python files (or the store's .sql migrations) that is not listed would be
    missing from wheels (aimo bundle)."""
    tool = _setuptools()
    listed = set(tool["packages"])
    found = set()
    for name, folder in tool["package-dir"].items():
        for py in [*(REPO / folder).rglob("*.py"), *(REPO / folder).rglob("*.sql")]:
            rel = py.parent.relative_to(REPO / folder).parts
            if "__pycache__" not in rel:
                found.add(".".join([name, *rel]))
    assert found - listed == set(), "add to [tool.setuptools] packages"
    assert listed - found == set(), "listed but holds no Python or SQL file"


def test_the_installed_names_resolve_to_the_folders() -> None:
    import aimo.core
    import aimo.data
    import aimo.solver

    assert Path(aimo.core.__file__).parent == REPO / "core"
    assert Path(aimo.solver.__file__).parent == REPO / "solver"
    assert (Path(aimo.data.__file__).parent / "policies").is_dir()
