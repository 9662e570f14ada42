"""A byte-level tokenizer for students trained from scratch (the offline demo, tests).

Ids 0..255 are the UTF-8 bytes; two specials follow: PAD (256) and EOS (257, also BOS, as in
GPT-2). It needs no vocabulary file and no network, and covers any text. The interface is the
slice of Hugging Face tokenizers that rt_jax uses (`__call__`, `encode`, `decode`,
`batch_decode`, `*_token_id`, `save_pretrained` / `from_pretrained`).
"""

from __future__ import annotations

import json
import os
import pathlib
from typing import Iterable, Sequence

from rt_jax.errors import UserError

CONFIG_FILE = "tokenizer_config.json"
TOKENIZER_CLASS = "ByteTokenizer"

NUM_BYTES = 256
PAD_ID = 256
EOS_ID = 257


class ByteTokenizer:
    """UTF-8 bytes as tokens, plus PAD and EOS."""

    vocab_size = NUM_BYTES + 2
    pad_token_id = PAD_ID
    eos_token_id = EOS_ID
    bos_token_id = EOS_ID
    unk_token_id = None
    pad_token = "<pad>"
    eos_token = "<eos>"
    bos_token = "<eos>"
    all_special_ids = (PAD_ID, EOS_ID)

    def __init__(self, padding_side: str = "right", add_eos: bool = False):
        # add_eos: whether __call__/encode append EOS by default (T5-style tokenizers do).
        if padding_side not in ("left", "right"):
            raise UserError(f"ByteTokenizer padding_side={padding_side!r}: expected 'left' or 'right'")
        self.padding_side = padding_side
        self.add_eos = add_eos

    def __len__(self) -> int:
        return self.vocab_size

    def __repr__(self) -> str:
        return f"ByteTokenizer(vocab_size={self.vocab_size}, add_eos={self.add_eos})"

    def encode(self, text: str, add_special_tokens: bool | None = None) -> list[int]:
        ids = list(text.encode("utf-8"))
        add = self.add_eos if add_special_tokens is None else (add_special_tokens and self.add_eos)
        return ids + [EOS_ID] if add else ids

    def __call__(self, text: str | Sequence[str], add_special_tokens: bool | None = None, **_):
        """{"input_ids": ids} for one text, or lists of ids for a list of texts (no padding)."""
        if isinstance(text, str):
            return {"input_ids": self.encode(text, add_special_tokens)}
        return {"input_ids": [self.encode(t, add_special_tokens) for t in text]}

    def decode(self, ids: Iterable[int], skip_special_tokens: bool = True) -> str:
        out = bytearray()
        pieces: list[str] = []
        for i in (int(i) for i in ids):
            if 0 <= i < NUM_BYTES:
                out.append(i)
                continue
            if skip_special_tokens:
                continue
            # Specials and out-of-range ids (from a padded vocab) are written by name.
            pieces.append(out.decode("utf-8", errors="replace"))
            out = bytearray()
            pieces.append({PAD_ID: self.pad_token, EOS_ID: self.eos_token}.get(i, f"<unk_{i}>"))
        pieces.append(out.decode("utf-8", errors="replace"))
        return "".join(pieces)

    def batch_decode(self, batch: Iterable[Iterable[int]], skip_special_tokens: bool = True) -> list[str]:
        return [self.decode(ids, skip_special_tokens) for ids in batch]

    def convert_ids_to_tokens(self, ids: Iterable[int]) -> list[str]:
        return [self.decode([i], skip_special_tokens=False) for i in ids]

    def save_pretrained(self, directory: str | os.PathLike) -> tuple[str]:
        directory = pathlib.Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / CONFIG_FILE
        config = {
            "tokenizer_class": TOKENIZER_CLASS,
            "vocab_size": self.vocab_size,
            "pad_token_id": PAD_ID,
            "eos_token_id": EOS_ID,
            "padding_side": self.padding_side,
            "add_eos": self.add_eos,
        }
        path.write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
        return (str(path),)

    @classmethod
    def from_pretrained(cls, directory: str | os.PathLike) -> "ByteTokenizer":
        path = pathlib.Path(directory) / CONFIG_FILE
        if not is_byte_tokenizer_dir(directory):
            raise UserError(f"{path}: expected a tokenizer_config.json with tokenizer_class {TOKENIZER_CLASS!r}")
        config = json.loads(path.read_text(encoding="utf-8"))
        return cls(padding_side=config.get("padding_side", "right"), add_eos=bool(config.get("add_eos", False)))


def is_byte_tokenizer_dir(directory: str | os.PathLike) -> bool:
    """Whether `directory` holds a ByteTokenizer saved by `save_pretrained`."""
    path = pathlib.Path(directory) / CONFIG_FILE
    try:
        return json.loads(path.read_text(encoding="utf-8")).get("tokenizer_class") == TOKENIZER_CLASS
    except (OSError, ValueError, AttributeError):
        return False
