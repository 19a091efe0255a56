"""A run's state as readers see it: finished, failed, interrupted (its writer is gone) or running.

The stored `runs.status` only says what the writer last set. A writer killed by SIGKILL, OOM or a
power cut leaves 'running' behind, so readers also look at the writer's pid, host and heartbeat:
on the same host a dead pid means interrupted; on another host a heartbeat older than
`STALE_AFTER_S` does. A 'running' run without a writer (a store from before schema v2) is
interrupted too.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from datetime import datetime

# A live question may legitimately take many minutes; the heartbeat beats once per question.
STALE_AFTER_S = 3600.0
STATES = ("finished", "failed", "interrupted", "running")


@dataclass(frozen=True)
class WriterMark:
    """Who writes a run: process id, host name, and the store's local time of its last commit."""

    pid: int | None
    host: str | None
    heartbeat_at: datetime | None


def this_writer() -> tuple[int, str]:
    """This process's (pid, host) as recorded in `runs.writer_pid` / `runs.writer_host`."""
    return os.getpid(), socket.gethostname()


def pid_alive(pid: int) -> bool:
    """Whether a process with this id exists on this host (zombies count as dead)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def writer_alive(mark: WriterMark, now: datetime) -> bool:
    """Whether the run's writer may still be working (see the module docstring)."""
    if mark.pid is None or mark.host is None:
        return False
    if mark.host == socket.gethostname():
        return pid_alive(mark.pid)
    if mark.heartbeat_at is None:
        return False
    return (now - mark.heartbeat_at).total_seconds() < STALE_AFTER_S


def run_state(status: str, mark: WriterMark, now: datetime) -> str:
    """'finished' | 'failed' | 'interrupted' | 'running' from the stored status and the writer."""
    if status == "complete":
        return "finished"
    if status == "failed":
        return "failed"
    return "running" if writer_alive(mark, now) else "interrupted"


__all__ = ["STALE_AFTER_S", "STATES", "WriterMark", "pid_alive", "run_state", "this_writer", "writer_alive"]
