"""`AIMO_*` environment defaults, read in one place by the CLI, the dashboard and the solver.

| variable | used as |
|---|---|
| `AIMO_TRACES` | default `--traces` of simulate, tune, profile bind, dashboard |
| `AIMO_POLICY` | default `--policy` (CLI) and the Kaggle solver's policy |
| `AIMO_HARDWARE` | default `--hardware` profile (else: the store's bound or matching profile) |
| `AIMO_BUDGET_S` | default `--budget-s` (seconds) |
| `AIMO_STORAGE` | default Optuna `--storage` of tune and dashboard |
| `AIMO_LOG_LEVEL` | log level of the `aimo`, `solver`, `lmdeploy` loggers (`-v`/`-q` override) |

Solver-only variables (`AIMO_BACKEND`, `AIMO_MODEL`, ...) are listed in solver/kaggle.py.
The dashboard's older `AIMO_DASHBOARD_TRACES/STORAGE/STUDY` still win over these there.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass

from aimo.core.errors import InputError

_ENV = "<environment>"
DEFAULT_POLICY = "seed-2nd-place"
DEFAULT_BUDGET_S = 18000.0
# the variables, by setting: typer's `envvar=` and load_settings use the same names
ENV = {
    "traces": "AIMO_TRACES",
    "policy": "AIMO_POLICY",
    "hardware": "AIMO_HARDWARE",
    "budget_s": "AIMO_BUDGET_S",
    "storage": "AIMO_STORAGE",
    "log_level": "AIMO_LOG_LEVEL",
}
# libraries whose loggers `-v`/`-q` configure; their records go to stderr, never stdout
LIBRARY_LOGGERS = ("aimo", "lmdeploy", "optuna")


@dataclass(frozen=True)
class Settings:
    """Defaults from the environment; None where the variable is unset."""

    traces: str | None = None
    policy: str = DEFAULT_POLICY
    hardware: str | None = None
    budget_s: float = DEFAULT_BUDGET_S
    storage: str | None = None
    log_level: str | None = None


def _get(env: Mapping[str, str], name: str) -> str | None:
    raw = env.get(name)
    return raw.strip() if raw is not None and raw.strip() else None


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Read the `AIMO_*` defaults; InputError names the variable with a bad value."""
    env = os.environ if env is None else env
    budget = _get(env, ENV["budget_s"])
    try:
        budget_s = float(budget) if budget is not None else DEFAULT_BUDGET_S
    except ValueError:
        raise InputError(_ENV, "AIMO_BUDGET_S", f"expected seconds, got {budget!r}") from None
    if not budget_s > 0:
        raise InputError(_ENV, "AIMO_BUDGET_S", f"must be > 0, got {budget!r}")
    level = _get(env, ENV["log_level"])
    if level is not None and not isinstance(logging.getLevelName(level.upper()), int):
        raise InputError(_ENV, "AIMO_LOG_LEVEL",
                         f"expected DEBUG, INFO, WARNING or ERROR, got {level!r}")
    return Settings(
        traces=_get(env, ENV["traces"]),
        policy=_get(env, ENV["policy"]) or DEFAULT_POLICY,
        hardware=_get(env, ENV["hardware"]),
        budget_s=budget_s,
        storage=_get(env, ENV["storage"]),
        log_level=level.upper() if level else None,
    )


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever `sys.stderr` is when a record comes (test runners swap it)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property  # type: ignore[override]
    def stream(self) -> object:
        return sys.stderr

    @stream.setter
    def stream(self, value: object) -> None:
        pass


def configure_logging(verbosity: int, env_level: str | None = None) -> int | None:
    """Send the project's and its libraries' log records to stderr; with -v/-q (verbosity -1
    quiet, 1 info, 2+ debug) or AIMO_LOG_LEVEL also set their level (otherwise left to the
    libraries: WARNING through the root logger). Returns the level set, if any."""
    root = logging.getLogger()
    for h in list(root.handlers):  # a library's stdout handler would break --json
        if isinstance(h, logging.StreamHandler) and getattr(h, "stream", None) is sys.stdout:
            root.removeHandler(h)
    if not any(isinstance(h, _StderrHandler) for h in root.handlers):
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        root.addHandler(handler)
    if verbosity:
        level = logging.ERROR if verbosity < 0 else (logging.INFO if verbosity == 1
                                                     else logging.DEBUG)
    elif env_level:
        level = int(logging.getLevelName(env_level))
    else:
        return None
    for name in LIBRARY_LOGGERS:
        logging.getLogger(name).setLevel(level)
    return level
