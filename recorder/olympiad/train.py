"""Train the tiny reasoning model: a small Qwen2ForCausalLM with its own tokenizer, on the
generated olympiad solutions (recorder/olympiad/problems.py), in a few minutes on one GPU.

Why a model of our own: no weights can be downloaded on the GPU machine, and recordings are only
worth replaying if the model is right often but not always, with varied lengths, so that voting
and early stopping matter. The bundled problem set's questions are excluded from training.

Run: `python -m aimo.recorder.olympiad.train --out DIR [--minutes 4] [--device cuda]`; it writes an
fp16 Hugging Face checkpoint (config, safetensors, tokenizer with the ChatML template) and
`train_log.json` (steps, tokens, loss curve, time). Needs torch and transformers (`[train]` extra).
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import math
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from aimo.recorder.olympiad.chat import Encoded, encode_examples, pad_batch, prompt_for
from aimo.recorder.olympiad.problems import (
    Problem,
    problem_set,
    solution,
    training_examples,
    worked_set,
)
from aimo.recorder.tiny_model import TinyQwen2, model_config, train_tokenizer

PROBLEM_SET_SEED = 2026  # data/problems/olympiad-50.csv = problem_set(50, PROBLEM_SET_SEED)
HELD_OUT = 50


@dataclass(frozen=True)
class TrainConfig:
    """Model shape and optimisation settings (defaults: the shipped model)."""

    shape: TinyQwen2 = TinyQwen2(hidden=512, layers=8, heads=8, kv_heads=8, intermediate=1408,
                                 vocab_target=1024, max_positions=16384)
    examples: int = 400_000
    max_len: int = 768
    batch: int = 192
    lr: float = 1.5e-3
    weight_decay: float = 0.1
    warmup: int = 100
    minutes: float = 4.0
    max_steps: int = 100_000
    seed: int = 0
    log_every: int = 50


def held_out_problems() -> list[Problem]:
    """The bundled problem set (never trained on)."""
    return problem_set(HELD_OUT, PROBLEM_SET_SEED)


def build_tokenizer(out: Path, cfg: TrainConfig) -> Any:
    """Train the BPE (digits split) on generated solutions and prompts; return the tokenizer."""
    from tokenizers import Tokenizer

    from aimo.core.policy.model import Prompts

    corpus = [f"{prompt_for(k, q)}{s}" for k, q, s in
              itertools.islice(training_examples(cfg.seed + 1), 20_000)]
    p = Prompts()
    corpus += [p.cot.system, p.cot.user_suffix, p.code.system, p.code.user_suffix] * 50
    train_tokenizer(out, cfg.shape.vocab_target, corpus, split_digits=True)
    return Tokenizer.from_file(str(out / "tokenizer.json"))


def special_ids(tokenizer: Any) -> tuple[int, int]:
    """(eos = <|im_end|>, pad = <|endoftext|>) token ids."""
    return tokenizer.token_to_id("<|im_end|>"), tokenizer.token_to_id("<|endoftext|>")


def make_model(cfg: TrainConfig, vocab: int, eos: int, pad: int) -> Any:
    """A randomly initialised Qwen2ForCausalLM of `cfg.shape` (fp32 master weights)."""
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    conf = model_config(cfg.shape, vocab, eos, pad, awq=False)
    conf.pop("architectures"), conf.pop("model_type"), conf.pop("torch_dtype")
    torch.manual_seed(cfg.seed)
    return Qwen2ForCausalLM(Qwen2Config(**conf, attn_implementation="sdpa"))


def lr_at(step: int, total: int, cfg: TrainConfig) -> float:
    """Linear warm-up, then cosine decay to 10% of the peak."""
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    frac = min(1.0, (step - cfg.warmup) / max(1, total - cfg.warmup))
    return cfg.lr * (0.1 + 0.45 * (1 + math.cos(math.pi * frac)))


def train_model(model: Any, data: Encoded, cfg: TrainConfig, device: str, pad: int,
                log: list[dict[str, float]]) -> dict[str, float]:
    """Train in place until `cfg.minutes` or `cfg.max_steps`; the step count is fixed after 20
    timed steps so the cosine schedule ends when the time does. Prints progress lines."""
    import torch

    model.to(device).train()
    cuda = device.startswith("cuda")
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, betas=(0.9, 0.95),
                            weight_decay=cfg.weight_decay, fused=cuda)
    rng = np.random.default_rng(cfg.seed)
    amp = torch.autocast("cuda", dtype=torch.bfloat16) if cuda else contextlib.nullcontext()
    total, t0, tokens, step = cfg.max_steps, time.monotonic(), 0, 0
    budget = 60.0 * cfg.minutes
    while step < total:
        ids, mask, labels = pad_batch(data, rng.integers(0, len(data), cfg.batch), pad)
        batch = {k: torch.from_numpy(v).to(device, non_blocking=True)
                 for k, v in (("input_ids", ids), ("attention_mask", mask), ("labels", labels))}
        for group in opt.param_groups:
            group["lr"] = lr_at(step, total, cfg)
        with amp:
            loss = model(**batch).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        tokens += int(mask.sum())
        step += 1
        if step == 20:  # fix the schedule's length from the measured step time
            per_step = (time.monotonic() - t0) / 20
            total = max(21, min(cfg.max_steps, int(budget / per_step)))
            print(f"step time {per_step * 1e3:.1f} ms → {total} steps in {cfg.minutes} min",
                  flush=True)
        if step % cfg.log_every == 0 or step == total:
            elapsed = time.monotonic() - t0
            log.append({"step": step, "loss": float(loss.item()), "s": round(elapsed, 2)})
            print(f"step {step}/{total} loss {loss.item():.4f} {tokens / elapsed:,.0f} tok/s "
                  f"{elapsed:.0f} s", flush=True)
        if time.monotonic() - t0 > budget * 1.15:  # the estimate was off: stop anyway
            break
    return {"steps": step, "tokens": tokens, "train_s": time.monotonic() - t0,
            "final_loss": float(loss.item())}


def eval_loss(model: Any, data: Encoded, device: str, pad: int, batch: int = 64) -> float:
    """Mean per-token loss on the answer tokens of `data`."""
    import torch

    model.to(device).eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for lo in range(0, len(data), batch):
            ids, mask, labels = pad_batch(data, range(lo, min(len(data), lo + batch)), pad)
            n = int((labels[:, 1:] != -100).sum())
            out = model(input_ids=torch.from_numpy(ids).to(device),
                        attention_mask=torch.from_numpy(mask).to(device),
                        labels=torch.from_numpy(labels).to(device))
            total += float(out.loss) * n
            count += n
    return total / max(1, count)


def held_out_set(tokenizer: Any, cfg: TrainConfig) -> Encoded:
    """Reference solutions of the bundled problems in both styles (for eval loss only)."""
    import random

    rng = random.Random(PROBLEM_SET_SEED)
    rows = [(kind, w.question, solution(w, kind, rng))
            for w in worked_set(HELD_OUT, PROBLEM_SET_SEED) for kind in ("cot", "code")]
    return encode_examples(tokenizer, rows, cfg.max_len)


def save_checkpoint(model: Any, out: Path, cfg: TrainConfig, vocab: int, eos: int,
                    pad: int) -> None:
    """fp16 safetensors + config.json + generation_config.json next to the tokenizer files."""
    import torch
    from safetensors.torch import save_file

    state = {k: v.detach().to("cpu", torch.float16).contiguous()
             for k, v in model.state_dict().items() if k != "lm_head.weight"}
    save_file(state, str(out / "model.safetensors"), metadata={"format": "pt"})
    (out / "config.json").write_text(json.dumps(model_config(cfg.shape, vocab, eos, pad,
                                                             awq=False), indent=2))
    (out / "generation_config.json").write_text(json.dumps(
        {"bos_token_id": pad, "eos_token_id": [eos, pad], "do_sample": True}, indent=2))


def run(out: Path, cfg: TrainConfig, device: str) -> dict[str, Any]:
    """Tokenizer, data, training, held-out loss, checkpoint; returns the log written."""
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    tokenizer = build_tokenizer(out, cfg)
    eos, pad = special_ids(tokenizer)
    vocab = tokenizer.get_vocab_size()
    exclude = {p.question for p in held_out_problems()}
    data = encode_examples(tokenizer, itertools.islice(training_examples(cfg.seed, exclude),
                                                       cfg.examples), cfg.max_len)
    held = held_out_set(tokenizer, cfg)
    lengths = np.diff(data.starts)
    print(f"{len(data):,} examples, tokens per example p50 {np.median(lengths):.0f} "
          f"max {lengths.max()}; vocab {vocab}; prep {time.monotonic() - t0:.1f} s", flush=True)
    model = make_model(cfg, vocab, eos, pad)
    n_params = sum(p.numel() for p in model.parameters())
    curve: list[dict[str, float]] = []
    stats = train_model(model, data, cfg, device, pad, curve)
    held_loss = eval_loss(model, held, device, pad)
    print(f"held-out loss {held_loss:.4f}", flush=True)
    save_checkpoint(model, out, cfg, vocab, eos, pad)
    log = {"config": asdict(cfg), "params": n_params, "vocab": vocab, "examples": len(data),
           "device": device, **stats, "held_out_loss": held_loss, "curve": curve,
           "total_s": time.monotonic() - t0}
    (out / "train_log.json").write_text(json.dumps(log, indent=2))
    return log


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, required=True, help="checkpoint directory to write")
    ap.add_argument("--minutes", type=float, default=TrainConfig.minutes)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--examples", type=int, default=TrainConfig.examples)
    ap.add_argument("--batch", type=int, default=TrainConfig.batch)
    ap.add_argument("--max-steps", type=int, default=TrainConfig.max_steps)
    ap.add_argument("--tiny", action="store_true",
                    help="a toy shape for a CPU check of the script (not a useful model)")
    a = ap.parse_args(argv)
    cfg = replace(TrainConfig(), minutes=a.minutes, examples=a.examples, batch=a.batch,
                  max_steps=a.max_steps)
    if a.tiny:
        cfg = replace(cfg, shape=TinyQwen2(hidden=128, layers=2, heads=2, kv_heads=2,
                                           intermediate=256, vocab_target=512,
                                           max_positions=1024), log_every=5, warmup=5)
    run(a.out, cfg, a.device)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
