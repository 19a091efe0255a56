"""The objective: a policy's bootstrap score on a set of problems, with the overtime constraint.

Why: a trial's value is the expected score of a 50-question competition drawn from the problems
it may see (a fold's train problems, or all of them for the final study), estimated with seeded
bootstrap replicates on the fast simulator. Every trial of one study uses the same draws (common
random numbers), so differences between policies are not drowned in draw noise. The probability
of running out of time goes to the sampler as a constraint (`constraints_func`, read from the
trial's user attributes): feasible iff P(overtime) ≤ max_overtime.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import numpy as np

from aimo.core.hardware import HardwareProfile
from aimo.simulator.replay import BootstrapSummary, bootstrap_competitions, summarize
from aimo.simulator.replay.competition import DEFAULT_BUDGET_S
from aimo.core.errors import InputError
from aimo.core.policy import Policy, policy_hash
from aimo.core.traces import ProblemTrace
from aimo.tuner.space import SearchSpace

Select = Literal["mean", "lcb"]
Z_LCB = 1.645  # one-sided 95% normal quantile
COMPETITION_QUESTIONS = 50


class Evaluator(Protocol):
    """Scores a policy by bootstrap replicates; same draws for the same seed (both paths)."""

    def bootstrap(
        self, policy: Policy, *, replicates: int, seed: int, n_questions: int | None = None,
        budget_s: float = DEFAULT_BUDGET_S, problem_subset: Sequence[int] | None = None,
        overtime_rule: str = "zero",
        paired: bool = False,
    ) -> BootstrapSummary: ...


class ReferenceEvaluator:
    """The reference event-driven replay behind the `Evaluator` interface (slow; a fallback)."""

    def __init__(self, problems: Sequence[ProblemTrace], profile: HardwareProfile) -> None:
        self.problems = tuple(problems)
        self.profile = profile

    def bootstrap(
        self, policy: Policy, *, replicates: int, seed: int, n_questions: int | None = None,
        budget_s: float = DEFAULT_BUDGET_S, problem_subset: Sequence[int] | None = None,
        overtime_rule: str = "zero",
        paired: bool = False,
    ) -> BootstrapSummary:
        chosen = (self.problems if problem_subset is None
                  else [self.problems[i] for i in problem_subset])
        return summarize(bootstrap_competitions(
            chosen, policy, self.profile, replicates=replicates, seed=seed,
            n_questions=n_questions, budget_s=budget_s, overtime_rule=overtime_rule,
            paired=paired,
        ))


def make_evaluator(
    problems: Sequence[ProblemTrace], profile: HardwareProfile, *, fast: bool = True
) -> Evaluator:
    """The fast simulator when importable (and `fast`), else the reference path."""
    if fast:
        try:
            from aimo.simulator.fast import FastSimulator
        except ImportError:  # pragma: no cover - the fast path ships with the project
            pass
        else:
            return FastSimulator(problems, profile)
    return ReferenceEvaluator(problems, profile)


def derive_seed(seed: int, *keys: int) -> int:
    """A 32-bit seed for one role (tuning draws, test draws, a worker's sampler) of a run."""
    return int(np.random.SeedSequence(entropy=seed, spawn_key=tuple(keys)).generate_state(1)[0])


@dataclass(frozen=True)
class Metrics:
    """What a bootstrap says about one policy on one set of problems."""

    mean_score: float
    score_lo: float  # 5th percentile of the competition score
    score_hi: float  # 95th percentile
    score_sd: float
    lcb: float  # mean − 1.645·sd/√replicates: one-sided 95% lower bound on the expected score
    mean_time_s: float
    p_overtime: float
    replicates: int

    @classmethod
    def from_summary(cls, s: BootstrapSummary) -> Metrics:
        scores = np.asarray(s.scores, dtype=float)
        sd = float(scores.std(ddof=1)) if len(scores) > 1 else 0.0
        return cls(
            mean_score=s.mean_score, score_lo=s.score_lo, score_hi=s.score_hi, score_sd=sd,
            lcb=s.mean_score - Z_LCB * sd / math.sqrt(max(1, s.replicates)),
            mean_time_s=s.mean_time_s, p_overtime=s.p_overtime, replicates=s.replicates,
        )

    def value(self, select: Select) -> float:
        """The number selection maximises: the mean score or its lower confidence bound."""
        return self.lcb if select == "lcb" else self.mean_score

    def attrs(self) -> dict[str, float]:
        """As trial user attributes (plain floats)."""
        return {
            "score_mean": self.mean_score, "score_lo": self.score_lo, "score_hi": self.score_hi,
            "score_sd": self.score_sd, "score_lcb": self.lcb, "mean_time_s": self.mean_time_s,
            "p_overtime": self.p_overtime, "replicates": self.replicates,
        }

    @classmethod
    def from_attrs(cls, attrs: dict[str, Any]) -> Metrics:
        return cls(
            mean_score=attrs["score_mean"], score_lo=attrs["score_lo"], score_hi=attrs["score_hi"],
            score_sd=attrs["score_sd"], lcb=attrs["score_lcb"], mean_time_s=attrs["mean_time_s"],
            p_overtime=attrs["p_overtime"], replicates=int(attrs["replicates"]),
        )


@dataclass(frozen=True)
class ObjectiveSpec:
    """How one study scores a trial: which problems, how many replicates, which draws."""

    subset: tuple[int, ...]  # indices into the store's problems
    replicates: int
    seed: int  # bootstrap seed shared by every trial of the study
    n_questions: int = COMPETITION_QUESTIONS
    budget_s: float = DEFAULT_BUDGET_S
    overtime_rule: str = "zero"  # how an overtime competition scores (core.scoring)
    select: Select = "mean"
    max_overtime: float = 0.05
    multi_objective: bool = False
    fold: int | None = None  # None: the final study on all problems
    paired: bool = False  # replicates in pairs serving the same questions (AIMO-3 scoring)


def evaluate(evaluator: Evaluator, policy: Policy, spec: ObjectiveSpec) -> BootstrapSummary:
    """Bootstrap `policy` on the spec's problems with the spec's draws."""
    return evaluator.bootstrap(
        policy, replicates=spec.replicates, seed=spec.seed, n_questions=spec.n_questions,
        budget_s=spec.budget_s, problem_subset=list(spec.subset), overtime_rule=spec.overtime_rule,
        paired=spec.paired,
    )


class TrialObjective:
    """The callable `study.optimize` runs: suggest → build → simulate → user attrs → value(s).

    A combination that still fails validation after the space's repairs is pruned (user attr
    `invalid` says why). Results are cached per policy hash: TPE often re-suggests a policy
    it has seen (discrete dimensions), and the draws are the same, so the answer is too.
    Not thread-safe (the cache); one instance per worker process.
    """

    def __init__(
        self, space: SearchSpace, evaluator: Evaluator, spec: ObjectiveSpec, *,
        sampler_seconds: Callable[[int], float] | None = None, worker: str | None = None,
    ) -> None:
        self.worker = worker
        self.space = space
        self.evaluator = evaluator
        self.spec = spec
        self.sampler_seconds = sampler_seconds
        self._cache: dict[str, Metrics] = {}

    def __call__(self, trial: Any) -> float | tuple[float, float]:
        import optuna

        values = self.space.suggest(trial)
        try:
            policy = self.space.policy(values, name=f"trial-{trial.number}")
        except InputError as exc:
            trial.set_user_attr("invalid", str(exc))
            _constrain(trial, 1.0)
            raise optuna.TrialPruned(str(exc)) from None
        key = policy_hash(policy)
        t0 = time.thread_time()  # CPU seconds: robust to other processes sharing the cores
        metrics = self._cache.get(key)
        if metrics is None:
            metrics = Metrics.from_summary(evaluate(self.evaluator, policy, self.spec))
            self._cache[key] = metrics
        sim_s = time.thread_time() - t0
        attrs: dict[str, Any] = {"policy_hash": key, "fold": self.spec.fold, **metrics.attrs(),
                                 "sim_s": sim_s, "worker": self.worker}
        if self.sampler_seconds is not None:
            attrs["sampler_s"] = self.sampler_seconds(trial.number)
        for name, v in attrs.items():
            trial.set_user_attr(name, v)
        _constrain(trial, metrics.p_overtime - self.spec.max_overtime)
        value = metrics.value(self.spec.select)
        if self.spec.multi_objective:
            return value, metrics.mean_time_s
        return value


def _constrain(trial: Any, value: float) -> None:
    """Optuna ≥ 5 keeps constraints on the trial (`set_constraint`, which samplers read);
    older versions read the user attribute `constraint` through `constraints_func`."""
    if hasattr(trial, "set_constraint"):
        trial.set_constraint("overtime", value)
    else:  # pragma: no cover - optuna < 5
        trial.set_user_attr("constraint", [value])


def constraints_func(trial: Any) -> Sequence[float]:
    """Optuna constraint (≤ 0 is feasible): P(overtime) − max_overtime; unscored trials infeasible."""
    return tuple(trial.user_attrs.get("constraint", (1.0,)))


__all__ = [
    "COMPETITION_QUESTIONS", "Evaluator", "Metrics", "ObjectiveSpec", "ReferenceEvaluator",
    "Select", "TrialObjective", "Z_LCB", "constraints_func", "derive_seed", "evaluate",
    "make_evaluator",
]
