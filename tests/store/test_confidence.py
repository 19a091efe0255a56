"""Tests of per-token confidence in the store (migration 003): round trip through float16, old
stores stay readable without it, bad arrays are refused naming the field, the run's logprob
setting is kept and checked on resume."""

from __future__ import annotations

from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

from aimo.core.errors import InputError
from aimo.core.store import (
    ProblemRow,
    SampleConfidence,
    TraceWriter,
    list_runs,
    load_problem_traces,
    write_connection,
)
from aimo.core.store.migrations import MIGRATIONS, apply_migrations
from aimo.core.traces import LogprobSetting, RunInfo

CONF = "sample_confidence.token_conf (sample 0)"
SETTING = LogprobSetting(top_k=8, mode="raw_logprobs", backend="pytorch")
RUN = RunInfo("r1", "record", model="m", backend="pytorch", logprobs=SETTING)


def _samples(n_tokens: list[int]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "sample_idx": list(range(len(n_tokens))),
            "kind": ["cot"] * len(n_tokens),
            "n_tokens": n_tokens,
            "finish_reason": ["stop"] * len(n_tokens),
        }
    )


def _empty_chunks() -> pd.DataFrame:
    return pd.DataFrame({"sample_idx": [], "seq": [], "n_tokens": []})


def _empty_answers() -> pd.DataFrame:
    return pd.DataFrame({"sample_idx": [], "token_pos": [], "source": [], "value": []})


def _write(
    writer: TraceWriter, pid: str, position: int, n_tokens: list[int], confidence: dict
) -> None:
    writer.write_question(
        "r1",
        ProblemRow(pid, position, "Q", 1),
        _samples(n_tokens),
        _empty_chunks(),
        _empty_answers(),
        confidence=confidence,
    )


@pytest.fixture()
def store(tmp_path: Path) -> Path:
    path = tmp_path / "c.duckdb"
    TraceWriter(path).start_run(RUN)
    return path


def test_confidence_round_trips_as_float16_and_missing_samples_are_none(store: Path) -> None:
    rng = np.random.default_rng(0)
    conf0 = rng.uniform(0, 20, 50)
    ent0 = rng.uniform(0, np.log(8), 50)
    conf2 = rng.uniform(0, 20, 7)
    writer = TraceWriter(store)
    _write(
        writer,
        "p1",
        1,
        [50, 3, 7, 0],
        {
            0: SampleConfidence(conf0, ent0),
            2: SampleConfidence(conf2),
            3: SampleConfidence(np.zeros(0)),
        },
    )
    _write(writer, "p0", 0, [4], {0: SampleConfidence([1.0, 2.0, 3.0, 4.5], [0.1, 0.2, 0.3, 0.4])})
    traces = load_problem_traces(store)
    assert [t.problem_id for t in traces] == ["p0", "p1"]
    first = traces[0].samples[0]
    assert first.token_conf.dtype == np.float32
    np.testing.assert_array_equal(first.token_conf, [1.0, 2.0, 3.0, 4.5])
    np.testing.assert_allclose(first.token_entropy, [0.1, 0.2, 0.3, 0.4], rtol=1e-3)
    s0, s1, s2, s3 = traces[1].samples
    np.testing.assert_allclose(s0.token_conf, conf0, rtol=1e-3)  # float16: ~3 digits
    np.testing.assert_allclose(s0.token_entropy, ent0, rtol=1e-3)
    assert s1.token_conf is None and s1.token_entropy is None
    np.testing.assert_allclose(s2.token_conf, conf2, rtol=1e-3)
    assert s2.token_entropy is None
    assert s3.token_conf is not None and s3.token_conf.shape == (0,)
    assert not s0.token_conf.flags.writeable
    without = load_problem_traces(store, confidence=False)
    assert all(s.token_conf is None for t in without for s in t.samples)
    assert list_runs(store)[0].logprobs == SETTING
    assert list_runs(store)[0].info.logprobs == SETTING


def test_old_store_without_migration_003_is_readable_without_confidence(tmp_path: Path) -> None:
    path = tmp_path / "old.duckdb"
    con = duckdb.connect(str(path))
    apply_migrations(con, MIGRATIONS[:1])
    con.execute("INSERT INTO runs (run_id, kind, status) VALUES ('old', 'record', 'complete')")
    con.execute("INSERT INTO problems VALUES ('old', 'p', 0, 'Q', 5)")
    con.execute(
        "INSERT INTO samples (run_id, problem_id, sample_idx, kind, n_tokens, finish_reason) "
        "VALUES ('old', 'p', 0, 'cot', 12, 'stop')"
    )
    con.execute("INSERT INTO questions_done (run_id, problem_id) VALUES ('old', 'p')")
    con.close()
    (trace,) = load_problem_traces(path)
    assert trace.samples[0].n_tokens == 12
    assert trace.samples[0].token_conf is None and trace.samples[0].token_entropy is None
    (run,) = list_runs(path)
    assert run.logprobs is None
    TraceWriter(path)  # a writer migrates it forward; the old run still loads
    (trace,) = load_problem_traces(path)
    assert trace.samples[0].token_conf is None


@pytest.mark.parametrize(
    ("confidence", "field", "words"),
    [
        ({0: SampleConfidence(np.ones(4))}, "sample_confidence.token_conf (sample 0)", "4 values"),
        (
            {0: SampleConfidence(np.ones(5), np.ones(6))},
            "sample_confidence.token_entropy (sample 0)",
            "6 values",
        ),
        ({0: SampleConfidence(np.full(5, -1.0))}, "sample_confidence.token_conf (sample 0)", "-1"),
        (
            {0: SampleConfidence(np.array([1, 2, np.nan, 1, 1]))},
            "sample_confidence.token_conf (sample 0)",
            "token 2",
        ),
        ({0: SampleConfidence(np.full(5, 1e6))}, CONF, "1e+06"),
        ({0: SampleConfidence(np.ones((5, 2)))}, "sample_confidence.token_conf (sample 0)", "1-d"),
        ({0: SampleConfidence(["a"] * 5)}, "sample_confidence.token_conf (sample 0)", "numbers"),
        ({9: SampleConfidence(np.ones(5))}, "sample_confidence.sample_idx", "sample 9"),
        ({0: np.ones(5)}, "sample_confidence", "SampleConfidence"),
    ],
)
def test_bad_confidence_names_the_field_and_writes_nothing(
    store: Path, confidence: dict, field: str, words: str
) -> None:
    with pytest.raises(InputError) as info:
        _write(TraceWriter(store), "p", 0, [5], confidence)
    assert info.value.field == field
    assert words in info.value.message
    assert "question 'p'" in info.value.message
    assert load_problem_traces(store) == []


def test_corrupted_blob_is_reported_naming_the_store(store: Path) -> None:
    _write(TraceWriter(store), "p", 0, [5], {0: SampleConfidence(np.ones(5))})
    with write_connection(store) as con:
        con.execute("UPDATE sample_confidence SET token_conf = '\\x00\\x3C'::BLOB")
    with pytest.raises(InputError) as info:
        load_problem_traces(store)
    assert info.value.source == str(store)
    assert info.value.field == "sample_confidence.token_conf"


def test_resume_with_another_logprob_setting_is_refused(store: Path) -> None:
    writer = TraceWriter(store)
    writer.start_run(RUN, resume=True)  # same setting: fine
    other = RunInfo("r1", "record", model="m", backend="pytorch", logprobs=None)
    with pytest.raises(InputError) as info:
        writer.start_run(other, resume=True)
    assert info.value.field == "runs.logprobs"


def test_resume_deletes_confidence_of_questions_without_marker(store: Path) -> None:
    _write(TraceWriter(store), "p", 0, [5], {0: SampleConfidence(np.ones(5))})
    with write_connection(store) as con:
        con.execute("DELETE FROM questions_done")
    TraceWriter(store).start_run(RUN, resume=True)
    with write_connection(store) as con:
        assert con.execute("SELECT count(*) FROM sample_confidence").fetchall() == [(0,)]
    _write(TraceWriter(store), "p", 0, [5], {0: SampleConfidence(np.full(5, 2.0))})
    (trace,) = load_problem_traces(store)
    np.testing.assert_array_equal(trace.samples[0].token_conf, np.full(5, 2.0))
