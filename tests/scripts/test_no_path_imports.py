"""No script, bench or package imports the project by path: they run on the installed package
(`pip install -e .`, or the repo root on PYTHONPATH on the GPU machine), so a moved module fails
at its import instead of being found in some other checkout."""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SCANNED = ("scripts", "bench", "aimo", "core", "solver", "recorder", "simulator", "tuner",
           "dashboard", "data")
# path edits with a job other than finding the project, each said where it is
ALLOWED = {
    # the sandbox's launcher runs under `python -I`, which leaves its own folder off the path
    "solver/sandbox/_launcher.py",
}


def path_edits(tree: ast.AST) -> list[int]:
    """Lines that change `sys.path`: a call of one of its methods, or an assignment to it or to
    a slice of it (string contents, e.g. generated notebook code, are not code here)."""

    def is_sys_path(node: ast.AST) -> bool:
        return (isinstance(node, ast.Attribute) and node.attr == "path"
                and isinstance(node.value, ast.Name) and node.value.id == "sys")

    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                and is_sys_path(node.func.value):
            lines.append(node.lineno)
        elif isinstance(node, (ast.Assign, ast.AugAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for t in targets:
                if is_sys_path(t) or (isinstance(t, ast.Subscript) and is_sys_path(t.value)):
                    lines.append(node.lineno)
    return sorted(lines)


def test_the_check_sees_each_way_of_editing_the_path() -> None:
    code = ("import sys\nsys.path.insert(0, 'x')\nsys.path.append('y')\nsys.path[:] = []\n"
            "sys.path += ['z']\nprint('sys.path.insert(0, here)')\nn = len(sys.path)\n")
    assert path_edits(ast.parse(code)) == [2, 3, 4, 5]


def test_no_script_or_package_edits_sys_path() -> None:
    found = {}
    for top in SCANNED:
        for path in sorted((REPO / top).rglob("*.py")):
            rel = path.relative_to(REPO).as_posix()
            lines = path_edits(ast.parse(path.read_text(encoding="utf-8"), rel))
            if lines and rel not in ALLOWED:
                found[rel] = lines
    assert found == {}, f"sys.path edited (import the installed package instead): {found}"


def test_shell_scripts_run_modules_not_files_of_the_project() -> None:
    """The device shell scripts call the CLI and modules (`python3 -m ...`), not .py paths."""
    for sh in sorted((REPO / "scripts").glob("*.sh")):
        for n, line in enumerate(sh.read_text().splitlines(), 1):
            code = line.split("#", 1)[0]
            assert not ("python" in code and ".py" in code), f"{sh.name}:{n}: {line.strip()}"


def test_every_exception_still_edits_the_path() -> None:
    """An entry whose file no longer edits sys.path goes (the list says what is true now)."""
    stale = [rel for rel in sorted(ALLOWED)
             if not path_edits(ast.parse((REPO / rel).read_text(encoding="utf-8")))]
    assert stale == []
