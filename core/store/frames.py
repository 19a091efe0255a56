"""Normalise the per-question frames a writer is given into Arrow tables of the store's columns.

Validation happens here, vectorised, so that a bad frame fails with an InputError naming the table
and column before anything is written.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Union

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from aimo.core.errors import InputError

Frame = Union[pd.DataFrame, pa.Table]


@dataclass(frozen=True)
class Column:
    """One input column: its Arrow type, whether the frame must have it, whether it may hold NULLs,
    its fill when absent, and the values allowed (for enumerations)."""

    name: str
    type: pa.DataType
    required: bool = True
    nullable: bool = False
    default: Any = None
    allowed: tuple[str, ...] | None = None


SAMPLE_COLUMNS: tuple[Column, ...] = (
    Column("sample_idx", pa.int32()),
    Column("kind", pa.string(), allowed=("cot", "code")),
    Column("prompt_tokens", pa.int32(), required=False, default=0),
    Column("start_s", pa.float64(), required=False, nullable=True),
    Column("end_s", pa.float64(), required=False, nullable=True),
    Column("n_tokens", pa.int32()),
    Column("finish_reason", pa.string(), allowed=("stop", "length", "abort", "error")),
)
CHUNK_COLUMNS: tuple[Column, ...] = (
    Column("sample_idx", pa.int32()),
    Column("seq", pa.int32()),
    Column("t_s", pa.float64(), required=False, nullable=True),
    Column("n_tokens", pa.int32()),
    Column("text", pa.string(), required=False, nullable=True),
)
ANSWER_COLUMNS: tuple[Column, ...] = (
    Column("sample_idx", pa.int32()),
    Column("token_pos", pa.int32()),
    Column("t_s", pa.float64(), required=False, nullable=True),
    Column("source", pa.string(), allowed=("boxed", "code")),
    Column("value", pa.int32(), nullable=True),
    Column("code_ok", pa.bool_(), required=False, nullable=True),
    Column("exec_ms", pa.float64(), required=False, nullable=True),
    Column("error", pa.string(), required=False, nullable=True),
)
TABLE_COLUMNS: dict[str, tuple[Column, ...]] = {
    "samples": SAMPLE_COLUMNS,
    "chunks": CHUNK_COLUMNS,
    "answers": ANSWER_COLUMNS,
}


def to_arrow(frame: Frame, table: str, source: str) -> pa.Table:
    """Return `frame` as an Arrow table with exactly the input columns of `table`, in order, typed.

    Missing optional columns are filled (NULL or their default); unknown columns are an error.

    Raises:
        InputError: naming `source` and `table.column` of a missing, unknown, mistyped or bad
            column.
    """
    columns = TABLE_COLUMNS[table]
    if isinstance(frame, pd.DataFrame):
        frame = pa.Table.from_pandas(frame, preserve_index=False)
    elif not isinstance(frame, pa.Table):
        kind = type(frame).__name__
        raise InputError(source, table, f"expected a pandas DataFrame or Arrow table, got {kind}")
    known = {c.name for c in columns}
    unknown = [name for name in frame.column_names if name not in known]
    if unknown:
        raise InputError(
            source, f"{table}.{unknown[0]}", f"unknown column; expected {sorted(known)}"
        )
    n = frame.num_rows
    arrays: list[pa.ChunkedArray | pa.Array] = []
    for col in columns:
        field = f"{table}.{col.name}"
        if col.name not in frame.column_names:
            if col.required:
                raise InputError(source, field, "required column missing")
            if col.default is None:
                arrays.append(pa.nulls(n, col.type))
            else:
                arrays.append(pa.array(np.full(n, col.default), col.type))
            continue
        data = frame.column(col.name)
        try:
            data = data.cast(col.type, safe=True)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            raise InputError(source, field, f"cannot convert to {col.type}: {exc}") from exc
        if not col.nullable and data.null_count:
            raise InputError(source, field, f"{data.null_count} missing value(s)")
        if col.allowed is not None:
            bad_mask = pc.invert(pc.is_in(data, value_set=pa.array(col.allowed, pa.string())))
            if pc.any(bad_mask, min_count=0).as_py():
                bad = pc.filter(data, bad_mask)[0].as_py()
                allowed = ", ".join(col.allowed)
                raise InputError(source, field, f"bad value {bad!r}; allowed: {allowed}")
        arrays.append(data)
    schema = pa.schema([pa.field(c.name, c.type) for c in columns])
    return pa.Table.from_arrays(arrays, schema=schema)


def _ints(table: pa.Table, name: str) -> np.ndarray:
    return table.column(name).to_numpy()


def check_question(samples: pa.Table, chunks: pa.Table, answers: pa.Table, source: str) -> None:
    """Cross-table checks of one question: unique sample indices, no orphan chunks or answers,
    non-negative counters, answer values in 0..999.

    Raises:
        InputError: naming `source` and the offending `table.column`.
    """
    idx = _ints(samples, "sample_idx")
    if idx.size and idx.min() < 0:
        raise InputError(source, "samples.sample_idx", "negative sample index")
    if np.unique(idx).size != idx.size:
        raise InputError(source, "samples.sample_idx", "duplicate sample index")
    for name in ("prompt_tokens", "n_tokens"):
        values = _ints(samples, name)
        if values.size and values.min() < 0:
            raise InputError(source, f"samples.{name}", "negative token count")
    for table_name, table in (("chunks", chunks), ("answers", answers)):
        used = np.unique(_ints(table, "sample_idx"))
        orphans = used[~np.isin(used, idx)]
        if orphans.size:
            raise InputError(
                source,
                f"{table_name}.sample_idx",
                f"sample {int(orphans[0])} is not in the samples frame",
            )
    value = answers.column("value")
    if len(value) - value.null_count:
        bounds = pc.min_max(value)
        if bounds["min"].as_py() < 0 or bounds["max"].as_py() > 999:
            raise InputError(source, "answers.value", "values must be 0..999 (NULL for no value)")
