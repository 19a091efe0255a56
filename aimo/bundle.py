"""`aimo bundle`: an offline folder for a competition notebook without internet.

    DIR/wheels/        the project's wheel and the wheels of its core dependencies
    DIR/policy.yaml    the chosen policy, every field spelled out
    DIR/aimo_entry.py  `predict(id_, question)` for the inference server (and `install()`)
    DIR/bundle.json    what was bundled: policy name and hash, model path, wheels, Python
    DIR/README.txt     the notebook cells

The model weights are not copied: `--model` is the path the notebook will read them from (for
example a Kaggle model input). See docs/solver.md.
"""

from __future__ import annotations

import json
import platform
import shutil
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aimo.core.errors import InputError

ROOT = Path(__file__).resolve().parents[1]  # the source checkout the project wheel is built from
DIST_NAME = "aimo-policy-lab"

ENTRY = '''"""Competition entry written by `aimo bundle` (policy {policy}, hash {digest}).

In the notebook (no internet):
    import sys; sys.path.insert(0, "{hint}")
    import aimo_entry
    aimo_entry.install()                   # pip install --no-index from ./wheels, once
    server = kaggle_evaluation.aimo_3_inference_server.AIMO3InferenceServer(aimo_entry.predict)

`predict(id_, question)` takes the server's one-row polars Series/DataFrames (AIMO-2 and AIMO-3
forms) and returns a DataFrame {{id, answer}}; `predict_answer` returns the bare integer.
Environment variables set before the first call win over the bundled settings (solver/kaggle.py).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
MODEL = {model!r}
BACKEND = {backend!r}

os.environ.setdefault("AIMO_POLICY", str(HERE / "policy.yaml"))
os.environ.setdefault("AIMO_MODEL", MODEL)
os.environ.setdefault("AIMO_BACKEND", BACKEND)


def install() -> None:
    """Install the bundled wheels into this interpreter, offline (a no-op when installed)."""
    try:
        import aimo.solver.kaggle_server  # noqa: F401
        return
    except ImportError:
        pass
    subprocess.check_call([sys.executable, "-m", "pip", "install", "--quiet", "--no-index",
                           "--find-links", str(HERE / "wheels"), "{dist}"])


def predict(id_, question):
    """The inference server's predict: a DataFrame with columns id and answer."""
    from aimo.solver.kaggle_server import predict_frame

    return predict_frame(id_, question)


def predict_answer(id_, question) -> int:
    """The bare integer answer (for a custom loop)."""
    from aimo.solver.kaggle import predict as solver_predict

    return solver_predict(id_, question)
'''

README = """Offline bundle of aimo-policy-lab (written by `aimo bundle`).

policy:  {policy} (hash {digest}), file policy.yaml
model:   {model} (not copied: the notebook reads it from there)
backend: {backend}
wheels:  {n_wheels} files in wheels/ for Python {py} on {plat}

Notebook cells (attach this folder as a dataset, e.g. /kaggle/input/aimo-bundle):

    import sys; sys.path.insert(0, "/kaggle/input/aimo-bundle")
    import aimo_entry
    aimo_entry.install()

    import os, kaggle_evaluation.aimo_3_inference_server   # aimo_2_... for AIMO-2
    server = kaggle_evaluation.aimo_3_inference_server.AIMO3InferenceServer(aimo_entry.predict)
    if os.getenv("KAGGLE_IS_COMPETITION_RERUN"):
        server.serve()
    else:
        server.run_local_gateway(("/kaggle/input/ai-mathematical-olympiad-progress-prize-3/test.csv",))

lmdeploy (the [gpu] extra) is not bundled: use the notebook image's, or add its wheels to wheels/.
"""


@dataclass(frozen=True)
class BundleResult:
    """What `make_bundle` wrote."""

    out: Path
    policy: str
    digest: str
    wheels: tuple[str, ...]


Runner = Callable[[Sequence[str]], None]


def _run(cmd: Sequence[str]) -> None:
    proc = subprocess.run(list(cmd), capture_output=True, text=True)
    if proc.returncode != 0:
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-8:])
        raise InputError(" ".join(cmd[:4]), None, f"pip failed (exit {proc.returncode}):\n{tail}")


def pip_commands(out: Path, *, python_version: str | None,
                 platform_tag: str | None) -> tuple[list[str], list[str]]:
    """The two pip calls: build the project's wheel; download the wheels of the dependencies of
    the wheel named last (binary only, for the target Python/platform when given)."""
    pip = [sys.executable, "-m", "pip"]
    build = [*pip, "wheel", "--no-deps", "--quiet", "--wheel-dir", str(out), str(ROOT)]
    fetch = [*pip, "download", "--quiet", "--only-binary=:all:", "--dest", str(out)]
    if python_version:
        fetch += ["--python-version", python_version]
    if platform_tag:
        fetch += ["--platform", platform_tag]
    return build, fetch


def make_bundle(policy: str, model: str, out: Path, *, backend: str = "turbomind",
                python_version: str | None = None, platform_tag: str | None = None,
                force: bool = False, run: Runner = _run,
                echo: Callable[[str], None] = print) -> BundleResult:
    """Write the offline folder (see the module docstring).

    Raises:
        InputError: a bad policy, an existing --out (without force), no source checkout, or a
            failed pip call (its last lines).
    """
    from aimo.core.policy import load_policy

    pol = load_policy(policy)
    if backend not in ("turbomind", "pytorch", "synthetic"):
        raise InputError("--backend", None, f"must be turbomind, pytorch or synthetic, got {backend!r}")
    if not (ROOT / "pyproject.toml").is_file():
        raise InputError(str(ROOT), None, "aimo bundle builds the project's wheel from a source "
                         "checkout (pyproject.toml not found)")
    if not model.strip():
        raise InputError("--model", None, "must name the path the notebook reads the model from")
    if out.exists() and not out.is_dir():
        raise InputError(str(out), "--out", "exists and is not a folder")
    if out.exists() and any(out.iterdir()):
        if not force:
            raise InputError(str(out), "--out", "exists and is not empty (--force replaces it)")
        shutil.rmtree(out)
    wheels = out / "wheels"
    wheels.mkdir(parents=True, exist_ok=True)
    try:
        return _fill(out, wheels, pol, model, backend, python_version, platform_tag, run, echo)
    except BaseException:
        shutil.rmtree(out, ignore_errors=True)  # no half-made bundle left behind
        raise


def _fill(out: Path, wheels: Path, pol: Any, model: str, backend: str,
          python_version: str | None, platform_tag: str | None, run: Runner,
          echo: Callable[[str], None]) -> BundleResult:
    """The wheels, the policy, the entry and the manifest into the (empty) folder `out`."""
    from aimo.core.policy import dump_policy, policy_hash

    echo(f"building the {DIST_NAME} wheel from {ROOT} ...")
    build, fetch = pip_commands(wheels, python_version=python_version, platform_tag=platform_tag)
    run(build)
    built = sorted(wheels.glob("aimo_policy_lab-*.whl"))
    if not built:
        raise InputError(str(wheels), None, "pip wheel produced no aimo_policy_lab wheel")
    echo("downloading the wheels of its core dependencies (PyPI) ...")
    run([*fetch, str(built[-1])])
    dump_policy(pol, out / "policy.yaml", overwrite=True)
    digest = policy_hash(pol)
    names = tuple(sorted(p.name for p in wheels.glob("*.whl")))
    py = python_version or platform.python_version()
    plat = platform_tag or f"{platform.system().lower()}-{platform.machine()}"
    hint = "/kaggle/input/aimo-bundle"
    (out / "aimo_entry.py").write_text(
        ENTRY.format(policy=pol.name, digest=digest, model=model, backend=backend, hint=hint,
                     dist=DIST_NAME), encoding="utf-8")
    (out / "bundle.json").write_text(json.dumps({
        "policy": pol.name, "policy_hash": digest, "policy_file": "policy.yaml", "model": model,
        "backend": backend, "python": py, "platform": plat, "wheels": list(names),
        "entry": "aimo_entry.py",
    }, indent=2) + "\n", encoding="utf-8")
    (out / "README.txt").write_text(
        README.format(policy=pol.name, digest=digest, model=model, backend=backend,
                      n_wheels=len(names), py=py, plat=plat), encoding="utf-8")
    return BundleResult(out=out, policy=pol.name, digest=digest, wheels=names)
