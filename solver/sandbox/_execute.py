"""Run one snippet under a given `Isolation`: launch, stream capped output, enforce the wall
clock and the tree's memory and process limits, kill everything left, clean up, classify."""

from __future__ import annotations

import json
import os
import re
import selectors
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from aimo.solver.sandbox import _tree, _uids
from aimo.solver.sandbox._interp import exposures
from aimo.solver.sandbox._launcher import MARKER, SETUP_FAILED
from aimo.solver.sandbox._types import ExecResult, Isolation, SandboxLimits

LAUNCHER = str(Path(__file__).with_name("_launcher.py"))
_CHUNK = 65536
_EXIT_GRACE_S = 0.2  # after the launcher exits, how long leftover writers may keep the pipes
_TREE_EVERY_S = 0.05  # how often the tree's memory and process count are checked
_PREFIX = "aimo-sbx-"
_THREAD_CAPS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS")


def execute(code: str, limits: SandboxLimits, isolation: Isolation, python: str) -> ExecResult:
    """Run `code` in a fresh sandbox; every failure, the sandbox's own included, becomes a result."""
    start = time.monotonic()
    try:
        return _execute(code, limits, isolation, python, start)
    except Exception as exc:  # noqa: BLE001 - never raise into the solver loop
        return ExecResult(False, "", "", (time.monotonic() - start) * 1000, False, False, None,
                          f"sandbox error: {exc!r}", isolation.describe())


def _execute(code: str, limits: SandboxLimits, iso: Isolation, python: str, start: float) -> ExecResult:
    root = tempfile.mkdtemp(prefix=f"{_PREFIX}{os.getpid()}-")
    uid: int | None = None
    try:
        os.chmod(root, 0o755)
        script, work = os.path.join(root, "main.py"), os.path.join(root, "work")
        with open(script, "wb") as f:
            f.write(code.encode("utf-8", "replace"))
        os.chmod(script, 0o644)
        os.mkdir(work, 0o700)
        if iso.drop_uid:
            uid = _uids.acquire()
            os.chown(work, uid, uid)
        cfg = _config(script, work, limits, iso, python, uid)
        argv = [python, "-I", "-S", LAUNCHER, json.dumps(cfg)]
        return _supervise(argv, cfg["env"], limits, iso, start)
    finally:
        if uid is not None:
            _uids.release(uid)
        _remove_tree(root)


def sweep_stale(tmp: str | None = None) -> list[str]:
    """Remove run folders left by callers that died (SIGKILL skips `finally`); returns them.

    A folder is `aimo-sbx-<caller pid>-*`; it is stale when no process has that pid (a reused
    pid keeps it until a later sweep: harmless). Their snippets died with the caller (the
    launcher kills its group, or its pid namespace ends).
    """
    tmp = tmp or tempfile.gettempdir()
    removed = []
    for name in os.listdir(tmp):
        m = re.fullmatch(re.escape(_PREFIX) + r"(\d+)-\w+", name)
        if m and not os.path.exists(f"/proc/{m.group(1)}"):
            _remove_tree(os.path.join(tmp, name))
            removed.append(name)
    return removed


def _config(script: str, work: str, limits: SandboxLimits, iso: Isolation, python: str,
            uid: int | None) -> dict[str, Any]:
    env = {"PATH": os.environ.get("PATH", os.defpath), "HOME": work, "TMPDIR": work,
           "LANG": os.environ.get("LANG", "C.UTF-8")}
    env.update(dict.fromkeys(_THREAD_CAPS, "1"))
    mib = 1 << 20
    rlimits: dict[str, list[int]] = {
        "RLIMIT_CPU": [limits.cpu_s, limits.cpu_s + 1],
        "RLIMIT_AS": [limits.memory_mb * mib] * 2,
        "RLIMIT_FSIZE": [limits.file_mb * mib] * 2,
        "RLIMIT_CORE": [0, 0],
    }
    if iso.drop_uid:
        rlimits["RLIMIT_NPROC"] = [limits.max_procs] * 2
    elif os.geteuid() != 0:  # counts all our tasks: allow what is running now plus the budget
        rlimits["RLIMIT_NPROC"] = [_tasks_of(os.getuid()) + limits.max_procs] * 2
    from aimo.solver.sandbox._filters import landlock_plan, seccomp_program
    from aimo.solver.sandbox._layers import exec_paths

    return {
        "argv": [python, "-I", script], "env": env, "caller": os.getpid(), "workdir": work,
        "uid": uid, "gid": uid, "netns": iso.netns, "mountns": iso.mountns, "pidns": iso.pidns,
        "rlimits": rlimits, "expose": exposures(python) if iso.mountns and iso.drop_uid else [],
        "work_mb": 4 * limits.file_mb,
        "landlock": landlock_plan(iso.landlock, work, iso.mountns, exec_paths(python))
        if iso.landlock else None,
        "seccomp": seccomp_program(iso.landlock < 6).hex() if iso.seccomp else None,
    }


def _supervise(argv: list[str], env: dict[str, str], limits: SandboxLimits, iso: Isolation,
               start: float) -> ExecResult:
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=env, start_new_session=True)
    try:
        return _pump(proc, limits, iso, start)
    except BaseException:
        _killpg(proc.pid)
        proc.wait()
        raise


def _over_limit(pgid: int, limits: SandboxLimits) -> str | None:
    """Why the tree must be killed now ("memory", "process limit"), or None."""
    used = _tree.usage(pgid)
    if used.rss_bytes > limits.memory_mb << 20:
        return "memory"
    if used.procs > limits.max_procs + 2:  # + launcher and pid-namespace init
        return "process limit"
    return None


def _pump(proc: subprocess.Popen[bytes], limits: SandboxLimits, iso: Isolation,
          start: float) -> ExecResult:
    """Read output until exit, deadline or a tree limit, keeping each stream's last
    `output_bytes` (the seed parses the last number of the whole stdout, so a capped output keeps
    its tail and the run is not failed for it); kill what is left; build the result."""
    assert proc.stdout is not None and proc.stderr is not None
    out_fd, err_fd = proc.stdout.fileno(), proc.stderr.fileno()
    bufs = {out_fd: bytearray(), err_fd: bytearray()}
    deadline = start + limits.timeout_s
    timed_out = truncated = False
    over: str | None = None
    exited_at: float | None = None
    next_check = start
    with selectors.DefaultSelector() as sel:
        for fd in bufs:
            os.set_blocking(fd, False)
            sel.register(fd, selectors.EVENT_READ)
        while sel.get_map() and over is None:
            now = time.monotonic()
            if exited_at is None and _exited(proc.pid):
                exited_at = now
                _killpg(proc.pid)  # leftovers that kept the pipes open
            if exited_at is not None and now - exited_at > _EXIT_GRACE_S:
                break
            if exited_at is None and now >= deadline:
                timed_out = True
                break
            if exited_at is None and now >= next_check:
                over, next_check = _over_limit(proc.pid, limits), now + _TREE_EVERY_S
                if over is not None:
                    break
            wait = min(deadline - now, next_check - now, 0.05)
            for key, _ in sel.select(timeout=max(0.0, wait)):
                fd = key.fd
                try:
                    chunk = os.read(fd, _CHUNK)
                except BlockingIOError:
                    continue
                if not chunk:
                    sel.unregister(fd)
                    continue
                buf = bufs[fd]
                buf += chunk
                if len(buf) > limits.output_bytes:
                    del buf[:len(buf) - limits.output_bytes]
                    truncated = True
    while exited_at is None and not (timed_out or over):
        now = time.monotonic()
        if _exited(proc.pid):
            exited_at = now
        elif now >= deadline:
            timed_out = True
        elif now >= next_check:
            over, next_check = _over_limit(proc.pid, limits), now + _TREE_EVERY_S
        else:
            time.sleep(0.002)
    end = exited_at if exited_at is not None else time.monotonic()
    _killpg(proc.pid)  # launcher not reaped yet, so its pgid cannot have been reused
    returncode = proc.wait()
    proc.stdout.close()
    proc.stderr.close()
    killed_by_us = (timed_out or over is not None) and exited_at is None
    out, err = (bufs[fd].decode("utf-8", "replace") for fd in (out_fd, err_fd))
    rc = None if killed_by_us else returncode
    error = (over if killed_by_us and over else None) or _classify(
        rc, err, timed_out and killed_by_us)
    return ExecResult(error is None, out, err, (end - start) * 1000, timed_out and killed_by_us,
                      truncated, rc, error, iso.describe())


def _classify(rc: int | None, stderr: str, timed_out: bool) -> str | None:
    """Short reason for a failure, None for success (a capped output is not a failure)."""
    if timed_out:
        return "timeout"
    if rc == 0:
        return None
    if rc is None:
        return "killed"
    if rc < 0:
        if -rc == signal.SIGXCPU:
            return "cpu time limit"
        if -rc == signal.SIGXFSZ:
            return "file size limit"
        return f"killed by signal {-rc}"
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    if rc == SETUP_FAILED and any(ln.startswith(MARKER) for ln in lines):
        return "sandbox setup failed: " + next(ln for ln in lines if ln.startswith(MARKER))[len(MARKER):]
    if not lines:
        return f"exit code {rc}"
    if "MemoryError" in lines[-1]:
        return "memory"
    return lines[-1][:300]


def _exited(pid: int) -> bool:
    """Has the launcher exited? Checks without reaping, so its pid stays reserved."""
    try:
        return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:
        return True


def _killpg(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _tasks_of(uid: int) -> int:
    """Threads of every process of `uid` (what RLIMIT_NPROC counts)."""
    total = 0
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/status", encoding="ascii", errors="replace") as f:
                    fields = dict(line.split(":", 1) for line in f if ":" in line)
                if int(fields["Uid"].split()[0]) == uid:
                    total += int(fields["Threads"])
            except (OSError, KeyError, ValueError):
                continue
    return total


def _remove_tree(root: str) -> None:
    """Remove the run's directory even if the snippet made parts of it unwritable."""
    def fix(func: Any, path: str, _exc: Any) -> None:
        os.chmod(os.path.dirname(path), 0o700)
        func(path)
    try:
        shutil.rmtree(root, onerror=fix)
    except OSError:
        shutil.rmtree(root, ignore_errors=True)
