"""The hand-written gradients of the train step's hot spots: scatter-free cross-entropy and the
projections' ordered weight gradient, checked against torch and plain autodiff."""

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

from rt_jax.models import layers
from rt_jax.train import step as step_lib


def _case(seed=0, shape=(3, 5), vocab=37):
    rng = np.random.RandomState(seed)
    logits = (rng.randn(*shape, vocab) * 3).astype(np.float32)
    targets = rng.randint(0, vocab, shape).astype(np.int32)
    mask = (rng.rand(*shape) > 0.3).astype(np.float32)
    return logits, targets, mask


def test_cross_entropy_value_and_grad_match_torch():
    logits, targets, mask = _case()
    loss = lambda l: jnp.sum(step_lib.cross_entropy(l, jnp.asarray(targets))[0] * mask)
    value, grad = jax.value_and_grad(loss)(jnp.asarray(logits))

    ref_logits = torch.tensor(logits, requires_grad=True)
    per_token = torch.nn.functional.cross_entropy(
        ref_logits.reshape(-1, logits.shape[-1]), torch.tensor(targets, dtype=torch.long).reshape(-1), reduction="none"
    )
    ref = (per_token * torch.tensor(mask).reshape(-1)).sum()
    ref.backward()
    np.testing.assert_allclose(float(value), ref.item(), rtol=1e-5)
    np.testing.assert_allclose(np.asarray(grad), ref_logits.grad.numpy(), rtol=1e-5, atol=1e-6)


def test_cross_entropy_backward_has_no_scatter():
    logits, targets, mask = _case(shape=(2, 4), vocab=64)
    grad = jax.jit(jax.grad(lambda l: jnp.sum(step_lib.cross_entropy(l, jnp.asarray(targets))[0] * mask)))
    hlo = grad.lower(jnp.asarray(logits)).compile().as_text()
    assert not re.search(r"= \S+ scatter\(|kind=\S+, calls=%wrapped_scatter", hlo)


def test_cross_entropy_top_is_argmax_without_ties():
    logits, targets, _ = _case(seed=1, shape=(4, 6), vocab=11)
    targets[0, :3] = logits[0, :3].argmax(-1)  # some tokens right, so both outcomes occur
    _, top = step_lib.cross_entropy(jnp.asarray(logits), jnp.asarray(targets))
    np.testing.assert_array_equal(np.asarray(top), logits.argmax(-1) == targets)
    assert np.asarray(top).any() and not np.asarray(top).all()


@pytest.mark.parametrize(
    "x_shape,w_shape,n_contract",
    [
        ((2, 3, 4), (4, 5), 1),  # MLP
        ((2, 3, 4), (4, 3, 2, 5), 1),  # fused q/k/v projection
        ((2, 3, 2, 5), (2, 5, 4), 2),  # attention output over (heads, head size)
    ],
)
def test_project_equals_einsum_in_value_and_gradient(x_shape, w_shape, n_contract):
    rng = np.random.RandomState(0)
    x, w = jnp.asarray(rng.randn(*x_shape), jnp.float32), jnp.asarray(rng.randn(*w_shape), jnp.float32)
    axes = (tuple(range(len(x_shape) - n_contract, len(x_shape))), tuple(range(n_contract)))
    loss = lambda f: lambda x, w: jnp.sum(jnp.sin(f(x, w)))
    custom = jax.jit(jax.value_and_grad(loss(lambda x, w: layers.project(x, w, n_contract)), argnums=(0, 1)))
    plain = jax.value_and_grad(loss(lambda x, w: jnp.tensordot(x, w, axes)), argnums=(0, 1))
    (v1, (gx1, gw1)), (v0, (gx0, gw0)) = custom(x, w), plain(x, w)
    np.testing.assert_allclose(float(v1), float(v0), rtol=1e-5)
    np.testing.assert_allclose(np.asarray(gx1), np.asarray(gx0), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(np.asarray(gw1), np.asarray(gw0), rtol=1e-5, atol=1e-5)
    assert gx1.shape == x.shape and gw1.shape == w.shape


def test_project_mixed_precision_keeps_dtypes():
    x = jnp.ones((2, 3, 4), jnp.bfloat16)
    w = jnp.full((4, 5), 0.5, jnp.bfloat16)
    y, vjp = jax.vjp(lambda x, w: layers.project(x, w, out_dtype=jnp.float32), x, w)
    assert y.dtype == jnp.float32 and float(y[0, 0, 0]) == 2.0
    gx, gw = vjp(jnp.ones_like(y))
    assert gx.dtype == jnp.bfloat16 and gw.dtype == jnp.bfloat16
    assert float(gx[0, 0, 0]) == 2.5 and float(gw[0, 0]) == 6.0
