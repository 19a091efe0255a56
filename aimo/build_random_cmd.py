"""`aimo profile build-random`: write a random-weight AWQ checkpoint with a real model's shapes
(recorder/random_model.py), the model `aimo profile measure` times on a GPU without weights."""

from __future__ import annotations

import json
from pathlib import Path

import typer


def build_random(
    out_dir: Path = typer.Option(..., "--dir", help="Directory to write the checkpoint to (created; refused if it holds a config.json, unless --force)."),
    shape: str = typer.Option("14b", help="Architecture: 14b (DeepSeek-R1-Distill-Qwen-14B's shapes, ~10 GB) | tiny (2 narrow layers, same vocabulary)."),
    device: str = typer.Option("cuda", help="Torch device the random tensors are drawn on (cpu works, slower)."),
    layers_per_shard: int = typer.Option(4, min=1, help="Decoder layers per safetensors shard."),
    force: bool = typer.Option(False, "--force", help="Write over an existing checkpoint in --dir."),
) -> None:
    """Write a random-weight Qwen2 checkpoint (AWQ W4 GEMM, group 128, byte-level tokenizer) for
    timing an engine: step time depends on shapes and kernels, not on weight values."""
    from aimo.recorder.random_model import SHAPES, build_random_model

    if shape not in SHAPES:
        typer.echo(f"error: --shape: one of {', '.join(SHAPES)}, got {shape!r}", err=True)
        raise typer.Exit(2)
    if (out_dir / "config.json").exists() and not force:
        typer.echo(f"error: --dir: {out_dir} already holds a checkpoint (--force to replace)",
                   err=True)
        raise typer.Exit(2)
    try:
        import torch  # noqa: F401 - said here, before any file is written
    except ImportError:
        typer.echo("error: torch is needed: pip install 'aimo-policy-lab[train]'", err=True)
        raise typer.Exit(1) from None
    try:
        info = build_random_model(out_dir, SHAPES[shape], layers_per_shard=layers_per_shard,
                                  device=device)
    except (RuntimeError, OSError) as exc:  # no such device, disk full, unwritable --dir
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(json.dumps(info))
