"""The unprivileged layers' contents, built once in the caller with the libraries that know the
kernel's interfaces: the seccomp program (pyseccomp over libseccomp: syscall numbers, arch
checks, argument tests) and the Landlock rules (landlockpy: which rights each ABI has). The
launcher only loads them (`_confine`), so a run imports nothing new (~100 ms saved per run).
"""

from __future__ import annotations

import errno
import functools
import os
import tempfile
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
    # Landlock does not mediate these: a uid-0 snippet (Kaggle runs as root) could change modes,
    # owners or extended attributes of the solver's files
    "chmod", "fchmod", "fchmodat", "fchmodat2", "chown", "fchown", "lchown", "fchownat",
    "setxattr", "lsetxattr", "fsetxattr", "setxattrat", "removexattr", "lremovexattr",
    "fremovexattr", "removexattrat",
)
# Allowed on the caller itself only (first argument 0): else a snippet could renice, pin or
# re-limit the solver, which runs as the same user.
SELF_ONLY = ("prlimit64", "sched_setaffinity", "sched_setscheduler", "sched_setparam",
             "sched_setattr", "migrate_pages", "move_pages")
SELF_ONLY_SECOND = ("setpriority", "ioprio_set")  # (which, who): who 0 is the caller
# Denied too where Landlock cannot scope signals to the sandbox (ABI < 6).
SIGNALS = ("kill", "tkill", "tgkill", "rt_sigqueueinfo", "rt_tgsigqueueinfo", "pidfd_send_signal")
# clone(2) flags that make namespaces; clone3 gets ENOSYS so libc falls back to clone.
CLONE_NS = (0x00020000, 0x02000000, 0x04000000, 0x08000000, 0x10000000, 0x20000000, 0x40000000)
PERSONA = (0x0040000, 0x0400000)  # ADDR_NO_RANDOMIZE, READ_IMPLIES_EXEC


@functools.lru_cache(maxsize=2)
def seccomp_program(deny_signals: bool) -> bytes:
    """The filter as raw BPF (struct sock_filter array): allow all but the listed syscalls."""
    import pyseccomp as sc

    deny = sc.ERRNO(errno.EPERM)
    f = sc.SyscallFilter(sc.ALLOW)
    for name in DENIED + (SIGNALS if deny_signals else ()):
        try:
            f.add_rule(deny, name)
        except (OSError, ValueError, RuntimeError):
            continue  # not a syscall on this architecture
    for name in SELF_ONLY:
        f.add_rule(deny, name, sc.Arg(0, sc.NE, 0))
    for name in SELF_ONLY_SECOND:
        f.add_rule(deny, name, sc.Arg(1, sc.NE, 0))
    f.add_rule(sc.ERRNO(errno.ENOSYS), "clone3")
    for flag in CLONE_NS:
        f.add_rule(deny, "clone", sc.Arg(0, sc.MASKED_EQ, flag, flag))
    for flag in PERSONA:
        f.add_rule(deny, "personality", sc.Arg(0, sc.MASKED_EQ, flag, flag))
    with tempfile.TemporaryFile() as out:
        f.export_bpf(out)
        out.seek(0)
        return out.read()


def landlock_plan(abi: int, workdir: str, private_shm: bool, exec_paths: tuple[str, ...]) -> dict[str, Any]:
    """Handled rights and rules: reads anywhere; writes only in `workdir` (and /dev/shm where it
    is a private tmpfs) and to /dev/null; exec only of `exec_paths`; no TCP; scoped signals and
    abstract unix sockets — each as far as `abi` has it."""
    from landlockpy import AccessFS, fs_for_abi, net_for_abi, scope_for_abi

    handled = fs_for_abi(abi) & ~(AccessFS.READ_FILE | AccessFS.READ_DIR)
    writable = handled & ~AccessFS.EXECUTE
    rules = [(workdir, writable)]
    if private_shm and os.path.isdir("/dev/shm"):
        rules.append(("/dev/shm", writable))
    rules.append(("/dev/null", AccessFS.WRITE_FILE))
    rules += [(p, AccessFS.EXECUTE | AccessFS.READ_FILE) for p in exec_paths]
    return {"fs": int(handled), "net": int(net_for_abi(abi)), "scope": int(scope_for_abi(abi)),
            "rules": [(path, int(access & handled)) for path, access in rules]}
