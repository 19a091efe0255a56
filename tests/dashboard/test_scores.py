"""The dashboard's scores follow the competition's rule and its budget is checked: the data layer
refuses a budget that is not a finite number of seconds > 0 (the page shows the message), and
scores an overtime run 0 unless the answered rule is picked."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from aimo.dashboard import loaders, simulation
from aimo.core.errors import InputError
from aimo.core.policy import load_policy, policy_to_yaml

RUN = "synthetic-r1-14b-s1"
PROFILE = "l4x4-14b-w4kv8"


@pytest.mark.parametrize("budget", [0.0, -1.0, math.nan, math.inf])
@pytest.mark.parametrize("fast", [False, True])
def test_bad_budgets_are_refused(store: Path, budget: float, fast: bool) -> None:
    yaml = policy_to_yaml(load_policy("seed-2nd-place"))
    version = loaders.store_version(store)
    with pytest.raises(InputError, match="budget_s"):
        simulation.competition(str(store), RUN, version, yaml, PROFILE, 4, None, budget, fast)
    with pytest.raises(InputError, match="budget_s"):
        simulation.bootstrap(str(store), RUN, version, yaml, PROFILE, 4, 2, 0, budget, fast)


def test_overtime_run_scores_by_the_rule(store: Path) -> None:
    yaml = policy_to_yaml(load_policy("seed-2nd-place"))
    version = loaders.store_version(store)
    # a budget shorter than the engine's start-up (90 s): every run passes it
    zero = simulation.competition(str(store), RUN, version, yaml, PROFILE, 4, None, 60.0, True)
    kept = simulation.competition(str(store), RUN, version, yaml, PROFILE, 4, None, 60.0, True, "answered")
    assert zero.overtime and zero.score == 0 and kept.score == kept.n_correct_in_budget == 0
    boot = simulation.bootstrap(str(store), RUN, version, yaml, PROFILE, 4, 3, 0, 60.0, True)
    assert boot.p_overtime == 1.0 and boot.mean_score == 0.0
    fine = simulation.competition(str(store), RUN, version, yaml, PROFILE, 4, None, 18000.0, True)
    assert not fine.overtime and fine.score == fine.n_correct
