"""`aimo record`: run every sample of every question to its natural end and store everything.

What is stored, per question, in one transaction (so a crash loses at most the question in flight
and a rerun resumes after the last committed one, duplicating nothing): every chunk of every sample
with its arrival time, every boxed answer at the token it appeared (StreamingExtractor, exact mode),
every code run (each distinct ```python block, run in the sandbox pool off the stream: a run never
holds the stream up) with its outcome and its finish time.

The recorder drives any `Engine` (the lmdeploy adapter on a GPU, a scripted engine in tests), so
its cost can be measured on CPU: `RecordStats` says how much time went into the recorder's own
work per chunk and between questions, against the wall time (the goal: under 1%).
"""

from __future__ import annotations

import asyncio
import json
import math
import re
import sys
import time
from collections.abc import Coroutine, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from aimo.recorder.shards import Shard, select_shard
from aimo.solver.engines.base import Chunk, Engine, PromptSpec, QuestionStream, SamplingSettings
from aimo.solver.engines.logprobs import DEFAULT_TOP_K
from aimo.core.errors import InputError
from aimo.solver.extraction import StreamingExtractor, code_answer, prepare_code
from aimo.solver.loop.recording import RunRecorder
from aimo.core.policy import Policy, load_policy, policy_to_dict
from aimo.solver.sandbox import ExecResult, SandboxLimits, SandboxPool
from aimo.core.store import ProblemRow, list_runs
from aimo.core.traces import LogprobSetting, RunInfo

DEFAULT_PROMPTS = "cot:16,code:16"
DEFAULT_LIMITS = SandboxLimits()  # the seed's 30 s per code run
ERROR_CHARS = 500
PROGRESS_EVERY_S = 0.5
MAX_FINISHING = 2  # questions whose code runs may still be finishing while the next one streams
_MIX_ITEM = re.compile(r"^\s*(cot|code)\s*:\s*(\d+)\s*$")
# gen_config keys that must match when a recording is resumed (the rest may differ, e.g. start-up)
_RESUME_KEYS = (
    "samples", "prompt_kinds", "sampling", "prompts", "policy", "extraction", "logprobs", "shard"
)


# --------------------------------------------------------------------------- inputs


@dataclass(frozen=True)
class Problem:
    """One question to record: id, position in the CSV, text, known answer (None if unknown)."""

    problem_id: str
    position: int
    question: str
    answer: int | None


def parse_prompt_mix(spec: str, *, field_name: str = "--prompts") -> tuple[str, ...]:
    """The pool of prompt kinds, e.g. 'cot:16,code:16' -> cot, code, cot, code, ... (32 kinds).

    Kinds are interleaved round-robin in the order listed (the seed's CoT, code, CoT, ... pool);
    a kind whose count runs out drops out of the rotation.

    Raises:
        InputError: naming `field_name` for a malformed item or an empty pool.
    """
    counts: list[tuple[str, int]] = []
    for item in spec.split(","):
        match = _MIX_ITEM.match(item)
        if not match:
            raise InputError(
                "<arguments>", field_name, f"expected kind:count items (cot|code), got {item!r}"
            )
        kind, n = match.group(1), int(match.group(2))
        if any(k == kind for k, _ in counts):
            raise InputError("<arguments>", field_name, f"kind {kind!r} listed twice")
        counts.append((kind, n))
    pool: list[str] = []
    left = dict(counts)
    while any(left.values()):
        for kind, _ in counts:
            if left[kind]:
                pool.append(kind)
                left[kind] -= 1
    if not pool:
        raise InputError("<arguments>", field_name, "the pool holds no prompt")
    return tuple(pool)


def sample_kinds(pool: Sequence[str], samples: int) -> tuple[str, ...]:
    """The first `samples` kinds of the pool (as the seed uses the first N of its 32 prompts)."""
    if not 1 <= samples <= len(pool):
        raise InputError(
            "<arguments>", "--samples", f"must be in 1..{len(pool)} (the prompt pool's size)"
        )
    return tuple(pool[:samples])


def load_problems(path: str | Path) -> list[Problem]:
    """Read a problems CSV (id,question,answer) for recording; every question must have text.

    Raises:
        InputError: naming the file, line and field of every problem found.
    """
    from aimo.recorder.importer import LineError, TraceImportError, read_problems

    errors: list[LineError] = []
    rows = read_problems(Path(path), errors)
    errors += [
        LineError(str(path), r.line, "question", "empty: nothing to ask the model")
        for r in rows
        if not (r.question or "").strip()
    ]
    if errors:
        raise TraceImportError(errors)
    return [Problem(r.problem_id, i, str(r.question), r.answer) for i, r in enumerate(rows)]


def prompt_specs(policy: Policy, kinds: Sequence[str], question: str) -> list[PromptSpec]:
    """One PromptSpec per sample: the policy's system prompt and question + user suffix per kind."""
    out = []
    for i, kind in enumerate(kinds):
        prompt = policy.generation.prompts.of(kind)
        user = question + prompt.user_suffix
        out.append(PromptSpec(i, kind, prompt.system, user))  # type: ignore[arg-type]
    return out


def sampling_settings(
    policy: Policy, max_new_tokens: int | None, seed: int | None
) -> SamplingSettings:
    g = policy.generation
    return SamplingSettings(
        temperature=g.temperature,
        top_p=g.top_p,
        min_p=g.min_p,
        repetition_penalty=g.repetition_penalty,
        max_new_tokens=max_new_tokens if max_new_tokens is not None else g.max_new_tokens,
        seed=seed,
    )


# --------------------------------------------------------------------------- one question


@dataclass
class RecordStats:
    """Where the time went. `handler_s`: the recorder's own work on chunks (extraction, storing,
    code submission); `gap_s`: time between questions when no batch runs (commit, code runs
    still going at the end of a question, start-up of the next batch's bookkeeping)."""

    questions: int = 0
    samples: int = 0
    chunks: int = 0
    tokens: int = 0
    answers: int = 0
    code_runs: int = 0
    wall_s: float = 0.0
    stream_s: float = 0.0
    handler_s: float = 0.0
    commit_s: float = 0.0
    code_wait_s: float = 0.0
    start_s: float = 0.0
    engine_startup_s: float | None = None
    confidence_missing: int = 0  # samples stored without confidence: fewer logprobs than tokens

    @property
    def per_chunk_us(self) -> float:
        return 1e6 * self.handler_s / self.chunks if self.chunks else math.nan

    @property
    def gap_s(self) -> float:
        return self.commit_s + self.code_wait_s + self.start_s

    @property
    def outside_share(self) -> float:
        """Share of wall time spent in the recorder rather than waiting on the engine."""
        return (self.handler_s + self.gap_s) / self.wall_s if self.wall_s > 0 else math.nan

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / self.stream_s if self.stream_s > 0 else math.nan

    def as_dict(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "per_chunk_us": self.per_chunk_us,
            "gap_s": self.gap_s,
            "outside_share": self.outside_share,
            "tokens_per_s": self.tokens_per_s,
        }


class QuestionLog:
    """Drives the recording of one question into a `RunRecorder` (solver.loop.recording).

    `on_chunk` is the hot path: the recorder's list appends plus incremental extraction (boxed
    answers are stored at the token whose chunk closed the box). Each new ```python block goes to
    the sandbox pool without holding the stream up; `finish` awaits the runs still going. A code
    answer row carries the token its block completed at and the stream time its run finished.

    In exact mode a box can only be completed by a '}' and a code block by a '`', so deltas
    without either are held back and handed to the extractor together with the next delta that
    has one: the same answers at the same tokens, for a fraction of the extraction work.
    """

    def __init__(
        self,
        kinds: Sequence[str],
        stream: QuestionStream,
        recorder: RunRecorder,
        pool: SandboxPool | None,
        extraction: str = "exact",
    ) -> None:
        self.kinds = tuple(kinds)
        self.stream = stream
        self.recorder = recorder
        self.pool = pool
        n = len(kinds)
        mode: Any = extraction
        self._extractors = [StreamingExtractor(mode) for _ in range(n)]
        self._lazy = extraction == "exact"
        self._held: list[list[str]] = [[] for _ in range(n)]
        self._last_n = [0] * n
        self._last_code: list[str | None] = [None] * n
        self._pending: list[asyncio.Task[None]] = []
        self.tokens = 0  # generated tokens so far, all samples
        self.samples = 0
        self.answers = 0
        self.code_runs = 0

    def on_chunk(self, c: Chunk) -> None:
        s = c.sample
        self.recorder.on_chunk(c)
        self.tokens += c.n_tokens - self._last_n[s]
        self._last_n[s] = c.n_tokens
        text = c.text
        if text:
            held = self._held[s]
            if self._lazy and "}" not in text and "`" not in text:
                held.append(text)
                found = None
            else:
                if held:
                    held.append(text)
                    text = "".join(held)
                    held.clear()
                found = self._extractors[s].feed(text, c.n_tokens)
            if found:
                for a in found.answers:
                    self.answers += 1
                    self.recorder.on_answer(s, a.token, c.t, "boxed", a.value)
                for block in found.code_blocks:
                    self._submit_code(s, block.code, block.token)
        if c.finish_reason is not None:
            prompt_tokens = getattr(self.stream, "prompt_tokens", None)
            n_prompt = prompt_tokens(s) if callable(prompt_tokens) else None
            self.samples += 1
            # every request is submitted when the batch starts: start_s = 0
            self.recorder.on_sample_end(
                s, self.kinds[s], int(n_prompt or 0), 0.0, c.t, c.n_tokens, c.finish_reason
            )

    def _submit_code(self, s: int, code: str, token: int) -> None:
        program = prepare_code(code)
        if self.pool is None or program == self._last_code[s]:
            return
        self._last_code[s] = program
        self.code_runs += 1
        self._pending.append(asyncio.ensure_future(self._run_code(s, program, token)))

    async def _run_code(self, s: int, program: str, token: int) -> None:
        assert self.pool is not None
        result: ExecResult = await self.pool.run(program)
        value = code_answer(result.stdout, result.ok)
        error = None if result.ok else (result.error or result.stderr[-ERROR_CHARS:] or "failed")
        self.answers += 1
        self.recorder.on_answer(
            s,
            token,
            self.stream.now(),
            "code",
            None if value is None or value < 0 else value,
            result.ok,
            result.exec_ms,
            error[:ERROR_CHARS] if error else None,
        )

    async def finish(self) -> None:
        """Wait for the code runs still going (each bounded by the sandbox's timeout)."""
        if self._pending:
            await asyncio.gather(*self._pending)
            self._pending.clear()


# --------------------------------------------------------------------------- the run


@dataclass(frozen=True)
class RecordSummary:
    """What `record` did: the run, the questions it wrote and skipped, and where the time went."""

    path: Path
    run_id: str
    backend: str
    written: tuple[str, ...]
    skipped: tuple[str, ...]
    stats: RecordStats = field(default_factory=RecordStats)

    def render(self) -> str:
        s = self.stats
        head = (
            f"recorded run {self.run_id} into {self.path} (backend {self.backend}): "
            f"{len(self.written)} question(s) written, "
            f"{len(self.skipped)} already done and skipped"
        )
        lines = [head]
        if s.questions:
            lines.append(
                f"  {s.samples} samples, {s.tokens} tokens, {s.answers} answers, "
                f"{s.code_runs} code runs; "
                f"{s.tokens_per_s:.0f} tok/s while streaming"
            )
            lines.append(
                f"  waiting outside the token stream: {100 * s.outside_share:.2f}% of "
                f"{s.wall_s:.1f} s wall = code-execution waits {s.code_wait_s:.2f} s + commits "
                f"{s.commit_s:.2f} s + batch starts {s.start_s:.2f} s between questions, and "
                f"chunk handling {s.per_chunk_us:.1f} us/chunk over {s.chunks} chunks"
            )
            if s.confidence_missing:
                lines.append(
                    f"  WARNING: {s.confidence_missing} sample(s) stored without confidence "
                    "(the engine gave fewer logprobs than tokens; see docs/gpu-notes.md)"
                )
        return "\n".join(lines)


class _Progress:
    """Rich progress (questions and tokens), refreshed at most every PROGRESS_EVERY_S."""

    def __init__(self, total: int, done: int, enabled: bool) -> None:
        self._bar: Any = None
        if not enabled:
            return
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        self._bar = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[info]}"),
            TimeElapsedColumn(),
        )
        self._task = self._bar.add_task("recording", total=total, completed=done, info="")
        self._bar.start()

    def question(self, problem_id: str) -> None:
        if self._bar is not None:
            self._bar.update(self._task, description=f"recording {problem_id}")

    def tokens(self, tokens: int, t: float) -> None:
        if self._bar is not None:
            rate = tokens / t if t > 0 else 0.0
            self._bar.update(self._task, info=f"{tokens} tok, {rate:.0f} tok/s")

    def advance(self) -> None:
        if self._bar is not None:
            self._bar.advance(self._task)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()


async def record_questions(
    engine: Engine,
    problems: Sequence[Problem],
    recorder: RunRecorder,
    policy: Policy,
    kinds: Sequence[str],
    sampling: SamplingSettings,
    *,
    pool: SandboxPool | None,
    stats: RecordStats,
    progress: _Progress | None = None,
    max_finishing: int = MAX_FINISHING,
) -> list[str]:
    """Record each problem in turn (every sample to its natural end); returns the ids written.

    Generation is the GPU's work and code runs the CPU's, so they overlap: once a question's
    stream ends, its remaining code runs finish (and the question commits) in a task of its own
    while the next question streams; at most `max_finishing` questions wait on code at once
    (1: one question at a time, as before). Each
    question records into its own buffer (`RunRecorder.question`) and keeps its own clock, so the
    recorded answer tokens, times and run times are what they would be one question at a time.
    """
    written: list[str] = []
    finishing: list[asyncio.Task[None]] = []

    async def finish(log: QuestionLog, qrec: RunRecorder, problem: Problem,
                     stream: QuestionStream) -> None:
        await log.finish()
        t_code = time.perf_counter()
        qrec.commit_question(
            ProblemRow(problem.problem_id, problem.position, problem.question, problem.answer),
            wall_s=stream.now(),
        )
        stats.commit_s += time.perf_counter() - t_code
        recorder.confidence_missing += qrec.confidence_missing
        recorder.spooled += qrec.spooled
        stats.answers += log.answers
        stats.code_runs += log.code_runs
        written.append(problem.problem_id)
        if progress is not None:
            progress.advance()

    async def wait_oldest() -> None:
        t0 = time.perf_counter()
        await finishing.pop(0)  # an error (e.g. a refused commit) surfaces here
        stats.code_wait_s += time.perf_counter() - t0

    try:
        for problem in problems:
            t_begin = time.perf_counter()
            specs = prompt_specs(policy, kinds, problem.question)
            if progress is not None:
                progress.question(problem.problem_id)
            stream = await engine.start_question(problem.problem_id, problem.question, specs,
                                                 sampling)
            qrec = recorder.question()
            log = QuestionLog(kinds, stream, qrec, pool, policy.extraction)
            t_stream = time.perf_counter()
            stats.start_s += t_stream - t_begin
            handler = 0.0
            n_chunks = 0
            next_progress = PROGRESS_EVERY_S
            async for chunk in stream:
                t0 = time.perf_counter()
                log.on_chunk(chunk)
                n_chunks += 1
                if progress is not None and chunk.t >= next_progress:
                    next_progress = chunk.t + PROGRESS_EVERY_S
                    progress.tokens(log.tokens, chunk.t)
                handler += time.perf_counter() - t0
            t_end = time.perf_counter()
            stats.questions += 1
            stats.samples += log.samples
            stats.chunks += n_chunks
            stats.tokens += log.tokens
            stats.stream_s += t_end - t_stream
            stats.handler_s += handler
            if progress is not None:
                progress.tokens(log.tokens, t_end - t_stream)
            finishing.append(asyncio.create_task(finish(log, qrec, problem, stream)))
            while len(finishing) >= max(1, max_finishing):
                await wait_oldest()
        while finishing:
            await wait_oldest()
    except asyncio.CancelledError:
        for task in finishing:
            task.cancel()
        raise
    except BaseException:
        # e.g. the engine died: the questions already generated still finish and commit (their
        # code runs need no engine), so a rerun resumes after them
        await asyncio.gather(*finishing, return_exceptions=True)
        raise
    done = set(written)
    return [p.problem_id for p in problems if p.problem_id in done]


def default_run_id(model: str | Path, problems_csv: str | Path) -> str:
    """Stable id (so a rerun resumes): record-<model dir name>-<problems file stem>."""
    return f"record-{Path(str(model).rstrip('/')).name}-{Path(problems_csv).stem}"


def _check_resumable(path: Path, run_id: str, gen_config: dict[str, Any]) -> None:
    """A recording resumes only with the same samples, prompts and sampling (else mixed stats)."""
    if not path.exists():
        return
    for run in list_runs(path):
        if run.run_id != run_id:
            continue
        stored = json.loads(json.dumps(run.gen_config))
        new = json.loads(json.dumps(gen_config))
        for key in _RESUME_KEYS:
            if stored.get(key) != new.get(key):
                raise InputError(
                    str(path),
                    f"runs.gen_config.{key}",
                    f"resuming run {run_id!r} with {new.get(key)!r}, stored {stored.get(key)!r}; "
                    "use another --out or run id",
                )


def run_record(
    problems_csv: str | Path,
    model: str | Path,
    backend: str,
    samples: int,
    out: str | Path,
    prompts: str = DEFAULT_PROMPTS,
    max_new_tokens: int | None = None,
    *,
    policy: str | Policy = "seed-2nd-place",
    run_id: str | None = None,
    engine: Engine | None = None,
    engine_options: dict[str, Any] | None = None,
    seed: int | None = None,
    sandbox_workers: int = 4,
    sandbox_limits: SandboxLimits = DEFAULT_LIMITS,
    run_code: bool = True,
    hardware: str | None = None,
    notes: str | None = None,
    show_progress: bool | None = None,
    shard: Shard | None = None,
    max_finishing: int = MAX_FINISHING,
    logprobs: int = DEFAULT_TOP_K,
) -> RecordSummary:
    """Record `samples` samples of every problem of `problems_csv` into the store `out`.

    Prompt texts, sampling settings and the extraction mode come from `policy` (a preset name or
    YAML path); `prompts` is the pool of kinds, interleaved ('cot:16,code:16'), of which the first
    `samples` are used; `max_new_tokens` overrides the policy's. `engine` (any Engine) is used as
    given and left open; without one an `LmdeployEngine(model, backend, **engine_options)` is built
    here and closed at the end. A run that exists in `out` is resumed: questions already committed
    are skipped, partial rows of an interrupted one are dropped. With `shard` only that shard's
    problems are recorded (recorder.shards: a stable split by problem id; `aimo merge` joins them).
    `logprobs` k > 0 asks the engine
    for the top-k logprobs of every token and stores each sample's confidence arrays (0: off); the
    setting is stored with the run (`runs.logprobs`), since it costs decode time. A given `engine`
    brings its own setting (`engine.logprob_setting`; engines without one record no confidence).

    Raises:
        InputError: a bad CSV, argument or policy, or a resume with different settings.
        LmdeployUnavailableError: no engine given and lmdeploy is not installed.
    """
    out = Path(out)
    pol = policy if isinstance(policy, Policy) else load_policy(policy)
    kinds = sample_kinds(parse_prompt_mix(prompts), samples)
    if max_new_tokens is not None and max_new_tokens < 1:
        raise InputError("<arguments>", "--max-new-tokens", "must be >= 1")
    if not 0 <= logprobs <= 1024:
        raise InputError("<arguments>", "--logprobs", f"must be 0 (off) .. 1024, got {logprobs}")
    sampling = sampling_settings(pol, max_new_tokens, seed)
    problems = select_shard(load_problems(problems_csv), shard, key=lambda p: p.problem_id)
    run_id = run_id or default_run_id(model, problems_csv)
    gen_config: dict[str, Any] = {
        "samples": samples,
        "prompt_kinds": list(kinds),
        "prompt_pool": prompts,
        "sampling": asdict(sampling),
        "prompts": {k: asdict(pol.generation.prompts.of(k)) for k in ("cot", "code")},
        "policy": pol.name,
        "extraction": pol.extraction,
        "problems_csv": str(problems_csv),
        "code_runs": run_code,
    }
    if shard is not None:
        gen_config["shard"] = str(shard)
    if engine is not None:  # a given engine decides (the lmdeploy adapter's logprobs=k)
        setting = getattr(engine, "logprob_setting", None)
        logprobs = setting.top_k if isinstance(setting, LogprobSetting) else 0
    if logprobs:
        gen_config["logprobs"] = logprobs
    _check_resumable(out, run_id, gen_config)

    own_engine = engine is None
    if engine is None:
        from aimo.solver.engines.lmdeploy_engine import BACKENDS, LmdeployEngine

        if backend not in BACKENDS:
            raise InputError("<arguments>", "--backend", f"must be one of {', '.join(BACKENDS)}")
        options = {**(engine_options or {}), "logprobs": logprobs}
        engine = LmdeployEngine(str(model), backend, **options)  # type: ignore[arg-type]
    try:
        return _record(
            engine,
            own_engine,
            out,
            run_id,
            gen_config,
            problems,
            pol,
            kinds,
            sampling,
            run_code=run_code,
            model=model,
            hardware=hardware,
            notes=notes,
            show_progress=show_progress,
            sandbox_workers=sandbox_workers,
            sandbox_limits=sandbox_limits,
            logprobs=logprobs,
            max_finishing=max_finishing,
        )
    except BaseException:
        if own_engine and not getattr(engine, "_closed", False):
            asyncio.run(engine.close())  # e.g. the run could not be resumed: free the GPU
        raise


def _record(
    engine: Engine,
    own_engine: bool,
    out: Path,
    run_id: str,
    gen_config: dict[str, Any],
    problems: Sequence[Problem],
    pol: Policy,
    kinds: Sequence[str],
    sampling: SamplingSettings,
    *,
    run_code: bool,
    model: str | Path,
    hardware: str | None,
    notes: str | None,
    show_progress: bool | None,
    sandbox_workers: int,
    sandbox_limits: SandboxLimits,
    logprobs: int = 0,
    max_finishing: int = MAX_FINISHING,
) -> RecordSummary:
    """`run_record` once the engine exists: start or resume the run, record, finish the run."""
    stats = RecordStats(engine_startup_s=getattr(engine, "startup_s", None))
    run_config = getattr(engine, "run_config", None)
    if callable(run_config):
        gen_config["engine"] = run_config()
    run = RunInfo(
        run_id=run_id,
        kind="record",
        model=str(model),
        backend=engine.backend,
        quantization=getattr(engine, "quantization", None),
        hardware=hardware or getattr(engine, "hardware", None),
        gen_config=gen_config,
        policy=policy_to_dict(pol),
        notes=notes,
        logprobs=_logprob_setting(engine, logprobs),
    )
    recorder = RunRecorder(out, run, resume=True)
    done = recorder.writer.done_questions(run_id)
    todo = [p for p in problems if p.problem_id not in done]
    skipped = tuple(p.problem_id for p in problems if p.problem_id in done)
    if show_progress is None:
        show_progress = sys.stderr.isatty()
    progress = _Progress(len(problems), len(skipped), show_progress)
    pool = SandboxPool(sandbox_workers, sandbox_limits) if run_code else None
    work = record_questions(
        engine, todo, recorder, pol, kinds, sampling, pool=pool, stats=stats, progress=progress,
        max_finishing=max_finishing,
    )
    started = time.perf_counter()
    status = "failed"
    try:
        written = asyncio.run(_record_and_close(engine, own_engine, work))
        status = "complete"
    finally:
        stats.wall_s = time.perf_counter() - started
        stats.confidence_missing = recorder.confidence_missing
        progress.close()
        if pool is not None:
            pool.close()
        recorder.finish(status)
    return RecordSummary(out, run_id, engine.backend, tuple(written), skipped, stats)


def _logprob_setting(engine: Engine, logprobs: int) -> LogprobSetting | None:
    """The run's logprob setting: the engine's own (the lmdeploy adapter: k and the mode of the
    backend that runs); None when off or for engines that send no logprobs."""
    setting = getattr(engine, "logprob_setting", None)
    return setting if logprobs > 0 and isinstance(setting, LogprobSetting) else None


async def _record_and_close(
    engine: Engine, own_engine: bool, work: Coroutine[Any, Any, list[str]]
) -> list[str]:
    try:
        return await work
    finally:
        if own_engine:
            await engine.close()
