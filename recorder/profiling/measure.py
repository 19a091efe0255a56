"""Measuring a real engine's decode step latency over a grid (`aimo profile measure`): one batch
per cell on one engine, with deadline-aware skipping; the rows a fit takes (`core.hardware.rows`).

Needs an `Engine` (lmdeploy on a GPU; tests pass the lmdeploy test double), so it lives with the
recorder, not in the core.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from aimo.core.hardware.rows import StepRow
from aimo.recorder.profiling.grid import Cell
from aimo.recorder.profiling.prompts import ContentOnly, LetterPrompts, PromptSource, prompt_source
from aimo.recorder.profiling.window import Window, window_rows

log = logging.getLogger(__name__)

CellKind = Literal["warmup", "cell"]


@dataclass(frozen=True)
class CellResult:
    """What one cell's batch gave: per-sample prompt tokens (as the engine counted them), the
    first chunk's time range (seconds since submission: the last one ~ time to prefill all),
    finish reasons, tokens, chunk count, the decode window and the raw chunk times."""

    cell: Cell
    kind: CellKind
    new_tokens: int
    wall_s: float
    prompt_tokens: tuple[int, ...]
    first_chunk_s: tuple[float, float] | None
    finish: tuple[str, ...]
    tokens: tuple[int, ...]
    chunks: int
    window: Window
    raw: Mapping[int, tuple[tuple[float, int], ...]] = field(default_factory=dict, repr=False)

    @property
    def prefill_tokens(self) -> int:
        """Prompt tokens of the batch in all."""
        return int(sum(self.prompt_tokens))

    def summary(self) -> dict[str, Any]:
        """JSON-able summary (no raw chunks) in the layout of the 14B script's summary files."""
        w = self.window
        out: dict[str, Any] = {
            "batch": self.cell.batch, "ctx": self.cell.prompt_tokens,
            "new_tokens": self.new_tokens, "wall_s": round(self.wall_s, 3),
            "prompt_tokens": sorted(set(self.prompt_tokens)),
            "prefill_tokens": self.prefill_tokens,
            "first_chunk_s": list(self.first_chunk_s) if self.first_chunk_s else None,
            "finish": list(self.finish), "tokens": list(self.tokens), "chunks": self.chunks,
            "rows": [r.__dict__ for r in w.rows], "window_steps": w.steps, "kind": self.kind,
        }
        if w.t0 is not None:
            out.update(t0=w.t0, t1=w.t1)
        if w.step_s_all is not None:
            out["step_s_all"] = w.step_s_all
        return out


async def run_cell(engine: Any, cell: Cell, new_tokens: int, seed: int, prompts: PromptSource,
                   kind: CellKind = "cell") -> CellResult:
    """Submit `cell.batch` random prompts of `cell.prompt_tokens` tokens as one question to an
    `Engine` (built with `generation_overrides={'ignore_eos': True}` and a `ContentOnly`
    tokenizer), read its stream to the end and return the cell's timings."""
    from aimo.solver.engines.base import PromptSpec, SamplingSettings

    rng = np.random.default_rng(seed)
    b = cell.batch
    specs = [PromptSpec(i, "cot", "", prompts.make(cell.prompt_tokens, rng)) for i in range(b)]
    t_sub = time.monotonic()
    stream = await engine.start_question(f"b{b}-c{cell.prompt_tokens}", "", specs,
                                         SamplingSettings(max_new_tokens=new_tokens, seed=seed))
    per: dict[int, list[tuple[float, int]]] = {i: [] for i in range(b)}
    finish: dict[int, str | None] = {}
    async for c in stream:
        per[c.sample].append((round(c.t, 6), c.n_tokens))
        if c.finish_reason is not None:
            finish[c.sample] = c.finish_reason
    wall = time.monotonic() - t_sub
    prompt_tokens = {i: int(stream.prompt_tokens(i) or cell.prompt_tokens) for i in range(b)}
    first = [per[i][0][0] for i in range(b) if per[i]]
    return CellResult(
        cell=cell, kind=kind, new_tokens=new_tokens, wall_s=wall,
        prompt_tokens=tuple(prompt_tokens[i] for i in range(b)),
        first_chunk_s=(round(min(first), 4), round(max(first), 4)) if first else None,
        finish=tuple(sorted(set(map(str, finish.values())))),
        tokens=tuple(per[i][-1][1] if per[i] else 0 for i in range(b)),
        chunks=sum(len(v) for v in per.values()),
        window=window_rows(per, prompt_tokens),
        raw={i: tuple(per[i]) for i in range(b)},
    )


EventStatus = Literal["ok", "skipped", "error"]


@dataclass(frozen=True)
class CellEvent:
    """One cell's outcome in `measure_grid`: measured (`result`), skipped (its estimated cost
    `est_s` did not fit the `left_s` seconds left) or failed (`error`; the grid stops there)."""

    kind: CellKind
    cell: Cell
    new_tokens: int
    status: EventStatus
    est_s: float
    left_s: float
    result: CellResult | None = None
    error: str = ""


def cell_cost_s(cell: Cell, new_tokens: int, prefill_s_per_token: float, step_s: float,
                ref_context: float = 131072.0) -> float:
    """Rough wall time of a cell: 2 s + prefill + (new_tokens + 8) steps, the step growing with
    the batch's prompt tokens relative to `ref_context`."""
    bc = cell.batch * cell.prompt_tokens
    return 2.0 + bc * prefill_s_per_token + (new_tokens + 8) * step_s * (1 + bc / ref_context)


async def measure_grid(engine: Any, cells: Sequence[Cell], *, new_tokens: int,
                       prompts: PromptSource, until: float = math.inf,
                       warmup: Sequence[Cell] = (Cell(4, 256),), warmup_tokens: int = 32, prefill_guess: float = 1.2e-4,
                       step_guess: float = 0.04,
                       on_event: Callable[[CellEvent], None] | None = None,
                       ) -> tuple[CellEvent, ...]:
    """Run the warm-up batches (`warmup_tokens` each, no rows), then every cell in order, on
    one engine (not closed here).

    A cell whose estimated cost (`cell_cost_s`, the rates re-estimated from the cells measured so
    far) does not fit before `until` (epoch seconds) is skipped; one that fails or overruns 4x
    its estimate stops the grid (the engine's state is then unknown). `on_event` sees each
    outcome as it happens (to save progress); the outcomes are also returned."""
    pf_rate, step_est = prefill_guess, step_guess
    todo: list[tuple[CellKind, Cell, int]] = [("warmup", c, warmup_tokens) for c in warmup]
    todo += [("cell", c, new_tokens) for c in cells]
    events: list[CellEvent] = []

    def emit(ev: CellEvent) -> None:
        events.append(ev)
        if on_event is not None:
            on_event(ev)

    for kind, cell, new in todo:
        est = cell_cost_s(cell, new, pf_rate, step_est)
        left = until - time.time()
        if est > left - 3:
            log.info("skip %s (est %.0f s, %.0f s left)", cell.label, est, left)
            emit(CellEvent(kind, cell, new, "skipped", est, left))
            continue
        try:
            r = await asyncio.wait_for(
                run_cell(engine, cell, new, seed=1000 * cell.batch + cell.prompt_tokens % 997,
                         prompts=prompts, kind=kind),
                timeout=max(20.0, min(4 * est, left - 2)))
        except Exception as exc:  # any failure (a timeout too): keep what was measured
            log.exception("cell %s failed", cell.label)
            emit(CellEvent(kind, cell, new, "error", est, left,
                           error=f"{type(exc).__name__}: {exc}"))
            break
        if r.first_chunk_s and r.prefill_tokens:
            pf_rate = max(pf_rate * 0.5, r.first_chunk_s[1] / r.prefill_tokens)
        if r.window.step_s_all:
            step_est = max(step_est * 0.5, r.window.step_s_all
                           / (1 + cell.batch * cell.prompt_tokens / 131072))
        emit(CellEvent(kind, cell, new, "ok", est, left, result=r))
    return tuple(events)


def default_warmups(cells: Sequence[Cell], prompt_tokens: int = 256) -> tuple[Cell, ...]:
    """One short batch per batch size of the grid, then one sequence of the grid's longest
    prompt: the engine compiles kernels / captures graphs on the first batch of a shape (seen
    on an H200: 1-4 s stalls and ~20% slower steps in the first cells after a single warm-up)."""
    out = [Cell(b, prompt_tokens) for b in sorted({c.batch for c in cells})]
    longest = max((c.prompt_tokens for c in cells), default=0)
    if longest > prompt_tokens:
        out.append(Cell(1, longest))
    return tuple(out)


def describe_event(ev: CellEvent) -> str:
    """One progress line for a cell's outcome."""
    head = f"{ev.kind} b={ev.cell.batch} prompt {ev.cell.prompt_tokens}"
    if ev.status == "skipped":
        return f"{head}: skipped (est {ev.est_s:.0f} s, {ev.left_s:.0f} s left)"
    if ev.status == "error" or ev.result is None:
        return f"{head}: FAILED {ev.error}"
    r = ev.result
    step = (f"{1e3 * r.window.step_s_all:.2f} ms" if r.window.step_s_all else "-")
    prefill = r.first_chunk_s[1] if r.first_chunk_s else 0.0
    counted = sorted(set(r.prompt_tokens))
    off = ("" if counted == [ev.cell.prompt_tokens]
           else f" (the engine counted {counted[0]}-{counted[-1]} prompt tokens)")
    return (f"{head}{off}: step {step} over {max(0.0, r.window.steps):.0f} steps, "
            f"{len(r.window.rows)} rows, first token after {prefill:.2f} s, wall {r.wall_s:.1f} s")


def step_rows(result: CellResult, quant_policy: int, gpu: str) -> list[StepRow]:
    """The CSV rows of a measured cell (one per sub-window)."""
    pt = min(result.prompt_tokens) if result.prompt_tokens else result.cell.prompt_tokens
    return [StepRow(quant_policy, result.cell.batch, row.context_total, row.step_s, pt, row.steps,
                    gpu) for row in result.window.rows]



def model_summary(model_dir: str | Path) -> tuple[str, str | None]:
    """(a one-line description of the checkpoint from its config.json, the lmdeploy
    `model_format`: 'awq' for an AutoAWQ checkpoint, else None)."""
    cfg_path = Path(model_dir) / "config.json"
    try:
        cfg = json.loads(cfg_path.read_text())
    except (OSError, ValueError):
        return "no readable config.json", None
    q = cfg.get("quantization_config") or {}
    method = str(q.get("quant_method", "")).lower()
    fmt = "awq" if method == "awq" else None
    weights = (f"{method.upper()} {q.get('bits', '?')}-bit weights" if method
               else f"{cfg.get('torch_dtype', '16-bit')} weights")
    shape = ", ".join(text.format(cfg[key]) for key, text in (
        ("num_hidden_layers", "{} layers"), ("hidden_size", "hidden {}"),
        ("vocab_size", "vocab {}")) if key in cfg)
    return f"{cfg.get('model_type', '?')} ({shape}), {weights}", fmt



@dataclass(frozen=True)
class MeasureSettings:
    """One `aimo profile measure` run: the model directory, engine settings (`tp` GPUs,
    `cache` = cache_max_entry_count), the cells, new tokens per sequence, the engine's
    `max_batch` (>= the largest cell) and the deadline `until` (epoch seconds)."""

    model: Path
    cells: tuple[Cell, ...]
    backend: str = "pytorch"
    quant_policy: int = 8
    new_tokens: int = 128
    max_batch: int = 32
    tp: int = 1
    cache: float = 0.9
    until: float = math.inf


@dataclass(frozen=True)
class MeasureContext:
    """What the profile's provenance says about the run: the GPU, engine and model, settings,
    the CSV the rows were saved to, and the cells that were skipped or failed."""

    gpu: str
    backend: str
    quant_policy: int
    model: str
    model_summary: str
    new_tokens: int
    lmdeploy_version: str | None = None
    torch_version: str | None = None
    startup_s: float | None = None
    csv_path: str | None = None
    prompts: str = ""
    skipped: tuple[str, ...] = ()
    failed: tuple[str, ...] = ()


@dataclass(frozen=True)
class MeasureRun:
    """What a measurement gave: every cell's outcome, the step rows of the measured cells, and
    the context a profile's provenance needs."""

    events: tuple[CellEvent, ...]
    rows: tuple[StepRow, ...]
    context: MeasureContext

    @property
    def results(self) -> tuple[CellResult, ...]:
        return tuple(e.result for e in self.events if e.result is not None)


def run_measurement(s: MeasureSettings, *, prompts: PromptSource | None = None,
                    echo: Callable[[str], None] = print, fake: bool = False) -> MeasureRun:
    """Start `LmdeployEngine` on `s.model` (ignore_eos, no prefix caching, the bare prompt as
    the chat template), run the grid (`measure_grid`), close the engine.

    `fake`: the `lmdeploy` module is the test double, installed by the caller (tests, the
    scripts' `--fake`): letter prompts, GPU labelled fake, no torch version. Product code never
    installs it. Build it under an `if __name__ == "__main__":` guard: lmdeploy starts worker
    processes."""
    from aimo.solver.engines.lmdeploy_engine import DEFAULT_SESSION_LEN, LmdeployEngine

    summary, fmt = model_summary(s.model)
    if prompts is None:
        prompts = LetterPrompts() if fake else prompt_source(s.model)
    longest = max(c.prompt_tokens for c in s.cells)
    engine = LmdeployEngine(
        str(s.model), s.backend,  # type: ignore[arg-type]
        tp=s.tp, quant_policy=s.quant_policy, model_format=fmt,
        max_batch=s.max_batch, cache_max_entry_count=s.cache,
        session_len=max(DEFAULT_SESSION_LEN, longest + s.new_tokens + 256),
        enable_prefix_caching=False, tokenizer=ContentOnly(),
        generation_overrides={"ignore_eos": True},
    )
    echo(f"engine up in {engine.startup_s:.1f} s: backend {engine.backend}"
         + (f" (asked for {s.backend}: lmdeploy fell back)" if engine.fell_back else ""))
    gpu = "fake (lmdeploy test double)" if fake else (engine.hardware or "unknown GPU")
    rows: list[StepRow] = []

    def on_event(ev: CellEvent) -> None:
        echo(describe_event(ev))
        if ev.result is not None and ev.kind == "cell":
            rows.extend(step_rows(ev.result, s.quant_policy, gpu))

    async def go() -> tuple[CellEvent, ...]:
        try:
            return await measure_grid(engine, s.cells, new_tokens=s.new_tokens,
                                      prompts=prompts, until=s.until,
                                      warmup=default_warmups(s.cells), on_event=on_event)
        finally:
            await engine.close()

    events = asyncio.run(go())
    torch_version = None
    if not fake:
        with contextlib.suppress(ImportError):
            import torch

            torch_version = str(torch.__version__)
    ctx = MeasureContext(
        gpu=gpu, backend=engine.backend, quant_policy=s.quant_policy,
        model=Path(s.model).name, model_summary=summary, new_tokens=s.new_tokens,
        lmdeploy_version=engine.run_config().get("lmdeploy_version"),
        torch_version=torch_version, startup_s=round(engine.startup_s, 1),
        prompts=prompts.description,
        skipped=tuple(e.cell.label for e in events if e.status == "skipped"),
        failed=tuple(f"{e.cell.label} ({e.error})" for e in events if e.status == "error"),
    )
    return MeasureRun(events, tuple(rows), ctx)
