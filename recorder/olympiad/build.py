"""Build the shipped tiny reasoning model end to end: train (fp16), AWQ-quantise, evaluate, export.

Run on the GPU machine: `python -m aimo.recorder.olympiad.build --out data/models/olympiad-tiny-awq
[--minutes 4]`. Writes the AWQ checkpoint lmdeploy loads into --out and `build_log.json` beside
it: training log, AWQ choices, held-out answer-token loss of the fp16, round-to-nearest and AWQ
weights, and greedy accuracy of the fp16 and AWQ weights on the bundled problems per prompt kind
(Hugging Face generate; the sampled accuracy through lmdeploy comes from the recording).
"""

from __future__ import annotations

import argparse
import copy
import itertools
import json
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from aimo.recorder.olympiad.awq import apply_awq, export_awq, quantise_in_place
from aimo.recorder.olympiad.chat import encode_examples, pad_batch, prompt_for
from aimo.recorder.olympiad.problems import Problem, training_examples
from aimo.recorder.olympiad.train import (
    TrainConfig,
    eval_loss,
    held_out_problems,
    held_out_set,
    run,
    special_ids,
)
from aimo.solver.extraction import box_value, boxed_contents, extract_code


def load_fp16(model_dir: Path, device: str) -> Any:
    """The trained checkpoint as a Qwen2ForCausalLM on `device` (fp32 for exact AWQ search)."""
    import torch
    from transformers import Qwen2ForCausalLM

    return Qwen2ForCausalLM.from_pretrained(str(model_dir), torch_dtype=torch.float32).to(device)


def calibration_batches(tokenizer: Any, n: int, device: str, pad: int, cfg: TrainConfig,
                        batch: int = 32) -> list[dict[str, Any]]:
    """`n` fresh training-distribution examples (seed 99), in padded batches on `device`."""
    import torch

    data = encode_examples(tokenizer, itertools.islice(training_examples(99), n), cfg.max_len)
    out = []
    for lo in range(0, len(data), batch):
        ids, mask, _ = pad_batch(data, range(lo, min(len(data), lo + batch)), pad)
        out.append({"input_ids": torch.from_numpy(ids).to(device),
                    "attention_mask": torch.from_numpy(mask).to(device)})
    return out


def greedy_accuracy(model: Any, model_dir: Path, problems: list[Problem], device: str,
                    max_new_tokens: int = 768) -> dict[str, Any]:
    """Greedy decoding of every problem in both prompt kinds: share whose first box is right, and
    (code) share whose Python block is present; mean completion tokens."""
    import torch
    from transformers import PreTrainedTokenizerFast

    tok = PreTrainedTokenizerFast(tokenizer_file=str(model_dir / "tokenizer.json"),
                                  eos_token="<|im_end|>", pad_token="<|endoftext|>",
                                  padding_side="left")
    model.eval()
    result: dict[str, Any] = {}
    for kind in ("cot", "code"):
        texts = [prompt_for(kind, p.question) for p in problems]
        enc = tok(texts, return_tensors="pt", padding=True, add_special_tokens=False).to(device)
        with torch.no_grad():
            gen = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False,
                                 eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
        completions = tok.batch_decode(gen[:, enc["input_ids"].shape[1]:],
                                       skip_special_tokens=True)
        right, has_code, lengths = 0, 0, []
        for p, text, row in zip(problems, completions, gen[:, enc["input_ids"].shape[1]:]):
            boxes = boxed_contents(text)  # the solver's exact (seed) extraction
            right += bool(boxes and box_value(boxes[0]) == p.answer)
            has_code += extract_code(text) is not None
            lengths.append(int((row != tok.pad_token_id).sum()))
        result[kind] = {"first_box_right": right / len(problems),
                        "code_block": has_code / len(problems),
                        "mean_tokens": sum(lengths) / len(lengths),
                        "example": completions[0][:600]}
    return result


def build(out: Path, work: Path, cfg: TrainConfig, device: str, calib: int,
          gen_tokens: int = 768) -> dict[str, Any]:
    """Train into `work`, quantise into `out`; returns (and writes) the build log."""
    from tokenizers import Tokenizer

    t0 = time.monotonic()
    train_log = run(work, cfg, device)
    tokenizer = Tokenizer.from_file(str(work / "tokenizer.json"))
    eos, pad = special_ids(tokenizer)
    held = held_out_set(tokenizer, cfg)
    problems = held_out_problems()
    model = load_fp16(work, device)
    losses = {"fp16": eval_loss(model, held, device, pad)}
    rtn = copy.deepcopy(model)
    quantise_in_place(rtn)
    losses["rtn_w4"] = eval_loss(rtn, held, device, pad)
    del rtn
    accuracy = {"fp16": greedy_accuracy(model, work, problems, device, gen_tokens)}
    t1 = time.monotonic()
    choices = apply_awq(model, calibration_batches(tokenizer, calib, device, pad, cfg))
    losses["awq_fp"] = eval_loss(model, held, device, pad)  # folded scales: same function
    size = export_awq(model, work, out)
    quantise_in_place(model)
    losses["awq_w4"] = eval_loss(model, held, device, pad)
    accuracy["awq_w4"] = greedy_accuracy(model, work, problems, device, gen_tokens)
    log = {"train": {k: v for k, v in train_log.items() if k != "curve"},
           "curve": train_log["curve"], "held_out_loss": losses, "greedy": accuracy,
           "awq": {"calibration_examples": calib, "search_s": time.monotonic() - t1,
                   "choices": [asdict(c) for c in choices]},
           "weights_bytes": size, "total_s": time.monotonic() - t0}
    (out / "build_log.json").write_text(json.dumps(log, indent=2))
    print(json.dumps({"held_out_loss": losses, "weights_bytes": size,
                      "greedy": {k: {kind: {m: v[kind][m] for m in ("first_box_right",
                                                                     "code_block",
                                                                     "mean_tokens")}
                                         for kind in ("cot", "code")}
                                 for k, v in accuracy.items()}}, indent=1), flush=True)
    return log


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, required=True, help="AWQ checkpoint directory to write")
    ap.add_argument("--work", type=Path, default=Path("/tmp/olympiad-fp16"),
                    help="where the fp16 checkpoint is trained")
    ap.add_argument("--minutes", type=float, default=TrainConfig.minutes)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--calib", type=int, default=256, help="calibration examples for AWQ")
    ap.add_argument("--examples", type=int, default=TrainConfig.examples)
    ap.add_argument("--batch", type=int, default=TrainConfig.batch)
    ap.add_argument("--tiny", action="store_true", help="a toy shape for a CPU check")
    a = ap.parse_args(argv)
    cfg = replace(TrainConfig(), minutes=a.minutes, examples=a.examples, batch=a.batch)
    if a.tiny:
        from aimo.recorder.tiny_model import TinyQwen2

        cfg = replace(cfg, shape=TinyQwen2(hidden=128, layers=2, heads=2, kv_heads=2,
                                           intermediate=256, vocab_target=512,
                                           max_positions=2048), log_every=5, warmup=5)
    build(a.out, a.work, cfg, a.device, a.calib, 24 if a.tiny else 768)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
