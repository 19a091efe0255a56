"""Whole-recording throughput of `aimo record` (issue 16): tokens/s and code runs/s, with the code
runs of a question overlapping the next questions' generation vs one question at a time.

A paced fake engine (bench_recorder.FakeEngine's token mix) streams each question; every code
sample writes its ```python block near its end, as real ones do, and the block runs in the real
sandbox with the seed's `import math, numpy, sympy` preamble (≈ 2–3 s a run here, as in the
olympiad recording). Both modes record the same questions into fresh stores; the figures are
whole-run tokens / wall s and code runs / wall s.

Run: `python bench/bench_recording_throughput.py [--problems 6 --samples 8 --tokens 400 --rate 800]`.
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from bench_recorder import FakeEngine, FakeStream, sample_tokens

from aimo.recorder.record import run_record
from aimo.solver.engines.base import PromptSpec, SamplingSettings


class LateCodeEngine(FakeEngine):
    """FakeEngine whose code samples end with their python block (then a box)."""

    async def start_question(self, question_id: str, question: str,
                             prompts: Sequence[PromptSpec], sampling: SamplingSettings) -> FakeStream:
        toks = []
        for p in prompts:
            t = sample_tokens(self.rng, "cot", self.tokens)
            if p.kind == "code":
                block = ["```python", "\nprint(", str(int(self.rng.integers(0, 999))), ")\n", "```"]
                end = self.tokens - 20
                t[end: end + len(block)] = block
            toks.append(t[: self.tokens])
        return FakeStream(toks, self.rate)


def record_once(work: Path, tag: str, a: argparse.Namespace, max_finishing: int) -> dict[str, float]:
    csv = work / f"{tag}.csv"
    csv.write_text("id,question,answer\n"
                   + "".join(f"q{i},What is {i}+{i}?,{2 * i}\n" for i in range(a.problems)))
    half = a.samples // 2
    t0 = time.perf_counter()
    summary = run_record(csv, "/bench/model", "bench", a.samples, work / f"{tag}.duckdb",
                         prompts=f"cot:{half},code:{a.samples - half}", max_new_tokens=a.tokens,
                         engine=LateCodeEngine(a.tokens, a.rate), show_progress=False,
                         max_finishing=max_finishing)
    wall = time.perf_counter() - t0
    s = summary.stats
    return {"wall_s": wall, "tokens": s.tokens, "code_runs": s.code_runs,
            "tokens_per_s": s.tokens / wall, "code_runs_per_s": s.code_runs / wall,
            "stream_s": s.stream_s, "code_wait_s": s.code_wait_s}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--problems", type=int, default=6)
    ap.add_argument("--samples", type=int, default=8)
    ap.add_argument("--tokens", type=int, default=400)
    ap.add_argument("--rate", type=float, default=800.0, help="chunks per second, all samples")
    a = ap.parse_args()
    print(f"{platform.node()} {platform.machine()}: {a.problems} questions × {a.samples} samples × "
          f"{a.tokens} tokens at {a.rate:.0f} chunks/s; code runs in the real sandbox")
    print(f"{'mode':<34}{'wall s':>8}{'tok/s':>9}{'code/s':>8}{'stream s':>10}{'code wait s':>13}")
    with tempfile.TemporaryDirectory() as tmp:
        for label, k in (("one question at a time", 1), ("code overlaps next generation", 2)):
            r = record_once(Path(tmp), f"m{k}", a, k)
            print(f"{label:<34}{r['wall_s']:8.1f}{r['tokens_per_s']:9.0f}"
                  f"{r['code_runs_per_s']:8.2f}{r['stream_s']:10.1f}{r['code_wait_s']:13.1f}")


if __name__ == "__main__":
    main()
