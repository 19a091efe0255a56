"""Activation-aware 4-bit quantisation (AWQ, group 128) of the trained tiny Qwen2, written in the
AutoAWQ "GEMM" layout lmdeploy reads.

Why not plain round-to-nearest: a small model loses accuracy when its few salient input channels
are quantised coarsely. AWQ (Lin et al., 2023) scales each projection's input channels by
s = mean|x|^alpha before quantising and folds 1/s into the operation before it (the RMSNorm
weight, or the rows of the projection that feeds it), which leaves the fp function unchanged; alpha
is searched per group of projections to minimise the output error on calibration activations.
`lmdeploy lite auto_awq` would do this too, but it pulls calibration text from a hub that the GPU
machine cannot reach; here the calibration text is the model's own training distribution.

Groups (Qwen2, one layer): q/k/v after input_layernorm; gate/up after post_attention_layernorm;
down after up_proj (rows); o after v_proj (rows, needs as many KV heads as heads).
Packing: recorder/tiny_model.py's `awq_pack` (min/max per group, zero point).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from aimo.recorder.tiny_model import GROUP, PROJECTIONS, awq_pack

ALPHAS = tuple(i / 20 for i in range(21))


@dataclass(frozen=True)
class GroupChoice:
    """The scale exponent chosen for one group of projections and the output errors it gave."""

    layer: int
    group: str
    alpha: float
    error: float  # relative output error with the chosen alpha
    error_rtn: float  # the same with alpha = 0 (plain round-to-nearest)


def fake_quant(weight: Any) -> Any:
    """What a torch weight [out, in] becomes after 4-bit AWQ packing and unpacking: min/max per
    group of 128 inputs with a zero point, the scale rounded to fp16 (`awq_pack`'s arithmetic,
    in torch so the search can run on the GPU)."""
    import torch

    out_f, in_f = weight.shape
    w = weight.detach().float().reshape(out_f, in_f // GROUP, GROUP)
    lo = w.amin(dim=2, keepdim=True).clamp(max=0.0)
    hi = w.amax(dim=2, keepdim=True).clamp(min=0.0)
    scale = ((hi - lo) / 15.0).clamp(min=1e-6).to(torch.float16).float()
    zero = torch.round(-lo / scale).clamp(0, 15)
    q = (torch.round(w / scale) + zero).clamp(0, 15)
    return ((q - zero) * scale).reshape(out_f, in_f).to(weight.dtype)


def _capture_inputs(model: Any, batches: list[dict[str, Any]], max_rows: int) -> dict[str, Any]:
    """Inputs of q_proj, o_proj, gate_proj and down_proj of every layer on calibration batches
    (answer and prompt tokens, padding dropped), at most `max_rows` rows each."""
    import torch

    seen: dict[str, list[Any]] = {}
    hooks = []
    mask_holder: dict[str, Any] = {}
    for i, layer in enumerate(model.model.layers):
        for name, mod in (("qkv", layer.self_attn.q_proj), ("o", layer.self_attn.o_proj),
                          ("gate_up", layer.mlp.gate_proj), ("down", layer.mlp.down_proj)):
            key = f"{i}.{name}"

            def hook(_m: Any, args: tuple[Any, ...], _out: Any, key: str = key) -> None:
                x = args[0].detach().float()
                keep = mask_holder["mask"].reshape(-1).bool()
                seen.setdefault(key, []).append(x.reshape(-1, x.shape[-1])[keep])

            hooks.append(mod.register_forward_hook(hook))
    try:
        with torch.no_grad():
            for b in batches:
                mask_holder["mask"] = b["attention_mask"]
                model(input_ids=b["input_ids"], attention_mask=b["attention_mask"])
    finally:
        for h in hooks:
            h.remove()
    out = {}
    for key, parts in seen.items():
        x = torch.cat(parts)
        if x.shape[0] > max_rows:
            idx = torch.randperm(x.shape[0], generator=torch.Generator().manual_seed(0))[:max_rows]
            x = x[idx.to(x.device)]
        out[key] = x
    return out


def _search(x: Any, weights: list[Any]) -> tuple[float, Any, float, float]:
    """Best alpha for projections sharing input `x`: (alpha, scales, error, error at alpha 0)."""
    import torch

    ref = [x @ w.float().T for w in weights]
    norm = sum(float((r * r).sum()) for r in ref)
    x_mean = x.abs().mean(0).clamp(min=1e-5)
    best: tuple[float, Any, float] | None = None
    rtn = float("nan")
    for alpha in ALPHAS:
        s = x_mean.pow(alpha)
        s = s / (s.max() * s.min()).sqrt()
        err = 0.0
        for w, r in zip(weights, ref):
            wq = fake_quant(w.float() * s) / s
            err += float(((x @ wq.T - r) ** 2).sum())
        err /= norm
        if alpha == 0.0:
            rtn = err
        if best is None or err < best[2]:
            best = (alpha, s, err)
    assert best is not None
    return best[0], best[1].to(torch.float32), best[2], rtn


def apply_awq(model: Any, batches: list[dict[str, Any]], max_rows: int = 4096,
              progress: bool = True) -> list[GroupChoice]:
    """Search and fold AWQ scales into `model` in place (its fp function is unchanged)."""
    import torch

    cfg = model.config
    if cfg.num_key_value_heads != cfg.num_attention_heads:
        raise ValueError("the v→o fold needs as many KV heads as attention heads")
    inputs = _capture_inputs(model, batches, max_rows)
    choices: list[GroupChoice] = []
    with torch.no_grad():
        for i, layer in enumerate(model.model.layers):
            at, mlp = layer.self_attn, layer.mlp
            groups = (
                ("qkv", [at.q_proj, at.k_proj, at.v_proj], layer.input_layernorm, None),
                ("o", [at.o_proj], None, at.v_proj),
                ("gate_up", [mlp.gate_proj, mlp.up_proj], layer.post_attention_layernorm, None),
                ("down", [mlp.down_proj], None, mlp.up_proj),
            )
            for name, linears, norm, prev in groups:
                x = inputs[f"{i}.{name}"]
                alpha, s, err, rtn = _search(x, [m.weight for m in linears])
                s = s.to(linears[0].weight.device)
                for m in linears:
                    m.weight.mul_(s.to(m.weight.dtype))
                if norm is not None:
                    norm.weight.div_(s.to(norm.weight.dtype))
                else:
                    assert prev is not None  # each group folds into a norm or a previous linear
                    prev.weight.div_(s.to(prev.weight.dtype)[:, None])
                    if prev.bias is not None:
                        prev.bias.div_(s.to(prev.bias.dtype))
                choices.append(GroupChoice(i, name, alpha, err, rtn))
                if progress:
                    print(f"layer {i} {name:8s} alpha {alpha:.2f} error {err:.2e} "
                          f"(round-to-nearest {rtn:.2e})", flush=True)
    return choices


def quantise_in_place(model: Any) -> None:
    """Replace every projection weight by its 4-bit round trip (to evaluate what lmdeploy runs)."""
    import torch

    with torch.no_grad():
        for layer in model.model.layers:
            for name in PROJECTIONS:
                mod = layer.get_submodule(name)
                mod.weight.copy_(fake_quant(mod.weight))


def export_awq(model: Any, src: Path, out: Path) -> int:
    """Write the AutoAWQ-GEMM checkpoint of `model` (tokenizer files copied from `src`);
    returns the size in bytes of the weights file."""
    import shutil

    import torch
    from safetensors.numpy import save_file

    out.mkdir(parents=True, exist_ok=True)
    tensors: dict[str, np.ndarray] = {}
    for key, value in model.state_dict().items():
        if key == "lm_head.weight":
            continue  # tied
        arr = value.detach().to("cpu", torch.float32).numpy()
        stem = key.removesuffix(".weight")
        if key.endswith(".weight") and any(stem.endswith(p) for p in PROJECTIONS):
            if arr.shape[1] % GROUP:
                raise ValueError(f"{key}: input size {arr.shape[1]} is not a multiple of {GROUP}")
            qweight, qzeros, scales = awq_pack(arr)
            tensors[stem + ".qweight"], tensors[stem + ".qzeros"] = qweight, qzeros
            tensors[stem + ".scales"] = scales
        else:
            tensors[key] = arr.astype(np.float16)
    save_file(tensors, str(out / "model.safetensors"), metadata={"format": "pt"})
    for name in ("tokenizer.json", "tokenizer_config.json", "generation_config.json"):
        shutil.copy(src / name, out / name)
    config = json.loads((src / "config.json").read_text())
    config["quantization_config"] = {"quant_method": "awq", "bits": 4, "group_size": GROUP,
                                     "version": "gemm", "zero_point": True}
    (out / "config.json").write_text(json.dumps(config, indent=2))
    return (out / "model.safetensors").stat().st_size


__all__ = ["GroupChoice", "apply_awq", "export_awq", "fake_quant", "quantise_in_place"]
