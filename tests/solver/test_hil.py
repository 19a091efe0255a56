"""The hardware-in-the-loop backend on CPU: `run_solve(backend='hil')` over the lmdeploy test
double (tests/helpers/fake_lmdeploy.py: one token a step per running request, aborts as lmdeploy),
a hand-made store (tests/helpers/hil_store.py) — answers at the recorded tokens, recorded endings,
real aborts, code results after the recorded run time on the sandbox pool's workers, recording."""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from fake_lmdeploy import FakeTokenizer, make_fake_lmdeploy
from hil_store import PROBLEMS, RUN_ID, write_hil_store

from aimo.core.draws import competition_draws
from aimo.solver.engines.hil import HilRunner, final_reason, request_tokens
from aimo.solver.engines.replay import RecordedCode, script_from_trace
from aimo.core.errors import InputError
from aimo.core.policy import load_policy, sample_kinds
from aimo.solver.sandbox import SandboxPool
from aimo.solver.solve import EngineSpec, run_solve
from aimo.core.store import list_runs, load_problem_traces, read_connection


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch):
    module = make_fake_lmdeploy(tokenizer=FakeTokenizer(), step_s=0.002)
    monkeypatch.setitem(sys.modules, "lmdeploy", module)
    return module


@pytest.fixture
def store(tmp_path: Path) -> Path:
    return write_hil_store(tmp_path / "traces.duckdb")


def hil(store: Path, out: Path, policy: str, seed: int | None = 3, **kw):
    spec = EngineSpec("hil", model="/models/fake14b", tp=1, seed=seed or 0, max_batch=32,
                      options={"draw_seed": seed})
    return run_solve(None, policy, spec, traces=store, record=out, echo=None, **kw)


def rows(path: Path, run_id: str, table: str, cols: str) -> list[tuple]:
    with read_connection(path) as con:
        return con.execute(f"SELECT problem_id, sample_idx, {cols} FROM {table} WHERE run_id = ? "
                           "ORDER BY problem_id, sample_idx", [run_id]).fetchall()


def expected_samples(store: Path, policy: str, seed: int | None):
    """Per problem, the recorded samples the simulator's draw puts in each slot."""
    problems = load_problem_traces(store)
    pol = load_policy(policy)
    n = pol.schedule.levels[pol.schedule.start_level - 1].samples
    kinds = sample_kinds(pol.samples, n)
    draws = competition_draws(problems, seed)
    return {p.problem_id: d.take(kinds) for p, d in zip(problems, draws)}


def test_majority_n_runs_every_recorded_sample_to_its_end_with_its_answers(fake, store, tmp_path) -> None:
    out = tmp_path / "hil.duckdb"
    report = hil(store, out, "majority-n")
    run = report.result
    assert [q.problem_id for q in run.questions] == list(PROBLEMS)
    (info,) = [r for r in list_runs(out)]
    assert info.kind == "solve" and info.backend == "hil-pytorch"
    assert info.gen_config["hil"] == {"draw_seed": 3, "traces": str(store), "run_id": RUN_ID,
                                      "length_scale": None}
    expected = expected_samples(store, "majority-n", 3)
    samples = rows(out, info.run_id, "samples", "kind, n_tokens, finish_reason")
    answers = rows(out, info.run_id, "answers", "token_pos, source, value")
    for pid, traces in expected.items():
        got = [r for r in samples if r[0] == pid]
        assert len(got) == len(traces) == 15
        for (_, i, kind, n, finish), t in zip(got, traces):
            assert (kind, n, finish) == (t.kind, t.n_tokens, t.finish_reason)  # ran its length, ended as recorded
            want = sorted((int(t.ans_token[j]), "code" if t.ans_source[j] else "boxed",
                           None if t.ans_value[j] < 0 else int(t.ans_value[j])) for j in range(t.n_answers))
            assert sorted(a[2:] for a in answers if a[:2] == (pid, i)) == want  # at the recorded tokens
    # every request asked for the recorded length with ignore_eos and the policy's sampling
    calls = fake.built[0].calls
    assert len(calls) == 2
    for call, traces in zip(calls, expected.values()):
        assert [g.max_new_tokens for g in call["gen_config"]] == [t.n_tokens for t in traces]
        assert all(g.ignore_eos and g.temperature == 0.9 and g.min_p == 0.1 for g in call["gen_config"])
        assert "Problem" in call["prompts"][0]  # the stored question text, through the chat template
    # the simulator's vote on the same samples
    assert [q.answer for q in run.questions] == [42, 7]


def test_seed_policy_aborts_real_requests(fake, store, tmp_path) -> None:
    # the seed with its code runs overlapping the stream: with the preset's inline checks the loop
    # waits out every 120 ms code run, and this fast double ends every sample meanwhile
    import dataclasses

    from aimo.core.policy import dump_policy

    seed = load_policy("seed-2nd-place")
    policy = dump_policy(dataclasses.replace(
        seed, check=dataclasses.replace(seed.check, code_overlap="parallel")), tmp_path / "p.yaml")
    out = tmp_path / "hil.duckdb"
    report = hil(store, out, str(policy))
    q1 = report.result.questions[0]
    stopped = [s for s in q1.samples if s.end == "sample_stop"]
    assert stopped, "the seed stops CoT samples at their first box"
    expected = expected_samples(store, "seed-2nd-place", 3)["p1"]
    for s in stopped:
        assert s.tokens < expected[s.index].n_tokens
    sessions = fake.built[0].sessions
    assert any(x.aborted for x in sessions)  # the loop's cancels reached the (fake) engine
    (info,) = list_runs(out)
    ends = {(r[0], r[1]): r[3] for r in rows(out, info.run_id, "samples", "n_tokens, finish_reason")}
    assert any(v == "abort" for v in ends.values())


def test_code_results_arrive_after_the_recorded_run_time(fake, store, tmp_path) -> None:
    out = tmp_path / "hil.duckdb"
    hil(store, out, "majority-n", code_workers=1)
    (info,) = list_runs(out)
    with read_connection(out) as con:
        code = con.execute("SELECT a.problem_id, a.sample_idx, a.token_pos, a.t_s, a.exec_ms, "
                           "(SELECT min(c.t_s) FROM chunks c WHERE c.run_id = a.run_id AND "
                           " c.problem_id = a.problem_id AND c.sample_idx = a.sample_idx AND "
                           " c.n_tokens >= a.token_pos) FROM answers a WHERE a.run_id = ? AND "
                           "a.source = 'code' ORDER BY a.problem_id, a.t_s", [info.run_id]).fetchall()
    assert code
    for _, _, _, t_s, exec_ms, block_t in code:
        assert t_s >= block_t + exec_ms / 1000.0 - 0.005
    # one worker: a question's runs never overlap (each starts when the previous ended)
    for pid in PROBLEMS:
        done = [(t, e) for p, _, _, t, e, _ in code if p == pid]
        for (t0, _), (t1, e1) in zip(done, done[1:]):
            assert t1 >= t0 + e1 / 1000.0 - 0.005


def test_hil_runner_queues_on_the_pool_workers() -> None:
    class Stream:
        def __init__(self) -> None:
            self.t0 = time.monotonic()

        def now(self) -> float:
            return time.monotonic() - self.t0

        def recorded_code(self, code: str) -> RecordedCode | None:
            return {"a": RecordedCode(5, True, 80.0), "b": RecordedCode(None, False, 80.0, "boom")}.get(code)

    async def go():
        stream = Stream()
        with SandboxPool(1) as pool:
            runner = HilRunner(pool)
            runs = [runner.submit(c, sample=0, stream=stream) for c in ("a", "b", "zzz")]
            for r in runs:
                await r.wait()
            return [(r.ready_at, r.result()) for r in runs]

    (ta, ra), (tb, rb), (tc, rc) = asyncio.run(go())
    assert (ra.value, ra.ok) == (5, True) and (rb.value, rb.ok, rb.error) == (None, False, "boom")
    assert rc.error == "no recorded result for this code"
    assert ta >= 0.08 and tb >= 0.16  # the second waited for the only worker


def test_request_length_and_ending_follow_the_recording_and_the_cap(store) -> None:
    (p1, _) = load_problem_traces(store)
    long = script_from_trace(p1.samples[4])  # 120 tokens, 'length'
    short = script_from_trace(p1.samples[0])  # 60 tokens, 'stop'
    assert request_tokens(short, 16384) == 60 and final_reason(short, 16384) == "stop"
    assert request_tokens(short, 50) == 50 and final_reason(short, 50) == "length"
    assert request_tokens(long, 16384) == 120 and final_reason(long, 16384) == "length"


def test_same_seed_same_draw_other_seed_other_draw(store) -> None:
    problems = load_problem_traces(store)
    kinds = ["cot", "code"] * 3
    a = [d.take(kinds) for d in competition_draws(problems, 3)]
    b = [d.take(kinds) for d in competition_draws(problems, 3)]
    c = [d.take(kinds) for d in competition_draws(problems, 4)]
    rec = [d.take(kinds) for d in competition_draws(problems, None)]
    idx = lambda draws: [[t.sample for t in d] for d in draws]  # noqa: E731
    assert idx(a) == idx(b)
    assert idx(a) != idx(c) or idx(a) != idx(rec)
    assert idx(rec)[0] == [0, 1, 2, 3, 4, 5]


def test_hil_needs_traces_and_model(fake, store, tmp_path) -> None:
    with pytest.raises(InputError, match="trace store"):
        run_solve([], "majority-n", EngineSpec("hil", model="/m"), echo=None)
    with pytest.raises(InputError, match="model path"):
        run_solve(None, "majority-n", EngineSpec("hil"), traces=store, echo=None)


def test_hil_cli_records_a_run(fake, store, tmp_path) -> None:
    from typer.testing import CliRunner

    from aimo.cli import app

    out = tmp_path / "cli.duckdb"
    res = CliRunner().invoke(app, ["solve", "--backend", "hil", "--model", "/models/fake", "--traces", str(store),
                                   "--seed", "5", "--policy", "majority-n", "--record", str(out), "--json"])
    assert res.exit_code == 0, res.output
    (info,) = list_runs(out)
    assert info.gen_config["hil"]["draw_seed"] == 5 and info.gen_config["seed"] == 5
    res = CliRunner().invoke(app, ["solve", "--backend", "hil", "--model", "/models/fake",
                                   "--traces", str(tmp_path / "missing.duckdb")])
    assert res.exit_code == 2 and "missing.duckdb" in res.output
    assert np.isfinite(info.n_tokens)
