"""Self-consistency of a recording: fit a hardware profile to the recording's own chunk
timestamps, replay the recorded run with every sample running to its recorded end, and compare
per-sample finish times (median and p90 relative error).

    python bench/self_consistency.py --traces data/traces/gpu-smoke.duckdb --run gpu-smoke
"""

from __future__ import annotations

import argparse
import dataclasses
import platform

import numpy as np

from aimo.core.hardware import fit_profile, read_chunks
from aimo.simulator.replay import replay_question
from aimo.core.policy import Policy, SpeedLevel, load_policy
from aimo.core.store import load_problem_traces
from aimo.core.traces import ProblemTrace


def run_everything_policy(max_tokens: int, n_samples: int) -> tuple[Policy, SpeedLevel]:
    """A policy that never stops a sample or a question: the recorder's own behaviour."""
    base = load_policy("majority-n")
    gen = dataclasses.replace(base.generation, max_new_tokens=max(max_tokens, 1))
    stop = dataclasses.replace(base.sample_stop, max_tokens=max(max_tokens, 1))
    level = SpeedLevel(name="all", samples=n_samples, min_answers=n_samples + 1, timeout_s=1e9)
    schedule = dataclasses.replace(base.schedule, levels=(level,), start_level=1, thresholds_s=())
    policy = dataclasses.replace(base, generation=gen, sample_stop=stop, schedule=schedule)
    return policy, level


def finish_time_errors(problems: list[ProblemTrace], profile) -> np.ndarray:
    """Relative errors |simulated/recorded − 1| of every sample's finish time."""
    errors = []
    for p in problems:
        policy, level = run_everything_policy(max(s.n_tokens for s in p.samples), len(p.samples))
        result = replay_question(list(p.samples), policy, level, profile)
        for trace, outcome in zip(p.samples, result.samples):
            if np.isfinite(trace.end_s) and trace.end_s > 0:
                errors.append(abs(outcome.end_s / trace.end_s - 1.0))
    return np.asarray(errors)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--traces", required=True)
    ap.add_argument("--run", default=None)
    args = ap.parse_args()
    print(f"machine: {platform.platform()}, {platform.processor() or platform.machine()}")
    chunks = read_chunks(args.traces, run_id=args.run)
    fit = fit_profile(chunks, name="self-fit", source=f"{args.traces}:{args.run}")
    problems = load_problem_traces(args.traces, args.run)
    # First-token latency (prefill + queueing) from the recording itself, per prompt token.
    first = chunks.sort_values("t_s").groupby(["problem_id", "sample_idx"])["t_s"].first()
    prompt_total = np.mean([sum(s.prompt_tokens for s in p.samples) for p in problems])
    prefill = float(np.median(first)) / max(prompt_total, 1.0)
    profile = dataclasses.replace(fit.profile, prefill_s_per_token=prefill)
    print(fit.render())
    print(f"prefill from first-chunk latency: {prefill:.3g} s/prompt token")
    err = finish_time_errors(problems, profile)
    print(f"{len(err)} samples in {len(problems)} questions: per-sample finish time error "
          f"median {np.median(err):.1%}, p90 {np.percentile(err, 90):.1%}, max {err.max():.1%}")


if __name__ == "__main__":
    main()
