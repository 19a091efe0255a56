"""The slow list (tests/conftest.py) names tests that exist, and the markers `make test-fast`
deselects are the registered ones."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _conftest_slow() -> dict[str, str]:
    import importlib.util

    spec = importlib.util.spec_from_file_location("_root_conftest", REPO / "tests/conftest.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.SLOW


def test_every_slow_entry_names_an_existing_module_or_test() -> None:
    missing = []
    for key in _conftest_slow():
        path, _, name = key.partition("::")
        source = (REPO / path).read_text() if (REPO / path).is_file() else None
        if source is None or (name and not re.search(rf"^def {re.escape(name)}\(", source, re.M)):
            missing.append(key)
    assert missing == []


def test_make_test_fast_deselects_registered_markers_only() -> None:
    block = re.search(r"^markers = \[(.*?)^\]", (REPO / "pyproject.toml").read_text(), re.M | re.S)
    assert block is not None
    registered = set(re.findall(r'^\s*"(\w+): ', block.group(1), re.M))
    fast = re.search(r'^FAST := not \((.*)\)$', (REPO / "Makefile").read_text(), re.M)
    assert fast is not None
    used = set(fast.group(1).split(" or "))
    assert used <= registered and used == registered  # every marker names a part fast leaves out
