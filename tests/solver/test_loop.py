"""The live control loop, budget controller, recorder, batch runner and Kaggle entry.

Replay-engine questions are hand-built (tests/helpers/replay_fixtures.py) so every time is known;
`WallStream` below is a live-like stream on the wall clock (no lockstep) for the watchdog and for
code runs that must not block the stream.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import math
import time
from pathlib import Path

import pytest
from replay_fixtures import flat_profile, problem, sample

from aimo.solver.engines import Chunk, PromptSpec, ReplayEngine, SamplingSettings, SyntheticEngine
from aimo.solver.engines.base import FinishReason
from aimo.core.errors import InputError
from aimo.solver.kaggle import Solver, SolverConfig
from aimo.solver.loop import (
    BudgetController,
    LoopOptions,
    RecordedRunner,
    RunRecorder,
    SandboxRunner,
    SolveSession,
    VirtualClock,
    run_question,
)
from aimo.core.report import competition_json
from aimo.core.policy import SpeedLevel, load_policy, pick_level
from aimo.solver.sandbox import SandboxPool
from aimo.solver.solve import EngineSpec, EngineUnavailable, Problem, read_problems_csv, run_solve
from aimo.core.store import ProblemRow, load_chunks, load_problem_traces
from aimo.core.traces import RunInfo

SEED = load_policy("seed-2nd-place")
MAJORITY = load_policy("majority-n")
LEVEL = SpeedLevel(name="test", samples=2, min_answers=99, timeout_s=1e6)


def _question(engine, kinds, policy=SEED, level=LEVEL, *, cutoff_in_s=math.inf, recorder=None,
              runner=None, options=LoopOptions()):
    async def go():
        prompts = [PromptSpec(i, k, "", "") for i, k in enumerate(kinds)]
        stream = await engine.start_question("p0", "", prompts,
                                             SamplingSettings(max_new_tokens=policy.sample_stop.max_tokens))
        return await run_question(stream, policy, level, kinds, runner or RecordedRunner(),
                                  cutoff_in_s=cutoff_in_s, recorder=recorder, options=options)
    return asyncio.run(go())


def _replay(samples, profile=None) -> ReplayEngine:
    return ReplayEngine([problem("p0", 7, samples)], profile or flat_profile(0.01), chunk_tokens=20)


class Capture:
    """A recorder that keeps everything in memory (with wall arrival times)."""

    def __init__(self) -> None:
        self.chunks: list[tuple[float, Chunk]] = []
        self.answers: list[tuple] = []
        self.ends: list[tuple] = []

    def on_chunk(self, chunk: Chunk) -> None:
        self.chunks.append((time.monotonic(), chunk))

    def on_answer(self, *args) -> None:
        self.answers.append((time.monotonic(), *args))

    def on_sample_end(self, *args) -> None:
        self.ends.append(args)


# ------------------------------------------------------------------------------ a live-like stream


class WallStream:
    """Chunks on the wall clock every `dt` s, round-robin over samples; no lockstep guarantee.

    `texts[i]` lists sample i's chunk texts (each chunk is `tokens_per_chunk` tokens); with
    `stall_after` the stream stops producing after that many seconds (a hung engine).
    """

    lockstep = False

    def __init__(self, texts: list[list[str]], *, dt: float = 0.01, tokens_per_chunk: int = 20,
                 stall_after: float | None = None, finish: FinishReason = "stop") -> None:
        self.texts = texts
        self.dt = dt
        self.per = tokens_per_chunk
        self.stall_after = stall_after
        self.finish = finish
        self.t0 = time.monotonic()
        self.done = [False] * len(texts)
        self.pos = [0] * len(texts)
        self.aborts: list[Chunk] = []

    def now(self) -> float:
        return time.monotonic() - self.t0

    async def cancel(self, sample: int) -> None:
        if not self.done[sample]:
            self.done[sample] = True
            self.aborts.append(Chunk(sample, "", self.pos[sample] * self.per, self.now(), "abort"))

    async def cancel_all(self) -> None:
        for i in range(len(self.texts)):
            await self.cancel(i)

    def __aiter__(self):
        return self._run()

    async def _run(self):
        while True:
            while self.aborts:
                yield self.aborts.pop(0)
            alive = [i for i, d in enumerate(self.done) if not d]
            if not alive:
                return
            if self.stall_after is not None and self.now() > self.stall_after:
                await asyncio.sleep(3600)
            await asyncio.sleep(self.dt)
            for i in alive:
                if self.done[i]:
                    continue
                text = self.texts[i][self.pos[i]]
                self.pos[i] += 1
                last = self.pos[i] == len(self.texts[i])
                if last:
                    self.done[i] = True
                yield Chunk(i, text, self.pos[i] * self.per, self.now(), self.finish if last else None)


class WallEngine:
    name = backend = "wall"

    def __init__(self, stream: WallStream) -> None:
        self.stream = stream

    async def start_question(self, question_id, question, prompts, sampling):
        self.stream.t0 = time.monotonic()
        return self.stream

    async def close(self) -> None:
        return None


# ------------------------------------------------------------------------------ the loop


def test_sample_stop_cancels_the_sample_at_the_check_after_its_answer() -> None:
    rec = Capture()
    out = _question(_replay([sample(0, "cot", 5000, [(45, 7, "boxed")]), sample(1, "cot", 300)]),
                    ("cot", "cot"), recorder=rec)
    s0 = out.samples[0]
    assert (s0.end, s0.tokens, s0.boxed) == ("sample_stop", 60, 7)
    after = [c for _, c in rec.chunks if c.sample == 0 and c.n_tokens > 60]
    assert after == []  # nothing generated past the stop (its abort chunk carries 60 tokens)
    assert out.samples[1].end == "finished" and out.answer == 7


def test_cancelling_a_sample_speeds_up_the_others() -> None:
    profile = flat_profile(0.01, beta=0.01)  # step = 0.01 + 0.01·b
    out = _question(_replay([sample(0, "cot", 5000, [(100, 3, "boxed")]), sample(1, "cot", 2000)], profile),
                    ("cot", "cot"))
    assert out.samples[1].end_s == pytest.approx(100 * 0.03 + 1900 * 0.02)
    assert out.time_s == pytest.approx(out.samples[1].end_s)


def test_consistency_stop_aborts_the_rest_with_the_tokens_they_reached() -> None:
    samples = [sample(i, "cot", 9000, [(100, 7, "boxed")]) for i in range(4)] + [sample(4, "cot", 9000)]
    level = dataclasses.replace(LEVEL, samples=5)
    policy = dataclasses.replace(MAJORITY, question_stop=dataclasses.replace(
        MAJORITY.question_stop, rules=SEED.question_stop.rules[:1]))
    out = _question(_replay(samples), ("cot",) * 5, policy, level)
    assert out.stop_reason.startswith("rule1")
    assert out.samples[4].end == "question_stop" and out.samples[4].tokens == 100
    assert out.time_s == pytest.approx(1.0) and out.answer == 7


def test_replay_cutoff_is_enforced_within_one_check_interval() -> None:
    out = _question(_replay([sample(0, "cot", 100_000)]), ("cot",), MAJORITY, cutoff_in_s=1.234)
    assert out.stop_reason == "cutoff"
    assert 1.234 < out.time_s <= 1.234 + 20 * 0.01 + 1e-9


def test_watchdog_stops_a_stalled_question_past_the_cutoff() -> None:
    texts = [["x "] * 1000, ["y "] * 1000]
    stream = WallStream(texts, dt=0.005, stall_after=0.1)
    opts = LoopOptions(watchdog_grace_s=0.1, watchdog_poll_s=0.02, drain_timeout_s=0.5)
    out = _question(WallEngine(stream), ("cot", "cot"), MAJORITY, cutoff_in_s=0.2, options=opts)
    assert out.stop_reason == "cutoff"  # without the watchdog the stalled stream never ends
    assert out.answer == MAJORITY.vote.fallback
    assert all(s.end == "question_stop" for s in out.samples)


def test_code_runs_without_blocking_the_stream() -> None:
    code = "```python\nimport time\ntime.sleep(1.0)\nprint(42)\n```\n"
    texts = [["a "] + [code] + ["b "] * 398, ["c "] * 400]
    stream = WallStream(texts, dt=0.005)
    rec = Capture()
    with SandboxPool(1) as pool:
        out = _question(WallEngine(stream), ("code", "cot"), MAJORITY, recorder=rec,
                        runner=SandboxRunner(pool))
    (t_code, *_rest), = [a for a in rec.answers if a[4] == "code"]
    dispatched = next(t for t, c in rec.chunks if c.sample == 0 and c.n_tokens == 40)
    during = [t for t, c in rec.chunks if dispatched < t < t_code]
    assert t_code - dispatched >= 1.0
    assert len(during) > 50  # chunks kept flowing while the code ran
    gaps = [b - a for a, b in zip(during, during[1:])]
    assert max(gaps) < 0.5
    assert out.samples[0].code == 42 and out.answer == 42


def test_code_result_of_an_ended_sample_counts_when_it_arrives() -> None:
    # sample 0 ends at token 40 with its code still running; its result arrives 2 s later
    samples = [sample(0, "code", 40, [(20, 5, "code", True, 2000.0)]), sample(1, "cot", 10_000)]
    policy = dataclasses.replace(SEED, question_stop=dataclasses.replace(
        SEED.question_stop, rules=(dataclasses.replace(SEED.question_stop.rules[0], min_equal=1, max_answers=1),)),
        check=dataclasses.replace(SEED.check, code_overlap="profile"))  # parallel: seen when ready
    out = _question(_replay(samples), ("code", "cot"), policy)
    assert out.stop_reason.startswith("rule1")
    assert out.time_s == pytest.approx(0.2 + 2.0)
    assert out.samples[1].end == "question_stop" and out.samples[1].tokens == 220


def test_every_sample_gets_a_sample_end_record() -> None:
    rec = Capture()
    _question(_replay([sample(0, "cot", 300, [(45, 7, "boxed")]), sample(1, "code", 200)]), ("cot", "code"),
              recorder=rec)
    ends = {e[0]: e for e in rec.ends}
    assert ends[0][5:] == (60, "abort") and ends[1][5:] == (200, "stop")


# ------------------------------------------------------------------------------ budget and session


def test_budget_controller_follows_the_schedule_and_the_cutoff() -> None:
    schedule = dataclasses.replace(SEED.schedule, questions=8, reeval_after=2, reeval_every=2, cutoff_s=1000.0)
    clock = VirtualClock(0.0)
    budget = BudgetController(schedule, clock)
    levels = []
    for _ in range(8):
        plan = budget.plan()
        levels.append((plan.level, plan.run))
        budget.finish(140.0)
    level, expect = schedule.start_level, []
    for done in range(8):
        level = pick_level(schedule, level, done, 1000.0 - 140.0 * done)
        expect.append((level, 140.0 * done <= 1000.0))
    assert levels == expect


class BrokenEngine:
    name = backend = "broken"
    virtual_clock = True
    startup_s = 0.0
    question_overhead_s = 0.0

    async def start_question(self, question_id, question, prompts, sampling):
        raise RuntimeError("GPU fell off the bus")

    async def close(self) -> None:
        return None


class MidwayBroken(WallStream):
    async def _run(self):
        yield Chunk(0, " \\boxed{321} ", 20, self.now(), None)
        raise RuntimeError("engine died")


def test_every_question_is_answered_even_when_the_engine_fails() -> None:
    async def go():
        broken = SolveSession(BrokenEngine(), SEED, RecordedRunner(), questions=2)
        a = await broken.answer("p0", "q")
        midway = SolveSession(WallEngine(MidwayBroken([["x"]])), SEED, RecordedRunner(), questions=2)
        b = await midway.answer("p1", "q")
        return a, b
    a, b = asyncio.run(go())
    assert (a.answer, a.stop_reason) == (SEED.vote.fallback, "error")
    assert b.stop_reason == "error" and 0 <= b.answer <= 999


def test_questions_after_the_cutoff_get_the_cutoff_answer_without_generation() -> None:
    schedule = dataclasses.replace(SEED.schedule, cutoff_s=100.0)
    policy = dataclasses.replace(SEED, schedule=schedule)

    async def go():
        session = SolveSession(BrokenEngine(), policy, RecordedRunner(), clock=VirtualClock(150.0))
        return [await session.answer(f"p{i}", "q") for i in range(3)]
    results = asyncio.run(go())
    assert [(r.answer, r.stop_reason, r.samples) for r in results] == [(210, "after_cutoff", ())] * 3


# ------------------------------------------------------------------------------ recording


def test_recorder_writes_a_replayable_solve_run(tmp_path: Path) -> None:
    store = tmp_path / "solve.duckdb"
    report = run_solve([Problem(f"q{i}", f"question {i}", None) for i in range(3)], "fast-8", "synthetic",
                       record=store, echo=None)
    traces = load_problem_traces(store)
    assert [t.problem_id for t in traces] == ["q0", "q1", "q2"]
    for t, q in zip(traces, report.result.questions):
        started = [s for s in q.samples if s.end != "queued"]
        assert len(t.samples) == len(started)
        assert sorted(s.n_tokens for s in t.samples) == sorted(s.tokens for s in started)
    chunks = load_chunks(store, traces[0].run_id, "q0")
    assert len(chunks) > 0 and chunks["seq"].min() == 0


def test_recorder_writes_when_each_stop_was_decided(tmp_path: Path) -> None:
    """`questions_done.decided_s` (migration 004): the loop's stop decision on the question's
    stream clock, before the final read's code runs; NULL for questions that ended with every
    sample. The seed policy stops questions on the synthetic engine and reads once more."""
    from aimo.core.store.live import question_results

    store = tmp_path / "solve.duckdb"
    report = run_solve([Problem(f"q{i}", f"question {i}", None) for i in range(4)], "seed-2nd-place",
                       "synthetic", record=store, echo=None)
    frame = question_results(store)
    outcomes = {q.problem_id: q for q in report.result.questions}
    stopped = frame[frame["stop_reason"] != "all_done"]
    assert len(stopped) >= 1
    for row in frame.itertuples(index=False):
        if row.stop_reason == "all_done":
            assert math.isnan(row.decided_s)
        else:
            assert 0.0 < row.decided_s <= outcomes[row.problem_id].time_s + 1e-9


def test_recorder_per_chunk_cost(tmp_path: Path) -> None:
    run = RunInfo(run_id="bench", kind="solve")
    rec = RunRecorder(tmp_path / "bench.duckdb", run)
    n_samples, per_sample = 16, 500
    t0 = time.perf_counter()
    for q in range(2):
        for k in range(per_sample):
            for i in range(n_samples):
                rec.on_chunk(Chunk(i, "Let me think. ", 20 * (k + 1), 0.1 * k))
        for i in range(n_samples):
            rec.on_answer(i, 100, 1.0, "boxed", 7)
            rec.on_sample_end(i, "cot", 150, 0.0, 50.0, 20 * per_sample, "stop")
        rec.commit_question(ProblemRow(f"q{q}", q, "text", None), wall_s=50.0)
    per_chunk_us = (time.perf_counter() - t0) / (2 * n_samples * per_sample) * 1e6
    print(f"recorder: {per_chunk_us:.1f} us per chunk (on_chunk + commit, 8,000-chunk questions)")
    assert per_chunk_us < 200
    assert len(load_problem_traces(tmp_path / "bench.duckdb")) == 2


# ------------------------------------------------------------------------------ batch runner, Kaggle


def test_run_solve_json_has_the_simulate_fields(tmp_path: Path) -> None:
    from aimo.simulator.report import competition_json as sim_json
    from aimo.simulator.replay.results import CompetitionResult

    csv = tmp_path / "p.csv"
    csv.write_text("id,question,answer\na,What is 1+1?,2\nb,What is 2+2?,\n", encoding="utf-8")
    lines: list[str] = []
    report = run_solve(csv, "seed-2nd-place", EngineSpec("synthetic", seed=1), echo=lines.append)
    data = report.to_json()
    json.dumps(data)
    expected = set(sim_json(CompetitionResult((), 0.0, 1.0, 1.0))) | {
        "traces", "run_id", "policy", "hardware", "budget_s", "mode"}
    assert expected <= set(data)
    assert set(data["questions"][0]) == {"problem_id", "order", "level", "answer", "truth", "correct",
                                         "start_s", "time_s", "stop_reason", "samples_started",
                                         "samples_stopped", "tokens"}
    assert len(lines) == 2 and data["n_known_answers"] == 1
    assert competition_json(report.result)["n_questions"] == 2
    assert "score" in report.render()


def test_problems_csv_errors_name_file_line_and_field(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("id,question,answer\na,q,12\na,q,3\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"bad.csv: line 3: id: duplicate"):
        read_problems_csv(bad)
    bad.write_text("id,question,answer\na,q,1000\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"line 2: answer"):
        read_problems_csv(bad)
    bad.write_text("name,question\na,q\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"bad.csv: id: missing column"):
        read_problems_csv(bad)


def test_backends_report_what_they_miss(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="traces"):
        run_solve([Problem("a", "q")], "seed-2nd-place", "replay", echo=None)
    with pytest.raises(InputError, match="model"):
        run_solve([Problem("a", "q")], "seed-2nd-place", "turbomind", echo=None)
    try:
        run_solve([Problem("a", "q")], "seed-2nd-place", EngineSpec("pytorch", model="/m"), echo=None)
    except EngineUnavailable as exc:
        assert "[gpu]" in str(exc)
    with pytest.raises(InputError, match="backend"):
        EngineSpec("vllm")


class _Series:
    """A one-element Series (what the inference server passes)."""

    def __init__(self, value: object) -> None:
        self.value = value

    def item(self) -> object:
        return self.value


def test_kaggle_predict_keeps_state_across_calls() -> None:
    solver = Solver(SolverConfig(backend="synthetic", questions=3, policy="fast-8"))
    try:
        answers = [solver.predict(_Series(f"q{i}"), _Series("What is 2+2?")) for i in range(3)]
        assert all(isinstance(a, int) and 0 <= a <= 999 for a in answers)
        assert solver.questions_done == 3
        assert solver.session.result().total_time_s > 0
    finally:
        solver.close()


def test_kaggle_config_from_env_names_the_bad_variable() -> None:
    cfg = SolverConfig.from_env({"AIMO_BACKEND": "synthetic", "AIMO_TP": "4", "AIMO_QUESTIONS": "10"})
    assert (cfg.backend, cfg.tp, cfg.questions) == ("synthetic", 4, 10)
    with pytest.raises(InputError, match="AIMO_TP"):
        SolverConfig.from_env({"AIMO_TP": "four"})


def test_synthetic_engine_session_is_deterministic() -> None:
    def once() -> list[tuple[int, str, float]]:
        async def go():
            session = SolveSession(SyntheticEngine(seed=4), SEED, RecordedRunner(), questions=3)
            return [await session.answer(f"q{i}", "q") for i in range(3)]
        return [(r.answer, r.stop_reason, r.time_s) for r in asyncio.run(go())]
    assert once() == once()


def test_the_live_solver_imports_neither_simulator_nor_recorder() -> None:
    import subprocess
    import sys

    code = (
        "import sys, solver.engines, solver.loop, solver.solve, solver.kaggle;"
        "bad = [m for m in ('simulator', 'recorder', 'lmdeploy') if m in sys.modules];"
        "sys.exit(1 if bad else 0)"
    )
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def test_run_solve_drives_the_lmdeploy_adapter(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The live path end to end on CPU: `run_solve` → `LmdeployEngine` over the lmdeploy test
    double (tests/helpers/fake_lmdeploy.py) → control loop (no lockstep, watchdog on) → recorder."""
    import sys

    from fake_lmdeploy import FakeTokenizer, make_fake_lmdeploy

    tail = 20_000  # ≈20 s of the double's 1-ms steps: a cancel is far sooner even on a loaded box

    def script(index: int, prompt: object) -> list[str]:
        return ["w "] * (30 + 10 * index) + [" \\boxed{42} "] + ["w "] * tail

    monkeypatch.setitem(sys.modules, "lmdeploy", make_fake_lmdeploy(script=script, tokenizer=FakeTokenizer()))
    store = tmp_path / "live.duckdb"
    report = run_solve([Problem("a", "What is 6*7?", 42)], "first-answer",
                       EngineSpec("pytorch", model="/models/tiny", tp=1), record=store, echo=None)
    (q,) = report.result.questions
    assert (q.answer, q.correct, q.stop_reason) == (42, True, "all_done")
    assert all(s.end == "sample_stop" and s.boxed == 42 for s in q.samples)
    # cancelled after their answers, before their scripts ran out (no bound on how soon: that
    # would be a wall-clock assertion, and the double decodes in real time beside the loop)
    assert all(30 < s.tokens < tail for s in q.samples)  # one script item is one token
    (trace,) = load_problem_traces(store)
    assert len(trace.samples) == len(q.samples)


def _seed_and_legacy(rules):
    """The seed (the original's reading) and its former reading, with the given rules."""
    seed = dataclasses.replace(SEED, question_stop=dataclasses.replace(SEED.question_stop, rules=rules))
    legacy = dataclasses.replace(
        seed, check=dataclasses.replace(seed.check, boxes="all", boxed_zero="keep", code_overlap="profile"),
        vote=dataclasses.replace(seed.vote, tie_tolerance=1e-9, final_read=False))
    return seed, legacy


def test_loop_final_read_runs_a_cut_off_samples_code_and_votes_it() -> None:
    # the first valid answer stops the question at sample 0's check at token 40; sample 1 (code)
    # closed a block at token 30 that no check ran: the final read runs it (2 s) and 9 votes
    rule = (dataclasses.replace(SEED.question_stop.rules[0], min_equal=1, max_answers=1),)
    seed, legacy = _seed_and_legacy(rule)
    samples = [sample(0, "cot", 1000, [(40, 7, "boxed")]),
               sample(1, "code", 1000, [(30, 9, "code", True, 2000.0)])]
    new = _question(_replay(samples), ("cot", "code"), seed)
    old = _question(_replay(samples), ("cot", "code"), legacy)
    assert new.stop_reason == old.stop_reason == "rule1:1/≤1"
    assert new.samples[1].code == 9 and new.answer == 9 and old.answer == 7
    assert new.time_s == pytest.approx(old.time_s + 2.0)


def test_loop_inline_code_and_last_box_as_the_original() -> None:
    # inline: the code answer is seen at its own check (token 20), the batch not waiting
    code = [sample(0, "code", 2000, [(20, 42, "code", True, 5000.0)]), sample(1, "cot", 30)]
    out = _question(_replay(code), ("code", "cot"), SEED)
    assert out.samples[0].tokens == 20 and out.samples[0].code == 42
    # only the last box is parsed at a check: an unparseable one records nothing
    boxes = [sample(0, "cot", 100, [(5, 7, "boxed"), (10, None, "boxed")]), sample(1, "cot", 30)]
    out = _question(_replay(boxes), ("cot", "cot"), SEED)
    assert out.samples[0].tokens == 100 and out.samples[0].boxed is None
