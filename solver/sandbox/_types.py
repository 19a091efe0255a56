"""Plain data of the sandbox: the limits a snippet runs under, what came out, how it was isolated."""

from __future__ import annotations

from dataclasses import dataclass, fields


@dataclass(frozen=True)
class SandboxLimits:
    """Per-snippet limits. Times in seconds, sizes in MiB except `output_bytes` (per stream).

    `memory_mb` is an address-space limit per process (RLIMIT_AS), `file_mb` the largest file
    it may write (RLIMIT_FSIZE; the work dir itself is a tmpfs of 4×`file_mb` where mount
    namespaces exist), `max_procs` the processes and threads a snippet may have at once.
    """

    timeout_s: float = 30.0
    cpu_s: int = 60
    memory_mb: int = 2048
    file_mb: int = 16
    max_procs: int = 64
    output_bytes: int = 65536

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
                raise ValueError(f"SandboxLimits.{f.name}: must be a positive number, got {value!r}")


@dataclass(frozen=True)
class Isolation:
    """Which mechanisms a run uses; `detect_isolation()` picks the strongest that works here.

    netns: private network namespace (no interfaces up: every connect fails).
    mountns: private mount namespace, whole tree read-only, tmpfs work dir, /root-style
        unreadable dirs hidden except the interpreter. Needs root (CAP_SYS_ADMIN).
    pidns: private pid namespace; its init dies with the launcher and takes every
        descendant with it, even ones that left the process group.
    drop_uid: run as a fresh unprivileged uid/gid (per run), so RLIMIT_NPROC is enforced
        and root-owned files are out of reach. Needs root.
    cgroup_pids: a pids cgroup per run with pids.max (exact process cap, kill-all).
    Without netns, a Python audit hook blocks socket and process-spawning events instead.
    """

    netns: bool = False
    mountns: bool = False
    pidns: bool = False
    drop_uid: bool = False
    cgroup_pids: bool = False

    def describe(self) -> tuple[str, ...]:
        """Short names of the mechanisms in force, for `ExecResult.isolation` and logs."""
        names = [f.name for f in fields(self) if getattr(self, f.name)]
        if not self.netns:
            names.append("audit-hook")
        names.append("rlimits")
        return tuple(names)


@dataclass(frozen=True)
class ExecResult:
    """Outcome of one snippet. `ok` means exit code 0 and not killed. `truncated`: a stream wrote
    more than `output_bytes`; only its last `output_bytes` are kept (the answer is the last
    number, as the seed's), which is not a failure."""

    ok: bool
    stdout: str
    stderr: str
    exec_ms: float
    timed_out: bool
    truncated: bool
    returncode: int | None
    error: str | None
    isolation: tuple[str, ...] = ()
