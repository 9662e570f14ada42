"""GPT-2 against transformers' GPT2LMHeadModel, and the cache / packing paths against the full forward."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from model_refs import assert_packed_equals_one_by_one, assert_steps_equal_full_forward, left_padded_batch, torch_logits
from transformers import GPT2Config, GPT2LMHeadModel

from rt_jax import models

SHAPES = [  # (n_embd, n_layer, n_head, vocab_size, lengths of a left-padded batch)
    dict(n_embd=32, n_layer=2, n_head=4, vocab_size=101, lengths=(7, 3, 5)),
    dict(n_embd=48, n_layer=3, n_head=3, vocab_size=64, lengths=(12, 12)),
    pytest.param(dict(n_embd=16, n_layer=1, n_head=2, vocab_size=50, lengths=(1, 9, 4, 6)), marks=pytest.mark.slow),
]


def make_reference(tmp_path, seed=0, **config):
    torch.manual_seed(seed)
    cfg = GPT2Config(n_positions=64, bos_token_id=1, eos_token_id=1, **config)
    ref = GPT2LMHeadModel(cfg).eval()
    ref.save_pretrained(tmp_path)
    return ref


@pytest.mark.parametrize("shape", SHAPES, ids=["d32_l2_b3", "d48_l3_b2", "d16_l1_b4"])
def test_logits_match_transformers_with_left_padding(tmp_path, shape):
    shape = dict(shape)
    lengths = shape.pop("lengths")
    ref = make_reference(tmp_path, **shape)
    loaded = models.from_pretrained(tmp_path)
    ids, mask = left_padded_batch(np.random.default_rng(0), lengths, shape["vocab_size"])
    positions = np.maximum(np.cumsum(mask, -1) - 1, 0)
    want = torch_logits(
        ref, input_ids=ids.astype(np.int64), attention_mask=mask, position_ids=positions.astype(np.int64)
    )
    got = np.asarray(loaded.module.apply({"params": loaded.params}, jnp.asarray(ids), jnp.asarray(mask)))
    real = mask.astype(bool)
    assert got.shape == want.shape
    np.testing.assert_array_less(np.abs(got - want)[real].max(), 1e-4)


@pytest.fixture(scope="module", params=["learned", "rotary"])
def small(request, tmp_path_factory):
    sizes = dict(vocab_size=61, n_embd=32, n_layer=2, n_head=4)
    if request.param == "rotary":  # transformers has no rotary GPT-2: random init
        cfg = GPT2Config(n_positions=32, bos_token_id=1, eos_token_id=1, **sizes)
        return models.from_config(cfg, seed=1, position_embedding="rotary")
    directory = tmp_path_factory.mktemp("gpt2")
    make_reference(directory, seed=1, **sizes)  # built by torch and loaded: cheaper than a compiled init
    return models.from_pretrained(directory)


def test_prefill_and_steps_equal_full_forward(small):
    ids, mask = left_padded_batch(np.random.default_rng(1), (6, 3), 61)
    assert_steps_equal_full_forward(small.module, small.params, ids, mask, prompt=3, max_length=10)


def test_packed_equals_one_by_one(small):
    rng = np.random.default_rng(2)
    seqs = [rng.integers(1, 61, n) for n in (4, 7, 2)]
    assert_packed_equals_one_by_one(small.module, small.params, seqs)


# remat and the compute dtype do not depend on the position embedding: learned covers them.
@pytest.mark.parametrize("small", ["learned"], indirect=True)
def test_remat_and_bfloat16_compute_keep_the_logits(small):
    m, p = small.module, {"params": small.params}
    ids, mask = left_padded_batch(np.random.default_rng(3), (5, 4), 61)
    want = np.asarray(jax.jit(m.apply)(p, ids, mask))
    options = dict(position_embedding=m.s.position_embedding)
    remat = models.build_module(small.config, remat=True, **options)
    np.testing.assert_allclose(np.asarray(jax.jit(remat.apply)(p, ids, mask)), want, atol=1e-6)
    bf16 = models.build_module(small.config, dtype=jnp.bfloat16, **options)
    got = jax.jit(bf16.apply)(p, ids, mask)
    assert got.dtype == jnp.float32
    real = mask.astype(bool)
    assert np.abs(np.asarray(got) - want)[real].max() < 0.05 * np.abs(want).max()


@pytest.mark.slow
@pytest.mark.parametrize("small", ["learned"], indirect=True)
def test_remat_gradients_equal_plain_gradients(small):
    ids, mask = left_padded_batch(np.random.default_rng(3), (5, 4), 61)
    remat = models.build_module(small.config, remat=True, position_embedding=small.module.s.position_embedding)
    loss = lambda module: jax.jit(jax.grad(lambda q: module.apply({"params": q}, ids, mask).sum()))
    for a, b in zip(jax.tree.leaves(loss(remat)(small.params)), jax.tree.leaves(loss(small.module)(small.params))):
        np.testing.assert_allclose(a, b, atol=1e-5)


def test_logical_axes_cover_every_param(small):
    axes = models.logical_axes(small)
    is_axes = lambda x: isinstance(x, tuple)
    assert jax.tree.structure(axes, is_leaf=is_axes) == jax.tree.structure(small.params)
    for name, leaf in zip(jax.tree.leaves(axes, is_leaf=is_axes), jax.tree.leaves(small.params)):
        assert len(name) == leaf.ndim
    assert axes["wte"] == ("vocab", "embed")
    assert axes["h_0"]["attn"]["qkv_kernel"] == ("embed", None, "heads", "kv")


@pytest.mark.slow
@pytest.mark.parametrize("small", ["learned"], indirect=True)
def test_sharded_forward_on_a_mesh_equals_single_device(small):
    """Params sharded with logical_axes + rt_jax.parallel rules, activations constrained; the
    vocabulary (61) does not divide the tensor axis, as GPT-2's 50257 does not."""
    import flax.linen as nn

    from rt_jax import parallel

    mesh = parallel.make_mesh({"data": 2, "fsdp": 2, "tensor": 2})
    params = jax.device_put(small.params, parallel.param_shardings(models.logical_axes(small), small.params, mesh))
    ids, mask = left_padded_batch(np.random.default_rng(5), (5, 4, 6, 2), 61)
    want = np.asarray(jax.jit(small.module.apply)({"params": small.params}, ids, mask))
    with jax.set_mesh(mesh), nn.logical_axis_rules(parallel.LOGICAL_RULES):
        forward = jax.jit(
            lambda p, rng, det: small.module.apply({"params": p}, ids, mask, deterministic=det, rngs={"dropout": rng}),
            static_argnums=2,
        )
        got = forward(params, jax.random.key(0), True)
        dropped = forward(params, jax.random.key(0), False)
    assert got.sharding.spec[0] == ("data", "fsdp")
    np.testing.assert_allclose(np.asarray(got), want, atol=1e-5)
    assert np.isfinite(np.asarray(dropped)).all() and np.abs(np.asarray(dropped) - want).max() > 1e-3
