"""Hardware time model: profiles (YAML data with provenance), closed-form timing, and fitting.

A decode step over `b` active sequences holding `C` context tokens in all takes
`a + beta*b + gamma*C` seconds. See docs/hardware.md.
"""

from __future__ import annotations

from core.hardware.fit import (
    FitResult,
    StepObservations,
    fit_profile,
    observations_from_chunks,
    read_chunks,
)
from core.hardware.profile import (
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
from core.hardware.timing import (
    pace_batch,
    predict_point,
    prefill_duration,
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
    "StepObservations",
    "dump_profile",
    "fit_profile",
    "list_profiles",
    "load_profile",
    "observations_from_chunks",
    "pace_batch",
    "predict_point",
    "prefill_duration",
    "read_chunks",
    "save_profile",
    "step_times",
    "steps_duration",
    "steps_duration_array",
    "steps_within",
    "steps_within_array",
]
