"""`python -m aimo`: the same command line as the `aimo` script."""

from __future__ import annotations

from aimo.cli import main

main()
