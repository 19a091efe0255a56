"""Kaggle-style entry: `predict(id_, question) -> int`, one question per call, for the competition's
inference server.

State lives in a `Solver` across calls: the competition clock (a wall clock started when the
solver is built, so engine start-up and the time between calls count), the questions done and
the speed level, the engine, the code sandbox and the optional recorder. Configuration comes
from the environment (`SolverConfig.from_env`):

| variable | default | meaning |
|---|---|---|
| `AIMO_POLICY` | `seed-2nd-place` | preset name or policy YAML path |
| `AIMO_BACKEND` | `turbomind` | `turbomind`, `pytorch` (lmdeploy, `[gpu]` extra) or `synthetic` |
| `AIMO_MODEL` | — | model path (lmdeploy backends) |
| `AIMO_TP` | all visible | tensor-parallel GPUs |
| `AIMO_QUANT_POLICY` | `8` | lmdeploy KV quantisation (8: int8 KV) |
| `AIMO_MAX_BATCH` | `32` | engine batch size |
| `AIMO_SESSION_LEN` | `41088` | engine session length |
| `AIMO_QUESTIONS` | `50` | questions in the competition (the schedule's re-evaluation uses it) |
| `AIMO_SEED` | `0` | sampling seed of question k is seed + k |
| `AIMO_CODE_WORKERS` | `4` | sandbox processes at once |
| `AIMO_RECORD` | — | trace store to record the run into (kind `solve`) |
| `AIMO_BUDGET_S` | `18000` | the competition budget: caps the policy's cutoff (budget less 1%) |

An answer is always on time: the asyncio loop that drives the engine runs in its own thread, and
`predict` waits for it only until the question's deadline (the cutoff plus the watchdog's grace,
or the level timeout plus grace and one drain, plus one watchdog poll). An engine call that hangs
(`start_question`, a stream, `cancel_all`), even one that blocks the loop's thread, cannot hold
the answer: the question gets what the loop knew (or the fallback / cutoff answer), and the
engine is restarted (`restart` hook) in a fresh loop before the next question.

The module-level `predict` builds one `Solver` from the environment on its first call (the only
global state, as the inference server requires a plain function).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aimo.core.errors import InputError
from aimo.solver.loop import (
    CodeRunner,
    CompetitionClock,
    LoopOptions,
    RecordedRunner,
    RunRecorder,
    SandboxRunner,
    SolveSession,
    WallClock,
)
from aimo.core.budget import check_budget
from aimo.core.policy import Policy, load_policy
from aimo.solver.solve import EngineSpec, build_engine, solve_run_info

logger = logging.getLogger("aimo.solver.kaggle")

_ENV = "<environment>"


@dataclass(frozen=True)
class SolverConfig:
    """How to build a `Solver` (see the module docstring for the environment variables)."""

    policy: str = "seed-2nd-place"
    backend: str = "turbomind"
    model: str | None = None
    tp: int | None = None
    quant_policy: int = 8
    max_batch: int = 32
    session_len: int = 32768 + 8192 + 128
    questions: int = 50
    seed: int = 0
    code_workers: int = 4
    record: str | None = None
    budget_s: float = 5 * 3600.0

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> SolverConfig:
        """Read `AIMO_*` variables; InputError names the variable of a bad value."""
        env = os.environ if env is None else env

        def optional_integer(name: str) -> int | None:
            raw = env.get(name)
            if raw is None or raw.strip() == "":
                return None
            try:
                return int(raw)
            except ValueError:
                raise InputError(_ENV, name, f"expected an integer, got {raw!r}") from None

        def budgeted(raw: str | None) -> float:
            if raw is None or raw.strip() == "":
                return cls.budget_s
            try:
                return check_budget(float(raw), _ENV)
            except ValueError:
                raise InputError(_ENV, "AIMO_BUDGET_S", f"expected seconds > 0, got {raw!r}") from None

        def integer(name: str, default: int) -> int:
            value = optional_integer(name)
            return default if value is None else value

        return cls(
            policy=env.get("AIMO_POLICY") or cls.policy,
            backend=env.get("AIMO_BACKEND") or cls.backend,
            model=env.get("AIMO_MODEL") or None,
            tp=optional_integer("AIMO_TP"),
            quant_policy=integer("AIMO_QUANT_POLICY", cls.quant_policy),
            max_batch=integer("AIMO_MAX_BATCH", cls.max_batch),
            session_len=integer("AIMO_SESSION_LEN", cls.session_len),
            questions=integer("AIMO_QUESTIONS", cls.questions),
            seed=integer("AIMO_SEED", cls.seed),
            code_workers=integer("AIMO_CODE_WORKERS", cls.code_workers),
            record=env.get("AIMO_RECORD") or None,
            budget_s=budgeted(env.get("AIMO_BUDGET_S")),
        )

    def engine_spec(self) -> EngineSpec:
        return EngineSpec(self.backend, model=self.model, tp=self.tp, quant_policy=self.quant_policy,
                          max_batch=self.max_batch, session_len=self.session_len, seed=self.seed)


class _LoopThread:
    """An asyncio loop in a daemon thread: a call that blocks the loop cannot block the caller."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="aimo-solver-loop", daemon=True)
        self.thread.start()

    def run(self, coro: Any, timeout: float | None) -> Any:
        """The coroutine's result; concurrent.futures.TimeoutError after `timeout` seconds."""
        future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise

    def stop(self, timeout_s: float = 1.0) -> None:
        """Cancel what still runs in the loop (abandoned questions), stop it and close it; a loop
        still blocked by the engine is left to its daemon thread."""

        async def _cancel_rest() -> None:
            rest = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in rest:
                task.cancel()
            if rest:
                await asyncio.wait(rest, timeout=timeout_s)

        try:
            asyncio.run_coroutine_threadsafe(_cancel_rest(), self.loop).result(timeout_s + 0.5)
        except Exception:  # noqa: BLE001 - blocked or already stopped: nothing more to do
            pass
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=timeout_s)
        if not self.thread.is_alive():
            self.loop.close()


def _scalar(value: Any) -> Any:
    """The single value of a one-element Series (polars/pandas) or the value itself."""
    if hasattr(value, "item") and not isinstance(value, (str, int)):
        try:
            return value.item()
        except (TypeError, ValueError):
            return value[0]
    return value


class Solver:
    """The live solver for a competition served one question at a time.

    Args:
        config: how to build engine, policy and recorder (default: from the environment).
        engine, policy, runner: ready-made parts (tests, notebooks); override the config's.
        clock: the competition clock (default: a wall clock started now).
    `predict` never raises: on any failure the question gets the policy's fallback answer (or
    the cutoff answer after the cutoff). Not thread-safe; call `close()` at the end.
    """

    def __init__(
        self,
        config: SolverConfig | None = None,
        *,
        engine: Any = None,
        policy: Policy | None = None,
        runner: CodeRunner | None = None,
        clock: CompetitionClock | None = None,
        options: LoopOptions = LoopOptions(),
    ) -> None:
        self.config = config or SolverConfig.from_env()
        self.clock = clock or WallClock()
        self.policy = policy or load_policy(self.config.policy)
        self._loop = _LoopThread()
        self._abandoned: list[_LoopThread] = []  # loops blocked by a hung engine
        self.options = options
        self._pool = None
        self.engine = engine if engine is not None else build_engine(self.config.engine_spec(), self.policy)
        if runner is None:
            if getattr(self.engine, "virtual_clock", False):
                runner = RecordedRunner()
            else:
                from aimo.solver.sandbox import SandboxPool

                self._pool = SandboxPool(self.config.code_workers)
                runner = SandboxRunner(self._pool)
        self.recorder = None
        if self.config.record:
            spec = self.config.engine_spec()
            info = solve_run_info(self.policy, spec, None, engine=self.engine, notes="kaggle predict")
            self.recorder = RunRecorder(Path(self.config.record), info)
        virtual = getattr(self.engine, "virtual_clock", False)
        self.session = SolveSession(
            self.engine, self.policy, runner, questions=self.config.questions,
            clock=None if virtual and clock is None else self.clock,
            startup_s=None if virtual else self.clock.elapsed(),
            recorder=self.recorder, options=options, seed=self.config.seed,
            budget_s=self.config.budget_s,
        )

    @property
    def questions_done(self) -> int:
        return self.session.budget.done

    @property
    def level(self) -> int:
        return self.session.budget.level

    def wait_limit_s(self) -> float | None:
        """How long `predict` waits for the loop: the latest question deadline the session can
        set (`SolveSession.question_deadline_s` over the levels) plus one watchdog poll, plus a
        pending engine restart; None on a virtual clock (nothing there can hang on wall time)."""
        if self.session.virtual:
            return None
        opt = self.options
        schedule = self.session.policy.schedule
        left = max(0.0, schedule.cutoff_s - self.session.budget.clock.elapsed())
        slowest = max(level.timeout_s for level in schedule.levels)
        limit = min(left + opt.watchdog_grace_s, slowest + opt.watchdog_grace_s + opt.drain_timeout_s)
        if self.session.needs_restart:
            limit += min(opt.restart_timeout_s, left)
        return limit + opt.watchdog_poll_s

    def predict(self, id_: Any, question: Any) -> int:
        """The answer (0..999) to one question; state carries over to the next call."""
        pid, text = str(_scalar(id_)), str(_scalar(question))
        try:
            result = self._loop.run(self.session.answer(pid, text), self.wait_limit_s())
            return int(result.answer) % 1000
        except concurrent.futures.TimeoutError:
            logger.error("question %s: the engine blocked the solver's loop past the deadline; "
                         "answering without it and restarting the engine in a fresh loop", pid)
            answer = self._fallback()
            self.session.give_up(pid, answer)
            self._abandoned.append(self._loop)  # stopped by close(), if the engine ever lets go
            self._loop = _LoopThread()
            return answer
        except Exception:
            logger.exception("question %s failed; answering the fallback", pid)
            return self._fallback()

    def _fallback(self) -> int:
        """The cutoff answer after the cutoff, else the policy's fallback."""
        schedule = self.session.policy.schedule
        after = self.clock.elapsed() > schedule.cutoff_s
        return (schedule.cutoff_answer if after else self.policy.vote.fallback) % 1000

    def close(self) -> None:
        """Close the engine, the sandbox pool and the recorder's run."""
        try:
            self._loop.run(self.engine.close(), self.options.restart_timeout_s)
        except Exception:
            logger.exception("could not close the engine")
        finally:
            if self._pool is not None:
                self._pool.close()
            if self.recorder is not None:
                self.recorder.finish("complete")
            self._loop.stop()
            for blocked in self._abandoned:
                blocked.stop()


_default: Solver | None = None


def predict(id_: Any, question: Any) -> int:
    """Kaggle entry: answer one question with the solver configured by the environment."""
    global _default
    if _default is None:
        _default = Solver()
    return _default.predict(id_, question)


__all__ = ["Solver", "SolverConfig", "predict"]
