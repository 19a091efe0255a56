"""Property-based fuzzing of the policy loader: any YAML text, and any value put at any field path
of a valid policy, loads or raises an InputError naming the file and the field, quickly (no
value can make loading allocate without bound)."""

from __future__ import annotations

import copy
from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aimo.core.errors import InputError
from aimo.core.policy import load_policy, policy_from_dict, policy_to_dict, sample_kinds

BASE = policy_to_dict(load_policy("seed-2nd-place"))


def _paths(node: object, prefix: tuple = ()) -> list[tuple]:
    """Every path to a leaf or a list of the seed policy's plain data."""
    out: list[tuple] = []
    if isinstance(node, dict):
        for key, value in node.items():
            out.append((*prefix, key))
            out.extend(_paths(value, (*prefix, key)))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            out.append((*prefix, i))
            out.extend(_paths(value, (*prefix, i)))
    return out


PATHS = _paths(BASE)
_extreme = st.sampled_from([10**8, 2**31, 2**63, 1e9, "1e9", "1e400", "nan", "-0", 1e308, -1, 0])
_value = _extreme | st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=6),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=2),
    max_leaves=5,
)


def _set(data: dict, path: tuple, value: object) -> dict:
    out = copy.deepcopy(data)
    node = out
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return out


@settings(max_examples=400, deadline=None)
@given(edits=st.lists(st.tuples(st.sampled_from(PATHS), _value), min_size=1, max_size=3))
def test_any_value_at_any_field_loads_or_names_the_field(edits: list) -> None:
    data = BASE
    for path, value in edits:
        try:
            data = _set(data, path, value)
        except (KeyError, IndexError, TypeError):
            continue  # an earlier edit replaced the parent
    try:
        policy = policy_from_dict(data, "fuzz.yaml")
    except InputError as exc:
        assert exc.source == "fuzz.yaml" and exc.message
        return
    # What the solver does first with a policy: the prompt kinds of each level's samples. With
    # 100,000,000 samples this allocated gigabytes; accepted policies must stay small.
    for level in policy.schedule.levels:
        assert len(sample_kinds(policy.samples, level.samples)) <= 1024


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(max_size=60) | st.builds(lambda d: yaml.safe_dump(d), st.dictionaries(
    st.sampled_from(["name", "base", "schedule", "vote", "samples", "x"]), _value, max_size=3)))
def test_any_yaml_file_loads_or_is_refused_naming_the_file(tmp_path_factory, text: str) -> None:
    path = Path(tmp_path_factory.mktemp("pol")) / "p.yaml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    try:
        load_policy(path)
    except InputError as exc:
        assert str(path) in exc.source or "p.yaml" in str(exc) or exc.field == "base", exc
