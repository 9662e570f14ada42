"""GPT-2 (decoder-only) in Flax linen: forward pass and KV-cache decoding.

Parameters mirror transformers' GPT2LMHeadModel with the attention projection fused into one
[D, 3, H, K] kernel; `tensor_table` (the family declaration at the end) maps the two layouts.
"""

import dataclasses

import flax.linen as nn
import jax.numpy as jnp

from rt_jax.errors import UserError
from rt_jax.models import family, layers
from rt_jax.models.convert import Entry
from rt_jax.models.layers import annotated_param, constrain


@dataclasses.dataclass(frozen=True)
class GPT2Settings:
    """The hyperparameters the module needs (hashable, unlike a transformers config)."""

    vocab_size: int
    n_positions: int
    n_embd: int
    n_layer: int
    n_head: int
    n_inner: int
    layer_norm_epsilon: float = 1e-5
    activation: str = "gelu_new"
    scale_attn_by_inverse_layer_idx: bool = False
    initializer_range: float = 0.02
    embd_pdrop: float = 0.1
    resid_pdrop: float = 0.1
    attn_pdrop: float = 0.1
    position_embedding: str = "learned"  # or "rotary"
    rotary_base: float = 10000.0
    dtype: jnp.dtype = jnp.float32
    param_dtype: jnp.dtype = jnp.float32
    remat: bool = False

    @property
    def head_dim(self) -> int:
        return self.n_embd // self.n_head

    @classmethod
    def from_hf(cls, config, **overrides) -> "GPT2Settings":
        if config.n_embd % config.n_head:
            raise UserError(f"config: n_embd={config.n_embd} is not a multiple of n_head={config.n_head}")
        activation = config.activation_function
        if activation not in layers.ACTIVATIONS:
            raise UserError(
                f"config: activation_function={activation!r} is not supported; "
                f"expected one of {sorted(layers.ACTIVATIONS)}"
            )
        if not getattr(config, "scale_attn_weights", True):
            raise UserError("config: scale_attn_weights=False is not supported")
        position_embedding = overrides.pop("position_embedding", None) or getattr(
            config, "position_embedding", "learned"
        )
        if position_embedding not in ("learned", "rotary"):
            raise UserError(f"position_embedding={position_embedding!r}; expected 'learned' or 'rotary'")
        return cls(
            vocab_size=config.vocab_size,
            n_positions=config.n_positions,
            n_embd=config.n_embd,
            n_layer=config.n_layer,
            n_head=config.n_head,
            n_inner=config.n_inner or 4 * config.n_embd,
            layer_norm_epsilon=config.layer_norm_epsilon,
            activation=activation,
            scale_attn_by_inverse_layer_idx=bool(getattr(config, "scale_attn_by_inverse_layer_idx", False)),
            initializer_range=config.initializer_range,
            embd_pdrop=config.embd_pdrop,
            resid_pdrop=config.resid_pdrop,
            attn_pdrop=config.attn_pdrop,
            position_embedding=position_embedding,
            **overrides,
        )


class Attention(nn.Module):
    s: GPT2Settings
    layer_idx: int

    @nn.compact
    def __call__(self, x_btd, positions_bt, mask, cache=None, cache_index=None, deterministic=True):
        s = self.s
        h, k, d = s.n_head, s.head_dim, s.n_embd
        init = nn.initializers.normal(s.initializer_range)
        w_qkv = annotated_param(self, "qkv_kernel", init, (d, 3, h, k), ("embed", None, "heads", "kv"), s.param_dtype)
        b_qkv = annotated_param(
            self, "qkv_bias", nn.initializers.zeros, (3, h, k), (None, "heads", "kv"), s.param_dtype
        )
        # GPT-2 scales the residual projections by 1/sqrt(2 * n_layer) at init.
        out_init = nn.initializers.normal(s.initializer_range / (2 * s.n_layer) ** 0.5)
        w_out = annotated_param(self, "out_kernel", out_init, (h, k, d), ("heads", "kv", "embed"), s.param_dtype)
        b_out = annotated_param(self, "out_bias", nn.initializers.zeros, (d,), ("embed",), s.param_dtype)

        qkv = layers.project(x_btd, w_qkv.astype(s.dtype)) + b_qkv.astype(s.dtype)
        q, key, value = qkv[:, :, 0], qkv[:, :, 1], qkv[:, :, 2]
        q = constrain(q, ("batch", "length", "heads", "kv"))
        if s.position_embedding == "rotary":
            q = layers.rotary(q, positions_bt, s.rotary_base)
            key = layers.rotary(key, positions_bt, s.rotary_base)
        if cache is not None:
            cache = {
                "k": layers.write_cache(cache["k"], key, cache_index),
                "v": layers.write_cache(cache["v"], value, cache_index),
            }
            key, value = cache["k"], cache["v"]
        scale = k**-0.5
        if s.scale_attn_by_inverse_layer_idx:
            scale /= float(self.layer_idx + 1)
        weights = layers.attention_weights(q, key, mask, scale=scale)
        weights = nn.Dropout(s.attn_pdrop)(weights, deterministic=deterministic)
        out = layers.combine_values(weights, value, s.dtype)
        y = layers.project(out, w_out.astype(s.dtype), 2) + b_out.astype(s.dtype)
        return y, cache


class MLP(nn.Module):
    s: GPT2Settings

    @nn.compact
    def __call__(self, x_btd):
        s = self.s
        init = nn.initializers.normal(s.initializer_range)
        out_init = nn.initializers.normal(s.initializer_range / (2 * s.n_layer) ** 0.5)
        w_fc = annotated_param(self, "fc_kernel", init, (s.n_embd, s.n_inner), ("embed", "mlp"), s.param_dtype)
        b_fc = annotated_param(self, "fc_bias", nn.initializers.zeros, (s.n_inner,), ("mlp",), s.param_dtype)
        w_proj = annotated_param(self, "proj_kernel", out_init, (s.n_inner, s.n_embd), ("mlp", "embed"), s.param_dtype)
        b_proj = annotated_param(self, "proj_bias", nn.initializers.zeros, (s.n_embd,), ("embed",), s.param_dtype)
        h = layers.project(x_btd, w_fc.astype(s.dtype)) + b_fc.astype(s.dtype)
        h = constrain(layers.ACTIVATIONS[s.activation](h), ("batch", "length", "mlp"))
        return layers.project(h, w_proj.astype(s.dtype)) + b_proj.astype(s.dtype)


class Block(nn.Module):
    s: GPT2Settings
    layer_idx: int

    @nn.compact
    def __call__(self, x_btd, positions_bt, mask, cache=None, cache_index=None, deterministic=True):
        s = self.s
        norm = lambda name: layers.LayerNorm(s.layer_norm_epsilon, s.dtype, s.param_dtype, name=name)
        a, cache = Attention(s, self.layer_idx, name="attn")(
            norm("ln_1")(x_btd), positions_bt, mask, cache, cache_index, deterministic
        )
        x = x_btd + nn.Dropout(s.resid_pdrop)(a, deterministic=deterministic)
        m = MLP(s, name="mlp")(norm("ln_2")(x))
        x = x + nn.Dropout(s.resid_pdrop)(m, deterministic=deterministic)
        return constrain(x, ("batch", "length", "embed")), cache


class GPT2LM(nn.Module):
    """GPT-2 language model with tied input/output embeddings; logits are float32."""

    s: GPT2Settings

    def setup(self):
        s = self.s
        init = nn.initializers.normal(s.initializer_range)
        self.wte = annotated_param(self, "wte", init, (s.vocab_size, s.n_embd), ("vocab", "embed"), s.param_dtype)
        if s.position_embedding == "learned":
            self.wpe = annotated_param(
                self, "wpe", nn.initializers.normal(0.01), (s.n_positions, s.n_embd), (None, "embed"), s.param_dtype
            )
        # remat traces the block: `deterministic` (argument 6, counting self) must stay static.
        block = nn.remat(Block, static_argnums=(6,)) if s.remat else Block
        self.h = [block(s, i) for i in range(s.n_layer)]
        self.ln_f = layers.LayerNorm(s.layer_norm_epsilon, s.dtype, s.param_dtype)
        self.drop = nn.Dropout(s.embd_pdrop)

    def _embed(self, input_ids_bt, positions_bt, deterministic):
        x = jnp.take(self.wte, input_ids_bt, axis=0).astype(self.s.dtype)
        if self.s.position_embedding == "learned":
            x = x + jnp.take(self.wpe, positions_bt, axis=0).astype(self.s.dtype)
        return constrain(self.drop(x, deterministic=deterministic), ("batch", "length", "embed"))

    def _logits(self, x_btd):
        x = self.ln_f(x_btd)
        logits = layers.project(x, self.wte.astype(self.s.dtype).T, out_dtype=jnp.float32)
        return constrain(logits, ("batch", "length", "vocab"))

    def __call__(self, input_ids, attention_mask=None, position_ids=None, segment_ids=None, deterministic=True):
        """Full forward: logits [B, T, V]. Left padding via attention_mask, packing via segment_ids."""
        t = input_ids.shape[1]
        mask = layers.causal_mask(jnp.arange(t), t)
        if segment_ids is not None:
            mask = mask & layers.segment_mask(segment_ids, segment_ids)
            default_positions = layers.positions_from_segments(segment_ids)
        elif attention_mask is not None:
            mask = mask & layers.key_mask(attention_mask)
            default_positions = layers.positions_from_mask(attention_mask)
        else:
            default_positions = jnp.broadcast_to(jnp.arange(t), input_ids.shape)
        positions = default_positions if position_ids is None else position_ids
        x = self._embed(input_ids, positions, deterministic)
        for block in self.h:
            x, _ = block(x, positions, mask, None, None, deterministic)
        return self._logits(x)

    def init_cache(self, batch_size: int, max_length: int):
        """Zero K/V cache: {"h_i": {"k", "v"}}, each [B, max_length, H, K] in the compute dtype."""
        s = self.s
        shape = (batch_size, max_length, s.n_head, s.head_dim)
        return {f"h_{i}": {"k": jnp.zeros(shape, s.dtype), "v": jnp.zeros(shape, s.dtype)} for i in range(s.n_layer)}

    def extend(self, input_ids, position_ids, cache, cache_index, kv_mask, last_only=False):
        """Runs T new tokens written to cache slots [cache_index, cache_index + T) (cache_index:
        a scalar, or [B] for one slot per row).

        A query in slot s attends to the slots j <= s with kv_mask[b, j]. Returns (logits, cache);
        last_only: logits [B, 1, V] of the last position only (a prefill needs no more)."""
        max_length = kv_mask.shape[1]
        mask = layers.causal_mask(layers.query_slots(cache_index, input_ids.shape[1]), max_length)
        mask = mask & layers.key_mask(kv_mask)
        x = self._embed(input_ids, position_ids, True)
        new_cache = {}
        for block in self.h:
            x, new_cache[block.name] = block(x, position_ids, mask, cache[block.name], cache_index, True)
        return self._logits(x[:, -1:] if last_only else x), new_cache


# ------------------------------------------------------------------------------ the GPT-2 family


def build(config, dtype=jnp.float32, param_dtype=jnp.float32, **options) -> GPT2LM:
    """options: position_embedding ("learned" | "rotary"), remat."""
    return GPT2LM(GPT2Settings.from_hf(config, dtype=dtype, param_dtype=param_dtype, **options))


def tensor_table(module: GPT2LM) -> list[Entry]:
    """transformers' GPT2LMHeadModel names; its Conv1D stores [in, out] as we do (reshape only)."""
    s = module.s
    d, f = s.n_embd, s.n_inner
    e = [Entry(("wte",), ("transformer.wte.weight",), (s.vocab_size, d))]
    if s.position_embedding == "learned":
        e.append(Entry(("wpe",), ("transformer.wpe.weight",), (s.n_positions, d)))
    for i in range(s.n_layer):
        hf, us = f"transformer.h.{i}.", f"h_{i}"
        e += [
            Entry((us, "ln_1", "scale"), (hf + "ln_1.weight",), (d,)),
            Entry((us, "ln_1", "bias"), (hf + "ln_1.bias",), (d,)),
            Entry((us, "attn", "qkv_kernel"), (hf + "attn.c_attn.weight",), (d, 3 * d)),
            Entry((us, "attn", "qkv_bias"), (hf + "attn.c_attn.bias",), (3 * d,)),
            Entry((us, "attn", "out_kernel"), (hf + "attn.c_proj.weight",), (d, d)),
            Entry((us, "attn", "out_bias"), (hf + "attn.c_proj.bias",), (d,)),
            Entry((us, "ln_2", "scale"), (hf + "ln_2.weight",), (d,)),
            Entry((us, "ln_2", "bias"), (hf + "ln_2.bias",), (d,)),
            Entry((us, "mlp", "fc_kernel"), (hf + "mlp.c_fc.weight",), (d, f)),
            Entry((us, "mlp", "fc_bias"), (hf + "mlp.c_fc.bias",), (f,)),
            Entry((us, "mlp", "proj_kernel"), (hf + "mlp.c_proj.weight",), (f, d)),
            Entry((us, "mlp", "proj_bias"), (hf + "mlp.c_proj.bias",), (d,)),
        ]
    e += [
        Entry(("ln_f", "scale"), ("transformer.ln_f.weight",), (d,)),
        Entry(("ln_f", "bias"), ("transformer.ln_f.bias",), (d,)),
    ]
    return e


def normalize_key(key: str) -> str:
    """GPT-2 checkpoints exist with and without the "transformer." prefix (GPT2Model vs LMHead)."""
    if not key.startswith(("transformer.", "lm_head.")):
        return "transformer." + key
    return key


def flops_per_token(config, num_params: int, seq_len: int) -> float:
    return family.dense_flops_per_token(num_params, config.n_layer, config.n_embd, seq_len)


def _init_inputs() -> dict:
    return {"input_ids": jnp.zeros((1, 1), jnp.int32)}


def extra_config_fields(module: GPT2LM) -> dict:
    # transformers' GPT-2 has no rotary positions; this extra field keeps rt_jax's round trip
    # exact (transformers would ignore it and use learned positions: rt_jax only).
    return {"position_embedding": "rotary"} if module.s.position_embedding == "rotary" else {}


FAMILY = family.register(
    family.Family(
        name="gpt2",
        model_types=("gpt2",),
        is_encoder_decoder=False,
        module_class=GPT2LM,
        build=build,
        tensor_table=tensor_table,
        flops_per_token=flops_per_token,
        # GPT-2's tokenizer adds no special tokens; the reference appends the EOS string to targets.
        tokenizer=family.TokenizerPolicy(add_bos=False, append_eos=True, prompt_padding="left"),
        init_inputs=_init_inputs,
        normalize_key=normalize_key,
        extra_config_fields=extra_config_fields,
    )
)
