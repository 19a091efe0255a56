"""Seed-exact extraction primitives: the 2nd-place submission's regexes and conversions, verbatim.

Kept apart from the robust parser so the `seed-2nd-place` preset reproduces the original exactly.
"""

from __future__ import annotations

import re

BOXED_PATTERN: re.Pattern[str] = re.compile(r"oxed{(.*?)}")
"""The seed's box regex: no DOTALL, so a newline before the first `}` voids that box."""

CODE_BLOCK_PATTERN: re.Pattern[str] = re.compile(r"```python\s*(.*?)\s*```", re.DOTALL)
"""The seed's fence regex (public submission's `extract_python_code`): the block ends at the first
"```" after "```python"; surrounding whitespace is stripped from the code; "```python3" also
opens a block (its code then starts with "3")."""

STDOUT_NUMBER_PATTERN: re.Pattern[str] = re.compile(r"(\d+)(?:\.\d+)?")
"""Numbers in a code run's stdout; the answer is group 1 of the last match."""

CODE_PREFIX = "import math\nimport numpy as np\nimport sympy as sp\n"
"""Imports the seed prepends to every extracted block before running it."""

CODE_FAILED = -1
"""Code answer of a block whose run failed or timed out (the seed's -1)."""


def parse_boxed_exact(content: str) -> int | None:
    """Seed conversion of a box's content: `int(content) % 1000`, else `int(float(content)) % 1000`.

    Mirrors Python exactly (" 12 ", "1_000", "+5", "-3" -> 997 are accepted); anything that
    raises ValueError/OverflowError (text, "nan", "inf", over 4300 digits) gives None.
    """
    try:
        return int(content) % 1000
    except ValueError:
        pass
    try:
        return int(float(content)) % 1000
    except (ValueError, OverflowError):
        return None


def extract_code(text: str) -> str | None:
    """The last complete ```python block of `text` (group 1 of CODE_BLOCK_PATTERN), or None.

    An empty block ("```python```") is returned as "", not None.
    """
    blocks = CODE_BLOCK_PATTERN.findall(text)
    return blocks[-1] if blocks else None


def prepare_code(code: str) -> str:
    """The program the seed runs for `code`: CODE_PREFIX prepended, whole program stripped.

    The seed split the stripped program into lines and re-joined them, i.e. `.strip()`.
    """
    return (CODE_PREFIX + code).strip()


def stdout_answer(stdout: str) -> int | None:
    """Answer of a successful run: last `(\\d+)(?:\\.\\d+)?` match's integer part % 1000, or None.

    Only the last three digits are converted, which gives `int(digits) % 1000` without
    tripping Python's 4300-digit limit on int() (where the seed would have raised).
    """
    matches = STDOUT_NUMBER_PATTERN.findall(stdout)
    if not matches:
        return None
    return int(matches[-1][-3:]) % 1000


def code_answer(stdout: str, ok: bool) -> int | None:
    """Code answer of one run: CODE_FAILED (-1) on failure/timeout, else `stdout_answer(stdout)`.

    A successful run whose stdout holds no number yields None (no answer), not -1.
    """
    if not ok:
        return CODE_FAILED
    return stdout_answer(stdout)
