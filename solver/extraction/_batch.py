"""Whole-text extraction in either mode: what the trace importers and the reference tests use."""

from __future__ import annotations

from typing import Literal

from aimo.solver.extraction._latex import normalize_answer
from aimo.solver.extraction._robust import MAX_BOX_CHARS, robust_boxed_contents
from aimo.solver.extraction._seed import BOXED_PATTERN, parse_boxed_exact

ExtractionMode = Literal["exact", "robust"]
""""exact": the seed's regex and int/float conversion; "robust": nested braces, LaTeX forms."""

EXTRACTION_MODES: tuple[ExtractionMode, ...] = ("exact", "robust")


def check_mode(mode: str) -> ExtractionMode:
    """`mode` itself if it is an ExtractionMode; ValueError naming the field otherwise."""
    if mode not in EXTRACTION_MODES:
        raise ValueError(f"mode: must be one of {EXTRACTION_MODES}, got {mode!r}")
    return mode  # type: ignore[return-value]


def boxed_contents(
    text: str, mode: ExtractionMode = "exact", *, max_box_chars: int = MAX_BOX_CHARS
) -> list[str]:
    """Raw contents of every complete box in `text`, in order (`max_box_chars`: robust only)."""
    if check_mode(mode) == "exact":
        return BOXED_PATTERN.findall(text)
    return robust_boxed_contents(text, max_chars=max_box_chars)


def box_value(content: str, mode: ExtractionMode = "exact") -> int | None:
    """Answer (0..999) denoted by one box's raw content, or None; never raises."""
    if check_mode(mode) == "exact":
        return parse_boxed_exact(content)
    return normalize_answer(content)


def extract_boxed(
    text: str, mode: ExtractionMode = "exact", *, max_box_chars: int = MAX_BOX_CHARS
) -> int | None:
    """The seed's "latest boxed answer": the value of the last complete box, or None.

    A last box that does not parse gives None even if an earlier one did (seed semantics).
    """
    contents = boxed_contents(text, mode, max_box_chars=max_box_chars)
    return box_value(contents[-1], mode) if contents else None
