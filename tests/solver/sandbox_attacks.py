"""Hostile snippets against the sandbox, each judged contained or not; run by a separate caller
process so a failed containment (a killed caller, kill(-1)) cannot take the test run with it.

    python tests/solver/sandbox_attacks.py ATTACK [ATTACK ...]   # prints {attack: [contained, detail]}

`tests/solver/test_sandbox_attacks.py` runs it as root (namespaces available) and as `nobody`
with no capabilities (the unprivileged mode). Works against older sandbox code too (for a
before/after count): what it lacks counts as not contained.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Callable

from aimo.solver.sandbox import SandboxLimits, run_code

LIMITS = SandboxLimits(timeout_s=3.0, cpu_s=10, memory_mb=256, file_mb=1, max_procs=16,
                       output_bytes=4096)
Verdict = tuple[bool, str]
# A snippet prefix: name this process (comm) so a survivor can be found from any pid namespace.
NAME = "import ctypes, os, sys, time\nlibc = ctypes.CDLL(None, use_errno=True)\n" \
       "def name(n): libc.prctl(15, n.encode(), 0, 0, 0)\n"


def _alive_named(comm: str) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        try:
            if entry.isdigit() and Path(f"/proc/{entry}/comm").read_text().strip() == comm:
                state = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[0]
                if state != "Z":
                    found.append(int(entry))
        except OSError:
            continue
    return found


def _gone(comm: str, within_s: float = 3.0) -> bool:
    deadline = time.monotonic() + within_s
    while _alive_named(comm):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def setsid_double_fork() -> Verdict:
    comm = "x" + uuid.uuid4().hex[:12]
    code = NAME + (
        "if os.fork() == 0:\n"
        "    try:\n        os.setsid()\n    except OSError as e:\n        print('setsid', e, flush=True)\n"
        "    if os.fork() == 0:\n"
        f"        name({comm!r})\n"
        "        os.dup2(os.open('/dev/null', os.O_WRONLY), 1); f = open('keep.txt', 'w')\n"
        "        while True:\n            f.write('still here\\n'); f.flush(); time.sleep(0.05)\n"
        "    os._exit(0)\n"
        "time.sleep(60)\n")
    r = run_code(code, LIMITS)
    gone = _gone(comm)
    return r.timed_out and gone, f"timed_out={r.timed_out} survivor_gone={gone} error={r.error}"


CTYPES_CONNECT = NAME + """\
import struct
fd = libc.socket({family}, 1, 0)
print('socket', fd, ctypes.get_errno(), flush=True)
addr = {addr}
rc = libc.connect(fd, addr, len(addr))
print('connect', rc, ctypes.get_errno(), flush=True)
if rc == 0:
    print('sent', libc.send(fd, b'pwned', 5, 0))
"""


def _listener_result(server: socket.socket, r: object) -> Verdict:
    server.setblocking(False)
    try:
        conn, _ = server.accept()
        conn.close()
        accepted = True
    except BlockingIOError:
        accepted = False
    out = getattr(r, "stdout", "")
    return not accepted and "sent" not in out, f"accepted={accepted} out={out.strip()!r}"


def tcp_connect() -> Verdict:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        addr = f"struct.pack('=H', 2) + struct.pack('!H', {port}) + bytes([127, 0, 0, 1]) + bytes(8)"
        r = run_code(CTYPES_CONNECT.format(family=2, addr=addr), LIMITS)
        time.sleep(0.1)
        return _listener_result(server, r)


def unix_connect() -> Verdict:
    path = os.path.join(tempfile.gettempdir(), f"aimo-attack-{uuid.uuid4().hex[:8]}.sock")
    with socket.socket(socket.AF_UNIX) as server:
        server.bind(path)
        os.chmod(path, 0o777)
        server.listen()
        try:
            addr = f"struct.pack('=H', 1) + {path.encode()!r} + bytes(108 - {len(path)})"
            r = run_code(CTYPES_CONNECT.format(family=1, addr=addr), LIMITS)
            time.sleep(0.1)
            return _listener_result(server, r)
        finally:
            os.unlink(path)


def system_shell() -> Verdict:
    code = NAME + ("libc.system(b'echo shell-ran-$((6*7))')\n"
                   "os.system('echo shell-ran-$((6*7))')\n"
                   "import subprocess\n"
                   "try:\n    subprocess.run(['/bin/sh', '-c', 'echo shell-ran-$((6*7))'])\n"
                   "except OSError as e:\n    print('subprocess', e)\n")
    r = run_code(code, LIMITS)
    return "shell-ran-42" not in r.stdout, f"out={r.stdout.strip()[:200]!r}"


def write_outside() -> Verdict:
    victim_dir = Path(tempfile.mkdtemp(prefix="aimo-victim-"))
    os.chmod(victim_dir, 0o777)
    victim = victim_dir / "victim.txt"
    victim.write_text("intact")
    os.chmod(victim, 0o666)
    fresh = Path(tempfile.gettempdir()) / f"aimo-outside-{uuid.uuid4().hex}"
    try:
        code = (f"for p in ({str(victim)!r}, {str(fresh)!r}, {str(victim_dir / 'new.txt')!r}):\n"
                "    try:\n        open(p, 'w').write('pwned'); print('wrote', p)\n"
                "    except OSError as e:\n        print('refused', p, e)\n")
        r = run_code(code, LIMITS)
        ok = victim.read_text() == "intact" and not fresh.exists() and not (victim_dir / "new.txt").exists()
        return ok, f"out={r.stdout.strip()[:300]!r}"
    finally:
        fresh.unlink(missing_ok=True)
        for p in victim_dir.iterdir():
            p.unlink()
        victim_dir.rmdir()


def _kill_all_is_safe() -> bool:
    """Would a snippet's kill(-1) be held? Without a pid namespace or a signal fence it reaches
    every process of this uid on the machine (root: all of them), so it is not tried there."""
    from aimo.solver.sandbox import detect_isolation

    layers = detect_isolation().describe()
    fenced = any(x.startswith("landlock-abi") and int(x[len("landlock-abi"):]) >= 6 for x in layers)
    return "pidns" in layers or "seccomp" in layers or fenced


def kill_caller() -> Verdict:
    """Kill the solver's process (this one: the launcher's parent) directly, by group, and by -1
    where that cannot reach the machine (see `_kill_all_is_safe`)."""
    kill_all = "            lambda: os.kill(-1, signal.SIGKILL)" if _kill_all_is_safe() else ""
    with subprocess.Popen(["sleep", "30"]) as bystander:
        code = ("import os, signal\n"
                f"for how in (lambda: os.kill({os.getpid()}, signal.SIGKILL),\n"
                f"            lambda: os.killpg({os.getpgid(0)}, signal.SIGKILL),\n"
                f"{kill_all}):\n"
                "    try:\n        how()\n    except OSError as e:\n        print('refused', e)\n")
        r = run_code(code, LIMITS)
        bystander_alive = bystander.poll() is None
        bystander.kill()
    return bystander_alive, f"caller alive, bystander_alive={bystander_alive} out={r.stdout.strip()!r}"


def fork_memory_bomb() -> Verdict:
    """12 children of 200 MB each against a 256 MB limit: the tree must be stopped."""
    code = ("import os, time\nkids = []\n"
            "for i in range(12):\n"
            "    pid = os.fork()\n"
            "    if pid == 0:\n"
            "        b = b'\\x01' * (200 << 20); print('alloc', i, flush=True); time.sleep(30); os._exit(0)\n"
            "    kids.append(pid)\n"
            "for k in kids:\n    os.waitpid(k, 0)\n")
    r = run_code(code, SandboxLimits(timeout_s=20, memory_mb=256, file_mb=1, max_procs=32))
    allocs = r.stdout.count("alloc")
    return r.error == "memory" and allocs < 12, f"error={r.error} allocations={allocs}"


CALLER = """\
import sys
from aimo.solver.sandbox import SandboxLimits, run_code
run_code(sys.argv[1], SandboxLimits(timeout_s=60))
"""


def leftovers_after_caller_sigkill() -> Verdict:
    """SIGKILL the caller mid-run: its snippet (and a setsid grandchild) die, its folder is swept."""
    comm = "y" + uuid.uuid4().hex[:12]
    code = NAME + ("if os.fork() == 0:\n"
                   "    try:\n        os.setsid()\n    except OSError:\n        pass\n"
                   f"    name({comm!r})\n    time.sleep(60)\n"
                   "time.sleep(60)\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    caller = subprocess.Popen([sys.executable, "-c", CALLER, code], env=env)
    deadline = time.monotonic() + 30
    while not _alive_named(comm) and time.monotonic() < deadline:
        time.sleep(0.05)
    started = bool(_alive_named(comm))
    folders = [p for p in Path(tempfile.gettempdir()).glob(f"aimo-sbx-{caller.pid}-*")]
    caller.kill()
    caller.wait()
    gone = _gone(comm)
    try:
        from aimo.solver.sandbox._execute import sweep_stale
        sweep_stale()
    except ImportError:
        pass
    folders_left = [str(p) for p in folders if p.exists()]
    return (started and gone and bool(folders) and not folders_left,
            f"started={started} snippet_gone={gone} folders={len(folders)} left={folders_left}")


def legit_math() -> Verdict:
    code = ("import numpy as np, sympy as sp\n"
            "x = sp.symbols('x')\n"
            "roots = sp.solve(x**2 - 5*x + 6, x)\n"
            "print(int(np.sum(np.array([int(r) for r in roots])) * 7))\n")
    r = run_code(code, SandboxLimits(timeout_s=60))
    return r.ok and r.stdout.strip() == "35", f"ok={r.ok} out={r.stdout.strip()!r} error={r.error}"


ATTACKS: dict[str, Callable[[], Verdict]] = {f.__name__: f for f in (
    setsid_double_fork, tcp_connect, unix_connect, system_shell, write_outside, kill_caller,
    fork_memory_bomb, leftovers_after_caller_sigkill, legit_math)}


def main(names: list[str]) -> None:
    results = {}
    for name in names or list(ATTACKS):
        try:
            results[name] = list(ATTACKS[name]())
        except Exception as exc:  # noqa: BLE001 - a crash of the attack itself is reported
            results[name] = [False, f"attack crashed: {exc!r}"]
    layers = getattr(__import__("aimo.solver.sandbox", fromlist=["x"]), "describe_layers", None)
    results["_layers"] = [True, ", ".join(layers()) if layers else "n/a"]
    results["_uid"] = [True, str(os.getuid())]
    print(json.dumps(results))


if __name__ == "__main__":
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    os.setpgid(0, 0)  # a snippet that kills our group must not reach the test run that started us
    main(sys.argv[1:])
