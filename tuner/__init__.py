"""Policy tuning: an Optuna search space over the policy language, a held-out (nested
cross-validated) objective on the fast simulator, studies in journal or RDB storage, export.

Public API (imported lazily, so `import tuner` does not import Optuna):
`run_tune`, `run_demo_tune` (the CLI's entry points), `load_space`, `default_space`,
`SearchSpace`, `make_evaluator`, `load_study_summary`. See docs/tuner.md.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "run_tune": "tuner.cli_impl",
    "run_demo_tune": "tuner.cli_impl",
    "TuneResult": "tuner.cli_impl",
    "load_space": "tuner.space",
    "default_space": "tuner.space",
    "SearchSpace": "tuner.space",
    "make_evaluator": "tuner.objective",
    "Metrics": "tuner.objective",
    "load_study_summary": "tuner.study",
    "StudySummary": "tuner.study",
    "export_policy": "tuner.export",
}

__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'tuner' has no attribute {name!r}")
