"""Property-based fuzzing of the importer end to end (parse, validate, write the store): whatever
the two files hold, `import_traces` either imports or raises an InputError naming the file (and,
per line, the field), and a refused import leaves the store as it was. Unlike the parser fuzz in
test_importer.py, values are unbounded (ints beyond 32 bits, huge floats, NaN/Infinity), keys may
repeat and the CSV is arbitrary text, so store-level failures (DuckDB overflow, constraints)
are reached too."""

from __future__ import annotations

import json
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aimo.recorder.importer import import_traces
from aimo.core.errors import InputError
from aimo.core.store import list_runs

_scalar = (st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8)
           | st.sampled_from([2**31, 2**31 - 1, -(2**31) - 1, 2**63, 1e23, -0.0, 999, 1000]))
_json = st.recursive(
    _scalar,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=8,
)
_keys = st.sampled_from(["problem_id", "sample", "kind", "n_tokens", "answer", "answer_token", "answers",
                         "text", "finish_reason", "times", "prompt_tokens", "start_s", "end_s"])
_sample = st.fixed_dictionaries(
    {"problem_id": st.sampled_from(["p1", "p2"]), "sample": st.integers(0, 3),
     "kind": st.sampled_from(["cot", "code"]), "n_tokens": st.integers(1, 300)},
    optional={"answer": st.integers(0, 999)},
)


def _line(base: dict, extra: dict, dup: tuple[str, object] | None) -> str:
    text = json.dumps({**base, **extra})  # Infinity/NaN allowed, as Python's json writes them
    if dup is not None:  # the same key twice in one object
        text = text[:-1] + ("," if len(text) > 2 else "") + f"{json.dumps(dup[0])}: {json.dumps(dup[1])}}}"
    return text


_csv_text = st.one_of(
    st.just("id,question,answer\np1,q,1\np2,q,2\n"),
    st.text(max_size=80).map(lambda t: "id,question,answer\n" + t),
    st.lists(st.sampled_from(['p1', 'p2', '"', ',', '\n', '\r\n', '1', '\ufeff', 'q', '""', '\x00']),
             max_size=30).map(lambda parts: "id,question,answer\n" + "".join(parts)),
)


_extreme = st.sampled_from([2**31, 2**31 - 1, -(2**31) - 1, 2**63, 10**30, 1e23, 1e308, float("inf"),
                            float("nan"), -0.0, 999, 1000, -1])
_value_keys = st.sampled_from(["sample", "n_tokens", "answer", "answer_token", "prompt_tokens", "start_s",
                               "end_s"])


def _check(problems: Path, samples: Path, out: Path) -> None:
    """The property: imported whole, or refused with an InputError naming a file, leaving nothing."""
    try:
        summary = import_traces(problems, samples, out, run_id="fuzz")
    except InputError as exc:
        assert str(problems) in exc.source or str(samples) in exc.source or str(out) in exc.source, exc
        assert not out.exists() or list_runs(out) == []  # nothing written, no 'failed' run left
        return
    (run,) = list_runs(out)
    assert run.state == "finished" and run.n_problems == summary.n_problems


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lines=st.lists(st.tuples(_sample, st.dictionaries(_value_keys, _extreme | _scalar, max_size=2),
                                st.none() | st.tuples(_keys, _json)), min_size=1, max_size=4))
def test_import_of_extreme_values_never_crashes(tmp_path_factory, lines: list) -> None:
    tmp = tmp_path_factory.mktemp("fuzz")
    problems, samples = tmp / "p.csv", tmp / "s.jsonl"
    problems.write_text("id,question,answer\np1,q,1\np2,q,2\n")
    samples.write_text("\n".join(_line(*item) for item in lines) + "\n")
    _check(problems, samples, tmp / "o.duckdb")


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    lines=st.lists(st.tuples(_sample, st.dictionaries(_keys, _json, max_size=3),
                             st.none() | st.tuples(_keys, _json)), min_size=1, max_size=4),
    raw=st.lists(st.text(max_size=30), max_size=2),
    csv_text=_csv_text,
    bom=st.booleans(),
)
def test_import_of_garbage_never_crashes(tmp_path_factory, lines: list, raw: list[str], csv_text: str,
                                         bom: bool) -> None:
    tmp = tmp_path_factory.mktemp("fuzz")
    problems, samples = tmp / "p.csv", tmp / "s.jsonl"
    problems.write_bytes((b"\xef\xbb\xbf" if bom else b"") + csv_text.encode("utf-8", "surrogatepass"))
    body = [_line(*item) for item in lines] + [r.replace("\n", " ") for r in raw]
    samples.write_text("\n".join(body) + "\n", encoding="utf-8", errors="surrogatepass")
    _check(problems, samples, tmp / "o.duckdb")
