"""DuckDB trace store: one writer that commits a question at a time, many short-lived readers.

See docs/schema.md for the tables, units, the concurrency design and the resume rule.
"""

from __future__ import annotations

from aimo.core.store.connect import (
    DEFAULT_LOCK_TIMEOUT_S,
    StoreBusyError,
    init_store,
    read_connection,
    write_connection,
)
from aimo.core.store.migrations import LATEST_VERSION
from aimo.core.store.reader import (
    completed_questions,
    list_runs,
    load_chunks,
    load_problem_traces,
    load_sample_text,
)
from aimo.core.store.records import LiveResult, ProblemRow, RunSummary, SampleConfidence
from aimo.core.store.writer import TraceWriter, flush_spool

__all__ = [
    "DEFAULT_LOCK_TIMEOUT_S",
    "LATEST_VERSION",
    "LiveResult",
    "ProblemRow",
    "RunSummary",
    "SampleConfidence",
    "StoreBusyError",
    "TraceWriter",
    "completed_questions",
    "flush_spool",
    "init_store",
    "list_runs",
    "load_chunks",
    "load_problem_traces",
    "load_sample_text",
    "read_connection",
    "write_connection",
]
