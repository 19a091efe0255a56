"""Chat rendering and tokenisation shared by training and evaluation of the tiny model.

Training must see exactly what lmdeploy feeds the model at inference: the tokenizer's ChatML
template applied to [system, user] with a generation prompt (solver/engines/lmdeploy_engine.py),
then the completion and `<|im_end|>`. The prompt and the completion are encoded separately, as
inference does, so no token straddles the boundary.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from aimo.core.policy.model import Prompts

END = "<|im_end|>"


def render_prompt(system: str, user: str) -> str:
    """The text `tokenizer.apply_chat_template(..., add_generation_prompt=True)` gives."""
    return (
        f"<|im_start|>system\n{system}{END}\n<|im_start|>user\n{user}{END}\n"
        "<|im_start|>assistant\n"
    )


def prompt_for(kind: str, question: str, prompts: Prompts = Prompts()) -> str:
    """The seed's prompt of `kind` for `question` (system message, question + user suffix)."""
    p = prompts.of(kind)
    return render_prompt(p.system, question + p.user_suffix)


@dataclass(frozen=True)
class Encoded:
    """Token ids of many examples, flat, with where each starts and how much is prompt."""

    ids: np.ndarray  # int32, all examples back to back
    starts: np.ndarray  # int64, n + 1 offsets
    prompt_len: np.ndarray  # int32, per example

    def __len__(self) -> int:
        return int(self.starts.size - 1)

    def example(self, i: int) -> tuple[np.ndarray, int]:
        return self.ids[self.starts[i]:self.starts[i + 1]], int(self.prompt_len[i])


def encode_examples(tokenizer: object, examples: Iterable[tuple[str, str, str]],
                    max_len: int) -> Encoded:
    """Encode (kind, question, solution) triples; those longer than `max_len` are dropped."""
    triples = list(examples)
    prompts = [prompt_for(k, q) for k, q, _ in triples]
    answers = [s + END for _, _, s in triples]
    p_enc = tokenizer.encode_batch(prompts, add_special_tokens=False)  # type: ignore[attr-defined]
    a_enc = tokenizer.encode_batch(answers, add_special_tokens=False)  # type: ignore[attr-defined]
    chunks: list[np.ndarray] = []
    plen: list[int] = []
    for p, a in zip(p_enc, a_enc):
        if len(p.ids) + len(a.ids) > max_len:
            continue
        chunks.append(np.asarray(p.ids + a.ids, np.int32))
        plen.append(len(p.ids))
    lengths = np.fromiter((c.size for c in chunks), np.int64, len(chunks))
    starts = np.zeros(len(chunks) + 1, np.int64)
    np.cumsum(lengths, out=starts[1:])
    return Encoded(np.concatenate(chunks) if chunks else np.zeros(0, np.int32), starts,
                   np.asarray(plen, np.int32))


def pad_batch(enc: Encoded, rows: Sequence[int] | np.ndarray,
              pad_id: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Right-padded (input_ids, attention_mask, labels) for `rows`; labels −100 off the answer."""
    parts = [enc.example(i) for i in rows]
    width = max(ids.size for ids, _ in parts)
    ids = np.full((len(parts), width), pad_id, np.int64)
    mask = np.zeros((len(parts), width), np.int64)
    labels = np.full((len(parts), width), -100, np.int64)
    for r, (x, plen) in enumerate(parts):
        ids[r, :x.size] = x
        mask[r, :x.size] = 1
        labels[r, plen:x.size] = x[plen:]
    return ids, mask, labels


__all__ = ["END", "Encoded", "encode_examples", "pad_batch", "prompt_for", "render_prompt"]
