"""The bundled trace stores are at the current schema: a reader migrates an older, writable store
in place (`read_connection`), so a bundled store one migration behind was rewritten by every
`aimo validate` or test that read it, leaving the checkout modified."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from aimo.core.store.migrations import LATEST_VERSION, applied_versions

BUNDLED = sorted((Path(__file__).resolve().parents[2] / "data" / "traces").glob("*.duckdb"))


def test_there_are_bundled_stores() -> None:
    assert len(BUNDLED) >= 5


@pytest.mark.parametrize("store", BUNDLED, ids=lambda p: p.name)
def test_bundled_store_is_at_the_latest_schema(store: Path) -> None:
    con = duckdb.connect(str(store), read_only=True)
    try:
        assert max(applied_versions(con)) == LATEST_VERSION, (
            f"{store.name}: migrate it (aimo.core.store.connect.init_store(path, create=False))")
    finally:
        con.close()
