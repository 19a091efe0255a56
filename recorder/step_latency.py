"""Measure a real engine's decode step latency L(b, C) and fit `a + beta*b + gamma*C` to it.

Why: a hardware profile (`core/hardware`) is only as good as its decode coefficients, and
those are best measured on the engine and GPU they describe. This module holds the model- and
GPU-independent part of that measurement (`aimo profile measure`, `scripts/device_profile_14b.py`):

1. a grid of cells (b sequences, prompt tokens per sequence) (`Cell`, `GRIDS`, `parse_cells`);
2. per cell, b random prompts of that many tokens (`LetterPrompts`, `TokenizerPrompts`), one
   batch with `ignore_eos`, each sequence decoding `new_tokens` (`run_cell`, `measure_grid`,
   cells whose estimated cost no longer fits a deadline are skipped);
3. the step time = time / tokens over the window in which all b sequences decode, from the
   chunk timestamps the engine adapter stamps, cut into sub-windows with the context `C` at each
   midpoint (`window_rows`) -> CSV rows (`StepRow`);
4. least squares on relative error of `a + beta*b + gamma*C` and alternatives (`lsq`,
   `fit_models`, `fit_step_model`), the time to first token per prompt token (`measured_prefill`);
5. a profile with provenance and fit error (`calibration_points`, `measured_profile`).

numpy only at import; the engine (lmdeploy), the simulator's profile classes and tokenizers are
imported where they are used.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import datetime as _dt
import itertools
import json
import logging
import math
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

import numpy as np

if TYPE_CHECKING:
    from core.hardware.profile import CalibrationPoint, HardwareProfile

log = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parents[1]
LINEAR = "a+beta*b+gamma*C"
CSV_COLUMNS = ("quant_policy", "batch", "context_total", "step_s", "prompt_tokens", "steps", "gpu")
DEFAULT_BASE = "l4x4-14b-w4kv8"
PREFILL_MIN_TOKENS = 16384


# ------------------------------------------------------------------------------------------ grid


@dataclass(frozen=True, order=True)
class Cell:
    """One grid cell: `batch` sequences of `prompt_tokens` prompt tokens each."""

    batch: int
    prompt_tokens: int

    def __post_init__(self) -> None:
        if self.batch < 1 or self.prompt_tokens < 1:
            raise ValueError(f"a cell needs batch >= 1 and prompt tokens >= 1, got {self.label}")

    @property
    def label(self) -> str:
        """`BxP`, as `parse_cells` reads it."""
        return f"{self.batch}x{self.prompt_tokens}"


def _cells(pairs: Sequence[tuple[int, int]]) -> tuple[Cell, ...]:
    return tuple(Cell(b, p) for b, p in pairs)


# In order of priority. b*prompt is kept a multiple of 8192 (lmdeploy's max_prefill_token_num) or
# b < 16, so the scheduler finishes every prefill of a cell before it decodes.
GRIDS: dict[str, tuple[Cell, ...]] = {
    # 8 cells: beta at small C, gamma at b=1, C = 32k at two batch sizes, one large C; two cells
    # of >= 16k prompt tokens in all give the prefill rate
    "quick": _cells([(1, 512), (8, 512), (32, 512), (1, 8192), (1, 16384), (8, 4096),
                     (32, 1024), (32, 4096)]),
    # the 18 cells of the shipped h200-14b-w4kv8 profile (int8 KV)
    "full": _cells([
        (1, 512), (4, 512), (8, 512), (16, 512), (32, 512),          # beta at small C
        (1, 4096), (1, 8192), (1, 16384),                            # gamma at b=1
        (4, 16384), (8, 8192), (16, 4096), (32, 2048),               # C = 64k at four batch sizes
        (4, 4096), (8, 2048), (16, 1024),                            # C = 16k at three more
        (32, 4096), (16, 8192), (32, 8192),                          # large C
    ]),
    # the 16-bit KV comparison of the 14B profile (scripts/device_profile_14b.py)
    "kv0": _cells([(1, 512), (8, 512), (32, 512), (1, 16384), (8, 8192), (4, 16384), (32, 2048),
                   (32, 4096)]),
}


def parse_cells(text: str) -> tuple[Cell, ...]:
    """Cells from `"1x512,8x4096"` (batch x prompt tokens, comma-separated).

    Raises:
        ValueError: an entry is not `BxP` with positive integers, or the list is empty.
    """
    cells = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        b, sep, p = part.lower().partition("x")
        if not sep or not b.strip().isdigit() or not p.strip().isdigit():
            raise ValueError(f"cell {part!r}: expected BATCHxPROMPT_TOKENS, e.g. 8x512")
        try:
            cells.append(Cell(int(b), int(p)))
        except ValueError as exc:
            raise ValueError(f"cell {part!r}: {exc}") from None
    if not cells:
        raise ValueError(f"no cells in {text!r}: expected e.g. 1x512,8x512")
    return tuple(cells)


def grid_cells(name: str) -> tuple[Cell, ...]:
    """A named grid (`GRIDS`); ValueError naming the known ones otherwise."""
    if name not in GRIDS:
        raise ValueError(f"unknown grid {name!r}; known: {', '.join(GRIDS)}")
    return GRIDS[name]


# --------------------------------------------------------------------------------------- prompts


class PromptSource(Protocol):
    """Makes a random prompt text of (about) `n_tokens` tokens for the engine's tokenizer."""

    def make(self, n_tokens: int, rng: np.random.Generator) -> str: ...

    @property
    def description(self) -> str: ...


@dataclass(frozen=True)
class LetterPrompts:
    """ASCII letters with a space every ~6 characters: one token a character for a byte-level
    tokenizer without merges (the 14B script's) and for the lmdeploy test double."""

    description: str = "random ASCII letters and spaces (one token a character)"

    def make(self, n_tokens: int, rng: np.random.Generator) -> str:
        letters = np.frombuffer(b"abcdefghijklmnopqrstuvwxyz", dtype=np.uint8)
        chars = rng.choice(letters, size=n_tokens)
        chars[rng.random(n_tokens) < 0.16] = ord(" ")
        chars[0] = letters[rng.integers(26)]
        return chars.tobytes().decode("ascii")


@dataclass(frozen=True)
class TextTokenizer:
    """The two calls prompt making needs: `encode` (no special tokens added) and `decode`, plus
    the vocabulary size and the ids of special/added tokens (never drawn)."""

    encode: Callable[[str], list[int]]
    decode: Callable[[list[int]], str]
    vocab_size: int
    special_ids: frozenset[int] = frozenset()


@dataclass(frozen=True)
class TokenizerPrompts:
    """Random token ids from the model's vocabulary, decoded to text and trimmed/extended until
    the text encodes to exactly `n_tokens` tokens (or as close as 8 rounds get).

    Only ids whose text alone is printable ASCII and holds no `<|`/`|>` are drawn, so the text
    never splits a multi-byte character and never spells a special token."""

    tokenizer: TextTokenizer
    pieces: tuple[str, ...]
    description: str = "random token ids of the model's vocabulary"

    @classmethod
    def from_tokenizer(cls, tok: TextTokenizer, name: str = "") -> TokenizerPrompts:
        """Collect the usable single-token pieces of `tok` (ValueError when none is usable)."""
        pieces = []
        for i in range(tok.vocab_size):
            if i in tok.special_ids:
                continue
            try:
                s = tok.decode([i])
            except Exception:  # noqa: BLE001 - ids with no text (holes in the vocabulary)
                continue
            if s and s.isascii() and s.isprintable() and "<|" not in s and "|>" not in s:
                pieces.append(s)
        if not pieces:
            raise ValueError(f"tokenizer {name or ''}: no printable ASCII token to draw prompts "
                             "from")
        desc = (f"random token ids of the model's vocabulary ({len(pieces)} of "
                f"{tok.vocab_size} ids with printable ASCII text), re-encoded to the exact length")
        return cls(tok, tuple(pieces), desc)

    def make(self, n_tokens: int, rng: np.random.Generator) -> str:
        def draw(k: int) -> str:
            return "".join(self.pieces[i] for i in rng.integers(len(self.pieces), size=k))

        text = draw(n_tokens)
        for _ in range(8):
            ids = self.tokenizer.encode(text)
            if len(ids) == n_tokens:
                break
            if len(ids) > n_tokens:
                text = self.tokenizer.decode(ids[:n_tokens])
            else:
                text += draw(n_tokens - len(ids))
        return text


def load_tokenizer(model_dir: str | Path) -> TextTokenizer | None:
    """The model's tokenizer as lmdeploy loads it (`transformers.AutoTokenizer`), else
    `tokenizer.json` through `tokenizers`; None when the directory has no tokenizer files or
    neither library loads it.

    transformers comes first: prompt lengths must be counted as the engine counts them, and
    transformers 5.x can tokenize a `tokenizer.json` differently from `tokenizers` itself (seen
    on the GPU image: the tiny model's BPE merges ignored, prompts ~1.9x longer)."""
    model_dir = Path(model_dir)
    names = ("tokenizer_config.json", "tokenizer.model", "vocab.json", "tokenizer.json")
    if not any((model_dir / n).is_file() for n in names):
        log.warning("no tokenizer files in %s", model_dir)
        return None
    try:
        from transformers import AutoTokenizer

        hf = AutoTokenizer.from_pretrained(str(model_dir), trust_remote_code=True)
        return TextTokenizer(
            encode=lambda s: list(hf.encode(s, add_special_tokens=False)),
            decode=lambda ids: str(hf.decode(list(ids))),
            vocab_size=int(len(hf)),
            special_ids=frozenset(int(i) for i in (*getattr(hf, "all_special_ids", ()),
                                                   *getattr(hf, "added_tokens_decoder", {}))),
        )
    except Exception as exc:  # noqa: BLE001 - no transformers, or it cannot read the files
        log.warning("transformers could not load the tokenizer of %s: %s", model_dir, exc)
    tj = model_dir / "tokenizer.json"
    if not tj.is_file():
        return None
    try:
        from tokenizers import Tokenizer

        tok = Tokenizer.from_file(str(tj))
    except Exception as exc:  # noqa: BLE001 - no tokenizers, or an unreadable file
        log.warning("tokenizers could not read %s: %s", tj, exc)
        return None
    added = getattr(tok, "get_added_tokens_decoder", lambda: {})()
    return TextTokenizer(
        encode=lambda s: list(tok.encode(s, add_special_tokens=False).ids),
        decode=lambda ids: str(tok.decode(list(ids), skip_special_tokens=False)),
        vocab_size=int(tok.get_vocab_size(with_added_tokens=True)),
        special_ids=frozenset(int(i) for i in added),
    )


def prompt_source(model_dir: str | Path) -> PromptSource:
    """`TokenizerPrompts` from the model's tokenizer, else `LetterPrompts` (with a warning)."""
    tok = load_tokenizer(model_dir)
    if tok is None:
        log.warning("%s: no tokenizer could be loaded; prompts are random letters (their token "
                    "counts are taken from the engine)", model_dir)
        return LetterPrompts()
    return TokenizerPrompts.from_tokenizer(tok, str(model_dir))


class ContentOnly:
    """Stands in for the chat template: the prompt is the user text itself (exact token count)."""

    chat_template = "{{ messages[-1]['content'] }}"

    def apply_chat_template(self, messages: list[dict], tokenize: bool = False,
                            add_generation_prompt: bool = False) -> str:
        return str(messages[-1]["content"])


# ---------------------------------------------------------------------------------------- window


@dataclass(frozen=True)
class WindowRow:
    """One sub-window: `step_s` seconds per decode step over `steps` steps (mean over the
    sequences) while the batch held `context_total` tokens in all (at the midpoint)."""

    step_s: float
    context_total: float
    steps: float
    t_lo: float
    t_hi: float


@dataclass(frozen=True)
class Window:
    """The stretch in which every sequence of a cell decodes, and its sub-window rows.

    `steps`: decode steps in it (mean over sequences); `t0`/`t1`: its ends (None when the chunks
    give none); `step_s_all`: seconds per step over the whole window (None when too short)."""

    rows: tuple[WindowRow, ...] = ()
    steps: float = 0.0
    t0: float | None = None
    t1: float | None = None
    step_s_all: float | None = None


def window_rows(per: Mapping[int, Sequence[tuple[float, int]]], prompts: Mapping[int, int],
                min_steps: int = 24, max_rows: int = 4, skip_steps: int = 2) -> Window:
    """Step times over the stretch where every sequence decodes.

    `per[s]` = [(t, cumulative tokens)] of sample s (chunk times, increasing). The window starts
    `skip_steps` tokens after the last sample's first chunk and ends at the first sample's last
    chunk; it is cut into at most `max_rows` sub-windows of >= `min_steps` steps (none when the
    window holds fewer than `min_steps / 2`). Each row: step_s = dt / mean tokens over the
    samples, context_total = sum over samples of prompt + tokens at the sub-window's middle
    (tokens interpolated linearly between chunks)."""
    samples = sorted(per)
    if not samples or not all(per[s] for s in samples):
        return Window()
    ts = {s: np.array([c[0] for c in per[s]], dtype=float) for s in samples}
    ns = {s: np.array([c[1] for c in per[s]], dtype=float) for s in samples}
    last_start = max(samples, key=lambda s: ts[s][0])
    n_first = ns[last_start][0]
    k = int(np.searchsorted(ns[last_start], n_first + skip_steps))
    if k >= len(ts[last_start]):
        return Window()
    t0 = float(ts[last_start][k])
    t1 = float(min(ts[s][-1] for s in samples))

    def n_at(s: int, t: float) -> float:
        return float(np.interp(t, ts[s], ns[s]))

    steps = float(np.mean([n_at(s, t1) - n_at(s, t0) for s in samples]))
    if t1 <= t0 or steps < min_steps / 2:
        return Window(steps=steps, t0=t0, t1=t1)
    n_rows = max(1, min(max_rows, int(steps // min_steps)))
    edges = np.linspace(t0, t1, n_rows + 1)
    rows = []
    for lo, hi in itertools.pairwise(edges):
        dn = float(np.mean([n_at(s, hi) - n_at(s, lo) for s in samples]))
        mid = 0.5 * (lo + hi)
        ctx = sum(prompts[s] + n_at(s, mid) for s in samples)
        rows.append(WindowRow(step_s=float(hi - lo) / dn, context_total=float(ctx), steps=dn,
                              t_lo=float(lo), t_hi=float(hi)))
    return Window(rows=tuple(rows), steps=steps, t0=t0, t1=t1, step_s_all=(t1 - t0) / steps)


# --------------------------------------------------------------------------------------- measure

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
    from solver.engines.base import PromptSpec, SamplingSettings

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


# ------------------------------------------------------------------------------------------ rows


@dataclass(frozen=True)
class StepRow:
    """One CSV row: a sub-window's seconds per step `step_s` with `batch` sequences holding
    `context_total` tokens, in a cell of `prompt_tokens` per sequence, over `steps` steps."""

    quant_policy: int
    batch: int
    context_total: float
    step_s: float
    prompt_tokens: int
    steps: float
    gpu: str


def step_rows(result: CellResult, quant_policy: int, gpu: str) -> list[StepRow]:
    """The CSV rows of a measured cell (one per sub-window)."""
    pt = min(result.prompt_tokens) if result.prompt_tokens else result.cell.prompt_tokens
    return [StepRow(quant_policy, result.cell.batch, row.context_total, row.step_s, pt, row.steps,
                    gpu) for row in result.window.rows]


def csv_line(row: StepRow) -> list[Any]:
    """A row as written to CSV (`CSV_COLUMNS`; context rounded, step in s to 6 decimals)."""
    return [row.quant_policy, row.batch, round(row.context_total), f"{row.step_s:.6f}",
            row.prompt_tokens, round(row.steps, 1), row.gpu]


def write_rows_csv(path: str | Path, rows: Sequence[StepRow], *, append: bool = False) -> Path:
    """Write (or append to) a step CSV with header `CSV_COLUMNS`."""
    path = Path(path)
    new = not (append and path.exists() and path.stat().st_size > 0)
    with path.open("a" if append else "w", newline="") as fh:
        w = csv.writer(fh)
        if new:
            w.writerow(CSV_COLUMNS)
        w.writerows(csv_line(r) for r in rows)
    return path


def read_rows_csv(path: str | Path, quant_policy: int | None = None) -> list[StepRow]:
    """Rows of a step CSV (those of `quant_policy` only, when given)."""
    out = []
    with Path(path).open(newline="") as fh:
        for r in csv.DictReader(fh):
            row = StepRow(int(r["quant_policy"]), int(r["batch"]), float(r["context_total"]),
                          float(r["step_s"]), int(r["prompt_tokens"]), float(r["steps"]),
                          r.get("gpu", "") or "")
            if quant_policy is None or row.quant_policy == quant_policy:
                out.append(row)
    return out


def rows_arrays(rows: Sequence[StepRow]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(step_s, batch, context_total) arrays of the rows."""
    y = np.array([r.step_s for r in rows], dtype=float)
    b = np.array([r.batch for r in rows], dtype=float)
    c = np.array([r.context_total for r in rows], dtype=float)
    return y, b, c


# ------------------------------------------------------------------------------------------- fit


@dataclass(frozen=True)
class RelError:
    """|predicted / observed - 1| over the rows: median, 90th percentile, maximum."""

    median: float
    p90: float
    max: float

    def render(self) -> str:
        return f"median {self.median:.1%}, p90 {self.p90:.1%}, max {self.max:.1%}"


@dataclass(frozen=True)
class ModelFit:
    """A fitted model: its coefficients by name and its relative error."""

    coef: Mapping[str, float]
    rel_error: RelError

    def to_dict(self) -> dict[str, Any]:
        return {"coef": dict(self.coef), "rel_error": self.rel_error.__dict__}


def lsq(y: np.ndarray, cols: Mapping[str, np.ndarray],
        rel: bool = True) -> tuple[dict[str, float], np.ndarray]:
    """Least squares of y on the columns (relative errors when `rel`: rows weighted by 1/y);
    returns the coefficients by column name and the prediction."""
    X = np.column_stack(list(cols.values()))
    wt = 1.0 / y if rel else np.ones_like(y)
    sol, *_ = np.linalg.lstsq(X * wt[:, None], y * wt, rcond=None)
    return dict(zip(cols, map(float, sol))), X @ sol


def rel_errors(y: np.ndarray, pred: np.ndarray) -> RelError:
    """`RelError` of a prediction."""
    e = np.abs(pred / y - 1)
    return RelError(float(np.median(e)), float(np.quantile(e, 0.9)), float(e.max()))


def fit_models(y: np.ndarray, b: np.ndarray, c: np.ndarray) -> dict[str, ModelFit]:
    """The profile's linear model (`LINEAR`) and alternatives, relative least squares each:
    a b*C term, a C/b term, a b^2 term, a hinge at b=16, a per-batch-size a_b (with one gamma,
    and with a gamma_b per batch size). Columns a batch-size set cannot identify are left out."""
    one = np.ones_like(y)
    ub = np.unique(b)
    models: dict[str, dict[str, np.ndarray]] = {
        LINEAR: {"a": one, "beta": b, "gamma": c},
        "+delta*b*C": {"a": one, "beta": b, "gamma": c, "delta": b * c},
        "+eta*C/b": {"a": one, "beta": b, "gamma": c, "eta": c / b},
        "+beta2*b^2": {"a": one, "beta": b, "gamma": c, "beta2": b * b},
        "a+beta16*max(0,b-16)+gamma*C": {"a": one, "beta16": np.maximum(0, b - 16), "gamma": c},
        "a_b per batch size+gamma*C": {**{f"a_b{int(k)}": (b == k) * 1.0 for k in ub},
                                       "gamma": c},
        "a_b+gamma_b*C per batch size": {
            **{f"a_b{int(k)}": (b == k) * 1.0 for k in ub},
            **{f"gamma_b{int(k)}": (b == k) * c for k in ub}},
    }
    out = {}
    for name, cols in models.items():
        coef, pred = lsq(y, cols)
        out[name] = ModelFit(coef, rel_errors(y, pred))
    return out


@dataclass(frozen=True)
class StepFit:
    """The profile's decode coefficients (rounded to 4 significant digits, a > 0, beta and
    gamma >= 0), their relative error over the rows, the coefficients pinned to 0 because the
    free fit made them negative, and the alternative models."""

    a: float
    beta: float
    gamma: float
    rel_error: RelError
    n_rows: int
    zeroed: tuple[str, ...] = ()
    alternatives: Mapping[str, ModelFit] = field(default_factory=dict, repr=False)

    def step_s(self, b: float, c: float) -> float:
        return self.a + self.beta * b + self.gamma * c

    def render(self) -> str:
        """Coefficients and fit error, as `aimo profile measure` prints them."""
        lines = [
            f"fit {LINEAR} over {self.n_rows} rows: a={self.a:.4g} s, beta={self.beta:.4g} "
            f"s/seq, gamma={self.gamma:.4g} s/token",
            f"fit error (relative): {self.rel_error.render()}",
        ]
        if self.zeroed:
            lines.append(f"  {', '.join(self.zeroed)} came out negative: pinned to 0, refitted")
        return "\n".join(lines)


def _sig4(x: float) -> float:
    return float(f"{x:.4g}")


def fit_step_model(rows: Sequence[StepRow]) -> StepFit:
    """Fit `a + beta*b + gamma*C` on relative error to step rows.

    A coefficient of beta/gamma that comes out negative (noise on a flat direction) is pinned to
    0 and the rest refitted. Raises ValueError with fewer than 3 rows or a non-positive `a`."""
    if len(rows) < 3:
        raise ValueError(f"need at least 3 step rows to fit a + beta*b + gamma*C, got {len(rows)}")
    y, b, c = rows_arrays(rows)
    if np.any(y <= 0):
        raise ValueError("step rows need step_s > 0")
    cols = {"a": np.ones_like(y), "beta": b, "gamma": c}
    zeroed: list[str] = []
    while True:
        coef, _ = lsq(y, cols)
        neg = [k for k in ("beta", "gamma") if k in coef and coef[k] < 0]
        if not neg:
            break
        worst = min(neg, key=lambda k: coef[k] * float(np.mean(cols[k])))
        zeroed.append(worst)
        del cols[worst]
    a, beta, gamma = (_sig4(coef.get(k, 0.0)) for k in ("a", "beta", "gamma"))
    if a <= 0:
        raise ValueError(f"the fit gave a non-positive base step a={a:.4g} s ({coef})")
    pred = a + beta * b + gamma * c
    return StepFit(a, beta, gamma, rel_errors(y, pred), len(rows), tuple(zeroed),
                   fit_models(y, b, c))


@dataclass(frozen=True)
class PrefillEstimate:
    """Seconds of prefill per prompt token: median over `cells` cells of >= `min_tokens` prompt
    tokens in all of (time to the batch's last first token) / (prompt tokens in all)."""

    s_per_token: float
    cells: int
    min_tokens: int


def measured_prefill(results: Sequence[CellResult],
                     min_tokens: int = PREFILL_MIN_TOKENS) -> PrefillEstimate | None:
    """The prefill rate from the measured cells (warm-up excluded); None when no cell holds
    `min_tokens` prompt tokens in all (shorter prompts measure overheads, not prefill)."""
    rates = [r.first_chunk_s[1] / r.prefill_tokens for r in results
             if r.kind == "cell" and r.first_chunk_s and r.prefill_tokens >= min_tokens]
    if not rates:
        return None
    return PrefillEstimate(_sig4(float(np.median(rates))), len(rates), min_tokens)


# --------------------------------------------------------------------------------------- profile


def calibration_points(rows: Sequence[StepRow]) -> tuple[CalibrationPoint, ...]:
    """One `rate` calibration point per cell (batch, prompt tokens): tokens per second per
    sequence = 1 / mean step over its rows, at the mean generated tokens of its rows."""
    from core.hardware.profile import CalibrationPoint

    cells: dict[tuple[int, int], list[StepRow]] = {}
    for r in rows:
        cells.setdefault((r.batch, r.prompt_tokens), []).append(r)
    points = []
    for (bb, pt), rs in cells.items():
        step = float(np.mean([r.step_s for r in rs]))
        ctx = float(np.mean([r.context_total for r in rs]))
        points.append(CalibrationPoint(
            label=f"b={bb}, prompt {pt}: step {step * 1e3:.2f} ms (measured)", kind="rate",
            batch=bb, prompt_tokens=pt, n_tokens=max(1, round(ctx / bb - pt)),
            observed=round(1.0 / step, 3), weight=1.0))
    return tuple(points)


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


def _kv_label(qp: int) -> str:
    return {0: "16-bit", 4: "int4", 8: "int8"}.get(qp, f"quant_policy {qp}")


def measured_conditions(ctx: MeasureContext) -> dict[str, Any]:
    """The provenance's conditions of a measurement: engine, version, GPU, quantisation and the
    sampling settings every cell ran with (the policy defaults, `SamplingSettings()`)."""
    from solver.engines.base import SamplingSettings

    s = SamplingSettings()
    weights = "awq-w4" if "AWQ" in ctx.model_summary else "fp16"
    return {"engine": f"lmdeploy {ctx.backend}", "engine_version": ctx.lmdeploy_version or "",
            "gpu": ctx.gpu, "quantization": f"{weights}/kv{ {0: 16, 4: 4, 8: 8}.get(ctx.quant_policy, ctx.quant_policy)}",
            "sampling": (("temperature", s.temperature), ("top_p", s.top_p), ("min_p", s.min_p),
                         ("repetition_penalty", s.repetition_penalty))}


def measured_profile(fit: StepFit, rows: Sequence[StepRow], results: Sequence[CellResult], *,
                     name: str, base: HardwareProfile, ctx: MeasureContext,
                     date: str | None = None) -> HardwareProfile:
    """A profile whose decode coefficients are `fit`, with the calibration points of `rows`.

    Prefill per token: measured (`measured_prefill`) when a cell holds >= 16k prompt tokens in
    all, else `base`'s; start-up, max_batch, code_overlap and question overhead: `base`'s. The
    provenance says which, and carries the fit error and the alternatives."""
    from dataclasses import replace

    from core.hardware.profile import Provenance

    batches = sorted({r.batch for r in rows})
    prompts = sorted({r.prompt_tokens for r in rows})
    contexts = [r.context_total for r in rows]
    n_cells = len({(r.batch, r.prompt_tokens) for r in rows})
    pre = measured_prefill(results)
    alt = fit.alternatives
    notes = (f"Fit error of {LINEAR} over {fit.n_rows} sub-window rows ({n_cells} cells): "
             f"relative {fit.rel_error.render()}.")
    if fit.zeroed:
        notes += (f" {', '.join(fit.zeroed)} came out negative in the free fit and was pinned "
                  "to 0.")
    for key in ("+delta*b*C", "+beta2*b^2", "a_b per batch size+gamma*C"):
        if key in alt:
            notes += f" Alternative {key}: {alt[key].rel_error.render()}."
    if pre is not None:
        prefill = pre.s_per_token
        notes += (f" prefill_s_per_token = {prefill:g}: measured, median over {pre.cells} cell(s) "
                  f"of >= {pre.min_tokens} prompt tokens in all of the time to the batch's last "
                  "first token over its prompt tokens (includes one decode step and queueing).")
    else:
        prefill = base.prefill_s_per_token
        notes += (f" prefill_s_per_token = {prefill:g} from base profile {base.name}: no cell "
                  f"held >= {PREFILL_MIN_TOKENS} prompt tokens in all.")
    notes += (f" startup_s, max_batch, code_overlap and question_overhead_s from base profile "
              f"{base.name}")
    if ctx.startup_s is not None:
        notes += (f" (this engine's start-up here: {ctx.startup_s:.1f} s of pipeline build and "
                  "warm-up, not used: it depends on where the weights are read from)")
    notes += "."
    if ctx.skipped:
        notes += f" Skipped for the deadline: {', '.join(ctx.skipped)}."
    if ctx.failed:
        notes += f" Failed (grid stopped): {', '.join(ctx.failed)}."
    versions = ", ".join(v for v in (
        f"lmdeploy {ctx.lmdeploy_version}" if ctx.lmdeploy_version else "",
        f"torch {ctx.torch_version}" if ctx.torch_version else "") if v)
    source = (f"measured on {ctx.gpu} with `aimo profile measure` (lmdeploy {ctx.backend} engine"
              f"{', ' + versions if versions else ''}): model {ctx.model} ({ctx.model_summary}), "
              f"quant_policy {ctx.quant_policy}"
              + (f"; rows in {ctx.csv_path}" if ctx.csv_path else ""))
    method = (f"per cell (b sequences of equal-length random prompts: {ctx.prompts or 'random'}; "
              f"ignore_eos, {ctx.new_tokens} new tokens): step = time / tokens over the window in "
              "which all b sequences decode, from the LmdeployEngine adapter's chunk timestamps, "
              f"in up to 4 sub-windows (C at each midpoint); {n_cells} cells, b in "
              f"{{{', '.join(map(str, batches))}}}, prompts {prompts[0]}-{prompts[-1]} tokens, "
              f"C {min(contexts) / 1e3:.1f}k-{max(contexts) / 1e3:.1f}k; least squares on "
              f"relative error (numpy) of {LINEAR}, coefficients rounded to 4 digits")
    return replace(
        base, name=name,
        description=(f"{ctx.gpu}, {ctx.model_summary}, lmdeploy {ctx.backend} engine, "
                     f"{_kv_label(ctx.quant_policy)} KV cache (measured)"),
        a=fit.a, beta=fit.beta, gamma=fit.gamma, prefill_s_per_token=prefill,
        provenance=Provenance(source=source, date=date or _dt.date.today().isoformat(),
                              method=method, notes=notes, **measured_conditions(ctx)),
        calibration=calibration_points(rows),
    )


# ----------------------------------------------------------------------------------------- model


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


@contextlib.contextmanager
def installed_fake_lmdeploy(step_s: float = 0.002) -> Iterator[Any]:
    """Install the lmdeploy test double (tests/helpers/fake_lmdeploy.py: a fixed `step_s` per
    decode step, prompts counted one token a character) as `lmdeploy` for the block; the
    previous module (or none) is put back after."""
    helpers = REPO / "tests" / "helpers"
    if not (helpers / "fake_lmdeploy.py").is_file():
        raise FileNotFoundError(f"the lmdeploy test double is not here: {helpers}/fake_lmdeploy.py "
                                "(run from the repository)")
    added = str(helpers) not in sys.path
    if added:
        sys.path.insert(0, str(helpers))
    try:
        from fake_lmdeploy import make_fake_lmdeploy  # type: ignore[import-not-found]
    finally:
        if added:
            sys.path.remove(str(helpers))
    missing = object()
    previous = sys.modules.get("lmdeploy", missing)
    module = make_fake_lmdeploy(turbomind_available=False, step_s=step_s)
    sys.modules["lmdeploy"] = module
    try:
        yield module
    finally:
        if previous is missing:
            sys.modules.pop("lmdeploy", None)
        else:
            sys.modules["lmdeploy"] = previous  # type: ignore[assignment]


# ------------------------------------------------------------------------------------------- run


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

    `fake`: the lmdeploy test double instead of lmdeploy (CPU; `installed_fake_lmdeploy`).
    Build it under an `if __name__ == "__main__":` guard: lmdeploy starts worker processes."""
    from solver.engines.lmdeploy_engine import DEFAULT_SESSION_LEN, LmdeployEngine

    summary, fmt = model_summary(s.model)
    if prompts is None:
        prompts = LetterPrompts() if fake else prompt_source(s.model)
    longest = max(c.prompt_tokens for c in s.cells)
    stack = contextlib.ExitStack()
    with stack:
        if fake:
            stack.enter_context(installed_fake_lmdeploy())
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
