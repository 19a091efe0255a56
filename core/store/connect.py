"""Opening a trace store: short-lived DuckDB connections that wait out the other side's file lock.

DuckDB lets one read-write process OR many read-only processes hold a file. Writers and readers
therefore keep connections only as long as one question's write or one read takes, and both
retry the lock error with capped exponential backoff until `lock_timeout_s`.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

from aimo.core.errors import InputError
from aimo.core.store.migrations import (
    LATEST_VERSION,
    apply_migrations,
    applied_versions,
    check_schema,
    list_tables,
)

logger = logging.getLogger("aimo.core.store")

DEFAULT_LOCK_TIMEOUT_S = 30.0
# Readers commit a dead writer's spool on open, but never wait long for the lock to do so.
READER_FLUSH_TIMEOUT_S = 0.2
_FIRST_BACKOFF_S = 0.002
# The writer polls faster than readers, so it takes the file in the gaps between reads: a
# dashboard must not slow a recording down.
_MAX_BACKOFF_S = {True: 0.05, False: 0.01}  # by read_only
# Messages of the errors that mean "someone else holds the file right now"; worth waiting for.
_BUSY_MARKERS = (
    "Could not set lock",
    "Conflicting lock",
    "different configuration than existing connections",  # same process, other mode, still open
)


class StoreBusyError(InputError):
    """The store stayed locked by another process (or connection) for longer than the timeout."""


def _is_busy(exc: BaseException) -> bool:
    message = str(exc)
    return any(marker in message for marker in _BUSY_MARKERS)


def open_duckdb(
    path: str | Path, *, read_only: bool, lock_timeout_s: float = DEFAULT_LOCK_TIMEOUT_S
) -> duckdb.DuckDBPyConnection:
    """Connect to the DuckDB file `path`, retrying while another process holds its lock.

    Does not check the schema. A read-write connect creates a missing file.

    Raises:
        StoreBusyError: still locked after `lock_timeout_s` seconds.
        InputError: the file cannot be opened as a DuckDB database (names the file).
    """
    source = str(path)
    deadline = time.monotonic() + lock_timeout_s
    delay = _FIRST_BACKOFF_S
    while True:
        try:
            return duckdb.connect(source, read_only=read_only)
        except duckdb.Error as exc:
            if not _is_busy(exc):
                message = f"cannot open as a DuckDB trace store: {exc}"
                raise InputError(source, None, message) from exc
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise StoreBusyError(
                    source, None, f"still locked after {lock_timeout_s:g} s: {exc}"
                ) from exc
            mode = "read" if read_only else "write"
            logger.debug("store %s busy (%s), retrying in %.3f s", source, mode, delay)
            time.sleep(min(delay, remaining))
            delay = min(delay * 2.0, _MAX_BACKOFF_S[read_only])


# A DuckDB database file holds "DUCK" at bytes 8..11 (after a checksum).
_MAGIC_AT, _MAGIC = 8, b"DUCK"


def _check_magic(p: Path) -> None:
    """InputError unless `p` starts like a DuckDB database (an empty file is let through: a
    writer initialises it). Without this DuckDB opens e.g. a CSV through its file readers and
    says "Cannot launch in-memory database in read-only mode!"."""
    try:
        with p.open("rb") as handle:
            head = handle.read(_MAGIC_AT + len(_MAGIC))
    except OSError as exc:
        raise InputError(str(p), None, f"cannot read: {exc.strerror or exc}") from None
    if head and head[_MAGIC_AT:] != _MAGIC:
        kind = "text (a CSV or JSONL file?)" if head.isascii() else "some other binary format"
        raise InputError(str(p), None, f"not a DuckDB trace store: the file is {kind}, "
                         "not a DuckDB database")


def _existing_file(path: str | Path) -> Path:
    p = Path(path)
    if not p.exists():
        raise InputError(str(p), None, "no such trace store")
    if not p.is_file():
        raise InputError(str(p), None, "not a file")
    _check_magic(p)
    return p


def _flush_pending(p: Path) -> None:
    """Commit spooled entries left beside the store (core.store.spool), if the lock is free now."""
    from aimo.core.store import spool

    if not spool.pending(p):
        return
    from aimo.core.store.writer import flush_spool

    try:
        flush_spool(p, lock_timeout_s=READER_FLUSH_TIMEOUT_S)
    except StoreBusyError:
        pass  # the writer holds it: it flushes its own spool
    except (InputError, OSError) as exc:  # e.g. a read-only copy of the store
        logger.warning("could not commit the spool of %s: %s", p, exc)


def _older_schema(con: duckdb.DuckDBPyConnection) -> bool:
    versions = applied_versions(con)
    return bool(versions) and max(versions) < LATEST_VERSION


@contextmanager
def read_connection(
    path: str | Path, *, lock_timeout_s: float = DEFAULT_LOCK_TIMEOUT_S, flush: bool = True
) -> Iterator[duckdb.DuckDBPyConnection]:
    """A read-only connection to the trace store `path`, closed on exit; hold it only briefly.

    Before opening, commits a spool a writer left (`flush`); a store at an older schema is
    migrated forward first (when the file is writable).

    Raises:
        InputError: missing file, not a DuckDB file, not a trace store, or one of a newer schema
            (an older store is read as it is: what later migrations add is absent).
        StoreBusyError: a writer held the file for longer than `lock_timeout_s`.
    """
    p = _existing_file(path)
    if flush:
        _flush_pending(p)
    con = open_duckdb(p, read_only=True, lock_timeout_s=lock_timeout_s)
    if _older_schema(con) and os.access(p, os.W_OK):
        con.close()
        init_store(p, create=False, lock_timeout_s=lock_timeout_s)
        con = open_duckdb(p, read_only=True, lock_timeout_s=lock_timeout_s)
    try:
        check_schema(con, str(p), allow_older=True)
        yield con
    finally:
        con.close()


@contextmanager
def write_connection(
    path: str | Path, *, lock_timeout_s: float = DEFAULT_LOCK_TIMEOUT_S, flush: bool = True
) -> Iterator[duckdb.DuckDBPyConnection]:
    """A read-write connection to the existing trace store `path`; closed (checkpointed) on exit.

    Commits a pending spool first (`flush`; the writer itself passes False).

    Raises:
        InputError / StoreBusyError: as `read_connection`.
    """
    p = _existing_file(path)
    if flush:
        _flush_pending(p)
    con = open_duckdb(p, read_only=False, lock_timeout_s=lock_timeout_s)
    try:
        check_schema(con, str(p))
        yield con
    finally:
        con.close()


def _create_atomically(target: Path) -> None:
    """Build a fully migrated store beside `target` and link it into place, so that no reader ever
    sees a half-initialised file. If `target` appeared meanwhile, it is left untouched."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.init")
    for leftover in (tmp, tmp.with_name(tmp.name + ".wal")):
        leftover.unlink(missing_ok=True)
    con = duckdb.connect(str(tmp))
    try:
        apply_migrations(con)
    finally:
        con.close()
    try:
        os.link(tmp, target)
    except FileExistsError:
        pass
    except OSError:  # no hard links on this file system
        if not target.exists():
            os.rename(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def init_store(
    path: str | Path, *, create: bool = True, lock_timeout_s: float = DEFAULT_LOCK_TIMEOUT_S
) -> list[int]:
    """Make `path` a trace store at the current schema and return the migration versions applied.

    A missing file is created when `create` is set; an existing DuckDB file with no tables is
    initialised; an existing store is migrated forward. Anything else is left untouched.

    Raises:
        InputError: the file is not a DuckDB file, holds other tables, or has a newer schema.
    """
    p = Path(path)
    if not p.exists() and create:
        _create_atomically(p)
    p = _existing_file(p)
    con = open_duckdb(p, read_only=False, lock_timeout_s=lock_timeout_s)
    try:
        tables = list_tables(con)
        ours = "schema_migrations" in tables
        if ours and max(applied_versions(con), default=0) > LATEST_VERSION:
            ours = False  # check_schema below reports the newer version
        applied = apply_migrations(con) if (not tables or ours) else []
        check_schema(con, str(p))
        return applied
    finally:
        con.close()
