"""Simulate a trace store in one call, for notebooks and the `aimo` CLI alike.

    from aimo.simulator import api
    res = api.simulate("out/demo-synthetic.duckdb", policy="seed-2nd-place", bootstrap=1000)
    res.to_pandas()          # one row per replicate (or per question without bootstrap)

Bootstraps run on the numba fast path (`simulator.fast`, the reference's exact numbers per
seed); `reference=True` uses the reference replay (`simulator.replay`) instead. The hardware
profile defaults to the one bound to the store or matching the run's recorded hardware
(`simulator.profile_choice`); `SimulationResult.profile_reason` says which and why.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from aimo.core.hardware import HardwareProfile, load_profile
from aimo.simulator.profile_choice import ProfileChoice, profile_for_store
from aimo.simulator.replay.competition import DEFAULT_BUDGET_S
from aimo.simulator.replay.results import BootstrapSummary, CompetitionResult
from aimo.core.errors import InputError
from aimo.core.policy import Policy, load_policy
from aimo.core.traces import ProblemTrace

if TYPE_CHECKING:
    import pandas as pd

Progress = Callable[[int, int], None]  # (done, total) replicates
logger = logging.getLogger("aimo.simulator.api")


@dataclass(frozen=True, eq=False)
class SimulationResult:
    """One simulation: what was run (store, run, policy, profile and why) and its outcome.

    `mode` 'recorded': `competition` holds the one competition (recorded samples, recorded
    order). `mode` 'bootstrap': `summary` plus per-replicate `scores`, `times_s`, `overtime`.
    """

    traces: str
    run_id: str
    policy: str
    hardware: str
    profile_reason: str
    budget_s: float
    mode: Literal["recorded", "bootstrap"]
    seed: int | None
    engine: Literal["fast", "reference"]
    competition: CompetitionResult | None = None
    summary: BootstrapSummary | None = None
    scores: np.ndarray | None = None
    times_s: np.ndarray | None = None
    overtime: np.ndarray | None = None
    overtime_rule: str = "zero"

    def head(self) -> dict[str, Any]:
        """The fields every JSON document of `aimo simulate` starts with."""
        return {"traces": self.traces, "run_id": self.run_id, "policy": self.policy,
                "hardware": self.hardware, "budget_s": self.budget_s,
                "overtime_rule": self.overtime_rule}

    def to_json(self) -> dict[str, Any]:
        """The document `aimo simulate --json` prints (docs/simulate-json.md)."""
        from aimo.simulator.report import bootstrap_json, competition_json

        if self.mode == "recorded":
            assert self.competition is not None
            return {**self.head(), "mode": "recorded", **competition_json(self.competition)}
        assert self.summary is not None
        return {**self.head(), "mode": "bootstrap", "seed": self.seed,
                "bootstrap": bootstrap_json(self.summary)}

    def render(self) -> str:
        """The plain-text report `aimo simulate` prints."""
        from aimo.simulator.report import render_bootstrap, render_competition

        head = (f"policy {self.policy} on {self.traces} (run {self.run_id}), "
                f"hardware {self.hardware}")
        if self.mode == "recorded":
            assert self.competition is not None
            return head + "\n" + render_competition(self.competition)
        assert self.summary is not None
        return head + "\n" + render_bootstrap(self.summary)

    def to_pandas(self) -> pd.DataFrame:
        """Per question (recorded mode) or per replicate (bootstrap), with the run's labels."""
        import pandas as pd

        if self.mode == "recorded":
            from aimo.simulator.report import question_row

            assert self.competition is not None
            frame = pd.DataFrame([question_row(q) for q in self.competition.questions])
        else:
            assert self.scores is not None and self.times_s is not None
            frame = pd.DataFrame({
                "replicate": np.arange(len(self.scores)), "score": self.scores,
                "time_s": self.times_s, "overtime": self.overtime,
            })
        for col, value in (("policy", self.policy), ("hardware", self.hardware),
                           ("run_id", self.run_id)):
            frame[col] = value
        return frame

    def export(self, path: str | Path) -> Path:
        """Write `to_pandas()` as CSV or Parquet (by the file's suffix)."""
        return export_frame(self.to_pandas(), path)


def check_export_path(path: str | Path) -> Path:
    """`path` as an export target: InputError unless it ends in .csv or .parquet and its folder
    exists (checked before long work, and again when writing)."""
    p = Path(path)
    if p.suffix.lower() not in (".csv", ".parquet"):
        raise InputError(str(p), "--export", "the file must end in .csv or .parquet")
    if not p.parent.is_dir():
        raise InputError(str(p), "--export", f"no such directory: {p.parent}")
    return p


def export_frame(frame: pd.DataFrame, path: str | Path) -> Path:
    """Write a table as .csv or .parquet; a clear InputError for another suffix or no folder."""
    p = check_export_path(path)
    if p.suffix.lower() == ".csv":
        frame.to_csv(p, index=False)
    else:
        frame.to_parquet(p, index=False)
    return p


def resolve_profile(traces: str | Path, run_id: str,
                    hardware: str | HardwareProfile | None) -> tuple[HardwareProfile, ProfileChoice]:
    """The profile to simulate with: the one given, else the store's binding or matching profile."""
    if isinstance(hardware, HardwareProfile):
        return hardware, ProfileChoice(hardware.name, "given", True)
    if hardware:
        return load_profile(hardware), ProfileChoice(hardware, "given", True)
    choice = profile_for_store(traces, run_id)
    return load_profile(choice.name), choice


def bootstrap_arrays(problems: list[ProblemTrace], policy: Policy, profile: HardwareProfile, *,
                     replicates: int, seed: int, budget_s: float = DEFAULT_BUDGET_S,
                     reference: bool = False, progress: Progress | None = None,
                     overtime_rule: str = "zero", paired: bool = False,
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray, Literal["fast", "reference"]]:
    """Per replicate score, time and overtime: the fast path, or the reference when asked or when
    the fast path refuses the policy/traces (its limits: simulator.fast.FastSimulator)."""
    if not reference:
        try:
            from aimo.simulator.fast import FastSimulator
        except ImportError as exc:  # numba missing: a core install (`pip install .[sim]`)
            logger.warning("the compiled simulator is not installed (%s): bootstrapping on the "
                           "reference replay; install the [sim] extra for ~500x the speed", exc)
            return bootstrap_arrays(problems, policy, profile, replicates=replicates, seed=seed,
                                    budget_s=budget_s, reference=True, progress=progress,
                                    overtime_rule=overtime_rule, paired=paired)
        try:
            sim = FastSimulator(problems, profile)
            s, t, o = sim.bootstrap_arrays(policy, replicates=replicates, seed=seed,
                                           budget_s=budget_s, overtime_rule=overtime_rule,
                                           paired=paired)
            return s, t, o, "fast"  # one compiled call: no progress to report
        except ValueError as exc:
            if "fast path" not in str(exc):
                raise
            logger.warning("%s: bootstrapping on the reference replay instead (slower)", exc)
    from aimo.simulator.replay.competition import bootstrap_competitions, replay_competition

    done = [0]

    def counted(*args: Any, **kwargs: Any) -> CompetitionResult:
        result = replay_competition(*args, **kwargs)
        done[0] += 1
        if progress is not None:
            progress(done[0], replicates)
        return result

    results = bootstrap_competitions(problems, policy, profile, replicates=replicates, seed=seed,
                                     budget_s=budget_s, replay=counted,
                                     overtime_rule=overtime_rule, paired=paired)
    return (np.asarray([r.score for r in results], np.int64),
            np.asarray([r.total_time_s for r in results], np.float64),
            np.asarray([r.overtime for r in results], np.bool_), "reference")


def simulate(
    traces: str | Path,
    policy: str | Path | Policy = "seed-2nd-place",
    hardware: str | HardwareProfile | None = None,
    *,
    run: str | None = None,
    bootstrap: int = 0,
    seed: int = 0,
    budget_s: float = DEFAULT_BUDGET_S,
    reference: bool = False,
    progress: Progress | None = None,
    overtime_rule: str = "zero",
    allow_incomplete: bool = False,
    paired: bool = False,
) -> SimulationResult:
    """Replay a store's run under a policy: one competition (bootstrap=0) or N seeded replicates.

    Raises:
        InputError: a store, run, policy or profile that cannot be read (names file and field).
    """
    from aimo.core.budget import check_budget
    from aimo.core.scoring import check_overtime_rule
    from aimo.core.store import load_problem_traces

    check_overtime_rule(overtime_rule)
    budget_s = check_budget(budget_s)
    if bootstrap < 0:
        raise InputError("bootstrap", None, f"must be >= 0, got {bootstrap}")
    if seed < 0:  # numpy's generators refuse it deep inside the bootstrap
        raise InputError("seed", None, f"must be >= 0, got {seed}")
    pol = policy if isinstance(policy, Policy) else load_policy(policy)
    problems = load_problem_traces(traces, run, allow_incomplete=allow_incomplete)
    if not problems:
        raise InputError(str(traces), None, "no completed questions in the store")
    run_id = problems[0].run_id
    prof, choice = resolve_profile(traces, run_id, hardware)
    common: dict[str, Any] = dict(
        traces=str(traces), run_id=run_id, policy=pol.name, hardware=prof.name,
        profile_reason=choice.reason, budget_s=budget_s, overtime_rule=overtime_rule)
    if bootstrap == 0:
        from aimo.simulator.replay import replay_competition

        result = replay_competition(problems, pol, prof, budget_s=budget_s,
                                    overtime_rule=overtime_rule)
        return SimulationResult(**common, mode="recorded", seed=None, engine="reference",
                                competition=result)
    from aimo.simulator.fast import summarize_arrays

    s, t, o, engine = bootstrap_arrays(problems, pol, prof, replicates=bootstrap, seed=seed,
                                       budget_s=budget_s, reference=reference, progress=progress,
                                       overtime_rule=overtime_rule, paired=paired)
    return SimulationResult(**common, mode="bootstrap", seed=seed, engine=engine,
                            summary=summarize_arrays(s, t, o, len(problems)),
                            scores=s, times_s=t, overtime=o)


__all__ = ["SimulationResult", "bootstrap_arrays", "export_frame", "resolve_profile", "simulate"]
