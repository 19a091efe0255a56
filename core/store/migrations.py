"""Schema migrations: numbered `migrations/NNN_name.sql` files applied in order and recorded in
the `schema_migrations` table.

Functions here take an open DuckDB connection and never open files themselves (see `connect.py`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import duckdb

from aimo.core.errors import InputError

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
_FILE_RE = re.compile(r"^(\d{3})_([a-z0-9_]+)\.sql$")

# The tables every store of the current schema has; `check_schema` insists on them.
REQUIRED_TABLES: tuple[str, ...] = (
    "runs",
    "problems",
    "samples",
    "chunks",
    "answers",
    "questions_done",
)

CREATE_MIGRATIONS_TABLE = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    INTEGER PRIMARY KEY,
    name       VARCHAR NOT NULL,
    applied_at TIMESTAMP NOT NULL DEFAULT current_timestamp
)
"""
RECORD_MIGRATION = "INSERT INTO schema_migrations (version, name) VALUES ($version, $name)"
APPLIED_VERSIONS = "SELECT version FROM schema_migrations ORDER BY version"
LIST_TABLES = "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main'"
LIST_COLUMNS = """
SELECT table_name, column_name FROM information_schema.columns
WHERE table_schema = 'main' AND table_catalog = current_database()
ORDER BY table_name, ordinal_position
"""


@dataclass(frozen=True)
class Migration:
    """One schema step: `version` (1, 2, ...), its `name` from the file name, and its SQL script."""

    version: int
    name: str
    sql: str


def discover_migrations(directory: Path = MIGRATIONS_DIR) -> tuple[Migration, ...]:
    """Read the `NNN_name.sql` files of `directory`, sorted by version.

    Raises:
        InputError: a file name that does not follow the pattern, a repeated version or 000.
    """
    found: list[Migration] = []
    for path in sorted(directory.glob("*.sql")):
        match = _FILE_RE.match(path.name)
        if match is None:
            raise InputError(str(path), None, "migration files must be named NNN_name.sql")
        sql = path.read_text(encoding="utf-8")
        found.append(Migration(int(match.group(1)), match.group(2), sql))
    versions = [m.version for m in found]
    # Gaps are allowed (parallel branches reserve numbers); duplicates and 000 are not.
    if len(set(versions)) != len(versions) or (versions and versions[0] < 1):
        message = f"migration versions must be distinct and start at 1 or above, got {versions}"
        raise InputError(str(directory), None, message)
    return tuple(found)


MIGRATIONS: tuple[Migration, ...] = discover_migrations()
LATEST_VERSION: int = MIGRATIONS[-1].version
CONFIDENCE_VERSION = 3  # migration 003: `sample_confidence` and `runs.logprobs`
DECIDED_VERSION = 4  # migration 004: `questions_done.decided_s`


def list_tables(con: duckdb.DuckDBPyConnection) -> set[str]:
    """Names of the tables and views of the main schema."""
    return {row[0] for row in con.execute(LIST_TABLES).fetchall()}


def applied_versions(con: duckdb.DuckDBPyConnection) -> list[int]:
    """Versions recorded in `schema_migrations` (empty when the table does not exist)."""
    if "schema_migrations" not in list_tables(con):
        return []
    return [row[0] for row in con.execute(APPLIED_VERSIONS).fetchall()]


def apply_migrations(
    con: duckdb.DuckDBPyConnection, migrations: tuple[Migration, ...] = MIGRATIONS
) -> list[int]:
    """Apply the migrations not yet recorded, in order, one transaction each; return their versions.

    The connection must be read-write. Re-running is a no-op.
    """
    con.execute(CREATE_MIGRATIONS_TABLE)
    done = set(applied_versions(con))
    applied: list[int] = []
    for migration in migrations:
        if migration.version in done:
            continue
        con.execute("BEGIN TRANSACTION")
        try:
            con.execute(migration.sql)
            con.execute(RECORD_MIGRATION, {"version": migration.version, "name": migration.name})
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        applied.append(migration.version)
    return applied


def has_confidence(con: duckdb.DuckDBPyConnection) -> bool:
    """Whether the store has migration 003 (the `sample_confidence` table, `runs.logprobs`)."""
    return CONFIDENCE_VERSION in applied_versions(con)


def has_decided(con: duckdb.DuckDBPyConnection) -> bool:
    """Whether the store has migration 004 (`questions_done.decided_s`)."""
    return DECIDED_VERSION in applied_versions(con)


def check_schema(
    con: duckdb.DuckDBPyConnection, source: str, *, allow_older: bool = False
) -> int:
    """Check that `con` is a trace store at the current schema version and return its version.

    With `allow_older` (readers), a store that lacks some of this code's migrations is accepted:
    the readers treat what those migrations add as absent (e.g. no confidence before 003).

    Raises:
        InputError: naming `source` when the database is not a trace store or is at another
            schema version (older only without `allow_older`).
    """
    tables = list_tables(con)
    if "schema_migrations" not in tables:
        shown = ", ".join(sorted(tables)[:10]) or "none"
        raise InputError(
            source, None, f"not a trace store (no schema_migrations table; tables found: {shown})"
        )
    applied = set(applied_versions(con))
    version = max(applied, default=0)
    if version > LATEST_VERSION:
        raise InputError(
            source,
            "schema_migrations.version",
            f"store schema v{version} is newer than this code's v{LATEST_VERSION}; "
            "upgrade the package",
        )
    missing_versions = sorted({m.version for m in MIGRATIONS} - applied)
    if missing_versions and not allow_older:
        raise InputError(
            source,
            "schema_migrations.version",
            f"store schema v{version} lacks migration(s) {missing_versions} of "
            f"v{LATEST_VERSION}; upgrade it with core.store.init_store (TraceWriter does so)",
        )
    missing = [name for name in REQUIRED_TABLES if name not in tables]
    if missing:
        raise InputError(source, missing[0], "table missing from the trace store")
    found: dict[str, set[str]] = {}
    for table, column in con.execute(LIST_COLUMNS).fetchall():
        found.setdefault(table, set()).add(column)
    for table, columns in expected_columns().items():
        lost = [c for c in columns if c not in found.get(table, set())]
        if lost:
            raise InputError(source, f"{table}.{lost[0]}",
                             "column missing from the trace store (the file was altered by hand?)")
    return version


@cache
def expected_columns() -> dict[str, tuple[str, ...]]:
    """Columns of each required table at the current schema, from the migrations themselves."""
    con = duckdb.connect()
    try:
        apply_migrations(con)
        rows = con.execute(LIST_COLUMNS).fetchall()
    finally:
        con.close()
    out: dict[str, list[str]] = {}
    for table, column in rows:
        if table in REQUIRED_TABLES:
            out.setdefault(table, []).append(column)
    return {t: tuple(c) for t, c in out.items()}
