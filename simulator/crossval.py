"""K-fold splits by problem, deterministic per seed, so tuned policies are scored held-out."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from aimo.core.draws import fold_permutation


@dataclass(frozen=True)
class Fold:
    """One split: tune on `train`, score on `test` (problem ids)."""

    index: int
    train: tuple[str, ...]
    test: tuple[str, ...]


def kfold_by_problem(problem_ids: Sequence[str], k: int, *, seed: int) -> tuple[Fold, ...]:
    """Split problems into `k` disjoint test folds of near-equal size (each problem held out once)."""
    ids = list(dict.fromkeys(problem_ids))
    if not 2 <= k <= len(ids):
        raise ValueError(f"k must be in 2..{len(ids)} (number of problems), got {k}")
    perm = fold_permutation(len(ids), seed)
    parts = np.array_split(perm, k)
    folds = []
    for i, part in enumerate(parts):
        test = {ids[j] for j in part}
        folds.append(
            Fold(
                index=i,
                train=tuple(p for p in ids if p not in test),
                test=tuple(p for p in ids if p in test),
            )
        )
    return tuple(folds)
