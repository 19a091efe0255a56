"""`aimo record` on CPU: a scripted engine stands in for the GPU (the recorder accepts any Engine).

Covers what is stored (chunks, boxed answers at their token, code runs), that code runs do not
hold the stream up, resume after a crash without duplicates, bad input, and the lmdeploy adapter
end to end against the lmdeploy test double.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import duckdb
import numpy as np
import pytest
from fake_lmdeploy import make_fake_lmdeploy
from hypothesis import given, settings
from hypothesis import strategies as st

from aimo.recorder.record import (
    InputError,
    parse_prompt_mix,
    run_record,
    sample_kinds,
)
from aimo.solver.engines.base import Chunk, PromptSpec, SamplingSettings
from aimo.solver.sandbox import SandboxLimits
from aimo.core.store import list_runs

LIMITS = SandboxLimits(timeout_s=10.0, cpu_s=20, memory_mb=1024)
BOXED = "Let me think. So the answer is \\boxed{42}. Done."
CODE = "Code:\n```python\nprint(6 + 1)\n```\nThus \\boxed{7}"


def tokens_of(text: str, size: int = 3) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)]


class ScriptedStream:
    """Round-robin chunks of scripted per-sample texts; optional real-time pacing per step."""

    def __init__(self, texts: Sequence[str], step_s: float, max_new_tokens: int) -> None:
        self.toks = [tokens_of(t)[:max_new_tokens] for t in texts]
        self.max_new_tokens = max_new_tokens
        self.step_s = step_s
        self.t0 = time.monotonic()
        self.cancelled: set[int] = set()

    def now(self) -> float:
        return time.monotonic() - self.t0

    def prompt_tokens(self, sample: int) -> int:
        return 11 + sample

    async def cancel(self, sample: int) -> None:
        self.cancelled.add(sample)

    async def cancel_all(self) -> None:
        self.cancelled.update(range(len(self.toks)))

    def __aiter__(self) -> AsyncIterator[Chunk]:
        return self._run()

    async def _run(self) -> AsyncIterator[Chunk]:
        pos = [0] * len(self.toks)
        live = set(range(len(self.toks)))
        while live:
            if self.step_s:
                await asyncio.sleep(self.step_s)
            for s in sorted(live):
                n = pos[s] = pos[s] + 1
                toks = self.toks[s]
                end = None
                if s in self.cancelled:
                    end = "abort"
                elif n >= len(toks):
                    end = "length" if n >= self.max_new_tokens else "stop"
                yield Chunk(s, toks[n - 1] if n <= len(toks) else "", n, self.now(), end)
                if end:
                    live.discard(s)


class ScriptedEngine:
    """An Engine whose samples say scripted texts: texts_for(problem_id, spec) -> text."""

    name = "scripted"
    backend = "scripted"
    quantization = "none"

    def __init__(self, texts_for, *, step_s: float = 0.0, fail_on: str | None = None) -> None:
        self.texts_for = texts_for
        self.step_s = step_s
        self.fail_on = fail_on
        self.questions: list[str] = []
        self.closed = False

    async def start_question(
        self,
        question_id: str,
        question: str,
        prompts: Sequence[PromptSpec],
        sampling: SamplingSettings,
    ) -> ScriptedStream:
        if question_id == self.fail_on:
            raise RuntimeError("engine died")
        self.questions.append(question_id)
        return ScriptedStream(
            [self.texts_for(question_id, p) for p in prompts], self.step_s, sampling.max_new_tokens
        )

    async def close(self) -> None:
        self.closed = True


def write_csv(path: Path, rows: Sequence[tuple[str, str, str]]) -> Path:
    path.write_text("id,question,answer\n" + "".join(f"{a},{b},{c}\n" for a, b, c in rows))
    return path


@pytest.fixture
def problems(tmp_path: Path) -> Path:
    return write_csv(
        tmp_path / "p.csv",
        [("p1", "What is 6*7?", "42"), ("p2", "What is 3+4?", "7"), ("p3", "Unknown?", "")],
    )


def texts(problem_id: str, spec: PromptSpec) -> str:
    return BOXED if spec.kind == "cot" else CODE


def query(path: Path, sql: str) -> list[tuple]:
    with duckdb.connect(str(path), read_only=True) as con:
        return con.execute(sql).fetchall()


def test_prompt_pool_interleaves_kinds_and_takes_the_first_n() -> None:
    pool = parse_prompt_mix("cot:16,code:16")
    assert len(pool) == 32 and pool[:4] == ("cot", "code", "cot", "code")
    assert parse_prompt_mix("code:1, cot:3") == ("code", "cot", "cot", "cot")
    assert sample_kinds(pool, 15).count("cot") == 8
    for bad in ("cot:2,cot:3", "cot", "maths:3", "cot:0,code:0"):
        with pytest.raises(InputError) as info:
            parse_prompt_mix(bad)
        assert info.value.field == "--prompts"
    with pytest.raises(InputError) as info:
        sample_kinds(pool, 33)
    assert info.value.field == "--samples"


def test_record_stores_chunks_answers_and_code_runs(problems: Path, tmp_path: Path) -> None:
    out = tmp_path / "rec.duckdb"
    eng = ScriptedEngine(texts)
    summary = run_record(
        problems,
        "/models/m",
        "scripted",
        4,
        out,
        max_new_tokens=500,
        engine=eng,
        sandbox_limits=LIMITS,
        show_progress=False,
    )
    assert summary.written == ("p1", "p2", "p3") and summary.skipped == ()
    assert not eng.closed  # a given engine is left open
    run = list_runs(out)[0]
    assert (run.kind, run.status, run.backend, run.n_problems, run.n_samples) == (
        "record",
        "complete",
        "scripted",
        3,
        12,
    )
    assert run.gen_config["prompt_kinds"] == ["cot", "code", "cot", "code"]
    assert run.gen_config["sampling"]["max_new_tokens"] == 500
    # the raw stream rebuilds every sample's text
    rebuilt = query(
        out,
        "SELECT problem_id, sample_idx, string_agg(text, '' ORDER BY seq) FROM chunks "
        "GROUP BY ALL ORDER BY ALL",
    )
    assert [r[2] for r in rebuilt[:4]] == [BOXED, CODE, BOXED, CODE]
    samples = query(
        out,
        "SELECT sample_idx, kind, prompt_tokens, start_s, end_s, n_tokens, finish_reason "
        "FROM samples WHERE problem_id = 'p1' ORDER BY sample_idx",
    )
    assert [s[1] for s in samples] == ["cot", "code", "cot", "code"]
    assert [s[2] for s in samples] == [11, 12, 13, 14]
    assert all(s[3] == 0.0 and s[4] > 0 and s[6] == "stop" for s in samples)
    assert samples[0][5] == len(tokens_of(BOXED))
    # boxed answers at the token whose chunk closed the box
    boxed_token = next(i + 1 for i in range(len(tokens_of(BOXED))) if "}" in tokens_of(BOXED)[i])
    answers = query(
        out,
        "SELECT sample_idx, token_pos, source, value, code_ok, exec_ms, error, t_s FROM answers "
        "WHERE problem_id = 'p1' ORDER BY sample_idx, source, token_pos",
    )
    assert (0, boxed_token, "boxed", 42) == answers[0][:4]
    code_rows = [a for a in answers if a[2] == "code"]
    assert len(code_rows) == 2 and all(
        a[3] == 7 and a[4] is True and a[5] > 0 and a[6] is None for a in code_rows
    )
    fence_token = next(
        i + 1
        for i, t in enumerate(tokens_of(CODE))
        if "```" in "".join(tokens_of(CODE)[: i + 1])[12:]
    )
    assert all(a[1] >= fence_token for a in code_rows)
    stats = summary.stats
    assert stats.chunks == query(out, "SELECT count(*) FROM chunks")[0][0]
    assert stats.code_runs == 6 and stats.questions == 3 and stats.per_chunk_us > 0
    text = summary.render()
    assert "code-execution waits" in text and "recorder cost" not in text


def test_code_runs_do_not_hold_the_stream_up(tmp_path: Path) -> None:
    slow = "```python\nimport time\ntime.sleep(1.0)\nprint(5)\n```" + " tail" * 60
    csv = write_csv(tmp_path / "p.csv", [("p1", "Q", "5")])
    out = tmp_path / "r.duckdb"
    eng = ScriptedEngine(lambda pid, spec: slow, step_s=0.002)
    summary = run_record(
        csv,
        "/m",
        "scripted",
        1,
        out,
        prompts="code:1",
        engine=eng,
        sandbox_limits=LIMITS,
        show_progress=False,
    )
    last_chunk_t = query(out, "SELECT max(t_s) FROM chunks")[0][0]
    code = query(out, "SELECT value, t_s, exec_ms FROM answers WHERE source = 'code'")
    assert code[0][0] == 5
    assert last_chunk_t < code[0][1]  # the stream ended while the snippet still slept
    assert code[0][1] >= 1.0 and code[0][2] >= 1000.0
    assert summary.stats.code_wait_s > 0  # the recorder waited for it only at the question's end


def test_failed_code_is_stored_without_value(tmp_path: Path) -> None:
    bad = "```python\nraise ValueError('nope')\n```"
    csv = write_csv(tmp_path / "p.csv", [("p1", "Q", "5")])
    out = tmp_path / "r.duckdb"
    run_record(
        csv,
        "/m",
        "x",
        1,
        out,
        prompts="code:1",
        engine=ScriptedEngine(lambda p, s: bad),
        sandbox_limits=LIMITS,
        show_progress=False,
    )
    value, ok, error = query(
        out, "SELECT value, code_ok, error FROM answers WHERE source = 'code'"
    )[0]
    assert value is None and ok is False and "ValueError" in error


def test_resume_after_a_crash_keeps_done_questions_and_duplicates_none(
    problems: Path, tmp_path: Path
) -> None:
    out = tmp_path / "rec.duckdb"
    with pytest.raises(RuntimeError, match="engine died"):
        run_record(
            problems,
            "/models/m",
            "scripted",
            2,
            out,
            engine=ScriptedEngine(texts, fail_on="p2"),
            sandbox_limits=LIMITS,
            show_progress=False,
        )
    run = list_runs(out)[0]
    assert run.status == "failed" and run.n_problems == 1
    eng = ScriptedEngine(texts)
    summary = run_record(
        problems,
        "/models/m",
        "scripted",
        2,
        out,
        engine=eng,
        sandbox_limits=LIMITS,
        show_progress=False,
    )
    assert summary.skipped == ("p1",) and summary.written == ("p2", "p3")
    assert eng.questions == ["p2", "p3"]
    assert list_runs(out)[0].status == "complete"
    per_problem = query(out, "SELECT problem_id, count(*) FROM samples GROUP BY 1 ORDER BY 1")
    assert per_problem == [("p1", 2), ("p2", 2), ("p3", 2)]
    assert query(out, "SELECT count(*) FROM problems")[0][0] == 3
    # once more: nothing left to do, nothing duplicated
    again = run_record(
        problems,
        "/models/m",
        "scripted",
        2,
        out,
        engine=ScriptedEngine(texts),
        sandbox_limits=LIMITS,
        show_progress=False,
    )
    assert again.written == () and query(out, "SELECT count(*) FROM samples")[0][0] == 6


def test_resume_with_other_settings_is_refused(problems: Path, tmp_path: Path) -> None:
    out = tmp_path / "rec.duckdb"
    run_record(
        problems,
        "/m",
        "scripted",
        2,
        out,
        engine=ScriptedEngine(texts),
        sandbox_limits=LIMITS,
        show_progress=False,
    )
    before = out.read_bytes()
    with pytest.raises(InputError) as info:
        run_record(
            problems, "/m", "scripted", 4, out, engine=ScriptedEngine(texts), show_progress=False
        )
    assert info.value.field == "runs.gen_config.samples" and str(out) in str(info.value)
    assert out.read_bytes() == before


def test_bad_problems_csv_names_file_and_field_and_writes_nothing(tmp_path: Path) -> None:
    csv = tmp_path / "bad.csv"
    csv.write_text("id,question,answer\np1,,5\np2,Q,1234\n")
    out = tmp_path / "r.duckdb"
    with pytest.raises(InputError) as info:
        run_record(csv, "/m", "x", 1, out, engine=ScriptedEngine(texts), show_progress=False)
    message = str(info.value)
    assert str(csv) in message and "question" in message and "answer" in message
    assert not out.exists()


def test_without_an_engine_and_without_lmdeploy_the_gpu_extra_is_named(
    problems: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from aimo.solver.engines.lmdeploy_engine import LmdeployUnavailableError

    monkeypatch.setitem(sys.modules, "lmdeploy", None)
    with pytest.raises(LmdeployUnavailableError, match=r"\[gpu\]"):
        run_record(problems, "/m", "pytorch", 1, tmp_path / "r.duckdb", show_progress=False)


def test_record_through_the_lmdeploy_adapter(
    problems: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = make_fake_lmdeploy(turbomind_available=False, script=lambda i, p: tokens_of(BOXED))
    monkeypatch.setitem(sys.modules, "lmdeploy", fake)
    out = tmp_path / "rec.duckdb"
    summary = run_record(
        problems,
        "/models/tiny",
        "turbomind",
        4,
        out,
        max_new_tokens=12,
        engine_options={"tp": 1, "max_batch": 2},
        sandbox_limits=LIMITS,
        show_progress=False,
    )
    assert summary.backend == "pytorch"  # the fallback is what is recorded
    run = list_runs(out)[0]
    assert run.backend == "pytorch" and run.gen_config["engine"]["requested_backend"] == "turbomind"
    assert run.quantization == "awq-w4/kv8"
    reasons = query(out, "SELECT DISTINCT finish_reason, n_tokens FROM samples")
    assert reasons == [("length", 12)]
    assert fake.built[0].closed  # an engine built by run_record is closed by it


class _Sink:
    """Stands in for RunRecorder: keeps the answer rows."""

    def __init__(self) -> None:
        self.answers: list[tuple[int, int, int | None]] = []

    def on_chunk(self, chunk: Chunk) -> None:
        pass

    def on_answer(self, sample, token, t, source, value, *rest) -> None:
        self.answers.append((sample, token, value))

    def on_sample_end(self, *args) -> None:
        pass


_PIECES = [
    "oxed{",
    "\\boxed{",
    "}",
    "12",
    "7",
    "x",
    "\n",
    " ",
    "```python\n",
    "```",
    "print(3)",
    "`",
    "{",
]


@given(st.lists(st.tuples(st.sampled_from(_PIECES), st.booleans()), max_size=60))
@settings(max_examples=200, deadline=None)
def test_held_back_deltas_give_the_same_answers_at_the_same_tokens(parts) -> None:
    """Exact mode feeds the extractor only deltas with '}' or '`': same results as every delta."""
    from aimo.recorder.record import QuestionLog
    from aimo.solver.extraction import StreamingExtractor

    chunks, text = [], ""
    for piece, cut in parts:  # a cut closes the current chunk after this piece
        text += piece
        if cut:
            chunks.append(text)
            text = ""
    chunks.append(text)
    ref = StreamingExtractor("exact")
    want_answers, want_code = [], []
    for n, delta in enumerate(chunks, 1):
        found = ref.feed(delta, n)
        want_answers += [(0, a.token, a.value) for a in found.answers]
        want_code += [(b.code, b.token) for b in found.code_blocks]
    sink = _Sink()
    stream = ScriptedStream([""], 0.0, 10)
    log = QuestionLog(["cot"], stream, sink, None)
    got_code: list[tuple[str, int]] = []

    def submit(s: int, code: str, token: int) -> None:
        got_code.append((code, token))

    log._submit_code = submit  # type: ignore[method-assign]
    for n, delta in enumerate(chunks, 1):
        log.on_chunk(Chunk(0, delta, n, 0.0, "stop" if n == len(chunks) else None))
    assert sink.answers == want_answers
    assert got_code == want_code


# --------------------------------------------------------------------------- logprobs


def _fake_confidence(index: int, n: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    """What the recorder should store for prompt `index`: the fake's dicts through the formula."""
    from fake_lmdeploy import default_logprob_script

    from aimo.solver.engines.logprobs import token_confidence

    return token_confidence([default_logprob_script(index, p, k) for p in range(n)], k)


@pytest.mark.parametrize(
    ("backend", "turbomind", "mode"),
    [("pytorch", False, "raw_logprobs"), ("turbomind", True, "processed")],
)
def test_record_with_logprobs_stores_confidence_and_the_setting(
    problems: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, backend, turbomind, mode
) -> None:
    from aimo.core.store import load_problem_traces
    from aimo.core.traces import LogprobSetting

    fake = make_fake_lmdeploy(turbomind_available=turbomind, script=lambda i, p: tokens_of(BOXED))
    monkeypatch.setitem(sys.modules, "lmdeploy", fake)
    out = tmp_path / "rec.duckdb"
    summary = run_record(
        problems, "/models/tiny", backend, 3, out, max_new_tokens=9, logprobs=4,
        engine_options={"tp": 1, "max_batch": 2}, sandbox_limits=LIMITS, show_progress=False,
    )
    assert summary.stats.confidence_missing == 0
    pipe = fake.built[0]
    if backend == "pytorch":
        assert pipe.backend_config.logprobs_mode == "raw_logprobs"
    assert all(c.logprobs == 4 for call in pipe.calls for c in call["gen_config"])
    run = list_runs(out)[0]
    assert run.logprobs == LogprobSetting(4, mode, backend)
    assert run.gen_config["logprobs"] == 4
    traces = load_problem_traces(out)
    assert len(traces) == 3
    for trace in traces:
        for s in trace.samples:
            assert s.n_tokens == 9 and s.token_conf is not None and s.token_conf.shape == (9,)
            conf, entropy = _fake_confidence(s.sample, 9, 4)
            np.testing.assert_allclose(s.token_conf, conf, rtol=1e-3)  # stored as float16
            np.testing.assert_allclose(s.token_entropy, entropy, rtol=1e-3, atol=1e-3)
    # the same recording without logprobs: no confidence, no setting, and no resume across them
    with pytest.raises(InputError, match="logprobs"):
        run_record(
            problems, "/models/tiny", backend, 3, out, max_new_tokens=9, logprobs=0,
            engine_options={"tp": 1}, sandbox_limits=LIMITS, show_progress=False,
        )


def test_record_without_logprobs_and_the_fallback_store_no_confidence(
    problems: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from aimo.core.store import load_problem_traces

    for backend, logprobs in (("pytorch", 0), ("turbomind", 8)):  # turbomind: falls back
        fake = make_fake_lmdeploy(
            turbomind_available=False, script=lambda i, p: tokens_of(BOXED)
        )
        monkeypatch.setitem(sys.modules, "lmdeploy", fake)
        out = tmp_path / f"{backend}.duckdb"
        summary = run_record(
            problems, "/models/tiny", backend, 2, out, max_new_tokens=5, logprobs=logprobs,
            engine_options={"tp": 1}, sandbox_limits=LIMITS, show_progress=False,
        )
        assert summary.stats.confidence_missing == 0
        assert list_runs(out)[0].logprobs is None
        # gen_config keeps what was asked; runs.logprobs what the engine gives
        assert list_runs(out)[0].gen_config.get("logprobs") == (logprobs or None)
        assert all(
            s.token_conf is None for t in load_problem_traces(out) for s in t.samples
        )
        asked = [c.logprobs for call in fake.built[0].calls for c in call["gen_config"]]
        assert set(asked) == {logprobs or None}


def test_samples_with_too_few_logprobs_are_stored_without_confidence(
    problems: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fake_lmdeploy import default_logprob_script

    from aimo.core.store import load_problem_traces

    def gappy(index: int, pos: int, k: int) -> dict:
        return {} if index == 1 else default_logprob_script(index, pos, k)

    fake = make_fake_lmdeploy(turbomind_available=False, script=lambda i, p: tokens_of(BOXED))
    fake.logprob_script = gappy  # prompt 1 gets empty dicts: still one per token, so stored
    monkeypatch.setitem(sys.modules, "lmdeploy", fake)
    out = tmp_path / "gappy.duckdb"
    run_record(
        problems, "/models/tiny", "pytorch", 2, out, max_new_tokens=5, logprobs=3,
        engine_options={"tp": 1}, sandbox_limits=LIMITS, show_progress=False,
    )
    s0, s1 = load_problem_traces(out)[0].samples
    assert s0.token_conf is not None and s1.token_conf.tolist() == [0.0] * 5

    from aimo.solver.engines.base import Chunk
    from aimo.solver.loop.recording import RunRecorder
    from aimo.core.store import ProblemRow
    from aimo.core.traces import LogprobSetting, RunInfo

    info = RunInfo("r", "record", logprobs=LogprobSetting(2, "x"))
    rec = RunRecorder(tmp_path / "short.duckdb", info)
    rec.on_chunk(Chunk(0, "a", 2, 0.1, None, [{1: -0.1}, {1: -0.2}]))
    rec.on_chunk(Chunk(1, "b", 2, 0.1, None, [{1: -0.1}]))  # one dict for two tokens
    rec.on_sample_end(0, "cot", 0, 0.0, 0.2, 2, "stop")
    rec.on_sample_end(1, "cot", 0, 0.0, 0.2, 2, "stop")
    rec.commit_question(ProblemRow("q", 0, "Q", None), wall_s=0.3)
    assert rec.confidence_missing == 1
    a, b = load_problem_traces(tmp_path / "short.duckdb")[0].samples
    np.testing.assert_allclose(a.token_conf, [0.1, 0.2], rtol=1e-3)
    assert b.token_conf is None


@pytest.mark.parametrize("k", [-1, 1025])
def test_bad_logprobs_argument(problems: Path, tmp_path: Path, k: int) -> None:
    with pytest.raises(InputError) as info:
        run_record(problems, "/m", "pytorch", 1, tmp_path / "r.duckdb", logprobs=k,
                   engine=ScriptedEngine(texts), show_progress=False)
    assert info.value.field == "--logprobs"


class _TimedEngine(ScriptedEngine):
    """A ScriptedEngine that notes when each question's generation started."""

    def __init__(self, texts_for) -> None:
        super().__init__(texts_for)
        self.started: dict[str, float] = {}

    async def start_question(self, question_id, question, prompts, sampling):
        self.started[question_id] = time.monotonic()
        return await super().start_question(question_id, question, prompts, sampling)


def test_code_runs_overlap_the_next_questions_generation(problems: Path, tmp_path: Path) -> None:
    # each question's code sample sleeps 3 s; generation takes milliseconds: one question at a
    # time, p2 would start after p1's code finished; overlapped, it starts at once
    slow = "```python\nimport time\ntime.sleep(3)\nprint(7)\n```\nSo \\boxed{7}"
    eng = _TimedEngine(lambda p, s: slow)
    out = tmp_path / "rec.duckdb"
    summary = run_record(problems, "/models/m", "scripted", 1, out, prompts="code:1", engine=eng,
                         sandbox_limits=LIMITS, show_progress=False)
    assert summary.written == ("p1", "p2", "p3")
    # the recorded run times stay those of the runs themselves, one committed row per question
    rows = query(out, "SELECT problem_id, value, code_ok, exec_ms FROM answers "
                      "WHERE source = 'code' ORDER BY problem_id")
    assert [(p, v, ok) for p, v, ok, _ in rows] == [("p1", 7, True), ("p2", 7, True), ("p3", 7, True)]
    # p1's run began after p1 did and lasted exec_ms: p2 starting earlier than that is overlap
    assert eng.started["p2"] < eng.started["p1"] + rows[0][3] / 1000
    assert all(ms >= 3000 for *_, ms in rows)  # each run slept 3 s (no upper bound: load)
    assert query(out, "SELECT count(*) FROM questions_done")[0][0] == 3
