"""`aimo policy list|show|validate|diff`: look at policies before simulating or shipping them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from aimo.core.errors import InputError

app = typer.Typer(no_args_is_help=True, help="Policies: list the presets, show one in full, "
                  "validate YAML files, diff two policies.")


def _fail(message: str, code: int = 2) -> None:
    typer.secho(f"error: {message}", err=True, fg=typer.colors.RED)
    raise typer.Exit(code)


def preset_summary(name: str) -> str:
    """The first sentence of the preset file's leading comment (its description), or ''."""
    from aimo.data import POLICIES_DIR

    words = []
    for line in (POLICIES_DIR / f"{name}.yaml").read_text(encoding="utf-8").splitlines():
        if not line.startswith("#"):
            break
        words.append(line.lstrip("# ").strip())
    text = " ".join(words)
    end = text.find(". ")
    return text if end < 0 else text[: end + 1]


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """A nested dict/list as {'a.b[0].c': leaf} (pure; keys sorted by the caller)."""
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for k, v in value.items():
            out.update(flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    if isinstance(value, (list, tuple)):
        out = {}
        for i, v in enumerate(value):
            out.update(flatten(v, f"{prefix}[{i}]"))
        return out if value else {prefix: []}
    return {prefix: value}


ABSENT = "(absent)"  # a field one policy does not have (e.g. a level the other lacks)


def policy_diff(a: Any, b: Any) -> list[tuple[str, Any, Any]]:
    """(field path, value in a, value in b) for every field that differs; `name` included."""
    from aimo.core.policy import policy_to_dict

    fa, fb = flatten(policy_to_dict(a)), flatten(policy_to_dict(b))
    rows = []
    for key in sorted(set(fa) | set(fb)):
        va, vb = fa.get(key, ABSENT), fb.get(key, ABSENT)
        if va != vb:
            rows.append((key, va, vb))
    return rows


def _shown(value: Any) -> str:
    return value if value is ABSENT else json.dumps(value)


@app.command("list")
def list_() -> None:
    """The bundled presets: name, samples per question at each speed level, hash, description."""
    from aimo.core.policy import list_presets, load_policy, policy_hash

    rows = []
    for name in list_presets():
        pol = load_policy(name)
        levels = "/".join(str(lv.samples) for lv in pol.schedule.levels)
        rows.append((name, levels, policy_hash(pol), preset_summary(name)))
    w, w1 = max(len(r[0]) for r in rows), max(len("samples"), *(len(r[1]) for r in rows))
    typer.echo(f"{'preset':<{w}}  {'samples':<{w1}}  {'hash':<16}  description")
    for name, levels, digest, desc in rows:
        typer.echo(f"{name:<{w}}  {levels:<{w1}}  {digest}  {desc}")


@app.command("show")
def show(
    policy: str = typer.Argument(..., help="Preset name or policy YAML path."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of YAML."),
) -> None:
    """The policy with every field spelled out (defaults and `base:` resolved), and its hash."""
    from aimo.core.policy import load_policy, policy_hash, policy_to_dict, policy_to_yaml

    try:
        pol = load_policy(policy)
    except InputError as exc:
        _fail(str(exc))
    if as_json:
        typer.echo(json.dumps({**policy_to_dict(pol), "hash": policy_hash(pol)}, indent=2))
    else:
        typer.echo(policy_to_yaml(pol).rstrip("\n"))  # headed by its name and hash


@app.command("validate")
def validate(
    files: list[Path] = typer.Argument(..., help="Policy YAML files (or preset names)."),
) -> None:
    """Check policy files; each gets 'ok' or its error (file and field). Exit 2 if any fails."""
    from aimo.core.policy import load_policy, policy_hash

    bad = 0
    for f in files:
        try:
            pol = load_policy(str(f))
        except InputError as exc:
            bad += 1
            typer.secho(f"invalid {exc}", err=True, fg=typer.colors.RED)
            continue
        typer.echo(f"ok {f}: policy {pol.name}, hash {policy_hash(pol)}")
    if bad:
        raise typer.Exit(2)


@app.command("diff")
def diff(
    a: str = typer.Argument(..., help="Preset name or policy YAML path."),
    b: str = typer.Argument(..., help="Preset name or policy YAML path."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON: [{field, a, b}, ...]."),
) -> None:
    """Fields that differ between two policies (after defaults and `base:` are resolved).
    Exit 0 when they decide the same (only names may differ), 1 when they differ."""
    from aimo.core.policy import load_policy

    try:
        pa, pb = load_policy(a), load_policy(b)
    except InputError as exc:
        _fail(str(exc))
    rows = policy_diff(pa, pb)
    if as_json:
        typer.echo(json.dumps([{"field": k, "a": va, "b": vb} for k, va, vb in rows], indent=2))
    else:
        for key, va, vb in rows:
            typer.echo(f"{key}: {_shown(va)} -> {_shown(vb)}")
        if not rows:
            typer.echo("no differences")
    raise typer.Exit(1 if any(k != "name" for k, _, _ in rows) else 0)
