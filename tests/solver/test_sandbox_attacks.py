"""Every attack class of issue 14 against the sandbox, in both modes, each run by a separate
caller process (tests/solver/sandbox_attacks.py):

- privileged: the caller is root, so namespaces and a fresh uid join the unprivileged layers;
- unprivileged: the caller is `nobody` with no capabilities at all (what a Kaggle-like container
  without CAP_SYS_ADMIN allows, minus root), so only Landlock, seccomp, no-new-privs, rlimits and
  the tree watch hold. The interpreter may live under a root-only dir (pyenv in /root): the
  caller then starts in a private mount namespace where only those paths are bound back
  (sandbox._interp's rule), before it drops to `nobody`. That needs root here; outside CI a
  non-root test run skips this mode, under CI=true it must run;
- root without capabilities: uid 0 with an empty capability set (no CAP_SYS_ADMIN, so no
  namespaces), as in a Kaggle notebook.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from aimo.solver.sandbox._interp import exposures, hidden_root

REPO = Path(__file__).resolve().parents[2]
HARNESS = Path(__file__).with_name("sandbox_attacks.py")
IN_CI = os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")
ATTACKS = ("setsid_double_fork", "tcp_connect", "unix_connect", "system_shell", "write_outside",
           "kill_caller", "fork_memory_bomb", "leftovers_after_caller_sigkill", "legit_math")
NOBODY = 65534


def _run(argv: list[str]) -> dict[str, list[object]]:
    env = {"PATH": os.environ.get("PATH", os.defpath), "PYTHONPATH": str(REPO), "LANG": "C.UTF-8"}
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=300, env=env, cwd="/")
    assert proc.returncode == 0, f"harness failed ({proc.returncode}): {proc.stderr[-2000:]}"
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _unprivileged_argv() -> list[str]:
    """unshare -m + bind back hidden interpreter/repo paths, then setpriv to nobody, no caps."""
    groups = {root: list(paths) for root, paths in exposures(sys.executable)}
    root = hidden_root(str(REPO))
    if root is not None:
        groups.setdefault(root, []).append(str(REPO))
    lines = ["set -e", "mount --make-rprivate /", "S=$(mktemp -d)"]
    staged: list[tuple[str, str]] = []
    for paths in groups.values():
        for p in paths:
            stage = f"$S/{len(staged)}"
            make = f"mkdir -p {stage}" if os.path.isdir(p) else f"touch {stage}"
            lines += [make, f"mount --bind {shlex.quote(p)} {stage}"]
            staged.append((p, stage))
    for hidden in groups:
        lines.append(f"mount -t tmpfs -o mode=755 tmpfs {shlex.quote(hidden)}")
    for p, stage in staged:
        make = f"mkdir -p {shlex.quote(p)}" if os.path.isdir(p) else \
            f"mkdir -p {shlex.quote(os.path.dirname(p))}; touch {shlex.quote(p)}"
        lines += [make, f"mount --bind {stage} {shlex.quote(p)}"]
    lines.append(f"exec setpriv --reuid={NOBODY} --regid={NOBODY} --clear-groups --inh-caps=-all "
                 f"--bounding-set=-all -- {shlex.quote(sys.executable)} {shlex.quote(str(HARNESS))} "
                 + " ".join(ATTACKS))
    return ["unshare", "--mount", "--", "sh", "-c", "\n".join(lines)]


@pytest.fixture(scope="module")
def privileged() -> dict[str, list[object]]:
    if os.geteuid() != 0:
        if IN_CI:
            pytest.fail("CI must run the sandbox attack tests as root")
        pytest.skip("privileged mode needs root")
    return _run([sys.executable, str(HARNESS), *ATTACKS])


@pytest.fixture(scope="module")
def unprivileged() -> dict[str, list[object]]:
    if os.geteuid() == 0 and shutil.which("unshare") and shutil.which("setpriv"):
        return _run(_unprivileged_argv())
    if os.geteuid() != 0:  # already unprivileged: run as we are
        return _run([sys.executable, str(HARNESS), *ATTACKS])
    if IN_CI:
        pytest.fail("CI needs unshare and setpriv (util-linux) to drop to nobody")
    pytest.skip("no unshare/setpriv to drop privileges")


@pytest.fixture(scope="module")
def root_without_caps() -> dict[str, list[object]]:
    """uid 0 with every capability gone (CAP_SYS_ADMIN included): a Kaggle-like container."""
    if os.geteuid() != 0 or not shutil.which("setpriv"):
        if IN_CI:
            pytest.fail("CI must run the sandbox attack tests as root, with setpriv")
        pytest.skip("needs root and setpriv")
    return _run(["setpriv", "--inh-caps=-all", "--bounding-set=-all", "--", sys.executable,
                 str(HARNESS), *ATTACKS])


@pytest.mark.parametrize("attack", ATTACKS)
def test_root_without_capabilities_contains(root_without_caps: dict[str, list[object]],
                                            attack: str) -> None:
    layers = str(root_without_caps["_layers"][1])
    assert root_without_caps["_uid"][1] == "0" and "netns" not in layers
    contained, detail = root_without_caps[attack]
    assert contained, f"{detail} (layers: {layers})"


@pytest.mark.parametrize("attack", ATTACKS)
def test_privileged_mode_contains(privileged: dict[str, list[object]], attack: str) -> None:
    contained, detail = privileged[attack]
    assert contained, detail
    assert "netns" in str(privileged["_layers"][1])


@pytest.mark.parametrize("attack", ATTACKS)
def test_unprivileged_mode_contains(unprivileged: dict[str, list[object]], attack: str) -> None:
    assert unprivileged["_uid"][1] != "0"
    layers = str(unprivileged["_layers"][1])
    assert "netns" not in layers and "drop_uid" not in layers  # really without privilege
    contained, detail = unprivileged[attack]
    assert contained, f"{detail} (layers: {layers})"
