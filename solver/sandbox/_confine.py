"""Unprivileged confinement, applied by the snippet's own process just before it execs Python.

Imported by the launcher, stdlib only; what it loads was built by the caller (`_filters`):
`PR_SET_NO_NEW_PRIVS`, every capability dropped (uid 0 included: with no-new-privs, exec cannot
give them back), then the Landlock ruleset (landlock_create_ruleset / add_rule /
restrict_self), then the seccomp program (last: it denies syscalls the steps before need).
"""

from __future__ import annotations

import ctypes
import os
import struct
from typing import Any

PR_SET_NO_NEW_PRIVS, PR_SET_SECCOMP, SECCOMP_MODE_FILTER = 38, 22, 2
PR_CAPBSET_DROP, PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL = 24, 47, 4
_LINUX_CAPABILITY_VERSION_3 = 0x20080522
SYS_LANDLOCK_CREATE_RULESET, SYS_LANDLOCK_ADD_RULE, SYS_LANDLOCK_RESTRICT_SELF = 444, 445, 446
LANDLOCK_RULE_PATH_BENEATH = 1

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def _check(ret: int, what: str) -> int:
    """`ret`, or OSError naming `what` when a libc call or syscall failed (-1 and errno)."""
    if ret < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")
    return ret


def drop_capabilities() -> None:
    """Empty the bounding (where permitted), ambient, effective, permitted and inheritable sets."""
    for cap in range(64):
        _libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0)  # EINVAL past the last; EPERM without SETPCAP
    _libc.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)
    header = struct.pack("=Ii", _LINUX_CAPABILITY_VERSION_3, 0)
    _check(_libc.capset(header, bytes(24)), "capset")


def landlock(plan: dict[str, Any]) -> None:
    """Create the ruleset, add each (path, rights) rule, restrict this process (and its children)."""
    attr = struct.pack("=QQQ", plan["fs"], plan["net"], plan["scope"])
    fd = _check(_libc.syscall(ctypes.c_long(SYS_LANDLOCK_CREATE_RULESET), attr,
                              ctypes.c_size_t(len(attr)), ctypes.c_uint32(0)), "landlock_create_ruleset")
    try:
        for path, access in plan["rules"]:
            parent = os.open(path, os.O_PATH | os.O_CLOEXEC)
            try:
                rule = struct.pack("=Qi", access, parent)  # landlock_path_beneath_attr (packed)
                _check(_libc.syscall(ctypes.c_long(SYS_LANDLOCK_ADD_RULE), ctypes.c_int(fd),
                                     ctypes.c_int(LANDLOCK_RULE_PATH_BENEATH), rule, ctypes.c_uint32(0)),
                       f"landlock_add_rule {path}")
            finally:
                os.close(parent)
        _check(_libc.syscall(ctypes.c_long(SYS_LANDLOCK_RESTRICT_SELF), ctypes.c_int(fd),
                             ctypes.c_uint32(0)), "landlock_restrict_self")
    finally:
        os.close(fd)


def seccomp(program: bytes) -> None:
    """Load a raw BPF program (8 bytes per instruction) as this process's seccomp filter."""
    buf = ctypes.create_string_buffer(program, len(program))
    prog = _SockFprog(len(program) // 8, ctypes.cast(buf, ctypes.c_void_p))
    _check(_libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(prog), 0, 0), "seccomp")


def confine(cfg: dict[str, Any]) -> None:
    """Every unprivileged layer `cfg` carries; raises if one cannot be applied."""
    _check(_libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "prctl(NO_NEW_PRIVS)")
    drop_capabilities()
    if cfg["landlock"]:
        landlock(cfg["landlock"])
    if cfg["seccomp"]:
        seccomp(bytes.fromhex(cfg["seccomp"]))
