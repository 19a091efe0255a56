"""The Streamlit + Plotly dashboard over trace stores, simulations and Optuna studies.

Importing this package is cheap: it does not import streamlit. `launch` starts
`streamlit run dashboard/app.py` in a subprocess, listening on 127.0.0.1 only unless a `host` is
given (the app has no authentication), and stops it when it gets SIGTERM or SIGINT; the app itself lives in `app.py` (router),
`views/` (the pages, UI only), `loaders.py` (cached store loaders), `frames.py` (pure frame
builders), `simulation.py` (cached simulation runs), `studies.py` (Optuna studies), `charts.py`
(figure builders) and `ui.py` (shared widgets). See docs/dashboard.md.
"""

from __future__ import annotations

import ipaddress
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from types import FrameType

from aimo.core.errors import AimoError, InputError

__all__ = ["APP_PATH", "DEFAULT_HOST", "build_command", "launch"]

APP_PATH = Path(__file__).resolve().parent / "app.py"
DEFAULT_HOST = "127.0.0.1"  # loopback only: the app has no authentication


def build_command(
    traces: Path | None,
    storage: str | None,
    port: int,
    headless: bool,
    *,
    study: str | None = None,
    python: str | None = None,
    host: str = DEFAULT_HOST,
) -> list[str]:
    """The `python -m streamlit run dashboard/app.py ... -- --traces ...` command line."""
    cmd = [
        python or sys.executable,
        "-m",
        "streamlit",
        "run",
        str(APP_PATH),
        "--server.port",
        str(port),
        "--server.address",
        host,
        "--server.headless",
        "true" if headless else "false",
        "--browser.gatherUsageStats",
        "false",
        "--client.toolbarMode",  # no Deploy button: this is a local tool, not an app to publish
        "minimal",
        "--",
    ]
    if traces is not None:
        cmd += ["--traces", str(Path(traces).resolve())]
    if storage:
        cmd += ["--storage", _resolve_storage(storage)]
    if study:
        cmd += ["--study", study]
    return cmd


def _resolve_storage(storage: str) -> str:
    """An RDB URL as given; a journal file path made absolute (the server may change directory)."""
    return storage if "://" in storage else str(Path(storage).resolve())


def check_host(host: str) -> str:
    """An IP address or host name to listen on; InputError for anything else."""
    text = (host or "").strip()
    try:
        ipaddress.ip_address(text)
        return text
    except ValueError:
        pass
    labels = text.split(".")
    if text and len(text) <= 253 and all(
        label and len(label) <= 63 and label.replace("-", "").isalnum() and label.isascii()
        and label[0].isalnum() and label[-1].isalnum()
        for label in labels
    ):
        return text
    raise InputError("--host", "host", f"expected an IP address or a host name, got {host!r}")


class _Stop(AimoError):
    """SIGTERM reached `launch` (SIGINT arrives as KeyboardInterrupt)."""


def _terminate(proc: subprocess.Popen[bytes]) -> None:
    """Stop the Streamlit child: SIGTERM, then SIGKILL after 10 s."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def launch(
    traces: Path, storage: str | None, port: int, headless: bool, *, study: str | None = None,
    host: str = DEFAULT_HOST,
) -> int:
    """Serve the dashboard until interrupted; returns streamlit's exit code (0 on Ctrl-C or
    SIGTERM, which stop the Streamlit child too, so the port is freed).

    Args:
        traces: the trace store (DuckDB file) to open.
        storage: an Optuna storage for the Tune page: journal file path or RDB URL.
        port: the HTTP port.
        headless: do not open a browser.
        study: the study the Tune page shows first.
        host: the address to listen on (default 127.0.0.1; `0.0.0.0` exposes the dashboard,
            which has no authentication, to the network).

    Raises:
        InputError: `traces` or a journal `storage` file does not exist, the port or the host
            is invalid.
    """
    if not Path(traces).is_file():
        raise InputError(str(traces), "traces", "no such trace store")
    if storage and "://" not in storage and not Path(storage).is_file():
        raise InputError(storage, "storage", "no such Optuna journal file")
    if not 1 <= port <= 65535:
        raise InputError("--port", "port", f"must be 1..65535 (got {port})")
    host = check_host(host)
    if host != DEFAULT_HOST and not host.startswith("127.") and host not in ("localhost", "::1"):
        print(f"warning: the dashboard listens on {host} without authentication; anyone who "
              "can reach this port can read the traces and run simulations", file=sys.stderr)
    cmd = build_command(Path(traces), storage, port, headless, study=study, host=host)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}

    def _on_term(signum: int, frame: FrameType | None) -> None:
        raise _Stop(signum)

    main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _on_term) if main else None
    proc = subprocess.Popen(cmd, env=env)
    try:
        return proc.wait()
    except (KeyboardInterrupt, _Stop):
        return 0
    finally:
        _terminate(proc)
        if main and previous is not None:
            signal.signal(signal.SIGTERM, previous)
