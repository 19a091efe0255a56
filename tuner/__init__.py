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
    "run_tune": "aimo.tuner.cli_impl",
    "run_demo_tune": "aimo.tuner.cli_impl",
    "TuneResult": "aimo.tuner.cli_impl",
    "load_space": "aimo.tuner.space",
    "default_space": "aimo.tuner.space",
    "SearchSpace": "aimo.tuner.space",
    "make_evaluator": "aimo.tuner.objective",
    "Metrics": "aimo.tuner.objective",
    "load_study_summary": "aimo.tuner.study",
    "StudySummary": "aimo.tuner.study",
    "export_policy": "aimo.tuner.export",
}

__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'tuner' has no attribute {name!r}")
