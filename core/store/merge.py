"""Merge of trace stores into one (`aimo merge`): the runs of several shard stores
(`recorder.shards`) become the runs of one store.

Rows of the same run id from several stores become one run; the merge refuses duplicated
questions and runs already in the target, and keeps provenance (`gen_config.merged_from`: each
source store, its shard, status and question count). The merge is one transaction: all or
nothing. It lives in `core.store` because it is SQL on every table of the schema.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from aimo.core.errors import InputError
from aimo.core.store.connect import init_store, read_connection, write_connection

# runs' columns that must agree when one run id arrives from several stores
IDENTITY_COLUMNS = ("kind", "model", "backend", "quantization", "hardware", "policy")
# gen_config keys that legitimately differ between the shards of one recording
PER_SHARD_KEYS = ("shard", "merged_from")

TABLES_WITH_RUN = (
    "SELECT table_name, list(column_name) FROM information_schema.columns "
    "WHERE table_schema = 'main' AND table_catalog = current_database() "
    "GROUP BY table_name HAVING list_contains(list(column_name), 'run_id')"
)
RUN_ROWS = "SELECT run_id, kind, model, backend, quantization, hardware, policy, gen_config, status, notes FROM {src}.runs"
DONE_ROWS = "SELECT run_id, problem_id FROM {src}.questions_done"
EXISTING_RUNS = "SELECT run_id FROM main.runs"
INSERT_RUN = (
    "INSERT INTO main.runs (run_id, kind, model, backend, quantization, hardware, gen_config, "
    "policy, status, notes) VALUES ($run_id, $kind, $model, $backend, $quantization, $hardware, "
    "$gen_config, $policy, $status, $notes)"
)
COPY_DONE = (
    "INSERT INTO main.{table} BY NAME SELECT t.* FROM {src}.main.{table} t "
    "SEMI JOIN {src}.main.questions_done d ON t.run_id = d.run_id AND t.problem_id = d.problem_id "
    "WHERE t.run_id = $run_id"
)
COPY_RUN = "INSERT INTO main.{table} BY NAME SELECT * FROM {src}.main.{table} WHERE run_id = $run_id"


@dataclass(frozen=True)
class MergedRun:
    """One run of the merged store: its id, the stores it came from, its question count."""

    run_id: str
    sources: tuple[str, ...]
    questions: int
    status: str


@dataclass(frozen=True)
class MergeSummary:
    """What `merge_stores` wrote."""

    out: Path
    runs: tuple[MergedRun, ...]

    def render(self) -> str:
        lines = [f"merged into {self.out}: {len(self.runs)} run(s)"]
        for r in self.runs:
            lines.append(f"  {r.run_id}: {r.questions} questions from {len(r.sources)} store(s), "
                         f"status {r.status}")
        return "\n".join(lines)


def _quote(path: Path) -> str:
    """A SQL string literal of `path` (ATTACH takes no parameters; quotes doubled)."""
    return "'" + str(path).replace("'", "''") + "'"


def _gen_config(raw: Any) -> dict[str, Any]:
    return json.loads(raw) if isinstance(raw, str) else dict(raw or {})


def _shared_config(config: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in config.items() if k not in PER_SHARD_KEYS}


def _worst(statuses: Sequence[str]) -> str:
    for status in ("failed", "running"):
        if status in statuses:
            return status
    return "complete"


def merge_stores(out: str | Path, sources: Sequence[str | Path]) -> MergeSummary:
    """Combine the runs of `sources` into the store `out` (created if missing).

    Raises:
        InputError: no sources, a source that is not a trace store (or is `out`), a run id
            already in `out`, one run id whose identity or settings differ between stores, or a
            question recorded in two stores.
    """
    out = Path(out)
    paths = [Path(s) for s in sources]
    if not paths:
        raise InputError("<arguments>", "STORE", "give at least one store to merge")
    for p in paths:
        with read_connection(p):
            pass  # a trace store at the current schema, else InputError naming it
        if out.exists() and p.resolve() == out.resolve():
            raise InputError(str(p), None, "is the merge target itself")
    if len({p.resolve() for p in paths}) != len(paths):
        raise InputError("<arguments>", "STORE", "a store is listed twice")
    init_store(out)
    with write_connection(out) as con:
        for i, p in enumerate(paths):
            con.execute(f"ATTACH {_quote(p.resolve())} AS src{i} (READ_ONLY)")
        con.execute("BEGIN TRANSACTION")
        try:
            runs = _merge(con, out, paths)
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
    return MergeSummary(out, runs)


def _merge(con: duckdb.DuckDBPyConnection, out: Path, paths: list[Path]) -> tuple[MergedRun, ...]:
    existing = {r[0] for r in con.execute(EXISTING_RUNS).fetchall()}
    tables = {name: set(cols) for name, cols in con.execute(TABLES_WITH_RUN).fetchall()}
    tables.pop("runs", None)
    by_run: dict[str, list[tuple[int, tuple]]] = {}
    for i, _ in enumerate(paths):
        for row in con.execute(RUN_ROWS.format(src=f"src{i}")).fetchall():
            by_run.setdefault(row[0], []).append((i, row))
    merged = []
    for run_id, entries in by_run.items():
        if run_id in existing:
            raise InputError(str(out), "runs.run_id", f"run {run_id!r} is already in the target")
        first = entries[0][1]
        for i, row in entries[1:]:
            for col, a, b in zip(IDENTITY_COLUMNS, first[1:7], row[1:7]):
                if a != b:
                    raise InputError(str(paths[i]), f"runs.{col}",
                                     f"run {run_id!r}: {b!r} here, {a!r} in {paths[entries[0][0]]}")
            if _shared_config(_gen_config(row[7])) != _shared_config(_gen_config(first[7])):
                raise InputError(str(paths[i]), "runs.gen_config",
                                 f"run {run_id!r} was recorded with other settings than in "
                                 f"{paths[entries[0][0]]}")
        seen: dict[str, int] = {}
        provenance = []
        for i, row in entries:
            done = [r[1] for r in con.execute(DONE_ROWS.format(src=f"src{i}") + " WHERE run_id = $r",
                                              {"r": run_id}).fetchall()]
            for pid in done:
                if pid in seen:
                    raise InputError(str(paths[i]), "questions_done.problem_id",
                                     f"run {run_id!r}: question {pid!r} is also in {paths[seen[pid]]}")
                seen[pid] = i
            provenance.append({"store": str(paths[i]), "shard": _gen_config(row[7]).get("shard"),
                               "status": row[8], "questions": len(done)})
        config = _shared_config(_gen_config(first[7]))
        config["merged_from"] = provenance
        status = _worst([row[8] for _, row in entries])
        con.execute(INSERT_RUN, {
            "run_id": run_id, "kind": first[1], "model": first[2], "backend": first[3],
            "quantization": first[4], "hardware": first[5], "policy": first[6],
            "gen_config": json.dumps(config, sort_keys=True), "status": status,
            "notes": first[9],
        })
        for i, _ in entries:
            for table, cols in tables.items():
                src = f"src{i}"
                query = COPY_DONE if "problem_id" in cols else COPY_RUN
                con.execute(query.format(table=table, src=src), {"run_id": run_id})
        merged.append(MergedRun(run_id, tuple(str(paths[i]) for i, _ in entries), len(seen), status))
    return tuple(merged)


__all__ = ["MergeSummary", "MergedRun", "merge_stores"]
