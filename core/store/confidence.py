"""Per-token confidence arrays in the store: validate and encode them as float16 blobs for the
writer, and decode a run's blobs back into float32 arrays for the loader in one conversion.

Why float16 blobs, one row per sample: a 50 × 32 × 12k-token store costs 2 bytes a token per
array and loads with one scan (see bench/bench_store.py for the measured size and load time).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pyarrow as pa

from aimo.core.errors import InputError
from aimo.core.store.records import SampleConfidence

STORED_DTYPE = np.dtype("<f2")
FLOAT16_MAX = float(np.finfo(np.float16).max)
CONFIDENCE_SCHEMA = pa.schema(
    [
        pa.field("sample_idx", pa.int32()),
        pa.field("n_tokens", pa.int32()),
        pa.field("token_conf", pa.binary()),
        pa.field("token_entropy", pa.binary()),
    ]
)


def _encode(values: object, n_tokens: int, source: str, field: str) -> bytes:
    """One array as little-endian float16 bytes after checking its length and range."""
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InputError(source, field, f"not an array of numbers: {exc}") from None
    if array.ndim != 1:
        raise InputError(source, field, f"expected a 1-d array, got shape {array.shape}")
    if array.shape[0] != n_tokens:
        message = f"{array.shape[0]} values for a sample of {n_tokens} tokens"
        raise InputError(source, field, message)
    bad = ~np.isfinite(array) | (array < 0) | (array > FLOAT16_MAX)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        limit = f"0..{FLOAT16_MAX:g}"
        message = f"value {float(array[i]):g} at token {i} is not a finite number in {limit}"
        raise InputError(source, field, message)
    return array.astype(STORED_DTYPE).tobytes()


def confidence_table(
    confidence: Mapping[int, SampleConfidence], samples: pa.Table, source: str
) -> pa.Table:
    """The `sample_confidence` rows of one question (minus run/problem ids) as an Arrow table.

    Raises:
        InputError: naming `sample_confidence.<field>` for a sample not in the samples frame, an
            array whose length is not the sample's `n_tokens`, or values that are negative,
            non-finite or beyond float16.
    """
    n_of = dict(
        zip(samples.column("sample_idx").to_pylist(), samples.column("n_tokens").to_pylist())
    )
    rows: dict[str, list] = {name: [] for name in CONFIDENCE_SCHEMA.names}
    for sample_idx in sorted(confidence):
        item = confidence[sample_idx]
        if sample_idx not in n_of:
            message = f"sample {sample_idx} is not in the samples frame"
            raise InputError(source, "sample_confidence.sample_idx", message)
        if not isinstance(item, SampleConfidence):
            message = f"sample {sample_idx}: expected SampleConfidence, got {type(item).__name__}"
            raise InputError(source, "sample_confidence", message)
        n = int(n_of[sample_idx])
        where = f"sample_confidence.%s (sample {sample_idx})"
        rows["sample_idx"].append(int(sample_idx))
        rows["n_tokens"].append(n)
        rows["token_conf"].append(_encode(item.token_conf, n, source, where % "token_conf"))
        entropy = item.token_entropy
        rows["token_entropy"].append(
            None if entropy is None else _encode(entropy, n, source, where % "token_entropy")
        )
    return pa.Table.from_pydict(rows, schema=CONFIDENCE_SCHEMA)


def decode_column(
    column: pa.ChunkedArray | pa.Array, n_tokens: list[int], source: str, field: str
) -> list[np.ndarray | None]:
    """Split a column of float16 blobs (NULL: none) into read-only float32 arrays, one a row.

    The whole column is converted at once; each array is a view into that one buffer.

    Raises:
        InputError: a blob whose size is not 2 × the row's `n_tokens` (a corrupted store).
    """
    array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    if len(array) == 0:
        return []
    if pa.types.is_large_binary(array.type):
        offset_dtype = np.int64
    else:
        array = array.cast(pa.binary())
        offset_dtype = np.int32
    _validity, offsets_buf, data_buf = array.buffers()
    offsets = np.frombuffer(offsets_buf, offset_dtype)[array.offset : array.offset + len(array) + 1]
    first, last = int(offsets[0]), int(offsets[-1])
    if (last - first) % STORED_DTYPE.itemsize:
        raise InputError(source, field, "blob sizes are not multiples of 2 bytes (float16)")
    if data_buf is None or last == first:
        values = np.zeros(0, np.float32)
    else:
        raw = np.frombuffer(data_buf, STORED_DTYPE, (last - first) // 2, first)
        values = raw.astype(np.float32)
    values.flags.writeable = False
    starts = (offsets[:-1] - first) // 2
    ends = (offsets[1:] - first) // 2
    valid = array.is_valid().to_numpy(zero_copy_only=False)
    out: list[np.ndarray | None] = []
    for j, n in enumerate(n_tokens):
        if not valid[j]:
            out.append(None)
            continue
        if int(ends[j] - starts[j]) != n:
            got = int(ends[j] - starts[j])
            message = f"row {j} of the table: {got} values for a sample of {n} tokens"
            raise InputError(source, field, message)
        out.append(values[starts[j] : ends[j]])
    return out
