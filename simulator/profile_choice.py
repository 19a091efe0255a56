"""Which hardware profile a run's replay should use: the one bound to the store, else the bundled
profile that matches the run's recorded hardware, model and quantization, else the default.

A store remembers a binding in its optional `profile_bindings` table (created by
`aimo profile bind`, not part of the required schema: see docs/schema.md). Every choice carries
the reason, so the CLI can print it and the dashboard can preselect it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from aimo.core.hardware import HardwareProfile, list_profiles, load_profile
from aimo.core.errors import InputError

DEFAULT_PROFILE = "l4x4-14b-w4kv8"
STORE_WIDE = "*"  # run_id of a binding that holds for every run of the store
NO_RUN = "no run information: the default profile"  # the reason when the run is not known

_GPUS = ("l4", "t4", "a10g", "a10", "a100", "h100", "h200", "b200", "v100", "l40s", "l40")
_GPU_RE = re.compile(r"(?:(\d+)\s*x\s*)?(?:nvidia\s+)?(" + "|".join(_GPUS) + r")(?![a-z0-9])")
_BITS_RE = re.compile(r"(?:w|awq-w)(\d+)|kv(\d+)|fp(16)|bf(16)")
_MODEL_WORDS = re.compile(r"[a-z0-9]+")
_GENERIC = {"awq", "model", "models", "data", "tmp", "qwen2", "synthetic", "instruct", "distill",
            "w4", "kv8", "kv16", "w4kv8", "w4kv16", "fp16", "fit", "gptq", "hf"}


@dataclass(frozen=True)
class RunHardware:
    """What a run says about where it was made (RunInfo/RunSummary's fields)."""

    run_id: str
    hardware: str | None
    model: str | None
    quantization: str | None


@dataclass(frozen=True)
class ProfileChoice:
    """The profile to use and why; `matched` is False when nothing about the run decided it."""

    name: str
    reason: str
    matched: bool


def _gpu(text: str) -> tuple[str | None, int | None]:
    """(GPU family, count) named in a free-text hardware description, e.g. '4xL4 (TP4)'."""
    m = _GPU_RE.search(re.sub(r"(\d)x(?=[a-z])", r"\1x ", text.lower()))
    if m is None:
        return None, None
    return m.group(2), int(m.group(1)) if m.group(1) else None


def _bits(text: str) -> tuple[int | None, int | None]:
    """(weight bits, KV-cache bits) from e.g. 'awq-w4/kv8', 'w4kv16', 'fp16'."""
    w = kv = None
    for m in _BITS_RE.finditer(text.lower()):
        if m.group(1):
            w = int(m.group(1))
        elif m.group(2):
            kv = int(m.group(2))
        else:
            w = kv = 16
    return w, kv


def _words(text: str) -> set[str]:
    return {w for w in _MODEL_WORDS.findall(text.lower()) if w not in _GENERIC and len(w) > 1}


def score_profile(run: RunHardware, prof: HardwareProfile) -> float:
    """How well a profile fits a run (higher is better; below 1 means the GPU does not match)."""
    r_gpu, r_n = _gpu(run.hardware or "")
    p_gpu, p_n = _gpu(f"{prof.description} {prof.name}")
    if r_gpu is None or r_gpu != p_gpu:
        return 0.0
    score = 4.0 + (1.0 if r_n is not None and r_n == p_n else 0.0)
    r_w, r_kv = _bits(run.quantization or "")
    p_w, p_kv = _bits(prof.name)
    score += 2.0 * (r_w is not None and r_w == p_w) + 2.0 * (r_kv is not None and r_kv == p_kv)
    shared = _words(Path(run.model or "").name) & _words(prof.name + " " + prof.description)
    score += 1.5 * len(shared)
    if "fitted from" in prof.description:  # a fit of one recording: second to a measurement
        score -= 0.5
    return score


def choose_profile(run: RunHardware | None, *, bound: str | None = None,
                   names: Sequence[str] | None = None) -> ProfileChoice:
    """The profile for a run: its binding, else the best-scoring bundled profile, else the default.

    Ties go to the default profile, then to the shorter name.
    """
    if bound:
        return ProfileChoice(bound, "bound to the store (`aimo profile bind`)", True)
    if run is None:
        return ProfileChoice(DEFAULT_PROFILE, NO_RUN, False)
    best: tuple[float, int, int, str] | None = None
    for name in names if names is not None else list_profiles():
        try:
            s = score_profile(run, load_profile(name))
        except InputError:
            continue
        key = (s, name == DEFAULT_PROFILE, -len(name), name)
        if s >= 1.0 and (best is None or key > best):
            best = key
    if best is None:
        what = run.hardware or "not recorded"
        return ProfileChoice(DEFAULT_PROFILE, f"no bundled profile matches the run's hardware "
                             f"({what}): the default profile", False)
    detail = ", ".join(x for x in (run.hardware, run.quantization, run.model) if x)
    return ProfileChoice(best[3], f"matches the run's recorded hardware ({detail})", True)


# ------------------------------------------------------------------------------ bindings


def bind_profile(path: str | Path, profile: str, run_id: str | None = None) -> None:
    """Bind `profile` (checked to load) to one run of the store, or to all when run_id is None."""
    from aimo.core.store import list_runs
    from aimo.core.store.bindings import write_binding

    load_profile(profile)
    if run_id is not None and run_id not in {r.run_id for r in list_runs(path)}:
        raise InputError(str(path), "run", f"no run {run_id!r} in the store")
    write_binding(path, run_id or STORE_WIDE, profile)


def unbind_profile(path: str | Path, run_id: str | None = None) -> bool:
    """Remove a binding; True when one was there."""
    from aimo.core.store.bindings import delete_binding

    return delete_binding(path, run_id or STORE_WIDE)


def profile_for_store(path: str | Path, run_id: str | None = None) -> ProfileChoice:
    """`choose_profile` for a run of a store (`run_id` None: its only run): the run's binding,
    else the store-wide one, else its recorded hardware. One short read of the store."""
    from aimo.core.store import read_connection
    from aimo.core.store.bindings import bindings
    from aimo.core.store.queries import run_hardware

    with read_connection(path) as con:
        bound = bindings(con)
        runs = run_hardware(con)
    if run_id is None and len(runs) == 1:
        run_id = runs[0][0]
    run = next((RunHardware(*r) for r in runs if r[0] == run_id), None)
    return choose_profile(run, bound=bound.get(run_id or "", bound.get(STORE_WIDE)))
