"""Child-side sandbox setup: run as `python -I -S _launcher.py CONFIG_JSON`, never imported.

Stdlib only (with `_confine`, also stdlib), so it starts in a few ms.
Process tree (pids namespace on): launcher (caller's pid ns) -> init (pid 1 of a new pid ns) ->
snippet. Where the caller may (root), the launcher unshares net/mount/ipc/pid namespaces and
mounts a tmpfs work dir; init mounts /proc and reaps. Everywhere,
the snippet process sets rlimits, drops to the run's uid (root only), applies the unprivileged
layers of `_confine` (no new privileges, Landlock, seccomp) and execs the interpreter. The
snippet's wait status is passed back up and re-raised, so the caller sees its exit code or
signal. If the caller dies, the launcher kills its whole process group (which nothing in it can
leave: seccomp denies setsid/setpgid).
Setup errors exit with SETUP_FAILED after writing MARKER + reason to stderr.
"""

from __future__ import annotations

import ctypes
import json
import os
import resource
import signal
import struct
import sys
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # -I leaves the script's dir out
from _confine import _check, confine  # noqa: E402 - the path line above comes first

SETUP_FAILED = 125
MARKER = "aimo-sandbox: setup failed: "

CLONE_NEWNS = 0x00020000
CLONE_NEWIPC = 0x08000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 32, 4096, 16384, 1 << 18
PR_SET_PDEATHSIG = 1

_libc = ctypes.CDLL(None, use_errno=True)
_libc.mount.argtypes = [ctypes.c_char_p] * 3 + [ctypes.c_ulong, ctypes.c_char_p]
_libc.unshare.argtypes = [ctypes.c_int]
_libc.prctl.argtypes = [ctypes.c_int] + [ctypes.c_ulong] * 4


def _b(s: str | None) -> bytes | None:
    return None if s is None else os.fsencode(s)


def _mount(src: str | None, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    _check(_libc.mount(_b(src), _b(target), _b(fstype), flags, _b(data)), f"mount {target}")


def _setup_mounts(cfg: dict[str, Any]) -> None:
    """Private mounts: tmpfs work dir and /dev/shm; hidden dirs masked but the interpreter.
    (Writes elsewhere are Landlock's job, in every mode.)"""
    _mount(None, "/", None, MS_REC | MS_PRIVATE)
    exposed = [(root, [(p, os.open(p, os.O_PATH | os.O_CLOEXEC)) for p in paths])
               for root, paths in cfg["expose"]]
    for root, items in exposed:
        _mount("tmpfs", root, "tmpfs", MS_NOSUID | MS_NODEV, "mode=755,size=1m")
        for path, fd in items:
            if os.path.isdir(f"/proc/self/fd/{fd}"):
                os.makedirs(path, mode=0o755, exist_ok=True)
            else:
                os.makedirs(os.path.dirname(path), mode=0o755, exist_ok=True)
                open(path, "ab").close()
            _mount(f"/proc/self/fd/{fd}", path, None, MS_BIND | MS_REC)
            os.close(fd)
        _mount(None, root, None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV)
    owner = f",uid={cfg['uid']},gid={cfg['gid']}" if cfg["uid"] is not None else ""
    _mount("tmpfs", cfg["workdir"], "tmpfs", MS_NOSUID | MS_NODEV,
           f"mode=700,size={cfg['work_mb']}m{owner}")
    if os.path.isdir("/dev/shm"):
        _mount("tmpfs", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777,size=64m")


def _exec_snippet(cfg: dict[str, Any]) -> None:
    """Limits, unprivileged ids, then exec the interpreter; never returns."""
    for name, (soft, hard) in cfg["rlimits"].items():
        resource.setrlimit(getattr(resource, name), (soft, hard))
    if cfg["uid"] is not None:
        os.setgroups([])
        os.setresgid(cfg["gid"], cfg["gid"], cfg["gid"])
        os.setresuid(cfg["uid"], cfg["uid"], cfg["uid"])
    _check(_libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0), "prctl(PDEATHSIG)")
    for sig in (signal.SIGPIPE, signal.SIGXFSZ, signal.SIGINT):
        signal.signal(sig, signal.SIG_DFL)
    os.umask(0o077)
    os.chdir(cfg["workdir"])
    confine(cfg)
    os.execve(cfg["argv"][0], cfg["argv"], cfg["env"])


def _init(cfg: dict[str, Any], status_fd: int) -> None:
    """Pid 1 of the new pid ns: mount /proc, run the snippet, reap, report its status, exit.

    When this process exits the kernel kills everything left in the namespace.
    """
    _check(_libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0), "prctl(PDEATHSIG)")
    if cfg["mountns"]:
        _mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    pid = os.fork()
    if pid == 0:
        _child(cfg, _exec_snippet, cfg)
    while True:
        done, status = os.wait()
        if done == pid:
            break
    os.write(status_fd, struct.pack("i", status))
    os._exit(0)


def _child(cfg: dict[str, Any], fn: Any, *args: Any) -> None:
    """Run `fn` in a forked child; any error before exec becomes a setup failure."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        fn(*args)
    except BaseException as exc:  # noqa: BLE001 - the child must never return into the caller's code
        os.write(2, f"{MARKER}{exc!r}\n".encode())
    os._exit(SETUP_FAILED)


def _propagate(status: int) -> None:
    """Exit the way the snippet did: same exit code, or the same signal."""
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        if sig not in (signal.SIGKILL, signal.SIGSTOP):
            signal.signal(sig, signal.SIG_DFL)
        os.kill(os.getpid(), sig)
        os._exit(128 + sig)
    os._exit(os.WEXITSTATUS(status) if os.WIFEXITED(status) else SETUP_FAILED)


def _kill_group(*_: Any) -> None:
    """The caller is gone: SIGKILL the launcher's process group (every snippet process, us too)."""
    os.killpg(0, signal.SIGKILL)


def main() -> None:
    cfg = json.loads(sys.argv[1])
    try:
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        signal.signal(signal.SIGTERM, _kill_group)
        _check(_libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0), "prctl(PDEATHSIG)")
        if os.getppid() != cfg["caller"]:  # the caller died before the line above
            _kill_group()
        flags = (CLONE_NEWNET if cfg["netns"] else 0) | (CLONE_NEWPID if cfg["pidns"] else 0)
        flags |= (CLONE_NEWNS | CLONE_NEWIPC) if cfg["mountns"] else 0
        if flags:
            _check(_libc.unshare(flags), "unshare")
        if cfg["mountns"]:
            _setup_mounts(cfg)
        read_fd, write_fd = os.pipe()
        pid = os.fork()
    except BaseException as exc:  # noqa: BLE001
        os.write(2, f"{MARKER}{exc!r}\n".encode())
        os._exit(SETUP_FAILED)
    if pid == 0:
        os.close(read_fd)
        if cfg["pidns"]:
            _child(cfg, _init, cfg, write_fd)
        _child(cfg, _exec_snippet, cfg)
    os.close(write_fd)
    _, status = os.waitpid(pid, 0)
    reported = os.read(read_fd, 4)
    if len(reported) == 4:
        status = struct.unpack("i", reported)[0]
    _propagate(status)


if __name__ == "__main__":
    main()
