"""GPU smoke run of the real lmdeploy path: tiny AWQ Qwen2, PyTorch engine, int8 KV cache.

Steps (each recorded in OUT/smoke.json even when a later one fails):
1. env      - torch, GPU, lmdeploy versions;
2. model    - build a tiny random Qwen2, AWQ 4-bit packed (recorder/tiny_model.py);
3. engine   - LmdeployEngine(backend='pytorch', quant_policy=8): start-up time, backend run;
4. stream   - 20 prompts with max_batch 16: tagging, tokens/s, per-sample abort of a running
              sample and of a queued one (the re-issued cancel);
5. record   - `aimo record` code path on data/problems/smoke.csv (natural ends), then a rerun that
              must resume with nothing left to do; recorder cost per chunk and share; a compact
              copy of the store into OUT/gpu-smoke-compact.duckdb;
   record_fixed - the same with ignore_eos (every sample to max_new_tokens) for timing figures;
6. solve    - the control loop (solver.loop) with the seed preset on the real engine, with a short
              question timeout (and ignore_eos) so the loop's own cancel path runs;
   solve_cli - `aimo solve`'s runner (solver.solve.run_solve), seed preset, recorded (kind solve);
7. fallback - LmdeployEngine(backend='turbomind'): this image has no TurboMind build, lmdeploy
              falls back to PyTorch, and the adapter must say so.

Run on the GPU machine (see docs/gpu-notes.md) as `python scripts/device_smoke.py --out $OUT`;
`--fake` runs the same steps on CPU against the lmdeploy test double (tests/helpers), to check
the script itself before spending device time.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import logging
import os
import platform
import statistics
import subprocess
import sys
import time
import traceback
from collections import Counter, defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from recorder.record import prompt_specs, run_record  # noqa: E402
from solver.engines.base import Chunk, PromptSpec, SamplingSettings  # noqa: E402
from solver.engines.lmdeploy_engine import LmdeployEngine  # noqa: E402
from core.policy import load_policy, sample_kinds  # noqa: E402
from core.store.compact import compact_copy  # noqa: E402

log = logging.getLogger("device_smoke")
PROBLEMS = REPO / "data" / "problems" / "smoke.csv"


class Results:
    """Step results, written to OUT/smoke.json after every step."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.data: dict[str, Any] = {"started": time.strftime("%Y-%m-%d %H:%M:%S")}

    def step(self, name: str, fn: Callable[[], Any]) -> Any:
        log.info("== step %s", name)
        t0 = time.monotonic()
        try:
            value = fn()
            self.data[name] = {
                "ok": True,
                "wall_s": round(time.monotonic() - t0, 3),
                **(value or {}),
            }
            return value
        except BaseException as exc:
            log.exception("step %s failed", name)
            self.data[name] = {
                "ok": False,
                "wall_s": round(time.monotonic() - t0, 3),
                "error": f"{type(exc).__name__}: {exc}",
                "traceback": traceback.format_exc()[-4000:],
            }
            return None
        finally:
            self.save()

    def save(self) -> None:
        self.path.write_text(json.dumps(self.data, indent=2, default=str))


def env_info() -> dict[str, Any]:
    info: dict[str, Any] = {"python": platform.python_version()}
    try:
        import torch

        info["torch"] = torch.__version__
        info["cuda_devices"] = torch.cuda.device_count()
        info["gpu"] = torch.cuda.get_device_name(0) if torch.cuda.device_count() else None
    except ImportError:
        info["torch"] = None
    try:
        import lmdeploy

        info["lmdeploy"] = getattr(lmdeploy, "__version__", None)
    except ImportError:
        info["lmdeploy"] = None
    try:
        info["nvidia_smi"] = subprocess.run(
            ["nvidia-smi", "-L"], capture_output=True, check=False, text=True, timeout=20
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        pass
    return info


def smoke_specs(n: int, question: str) -> list[PromptSpec]:
    policy = load_policy("seed-2nd-place")
    kinds = [("cot", "code")[i % 2] for i in range(n)]
    return prompt_specs(policy, kinds, question)


async def stream_check(
    engine: LmdeployEngine, max_new_tokens: int, n_prompts: int, cancel_at: int
) -> dict[str, Any]:
    """One batch larger than max_batch: cancel a running sample at `cancel_at` tokens and the last
    (queued) sample at once; the rest run to their end."""
    specs = smoke_specs(n_prompts, "What is 17 + 25?")
    running, queued = 2, n_prompts - 1
    stream = await engine.start_question(
        "stream-check",
        "What is 17 + 25?",
        specs,
        SamplingSettings(max_new_tokens=max_new_tokens, seed=0),
    )
    t_submit = stream.now()
    await stream.cancel(queued)
    t_cancel: dict[int, float] = {queued: stream.now()}
    per: dict[int, list[Chunk]] = defaultdict(list)
    async for c in stream:
        per[c.sample].append(c)
        if c.sample == running and running not in t_cancel and c.n_tokens >= cancel_at:
            t_cancel[running] = stream.now()
            await stream.cancel(running)
    deltas: Counter[int] = Counter()
    for cs in per.values():
        prev = 0
        for c in cs:
            deltas[min(c.n_tokens - prev, 9)] += 1
            prev = c.n_tokens
    ends = {
        s: (cs[-1].finish_reason, cs[-1].n_tokens, round(cs[-1].t, 4))
        for s, cs in sorted(per.items())
    }
    first_t = [cs[0].t for cs in per.values()]
    last_t = max(cs[-1].t for cs in per.values())
    tokens = sum(cs[-1].n_tokens for cs in per.values())
    n_chunks = sum(len(cs) for cs in per.values())
    after_cancel = {s: [c.n_tokens for c in per[s] if c.t >= t_cancel[s]] for s in t_cancel}
    ok = (
        ends[running][0] == "abort"
        and ends[queued][0] == "abort"
        and all(
            r in ("length", "stop") for s, (r, _, _) in ends.items() if s not in (running, queued)
        )
        and sorted(per) == list(range(n_prompts))
    )
    return {
        "check_passed": ok,
        "samples": n_prompts,
        "max_batch": engine.config.max_batch,
        "max_new_tokens": max_new_tokens,
        "ends": ends,
        "chunks": n_chunks,
        "tokens": tokens,
        "tokens_per_s": round(tokens / last_t, 1) if last_t > 0 else None,
        "submit_s": round(t_submit, 4),
        "first_chunk_s": {
            "min": round(min(first_t), 4),
            "median": round(statistics.median(first_t), 4),
            "max": round(max(first_t), 4),
        },
        "last_chunk_s": round(last_t, 4),
        "tokens_per_chunk_histogram": dict(sorted(deltas.items())),
        "abort_issued": stream.abort_counts(),
        "cancel_at_s": {s: round(t, 4) for s, t in t_cancel.items()},
        "tokens_seen_after_cancel": {
            s: (v[0], v[-1]) if v else None for s, v in after_cancel.items()
        },
        "abort_latency_s": {s: round(ends[s][2] - t_cancel[s], 4) for s in t_cancel},
        "prompt_tokens": {s: stream.prompt_tokens(s) for s in (0, 1)},
    }


def record_check(
    engine: LmdeployEngine,
    out: Path,
    model_dir: str,
    max_new_tokens: int,
    samples: int,
    hardware: str | None,
    name: str,
    notes: str,
) -> dict[str, Any]:
    """`aimo record`'s code path into /tmp/<name>.duckdb, a rerun that must resume with nothing to
    do, and a compact copy (16 KiB blocks) of the store into OUT."""
    store = Path("/tmp") / f"{name}.duckdb"  # the raw store stays on the machine
    store.unlink(missing_ok=True)
    mix = f"cot:{samples // 2 + samples % 2},code:{samples // 2}"
    kw: dict[str, Any] = dict(
        prompts=mix,
        max_new_tokens=max_new_tokens,
        engine=engine,
        run_id=name,
        hardware=hardware,
        show_progress=False,
    )
    summary = run_record(PROBLEMS, model_dir, "pytorch", samples, store, notes=notes, **kw)
    again = run_record(PROBLEMS, model_dir, "pytorch", samples, store, **kw)
    from core.store import list_runs

    run = list_runs(store)[0]
    stats = summary.stats.as_dict()
    compact = out / f"{name}-compact.duckdb"
    compact_copy(store, compact)
    return {
        "summary": summary.render(),
        "generation_overrides": dict(engine.generation_overrides),
        "written": list(summary.written),
        "resume_written": list(again.written),
        "resume_skipped": list(again.skipped),
        "stats": {k: (round(v, 6) if isinstance(v, float) else v) for k, v in stats.items()},
        "store": {
            "path": str(store),
            "bytes": store.stat().st_size,
            "compact_path": str(compact),
            "compact_bytes": compact.stat().st_size,
            "status": run.status,
            "problems": run.n_problems,
            "samples": run.n_samples,
            "tokens": run.n_tokens,
            "answers": run.n_answers,
            "backend": run.backend,
            "quantization": run.quantization,
        },
    }


async def solve_check(
    engine: LmdeployEngine, max_new_tokens: int, timeout_s: float, n_problems: int
) -> dict[str, Any]:
    """The live control loop with the seed preset on the real engine (short timeout: with a random
    model no answer ever agrees, so the loop's timeout stop cancels the running samples)."""
    from recorder.record import load_problems
    from solver.loop.control import run_question
    from solver.loop.runners import SandboxRunner
    from solver.sandbox import SandboxPool

    policy = load_policy("seed-2nd-place")
    level = dataclasses.replace(
        policy.level(policy.schedule.start_level), timeout_s=timeout_s, early_timeouts=()
    )
    kinds = sample_kinds(policy.samples, level.samples)
    sampling = SamplingSettings(
        temperature=policy.generation.temperature,
        top_p=policy.generation.top_p,
        min_p=policy.generation.min_p,
        repetition_penalty=policy.generation.repetition_penalty,
        max_new_tokens=max_new_tokens,
    )
    out = []
    with SandboxPool(4) as pool:
        for problem in load_problems(PROBLEMS)[:n_problems]:
            specs = prompt_specs(policy, kinds, problem.question)
            t0 = time.monotonic()
            stream = await engine.start_question(
                problem.problem_id, problem.question, specs, sampling
            )
            outcome = await run_question(stream, policy, level, kinds, SandboxRunner(pool))
            ends = Counter(s.end for s in outcome.samples)
            out.append(
                {
                    "problem": problem.problem_id,
                    "answer": outcome.answer,
                    "truth": problem.answer,
                    "time_s": round(outcome.time_s, 3),
                    "wall_s": round(time.monotonic() - t0, 3),
                    "stop_reason": outcome.stop_reason,
                    "sample_ends": dict(ends),
                    "tokens": sum(s.tokens for s in outcome.samples),
                    "stream_finished_after": round(stream.now(), 3),
                }
            )
    solve_module = None
    try:
        import importlib.util

        solve_module = importlib.util.find_spec("solver.solve") is not None
    except ImportError:
        solve_module = False
    return {
        "policy": policy.name,
        "level": dataclasses.asdict(level),
        "samples": len(kinds),
        "questions": out,
        "solver.solve present": solve_module,
    }


def solve_cli_check(model_dir: str, out: Path, hardware: str | None) -> dict[str, Any]:
    """`aimo solve`'s runner (solver.solve.run_solve) with the seed preset on the real engine,
    recorded into a store (kind 'solve'); a compact copy comes back."""
    from solver.solve import EngineSpec, run_solve

    store = Path("/tmp") / "gpu-solve.duckdb"
    store.unlink(missing_ok=True)
    spec = EngineSpec(
        "pytorch",
        model=model_dir,
        tp=1,
        max_batch=16,
        options={"cache_max_entry_count": 0.5, "model_format": "awq"},
    )
    lines: list[str] = []
    report = run_solve(
        PROBLEMS, "seed-2nd-place", spec, record=store, budget_s=900.0, echo=lines.append
    )
    compact = out / "gpu-solve-compact.duckdb"
    compact_copy(store, compact)
    return {
        "lines": lines,
        "render": report.render(),
        "json": report.to_json(),
        "store": {"bytes": store.stat().st_size, "compact_bytes": compact.stat().st_size},
    }


def fallback_check(model_dir: str, fake: bool) -> dict[str, Any]:
    engine = LmdeployEngine(
        model_dir,
        "turbomind",
        tp=1,
        quant_policy=8,
        model_format="awq",
        max_batch=4,
        cache_max_entry_count=0.3,
    )
    info = {
        "requested": engine.requested_backend,
        "backend": engine.backend,
        "fell_back": engine.fell_back,
        "startup_s": round(engine.startup_s, 3),
    }

    async def tiny_stream() -> dict[str, Any]:
        stream = await engine.start_question(
            "fallback", "Q", smoke_specs(2, "What is 2+2?"), SamplingSettings(max_new_tokens=32)
        )
        ends = {}
        async for c in stream:
            if c.finish_reason:
                ends[c.sample] = (c.finish_reason, c.n_tokens)
        await engine.close()
        return ends

    info["stream_ends"] = asyncio.run(tiny_stream())
    return info


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--out", type=Path, default=Path(os.environ.get("OUT", "out/device-smoke")))
    ap.add_argument("--model-dir", default="/tmp/tiny-qwen2-awq")
    ap.add_argument(
        "--fake", action="store_true", help="CPU dry run against the lmdeploy test double"
    )
    ap.add_argument("--stream-tokens", type=int, default=300)
    ap.add_argument("--record-tokens", type=int, default=512)
    ap.add_argument("--record-samples", type=int, default=16)
    ap.add_argument("--fixed-tokens", type=int, default=768)
    ap.add_argument("--solve-tokens", type=int, default=4000)
    ap.add_argument("--solve-timeout", type=float, default=3.0)
    ap.add_argument("--solve-problems", type=int, default=2)
    ap.add_argument(
        "--skip",
        default="",
        help="comma list of steps to skip (stream,record,record_fixed,solve,solve_cli,fallback)",
    )
    args = ap.parse_args(argv)
    skip = set(filter(None, args.skip.split(",")))
    args.out.mkdir(parents=True, exist_ok=True)
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
        handlers=[logging.FileHandler(args.out / "smoke.log"), logging.StreamHandler()],
    )
    results = Results(args.out / "smoke.json")
    if args.fake:
        sys.path.insert(0, str(REPO / "tests" / "helpers"))
        from fake_lmdeploy import FakeTokenizer, make_fake_lmdeploy

        sys.modules["lmdeploy"] = make_fake_lmdeploy(
            turbomind_available=False, tokenizer=FakeTokenizer(), step_s=0.0005
        )
    env = results.step("env", env_info) or {}
    model_dir = args.model_dir
    if not args.fake:

        def build() -> dict[str, Any]:
            from recorder.tiny_model import build_tiny_qwen2

            path = build_tiny_qwen2(model_dir)
            files = {p.name: p.stat().st_size for p in path.iterdir()}
            return {
                "path": str(path),
                "files": files,
                "shape": json.loads((path / "tiny_model.json").read_text()),
            }

        results.step("model", build)
    holder: dict[str, LmdeployEngine] = {}

    def make_engine() -> dict[str, Any]:
        first_error = None
        try:
            eng = LmdeployEngine(
                model_dir,
                "pytorch",
                tp=1,
                quant_policy=8,
                model_format="awq",
                max_batch=16,
                cache_max_entry_count=0.5,
            )
        except Exception as exc:
            log.exception("engine start failed; retrying without prefix caching")
            first_error = f"{type(exc).__name__}: {exc}"
            eng = LmdeployEngine(
                model_dir,
                "pytorch",
                tp=1,
                quant_policy=8,
                model_format="awq",
                max_batch=16,
                cache_max_entry_count=0.5,
                enable_prefix_caching=False,
            )
        holder["engine"] = eng
        return {
            "startup_s": round(eng.startup_s, 3),
            "backend": eng.backend,
            "fell_back": eng.fell_back,
            "first_error": first_error,
            "run_config": eng.run_config(),
        }

    results.step("engine", make_engine)
    engine = holder.get("engine")
    if engine is not None:
        fixed = {
            "ignore_eos": True
        }  # the random model emits EOS early; fixed lengths for the checks
        if "stream" not in skip:
            engine.generation_overrides = fixed
            results.step(
                "stream", lambda: asyncio.run(stream_check(engine, args.stream_tokens, 20, 40))
            )
        if "record" not in skip:
            engine.generation_overrides = {}
            results.step(
                "record",
                lambda: record_check(
                    engine,
                    args.out,
                    model_dir,
                    args.record_tokens,
                    args.record_samples,
                    env.get("gpu"),
                    "gpu-smoke",
                    "tiny random Qwen2 (AWQ w4, kv8), lmdeploy PyTorch engine, natural ends: "
                    "engine-path smoke, gibberish text",
                ),
            )
        if "record_fixed" not in skip:
            engine.generation_overrides = fixed
            results.step(
                "record_fixed",
                lambda: record_check(
                    engine,
                    args.out,
                    model_dir,
                    args.fixed_tokens,
                    args.record_samples,
                    env.get("gpu"),
                    "gpu-smoke-fixed",
                    "tiny random Qwen2 (AWQ w4, kv8), lmdeploy PyTorch engine, ignore_eos: "
                    "every sample runs to max_new_tokens, for timing",
                ),
            )
        if "solve" not in skip:
            engine.generation_overrides = fixed
            results.step(
                "solve",
                lambda: asyncio.run(
                    solve_check(engine, args.solve_tokens, args.solve_timeout, args.solve_problems)
                ),
            )
        results.step("close", lambda: asyncio.run(engine.close()) and None)
    if "solve_cli" not in skip:
        results.step("solve_cli", lambda: solve_cli_check(model_dir, args.out, env.get("gpu")))
    if "fallback" not in skip:
        results.step("fallback", lambda: fallback_check(model_dir, args.fake))
    results.data["finished"] = time.strftime("%Y-%m-%d %H:%M:%S")
    results.save()
    ok = all(v.get("ok", True) for v in results.data.values() if isinstance(v, dict))
    log.info("smoke %s; results in %s", "passed" if ok else "had failures", results.path)
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0 if ok else 1)  # lmdeploy leaves threads and workers behind: do not wait for them


if __name__ == "__main__":
    main()
