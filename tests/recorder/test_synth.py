"""Synthetic trace stores: calibration against the seed's figures, determinism, structure of the
tables, re-extraction of the answers from the chunk text, and bad input."""

from __future__ import annotations

import json
import re
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pytest

from aimo.recorder.calibration import check_calibration, main as calibration_main
from aimo.recorder.synth import (
    _EXEC_ERRORS,
    decode_time_table,
    problem_specs,
    synthesize_questions,
    synthesize_store,
)
from aimo.recorder.synth_profiles import CONFIDENCE_TARGETS, PROFILES, R1_14B
from aimo.core.errors import InputError
from aimo.solver.extraction import StreamingExtractor
from aimo.core.store import list_runs, load_problem_traces

TABLES = ("runs", "problems", "samples", "chunks", "answers", "questions_done")


@pytest.fixture(scope="module")
def default_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The default store (50 problems x 32 samples, seed 0, r1-14b), built once for the module."""
    path = tmp_path_factory.mktemp("synth") / "default.duckdb"
    synthesize_store(path)
    return path


def test_default_store_meets_every_calibration_target(default_store: Path) -> None:
    report = check_calibration(default_store)
    failed = [(r.target.metric, r.measured) for r in report.rows if r.status != "pass"]
    assert report.profile == "r1-14b"
    assert not failed, report.render()
    assert report.passed
    assert report.render().splitlines()[-1].endswith("PASS")


def test_calibration_cli_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tiny = tmp_path / "tiny.duckdb"
    synthesize_store(tiny, n_problems=2, n_samples=2)
    assert calibration_main([str(tiny)]) == 1  # two problems cannot meet the 50-problem bands
    out = capsys.readouterr().out
    assert "mean_tokens" in out and out.rstrip().endswith("FAIL")
    assert calibration_main([str(tmp_path / "missing.duckdb")]) == 2
    assert "no such trace store" in capsys.readouterr().err
    assert calibration_main([str(tiny), "--profile", "nope"]) == 2
    assert "profile" in capsys.readouterr().err


def test_default_store_is_one_complete_synthetic_run(default_store: Path) -> None:
    (run,) = list_runs(default_store)
    assert run.kind == "synthetic" and run.status == "complete"
    assert (run.n_problems, run.n_samples) == (50, 50 * 32)
    assert run.gen_config["profile"] == "r1-14b" and run.gen_config["seed"] == 0


def _bulk_store(path: Path, profile: str, seed: int) -> None:
    """The same tables `synthesize_store` writes, in one transaction (fast; the writer path itself
    is covered by the default store)."""
    from aimo.core.store import init_store, write_connection

    from aimo.recorder.synth import run_info

    info = run_info(PROFILES[profile], 50, 32, seed)
    init_store(path)
    with write_connection(path) as con:
        con.execute("BEGIN TRANSACTION")
        con.execute("INSERT INTO runs (run_id, kind, gen_config, status) VALUES ($r, 'synthetic', $g, 'complete')",
                    {"r": info.run_id, "g": json.dumps(info.gen_config)})
        for q in synthesize_questions(50, 32, seed, profile):
            key = {"r": info.run_id, "p": q.spec.problem_id}
            con.execute("INSERT INTO problems VALUES ($r, $p, $pos, $q, $a)",
                        {**key, "pos": q.spec.position, "q": q.question, "a": q.spec.answer})
            for name in ("samples", "chunks", "answers"):
                table = getattr(q, name)
                con.register("incoming", table)
                cols = ", ".join(table.column_names)
                con.execute(f"INSERT INTO {name} (run_id, problem_id, {cols}) "  # noqa: S608
                            f"SELECT $r, $p, {cols} FROM incoming", key)
                con.unregister("incoming")
            con.execute("INSERT INTO questions_done (run_id, problem_id) VALUES ($r, $p)", key)
        con.execute("COMMIT")


@pytest.mark.parametrize("profile", ["easy-mix", "hard-mix"])
def test_other_profiles_meet_their_own_targets(tmp_path: Path, profile: str) -> None:
    path = tmp_path / f"{profile}.duckdb"
    _bulk_store(path, profile, seed=3)
    report = check_calibration(path)
    assert report.profile == profile
    assert report.passed, report.render()


def test_profiles_differ_in_difficulty() -> None:
    def mean_tokens(profile: str) -> float:
        qs = list(synthesize_questions(30, 8, seed=1, profile=profile))
        return float(np.mean(np.concatenate([q.samples.column("n_tokens").to_numpy() for q in qs])))

    assert mean_tokens("easy-mix") < mean_tokens("r1-14b") < mean_tokens("hard-mix")


def test_same_seed_gives_identical_tables_and_another_seed_does_not() -> None:
    a = list(synthesize_questions(6, 8, seed=11))
    b = list(synthesize_questions(6, 8, seed=11))
    c = list(synthesize_questions(6, 8, seed=12))
    for qa, qb in zip(a, b):
        assert qa.spec == qb.spec and qa.question == qb.question and qa.wall_s == qb.wall_s
        for name in ("samples", "chunks", "answers"):
            assert getattr(qa, name).equals(getattr(qb, name))
    assert any(not qa.answers.equals(qc.answers) for qa, qc in zip(a, c))


def test_same_seed_gives_identical_stores(tmp_path: Path) -> None:
    paths = [tmp_path / "a.duckdb", tmp_path / "b.duckdb"]
    for path in paths:
        synthesize_store(path, n_problems=4, n_samples=6, seed=5)
    dumps = []
    for path in paths:
        con = duckdb.connect(str(path), read_only=True)
        try:
            dumps.append({
                t: con.execute(f"SELECT * EXCLUDE ({_volatile(t)}) FROM {t} ORDER BY ALL").fetchall()  # noqa: S608
                for t in TABLES
            })
        finally:
            con.close()
    assert dumps[0] == dumps[1]
    assert len(dumps[0]["chunks"]) > 0


def _volatile(table: str) -> str:
    """Columns that hold wall-clock timestamps of the write itself."""
    runs = "created_at, writer_pid, writer_host, heartbeat_at, finished_at"
    return {"runs": runs, "questions_done": "committed_at"}.get(table, "run_id")


def test_problem_prefix_does_not_depend_on_store_size() -> None:
    small = list(synthesize_questions(5, 4, seed=2))
    big = list(synthesize_questions(5, 9, seed=2))
    for qs, qb in zip(small, big):
        assert qs.spec == qb.spec  # latent problem parameters are fixed by (seed, position)


def test_tables_have_the_documented_structure() -> None:
    cap = R1_14B.max_new_tokens
    questions = list(synthesize_questions(12, 16, seed=4))
    n_no_answer = 0
    for q in questions:
        s = q.samples.to_pydict()
        assert s["sample_idx"] == list(range(16))
        assert s["kind"] == ["cot" if i % 2 == 0 else "code" for i in range(16)]
        assert all(0 < n <= cap for n in s["n_tokens"])
        assert all(n == cap for n, f in zip(s["n_tokens"], s["finish_reason"]) if f == "length")
        assert all(e > st >= 0 for st, e in zip(s["start_s"], s["end_s"]))
        a = q.answers.to_pylist()
        ends = dict(zip(s["sample_idx"], s["n_tokens"]))
        finish = dict(zip(s["sample_idx"], s["finish_reason"]))
        for i in range(16):
            rows = [r for r in a if r["sample_idx"] == i]
            tokens = [r["token_pos"] for r in rows]
            assert tokens == sorted(set(tokens)) and all(0 < t <= ends[i] for t in tokens)
            if not any(r["value"] is not None for r in rows):
                n_no_answer += 1
                assert finish[i] == "length"  # only truncated samples end without an answer
            if i % 2 == 0:
                assert all(r["source"] == "boxed" for r in rows)
        for r in a:
            if r["source"] == "boxed":
                assert r["code_ok"] is None and r["exec_ms"] is None and r["error"] is None
                assert r["value"] is not None and 0 <= r["value"] <= 999
            elif r["code_ok"] is False:
                assert r["value"] is None and r["error"] and r["exec_ms"] > 0
            else:
                assert r["error"] is None and r["exec_ms"] > 0
        assert q.spec.answer in range(1000)
    assert n_no_answer > 0


def test_code_answers_arrive_at_block_close_plus_exec_time() -> None:
    (q,) = synthesize_questions(1, 32, seed=7)
    chunks = q.chunks.to_pandas().set_index(["sample_idx", "n_tokens"])["t_s"]
    answers = q.answers.to_pandas()
    for r in answers.itertuples():
        chunk_t = chunks.loc[(r.sample_idx, r.token_pos)]
        extra = r.exec_ms / 1000 if r.source == "code" else 0.0
        assert r.t_s == pytest.approx(chunk_t + extra, abs=2e-3)


def test_chunk_text_reextracts_the_answers_table_with_the_solver_extractor() -> None:
    for q in synthesize_questions(8, 16, seed=9):
        chunks, answers = q.chunks.to_pylist(), q.answers.to_pylist()
        for i in range(16):
            ex, found_boxed, found_code = StreamingExtractor("exact"), [], []
            for c in (c for c in chunks if c["sample_idx"] == i):
                got = ex.feed(c["text"], c["n_tokens"])
                found_boxed += [(a.token, a.value) for a in got.answers]
                found_code += [(b.token, b.code) for b in got.code_blocks]
            rows = [r for r in answers if r["sample_idx"] == i]
            assert found_boxed == [(r["token_pos"], r["value"]) for r in rows if r["source"] == "boxed"]
            code_rows = [r for r in rows if r["source"] == "code"]
            assert [t for t, _ in found_code] == [r["token_pos"] for r in code_rows]
            for (_, code), r in zip(found_code, code_rows):
                if r["value"] is not None:  # a successful run prints the recorded value
                    assert re.fullmatch(rf"result = {r['value']}\nprint\(result\)", code)


@pytest.mark.parametrize(("code", "error"), _EXEC_ERRORS)
def test_failing_code_snippets_raise_the_recorded_error(code: str, error: str) -> None:
    with pytest.raises(Exception) as info:
        exec(compile(code, "<snippet>", "exec"), {})  # noqa: S102 - fixed snippets of this module
    assert f"{type(info.value).__name__}: {info.value}" == error


def test_decode_curve_matches_the_published_4xl4_figures() -> None:
    times = decode_time_table(R1_14B)
    assert times[13007] == pytest.approx(423, rel=0.01)
    assert 1024 / times[1024] == pytest.approx(36, rel=0.02)
    assert 1024 / (times[16384] - times[15360]) == pytest.approx(20.7, rel=0.03)


def test_truth_answers_spread_and_include_small_or_round_values() -> None:
    answers = [s.answer for s in problem_specs(R1_14B, 200, seed=0)]
    small_or_round = [a for a in answers if a <= 20 or a % 100 == 0]
    assert 10 <= len(small_or_round) <= 40
    assert 300 <= float(np.median(answers)) <= 700
    assert len(set(answers)) > 150


def test_hard_problems_have_attractors_that_can_fool_a_vote() -> None:
    fooled = 0
    for q in synthesize_questions(50, 32, seed=0):
        if q.spec.tier != "hard":
            continue
        a = q.answers.to_pandas()
        finals = a.dropna(subset=["value"]).groupby("sample_idx")["value"].last()
        counts = finals.value_counts()
        if len(counts) and counts.index[0] != q.spec.answer and counts.iloc[0] >= 3:
            fooled += 1
            assert counts.index[0] in q.spec.attractors
    assert fooled >= 5


def test_unknown_profile_is_an_input_error_naming_profile(tmp_path: Path) -> None:
    with pytest.raises(InputError) as info:
        synthesize_store(tmp_path / "x.duckdb", profile="r1-70b")
    assert info.value.field == "profile"
    assert "r1-70b" in str(info.value) and "r1-14b" in str(info.value)
    assert not (tmp_path / "x.duckdb").exists()
    with pytest.raises(InputError):
        list(synthesize_questions(profile="nope"))


@pytest.mark.parametrize(("kwargs", "field"), [({"n_problems": 0}, "n_problems"), ({"n_samples": -1}, "n_samples")])
def test_bad_sizes_are_input_errors(tmp_path: Path, kwargs: dict, field: str) -> None:
    with pytest.raises(InputError) as info:
        synthesize_store(tmp_path / "x.duckdb", **kwargs)
    assert info.value.field == field


def test_existing_out_is_refused_and_left_untouched(tmp_path: Path) -> None:
    path = tmp_path / "mine.duckdb"
    path.write_bytes(b"precious")
    with pytest.raises(InputError) as info:
        synthesize_store(path)
    assert info.value.field == "out"
    assert path.read_bytes() == b"precious"


def test_a_failed_write_leaves_no_partial_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from aimo.core.store import TraceWriter

    calls = {"n": 0}
    original = TraceWriter.write_question

    def flaky(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == 2:
            raise OSError("disk full")
        return original(self, *args, **kwargs)

    monkeypatch.setattr(TraceWriter, "write_question", flaky)
    path = tmp_path / "sub" / "x.duckdb"
    with pytest.raises(OSError):
        synthesize_store(path, n_problems=3, n_samples=2)
    assert not path.exists()


def test_small_store_loads_for_the_simulator_and_is_quiet(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "small.duckdb"
    summary = synthesize_store(path, n_problems=3, n_samples=4, seed=1)
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""  # no progress bar off a terminal
    traces = load_problem_traces(path)
    assert [t.position for t in traces] == [0, 1, 2]
    assert all(len(t.samples) == 4 for t in traces)
    text = summary.render()
    assert "3 problems x 4 samples" in text and "MB on disk" in text
    assert summary.n_answers == sum(s.n_answers for t in traces for s in t.samples)


def test_every_profile_has_targets_for_known_metrics() -> None:
    from aimo.recorder.calibration import METRICS

    for profile in PROFILES.values():
        names = [t.metric for t in profile.targets]
        assert len(names) == len(set(names))
        assert set(names) <= set(METRICS)
        assert all(t.lo <= t.hi for t in profile.targets)


def test_tables_are_arrow_with_writer_columns() -> None:
    (q,) = synthesize_questions(1, 2, seed=0)
    assert isinstance(q.samples, pa.Table)
    assert q.samples.column_names == ["sample_idx", "kind", "prompt_tokens", "start_s", "end_s",
                                      "n_tokens", "finish_reason"]
    assert q.chunks.column_names == ["sample_idx", "seq", "t_s", "n_tokens", "text"]
    assert q.answers.column_names == ["sample_idx", "token_pos", "t_s", "source", "value", "code_ok",
                                      "exec_ms", "error"]


def test_cli_synth_writes_a_store_and_refuses_to_overwrite(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from aimo.cli import app

    out = tmp_path / "cli.duckdb"
    args = ["synth", "--out", str(out), "--problems", "3", "--samples", "4", "--profile", "easy-mix"]
    first = CliRunner().invoke(app, args)
    assert first.exit_code == 0 and "profile easy-mix" in first.output
    again = CliRunner().invoke(app, args)
    assert again.exit_code == 2 and "already exists" in again.output
    bad = CliRunner().invoke(app, ["synth", "--out", str(tmp_path / "x.duckdb"), "--profile", "zz"])
    assert bad.exit_code == 2 and "profile" in bad.output


# --- confidence (issue 17) and the long-reasoning profile ----------------------------------------


def test_confidence_changes_no_other_table_and_is_deterministic() -> None:
    plain = list(synthesize_questions(6, 8, seed=5))
    with_conf = list(synthesize_questions(6, 8, seed=5, confidence=True))
    again = list(synthesize_questions(6, 8, seed=5, confidence=True))
    for p, c, a in zip(plain, with_conf, again):
        assert p.confidence is None
        for name in ("samples", "chunks", "answers"):
            assert getattr(p, name).equals(getattr(c, name))
        n_tokens = dict(zip(c.samples.column("sample_idx").to_pylist(),
                            c.samples.column("n_tokens").to_pylist()))
        assert sorted(c.confidence) == sorted(n_tokens)
        for idx, sc in c.confidence.items():
            assert sc.token_conf.shape == sc.token_entropy.shape == (n_tokens[idx],)
            assert sc.token_conf.dtype == np.float32
            assert (sc.token_conf > 0).all() and (sc.token_entropy >= 0).all()
            assert (sc.token_entropy <= np.log(8) + 1e-6).all()
            np.testing.assert_array_equal(sc.token_conf, a.confidence[idx].token_conf)


def test_default_store_has_no_confidence(default_store: Path) -> None:
    (run,) = list_runs(default_store)
    assert run.logprobs is None and "confidence" not in run.gen_config
    traces = load_problem_traces(default_store)
    assert all(s.token_conf is None for t in traces for s in t.samples)


def test_long_reasoning_store_with_confidence_meets_every_target(tmp_path: Path) -> None:
    path = tmp_path / "long.duckdb"
    summary = synthesize_store(path, profile="long-reasoning", confidence=True)
    report = check_calibration(path)
    assert report.profile == "long-reasoning"
    metrics = {r.target.metric for r in report.rows}
    assert {"median_tokens", "p90_tokens", "share_over_16k", "conf_auroc_lowest"} <= metrics
    assert report.passed, report.render()
    (run,) = list_runs(path)
    assert run.gen_config["max_new_tokens"] == 32768 and run.gen_config["confidence"] is True
    assert run.logprobs is not None and run.logprobs.top_k == 8
    traces = load_problem_traces(path)
    assert max(s.n_tokens for t in traces for s in t.samples) == 32768
    assert all(s.token_conf is not None and s.token_conf.size == s.n_tokens
               for t in traces for s in t.samples)
    assert summary.mean_tokens > 12000
    only = check_calibration(path, confidence_only=True)
    assert [r.target for r in only.rows] == list(CONFIDENCE_TARGETS)
