"""Building blocks shared by GPT-2 and T5: annotated parameters, norms, masks, attention, caches.

Shapes use the suffix convention of the docstrings: B batch, T query length, S key length,
H heads, K head size (kv), D model size (embed), F feed-forward size (mlp), V vocabulary.
"""

import functools
import math
from typing import Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

# Finite rather than -inf: a fully masked row (a left-pad query) then softmaxes to a uniform
# distribution instead of NaN, and its output is ignored by the caller anyway.
MASKED = jnp.finfo(jnp.float32).min

ACTIVATIONS: dict[str, Callable[[jax.Array], jax.Array]] = {
    "gelu_new": lambda x: jax.nn.gelu(x, approximate=True),
    "gelu_pytorch_tanh": lambda x: jax.nn.gelu(x, approximate=True),
    "gelu_fast": lambda x: jax.nn.gelu(x, approximate=True),
    "gelu": lambda x: jax.nn.gelu(x, approximate=False),
    "relu": jax.nn.relu,
    "silu": jax.nn.silu,
    "swish": jax.nn.silu,
}


def annotated_param(module: nn.Module, name: str, init, shape: Sequence[int], axes: tuple, dtype) -> jax.Array:
    """A parameter carrying logical axis names (so the mesh rules can shard it)."""
    return module.param(name, nn.with_logical_partitioning(init, axes), tuple(shape), dtype)


def constrain(x: jax.Array, axes: tuple) -> jax.Array:
    """Logical sharding constraint on a large activation (a no-op outside a mesh)."""
    return nn.with_logical_constraint(x, axes)


class LayerNorm(nn.Module):
    """GPT-2 layer norm (scale and bias), computed in float32."""

    eps: float
    dtype: jnp.dtype
    param_dtype: jnp.dtype

    @nn.compact
    def __call__(self, x_btd):
        d = x_btd.shape[-1]
        scale = annotated_param(self, "scale", nn.initializers.ones, (d,), ("embed",), self.param_dtype)
        bias = annotated_param(self, "bias", nn.initializers.zeros, (d,), ("embed",), self.param_dtype)
        x = x_btd.astype(jnp.float32)
        mean = x.mean(-1, keepdims=True)
        var = jnp.square(x - mean).mean(-1, keepdims=True)
        y = (x - mean) * jax.lax.rsqrt(var + self.eps)
        return (y * scale.astype(jnp.float32) + bias.astype(jnp.float32)).astype(self.dtype)


class RMSNorm(nn.Module):
    """T5 / Llama layer norm: scale only, no mean subtraction, computed in float32.

    `axis` is the logical name of the normalised dimension (Qwen3 normalises each head: "kv")."""

    eps: float
    dtype: jnp.dtype
    param_dtype: jnp.dtype
    axis: str = "embed"

    @nn.compact
    def __call__(self, x_btd):
        d = x_btd.shape[-1]
        scale = annotated_param(self, "scale", nn.initializers.ones, (d,), (self.axis,), self.param_dtype)
        x = x_btd.astype(jnp.float32)
        y = x * jax.lax.rsqrt(jnp.square(x).mean(-1, keepdims=True) + self.eps)
        return (y * scale.astype(jnp.float32)).astype(self.dtype)


def _flat_operands(x, w, n_contract: int):
    k = math.prod(w.shape[:n_contract])
    return x.reshape(-1, k), w.reshape(k, -1)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3))
def project(x: jax.Array, w: jax.Array, n_contract: int = 1, out_dtype=None) -> jax.Array:
    """x [..., K...] @ w [K..., N...]: the last `n_contract` dims of x against the first of w,
    computed in x's dtype and returned in `out_dtype` (default: x's).

    Every projection of the models goes through here for its hand-ordered gradient: the weight
    gradient is x^T @ g, so XLA transposes the saved activation x and reads the incoming gradient
    g in place. Left to autodiff, XLA:CPU transposes g instead, fuses the whole residual-stream
    gradient chain of all later layers into that strided copy and re-derives it once per layer
    (GPT-2 small, 8 x 256, 2 cores: 15.4 s -> 11.9 s a step)."""
    x2, w2 = _flat_operands(x, w, n_contract)
    y = jax.lax.dot_general(x2, w2, (((1,), (0,)), ((), ())), preferred_element_type=out_dtype or x.dtype)
    return y.reshape(x.shape[: x.ndim - n_contract] + w.shape[n_contract:])


def _project_fwd(x, w, n_contract, out_dtype):
    return project(x, w, n_contract, out_dtype), (x, w)


def _project_bwd(n_contract, out_dtype, residuals, g):
    x, w = residuals
    x2, w2 = _flat_operands(x, w, n_contract)
    g2 = g.reshape(x2.shape[0], w2.shape[1]).astype(x.dtype)
    dx = jax.lax.dot_general(g2, w2, (((1,), (1,)), ((), ())))
    dw = jax.lax.dot_general(x2, g2, (((0,), (0,)), ((), ())))
    return dx.reshape(x.shape), dw.reshape(w.shape).astype(w.dtype)


project.defvjp(_project_fwd, _project_bwd)


# ---------------------------------------------------------------- positions and masks


def positions_from_mask(mask_bt: jax.Array) -> jax.Array:
    """Left padding: the first real token gets position 0 (pads get 0 too)."""
    return jnp.maximum(jnp.cumsum(mask_bt.astype(jnp.int32), axis=-1) - 1, 0)


def positions_from_segments(segment_ids_bt: jax.Array) -> jax.Array:
    """Packed sequences: positions restart at 0 where the segment id changes."""
    t = segment_ids_bt.shape[-1]
    index = jnp.broadcast_to(jnp.arange(t, dtype=jnp.int32), segment_ids_bt.shape)
    starts = jnp.concatenate(
        [jnp.ones_like(segment_ids_bt[:, :1], bool), segment_ids_bt[:, 1:] != segment_ids_bt[:, :-1]], axis=1
    )
    first = jax.lax.cummax(jnp.where(starts, index, 0), axis=1)
    return index - first


def causal_mask(q_positions_t: jax.Array, k_length: int) -> jax.Array:
    """[1, 1, T, S] (or [B, 1, T, S] for per-row slots [B, T]): query at slot q sees key slots j <= q."""
    return heads_axis(jnp.arange(k_length) <= q_positions_t[..., None])


def heads_axis(mask: jax.Array) -> jax.Array:
    """A [T, S] or [B, T, S] mask as [1 or B, 1, T, S]."""
    return mask.reshape((-1, 1) + mask.shape[-2:])


def query_slots(cache_index, t: int) -> jax.Array:
    """Cache slots [T] (or [B, T] for a per-row cache_index [B]) of T new tokens written at cache_index."""
    return jnp.asarray(cache_index, jnp.int32)[..., None] + jnp.arange(t, dtype=jnp.int32)


def key_mask(mask_bs: jax.Array) -> jax.Array:
    """[B, 1, 1, S] from a [B, S] mask of real key tokens."""
    return mask_bs.astype(bool)[:, None, None, :]


def segment_mask(q_segments_bt: jax.Array, k_segments_bs: jax.Array) -> jax.Array:
    """[B, 1, T, S]: same segment, and the key is not padding (segment 0)."""
    same = q_segments_bt[:, :, None] == k_segments_bs[:, None, :]
    return (same & (k_segments_bs != 0)[:, None, :])[:, None]


# ---------------------------------------------------------------- attention


def attention_weights(q_bthk, k_bshk, mask, bias_bhts=None, scale: float = 1.0):
    """Softmax weights [B, H, T, S] in float32 (bias added before masking, as the references do)."""
    scores = jnp.einsum("bthk,bshk->bhts", q_bthk, k_bshk, preferred_element_type=jnp.float32)
    if scale != 1.0:
        scores = scores * scale
    if bias_bhts is not None:
        scores = scores + bias_bhts.astype(jnp.float32)
    scores = jnp.where(mask, scores, MASKED)
    return jax.nn.softmax(scores, axis=-1)


def combine_values(weights_bhts, v_bshk, dtype):
    return jnp.einsum("bhts,bshk->bthk", weights_bhts.astype(dtype), v_bshk)


def write_cache(cache_bshk: jax.Array, new_bthk: jax.Array, cache_index) -> jax.Array:
    """Writes the new keys or values into slots [cache_index, cache_index + T); a cache_index [B]
    gives each row its own slot (continuous batching: rows at different steps)."""
    index = jnp.asarray(cache_index, jnp.int32)
    new_bthk = new_bthk.astype(cache_bshk.dtype)
    if index.ndim == 1:
        write_row = lambda c, n, i: jax.lax.dynamic_update_slice_in_dim(c, n, i, axis=0)
        return jax.vmap(write_row)(cache_bshk, new_bthk, index)
    zero = jnp.zeros((), jnp.int32)
    return jax.lax.dynamic_update_slice(cache_bshk, new_bthk, (zero, index, zero, zero))


def rotary(x_bthk: jax.Array, positions_bt: jax.Array, base: float = 10000.0, inv_freq=None) -> jax.Array:
    """Rotary position embedding (rotate-half form) applied to queries or keys. `inv_freq` [K/2]
    replaces the frequencies base^(-2i/K) (scaled RoPE variants)."""
    k = x_bthk.shape[-1]
    if inv_freq is None:
        inv_freq = base ** (-jnp.arange(0, k, 2, dtype=jnp.float32) / k)
    angles = positions_bt.astype(jnp.float32)[..., None] * inv_freq  # [B, T, K/2]
    cos = jnp.cos(angles)[:, :, None, :]
    sin = jnp.sin(angles)[:, :, None, :]
    x = x_bthk.astype(jnp.float32)
    x1, x2 = x[..., : k // 2], x[..., k // 2 :]
    out = jnp.concatenate([x1 * cos - x2 * sin, x2 * cos + x1 * sin], axis=-1)
    return out.astype(x_bthk.dtype)
