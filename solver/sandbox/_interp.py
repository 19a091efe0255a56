"""What of the interpreter's tree an unprivileged uid must see, and which unreadable dirs hide it.

Example: a pyenv interpreter under /root (mode 700). Running the snippet as a fresh uid needs
/root/.pyenv/versions/X visible; the launcher masks /root with a tmpfs and binds back only
these paths, so the rest of /root stays hidden.
"""

from __future__ import annotations

import functools
import json
import os
import subprocess

_QUERY = (
    "import json, sys; print(json.dumps([sys.executable, sys.prefix, sys.base_prefix,"
    " sys.exec_prefix, sys.base_exec_prefix] + sys.path))"
)


@functools.cache
def required_paths(python: str) -> tuple[str, ...]:
    """Real paths the interpreter reads at startup and import time (its prefixes and sys.path)."""
    out = subprocess.run(
        [python, "-I", "-c", _QUERY], capture_output=True, text=True, timeout=60,
        env={"PATH": os.environ.get("PATH", os.defpath)}, check=True,
    ).stdout
    paths = {os.path.realpath(p) for p in json.loads(out) if p}
    paths.add(os.path.realpath(python))
    return tuple(sorted(p for p in paths if os.path.exists(p)))


def hidden_root(path: str) -> str | None:
    """The topmost proper ancestor of `path` that others cannot search (no o+x), if any."""
    parts = path.strip("/").split("/")[:-1]
    prefix = ""
    for part in parts:
        prefix += "/" + part
        if not os.stat(prefix).st_mode & 0o001:
            return prefix
    return None


@functools.cache
def exposures(python: str) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """(hidden dir, paths under it to bind back) pairs; nested paths folded into their parent."""
    groups: dict[str, list[str]] = {}
    for path in required_paths(python):
        root = hidden_root(path)
        if root is not None:
            groups.setdefault(root, []).append(path)
    result = []
    for root, paths in sorted(groups.items()):
        kept: list[str] = []
        for p in sorted(paths):
            if not any(p == k or p.startswith(k + "/") for k in kept):
                kept.append(p)
        result.append((root, tuple(kept)))
    return tuple(result)
