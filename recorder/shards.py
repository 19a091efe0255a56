"""Recording on many machines: a deterministic split of problems (`--shard i/N`) and the merge
of the shard stores into one (`aimo merge`, done by `core.store.merge.merge_stores`).

A shard is chosen by a stable hash of the problem id, so every node computes the same split
whatever the order of its CSV, and a problem's `position` stays its place in the CSV. Each node
records the same run id into its own store; `core.store.merge.merge_stores` combines them.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from aimo.core.errors import InputError

_SHARD = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")
T = TypeVar("T")


@dataclass(frozen=True)
class Shard:
    """Shard `index` (1-based) of `count`."""

    index: int
    count: int

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def parse_shard(text: str, *, field: str = "--shard") -> Shard:
    """`"2/4"` → Shard(2, 4); InputError naming `field` unless 1 ≤ i ≤ N."""
    match = _SHARD.match(text)
    if not match:
        raise InputError("<arguments>", field, f"expected i/N, e.g. 1/4 (got {text!r})")
    index, count = int(match.group(1)), int(match.group(2))
    if not 1 <= index <= count:
        raise InputError("<arguments>", field, f"needs 1 ≤ i ≤ N (got {index}/{count})")
    return Shard(index, count)


def shard_of(problem_id: str, count: int) -> int:
    """The 1-based shard of a problem id: a stable hash (sha256), independent of CSV order."""
    digest = hashlib.sha256(problem_id.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % count + 1


def select_shard(items: Sequence[T], shard: Shard | None, key: Any) -> list[T]:
    """The items whose `key(item)` (a problem id) falls in `shard` (all of them for None)."""
    if shard is None:
        return list(items)
    return [it for it in items if shard_of(key(it), shard.count) == shard.index]


__all__ = ["Shard", "parse_shard", "select_shard", "shard_of"]
