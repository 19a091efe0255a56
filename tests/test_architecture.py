"""The import graph of the product packages, read with `ast`: the layers of docs/architecture.md.

Why: nothing else fails when a module imports "upward" (the simulator pulling in the live loop,
the core pulling in a part), and each such import drags the importer's dependencies along.
Every `import` and `from ... import` of every .py file under the product packages counts,
including imports inside functions (a lazy import is still a dependency).

Allowed package edges (row imports column; every package may import itself, `data`, the
standard library and third-party packages):

| importer  | core | solver | simulator | recorder | tuner | dashboard | aimo |
|-----------|------|--------|-----------|----------|-------|-----------|------|
| core      |  -   |        |           |          |       |           |      |
| solver    | yes  |   -    |           |          |       |           |      |
| simulator | yes  |        |     -     |          |       |           |      |
| recorder  | yes  |  yes   |           |    -     |       |           |      |
| tuner     | yes  |        |    yes    |   yes    |   -   |           |      |
| dashboard | yes  |        |    yes    |   yes    |  yes  |     -     |      |
| aimo      | yes  |  yes   |    yes    |   yes    |  yes  |    yes    |  -   |

The solver and the simulator are peers that share only the core (the simulator must not import
the live loop, nor the solver the simulator); the recorder drives the live engines; the tuner
scores policies with the simulator (and makes the demo's synthetic store with the recorder);
the dashboard reads everything below it; `aimo` (the command line) sits on top.
"""

from __future__ import annotations

import ast
import builtins
import functools
import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("core", "solver", "simulator", "recorder", "tuner", "dashboard", "aimo")
SHARED = {"data"}  # bundled presets, profiles and problems: importable by every layer
FOLDERS = (set(PACKAGES) - {"aimo"}) | SHARED  # installed as aimo.<folder> (pyproject package-dir)

ALLOWED: dict[str, set[str]] = {
    "core": set(),
    "solver": {"core"},
    "simulator": {"core"},
    "recorder": {"core", "solver"},
    "tuner": {"core", "simulator", "recorder"},
    "dashboard": {"core", "simulator", "recorder", "tuner"},
    "aimo": {"core", "solver", "simulator", "recorder", "tuner", "dashboard"},
}


def _modules() -> list[Path]:
    return sorted(p for pkg in PACKAGES for p in (REPO / pkg).rglob("*.py"))


def _rel(path: Path) -> str:
    return path.relative_to(REPO).as_posix()


@functools.cache
def _tree(path: Path) -> ast.Module:
    """The file's syntax tree, parsed once for all the tests of this module."""
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


@functools.cache
def _raw_imports(path: Path) -> list[tuple[int, str]]:
    """(line, absolute module name as written) of every import in the file; relative imports
    resolved; `from aimo import x` counts as importing `aimo.x`."""
    tree = _tree(path)
    package = _rel(path.parent).split("/")
    out: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                name = ".".join([*base, *([node.module] if node.module else [])])
                if base and base[0] in FOLDERS:  # inside aimo.<folder>
                    name = f"aimo.{name}"
            else:
                name = node.module or ""
            if name == "aimo":
                out += [(node.lineno, f"aimo.{a.name}") for a in node.names]
            else:
                out.append((node.lineno, name))
    return out


def _folder_name(name: str) -> str:
    """The module name by folder: installed names are `aimo.<folder>...` (pyproject's
    package-dir), e.g. `aimo.core.policy` -> `core.policy`, `aimo.cli` -> `aimo.cli`."""
    parts = name.split(".")
    if parts[0] == "aimo" and len(parts) > 1 and parts[1] in FOLDERS:
        return ".".join(parts[1:])
    return name


def _imports(path: Path) -> list[tuple[int, str]]:
    """(line, module name by folder) of every import in the file."""
    return [(line, _folder_name(name)) for line, name in _raw_imports(path)]


def _test_module_names() -> set[str]:
    """Top-level names that resolve to test code (pytest puts tests/helpers on sys.path)."""
    helpers = REPO / "tests" / "helpers"
    return {"tests", *(p.stem for p in helpers.glob("*.py")), *(
        p.name for p in helpers.iterdir() if p.is_dir() and (p / "__init__.py").is_file())}


def _graph() -> list[tuple[str, int, str, str]]:
    """(file, line, importer package, imported module) for imports between product packages."""
    edges = []
    for path in _modules():
        pkg = _rel(path).split("/")[0]
        for line, name in _imports(path):
            top = name.split(".")[0]
            if top in PACKAGES and top != pkg:
                edges.append((_rel(path), line, pkg, name))
    return edges


def test_the_matrix_names_every_package() -> None:
    assert set(ALLOWED) == set(PACKAGES)
    assert all(deps <= set(PACKAGES) - {pkg} for pkg, deps in ALLOWED.items())


def test_the_allowed_graph_has_no_cycle() -> None:
    """A layering: some order puts every package after all it may import."""
    placed: list[str] = []
    left = dict(ALLOWED)
    while left:
        ready = [p for p, deps in left.items() if deps <= set(placed)]
        assert ready, f"cycle among {sorted(left)}"
        placed += ready
        for p in ready:
            del left[p]
    assert placed[0] == "core"


def test_imports_follow_the_layers() -> None:
    wrong = [f"{file}:{line}: {pkg} imports {name}" for file, line, pkg, name in _graph()
             if name.split(".")[0] not in ALLOWED[pkg]]
    assert not wrong, "imports against the layers (docs/architecture.md):\n" + "\n".join(wrong)


def test_every_allowed_edge_is_used() -> None:
    """The matrix is today's graph, not a wish list: an edge nobody uses is removed from it."""
    used = {(pkg, name.split(".")[0]) for _, _, pkg, name in _graph()}
    unused = sorted((p, d) for p, deps in ALLOWED.items() for d in deps if (p, d) not in used)
    assert not unused, f"allowed but unused edges (tighten ALLOWED): {unused}"


def test_core_imports_only_core_data_stdlib_and_third_party() -> None:
    project = set(PACKAGES) | {"tests", "bench", "scripts"}
    wrong = [f"{_rel(p)}:{line}: {name}" for p in (REPO / "core").rglob("*.py")
             for line, name in _imports(p)
             if name.split(".")[0] in project - {"core"} | _test_module_names()]
    assert not wrong, "\n".join(wrong)


def test_no_product_module_imports_test_code() -> None:
    forbidden = _test_module_names() | {"bench", "scripts"}
    wrong = [f"{_rel(p)}:{line}: {name}" for p in _modules() for line, name in _imports(p)
             if name.split(".")[0] in forbidden]
    assert not wrong, "\n".join(wrong)


# sys.path edits: tests/scripts/test_no_path_imports.py (products, scripts and benches alike)


def test_the_dashboard_folder_shadows_no_package() -> None:
    """Streamlit puts dashboard/ first on sys.path; a module there named like a top-level package
    of the project (or a library it imports) would replace it (there was a data.py)."""
    names = {p.stem for p in (REPO / "dashboard").glob("*.py")}
    names |= {p.name for p in (REPO / "dashboard").iterdir() if p.is_dir()}
    clash = names & (set(PACKAGES) | SHARED | {"streamlit", "plotly", "optuna", "pandas", "numpy"})
    assert not clash, clash


def _exception_classes() -> dict[str, list[str]]:
    """Every class of the product packages with its base names (last dotted part)."""
    classes: dict[str, list[str]] = {}
    for path in _modules():
        for node in ast.walk(_tree(path)):
            if isinstance(node, ast.ClassDef):
                bases = [b.attr if isinstance(b, ast.Attribute) else getattr(b, "id", "")
                         for b in node.bases]
                classes[f"{_rel(path)}:{node.name}"] = bases
    return classes


def test_every_project_exception_derives_from_the_base_class() -> None:
    """aimo.core.errors.AimoError is the one base class: any class whose bases reach a built-in
    exception must reach AimoError too."""
    classes = _exception_classes()
    by_name: dict[str, list[list[str]]] = {}
    for key, bases in classes.items():
        by_name.setdefault(key.rsplit(":", 1)[1], []).append(bases)

    def reaches(name: str, goal: str, seen: frozenset[str] = frozenset()) -> bool:
        if name == goal:
            return True
        if name in seen:
            return False
        if goal != "AimoError" and isinstance(getattr(builtins, name, None), type) and issubclass(
                getattr(builtins, name), BaseException):
            return True
        return any(reaches(b, goal, seen | {name}) for bases in by_name.get(name, []) for b in bases)

    errors = {k: b for k, b in classes.items() if any(reaches(x, "BaseException") for x in b)}
    assert "core/errors.py:AimoError" in errors
    wrong = sorted(k for k, b in errors.items()
                   if k != "core/errors.py:AimoError" and not any(reaches(x, "AimoError") for x in b))
    assert not wrong, f"exception classes outside core.errors.AimoError: {wrong}"


@pytest.mark.parametrize("module", ["aimo.core.errors", "aimo.core.policy", "aimo.core.store",
                                    "aimo.core.traces"])
def test_importing_the_core_loads_no_other_package(module: str) -> None:
    """At run time too: importing a core module loads no solver/simulator/recorder/tuner/
    dashboard/aimo module (checked in a fresh interpreter)."""
    import subprocess
    import sys

    code = (f"import sys, {module}; "
            "print(sorted({m.split('.')[1] for m in sys.modules if m.startswith('aimo.')}"
            " - {'core', 'data'}))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"


def _python_files() -> list[Path]:
    """Every .py file of the repository: products, tests, scripts, benches (the walk does not
    enter the virtualenv, build outputs or caches, which hold tens of thousands of files)."""
    skip = {".venv", "build", ".git", "node_modules", "__pycache__", ".hypothesis",
            ".mypy_cache", ".ruff_cache", ".devicecarry"}
    found = []
    for root, dirs, files in os.walk(REPO):
        dirs[:] = [d for d in dirs if d not in skip and not d.endswith(".egg-info")]
        found += [Path(root) / f for f in files if f.endswith(".py")]
    return sorted(found)


def test_every_import_of_the_project_goes_through_the_aimo_package() -> None:
    """`import core` / `from solver...` would load a second copy of a module (its own classes,
    its own state) next to `aimo.core` / `aimo.solver`, and works only from the repo root."""
    bare = [f"{_rel(p)}:{line}: {name}" for p in _python_files() for line, name in _raw_imports(p)
            if name.split(".")[0] in FOLDERS]
    assert not bare, "import these as aimo.<...>:\n" + "\n".join(bare)
