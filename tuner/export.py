"""Export the chosen trial as a policy YAML the solver loads unchanged (`load_policy(path)`).

Why: the winner must leave the tuner as plain data, with its name saying where it came from,
validated exactly as any hand-written policy (we re-load the written file and compare hashes).
"""

from __future__ import annotations

from pathlib import Path

from aimo.core.errors import InputError
from aimo.core.policy import Policy, dump_policy, load_policy, policy_hash
from aimo.tuner.space import SearchSpace
from aimo.tuner.study import Choice


def policy_of(space: SearchSpace, choice: Choice, name: str) -> Policy:
    """The policy a selected trial stands for (fixed and inactive parameters filled in)."""
    return space.policy(space.values_of(choice.params), name=name)


def export_policy(policy: Policy, out: str | Path, *, overwrite: bool = False) -> Path:
    """Write `policy` to `out` as YAML and check that it loads back to the same policy.

    Raises:
        InputError: `out` exists and not `overwrite`, or the round trip changed the policy
            (a bug, reported rather than shipped).
    """
    path = dump_policy(policy, out, overwrite=overwrite)
    again = load_policy(path)
    if policy_hash(again) != policy_hash(policy):
        raise InputError(str(path), None, "exported policy does not load back identically")
    return path


def check_out(out: str | Path, *, overwrite: bool) -> Path:
    """Fail early (before hours of tuning) when `out` would be refused at the end."""
    path = Path(out)
    if path.exists() and not overwrite:
        raise InputError(str(path), "--out", "file exists; refusing to overwrite it (pass --force)")
    if path.is_dir():
        raise InputError(str(path), "--out", "is a directory; give a .yaml file path")
    return path


__all__ = ["check_out", "export_policy", "policy_of"]
