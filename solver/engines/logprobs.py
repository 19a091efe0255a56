"""Per-token confidence from an engine's top-k logprobs: DeepConf's token confidence and the
entropy of the top-k distribution, one value per generated token.

Why here: the lmdeploy adapter hands each chunk's raw `{token_id: logprob}` dicts through
(`Chunk.logprobs`), and the recorder, the live solver's recording and tests turn them into the
stored arrays with this one definition.

Per token i with the k largest finite logprobs l_1..l_k (fewer when the engine gave fewer):
- token confidence C_i = −mean(l_1..l_k) (Fu et al. 2025, "Deep Think with Confidence"; ≥ 0,
  higher = more confident: a peaked distribution leaves the other candidates far below 0);
- entropy H_i = −Σ p_j ln p_j of p_j = exp(l_j) / Σ exp(l), the top-k renormalised (0..ln k).
lmdeploy's PyTorch engine puts the sampled token first and then the top k (k + 1 entries when the
sampled token is not among them); TurboMind gives the top n ≤ k kept candidates and the sampled
token when it is not among them. Taking the k largest values is right for both: a sampled token
outside the top k is smaller than all of them.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence

import numpy as np

DEFAULT_TOP_K = 8
# Logprobs below this count as this (e.g. masked logits of -1e9): keeps C_i within float16's range
# for the store; exp(-1000) is 0 in every float type, so the entropy does not change.
LOGPROB_FLOOR = -1000.0


def token_confidence(
    steps: Sequence[Mapping[int, float] | None], top_k: int = DEFAULT_TOP_K
) -> tuple[np.ndarray, np.ndarray]:
    """(token_conf, token_entropy) as float32 arrays of len(steps) from per-token logprob dicts.

    Non-finite logprobs are ignored, those below LOGPROB_FLOOR count as the floor; a token
    without any (None or an empty dict) gets 0 and 0.

    Raises:
        ValueError: `top_k` < 1.
    """
    if top_k < 1:
        raise ValueError(f"top_k must be >= 1, got {top_k}")
    n = len(steps)
    if n == 0:
        return np.zeros(0, np.float32), np.zeros(0, np.float32)
    counts = np.fromiter((len(d) if d else 0 for d in steps), np.int64, n)
    width = int(counts.max()) if n else 0
    if width == 0:
        return np.zeros(n, np.float32), np.zeros(n, np.float32)
    values = np.fromiter(
        itertools.chain.from_iterable(d.values() for d in steps if d),
        np.float64,
        int(counts.sum()),
    )
    values[~np.isfinite(values)] = -np.inf
    np.maximum(values, LOGPROB_FLOOR, out=values, where=np.isfinite(values))
    grid = np.full((n, width), -np.inf)
    starts = np.cumsum(counts) - counts
    rows = np.repeat(np.arange(n), counts)
    grid[rows, np.arange(values.size) - np.repeat(starts, counts)] = values
    grid = -np.sort(-grid, axis=1)[:, :top_k]  # the k largest, descending
    valid = np.isfinite(grid)
    kept = valid.sum(axis=1)
    total = np.where(valid, grid, 0.0).sum(axis=1)
    conf = np.where(kept > 0, -total / np.maximum(kept, 1), 0.0)
    top = np.where(kept > 0, grid[:, 0], 0.0)
    weights = np.where(valid, np.exp(np.where(valid, grid, 0.0) - top[:, None]), 0.0)
    mass = weights.sum(axis=1, keepdims=True)
    p = weights / np.where(mass > 0, mass, 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        plogp = np.where(p > 0, p * np.log(p), 0.0)
    entropy = np.maximum(-plogp.sum(axis=1), 0.0)
    return conf.astype(np.float32), entropy.astype(np.float32)
