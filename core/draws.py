"""Which recorded samples fill a question's slots: recorded order (deterministic) or seeded draws.

A *draw* fixes, per problem and prompt kind, the order in which recorded samples are taken; the
speed level then takes the first n of each kind it needs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from core.traces import ProblemTrace, SampleTrace


@dataclass(frozen=True)
class SampleDraw:
    """Per kind, the recorded samples of one problem in the order they will be used."""

    cot: tuple[SampleTrace, ...]
    code: tuple[SampleTrace, ...]

    def take(self, kinds: Sequence[str]) -> tuple[SampleTrace, ...]:
        """Samples for slots of the given kinds; a kind with too few recordings is reused cyclically,
        and a kind with none falls back to the other kind."""
        pools = {"cot": self.cot or self.code, "code": self.code or self.cot}
        used = {"cot": 0, "code": 0}
        out = []
        for kind in kinds:
            pool = pools[kind]
            if not pool:
                raise ValueError("problem has no recorded samples")
            out.append(pool[used[kind] % len(pool)])
            used[kind] += 1
        return tuple(out)


def recorded_draw(problem: ProblemTrace) -> SampleDraw:
    """The deterministic draw: the first recorded samples of each kind, in recorded order."""
    return SampleDraw(cot=problem.of_kind("cot"), code=problem.of_kind("code"))


def random_draw(problem: ProblemTrace, rng: np.random.Generator) -> SampleDraw:
    """A seeded draw without replacement within each kind (a bootstrap replicate's sample choice)."""
    cot, code = problem.of_kind("cot"), problem.of_kind("code")
    return SampleDraw(
        cot=tuple(cot[i] for i in rng.permutation(len(cot))),
        code=tuple(code[i] for i in rng.permutation(len(code))),
    )


def competition_draws(problems: Sequence[ProblemTrace], seed: int | None) -> list[SampleDraw]:
    """The draws of a competition served in the given order: recorded order when `seed` is None,
    else one `random_draw` per problem from `np.random.default_rng(seed)`, in serving order.

    One definition shared by `aimo simulate`-style replays, the hardware-in-the-loop engine
    (`solver.engines.hil`) and `aimo validate`, so the same store, policy and seed pick the same
    recorded samples live and simulated."""
    if seed is None:
        return [recorded_draw(p) for p in problems]
    rng = np.random.default_rng(seed)
    return [random_draw(p, rng) for p in problems]
