"""Input errors that name the file and field at fault, so the CLI can report them and exit non-zero."""

from __future__ import annotations


class InputError(Exception):
    """Bad user input: `source` is the file (or other origin), `field` the offending field path."""

    def __init__(self, source: str, field: str | None, message: str) -> None:
        self.source = str(source)
        self.field = field
        self.message = message
        where = f"{self.source}: {field}" if field else self.source
        super().__init__(f"{where}: {message}")
