"""The competition's scoring rule, in one place for the simulator, the tuner, the dashboard and the
live solver: a run that passes its budget is killed and scores nothing.

`rule_score` takes what a run produced (correct answers in all, correct answers given by the
budget, whether it ran over) and returns its score under the chosen rule:
- `zero` (default, the competition's rule): an overtime run scores 0;
- `answered`: the answers given before the budget count (as if the notebook's answers so far
  were kept), the rest score nothing.
Reaching the policy's cutoff in time is not overtime: only a total past the budget is.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np

from aimo.core.errors import InputError

OvertimeRule = Literal["zero", "answered"]
OVERTIME_RULES: tuple[str, ...] = ("zero", "answered")


def check_overtime_rule(rule: str, where: str = "--overtime-scores") -> OvertimeRule:
    """The rule name, or InputError naming the allowed ones."""
    if rule not in OVERTIME_RULES:
        raise InputError(where, "overtime_scores", f"must be one of {', '.join(OVERTIME_RULES)} (got {rule!r})")
    return rule  # type: ignore[return-value]


def rule_score(correct: Any, correct_in_budget: Any, overtime: Any, rule: str = "zero") -> Any:
    """Score(s) under `rule`: scalars give an int, arrays (per replicate) an int64 array."""
    check_overtime_rule(rule)
    if rule == "answered":
        out = np.asarray(correct_in_budget, dtype=np.int64)
    else:
        out = np.where(np.asarray(overtime, dtype=bool), 0, np.asarray(correct, dtype=np.int64))
    return int(out) if out.ndim == 0 else out.astype(np.int64)


__all__ = ["OVERTIME_RULES", "OvertimeRule", "check_overtime_rule", "rule_score"]
