"""Every seeded draw of the project, defined once: which recorded samples fill a question's
slots, which questions a bootstrap competition serves in which order, and the folds of a
cross-validation.

A *sample draw* fixes, per problem and prompt kind, the order in which recorded samples are
taken; the speed level then takes the first n of each kind it needs. A *replicate draw* (one
bootstrap competition) takes, from one `np.random.Generator`, the question order
(`question_order`) and then one sample draw per served question (`random_draw`), in serving
order. The reference replay (`simulator.replay.competition`), the replay and
hardware-in-the-loop engines, `aimo validate` and the dashboard call these functions; the numba
fast path steps the same PCG64 numbers in its kernel (`simulator.fast.kernel._shuffle`,
`_bounded`: a compiled mirror kept for speed, pinned bit for bit by
tests/simulator/test_fast_path.py's bootstrap tests).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from aimo.core.errors import InputError
from aimo.core.traces import ProblemTrace, SampleTrace


class NoRecordedSamples(InputError, ValueError):
    """A served problem has no recorded sample of any kind (an `InputError` naming the problem;
    also a `ValueError`, which the simulator's callers catch)."""

    def __init__(self, problem: ProblemTrace) -> None:
        super().__init__(problem.run_id, f"problem {problem.problem_id}", "no recorded samples")


@dataclass(frozen=True)
class SampleDraw:
    """Per kind, the recorded samples of one problem in the order they will be used."""

    cot: tuple[SampleTrace, ...]
    code: tuple[SampleTrace, ...]

    problem: ProblemTrace | None = field(default=None, compare=False, repr=False)  # for errors

    def take(self, kinds: Sequence[str]) -> tuple[SampleTrace, ...]:
        """Samples for slots of the given kinds; a kind with too few recordings is reused cyclically,
        and a kind with none falls back to the other kind.

        Raises:
            NoRecordedSamples: the problem has no recorded sample at all."""
        pools = {"cot": self.cot or self.code, "code": self.code or self.cot}
        used = {"cot": 0, "code": 0}
        out = []
        for kind in kinds:
            pool = pools[kind]
            if not pool:
                if self.problem is not None:
                    raise NoRecordedSamples(self.problem)
                raise ValueError("problem has no recorded samples")
            out.append(pool[used[kind] % len(pool)])
            used[kind] += 1
        return tuple(out)


def recorded_draw(problem: ProblemTrace) -> SampleDraw:
    """The deterministic draw: the first recorded samples of each kind, in recorded order."""
    return SampleDraw(cot=problem.of_kind("cot"), code=problem.of_kind("code"), problem=problem)


def random_draw(problem: ProblemTrace, rng: np.random.Generator) -> SampleDraw:
    """A seeded draw without replacement within each kind (a bootstrap replicate's sample choice)."""
    cot, code = problem.of_kind("cot"), problem.of_kind("code")
    return SampleDraw(
        cot=tuple(cot[i] for i in rng.permutation(len(cot))),
        code=tuple(code[i] for i in rng.permutation(len(code))),
        problem=problem,
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


def question_order(rng: np.random.Generator, n_problems: int, n_questions: int) -> list[int]:
    """The problems (indices) one bootstrap competition serves, in order: a permutation of all
    of them when `n_questions == n_problems`, else `n_questions` drawn with replacement."""
    if n_questions == n_problems:
        return [int(i) for i in rng.permutation(n_problems)]
    return [int(i) for i in rng.integers(0, n_problems, size=n_questions)]


def replicate_draw(problems: Sequence[ProblemTrace], rng: np.random.Generator,
                   n_questions: int | None = None, order: Sequence[int] | None = None
                   ) -> tuple[list[int], list[SampleDraw]]:
    """One bootstrap competition's draw: the question order (`question_order`, unless `order`
    is given: a paired replicate serves its partner's questions) and one `random_draw` per
    served problem, in serving order, all from `rng`."""
    n = len(problems) if n_questions is None else n_questions
    idx = question_order(rng, len(problems), n) if order is None else [int(i) for i in order]
    return idx, [random_draw(problems[i], rng) for i in idx]


def fold_permutation(n: int, seed: int) -> np.ndarray:
    """The order in which `n` problems are dealt into cross-validation folds."""
    return np.random.default_rng(seed).permutation(n)
