"""Measure lmdeploy's decode step latency L(b, C) for a 14B Qwen2 (AWQ W4) on the lent GPU.

Issue 7: fit the hardware time model `a + beta*b + gamma*C` (b running sequences, C context
tokens in all) from a real engine at the real scale. No weights can be fetched on the GPU machine,
so the model is *random* with the exact architecture of the seed's base model
(DeepSeek-R1-Distill-Qwen-14B = Qwen2: 48 layers, hidden 5120, 40 heads, 8 KV heads of 128,
intermediate 13824, vocab 152064, untied lm_head): its 4-bit weights are random int32 words
packed in AutoAWQ GEMM layout (group 128, the layout of recorder/tiny_model.py), drawn directly on
the GPU (no float model is quantised), scales ~0.004 so weights have std ~0.02. Step time does
not depend on the weights' values, only on shapes, kernels and KV-cache bytes.

Sub-commands:
  build    write the checkpoint (safetensors shards + index, config.json, tokenizer) to --dir;
  measure  start `LmdeployEngine(..., 'pytorch', quant_policy=Q, generation_overrides=
           {'ignore_eos': True})` and run a grid of (batch b, prompt tokens per sequence) cells:
           b random prompts of exactly that many tokens, prefill, then decode --new-tokens each;
           step time = time / tokens over the window in which all b sequences decode (from the
           chunk timestamps the adapter stamps), split into sub-windows; appends rows to
           OUT/steps.csv (quant_policy, batch, context_total, step_s, ...), raw chunk times to
           OUT/chunks-kvQ.json.gz, a summary to OUT/summary-kvQ.json;
  fit      least squares of a + beta*b + gamma*C over a CSV (numpy), alternatives with a b*C term
           and a per-sequence context term, and (with --write) the profile YAML + CSV copy.

The measuring and fitting logic (grid, decode window, least squares, calibration points) lives in
recorder/profiling/, shared with `aimo profile measure` (any model); this script keeps the
14B-specific build, grid choice and notes.

Device command (docs/gpu-notes.md, "14B step-latency profile"): build, then measure with
quant_policy 8 and 0 in separate processes (each frees its KV cache on exit), both under one
deadline (`--until`, epoch seconds): a cell whose estimated cost does not fit is skipped.
`measure --fake` dry-runs the measuring logic on CPU against tests/helpers/fake_lmdeploy.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gzip
import json
import logging
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from recorder import profiling as sl  # noqa: E402 - after the path set-up

log = logging.getLogger("profile14b")


def installed_fake_lmdeploy(step_s: float = 0.002):  # type: ignore[no-untyped-def]
    """`--fake`: the lmdeploy test double (tests/helpers/fake_lmdeploy.py) as `lmdeploy` for a
    block; a dev script's CPU dry run, so it may reach into tests/ (product code does not)."""
    sys.path.insert(0, str(REPO / "tests" / "helpers"))
    from fake_lmdeploy import installed_fake_lmdeploy as install  # type: ignore[import-not-found]

    return install(step_s=step_s)

AWQ_ORDER = (0, 2, 4, 6, 1, 3, 5, 7)  # nibble i holds column 8c + AWQ_ORDER[i] (tiny_model.py)
GROUP = 128
ZERO_WORD = -2004318072  # 0x88888888: every packed zero point = 8 (values (q-8)*scale)
SPECIALS = {151643: "<|endoftext|>", 151644: "<|im_start|>", 151645: "<|im_end|>"}

# (batch, prompt tokens per sequence), in order of priority: recorder/profiling/'s grids
# ("full" for quant_policy 8, "kv0" for 0; b*ctx a multiple of 8192 or b < 16).
GRID_KV8 = [(c.batch, c.prompt_tokens) for c in sl.GRIDS["full"]]
GRID_KV0 = [(c.batch, c.prompt_tokens) for c in sl.GRIDS["kv0"]]


# ------------------------------------------------------------------------------------------ build


def qwen2_14b_shape() -> dict[str, int]:
    return {"hidden": 5120, "layers": 48, "heads": 40, "kv_heads": 8, "head_dim": 128,
            "intermediate": 13824, "vocab": 152064}


def _proj_dims(s: dict[str, int]) -> dict[str, tuple[int, int]]:
    """torch [out, in] of the seven projections."""
    h, hd = s["hidden"], s["head_dim"]
    return {
        "self_attn.q_proj": (s["heads"] * hd, h),
        "self_attn.k_proj": (s["kv_heads"] * hd, h),
        "self_attn.v_proj": (s["kv_heads"] * hd, h),
        "self_attn.o_proj": (h, s["heads"] * hd),
        "mlp.gate_proj": (s["intermediate"], h),
        "mlp.up_proj": (s["intermediate"], h),
        "mlp.down_proj": (h, s["intermediate"]),
    }


def random_awq(out_f: int, in_f: int, gen: Any, device: str) -> tuple[Any, Any, Any]:
    """Random AutoAWQ GEMM tensors for a torch [out, in] layer: qweight int32 [in, out/8] of
    random words (every nibble uniform 0..15), qzeros all 8, scales fp16 [in/128, out] in
    [0.003, 0.006] (weights (q-8)*scale: std ~0.02)."""
    import torch

    if in_f % GROUP or out_f % 8:
        raise ValueError(f"AWQ needs in % {GROUP} == 0 and out % 8 == 0, got [{out_f}, {in_f}]")
    qweight = torch.randint(-(2**31), 2**31, (in_f, out_f // 8), dtype=torch.int64,
                            device=device, generator=gen).to(torch.int32)
    qzeros = torch.full((in_f // GROUP, out_f // 8), ZERO_WORD, dtype=torch.int32, device=device)
    scales = (torch.rand((in_f // GROUP, out_f), device=device, generator=gen) * 0.003
              + 0.003).to(torch.float16)
    return qweight, qzeros, scales


def unpack_awq(qweight: Any, qzeros: Any, scales: Any) -> Any:
    """Float weight [out, in] the tensors stand for (for the self-check): (q - zero) * scale."""
    import torch

    def nibbles(p: Any) -> Any:
        rows, cols = p.shape
        out = torch.zeros((rows, cols, 8), dtype=torch.int64)
        p64 = p.to(torch.int64) & 0xFFFFFFFF
        for i, col in enumerate(AWQ_ORDER):
            out[:, :, col] = (p64 >> (4 * i)) & 0xF
        return out.reshape(rows, cols * 8)

    q, z = nibbles(qweight.cpu()).float(), nibbles(qzeros.cpu()).float()
    g = torch.arange(q.shape[0]) // GROUP
    return ((q - z[g]) * scales.cpu().float()[g]).T


def write_tokenizer(out: Path, vocab_size: int) -> None:
    """A byte-level BPE tokenizer with exactly `vocab_size` ids and no merges: ids 0..255 are the
    256 byte symbols (so N ASCII characters encode to N tokens), the rest are distinct 2-3 symbol
    strings (decodable to bytes), Qwen's three special tokens at their ids."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers

    alpha = sorted(pre_tokenizers.ByteLevel.alphabet())
    assert len(alpha) == 256
    vocab: dict[str, int] = {}
    for i in range(vocab_size):
        if i in SPECIALS:
            tok = SPECIALS[i]
        elif i < 256:
            tok = alpha[i]
        elif i - 256 < 65536:
            k = i - 256
            tok = alpha[k // 256] + alpha[k % 256]
        else:
            k = i - 256 - 65536
            tok = alpha[k // 65536] + alpha[(k // 256) % 256] + alpha[k % 256]
        vocab[tok] = i
    assert len(vocab) == vocab_size
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens(list(SPECIALS.values()))
    tok.save(str(out / "tokenizer.json"))
    (out / "tokenizer_config.json").write_text(json.dumps({
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": None,
        "eos_token": "<|im_end|>",
        "pad_token": "<|endoftext|>",
        "unk_token": None,
        "model_max_length": 131072,
        "chat_template": "{{ messages[-1]['content'] }}",
        "added_tokens_decoder": {
            str(i): {"content": t, "special": True, "lstrip": False, "rstrip": False,
                     "normalized": False, "single_word": False}
            for i, t in SPECIALS.items()
        },
    }, indent=2))


def model_config(s: dict[str, int]) -> dict[str, Any]:
    return {
        "architectures": ["Qwen2ForCausalLM"],
        "model_type": "qwen2",
        "hidden_size": s["hidden"],
        "intermediate_size": s["intermediate"],
        "num_hidden_layers": s["layers"],
        "num_attention_heads": s["heads"],
        "num_key_value_heads": s["kv_heads"],
        "head_dim": s["head_dim"],
        "hidden_act": "silu",
        "max_position_embeddings": 131072,
        "max_window_layers": s["layers"],
        "rms_norm_eps": 1e-5,
        "rope_theta": 1000000.0,
        "sliding_window": None,
        "use_sliding_window": False,
        "tie_word_embeddings": False,
        "torch_dtype": "float16",
        "use_cache": True,
        "vocab_size": s["vocab"],
        "bos_token_id": 151643,
        "eos_token_id": 151643,
        "attention_dropout": 0.0,
        "initializer_range": 0.02,
        "quantization_config": {"quant_method": "awq", "bits": 4, "group_size": GROUP,
                                "version": "gemm", "zero_point": True},
    }


def build(out: Path, shape: dict[str, int], layers_per_shard: int, device: str) -> dict[str, Any]:
    import torch
    from safetensors.torch import save_file

    t0 = time.monotonic()
    out.mkdir(parents=True, exist_ok=True)
    write_tokenizer(out, shape["vocab"])
    (out / "config.json").write_text(json.dumps(model_config(shape), indent=2))
    (out / "generation_config.json").write_text(json.dumps(
        {"bos_token_id": 151643, "eos_token_id": [151645, 151643], "do_sample": True}, indent=2))
    gen = torch.Generator(device=device)
    gen.manual_seed(0)
    h, dims = shape["hidden"], _proj_dims(shape)
    n_layers = shape["layers"]
    shards: list[list[int | str]] = [["embed"]]
    shards += [list(range(i, min(i + layers_per_shard, n_layers)))
               for i in range(0, n_layers, layers_per_shard)]
    weight_map: dict[str, str] = {}
    total = 0
    for si, members in enumerate(shards):
        t: dict[str, Any] = {}
        for m in members:
            if m == "embed":
                for name in ("model.embed_tokens.weight", "lm_head.weight"):
                    t[name] = (torch.randn((shape["vocab"], h), device=device, generator=gen)
                               * 0.02).to(torch.float16)
                t["model.norm.weight"] = torch.ones(h, dtype=torch.float16, device=device)
                continue
            p = f"model.layers.{m}."
            t[p + "input_layernorm.weight"] = torch.ones(h, dtype=torch.float16, device=device)
            t[p + "post_attention_layernorm.weight"] = torch.ones(h, dtype=torch.float16,
                                                                 device=device)
            for name, (o, i) in dims.items():
                qw, qz, sc = random_awq(o, i, gen, device)
                t[p + name + ".qweight"], t[p + name + ".qzeros"], t[p + name + ".scales"] = (
                    qw, qz, sc)
            for name in ("q_proj", "k_proj", "v_proj"):
                t[p + f"self_attn.{name}.bias"] = torch.zeros(
                    dims[f"self_attn.{name}"][0], dtype=torch.float16, device=device)
        fname = f"model-{si + 1:05d}-of-{len(shards):05d}.safetensors"
        cpu = {k: v.contiguous().cpu() for k, v in t.items()}
        del t
        save_file(cpu, str(out / fname), metadata={"format": "pt"})
        for k, v in cpu.items():
            weight_map[k] = fname
            total += v.numel() * v.element_size()
    (out / "model.safetensors.index.json").write_text(json.dumps(
        {"metadata": {"total_size": total}, "weight_map": weight_map}, indent=1))
    if device.startswith("cuda"):
        torch.cuda.empty_cache()
    info = {"dir": str(out), "bytes": total, "shards": len(shards), "shape": shape,
            "build_s": round(time.monotonic() - t0, 2)}
    (out / "random_model.json").write_text(json.dumps(info, indent=2))
    return info


# ---------------------------------------------------------------------------------------- measure


def measure(args: argparse.Namespace) -> int:
    """Run the grid on one engine (recorder.profiling.measure_grid) and save its progress:
    OUT/summary-kvQ.json after every cell, rows appended to OUT/steps.csv, raw chunk times in
    OUT/chunks-kvQ.json.gz."""
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    qp = args.quant_policy
    summary_path = out / f"summary-kv{qp}.json"
    summary: dict[str, Any] = {"quant_policy": qp, "started": time.strftime("%Y-%m-%d %H:%M:%S"),
                               "cells": [], "skipped": []}

    def save() -> None:
        summary_path.write_text(json.dumps(summary, indent=1, default=str))

    if time.time() > args.until - args.min_engine_s:
        summary["skipped_all"] = "no time left for an engine start"
        save()
        log.warning("kv%s: no time left (%.0f s) for an engine start", qp, args.until - time.time())
        return 0
    with contextlib.ExitStack() as stack:
        if args.fake:
            stack.enter_context(installed_fake_lmdeploy(step_s=0.002))
        else:
            import torch

            summary["gpu"] = torch.cuda.get_device_name(0)
            summary["torch"] = torch.__version__
        return _measure_on_engine(args, summary, save)


def _measure_on_engine(args: argparse.Namespace, summary: dict[str, Any],
                       save: Callable[[], None]) -> int:
    from solver.engines.lmdeploy_engine import LmdeployEngine

    out: Path = args.out
    qp = args.quant_policy
    t0 = time.monotonic()
    engine = LmdeployEngine(
        args.model, "pytorch", tp=1, quant_policy=qp, model_format="awq", max_batch=32,
        cache_max_entry_count=args.cache, enable_prefix_caching=False,
        tokenizer=sl.ContentOnly(), generation_overrides={"ignore_eos": True},
    )
    summary.update(startup_s=round(engine.startup_s, 2), backend=engine.backend,
                   fell_back=engine.fell_back, run_config=engine.run_config())
    summary["lmdeploy"] = engine.run_config().get("lmdeploy_version")
    log.info("kv%s engine up in %.1f s (backend %s)", qp, engine.startup_s, engine.backend)
    save()
    grid = sl.parse_cells(args.cells) if args.cells else sl.grid_cells(
        "full" if qp == 8 else "kv0")
    csv_path = out / "steps.csv"
    raw: list[dict[str, Any]] = []
    gpu = summary.get("gpu", "fake")

    def on_event(ev: sl.CellEvent) -> None:
        b, ctx = ev.cell.batch, ev.cell.prompt_tokens
        if ev.status == "skipped":
            summary["skipped"].append({"batch": b, "ctx": ctx, "est_s": round(ev.est_s, 1),
                                       "left_s": round(ev.left_s, 1)})
        elif ev.status == "error" or ev.result is None:
            summary["cells"].append({"batch": b, "ctx": ctx, "kind": ev.kind, "error": ev.error})
        else:
            r = ev.result
            raw.append({"quant_policy": qp, "kind": ev.kind, "batch": b, "ctx": ctx,
                        "prompt_tokens": sorted(set(r.prompt_tokens)),
                        "chunks": {str(i): list(v) for i, v in r.raw.items()}})
            summary["cells"].append(r.summary())
            if ev.kind == "cell":
                sl.write_rows_csv(csv_path, sl.step_rows(r, qp, gpu), append=True)
            with gzip.open(out / f"chunks-kv{qp}.json.gz", "wt") as gz:
                json.dump(raw, gz)
        log.info("kv%s %s, %.0f s left", qp, sl.describe_event(ev), args.until - time.time())
        save()

    async def go() -> None:
        try:
            await sl.measure_grid(engine, grid, new_tokens=args.new_tokens,
                                  prompts=sl.LetterPrompts(), until=args.until,
                                  prefill_guess=args.prefill_guess, on_event=on_event)
        finally:
            await engine.close()

    asyncio.run(go())
    summary["measure_s"] = round(time.monotonic() - t0, 1)
    save()
    return 0


# -------------------------------------------------------------------------------------------- fit


def fit(args: argparse.Namespace) -> int:
    """Print the fits; with --write, save the profile YAML and copy the CSV next to it."""
    import datetime as dt
    import shutil

    report: dict[int, dict[str, sl.ModelFit]] = {}
    all_rows = sl.read_rows_csv(args.csv)
    for qp in sorted({r.quant_policy for r in all_rows}, reverse=True):
        y, b, c = sl.rows_arrays([r for r in all_rows if r.quant_policy == qp])
        report[qp] = sl.fit_models(y, b, c)
        print(f"== quant_policy {qp}: {len(y)} rows")
        for name, r in report[qp].items():
            print(f"  {name}: " + "  ".join(f"{k}={v:.4g}" for k, v in r.coef.items())
                  + f"  | rel err {r.rel_error.render()}")
    if args.json:
        Path(args.json).write_text(json.dumps(
            {qp: {k: m.to_dict() for k, m in fits.items()} for qp, fits in report.items()},
            indent=2))
    if not args.write:
        return 0

    from data import HARDWARE_DIR
    from core.hardware.profile import HardwareProfile, Provenance, load_profile, save_profile
    from core.hardware.calibrate import SEED_SAMPLING

    qp = args.quant_policy
    rows = [r for r in all_rows if r.quant_policy == qp]
    # the core's one fit, linear (the notes below describe the linear model's residuals; a knee
    # where the held-out error says so: `aimo profile fit --csv ... --base NAME`)
    core_fit = sl.fit_step_model(rows, knee="off")
    a, beta, gamma = core_fit.a, core_fit.beta, core_fit.gamma
    if min(a, beta, gamma) <= 0:
        raise SystemExit(f"fit gave a non-positive coefficient: {core_fit.model.describe()}")
    gpu = rows[0].gpu
    cells = {(r.batch, r.prompt_tokens) for r in rows}
    points = sl.calibration_points(rows)
    alt = report[qp]
    e = core_fit.rel_error
    kv0 = report.get(0, {}).get(sl.LINEAR)
    base = load_profile("l4x4-14b-w4kv8")
    notes = (
        f"Fit error of a+beta*b+gamma*C over {len(rows)} sub-window rows ({len(cells)} cells): "
        f"relative {e.render()}. The residuals are all in the batch term, not in C: per "
        f"batch size gamma is {alt['a_b+gamma_b*C per batch size'].coef['gamma_b1']:.3g} "
        f"(b=1) .. {alt['a_b+gamma_b*C per batch size'].coef['gamma_b32']:.3g} (b=32), so a "
        "b*C interaction is negligible (+delta*b*C: "
        f"{alt['+delta*b*C'].rel_error.render()}); but the step is flat in b from 4 to 16, "
        "~0.5 ms slower at b=1 and ~2 ms slower at b=32 than at 16 (per-batch-size a_b + one "
        f"gamma: {alt['a_b per batch size+gamma*C'].rel_error.render()}; a b^2 term: "
        f"{alt['+beta2*b^2'].rel_error.render()}; a hinge a+beta16*max(0,b-16)+gamma*C, "
        f"beta16={alt['a+beta16*max(0,b-16)+gamma*C'].coef['beta16']:.3g}: "
        f"{alt['a+beta16*max(0,b-16)+gamma*C'].rel_error.render()}). The linear beta "
        "averages that convex batch term: it under-predicts b=1 by 4-5% and b=32 by 1-5%, "
        "and over-predicts b=8..16 by 2-4%. "
        f"Shape against {base.name} (4xL4 TurboMind, published figures): gamma/a "
        f"{gamma / a:.3g} vs {base.gamma / base.a:.3g} per token, beta/a {beta / a:.3g} vs "
        f"{base.beta / base.a:.3g} per sequence (that profile's beta is an assumption, 20% of "
        "the step at b=15). "
    )
    if kv0 is not None:
        k = kv0.coef
        notes += (
            f"quant_policy 0 (16-bit KV) on the same engine: a={k['a']:.4g}, "
            f"beta={k['beta']:.4g}, gamma={k['gamma']:.4g} ({kv0.rel_error.render()}): "
            f"the int8 KV cache costs {gamma / k['gamma']:.2f}x the 16-bit one per context "
            "token in lmdeploy's PyTorch engine here (16-bit KV reads near HBM bandwidth, the "
            "int8 kernel does not), the opposite of TurboMind on L4. "
        )
    notes += (
        f"prefill_s_per_token = {args.prefill_s_per_token:g}: time to the last first token over "
        "prompt tokens of cells with >= 16k prompt tokens in all (7.5e-5 at 2k-token prompts, "
        "8.1e-5 at 8k, 8.9e-5 at 16k). "
        f"startup_s = {args.startup_s:g}: pipeline build with warm-up (weights read from "
        "/dev/shm, 10 GB) plus the first request's ~5.7 s stall; loading from disk adds its "
        "read time. max_batch 32 as the seed's engine config. Caveats: random weights (step "
        "time depends on shapes, kernels and KV bytes, not on values; sampling "
        "top_p/min_p/repetition penalty and detokenisation included), one GPU (tp=1), "
        "PyTorch engine (TurboMind cannot run on this image)."
    )
    prof = HardwareProfile(
        name=args.name,
        description=(f"1x{gpu} (TP1), 14B Qwen2 shapes (random weights), lmdeploy PyTorch "
                     "engine, AWQ 4-bit weights, int8 KV cache (measured)"),
        a=a, beta=beta, gamma=gamma,
        prefill_s_per_token=args.prefill_s_per_token, startup_s=args.startup_s, max_batch=32,
        code_overlap="parallel", question_overhead_s=0.0, code_workers=4,
        provenance=Provenance(
            engine="lmdeploy pytorch", engine_version="0.18.0", gpu=f"1x{gpu}",
            quantization="awq-w4/kv8", sampling=SEED_SAMPLING,
            source=(f"measured on one {gpu} (lmdeploy 0.18.0 PyTorch engine, torch "
                    "2.11.0+cu130): random-weight Qwen2 with DeepSeek-R1-Distill-Qwen-14B's "
                    "shapes, AWQ W4 group 128 (GEMM), quant_policy 8; "
                    "scripts/device_profile_14b.py; rows in "
                    f"data/hardware/measurements/{args.name}.csv; docs/gpu-notes.md"),
            date=args.date or dt.date.today().isoformat(),
            method=("per cell (b sequences of equal random prompts, ignore_eos, 128 new "
                    "tokens): step = time / tokens over the window in which all b sequences "
                    "decode, from the LmdeployEngine adapter's chunk timestamps, in 4 "
                    f"sub-windows (C at each midpoint); {len(cells)} cells, b in "
                    f"{{{', '.join(str(x) for x in sorted({k[0] for k in cells}))}}}, prompts "
                    "512-16384 tokens, C 0.5k-266k; least squares on relative error (numpy) "
                    "of a + beta*b + gamma*C, coefficients rounded to 4 digits"),
            notes=notes),
        calibration=tuple(points),
    )
    path = save_profile(prof, HARDWARE_DIR / f"{args.name}.yaml")
    load_profile(args.name)
    dest = HARDWARE_DIR / "measurements" / f"{args.name}.csv"
    dest.parent.mkdir(parents=True, exist_ok=True)
    if args.csv.resolve() != dest.resolve():
        shutil.copyfile(args.csv, dest)
    print(f"wrote {path} and {dest}")
    return 0


# ------------------------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build", help="write the random 14B AWQ checkpoint")
    b.add_argument("--dir", type=Path, required=True)
    b.add_argument("--device", default="cuda")
    b.add_argument("--layers-per-shard", type=int, default=4)
    b.add_argument("--tiny", action="store_true", help="a 2-layer narrow model (for tests)")
    m = sub.add_parser("measure", help="step latency grid on one engine")
    m.add_argument("--model", required=True)
    m.add_argument("--out", type=Path, default=Path(os.environ.get("OUT", "out/profile14b")))
    m.add_argument("--quant-policy", type=int, default=8)
    m.add_argument("--until", type=float, default=time.time() + 600,
                   help="epoch seconds by which this process must be done")
    m.add_argument("--min-engine-s", type=float, default=90.0)
    m.add_argument("--new-tokens", type=int, default=128)
    m.add_argument("--cache", type=float, default=0.9, help="cache_max_entry_count")
    m.add_argument("--prefill-guess", type=float, default=1.2e-4)
    m.add_argument("--cells", default="", help="e.g. 1x512,8x4096 (default: the grid)")
    m.add_argument("--fake", action="store_true")
    f = sub.add_parser("fit", help="fit the step model to a CSV")
    f.add_argument("csv", type=Path)
    f.add_argument("--quant-policy", type=int, default=8)
    f.add_argument("--json", default="")
    f.add_argument("--write", action="store_true",
                   help="save data/hardware/NAME.yaml, copy the CSV to data/hardware/measurements")
    f.add_argument("--name", default="h200-14b-w4kv8")
    f.add_argument("--date", default="")
    f.add_argument("--startup-s", type=float, default=77.0)
    f.add_argument("--prefill-s-per-token", type=float, default=8.0e-5)
    args = ap.parse_args(argv)
    # log to stderr only (the device command redirects it to OUT/kv8.log, OUT/kv0.log: OUT holds
    # at most 8 files); an own handler, since lmdeploy reconfigures the root logger
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False
    if args.cmd == "build":
        shape = qwen2_14b_shape()
        if args.tiny:
            shape.update(hidden=256, layers=2, heads=2, kv_heads=1, intermediate=512)
        info = build(args.dir, shape, args.layers_per_shard, args.device)
        print(json.dumps(info))
        return 0
    if args.cmd == "measure":
        return measure(args)
    return fit(args)


if __name__ == "__main__":
    raise SystemExit(main())
