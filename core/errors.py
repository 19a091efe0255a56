"""The project's errors: one base class, and input errors that name the file and field at fault,
so the CLI can report them and exit non-zero.

Every exception class the project defines derives from `AimoError` (tests/test_architecture.py
checks it), so a caller can tell the project's errors from a library's with one `except`.
Classes that also mean a built-in kind (an ImportError, a ValueError) derive from both.
"""

from __future__ import annotations


class AimoError(Exception):
    """Base class of every exception the project raises on purpose."""


class InputError(AimoError):
    """Bad user input: `source` is the file (or other origin), `field` the offending field path."""

    def __init__(self, source: str, field: str | None, message: str) -> None:
        self.source = str(source)
        self.field = field
        self.message = message
        where = f"{self.source}: {field}" if field else self.source
        super().__init__(f"{where}: {message}")
