"""AWQ packing of the tiny smoke-test model: layout and round trip (numpy only; the rest of the
builder needs `tokenizers`/`safetensors`, present on the GPU image only)."""

from __future__ import annotations

import numpy as np
import pytest

from aimo.recorder.tiny_model import TinyQwen2, awq_pack, awq_unpack, model_config, model_tensors


def test_awq_layout_and_round_trip() -> None:
    w = (np.random.default_rng(1).standard_normal((512, 256)) * 0.02).astype(np.float16)
    qweight, qzeros, scales = awq_pack(w)
    assert (qweight.shape, qweight.dtype) == ((256, 64), np.int32)
    assert (qzeros.shape, qzeros.dtype) == ((2, 64), np.int32)
    assert (scales.shape, scales.dtype) == ((2, 512), np.float16)
    back = awq_unpack(qweight, qzeros, scales)
    step = scales.astype(np.float32).max()
    assert np.abs(back - w.astype(np.float32)).max() <= 0.51 * step + 1e-6


def test_nibble_order_is_autoawq_gemm() -> None:
    w = np.zeros((8, 128), np.float32)
    w[2, :] = 1.0  # output column 2 only: its quantised value 15 lands in nibble 1
    qweight, _, _ = awq_pack(w)
    assert int(qweight.view(np.uint32)[0, 0]) == 0xF << 4


def test_bad_shapes_are_refused() -> None:
    with pytest.raises(ValueError, match="in % 128"):
        awq_pack(np.zeros((8, 100), np.float32))


def test_tensors_and_config_match() -> None:
    shape = TinyQwen2()
    tensors = model_tensors(shape, 1000)
    assert "lm_head.weight" not in tensors and tensors["model.embed_tokens.weight"].shape == (
        1000,
        256,
    )
    assert tensors["model.layers.3.mlp.down_proj.qweight"].shape == (512, 32)
    cfg = model_config(shape, 1000, eos=2, pad=0)
    assert cfg["quantization_config"]["quant_method"] == "awq" and cfg["tie_word_embeddings"]


def test_packed_tensors_survive_a_safetensors_file_with_several_groups(tmp_path) -> None:
    safetensors_numpy = pytest.importorskip("safetensors.numpy")
    w = (np.random.default_rng(3).standard_normal((64, 384)) * 0.02).astype(np.float16)
    packed = dict(zip(("qweight", "qzeros", "scales"), awq_pack(w)))
    assert all(a.flags.c_contiguous for a in packed.values())  # written as they lie in memory
    safetensors_numpy.save_file(packed, str(tmp_path / "w.safetensors"))
    back = safetensors_numpy.load_file(str(tmp_path / "w.safetensors"))
    np.testing.assert_array_equal(awq_unpack(**back), awq_unpack(**packed))
