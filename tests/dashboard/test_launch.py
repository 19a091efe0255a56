"""`aimo dashboard` exposure: loopback by default (the app has no authentication), an explicit
`--host` to expose it, and the Streamlit child stopped (its port freed) on SIGTERM / SIGINT."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from aimo import dashboard
from aimo.core.errors import InputError

ROOT = Path(__file__).resolve().parents[2]
STORE = ROOT / "data" / "traces" / "gpu-smoke.duckdb"
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def test_listens_on_loopback_unless_a_host_is_given() -> None:
    cmd = dashboard.build_command(STORE, None, 8123, True)
    assert cmd[cmd.index("--server.address") + 1] == "127.0.0.1"
    cmd = dashboard.build_command(STORE, None, 8123, True, host="0.0.0.0")
    assert cmd[cmd.index("--server.address") + 1] == "0.0.0.0"


@pytest.mark.parametrize("host", ["", "a b", "; rm -rf /", "x..y", "--server.port"])
def test_bad_hosts_are_refused(host: str) -> None:
    with pytest.raises(InputError, match="host"):
        dashboard.launch(STORE, None, 8501, True, host=host)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _listeners(port: int) -> set[str]:
    """Local addresses (hex, as /proc/net/tcp{,6} write them) listening on `port`."""
    out = set()
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(name).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            local, state = line.split()[1], line.split()[3]
            addr, hex_port = local.split(":")
            if state == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
                out.add(addr)
    return out


def _wait_health(port: int, proc: subprocess.Popen, timeout_s: float = 120.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"aimo dashboard exited with {proc.returncode}")
        try:
            with _OPENER.open(f"http://127.0.0.1:{port}/_stcore/health", timeout=2) as r:
                if r.read().decode().strip() == "ok":
                    return
        except Exception:  # noqa: BLE001 - not up yet
            time.sleep(0.25)
    raise TimeoutError("the dashboard did not come up")


@pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="reads /proc/net/tcp (Linux)")
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_stops_the_streamlit_child_and_frees_the_port(sig: signal.Signals, tmp_path: Path) -> None:
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HOME": str(tmp_path)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "aimo.cli", "dashboard", "--traces", str(STORE), "--port", str(port)],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True,  # its own process group: the cleanup below reaches a leaked child
    )
    try:
        _wait_health(port, proc)
        assert _listeners(port) == {"0100007F"}  # 127.0.0.1 only, not 0.0.0.0 / ::
        proc.send_signal(sig)
        assert proc.wait(timeout=30) == 0
        deadline = time.monotonic() + 10
        while _listeners(port) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not _listeners(port), "the Streamlit child still serves the port"
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=2).close()
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # the group this test started, leftovers included
        except ProcessLookupError:
            pass
        proc.wait()
