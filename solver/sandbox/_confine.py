"""Unprivileged confinement, applied by the snippet's own process just before it execs Python.

Imported by the launcher (not by the caller) with the directories of `landlockpy` and `pyseccomp`
on its path. Works without root: `PR_SET_NO_NEW_PRIVS`, then
- Landlock (`landlockpy`): no writes outside the work dir (and /dev/null), exec only of the
  interpreter, no TCP bind/connect (ABI >= 4), no signals to and no abstract unix sockets of
  processes outside the sandbox (ABI >= 6);
- seccomp (`pyseccomp` over libseccomp): no `socket()` (socketpair stays), no io_uring, no
  ptrace or cross-process memory access, no new session or process group (so a kill of the
  launcher's process group reaches every descendant), no namespaces, mounts, kernel modules,
  keyrings, bpf or perf; without Landlock's signal scope, no signals at all.
"""

from __future__ import annotations

import errno
import os
from typing import Any

# EPERM for each; names unknown to this architecture are skipped.
DENIED = (
    "socket", "io_uring_setup", "io_uring_enter", "io_uring_register",
    "ptrace", "process_vm_readv", "process_vm_writev", "pidfd_getfd",
    "setsid", "setpgid",
    "unshare", "setns", "mount", "umount2", "pivot_root", "chroot", "open_tree", "move_mount",
    "fsopen", "fsmount", "fsconfig", "fspick", "mount_setattr",
    "bpf", "perf_event_open", "userfaultfd", "keyctl", "add_key", "request_key",
    "kexec_load", "kexec_file_load", "init_module", "finit_module", "delete_module", "reboot",
    "swapon", "swapoff", "acct", "syslog", "quotactl", "open_by_handle_at", "name_to_handle_at",
    "iopl", "ioperm", "settimeofday", "clock_settime", "adjtimex", "clock_adjtime",
    "sethostname", "setdomainname", "vhangup",
)
SIGNALS = ("kill", "tkill", "tgkill", "rt_sigqueueinfo", "rt_tgsigqueueinfo", "pidfd_send_signal")
# clone(2) flags that make namespaces; clone3 gets ENOSYS so libc falls back to clone.
CLONE_NS = (0x00020000, 0x02000000, 0x04000000, 0x08000000, 0x10000000, 0x20000000, 0x40000000)
PERSONA = (0x0040000, 0x0400000)  # ADDR_NO_RANDOMIZE, READ_IMPLIES_EXEC


def landlock(cfg: dict[str, Any]) -> None:
    """Restrict this process and its future children with Landlock (best effort per ABI)."""
    from landlockpy import AccessFS, Ruleset, abi_version, fs_for_abi, net_for_abi, scope_for_abi

    abi = abi_version()
    handled = fs_for_abi(abi) & ~(AccessFS.READ_FILE | AccessFS.READ_DIR)
    with Ruleset(handled_fs=handled, handled_net=net_for_abi(abi), scoped=scope_for_abi(abi)) as rs:
        rs.allow_path(cfg["workdir"], handled & ~AccessFS.EXECUTE)
        if cfg["mountns"] and os.path.isdir("/dev/shm"):  # a private tmpfs there
            rs.allow_path("/dev/shm", handled & ~AccessFS.EXECUTE)
        rs.allow_path("/dev/null", AccessFS.WRITE_FILE)
        for path in cfg["exec_paths"]:
            rs.allow_path(path, AccessFS.EXECUTE | AccessFS.READ_FILE)
        rs.restrict()


def _pyseccomp(libs: dict[str, str]) -> Any:
    """Import pyseccomp with the library paths the caller resolved (its own lookup runs
    `ldconfig`, slow, and an exec that Landlock would deny)."""
    import ctypes.util

    lookup = ctypes.util.find_library
    ctypes.util.find_library = lambda name: libs.get(name) or lookup(name)
    try:
        import pyseccomp
    finally:
        ctypes.util.find_library = lookup
    return pyseccomp


def seccomp(cfg: dict[str, Any], sc: Any) -> None:
    """Load the syscall filter (after Landlock: it denies syscalls Landlock setup does not need)."""
    deny = sc.ERRNO(errno.EPERM)
    f = sc.SyscallFilter(sc.ALLOW)
    names = DENIED + (() if cfg["signal_scope"] else SIGNALS)
    for name in names:
        try:
            f.add_rule(deny, name)
        except (OSError, ValueError, RuntimeError):
            continue  # not a syscall on this architecture
    f.add_rule(sc.ERRNO(errno.ENOSYS), "clone3")
    for flag in CLONE_NS:
        f.add_rule(deny, "clone", sc.Arg(0, sc.MASKED_EQ, flag, flag))
    for flag in PERSONA:
        f.add_rule(deny, "personality", sc.Arg(0, sc.MASKED_EQ, flag, flag))
    f.load()


def confine(cfg: dict[str, Any]) -> None:
    """Every unprivileged layer `cfg` asks for; raises if one cannot be applied."""
    sc = _pyseccomp(cfg["libs"]) if cfg["seccomp"] else None
    if cfg["landlock"]:
        landlock(cfg)
    if sc is not None:
        seccomp(cfg, sc)
