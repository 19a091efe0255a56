"""Which unprivileged layers this machine offers, what the launcher needs to apply them, and the
one start-up line that says which layers are active (and warns once about missing ones)."""

from __future__ import annotations

import functools
import os
import struct
import sys
import threading

from aimo.solver.sandbox._types import Isolation

# Layers a run should have on any Linux this solver targets (kernel >= 6.12, libseccomp):
# missing ones are warned about, and refused with `require_layers`.
WANTED = ("landlock", "landlock-signal-scope", "seccomp")
_announced = threading.Event()
_announce_lock = threading.Lock()


@functools.lru_cache(maxsize=1)
def landlock_abi() -> int:
    """The kernel's Landlock ABI version (0: no Landlock: kernel < 5.13 or disabled at boot)."""
    try:
        import landlockpy

        return int(landlockpy.abi_version())
    except Exception:  # noqa: BLE001 - ImportError, or an unexpected errno: no Landlock then
        return 0


@functools.lru_cache(maxsize=1)
def seccomp_available() -> bool:
    """Can a filter be built here (pyseccomp importable, libseccomp loadable)?"""
    try:
        import pyseccomp

        pyseccomp.SyscallFilter(pyseccomp.ALLOW)
    except Exception:  # noqa: BLE001 - ImportError, OSError, AttributeError on a missing library
        return False
    return True


def _elf_interpreter(path: str) -> str | None:
    """The dynamic loader (PT_INTERP) of an ELF64 little-endian executable, if any."""
    with open(path, "rb") as f:
        head = f.read(64)
        if head[:4] != b"\x7fELF" or head[4] != 2 or head[5] != 1:
            return None
        phoff, = struct.unpack_from("<Q", head, 32)
        phentsize, phnum = struct.unpack_from("<HH", head, 54)
        for i in range(phnum):
            f.seek(phoff + i * phentsize)
            p_type, _, offset, _, _, filesz = struct.unpack("<IIQQQQ", f.read(40))
            if p_type == 3:
                f.seek(offset)
                return f.read(filesz).rstrip(b"\0").decode()
    return None


@functools.cache
def exec_paths(python: str) -> tuple[str, ...]:
    """Files the snippet may execute under Landlock: the interpreter and its dynamic loader."""
    real = os.path.realpath(python)
    interp = _elf_interpreter(real)
    return tuple(p for p in (real, interp and os.path.realpath(interp)) if p)


def unprivileged() -> Isolation:
    """The unprivileged layers available here, as an `Isolation` to combine with namespaces."""
    return Isolation(landlock=landlock_abi(), seccomp=seccomp_available())


def missing(iso: Isolation) -> tuple[str, ...]:
    """Which of `WANTED` the isolation lacks."""
    have = {"landlock": iso.landlock > 0, "landlock-signal-scope": iso.landlock >= 6,
            "seccomp": iso.seccomp}
    return tuple(name for name in WANTED if not have[name])


def announce(iso: Isolation) -> None:
    """Print, once per process, the active layers to stderr, and a warning if some are missing."""
    with _announce_lock:
        if _announced.is_set():
            return
        _announced.set()
    print(f"aimo sandbox: layers active: {', '.join(iso.describe())}", file=sys.stderr)
    lacking = missing(iso)
    if lacking:
        print(f"aimo sandbox: WARNING: layers missing here: {', '.join(lacking)}; snippets run "
              "less contained (refuse them with --require-sandbox / AIMO_REQUIRE_SANDBOX=1)",
              file=sys.stderr)
