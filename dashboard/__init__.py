"""The Streamlit + Plotly dashboard over trace stores, simulations and Optuna studies.

Importing this package is cheap: it does not import streamlit. `launch` starts
`streamlit run dashboard/app.py` in a subprocess; the app itself lives in `app.py` (router),
`views/` (the pages, UI only), `data.py` (cached loaders), `charts.py` (figure builders) and `ui.py`
(shared widgets). See docs/dashboard.md.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from solver.errors import InputError

__all__ = ["APP_PATH", "build_command", "launch"]

APP_PATH = Path(__file__).resolve().parent / "app.py"


def build_command(
    traces: Path | None,
    storage: str | None,
    port: int,
    headless: bool,
    *,
    study: str | None = None,
    python: str | None = None,
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


def launch(
    traces: Path, storage: str | None, port: int, headless: bool, *, study: str | None = None
) -> int:
    """Serve the dashboard until interrupted; returns streamlit's exit code (0 on Ctrl-C).

    Args:
        traces: the trace store (DuckDB file) to open.
        storage: an Optuna storage for the Tune page: journal file path or RDB URL.
        port: the HTTP port.
        headless: do not open a browser.
        study: the study the Tune page shows first.

    Raises:
        InputError: `traces` or a journal `storage` file does not exist, or the port is invalid.
    """
    if not Path(traces).is_file():
        raise InputError(str(traces), "traces", "no such trace store")
    if storage and "://" not in storage and not Path(storage).is_file():
        raise InputError(storage, "storage", "no such Optuna journal file")
    if not 1 <= port <= 65535:
        raise InputError("--port", "port", f"must be 1..65535 (got {port})")
    cmd = build_command(Path(traces), storage, port, headless, study=study)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(cmd, env=env)
    try:
        return proc.wait()
    except KeyboardInterrupt:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        return 0
