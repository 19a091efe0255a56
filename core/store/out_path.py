"""Output paths checked before any work starts: a clean InputError naming the option for a path
that cannot be written (under /proc, a file as parent folder, a read-only folder, a folder in
place of the file), instead of a traceback after minutes of work. One rule for every `--out`."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import duckdb

from aimo.core.errors import InputError


def _first_existing_parent(path: Path) -> Path:
    parent = path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    return parent


def check_out_path(path: str | Path, option: str = "--out", *, overwrite: bool | None = True) -> Path:
    """`path` as a Path once it is known to be writable as a file.

    `overwrite` False refuses an existing file (the message names --force); True allows it;
    None means the caller appends to it (a trace store).

    Raises:
        InputError: naming `option` and the reason.
    """
    p = Path(path)
    source = str(p)
    if p.is_dir():
        raise InputError(source, option, "is a folder; give a file path")
    if p.exists():
        if overwrite is False:
            raise InputError(source, option, "exists; pass --force to replace it")
        if not os.access(p, os.W_OK):
            raise InputError(source, option, "the file is not writable")
        return p
    parent = _first_existing_parent(p)
    if not parent.is_dir():
        raise InputError(source, option, f"{parent} is a file, not a folder")
    if str(parent.resolve()).startswith(("/proc", "/sys")) or not os.access(parent, os.W_OK | os.X_OK):
        raise InputError(source, option, f"cannot create files in {parent} (not writable)")
    return p


def open_writer(out: str | Path, option: str = "--out", **kwargs: object):  # type: ignore[no-untyped-def]
    """A `TraceWriter` on `out` after `check_out_path`; OS and DuckDB I/O errors become InputError."""
    from aimo.core.store.writer import TraceWriter

    p = check_out_path(out, option, overwrite=None)
    try:
        return TraceWriter(p, **kwargs)  # type: ignore[arg-type]
    except OSError as exc:
        reason = exc.strerror or errno.errorcode.get(exc.errno or 0, str(exc))
        raise InputError(str(p), option, f"cannot write: {reason}") from None
    except duckdb.IOException as exc:
        raise InputError(str(p), option, f"cannot write: {exc}") from None


__all__ = ["check_out_path", "open_writer"]
