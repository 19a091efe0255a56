"""Answer extraction from model text: boxed answers, ```python blocks and code-run stdout.

Two modes: "exact" reproduces the seed byte for byte; "robust" also reads nested braces and
common LaTeX forms. `StreamingExtractor` does the same incrementally for the live solver.
"""

from __future__ import annotations

from aimo.solver.extraction._batch import (
    EXTRACTION_MODES,
    ExtractionMode,
    box_value,
    boxed_contents,
    extract_boxed,
)
from aimo.solver.extraction._latex import normalize_answer
from aimo.solver.extraction._robust import MAX_BOX_CHARS, ROBUST_OPENER
from aimo.solver.extraction._seed import (
    BOXED_PATTERN,
    CODE_BLOCK_PATTERN,
    CODE_FAILED,
    CODE_PREFIX,
    STDOUT_NUMBER_PATTERN,
    code_answer,
    extract_code,
    parse_boxed_exact,
    prepare_code,
    stdout_answer,
)
from aimo.solver.extraction._streaming import AnswerFound, CodeFound, Extracted, StreamingExtractor

__all__ = [
    "BOXED_PATTERN",
    "CODE_BLOCK_PATTERN",
    "CODE_FAILED",
    "CODE_PREFIX",
    "EXTRACTION_MODES",
    "MAX_BOX_CHARS",
    "ROBUST_OPENER",
    "STDOUT_NUMBER_PATTERN",
    "AnswerFound",
    "CodeFound",
    "Extracted",
    "ExtractionMode",
    "StreamingExtractor",
    "box_value",
    "boxed_contents",
    "code_answer",
    "extract_boxed",
    "extract_code",
    "normalize_answer",
    "parse_boxed_exact",
    "prepare_code",
    "stdout_answer",
]
