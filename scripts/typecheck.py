"""Run mypy on the installed package layout: `python scripts/typecheck.py [mypy args]`.

The import name `aimo.core` lives in the folder `core/` (pyproject's setuptools `package-dir`),
a mapping mypy cannot read: pointed at the folders, it resolves no `from aimo.<part> import ...`
and, with `ignore_missing_imports`, types every cross-module name as Any. This script builds a
link tree `build/typecheck/aimo/` from that same `package-dir` table (`aimo/`'s own files linked
one by one, each other part one folder link) and then runs mypy, whose `mypy_path` and
`packages` ([tool.mypy] in pyproject.toml) name that tree, so every import resolves to the
checked source. Reported paths are rewritten back to the repository's folders. The tree is
rebuilt on every run (a few dozen links), so a new or removed file needs no manual step.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: mypy itself depends on tomli there
    import tomli as tomllib  # type: ignore[no-redef]

ROOT = Path(__file__).resolve().parent.parent
TREE = Path("build") / "typecheck"  # relative to ROOT; pyproject's mypy_path names it too
PACKAGE = "aimo"


def package_dirs(root: Path = ROOT) -> dict[str, str]:
    """The `package-dir` table: import name -> folder, relative to `root`."""
    with open(root / "pyproject.toml", "rb") as f:
        config = tomllib.load(f)
    return dict(config["tool"]["setuptools"]["package-dir"])


def build_tree(root: Path = ROOT) -> dict[Path, str]:
    """(Re)build the link tree under `root/TREE`; return {linked path: repository folder}.

    The returned map (tree path relative to `root`, with a trailing separator, to the folder it
    shows) is what `rewrite` uses to report errors at the real paths.
    """
    tree = root / TREE
    shutil.rmtree(tree, ignore_errors=True)
    package = tree / PACKAGE
    package.mkdir(parents=True)
    shown: dict[Path, str] = {}
    for name, folder in package_dirs(root).items():
        source = root / folder
        if name == PACKAGE:
            for entry in sorted(source.iterdir()):
                if entry.name != "__pycache__":
                    (package / entry.name).symlink_to(os.path.relpath(entry, package))
            shown[TREE / PACKAGE] = folder
            continue
        parent, _, leaf = name.rpartition(".")
        if parent != PACKAGE:
            raise SystemExit(f"package-dir entry {name!r}: only direct subpackages of {PACKAGE}")
        (package / leaf).symlink_to(os.path.relpath(source, package))
        shown[TREE / PACKAGE / leaf] = folder
    return shown


def rewrite(text: str, shown: dict[Path, str]) -> str:
    """Replace each link-tree path prefix in mypy's output by the repository folder."""
    # the deepest prefix first: build/typecheck/aimo/core/ before build/typecheck/aimo/
    for linked in sorted(shown, key=lambda p: len(p.parts), reverse=True):
        text = text.replace(f"{linked}{os.sep}", f"{shown[linked]}{os.sep}")
    return text


def main(argv: list[str]) -> int:
    """Build the tree, run mypy from the repository root with `argv`, print its rewritten report."""
    from mypy import api

    os.chdir(ROOT)
    shown = build_tree(ROOT)
    stdout, stderr, status = api.run(argv)
    sys.stdout.write(rewrite(stdout, shown))
    sys.stderr.write(rewrite(stderr, shown))
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
