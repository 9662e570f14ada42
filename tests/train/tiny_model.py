"""A tiny flax decoder for training tests that must not depend on rt_jax.models: causal
attention inside segments, learned positions, logical axes for sharding."""

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

VOCAB, EMBED, HEADS, MLP = 32, 16, 2, 32


class TinyDecoder(nn.Module):
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, input_ids, position_ids=None, segment_ids=None, deterministic=True):
        B, T = input_ids.shape
        position_ids = jnp.broadcast_to(jnp.arange(T), (B, T)) if position_ids is None else position_ids
        segment_ids = jnp.ones((B, T), jnp.int32) if segment_ids is None else segment_ids
        wte = self.param("wte", nn.initializers.normal(0.5), (VOCAB, EMBED))
        wpe = self.param("wpe", nn.initializers.normal(0.1), (64, EMBED))
        x = (wte[input_ids] + wpe[position_ids]).astype(self.dtype)
        # no qkv bias: the key bias has a zero gradient, and Adam would amplify its rounding noise
        qkv = nn.DenseGeneral((3, HEADS, EMBED // HEADS), use_bias=False, dtype=self.dtype, name="qkv")(x)
        q, k, v = qkv[:, :, 0], qkv[:, :, 1], qkv[:, :, 2]
        mask = (jnp.tril(jnp.ones((T, T), bool))[None] & (segment_ids[:, :, None] == segment_ids[:, None, :]))[:, None]
        att = jnp.where(mask, jnp.einsum("bqhk,bshk->bhqs", q, k) / np.sqrt(EMBED // HEADS), -1e9)
        y = jnp.einsum("bhqs,bshk->bqhk", jax.nn.softmax(att, axis=-1), v)
        x = x + nn.DenseGeneral(EMBED, axis=(-2, -1), dtype=self.dtype, name="out")(y)
        h = nn.Dense(MLP, dtype=self.dtype, name="fc")(nn.LayerNorm(dtype=self.dtype, name="ln")(x))
        h = nn.Dropout(0.1, deterministic=deterministic)(jax.nn.gelu(h))
        x = x + nn.Dense(EMBED, dtype=self.dtype, name="proj")(h)
        return (x @ wte.T.astype(self.dtype)).astype(jnp.float32)


AXES = {
    "wte": ("vocab", "embed"),
    "wpe": (None, "embed"),
    "qkv": {"kernel": ("embed", None, "heads", "kv")},
    "out": {"kernel": ("heads", "kv", "embed"), "bias": ("embed",)},
    "ln": {"scale": ("embed",), "bias": ("embed",)},
    "fc": {"kernel": ("embed", "mlp"), "bias": ("mlp",)},
    "proj": {"kernel": ("mlp", "embed"), "bias": ("embed",)},
}


@functools.lru_cache(maxsize=None)
def _init(seed):
    x = jnp.zeros((1, 4), jnp.int32)
    return jax.jit(TinyDecoder().init)(jax.random.PRNGKey(seed), x)["params"]


def init_params(seed=0):
    """Fresh host copies (the train step donates its state)."""
    return jax.tree.map(np.asarray, _init(seed))


def random_batch(batch_size=8, length=12, seed=0):
    """A decoder batch per the batch contract: two packed segments per row, some padding."""
    rng = np.random.RandomState(seed)
    ids = rng.randint(1, VOCAB, size=(batch_size, length + 1)).astype(np.int32)
    seg = np.zeros((batch_size, length), np.int32)
    pos = np.zeros((batch_size, length), np.int32)
    for b in range(batch_size):
        cut, end = rng.randint(3, length - 4), rng.randint(length - 3, length + 1)
        seg[b, :cut], seg[b, cut:end] = 1, 2
        pos[b, :cut], pos[b, cut:end] = np.arange(cut), np.arange(end - cut)
    targets = ids[:, 1:].copy()
    loss_mask = (seg > 0).astype(np.int32)
    loss_mask[:, 0] = 0  # a prompt token
    # the last token of each segment has no next token inside the segment
    loss_mask[:, :-1] *= seg[:, :-1] == seg[:, 1:]
    return {"input_ids": ids[:, :-1], "segment_ids": seg, "positions": pos, "targets": targets, "loss_mask": loss_mask}
