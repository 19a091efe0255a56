"""Import of external traces: the documented format round-trips into the store, every malformed
line is reported with its line number and field, and a failed import writes nothing."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aimo.recorder.importer import TraceImportError, import_traces, read_samples
from aimo.core.errors import InputError
from aimo.core.store import list_runs, load_chunks, load_problem_traces
from aimo.core.traces import NO_VALUE, SOURCE_BOXED, SOURCE_CODE

DATA = Path(__file__).parents[1] / "data" / "import"
PROBLEMS = DATA / "problems.csv"
SAMPLES = DATA / "samples.jsonl"
GOOD = {"problem_id": "p1", "sample": 0, "kind": "cot", "n_tokens": 100, "answer": 1}


def write_jsonl(path: Path, rows: list) -> Path:
    """One line per row: dicts as JSON, strings verbatim."""
    path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows) + "\n")
    return path


def table_counts(path: Path) -> dict[str, int]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return {t: con.execute(f"SELECT count(*) FROM {t}").fetchone()[0]  # noqa: S608
                for t in ("runs", "problems", "samples", "chunks", "answers", "questions_done")}
    finally:
        con.close()


@pytest.fixture()
def imported(tmp_path: Path) -> Path:
    out = tmp_path / "store.duckdb"
    import_traces(PROBLEMS, SAMPLES, out)
    return out


def test_fixture_imports_as_one_import_run(tmp_path: Path) -> None:
    out = tmp_path / "store.duckdb"
    summary = import_traces(PROBLEMS, SAMPLES, out)
    assert (summary.run_id, summary.n_problems, summary.n_samples, summary.n_answers) == ("import-samples", 3, 7, 8)
    assert summary.skipped_problems == ("p4",)
    text = summary.render()
    assert "import-samples" in text and "p4" in text
    (run,) = list_runs(out)
    assert run.kind == "import" and run.status == "complete" and run.n_samples == 7


def test_problems_keep_csv_order_text_and_answers(imported: Path) -> None:
    traces = load_problem_traces(imported)
    assert [(t.problem_id, t.position, t.answer) for t in traces] == [("p1", 0, 376), ("p2", 1, 50), ("p3", 2, None)]
    con = duckdb.connect(str(imported), read_only=True)
    question = con.execute("SELECT question FROM problems WHERE problem_id = 'p2'").fetchone()[0]
    con.close()
    assert question.startswith("A multi-line question:\nhow many")


def test_answer_forms_tokens_sources_and_times(imported: Path) -> None:
    p1, p2, p3 = load_problem_traces(imported)
    s0, s1, s2 = p1.samples
    # `answer` form: boxed, at the last token unless answer_token says otherwise; no time.
    assert list(s0.ans_token) == [3000] and list(s0.ans_value) == [376] and list(s0.ans_source) == [SOURCE_BOXED]
    assert s0.ans_time[0] != s0.ans_time[0]  # NaN
    assert list(s2.ans_token) == [2100] and list(s2.ans_value) == [276]
    # `answers` form with a list of answer times; a failed code run has no value.
    assert list(s1.ans_token) == [1500, 2300]
    assert list(s1.ans_value) == [NO_VALUE, 376]
    assert list(s1.ans_source) == [SOURCE_CODE, SOURCE_BOXED]
    assert list(s1.ans_code_ok) == [False, False] and s1.ans_exec_ms[0] == 850
    assert list(s1.ans_time) == [51.2, 80.4]
    assert s1.prompt_tokens == 180
    # chunk times: answers interpolated, code answers plus their exec time; end_s = last chunk.
    c0, c1 = p2.samples
    assert list(c0.ans_time) == pytest.approx([2.0, 6.0]) and c0.end_s == 6.0
    assert list(c1.ans_time) == pytest.approx([4.5]) and bool(c1.ans_code_ok[0])
    # answer null = no answer; an answer at the last token takes end_s.
    n0, n1 = p3.samples
    assert n0.n_answers == 0 and n0.finish_reason == "length"
    assert list(n1.ans_time) == [300.0] and n1.end_s == 300.0


def test_chunks_hold_times_and_text(imported: Path) -> None:
    chunks = load_chunks(imported, "import-samples", "p2")
    s0 = chunks[chunks["sample_idx"] == 0]
    assert list(s0["n_tokens"]) == [64, 128, 192] and list(s0["t_s"]) == [2.0, 4.0, 6.0]
    assert "".join(s0["text"]) == "<think>so \\boxed{48} wait, recount so \\boxed{50}"
    p3 = load_chunks(imported, "import-samples", "p3")
    assert list(p3["n_tokens"]) == [16384, 9000] and p3["text"].iloc[0] == "a long ramble with no boxed answer"


def test_explicit_run_id_and_two_imports_into_one_store(imported: Path) -> None:
    import_traces(PROBLEMS, SAMPLES, imported, run_id="second")
    assert [r.run_id for r in list_runs(imported)] == ["import-samples", "second"]


@pytest.mark.parametrize(
    ("row", "field", "fragment"),
    [
        ({**GOOD, "kind": "x"}, "kind", "expected 'cot' or 'code', got 'x'"),
        ({**GOOD, "answer": 1000}, "answer", "0..999"),
        ({**GOOD, "answer": -1}, "answer", "0..999"),
        ({**GOOD, "answer": "12"}, "answer", "expected an integer"),
        ({**GOOD, "answer": True}, "answer", "expected an integer"),
        ({**GOOD, "problem_id": "zz"}, "problem_id", "unknown problem 'zz'"),
        ({k: v for k, v in GOOD.items() if k != "n_tokens"}, "n_tokens", "missing"),
        ({**GOOD, "n_tokens": -5}, "n_tokens", ">= 0"),
        ({**GOOD, "sample": 1.5}, "sample", "expected an integer"),
        ({**GOOD, "finish_reason": "done"}, "finish_reason", "'stop' or 'length'"),
        ({**GOOD, "answer_token": 101}, "answer_token", "0..100"),
        ({**GOOD, "answerz": 3}, "answerz", "unknown key"),
        ({k: v for k, v in GOOD.items() if k != "answer"}, "answer", "exactly one of"),
        ({**GOOD, "answers": []}, "answers", "exactly one of"),
        ({**GOOD, "answer": None, "answer_token": 5}, "answer_token", "without an answer"),
        ({**GOOD, "times": [1.0, 2.0]}, "times", "one time per answer (1), got 2"),
        ({**GOOD, "times": [-1.0]}, "times[0]", "seconds >= 0"),
        ({**GOOD, "times": {"tokens": [50, 90], "t": [1.0, 2.0]}}, "times.tokens", "must equal n_tokens (100)"),
        ({**GOOD, "times": {"tokens": [60, 50, 100], "t": [1, 2, 3]}}, "times.tokens", "strictly increasing"),
        ({**GOOD, "times": {"tokens": [50, 100], "t": [2, 1]}}, "times.t", "non-decreasing"),
        ({**GOOD, "times": {"tokens": [100]}}, "times", '{"tokens"'),
        ({**GOOD, "text": 5}, "text", "expected a string"),
        ({**GOOD, "text": ["a", "b"]}, "text", "needs times.tokens"),
        ({**GOOD, "start_s": "soon"}, "start_s", "seconds >= 0"),
        ({**{k: v for k, v in GOOD.items() if k != "answer"}, "answers": [{"token": 5, "value": 1}]},
         "answers[0].source", "missing"),
        ({**{k: v for k, v in GOOD.items() if k != "answer"},
          "answers": [{"token": 5, "value": 1000, "source": "boxed"}]}, "answers[0].value", "0..999"),
        ({**{k: v for k, v in GOOD.items() if k != "answer"},
          "answers": [{"token": 5, "value": 1, "source": "llm"}]}, "answers[0].source", "'boxed' or 'code'"),
        ({**{k: v for k, v in GOOD.items() if k != "answer"},
          "answers": [{"token": 5, "value": 1, "source": "boxed", "exec_ms": 3}]}, "answers[0]", "code answers only"),
        ({**{k: v for k, v in GOOD.items() if k != "answer"}, "answers": {"token": 5}}, "answers", "expected a list"),
        ({**GOOD, "problem_id": ""}, "problem_id", "non-empty string"),
    ],
)
def test_each_malformed_field_is_reported_with_line_and_field(
    tmp_path: Path, row: dict, field: str, fragment: str
) -> None:
    samples = write_jsonl(tmp_path / "samples.jsonl", [GOOD | {"sample": 7}, row])
    with pytest.raises(TraceImportError) as info:
        import_traces(PROBLEMS, samples, tmp_path / "out.duckdb")
    err = info.value
    assert isinstance(err, InputError) and err.source == str(samples)
    hits = [e for e in err.errors if e.line == 2 and e.field == field]
    assert hits, [str(e) for e in err.errors]
    assert fragment in hits[0].message
    assert f"{samples}:2: field '{field}': " in str(err)
    assert not (tmp_path / "out.duckdb").exists()


def test_all_errors_of_both_files_are_collected_in_one_error(tmp_path: Path) -> None:
    problems = tmp_path / "problems.csv"
    problems.write_text("id,question,answer\np1,Q1,5\np2,Q2,1200\np1,dup,3\n,no id,4\np3,Q3,\n")
    samples = write_jsonl(tmp_path / "samples.jsonl", [
        GOOD,
        "not json at all",
        [1, 2],
        GOOD,  # duplicate (p1, 0)
        "",  # blank lines are skipped
        {**GOOD, "sample": 1, "kind": "x", "answer": 5000},
        {**GOOD, "sample": 2},
    ])
    with pytest.raises(TraceImportError) as info:
        import_traces(problems, samples, tmp_path / "out.duckdb")
    got = [(Path(e.file).name, e.line, e.field) for e in info.value.errors]
    assert got == [
        ("problems.csv", 3, "answer"),
        ("problems.csv", 4, "id"),
        ("problems.csv", 5, "id"),
        ("samples.jsonl", 2, None),
        ("samples.jsonl", 3, None),
        ("samples.jsonl", 4, "sample"),
        ("samples.jsonl", 6, "kind"),
        ("samples.jsonl", 6, "answer"),
    ]
    message = str(info.value)
    assert message.startswith(f"{problems}, {samples}: 8 errors, nothing imported:")
    assert "duplicate sample 0 of problem 'p1' (first on line 1)" in message
    assert "duplicate id 'p1' (first on line 2)" in message
    assert not (tmp_path / "out.duckdb").exists()


@pytest.mark.parametrize(
    ("csv_text", "field", "fragment"),
    [
        ("question,answer\nQ,1\n", "id", "missing column"),
        ("id,question\np1,Q\n", "answer", "missing column"),
        ("id,question,answer\np1,Q,1.5\n", "answer", "integer 0..999 or empty"),
        ("id,question,answer\np1,Q,1,extra\n", None, "more values than header"),
        ("", None, "missing column"),
    ],
)
def test_malformed_problems_csv(tmp_path: Path, csv_text: str, field: str | None, fragment: str) -> None:
    problems = tmp_path / "problems.csv"
    problems.write_text(csv_text)
    samples = write_jsonl(tmp_path / "samples.jsonl", [GOOD])
    with pytest.raises(TraceImportError) as info:
        import_traces(problems, samples, tmp_path / "out.duckdb")
    first = info.value.errors[0]
    assert first.file == str(problems) and fragment in str(first)
    if field is not None:
        assert first.field == field


def test_problem_alias_column_and_integer_ids(tmp_path: Path) -> None:
    problems = tmp_path / "problems.csv"
    problems.write_text("id,problem,answer,source\n17,What?,42,aime\n")
    samples = write_jsonl(tmp_path / "s.jsonl", [{"problem_id": 17, "sample": 0, "kind": "code", "n_tokens": 9,
                                                 "answer": 42}])
    out = tmp_path / "out.duckdb"
    import_traces(problems, samples, out, run_id="r")
    (trace,) = load_problem_traces(out)
    assert (trace.problem_id, trace.answer, trace.samples[0].kind) == ("17", 42, "code")


def test_missing_files_are_reported(tmp_path: Path) -> None:
    with pytest.raises(TraceImportError) as info:
        import_traces(tmp_path / "nope.csv", tmp_path / "nope.jsonl", tmp_path / "out.duckdb")
    assert {Path(e.file).name for e in info.value.errors} == {"nope.csv", "nope.jsonl"}
    assert all("cannot read" in e.message for e in info.value.errors)


def test_failed_import_leaves_an_existing_store_untouched(imported: Path, tmp_path: Path) -> None:
    before_runs = [(r.run_id, r.n_problems, r.n_samples, r.n_answers) for r in list_runs(imported)]
    before_counts = table_counts(imported)
    before_bytes = imported.read_bytes()
    bad = write_jsonl(tmp_path / "bad.jsonl", [GOOD, {**GOOD, "sample": 1, "answer": 1000}])
    with pytest.raises(TraceImportError):
        import_traces(PROBLEMS, bad, imported, run_id="new")
    assert imported.read_bytes() == before_bytes
    # A clashing run id is refused before anything is written, too.
    with pytest.raises(InputError) as info:
        import_traces(PROBLEMS, SAMPLES, imported)
    assert info.value.field == "run_id"
    assert [(r.run_id, r.n_problems, r.n_samples, r.n_answers) for r in list_runs(imported)] == before_runs
    assert table_counts(imported) == before_counts


def test_out_that_is_not_a_store_is_refused_and_kept(tmp_path: Path) -> None:
    out = tmp_path / "notes.duckdb"
    out.write_text("my notes")
    with pytest.raises(InputError):
        import_traces(PROBLEMS, SAMPLES, out)
    assert out.read_text() == "my notes"


def test_imported_store_can_be_copied_and_reimported(imported: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy.duckdb"
    shutil.copy(imported, copy)
    import_traces(PROBLEMS, SAMPLES, copy, run_id="again")
    first, second = (load_problem_traces(copy, r) for r in ("import-samples", "again"))
    for a, b in zip(first, second):
        for sa, sb in zip(a.samples, b.samples):
            assert list(sa.ans_value) == list(sb.ans_value) and list(sa.ans_token) == list(sb.ans_token)


_json = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 20000) | st.floats(allow_nan=True) | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=8,
)
_keys = st.sampled_from(["problem_id", "sample", "kind", "n_tokens", "answer", "answer_token", "answers",
                         "text", "finish_reason", "times", "prompt_tokens", "start_s", "end_s", "bogus",
                         "confidence"])


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(base=st.fixed_dictionaries({}, optional={"problem_id": st.sampled_from(["p1", "p2", "x"]),
                                                "sample": st.integers(-1, 3),
                                                "kind": st.sampled_from(["cot", "code", "x"]),
                                                "n_tokens": st.integers(-1, 300)}),
       extra=st.dictionaries(_keys, _json, max_size=4))
def test_parser_never_crashes_and_accepts_or_names_a_field(tmp_path: Path, base: dict, extra: dict) -> None:
    path = tmp_path / "h.jsonl"
    path.write_text(json.dumps({**base, **extra}) + "\n")
    errors: list = []
    samples = read_samples(path, {"p1", "p2"}, errors)
    assert len(samples) + (1 if errors else 0) == 1
    for e in errors:
        assert e.line == 1 and e.file == str(path) and e.message
    for s in samples:
        assert 0 <= s.n_tokens and all(0 <= a.token <= s.n_tokens for a in s.answers)
        assert all(a.value is None or 0 <= a.value <= 999 for a in s.answers)
        assert s.chunks[-1][0] == s.n_tokens


def test_cli_import_reports_every_error_and_exits_2(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from aimo.cli import app

    bad = write_jsonl(tmp_path / "bad.jsonl", [{**GOOD, "kind": "x"}, "{", GOOD])
    out = tmp_path / "out.duckdb"
    result = CliRunner().invoke(app, ["import", "--problems", str(PROBLEMS), "--samples", str(bad),
                                      "--out", str(out)])
    assert result.exit_code == 2
    assert f"{bad}:1: field 'kind'" in result.output and f"{bad}:2: not valid JSON" in result.output
    assert not out.exists()
    ok = CliRunner().invoke(app, ["import", "--problems", str(PROBLEMS), "--samples", str(SAMPLES),
                                  "--out", str(out), "--run-id", "mine"])
    assert ok.exit_code == 0 and "imported run mine" in ok.output


# --- per-token confidence (issue 17) ----------------------------------------------------------

SMALL = {"problem_id": "p1", "sample": 0, "kind": "cot", "n_tokens": 4, "answer": 1}


def test_confidence_arrays_round_trip_and_set_the_run_setting(tmp_path: Path) -> None:
    from aimo.core.traces import LogprobSetting

    rows = [
        {**SMALL, "confidence": {"token_conf": [1, 2.5, 3, 0], "token_entropy": [0.1, 0.2, 0, 2],
                                 "top_k": 8}},
        {**SMALL, "sample": 1, "confidence": {"token_conf": [4, 4, 4, 4]}},
        {**SMALL, "sample": 2},
        {**SMALL, "sample": 3, "confidence": None},
    ]
    out = tmp_path / "c.duckdb"
    summary = import_traces(PROBLEMS, write_jsonl(tmp_path / "s.jsonl", rows), out)
    assert summary.samples_with_confidence == 2 and "2 sample(s) with per-token confidence" in summary.render()
    (run,) = list_runs(out)
    assert run.logprobs == LogprobSetting(top_k=8, mode="imported")
    s0, s1, s2, s3 = load_problem_traces(out)[0].samples
    assert s0.token_conf.tolist() == [1, 2.5, 3, 0]
    assert s0.token_entropy.tolist() == pytest.approx([0.1, 0.2, 0, 2], rel=1e-3)
    assert s1.token_conf.tolist() == [4, 4, 4, 4] and s1.token_entropy is None
    assert s2.token_conf is None and s3.token_conf is None


def test_import_without_confidence_has_no_setting(imported: Path) -> None:
    assert list_runs(imported)[0].logprobs is None
    assert all(s.token_conf is None for t in load_problem_traces(imported) for s in t.samples)


@pytest.mark.parametrize(
    ("confidence", "field", "fragment"),
    [
        ([1, 2, 3, 4], "confidence", "expected an object"),
        ({}, "confidence.token_conf", "missing"),
        ({"token_conf": [1, 2, 3]}, "confidence.token_conf", "expected 4 values"),
        ({"token_conf": "1,2,3,4"}, "confidence.token_conf", "expected a list of 4 numbers"),
        ({"token_conf": [1, 2, "x", 4]}, "confidence.token_conf[2]", "expected a number, got 'x'"),
        ({"token_conf": [1, 2, None, 4]}, "confidence.token_conf[2]", "expected a number"),
        ({"token_conf": [1, True, 3, 4]}, "confidence.token_conf[1]", "expected a number"),
        ({"token_conf": [1, -2, 3, 4]}, "confidence.token_conf[1]", "finite number in 0..65504"),
        ({"token_conf": [1, 2, 3, 1e9]}, "confidence.token_conf[3]", "finite number"),
        ({"token_conf": [1, 2, 3, 4], "token_entropy": [0, 0]}, "confidence.token_entropy",
         "expected 4 values"),
        ({"token_conf": [1, 2, 3, 4], "top_k": 0}, "confidence.top_k", ">= 1"),
        ({"token_conf": [1, 2, 3, 4], "logprobs": [[0]]}, "confidence.logprobs", "unknown key"),
    ],
)
def test_bad_confidence_names_line_and_field(
    tmp_path: Path, confidence: object, field: str, fragment: str
) -> None:
    samples = write_jsonl(tmp_path / "s.jsonl", [SMALL, {**SMALL, "sample": 1, "confidence": confidence}])
    with pytest.raises(TraceImportError) as info:
        import_traces(PROBLEMS, samples, tmp_path / "out.duckdb")
    hits = [e for e in info.value.errors if e.line == 2 and e.field == field]
    assert hits, [str(e) for e in info.value.errors]
    assert fragment in hits[0].message
    assert not (tmp_path / "out.duckdb").exists()


def test_confidence_top_k_must_agree_across_lines(tmp_path: Path) -> None:
    rows = [{**SMALL, "confidence": {"token_conf": [1] * 4, "top_k": 8}},
            {**SMALL, "sample": 1, "confidence": {"token_conf": [1] * 4}},
            {**SMALL, "sample": 2, "confidence": {"token_conf": [1] * 4, "top_k": 20}}]
    with pytest.raises(TraceImportError) as info:
        import_traces(PROBLEMS, write_jsonl(tmp_path / "s.jsonl", rows), tmp_path / "o.duckdb")
    (err,) = info.value.errors
    assert (err.line, err.field) == (3, "confidence.top_k") and "line 1" in err.message
