"""GPT-2 against transformers' GPT2LMHeadModel, and the cache / packing paths against the full forward."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from transformers import GPT2Config, GPT2LMHeadModel

from rt_jax import models
from rt_jax.models import layers
from tests.models.helpers import left_padded_batch, torch_logits

SHAPES = [  # (n_embd, n_layer, n_head, vocab_size, lengths of a left-padded batch)
    dict(n_embd=32, n_layer=2, n_head=4, vocab_size=101, lengths=(7, 3, 5)),
    dict(n_embd=48, n_layer=3, n_head=3, vocab_size=64, lengths=(12, 12)),
    dict(n_embd=16, n_layer=1, n_head=2, vocab_size=50, lengths=(1, 9, 4, 6)),
]


def make_reference(tmp_path, seed=0, **config):
    torch.manual_seed(seed)
    cfg = GPT2Config(n_positions=64, bos_token_id=1, eos_token_id=1, **config)
    ref = GPT2LMHeadModel(cfg).eval()
    ref.save_pretrained(tmp_path)
    return ref


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: f"d{s['n_embd']}_l{s['n_layer']}_b{len(s['lengths'])}")
def test_logits_match_transformers_with_left_padding(tmp_path, shape):
    shape = dict(shape)
    lengths = shape.pop("lengths")
    ref = make_reference(tmp_path, **shape)
    loaded = models.from_pretrained(tmp_path)
    ids, mask = left_padded_batch(np.random.default_rng(0), lengths, shape["vocab_size"])
    positions = np.maximum(np.cumsum(mask, -1) - 1, 0)
    want = torch_logits(ref, input_ids=ids.astype(np.int64), attention_mask=mask,
                        position_ids=positions.astype(np.int64))
    got = np.asarray(loaded.module.apply({"params": loaded.params}, jnp.asarray(ids), jnp.asarray(mask)))
    real = mask.astype(bool)
    assert got.shape == want.shape
    np.testing.assert_array_less(np.abs(got - want)[real].max(), 1e-4)


def _small(position_embedding="learned", **kw):
    cfg = GPT2Config(vocab_size=61, n_positions=32, n_embd=32, n_layer=2, n_head=4, bos_token_id=1,
                     eos_token_id=1)
    return models.from_config(cfg, seed=1, position_embedding=position_embedding, **kw)


@pytest.mark.parametrize("position_embedding", ["learned", "rotary"])
def test_prefill_and_steps_equal_full_forward(position_embedding):
    loaded = _small(position_embedding)
    m, p = loaded.module, {"params": loaded.params}
    ids, mask = left_padded_batch(np.random.default_rng(1), (6, 3), 61)
    full = m.apply(p, ids, mask)
    positions = layers.positions_from_mask(jnp.asarray(mask))
    max_length, prompt = 10, 3
    cache = m.apply(p, 2, max_length, method="init_cache")
    kv_mask = jnp.zeros((2, max_length), bool).at[:, :prompt].set(mask[:, :prompt] > 0)
    logits, cache = m.apply(p, ids[:, :prompt], positions[:, :prompt], cache, 0, kv_mask, method="extend")
    steps = [logits]
    extend = jax.jit(lambda c, i, pos, idx, kvm: m.apply(p, i, pos, c, idx, kvm, method="extend"))
    for t in range(prompt, ids.shape[1]):
        kv_mask = kv_mask.at[:, t].set(mask[:, t] > 0)
        logits, cache = extend(cache, ids[:, t:t + 1], positions[:, t:t + 1], jnp.int32(t), kv_mask)
        steps.append(logits)
    stepped = jnp.concatenate(steps, axis=1)
    real = mask.astype(bool)
    np.testing.assert_allclose(np.asarray(stepped)[real], np.asarray(full)[real], atol=1e-5)


@pytest.mark.parametrize("position_embedding", ["learned", "rotary"])
def test_packed_equals_one_by_one(position_embedding):
    loaded = _small(position_embedding)
    m, p = loaded.module, {"params": loaded.params}
    rng = np.random.default_rng(2)
    seqs = [rng.integers(1, 61, n) for n in (4, 7, 2)]
    packed = np.concatenate(seqs + [np.zeros(3, int)])[None]
    segments = np.concatenate([np.full(len(s), i + 1) for i, s in enumerate(seqs)] + [np.zeros(3, int)])[None]
    got = np.asarray(m.apply(p, jnp.asarray(packed), segment_ids=jnp.asarray(segments)))[0]
    start = 0
    for s in seqs:
        alone = np.asarray(m.apply(p, jnp.asarray(s[None])))[0]
        np.testing.assert_allclose(got[start:start + len(s)], alone, atol=1e-5)
        start += len(s)


def test_remat_and_bfloat16_compute_keep_the_logits():
    base = _small()
    m, p = base.module, {"params": base.params}
    ids, mask = left_padded_batch(np.random.default_rng(3), (5, 4), 61)
    want = np.asarray(m.apply(p, ids, mask))
    remat = models.build_module(base.config, remat=True)
    np.testing.assert_allclose(np.asarray(remat.apply(p, ids, mask)), want, atol=1e-6)
    grads = jax.grad(lambda q: remat.apply({"params": q}, ids, mask).sum())(base.params)
    ref_grads = jax.grad(lambda q: m.apply({"params": q}, ids, mask).sum())(base.params)
    for a, b in zip(jax.tree.leaves(grads), jax.tree.leaves(ref_grads)):
        np.testing.assert_allclose(a, b, atol=1e-5)
    bf16 = models.build_module(base.config, dtype=jnp.bfloat16)
    got = bf16.apply(p, ids, mask)
    assert got.dtype == jnp.float32
    real = mask.astype(bool)
    assert np.abs(np.asarray(got) - want)[real].max() < 0.05 * np.abs(want).max()


def test_logical_axes_cover_every_param():
    loaded = _small()
    axes = models.logical_axes(loaded)
    assert jax.tree.structure(axes, is_leaf=lambda x: isinstance(x, tuple)) == jax.tree.structure(loaded.params)
    for name, leaf in zip(jax.tree.leaves(axes, is_leaf=lambda x: isinstance(x, tuple)),
                          jax.tree.leaves(loaded.params)):
        assert len(name) == leaf.ndim
    assert axes["wte"] == ("vocab", "embed")
    assert axes["h_0"]["attn"]["qkv_kernel"] == ("embed", None, "heads", "kv")
