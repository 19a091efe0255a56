"""Policies to and from YAML/dicts, with validation that names the file and the field path.

The conversion is driven by the dataclasses' type hints, so a new field needs no code here.
An unknown key, a missing required key, a value of the wrong type or out of range raises
`InputError(source, "question_stop.rules[2].min_equal", "must be ≥ 1")`.

A top-level `base: <preset name or path>` key starts from another policy and overrides
only the keys given (mappings merge key by key; lists are replaced whole).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import re
import tempfile
import types
import typing
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any, Literal, Union

import yaml

from aimo.data import POLICIES_DIR
from aimo.core.errors import InputError
from aimo.core.policy.model import Policy
from aimo.core.policy.rules import DEFAULT_KIND, REGISTRY, QuestionRule

_MAX_BASE_DEPTH = 8

# Upper bounds the model itself does not state, so that a typo cannot make the solver allocate
# for 100 million samples or plan a competition of 30 years. (class name, field) -> max.
MAX_SAMPLES = 1024
MAX_CUTOFF_S = 24 * 3600.0
LIMITS: dict[tuple[str, str], float] = {
    ("SpeedLevel", "samples"): MAX_SAMPLES,
    ("SpeedLevel", "min_answers"): MAX_SAMPLES,
    ("SpeedLevel", "timeout_s"): MAX_CUTOFF_S,
    ("Schedule", "cutoff_s"): MAX_CUTOFF_S,
    ("Schedule", "questions"): 100_000,
    ("Schedule", "reeval_after"): 100_000,
    ("Schedule", "reeval_every"): 100_000,
    ("SampleStop", "max_tokens"): 1 << 20,
    ("Generation", "max_new_tokens"): 1 << 20,
}
# YAML 1.1 reads "1e9" (no dot) as a string; such a value is taken as the number it spells.
_NUMBER_RE = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")


# --------------------------------------------------------------------------- dict -> dataclass


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


@cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _type_name(hint: Any) -> str:
    if hint is int:
        return "an integer"
    if hint is float:
        return "a number"
    if hint is bool:
        return "true or false"
    if hint is str:
        return "a string"
    return str(hint)


def _build_rule(value: Any, path: str, source: str) -> QuestionRule:
    """A question-stop rule: the registered rule its `rule` key names (the default without)."""
    if not isinstance(value, Mapping):
        raise InputError(source, path, f"must be a mapping (got {type(value).__name__})")
    name = value.get("rule", DEFAULT_KIND)
    if name not in REGISTRY:
        choices = ", ".join(map(repr, REGISTRY))
        raise InputError(source, _join(path, "rule"), f"must be one of {choices} (got {name!r})")
    rest = {k: v for k, v in value.items() if k != "rule"}
    return _build(REGISTRY[name].cls, rest, path, source)  # type: ignore[no-any-return]


def _convert(hint: Any, value: Any, path: str, source: str) -> Any:
    origin = typing.get_origin(hint)
    if hint is QuestionRule:
        return _build_rule(value, path, source)
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return _build(hint, value, path, source)
    if origin is Literal:
        allowed = typing.get_args(hint)
        if value not in allowed or isinstance(value, bool):
            choices = ", ".join(map(repr, allowed))
            raise InputError(source, path, f"must be one of {choices} (got {value!r})")
        return value
    if origin in (Union, types.UnionType):
        args = typing.get_args(hint)
        if value is None and type(None) in args:
            return None
        (inner,) = [a for a in args if a is not type(None)]
        return _convert(inner, value, path, source)
    if origin is tuple:
        inner = typing.get_args(hint)[0]
        if not isinstance(value, (list, tuple)):
            raise InputError(source, path, "must be a list")
        return tuple(_convert(inner, v, f"{path}[{i}]", source) for i, v in enumerate(value))
    if hint is bool:
        if not isinstance(value, bool):
            raise InputError(source, path, f"must be true or false (got {value!r})")
        return value
    if hint in (int, float) and isinstance(value, str) and _NUMBER_RE.match(value.strip()):
        value = float(value) if hint is float or not value.strip().lstrip("+-").isdigit() else int(value)
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                return int(value)
            raise InputError(source, path, f"must be an integer (got {value!r})")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise InputError(source, path, f"must be a number (got {value!r})")
        if not math.isfinite(value):
            raise InputError(source, path, "must be a finite number")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise InputError(source, path, f"must be a string (got {value!r})")
        return value
    raise TypeError(f"unsupported type hint {hint!r} at {path}")  # a bug in the model, not input


def _build(cls: type, data: Any, path: str, source: str) -> Any:
    if not isinstance(data, Mapping):
        raise InputError(source, path or None, f"must be a mapping (got {type(data).__name__})")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for key in data:
        if key not in fields:
            raise InputError(
                source, _join(path, str(key)), f"unknown key (expected one of: {', '.join(fields)})"
            )
    hints = _hints(cls)
    kwargs: dict[str, Any] = {}
    for name, f in fields.items():
        if name in data:
            kwargs[name] = _convert(hints[name], data[name], _join(path, name), source)
            limit = LIMITS.get((cls.__name__, name))
            if limit is not None and isinstance(kwargs[name], (int, float)) and kwargs[name] > limit:
                raise InputError(source, _join(path, name), f"must be ≤ {limit:,g} (got {kwargs[name]:,})")
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise InputError(source, _join(path, name), "missing required key")
    try:
        return cls(**kwargs)
    except InputError as exc:  # raised by __post_init__ with a path relative to cls
        raise InputError(source, _join(path, exc.field or ""), exc.message) from None


def _merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def _resolve_base(data: Mapping[str, Any], source: str, depth: int) -> Mapping[str, Any]:
    if "base" not in data:
        return data
    spec = data["base"]
    if not isinstance(spec, str) or not spec:
        raise InputError(source, "base", "must be a preset name or a path")
    if depth >= _MAX_BASE_DEPTH:
        raise InputError(source, "base", f"chain of bases deeper than {_MAX_BASE_DEPTH} (a cycle?)")
    here = Path(source)
    looks_like_path = spec.endswith((".yaml", ".yml")) or "/" in spec
    if looks_like_path and not Path(spec).is_absolute() and here.is_file():
        spec = str(here.parent / spec)  # a relative base path is relative to the file naming it
    try:
        base = _load(spec, depth + 1)
    except InputError as exc:
        if exc.source != spec or exc.field is not None:
            raise  # a problem inside the base file: that file names it
        raise InputError(source, "base", f"{spec!r}: {exc.message}") from None
    rest = {k: v for k, v in data.items() if k != "base"}
    return _merge(policy_to_dict(base), rest)


def _from_dict(data: Any, source: str, depth: int) -> Policy:
    if not isinstance(data, Mapping):
        raise InputError(source, None, f"a policy must be a mapping (got {type(data).__name__})")
    return _build(Policy, _resolve_base(data, source, depth), "", source)


def policy_from_dict(data: Mapping[str, Any], source: str = "<dict>") -> Policy:
    """Build and validate a policy from plain data (as parsed from YAML or JSON).

    Raises:
        InputError: naming `source` and the field path of the first problem found.
    """
    return _from_dict(data, source, 0)


# --------------------------------------------------------------------------- dataclass -> dict


def _plain(hint: Any, value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        hints = _hints(type(value))
        out = {
            f.name: _plain(hints[f.name], getattr(value, f.name)) for f in dataclasses.fields(value)
        }
        if isinstance(value, QuestionRule) and value.KIND != DEFAULT_KIND:
            out = {"rule": value.KIND, **out}  # the default rule stays unnamed: hashes unchanged
        return out
    if isinstance(value, tuple):
        args = typing.get_args(hint)
        inner = args[0] if args else Any
        return [_plain(inner, v) for v in value]
    if value is None or isinstance(value, bool):
        return value
    is_union = typing.get_origin(hint) in (Union, types.UnionType)
    if hint is float or (is_union and float in typing.get_args(hint)):
        return float(value)  # an int passed for a float field must not change the hash
    return value


def policy_to_dict(policy: Policy) -> dict[str, Any]:
    """Plain data (dicts, lists, scalars) in field order; `policy_from_dict` inverts it."""
    return _plain(Policy, policy)


def policy_hash(policy: Policy) -> str:
    """A stable 16-hex-digit hash of everything the policy decides (its `name` excluded)."""
    data = policy_to_dict(policy)
    del data["name"]
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


# --------------------------------------------------------------------------- YAML


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that rejects a key given twice in one mapping (PyYAML keeps the last)."""


def _construct_mapping(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False) -> Any:
    loader.flatten_mapping(node)
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if isinstance(key, typing.Hashable) and key in seen:
            raise yaml.constructor.ConstructorError(
                "while constructing a mapping",
                node.start_mark,
                f"duplicate key {key!r}",
                key_node.start_mark,
            )
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


class _Dumper(yaml.SafeDumper):
    """Writes multi-line strings (prompts) double-quoted, so escapes stay visible."""


def _represent_str(dumper: _Dumper, value: str) -> yaml.ScalarNode:
    style = '"' if ("\n" in value or "\\" in value) else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _represent_str)


def policy_to_yaml(policy: Policy) -> str:
    """YAML text of the policy, with a comment line giving its hash."""
    body = yaml.dump(
        policy_to_dict(policy), Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=1 << 20
    )
    return f"# policy {policy.name}, hash {policy_hash(policy)}\n{body}"


def _parse_yaml(text: str, source: str) -> Any:
    try:
        data = yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise InputError(source, None, f"invalid YAML: {exc}") from None
    if data is None:
        raise InputError(source, None, "empty policy file")
    return data


def policy_from_yaml(text: str, source: str = "<yaml>") -> Policy:
    """Parse and validate YAML text; `source` names the origin in errors."""
    return _from_dict(_parse_yaml(text, source), source, 0)


def list_presets() -> list[str]:
    """Names of the bundled presets in data/policies/, sorted."""
    return sorted(p.stem for p in POLICIES_DIR.glob("*.yaml"))


def _locate(spec: str | Path) -> Path:
    path = Path(spec)
    if path.is_file():
        return path
    text = str(spec)
    if isinstance(spec, Path) or path.suffix in (".yaml", ".yml") or "/" in text or os.sep in text:
        raise InputError(text, None, "policy file not found")
    preset = POLICIES_DIR / f"{text}.yaml"
    if not preset.is_file():
        available = ", ".join(list_presets())
        raise InputError(text, None, f"unknown policy preset (available: {available})")
    return preset


def _load(spec: str | Path, depth: int) -> Policy:
    path = _locate(spec)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(str(path), None, f"cannot read: {exc}") from None
    data = _parse_yaml(text, str(path))
    if isinstance(data, Mapping) and "name" not in data:
        data = {**data, "name": path.stem}
    return _from_dict(data, str(path), depth)


def load_policy(spec: str | Path) -> Policy:
    """Load a policy by preset name (e.g. "seed-2nd-place") or by path to a YAML file.

    A file without `name` takes the file's stem as its name.

    Raises:
        InputError: unknown preset, missing or unreadable file, invalid YAML, invalid policy.
    """
    return _load(spec, 0)


def dump_policy(policy: Policy, path: str | Path, *, overwrite: bool = False) -> Path:
    """Write the policy as YAML, atomically; refuses to replace a file unless `overwrite`."""
    path = Path(path)
    if path.exists() and not overwrite:
        raise InputError(str(path), None, "file exists; refusing to overwrite it")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp's 0600 would make the policy unreadable to others
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(policy_to_yaml(policy))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


__all__ = [
    "dump_policy",
    "list_presets",
    "load_policy",
    "policy_from_dict",
    "policy_from_yaml",
    "policy_hash",
    "policy_to_dict",
    "policy_to_yaml",
]
