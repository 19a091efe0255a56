"""A compact copy of a trace store: the same tables and rows in a file with 16 KiB blocks.

Why: DuckDB's default 256 KiB blocks dominate a small store (a bundled recording of a few
thousand chunks shrinks 10–30×). Used to ship recordings made on the GPU machine.
Run: `python -m aimo.core.store.compact SRC DST`.
"""

from __future__ import annotations

import sys
from pathlib import Path

BLOCK_SIZE = 16384


def compact_copy(src: str | Path, dst: str | Path) -> None:
    """Copy every table of store `src` into a fresh `dst` (replaced if it exists)."""
    import duckdb

    Path(dst).unlink(missing_ok=True)
    con = duckdb.connect()
    try:
        con.execute(f"ATTACH '{src}' AS src (READ_ONLY)")
        con.execute(f"ATTACH '{dst}' AS dst (BLOCK_SIZE {BLOCK_SIZE})")
        con.execute("COPY FROM DATABASE src TO dst")
    finally:
        con.close()


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print("usage: python -m aimo.core.store.compact SRC DST", file=sys.stderr)
        return 2
    compact_copy(*args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
