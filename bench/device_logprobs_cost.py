"""Cost of per-token logprobs on lmdeploy's PyTorch engine at 14B scale (issue 17), on the GPU.

Starts one engine with `PytorchEngineConfig(logprobs_mode='raw_logprobs')` on the 14B-shaped
random-weight model (`aimo profile build-random`) and runs the same cells (b sequences
× prompt tokens, ignore-EOS decode) alternately with `GenerationConfig(logprobs=None)` and
`logprobs=K`, measuring the decode step time over the window where all b sequences decode
(`recorder.profiling.window_rows`, as the profiles are measured). The engine-without-the-mode
baseline is the profile measured in the same device call (`aimo profile measure`).
Prints a table and writes `logprobs-cost.json` to --out. `--fake` runs it on CPU against the
lmdeploy test double (pipeline check only; its figures mean nothing).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

CELLS = ((16, 512), (32, 512), (32, 2048), (16, 8192))


def _engine(model: str, logprobs_mode: str | None, overrides: dict[str, Any]) -> Any:
    """An LmdeployEngine whose PyTorch backend config carries `logprobs_mode`."""
    from aimo.recorder import profiling as sl
    from aimo.solver.engines import lmdeploy_engine as le

    base = le.backend_config

    def with_mode(lmdeploy: Any, cfg: Any, tp: int) -> Any:
        bc = base(lmdeploy, cfg, tp)
        if logprobs_mode is not None:
            bc.logprobs_mode = logprobs_mode
        return bc

    le.backend_config = with_mode  # type: ignore[assignment]
    try:
        return le.LmdeployEngine(
            model, "pytorch", tp=1, quant_policy=8, model_format="awq", max_batch=32,
            cache_max_entry_count=0.9, enable_prefix_caching=False, tokenizer=sl.ContentOnly(),
            generation_overrides=overrides,
        )
    finally:
        le.backend_config = base  # type: ignore[assignment]


async def _measure(engine: Any, model: str, k: int, new_tokens: int, repeats: int) -> list[dict]:
    from aimo.recorder import profiling as sl

    prompts = sl.prompt_source(model)
    rows: list[dict] = []
    await sl.run_cell(engine, sl.Cell(4, 256), 32, 1, prompts, kind="warmup")
    for b, p in CELLS:
        for rep in range(repeats):
            for lp in (None, k):
                extra = {} if lp is None or k <= 0 else {"logprobs": lp}
                engine.generation_overrides = {"ignore_eos": True, **extra}
                res = await sl.run_cell(engine, sl.Cell(b, p), new_tokens, 100 + rep, prompts)
                step = res.window.step_s_all
                rows.append({"batch": b, "prompt_tokens": p, "logprobs": lp, "repeat": rep,
                             "step_ms": None if step is None else round(1e3 * step, 3),
                             "wall_s": round(res.wall_s, 3), "tokens": list(res.tokens)[:2]})
                print(json.dumps(rows[-1]), flush=True)
    return rows


def _table(rows: list[dict]) -> list[dict]:
    out = []
    for b, p in CELLS:
        off = [r["step_ms"] for r in rows if (r["batch"], r["prompt_tokens"]) == (b, p)
               and r["logprobs"] is None and r["step_ms"] is not None]
        on = [r["step_ms"] for r in rows if (r["batch"], r["prompt_tokens"]) == (b, p)
              and r["logprobs"] is not None and r["step_ms"] is not None]
        if off and on:
            m_off, m_on = statistics.median(off), statistics.median(on)
            out.append({"batch": b, "prompt_tokens": p, "step_ms_off": m_off, "step_ms_on": m_on,
                        "cost_pct": round(100 * (m_on / m_off - 1), 1)})
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--k", type=int, default=8)
    ap.add_argument("--new-tokens", type=int, default=192)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--fake", action="store_true")
    a = ap.parse_args(argv)
    a.out.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    if a.fake:
        # a CPU dry run on the test double: tests/helpers on PYTHONPATH (pytest puts it there)
        from fake_lmdeploy import installed_fake_lmdeploy  # type: ignore[import-not-found]

        ctx = installed_fake_lmdeploy()
        ctx.__enter__()
    engine = _engine(a.model, "raw_logprobs", {"ignore_eos": True})
    startup = time.monotonic() - t0
    # the test double has no logprobs: --fake checks the pipeline only (k = 0 both ways)
    rows = asyncio.run(_measure(engine, a.model, 0 if a.fake else a.k, a.new_tokens, a.repeats))
    table = _table(rows)
    gpu = engine.hardware
    result = {"gpu": gpu, "engine": "lmdeploy pytorch", "logprobs_mode": "raw_logprobs",
              "k": a.k, "new_tokens": a.new_tokens, "startup_s": round(startup, 1),
              "rows": rows, "table": table}
    (a.out / "logprobs-cost.json").write_text(json.dumps(result, indent=1))
    print(f"GPU {gpu}; engine start {startup:.1f} s; logprobs k={a.k}, mode raw_logprobs")
    print("batch  prompt  step_ms(off)  step_ms(on)  cost")
    for r in table:
        print(f"{r['batch']:5d} {r['prompt_tokens']:7d} {r['step_ms_off']:12.2f} "
              f"{r['step_ms_on']:12.2f} {r['cost_pct']:+5.1f}%")
    return 0


if __name__ == "__main__":
    sys.exit(main())
