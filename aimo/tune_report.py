"""`aimo tune`'s result as JSON and as a table: the held-out rows, the chosen trials, the output."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

    from aimo.tuner.cli_impl import TuneResult


def tune_json(result: TuneResult, *, traces: str, hardware: str) -> dict[str, Any]:
    """The document `aimo tune --json` prints (fields: docs/tuner.md)."""
    return {
        "traces": traces,
        "hardware": hardware,
        "storage": result.storage,
        "study": result.study,
        "policy": result.policy_name,
        "out": str(result.out),
        "rows": [r.as_dict() for r in result.rows],
        "final": {"trial": result.final.number, "feasible": result.final.feasible,
                  "params": result.final.params, **result.final.metrics.attrs()},
        "folds": [{"study": c.study, "trial": c.number, "feasible": c.feasible,
                   "train": c.metrics.attrs()} for c in result.fold_choices],
        "elapsed_s": round(result.elapsed_s, 3),
        "tuning_s": round(result.tuning_s, 3),
    }


def tune_frame(result: TuneResult) -> pd.DataFrame:
    """The held-out table, one row per policy (fold means as fold_1..fold_K, the paired
    difference to the seed as delta_vs_seed with its 90% interval delta_lo..delta_hi)."""
    import pandas as pd

    rows = []
    for r in result.rows:
        d: dict[str, Any] = r.as_dict()
        means = d.pop("fold_means", None) or []
        d.update({f"fold_{i + 1}": m for i, m in enumerate(means)})
        delta = d.pop("delta", None)
        d.update(dict(zip(("delta_vs_seed", "delta_lo", "delta_hi"), delta or (None,) * 3)))
        rows.append(d)
    return pd.DataFrame(rows)
