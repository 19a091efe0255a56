"""The batch runner behind `aimo solve`: answer a problems CSV with the live solver.

`run_solve` builds the engine (replay, synthetic, or lmdeploy turbomind/pytorch), runs the
questions in CSV order through a `SolveSession` (speed schedule, cutoff, watchdog), optionally
records the run (kind `solve`) into a trace store, prints one line per question and returns a
`SolveReport` whose `to_json()` has the fields of `aimo simulate --json` (docs/simulate-json.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import csv
import datetime as dt
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aimo.solver.engines import (
    LMDEPLOY_BACKENDS,
    EngineUnavailable,
    ReplayEngine,
    SyntheticEngine,
    lmdeploy_engine_class,
)
from aimo.core.errors import InputError
from aimo.core.hardware import HardwareProfile
from aimo.solver.loop import (
    DEFAULT_BUDGET_S,
    CodeRunner,
    LoopOptions,
    RecordedRunner,
    RunRecorder,
    SandboxRunner,
    SolveResult,
    SolveSession,
    VirtualClock,
    WallClock,
)
from aimo.core.budget import check_budget
from aimo.core.report import competition_json, render_competition, render_question
from aimo.core.scoring import check_overtime_rule
from aimo.core.policy import Policy, load_policy, policy_to_dict, uses_confidence
from aimo.core.traces import ProblemTrace, RunInfo, require_confidence
from aimo.solver.loop.gc_pauses import GcPauses

BACKENDS = ("replay", "synthetic", *LMDEPLOY_BACKENDS, "hil")
HIL_LMDEPLOY_BACKEND = "pytorch"  # the backend a hil run drives (EngineSpec.options["lmdeploy_backend"])
QUESTION_ALIASES = ("question", "problem")


@dataclass(frozen=True)
class Problem:
    """One question to answer: its id, text and known answer (None if unknown)."""

    problem_id: str
    question: str
    answer: int | None = None


def read_problems_csv(path: str | Path) -> list[Problem]:
    """Problems from a CSV with columns `id`, `question` (or `problem`) and optional `answer`.

    Raises:
        InputError: naming the file, the line and the column of the first bad value.
    """
    src = str(path)
    try:
        # utf-8-sig: skip an Excel byte-order mark instead of reading it into the first column name
        handle = Path(path).open(newline="", encoding="utf-8-sig")
    except OSError as exc:
        raise InputError(src, None, f"cannot read: {exc.strerror or exc}") from exc
    out: list[Problem] = []
    seen: set[str] = set()
    start = 2
    with handle:
        # strict: an unclosed quote fails at the end of the file instead of swallowing the rest
        reader = csv.DictReader(handle, strict=True)
        try:
            header = reader.fieldnames or []
            if "id" not in header:
                raise InputError(src, "id", f"missing column (header: {', '.join(header) or 'empty'})")
            qcol = next((c for c in QUESTION_ALIASES if c in header), None)
            for row in reader:
                line, start = start, reader.line_num + 1
                if None in row:
                    raise InputError(src, f"line {line}", "more values than header columns")
                pid = (row.get("id") or "").strip()
                if not pid:
                    raise InputError(src, f"line {line}: id", "empty")
                if pid in seen:
                    raise InputError(src, f"line {line}: id", f"duplicate id {pid!r}")
                seen.add(pid)
                raw = (row.get("answer") or "").strip()
                answer = None
                if raw:
                    try:
                        answer = int(raw)
                    except ValueError:
                        answer = -1
                    if not 0 <= answer <= 999:
                        raise InputError(src, f"line {line}: answer",
                                         f"expected an integer 0..999 or empty, got {raw!r}")
                out.append(Problem(pid, (row.get(qcol) or "") if qcol else "", answer))
        except csv.Error as exc:
            hint = (" (an unclosed quote: the quoted field that starts on this line runs to the "
                    "end of the file)" if "end of data" in str(exc) else "")
            raise InputError(src, f"line {start}", f"malformed CSV: {exc}{hint}") from None
        except UnicodeDecodeError as exc:
            raise InputError(src, f"line {start}", f"not UTF-8 text: {exc}") from None
    if not out:
        raise InputError(src, None, "no problems")
    return out


@dataclass(frozen=True)
class EngineSpec:
    """Which engine to build: `backend` one of BACKENDS; lmdeploy settings for turbomind/pytorch."""

    backend: str
    model: str | None = None
    tp: int | None = None  # lmdeploy: None = every visible GPU
    quant_policy: int = 8
    max_batch: int = 32
    session_len: int = 32768 + 8192 + 128
    seed: int = 0
    options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise InputError("<engine>", "backend", f"must be one of {', '.join(BACKENDS)} (got {self.backend!r})")


@dataclass(frozen=True)
class SolveReport:
    """What `run_solve` did: the competition result plus where it came from."""

    result: SolveResult
    policy: str
    backend: str
    hardware: str | None
    traces: str | None
    run_id: str | None
    record: str | None
    wall_s: float
    gc: dict[str, Any] | None = None  # a live run's garbage-collection pauses (`GcPauses.summary`)

    def to_json(self) -> dict[str, Any]:
        """`aimo simulate --json` fields (mode `solve`), plus `backend`, `record`, `wall_s` and,
        for a live run, `gc` (the collector's pauses on the competition clock)."""
        head: dict[str, Any] = {
            "traces": self.traces, "run_id": self.run_id, "policy": self.policy,
            "hardware": self.hardware, "budget_s": self.result.budget_s, "mode": "solve",
            "backend": self.backend, "record": self.record, "wall_s": round(self.wall_s, 3)}
        if self.gc is not None:
            head["gc"] = self.gc
        return {**head, **competition_json(self.result)}

    def render(self) -> str:
        where = f" on {self.traces} (run {self.run_id})" if self.traces else ""
        hw = f", hardware {self.hardware}" if self.hardware else ""
        head = f"policy {self.policy}, backend {self.backend}{where}{hw}"
        return head + "\n" + render_competition(self.result)


def check_speedup(speedup: float, where: str = "--speedup") -> float:
    """Virtual seconds per wall second: a number > 0 (`inf`: no sleeping); InputError otherwise."""
    try:
        value = float(speedup)
    except (TypeError, ValueError):
        raise InputError(where, "speedup", f"expected a number > 0 or inf, got {speedup!r}") from None
    if math.isnan(value) or value <= 0:
        raise InputError(where, "speedup", f"must be > 0 (virtual seconds per wall second; inf: no sleeping), got {speedup!r}")
    return value


def build_engine(
    spec: EngineSpec, policy: Policy, *, traces: Sequence[ProblemTrace] | None = None,
    hardware: HardwareProfile | None = None, speedup: float = math.inf,
) -> Any:
    """The engine for `spec` (replay needs `traces` and `hardware`).

    Raises:
        InputError: a missing argument for the backend; `MissingConfidence` (one) for replayed
            traces without token confidence under a policy that reads it, as the simulator.
        EngineUnavailable: turbomind/pytorch without lmdeploy installed.
    """
    speedup = check_speedup(speedup)
    every = policy.check.every_tokens
    if spec.backend == "replay":
        if traces is None:
            raise InputError("<engine>", "traces", "the replay backend needs a trace store (--traces)")
        if hardware is None:
            raise InputError("<engine>", "hardware", "the replay backend needs a hardware profile (--hardware)")
        if uses_confidence(policy):
            require_confidence(traces, policy.name)
        return ReplayEngine(traces, hardware, chunk_tokens=every, speedup=speedup)
    if spec.backend == "synthetic":
        return SyntheticEngine(seed=spec.seed, model=hardware, chunk_tokens=every, speedup=speedup)
    if not spec.model:
        raise InputError("<engine>", "model", f"the {spec.backend} backend needs a model path (--model)")
    if spec.backend == "hil":
        return _hil_engine(spec, traces)
    cls = lmdeploy_engine_class()
    return cls(model_path=spec.model, backend=spec.backend, quant_policy=spec.quant_policy, tp=spec.tp,
               max_batch=spec.max_batch, session_len=spec.session_len, **spec.options)


def _hil_engine(spec: EngineSpec, traces: Sequence[ProblemTrace] | None) -> Any:
    """The hardware-in-the-loop engine (solver/engines/hil.py): lmdeploy + a store's samples."""
    if traces is None:
        raise InputError("<engine>", "traces", "the hil backend needs a trace store (--traces)")
    from aimo.solver.engines.hil import build_hil_engine

    opts = dict(spec.options)
    draw_seed = opts.pop("draw_seed", spec.seed)
    code_workers = opts.pop("code_workers", None)
    shared = opts.pop("lmdeploy_engine", None)  # started elsewhere and kept open (device_hil.py)
    opts.pop("hil_source", None)  # run metadata (solve_run_info), not an engine setting
    lmdeploy = {"backend": opts.pop("lmdeploy_backend", HIL_LMDEPLOY_BACKEND), "tp": spec.tp,
                "quant_policy": spec.quant_policy, "max_batch": spec.max_batch,
                "session_len": spec.session_len, **opts}
    return build_hil_engine(spec.model or "", traces, draw_seed=draw_seed, lmdeploy_options=lmdeploy,
                            code_workers=code_workers, lmdeploy_engine=shared)


def _run_id(policy: Policy, backend: str) -> str:
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
    return f"solve-{policy.name}-{backend}-{stamp}".replace(" ", "_")


def solve_run_info(policy: Policy, spec: EngineSpec, hardware: str | None, *, run_id: str | None = None,
                   notes: str | None = None, engine: Any = None) -> RunInfo:
    """The `runs` row of a recorded solve (kind `solve`); an lmdeploy `engine` contributes its
    actual backend, quantisation, hardware and engine settings."""
    g = policy.generation
    gen_config: dict[str, Any] = {
        "temperature": g.temperature, "top_p": g.top_p, "min_p": g.min_p,
        "repetition_penalty": g.repetition_penalty, "max_new_tokens": g.max_new_tokens,
        "seed": spec.seed,
    }
    run_config = getattr(engine, "run_config", None)
    if callable(run_config):
        gen_config["engine"] = run_config()
    if spec.backend == "hil":
        gen_config["hil"] = {"draw_seed": spec.options.get("draw_seed", spec.seed),
                             **spec.options.get("hil_source", {})}
    quantization = getattr(engine, "quantization", None)
    if quantization is None and spec.backend in LMDEPLOY_BACKENDS:
        quantization = f"kv{spec.quant_policy}"
    return RunInfo(
        run_id=run_id or _run_id(policy, spec.backend), kind="solve", model=spec.model,
        backend=getattr(engine, "backend", None) or spec.backend, quantization=quantization,
        hardware=hardware or getattr(engine, "hardware", None), gen_config=gen_config,
        policy=policy_to_dict(policy), notes=notes, logprobs=getattr(engine, "logprob_setting", None),
    )


async def solve_async(
    session: SolveSession, problems: Sequence[Problem], echo: Callable[[str], None] | None = None
) -> SolveResult:
    """Answer `problems` in order; `echo` gets one line per question."""
    for p in problems:
        q = await session.answer(p.problem_id, p.question, truth=p.answer)
        if echo is not None:
            echo(render_question(q))
    return session.result()


def run_solve(
    problems_csv: str | Path | Sequence[Problem] | None,
    policy: Policy | str,
    engine_spec: EngineSpec | str,
    *,
    record: Path | None = None,
    hardware: HardwareProfile | None = None,
    speedup: float = math.inf,
    traces: str | Path | None = None,
    run_id: str | None = None,
    budget_s: float = DEFAULT_BUDGET_S,
    code_workers: int = 4,
    code_runner: str | None = None,
    require_sandbox: bool | None = None,
    echo: Callable[[str], None] | None = print,
    options: LoopOptions = LoopOptions(),
    overtime_rule: str = "zero",
    resume: bool = False,
    record_run_id: str | None = None,
) -> SolveReport:
    """Solve a problem set with the live solver and return the report.

    Args:
        problems_csv: CSV path (`id,question[,answer]`), a list of `Problem`, or None for every
            question of the replayed run in recorded order (replay only).
        policy: a `Policy`, a preset name or a YAML path.
        engine_spec: an `EngineSpec` or a backend name.
        record: a trace store to record the run into (kind `solve`).
        hardware: the time model (a `core.hardware.HardwareProfile`); replay needs it,
            synthetic uses it if given.
        speedup: virtual seconds per wall second for replay/synthetic (`inf`: no sleeping).
        traces: the trace store to replay; `run_id` picks its run when it holds several.
        code_runner: `recorded` (default for replay/synthetic) or `sandbox` (default for lmdeploy).
        require_sandbox: refuse to run code unless every sandbox layer is here (None: env
            AIMO_REQUIRE_SANDBOX); the sandbox prints its layers to stderr once either way.
        echo: prints one line per question (None: silent).
        budget_s: the competition budget: it caps the policy's cutoff (budget less 1%), so the
            run ends within it; a run that still passes it scores by `overtime_rule`.
        overtime_rule: `zero` (an overtime run scores nothing) or `answered`.
        resume: continue the interrupted solve run of `record` (or `record_run_id`) from its
            recording: the questions it committed are skipped, the clock starts at the time they
            used and the speed level at the last one's.
    Raises:
        InputError: bad CSV, policy, store, or arguments (naming file and field).
        EngineUnavailable: turbomind/pytorch without lmdeploy.
    """
    budget_s = check_budget(budget_s)
    check_overtime_rule(overtime_rule)
    speedup = check_speedup(speedup)
    pol = load_policy(policy) if isinstance(policy, (str, Path)) else policy
    if record is not None:
        from aimo.core.store.out_path import check_out_path

        check_out_path(record, "--record", overwrite=None)  # before minutes of engine start-up
    spec = EngineSpec(engine_spec) if isinstance(engine_spec, str) else engine_spec
    trace_list: list[ProblemTrace] | None = None
    if traces is not None:
        from aimo.core.store import load_problem_traces

        trace_list = load_problem_traces(traces, run_id)
        if not trace_list:
            raise InputError(str(traces), None, "no completed questions in the store")
    problems = _problems(problems_csv, trace_list, spec.backend)
    if spec.backend == "hil":  # the stored question texts (real prompts) and the run's source
        problems, spec = _hil_inputs(problems, problems_csv is None, spec, traces, trace_list)
    point = None
    if resume:
        if record is None:
            raise InputError("<solve>", "resume", "--resume continues a recording: give --record")
        from aimo.core.store.live import resume_point

        point = resume_point(record, record_run_id)
        problems = [p for p in problems if p.problem_id not in point.done]
        if echo is not None:
            echo(f"resuming run {point.run_id} after {point.n_done} questions "
                 f"({point.time_used_s:.0f} s used, level {point.level}); the result below covers "
                 f"the {len(problems)} remaining (`aimo runs show` has the whole run)")
    # live engines: loading the engine counts against the budget (on resume: after the time used)
    clock = WallClock(offset_s=point.time_used_s if point else 0.0)
    engine = build_engine(spec, pol, traces=trace_list, hardware=hardware, speedup=speedup)
    live = not getattr(engine, "virtual_clock", False)
    kind = code_runner or ("sandbox" if spec.backend in LMDEPLOY_BACKENDS else
                           "hil" if spec.backend == "hil" else "recorded")
    hw_name = getattr(hardware, "name", None) if hardware is not None else None
    recorder = None
    if record is not None:
        run_info = solve_run_info(pol, spec, hw_name, engine=engine,
                                  run_id=point.run_id if point else record_run_id,
                                  notes=f"aimo solve of {len(problems)} problems")
        recorder = RunRecorder(record, run_info, resume=point is not None, budget_s=budget_s)
    t0 = time.monotonic()
    pool = None
    try:
        runner: CodeRunner
        if kind == "sandbox":
            from aimo.solver.sandbox import SandboxPool

            pool = SandboxPool(code_workers, require_layers=require_sandbox)
            runner = SandboxRunner(pool)
        elif kind == "recorded":
            runner = RecordedRunner()
        elif kind == "hil":
            from aimo.solver.engines.hil import HilRunner
            from aimo.solver.sandbox import SandboxPool

            pool = SandboxPool(code_workers)
            runner = HilRunner(pool)
        else:
            raise InputError("<engine>", "code_runner", f"must be 'recorded' or 'sandbox' (got {kind!r})")
        virtual_clock = VirtualClock(point.time_used_s) if point and not live else None
        n_before = point.n_done if point else 0
        session = SolveSession(engine, pol, runner, questions=n_before + len(problems), recorder=recorder,
                               clock=clock if live else virtual_clock,
                               startup_s=clock.elapsed() if live else None,
                               options=options, seed=spec.seed, budget_s=budget_s,
                               overtime_rule=overtime_rule)
        if point is not None:
            session.budget.resume_from(point.n_done, point.level)

        async def _main() -> SolveResult:
            try:
                return await solve_async(session, problems, echo)
            finally:  # a hung engine must not hold the finished run: close is bounded too
                closing = asyncio.ensure_future(engine.close())
                done, _ = await asyncio.wait({closing}, timeout=options.restart_timeout_s)
                if closing not in done:
                    closing.cancel()
                elif closing.exception() is not None:
                    raise closing.exception()  # type: ignore[misc]

        with GcPauses(clock.elapsed) if live else contextlib.nullcontext() as pauses:
            result = asyncio.run(_main())
        if recorder is not None:
            recorder.finish("complete")
    except BaseException:
        if recorder is not None:
            try:
                recorder.finish("failed")
            except Exception:
                pass
        raise
    finally:
        if pool is not None:
            pool.close()
    return SolveReport(
        result=result, policy=pol.name, backend=spec.backend, hardware=hw_name,
        traces=None if traces is None else str(traces),
        run_id=trace_list[0].run_id if trace_list else None,
        record=None if record is None else str(record), wall_s=time.monotonic() - t0,
        gc=pauses.summary() if isinstance(pauses, GcPauses) else None,
    )


def _hil_inputs(problems: list[Problem], from_store: bool, spec: EngineSpec, traces: str | Path | None,
                trace_list: Sequence[ProblemTrace] | None) -> tuple[list[Problem], EngineSpec]:
    """A hil run's problems with the stored question texts (its prompts are real), and its spec
    with the replayed store's path, run and length scale (`hil_source`, recorded in the run)."""
    if traces is None or not trace_list:
        return problems, spec  # build_engine says what is missing
    run_id = trace_list[0].run_id
    if from_store:
        texts = _store_questions(traces, run_id)
        problems = [Problem(p.problem_id, texts.get(p.problem_id, ""), p.answer) for p in problems]
    source = {"traces": str(traces), "run_id": run_id, "length_scale": _store_scale(traces, run_id)}
    return problems, dataclasses.replace(spec, options={**spec.options, "hil_source": source})


def _store_questions(path: str | Path | None, run_id: str) -> dict[str, str]:
    """Question texts of a stored run, by problem id."""
    from aimo.core.store.queries import question_texts

    return question_texts(path, run_id)  # type: ignore[arg-type]


def _store_scale(path: str | Path | None, run_id: str | None) -> float | None:
    """The `length_scale` a scaled copy of a store recorded in its run's gen_config (None: unscaled)."""
    if path is None or run_id is None:
        return None
    from aimo.core.store import list_runs

    for run in list_runs(path):
        if run.run_id == run_id:
            value = (run.gen_config or {}).get("length_scale")
            return float(value) if value is not None else None
    return None


def _problems(source: str | Path | Sequence[Problem] | None, traces: Sequence[ProblemTrace] | None,
              backend: str) -> list[Problem]:
    if source is None:
        if traces is None:
            raise InputError("<solve>", "problems", "a problems CSV is needed (or --traces for replay)")
        return [Problem(p.problem_id, "", p.answer) for p in traces]
    problems = read_problems_csv(source) if isinstance(source, (str, Path)) else list(source)
    if backend in ("replay", "hil") and traces is not None:
        known = {p.problem_id: p for p in traces}
        where = str(source) if isinstance(source, (str, Path)) else "<problems>"
        missing = [p.problem_id for p in problems if p.problem_id not in known]
        if missing:
            raise InputError(where, "id", f"not in the replayed run: {', '.join(missing[:5])}")
        problems = [p if p.answer is not None else Problem(p.problem_id, p.question, known[p.problem_id].answer)
                    for p in problems]
    return problems


__all__ = [
    "BACKENDS", "EngineSpec", "EngineUnavailable", "Problem", "SolveReport", "build_engine", "check_speedup",
    "read_problems_csv", "run_solve", "solve_async", "solve_run_info",
]
