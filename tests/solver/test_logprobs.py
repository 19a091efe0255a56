"""Token confidence and top-k entropy from per-token logprob dicts (solver.engines.logprobs)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from aimo.solver.engines.logprobs import LOGPROB_FLOOR, token_confidence


def _reference(step: dict, k: int) -> tuple[float, float]:
    """Straight from the definitions, one token at a time."""
    top = sorted((v for v in step.values() if math.isfinite(v)), reverse=True)[:k]
    if not top:
        return 0.0, 0.0
    top = [max(v, LOGPROB_FLOOR) for v in top]
    conf = -sum(top) / len(top)
    z = sum(math.exp(v) for v in top)
    p = [math.exp(v) / z for v in top]
    return conf, -sum(q * math.log(q) for q in p if q > 0)


def test_known_values() -> None:
    uniform = {j: math.log(0.25) for j in range(4)}
    conf, entropy = token_confidence([uniform, {7: 0.0}], top_k=4)
    assert conf.dtype == np.float32 and entropy.dtype == np.float32
    np.testing.assert_allclose(conf, [math.log(4), 0.0], rtol=1e-6)
    np.testing.assert_allclose(entropy, [math.log(4), 0.0], atol=1e-6)


def test_sampled_token_outside_the_top_k_is_left_out() -> None:
    # lmdeploy PyTorch: the sampled token first, then the top k (here k = 2)
    step = {99: -6.0, 1: -0.1, 2: -2.5}
    conf, entropy = token_confidence([step], top_k=2)
    assert conf[0] == pytest.approx((0.1 + 2.5) / 2)
    assert entropy[0] == pytest.approx(_reference({1: -0.1, 2: -2.5}, 2)[1], rel=1e-5)


def test_empty_none_non_finite_and_floor() -> None:
    steps = [None, {}, {1: float("-inf")}, {1: -1e9, 2: -0.5}, {1: float("nan"), 2: -1.0}]
    conf, entropy = token_confidence(steps, top_k=2)
    np.testing.assert_allclose(conf, [0, 0, 0, (1000 + 0.5) / 2, 1.0], rtol=1e-6)
    assert entropy[:3].tolist() == [0, 0, 0]
    assert entropy[4] == 0.0
    assert np.isfinite(conf).all() and np.isfinite(entropy).all()
    assert token_confidence([], 8)[0].shape == (0,)


def test_matches_the_definitions_on_random_dicts() -> None:
    rng = np.random.default_rng(3)
    steps = []
    for _ in range(300):
        n = int(rng.integers(1, 11))
        ids, values = rng.permutation(50)[:n], -rng.gamma(1, 3, n)
        steps.append({int(t): float(v) for t, v in zip(ids, values)})
    for k in (1, 3, 8):
        conf, entropy = token_confidence(steps, top_k=k)
        want = np.array([_reference(s, k) for s in steps])
        np.testing.assert_allclose(conf, want[:, 0], rtol=1e-5)
        np.testing.assert_allclose(entropy, want[:, 1], rtol=1e-4, atol=1e-6)
        assert (entropy <= math.log(k) + 1e-6).all()


def test_bad_k() -> None:
    with pytest.raises(ValueError):
        token_confidence([{1: 0.0}], top_k=0)
