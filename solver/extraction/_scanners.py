"""Incremental scanners: each is fed text deltas and returns the constructs they complete.

Every character is examined a bounded number of times, and only the text of a construct still
open is kept (as pieces, joined once on completion), so total work is linear in text length.
Each scanner reports exactly what its whole-text reference (a regex or `_robust`) finds.
"""

from __future__ import annotations

import re

from aimo.solver.extraction._robust import MAX_BOX_CHARS, ROBUST_OPENER, ROBUST_OPENER_MAX_LEN
from aimo.solver.extraction._seed import CODE_BLOCK_PATTERN

_EXACT_OPENER = re.compile(re.escape("oxed{"))
_EXACT_STOP = re.compile(r"[}\n]")
_FENCE_OPEN = "```python"
_FENCE_OPENER = re.compile(re.escape(_FENCE_OPEN))
_FENCE_CLOSE = "```"


class _Seeker:
    """Finds the next opener in a stream; keeps only the tail that may start a partial opener.

    `pattern` must not use anchors or lookbehind, and no match may be longer than `max_len`.
    """

    __slots__ = ("_pattern", "_keep", "_tail")

    def __init__(self, pattern: re.Pattern[str], max_len: int) -> None:
        self._pattern = pattern
        self._keep = max_len - 1
        self._tail = ""

    def find(self, data: str, i: int) -> int | None:
        """Index in `data` just past the next opener at/after `i` (or straddling), else None."""
        tail = self._tail
        if tail:
            self._tail = ""
            boundary = tail + data[i : i + self._keep]
            m = self._pattern.search(boundary)
            if m is not None and m.start() < len(tail):
                return i + m.end() - len(tail)
        m = self._pattern.search(data, i)
        if m is not None:
            return m.end()
        rest = data[i:] if len(data) - i < self._keep else data[len(data) - self._keep :]
        self._tail = (tail + rest)[-self._keep :] if self._keep else ""
        return None


class ExactBoxScanner:
    """Streaming twin of `BOXED_PATTERN.findall`: box contents, each once, when its `}` arrives.

    A newline before the `}` voids the candidate, exactly as the non-DOTALL regex does.
    """

    __slots__ = ("_seeker", "_pieces")

    def __init__(self) -> None:
        self._seeker = _Seeker(_EXACT_OPENER, len("oxed{"))
        self._pieces: list[str] | None = None  # None: looking for an opener

    def feed(self, delta: str) -> list[str]:
        """Contents of the boxes that `delta` completes, in text order."""
        found: list[str] = []
        i = 0
        while True:
            if self._pieces is None:
                j = self._seeker.find(delta, i)
                if j is None:
                    return found
                self._pieces, i = [], j
                continue
            m = _EXACT_STOP.search(delta, i)
            if m is None:
                if i < len(delta):
                    self._pieces.append(delta[i:])
                return found
            j = m.start()
            if delta[j] == "}":
                self._pieces.append(delta[i:j])
                found.append("".join(self._pieces))
            self._pieces, i = None, j + 1


class RobustBoxScanner:
    """Streaming twin of `robust_boxed_contents(text, max_chars=max_chars)`."""

    __slots__ = ("_seeker", "_max_chars", "_pieces", "_depth", "_escape", "_count")

    def __init__(self, *, max_chars: int = MAX_BOX_CHARS) -> None:
        if max_chars < 1:
            raise ValueError(f"max_chars: must be >= 1, got {max_chars}")
        self._seeker = _Seeker(ROBUST_OPENER, ROBUST_OPENER_MAX_LEN)
        self._max_chars = max_chars
        self._pieces: list[str] | None = None  # None: looking for an opener
        self._depth = 0
        self._escape = False
        self._count = 0

    def feed(self, delta: str) -> list[str]:
        """Contents of the boxes that `delta` completes (or uncovers by abandoning one)."""
        found: list[str] = []
        work: list[tuple[str, int]] = [(delta, 0)]
        while work:
            data, i = work.pop()
            replay = self._run(data, i, found)
            if replay is not None:
                abandoned, resume = replay
                work.append((data, resume))
                work.append((abandoned, 0))  # re-read the abandoned box's content first
        return found

    def _run(self, data: str, i: int, found: list[str]) -> tuple[str, int] | None:
        """Scan data[i:]; on abandoning a box return (its content, index to resume at)."""
        n = len(data)
        while True:
            if self._pieces is None:
                j = self._seeker.find(data, i)
                if j is None:
                    return None
                self._pieces, self._depth, self._escape, self._count = [], 1, False, 0
                i = j
                continue
            j = i
            while j < n:
                c = data[j]
                j += 1
                self._count += 1
                if self._escape:
                    self._escape = False
                elif c == "\\":
                    self._escape = True
                elif c == "{":
                    self._depth += 1
                elif c == "}":
                    self._depth -= 1
                    if self._depth == 0:
                        self._pieces.append(data[i : j - 1])
                        found.append("".join(self._pieces))
                        self._pieces = None
                        break
                if self._count >= self._max_chars:
                    self._pieces.append(data[i:j])
                    abandoned = "".join(self._pieces)
                    self._pieces = None
                    return abandoned, j
            else:
                if i < n:
                    self._pieces.append(data[i:])
                return None
            i = j


class FenceScanner:
    """Streaming twin of `CODE_BLOCK_PATTERN.findall`: ```python blocks, each once, when closed."""

    __slots__ = ("_seeker", "_pieces", "_last2")

    def __init__(self) -> None:
        self._seeker = _Seeker(_FENCE_OPENER, len(_FENCE_OPEN))
        self._pieces: list[str] | None = None  # None: looking for an opener
        self._last2 = ""  # last two characters of the open block, for a split closing fence

    def feed(self, delta: str) -> list[str]:
        """Code of the blocks that `delta` completes, as the seed's regex captures it."""
        found: list[str] = []
        i = 0
        while True:
            if self._pieces is None:
                j = self._seeker.find(delta, i)
                if j is None:
                    return found
                self._pieces, self._last2, i = [], "", j
                continue
            if self._last2:
                k = (self._last2 + delta[i : i + 2]).find(_FENCE_CLOSE)
                if k >= 0:  # the closing fence starts inside the text kept so far
                    body = "".join(self._pieces)
                    found.append(_fence_code(body[: len(body) - (len(self._last2) - k)]))
                    self._pieces, i = None, i + 3 - (len(self._last2) - k)
                    continue
            k = delta.find(_FENCE_CLOSE, i)
            if k < 0:
                if i < len(delta):
                    self._pieces.append(delta[i:])
                    self._last2 = (self._last2 + delta[i:])[-2:]
                return found
            self._pieces.append(delta[i:k])
            found.append(_fence_code("".join(self._pieces)))
            self._pieces, i = None, k + 3


def _fence_code(body: str) -> str:
    """The seed regex's capture for a block whose text between the fences is `body`."""
    m = CODE_BLOCK_PATTERN.match(_FENCE_OPEN + body + _FENCE_CLOSE)
    assert m is not None and m.end() == len(_FENCE_OPEN) + len(body) + len(_FENCE_CLOSE)
    return m.group(1)
