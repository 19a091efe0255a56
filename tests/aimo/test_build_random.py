"""`aimo profile build-random`: the random-weight AWQ checkpoint, built small on the CPU."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from aimo.cli import app

torch = pytest.importorskip("torch")
pytest.importorskip("safetensors")
pytest.importorskip("tokenizers")

pytestmark = pytest.mark.slow  # torch, and a 150 MB checkpoint (the 14B vocabulary) written
runner = CliRunner()


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("rnd") / "m"
    res = runner.invoke(app, ["profile", "build-random", "--dir", str(out), "--shape", "tiny",
                              "--device", "cpu", "--layers-per-shard", "1"])
    assert res.exit_code == 0, res.output
    return out, json.loads(res.stdout)


def test_checkpoint_is_complete_and_says_what_it_is(built: tuple[Path, dict]) -> None:
    from safetensors import safe_open

    out, info = built
    assert info["shape"]["layers"] == 2 and info["shards"] == 3  # embeddings + one per layer
    assert json.loads((out / "random_model.json").read_text()) == info
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["num_hidden_layers"] == 2 and cfg["vocab_size"] == 152064
    assert cfg["quantization_config"] == {"quant_method": "awq", "bits": 4, "group_size": 128,
                                          "version": "gemm", "zero_point": True}
    index = json.loads((out / "model.safetensors.index.json").read_text())
    names: dict[str, list[str]] = {}
    total = 0
    for fname in sorted(set(index["weight_map"].values())):
        with safe_open(str(out / fname), "pt") as fh:
            names[fname] = list(fh.keys())
            for k in fh.keys():
                t = fh.get_tensor(k)
                total += t.numel() * t.element_size()
    assert {k: f for f, ks in names.items() for k in ks} == index["weight_map"]
    assert total == index["metadata"]["total_size"] == info["bytes"]
    per_layer = {k.split(".", 3)[3] for k in index["weight_map"] if k.startswith("model.layers.1.")}
    assert len(per_layer) == 2 + 7 * 3 + 3  # norms, 7 AWQ projections, q/k/v biases


def test_weights_unpack_to_small_random_values(built: tuple[Path, dict]) -> None:
    from safetensors.torch import load_file

    from aimo.recorder.random_model import SHAPES, projection_dims, unpack_awq

    out, _ = built
    index = json.loads((out / "model.safetensors.index.json").read_text())
    stem = "model.layers.0.mlp.down_proj"
    t = load_file(str(out / index["weight_map"][stem + ".qweight"]))
    w = unpack_awq(t[stem + ".qweight"], t[stem + ".qzeros"], t[stem + ".scales"])
    assert tuple(w.shape) == projection_dims(SHAPES["tiny"])["mlp.down_proj"]
    assert 0.01 < float(w.std()) < 0.03 and float(w.abs().max()) <= 8 * 0.006 + 1e-6


def test_tokenizer_is_a_byte_per_token_with_qwen_specials(built: tuple[Path, dict]) -> None:
    from tokenizers import Tokenizer

    out, _ = built
    tok = Tokenizer.from_file(str(out / "tokenizer.json"))
    assert len(tok.encode("What is 17 + 25?").ids) == len("What is 17 + 25?")
    assert tok.token_to_id("<|im_end|>") == 151645 and tok.get_vocab_size() == 152064


def test_an_existing_checkpoint_is_kept_unless_forced(built: tuple[Path, dict]) -> None:
    out, _ = built
    res = runner.invoke(app, ["profile", "build-random", "--dir", str(out), "--shape", "tiny",
                              "--device", "cpu"])
    assert res.exit_code == 2 and "--force" in res.output
    bad = runner.invoke(app, ["profile", "build-random", "--dir", str(out / "x"), "--shape", "7b"])
    assert bad.exit_code == 2 and "--shape" in bad.output and not (out / "x").exists()
