"""(prompt, target) text pairs -> token arrays, for decoder-only and encoder-decoder students.

Like the reference (reasoning-teacher `DataModule.tokenize`), prompt and target are tokenized
separately and concatenated, so the prompt/target boundary is exact. Special tokens follow the
student family's `TokenizerPolicy` (rt_jax.models.family): the target ends with EOS (rt_jax
appends it for GPT-2, as the reference appends the EOS string; T5 tokenizers append it
themselves), and a family with `add_bos` gets BOS once, at the start of the prompt, when its
tokenizer starts a text with BOS (`starts_with_bos`).

Truncation policy (`max_length`, the longest sequence a student sees):
- decoder-only: prompt + target is cut to its first `max_length` tokens, target tail first (a
  cut rationale loses its EOS, as the reference's 512-token cut does). A prompt of `max_length`
  tokens or more is cut to `max_length - 1` so that one target token is always trained on.
- encoder-decoder: encoder input and target are each cut to `max_length` tokens, keeping EOS
  last (what `truncation=True` does in the reference).
`TokenizeStats` counts what was cut so callers can report it.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

if TYPE_CHECKING:  # only for annotations: the data layer does not import the models
    from rt_jax.models.family import Family


@dataclasses.dataclass(frozen=True)
class TokenizedExample:
    """One training example as token ids.

    decoder-only: the model reads `prompt_ids + target_ids`; loss on `target_ids` only.
    encoder-decoder: the encoder reads `prompt_ids`; the decoder predicts `target_ids`.
    """

    sample_index: int
    prompt_ids: np.ndarray  # int32 [P]
    target_ids: np.ndarray  # int32 [T], ends with EOS unless truncated

    def length(self, is_encoder_decoder: bool) -> tuple[int, int]:
        """(encoder-side tokens, decoder-side tokens); decoders have everything on the first."""
        if is_encoder_decoder:
            return len(self.prompt_ids), len(self.target_ids)
        return len(self.prompt_ids) + len(self.target_ids), 0


@dataclasses.dataclass
class TokenizeStats:
    num_examples: int = 0
    num_truncated: int = 0  # examples that lost tokens to max_length
    num_prompt_truncated: int = 0  # ... of which the prompt itself was cut


def encode_texts(tokenizer: Any, texts: Sequence[str], add_special_tokens: bool = True) -> list[list[int]]:
    """Token ids of each text, with the tokenizer's own special tokens (T5 appends EOS, GPT-2 adds
    nothing) or, with add_special_tokens=False, none.

    Works with transformers tokenizers (batched call) and with any object that has
    `encode(text, add_special_tokens=...) -> list[int]` (rt_jax's ByteTokenizer).
    """
    if callable(tokenizer) and hasattr(tokenizer, "batch_decode"):
        return [list(ids) for ids in tokenizer(list(texts), add_special_tokens=add_special_tokens)["input_ids"]]
    return [list(tokenizer.encode(t, add_special_tokens=add_special_tokens)) for t in texts]


def starts_with_bos(tokenizer: Any) -> bool:
    """Whether the tokenizer's own encoding of a text begins with its BOS token."""
    bos = getattr(tokenizer, "bos_token_id", None)
    probe = encode_texts(tokenizer, ["a"])[0] if bos is not None else []
    return bool(probe) and probe[0] == bos


def _special_id(tokenizer: Any, name: str) -> int:
    token_id = getattr(tokenizer, name, None)
    if token_id is None:
        raise ValueError(f"tokenizer {type(tokenizer).__name__} has no {name}")
    return int(token_id)


def _with_eos(ids: list[int], eos: int) -> list[int]:
    return ids if ids and ids[-1] == eos else ids + [eos]


def _cut_keeping_eos(ids: list[int], max_length: int, eos: int) -> list[int]:
    if len(ids) <= max_length:
        return ids
    return ids[: max_length - 1] + [eos]


def tokenize_pairs(
    pairs: Sequence[Any],
    tokenizer: Any,
    family: Family,
    max_length: int,
    stats: TokenizeStats | None = None,
) -> list[TokenizedExample]:
    """Tokenizes `TrainingPair`s (anything with .sample_index, .prompt, .target) for a student of
    `family` (its layout and TokenizerPolicy).

    Returns one TokenizedExample per pair, in order. `stats`, when given, is filled in.
    """
    if max_length < 2:
        raise ValueError(f"max_length must be at least 2, got {max_length}")
    stats = stats if stats is not None else TokenizeStats()
    policy = family.tokenizer
    eos = _special_id(tokenizer, "eos_token_id")
    bos = [_special_id(tokenizer, "bos_token_id")] if policy.add_bos and starts_with_bos(tokenizer) else []
    # The tokenizer's own special tokens are used only where the family leaves them to it (T5's
    # EOS); where rt_jax places BOS or EOS, texts are encoded without any.
    own_specials = not (policy.add_bos or policy.append_eos)
    prompts = encode_texts(tokenizer, [p.prompt for p in pairs], own_specials)
    targets = encode_texts(tokenizer, [p.target for p in pairs], own_specials)
    out = []
    for pair, prompt, target in zip(pairs, prompts, targets):
        prompt = bos + prompt
        target = _with_eos(target, eos)
        if family.is_encoder_decoder:
            prompt = _with_eos(prompt, eos)
            cut = len(prompt) > max_length or len(target) > max_length
            stats.num_prompt_truncated += len(prompt) > max_length
            prompt = _cut_keeping_eos(prompt, max_length, eos)
            target = _cut_keeping_eos(target, max_length, eos)
        else:
            cut = len(prompt) + len(target) > max_length
            if len(prompt) >= max_length:
                stats.num_prompt_truncated += 1
                prompt = prompt[: max_length - 1]
            target = target[: max_length - len(prompt)]
        stats.num_truncated += cut
        out.append(
            TokenizedExample(
                sample_index=int(pair.sample_index),
                prompt_ids=np.asarray(prompt, np.int32),
                target_ids=np.asarray(target, np.int32),
            )
        )
    stats.num_examples += len(out)
    return out
