"""An answer always on time: a hanging engine (start_question, stream, cancel_all, or a call that
blocks the event loop's thread) cannot hold `predict`'s answer past the question's deadline, and
the next question is still answered by the (restarted) engine."""

from __future__ import annotations

import dataclasses
import threading
import time

import pytest
from hanging_engine import HangingEngine

from aimo.solver.kaggle import Solver, SolverConfig
from aimo.solver.loop import LoopOptions, RecordedRunner
from aimo.core.policy import load_policy

OPTS = LoopOptions(watchdog_grace_s=0.2, watchdog_poll_s=0.1, drain_timeout_s=0.2, restart_timeout_s=2.0)
SLACK = 0.5  # thread start, scheduling on a loaded 2-core machine
# the on-time answer is a wall-clock guarantee: asserted against the clock, so not a unit test
pytestmark = pytest.mark.realtime


def _policy(cutoff_s: float, timeout_s: float):
    base = load_policy("majority-n")
    levels = tuple(dataclasses.replace(lv, timeout_s=timeout_s, early_timeouts=()) for lv in base.schedule.levels)
    return dataclasses.replace(base, schedule=dataclasses.replace(base.schedule, levels=levels, cutoff_s=cutoff_s))


def _timed_predict(solver: Solver, pid: str, wait_s: float) -> tuple[int | None, float]:
    """predict in a helper thread: (answer or None if it did not return within wait_s, seconds)."""
    box: list[int] = []
    t0 = time.monotonic()
    worker = threading.Thread(target=lambda: box.append(solver.predict(pid, "What is 3+4?")), daemon=True)
    worker.start()
    worker.join(wait_s)
    return (box[0] if box else None), time.monotonic() - t0


@pytest.mark.parametrize("hang", ["cancel_all", "start", "stream", "block"])
def test_answer_by_the_cutoff_plus_one_interval_whatever_the_engine_does(hang: str) -> None:
    engine = HangingEngine([hang])
    cutoff = 1.0  # the competition cutoff is what binds (the level timeout is far)
    solver = Solver(SolverConfig(questions=2, budget_s=60.0), engine=engine,
                    policy=_policy(cutoff, 1e6), runner=RecordedRunner(), options=OPTS)
    try:
        answer, took = _timed_predict(solver, "q0", 10.0)
        assert answer is not None, f"predict did not return within 10 s ({hang})"
        # answered by the cutoff plus the watchdog's grace and one poll
        assert took <= cutoff + OPTS.watchdog_grace_s + OPTS.watchdog_poll_s + SLACK, took
        assert 0 <= answer <= 999
        assert solver.session.results[0].stop_reason in ("deadline", "cutoff")
    finally:
        engine.release.set()
        solver.close()


@pytest.mark.parametrize("hang", ["cancel_all", "start", "stream", "block"])
def test_next_question_gets_a_restarted_engine(hang: str) -> None:
    engine = HangingEngine([hang])
    timeout = 0.5  # the level timeout binds; the cutoff is far away
    solver = Solver(SolverConfig(questions=2, budget_s=600.0), engine=engine,
                    policy=_policy(500.0, timeout), runner=RecordedRunner(), options=OPTS)
    try:
        first, took = _timed_predict(solver, "q0", 10.0)
        assert first is not None, f"predict did not return within 10 s ({hang})"
        deadline = timeout + OPTS.watchdog_grace_s + OPTS.drain_timeout_s + OPTS.watchdog_poll_s
        assert took <= deadline + SLACK, took
        second, _ = _timed_predict(solver, "q1", 10.0)
        assert second == 7  # the engine answered the next question
        assert engine.restarts == 1
        assert [q.stop_reason for q in solver.session.results][0] == "deadline"
        assert solver.session.results[1].stop_reason != "deadline"
        assert solver.questions_done == 2
    finally:
        engine.release.set()
        solver.close()


@pytest.mark.parametrize("hang", ["cancel_all", "start", "stream"])
def test_session_as_aimo_solve_runs_it_answers_on_time(hang: str) -> None:
    """`aimo solve` drives a SolveSession under asyncio.run: same deadline, same restart."""
    import asyncio

    from aimo.solver.loop import SolveSession, WallClock

    engine = HangingEngine([hang])

    async def go():
        session = SolveSession(engine, _policy(500.0, 0.5), RecordedRunner(), questions=2,
                               clock=WallClock(), options=OPTS, budget_s=600.0)
        t0 = time.monotonic()
        first = await session.answer("q0", "What is 3+4?")
        took = time.monotonic() - t0
        second = await session.answer("q1", "What is 3+4?")
        return first, took, second

    first, took, second = asyncio.run(go())
    assert first.stop_reason == "deadline"
    assert took <= 0.5 + OPTS.watchdog_grace_s + OPTS.drain_timeout_s + OPTS.watchdog_poll_s + SLACK
    assert second.answer == 7 and engine.restarts == 1
