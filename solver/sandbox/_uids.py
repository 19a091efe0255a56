"""Fresh unprivileged uids, one per concurrent run, so RLIMIT_NPROC counts only that run.

RLIMIT_NPROC counts every process of a uid, so a shared `nobody` would let one fork bomb
starve every other sandbox. Ids come from a block unlikely to belong to anyone:
1.5e9 + 100·(caller pid mod 4e6) + slot, slot 0..99, reused round-robin once released.
"""

from __future__ import annotations

import os
import threading

SLOTS = 100
_lock = threading.Condition()
_in_use: set[int] = set()
_next = 0


def _base() -> int:
    return 1_500_000_000 + SLOTS * (os.getpid() % 4_000_000)


def acquire() -> int:
    """A uid no other run of this process is using (blocks if all SLOTS are in use)."""
    global _next
    with _lock:
        while len(_in_use) >= SLOTS:
            _lock.wait()
        while _next in _in_use:
            _next = (_next + 1) % SLOTS
        slot, _next = _next, (_next + 1) % SLOTS
        _in_use.add(slot)
        return _base() + slot


def release(uid: int) -> None:
    with _lock:
        _in_use.discard(uid - _base())
        _lock.notify()
