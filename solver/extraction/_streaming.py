"""Streaming extraction for the live solver: boxes and ```python blocks as a sample's text grows.

Each construct is reported once, tagged with the cumulative token count of the delta that
completed it; total work is linear in the text length (see `_scanners`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from aimo.solver.extraction._batch import ExtractionMode, box_value, check_mode
from aimo.solver.extraction._robust import MAX_BOX_CHARS
from aimo.solver.extraction._scanners import ExactBoxScanner, FenceScanner, RobustBoxScanner


@dataclass(frozen=True)
class AnswerFound:
    """A box completed by a delta: its value (None if unparseable), token count and raw content."""

    value: int | None
    token: int
    source: Literal["boxed"]
    raw: str


@dataclass(frozen=True)
class CodeFound:
    """A ```python block completed by a delta: its code (unprepared) and the token count."""

    code: str
    token: int


@dataclass(frozen=True)
class Extracted:
    """What one `feed` call found, each kind in text order."""

    answers: tuple[AnswerFound, ...] = ()
    code_blocks: tuple[CodeFound, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.answers or self.code_blocks)


class StreamingExtractor:
    """Incremental answer extraction for one sample; not thread-safe (one per sample).

    In "exact" mode the boxes reported are exactly `BOXED_PATTERN.findall` of the text so far,
    and the code blocks exactly `CODE_BLOCK_PATTERN.findall` (in both modes). A box inside a
    code block still counts as a box, as in the seed. In "robust" mode a box left open for
    `max_box_chars` characters is abandoned and boxes inside it are reported at that point.
    """

    def __init__(
        self, mode: ExtractionMode = "exact", *, max_box_chars: int = MAX_BOX_CHARS
    ) -> None:
        self._mode = check_mode(mode)
        self._boxes: ExactBoxScanner | RobustBoxScanner = (
            ExactBoxScanner() if mode == "exact" else RobustBoxScanner(max_chars=max_box_chars)
        )
        self._fences = FenceScanner()
        self._n_tokens = 0
        self._latest_boxed: AnswerFound | None = None
        self._latest_code: CodeFound | None = None

    @property
    def mode(self) -> ExtractionMode:
        return self._mode

    def feed(self, delta: str, n_tokens: int) -> Extracted:
        """Append `delta`; `n_tokens` is the cumulative token count after it (non-decreasing).

        Returns the boxes and code blocks that this delta completed (usually none).
        """
        if n_tokens < self._n_tokens:
            raise ValueError(
                f"n_tokens: cumulative count went back from {self._n_tokens} to {n_tokens}"
            )
        self._n_tokens = n_tokens
        answers = tuple(
            AnswerFound(box_value(raw, self._mode), n_tokens, "boxed", raw)
            for raw in self._boxes.feed(delta)
        )
        code_blocks = tuple(CodeFound(code, n_tokens) for code in self._fences.feed(delta))
        if answers:
            self._latest_boxed = answers[-1]
        if code_blocks:
            self._latest_code = code_blocks[-1]
        return Extracted(answers, code_blocks)

    def latest_boxed(self) -> AnswerFound | None:
        """The last complete box so far (its value may be None), or None before any box."""
        return self._latest_boxed

    def latest_code(self) -> CodeFound | None:
        """The last complete ```python block so far, or None."""
        return self._latest_code
