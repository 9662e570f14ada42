"""The Llama family (decoder-only) in Flax linen: Llama 2/3.x, SmolLM/SmolLM2, TinyLlama (HF
model_type "llama"), Qwen2/2.5 ("qwen2": q/k/v biases), Mistral ("mistral": sliding window) and
Qwen3 ("qwen3": RMSNorm on each query and key head).

RMSNorm, a SwiGLU MLP, grouped-query attention (G key/value heads shared by H query heads, any G
dividing H, head size K independent of D / H) and RoPE as the config sets it (default, linear or
llama3 frequencies). The decoder layers are one `nn.scan` over parameters stacked on a leading
"layers" axis, so compile time does not grow with depth; the KV cache is stacked the same way
behind the batch axis ([B, L, S, G, K]) and carried through the scan.
"""

import dataclasses
import math

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from rt_jax.errors import UserError
from rt_jax.models import family, layers
from rt_jax.models.convert import Entry
from rt_jax.models.layers import annotated_param, constrain

MODEL_TYPES = ("llama", "qwen2", "mistral", "qwen3")
ROPE_TYPES = ("default", "linear", "llama3")


@dataclasses.dataclass(frozen=True)
class LlamaSettings:
    """The hyperparameters the module needs (hashable, unlike a transformers config)."""

    vocab_size: int
    hidden_size: int
    intermediate_size: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    inv_freq: tuple[float, ...]  # RoPE frequencies [K/2], scaling already applied
    rms_norm_eps: float = 1e-6
    hidden_act: str = "silu"
    qkv_bias: bool = False
    out_bias: bool = False
    mlp_bias: bool = False
    qk_norm: bool = False  # Qwen3
    tie_word_embeddings: bool = False
    sliding_window: int | None = None
    sliding_layers: tuple[bool, ...] = ()  # per layer: attends within sliding_window only
    attention_dropout: float = 0.0
    initializer_range: float = 0.02
    dtype: jnp.dtype = jnp.float32
    param_dtype: jnp.dtype = jnp.float32
    remat: bool = False

    @property
    def windowed(self) -> bool:
        return any(self.sliding_layers)

    @classmethod
    def from_hf(cls, config, **overrides) -> "LlamaSettings":
        model_type = getattr(config, "model_type", None)
        if model_type not in MODEL_TYPES:
            raise UserError(
                f"config: model_type {model_type!r} is not a Llama-family model; "
                f"expected one of {', '.join(MODEL_TYPES)}"
            )
        heads, kv_heads = config.num_attention_heads, getattr(config, "num_key_value_heads", None)
        kv_heads = kv_heads or heads
        if heads % kv_heads:
            raise UserError(f"config: num_key_value_heads={kv_heads} does not divide num_attention_heads={heads}")
        head_dim = getattr(config, "head_dim", None) or config.hidden_size // heads
        if config.hidden_act not in layers.ACTIVATIONS:
            raise UserError(
                f"config: hidden_act={config.hidden_act!r} is not supported; "
                f"expected one of {sorted(layers.ACTIVATIONS)}"
            )
        if model_type == "qwen2":  # Qwen2 hard-codes its biases: q/k/v yes, output and MLP no
            qkv_bias, out_bias, mlp_bias = True, False, False
        else:
            qkv_bias = out_bias = bool(getattr(config, "attention_bias", False))
            mlp_bias = bool(getattr(config, "mlp_bias", False))
        return cls(
            vocab_size=config.vocab_size,
            hidden_size=config.hidden_size,
            intermediate_size=config.intermediate_size,
            num_layers=config.num_hidden_layers,
            num_heads=heads,
            num_kv_heads=kv_heads,
            head_dim=head_dim,
            inv_freq=tuple(float(f) for f in rope_frequencies(config, head_dim)),
            rms_norm_eps=config.rms_norm_eps,
            hidden_act=config.hidden_act,
            qkv_bias=qkv_bias,
            out_bias=out_bias,
            mlp_bias=mlp_bias,
            qk_norm=model_type == "qwen3",
            tie_word_embeddings=bool(getattr(config, "tie_word_embeddings", False)),
            sliding_window=getattr(config, "sliding_window", None),
            sliding_layers=_sliding_layers(config, model_type),
            attention_dropout=float(getattr(config, "attention_dropout", 0.0) or 0.0),
            initializer_range=config.initializer_range,
            **overrides,
        )


def _sliding_layers(config, model_type: str) -> tuple[bool, ...]:
    """Which layers attend within config.sliding_window (transformers' rule for each model_type)."""
    n, window = config.num_hidden_layers, getattr(config, "sliding_window", None)
    if window is None or model_type == "llama":
        return (False,) * n
    if model_type == "mistral":
        return (True,) * n
    layer_types = getattr(config, "layer_types", None) or ["full_attention"] * n
    return tuple(t == "sliding_attention" for t in layer_types)


def _rope_parameters(config) -> tuple[dict, str]:
    """(one dict with rope_type, rope_theta and the scaling fields, the config field it came
    from), read from transformers 5's `rope_parameters` or transformers 4's `rope_theta` +
    `rope_scaling`."""
    field = "rope_parameters" if getattr(config, "rope_parameters", None) else "rope_scaling"
    params = getattr(config, field, None) or {}
    if not isinstance(params, dict) or any(isinstance(v, dict) for v in params.values()):
        raise UserError(f"config: {field} per layer type is not supported; expected one dict")
    params = dict(params)
    params.setdefault("rope_type", params.get("type", "default"))
    params.setdefault("rope_theta", getattr(config, "rope_theta", 10000.0))
    return params, field


def rope_frequencies(config, head_dim: int) -> np.ndarray:
    """RoPE inverse frequencies [head_dim / 2] in float32, as transformers computes them."""
    p, field = _rope_parameters(config)
    rope_type = p["rope_type"]
    if rope_type not in ROPE_TYPES:
        raise UserError(f"config: {field}.rope_type={rope_type!r} is not supported; expected one of {ROPE_TYPES}")
    factor = float(p.get("partial_rotary_factor", getattr(config, "partial_rotary_factor", None) or 1.0))
    if factor != 1.0:
        raise UserError(f"config: partial_rotary_factor={factor} is not supported; expected 1.0")
    exponents = np.arange(0, head_dim, 2, dtype=np.int64).astype(np.float32) / np.float32(head_dim)
    inv_freq = (np.float32(1.0) / np.power(np.float32(p["rope_theta"]), exponents)).astype(np.float32)
    if rope_type == "default":
        return inv_freq
    for name in ("factor",) + (
        ("low_freq_factor", "high_freq_factor", "original_max_position_embeddings") if rope_type == "llama3" else ()
    ):
        if p.get(name) is None:
            raise UserError(f"config: {field}.{name} is missing; rope_type {rope_type!r} needs it")
    scale = np.float32(p["factor"])
    if rope_type == "linear":
        return inv_freq / scale
    # llama3: long wavelengths divided by the factor, short ones kept, a smooth blend between.
    low, high = float(p["low_freq_factor"]), float(p["high_freq_factor"])
    context = float(p["original_max_position_embeddings"])
    wavelen = np.float32(2 * math.pi) / inv_freq
    scaled = np.where(wavelen > context / low, inv_freq / scale, inv_freq)
    smooth = (np.float32(context) / wavelen - np.float32(low)) / np.float32(high - low)
    blended = (1 - smooth) * scaled / scale + smooth * scaled
    medium = ~(wavelen < context / high) & ~(wavelen > context / low)
    return np.where(medium, blended, scaled).astype(np.float32)


# ---------------------------------------------------------------- layers


def grouped_attention_weights(q_bthk, k_bsgk, mask, scale: float):
    """Softmax weights [B, G, H / G, T, S] in float32, each of the G key/value heads serving H / G
    query heads without repeating K/V. mask [B or 1, 1, T, S]."""
    b, t, h, kd = q_bthk.shape
    g = k_bsgk.shape[2]
    q = q_bthk.reshape(b, t, g, h // g, kd)
    scores = jnp.einsum("btgrk,bsgk->bgrts", q, k_bsgk, preferred_element_type=jnp.float32) * scale
    return jax.nn.softmax(jnp.where(mask[:, :, None], scores, layers.MASKED), axis=-1)


def grouped_values(weights_bgrts, v_bsgk, dtype):
    """The weighted values [B, T, H, K] (query head g * H / G + r uses key/value head g)."""
    out = jnp.einsum("bgrts,bsgk->btgrk", weights_bgrts.astype(dtype), v_bsgk)
    b, t, g, r, k = out.shape
    return out.reshape(b, t, g * r, k)


class Attention(nn.Module):
    s: LlamaSettings

    @nn.compact
    def __call__(self, x_btd, positions_bt, mask, cache=None, layer=None, cache_index=None, deterministic=True):
        s = self.s

        def project_heads(name, heads, head_axis):
            init = nn.initializers.normal(s.initializer_range)
            shape, axes = (s.hidden_size, heads, s.head_dim), ("embed", head_axis, "kv")
            y = layers.project(
                x_btd, annotated_param(self, f"{name}_kernel", init, shape, axes, s.param_dtype).astype(s.dtype)
            )
            if s.qkv_bias:
                b = annotated_param(self, f"{name}_bias", nn.initializers.zeros, shape[1:], axes[1:], s.param_dtype)
                y = y + b.astype(s.dtype)
            return y

        q = project_heads("q", s.num_heads, "heads")
        key = project_heads("k", s.num_kv_heads, "kv_heads")
        value = project_heads("v", s.num_kv_heads, "kv_heads")
        if s.qk_norm:
            norm = lambda name: layers.RMSNorm(s.rms_norm_eps, s.dtype, s.param_dtype, axis="kv", name=name)
            q, key = norm("q_norm")(q), norm("k_norm")(key)
        inv_freq = jnp.asarray(s.inv_freq, jnp.float32)
        q = constrain(layers.rotary(q, positions_bt, inv_freq=inv_freq), ("batch", "length", "heads", "kv"))
        key = constrain(layers.rotary(key, positions_bt, inv_freq=inv_freq), ("batch", "length", "kv_heads", "kv"))
        value = constrain(value, ("batch", "length", "kv_heads", "kv"))
        if cache is not None:
            key, value, cache = _update_layer_cache(cache, layer, key, value, cache_index)
        weights = grouped_attention_weights(q, key, mask, s.head_dim**-0.5)
        weights = nn.Dropout(s.attention_dropout)(weights, deterministic=deterministic)
        out = constrain(grouped_values(weights, value, s.dtype), ("batch", "length", "heads", "kv"))
        w_out = annotated_param(
            self,
            "o_kernel",
            nn.initializers.normal(s.initializer_range),
            (s.num_heads, s.head_dim, s.hidden_size),
            ("heads", "kv", "embed"),
            s.param_dtype,
        )
        y = layers.project(out, w_out.astype(s.dtype), 2)
        if s.out_bias:
            b = annotated_param(self, "o_bias", nn.initializers.zeros, (s.hidden_size,), ("embed",), s.param_dtype)
            y = y + b.astype(s.dtype)
        return y, cache


def _update_layer_cache(cache, layer, key_btgk, value_btgk, cache_index):
    """Writes this layer's new K/V into the stacked cache {"k", "v"} [B, L, S, G, K] (through
    layers.write_cache on the layer's [B, S, G, K] slice), or with layer None into the layer's own
    cache [B, S, G, K] (the decoding layout); returns the layer's keys and values and the updated cache."""
    mine, stacked = {}, {}
    for name, fresh in (("k", key_btgk), ("v", value_btgk)):
        own = cache[name] if layer is None else jax.lax.dynamic_index_in_dim(cache[name], layer, 1, keepdims=False)
        mine[name] = layers.write_cache(own, fresh, cache_index)
        if layer is not None:
            stacked[name] = jax.lax.dynamic_update_index_in_dim(cache[name], mine[name], layer, 1)
    return mine["k"], mine["v"], mine if layer is None else stacked


class MLP(nn.Module):
    s: LlamaSettings

    @nn.compact
    def __call__(self, x_btd):
        s = self.s
        init = nn.initializers.normal(s.initializer_range)

        def linear(name, shape, axes, x):
            w = annotated_param(self, f"{name}_kernel", init, shape, axes, s.param_dtype)
            y = layers.project(x, w.astype(s.dtype))
            if s.mlp_bias:
                b = annotated_param(self, f"{name}_bias", nn.initializers.zeros, shape[-1:], axes[-1:], s.param_dtype)
                y = y + b.astype(s.dtype)
            return y

        d, f = s.hidden_size, s.intermediate_size
        gate = linear("gate", (d, f), ("embed", "mlp"), x_btd)
        up = linear("up", (d, f), ("embed", "mlp"), x_btd)
        h = constrain(layers.ACTIVATIONS[s.hidden_act](gate) * up, ("batch", "length", "mlp"))
        return linear("down", (f, d), ("mlp", "embed"), h)


class DecoderLayer(nn.Module):
    """One pre-norm layer, written as a scan body: (carry = (x, cache), xs = (layer, sliding))."""

    s: LlamaSettings

    @nn.compact
    def __call__(self, carry, xs, positions_bt, mask, window_mask, cache_index, deterministic):
        s = self.s
        x, cache = carry
        layer, sliding = xs
        if window_mask is not None:
            mask = jnp.where(sliding, window_mask, mask)
        norm = lambda name: layers.RMSNorm(s.rms_norm_eps, s.dtype, s.param_dtype, name=name)
        a, cache = Attention(s, name="attn")(
            norm("input_norm")(x), positions_bt, mask, cache, layer, cache_index, deterministic
        )
        x = x + a
        x = x + MLP(s, name="mlp")(norm("post_attention_norm")(x))
        return (constrain(x, ("batch", "length", "embed")), cache), None


def _scanned_layers(s: LlamaSettings):
    # remat traces the layer: `deterministic` (argument 7, counting self) must stay static.
    block = nn.remat(DecoderLayer, prevent_cse=False, static_argnums=(7,)) if s.remat else DecoderLayer
    scan = nn.scan(
        block,
        variable_axes={"params": 0},
        split_rngs={"params": True, "dropout": True},
        in_axes=(0,) + (nn.broadcast,) * 5,
        length=s.num_layers,
        metadata_params={nn.PARTITION_NAME: "layers"},
    )
    return scan(s)


class LlamaLM(nn.Module):
    """Llama-family causal LM; logits are float32. Params: embed_tokens [V, D], layers (stacked
    [L, ...]), norm, and lm_head [D, V] unless the head is tied to the embedding."""

    s: LlamaSettings

    def setup(self):
        s = self.s
        init = nn.initializers.normal(s.initializer_range)
        self.embed_tokens = annotated_param(
            self, "embed_tokens", init, (s.vocab_size, s.hidden_size), ("vocab", "embed"), s.param_dtype
        )
        if not s.tie_word_embeddings:
            self.lm_head = annotated_param(
                self, "lm_head", init, (s.hidden_size, s.vocab_size), ("embed", "vocab"), s.param_dtype
            )
        self.layers = _scanned_layers(s)
        self.norm = layers.RMSNorm(s.rms_norm_eps, s.dtype, s.param_dtype)

    def _layer_params(self):
        """The per-layer parameter trees when params are in the decoding layout (decoding_params), else None."""
        found = self.variables.get("params", {}).get("layers")
        return found if isinstance(found, tuple) else None

    def _run_layers(self, x, positions_bt, mask, window_mask, cache=None, cache_index=None, deterministic=True):
        per_layer = self._layer_params()
        if per_layer is not None:  # one DecoderLayer per layer, each with its own params and cache
            block, caches = DecoderLayer(self.s, parent=None), []
            for i, layer_params in enumerate(per_layer):
                rngs = None if deterministic else {"dropout": jax.random.fold_in(self.make_rng("dropout"), i)}
                carry = (x, None if cache is None else cache[i])
                xs = (None, self.s.sliding_layers[i])
                (x, layer_cache), _ = block.apply(
                    {"params": layer_params},
                    carry,
                    xs,
                    positions_bt,
                    mask,
                    window_mask,
                    cache_index,
                    deterministic,
                    rngs=rngs,
                )
                caches.append(layer_cache)
            return x, None if cache is None else tuple(caches)
        xs = (jnp.arange(self.s.num_layers, dtype=jnp.int32), jnp.asarray(self.s.sliding_layers, bool))
        (x, cache), _ = self.layers((x, cache), xs, positions_bt, mask, window_mask, cache_index, deterministic)
        return x, cache

    def _embed(self, input_ids_bt):
        x = jnp.take(self.embed_tokens, input_ids_bt, axis=0).astype(self.s.dtype)
        return constrain(x, ("batch", "length", "embed"))

    def _logits(self, x_btd):
        x = self.norm(x_btd)
        head = self.embed_tokens.T if self.s.tie_word_embeddings else self.lm_head
        logits = layers.project(x, head.astype(self.s.dtype), out_dtype=jnp.float32)
        return constrain(logits, ("batch", "length", "vocab"))

    def _window_mask(self, mask, q_slots_t, k_length: int):
        """The causal mask further limited to the last sliding_window slots (None: no layer slides)."""
        if not self.s.windowed:
            return None
        recent = jnp.arange(k_length) > q_slots_t[..., None] - self.s.sliding_window
        return mask & layers.heads_axis(recent)

    def __call__(self, input_ids, attention_mask=None, position_ids=None, segment_ids=None, deterministic=True):
        """Full forward: logits [B, T, V]. Left padding via attention_mask, packing via segment_ids."""
        t = input_ids.shape[1]
        slots = jnp.arange(t)
        mask = layers.causal_mask(slots, t)
        if segment_ids is not None:
            mask = mask & layers.segment_mask(segment_ids, segment_ids)
            default_positions = layers.positions_from_segments(segment_ids)
        elif attention_mask is not None:
            mask = mask & layers.key_mask(attention_mask)
            default_positions = layers.positions_from_mask(attention_mask)
        else:
            default_positions = jnp.broadcast_to(slots, input_ids.shape)
        positions = default_positions if position_ids is None else position_ids
        x, _ = self._run_layers(
            self._embed(input_ids), positions, mask, self._window_mask(mask, slots, t), deterministic=deterministic
        )
        return self._logits(x)

    def init_cache(self, batch_size: int, max_length: int):
        """Zero K/V cache {"k", "v"}, each [B, L, max_length, G, K] (KV heads) in the compute dtype;
        with params in the decoding layout, a tuple of L per-layer {"k", "v"} [B, max_length, G, K]."""
        s = self.s
        if self._layer_params() is not None:
            shape = (batch_size, max_length, s.num_kv_heads, s.head_dim)
            return tuple({"k": jnp.zeros(shape, s.dtype), "v": jnp.zeros(shape, s.dtype)} for _ in range(s.num_layers))
        shape = (batch_size, s.num_layers, max_length, s.num_kv_heads, s.head_dim)
        return {"k": jnp.zeros(shape, s.dtype), "v": jnp.zeros(shape, s.dtype)}

    @staticmethod
    def decoding_params(params):
        """`params` in the decoding layout: the stacked layer tree [L, ...] as a tuple of L per-layer
        trees. XLA:CPU copies a layer's weights out of the stacked arrays at every decode step
        (~0.4 GB per SmolLM2-135M token); per-layer arrays are read in place. Same results."""
        stacked = params["layers"]
        if isinstance(stacked, tuple):
            return params
        layers_count = jax.tree.leaves(stacked)[0].shape[0]
        per_layer = tuple(jax.tree.map(lambda x, i=i: x[i], stacked) for i in range(layers_count))
        return {**params, "layers": per_layer}

    def extend(self, input_ids, position_ids, cache, cache_index, kv_mask, last_only=False):
        """Runs T new tokens written to cache slots [cache_index, cache_index + T) (cache_index:
        a scalar, or [B] for one slot per row).

        A query in slot s attends to the slots j <= s with kv_mask[b, j]. Returns (logits, cache);
        last_only: logits [B, 1, V] of the last position only (a prefill needs no more)."""
        max_length = kv_mask.shape[1]
        slots = layers.query_slots(cache_index, input_ids.shape[1])
        mask = layers.causal_mask(slots, max_length) & layers.key_mask(kv_mask)
        x, cache = self._run_layers(
            self._embed(input_ids), position_ids, mask, self._window_mask(mask, slots, max_length), cache, cache_index
        )
        return self._logits(x[:, -1:] if last_only else x), cache


# ---------------------------------------------------------------- checkpoints


def tensor_table(module: LlamaLM) -> list[Entry]:
    """HF tensor names <-> rt_jax params; per-layer HF tensors map onto the stacked layers."""
    s = module.s
    d, f, h, g, k, n = s.hidden_size, s.intermediate_size, s.num_heads, s.num_kv_heads, s.head_dim, s.num_layers
    e = [Entry(("embed_tokens",), ("model.embed_tokens.weight",), (s.vocab_size, d))]
    if not s.tie_word_embeddings:
        e.append(Entry(("lm_head",), ("lm_head.weight",), (s.vocab_size, d), "linear"))
    e.append(Entry(("norm", "scale"), ("model.norm.weight",), (d,)))

    def layer(path, hf, shape, kind="reshape"):
        e.append(Entry(("layers",) + path, (f"model.layers.{{layer}}.{hf}",), shape, kind, layers=n))

    layer(("input_norm", "scale"), "input_layernorm.weight", (d,))
    layer(("post_attention_norm", "scale"), "post_attention_layernorm.weight", (d,))
    for name, heads in (("q", h), ("k", g), ("v", g)):
        layer(("attn", f"{name}_kernel"), f"self_attn.{name}_proj.weight", (heads * k, d), "linear")
        if s.qkv_bias:
            layer(("attn", f"{name}_bias"), f"self_attn.{name}_proj.bias", (heads * k,))
    layer(("attn", "o_kernel"), "self_attn.o_proj.weight", (d, h * k), "linear")
    if s.out_bias:
        layer(("attn", "o_bias"), "self_attn.o_proj.bias", (d,))
    if s.qk_norm:
        layer(("attn", "q_norm", "scale"), "self_attn.q_norm.weight", (k,))
        layer(("attn", "k_norm", "scale"), "self_attn.k_norm.weight", (k,))
    for name, shape in (("gate", (f, d)), ("up", (f, d)), ("down", (d, f))):
        layer(("mlp", f"{name}_kernel"), f"mlp.{name}_proj.weight", shape, "linear")
        if s.mlp_bias:
            layer(("mlp", f"{name}_bias"), f"mlp.{name}_proj.bias", shape[:1])
    return e


def prepare_tokenizer(tokenizer, source):
    """The checkpoint's tokenizer as rt_jax uses it: EOS ends every target and generation, so a
    tokenizer without one is refused; without a pad token, EOS pads (Llama and SmolLM ship none).
    BOS follows the tokenizer's own setting (TokenizerPolicy.add_bos)."""
    if tokenizer is None:
        return None
    if getattr(tokenizer, "eos_token_id", None) is None:
        raise UserError(f"{source}: the tokenizer has no EOS token (eos_token); a Llama-family student needs one")
    if getattr(tokenizer, "pad_token_id", None) is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def flops_per_token(hf_config, num_params: int, seq_len: int) -> float:
    """Attention width is heads x head_dim (not hidden_size when head_dim is set)."""
    heads = hf_config.num_attention_heads
    head_dim = getattr(hf_config, "head_dim", None) or hf_config.hidden_size // heads
    return family.dense_flops_per_token(num_params, hf_config.num_hidden_layers, heads * head_dim, seq_len)


def build(hf_config, dtype=jnp.float32, param_dtype=jnp.float32, **options) -> LlamaLM:
    """The module for a transformers config (options: remat)."""
    return LlamaLM(LlamaSettings.from_hf(hf_config, dtype=dtype, param_dtype=param_dtype, **options))


def _init_inputs() -> dict:
    return {"input_ids": jnp.zeros((1, 1), jnp.int32)}


FAMILY = family.register(
    family.Family(
        name="llama",
        model_types=MODEL_TYPES,
        is_encoder_decoder=False,
        module_class=LlamaLM,
        build=build,
        tensor_table=tensor_table,
        flops_per_token=flops_per_token,
        # BOS where the checkpoint's tokenizer puts one; no Llama-family tokenizer appends EOS.
        tokenizer=family.TokenizerPolicy(add_bos=True, append_eos=True, prompt_padding="left"),
        init_inputs=_init_inputs,
        prepare_tokenizer=prepare_tokenizer,
    )
)
