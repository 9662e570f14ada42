"""One prefill/step interface over the two model families' KV-cache APIs.

`prefill(params, ids, mask) -> (logits [B, V], state)` and
`step(params, tokens [B], state, t) -> (logits [B, V], state)` where t is the index of the
generated token being fed (0 for the first). Every leaf of `state` has the batch on axis 0,
so beam search reorders or repeats it with one tree map, and the D samples of a prompt share
one prefill (repeated D times). Prefill projects the last prompt position only.

Decoder-only models also serve continuous batching (rt_jax/decoding/continuous.py):
`prefill(..., cache_length=P)` builds a cache of just the prompt, to be copied into a slot of a
larger cache, and `step_rows(params, tokens, state)` feeds each row at its own cache slot
(state["index"] [B]).
"""

import dataclasses

import jax
import jax.numpy as jnp

from rt_jax.models import layers


@dataclasses.dataclass(frozen=True, eq=False)  # hashed by identity: a key for jit caches
class DecoderOnly:
    """GPT-2 style: left-padded prompts; cache slots [0, P) hold the prompt, P + t token t."""

    module: object
    max_new_tokens: int
    pad_side: str  # the family's TokenizerPolicy.prompt_padding

    def __post_init__(self):
        if self.pad_side != "left":  # prefill continues from the last prompt position
            raise ValueError(f"decoder-only prompts must be left-padded, not {self.pad_side!r}")

    def prefill(self, params, ids, mask, cache_length=None):
        """cache_length: slots of the cache (default: prompt + max_new_tokens)."""
        batch, prompt_len = ids.shape
        length = prompt_len + self.max_new_tokens if cache_length is None else cache_length
        variables = {"params": params}
        cache = self.module.apply(variables, batch, length, method="init_cache")
        kv_mask = jnp.zeros((batch, length), bool).at[:, :prompt_len].set(mask.astype(bool))
        positions = layers.positions_from_mask(mask)
        logits, cache = self.module.apply(
            variables, ids, positions, cache, jnp.int32(0), kv_mask, last_only=True, method="extend"
        )
        state = {"cache": cache, "kv_mask": kv_mask, "position": jnp.sum(mask, -1).astype(jnp.int32)}
        return logits[:, -1].astype(jnp.float32), state

    def empty_state(self, params, rows: int, length: int):
        """The state step_rows reads, for `rows` empty slots of `length` cache slots each."""
        cache = self.module.apply({"params": params}, rows, length, method="init_cache")
        zeros = jnp.zeros((rows,), jnp.int32)
        return {"cache": cache, "kv_mask": jnp.zeros((rows, length), bool), "position": zeros, "index": zeros}

    def step_rows(self, params, tokens, state):
        """One token per row, written at the row's own cache slot state["index"] [B]."""
        index = state["index"]
        kv_mask = state["kv_mask"] | (jnp.arange(state["kv_mask"].shape[1]) == index[:, None])
        logits, cache = self.module.apply(
            {"params": params},
            tokens[:, None],
            state["position"][:, None],
            state["cache"],
            index,
            kv_mask,
            method="extend",
        )
        state = dict(state, cache=cache, kv_mask=kv_mask, position=state["position"] + 1, index=index + 1)
        return logits[:, 0].astype(jnp.float32), state

    def step(self, params, tokens, state, t):
        slot = state["kv_mask"].shape[1] - self.max_new_tokens + t
        kv_mask = jax.lax.dynamic_update_slice_in_dim(
            state["kv_mask"], jnp.ones((tokens.shape[0], 1), bool), slot, axis=1
        )
        logits, cache = self.module.apply(
            {"params": params},
            tokens[:, None],
            state["position"][:, None],
            state["cache"],
            jnp.asarray(slot, jnp.int32),
            kv_mask,
            method="extend",
        )
        state = {"cache": cache, "kv_mask": kv_mask, "position": state["position"] + 1}
        return logits[:, 0].astype(jnp.float32), state


@dataclasses.dataclass(frozen=True, eq=False)
class EncoderDecoder:
    """T5 style: encode once, decode from decoder_start_token_id (cache slot 0)."""

    module: object
    max_new_tokens: int
    decoder_start_token_id: int
    pad_side: str  # the family's TokenizerPolicy.prompt_padding (the encoder masks either)

    def prefill(self, params, ids, mask):
        variables = {"params": params}
        encoded = self.module.apply(variables, ids, mask, method="encode")
        cache = self.module.apply(variables, encoded, mask, self.max_new_tokens + 1, method="init_cache")
        start = jnp.full((ids.shape[0], 1), self.decoder_start_token_id, jnp.int32)
        logits, cache = self.module.apply(variables, start, cache, jnp.int32(0), mask, method="extend")
        return logits[:, -1].astype(jnp.float32), {"cache": cache, "encoder_mask": mask}

    def step(self, params, tokens, state, t):
        logits, cache = self.module.apply(
            {"params": params},
            tokens[:, None],
            state["cache"],
            jnp.asarray(t + 1, jnp.int32),
            state["encoder_mask"],
            method="extend",
        )
        return logits[:, 0].astype(jnp.float32), {"cache": cache, "encoder_mask": state["encoder_mask"]}


def decoding_params(module, params, layer_layout: str = "auto"):
    """`params` in DecodeConfig.layer_layout: "per_layer" is the module's decoding layout where it
    has one (Llama family: per-layer arrays; XLA:CPU copies each layer's weights out of stacked
    arrays at every step), "auto" picks it on CPU only (other backends: not measured)."""
    convert = getattr(module, "decoding_params", None)
    per_layer = layer_layout == "per_layer" or (layer_layout == "auto" and jax.default_backend() == "cpu")
    return convert(params) if convert is not None and per_layer else params


def adapter_for(loaded, max_new_tokens: int):
    pad_side = loaded.family.tokenizer.prompt_padding
    if loaded.is_encoder_decoder:
        # T5 checkpoints start decoding from the pad id; transformers 5 configs may omit the field
        start = getattr(loaded.config, "decoder_start_token_id", None)
        if start is None:
            start = getattr(loaded.config, "pad_token_id", None) or 0
        return EncoderDecoder(loaded.module, max_new_tokens, int(start), pad_side)
    return DecoderOnly(loaded.module, max_new_tokens, pad_side)
