"""How the fidelity tests compare a simulated competition with a live one (tests/test_fidelity*.py).

Per question: the speed level, the answer, the stop reason, every sample's end, tokens and final
answers must be equal; question and sample times must agree within `TIME_TOLERANCE`.
"""

from __future__ import annotations

import dataclasses
import math

from aimo.core.policy import Policy, load_policy

TIME_TOLERANCE = 0.02


def close(a: float, b: float) -> bool:
    """Equal within `TIME_TOLERANCE` (relative), NaN only with NaN."""
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return abs(a - b) <= TIME_TOLERANCE * max(abs(a), 1e-9)


def compare(sim, live) -> list[str]:
    """Every disagreement between a simulated and a live competition, as readable lines."""
    problems: list[str] = []
    assert len(sim.questions) == len(live.questions)
    for a, b in zip(sim.questions, live.questions):
        where = f"{a.problem_id} (#{a.order})"
        for name in ("problem_id", "order", "level", "answer", "truth", "stop_reason"):
            if getattr(a, name) != getattr(b, name):
                problems.append(f"{where}: {name} simulator {getattr(a, name)!r} live {getattr(b, name)!r}")
        if not close(a.time_s, b.time_s) or not close(a.start_s, b.start_s):
            problems.append(f"{where}: time simulator {a.start_s:.3f}+{a.time_s:.3f} live {b.start_s:.3f}+{b.time_s:.3f}")
        if len(a.samples) != len(b.samples):
            problems.append(f"{where}: {len(a.samples)} vs {len(b.samples)} samples")
            continue
        for x, y in zip(a.samples, b.samples):
            same = [getattr(x, f) == getattr(y, f) for f in
                    ("index", "source_sample", "kind", "end", "tokens", "boxed", "code")]
            if not all(same) or not close(x.start_s, y.start_s) or not close(x.end_s, y.end_s):
                problems.append(f"{where}: sample simulator {x} live {y}")
    return problems


def max_time_error(sim, live) -> float:
    """The largest relative question-time difference."""
    errors = [abs(b.time_s - a.time_s) / a.time_s for a, b in zip(sim.questions, live.questions) if a.time_s > 0]
    return max(errors, default=0.0)


def variant(name: str, base: str, **changes) -> Policy:
    """Preset `base` renamed, with `changes` as {section: {field: value}} replacing fields."""
    policy = load_policy(base)
    return dataclasses.replace(policy, name=name, **{
        key: dataclasses.replace(getattr(policy, key), **value) for key, value in changes.items()})
