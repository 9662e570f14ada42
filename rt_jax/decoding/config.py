"""Decoding settings and their validation (runs before anything is compiled)."""

import dataclasses
from typing import Literal

from rt_jax.errors import UserError

STRATEGIES = ("greedy", "beam", "sample")
LAYER_LAYOUTS = ("auto", "per_layer", "stacked")


@dataclasses.dataclass(frozen=True)
class DecodeConfig:
    """How to decode. Frozen (hashable) so that compiled decoders are cached per config.

    strategy: "greedy", "beam" (transformers' beam search semantics) or "sample".
    num_return_sequences: beams returned per prompt (beam) or samples drawn per prompt (sample).
    stop_strings: generation of a row stops once its tokens end with the encoding of one of
      these strings (e.g. Fine-tune-CoT's "END"); the text is cut right after the string.
    batch_size: prompts per compiled batch (rows = batch_size * num_beams or * samples).
    batching: "continuous" (greedy and sampling on decoder-only models: a fixed number of row
      slots; a finished row's slot takes the next waiting row at once) or "static" (batches of
      batch_size prompts that run until their longest row ends; always used for beam search and
      encoder-decoder models).
    slots: rows decoded together with continuous batching (None: batch_size * rows_per_prompt).
    The D = num_return_sequences samples of a prompt share one prefill (either batching).
    layer_layout: how a model with stacked (scanned) layers is decoded: "per_layer" (per-layer
      arrays: faster steps on XLA:CPU, compile time grows with depth), "stacked" (compile time
      flat in depth) or "auto" (per_layer on CPU, stacked on other backends). Same tokens.
    """

    strategy: Literal["greedy", "beam", "sample"] = "greedy"
    max_new_tokens: int = 128
    num_beams: int = 1
    length_penalty: float = 1.0
    early_stopping: bool | str = False
    num_return_sequences: int = 1
    temperature: float = 1.0
    top_k: int = 0
    top_p: float = 1.0
    seed: int = 0
    stop_strings: tuple[str, ...] = ()
    eos_token_id: int | None = None  # None: the tokenizer's / model config's
    batch_size: int = 16
    min_prompt_bucket: int = 16
    batching: Literal["continuous", "static"] = "continuous"
    slots: int | None = None
    show_progress: bool = False
    layer_layout: Literal["auto", "per_layer", "stacked"] = "auto"

    @property
    def rows_per_prompt(self) -> int:
        if self.strategy == "beam":
            return self.num_beams
        if self.strategy == "sample":
            return self.num_return_sequences
        return 1

    @property
    def num_slots(self) -> int:
        return self.batch_size * self.rows_per_prompt if self.slots is None else self.slots


def validate(config: DecodeConfig) -> DecodeConfig:
    """Raises UserError naming the field and what was expected."""
    c = config
    if c.strategy not in STRATEGIES:
        raise UserError(f"decoding strategy={c.strategy!r}: expected one of {', '.join(STRATEGIES)}")
    if c.max_new_tokens < 1:
        raise UserError(f"decoding max_new_tokens={c.max_new_tokens}: expected >= 1")
    if c.num_beams < 1:
        raise UserError(f"decoding num_beams={c.num_beams}: expected >= 1")
    if c.num_return_sequences < 1:
        raise UserError(f"decoding num_return_sequences={c.num_return_sequences}: expected >= 1")
    if c.strategy == "beam" and c.num_return_sequences > c.num_beams:
        raise UserError(f"decoding num_return_sequences={c.num_return_sequences}: expected <= num_beams={c.num_beams}")
    if c.strategy != "sample" and c.strategy != "beam" and c.num_return_sequences != 1:
        raise UserError("decoding num_return_sequences: greedy decoding returns exactly 1 sequence")
    if not (c.temperature >= 0.0):
        raise UserError(f"decoding temperature={c.temperature}: expected >= 0")
    if not (0.0 < c.top_p <= 1.0):
        raise UserError(f"decoding top_p={c.top_p}: expected a value in (0, 1]")
    if c.top_k < 0:
        raise UserError(f"decoding top_k={c.top_k}: expected >= 0 (0 = off)")
    if c.early_stopping not in (True, False, "never"):
        raise UserError(f"decoding early_stopping={c.early_stopping!r}: expected True, False or 'never'")
    if c.batch_size < 1:
        raise UserError(f"decoding batch_size={c.batch_size}: expected >= 1")
    if c.batching not in ("continuous", "static"):
        raise UserError(f"decoding batching={c.batching!r}: expected 'continuous' or 'static'")
    if c.slots is not None and c.slots < 1:
        raise UserError(f"decoding slots={c.slots}: expected >= 1 (rows decoded together)")
    if c.layer_layout not in LAYER_LAYOUTS:
        raise UserError(f"decoding layer_layout={c.layer_layout!r}: expected one of {', '.join(LAYER_LAYOUTS)}")
    if any(not s for s in c.stop_strings):
        raise UserError("decoding stop_strings: expected non-empty strings")
    return c
