"""The tiny reasoning model's training, AWQ quantisation and export, on CPU with a toy shape.

The real run is on the GPU machine (docs/olympiad-loop.md); these check the same code paths:
the prompt the model trains on is the one lmdeploy renders, the AWQ fold leaves the function
unchanged, the exported checkpoint holds exactly the weights that were evaluated, training lowers
the loss.
"""

from __future__ import annotations

import itertools
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")  # the [train] extra; `make test` installs it
transformers = pytest.importorskip("transformers")

from aimo.recorder.olympiad.awq import apply_awq, export_awq, fake_quant, quantise_in_place  # noqa: E402
from aimo.recorder.olympiad.chat import encode_examples, pad_batch, prompt_for  # noqa: E402
from aimo.recorder.olympiad.problems import training_examples  # noqa: E402
from aimo.recorder.olympiad.train import (  # noqa: E402
    TrainConfig,
    build_tokenizer,
    make_model,
    save_checkpoint,
    special_ids,
    train_model,
)
from aimo.recorder.tiny_model import TinyQwen2, awq_pack, awq_unpack  # noqa: E402

TOY = replace(TrainConfig(), shape=TinyQwen2(hidden=128, layers=2, heads=2, kv_heads=2,
                                             intermediate=256, vocab_target=400,
                                             max_positions=2048),
              batch=8, warmup=3, lr=3e-3, log_every=1000)


@pytest.fixture(autouse=True, scope="module")
def one_thread() -> None:
    torch.set_num_threads(1)  # a toy model: threads only contend on a shared CI machine


@pytest.fixture(scope="module")
def toy(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, object]:
    out = tmp_path_factory.mktemp("toy")
    return out, build_tokenizer(out, TOY)


def test_training_prompt_is_what_lmdeploy_renders_with_the_chat_template(toy) -> None:
    out, tok = toy
    from transformers import PreTrainedTokenizerFast

    hf = PreTrainedTokenizerFast.from_pretrained(str(out))
    from aimo.core.policy.model import Prompts

    p = Prompts().code
    messages = [{"role": "system", "content": p.system},
                {"role": "user", "content": "What is 2 + 3?" + p.user_suffix}]
    rendered = hf.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    assert rendered == prompt_for("code", "What is 2 + 3?")
    ids = tok.encode("12345 + 678", add_special_tokens=False)
    digits = [t for t in ids.tokens if any(ch.isdigit() for ch in t)]
    assert all(sum(ch.isdigit() for ch in t) == 1 for t in digits)  # one digit a token


def test_pad_batch_labels_only_the_answer(toy) -> None:
    _, tok = toy
    eos, pad = special_ids(tok)
    enc = encode_examples(tok, itertools.islice(training_examples(0), 6), 4096)
    ids, mask, labels = pad_batch(enc, [0, 3], pad)
    for r, i in enumerate((0, 3)):
        x, plen = enc.example(i)
        assert mask[r].sum() == x.size
        assert (labels[r, :plen] == -100).all() and (labels[r, x.size:] == -100).all()
        assert (labels[r, plen:x.size] == x[plen:]).all() and labels[r, x.size - 1] == eos


def test_torch_fake_quant_is_the_packed_round_trip() -> None:
    w = torch.randn(64, 256, generator=torch.Generator().manual_seed(0)) * 0.05
    w[3, 7] = 2.0  # an outlier channel
    assert np.array_equal(fake_quant(w).numpy(), awq_unpack(*awq_pack(w.numpy())))


def test_training_lowers_the_loss_and_awq_export_holds_the_evaluated_weights(toy) -> None:
    out, tok = toy
    eos, pad = special_ids(tok)
    data = encode_examples(tok, itertools.islice(training_examples(0), 400), 1024)
    model = make_model(TOY, tok.get_vocab_size(), eos, pad)
    log: list[dict[str, float]] = []
    stats = train_model(model, data, replace(TOY, max_steps=12, log_every=4, minutes=5.0),
                        "cpu", pad, log)
    assert stats["steps"] == 12 and log[0]["loss"] > log[-1]["loss"] + 0.5
    save_checkpoint(model, out, TOY, tok.get_vocab_size(), eos, pad)

    ids, mask, _ = pad_batch(data, range(8), pad)
    batch = {"input_ids": torch.from_numpy(ids), "attention_mask": torch.from_numpy(mask)}
    model.eval()
    with torch.no_grad():
        before = model(**batch).logits
        choices = apply_awq(model, [batch], progress=False)
        after = model(**batch).logits
    assert torch.allclose(before, after, atol=1e-4, rtol=1e-4)  # the fold keeps the function
    assert len(choices) == 4 * TOY.shape.layers
    assert all(c.error <= c.error_rtn for c in choices)

    awq_dir = out / "awq"
    size = export_awq(model, out, awq_dir)
    assert size == (awq_dir / "model.safetensors").stat().st_size
    quantise_in_place(model)
    from safetensors.numpy import load_file

    tensors = load_file(str(awq_dir / "model.safetensors"))
    for i, layer in enumerate(model.model.layers):
        for name in ("self_attn.q_proj", "mlp.down_proj"):
            stem = f"model.layers.{i}.{name}"
            packed = awq_unpack(tensors[stem + ".qweight"], tensors[stem + ".qzeros"],
                                tensors[stem + ".scales"])
            np.testing.assert_array_equal(packed, layer.get_submodule(name).weight.detach().numpy())
        np.testing.assert_allclose(
            tensors[f"model.layers.{i}.input_layernorm.weight"],
            layer.input_layernorm.weight.detach().numpy().astype(np.float16))
    import json

    config = json.loads((awq_dir / "config.json").read_text())
    assert config["quantization_config"]["group_size"] == 128 and "lm_head.weight" not in tensors
