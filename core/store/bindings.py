"""The store's optional `profile_bindings` table: which hardware profile a run's replay uses.

Created by `aimo profile bind` (not part of the required schema: see docs/schema.md); the
choice of a profile itself is `simulator.profile_choice`'s, which calls these functions. Keys
are run ids, or a store-wide key that the caller picks.
"""

from __future__ import annotations

from pathlib import Path

import duckdb

from aimo.core.store.connect import write_connection
from aimo.core.store.migrations import list_tables

BINDINGS_TABLE = "profile_bindings"
CREATE_BINDINGS = f"""
CREATE TABLE IF NOT EXISTS {BINDINGS_TABLE} (
    run_id   VARCHAR PRIMARY KEY,   -- a run of the store, or '*' for all of them
    profile  VARCHAR NOT NULL,      -- bundled profile name or YAML path
    bound_at TIMESTAMP NOT NULL DEFAULT current_timestamp
)
"""
READ_BINDINGS = f"SELECT run_id, profile FROM {BINDINGS_TABLE}"
UPSERT_BINDING = f"INSERT OR REPLACE INTO {BINDINGS_TABLE} (run_id, profile) VALUES (?, ?)"
COUNT_BINDING = f"SELECT count(*) FROM {BINDINGS_TABLE} WHERE run_id = ?"
DELETE_BINDING = f"DELETE FROM {BINDINGS_TABLE} WHERE run_id = ?"


def bindings(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    """Every binding, key → profile (empty when the table does not exist)."""
    if BINDINGS_TABLE not in list_tables(con):
        return {}
    return dict(con.execute(READ_BINDINGS).fetchall())


def write_binding(path: str | Path, key: str, profile: str) -> None:
    """Bind `profile` to `key` (creating the table on first use)."""
    with write_connection(path) as con:
        con.execute(CREATE_BINDINGS)
        con.execute(UPSERT_BINDING, [key, profile])


def delete_binding(path: str | Path, key: str) -> bool:
    """Remove the binding of `key`; True when there was one."""
    with write_connection(path) as con:
        if BINDINGS_TABLE not in list_tables(con):
            return False
        row = con.execute(COUNT_BINDING, [key]).fetchone()
        con.execute(DELETE_BINDING, [key])
    return bool(row and row[0])
