"""AIMO-3 scoring of paired replicates."""

from __future__ import annotations

import pytest

from aimo.simulator.aimo3 import aimo3_scores, aimo3_summary, render_aimo3


def test_pairs_score_half_a_point_per_run() -> None:
    # pair 1: runs of 40 and 44 right → 42; pair 2: 45 and 45 → 45
    assert list(aimo3_scores([40, 44, 45, 45])) == [42.0, 45.0]
    s = aimo3_summary([40, 44, 45, 45, 44, 43], target=44)
    assert s.pairs == 3 and s.scores == (42.0, 45.0, 43.5)
    assert s.mean == pytest.approx(43.5) and s.p_at_least == pytest.approx(1 / 3)
    assert "P(score ≥ 44)" in render_aimo3(s)


@pytest.mark.parametrize("scores", [[], [40], [40, 41, 42]])
def test_unpaired_replicates_are_refused(scores: list[int]) -> None:
    with pytest.raises(ValueError, match="even number"):
        aimo3_scores(scores)
