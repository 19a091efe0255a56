"""The writer's spool: questions (and final statuses) it could not commit because another process
held the store, kept in an append-only folder beside the store until they are committed.

Why: a dashboard or simulator holding the file must never make the solver wait or lose a
question. Each entry is a folder `<store>.spool/<seq>-<pid>-<n>/` holding `meta.json` and, for a
question, `samples.arrow`, `chunks.arrow`, `answers.arrow` (Arrow IPC files). It is written under a
temporary name, fsynced and renamed into place, so an entry is either whole or absent; a crash
while spooling loses only that entry's temporary folder. Entries are replayed in name order by
`core.store.writer.flush_spool` and removed once committed; committing is idempotent (a
question already marked done is skipped), so two processes flushing at once are harmless.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.ipc as ipc

TABLES = ("samples", "chunks", "answers", "sample_confidence")
_TMP_PREFIX = ".tmp-"
REJECTED_PREFIX = "rejected-"
_counter = 0


@dataclass(frozen=True)
class SpoolEntry:
    """One spooled operation: `meta` (op 'question' or 'status', run_id, ...) and, for a question,
    its three frames."""

    path: Path
    meta: dict[str, Any]
    tables: dict[str, pa.Table]


def spool_dir(store: str | Path) -> Path:
    """The spool folder of `store`: `<store>.spool` beside it."""
    p = Path(store)
    return p.with_name(p.name + ".spool")


def pending(store: str | Path) -> list[Path]:
    """Whole spooled entries of `store`, oldest first (empty when there is no spool)."""
    folder = spool_dir(store)
    try:
        names = sorted(
            e.name for e in os.scandir(folder) if not e.name.startswith((_TMP_PREFIX, REJECTED_PREFIX))
        )
    except (FileNotFoundError, NotADirectoryError):
        return []
    return [folder / name for name in names]


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def append(store: str | Path, meta: dict[str, Any], tables: dict[str, pa.Table] | None = None) -> Path:
    """Durably add one entry to the spool of `store` and return its folder.

    Raises:
        OSError: the spool folder cannot be written (the caller reports it; nothing is lost
            silently).
    """
    global _counter
    _counter += 1
    folder = spool_dir(store)
    folder.mkdir(exist_ok=True)
    name = f"{time.time_ns():020d}-{os.getpid()}-{_counter:06d}"
    tmp = folder / f"{_TMP_PREFIX}{name}"
    tmp.mkdir()
    try:
        (tmp / "meta.json").write_text(json.dumps(meta, sort_keys=True), encoding="utf-8")
        for table_name, table in (tables or {}).items():
            with ipc.new_file(str(tmp / f"{table_name}.arrow"), table.schema) as sink:
                sink.write_table(table)
        for child in tmp.iterdir():
            _fsync(child)
        _fsync(tmp)
        final = folder / name
        os.rename(tmp, final)
        _fsync(folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def rejected(store: str | Path) -> list[Path]:
    """Entries the store refused (kept for a person to look at; see `flush_spool`)."""
    folder = spool_dir(store)
    return sorted(folder.glob(f"{REJECTED_PREFIX}*")) if folder.is_dir() else []


def read(entry: Path) -> SpoolEntry | None:
    """The entry at `entry`, or None if another process committed and removed it meanwhile."""
    try:
        meta = json.loads((entry / "meta.json").read_text(encoding="utf-8"))
        tables = {}
        for name in TABLES:
            file = entry / f"{name}.arrow"
            if file.exists():
                with pa.OSFile(str(file), "rb") as source:
                    tables[name] = ipc.open_file(source).read_all()
    except FileNotFoundError:
        return None
    return SpoolEntry(entry, meta, tables)


def remove(entry: Path) -> None:
    """Drop a committed entry (missing is fine: someone else committed it first)."""
    shutil.rmtree(entry, ignore_errors=True)
    folder = entry.parent
    try:
        folder.rmdir()  # only when empty
    except OSError:
        pass


__all__ = ["REJECTED_PREFIX", "SpoolEntry", "append", "pending", "read", "rejected", "remove", "spool_dir"]
