"""A pids cgroup per run (v1 `pids` hierarchy or v2 with pids delegated): exact process cap and
a reliable kill-all. Used only where the caller may create cgroups (usually root)."""

from __future__ import annotations

import functools
import itertools
import os
import signal
import time

_seq = itertools.count()


def _own_dir(controller: str) -> str | None:
    """This process's cgroup directory that carries `controller`, or None."""
    try:
        with open("/proc/self/mountinfo", encoding="utf-8") as f:
            mounts = [line.split() for line in f]
        with open("/proc/self/cgroup", encoding="utf-8") as f:
            memberships = [line.rstrip("\n").split(":", 2) for line in f]
    except OSError:
        return None
    for m in mounts:
        sep = m.index("-")
        fstype, options = m[sep + 1], m[sep + 3].split(",")
        if fstype == "cgroup" and controller in options:
            for _, names, path in memberships:
                if controller in names.split(","):
                    return os.path.join(m[4], path.lstrip("/"))
    for m in mounts:
        if m[m.index("-") + 1] == "cgroup2":
            for hid, _, path in memberships:
                if hid == "0":
                    base = os.path.join(m[4], path.lstrip("/"))
                    try:
                        with open(os.path.join(base, "cgroup.subtree_control"), encoding="ascii") as f:
                            if controller in f.read().split():
                                return base
                    except OSError:
                        return None
    return None


@functools.lru_cache(maxsize=1)
def pids_base() -> str | None:
    """Directory under which per-run pids cgroups can be made, or None if not permitted here."""
    base = _own_dir("pids")
    if base is None:
        return None
    try:
        group = PidsCgroup.create(base, 4)
    except OSError:
        return None
    group.remove()
    return base


class PidsCgroup:
    """One run's cgroup: create with a limit, kill everything in it, remove it."""

    def __init__(self, path: str) -> None:
        self.path = path

    @classmethod
    def create(cls, base: str, max_pids: int) -> PidsCgroup:
        path = os.path.join(base, f"aimo-sbx-{os.getpid()}-{next(_seq)}")
        os.mkdir(path)
        group = cls(path)
        try:
            with open(os.path.join(path, "pids.max"), "w", encoding="ascii") as f:
                f.write(str(max_pids))
        except OSError:
            group.remove()
            raise
        return group

    def pids(self) -> list[int]:
        try:
            with open(os.path.join(self.path, "cgroup.procs"), encoding="ascii") as f:
                return [int(x) for x in f.read().split()]
        except (OSError, ValueError):
            return []

    def kill_all(self, wait_s: float = 2.0) -> bool:
        """SIGKILL every member until none is left (or `wait_s` passes); True if empty."""
        kill_file = os.path.join(self.path, "cgroup.kill")
        deadline = time.monotonic() + wait_s
        while True:
            members = self.pids()
            if not members:
                return True
            if time.monotonic() > deadline:
                return False
            if os.path.exists(kill_file):
                with open(kill_file, "w", encoding="ascii") as f:
                    f.write("1")
            else:
                for pid in members:
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except OSError:
                        pass
            time.sleep(0.005)

    def remove(self) -> None:
        try:
            os.rmdir(self.path)
        except OSError:
            pass
