"""Robust box finding: `\\boxed{…}`, `\\boxed {…}`, `\\fbox{…}` with balanced (nested) braces.

The whole-text reference that the streaming scanner must agree with (see `_scanners`).
"""

from __future__ import annotations

import re

ROBUST_OPENER: re.Pattern[str] = re.compile(r"(?:oxed|fbox|framebox)\s{0,8}\{")
"""Box openers: like the seed's "oxed{" (so "\\boxed{", "\\\\boxed{", "boxed{"), plus "\\fbox{",
"\\framebox{" and up to 8 whitespace characters before the brace."""

ROBUST_OPENER_MAX_LEN = len("framebox") + 8 + 1

MAX_BOX_CHARS = 200
"""A robust box not closed within this many characters after its `{` is abandoned, and the
search resumes just after that `{` (so boxes inside an unclosed one are still found)."""


def robust_boxed_contents(text: str, *, max_chars: int = MAX_BOX_CHARS) -> list[str]:
    """Contents of the complete robust boxes of `text`, in order (raw, between the braces).

    Braces nest; `\\` escapes the next character (so `\\{`, `\\}` do not count). Scanning stops
    at a box still open at the end of `text` unless `max_chars` characters have been seen.
    """
    found: list[str] = []
    pos, n = 0, len(text)
    while (m := ROBUST_OPENER.search(text, pos)) is not None:
        start = m.end()
        end = _close(text, start, min(n, start + max_chars))
        if end >= 0:
            found.append(text[start:end])
            pos = end + 1
        elif n >= start + max_chars:
            pos = start
        else:
            break
    return found


def _close(text: str, start: int, stop: int) -> int:
    """Index of the `}` closing a box whose content starts at `start`, looking before `stop`."""
    depth, escape = 1, False
    for j in range(start, stop):
        c = text[j]
        if escape:
            escape = False
        elif c == "\\":
            escape = True
        elif c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0:
                return j
    return -1
