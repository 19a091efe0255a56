"""Measuring a real engine's decode step latency L(b, C) for a hardware profile
(`aimo profile measure`, scripts/device_hil.py).

Split by job: the grid of cells (`grid`), random prompts of exact token length (`prompts`), the
decode window of a cell (`window`), the measuring loop on an engine (`measure`) and the measured
profile with its provenance (`profile`). The rows and their CSV are core data
(`core.hardware.rows`); fitting is the core's one fit (`core.hardware.fit`). numpy only at
import; the engine (lmdeploy), torch and tokenizers are imported where they are used. No module
here installs test doubles: the tests and the scripts' `--fake` do that themselves.
"""

from __future__ import annotations

from aimo.core.hardware.fit import LINEAR, ModelFit, StepFit, fit_models, fit_step_model
from aimo.core.hardware.lsq import RelError, lsq, rel_errors
from aimo.core.hardware.rows import (
    CSV_COLUMNS,
    StepRow,
    calibration_points,
    csv_line,
    read_rows_csv,
    rows_arrays,
    write_rows_csv,
)
from aimo.recorder.profiling.grid import GRIDS, Cell, grid_cells, parse_cells
from aimo.recorder.profiling.measure import (
    CellEvent,
    CellKind,
    CellResult,
    MeasureContext,
    MeasureRun,
    MeasureSettings,
    cell_cost_s,
    default_warmups,
    describe_event,
    measure_grid,
    model_summary,
    run_cell,
    run_measurement,
    step_rows,
)
from aimo.recorder.profiling.profile import (
    DEFAULT_BASE,
    PREFILL_MIN_TOKENS,
    PrefillEstimate,
    measured_conditions,
    measured_prefill,
    measured_profile,
)
from aimo.recorder.profiling.prompts import (
    ContentOnly,
    LetterPrompts,
    PromptSource,
    TextTokenizer,
    TokenizerPrompts,
    load_tokenizer,
    prompt_source,
)
from aimo.recorder.profiling.window import Window, WindowRow, window_rows

__all__ = [
    "CSV_COLUMNS", "DEFAULT_BASE", "GRIDS", "LINEAR", "PREFILL_MIN_TOKENS", "Cell", "CellEvent",
    "CellKind", "CellResult", "ContentOnly", "LetterPrompts", "MeasureContext", "MeasureRun",
    "MeasureSettings", "ModelFit", "PrefillEstimate", "PromptSource", "RelError", "StepFit",
    "StepRow", "TextTokenizer", "TokenizerPrompts", "Window", "WindowRow", "calibration_points",
    "cell_cost_s", "csv_line", "default_warmups", "describe_event", "fit_models",
    "fit_step_model", "grid_cells", "load_tokenizer", "lsq", "measure_grid", "measured_conditions",
    "measured_prefill", "measured_profile", "model_summary", "parse_cells", "prompt_source",
    "read_rows_csv", "rel_errors", "rows_arrays", "run_cell", "run_measurement", "step_rows",
    "window_rows", "write_rows_csv",
]
