"""A tiny random Qwen2 checkpoint, AWQ 4-bit packed, built on the spot for GPU smoke runs.

Why: the GPU machine has no network, and the real engine path (lmdeploy loading an AutoAWQ
checkpoint, int8 KV cache, streaming, aborts, recording) can be exercised with any model of the
right format. Its text is gibberish; only the engine path matters.

Format (as seen working with lmdeploy 0.18's PyTorch engine, shared/device/README.md): the seven
projections of each layer in AutoAWQ "GEMM" layout (per layer with torch weight [out, in]:
`qweight` int32 [in, out/8], `qzeros` int32 [in/128, out/8], `scales` fp16 [in/128, out]; 8
nibbles an int32, nibble i holding column 8c + AWQ_ORDER[i]); embeddings, norms and biases fp16;
tied embeddings (no lm_head); a byte-level BPE tokenizer trained on local text with a ChatML
chat template.

numpy only at import; `tokenizers` and `safetensors` (present on the GPU image) are imported
inside `build_tiny_qwen2`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

AWQ_ORDER = (0, 2, 4, 6, 1, 3, 5, 7)
GROUP = 128
PROJECTIONS = (
    "self_attn.q_proj",
    "self_attn.k_proj",
    "self_attn.v_proj",
    "self_attn.o_proj",
    "mlp.gate_proj",
    "mlp.up_proj",
    "mlp.down_proj",
)
SPECIAL_TOKENS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>")
CHATML_TEMPLATE = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content']"
    " + '<|im_end|>' + '\\n' }}{% endfor %}{% if add_generation_prompt %}"
    "{{ '<|im_start|>assistant\\n' }}{% endif %}"
)


@dataclass(frozen=True)
class TinyQwen2:
    """Shape of the model (defaults: the one seen working on the GPU machine)."""

    hidden: int = 256
    layers: int = 4
    heads: int = 4
    kv_heads: int = 4
    intermediate: int = 512
    vocab_target: int = 1024
    max_positions: int = 65536
    seed: int = 0

    @property
    def head_dim(self) -> int:
        return self.hidden // self.heads


def _pack_nibbles(q: np.ndarray) -> np.ndarray:
    """[rows, cols] values 0..15 -> int32 [rows, cols/8], nibble i = column 8c + AWQ_ORDER[i]."""
    rows, cols = q.shape
    if cols % 8:
        raise ValueError(f"AWQ packing needs a multiple of 8 columns, got {cols}")
    q = q.astype(np.uint32).reshape(rows, cols // 8, 8)
    packed = np.zeros((rows, cols // 8), np.uint32)
    for i, col in enumerate(AWQ_ORDER):
        packed |= q[:, :, col] << np.uint32(4 * i)
    return packed.view(np.int32)


def _unpack_nibbles(packed: np.ndarray) -> np.ndarray:
    p = packed.view(np.uint32)
    rows, groups = p.shape
    out = np.zeros((rows, groups, 8), np.uint8)
    for i, col in enumerate(AWQ_ORDER):
        out[:, :, col] = (p >> np.uint32(4 * i)) & np.uint32(0xF)
    return out.reshape(rows, groups * 8)


def awq_pack(weight: np.ndarray, group: int = GROUP) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Quantise a torch-layout weight [out, in] to AutoAWQ GEMM tensors (qweight, qzeros, scales).

    Round-to-nearest min/max per group of `group` inputs and per output column (enough to exercise
    an engine; a model whose answers matter needs calibrated AWQ).
    """
    out_f, in_f = weight.shape
    if in_f % group or out_f % 8:
        raise ValueError(
            f"AWQ needs in % {group} == 0 and out % 8 == 0, got [out={out_f}, in={in_f}]"
        )
    w = weight.astype(np.float32).T.reshape(in_f // group, group, out_f)  # [groups, group, out]
    lo = np.minimum(w.min(axis=1), 0.0)
    hi = np.maximum(w.max(axis=1), 0.0)
    scales = np.maximum((hi - lo) / 15.0, 1e-6).astype(np.float16)
    s32 = scales.astype(np.float32)
    zeros = np.clip(np.round(-lo / s32), 0, 15).astype(np.uint8)  # [groups, out]
    q = np.clip(np.round(w / s32[:, None, :]) + zeros[:, None, :], 0, 15).astype(np.uint8)
    qweight = _pack_nibbles(q.reshape(in_f, out_f))
    qzeros = _pack_nibbles(zeros)
    # C order: the reductions above leave [groups, out] arrays Fortran-ordered, and
    # safetensors.numpy writes an array's memory as it lies (a transposed tensor on disk)
    return tuple(np.ascontiguousarray(a) for a in (qweight, qzeros, scales))  # type: ignore[return-value]


def awq_unpack(
    qweight: np.ndarray, qzeros: np.ndarray, scales: np.ndarray, group: int = GROUP
) -> np.ndarray:
    """The float weight [out, in] that AWQ tensors stand for: (q - zero) * scale."""
    q = _unpack_nibbles(qweight).astype(np.float32)  # [in, out]
    z = _unpack_nibbles(qzeros).astype(np.float32)  # [groups, out]
    s = scales.astype(np.float32)
    in_f = q.shape[0]
    g = np.arange(in_f) // group
    return ((q - z[g]) * s[g]).T


def _corpus() -> list[str]:
    """Local training text for the tokenizer: the seed prompts, maths and Python snippets."""
    from aimo.core.policy.model import (
        SEED_CODE_SUFFIX,
        SEED_CODE_SYSTEM,
        SEED_COT_SUFFIX,
        SEED_COT_SYSTEM,
    )

    lines = [SEED_COT_SYSTEM, SEED_COT_SUFFIX, SEED_CODE_SYSTEM, SEED_CODE_SUFFIX]
    for a in range(1, 60):
        lines.append(f"What is {a} times {a + 7}? The answer is \\boxed{{{a * (a + 7) % 1000}}}.")
        lines.append(f"```python\nimport math\nprint(math.comb({a + 10}, 3) % 1000)\n```")
        lines.append(
            f"Let x = {a}. Then x^2 + {a}x = {2 * a * a}, "
            f"so the remainder modulo 1000 is {2 * a * a % 1000}."
        )
    return lines * 4


def train_tokenizer(
    out_dir: Path,
    vocab_target: int,
    corpus: Iterable[str] | None = None,
    *,
    split_digits: bool = False,
) -> int:
    """Train a byte-level BPE on local text, write tokenizer files; return the vocabulary size.

    `corpus` defaults to the smoke text; `split_digits` makes every digit its own token (what a
    small model needs to learn arithmetic).
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    byte_level = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.pre_tokenizer = (
        pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True), byte_level])
        if split_digits
        else byte_level
    )
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_target,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(_corpus() if corpus is None else corpus, trainer=trainer)
    tok.save(str(out_dir / "tokenizer.json"))
    config = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": None,
        "eos_token": "<|im_end|>",
        "pad_token": "<|endoftext|>",
        "unk_token": None,
        "model_max_length": 65536,
        "chat_template": CHATML_TEMPLATE,
        "added_tokens_decoder": {
            str(tok.token_to_id(t)): {
                "content": t,
                "special": True,
                "lstrip": False,
                "rstrip": False,
                "normalized": False,
                "single_word": False,
            }
            for t in SPECIAL_TOKENS
        },
    }
    (out_dir / "tokenizer_config.json").write_text(json.dumps(config, indent=2))
    return int(tok.get_vocab_size())


def model_tensors(shape: TinyQwen2, vocab: int, *, awq: bool = True) -> dict[str, np.ndarray]:
    """Random weights (std 0.02) of a tied-embedding Qwen2ForCausalLM, projections AWQ-packed."""
    rng = np.random.default_rng(shape.seed)
    h, hd = shape.hidden, shape.head_dim
    dims = {
        "self_attn.q_proj": (shape.heads * hd, h),
        "self_attn.k_proj": (shape.kv_heads * hd, h),
        "self_attn.v_proj": (shape.kv_heads * hd, h),
        "self_attn.o_proj": (h, shape.heads * hd),
        "mlp.gate_proj": (shape.intermediate, h),
        "mlp.up_proj": (shape.intermediate, h),
        "mlp.down_proj": (h, shape.intermediate),
    }

    def normal(*size: int) -> np.ndarray:
        return (rng.standard_normal(size) * 0.02).astype(np.float16)

    t: dict[str, np.ndarray] = {
        "model.embed_tokens.weight": normal(vocab, h),
        "model.norm.weight": np.ones(h, np.float16),
    }
    for i in range(shape.layers):
        p = f"model.layers.{i}."
        t[p + "input_layernorm.weight"] = np.ones(h, np.float16)
        t[p + "post_attention_layernorm.weight"] = np.ones(h, np.float16)
        for name in PROJECTIONS:
            weight = normal(*dims[name])
            if awq:
                qweight, qzeros, scales = awq_pack(weight)
                t[p + name + ".qweight"], t[p + name + ".qzeros"], t[p + name + ".scales"] = (
                    qweight,
                    qzeros,
                    scales,
                )
            else:
                t[p + name + ".weight"] = weight
        for name in ("q_proj", "k_proj", "v_proj"):
            t[p + f"self_attn.{name}.bias"] = np.zeros(dims[f"self_attn.{name}"][0], np.float16)
    return t


def model_config(shape: TinyQwen2, vocab: int, eos: int, pad: int, *, awq: bool = True) -> dict:
    config = {
        "architectures": ["Qwen2ForCausalLM"],
        "model_type": "qwen2",
        "hidden_size": shape.hidden,
        "intermediate_size": shape.intermediate,
        "num_hidden_layers": shape.layers,
        "num_attention_heads": shape.heads,
        "num_key_value_heads": shape.kv_heads,
        "head_dim": shape.head_dim,
        "hidden_act": "silu",
        "max_position_embeddings": shape.max_positions,
        "max_window_layers": shape.layers,
        "rms_norm_eps": 1e-6,
        "rope_theta": 1000000.0,
        "sliding_window": None,
        "use_sliding_window": False,
        "tie_word_embeddings": True,
        "torch_dtype": "float16",
        "use_cache": True,
        "vocab_size": vocab,
        "bos_token_id": pad,
        "eos_token_id": eos,
        "attention_dropout": 0.0,
        "initializer_range": 0.02,
    }
    if awq:
        config["quantization_config"] = {
            "quant_method": "awq",
            "bits": 4,
            "group_size": GROUP,
            "version": "gemm",
            "zero_point": True,
        }
    return config


def build_tiny_qwen2(
    out_dir: str | Path, shape: TinyQwen2 = TinyQwen2(), *, awq: bool = True
) -> Path:
    """Write a loadable tiny Qwen2 checkpoint (config, tokenizer, safetensors) into `out_dir`."""
    from safetensors.numpy import save_file

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    vocab = train_tokenizer(out, shape.vocab_target)
    tok = json.loads((out / "tokenizer.json").read_text())
    ids = {t["content"]: t["id"] for t in tok.get("added_tokens", [])}
    eos, pad = ids["<|im_end|>"], ids["<|endoftext|>"]
    (out / "config.json").write_text(
        json.dumps(model_config(shape, vocab, eos, pad, awq=awq), indent=2)
    )
    (out / "generation_config.json").write_text(
        json.dumps({"bos_token_id": pad, "eos_token_id": [eos, pad], "do_sample": True}, indent=2)
    )
    save_file(
        model_tensors(shape, vocab, awq=awq),
        str(out / "model.safetensors"),
        metadata={"format": "pt"},
    )
    (out / "tiny_model.json").write_text(
        json.dumps({**asdict(shape), "vocab": vocab, "awq": awq}, indent=2)
    )
    return out
