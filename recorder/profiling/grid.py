"""The measurement grid: cells of (batch, prompt tokens per sequence) and the named grids."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True, order=True)
class Cell:
    """One grid cell: `batch` sequences of `prompt_tokens` prompt tokens each."""

    batch: int
    prompt_tokens: int

    def __post_init__(self) -> None:
        if self.batch < 1 or self.prompt_tokens < 1:
            raise ValueError(f"a cell needs batch >= 1 and prompt tokens >= 1, got {self.label}")

    @property
    def label(self) -> str:
        """`BxP`, as `parse_cells` reads it."""
        return f"{self.batch}x{self.prompt_tokens}"


def _cells(pairs: Sequence[tuple[int, int]]) -> tuple[Cell, ...]:
    return tuple(Cell(b, p) for b, p in pairs)


# In order of priority. b*prompt is kept a multiple of 8192 (lmdeploy's max_prefill_token_num) or
# b < 16, so the scheduler finishes every prefill of a cell before it decodes.
GRIDS: dict[str, tuple[Cell, ...]] = {
    # 8 cells: beta at small C, gamma at b=1, C = 32k at two batch sizes, one large C; two cells
    # of >= 16k prompt tokens in all give the prefill rate
    "quick": _cells([(1, 512), (8, 512), (32, 512), (1, 8192), (1, 16384), (8, 4096),
                     (32, 1024), (32, 4096)]),
    # the 18 cells of the shipped h200-14b-w4kv8 profile (int8 KV)
    "full": _cells([
        (1, 512), (4, 512), (8, 512), (16, 512), (32, 512),          # beta at small C
        (1, 4096), (1, 8192), (1, 16384),                            # gamma at b=1
        (4, 16384), (8, 8192), (16, 4096), (32, 2048),               # C = 64k at four batch sizes
        (4, 4096), (8, 2048), (16, 1024),                            # C = 16k at three more
        (32, 4096), (16, 8192), (32, 8192),                          # large C
    ]),
    # the 16-bit KV comparison of the 14B profile (data/measurements/h200-2026-12-07)
    "kv0": _cells([(1, 512), (8, 512), (32, 512), (1, 16384), (8, 8192), (4, 16384), (32, 2048),
                   (32, 4096)]),
}


def parse_cells(text: str) -> tuple[Cell, ...]:
    """Cells from `"1x512,8x4096"` (batch x prompt tokens, comma-separated).

    Raises:
        ValueError: an entry is not `BxP` with positive integers, or the list is empty.
    """
    cells = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        b, sep, p = part.lower().partition("x")
        if not sep or not b.strip().isdigit() or not p.strip().isdigit():
            raise ValueError(f"cell {part!r}: expected BATCHxPROMPT_TOKENS, e.g. 8x512")
        try:
            cells.append(Cell(int(b), int(p)))
        except ValueError as exc:
            raise ValueError(f"cell {part!r}: {exc}") from None
    if not cells:
        raise ValueError(f"no cells in {text!r}: expected e.g. 1x512,8x512")
    return tuple(cells)


def grid_cells(name: str) -> tuple[Cell, ...]:
    """A named grid (`GRIDS`); ValueError naming the known ones otherwise."""
    if name not in GRIDS:
        raise ValueError(f"unknown grid {name!r}; known: {', '.join(GRIDS)}")
    return GRIDS[name]

