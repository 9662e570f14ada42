"""The hand-written gradients of the train step's hot spots: scatter-free cross-entropy and the
gradient barrier of the projections, checked against torch and plain autodiff."""
import re

import jax
import jax.numpy as jnp
import numpy as np
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
    loss = lambda l: jnp.sum(step_lib.cross_entropy(l, jnp.asarray(targets)) * mask)
    value, grad = jax.value_and_grad(loss)(jnp.asarray(logits))

    ref_logits = torch.tensor(logits, requires_grad=True)
    per_token = torch.nn.functional.cross_entropy(
        ref_logits.reshape(-1, logits.shape[-1]), torch.tensor(targets, dtype=torch.long).reshape(-1),
        reduction="none")
    ref = (per_token * torch.tensor(mask).reshape(-1)).sum()
    ref.backward()
    np.testing.assert_allclose(float(value), ref.item(), rtol=1e-5)
    np.testing.assert_allclose(np.asarray(grad), ref_logits.grad.numpy(), rtol=1e-5, atol=1e-6)


def test_cross_entropy_backward_has_no_scatter():
    logits, targets, mask = _case(shape=(2, 4), vocab=64)
    grad = jax.jit(jax.grad(lambda l: jnp.sum(step_lib.cross_entropy(l, jnp.asarray(targets)) * mask)))
    hlo = grad.lower(jnp.asarray(logits)).compile().as_text()
    assert not re.search(r"= \S+ scatter\(|kind=\S+, calls=%wrapped_scatter", hlo)


def test_materialize_grad_is_the_identity_with_the_same_gradient():
    x = jnp.linspace(-2.0, 2.0, 12).reshape(3, 4)
    f = lambda x, wrap: jnp.sum(jnp.tanh(wrap(x @ x.T)) ** 2)
    with_barrier = jax.jit(jax.value_and_grad(lambda x: f(x, layers.materialize_grad)))
    plain = jax.value_and_grad(lambda x: f(x, lambda y: y))
    (v1, g1), (v0, g0) = with_barrier(x), plain(x)
    assert float(v1) == float(v0)
    np.testing.assert_allclose(np.asarray(g1), np.asarray(g0), rtol=1e-6)
    assert "opt-barrier" in with_barrier.lower(x).as_text(dialect="hlo")
