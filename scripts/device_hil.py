"""Hardware-in-the-loop (HIL) runs on the lent GPU, in ONE device call (issue 15, docs/hil.md).

On the GPU machine, after the device preamble of docs/gpu-notes.md (lmdeploy prepared), this:
  1. builds the 14B-shaped random-weight model (`aimo profile build-random`), unless `--model`
     already holds one;
  2. starts ONE `LmdeployEngine` (PyTorch, quant_policy 8, ignore_eos, max_batch 32, cache 0.9,
     prefix caching off, the bare prompt as chat template — the measured profile's settings) and
     keeps it for every step below (an engine start costs 60–70 s: one is all the call affords);
  3. measures the `quick` grid of `aimo profile measure` on it and writes a profile named from
     the GPU (`h100-14b-w4kv8`; other GPUs `<gpu>-14b-w4kv8-quick`), start-up = this engine's
     build + its first-batch stall; if that fails, `h200-14b-w4kv8` is used below;
  4. synthesises an r1-14b store (`--questions`, 16 samples each) and writes a length-scaled copy
     (`recorder/scale.py`): the largest scale of `--scales` whose *simulated* time for the three
     HIL runs (the profile's step times; the same draw) fits the time left, with a margin;
  5. runs `aimo solve --backend hil` (run_solve on the shared engine) for seed-2nd-place,
     olympiad-tuned and majority-n, each recorded into one live store, each followed by
     `aimo validate`'s comparison, appended to the tables as it goes.

$OUT receives at most 8 files: device_hil.log, summary.json (every step's status, timings, the
estimate, each validation's numbers), the profile YAML, steps.csv (its rows), hil-traces.duckdb
(the scaled store replayed), hil-live.duckdb (the three live runs, compacted after each run),
validate.md (per run: the per-question table and a summary row), validate.png. Each step writes
its results when it ends, and a failed step does not stop the ones that do not need it.

`--fake` runs every step on CPU against the lmdeploy test double (tests/helpers/fake_lmdeploy.py,
a fixed 2 ms step): the pure-Python parts (store, scale choice, hil runs, validation, files).

Device command (see docs/hil.md for the preamble, which puts the repo root on PYTHONPATH; the
project is imported as installed, never by path): `timeout 560 python3 scripts/device_hil.py
--out $OUT --until $(( $(date +%s) + 550 ))`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import logging
import math
import os
import re
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from aimo.data import POLICIES_DIR


def installed_fake_lmdeploy(step_s: float = 0.002):  # type: ignore[no-untyped-def]
    """`--fake`: the lmdeploy test double (tests/helpers/fake_lmdeploy.py) as `lmdeploy` for a
    block; a CPU dry run, with tests/helpers on the path (pytest puts it there; by hand:
    `PYTHONPATH=$PWD:tests/helpers python3 scripts/device_hil.py --fake ...`)."""
    from fake_lmdeploy import installed_fake_lmdeploy as install  # type: ignore[import-not-found]

    return install(step_s=step_s)


log = logging.getLogger("device_hil")

POLICIES = ("seed-2nd-place", str(POLICIES_DIR / "olympiad-tuned.yaml"), "majority-n")
SCALES = (0.1, 0.08, 0.06, 0.05, 0.04, 0.03, 0.02, 0.015, 0.01)
BASE_PROFILE = "h200-14b-w4kv8"
COMMIT_S = 0.15  # per question: the recorder's commit and the session's bookkeeping (gpu-notes)
MARGIN = 1.2  # the estimate times this must fit the time left


def gpu_profile_name(hardware: str | None) -> str:
    """`h100-14b-w4kv8` on an H100 (the AIMO-3 machine); `<gpu>-14b-w4kv8-quick` elsewhere (the
    shipped H200 profile is the full-grid one)."""
    text = (hardware or "").upper()
    m = re.search(r"\b(H100|H200|A100|L40S|L4)\b", text)
    short = m.group(1).lower() if m else ("fake" if "FAKE" in text else "gpu")
    return f"{short}-14b-w4kv8" if short == "h100" else f"{short}-14b-w4kv8-quick"


class Driver:
    """Runs named steps, logging each, and keeps summary.json current (written after each)."""

    def __init__(self, out: Path, until: float) -> None:
        self.out = out
        self.until = until
        self.t0 = time.time()
        self.summary: dict[str, Any] = {"started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                                        "until": until, "steps": {}}

    def left(self) -> float:
        return self.until - time.time()

    def save(self) -> None:
        tmp = self.out / ".summary.json.tmp"
        tmp.write_text(json.dumps(self.summary, indent=2, default=str))
        tmp.replace(self.out / "summary.json")

    def step(self, name: str, fn: Callable[[], dict[str, Any] | None]) -> dict[str, Any] | None:
        log.info("== %s (%.0f s left)", name, self.left())
        t = time.time()
        try:
            result = fn() or {}
            self.summary["steps"][name] = {"ok": True, "s": round(time.time() - t, 2), **result}
        except Exception as exc:  # noqa: BLE001 - a failed step must not stop the others
            log.error("step %s failed: %s\n%s", name, exc, traceback.format_exc())
            self.summary["steps"][name] = {"ok": False, "s": round(time.time() - t, 2),
                                           "error": f"{type(exc).__name__}: {exc}"}
            result = None
        self.save()
        return result


# --------------------------------------------------------------------------------------- steps


def build_model(model: Path, fake: bool) -> dict[str, Any]:
    """The 14B-shaped random checkpoint (or, with `fake`, a config.json the double needs)."""
    if (model / "config.json").is_file():
        return {"model": str(model), "built": False}
    if fake:
        model.mkdir(parents=True, exist_ok=True)
        (model / "config.json").write_text(json.dumps({
            "model_type": "qwen2", "num_hidden_layers": 48, "hidden_size": 5120, "vocab_size": 152064,
            "quantization_config": {"quant_method": "awq", "bits": 4, "group_size": 128}}))
        return {"model": str(model), "built": "fake config"}
    # in a child process: the builder's CUDA tensors are freed before the engine starts
    cmd = [sys.executable, "-m", "aimo.cli", "profile", "build-random", "--dir", str(model)]
    subprocess.run(cmd, check=True, timeout=200)
    return {"model": str(model), "built": True}


def start_engine(model: Path) -> Any:
    """One engine for the grid and the HIL runs (the measured profile's settings)."""
    from aimo.recorder.profiling import ContentOnly, model_summary
    from aimo.solver.engines.lmdeploy_engine import DEFAULT_SESSION_LEN, LmdeployEngine

    _, fmt = model_summary(model)
    return LmdeployEngine(str(model), "pytorch", tp=1, quant_policy=8, model_format=fmt, max_batch=32,
                          cache_max_entry_count=0.9, session_len=max(DEFAULT_SESSION_LEN, 16384 + 512),
                          enable_prefix_caching=False, tokenizer=ContentOnly(),
                          generation_overrides={"ignore_eos": True})


def measure(engine: Any, model: Path, out: Path, until: float, fake: bool) -> tuple[Any, dict[str, Any]]:
    """The quick grid on the shared engine → the GPU's profile (YAML + CSV in `out`)."""
    from aimo.recorder import profiling as sl
    from aimo.core.hardware import load_profile, save_profile

    cells = sl.grid_cells("quick")
    prompts = sl.LetterPrompts() if fake else sl.prompt_source(model)
    gpu = "fake (lmdeploy test double)" if fake else (engine.hardware or "unknown GPU")
    rows: list[Any] = []

    def on_event(ev: Any) -> None:
        log.info(sl.describe_event(ev))
        if ev.result is not None and ev.kind == "cell":
            rows.extend(sl.step_rows(ev.result, 8, gpu))

    # warm-ups: the grid's batch sizes and the HIL runs' (10 and 15 samples): lmdeploy stalls on
    # the first batch of a shape (kernels, graphs), a start-up cost the profile's startup_s holds
    warmup = (*sl.default_warmups(cells), sl.Cell(10, 256), sl.Cell(15, 256))
    events = asyncio.run(sl.measure_grid(engine, cells, new_tokens=128, prompts=prompts, until=until,
                                         warmup=warmup, on_event=on_event))
    sl.write_rows_csv(out / "steps.csv", rows)
    fit = sl.fit_step_model(rows)
    results = tuple(e.result for e in events if e.result is not None)
    first = next((r for r in results if r.first_chunk_s), None)
    stall = first.first_chunk_s[1] if first is not None else 0.0  # the first batch's wait: start-up
    summary, _ = sl.model_summary(model)
    ctx = sl.MeasureContext(
        gpu=gpu, backend=engine.backend, quant_policy=8, model=model.name, model_summary=summary,
        new_tokens=128, lmdeploy_version=engine.run_config().get("lmdeploy_version"),
        startup_s=round(engine.startup_s, 1), csv_path="steps.csv", prompts=prompts.description,
        skipped=tuple(e.cell.label for e in events if e.status == "skipped"),
        failed=tuple(f"{e.cell.label} ({e.error})" for e in events if e.status == "error"))
    name = gpu_profile_name(gpu)
    prof = sl.measured_profile(fit, rows, results, name=name, base=load_profile(BASE_PROFILE), ctx=ctx)
    startup = round(engine.startup_s + stall, 1)
    prof = dataclasses.replace(prof, startup_s=startup, provenance=dataclasses.replace(
        prof.provenance, notes=prof.provenance.notes + (
            f" startup_s = {startup}: this engine's pipeline build and warm-up ({engine.startup_s:.1f} s, "
            f"weights from {model.parent}) plus the first batch's wait for its first chunk ({stall:.1f} s); "
            "measured by scripts/device_hil.py on the engine it then used for the HIL runs.")))
    path = save_profile(prof, out / f"{name}.yaml")
    load_profile(path)
    return prof, {"profile": str(path), "a": prof.a, "beta": prof.beta, "gamma": prof.gamma,
                  "startup_s": startup, "fit": fit.rel_error.render(), "cells": len(results),
                  "skipped": list(ctx.skipped), "failed": list(ctx.failed)}


@dataclasses.dataclass(frozen=True)
class ScaleChoice:
    scale: float
    estimate_s: float  # simulated question time of the three runs, with commits and margin
    per_policy_s: dict[str, float]
    tried: dict[str, float]


def simulated_run_s(problems: Sequence[Any], policy: Any, profile: Any, seed: int) -> float:
    """What one HIL run should take by the simulator: Σ question times plus the commits."""
    from aimo.simulator.replay import replay_competition
    from aimo.core.draws import competition_draws

    res = replay_competition(problems, policy, profile, draws=competition_draws(problems, seed))
    return sum(q.time_s for q in res.questions) + COMMIT_S * len(res.questions)


def choose_scale(source: Path, work: Path, profile: Any, policies: Sequence[Any], seed: int,
                 budget_s: float, scales: Sequence[float]) -> tuple[Path, ScaleChoice]:
    """The largest scale whose three simulated runs (× MARGIN) fit `budget_s`; else the smallest."""
    from aimo.recorder.scale import scale_store
    from aimo.core.store import load_problem_traces

    tried: dict[str, float] = {}
    chosen: tuple[Path, ScaleChoice] | None = None
    for s in sorted(scales, reverse=True):
        path = work / f"scaled-{s:g}.duckdb"
        if not path.exists():
            scale_store(source, path, s)
        problems = load_problem_traces(path)
        per = {p.name: simulated_run_s(problems, p, profile, seed) for p in policies}
        total = sum(per.values())
        tried[f"{s:g}"] = round(total, 1)
        chosen = (path, ScaleChoice(s, round(total * MARGIN, 1), {k: round(v, 1) for k, v in per.items()}, tried))
        if total * MARGIN <= budget_s:
            break
    assert chosen is not None
    return chosen


def hil_run(engine: Any, model: Path, store: Path, policy: Any, seed: int, live: Path,
            problems: Sequence[Any]) -> Any:
    """One `aimo solve --backend hil` run on the shared engine, recorded into `live`."""
    from aimo.solver.solve import EngineSpec, run_solve

    spec = EngineSpec("hil", model=str(model), tp=1, seed=seed, max_batch=32,
                      options={"draw_seed": seed, "lmdeploy_engine": engine, "code_workers": 4})
    return run_solve(list(problems), policy, spec, traces=store, record=live,
                     echo=lambda line: log.info("  %s", line))


def store_problems(store: Path) -> list[Any]:
    """The store's questions (id, text, truth) in recorded order."""
    from aimo.solver.solve import Problem
    from aimo.core.store import load_problem_traces, read_connection

    traces = load_problem_traces(store)
    with read_connection(store) as con:
        texts = dict(con.execute("SELECT problem_id, question FROM problems WHERE run_id = ?",
                                 [traces[0].run_id]).fetchall())
    return [Problem(p.problem_id, texts.get(p.problem_id) or "", p.answer) for p in traces]


def _plot(checks: Sequence[Any], path: Path) -> str:
    """The validation plot, if matplotlib is there (the GPU image lacks it: then `aimo validate
    --plot` on the returned stores draws it on the CPU box)."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return "matplotlib missing: draw it with aimo validate --plot"
    from aimo.simulator.validate import plot

    return str(plot(checks, path))


# ---------------------------------------------------------------------------------------- main


def run(args: argparse.Namespace) -> int:
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(out / "device_hil.log")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.getLogger().addHandler(handler)
    logging.getLogger().setLevel(logging.INFO)
    stream = logging.StreamHandler(sys.stdout)
    stream.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S"))
    log.addHandler(stream)
    d = Driver(out, args.until)
    work = Path(tempfile.mkdtemp(prefix="hil-"))
    model = args.model or (Path("/dev/shm/m14b") if Path("/dev/shm").is_dir() and not args.fake else work / "m14b")
    from aimo.core.hardware import load_profile
    from aimo.core.policy import load_policy

    policies = [load_policy(p) for p in args.policies]
    state: dict[str, Any] = {"profile": load_profile(BASE_PROFILE)}
    with contextlib.ExitStack() as stack:
        if args.fake:
            stack.enter_context(installed_fake_lmdeploy(step_s=0.002))
        d.step("build", lambda: build_model(model, args.fake))

        def _engine() -> dict[str, Any]:
            state["engine"] = start_engine(model)
            e = state["engine"]
            return {"startup_s": round(e.startup_s, 2), "backend": e.backend, "hardware": e.hardware,
                    "config": e.run_config()}

        if d.step("engine", _engine) is None:
            return 1
        engine = state["engine"]

        def _measure() -> dict[str, Any]:
            until = min(d.until - args.hil_s, time.time() + args.measure_s)
            prof, info = measure(engine, model, out, until, args.fake)
            state["profile"] = prof
            return info

        if not args.skip_measure:
            d.step("measure", _measure)
        profile = state["profile"]
        d.summary["profile_used"] = profile.name

        def _store() -> dict[str, Any]:
            from aimo.recorder.synth import synthesize_store

            src = work / "synthetic.duckdb"
            synthesize_store(src, n_problems=args.questions, n_samples=16, seed=args.synth_seed)
            budget = d.left() - args.reserve_s
            path, choice = choose_scale(src, work, profile, policies, args.seed, budget,
                                        args.scales)
            from aimo.core.store.compact import compact_copy

            compact_copy(path, out / "hil-traces.duckdb")  # 16 KiB blocks: small stores shrink 10-30x
            state["store"] = out / "hil-traces.duckdb"
            return {"questions": args.questions, "samples": 16, "synth_seed": args.synth_seed,
                    "budget_s": round(budget, 1), **dataclasses.asdict(choice),
                    "store_bytes": (out / "hil-traces.duckdb").stat().st_size}

        if d.step("store", _store) is None:
            return 1
        store = state["store"]
        problems = store_problems(store)
        live_tmp = work / "live.duckdb"
        checks: list[Any] = []
        per = d.summary["steps"]["store"]["per_policy_s"]
        for pol in policies:
            def _one(pol: Any = pol) -> dict[str, Any]:
                from aimo.simulator.validate import MARKDOWN_HEAD, markdown_row, read_live_run, render, validate
                from aimo.core.store import list_runs, load_problem_traces
                from aimo.core.store.compact import compact_copy

                # a run that would not end in time is cut to the questions that fit (estimate)
                est = per.get(pol.name, 0.0) * MARGIN
                left = d.left() - args.reserve_s / 2
                n = len(problems) if est <= left else max(1, int(len(problems) * left / max(est, 1e-9)))
                before = {r.run_id for r in list_runs(live_tmp)} if live_tmp.exists() else set()
                t = time.time()
                report = hil_run(engine, model, store, pol, args.seed, live_tmp, problems[:n])
                wall = time.time() - t
                compact_copy(live_tmp, out / "hil-live.duckdb")
                run_id = next(r.run_id for r in list_runs(live_tmp) if r.run_id not in before)
                live = read_live_run(live_tmp, run_id)
                done = {r.problem_id: r for r in report.result.questions}
                live = dataclasses.replace(live, questions=tuple(
                    dataclasses.replace(q, answer=done[q.problem_id].answer,
                                        stop_reason=done[q.problem_id].stop_reason)
                    if q.problem_id in done else q for q in live.questions), answers_from="json")
                v = validate(live, load_problem_traces(store), profile)
                checks.append(v.check)
                md = out / "validate.md"
                new = not md.exists()
                with md.open("a", encoding="utf-8") as fh:
                    fh.write(("# HIL runs vs the simulator\n\n" + MARKDOWN_HEAD + "\n" if new else "")
                             + markdown_row(v) + "\n\n```\n" + render(v) + "\n```\n\n")
                png = _plot(checks, out / "validate.png")
                return {"png": png, "run_id": run_id, "questions": n, "wall_s": round(wall, 1),
                        "estimate_s": round(per.get(pol.name, 0.0), 1), "validate": v.summary(),
                        "solve": report.to_json()}

            d.step(f"hil:{pol.name}", _one)
        with contextlib.suppress(Exception):
            asyncio.run(engine.close())
    d.summary["total_s"] = round(time.time() - d.t0, 1)
    d.save()
    log.info("done in %.0f s", time.time() - d.t0)
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=Path(os.environ.get("OUT", "out/hil")))
    ap.add_argument("--model", type=Path, default=None, help="checkpoint dir (built there if empty)")
    ap.add_argument("--until", type=float, default=time.time() + 550, help="deadline, epoch seconds")
    ap.add_argument("--questions", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0, help="sampling seed and recorded-sample draw")
    ap.add_argument("--synth-seed", type=int, default=0)
    ap.add_argument("--scales", type=lambda s: tuple(float(x) for x in s.split(",")), default=SCALES)
    ap.add_argument("--policies", nargs="+", default=list(POLICIES))
    ap.add_argument("--measure-s", type=float, default=110.0, help="time allowed to the grid")
    ap.add_argument("--hil-s", type=float, default=240.0, help="time the grid must leave for the HIL runs")
    ap.add_argument("--reserve-s", type=float, default=25.0, help="kept free at the end")
    ap.add_argument("--skip-measure", action="store_true", help=f"use {BASE_PROFILE} instead")
    ap.add_argument("--fake", action="store_true", help="CPU: the lmdeploy test double")
    args = ap.parse_args(argv)
    if args.questions < 1:
        ap.error("--questions must be >= 1")
    if not args.scales or any(not (0 < s <= 1) or not math.isfinite(s) for s in args.scales):
        ap.error("--scales: numbers in (0, 1]")
    return run(args)


if __name__ == "__main__":
    raise SystemExit(main())
