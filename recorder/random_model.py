"""A random-weight Qwen2 checkpoint with a real model's shapes, for timing an engine on a GPU that
cannot fetch weights (`aimo profile build-random`, docs/hardware.md).

Step time depends on shapes, kernels and KV-cache bytes, not on the weights' values, so the
model is random with the exact architecture of the seed's base model (DeepSeek-R1-Distill-Qwen-14B
= Qwen2: 48 layers, hidden 5120, 40 heads, 8 KV heads of 128, intermediate 13824, vocab 152064,
untied lm_head). Its 4-bit weights are random int32 words in AutoAWQ GEMM layout (group 128, the
layout of `recorder.tiny_model`), drawn directly on the device (no float model is quantised),
scales in [0.003, 0.006] so the weights have std ~0.02. The tokenizer is byte-level BPE without
merges (N ASCII characters are N tokens) with Qwen's special tokens at their ids; the chat
template is the bare last message. Moved here from the device script that measured the shipped
`h200-14b-w4kv8` profile, unchanged in output.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from aimo.recorder.tiny_model import AWQ_ORDER, GROUP, PROJECTIONS

ZERO_WORD = -2004318072  # 0x88888888: every packed zero point is 8 (weights (q - 8) * scale)
SPECIALS = {151643: "<|endoftext|>", 151644: "<|im_start|>", 151645: "<|im_end|>"}


@dataclass(frozen=True)
class RandomShape:
    """A Qwen2 architecture (defaults: DeepSeek-R1-Distill-Qwen-14B's)."""

    hidden: int = 5120
    layers: int = 48
    heads: int = 40
    kv_heads: int = 8
    head_dim: int = 128
    intermediate: int = 13824
    vocab: int = 152064


SHAPES = {
    "14b": RandomShape(),
    # two narrow layers with the 14B's vocabulary and tokenizer (tests, a quick engine check)
    "tiny": replace(RandomShape(), hidden=256, layers=2, heads=2, kv_heads=1, intermediate=512),
}


def projection_dims(s: RandomShape) -> dict[str, tuple[int, int]]:
    """torch [out, in] of the seven projections of one layer."""
    h, hd = s.hidden, s.head_dim
    dims = (
        (s.heads * hd, h), (s.kv_heads * hd, h), (s.kv_heads * hd, h), (h, s.heads * hd),
        (s.intermediate, h), (s.intermediate, h), (h, s.intermediate),
    )
    return dict(zip(PROJECTIONS, dims))


def random_awq(out_f: int, in_f: int, gen: Any, device: str) -> tuple[Any, Any, Any]:
    """Random AutoAWQ GEMM tensors for a torch [out, in] layer: qweight int32 [in, out/8] of
    random words (every nibble uniform 0..15), qzeros all 8, scales fp16 [in/128, out]."""
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
    """The float weight [out, in] the tensors stand for, (q - zero) * scale (for checks)."""
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
    256 byte symbols, the rest distinct 2-3 symbol strings, Qwen's special tokens at their ids."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers

    alpha = sorted(pre_tokenizers.ByteLevel.alphabet())
    vocab: dict[str, int] = {}
    for i in range(vocab_size):
        if i in SPECIALS:
            symbol = SPECIALS[i]
        elif i < 256:
            symbol = alpha[i]
        elif i - 256 < 65536:
            k = i - 256
            symbol = alpha[k // 256] + alpha[k % 256]
        else:
            k = i - 256 - 65536
            symbol = alpha[k // 65536] + alpha[(k // 256) % 256] + alpha[k % 256]
        vocab[symbol] = i
    if len(alpha) != 256 or len(vocab) != vocab_size:
        raise ValueError(f"tokenizer: {len(alpha)} byte symbols, {len(vocab)} of {vocab_size} ids")
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


def model_config(s: RandomShape) -> dict[str, Any]:
    """config.json of the checkpoint (AWQ 4-bit GEMM, group 128, fp16)."""
    return {
        "architectures": ["Qwen2ForCausalLM"],
        "model_type": "qwen2",
        "hidden_size": s.hidden,
        "intermediate_size": s.intermediate,
        "num_hidden_layers": s.layers,
        "num_attention_heads": s.heads,
        "num_key_value_heads": s.kv_heads,
        "head_dim": s.head_dim,
        "hidden_act": "silu",
        "max_position_embeddings": 131072,
        "max_window_layers": s.layers,
        "rms_norm_eps": 1e-5,
        "rope_theta": 1000000.0,
        "sliding_window": None,
        "use_sliding_window": False,
        "tie_word_embeddings": False,
        "torch_dtype": "float16",
        "use_cache": True,
        "vocab_size": s.vocab,
        "bos_token_id": 151643,
        "eos_token_id": 151643,
        "attention_dropout": 0.0,
        "initializer_range": 0.02,
        "quantization_config": {"quant_method": "awq", "bits": 4, "group_size": GROUP,
                                "version": "gemm", "zero_point": True},
    }


def build_random_model(out: Path, shape: RandomShape = RandomShape(), *,
                       layers_per_shard: int = 4, device: str = "cuda") -> dict[str, Any]:
    """Write the checkpoint (safetensors shards + index, config, tokenizer) to `out`, seeded (the
    same bytes every time on one device kind); returns what was written (also in
    `random_model.json`)."""
    import torch
    from safetensors.torch import save_file

    if layers_per_shard < 1:
        raise ValueError(f"layers_per_shard: must be >= 1, got {layers_per_shard}")
    t0 = time.monotonic()
    out.mkdir(parents=True, exist_ok=True)
    write_tokenizer(out, shape.vocab)
    (out / "config.json").write_text(json.dumps(model_config(shape), indent=2))
    (out / "generation_config.json").write_text(json.dumps(
        {"bos_token_id": 151643, "eos_token_id": [151645, 151643], "do_sample": True}, indent=2))
    gen = torch.Generator(device=device)
    gen.manual_seed(0)
    h, dims = shape.hidden, projection_dims(shape)
    shards: list[list[int | str]] = [["embed"]]
    shards += [list(range(i, min(i + layers_per_shard, shape.layers)))
               for i in range(0, shape.layers, layers_per_shard)]
    weight_map: dict[str, str] = {}
    total = 0
    for si, members in enumerate(shards):
        t: dict[str, Any] = {}
        for m in members:
            if m == "embed":
                for name in ("model.embed_tokens.weight", "lm_head.weight"):
                    t[name] = (torch.randn((shape.vocab, h), device=device, generator=gen)
                               * 0.02).to(torch.float16)
                t["model.norm.weight"] = torch.ones(h, dtype=torch.float16, device=device)
                continue
            p = f"model.layers.{m}."
            for norm in ("input_layernorm", "post_attention_layernorm"):
                t[p + norm + ".weight"] = torch.ones(h, dtype=torch.float16, device=device)
            for name, (o, i) in dims.items():
                t[p + name + ".qweight"], t[p + name + ".qzeros"], t[p + name + ".scales"] = (
                    random_awq(o, i, gen, device))
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
    info = {"dir": str(out), "bytes": total, "shards": len(shards), "shape": asdict(shape),
            "build_s": round(time.monotonic() - t0, 2)}
    (out / "random_model.json").write_text(json.dumps(info, indent=2))
    return info
