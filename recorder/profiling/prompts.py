"""Random prompts of an exact token length for a step-latency measurement."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

log = logging.getLogger(__name__)


class PromptSource(Protocol):
    """Makes a random prompt text of (about) `n_tokens` tokens for the engine's tokenizer."""

    def make(self, n_tokens: int, rng: np.random.Generator) -> str: ...

    @property
    def description(self) -> str: ...


@dataclass(frozen=True)
class LetterPrompts:
    """ASCII letters with a space every ~6 characters: one token a character for a byte-level
    tokenizer without merges (the 14B script's) and for the lmdeploy test double."""

    description: str = "random ASCII letters and spaces (one token a character)"

    def make(self, n_tokens: int, rng: np.random.Generator) -> str:
        letters = np.frombuffer(b"abcdefghijklmnopqrstuvwxyz", dtype=np.uint8)
        chars = rng.choice(letters, size=n_tokens)
        chars[rng.random(n_tokens) < 0.16] = ord(" ")
        chars[0] = letters[rng.integers(26)]
        return chars.tobytes().decode("ascii")


@dataclass(frozen=True)
class TextTokenizer:
    """The two calls prompt making needs: `encode` (no special tokens added) and `decode`, plus
    the vocabulary size and the ids of special/added tokens (never drawn)."""

    encode: Callable[[str], list[int]]
    decode: Callable[[list[int]], str]
    vocab_size: int
    special_ids: frozenset[int] = frozenset()


@dataclass(frozen=True)
class TokenizerPrompts:
    """Random token ids from the model's vocabulary, decoded to text and trimmed/extended until
    the text encodes to exactly `n_tokens` tokens (or as close as 8 rounds get).

    Only ids whose text alone is printable ASCII and holds no `<|`/`|>` are drawn, so the text
    never splits a multi-byte character and never spells a special token."""

    tokenizer: TextTokenizer
    pieces: tuple[str, ...]
    description: str = "random token ids of the model's vocabulary"

    @classmethod
    def from_tokenizer(cls, tok: TextTokenizer, name: str = "") -> TokenizerPrompts:
        """Collect the usable single-token pieces of `tok` (ValueError when none is usable)."""
        pieces = []
        for i in range(tok.vocab_size):
            if i in tok.special_ids:
                continue
            try:
                s = tok.decode([i])
            except Exception:  # noqa: BLE001 - ids with no text (holes in the vocabulary)
                continue
            if s and s.isascii() and s.isprintable() and "<|" not in s and "|>" not in s:
                pieces.append(s)
        if not pieces:
            raise ValueError(f"tokenizer {name or ''}: no printable ASCII token to draw prompts "
                             "from")
        desc = (f"random token ids of the model's vocabulary ({len(pieces)} of "
                f"{tok.vocab_size} ids with printable ASCII text), re-encoded to the exact length")
        return cls(tok, tuple(pieces), desc)

    def make(self, n_tokens: int, rng: np.random.Generator) -> str:
        def draw(k: int) -> str:
            return "".join(self.pieces[i] for i in rng.integers(len(self.pieces), size=k))

        text = draw(n_tokens)
        for _ in range(8):
            ids = self.tokenizer.encode(text)
            if len(ids) == n_tokens:
                break
            if len(ids) > n_tokens:
                text = self.tokenizer.decode(ids[:n_tokens])
            else:
                text += draw(n_tokens - len(ids))
        return text


def load_tokenizer(model_dir: str | Path) -> TextTokenizer | None:
    """The model's tokenizer as lmdeploy loads it (`transformers.AutoTokenizer`), else
    `tokenizer.json` through `tokenizers`; None when the directory has no tokenizer files or
    neither library loads it.

    transformers comes first: prompt lengths must be counted as the engine counts them, and
    transformers 5.x can tokenize a `tokenizer.json` differently from `tokenizers` itself (seen
    on the GPU image: the tiny model's BPE merges ignored, prompts ~1.9x longer)."""
    model_dir = Path(model_dir)
    names = ("tokenizer_config.json", "tokenizer.model", "vocab.json", "tokenizer.json")
    if not any((model_dir / n).is_file() for n in names):
        log.warning("no tokenizer files in %s", model_dir)
        return None
    try:
        from transformers import AutoTokenizer

        hf = AutoTokenizer.from_pretrained(str(model_dir), trust_remote_code=True)
        return TextTokenizer(
            encode=lambda s: list(hf.encode(s, add_special_tokens=False)),
            decode=lambda ids: str(hf.decode(list(ids))),
            vocab_size=int(len(hf)),
            special_ids=frozenset(int(i) for i in (*getattr(hf, "all_special_ids", ()),
                                                   *getattr(hf, "added_tokens_decoder", {}))),
        )
    except Exception as exc:  # noqa: BLE001 - no transformers, or it cannot read the files
        log.warning("transformers could not load the tokenizer of %s: %s", model_dir, exc)
    tj = model_dir / "tokenizer.json"
    if not tj.is_file():
        return None
    try:
        from tokenizers import Tokenizer

        tok = Tokenizer.from_file(str(tj))
    except Exception as exc:  # noqa: BLE001 - no tokenizers, or an unreadable file
        log.warning("tokenizers could not read %s: %s", tj, exc)
        return None
    added: dict[int, Any] = getattr(tok, "get_added_tokens_decoder", lambda: {})()
    return TextTokenizer(
        encode=lambda s: list(tok.encode(s, add_special_tokens=False).ids),
        decode=lambda ids: str(tok.decode(list(ids), skip_special_tokens=False)),
        vocab_size=int(tok.get_vocab_size(with_added_tokens=True)),
        special_ids=frozenset(int(i) for i in added),
    )


def prompt_source(model_dir: str | Path) -> PromptSource:
    """`TokenizerPrompts` from the model's tokenizer, else `LetterPrompts` (with a warning)."""
    tok = load_tokenizer(model_dir)
    if tok is None:
        log.warning("%s: no tokenizer could be loaded; prompts are random letters (their token "
                    "counts are taken from the engine)", model_dir)
        return LetterPrompts()
    return TokenizerPrompts.from_tokenizer(tok, str(model_dir))


class ContentOnly:
    """Stands in for the chat template: the prompt is the user text itself (exact token count)."""

    chat_template = "{{ messages[-1]['content'] }}"

    def apply_chat_template(self, messages: list[dict], tokenize: bool = False,
                            add_generation_prompt: bool = False) -> str:
        return str(messages[-1]["content"])

