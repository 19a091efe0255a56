"""Benchmark of the recorder's own cost (`aimo record`), on CPU with a fake engine.

Two figures, as the issue asks:
1. per-chunk cost: an unpaced engine yields chunks as fast as it can; the recorder's handler time
   (storage in RunRecorder, incremental extraction, code submission) divided by the chunks;
2. share of wall time spent outside the engine: an engine paced at a realistic rate (default: the
   seed's 15 samples at ~30 tok/s each on 4xL4, one token a chunk) for questions of a few seconds;
   the recorder's handler time plus the time between questions (commit, waiting on code runs,
   starting the next batch) over the wall time. The goal is < 1%.

Run: `python bench/bench_recorder.py [--quick] [--json]`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from aimo.recorder.record import run_record
from aimo.solver.engines.base import Chunk, PromptSpec, SamplingSettings


def sample_tokens(rng: np.random.Generator, kind: str, n: int) -> list[str]:
    """Token texts of one sample: word pieces, a box every ~700 tokens, one python block (code)."""
    words = [
        " the",
        " answer",
        " is",
        ",",
        ".",
        "\n",
        " x",
        " =",
        " $",
        "2",
        "3",
        " of",
        " mod",
        " 1000",
    ]
    toks = [words[i] for i in rng.integers(0, len(words), n)]
    for pos in range(int(rng.integers(300, 700)), n - 10, 700):
        toks[pos : pos + 3] = ["\\boxed{", str(int(rng.integers(0, 1000))), "}"]
    if kind == "code" and n > 200:
        block = ["```python", "\nprint(", str(int(rng.integers(0, 999))), ")\n", "```"]
        toks[100 : 100 + len(block)] = block
    return toks[:n]


class FakeStream:
    """Round-robin one-token chunks over the samples; `rate` chunks/s in all (0: unpaced)."""

    def __init__(self, toks: Sequence[list[str]], rate: float) -> None:
        self.toks = toks
        self.rate = rate
        self.t0 = time.monotonic()

    def now(self) -> float:
        return time.monotonic() - self.t0

    def prompt_tokens(self, sample: int) -> int:
        return 120

    async def cancel(self, sample: int) -> None:
        return None

    async def cancel_all(self) -> None:
        return None

    def __aiter__(self) -> AsyncIterator[Chunk]:
        return self._run()

    async def _run(self) -> AsyncIterator[Chunk]:
        n = max(len(t) for t in self.toks)
        per_round = len(self.toks) / self.rate if self.rate else 0.0
        for i in range(n):
            if per_round:
                due = self.t0 + (i + 1) * per_round
                delay = due - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
            t = self.now()
            for s, toks in enumerate(self.toks):
                if i < len(toks):
                    yield Chunk(s, toks[i], i + 1, t, "length" if i + 1 == len(toks) else None)


class FakeEngine:
    """Pre-generated samples (so generation costs nothing during the run)."""

    name = "bench"
    backend = "bench"
    quantization = None

    def __init__(self, tokens: int, rate: float, seed: int = 0) -> None:
        self.tokens = tokens
        self.rate = rate
        self.rng = np.random.default_rng(seed)

    async def start_question(
        self,
        question_id: str,
        question: str,
        prompts: Sequence[PromptSpec],
        sampling: SamplingSettings,
    ) -> FakeStream:
        toks = [sample_tokens(self.rng, p.kind, self.tokens) for p in prompts]
        return FakeStream(toks, self.rate)

    async def close(self) -> None:
        return None


def raw_stream_s(tokens: int, samples: int) -> tuple[float, int]:
    """Time to iterate an unpaced fake stream with no recorder (the fake engine's own cost)."""
    eng = FakeEngine(tokens, 0.0)
    specs = [PromptSpec(i, ("cot", "code")[i % 2], "", "") for i in range(samples)]

    async def main() -> tuple[float, int]:
        stream = await eng.start_question("q", "", specs, SamplingSettings())
        t0 = time.perf_counter()
        n = 0
        async for _ in stream:
            n += 1
        return time.perf_counter() - t0, n

    return asyncio.run(main())


def run(
    problems: int, samples: int, tokens: int, rate: float, workdir: Path, tag: str
) -> dict[str, Any]:
    csv = workdir / f"{tag}.csv"
    csv.write_text(
        "id,question,answer\n"
        + "".join(f"q{i},What is {i}+{i}?,{2 * i}\n" for i in range(problems))
    )
    out = workdir / f"{tag}.duckdb"
    summary = run_record(
        csv,
        "/bench/model",
        "bench",
        samples,
        out,
        prompts=f"cot:{samples},code:{samples}",
        max_new_tokens=tokens,
        engine=FakeEngine(tokens, rate),
        show_progress=False,
    )
    s = summary.stats
    return {
        "problems": problems,
        "samples": samples,
        "tokens_per_sample": tokens,
        "rate_chunks_s": rate,
        "chunks": s.chunks,
        "answers": s.answers,
        "code_runs": s.code_runs,
        "wall_s": round(s.wall_s, 3),
        "handler_s": round(s.handler_s, 4),
        "per_chunk_us": round(s.per_chunk_us, 2),
        "commit_s_per_question": round(s.commit_s / max(s.questions, 1), 4),
        "commit_us_per_chunk": round(1e6 * s.commit_s / s.chunks, 3) if s.chunks else None,
        "code_wait_s": round(s.code_wait_s, 4),
        "gap_s": round(s.gap_s, 4),
        "outside_share_pct": round(100 * s.outside_share, 3),
        "handler_share_pct": round(100 * s.handler_s / s.wall_s, 3) if s.wall_s else None,
    }


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--quick", action="store_true", help="smaller sizes (CI smoke)")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--rate", type=float, default=450.0, help="paced run: chunks per second in all")
    args = ap.parse_args()
    q = args.quick
    report: dict[str, Any] = {
        "python": sys.version.split()[0],
        "machine": platform.machine(),
        "processor": platform.processor() or None,
    }
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        raw_s, raw_n = raw_stream_s(2000 if q else 8000, 16)
        report["fake_engine_us_per_chunk"] = round(1e6 * raw_s / raw_n, 2)
        report["unpaced"] = run(2, 16, 2000 if q else 8000, 0.0, work, "unpaced")
        report["paced"] = run(2, 15, 200 if q else 600, args.rate, work, "paced")
    # A real question lasts minutes, so the per-question fixed costs vanish; what stays is the
    # handler's share plus the commit's cost per chunk at the paced rate.
    u, p = report["unpaced"], report["paced"]
    report["projected_share_long_questions_pct"] = round(
        p["handler_share_pct"] + 100 * u["commit_us_per_chunk"] * 1e-6 * args.rate, 3
    )
    if args.json:
        print(json.dumps(report, indent=2))
        return
    print(f"recorder bench (python {report['python']}, {report['machine']})")
    print(
        f"  unpaced: {u['chunks']} chunks, {u['answers']} answers, {u['code_runs']} code runs: "
        f"{u['per_chunk_us']} us/chunk in the recorder (fake engine itself: "
        f"{report['fake_engine_us_per_chunk']} us/chunk); "
        f"commit {u['commit_s_per_question']} s/question"
    )
    print(
        f"  paced at {p['rate_chunks_s']:.0f} chunks/s "
        f"({p['samples']} samples x {p['tokens_per_sample']} tokens, "
        f"{p['problems']} questions, {p['wall_s']} s): handler {p['handler_share_pct']}% of wall, "
        f"outside the engine {p['outside_share_pct']}% (goal < 1%); "
        f"{p['per_chunk_us']} us/chunk, commit {p['commit_s_per_question']} s/question, "
        f"code wait {p['code_wait_s']} s"
    )
    print(
        "  projected for questions of minutes at that rate: "
        f"{report['projected_share_long_questions_pct']}% "
        f"(handler share + commit {u['commit_us_per_chunk']} us/chunk)"
    )


if __name__ == "__main__":
    main()
