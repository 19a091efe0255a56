"""Hardware time model: profiles (YAML data with provenance), closed-form timing, and fitting.

A decode step over `b` active sequences holding `C` context tokens in all takes
`a + beta*b + gamma*C` seconds, plus `beta_above*max(0, b - knee_batch)` for a profile whose
measurements call for a knee (`timing.step_seconds`, the one definition). See docs/hardware.md.
"""

from __future__ import annotations

from aimo.core.hardware.fit import (
    FitResult,
    StepFit,
    StepModel,
    fit_profile,
    fit_step_model,
)
from aimo.core.hardware.observations import StepObservations, observations_from_chunks, read_chunks
from aimo.core.hardware.profile import (
    CODE_OVERLAPS,
    CalibrationPoint,
    CodeOverlap,
    HardwareProfile,
    Provenance,
    dump_profile,
    list_profiles,
    load_profile,
    save_profile,
)
from aimo.core.hardware.timing import (
    decode_on,
    pace_batch,
    predict_point,
    prefill_duration,
    step_seconds,
    step_times,
    steps_duration,
    steps_duration_array,
    steps_within,
    steps_within_array,
)

__all__ = [
    "CODE_OVERLAPS",
    "CalibrationPoint",
    "CodeOverlap",
    "FitResult",
    "HardwareProfile",
    "Provenance",
    "StepFit",
    "StepModel",
    "StepObservations",
    "decode_on",
    "dump_profile",
    "fit_profile",
    "fit_step_model",
    "list_profiles",
    "load_profile",
    "observations_from_chunks",
    "pace_batch",
    "predict_point",
    "prefill_duration",
    "read_chunks",
    "save_profile",
    "step_seconds",
    "step_times",
    "steps_duration",
    "steps_duration_array",
    "steps_within",
    "steps_within_array",
]
