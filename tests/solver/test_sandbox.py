"""Sandbox: hostile snippets are contained, reported as failed executions, the caller unharmed.

Generic behaviour runs under every isolation available here (the best one detected, and the
unprivileged layers alone: Landlock + seccomp, no namespaces); machine-level containment
(fork/memory bombs, writes outside) runs under the best one. test_sandbox_attacks.py runs the
hostile snippets of issue 14 as root and as nobody.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import tracemalloc
import uuid
from pathlib import Path

import pytest

from aimo.solver.sandbox import (
    Isolation,
    ExecResult,
    SandboxLimits,
    SandboxPool,
    describe_layers,
    detect_isolation,
    run_code,
)
from aimo.solver.loop import outcome_of
from aimo.solver.sandbox._execute import execute
from aimo.solver.sandbox._layers import unprivileged

REPO = Path(__file__).resolve().parents[2]
FAST = SandboxLimits(timeout_s=2.0, cpu_s=10, memory_mb=512, file_mb=1, max_procs=16,
                     output_bytes=4096)
BEST = detect_isolation()
_modes = {"best": BEST, "unprivileged": unprivileged()}
MODES = {name: iso for name, iso in _modes.items() if name == "best" or iso != BEST}


def run_in(mode: str, code: str, limits: SandboxLimits = FAST) -> ExecResult:
    return execute(code, limits, MODES[mode], sys.executable)


def procs_matching(needle: str) -> list[int]:
    """Pids whose command line contains `needle` (our own excluded)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and int(entry) != os.getpid():
            try:
                cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ")
            except OSError:
                continue
            if needle.encode() in cmdline:
                found.append(int(entry))
    return found


def wait_gone(needle: str, within_s: float = 2.0) -> list[int]:
    deadline = time.monotonic() + within_s
    while (left := procs_matching(needle)) and time.monotonic() < deadline:
        time.sleep(0.02)
    return left


def can_spawn(times: int) -> bool:
    return all(subprocess.run(["true"], timeout=10).returncode == 0 for _ in range(times))


# ---------- behaviour under every isolation -------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_success_prints_42(mode: str) -> None:
    r = run_in(mode, "print(42)")
    assert (r.ok, r.stdout, r.returncode, r.error, r.timed_out, r.truncated) == (
        True, "42\n", 0, None, False, False)
    assert r.exec_ms > 0 and r.isolation == MODES[mode].describe()


@pytest.mark.parametrize("mode", MODES)
def test_syntax_error_is_a_failed_run(mode: str) -> None:
    r = run_in(mode, "print(")
    assert not r.ok and r.returncode == 1
    assert r.error is not None and "SyntaxError" in r.error


@pytest.mark.parametrize("mode", MODES)
def test_temp_dir_is_fresh_and_removed(mode: str) -> None:
    r = run_in(mode, "import os; print(os.getcwd()); print(os.listdir('.')); "
                     "open('scratch.txt', 'w').write('x')")
    assert r.ok, r.stderr
    cwd, listing = r.stdout.splitlines()
    assert listing == "[]"
    assert not os.path.exists(cwd) and not os.path.exists(os.path.dirname(cwd))


@pytest.mark.parametrize("mode", MODES)
def test_infinite_loop_times_out_and_kills_the_tree(mode: str) -> None:
    token = f"aimo-sleeper-{uuid.uuid4().hex}"
    spawn = (f"import subprocess; subprocess.Popen([sys.executable, '-c', "
             f"'import time; time.sleep(60)  # {token}'])\n") if MODES[mode].netns else ""
    code = (
        "import os, sys, time\n"
        "print(os.getcwd(), flush=True)\n"
        "if os.fork() == 0:\n    time.sleep(60); os._exit(0)\n"
        "if os.fork() == 0:\n    os.setsid(); time.sleep(60); os._exit(0)\n"
        + spawn +
        "while True: pass\n"
    )
    t0 = time.monotonic()
    r = run_in(mode, code)
    elapsed = time.monotonic() - t0
    assert r.timed_out and not r.ok and r.error == "timeout" and r.returncode is None
    assert elapsed >= FAST.timeout_s  # not killed before its timeout (a floor: cannot flake)
    workdir = r.stdout.strip()
    assert workdir, r.stderr
    # Same process group: gone in every mode. The setsid() escapee too where a pid namespace
    # holds the tree or seccomp denies setsid (without either it would survive: documented).
    if MODES[mode].pidns or MODES[mode].seccomp:
        assert wait_gone(os.path.dirname(workdir)) == []
        assert wait_gone(token) == []


@pytest.mark.parametrize("mode", MODES)
def test_network_connect_fails(mode: str) -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        server.setblocking(False)
        port = server.getsockname()[1]
        r = run_in(mode, "import socket\n"
                         f"s = socket.create_connection(('127.0.0.1', {port}), timeout=1)\n"
                         "s.sendall(b'hello'); print('connected')")
        assert not r.ok and "connected" not in r.stdout
        with pytest.raises(BlockingIOError):
            server.accept()


@pytest.mark.parametrize("mode", MODES)
def test_killing_the_parent_harms_nobody(mode: str) -> None:
    r = run_in(mode, "import os, signal, time\n"
                     "os.kill(os.getppid(), signal.SIGKILL)\n"
                     "time.sleep(1); print('survived')")
    assert not r.ok and r.error
    assert can_spawn(1)  # and we are obviously still running


# ---------- machine-level containment (best isolation) --------------------------------------


def test_kill_every_process_reaches_nothing_outside() -> None:
    if not (BEST.pidns or BEST.drop_uid):
        pytest.skip("kill(-1) as root without a pid namespace or uid drop would kill the machine")
    with subprocess.Popen(["sleep", "30"]) as bystander:
        r = run_code("import os, signal; os.kill(-1, signal.SIGKILL)", FAST)
        assert bystander.poll() is None
        bystander.kill()
    assert r.returncode is not None


def test_memory_bomb_fails_with_memory_error() -> None:
    limits = SandboxLimits(timeout_s=10, memory_mb=256, file_mb=1, max_procs=16)
    one_shot = run_code("x = bytearray(10**10)", limits)
    assert not one_shot.ok and one_shot.error == "memory"
    gradual = run_code("a = []\nwhile True: a.append(bytearray(10**7))", limits)
    assert not gradual.ok and gradual.error == "memory" and not gradual.timed_out


def test_fork_bomb_is_contained_and_machine_stays_responsive() -> None:
    code = ("import os\nprint(os.getcwd(), flush=True)\n"
            "while True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n")
    with SandboxPool(workers=1, limits=FAST) as pool:
        future = pool.submit(code)
        time.sleep(0.5)
        t0 = time.monotonic()
        assert can_spawn(5)  # while the bomb runs
        during = time.monotonic() - t0
        r = future.result(timeout=30)
    assert not r.ok and (r.timed_out or r.error == "process limit"), r
    assert during < 5.0
    assert can_spawn(20)
    assert wait_gone(os.path.dirname(r.stdout.strip())) == []


def test_capped_output_keeps_its_tail_and_answers_like_the_seed() -> None:
    # the seed parses the last number of the whole stdout; the sandbox keeps the last
    # output_bytes, so a run that prints a lot and then its answer still answers (issue 13, 6)
    r = run_code("for i in range(2000): print('x' * 100, i)\nprint(123)", FAST)
    assert r.ok and r.truncated and r.error is None
    assert len(r.stdout.encode()) <= FAST.output_bytes and r.stdout.rstrip().endswith("123")
    assert outcome_of(r).value == 123


def test_huge_output_is_truncated_and_bounded() -> None:
    tracemalloc.start()
    try:
        flood = run_code("while True: print('x' * 1000)", FAST)
        one_write = run_code("import sys; sys.stderr.write('y' * 10**8)", FAST)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert flood.truncated and not flood.ok and flood.timed_out  # runs until its timeout
    assert len(flood.stdout.encode()) == FAST.output_bytes
    assert one_write.truncated and len(one_write.stderr.encode()) == FAST.output_bytes
    assert peak < 2 * 1024 * 1024  # the caller never held more than a few read chunks


@pytest.mark.parametrize("where", ["tmp", "repo"])
def test_writing_outside_the_work_dir_fails(where: str) -> None:
    if not (BEST.mountns or BEST.landlock or (BEST.drop_uid and where == "repo")):
        pytest.skip(f"no mount namespace here: /tmp is world-writable ({BEST.describe()})")
    target = (Path("/tmp") if where == "tmp" else REPO) / f"aimo-outside-{uuid.uuid4().hex}"
    try:
        r = run_code(f"open({str(target)!r}, 'w').write('pwned')", FAST)
        assert not r.ok and ("Read-only" in (r.error or "") or "Permission" in (r.error or ""))
        assert not target.exists()
    finally:
        target.unlink(missing_ok=True)


def test_cpu_and_file_size_limits() -> None:
    cpu = run_code("while True: pass", SandboxLimits(timeout_s=10, cpu_s=1, file_mb=1))
    assert not cpu.ok and not cpu.timed_out and cpu.error == "cpu time limit"
    assert cpu.returncode == -signal.SIGXCPU
    big = run_code("open('big', 'wb').write(b'x' * (2 << 20))", FAST)
    assert not big.ok and "File too large" in (big.error or "")


def test_environment_is_scrubbed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIMO_SECRET_TOKEN", "hunter2")
    r = run_code("import os, sys; print(sorted(os.environ)); print(os.environ['HOME'] == os.getcwd());"
                 " print(sys.flags.isolated)", FAST)
    names, home_is_cwd, isolated = r.stdout.splitlines()
    assert "AIMO_SECRET_TOKEN" not in names and "PATH" in names
    assert home_is_cwd == "True" and isolated == "1"


def test_best_isolation_is_reported() -> None:
    r = run_code("pass", FAST)
    assert r.isolation == BEST.describe() == describe_layers()
    assert {"rlimits", "tree-limits", "no-new-privs", "no-caps"} <= set(r.isolation)


def test_limits_validate_with_field_name() -> None:
    with pytest.raises(ValueError, match="timeout_s"):
        SandboxLimits(timeout_s=0)


# ---------- pool ----------------------------------------------------------------------------

# prints its start and end (epoch s): four runs overlap in time iff each starts before any ends
SLEEP_1S = "import time; t = time.time(); time.sleep(1); print('done', t, time.time())"
POOL_LIMITS = SandboxLimits(timeout_s=10, memory_mb=512, file_mb=1, max_procs=16)


def _ran_concurrently(results: list[ExecResult]) -> bool:
    """Every run of SLEEP_1S started before any of them ended (so they shared the time)."""
    spans = [tuple(map(float, r.stdout.split()[1:3])) for r in results]
    return max(start for start, _ in spans) < min(end for _, end in spans)


def test_pool_runs_four_sleeps_concurrently_while_caller_works() -> None:
    with SandboxPool(workers=4, limits=POOL_LIMITS) as pool:
        futures = [pool.submit(SLEEP_1S) for _ in range(4)]
        ticks = 0
        while not all(f.done() for f in futures):
            ticks += 1
            time.sleep(0.01)
        results = [f.result() for f in futures]
    assert all(r.ok and r.stdout.startswith("done ") for r in results)
    assert _ran_concurrently(results)
    assert ticks >= 50


def test_pool_run_keeps_the_event_loop_ticking() -> None:
    async def main() -> tuple[list[ExecResult], int]:
        ticks = 0
        stop = asyncio.Event()

        async def ticker() -> None:
            nonlocal ticks
            while not stop.is_set():
                ticks += 1
                await asyncio.sleep(0.01)

        with SandboxPool(workers=4, limits=POOL_LIMITS) as pool:
            task = asyncio.create_task(ticker())
            results = await asyncio.gather(*(pool.run(SLEEP_1S) for _ in range(4)))
            stop.set()
            await task
        return list(results), ticks

    results, ticks = asyncio.run(main())
    assert all(r.ok for r in results)
    assert _ran_concurrently(results) and ticks >= 50


def test_pool_close_rejects_new_work() -> None:
    pool = SandboxPool(workers=1, limits=FAST)
    assert pool.submit("print(1)").result(timeout=30).stdout == "1\n"
    pool.close()
    with pytest.raises(RuntimeError):
        pool.submit("print(1)")


def test_pool_threads_do_not_share_uid_budgets() -> None:
    """A fork bomb in one slot must not starve a concurrent normal run (per-run uid/cgroup)."""
    bomb = "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n"
    with SandboxPool(workers=2, limits=FAST) as pool:
        bombing = pool.submit(bomb)
        time.sleep(0.5)
        normal = pool.submit("import os; print(os.getpid() > 0)").result(timeout=30)
        bombing.result(timeout=30)
    assert normal.ok, normal


def test_pool_survives_concurrent_threads_calling_run_code() -> None:
    out: list[ExecResult] = []
    threads = [threading.Thread(target=lambda i=i: out.append(run_code(f"print({i})", FAST)))
               for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert sorted(r.stdout for r in out) == [f"{i}\n" for i in range(4)]


# ---------- layers: start-up line, missing layers, refusal -----------------------------------


def test_pool_prints_its_layers_once(capsys: pytest.CaptureFixture[str],
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from aimo.solver.sandbox import _layers

    monkeypatch.setattr(_layers, "_announced", threading.Event())
    SandboxPool(workers=1, limits=FAST).close()
    SandboxPool(workers=1, limits=FAST).close()
    err = capsys.readouterr().err
    assert err.count("aimo sandbox: layers active: ") == 1
    assert ", ".join(BEST.describe()) in err


def test_missing_layers_warn_and_can_refuse(capsys: pytest.CaptureFixture[str],
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    from aimo.solver.loop.runners import outcome_of
    from aimo.solver.sandbox import _layers, _pool

    monkeypatch.setattr(_layers, "_announced", threading.Event())
    monkeypatch.setattr(_pool, "detect_isolation", lambda python=None: Isolation(landlock=5))
    with SandboxPool(workers=1, limits=FAST) as lenient:  # warns, runs
        assert lenient.submit("print(1)").result(timeout=30).stdout == "1\n"
    assert "WARNING: layers missing here: landlock-signal-scope, seccomp" in capsys.readouterr().err
    monkeypatch.setenv("AIMO_REQUIRE_SANDBOX", "1")
    with SandboxPool(workers=1, limits=FAST) as strict:
        r = strict.submit("print(1)").result(timeout=30)
    assert r.refused and not r.ok and r.stdout == ""
    assert r.error == "sandbox refused: layers missing here: landlock-signal-scope, seccomp"
    assert outcome_of(r).value is None  # no code answer: the sample's boxed answer still votes
    monkeypatch.setattr(_pool, "detect_isolation", detect_isolation)
    with SandboxPool(workers=1, limits=FAST, require_layers=True) as full:
        assert (full.refusal is None) == (not _layers.missing(BEST))


def test_sweep_removes_folders_of_dead_callers_only(tmp_path: Path) -> None:
    from aimo.solver.sandbox._execute import sweep_stale

    dead = subprocess.Popen(["true"])
    dead.wait()  # reaped: its pid is free (a reuse before the sweep would only keep the folder)
    stale = tmp_path / f"aimo-sbx-{dead.pid}-abc123"
    live = tmp_path / f"aimo-sbx-{os.getpid()}-def456"
    other = tmp_path / "aimo-sbx-notapid"
    for d in (stale, live, other):
        (d / "work").mkdir(parents=True)
    (stale / "work").chmod(0o500)  # a snippet may leave parts unwritable
    assert sweep_stale(str(tmp_path)) == [stale.name]
    assert not stale.exists() and live.exists() and other.exists()
