"""T5 v1.0 and T5 v1.1 / Flan-T5 (encoder-decoder) in Flax linen, with KV-cache decoding.

v1.0: ReLU feed-forward, LM head tied to the embedding with d_model**-0.5 output scaling.
v1.1 / Flan-T5: gated-GELU feed-forward, separate LM head, no output scaling.
Self-attention projections are fused into one [D, 3, H, K] kernel (cross-attention: [D, 2, H, K]
for keys and values); `tensor_table` (the family declaration at the end) maps them to
transformers' separate q/k/v matrices.
"""

import dataclasses
import math

import flax.linen as nn
import jax.numpy as jnp

from rt_jax.errors import UserError
from rt_jax.models import family, layers
from rt_jax.models.convert import Entry
from rt_jax.models.layers import annotated_param, constrain


@dataclasses.dataclass(frozen=True)
class T5Settings:
    vocab_size: int
    d_model: int
    d_kv: int
    d_ff: int
    num_layers: int
    num_decoder_layers: int
    num_heads: int
    relative_attention_num_buckets: int = 32
    relative_attention_max_distance: int = 128
    dropout_rate: float = 0.1
    layer_norm_epsilon: float = 1e-6
    gated: bool = False
    activation: str = "relu"
    tied_head: bool = True  # v1.0: LM head = embedding, outputs scaled by d_model**-0.5
    initializer_factor: float = 1.0
    dtype: jnp.dtype = jnp.float32
    param_dtype: jnp.dtype = jnp.float32
    remat: bool = False

    @classmethod
    def from_hf(cls, config, **overrides) -> "T5Settings":
        proj = config.feed_forward_proj.split("-")
        activation = "gelu_new" if config.feed_forward_proj == "gated-gelu" else proj[-1]
        if activation not in layers.ACTIVATIONS:
            raise UserError(f"config: feed_forward_proj={config.feed_forward_proj!r} is not supported")
        # transformers 5 forces tie_word_embeddings=True on T5 and keeps the real flag as
        # scale_decoder_outputs; transformers 4 has only tie_word_embeddings.
        tied = getattr(config, "scale_decoder_outputs", None)
        if tied is None:
            tied = config.tie_word_embeddings
        return cls(
            vocab_size=config.vocab_size,
            d_model=config.d_model,
            d_kv=config.d_kv,
            d_ff=config.d_ff,
            num_layers=config.num_layers,
            num_decoder_layers=config.num_decoder_layers or config.num_layers,
            num_heads=config.num_heads,
            relative_attention_num_buckets=config.relative_attention_num_buckets,
            relative_attention_max_distance=getattr(config, "relative_attention_max_distance", 128),
            dropout_rate=config.dropout_rate,
            layer_norm_epsilon=config.layer_norm_epsilon,
            gated=proj[0] == "gated" and len(proj) > 1,
            activation=activation,
            tied_head=bool(tied),
            initializer_factor=config.initializer_factor,
            **overrides,
        )


def relative_position_bucket(relative_position, bidirectional: bool, num_buckets: int, max_distance: int):
    """Mesh-TensorFlow bucketing of key_position - query_position (exact near 0, log-spaced far)."""
    buckets = jnp.zeros_like(relative_position)
    if bidirectional:
        num_buckets //= 2
        buckets = buckets + (relative_position > 0).astype(jnp.int32) * num_buckets
        distance = jnp.abs(relative_position)
    else:
        distance = -jnp.minimum(relative_position, 0)
    max_exact = num_buckets // 2
    is_small = distance < max_exact
    log_ratio = jnp.log(jnp.maximum(distance, 1).astype(jnp.float32) / max_exact) / math.log(max_distance / max_exact)
    large = max_exact + (log_ratio * (num_buckets - max_exact)).astype(jnp.int32)
    large = jnp.minimum(large, num_buckets - 1)
    return buckets + jnp.where(is_small, distance, large)


class RelativeBias(nn.Module):
    """Per-head bias [1, H, T, S] from bucketed relative positions (shared by a stack's layers)."""

    s: T5Settings
    bidirectional: bool

    @nn.compact
    def __call__(self, q_positions_t, k_positions_s):
        s = self.s
        table = annotated_param(
            self,
            "embedding",
            nn.initializers.normal(s.initializer_factor * s.d_model**-0.5),
            (s.relative_attention_num_buckets, s.num_heads),
            ("relpos_buckets", "heads"),
            s.param_dtype,
        )
        buckets = relative_position_bucket(
            k_positions_s[None, :] - q_positions_t[:, None],
            self.bidirectional,
            s.relative_attention_num_buckets,
            s.relative_attention_max_distance,
        )
        return jnp.take(table, buckets, axis=0).astype(jnp.float32).transpose(2, 0, 1)[None]


class SelfAttention(nn.Module):
    s: T5Settings

    @nn.compact
    def __call__(self, x_btd, mask, bias, cache=None, cache_index=None, deterministic=True):
        s = self.s
        d, h, k = s.d_model, s.num_heads, s.d_kv
        f = s.initializer_factor
        w_qkv = annotated_param(
            self,
            "qkv_kernel",
            nn.initializers.normal(f * d**-0.5),
            (d, 3, h, k),
            ("embed", None, "heads", "kv"),
            s.param_dtype,
        )
        w_out = annotated_param(
            self,
            "out_kernel",
            nn.initializers.normal(f * (h * k) ** -0.5),
            (h, k, d),
            ("heads", "kv", "embed"),
            s.param_dtype,
        )
        qkv = layers.project(x_btd, w_qkv.astype(s.dtype))
        q, key, value = qkv[:, :, 0], qkv[:, :, 1], qkv[:, :, 2]
        if cache is not None:
            cache = dict(
                cache,
                k=layers.write_cache(cache["k"], key, cache_index),
                v=layers.write_cache(cache["v"], value, cache_index),
            )
            key, value = cache["k"], cache["v"]
        out = _attend(q, key, value, mask, bias, s, nn.Dropout(s.dropout_rate), deterministic)
        return layers.project(out, w_out.astype(s.dtype), 2), cache


class CrossAttention(nn.Module):
    s: T5Settings

    def setup(self):
        s = self.s
        d, h, k = s.d_model, s.num_heads, s.d_kv
        f = s.initializer_factor
        self.q_kernel = annotated_param(
            self,
            "q_kernel",
            nn.initializers.normal(f * (d * k) ** -0.5),
            (d, h, k),
            ("embed", "heads", "kv"),
            s.param_dtype,
        )
        self.kv_kernel = annotated_param(
            self,
            "kv_kernel",
            nn.initializers.normal(f * d**-0.5),
            (d, 2, h, k),
            ("embed", None, "heads", "kv"),
            s.param_dtype,
        )
        self.out_kernel = annotated_param(
            self,
            "out_kernel",
            nn.initializers.normal(f * (h * k) ** -0.5),
            (h, k, d),
            ("heads", "kv", "embed"),
            s.param_dtype,
        )
        self.drop = nn.Dropout(s.dropout_rate)

    def keys_values(self, enc_bsd):
        kv = layers.project(enc_bsd.astype(self.s.dtype), self.kv_kernel.astype(self.s.dtype))
        return kv[:, :, 0], kv[:, :, 1]

    def __call__(self, x_btd, key, value, mask, deterministic=True):
        s = self.s
        q = layers.project(x_btd, self.q_kernel.astype(s.dtype))
        out = _attend(q, key, value, mask, None, s, self.drop, deterministic)
        return layers.project(out, self.out_kernel.astype(s.dtype), 2)


def _attend(q, key, value, mask, bias, s: T5Settings, drop: nn.Dropout, deterministic):
    # T5 folds the 1/sqrt(K) scaling into its initialisation: no scale here.
    weights = drop(layers.attention_weights(q, key, mask, bias), deterministic=deterministic)
    return constrain(layers.combine_values(weights, value, s.dtype), ("batch", "length", "heads", "kv"))


class FeedForward(nn.Module):
    s: T5Settings

    @nn.compact
    def __call__(self, x_btd, deterministic=True):
        s = self.s
        init_in = nn.initializers.normal(s.initializer_factor * s.d_model**-0.5)
        init_out = nn.initializers.normal(s.initializer_factor * s.d_ff**-0.5)
        act = layers.ACTIVATIONS[s.activation]
        wi = lambda name: annotated_param(self, name, init_in, (s.d_model, s.d_ff), ("embed", "mlp"), s.param_dtype)
        if s.gated:
            w0, w1 = wi("wi_0"), wi("wi_1")
            h = act(layers.project(x_btd, w0.astype(s.dtype))) * layers.project(x_btd, w1.astype(s.dtype))
        else:
            h = act(layers.project(x_btd, wi("wi").astype(s.dtype)))
        h = constrain(nn.Dropout(s.dropout_rate)(h, deterministic=deterministic), ("batch", "length", "mlp"))
        wo = annotated_param(self, "wo", init_out, (s.d_ff, s.d_model), ("mlp", "embed"), s.param_dtype)
        return layers.project(h, wo.astype(s.dtype))


def _norm(s: T5Settings, name=None):
    return layers.RMSNorm(s.layer_norm_epsilon, s.dtype, s.param_dtype, name=name)


class EncoderBlock(nn.Module):
    s: T5Settings

    @nn.compact
    def __call__(self, x_btd, mask, bias, deterministic=True):
        s = self.s
        drop = nn.Dropout(s.dropout_rate)
        a, _ = SelfAttention(s, name="self_attn")(_norm(s, "ln_self")(x_btd), mask, bias, None, None, deterministic)
        x = x_btd + drop(a, deterministic=deterministic)
        x = x + drop(FeedForward(s, name="ffn")(_norm(s, "ln_ffn")(x), deterministic), deterministic=deterministic)
        return constrain(x, ("batch", "length", "embed"))


class DecoderBlock(nn.Module):
    s: T5Settings

    def setup(self):
        s = self.s
        self.ln_self, self.ln_cross, self.ln_ffn = _norm(s), _norm(s), _norm(s)
        self.self_attn = SelfAttention(s)
        self.cross_attn = CrossAttention(s)
        self.ffn = FeedForward(s)
        self.drop = nn.Dropout(s.dropout_rate)

    def cross_keys_values(self, enc_bsd):
        return self.cross_attn.keys_values(enc_bsd)

    def __call__(self, x_btd, self_mask, bias, enc_bsd, cross_mask, cache=None, cache_index=None, deterministic=True):
        """With a cache, cross-attention keys/values come from it ("ck", "cv") and enc_bsd is unused."""
        if cache is None:
            ck, cv = self.cross_attn.keys_values(enc_bsd)
        else:
            ck, cv = cache["ck"], cache["cv"]
        a, cache = self.self_attn(self.ln_self(x_btd), self_mask, bias, cache, cache_index, deterministic)
        x = x_btd + self.drop(a, deterministic=deterministic)
        c = self.cross_attn(self.ln_cross(x), ck, cv, cross_mask, deterministic)
        x = x + self.drop(c, deterministic=deterministic)
        x = x + self.drop(self.ffn(self.ln_ffn(x), deterministic), deterministic=deterministic)
        return constrain(x, ("batch", "length", "embed")), cache


class Encoder(nn.Module):
    s: T5Settings

    def setup(self):
        s = self.s
        # `deterministic` (counting self) stays static under remat.
        block = nn.remat(EncoderBlock, static_argnums=(4,)) if s.remat else EncoderBlock
        self.relpos_bias = RelativeBias(s, bidirectional=True)
        self.block = [block(s) for _ in range(s.num_layers)]
        self.ln_final = _norm(s)
        self.drop = nn.Dropout(s.dropout_rate)

    def __call__(self, x_bsd, mask, deterministic=True):
        positions = jnp.arange(x_bsd.shape[1])
        bias = self.relpos_bias(positions, positions)
        x = self.drop(x_bsd, deterministic=deterministic)
        for blk in self.block:
            x = blk(x, mask, bias, deterministic)
        return self.drop(self.ln_final(x), deterministic=deterministic)


class Decoder(nn.Module):
    s: T5Settings

    def setup(self):
        s = self.s
        # `deterministic` (counting self) stays static under remat.
        block = nn.remat(DecoderBlock, static_argnums=(8,)) if s.remat else DecoderBlock
        self.relpos_bias = RelativeBias(s, bidirectional=False)
        self.block = [block(s) for _ in range(s.num_decoder_layers)]
        self.ln_final = _norm(s)
        self.drop = nn.Dropout(s.dropout_rate)

    def cross_keys_values(self, enc_bsd):
        return [blk.cross_keys_values(enc_bsd) for blk in self.block]

    def __call__(
        self, x_btd, q_positions_t, self_mask, enc_bsd, cross_mask, cache=None, cache_index=None, deterministic=True
    ):
        k_length = self_mask.shape[-1]
        bias = self.relpos_bias(q_positions_t, jnp.arange(k_length))
        x = self.drop(x_btd, deterministic=deterministic)
        new_cache = None if cache is None else {}
        for i, blk in enumerate(self.block):
            layer_cache = None if cache is None else cache[f"block_{i}"]
            x, layer_cache = blk(x, self_mask, bias, enc_bsd, cross_mask, layer_cache, cache_index, deterministic)
            if cache is not None:
                new_cache[f"block_{i}"] = layer_cache
        return self.drop(self.ln_final(x), deterministic=deterministic), new_cache


class T5LM(nn.Module):
    """T5 for conditional generation; logits are float32."""

    s: T5Settings

    def setup(self):
        s = self.s
        self.shared = annotated_param(
            self,
            "shared",
            nn.initializers.normal(s.initializer_factor),
            (s.vocab_size, s.d_model),
            ("vocab", "embed"),
            s.param_dtype,
        )
        if not s.tied_head:
            self.lm_head = annotated_param(
                self,
                "lm_head",
                nn.initializers.normal(s.initializer_factor),
                (s.d_model, s.vocab_size),
                ("embed", "vocab"),
                s.param_dtype,
            )
        self.encoder = Encoder(s)
        self.decoder = Decoder(s)

    def _embed(self, ids_bt):
        x = jnp.take(self.shared, ids_bt, axis=0).astype(self.s.dtype)
        return constrain(x, ("batch", "length", "embed"))

    def _logits(self, y_btd):
        s = self.s
        if s.tied_head:
            w = self.shared.astype(s.dtype).T
            y_btd = y_btd * (s.d_model**-0.5)
        else:
            w = self.lm_head.astype(s.dtype)
        logits = layers.project(y_btd, w, out_dtype=jnp.float32)
        return constrain(logits, ("batch", "length", "vocab"))

    def encode(self, input_ids, attention_mask=None, segment_ids=None, deterministic=True):
        """Encoder states [B, S, D]."""
        if segment_ids is not None:
            mask = layers.segment_mask(segment_ids, segment_ids)
        elif attention_mask is not None:
            mask = layers.key_mask(attention_mask)
        else:
            mask = jnp.ones((1, 1, 1, input_ids.shape[1]), bool)
        return self.encoder(self._embed(input_ids), mask, deterministic)

    def __call__(
        self,
        input_ids,
        attention_mask=None,
        decoder_input_ids=None,
        decoder_attention_mask=None,
        encoder_segment_ids=None,
        decoder_segment_ids=None,
        deterministic=True,
    ):
        if decoder_input_ids is None:
            raise UserError("T5 forward needs decoder_input_ids")
        enc = self.encode(input_ids, attention_mask, encoder_segment_ids, deterministic)
        t = decoder_input_ids.shape[1]
        q_positions = jnp.arange(t)
        self_mask = layers.causal_mask(q_positions, t)
        if decoder_segment_ids is not None:
            if encoder_segment_ids is None:
                raise UserError("decoder_segment_ids given without encoder_segment_ids")
            self_mask = self_mask & layers.segment_mask(decoder_segment_ids, decoder_segment_ids)
            cross_mask = layers.segment_mask(decoder_segment_ids, encoder_segment_ids)
        else:
            if decoder_attention_mask is not None:
                self_mask = self_mask & layers.key_mask(decoder_attention_mask)
            cross_mask = (
                jnp.ones((1, 1, 1, input_ids.shape[1]), bool)
                if attention_mask is None
                else layers.key_mask(attention_mask)
            )
        y, _ = self.decoder(
            self._embed(decoder_input_ids), q_positions, self_mask, enc, cross_mask, None, None, deterministic
        )
        return self._logits(y)

    def init_cache(self, encoded, attention_mask, max_length: int):
        """{"block_i": {"k", "v": zeros [B, max_length, H, K]; "ck", "cv": cross keys/values [B, S, H, K]}}."""
        s = self.s
        shape = (encoded.shape[0], max_length, s.num_heads, s.d_kv)
        return {
            f"block_{i}": {"k": jnp.zeros(shape, s.dtype), "v": jnp.zeros(shape, s.dtype), "ck": ck, "cv": cv}
            for i, (ck, cv) in enumerate(self.decoder.cross_keys_values(encoded))
        }

    def extend(self, decoder_input_ids, cache, cache_index, attention_mask):
        """T new decoder tokens at positions cache_index + t; attention_mask is the encoder's [B, S] mask."""
        t = decoder_input_ids.shape[1]
        max_length = cache["block_0"]["k"].shape[1]
        q_positions = jnp.asarray(cache_index, jnp.int32) + jnp.arange(t, dtype=jnp.int32)
        self_mask = layers.causal_mask(q_positions, max_length)
        cross_mask = layers.key_mask(attention_mask)
        y, cache = self.decoder(
            self._embed(decoder_input_ids), q_positions, self_mask, None, cross_mask, cache, cache_index, True
        )
        return self._logits(y), cache


# ------------------------------------------------------------------------------ the T5 family


def build(config, dtype=jnp.float32, param_dtype=jnp.float32, **options) -> T5LM:
    """options: remat."""
    return T5LM(T5Settings.from_hf(config, dtype=dtype, param_dtype=param_dtype, **options))


def tensor_table(module: T5LM) -> list[Entry]:
    """transformers' T5ForConditionalGeneration names; its nn.Linear weights are [out, in]."""
    s = module.s
    d, inner, f = s.d_model, s.num_heads * s.d_kv, s.d_ff
    e = [Entry(("shared",), ("shared.weight",), (s.vocab_size, d))]
    if not s.tied_head:
        e.append(Entry(("lm_head",), ("lm_head.weight",), (s.vocab_size, d), "linear", tied_to="shared.weight"))

    def ffn(us, hf):
        wi = ["wi_0", "wi_1"] if s.gated else ["wi"]
        return [Entry(us + ("ffn", w), (f"{hf}DenseReluDense.{w}.weight",), (f, d), "linear") for w in wi] + [
            Entry(us + ("ffn", "wo"), (f"{hf}DenseReluDense.wo.weight",), (d, f), "linear")
        ]

    def qkv(us, hf):
        return Entry(us + ("qkv_kernel",), tuple(f"{hf}{n}.weight" for n in "qkv"), (inner, d), "linear")

    for stack, n_layers in (("encoder", s.num_layers), ("decoder", s.num_decoder_layers)):
        e.append(
            Entry(
                (stack, "relpos_bias", "embedding"),
                (f"{stack}.block.0.layer.0.SelfAttention.relative_attention_bias.weight",),
                (s.relative_attention_num_buckets, s.num_heads),
            )
        )
        for i in range(n_layers):
            us, hf = (stack, f"block_{i}"), f"{stack}.block.{i}.layer."
            e += [
                Entry(us + ("ln_self", "scale"), (hf + "0.layer_norm.weight",), (d,)),
                qkv(us + ("self_attn",), hf + "0.SelfAttention."),
                Entry(us + ("self_attn", "out_kernel"), (hf + "0.SelfAttention.o.weight",), (d, inner), "linear"),
            ]
            ffn_layer = 1
            if stack == "decoder":
                ffn_layer = 2
                e += [
                    Entry(us + ("ln_cross", "scale"), (hf + "1.layer_norm.weight",), (d,)),
                    Entry(us + ("cross_attn", "q_kernel"), (hf + "1.EncDecAttention.q.weight",), (inner, d), "linear"),
                    Entry(
                        us + ("cross_attn", "kv_kernel"),
                        (hf + "1.EncDecAttention.k.weight", hf + "1.EncDecAttention.v.weight"),
                        (inner, d),
                        "linear",
                    ),
                    Entry(
                        us + ("cross_attn", "out_kernel"), (hf + "1.EncDecAttention.o.weight",), (d, inner), "linear"
                    ),
                ]
            e += [Entry(us + ("ln_ffn", "scale"), (f"{hf}{ffn_layer}.layer_norm.weight",), (d,))]
            e += ffn(us, f"{hf}{ffn_layer}.")
        e.append(Entry((stack, "ln_final", "scale"), (f"{stack}.final_layer_norm.weight",), (d,)))
    return e


def flops_per_token(config, num_params: int, seq_len: int) -> float:
    layers = config.num_layers + (config.num_decoder_layers or config.num_layers)
    return family.dense_flops_per_token(num_params, layers, config.d_model, seq_len)


def _init_inputs() -> dict:
    ids = jnp.zeros((1, 1), jnp.int32)
    return {"input_ids": ids, "decoder_input_ids": ids}


FAMILY = family.register(
    family.Family(
        name="t5",
        model_types=("t5",),  # T5 v1.0, v1.1 and Flan-T5
        is_encoder_decoder=True,
        module_class=T5LM,
        build=build,
        tensor_table=tensor_table,
        flops_per_token=flops_per_token,
        # T5's tokenizer appends </s> to every text itself and has no BOS.
        tokenizer=family.TokenizerPolicy(add_bos=False, append_eos=False, prompt_padding="right"),
        init_inputs=_init_inputs,
    )
)
